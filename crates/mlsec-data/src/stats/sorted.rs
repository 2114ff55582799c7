//! The KS test and PSI of a sample against a reference that is already
//! sorted (a reference larger than memory, sorted once on disk by
//! [`crate::reference`]): each distinct value of the sorted sample is
//! placed in the reference by binary search, so a window costs
//! O(m log n) reads of the reference instead of a pass over all of it.
//!
//! Between two consecutive sample values the sample's ECDF is constant and
//! the reference's only rises, so over the reference values in that gap
//! F₁ − F₂ is least at the first and greatest at the last; those two and
//! the sample values themselves are the only points where a new extreme
//! can start. They are visited in ascending order with the same
//! arithmetic as [`super::ks::statistic_sorted`]'s full walk, so the
//! results are bit-identical to [`super::ranked::compare`] on the same
//! numbers (the property tests check this).

use super::drift::{psi_cuts, psi_from_counts};
use super::ks::{with_pvalue, Extremes, KsMethod};
use super::ranked::Comparison;

/// KS (`reference` as scipy's first sample) and PSI (`reference` as the
/// expected distribution) of `sample` against `reference`, which must be
/// sorted ascending and free of NaN; NaN values of `sample` are left out.
/// `None` when either has no value, as [`super::ranked::compare`].
pub fn compare_sorted(
    reference: &[f64],
    sample: &[f64],
    method: KsMethod,
    psi_bins: usize,
) -> Option<Comparison> {
    let mut b: Vec<f64> = sample.iter().copied().filter(|v| !v.is_nan()).collect();
    b.sort_unstable_by(f64::total_cmp);
    compare_both_sorted(reference, &b, method, psi_bins)
}

/// [`compare_sorted`] of a sample already sorted ascending and free of
/// NaN, as a reference is (a batch larger than memory, sorted on disk):
/// nothing is copied.
pub fn compare_both_sorted(
    reference: &[f64],
    sample: &[f64],
    method: KsMethod,
    psi_bins: usize,
) -> Option<Comparison> {
    let (a, b) = (reference, sample);
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }

    let mut e = Extremes::new(n1, n2);
    // Reference values at or below the previous sample value, and sample
    // values at or below it.
    let (mut i, mut j) = (0usize, 0usize);
    // The reference values in the gap a[i..end], all below the next sample
    // value (or the last ones), with j sample values counted.
    let visit_gap = |e: &mut Extremes, i: usize, end: usize, j: usize| {
        if end > i {
            let first = a[i];
            let after_first = gallop(&a[..end], i, |x| x <= first);
            e.visit(first, after_first, j);
            let last = a[end - 1];
            if last != first {
                e.visit(last, end, j);
            }
        }
    };
    while j < n2 {
        let v = b[j];
        let next_j = gallop(b, j, |x| x <= v);
        let below = gallop(a, i, |x| x < v);
        visit_gap(&mut e, i, below, j);
        let through = gallop(a, below, |x| x <= v);
        e.visit(v, through, next_j);
        (i, j) = (through, next_j);
    }
    visit_gap(&mut e, i, n1, n2);
    let (d, location, sign) = e.statistic();
    let ks = with_pvalue(d, location, sign, n1, n2, method);

    let psi = if psi_bins == 0 {
        f64::NAN
    } else {
        let cuts = psi_cuts(n1, psi_bins, |r| a[r]);
        let below = |sorted: &[f64]| -> Vec<usize> {
            cuts.iter()
                .map(|&c| sorted.partition_point(|&x| x < c))
                .collect()
        };
        psi_from_counts(&below(a), n1, &below(b), n2)
    };
    Some(Comparison { ks, psi })
}

/// Keeps only the numbers of each column (NaN dropped) and sorts them,
/// one share of the columns per core: the form [`compare_sorted`] reads.
pub(crate) fn sort_numbers(mut columns: Vec<&mut Vec<f64>>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, columns.len().max(1));
    let per = columns.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in columns.chunks_mut(per) {
            s.spawn(move || {
                for c in part {
                    c.retain(|x| !x.is_nan());
                    c.sort_unstable_by(f64::total_cmp);
                }
            });
        }
    });
}

