//! The digest cache: re-signing a large model whose files did not change
//! costs one `stat` per file. An entry is reused only when the file's
//! device, inode, size, modification *and* change time are the ones
//! recorded (the change time cannot be set back by `touch`), and entries
//! for files modified within two seconds before signing began are not
//! stored, since a later write in the same timestamp tick would go unseen
//! (git's "racy" index entries).
//!
//! The cache is an optimisation, never a source of truth: a missing,
//! unreadable or corrupt cache file means hashing everything again, with a
//! warning. Anyone who can write the cache can make mlsec sign digests of
//! their choosing, so keep it where only the signer can write.

use crate::SignError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Largest cache file read (about two million entries).
const MAX_CACHE_BYTES: u64 = 512 << 20;
const FORMAT: &str = "mlsec-digest-cache/1";
/// Files modified this recently (nanoseconds) before signing are not cached.
const RACY_NS: i128 = 2_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Stamp {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let ns = |t: std::io::Result<std::time::SystemTime>| {
                t.ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i128)
            };
            Stamp {
                dev: 0,
                ino: 0,
                size: meta.len(),
                mtime_ns: ns(meta.modified()),
                ctime_ns: ns(meta.created()),
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    path: PathBuf,
    algorithm: String,
    stamp: Stamp,
    digest: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    format: String,
    entries: Vec<Entry>,
}

/// A file's absolute path and `stat` stamp, taken before hashing.
#[derive(Debug)]
pub struct Probe {
    abs: PathBuf,
    stamp: Option<Stamp>,
}

impl Probe {
    pub fn of(path: &Path) -> Probe {
        // `absolute` joins the working directory without resolving links:
        // no system call per path component.
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let stamp = std::fs::metadata(&abs).ok().map(|m| Stamp::of(&m));
        Probe { abs, stamp }
    }
}

/// A cache miss: the file's identity and timestamps before it was hashed.
#[derive(Debug)]
pub struct Pending {
    key: (PathBuf, String),
    stamp: Option<Stamp>,
}

/// Digests remembered between signings, keyed by absolute path and
/// algorithm.
#[derive(Debug, Default)]
pub struct DigestCache {
    entries: HashMap<(PathBuf, String), (Stamp, Vec<u8>)>,
    started_ns: i128,
    pub hits: usize,
    pub misses: usize,
    /// Whether anything changed since loading (else saving is skipped).
    dirty: bool,
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

impl DigestCache {
    /// Loads a cache file; a missing file is an empty cache, an unusable one
    /// an empty cache and a warning.
    pub fn load(path: &Path) -> (DigestCache, Option<String>) {
        let mut cache = DigestCache {
            started_ns: now_ns(),
            ..DigestCache::default()
        };
        let bytes = match std::fs::metadata(path) {
            Err(_) => return (cache, None),
            Ok(m) if m.len() > MAX_CACHE_BYTES => {
                let w = format!(
                    "{}: larger than {MAX_CACHE_BYTES} bytes, not used",
                    path.display()
                );
                return (cache, Some(w));
            }
            Ok(_) => match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => return (cache, Some(format!("{}: {e}; not used", path.display()))),
            },
        };
        match serde_json::from_slice::<CacheFile>(&bytes) {
            Ok(f) if f.format == FORMAT => {
                for e in f.entries {
                    if let Ok(d) = hex::decode(&e.digest) {
                        cache.entries.insert((e.path, e.algorithm), (e.stamp, d));
                    }
                }
                (cache, None)
            }
            _ => (
                cache,
                Some(format!(
                    "{}: not an mlsec digest cache, rebuilt",
                    path.display()
                )),
            ),
        }
    }

    /// The remembered digest of `path` if the file is unchanged; otherwise
    /// what [`DigestCache::put`] needs to remember the digest about to be
    /// computed.
    pub fn get(&mut self, path: &Path, algorithm: &str) -> Result<Vec<u8>, Box<Pending>> {
        let probe = Probe::of(path);
        self.lookup(probe, algorithm)
    }

