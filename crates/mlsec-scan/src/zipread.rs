//! A tolerant, bounded zip reader for scanning.
//!
//! Strict readers (the `zip` crate, Python's `zipfile` in picklescan) give up
//! on archives that loaders still accept — bad CRCs, odd flag bits, a local
//! header whose name differs from the central directory's, data prepended
//! to the archive — and a scanner that gives up is a scanner that is
//! bypassed (CVE-2025-1944, CVE-2025-1945, CVE-2025-10156). So this reader
//! takes members from *both* the central directory and a sweep of local
//! headers, never trusts a declared size for allocation, and reports every
//! anomaly instead of failing.

use std::io::Read;

const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8; 4] = b"PK\x01\x02";
const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";

/// One member, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The name in the central directory, else the local header's.
    pub name: String,
    /// The local header's name when it differs from the central directory's.
    pub local_name: Option<String>,
    pub local_offset: usize,
    pub method: u16,
    pub flags: u16,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub crc32: u32,
    /// Offset of the member's data in the archive.
    pub data_offset: usize,
    /// Listed in the central directory (false: found only by the local-header sweep).
    pub in_central: bool,
}

/// Something odd about the archive's structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub member: Option<String>,
    pub offset: u64,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct Archive {
    pub members: Vec<Member>,
    pub anomalies: Vec<Anomaly>,
}

pub fn is_zip(data: &[u8]) -> bool {
    data.starts_with(LOCAL_SIG) || data.starts_with(EOCD_SIG) || find_eocd(data).is_some()
}

fn le16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}
fn le32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn find_eocd(data: &[u8]) -> Option<usize> {
    // The comment is at most 65,535 bytes, so the record is near the end.
    // The last signature that starts at least 22 bytes before the end (or
    // at 0 in a shorter input).
    let from = data.len().saturating_sub(22 + 65_535);
    let to = (data.len().saturating_sub(22) + EOCD_SIG.len()).min(data.len());
    memchr::memmem::rfind(&data[from..to], EOCD_SIG).map(|i| from + i)
}

