//! What row screens (the gate's outliers and label screens, `data
//! outliers`) read of a reference: each screened
//! feature's median (what fills a gap), the rows the Isolation Forest and
//! the label screen sample, and — for the label screen — each feature's
//! mean and deviation.
//!
//! A reference held in memory gives all of it directly. One sorted on disk
//! ([`crate::reference`], past `--reference-memory`) gives its medians and
//! sums from the sorted columns and the rest from a second pass over the
//! file, which gathers only the sampled rows (at most trees × 256 for the
//! forest plus the label screen's sample); a contamination offset, which
//! scores every reference row, takes a third. Both paths do the same
//! arithmetic in the same order, so a gate's report does not depend on the
//! memory budget.

use crate::error::Result as DataResult;
use crate::reference::{ColumnSorter, ReferenceData, ReferenceOptions, SortedColumns};
use crate::stats::{IsolationForest, IsolationForestParams};
use crate::stream::FrameChunks;

/// Opens the reference again, for the passes after the first.
pub type Reopen<'a> = &'a dyn Fn() -> DataResult<FrameChunks>;

/// The reference rows the row screens read, and the statistics they need.
pub struct ReferenceRows<'a> {
    pub n: usize,
    /// The screened features, as indices into the reference's features.
    features: Vec<usize>,
    /// Per screened feature: the median of its finite values.
    pub fill: Vec<f64>,
    /// Per screened feature: mean and deviation with gaps read as `fill`
    /// (only when the label screen runs).
    pub moments: Option<(Vec<f64>, Vec<f64>)>,
    held: Held<'a>,
}

enum Held<'a> {
    All {
        columns: Vec<&'a [f64]>,
        labels: Option<&'a [String]>,
    },
    /// The sampled rows (ascending), their filled values row-major over
    /// the screened features, and their labels (when kept).
    Sampled {
        rows: Vec<usize>,
        values: Vec<f64>,
        labels: Vec<String>,
    },
}

/// What the row screens will sample.
pub struct Wanted<'p> {
    pub forest: Option<&'p IsolationForestParams>,
    /// The label screen's sample size (`max_reference`), when it runs.
    pub neighbours: Option<usize>,
}

