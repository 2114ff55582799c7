//! Properties of the statistics: symmetry, bounds and monotonicity.

use mlsec_data::stats::kolmogorov::kolmogorov_sf;
use mlsec_data::stats::special::chi2_sf;
use mlsec_data::stats::{compare, ks_2samp, psi_sorted, KsMethod};
use proptest::prelude::*;

fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![(-50i32..50).prop_map(f64::from), -1e3f64..1e3],
        1..120,
    )
}

/// Larger samples for the unsorted comparison: ties (a few distinct
/// values), spread values, heavy tails, NaN, and shifts between the two.
fn big_sample(max: usize) -> impl Strategy<Value = Vec<f64>> {
    (0u8..4, 1usize..max, any::<u64>()).prop_map(|(kind, n, seed)| {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let u = next();
                match kind {
                    0 => (u * 12.0).floor(),
                    1 => u * 2.0 - 1.0 + 0.3 * (seed % 3) as f64,
                    2 => (u - 0.5) / (1.0 - u).powi(3),
                    _ if u < 0.05 => f64::NAN,
                    _ => u.sqrt(),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The unsorted comparison gives bit for bit what sorting both samples gives.
    #[test]
    fn compare_matches_sorting_everything(reference in big_sample(20_000), sample in big_sample(3_000)) {
        let clean = |v: &[f64]| {
            let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            s.sort_by(f64::total_cmp);
            s
        };
        let (r, s) = (clean(&reference), clean(&sample));
        let got = compare(&reference, &sample, KsMethod::Auto, 10);
        if r.is_empty() || s.is_empty() {
            prop_assert!(got.is_none());
            return Ok(());
        }
        let got = got.unwrap();
        let want = ks_2samp(&reference, &sample, KsMethod::Auto).unwrap();
        prop_assert_eq!(got.ks.statistic.to_bits(), want.statistic.to_bits());
        prop_assert_eq!(got.ks.pvalue.to_bits(), want.pvalue.to_bits());
        prop_assert_eq!(got.ks.location.to_bits(), want.location.to_bits());
        prop_assert_eq!(got.ks.sign, want.sign);
        prop_assert_eq!(got.psi.to_bits(), psi_sorted(&r, &s, 10).to_bits());
    }

    #[test]
    fn ks_is_symmetric_and_bounded(a in sample(), b in sample()) {
        for method in [KsMethod::Exact, KsMethod::Asymp] {
            let ab = ks_2samp(&a, &b, method).unwrap();
            let ba = ks_2samp(&b, &a, method).unwrap();
            prop_assert!((0.0..=1.0).contains(&ab.statistic));
            prop_assert!((0.0..=1.0).contains(&ab.pvalue));
            prop_assert!((ab.statistic - ba.statistic).abs() < 1e-12);
            prop_assert!((ab.pvalue - ba.pvalue).abs() < 1e-9, "{} vs {}", ab.pvalue, ba.pvalue);
        }
    }

    #[test]
    fn a_sample_against_itself_has_statistic_zero_and_p_one(a in sample()) {
        let r = ks_2samp(&a, &a, KsMethod::Exact).unwrap();
        prop_assert_eq!(r.statistic, 0.0);
        prop_assert_eq!(r.pvalue, 1.0);
        let mut s = a.clone();
        s.sort_by(f64::total_cmp);
        prop_assert!(psi_sorted(&s, &s, 10).abs() < 1e-12);
    }

    #[test]
    fn kolmogorov_sf_is_a_decreasing_probability(n in 1u64..3000, x in 0.0f64..1.0, dx in 0.0f64..0.2) {
        let (p, q) = (kolmogorov_sf(n, x), kolmogorov_sf(n, (x + dx).min(1.0)));
        prop_assert!((0.0..=1.0).contains(&p));
        prop_assert!(q <= p + 1e-9, "sf({}) = {q} > sf({x}) = {p}", x + dx);
    }

    #[test]
    fn psi_is_non_negative(a in sample(), b in sample()) {
        let (mut a, mut b) = (a, b);
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        prop_assert!(psi_sorted(&a, &b, 10) >= 0.0);
    }

    #[test]
    fn chi2_sf_is_a_decreasing_probability(x in 0.0f64..200.0, dx in 0.0f64..10.0, dof in 1u32..40) {
        let (p, q) = (chi2_sf(x, f64::from(dof)), chi2_sf(x + dx, f64::from(dof)));
        prop_assert!((0.0..=1.0).contains(&p));
        prop_assert!(q <= p + 1e-12);
    }
}