/// Lists members. `max_members` bounds the work a hostile directory can cause.
pub fn read(data: &[u8], max_members: usize) -> Archive {
    let mut ar = Archive::default();
    // 1. Central directory.
    if let Some(eocd) = find_eocd(data) {
        let mut count = le16(data, eocd + 10).unwrap_or(0) as u64;
        let mut cd_size = le32(data, eocd + 12).unwrap_or(0) as u64;
        let mut cd_off = le32(data, eocd + 16).unwrap_or(0) as u64;
        // The record that ends the central directory: the zip64 one when
        // present (PyTorch always writes it), else the classic one.
        let mut cd_end = eocd;
        if let Some((z_count, z_size, z_off, z_at)) = zip64_eocd(data, eocd) {
            count = z_count;
            cd_size = z_size;
            cd_off = z_off;
            cd_end = z_at;
        }
        let (count, cd_size, cd_off) = (
            usize::try_from(count).unwrap_or(usize::MAX),
            usize::try_from(cd_size).unwrap_or(usize::MAX),
            usize::try_from(cd_off).unwrap_or(usize::MAX),
        );
        // Data prepended to the archive shifts every offset by the same amount.
        let shift = cd_end.saturating_sub(cd_off.saturating_add(cd_size));
        if shift > 0 {
            ar.anomalies.push(Anomaly {
                member: None,
                offset: 0,
                message: format!("{shift} bytes precede the archive (prepended data)"),
            });
        }
        let mut p = cd_off + shift;
        for _ in 0..count.min(max_members) {
            if !data.get(p..).is_some_and(|d| d.starts_with(CENTRAL_SIG)) {
                ar.anomalies.push(Anomaly {
                    member: None,
                    offset: p as u64,
                    message: "central directory is truncated or corrupt".into(),
                });
                break;
            }
            let flags = le16(data, p + 8).unwrap_or(0);
            let method = le16(data, p + 10).unwrap_or(0);
            let crc32 = le32(data, p + 16).unwrap_or(0);
            let mut csize = le32(data, p + 20).unwrap_or(0) as u64;
            let mut usize_ = le32(data, p + 24).unwrap_or(0) as u64;
            let nlen = le16(data, p + 28).unwrap_or(0) as usize;
            let elen = le16(data, p + 30).unwrap_or(0) as usize;
            let clen = le16(data, p + 32).unwrap_or(0) as usize;
            let mut local_raw = le32(data, p + 42).unwrap_or(0) as u64;
            // zip64 extra field: 8-byte values for each field saturated at 0xFFFFFFFF.
            if let Some(extra) = data.get(p + 46 + nlen..p + 46 + nlen + elen) {
                let mut q = 0;
                while q + 4 <= extra.len() {
                    let id = le16(extra, q).unwrap_or(0);
                    let len = le16(extra, q + 2).unwrap_or(0) as usize;
                    if id == 1 {
                        let mut v = q + 4;
                        for field in [&mut usize_, &mut csize, &mut local_raw] {
                            if *field == 0xFFFF_FFFF {
                                if let Some(x) = extra.get(v..v + 8) {
                                    *field = u64::from_le_bytes(x.try_into().unwrap_or_default());
                                    v += 8;
                                }
                            }
                        }
                    }
                    q += 4 + len;
                }
            }
            let local = usize::try_from(local_raw)
                .unwrap_or(usize::MAX)
                .saturating_add(shift);
            let name = data
                .get(p + 46..p + 46 + nlen)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default();
            ar.members.push(Member {
                name,
                local_name: None,
                local_offset: local,
                method,
                flags,
                compressed_size: csize,
                uncompressed_size: usize_,
                crc32,
                data_offset: 0,
                in_central: true,
            });
            p += 46 + nlen + elen + clen;
        }
        if count > max_members {
            ar.anomalies.push(Anomaly {
                member: None,
                offset: eocd as u64,
                message: format!("{count} members; only the first {max_members} are analysed"),
            });
        }
    }
    // 2. Local headers: each central entry's, then a sweep for any others.
    let mut known: std::collections::HashSet<usize> =
        ar.members.iter().map(|m| m.local_offset).collect();
    for m in ar.members.iter_mut() {
        let mismatch = |what: String| Anomaly {
            member: Some(m.name.clone()),
            offset: m.local_offset as u64,
            message: what,
        };
        match local_header(data, m.local_offset) {
            Some((lname, data_offset, _local_flags, lmethod)) => {
                if lname != m.name {
                    ar.anomalies.push(mismatch(format!(
                        "local header names it `{lname}`, the central directory `{}`",
                        m.name
                    )));
                    m.local_name = Some(lname);
                }
                if lmethod != m.method {
                    ar.anomalies.push(mismatch(format!(
                        "local header says compression {lmethod}, the central directory {}",
                        m.method
                    )));
                }
                m.data_offset = data_offset;
            }
            None => ar.anomalies.push(mismatch(
                "central directory points at no local header".into(),
            )),
        }
    }
    // Sweep for local headers the central directory does not list, skipping
    // the bytes central members already claim (a 1 GB storage member is not
    // searched byte by byte; a loader reads it as that member's data anyway).
    let mut claimed: Vec<(usize, usize)> = ar
        .members
        .iter()
        .filter(|m| m.data_offset > 0)
        .map(|m| {
            (
                m.local_offset,
                m.data_offset.saturating_add(m.compressed_size as usize),
            )
        })
        .collect();
    claimed.sort_unstable();
    let mut next_claim = 0;
    let mut i = 0;
    while ar.members.len() < max_members && i < data.len() {
        while next_claim < claimed.len() && claimed[next_claim].1 <= i {
            next_claim += 1;
        }
        if let Some(&(start, end)) = claimed.get(next_claim) {
            if start <= i {
                i = end;
                continue;
            }
        }
        let limit = claimed
            .get(next_claim)
            .map_or(data.len(), |c| c.0.min(data.len()));
        let Some(rel) = memchr4(&data[i..limit], LOCAL_SIG) else {
            i = limit;
            continue;
        };
        let at = i + rel;
        i = at + 4;
        if known.contains(&at) {
            continue;
        }
        let Some((name, data_offset, flags, method)) = local_header(data, at) else {
            continue;
        };
        let csize = le32(data, at + 18).unwrap_or(0) as u64;
        let usize_ = le32(data, at + 22).unwrap_or(0) as u64;
        known.insert(at);
        ar.anomalies.push(Anomaly {
            member: Some(name.clone()),
            offset: at as u64,
            message: "member has a local header but is missing from the central directory".into(),
        });
        ar.members.push(Member {
            name,
            local_name: None,
            local_offset: at,
            method,
            flags,
            compressed_size: csize,
            uncompressed_size: usize_,
            crc32: le32(data, at + 14).unwrap_or(0),
            data_offset,
            in_central: false,
        });
    }
    for m in &ar.members {
        if m.flags & 1 != 0 {
            ar.anomalies.push(Anomaly {
                member: Some(m.name.clone()),
                offset: m.local_offset as u64,
                message: "member is encrypted and cannot be analysed".into(),
            });
        }
    }
    ar
}

