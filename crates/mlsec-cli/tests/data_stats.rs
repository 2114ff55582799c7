//! `mlsec data drift` and `mlsec data outliers` on CSV files made here with
//! planted drift and planted outliers: the tool must find what was planted.

mod common;
use common::{json_run, mlsec};

/// frac(i·step + shift): deterministic, evenly spread values in [0, 1).
fn weyl(i: usize, step: f64, shift: f64) -> f64 {
    let v = i as f64 * step + shift;
    v - v.floor()
}

/// Row `i` of the reference distribution: three evenly spread features.
fn row(i: usize) -> (f64, f64, f64) {
    (
        weyl(i, 0.618_033_988_749_895, 0.0),
        weyl(i, 0.414_213_562_373_095, 0.1),
        weyl(i, 0.732_050_807_568_877, 0.2),
    )
}

fn csv(rows: impl Iterator<Item = (f64, f64, f64)>) -> String {
    let mut s = String::from("a,b,c\n");
    for (a, b, c) in rows {
        s.push_str(&format!("{a},{b},{c}\n"));
    }
    s
}

/// `mlsec data drift` run in `dir` against its `ref.csv`, windows of
/// `window` rows, then `more` arguments.
fn drift(dir: &std::path::Path, stream: &str, window: &str, more: &[&str]) -> assert_cmd::Command {
    let mut cmd = mlsec();
    cmd.current_dir(dir)
        .args([
            "data",
            "drift",
            "--reference",
            "ref.csv",
            "--stream",
            stream,
        ])
        .args(["--window", window])
        .args(more);
    cmd
}

#[test]
fn drift_alarms_at_the_first_shifted_window() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ref.csv"), csv((0..3000).map(row))).unwrap();
    // Windows of 500: the fourth (rows 1500..2000) onwards has `b` shifted.
    let stream = (0..3000).map(|i| {
        let (a, b, c) = row(i + 7);
        (a, if i >= 1500 { b * 0.6 + 0.4 } else { b }, c)
    });
    std::fs::write(dir.path().join("stream.csv"), csv(stream)).unwrap();
    let r = json_run(
        drift(dir.path(), "stream.csv", "500", &["--permutations", "50"]),
        1,
    );
    assert_eq!(r["results"]["alarm"], 3, "{}", r["results"]);
    let windows = r["results"]["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 6);
    for w in &windows[..3] {
        assert_eq!(w["drifted"], false, "{w}");
    }
    assert!(windows[3]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().starts_with("b: KS")));
    assert_eq!(r["findings"][0]["rule"], "MLS-DATA-007");
    // Exact p-values below 10,000 rows, as scipy's auto method.
    assert_eq!(windows[0]["features"][0]["ks"]["method"], "exact");
}

#[test]
fn a_reference_over_its_memory_budget_gives_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ref.csv"), csv((0..3000).map(row))).unwrap();
    let stream = (0..2500).map(|i| {
        let (a, b, c) = row(i + 5);
        (a, b, if i >= 1200 { c * c } else { c })
    });
    std::fs::write(dir.path().join("stream.csv"), csv(stream)).unwrap();
    let spill = tempfile::tempdir().unwrap();
    let report = |budget: &str| {
        let more = ["--permutations", "30", "--reference-memory", budget];
        let mut cmd = drift(dir.path(), "stream.csv", "100", &more);
        cmd.env("TMPDIR", spill.path());
        json_run(cmd, 1)["results"].clone()
    };
    // 0 MiB: every chunk of the reference is sorted into runs on disk, and
    // MMD reads it a second time; 25 windows also sort a held reference
    // in place.
    let held = report("1024");
    assert_eq!(held["windows"].as_array().unwrap().len(), 25);
    assert_eq!(report("0"), held);
    assert_eq!(held["alarm"], 12, "{held}");
    // The sorted runs are removed with the reference.
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}

