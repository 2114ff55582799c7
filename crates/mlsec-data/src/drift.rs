//! The drift monitor: a stream cut into windows, each compared with the
//! reference per feature (two-sample KS, PSI) and jointly (kernel MMD with
//! a permutation p-value); the first window over a threshold raises the
//! alarm.

use crate::frame::Frame;
use crate::reference::SortedReference;
use crate::stats::{self, KsMethod, KsResult, MmdResult};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct DriftOptions {
    pub window: usize,
    /// A window drifts when a feature's KS statistic exceeds this.
    pub ks_max: f64,
    /// … or its PSI exceeds this.
    pub psi_max: f64,
    /// … or the MMD permutation p-value is below this (with `mmd`).
    pub mmd_alpha: f64,
    pub mmd: bool,
    /// Rows drawn from the reference and from each window for MMD.
    pub mmd_rows: usize,
    pub permutations: usize,
    pub psi_bins: usize,
    pub method: KsMethod,
    pub seed: u64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            window: 1000,
            ks_max: 0.15,
            psi_max: 0.25,
            mmd_alpha: 0.01,
            mmd: true,
            mmd_rows: 300,
            permutations: 200,
            psi_bins: 10,
            method: KsMethod::Auto,
            seed: 20261122,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub ks: KsResult,
    pub psi: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowDrift {
    pub window: usize,
    pub first_row: usize,
    pub rows: usize,
    pub features: Vec<FeatureDrift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mmd: Option<MmdResult>,
    pub drifted: bool,
    pub reasons: Vec<String>,
}

/// Row-major rows of the given columns, standardised with the
/// reference's means and deviations (NaN as the mean), for MMD.
fn standardised_rows(columns: &[&[f64]], rows: &[usize], mean: &[f64], sd: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len() * columns.len());
    for &r in rows {
        for (k, c) in columns.iter().enumerate() {
            let v = c[r];
            out.push(if v.is_nan() {
                0.0
            } else {
                (v - mean[k]) / sd[k]
            });
        }
    }
    out
}

pub(crate) fn sample_rows(n: usize, k: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    let k = k.min(n);
    for i in 0..k {
        let j = i + ((rng.next_u64() as u128 * (n - i) as u128) >> 64) as usize;
        all.swap(i, j);
    }
    all.truncate(k);
    all.sort_unstable();
    all
}

/// The mean and standard deviation of a column's numbers (1 where it has
/// no spread, so that standardising never divides by zero).
pub(crate) fn mean_and_deviation(c: &[f64]) -> (f64, f64) {
    let (mut n, mut sum) = (0usize, 0.0);
    for &x in c.iter().filter(|x| !x.is_nan()) {
        n += 1;
        sum += x;
    }
    let m = sum / n.max(1) as f64;
    let var = c
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| (x - m) * (x - m))
        .sum::<f64>()
        / n.max(1) as f64;
    (m, if var > 0.0 { var.sqrt() } else { 1.0 })
}

/// A reference as the monitor compares with it: whole in memory, or each
/// column sorted on disk ([`crate::reference`]) when it was larger than
/// the memory budget. All give the same results.
pub enum Reference<'a> {
    Whole(&'a Frame),
    /// A whole frame the monitor may sort in place once the stream has
    /// passed [`SORT_AFTER`] windows: each compared column keeps only its
    /// numbers, sorted, so that a window then costs O(window · log n)
    /// instead of a pass over the reference. The frame's columns are no
    /// longer row data afterwards.
    Sortable(&'a mut Frame),
    Sorted(&'a SortedReference),
}

/// Windows compared with a [`Reference::Sortable`] frame before it is
/// sorted. Sorting costs about as much as a few dozen passes of the
/// unsorted comparison (`stats::ranked`, one pass a window), so a short
/// stream never pays for it and a long one loses at most these passes.
pub const SORT_AFTER: usize = 8;

impl Reference<'_> {
    pub fn names(&self) -> &[String] {
        match self {
            Reference::Whole(f) => &f.names,
            Reference::Sortable(f) => &f.names,
            Reference::Sorted(s) => &s.names,
        }
    }

    pub fn rows(&self) -> usize {
        match self {
            Reference::Whole(f) => f.rows,
            Reference::Sortable(f) => f.rows,
            Reference::Sorted(s) => s.rows,
        }
    }

    /// Column `k`: every value in row order, or its numbers sorted.
    fn column(&self, k: usize) -> &[f64] {
        match self {
            Reference::Whole(f) => &f.columns[k],
            Reference::Sortable(f) => &f.columns[k],
            Reference::Sorted(s) => s.column(k),
        }
    }

    /// Sorts the numbers of the columns `indices` of a sortable frame in
    /// place, one share of them per core; `false` for other references.
    fn sort_in_place(&mut self, indices: &[usize]) -> bool {
        let Reference::Sortable(f) = self else {
            return false;
        };
        stats::sorted::sort_columns(&mut f.columns, indices);
        true
    }
}

impl<'a> From<&'a crate::reference::ReferenceData> for Reference<'a> {
    fn from(r: &'a crate::reference::ReferenceData) -> Self {
        match r {
            crate::reference::ReferenceData::Whole(f) => Reference::Whole(f),
            crate::reference::ReferenceData::Sorted(s) => Reference::Sorted(s),
        }
    }
}