    /// [`DigestCache::get`] for a file already probed (probing, a `stat`,
    /// can run on many threads; the lookup cannot).
    pub fn lookup(&mut self, probe: Probe, algorithm: &str) -> Result<Vec<u8>, Box<Pending>> {
        let Probe { abs, stamp } = probe;
        let key = (abs, algorithm.to_string());
        if let (Some(s), Some((cached, d))) = (&stamp, self.entries.get(&key)) {
            if s == cached {
                self.hits += 1;
                return Ok(d.clone());
            }
        }
        self.misses += 1;
        Err(Box::new(Pending { key, stamp }))
    }

    /// Remembers a digest computed after a miss, if the file did not change
    /// while it was hashed and is not too fresh to trust its timestamps.
    pub fn put(&mut self, pending: Pending, digest: &[u8]) {
        let Pending { key, stamp } = pending;
        let now = std::fs::metadata(&key.0).ok().map(|m| Stamp::of(&m));
        match (stamp, now) {
            (Some(before), Some(after))
                if before == after
                    && after.mtime_ns <= self.started_ns - RACY_NS
                    && after.ctime_ns <= self.started_ns - RACY_NS =>
            {
                self.entries.insert(key, (after, digest.to_vec()));
                self.dirty = true;
            }
            _ => {
                self.dirty |= self.entries.remove(&key).is_some();
            }
        }
    }

    /// Writes the cache atomically (temporary file, then rename), unless
    /// nothing changed and the file exists.
    pub fn save(&self, path: &Path) -> Result<(), SignError> {
        if !self.dirty && path.is_file() {
            return Ok(());
        }
        let mut entries: Vec<Entry> = self
            .entries
            .iter()
            .map(|((p, a), (s, d))| Entry {
                path: p.clone(),
                algorithm: a.clone(),
                stamp: s.clone(),
                digest: hex::encode(d),
            })
            .collect();
        entries.sort_by(|a, b| (&a.path, &a.algorithm).cmp(&(&b.path, &b.algorithm)));
        let file = CacheFile {
            format: FORMAT.to_string(),
            entries,
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| SignError::Input(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| SignError::io(&tmp, &e))?;
        std::fs::rename(&tmp, path).map_err(|e| SignError::io(path, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_unchanged_files_only_and_never_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.bin");
        std::fs::write(&file, b"weights").unwrap();
        let store = dir.path().join("cache.json");
        // Signing "now": the file was written just now, so it is not stored.
        let (mut fresh, warning) = DigestCache::load(&store);
        assert!(warning.is_none());
        let p = fresh.get(&file, "sha256").unwrap_err();
        fresh.put(*p, b"d1");
        assert!(fresh.entries.is_empty());
        // Signing that began well after the last write: stored and reused.
        let mut cache = DigestCache {
            started_ns: now_ns() + 10 * RACY_NS,
            ..DigestCache::default()
        };
        let p = cache.get(&file, "sha256").unwrap_err();
        cache.put(*p, b"d1");
        assert_eq!(cache.get(&file, "sha256").ok(), Some(b"d1".to_vec()));
        assert!(cache.get(&file, "blake3").is_err(), "keyed by algorithm");
        cache.save(&store).unwrap();
        let (mut loaded, _) = DigestCache::load(&store);
        assert_eq!(loaded.get(&file, "sha256").ok(), Some(b"d1".to_vec()));
        // Same size, new content: the change time moves, so it is a miss.
        std::fs::write(&file, b"WEIGHTS").unwrap();
        assert!(loaded.get(&file, "sha256").is_err());
        // A corrupt cache is ignored with a warning.
        std::fs::write(&store, b"{not json").unwrap();
        let (empty, warning) = DigestCache::load(&store);
        assert!(empty.entries.is_empty() && warning.is_some());
    }
}
