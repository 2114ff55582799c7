//! Isolation Forest (Liu, Ting & Zhou 2008) as scikit-learn builds it:
//! each tree is grown on `max_samples` rows drawn without replacement
//! (256 by default), to depth ⌈log₂ max_samples⌉; a node splits on a
//! feature drawn at random among those not constant there, at a threshold
//! drawn uniformly between the feature's minimum and maximum; a row's
//! path length is the depth of its leaf plus c(size of the leaf), and its
//! score is −2^(−E[path] / c(max_samples)) (`score_samples`; lower is more
//! anomalous). The random streams are ChaCha8 seeded per tree, so results
//! do not depend on the number of threads; they are not NumPy's, so
//! individual scores differ from scikit-learn's while the algorithm — and
//! so the detection quality — is the same.

use super::on_threads;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// c(n): the average path length of an unsuccessful search in a binary
/// search tree of n points, which normalises path lengths.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct IsolationForestParams {
    pub n_estimators: usize,
    pub max_samples: usize,
    pub seed: u64,
    /// Share of the training rows expected to be outliers; `None` is
    /// scikit-learn's `"auto"` (offset −0.5).
    pub contamination: Option<f64>,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_estimators: 100,
            max_samples: 256,
            seed: 0,
            contamination: None,
        }
    }
}

/// One node: a split (feature, threshold, index of the left child; the
/// right child follows it) or, with `feature == LEAF`, a leaf whose
/// `threshold` holds its path length.
#[derive(Debug, Clone, Copy)]
struct Node {
    feature: u32,
    left: u32,
    threshold: f64,
}

const LEAF: u32 = u32::MAX;

/// The forest flattened for scoring: every tree's nodes back to back,
/// field by field. A leaf points to itself with an infinite threshold, so a
/// row walks exactly `depth` steps in every tree without a branch, and rows
/// of a block walk side by side (independent loads the CPU overlaps).
#[derive(Debug, Clone)]
pub struct IsolationForest {
    roots: Vec<u32>,
    /// Nodes with absolute child indices (one load fetches a whole node).
    nodes: Vec<Node>,
    /// A leaf's path length: its depth plus c(rows that reached it).
    path: Vec<f64>,
    depth: usize,
    n_features: usize,
    max_samples: usize,
    /// Subtracted from `score_samples` by `decision_function`.
    pub offset: f64,
}

/// Rows scored together: each tree is walked for the whole block while it
/// sits in the first-level cache.
const BLOCK: usize = 64;

