//! Compressed streams around model files, recognised by their content:
//! every codec joblib's `compress=` writes (zlib, gzip, bz2, lzma, xz,
//! lz4) and zstd. Each is decompressed by a maintained decoder (flate2 on
//! zlib-rs, bzip2 on libbz2-rs, lz4_flex: pure Rust; liblzma and zstd: the
//! reference C libraries, zstd already linked for Parquet) with the output
//! capped, so a decompression bomb costs at most the cap.

use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zlib,
    Bzip2,
    Xz,
    /// The legacy `.lzma` ("alone") format: joblib's `compress='lzma'`.
    LzmaAlone,
    Zstd,
    Lz4,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zlib => "zlib",
            Codec::Bzip2 => "bzip2",
            Codec::Xz => "xz",
            Codec::LzmaAlone => "lzma",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }

    /// Whether the signature is specific enough that a stream which does
    /// not decode is a corrupt (or over-demanding) stream of this codec
    /// rather than other data. zlib's two bytes are not; the `.lzma`
    /// header, checked field by field, is.
    pub fn strong_magic(self) -> bool {
        self != Codec::Zlib
    }
}

/// The codec whose signature `data` starts with.
pub fn sniff(data: &[u8]) -> Option<Codec> {
    if data.starts_with(&[0x1f, 0x8b]) {
        return Some(Codec::Gzip);
    }
    if data.len() > 2 && data[0] == 0x78 && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0
    {
        return Some(Codec::Zlib);
    }
    if data.len() >= 4 && data.starts_with(b"BZh") && (b'1'..=b'9').contains(&data[3]) {
        return Some(Codec::Bzip2);
    }
    if data.starts_with(b"\xfd7zXZ\x00") {
        return Some(Codec::Xz);
    }
    if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Some(Codec::Zstd);
    }
    if data.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        return Some(Codec::Lz4);
    }
    if is_lzma_alone(data) {
        return Some(Codec::LzmaAlone);
    }
    None
}

/// The 13-byte `.lzma` header: a properties byte (lc, lp, pb packed below
/// 225), a dictionary size and the unpacked size (all ones when unknown,
/// as Python's `lzma` writes it). joblib recognises `]\x00` (the default
/// properties, a dictionary of at least 64 KiB); a pickle cannot start
/// that way (0x00 is no opcode).
fn is_lzma_alone(data: &[u8]) -> bool {
    if data.len() < 13 || data[0] >= 225 || data[1] != 0 {
        return false;
    }
    let dict = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    let size = u64::from_le_bytes(data[5..13].try_into().unwrap_or_default());
    dict >= 1 << 16 && (size == u64::MAX || size < 1 << 48)
}

/// The most memory the xz and lzma decoders may use (their dictionary):
/// enough for `xz -9` (64 MiB), far below what a crafted header can ask.
const LZMA_MEMORY_LIMIT: u64 = 128 << 20;

/// Decompresses `data` up to `max + 1` bytes (one more than the limit, so
/// that going past it shows). Returns the output and whether the stream
/// ended cleanly, or `None` when nothing at all could be decoded.
pub fn decompress(codec: Codec, data: &[u8], max: u64) -> Option<(Vec<u8>, bool)> {
    let cap = usize::try_from(max.saturating_add(1)).unwrap_or(usize::MAX);
    let read_all = |r: &mut dyn Read| -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let ok = r.take(cap as u64).read_to_end(&mut out).is_ok();
        (out, ok)
    };
    let (out, complete) = match codec {
        Codec::Gzip => read_all(&mut flate2::read::MultiGzDecoder::new(data)),
        Codec::Zlib => read_all(&mut flate2::read::ZlibDecoder::new(data)),
        Codec::Bzip2 => read_all(&mut bzip2::read::MultiBzDecoder::new(data)),
        Codec::Lz4 => read_all(&mut lz4_flex::frame::FrameDecoder::new(data)),
        Codec::Zstd => match zstd::stream::read::Decoder::with_buffer(data) {
            Ok(mut d) => read_all(&mut d),
            Err(_) => (Vec::new(), false),
        },
        Codec::Xz | Codec::LzmaAlone => {
            // liblzma itself, bounded: a stream whose dictionary needs more
            // than the memory limit is refused before anything is allocated.
            let stream = if codec == Codec::Xz {
                liblzma::stream::Stream::new_stream_decoder(
                    LZMA_MEMORY_LIMIT,
                    liblzma::stream::CONCATENATED,
                )
            } else {
                liblzma::stream::Stream::new_lzma_decoder(LZMA_MEMORY_LIMIT)
            };
            match stream {
                Ok(s) => read_all(&mut liblzma::read::XzDecoder::new_stream(data, s)),
                Err(_) => (Vec::new(), false),
            }
        }
    };
    if out.is_empty() && !complete {
        return None;
    }
    Some((out, complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pickle_is_not_taken_for_a_compressed_stream() {
        for pickle in [
            &b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00]\x94."[..],
            b"]q\x00(K\x01K\x02e.",
            b"(lp0\nI1\na.",
        ] {
            assert_eq!(sniff(pickle), None);
        }
    }

    #[test]
    fn lzma_headers_are_sniffed_strictly() {
        let mut header = vec![0x5d, 0x00, 0x00, 0x80, 0x00];
        header.extend([0xff; 8]);
        assert_eq!(sniff(&header), Some(Codec::LzmaAlone));
        header[0] = 225; // no such properties
        assert_eq!(sniff(&header), None);
        header[0] = 0x5d;
        header[12] = 0x7f; // an unpacked size of 2^62
        assert_eq!(sniff(&header), None);
    }
}
