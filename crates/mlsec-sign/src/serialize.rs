//! Turning a model folder into the list of (name, digest) resources that
//! OpenSSF model-signing v1 signs: the walk, the ignore rules, `files` and
//! `shards` serialisation, the three hash types, and the ordering that feeds
//! the subject digest (docs/signing.md; `shared/reference/signing/FORMAT.md` A1–A4).

use crate::SignError;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::{Path, PathBuf};

/// Paths every model-signing verifier ignores (relative to the model root).
pub const DEFAULT_IGNORES: &[&str] = &[".git", ".gitattributes", ".github", ".gitignore"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashType {
    Sha256,
    Blake2b,
    Blake3,
}

impl HashType {
    pub fn name(self) -> &'static str {
        match self {
            HashType::Sha256 => "sha256",
            HashType::Blake2b => "blake2b",
            HashType::Blake3 => "blake3",
        }
    }

    pub fn parse(s: &str) -> Option<HashType> {
        match s {
            "sha256" => Some(HashType::Sha256),
            "blake2b" | "blake2" => Some(HashType::Blake2b),
            "blake3" => Some(HashType::Blake3),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashType::Sha256 => sha2::Sha256::digest(data).to_vec(),
            // Python's hashlib.blake2b() default: BLAKE2b-512.
            HashType::Blake2b => blake2::Blake2b512::digest(data).to_vec(),
            HashType::Blake3 => blake3::hash(data).as_bytes().to_vec(),
        }
    }
}

/// How the model is cut into resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// One digest per file.
    Files,
    /// Each file cut into `shard_size`-byte pieces (sha256 only).
    Shards { shard_size: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialization {
    pub method: Method,
    pub hash_type: HashType,
    pub allow_symlinks: bool,
    /// Extra ignored paths, relative to the model root, `/`-separated.
    pub ignore_paths: Vec<String>,
}

impl Default for Serialization {
    fn default() -> Self {
        Serialization {
            method: Method::Files,
            hash_type: HashType::Sha256,
            allow_symlinks: false,
            ignore_paths: Vec::new(),
        }
    }
}

impl Serialization {
    /// The resource `algorithm` string.
    pub fn algorithm(&self) -> String {
        match self.method {
            Method::Files => self.hash_type.name().to_string(),
            Method::Shards { shard_size } => format!("sha256-sharded-{shard_size}"),
        }
    }
}

/// One signed resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub algorithm: String,
    pub digest: Vec<u8>,
}

/// Sort key: path components compared by code point, then shard start, end.
/// (Not byte-wise string order: `tokenizer/vocab.txt` sorts before `tokenizer.json`.)
pub fn order_key(name: &str) -> (Vec<String>, u64, u64) {
    let (path, start, end) = split_shard(name);
    (path.split('/').map(str::to_string).collect(), start, end)
}

fn split_shard(name: &str) -> (&str, u64, u64) {
    let mut parts = name.rsplitn(3, ':');
    let (Some(end), Some(start), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return (name, 0, 0);
    };
    match (start.parse(), end.parse()) {
        (Ok(s), Ok(e)) => (path, s, e),
        _ => (name, 0, 0),
    }
}

/// Whether a resource name is safe to join to a model root: relative, `/`
/// separated, no `..` or empty component (upstream model-signing PR #647).
pub fn is_safe_name(name: &str) -> bool {
    let (path, _, _) = split_shard(name);
    path == "."
        || (!path.starts_with('/')
            && !path.contains('\\')
            && path
                .split('/')
                .all(|c| !c.is_empty() && c != ".." && c != "."))
}