impl<'a> From<&'a mut crate::reference::ReferenceData> for Reference<'a> {
    /// A whole reference the monitor may sort in place.
    fn from(r: &'a mut crate::reference::ReferenceData) -> Self {
        match r {
            crate::reference::ReferenceData::Whole(f) => Reference::Sortable(f),
            crate::reference::ReferenceData::Sorted(s) => Reference::Sorted(s),
        }
    }
}

/// Compares a whole in-memory `stream` with `reference`, window by window.
pub fn monitor(
    reference: &Frame,
    stream: &Frame,
    opts: &DriftOptions,
) -> Result<Vec<WindowDrift>, String> {
    let whole = std::iter::once(Ok(stream.clone()));
    monitor_chunks(
        Reference::Whole(reference),
        &stream.names,
        whole,
        opts,
        |_| {},
    )
}

/// The rows of the reference MMD compares with, drawn with `rng` as
/// [`monitor_chunks`] draws them (a sorted reference read them in its
/// second pass: [`SortedReference::prepare_mmd`]).
pub fn mmd_reference_rows(rows: usize, opts: &DriftOptions) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    sample_rows(rows, opts.mmd_rows, &mut rng)
}

/// Compares each window of a stream that arrives in chunks (each with the
/// features `stream_names`, in order) with `reference`, over the features
/// both share (by name). Only the rows of the window being compared are
/// held, so the stream may be larger than memory; `on_window` sees each
/// result as soon as it is known.
pub fn monitor_chunks(
    mut reference: Reference<'_>,
    stream_names: &[String],
    chunks: impl Iterator<Item = crate::Result<Frame>>,
    opts: &DriftOptions,
    mut on_window: impl FnMut(&WindowDrift),
) -> Result<Vec<WindowDrift>, String> {
    if opts.window == 0 {
        return Err("the window must hold at least one row".into());
    }
    let names = reference.names().to_vec();
    let shared: Vec<(usize, usize)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((i, stream_names.iter().position(|m| m == n)?)))
        .collect();
    if shared.is_empty() {
        return Err("the reference and the stream share no numeric feature".into());
    }
    /// The shared columns, borrowed for one window at a time (a sortable
    /// frame is sorted in place between windows).
    fn columns_of<'r>(r: &'r Reference<'_>, shared: &[(usize, usize)]) -> Vec<&'r [f64]> {
        shared.iter().map(|&(i, _)| r.column(i)).collect()
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    // MMD standardises by the reference's mean and deviation: two passes
    // over every reference value, skipped when MMD is off (they cost KS a
    // fifth of its time), spread over the cores when it is on. A sorted
    // reference computed them, in the same order, in its second pass.
    let (mean, sd, ref_mmd) = match &reference {
        _ if !opts.mmd => (Vec::new(), Vec::new(), None),
        Reference::Whole(_) | Reference::Sortable(_) => {
            let ref_cols = columns_of(&reference, &shared);
            let (mean, sd): (Vec<f64>, Vec<f64>) = stats::on_threads(ref_cols.len(), |range| {
                range.map(|k| mean_and_deviation(ref_cols[k])).collect()
            })
            .into_iter()
            .unzip();
            let rows = sample_rows(reference.rows(), opts.mmd_rows, &mut rng);
            let x = standardised_rows(&ref_cols, &rows, &mean, &sd);
            (mean, sd, Some(x))
        }
        Reference::Sorted(s) => {
            let rows = sample_rows(reference.rows(), opts.mmd_rows, &mut rng);
            let m = s
                .mmd
                .as_ref()
                .filter(|m| m.rows == rows)
                .ok_or("the sorted reference was not read for these MMD options")?;
            let width = names.len();
            let pick = |all: &[f64]| -> Vec<f64> { shared.iter().map(|&(i, _)| all[i]).collect() };
            let (mean, sd) = (pick(&m.mean), pick(&m.sd));
            let sampled: Vec<Vec<f64>> = shared
                .iter()
                .map(|&(i, _)| m.values.iter().skip(i).step_by(width).copied().collect())
                .collect();
            let columns: Vec<&[f64]> = sampled.iter().map(Vec::as_slice).collect();
            let all: Vec<usize> = (0..rows.len()).collect();
            let x = standardised_rows(&columns, &all, &mean, &sd);
            (mean, sd, Some(x))
        }
    };
    let mut sorted = matches!(reference, Reference::Sorted(_));
    let shared_indices: Vec<usize> = shared.iter().map(|&(i, _)| i).collect();
    let compare_window = |ref_cols: &[&[f64]],
                          sorted: bool,
                          window: &[&[f64]],
                          first_row: usize,
                          w: usize,
                          rng: &mut _| {
        let rows = window.first().map_or(0, |c| c.len());
        let compared = stats::on_threads(shared.len(), |range| {
            range
                .map(|k| {
                    if sorted {
                        stats::sorted::compare_sorted(
                            ref_cols[k],
                            window[k],
                            opts.method,
                            opts.psi_bins,
                        )
                    } else {
                        stats::compare(ref_cols[k], window[k], opts.method, opts.psi_bins)
                    }
                })
                .collect()
        });
        let mut features = Vec::with_capacity(shared.len());
        let mut reasons = Vec::new();
        for (&(i, _), c) in shared.iter().zip(compared) {
            let name = names[i].clone();
            let Some(stats::Comparison { ks, psi }) = c else {
                continue;
            };
            if ks.statistic > opts.ks_max {
                reasons.push(format!("{name}: KS {:.4} > {}", ks.statistic, opts.ks_max));
            }
            if psi > opts.psi_max {
                reasons.push(format!("{name}: PSI {psi:.4} > {}", opts.psi_max));
            }
            features.push(FeatureDrift {
                feature: name,
                ks,
                psi,
            });
        }
        let mmd = match &ref_mmd {
            Some(x) if rows >= 2 => {
                let picked = sample_rows(rows, opts.mmd_rows, rng);
                let y = standardised_rows(window, &picked, &mean, &sd);
                let r =
                    stats::mmd_test(x, &y, shared.len(), opts.permutations, opts.seed ^ w as u64)?;
                if r.pvalue < opts.mmd_alpha {
                    reasons.push(format!("MMD p-value {:.4} < {}", r.pvalue, opts.mmd_alpha));
                }
                Some(r)
            }
            _ => None,
        };
        Ok::<_, String>(WindowDrift {
            window: w,
            first_row,
            rows,
            features,
            mmd,
            drifted: !reasons.is_empty(),
            reasons,
        })
    };
    // The stream's shared columns, rows not yet compared.
    let mut pending: Vec<Vec<f64>> = vec![Vec::new(); shared.len()];
    let mut first_row = 0;
    let mut out = Vec::new();
    let mut chunks = chunks.peekable();
    while let Some(chunk) = chunks.next() {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if chunk.columns.len() != stream_names.len() || chunk.names.as_slice() != stream_names {
            return Err("a chunk of the stream does not have the stream's features".into());
        }
        for (p, &(_, j)) in pending.iter_mut().zip(&shared) {
            p.extend_from_slice(&chunk.columns[j]);
        }
        let last = chunks.peek().is_none();
        let mut start = 0;
        let held = pending[0].len();
        while held - start >= opts.window || (last && start < held) {
            let end = (start + opts.window).min(held);
            if !sorted && out.len() == SORT_AFTER {
                sorted = reference.sort_in_place(&shared_indices);
            }
            let window: Vec<&[f64]> = pending.iter().map(|c| &c[start..end]).collect();
            let ref_cols = columns_of(&reference, &shared);
            let result =
                compare_window(&ref_cols, sorted, &window, first_row, out.len(), &mut rng)?;
            on_window(&result);
            out.push(result);
            first_row += end - start;
            start = end;
        }
        for p in &mut pending {
            p.drain(..start);
        }
    }
    Ok(out)
}

