//! SHA-256 digests of artifacts: the first control of the first stage is to
//! know exactly which bytes entered the pipeline.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 and length of a file, streamed in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Digest of a set of files, defined so that it can be reproduced with
/// coreutils: the SHA-256 of the `sha256sum`-style listing
/// `"<hex>  <relative/path>\n"` sorted by path, i.e.
/// `(cd DIR && find . -type f | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum) | sha256sum`.
pub fn manifest_digest<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut lines: Vec<(&str, &str)> = entries.into_iter().collect();
    lines.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Sha256::new();
    for (path, hex) in lines {
        hasher.update(hex.as_bytes());
        hasher.update(b"  ");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sha256_values() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn manifest_digest_matches_sha256sum_of_the_sorted_listing() {
        let a = sha256_hex(b"a");
        let b = sha256_hex(b"b");
        let listing = format!("{a}  x/a.png\n{b}  y/b.png\n");
        assert_eq!(
            manifest_digest([("y/b.png", b.as_str()), ("x/a.png", a.as_str())]),
            sha256_hex(listing.as_bytes())
        );
    }
}
