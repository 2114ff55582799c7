//! Properties of the statistics: symmetry, bounds and monotonicity.

use mlsec_data::stats::kolmogorov::kolmogorov_sf;
use mlsec_data::stats::special::chi2_sf;
use mlsec_data::stats::{ks_2samp, psi_sorted, KsMethod};
use proptest::prelude::*;

fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![(-50i32..50).prop_map(f64::from), -1e3f64..1e3],
        1..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

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