/// [`sort_numbers`] of the columns at `indices` (a frame's compared
/// features), in place.
pub(crate) fn sort_columns(columns: &mut [Vec<f64>], indices: &[usize]) {
    sort_numbers(
        columns
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| indices.contains(i))
            .map(|(_, c)| c)
            .collect(),
    );
}

/// `start` plus the length of the prefix of `sorted[start..]` where
/// `holds` is true (as `partition_point`), found by doubling steps from
/// `start` and then bisecting the last step. A window's sorted values land
/// near each other in the reference, so each search starts where the last
/// ended and touches a few nearby cache lines instead of bisecting a
/// column of many megabytes from its middle (which made the windows of a
/// 2,000,000-row reference memory-latency bound).
fn gallop(sorted: &[f64], start: usize, holds: impl Fn(f64) -> bool) -> usize {
    let mut low = start;
    let mut step = 1usize;
    loop {
        let probe = low + step;
        if probe > sorted.len() || !holds(sorted[probe - 1]) {
            let high = probe.min(sorted.len());
            return low + sorted[low..high].partition_point(|&x| holds(x));
        }
        low = probe;
        step *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ranked::compare;
    use proptest::prelude::*;

    fn sorted_numbers(values: &[f64]) -> Vec<f64> {
        let mut a: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        a.sort_unstable_by(f64::total_cmp);
        a
    }

    /// Values with many ties, NaN and both zeros, on a coarse grid.
    fn values(max: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(
            prop_oneof![
                8 => (-40i32..40).prop_map(|k| k as f64 * 0.25),
                1 => Just(f64::NAN),
                1 => Just(-0.0),
                1 => -1e6f64..1e6,
            ],
            0..max,
        )
    }

    proptest! {
        #[test]
        fn a_sorted_reference_gives_what_the_unsorted_one_gives(
            reference in values(3000),
            sample in values(400),
            bins in 0usize..12,
        ) {
            for method in [KsMethod::Auto, KsMethod::Asymp] {
                let whole = compare(&reference, &sample, method, bins);
                let sorted = compare_sorted(&sorted_numbers(&reference), &sample, method, bins);
                match (whole, sorted) {
                    (None, None) => {}
                    (Some(w), Some(s)) => {
                        prop_assert_eq!(w.ks.statistic.to_bits(), s.ks.statistic.to_bits());
                        prop_assert_eq!(w.ks.pvalue.to_bits(), s.ks.pvalue.to_bits());
                        prop_assert_eq!(w.ks.location, s.ks.location);
                        prop_assert_eq!(w.ks.sign, s.ks.sign);
                        prop_assert_eq!(w.ks.method, s.ks.method);
                        prop_assert_eq!(w.psi.to_bits(), s.psi.to_bits());
                    }
                    (w, s) => prop_assert!(false, "{w:?} against {s:?}"),
                }
            }
        }
    }

    proptest! {
        #[test]
        fn galloping_finds_the_partition_point(
            values in prop::collection::vec(-20i32..20, 0..300),
            start in 0usize..300,
            cut in -21i32..21,
        ) {
            let mut sorted: Vec<f64> = values.into_iter().map(f64::from).collect();
            sorted.sort_unstable_by(f64::total_cmp);
            let start = start.min(sorted.len());
            let c = f64::from(cut);
            prop_assert_eq!(
                gallop(&sorted, start, |x| x < c),
                start + sorted[start..].partition_point(|&x| x < c)
            );
        }
    }

    #[test]
    fn known_values_match_scipy() {
        // scipy.stats.ks_2samp([1, 2, 3, 4, 5], [3.5, 4.5, 6, 7]):
        // statistic 0.6 at 3.0 (sign +1), exact p-value 0.2857142857142857.
        let c = compare_sorted(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &[7.0, 3.5, 6.0, 4.5],
            KsMethod::Auto,
            0,
        )
        .unwrap();
        assert_eq!(c.ks.statistic, 0.6);
        assert_eq!(c.ks.location, 3.0);
        assert_eq!(c.ks.sign, 1);
        assert!((c.ks.pvalue - 0.285_714_285_714_285_7).abs() < 1e-12);
        assert!(compare_sorted(&[], &[1.0], KsMethod::Auto, 10).is_none());
        assert!(compare_sorted(&[1.0], &[f64::NAN], KsMethod::Auto, 10).is_none());
    }
}