/// A uniform f64 in [0, 1) from 53 random bits.
fn uniform(rng: &mut rand_chacha::ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform index below `n` (Lemire's multiply-shift; the tiny bias for
/// n ≪ 2⁶⁴ is irrelevant here).
fn below(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

/// What growing one tree needs besides the rows at a node.
struct Grower<'a> {
    value: &'a (dyn Fn(usize, usize) -> f64 + Sync),
    d: usize,
    max_depth: usize,
    rng: rand_chacha::ChaCha8Rng,
    nodes: Vec<Node>,
}

impl Grower<'_> {
    fn grow(&mut self, rows: &mut [usize], depth: usize, at: usize) {
        let leaf = |n: usize| Node {
            feature: LEAF,
            left: 0,
            threshold: depth as f64 + average_path_length(n),
        };
        if depth >= self.max_depth || rows.len() <= 1 {
            self.nodes[at] = leaf(rows.len());
            return;
        }
        let (value, d) = (self.value, self.d);
        // Draw features without replacement until one is not constant here.
        let mut features: Vec<usize> = (0..d).collect();
        let mut remaining = d;
        let mut split = None;
        while remaining > 0 {
            let k = below(&mut self.rng, remaining);
            let f = features[k];
            features.swap(k, remaining - 1);
            remaining -= 1;
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &r in rows.iter() {
                let v = value(r, f);
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi > lo {
                let mut t = lo + uniform(&mut self.rng) * (hi - lo);
                if t >= hi {
                    t = lo;
                }
                split = Some((f, t));
                break;
            }
        }
        let Some((f, t)) = split else {
            self.nodes[at] = leaf(rows.len());
            return;
        };
        // Partition rows: x[f] <= t to the left.
        let mut i = 0;
        for j in 0..rows.len() {
            if value(rows[j], f) <= t {
                rows.swap(i, j);
                i += 1;
            }
        }
        let left = self.nodes.len();
        self.nodes.push(leaf(0));
        self.nodes.push(leaf(0));
        self.nodes[at] = Node {
            feature: f as u32,
            left: left as u32,
            threshold: t,
        };
        let (l, r) = rows.split_at_mut(i);
        self.grow(l, depth + 1, left);
        self.grow(r, depth + 1, left + 1);
    }
}

impl IsolationForest {
    /// Fits a forest on `rows × d` values stored row by row; NaN or
    /// infinite values are an error.
    pub fn fit(data: &[f64], d: usize, params: &IsolationForestParams) -> Result<Self, String> {
        if d == 0 || data.is_empty() || data.len() % d != 0 {
            return Err("Isolation Forest needs a non-empty table of rows × features".into());
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err("Isolation Forest input holds NaN or infinite values".into());
        }
        Self::fit_by(data.len() / d, d, &|r, f| data[r * d + f], params)
    }

    /// Fits a forest on feature columns, a NaN or infinite value replaced
    /// by its feature's `fill` (no row-major copy of the reference is made:
    /// growing the trees reads only `max_samples` rows per tree).
    pub fn fit_columns(
        columns: &[&[f64]],
        fill: &[f64],
        params: &IsolationForestParams,
    ) -> Result<Self, String> {
        let n = columns.first().map_or(0, |c| c.len());
        if columns.is_empty() || n == 0 || columns.iter().any(|c| c.len() != n) {
            return Err("Isolation Forest needs a non-empty table of rows × features".into());
        }
        let value = |r: usize, f: usize| {
            let v = columns[f][r];
            if v.is_finite() {
                v
            } else {
                fill[f]
            }
        };
        Self::fit_by(n, columns.len(), &value, params)
    }

    /// Grows the trees on `n` rows read through `value(row, feature)`,
    /// finite values only; then, with `contamination`, scores every row
    /// for the offset. A caller that cannot reach every row at once (a
    /// reference on disk) grows with [`IsolationForest::grow`], reading
    /// only [`IsolationForest::sampled_rows`], and sets the offset with
    /// [`IsolationForest::set_contamination_offset`].
    fn fit_by(
        n: usize,
        d: usize,
        value: &(dyn Fn(usize, usize) -> f64 + Sync),
        params: &IsolationForestParams,
    ) -> Result<Self, String> {
        let mut forest = Self::grow(n, d, value, params)?;
        if let Some(c) = params.contamination {
            let mut scores = forest.score_by(n, value);
            scores.sort_unstable_by(f64::total_cmp);
            forest.set_contamination_offset(&scores, c)?;
        }
        Ok(forest)
    }

    /// The rows of `0..n` tree `t` is grown on, drawn by the tree's own
    /// random stream, which growing the tree then goes on drawing from.
    fn tree_sample(
        n: usize,
        params: &IsolationForestParams,
        t: usize,
    ) -> (rand_chacha::ChaCha8Rng, Vec<usize>) {
        let max_samples = params.max_samples.min(n).max(1);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            params.seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        // Partial Fisher–Yates: `max_samples` distinct rows.
        let rows: Vec<usize> = if n <= 4 * max_samples {
            let mut all: Vec<usize> = (0..n).collect();
            for i in 0..max_samples {
                let j = i + below(&mut rng, n - i);
                all.swap(i, j);
            }
            all.truncate(max_samples);
            all
        } else {
            let mut seen = std::collections::HashSet::with_capacity(max_samples * 2);
            let mut out = Vec::with_capacity(max_samples);
            while out.len() < max_samples {
                let r = below(&mut rng, n);
                if seen.insert(r) {
                    out.push(r);
                }
            }
            out
        };
        (rng, rows)
    }

    /// Every row of `0..n` that growing a forest with `params` reads,
    /// ascending: at most `n_estimators × max_samples` of them, so a
    /// reference too large to hold need only have these rows gathered.
    pub fn sampled_rows(n: usize, params: &IsolationForestParams) -> Vec<usize> {
        let mut rows: Vec<usize> = on_threads(params.n_estimators, |range| {
            range
                .flat_map(|t| Self::tree_sample(n, params, t).1)
                .collect()
        });
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    /// Grows the trees reading only [`IsolationForest::sampled_rows`]
    /// through `value(row, feature)` (finite values); the offset is
    /// scikit-learn's "auto" (−0.5) whatever `params.contamination` says.
    pub fn grow(
        n: usize,
        d: usize,
        value: &(dyn Fn(usize, usize) -> f64 + Sync),
        params: &IsolationForestParams,
    ) -> Result<Self, String> {
        if n == 0 || d == 0 {
            return Err("Isolation Forest needs a non-empty table of rows × features".into());
        }
        let max_samples = params.max_samples.min(n).max(1);
        let max_depth = (max_samples.max(2) as f64).log2().ceil() as usize;
        let trees: Vec<Vec<Node>> = on_threads(params.n_estimators, |range| {
            range
                .map(|t| {
                    let (rng, mut rows) = Self::tree_sample(n, params, t);
                    let mut g = Grower {
                        value,
                        d,
                        max_depth,
                        rng,
                        nodes: vec![Node {
                            feature: LEAF,
                            left: 0,
                            threshold: 0.0,
                        }],
                    };
                    g.grow(&mut rows, 0, 0);
                    g.nodes
                })
                .collect()
        });
        let mut forest = IsolationForest {
            roots: Vec::with_capacity(trees.len()),
            nodes: Vec::new(),
            path: Vec::new(),
            depth: max_depth,
            n_features: d,
            max_samples,
            offset: -0.5,
        };
        for tree in &trees {
            let base = forest.nodes.len() as u32;
            forest.roots.push(base);
            for (i, node) in tree.iter().enumerate() {
                if node.feature == LEAF {
                    forest.nodes.push(Node {
                        feature: 0,
                        left: base + i as u32,
                        threshold: f64::INFINITY,
                    });
                    forest.path.push(node.threshold);
                } else {
                    forest.nodes.push(Node {
                        feature: node.feature,
                        left: base + node.left,
                        threshold: node.threshold,
                    });
                    forest.path.push(0.0);
                }
            }
        }
        Ok(forest)
    }

    /// scikit-learn's offset for `contamination`: that percentile of the
    /// training rows' scores, given ascending (`sorted_scores`).
    pub fn set_contamination_offset(
        &mut self,
        sorted_scores: &[f64],
        contamination: f64,
    ) -> Result<(), String> {
        if !(0.0..=0.5).contains(&contamination) {
            return Err(format!("contamination {contamination} is outside [0, 0.5]"));
        }
        self.offset = percentile(sorted_scores, 100.0 * contamination);
        Ok(())
    }

    /// Mean path lengths of a block of rows (row-major, `n_features` wide;
    /// finite values, since a leaf stops a row only by comparing false).
    fn block_paths(&self, rows: &[f64], out: &mut [f64]) {
        let d = self.n_features;
        let k = out.len();
        let mut at = [0u32; BLOCK];
        out.fill(0.0);
        for &root in &self.roots {
            at[..k].fill(root);
            for _ in 0..self.depth {
                for (row, i) in rows.chunks_exact(d).zip(at[..k].iter_mut()) {
                    let node = self.nodes[*i as usize];
                    *i = node.left + u32::from(row[node.feature as usize] > node.threshold);
                }
            }
            for (o, &i) in out.iter_mut().zip(&at[..k]) {
                *o += self.path[i as usize];
            }
        }
        let trees = self.roots.len() as f64;
        for o in out.iter_mut() {
            *o /= trees;
        }
    }

    /// Scores rows read through `value(row, feature)`, a block at a time
    /// on every core.
    fn score_by(&self, n: usize, value: &(dyn Fn(usize, usize) -> f64 + Sync)) -> Vec<f64> {
        let d = self.n_features;
        let norm = average_path_length(self.max_samples).max(f64::MIN_POSITIVE);
        let blocks = n.div_ceil(BLOCK);
        on_threads(blocks, |range| {
            let mut rows = vec![0.0; BLOCK * d];
            let mut paths = [0.0; BLOCK];
            let mut out = Vec::with_capacity(range.len() * BLOCK);
            for b in range {
                let start = b * BLOCK;
                let k = BLOCK.min(n - start);
                for r in 0..k {
                    for f in 0..d {
                        // Non-finite values walk as a plain comparison
                        // sends them (NaN left); none passes a leaf.
                        rows[r * d + f] = value(start + r, f);
                    }
                }
                self.block_paths(&rows[..k * d], &mut paths[..k]);
                out.extend(paths[..k].iter().map(|&h| -(2f64.powf(-h / norm))));
            }
            out
        })
    }

    /// scikit-learn's `score_samples`: −2^(−E[h(x)] / c(max_samples)).
    pub fn score_samples(&self, data: &[f64]) -> Result<Vec<f64>, String> {
        let d = self.n_features;
        if data.len() % d != 0 {
            return Err(format!("rows must have {d} features"));
        }
        Ok(self.score_by(data.len() / d, &|r, f| data[r * d + f]))
    }

    /// `score_samples` of rows held as columns (one slice per feature, all
    /// the same length), a non-finite value read as `fill[feature]`.
    pub fn score_columns(&self, columns: &[&[f64]], fill: &[f64]) -> Result<Vec<f64>, String> {
        let d = self.n_features;
        if columns.len() != d || fill.len() != d {
            return Err(format!("rows must have {d} features"));
        }
        let n = columns.first().map_or(0, |c| c.len());
        if columns.iter().any(|c| c.len() != n) {
            return Err("feature columns differ in length".into());
        }
        Ok(self.score_by(n, &|r, f| {
            let v = columns[f][r];
            if v.is_finite() {
                v
            } else {
                fill[f]
            }
        }))
    }

    /// `score_samples − offset`: negative for outliers.
    pub fn decision_function(&self, data: &[f64]) -> Result<Vec<f64>, String> {
        Ok(self
            .score_samples(data)?
            .into_iter()
            .map(|s| s - self.offset)
            .collect())
    }
}

/// NumPy's default (linear) percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Area under the ROC curve of `scores` (higher = more likely positive)
/// against boolean labels, ties counted half (Mann–Whitney).
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0usize);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if positive[k] {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    let np = positive.iter().filter(|&&p| p).count() as f64;
    let nn = positive.len() as f64 - np;
    if np == 0.0 || nn == 0.0 {
        return f64::NAN;
    }
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}
