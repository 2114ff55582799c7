//! Population stability index and the chi-square test of label counts.

use super::special::chi2_sf;

/// PSI of `actual` against `expected`, over bins cut at the expected
/// sample's quantiles (deciles by default): Σ (a − e) · ln(a / e) over the
/// bins' shares, with shares floored at `1e-4` so that an empty bin gives
/// a large but finite contribution (the usual convention). Both samples
/// must be sorted and free of NaN.
pub fn psi_sorted(expected: &[f64], actual: &[f64], bins: usize) -> f64 {
    if expected.is_empty() || actual.is_empty() || bins == 0 {
        return f64::NAN;
    }
    let cuts = psi_cuts(expected.len(), bins, |rank| expected[rank]);
    let below = |sorted: &[f64]| -> Vec<usize> {
        cuts.iter()
            .map(|&c| sorted.partition_point(|&v| v < c))
            .collect()
    };
    psi_from_counts(
        &below(expected),
        expected.len(),
        &below(actual),
        actual.len(),
    )
}

/// The interior cut points of PSI's bins: the expected sample's values at
/// ranks k·n/bins (`value_at_rank` reads the sorted sample), deduplicated so
/// that a discrete feature gets one bin per value.
pub fn psi_cuts(n: usize, bins: usize, mut value_at_rank: impl FnMut(usize) -> f64) -> Vec<f64> {
    let mut cuts: Vec<f64> = psi_ranks(n, bins).map(&mut value_at_rank).collect();
    cuts.dedup();
    cuts
}

/// The PSI ranks [`psi_cuts`] reads, so that a caller can find those values
/// without sorting.
pub fn psi_ranks(n: usize, bins: usize) -> impl Iterator<Item = usize> {
    (1..bins).map(move |k| (k * n / bins).min(n - 1))
}

/// PSI from how many values of each sample fall below each cut point.
pub fn psi_from_counts(
    expected_below: &[usize],
    expected_n: usize,
    actual_below: &[usize],
    actual_n: usize,
) -> f64 {
    const FLOOR: f64 = 1e-4;
    let shares = |below: &[usize], n: usize| -> Vec<f64> {
        let mut out = Vec::with_capacity(below.len() + 1);
        let mut start = 0usize;
        for &end in below {
            out.push((end - start) as f64 / n as f64);
            start = end;
        }
        out.push((n - start) as f64 / n as f64);
        out
    };
    let (e, a) = (
        shares(expected_below, expected_n),
        shares(actual_below, actual_n),
    );
    e.iter()
        .zip(&a)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(FLOOR), a.max(FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Pearson's chi-square goodness-of-fit of observed counts against
/// expected counts (`scipy.stats.chisquare`): the statistic and its p-value
/// with k − 1 degrees of freedom. Expected counts are rescaled to the
/// observed total, as a test of proportions needs.
pub fn chisquare(observed: &[f64], expected: &[f64]) -> Result<(f64, f64), String> {
    if observed.len() != expected.len() || observed.len() < 2 {
        return Err(
            "chi-square needs at least two categories, as many expected as observed".into(),
        );
    }
    let (so, se): (f64, f64) = (observed.iter().sum(), expected.iter().sum());
    if se <= 0.0 || expected.iter().any(|&e| e < 0.0) {
        return Err("expected counts must be non-negative with a positive total".into());
    }
    let scale = so / se;
    let mut stat = 0.0;
    for (&o, &e) in observed.iter().zip(expected) {
        let e = e * scale;
        if e == 0.0 {
            if o > 0.0 {
                return Ok((f64::INFINITY, 0.0));
            }
            continue;
        }
        stat += (o - e) * (o - e) / e;
    }
    let dof = (observed.len() - 1) as f64;
    Ok((stat, chi2_sf(stat, dof)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_the_same_sample_and_grows_with_shift() {
        let a: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        assert!(psi_sorted(&a, &a, 10).abs() < 1e-12);
        let shifted: Vec<f64> = a.iter().map(|v| v + 200.0).collect();
        let more: Vec<f64> = a.iter().map(|v| v + 500.0).collect();
        let (p1, p2) = (psi_sorted(&a, &shifted, 10), psi_sorted(&a, &more, 10));
        assert!(p1 > 0.1 && p2 > p1, "{p1} {p2}");
    }
}
