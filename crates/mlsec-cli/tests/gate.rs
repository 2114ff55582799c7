//! The ingestion gate end to end: a clean reference, batches poisoned by
//! `mlsec attack poison` (label flips, shifts, injected points), a signed
//! manifest, the gate with a ledger — and the gate's precision and recall
//! against the poisoning's ground truth, measured.

mod common;
use common::{json_run, mlsec};
use std::path::Path;

/// Three Gaussian classes in four features, from a seeded xorshift and
/// Box–Muller, written as CSV.
fn dataset(path: &Path, n: usize, seed: u64) {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let centers = [
        [0.0, 0.0, 0.0, 0.0],
        [4.0, 4.0, 0.0, 0.0],
        [0.0, 4.0, 4.0, 4.0],
    ];
    let mut out = String::from("f0,f1,f2,f3,label\n");
    for _ in 0..n {
        let class = ((next() * 3.0) as usize).min(2);
        let mut row = Vec::new();
        for c in centers[class] {
            let (u1, u2) = (next().max(1e-12), next());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            row.push(format!("{:.4}", c + z));
        }
        row.push(["a", "b", "c"][class].to_string());
        out.push_str(&row.join(","));
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

const POLICY: &str = r#"
label = "label"
[[sources]]
name = "vendor-a"
key = "vendor.pub.pem"
[schema.columns.f0]
type = "float"
[schema.columns.f1]
type = "float"
[schema.columns.f2]
type = "float"
[schema.columns.f3]
type = "float"
[schema.columns.label]
type = "string"
allowed = ["a", "b", "c"]
[outliers]
threshold = -0.62
[labels]
k = 10
min_agreement = 0.3
"#;

fn run(dir: &Path, args: &[&str]) {
    let mut c = mlsec();
    c.current_dir(dir).args(args);
    c.assert().success();
}

/// `mlsec attack poison` on `batch.csv`: the poisoned batch and its truth.
fn poison(dir: &Path, rate: &str, kind: &str, out: &str, truth: &str) {
    run(
        dir,
        &[
            "attack",
            "poison",
            "--data",
            "batch.csv",
            "--rate",
            rate,
            "--kind",
            kind,
            "--out",
            out,
            "--truth",
            truth,
        ],
    );
}

#[test]
fn the_gate_catches_each_kind_of_poison_with_measured_precision_and_recall() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    dataset(&d.join("ref.csv"), 4000, 7);
    dataset(&d.join("batch.csv"), 1500, 11);
    std::fs::write(d.join("policy.toml"), POLICY).unwrap();
    run(d, &["keygen", "--type", "ed25519", "--out", "vendor"]);
    for kind in ["label-flip", "shift", "inject"] {
        let (poisoned, truth, sig) = (
            format!("p-{kind}.csv"),
            format!("t-{kind}.csv"),
            format!("p-{kind}.dsse.json"),
        );
        poison(d, "0.03", kind, &poisoned, &truth);
        run(
            d,
            &[
                "data",
                "manifest",
                &poisoned,
                "--key",
                "vendor.priv.pem",
                "--source",
                "vendor-a",
                "--out",
                &sig,
            ],
        );
        let mut c = mlsec();
        c.current_dir(d).args([
            "data",
            "gate",
            "--reference",
            "ref.csv",
            "--batch",
            &poisoned,
            "--policy",
            "policy.toml",
            "--manifest",
            &sig,
            "--ledger",
            "gate.db",
            "--quarantine",
            &format!("q-{kind}.csv"),
        ]);
        let r = json_run(c, 1);
        assert_eq!(
            r["results"]["decision"], "partially-accepted",
            "{kind}: {}",
            r["results"]["batch_reasons"]
        );
        let held: Vec<usize> = r["results"]["quarantined"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        let truth_text = std::fs::read_to_string(d.join(&truth)).unwrap();
        let poisoned_rows: Vec<usize> = truth_text
            .lines()
            .skip(1)
            .filter(|l| l.split(',').nth(1) == Some("1"))
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        let tp = held.iter().filter(|r| poisoned_rows.contains(r)).count() as f64;
        let (precision, recall) = (tp / held.len() as f64, tp / poisoned_rows.len() as f64);
        eprintln!(
            "{kind}: {} held, {} poisoned, precision {precision:.3}, recall {recall:.3}",
            held.len(),
            poisoned_rows.len()
        );
        assert!(recall >= 0.95, "{kind}: recall {recall}");
        assert!(precision >= 0.8, "{kind}: precision {precision}");
    }
    // Every decision is in the ledger, with its quarantined rows.
    let mut c = mlsec();
    c.current_dir(d)
        .args(["data", "ledger", "--ledger", "gate.db", "--batch", "1"]);
    let l = json_run(c, 0);
    assert_eq!(l["results"]["batches"].as_array().unwrap().len(), 3);
    assert!(!l["results"]["quarantined"].as_array().unwrap().is_empty());
}

#[test]
fn a_batch_changed_after_signing_or_from_an_unknown_source_is_rejected_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    dataset(&d.join("ref.csv"), 1000, 7);
    dataset(&d.join("batch.csv"), 300, 11);
    std::fs::write(d.join("policy.toml"), POLICY).unwrap();
    run(d, &["keygen", "--type", "p256", "--out", "vendor"]);
    run(d, &["keygen", "--type", "p256", "--out", "mallory"]);
    run(
        d,
        &[
            "data",
            "manifest",
            "batch.csv",
            "--key",
            "mallory.priv.pem",
            "--source",
            "vendor-a",
            "--out",
            "forged.json",
        ],
    );
    run(
        d,
        &[
            "data",
            "manifest",
            "batch.csv",
            "--key",
            "vendor.priv.pem",
            "--source",
            "vendor-a",
            "--out",
            "good.json",
        ],
    );
    let gate = |manifest: &str| {
        let mut c = mlsec();
        c.current_dir(d).args([
            "data",
            "gate",
            "--reference",
            "ref.csv",
            "--batch",
            "batch.csv",
            "--policy",
            "policy.toml",
            "--manifest",
            manifest,
        ]);
        c
    };
    let r = json_run(gate("forged.json"), 1);
    assert_eq!(r["results"]["decision"], "rejected");
    assert_eq!(r["findings"][0]["rule"], "MLS-DATA-009");
    assert_eq!(
        json_run(gate("good.json"), 0)["results"]["decision"],
        "accepted"
    );
    let mut text = std::fs::read_to_string(d.join("batch.csv")).unwrap();
    text.push_str("0.1,0.2,0.3,0.4,a\n");
    std::fs::write(d.join("batch.csv"), text).unwrap();
    let r = json_run(gate("good.json"), 1);
    assert_eq!(r["results"]["decision"], "rejected");
    assert!(r["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("is not the signed"));
}

#[test]
fn a_sealed_holdout_opens_once_per_model_and_logs_every_access() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    run(d, &["holdout", "keygen", "--out", "eval"]);
    std::fs::write(d.join("test.csv"), "x,label\n1,a\n2,b\n3,a\n").unwrap();
    std::fs::write(d.join("model.bin"), b"weights").unwrap();
    run(
        d,
        &[
            "holdout",
            "seal",
            "test.csv",
            "--recipient",
            "eval.age-recipient",
            "--out",
            "test.age",
        ],
    );
    let sealed = std::fs::read(d.join("test.age")).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1"));
    assert!(
        !sealed.windows(5).any(|w| w == b"label"),
        "the sealed file holds no plaintext"
    );
    let open = |extra: &[&str]| {
        let mut c = mlsec();
        c.current_dir(d)
            .args([
                "holdout",
                "open",
                "--sealed",
                "test.age",
                "--identity",
                "eval.age-identity",
                "--model",
                "model.bin",
            ])
            .args(extra);
        c
    };
    let first = json_run(open(&[]), 0);
    assert_eq!(first["results"]["rows"], 3);
    assert_eq!(first["results"]["access"], 0);
    // The same model again: refused without a reason.
    open(&[]).assert().code(2);
    assert_eq!(
        json_run(open(&["--reason", "metric bug fixed"]), 0)["results"]["access"],
        1
    );
    let mut c = mlsec();
    c.current_dir(d)
        .args(["holdout", "log", "test.age.access.log"]);
    c.assert().success();
    // An edited entry breaks the chain.
    let log = std::fs::read_to_string(d.join("test.age.access.log")).unwrap();
    std::fs::write(
        d.join("test.age.access.log"),
        log.replacen("metric bug fixed", "routine", 1),
    )
    .unwrap();
    let mut c = mlsec();
    c.current_dir(d)
        .args(["holdout", "log", "test.age.access.log"]);
    c.assert().code(2);
}

/// A reference over `--reference-memory` is sorted on disk and read again
/// for the rows the forest and the label screen sample (and a third time
/// for a contamination offset): the decision, the held rows, their reasons
/// and the quarantine file are those of the reference held in memory.
#[test]
fn a_reference_over_its_memory_budget_gates_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    dataset(&d.join("ref.csv"), 6000, 7);
    dataset(&d.join("batch.csv"), 1500, 11);
    poison(d, "0.05", "inject", "p.csv", "t.csv");
    let unsigned = &POLICY[POLICY.find("[schema").unwrap()..];
    let policy = format!("label = \"label\"\n{unsigned}")
        .replace("threshold = -0.62", "contamination = 0.02")
        .replace(
            "min_agreement = 0.3",
            "min_agreement = 0.3\nmax_reference = 2500",
        );
    std::fs::write(d.join("policy.toml"), policy).unwrap();
    let spill = tempfile::tempdir().unwrap();
    let gate = |mib: &str, quarantine: &str| {
        let mut c = mlsec();
        c.current_dir(d).env("TMPDIR", spill.path()).args([
            "data",
            "gate",
            "--reference",
            "ref.csv",
            "--batch",
            "p.csv",
            "--policy",
            "policy.toml",
            "--reference-memory",
            mib,
            "--quarantine",
            quarantine,
        ]);
        json_run(c, 1)["results"].clone()
    };
    let held = gate("1024", "q-held.csv");
    assert_eq!(held["decision"], "partially-accepted", "{held}");
    assert!(
        held["quarantined"].as_object().unwrap().len() >= 50,
        "{held}"
    );
    assert_eq!(gate("0", "q-disk.csv"), held);
    assert_eq!(
        std::fs::read(d.join("q-disk.csv")).unwrap(),
        std::fs::read(d.join("q-held.csv")).unwrap()
    );
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
    // Standard input cannot be read again.
    let mut c = mlsec();
    c.current_dir(d)
        .args([
            "data",
            "gate",
            "--reference",
            "-",
            "--batch",
            "p.csv",
            "--policy",
            "policy.toml",
            "--reference-memory",
            "0",
        ])
        .write_stdin(std::fs::read(d.join("ref.csv")).unwrap());
    let out = c.assert().code(2).get_output().stderr.clone();
    let err = String::from_utf8_lossy(&out);
    assert!(err.contains("standard input"), "{err}");
}