/// The files of a model, relative names sorted, after the ignore rules.
pub fn walk(
    root: &Path,
    ser: &Serialization,
    extra_ignores: &[String],
) -> Result<Vec<(String, PathBuf)>, SignError> {
    let meta = std::fs::symlink_metadata(root).map_err(|e| SignError::io(root, &e))?;
    if meta.is_file() {
        return Ok(vec![(".".to_string(), root.to_path_buf())]);
    }
    if !meta.is_dir() {
        return Err(SignError::Input(format!(
            "{}: not a file or folder",
            root.display()
        )));
    }
    let ignores: Vec<String> = DEFAULT_IGNORES
        .iter()
        .map(|s| s.to_string())
        .chain(ser.ignore_paths.iter().cloned())
        .chain(extra_ignores.iter().cloned())
        .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect();
    let ignored = |rel: &str| {
        ignores
            .iter()
            .any(|i| rel == i || rel.starts_with(&format!("{i}/")))
    };
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| SignError::io(&dir, &e))? {
            let entry = entry.map_err(|e| SignError::io(&dir, &e))?;
            let name = entry.file_name().into_string().map_err(|n| {
                SignError::Input(format!("{}: file name {n:?} is not UTF-8", dir.display()))
            })?;
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if ignored(&rel) {
                continue;
            }
            let ty = entry
                .file_type()
                .map_err(|e| SignError::io(&entry.path(), &e))?;
            if ty.is_symlink() {
                if !ser.allow_symlinks {
                    return Err(SignError::Input(format!("{rel}: symbolic links are not allowed (use --allow-symlinks to hash their targets)")));
                }
                let target = std::fs::metadata(entry.path())
                    .map_err(|e| SignError::io(&entry.path(), &e))?;
                if target.is_dir() {
                    stack.push((entry.path(), rel));
                } else {
                    out.push((rel, entry.path()));
                }
            } else if ty.is_dir() {
                stack.push((entry.path(), rel));
            } else if ty.is_file() {
                out.push((rel, entry.path()));
            }
        }
    }
    out.sort_by_cached_key(|(name, _)| order_key(name));
    Ok(out)
}

/// Hashes files into resources, on every core: whole files are spread over
/// threads, and shards of large files are hashed in parallel too. Files are
/// memory-mapped, so hashing runs at the page cache's speed.
pub fn hash(files: &[(String, PathBuf)], ser: &Serialization) -> Result<Vec<Resource>, SignError> {
    if ser.method == Method::Files {
        return hash_files(files, ser);
    }
    // Shards: every file is mapped once and its shards spread over threads.
    let mut maps = Vec::with_capacity(files.len());
    for (_, path) in files {
        maps.push(mlsec_core::file_bytes::read(path).map_err(|e| SignError::io(path, &e))?);
    }
    let mut work: Vec<(usize, u64, u64)> = Vec::new();
    let Method::Shards { shard_size } = ser.method else {
        unreachable!("files handled above")
    };
    let size = shard_size.max(1);
    for (i, m) in maps.iter().enumerate() {
        let len = m.len() as u64;
        let mut start = 0;
        while start < len {
            let end = (start + size).min(len);
            work.push((i, start, end));
            start = end;
        }
    }
    let algorithm = ser.algorithm();
    let digests = parallel(work.len(), |k| {
        let (i, start, end) = work[k];
        Ok(ser.hash_type.digest(&maps[i][start as usize..end as usize]))
    })?;
    let mut out: Vec<Resource> = work
        .iter()
        .zip(digests)
        .map(|(&(i, start, end), digest)| Resource {
            name: format!("{}:{start}:{end}", files[i].0),
            algorithm: algorithm.clone(),
            digest,
        })
        .collect();
    out.sort_by_cached_key(|r| order_key(&r.name));
    Ok(out)
}

/// [`hash`] with a digest cache: unchanged files cost one `stat`. Shards
/// are always hashed (the cache holds whole-file digests).
pub fn hash_cached(
    files: &[(String, PathBuf)],
    ser: &Serialization,
    cache: &mut crate::cache::DigestCache,
) -> Result<Vec<Resource>, SignError> {
    if ser.method != Method::Files {
        return hash(files, ser);
    }
    let algorithm = ser.algorithm();
    let mut digests: Vec<Option<Vec<u8>>> = vec![None; files.len()];
    // `stat` every file on all cores, then consult the cache in order.
    let probes: Vec<crate::cache::Probe> = {
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let chunk = files.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|(_, p)| crate::cache::Probe::of(p))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    if probes.len() != files.len() {
        return hash(files, ser);
    }
    let mut misses = Vec::new();
    for (i, probe) in probes.into_iter().enumerate() {
        match cache.lookup(probe, &algorithm) {
            Ok(d) => digests[i] = Some(d),
            Err(pending) => misses.push((i, pending)),
        }
    }
    let to_hash: Vec<(String, PathBuf)> = misses.iter().map(|(i, _)| files[*i].clone()).collect();
    let fresh = hash_files(&to_hash, ser)?;
    for ((i, pending), r) in misses.into_iter().zip(fresh) {
        cache.put(*pending, &r.digest);
        digests[i] = Some(r.digest);
    }
    Ok(resources(
        files,
        &algorithm,
        digests.into_iter().map(Option::unwrap_or_default),
    ))
}

