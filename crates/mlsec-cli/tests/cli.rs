//! End-to-end tests of the `mlsec` binary on real files.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

/// Runs `mlsec data inspect ARGS --format json` in `dir`, expects `code`, parses the report.
fn inspect_json(dir: &std::path::Path, args: &[&str], code: i32) -> Value {
    let mut cmd = mlsec();
    cmd.current_dir(dir).args(["data", "inspect"]).args(args);
    json_run(cmd, code)
}

#[test]
fn help_and_version() {
    mlsec()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("data"))
        .stdout(predicate::str::contains("rules"));
    mlsec()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    mlsec().arg("no-such-command").assert().code(2);
    mlsec().args(["data", "inspect"]).assert().code(2);
    mlsec()
        .args(["--fail-on", "severe", "rules"])
        .assert()
        .code(2);
}

#[test]
fn rules_lists_every_rule_and_documents_one() {
    let out = mlsec()
        .arg("rules")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!("rules_list", String::from_utf8(out).unwrap());
    let doc = mlsec()
        .args(["rules", "MLS-DATA-003"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc = String::from_utf8(doc).unwrap();
    for part in [
        "## What it detects",
        "## Why it matters",
        "## Example",
        "AML.T0020",
        "Poison Training Data",
    ] {
        assert!(doc.contains(part), "missing {part}: {doc}");
    }
    // by name too
    mlsec()
        .args(["rules", "conflicting-labels"])
        .assert()
        .success()
        .stdout(predicate::str::contains("MLS-DATA-003"));
    mlsec()
        .args(["rules", "MLS-NOPE-999"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no rule `MLS-NOPE-999`"));
}

#[test]
fn rules_as_json_carry_taxonomy() {
    let out = mlsec()
        .args(["rules", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    let rules = v["results"]["rules"].as_array().unwrap();
    assert!(rules.len() >= 7);
    let r = rules.iter().find(|r| r["code"] == "MLS-DATA-005").unwrap();
    assert_eq!(r["stage"], "supply-chain");
    assert_eq!(r["atlas"][0]["id"], "AML.T0010");
    assert_eq!(r["owasp"], "ML06");
}

#[test]
fn docs_rules_md_is_generated_from_the_code() {
    let out = mlsec()
        .args(["rules", "--markdown"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md"))
            .expect("docs/rules.md exists");
    assert!(
        committed == String::from_utf8(out).unwrap(),
        "docs/rules.md is stale: run `cargo run -q -- rules --markdown > docs/rules.md`"
    );
}

#[test]
fn completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        mlsec()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("inspect"));
    }
}

#[test]
fn bundled_mnist_text_json_and_sarif() {
    let text = mlsec()
        .args(["data", "inspect", "mnist"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    insta::assert_snapshot!("mnist_text", String::from_utf8(text).unwrap());

    let json = mlsec()
        .args(["data", "inspect", "mnist", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json_of(&json);
    assert_eq!(v["schema"], "mlsec-report/1");
    let d = &v["results"]["datasets"][0];
    assert_eq!(d["samples"], 10_000);
    assert_eq!(d["features"]["sample_shape"], serde_json::json!([28, 28]));
    assert_eq!(d["features"]["dtype"], "uint8");
    assert_eq!(d["labels"]["classes"], 10);
    assert_eq!(d["split"]["train"], 8000);
    assert_eq!(d["split"]["test"], 2000);
    assert_eq!(
        d["components"][0]["sha256"],
        "6147811c070e77823b67d8be7963f6ab00af77f5660c687bbdc8a3a1bc7b7459"
    );

    let sarif = mlsec()
        .args(["data", "inspect", "mnist", "--format", "sarif"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let s = json_of(&sarif);
    assert_eq!(s["version"], "2.1.0");
    assert_eq!(
        s["runs"][0]["artifacts"][0]["hashes"]["sha-256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
}

#[test]
fn corrupted_bundled_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data");
    for f in [
        "mnist-sample-images-idx3-ubyte.gz",
        "mnist-sample-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(format!("{data}/{f}"), dir.path().join(f)).unwrap();
    }
    // The untouched copies verify.
    mlsec()
        .env("MLSEC_BUNDLED_DATA_DIR", dir.path())
        .args(["data", "inspect", "mnist"])
        .assert()
        .success();
    let victim = dir.path().join("mnist-sample-images-idx3-ubyte.gz");
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let out = mlsec()
        .env("MLSEC_BUNDLED_DATA_DIR", dir.path())
        .args(["data", "inspect", "mnist"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("mnist-sample-images-idx3-ubyte.gz") && err.contains("SHA-256"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn csv_findings_in_all_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    // Row 3 duplicates row 1; row 4 repeats row 2's features with another
    // label; row 5 has an infinite value; class 'b' is rare.
    let csv = "x,y,label\n1.0,2.0,a\n3.0,4.0,a\n1.0,2.0,a\n3.0,4.0,b\ninf,5.0,a\n6,7,a\n8,9,a\n10,11,a\n12,13,a\n14,15,a\n16,17,a\n18,19,a\n20,21,a\n";
    write(dir.path(), "batch.csv", csv.as_bytes());
    let run = |fmt: &str| {
        mlsec()
            .current_dir(dir.path())
            .args(["data", "inspect", "batch.csv", "--format", fmt])
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone()
    };
    insta::assert_snapshot!("csv_text", String::from_utf8(run("text")).unwrap());
    insta::assert_snapshot!("csv_json", redact(&String::from_utf8(run("json")).unwrap()));
    let sarif = redact(&String::from_utf8(run("sarif")).unwrap());
    insta::assert_snapshot!("csv_sarif", sarif);
    let s: Value = serde_json::from_str(&sarif).unwrap();
    let run0 = &s["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    for r in run0["results"].as_array().unwrap() {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        assert!(
            r["partialFingerprints"]["mlsecFindingHash/v1"]
                .as_str()
                .unwrap()
                .len()
                == 32
        );
        assert!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
                >= 1
        );
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "batch.csv"
        );
    }
    let ids: Vec<&str> = run0["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    for want in [
        "MLS-DATA-001",
        "MLS-DATA-002",
        "MLS-DATA-003",
        "MLS-DATA-004",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
}

#[test]
fn fail_on_sets_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    // Only a low finding: an exact duplicate row.
    write(dir.path(), "d.csv", b"x,label\n1,a\n1,a\n2,b\n3,b\n");
    let inspect = |fail_on: &str| {
        mlsec()
            .current_dir(dir.path())
            .args(["data", "inspect", "d.csv", "--fail-on", fail_on])
            .assert()
    };
    inspect("medium").code(0);
    inspect("low").code(1);
    inspect("never").code(0);
}

#[test]
fn output_file_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    mlsec()
        .args(["data", "inspect", "mnist", "--format", "json", "--output"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::is_empty());
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["command"], "data inspect");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left behind"
    );
}

#[test]
fn npy_and_npz_are_inspected() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "x.npy",
        &npy_bytes("<f4", "(3, 2)", &f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])),
    );
    let v = inspect_json(dir.path(), &["x.npy"], 0);
    let d = &v["results"]["datasets"][0];
    assert_eq!(
        (d["format"].as_str(), d["samples"].as_u64()),
        (Some("npy"), Some(3))
    );
    assert_eq!(d["features"]["dtype"], "float32");
    assert_eq!(d["features"]["max"], 5.0);

    let x = npy_bytes("|u1", "(4, 2)", &[1, 1, 2, 2, 1, 1, 3, 3]);
    let y = npy_bytes(
        "<i8",
        "(4,)",
        &[0u64, 1, 1, 1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    write(dir.path(), "d.npz", &npz_bytes(&[("x", x), ("y", y)]));
    let v = inspect_json(dir.path(), &["d.npz"], 1);
    let d = &v["results"]["datasets"][0];
    assert_eq!(d["labels"]["source"], "array 'y'");
    assert_eq!(d["arrays"][0]["role"], "features");
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "MLS-DATA-003");
    assert_eq!(f["location"]["member"], "x.npy");
    assert_eq!(f["location"]["sample"], 2);
}

#[test]
fn npy_with_trailing_bytes_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = npy_bytes("<f4", "(2,)", &f32_bytes(&[1.0, 2.0]));
    let end = bytes.len();
    bytes.extend_from_slice(b"PK\x03\x04 hidden payload");
    write(dir.path(), "t.npy", &bytes);
    let v = inspect_json(dir.path(), &["t.npy"], 1);
    assert_eq!(v["findings"][0]["rule"], "MLS-DATA-005");
    assert_eq!(v["findings"][0]["location"]["offset"], end as u64);
    assert_eq!(v["findings"][0]["evidence"]["length"], 19);
}

#[test]
fn idx_pair_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<u8> = (0..3 * 4).map(|i| i as u8).collect();
    let (im, lb) = idx_pair(&images, 3, 2, 2, &[7, 1, 7]);
    write(dir.path(), "train-images-idx3-ubyte", &im);
    write(dir.path(), "train-labels-idx1-ubyte", &lb);
    write(dir.path(), "gz/t10k-images-idx3-ubyte.gz", &gzip(&im));
    write(dir.path(), "gz/t10k-labels-idx1-ubyte.gz", &gzip(&lb));
    for path in ["train-images-idx3-ubyte", "gz/t10k-images-idx3-ubyte.gz"] {
        let v = inspect_json(dir.path(), &[path], 0);
        let d = &v["results"]["datasets"][0];
        assert_eq!(d["format"], "idx");
        assert_eq!(d["files"], 2);
        assert_eq!(d["features"]["sample_shape"], serde_json::json!([2, 2]));
        assert_eq!(
            d["labels"]["histogram"],
            serde_json::json!([{"label": "1", "count": 1}, {"label": "7", "count": 2}])
        );
    }
    // A labels file alone shows its histogram.
    let v = inspect_json(dir.path(), &["train-labels-idx1-ubyte"], 0);
    assert_eq!(v["results"]["datasets"][0]["labels"]["classes"], 2);
}

#[test]
fn parquet_is_inspected() {
    let dir = tempfile::tempdir().unwrap();
    write_parquet(&dir.path().join("t.parquet"), 30);
    let v = inspect_json(dir.path(), &["t.parquet"], 0);
    let d = &v["results"]["datasets"][0];
    assert_eq!(d["format"], "parquet");
    assert_eq!(d["samples"], 30);
    let cols = d["features"]["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 4);
    assert_eq!(cols[0]["type"], "float");
    assert_eq!(cols[0]["max"], 14.5);
    assert_eq!(cols[2]["type"], "string");
    assert_eq!(d["labels"]["source"], "column 'target'");
    assert_eq!(d["labels"]["classes"], 3);
}

#[test]
fn image_folder_is_inspected_and_duplicates_across_classes_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("imgs");
    write_image_folder(&root, &[("cat", 4), ("dog", 3)]);
    std::fs::copy(root.join("cat/0.png"), root.join("dog/copied.png")).unwrap();
    write(&root, "dog/notes.txt", b"not an image");
    let v = inspect_json(dir.path(), &["imgs"], 1);
    let d = &v["results"]["datasets"][0];
    assert_eq!(d["format"], "image-folder");
    assert_eq!(d["samples"], 8);
    assert_eq!(d["features"]["dimensions"]["8x8 L8"], 8);
    assert_eq!(
        d["labels"]["histogram"],
        serde_json::json!([{"label": "cat", "count": 4}, {"label": "dog", "count": 4}])
    );
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["MLS-DATA-003", "MLS-DATA-006"]);
    assert_eq!(v["findings"][0]["location"]["member"], "dog/copied.png");
    // The digest is the sha256sum listing's digest, so it is reproducible with coreutils.
    assert_eq!(d["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn bad_input_gives_exit_2_and_one_line_naming_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let full = npy_bytes("<f8", "(10,)", &[0u8; 80]);
    write(dir.path(), "truncated.npy", &full[..full.len() - 70]);
    write(
        dir.path(),
        "object.npy",
        &npy_bytes("|O", "(1,)", b"\x80\x04\x95"),
    );
    write(dir.path(), "ragged.csv", b"a,b,c\n1,2,3\n4,5\n");
    write(
        dir.path(),
        "noise.bin",
        &[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01],
    );
    write(dir.path(), "empty.npz", &npz_bytes(&[]));
    let cases = [
        ("missing.csv", "no such file"),
        ("truncated.npy", "declares 80 data bytes, file has 10"),
        ("object.npy", "never unpickles"),
        ("ragged.csv", "line 3 has 2 fields, the header has 3"),
        ("noise.bin", "not a dataset format"),
        ("empty.npz", "no arrays"),
    ];
    for (file, problem) in cases {
        let out = mlsec()
            .current_dir(dir.path())
            .args(["data", "inspect", file])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{file}: {err}");
        assert!(
            err.starts_with(&format!("error: {file}: ")),
            "{file}: {err}"
        );
        assert!(err.contains(problem), "{file}: {err}");
        assert!(!err.contains("panicked"), "{file}: {err}");
    }
}

#[test]
fn found_beats_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "conflict.csv", b"x,label\n1,a\n1,b\n2,a\n2,b\n");
    write(dir.path(), "clean.csv", b"x,label\n1,a\n2,b\n");
    write(dir.path(), "broken.npy", b"\x93NUMPY\x01\x00\xff");
    // A finding at or above --fail-on elsewhere: exit 1, the failure is a finding.
    let out = mlsec()
        .current_dir(dir.path())
        .args([
            "data",
            "inspect",
            "conflict.csv",
            "broken.npy",
            "--format",
            "json",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: broken.npy:"))
        .get_output()
        .stdout
        .clone();
    let v = json_of(&out);
    let failure = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "MLS-CORE-001")
        .expect("failure reported as finding");
    assert_eq!(failure["location"]["path"], "broken.npy");
    assert_eq!(v["results"]["datasets"].as_array().unwrap().len(), 1);
    // Nothing found elsewhere: the error decides, exit 2, but the report is still written.
    let out = mlsec()
        .current_dir(dir.path())
        .args([
            "data",
            "inspect",
            "clean.csv",
            "broken.npy",
            "--format",
            "json",
        ])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json_of(&out)["findings"][0]["rule"], "MLS-CORE-001");
}

#[test]
fn format_is_detected_by_content_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "looks-like.csv",
        &npy_bytes("|u1", "(2,)", &[1, 2]),
    );
    let v = inspect_json(dir.path(), &["looks-like.csv"], 0);
    assert_eq!(v["results"]["datasets"][0]["format"], "npy");
}

#[test]
fn color_is_forced_or_suppressed_on_request() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "d.csv", b"x,label\n1,a\n1,b\n2,a\n2,b\n");
    let run = |color: &str| {
        let out = mlsec()
            .current_dir(dir.path())
            .args(["data", "inspect", "d.csv", "--color", color])
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    assert!(
        run("always").contains("\u{1b}["),
        "escape codes with --color always"
    );
    assert!(!run("never").contains('\u{1b}'));
    // auto: not a terminal here, so plain.
    assert!(!run("auto").contains('\u{1b}'));
}

#[test]
fn devices_and_pipes_are_refused_not_read() {
    mlsec()
        .args(["data", "inspect", "/dev/zero"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a regular file or folder"));
}