/// The zip64 end-of-central-directory record, found through its locator just
/// before the classic record: (entries, size, offset, record position).
fn zip64_eocd(data: &[u8], eocd: usize) -> Option<(u64, u64, u64, usize)> {
    let loc = eocd.checked_sub(20)?;
    if !data.get(loc..)?.starts_with(b"PK\x06\x07") {
        return None;
    }
    let rec = usize::try_from(u64::from_le_bytes(
        data.get(loc + 8..loc + 16)?.try_into().ok()?,
    ))
    .ok()?;
    // Prepended data shifts the recorded offset; the record sits right
    // before the locator in a well-formed file, so look there first.
    let at = if data.get(rec..)?.starts_with(b"PK\x06\x06") {
        rec
    } else {
        let guess = loc.checked_sub(56)?;
        if !data.get(guess..)?.starts_with(b"PK\x06\x06") {
            return None;
        }
        guess
    };
    let u64_at = |o: usize| {
        data.get(at + o..at + o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    Some((u64_at(32)?, u64_at(40)?, u64_at(48)?, at))
}

fn local_header(data: &[u8], at: usize) -> Option<(String, usize, u16, u16)> {
    if !data.get(at..)?.starts_with(LOCAL_SIG) {
        return None;
    }
    let flags = le16(data, at + 6)?;
    let method = le16(data, at + 8)?;
    let nlen = le16(data, at + 26)? as usize;
    let elen = le16(data, at + 28)? as usize;
    let name = String::from_utf8_lossy(data.get(at + 30..at + 30 + nlen)?).into_owned();
    Some((name, at + 30 + nlen + elen, flags, method))
}

fn memchr4(hay: &[u8], needle: &[u8; 4]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// A member's bytes, inflated up to `max_bytes`. Stored members whose size is
/// unknown (data descriptor, no central entry) run to the next header.
/// Stored members are borrowed, not copied: scanning a checkpoint with a
/// 1 GB storage must not copy 1 GB. A deflated member inflates to at most
/// `max_bytes + 1` bytes, so a caller can tell a member that fits from one
/// that inflates past the limit (a decompression bomb) without inflating it all.
pub fn member_data<'a>(
    data: &'a [u8],
    m: &Member,
    max_bytes: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    if m.flags & 1 != 0 {
        return Err("encrypted".into());
    }
    let start = m.data_offset.min(data.len());
    let declared = if m.compressed_size > 0 {
        m.compressed_size as usize
    } else {
        0
    };
    let end = if declared > 0 {
        start.saturating_add(declared).min(data.len())
    } else {
        // Unknown size: up to the next zip header.
        memchr4(&data[start..], LOCAL_SIG)
            .into_iter()
            .chain(memchr4(&data[start..], CENTRAL_SIG))
            .min()
            .map_or(data.len(), |i| start + i)
    };
    let raw = &data[start..end];
    match m.method {
        // Stored: borrowed in full; no allocation, so nothing to bound.
        0 => Ok(std::borrow::Cow::Borrowed(raw)),
        8 => {
            let mut out =
                Vec::with_capacity((m.uncompressed_size.min(max_bytes).min(64 << 20)) as usize);
            let mut dec = flate2::read::DeflateDecoder::new(raw).take(max_bytes.saturating_add(1));
            match dec.read_to_end(&mut out) {
                // Keep what inflated before corruption: a loader may have read it too.
                Ok(_) => Ok(out.into()),
                Err(_) if !out.is_empty() => Ok(out.into()),
                Err(e) => Err(format!("corrupt deflate data: {e}")),
            }
        }
        // bzip2, LZMA, zstd and xz members: Python's zipfile writes the
        // first two, and `numpy.load` reads an .npz's members through it.
        12 | 14 | 93 | 95 => {
            use crate::compression::{decompress, Codec};
            let (codec, input) = match m.method {
                12 => (Codec::Bzip2, std::borrow::Cow::Borrowed(raw)),
                93 => (Codec::Zstd, std::borrow::Cow::Borrowed(raw)),
                95 => (Codec::Xz, std::borrow::Cow::Borrowed(raw)),
                _ => (
                    Codec::LzmaAlone,
                    std::borrow::Cow::Owned(zip_lzma_as_alone(raw, m)?),
                ),
            };
            match decompress(codec, &input, max_bytes) {
                Some((out, _complete)) => Ok(out.into()),
                None => Err(format!("corrupt {} data", codec.name())),
            }
        }
        other => Err(format!("compression method {other} is not supported")),
    }
}

/// A zip LZMA member (APPNOTE 5.8.8: a 2-byte version, a 2-byte properties
/// size, the 5 properties bytes, then raw LZMA data) rewritten as the
/// `.lzma` format liblzma reads: the properties, then the unpacked size
/// (unknown when flag bit 1 says an end marker closes the data).
fn zip_lzma_as_alone(raw: &[u8], m: &Member) -> Result<Vec<u8>, String> {
    let props_len = raw
        .get(2..4)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
        .ok_or("LZMA member too short for its header")?;
    let props = raw
        .get(4..4 + props_len)
        .filter(|p| p.len() == 5)
        .ok_or("LZMA member header does not hold 5 properties bytes")?;
    let size = if m.flags & 2 != 0 {
        u64::MAX
    } else {
        m.uncompressed_size
    };
    let mut alone = Vec::with_capacity(raw.len() + 8);
    alone.extend_from_slice(props);
    alone.extend_from_slice(&size.to_le_bytes());
    alone.extend_from_slice(&raw[4 + props_len..]);
    Ok(alone)
}

/// CRC-32 of bytes (for `--verify-data`).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition: the last position at most 22 bytes from the end (or
    /// 0), no further back than the longest comment, where the signature starts.
    fn eocd_by_definition(data: &[u8]) -> Option<usize> {
        let from = data.len().saturating_sub(22 + 65_535);
        (from..=data.len().saturating_sub(22))
            .rev()
            .find(|&i| data[i..].starts_with(EOCD_SIG))
    }

    proptest! {
        #[test]
        fn the_end_record_is_found_where_the_definition_puts_it(
            len in prop_oneof![0usize..64, 65_500usize..65_700],
            plants in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
            fill in any::<u8>(),
        ) {
            let mut data = vec![fill; len];
            for at in plants {
                if len > 0 {
                    let at = at.index(len);
                    let end = (at + 4).min(len);
                    data[at..end].copy_from_slice(&EOCD_SIG[..end - at]);
                }
            }
            prop_assert_eq!(find_eocd(&data), eocd_by_definition(&data));
        }
    }
}
