//! mlsec's statistics against the values scipy and scikit-learn compute
//! (`scripts/make_stats_fixtures.py` wrote `fixtures/stats.json`).

use mlsec_data::stats::{kolmogorov::kolmogorov_sf, ks_2samp, KsMethod};
use serde_json::Value;

fn fixtures() -> Value {
    serde_json::from_str(include_str!("fixtures/stats.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// frac(i·step + shift), as the fixture script generates large samples.
fn weyl(spec: &Value) -> Vec<f64> {
    let n = spec[0].as_u64().unwrap();
    let (step, shift) = (spec[1].as_f64().unwrap(), spec[2].as_f64().unwrap());
    (0..n)
        .map(|i| {
            let v = i as f64 * step + shift;
            v - v.floor()
        })
        .collect()
}

fn close(ours: f64, theirs: f64, rel: f64, abs: f64) -> bool {
    (ours - theirs).abs() <= abs.max(rel * theirs.abs())
}

#[test]
fn ks_2samp_matches_scipy_exact_and_asymptotic() {
    for case in fixtures()["ks_2samp"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (a, b) = if case.get("a").is_some() {
            (floats(&case["a"]), floats(&case["b"]))
        } else {
            let a = weyl(&case["gen_a"]);
            let b: Vec<f64> = weyl(&case["gen_b"])
                .into_iter()
                .map(|v| if v < 0.5 { v * 0.98 } else { v })
                .collect();
            (a, b)
        };
        let method = match case["method"].as_str().unwrap() {
            "exact" => KsMethod::Exact,
            "asymp" => KsMethod::Asymp,
            _ => KsMethod::Auto,
        };
        let r = ks_2samp(&a, &b, method).unwrap();
        let (d, p) = (
            case["statistic"].as_f64().unwrap(),
            case["pvalue"].as_f64().unwrap(),
        );
        assert!(
            close(r.statistic, d, 1e-12, 1e-15),
            "{name}: statistic {} vs scipy {d}",
            r.statistic
        );
        assert!(
            close(r.pvalue, p, 1e-8, 1e-14),
            "{name}: p-value {} vs scipy {p}",
            r.pvalue
        );
        assert_eq!(
            r.location,
            case["location"].as_f64().unwrap(),
            "{name}: location"
        );
        assert_eq!(
            i64::from(r.sign),
            case["sign"].as_i64().unwrap(),
            "{name}: sign"
        );
    }
}

#[test]
fn kolmogorov_sf_matches_scipy_kstwo_in_every_region() {
    let mut worst = (0.0f64, String::new());
    for case in fixtures()["kstwo_sf"].as_array().unwrap() {
        let (n, x, sf) = (
            case["n"].as_u64().unwrap(),
            case["x"].as_f64().unwrap(),
            case["sf"].as_f64().unwrap(),
        );
        let ours = kolmogorov_sf(n, x);
        let err = if sf > 1e-300 {
            (ours - sf).abs() / sf
        } else {
            ours.abs()
        };
        if err > worst.0 {
            worst = (err, format!("n={n} x={x}: ours {ours:e}, scipy {sf:e}"));
        }
        assert!(
            close(ours, sf, 1e-8, 1e-14),
            "n={n} x={x}: ours {ours:e}, scipy {sf:e}"
        );
    }
    eprintln!("largest relative difference: {:e} ({})", worst.0, worst.1);
}

#[test]
fn chisquare_matches_scipy() {
    for case in fixtures()["chisquare"].as_array().unwrap() {
        let (s, p) =
            mlsec_data::stats::chisquare(&floats(&case["observed"]), &floats(&case["expected"]))
                .unwrap();
        let (ws, wp) = (
            case["statistic"].as_f64().unwrap(),
            case["pvalue"].as_f64().unwrap(),
        );
        assert!(close(s, ws, 1e-12, 1e-12), "statistic {s} vs {ws}");
        assert!(close(p, wp, 1e-10, 1e-300), "p-value {p:e} vs {wp:e}");
    }
}

#[test]
fn isolation_forest_detects_as_well_as_scikit_learn_and_ranks_alike() {
    use mlsec_data::stats::iforest::roc_auc;
    use mlsec_data::stats::{IsolationForest, IsolationForestParams};
    let f = &fixtures()["iforest"];
    let rows = |v: &Value| -> Vec<f64> { v.as_array().unwrap().iter().flat_map(floats).collect() };
    let (reference, batch) = (rows(&f["reference"]), rows(&f["batch"]));
    let outlier: Vec<bool> = f["outlier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v == 1)
        .collect();
    let forest = IsolationForest::fit(&reference, 4, &IsolationForestParams::default()).unwrap();
    let ours = forest.score_samples(&batch).unwrap();
    let auc = roc_auc(&ours.iter().map(|s| -s).collect::<Vec<_>>(), &outlier);
    let theirs = floats(&f["sklearn_score_samples"]);
    let sk_auc = f["sklearn_auc"].as_f64().unwrap();
    assert!(
        (auc - sk_auc).abs() < 0.01,
        "AUC {auc} vs scikit-learn {sk_auc}"
    );
    // Same algorithm, other random streams: the scores agree closely in rank.
    let rank = |v: &[f64]| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        for (k, &i) in idx.iter().enumerate() {
            r[i] = k as f64;
        }
        r
    };
    let (ra, rb) = (rank(&ours), rank(&theirs));
    let n = ra.len() as f64;
    let mean = (n - 1.0) / 2.0;
    let cov: f64 = ra
        .iter()
        .zip(&rb)
        .map(|(a, b)| (a - mean) * (b - mean))
        .sum();
    let var: f64 = ra.iter().map(|a| (a - mean).powi(2)).sum();
    let spearman = cov / var;
    assert!(
        spearman > 0.9,
        "Spearman correlation with scikit-learn's scores: {spearman}"
    );
    // Score scale: both near −0.4 for inliers and below −0.6 for planted outliers.
    let mean_of = |s: &[f64], want: bool| {
        let v: Vec<f64> = s
            .iter()
            .zip(&outlier)
            .filter(|(_, &o)| o == want)
            .map(|(s, _)| *s)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    for want in [false, true] {
        let (a, b) = (mean_of(&ours, want), mean_of(&theirs, want));
        assert!(
            (a - b).abs() < 0.02,
            "mean score (outlier={want}): {a} vs scikit-learn {b}"
        );
    }
    // Seeded: the same forest twice.
    let again = IsolationForest::fit(&reference, 4, &IsolationForestParams::default()).unwrap();
    assert_eq!(again.score_samples(&batch).unwrap(), ours);
}

/// Scoring walks rows in blocks on several threads and the forest can be
/// fitted from columns or from rows: none of that changes a score.
#[test]
fn isolation_forest_scores_do_not_depend_on_blocking_or_layout() {
    use mlsec_data::stats::{IsolationForest, IsolationForestParams};
    let (n, d) = (1_000usize, 3usize);
    let rows: Vec<f64> = (0..n * d)
        .map(|i| ((i as f64 * 0.618_033_988_75).fract() - 0.5) * (1.0 + (i % 7) as f64))
        .collect();
    let columns: Vec<Vec<f64>> = (0..d)
        .map(|f| (0..n).map(|r| rows[r * d + f]).collect())
        .collect();
    let column_refs: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    let params = IsolationForestParams::default();
    let by_rows = IsolationForest::fit(&rows, d, &params).unwrap();
    let by_columns = IsolationForest::fit_columns(&column_refs, &[0.0; 3], &params).unwrap();
    let all = by_rows.score_samples(&rows[..130 * d]).unwrap();
    assert_eq!(all, by_columns.score_samples(&rows[..130 * d]).unwrap());
    for (r, &s) in all.iter().enumerate() {
        let one = by_rows.score_samples(&rows[r * d..(r + 1) * d]).unwrap();
        assert_eq!(one[0].to_bits(), s.to_bits(), "row {r}");
        assert!((-1.0..0.0).contains(&s));
    }
}
