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

/// The texts of one split, ready to be searched for near-copies of other
/// texts: each text's shingle set (kept to verify candidates exactly) and
/// one flat, sorted table of (band key, text) — millions of entries in two
/// allocations instead of a map of small vectors. The audit indexes the
/// test split, usually the smaller, and streams the training split past it.
pub struct TextIndex {
    params: MinHashParams,
    coef: (Vec<u32>, Vec<u32>),
    shingles: Vec<Vec<u64>>,
    /// The shingle sets' heap bytes, for [`TextIndex::held_bytes`].
    shingle_bytes: usize,
    table: Vec<(u64, u32)>,
    sorted: bool,
    /// Where the keys with each value of their top `prefix_bits` bits
    /// start in `table`: band keys are uniform hashes, so a lookup scans
    /// about one entry instead of binary-searching the table (the training
    /// split makes millions of lookups, nearly all misses).
    starts: Vec<usize>,
    prefix_bits: u32,
}

impl TextIndex {
    pub fn new(p: &MinHashParams) -> TextIndex {
        TextIndex {
            params: *p,
            coef: coefficients(p),
            shingles: Vec::new(),
            shingle_bytes: 0,
            table: Vec::new(),
            sorted: true,
            starts: vec![0, 0],
            prefix_bits: 0,
        }
    }

    fn rows_per_band(&self) -> usize {
        self.params.permutations / self.params.bands.max(1)
    }

    /// Shingles and signs `docs` on every core.
    fn prepare(&self, docs: &[String]) -> Vec<(Vec<u64>, Vec<u32>)> {
        crate::stats::on_threads(docs.len(), |range| {
            range
                .map(|i| {
                    let sh = shingles(&docs[i], self.params.shingle);
                    let sig = signature(&sh, &self.coef);
                    (sh, sig)
                })
                .collect()
        })
    }

    /// Adds `docs`, numbered on from the texts already indexed.
    pub fn add(&mut self, docs: &[String]) {
        let rows = self.rows_per_band();
        for (sh, sig) in self.prepare(docs) {
            let id = self.shingles.len() as u32;
            for band in 0..self.params.bands {
                self.table.push((band_key(&sig, band, rows), id));
            }
            self.shingle_bytes += sh.capacity() * std::mem::size_of::<u64>();
            self.shingles.push(sh);
        }
        self.sorted = false;
    }

    /// Bytes the index holds on the heap (what memory budgets count).
    pub fn held_bytes(&self) -> usize {
        use std::mem::size_of;
        self.shingle_bytes
            + self.shingles.capacity() * size_of::<Vec<u64>>()
            + self.table.capacity() * size_of::<(u64, u32)>()
            // Sealing adds about one prefix start per band key.
            + self.starts.capacity().max(self.table.len() + 1) * size_of::<usize>()
            + self.coef.0.capacity() * 2 * size_of::<u32>()
    }

    /// Texts indexed so far.
    pub fn len(&self) -> usize {
        self.shingles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shingles.is_empty()
    }

    /// Sorts the band table and indexes its key prefixes;
    /// [`TextIndex::matches`] needs it done.
    pub fn seal(&mut self) {
        if self.sorted {
            return;
        }
        self.table.sort_unstable();
        self.sorted = true;
        // One to two entries per prefix.
        let bits = self.table.len().max(2).ilog2().clamp(1, 32);
        self.prefix_bits = bits;
        self.starts = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for prefix in 0..=(1u64 << bits) {
            while at < self.table.len() && self.prefix(self.table[at].0) < prefix {
                at += 1;
            }
            self.starts.push(at);
        }
    }

    fn prefix(&self, key: u64) -> u64 {
        // No bits (an index never sealed with texts): every key in prefix 0.
        key.checked_shr(64 - self.prefix_bits).unwrap_or(0)
    }

    /// The indexed texts with this band key.
    fn lookup(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let p = self.prefix(key) as usize;
        let range = self.starts[p]..self.starts[p + 1];
        self.table[range]
            .iter()
            .filter(move |e| e.0 == key)
            .map(|e| e.1)
    }

    /// (index in `docs`, indexed text, Jaccard) for every pair at or above
    /// the threshold: LSH candidates verified exactly.
    pub fn matches(&self, docs: &[String]) -> Vec<(usize, usize, f64)> {
        assert!(self.sorted, "TextIndex::seal before matches");
        let rows = self.rows_per_band();
        crate::stats::on_threads(docs.len(), |range| {
            let mut found = Vec::new();
            let mut cands: Vec<u32> = Vec::new();
            for i in range {
                let sh = shingles(&docs[i], self.params.shingle);
                let sig = signature(&sh, &self.coef);
                cands.clear();
                for band in 0..self.params.bands {
                    cands.extend(self.lookup(band_key(&sig, band, rows)));
                }
                cands.sort_unstable();
                cands.dedup();
                for &j in &cands {
                    let s = jaccard(&sh, &self.shingles[j as usize]);
                    if s >= self.params.threshold {
                        found.push((i, j as usize, s));
                    }
                }
            }
            found
        })
    }
}

/// Pairs (train index, test index, Jaccard) at or above the threshold, in
/// test order: LSH candidates verified exactly.
pub fn near_duplicates(
    train: &[String],
    test: &[String],
    p: &MinHashParams,
) -> Vec<(usize, usize, f64)> {
    let mut index = TextIndex::new(p);
    index.add(test);
    index.seal();
    let mut pairs = index.matches(train);
    pairs.sort_by_key(|&(i, j, _)| (j, i));
    pairs
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
        // An index of no texts, sealed or not, matches nothing.
        let mut empty = TextIndex::new(&MinHashParams::default());
        assert!(empty.matches(&train).is_empty());
        empty.add(&[]);
        empty.seal();
        assert!(empty.matches(&train).is_empty());
        assert!(near_duplicates(&train, &[], &MinHashParams::default()).is_empty());
        assert_eq!((pairs[0].0, pairs[0].1), (0, 0));
        assert!(pairs[0].2 > 0.7);
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
    }
}