/// `data outliers` with its reference on disk: the forest grows on the
/// same sampled rows, and every reference row is scored in a third pass
/// for the contamination offset, so every score is the same.
#[test]
fn outliers_with_a_reference_over_its_memory_budget_score_the_same() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ref.csv"), csv((0..3000).map(row))).unwrap();
    let mut rows: Vec<(f64, f64, f64)> = (0..700).map(|i| row(i + 11)).collect();
    rows[40] = (6.0, -3.0, 6.0);
    std::fs::write(dir.path().join("batch.csv"), csv(rows.into_iter())).unwrap();
    let spill = tempfile::tempdir().unwrap();
    let score = |mib: &str, out: &str| {
        let more = [
            "--contamination",
            "0.03",
            "--reference-memory",
            mib,
            "--scores-out",
            out,
        ];
        let mut cmd = outliers(dir.path(), &more);
        cmd.env("TMPDIR", spill.path());
        json_run(cmd, 1)["results"].clone()
    };
    let held = score("1024", "held.npy");
    assert!(held["outliers"].as_u64().unwrap() >= 1, "{held}");
    assert_eq!(score("0", "disk.npy"), held);
    assert_eq!(
        std::fs::read(dir.path().join("disk.npy")).unwrap(),
        std::fs::read(dir.path().join("held.npy")).unwrap()
    );
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}

#[test]
fn drift_reads_a_csv_stream_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ref.csv"), csv((0..2000).map(row))).unwrap();
    let stream = (0..1500).map(|i| {
        let (a, b, c) = row(i + 3);
        (if i >= 1000 { a + 0.5 } else { a }, b, c)
    });
    let mut cmd = drift(dir.path(), "-", "500", &["--no-mmd"]);
    cmd.write_stdin(csv(stream));
    let r = json_run(cmd, 1);
    assert_eq!(r["results"]["stream_rows"], 1500);
    assert_eq!(r["results"]["alarm"], 2, "{}", r["results"]);
}

/// `data outliers` of `batch.csv` against `ref.csv` in `dir`.
fn outliers(dir: &std::path::Path, more: &[&str]) -> assert_cmd::Command {
    let mut cmd = mlsec();
    cmd.current_dir(dir).args([
        "data",
        "outliers",
        "--reference",
        "ref.csv",
        "--batch",
        "batch.csv",
    ]);
    cmd.args(more);
    cmd
}

#[test]
fn outliers_finds_the_planted_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ref.csv"), csv((0..2000).map(row))).unwrap();
    let mut rows: Vec<(f64, f64, f64)> = (0..500).map(|i| row(i + 11)).collect();
    for (k, planted) in [5usize, 123, 321, 499].into_iter().enumerate() {
        rows[planted] = (4.0 + k as f64, -3.0, 6.0);
    }
    // A gap, filled with the reference's median rather than flagged.
    let batch = csv(rows.into_iter()).replacen("\n", "\n0.5,,0.25\n", 1);
    std::fs::write(dir.path().join("batch.csv"), batch).unwrap();
    let cmd = outliers(dir.path(), &["--top", "8", "--scores-out", "scores.npy"]);
    let r = json_run(cmd, 1);
    // Row 0 is the gap row; the planted rows moved down by one.
    let scores = mlsec_data::npy::parse(&std::fs::read(dir.path().join("scores.npy")).unwrap())
        .unwrap()
        .array;
    assert_eq!(scores.shape, [501]);
    let offset = r["results"]["offset"].as_f64().unwrap();
    let below = (0..501).filter(|&i| scores.get_f64(i) < offset).count();
    assert_eq!(r["results"]["outliers"].as_u64().unwrap() as usize, below);
    assert!(scores.get_f64(0) > offset, "a filled gap is not an outlier");
    for t in r["results"]["top"].as_array().unwrap() {
        let (row, score) = (t[0].as_u64().unwrap() as usize, t[1].as_f64().unwrap());
        assert_eq!(scores.get_f64(row), score);
    }
    assert!(!dir.path().join(".scores.npy.mlsec-tmp").exists());
    // Points outside the reference's range are isolated like its most
    // extreme corner points (splits are drawn inside the range), so the
    // planted rows are among the most anomalous, not necessarily alone.
    let top: Vec<u64> = r["results"]["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[0].as_u64().unwrap())
        .collect();
    for planted in [6, 124, 322, 500] {
        assert!(
            top.contains(&planted),
            "row {planted} not among the 8 most anomalous: {}",
            r["results"]
        );
    }
    assert_eq!(r["findings"][0]["rule"], "MLS-DATA-008");
}
