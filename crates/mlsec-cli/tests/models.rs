//! `mlsec train`, `mlsec model inspect|predict` and `mlsec attack evasion`
//! end to end on the bundled MNIST sample (a small MLP keeps it quick).

mod common;
use common::{json_run, mlsec};

fn train_mlp(dir: &std::path::Path, seed: &str) -> std::path::PathBuf {
    let out = dir.join(format!("mlp-{seed}.safetensors"));
    let v = json_run(
        {
            let mut c = mlsec();
            c.args([
                "--format", "json", "train", "--model", "mlp", "--epochs", "2", "--seed", seed,
                "--out",
            ])
            .arg(&out);
            c
        },
        0,
    );
    let r = &v["results"];
    assert_eq!(r["architecture"], "mlp");
    assert!(r["test_accuracy"].as_f64().unwrap() > 0.85, "{r}");
    assert_eq!(r["epochs"].as_array().unwrap().len(), 2);
    out
}

#[test]
fn train_is_deterministic_and_writes_two_plain_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = train_mlp(dir.path(), "4");
    let b = train_mlp(dir.path(), "4");
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same seed, same weights"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.with_extension("json")).unwrap()).unwrap();
    assert_eq!(config["format"], "mlsec-model");
    assert_eq!(config["architecture"]["arch"], "mlp");
    assert_eq!(config["input_shape"], serde_json::json!([1, 28, 28]));

    // inspect and predict read it back.
    let v = json_run(
        {
            let mut c = mlsec();
            c.args(["model", "inspect"]).arg(&a);
            c
        },
        0,
    );
    assert_eq!(v["results"]["access"], "gradient");
    assert_eq!(v["results"]["classes"], 10);
    let logits = dir.path().join("logits.npy");
    let v = json_run(
        {
            let mut c = mlsec();
            c.args(["model", "predict", "--data", "mnist", "--model"])
                .arg(&a)
                .arg("--out")
                .arg(&logits);
            c
        },
        0,
    );
    assert!(v["results"]["accuracy"].as_f64().unwrap() > 0.85);
    assert_eq!(v["results"]["samples"], 2000);

    // Tampered weights are refused.
    let mut bytes = std::fs::read(&a).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&a, &bytes).unwrap();
    mlsec()
        .args(["model", "inspect"])
        .arg(&a)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not match"));
}

#[test]
fn evasion_reports_robustness_and_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_mlp(dir.path(), "1");
    let out = dir.path().join("adv");
    let v = json_run(
        {
            let mut c = mlsec();
            c.args([
                "attack", "evasion", "--attack", "pgd", "--eps", "0.2", "--n", "40", "--steps",
                "10", "--sweep", "0.05,0.1", "--model",
            ])
            .arg(&model)
            .arg("--out-dir")
            .arg(&out);
            c
        },
        1,
    );
    let e = &v["results"]["evaluation"];
    assert_eq!(e["attack"], "pgd");
    assert!(e["success_rate"].as_f64().unwrap() > 0.9, "{e}");
    assert!(e["perturbation_linf"]["median"].as_f64().unwrap() <= 0.2 + 1e-6);
    let finding = &v["findings"][0];
    assert_eq!(finding["rule"], "MLS-EVA-001");
    assert_eq!(finding["stage"], "inference");
    assert!(finding["atlas"].to_string().contains("AML.T0015"));
    // The two --sweep budgets and the main one.
    assert_eq!(v["results"]["sweep"].as_array().unwrap().len(), 3);
    for f in [
        "adversarial.npy",
        "labels.npy",
        "predictions.npy",
        "indices.npy",
        "fooled.npy",
        "grid.png",
        "sweep.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let svg = std::fs::read_to_string(out.join("sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));

    // Query-only access: Square runs and counts queries; PGD is refused.
    let v = json_run(
        {
            let mut c = mlsec();
            c.args([
                "attack",
                "evasion",
                "--attack",
                "square",
                "--eps",
                "0.2",
                "--n",
                "20",
                "--steps",
                "300",
                "--query-only",
                "--model",
            ])
            .arg(&model);
            c
        },
        1,
    );
    assert!(
        v["results"]["evaluation"]["queries_per_success"]["median"]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    mlsec()
        .args([
            "attack",
            "evasion",
            "--attack",
            "pgd",
            "--query-only",
            "--n",
            "5",
            "--model",
        ])
        .arg(&model)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("needs gradients"));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    mlsec()
        .args(["train", "--model", "transformer", "--out"])
        .arg(dir.path().join("m.safetensors"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unknown --model"));
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"definitely not a model").unwrap();
    mlsec()
        .args(["model", "inspect"])
        .arg(&junk)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("neither an mlsec model"));
    mlsec()
        .args(["attack", "evasion", "--attack", "teleport", "--model"])
        .arg(&junk)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unknown --attack"));
}

#[test]
fn holdout_evaluate_runs_the_model_once_per_digest() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_mlp(dir.path(), "2");
    // The held-out set: 50 real test digits and their labels, as an NPZ.
    let m = mlsec_data::mnist::load().unwrap();
    let split = m.split();
    let idx = &split.test[..50];
    let x: Vec<u8> = idx
        .iter()
        .flat_map(|&i| m.images.sample_bytes(i).to_vec())
        .collect();
    let y: Vec<u8> = idx
        .iter()
        .flat_map(|&i| i64::from(m.labels[i]).to_le_bytes())
        .collect();
    let npz = dir.path().join("heldout.npz");
    {
        let f = std::fs::File::create(&npz).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("x.npy", opts).unwrap();
        std::io::Write::write_all(&mut z, &common::npy_bytes("|u1", "(50, 28, 28)", &x)).unwrap();
        z.start_file("y.npy", opts).unwrap();
        std::io::Write::write_all(&mut z, &common::npy_bytes("<i8", "(50,)", &y)).unwrap();
        z.finish().unwrap();
    }
    let key = dir.path().join("eval");
    mlsec()
        .args(["holdout", "keygen", "--out"])
        .arg(&key)
        .assert()
        .code(0);
    let sealed = dir.path().join("heldout.age");
    mlsec()
        .args(["holdout", "seal"])
        .arg(&npz)
        .arg("--recipient")
        .arg(key.with_extension("age-recipient"))
        .arg("--out")
        .arg(&sealed)
        .assert()
        .code(0);
    let evaluate = || {
        let mut c = mlsec();
        c.args(["holdout", "evaluate", "--sealed"])
            .arg(&sealed)
            .arg("--identity")
            .arg(key.with_extension("age-identity"))
            .arg("--model")
            .arg(&model);
        c
    };
    let v = json_run(evaluate(), 0);
    let acc = v["results"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.8, "accuracy {acc}");
    assert_eq!(v["results"]["rows"], 50);
    evaluate()
        .assert()
        .code(2)
        .stderr(predicates::str::contains("already evaluated"));
    let mut again = evaluate();
    again.args(["--reason", "retrained head"]);
    json_run(again, 0);
}
