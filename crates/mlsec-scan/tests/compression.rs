//! Compressed streams of every codec joblib writes (and zstd): a payload
//! inside is found, a bomb stops at the member limit, a cut or corrupt
//! stream is reported, and no input panics. The streams are written here by
//! each codec's own encoder; `fixtures/` holds the same payloads written by
//! Python's `bz2`, `lzma` and `gzip`.

use mlsec_core::Severity;
use mlsec_scan::{scan_bytes, Kind, ScanOptions};
use proptest::prelude::*;
use std::io::Write;

/// `os.system("id")` pickled at protocol 2.
const PAYLOAD: &[u8] = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";

fn compress(codec: &str, data: &[u8]) -> Vec<u8> {
    match codec {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zlib" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "lzma" => {
            // The legacy format joblib's compress='lzma' writes.
            let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
            let stream = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
            let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zstd" => zstd::encode_all(data, 3).unwrap(),
        "lz4" => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        other => panic!("no codec {other}"),
    }
}

const CODECS: [&str; 7] = ["gzip", "zlib", "bzip2", "xz", "lzma", "zstd", "lz4"];

#[test]
fn a_payload_inside_any_codec_is_found() {
    let opts = ScanOptions::default();
    for codec in CODECS {
        let s = scan_bytes("m.joblib", &compress(codec, PAYLOAD), &opts);
        assert_eq!(s.kind, Kind::Compressed, "{codec}");
        let f = s
            .findings
            .iter()
            .find(|f| f.severity == Severity::Critical)
            .unwrap_or_else(|| panic!("{codec}: nothing critical in {:?}", s.findings));
        assert!(f.message.contains("posix.system"), "{codec}: {}", f.message);
        assert_eq!(
            f.location.member.as_deref(),
            Some(codec),
            "{codec}: the location names the codec"
        );
    }
}

#[test]
fn twice_compressed_payloads_are_found_too() {
    let inner = compress("zstd", PAYLOAD);
    let outer = compress("bzip2", &inner);
    let s = scan_bytes("m.pkl", &outer, &ScanOptions::default());
    assert!(
        s.findings.iter().any(|f| f.severity == Severity::Critical),
        "{:?}",
        s.findings
    );
}

#[test]
fn bombs_stop_at_the_member_limit() {
    let opts = ScanOptions {
        max_member_bytes: 1 << 20,
        ..ScanOptions::default()
    };
    let zeros = vec![0u8; 8 << 20];
    for codec in CODECS {
        let bomb = compress(codec, &zeros);
        let s = scan_bytes("bomb", &bomb, &opts);
        assert!(
            s.findings
                .iter()
                .any(|f| f.message.contains("inflates past 1048576 bytes")),
            "{codec}: {:?}",
            s.findings
        );
    }
}

#[test]
fn cut_streams_are_reported_with_what_they_held() {
    // The payload first, then filler, so that the cut leaves the payload.
    let mut data = PAYLOAD.to_vec();
    data.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    for codec in CODECS {
        let whole = compress(codec, &data);
        let cut = &whole[..whole.len() * 3 / 4];
        let s = scan_bytes("cut", cut, &ScanOptions::default());
        assert_eq!(s.kind, Kind::Compressed, "{codec}");
        let truncated = s.findings.iter().any(|f| f.message.contains("truncated"));
        let unreadable = s
            .findings
            .iter()
            .any(|f| f.message.contains("does not decompress"));
        assert!(truncated || unreadable, "{codec}: {:?}", s.findings);
        if truncated {
            // What decoded before the cut was scanned: the payload is there.
            assert!(
                s.findings.iter().any(|f| f.severity == Severity::Critical),
                "{codec}: {:?}",
                s.findings
            );
        }
    }
}

#[test]
fn plain_compressed_data_is_clean() {
    let benign = b"\x80\x02}q\x00X\x05\x00\x00\x00epochq\x01K\x03s.";
    for codec in CODECS {
        let s = scan_bytes("state", &compress(codec, benign), &ScanOptions::default());
        assert!(s.findings.is_empty(), "{codec}: {:?}", s.findings);
        assert_eq!(s.pickles, 1, "{codec}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Each codec's signature followed by noise, or a real stream with
    /// bytes flipped: never a panic, never more than the limit.
    #[test]
    fn damaged_streams_never_panic(
        codec in prop::sample::select(CODECS.to_vec()),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut data = compress(codec, PAYLOAD);
        for (at, byte) in flips {
            let i = at.index(data.len());
            data[i] ^= byte;
        }
        data.extend_from_slice(&noise);
        let opts = ScanOptions { max_member_bytes: 1 << 16, ..ScanOptions::default() };
        let _ = scan_bytes("noise", &data, &opts);
    }
}
