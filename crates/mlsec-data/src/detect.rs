//! Recognises a dataset's format by its content, never by its extension
//! alone: a renamed file is still read as what it is.

use crate::idx;
use serde::Serialize;
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Idx,
    Npy,
    Npz,
    Csv,
    Parquet,
    ImageFolder,
    /// The sample embedded in mlsec (`mnist`).
    BundledMnist,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Idx => "idx",
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::ImageFolder => "image-folder",
            Format::BundledMnist => "mnist-bundled",
        }
    }
}

/// The format of `path`, from its first bytes; `None` when nothing matches.
pub fn detect(path: &Path) -> std::io::Result<Option<Format>> {
    if path.is_dir() {
        return Ok(Some(Format::ImageFolder));
    }
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(detect_bytes(&head[..n], path))
}

pub fn detect_bytes(head: &[u8], path: &Path) -> Option<Format> {
    if head.starts_with(crate::npy::MAGIC) {
        return Some(Format::Npy);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Format::Npz);
    }
    if head.starts_with(b"PAR1") {
        return Some(Format::Parquet);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        // Gzip: peek inside for an IDX header.
        let mut gz = flate2::read::GzDecoder::new(head);
        let mut inner = [0u8; 4];
        if gz.read_exact(&mut inner).is_ok() && idx::looks_like_idx(&inner) {
            return Some(Format::Idx);
        }
        return None;
    }
    if idx::looks_like_idx(head) {
        return Some(Format::Idx);
    }
    if looks_like_text(head) {
        return Some(Format::Csv);
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("csv") || ext.eq_ignore_ascii_case("tsv") {
        return Some(Format::Csv);
    }
    None
}

/// UTF-8 text with no NUL bytes (a cut multi-byte character at the end of
/// the sniffed prefix is fine).
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    }
}