impl<'a> ReferenceRows<'a> {
    /// Reads what the screens of `wanted` need of the reference's
    /// `features`; a reference on disk is read again through `reopen`.
    pub fn read(
        reference: &'a ReferenceData,
        features: Vec<usize>,
        wanted: &Wanted,
        reopen: Reopen,
    ) -> Result<ReferenceRows<'a>, String> {
        match reference {
            ReferenceData::Whole(f) => {
                let columns: Vec<&[f64]> = features.iter().map(|&k| &f.columns[k][..]).collect();
                // One column per core: each median copies and selects.
                let fill: Vec<f64> = crate::stats::on_threads_each(columns.len(), |i| {
                    crate::frame::finite_median(columns[i])
                });
                let moments = wanted.neighbours.map(|_| {
                    let mut squares = vec![0.0; columns.len()];
                    let mean: Vec<f64> = columns
                        .iter()
                        .zip(&fill)
                        .map(|(c, &fill)| {
                            let (mut finite, mut sum) = (0usize, 0.0f64);
                            for &x in c.iter().filter(|x| x.is_finite()) {
                                finite += 1;
                                sum += x;
                            }
                            filled_mean(f.rows, (finite, sum), fill)
                        })
                        .collect();
                    for (i, c) in columns.iter().enumerate() {
                        add_squares(&mut squares[i], c, fill[i], mean[i]);
                    }
                    (mean.clone(), deviations(&squares, f.rows))
                });
                Ok(ReferenceRows {
                    n: f.rows,
                    features,
                    fill,
                    moments,
                    held: Held::All {
                        columns,
                        labels: f.labels.as_deref(),
                    },
                })
            }
            ReferenceData::Sorted(s) => {
                let n = s.rows;
                let fill: Vec<f64> = features.iter().map(|&k| s.finite_median(k)).collect();
                let mean: Vec<f64> = features
                    .iter()
                    .zip(&fill)
                    .map(|(&k, &fill)| filled_mean(n, s.finite_sum(k), fill))
                    .collect();
                let mut rows = wanted
                    .forest
                    .map(|p| IsolationForest::sampled_rows(n, p))
                    .unwrap_or_default();
                let labelled = wanted.neighbours.is_some() && s.label_counts.is_some();
                if let Some(max) = wanted.neighbours {
                    rows.extend(neighbour_rows(n, max));
                    rows.sort_unstable();
                    rows.dedup();
                }
                let d = features.len();
                let mut squares = vec![0.0; d];
                let mut values = Vec::with_capacity(rows.len() * d);
                let mut labels = Vec::new();
                let mut next = 0usize;
                s.read_again(reopen, |chunk, first| {
                    if wanted.neighbours.is_some() {
                        for (i, &k) in features.iter().enumerate() {
                            add_squares(&mut squares[i], &chunk.columns[k], fill[i], mean[i]);
                        }
                    }
                    while let Some(&r) = rows.get(next) {
                        if r >= first + chunk.rows {
                            break;
                        }
                        for (i, &k) in features.iter().enumerate() {
                            values.push(filled(chunk.columns[k][r - first], fill[i]));
                        }
                        if labelled {
                            let l = chunk.labels.as_ref().and_then(|l| l.get(r - first));
                            labels.push(l.cloned().unwrap_or_default());
                        }
                        next += 1;
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
                let moments = wanted.neighbours.map(|_| (mean, deviations(&squares, n)));
                Ok(ReferenceRows {
                    n,
                    features,
                    fill,
                    moments,
                    held: Held::Sampled {
                        rows,
                        values,
                        labels,
                    },
                })
            }
        }
    }

    /// Row `r`'s value of screened feature `c`, a gap read as its fill;
    /// `r` is a row the screens sample.
    pub fn value(&self, r: usize, c: usize) -> f64 {
        match &self.held {
            Held::All { columns, .. } => filled(columns[c][r], self.fill[c]),
            Held::Sampled { rows, values, .. } => {
                values[self.sampled(rows, r) * self.features.len() + c]
            }
        }
    }

    /// Row `r`'s label; `r` is a row the label screen samples.
    pub fn label(&self, r: usize) -> &str {
        match &self.held {
            Held::All { labels, .. } => labels.map_or("", |l| l[r].as_str()),
            Held::Sampled { rows, labels, .. } => {
                labels.get(self.sampled(rows, r)).map_or("", String::as_str)
            }
        }
    }

    fn sampled(&self, rows: &[usize], r: usize) -> usize {
        rows.binary_search(&r)
            .expect("only sampled rows are read from a reference on disk")
    }

    /// The forest grown on these rows, its offset set from every
    /// reference row's score when `params` has a contamination.
    pub fn fit_forest(
        &self,
        reference: &ReferenceData,
        params: &IsolationForestParams,
        reopen: Reopen,
        options: &ReferenceOptions,
    ) -> Result<IsolationForest, String> {
        let mut forest =
            IsolationForest::grow(self.n, self.fill.len(), &|r, c| self.value(r, c), params)?;
        if let Some(c) = params.contamination {
            let scores = self.sorted_scores(reference, &forest, reopen, options)?;
            forest.set_contamination_offset(scores.column(0), c)?;
        }
        Ok(forest)
    }

    /// Every reference row's score under `forest`, ascending (for a
    /// contamination offset): scored where they lie, or chunk by chunk in
    /// a third pass, held or sorted on disk within the budget `options`.
    pub fn sorted_scores(
        &self,
        reference: &ReferenceData,
        forest: &IsolationForest,
        reopen: Reopen,
        options: &ReferenceOptions,
    ) -> Result<SortedColumns, String> {
        let mut sorter = ColumnSorter::new(1, options);
        match (reference, &self.held) {
            (ReferenceData::Sorted(s), _) => s
                .read_again(reopen, |chunk, _| {
                    let columns: Vec<&[f64]> = self
                        .features
                        .iter()
                        .map(|&k| &chunk.columns[k][..])
                        .collect();
                    let scores = forest
                        .score_columns(&columns, &self.fill)
                        .map_err(crate::error::DataError::malformed)?;
                    sorter.push(0, &scores)
                })
                .map_err(|e| e.to_string())?,
            (_, Held::All { columns, .. }) => {
                let scores = forest.score_columns(columns, &self.fill)?;
                sorter.push(0, &scores).map_err(|e| e.to_string())?;
            }
            (ReferenceData::Whole(_), Held::Sampled { .. }) => {
                unreachable!("a reference held whole is read whole")
            }
        }
        sorter.finish().map_err(|e| e.to_string())
    }
}

fn filled(v: f64, fill: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        fill
    }
}

/// The mean of a column whose gaps read as `fill`, from its finite
/// values' count and row-order sum: the same bits whether the column was
/// held or summed chunk by chunk.
fn filled_mean(rows: usize, (finite, sum): (usize, f64), fill: f64) -> f64 {
    (sum + (rows - finite) as f64 * fill) / rows.max(1) as f64
}

fn add_squares(acc: &mut f64, part: &[f64], fill: f64, mean: f64) {
    for &v in part {
        let x = filled(v, fill) - mean;
        *acc += x * x;
    }
}

fn deviations(squares: &[f64], rows: usize) -> Vec<f64> {
    squares
        .iter()
        .map(|s| (s / rows.max(1) as f64).sqrt().max(1e-12))
        .collect()
}

/// The label screen's neighbours among `n` reference rows: all of them,
/// or a seeded sample of `max` in the order drawn (a partial
/// Fisher–Yates shuffle of `0..n` that records only the positions it
/// swapped, so that a reference of any length costs O(max) memory).
pub fn neighbour_rows(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6c61_6265_6c73);
    let mut moved: std::collections::HashMap<usize, usize> =
        std::collections::HashMap::with_capacity(2 * max);
    let mut out = Vec::with_capacity(max);
    for i in 0..max {
        let j = i + ((rng.next_u64() as u128 * (n - i) as u128) >> 64) as usize;
        let at_i = moved.get(&i).copied().unwrap_or(i);
        let at_j = moved.get(&j).copied().unwrap_or(j);
        moved.insert(j, at_i);
        out.push(at_j);
    }
    out
}