/// One resource per file, in order, from its digest.
fn resources(
    files: &[(String, PathBuf)],
    algorithm: &str,
    digests: impl Iterator<Item = Vec<u8>>,
) -> Vec<Resource> {
    files
        .iter()
        .zip(digests)
        .map(|((name, _), digest)| Resource {
            name: name.clone(),
            algorithm: algorithm.to_string(),
            digest,
        })
        .collect()
}

/// Files mode: one digest per file. Small files are read into a per-thread
/// buffer (a memory map costs more system calls than a 1 KiB file takes to
/// hash); files over 1 MiB are mapped.
fn hash_files(
    files: &[(String, PathBuf)],
    ser: &Serialization,
) -> Result<Vec<Resource>, SignError> {
    const MAP_ABOVE: u64 = 1 << 20;
    let algorithm = ser.algorithm();
    let digests = parallel(files.len(), |k| {
        use std::io::Read;
        let path = &files[k].1;
        let mut f = std::fs::File::open(path).map_err(|e| SignError::io(path, &e))?;
        let mut buf = Vec::with_capacity(16 << 10);
        (&mut f)
            .take(MAP_ABOVE + 1)
            .read_to_end(&mut buf)
            .map_err(|e| SignError::io(path, &e))?;
        if buf.len() as u64 <= MAP_ABOVE {
            return Ok(ser.hash_type.digest(&buf));
        }
        drop(buf);
        let bytes = mlsec_core::file_bytes::read(path).map_err(|e| SignError::io(path, &e))?;
        Ok(ser.hash_type.digest(&bytes))
    })?;
    Ok(resources(files, &algorithm, digests.into_iter()))
}

/// One job's result, filled in by whichever thread ran it.
type Slot = std::sync::Mutex<Option<Result<Vec<u8>, SignError>>>;

/// Runs `job(0..n)` on every core, results in index order.
fn parallel(
    n: usize,
    job: impl Fn(usize) -> Result<Vec<u8>, SignError> + Sync,
) -> Result<Vec<Vec<u8>>, SignError> {
    let results: Vec<Slot> = (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if k >= n {
                    break;
                }
                let r = job(k);
                if let Ok(mut slot) = results[k].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(SignError::Input("hashing worker failed".into())))
        })
        .collect()
}

/// SHA-256 over the concatenated raw digests, in resource order: the
/// statement's subject digest.
pub fn subject_digest(resources: &[Resource]) -> Vec<u8> {
    let mut h = sha2::Sha256::new();
    for r in resources {
        h.update(&r.digest);
    }
    h.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_order_is_not_string_order() {
        let mut names = vec![
            "tokenizer.json",
            "tokenizer/vocab.txt",
            "tokenizer/special/merges.txt",
            "config.json",
        ];
        names.sort_by_key(|n| order_key(n));
        assert_eq!(
            names,
            [
                "config.json",
                "tokenizer/special/merges.txt",
                "tokenizer/vocab.txt",
                "tokenizer.json"
            ]
        );
        let mut shards = [
            "w.bin:1048576:1049810",
            "w.bin:262144:524288",
            "w.bin:0:262144",
        ];
        shards.sort_by_key(|n| order_key(n));
        assert_eq!(shards[0], "w.bin:0:262144");
        assert_eq!(shards[2], "w.bin:1048576:1049810");
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in ["../etc/passwd", "/abs", "a/../b", "a//b", "a\\b", "./x"] {
            assert!(!is_safe_name(bad), "{bad}");
        }
        for ok in ["config.json", "tokenizer/vocab.txt", "w.bin:0:10", "."] {
            assert!(is_safe_name(ok), "{ok}");
        }
    }
}