use mlsec_core::{OwaspMl, Rule, RuleDocs, Severity, Stage};

pub static DISTRIBUTION_DRIFT: Rule = Rule {
    code: "MLS-DATA-007",
    name: "distribution-drift",
    summary: "A window of incoming data no longer looks like the trusted reference.",
    default_severity: Severity::Medium,
    stage: Stage::Collection,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects:
            "`mlsec data drift` cuts a stream into windows and compares each with the \
            reference: per feature the two-sample Kolmogorov–Smirnov statistic (p-value as \
            `scipy.stats.ks_2samp` computes it) and the population stability index, and jointly a \
            kernel MMD test with a permutation p-value. A window over a threshold is reported, \
            the first one as the alarm.",
        why_it_matters: "Poisoning that injects off-distribution samples, a broken upstream \
            feature pipeline, or a population that changed all move the input distribution; a \
            model trained or monitored on it silently degrades or learns the attacker's points.",
        example: "Window 3 (rows 3000–3999) of `stream.csv` after a unit change in `amount`: \
            `amount: KS 0.4120 > 0.15; amount: PSI 2.1035 > 0.25`.",
    },
};

pub static OUTLIER_ROWS: Rule = Rule {
    code: "MLS-DATA-008",
    name: "outlier-rows",
    summary: "Rows of a batch are isolated far more easily than the reference's rows.",
    default_severity: Severity::Medium,
    stage: Stage::Collection,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects:
            "An Isolation Forest fit on the trusted reference (scikit-learn's algorithm: \
            100 trees of 256-row subsamples) scores every row of the batch; rows below the offset \
            (−0.5, a contamination quantile, or a threshold) are listed, most anomalous first.",
        why_it_matters: "Injected poison points are usually off the data manifold: a few rows far \
            from everything else can move a decision boundary or plant a backdoor trigger. They \
            should be reviewed or quarantined before training, not averaged in.",
        example: "`batch.csv` with 50 injected rows: `48 of 1000 rows score below -0.5000 (most \
            anomalous: row 967 at -0.7412)`.",
    },
};