/// An Isolation Forest fit on the reference's `features` (a gap read as
/// its feature's median), with the contamination offset if `params` asks
/// for one, and those medians: the same forest whether the reference is
/// held or on disk (read again through `reopen`).
pub fn fit_forest(
    reference: &ReferenceData,
    features: Vec<usize>,
    params: &IsolationForestParams,
    reopen: Reopen,
    options: &ReferenceOptions,
) -> Result<(IsolationForest, Vec<f64>), String> {
    let wanted = Wanted {
        forest: Some(params),
        neighbours: None,
    };
    let rows = ReferenceRows::read(reference, features, &wanted, reopen)?;
    rows.fit_forest(reference, params, reopen, options)
        .map(|forest| (forest, rows.fill))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The full shuffle `neighbour_rows` stands for.
    fn shuffled(n: usize, max: usize) -> Vec<usize> {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut idx: Vec<usize> = (0..n).collect();
        if n > max {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6c61_6265_6c73);
            for i in 0..max {
                let j = i + ((rng.next_u64() as u128 * (n - i) as u128) >> 64) as usize;
                idx.swap(i, j);
            }
            idx.truncate(max);
        }
        idx
    }

    fn chunks_of(text: &str, bytes: usize) -> FrameChunks {
        FrameChunks::csv_from_reader(
            std::io::Cursor::new(text.to_string().into_bytes()),
            Some("label"),
            bytes,
        )
        .unwrap()
        .keeping_labels()
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Medians, moments, sampled values and labels, the grown forest
        /// and the sorted scores of a reference on disk are the held
        /// reference's, bit for bit, whatever the budget and the chunks.
        #[test]
        fn a_reference_on_disk_reads_as_the_held_one(
            rows in prop::collection::vec(
                (prop_oneof![
                    6 => (-40i32..40).prop_map(|v| f64::from(v) / 4.0),
                    1 => Just(f64::NAN),
                    1 => Just(f64::INFINITY),
                    1 => Just(f64::NEG_INFINITY),
                ], -1e3f64..1e3, 0u8..3),
                1..400),
            budget in 0u64..3000,
            chunk in 16usize..300,
            max_reference in 1usize..300,
            max_samples in 2usize..64,
        ) {
            let show = |v: f64| if v.is_nan() { String::new() } else { v.to_string() };
            let mut text = String::from("a,label,b\n");
            for (a, b, l) in &rows {
                text.push_str(&format!("{},k{l},{}\n", show(*a), show(*b)));
            }
            let held = crate::reference::read(chunks_of(&text, chunk), &ReferenceOptions::default()).unwrap();
            let options = ReferenceOptions { memory_bytes: budget, spill_dir: None };
            let on_disk = crate::reference::read(chunks_of(&text, chunk), &options).unwrap();
            if !matches!(on_disk, ReferenceData::Sorted(_)) {
                return Ok(());
            }
            let params = IsolationForestParams {
                n_estimators: 7,
                max_samples,
                seed: 3,
                contamination: Some(0.1),
            };
            let wanted = Wanted { forest: Some(&params), neighbours: Some(max_reference) };
            let reopen = || Ok(chunks_of(&text, chunk));
            // The last feature, then all (`a` is no feature where the
            // first chunk holds none of its numbers).
            let width = match &held {
                ReferenceData::Whole(f) => f.names.len(),
                ReferenceData::Sorted(_) => unreachable!("fits the default budget"),
            };
            for features in [vec![width - 1], (0..width).collect()] {
                let a = ReferenceRows::read(&held, features.clone(), &wanted, &reopen).unwrap();
                let b = ReferenceRows::read(&on_disk, features.clone(), &wanted, &reopen).unwrap();
                prop_assert_eq!(bits(&a.fill), bits(&b.fill));
                let (ma, sa) = a.moments.clone().unwrap();
                let (mb, sb) = b.moments.clone().unwrap();
                prop_assert_eq!((bits(&ma), bits(&sa)), (bits(&mb), bits(&sb)));
                for r in neighbour_rows(a.n, max_reference) {
                    prop_assert_eq!(a.label(r), b.label(r));
                    for c in 0..features.len() {
                        prop_assert_eq!(a.value(r, c).to_bits(), b.value(r, c).to_bits());
                    }
                }
                let d = features.len();
                let fa = IsolationForest::grow(a.n, d, &|r, c| a.value(r, c), &params).unwrap();
                let fb = IsolationForest::grow(b.n, d, &|r, c| b.value(r, c), &params).unwrap();
                let sa = a.sorted_scores(&held, &fa, &reopen, &options).unwrap();
                let sb = b.sorted_scores(&on_disk, &fb, &reopen, &options).unwrap();
                prop_assert_eq!(sa.column(0).len(), rows.len());
                prop_assert_eq!(bits(sa.column(0)), bits(sb.column(0)));
            }
        }
    }

    #[test]
    fn the_sparse_shuffle_draws_what_the_full_one_does() {
        for (n, max) in [
            (0, 5),
            (3, 5),
            (5, 5),
            (6, 5),
            (100, 7),
            (1000, 999),
            (50_000, 300),
        ] {
            assert_eq!(
                neighbour_rows(n, max),
                shuffled(n, max),
                "n = {n}, max = {max}"
            );
        }
    }
}
