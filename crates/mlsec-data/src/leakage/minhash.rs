//! MinHash signatures and banded locality-sensitive hashing for
//! near-duplicate short texts (Broder 1997; Leskovec, Rajaraman & Ullman,
//! ch. 3). Shingles are character k-grams of the normalised text, hashed to
//! 64 bits; the i-th permutation is the universal hash a_i·x + b_i
//! (wrapping 64-bit arithmetic), whose minimum over a document's shingles is
//! its i-th signature value. Candidate pairs from LSH are verified by the
//! exact Jaccard similarity of their shingle sets, so a reported pair is
//! never a hashing accident.

#[derive(Debug, Clone, Copy)]
pub struct MinHashParams {
    /// Characters per shingle.
    pub shingle: usize,
    pub permutations: usize,
    /// LSH bands; `permutations` must be a multiple.
    pub bands: usize,
    /// Pairs at or above this exact Jaccard similarity are near-duplicates.
    pub threshold: f64,
    pub seed: u64,
}

impl Default for MinHashParams {
    fn default() -> Self {
        MinHashParams {
            shingle: 5,
            permutations: 128,
            bands: 32,
            threshold: 0.5,
            seed: 20261122,
        }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Lower case, whitespace runs collapsed to one space, trimmed.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// The sorted, deduplicated 64-bit hashes of a text's character k-grams
/// (a text shorter than k is one shingle).
pub fn shingles(text: &str, k: usize) -> Vec<u64> {
    let norm = normalise(text);
    let chars: Vec<(usize, char)> = norm.char_indices().collect();
    let hash = |s: &str| {
        // FNV-1a over the bytes, then mixed: a fast, well-spread 64-bit hash.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in s.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        splitmix(h)
    };
    let mut out: Vec<u64> = if chars.len() <= k {
        vec![hash(&norm)]
    } else {
        (0..=chars.len() - k)
            .map(|i| {
                let start = chars[i].0;
                let end = chars.get(i + k).map_or(norm.len(), |c| c.0);
                hash(&norm[start..end])
            })
            .collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Exact Jaccard similarity of two sorted sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// The permutations' coefficients: odd multipliers, any offsets. The
/// permutations work on 32 bits (the low half of each shingle hash), so
/// that a signature is computed eight or sixteen lanes at a time.
pub fn coefficients(p: &MinHashParams) -> (Vec<u32>, Vec<u32>) {
    (0..p.permutations as u64)
        .map(|i| {
            let a = (splitmix(p.seed ^ (2 * i)) as u32) | 1;
            let b = splitmix(p.seed ^ (2 * i + 1)) as u32;
            (a, b)
        })
        .unzip()
}

/// A document's MinHash signature.
pub fn signature(shingles: &[u64], coef: &(Vec<u32>, Vec<u32>)) -> Vec<u32> {
    let (a, b) = coef;
    let mut sig = vec![u32::MAX; a.len()];
    for &x in shingles {
        let x = x as u32;
        // Plain slices of equal length: the compiler vectorises this loop.
        for ((s, &ai), &bi) in sig.iter_mut().zip(a.iter()).zip(b.iter()) {
            *s = (*s).min(ai.wrapping_mul(x).wrapping_add(bi));
        }
    }
    sig
}

fn band_key(sig: &[u32], band: usize, rows: usize) -> u64 {
    let mut h = band as u64;
    for &v in &sig[band * rows..(band + 1) * rows] {
        h = splitmix(h ^ u64::from(v));
    }
    h
}

/// Pairs (train index, test index, Jaccard) at or above the threshold:
/// LSH candidates verified exactly.
pub fn near_duplicates(
    train: &[String],
    test: &[String],
    p: &MinHashParams,
) -> Vec<(usize, usize, f64)> {
    let rows = p.permutations / p.bands.max(1);
    let coef = coefficients(p);
    let prepare = |docs: &[String]| -> Vec<(Vec<u64>, Vec<u32>)> {
        crate::stats::on_threads(docs.len(), |range| {
            range
                .map(|i| {
                    let sh = shingles(&docs[i], p.shingle);
                    let sig = signature(&sh, &coef);
                    (sh, sig)
                })
                .collect()
        })
    };
    let (tr, te) = (prepare(train), prepare(test));
    // One flat, sorted table of (band key, training document) instead of a
    // map of small vectors: millions of entries, two allocations.
    let mut table: Vec<(u64, u32)> = Vec::with_capacity(train.len() * p.bands);
    for (i, (_, sig)) in tr.iter().enumerate() {
        for band in 0..p.bands {
            table.push((band_key(sig, band, rows), i as u32));
        }
    }
    table.sort_unstable();
    let lookup = |key: u64| -> &[(u64, u32)] {
        let start = table.partition_point(|e| e.0 < key);
        let end = start + table[start..].partition_point(|e| e.0 == key);
        &table[start..end]
    };
    let found: Vec<Vec<(usize, usize, f64)>> = crate::stats::on_threads(te.len(), |range| {
        range
            .map(|j| {
                let (sh, sig) = &te[j];
                let mut cands: Vec<u32> = (0..p.bands)
                    .flat_map(|band| lookup(band_key(sig, band, rows)))
                    .map(|e| e.1)
                    .collect();
                cands.sort_unstable();
                cands.dedup();
                cands
                    .into_iter()
                    .filter_map(|i| {
                        let s = jaccard(&tr[i as usize].0, sh);
                        (s >= p.threshold).then_some((i as usize, j, s))
                    })
                    .collect()
            })
            .collect()
    });
    found.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_copies_are_found_and_unrelated_texts_are_not() {
        let train = vec![
            "The quick brown fox jumps over the lazy dog near the river bank".to_string(),
            "Completely different sentence about training data leakage audits".to_string(),
        ];
        let test = vec![
            "the quick  brown fox JUMPS over the lazy cat near the river bank".to_string(),
            "An unrelated line on gradient descent and learning rates".to_string(),
        ];
        let pairs = near_duplicates(&train, &test, &MinHashParams::default());
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert_eq!((pairs[0].0, pairs[0].1), (0, 0));
        assert!(pairs[0].2 > 0.7);
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
    }
}
