//! End-to-end tests of `mlsec scan` on the fixture corpus.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

fn fixture(rel: &str) -> String {
    format!(
        "{}/../mlsec-scan/tests/fixtures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn scan_json(args: &[&str], code: i32) -> Value {
    let mut cmd = mlsec();
    cmd.arg("scan").args(args);
    json_run(cmd, code)
}

#[test]
fn malicious_pickle_exits_1_with_a_critical_finding() {
    let v = scan_json(&[&fixture("malicious/os-system-p4.pkl")], 1);
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "MLS-SCAN-001");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["stage"], "supply-chain");
    assert_eq!(
        f["atlas"],
        serde_json::json!(["AML.T0011.000", "AML.T0010"])
    );
    assert_eq!(f["owasp"], "ML06");
    assert_eq!(f["evidence"]["global"], "posix.system");
    assert_eq!(f["evidence"]["opcode"], "REDUCE");
    assert!(f["location"]["offset"].as_u64().is_some());
    assert_eq!(v["results"]["files"][0]["kind"], "pickle");
}

#[test]
fn benign_checkpoint_exits_0() {
    let v = scan_json(&[&fixture("benign/state-dict.pt")], 0);
    assert_eq!(v["results"]["files"][0]["kind"], "pytorch-zip");
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn folders_are_scanned_recursively_and_reported_in_sarif() {
    let out = mlsec()
        .args(["scan", &fixture("malicious"), "--format", "sarif"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let s: Value = serde_json::from_slice(&out).unwrap();
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert!(results.len() >= 35, "{}", results.len());
    let archive_member = results
        .iter()
        .find(|r| {
            r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "archive/data.pkl"
        })
        .expect("a finding inside a zip member");
    assert_eq!(archive_member["level"], "error");
    assert!(
        archive_member["locations"][0]["physicalLocation"]["region"]["byteOffset"]
            .as_u64()
            .is_some()
    );
    let rules = s["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["id"] == "MLS-SCAN-001"));
}

#[test]
fn stdin_is_scanned() {
    let bytes = std::fs::read(fixture("malicious/eval.pkl")).unwrap();
    let out = mlsec()
        .args(["scan", "-", "--format", "json"])
        .write_stdin(bytes)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["findings"][0]["location"]["path"], "-");
    assert_eq!(v["findings"][0]["evidence"]["resolved"], "builtins.eval");
}

#[test]
fn policy_file_allow_lists_a_global() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[allow]\nglobals = [\"sklearn.linear_model._logistic.LogisticRegression\"]\n",
    )
    .unwrap();
    let sk = fixture("benign/sklearn-estimator.pkl");
    let before = scan_json(&[&sk, "--fail-on", "low"], 1);
    assert_eq!(before["findings"][0]["severity"], "low");
    let after = scan_json(
        &[
            &sk,
            "--fail-on",
            "low",
            "--policy",
            policy.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(after["findings"].as_array().unwrap().len(), 0);
    // A broken policy is a usage error with a one-line message.
    std::fs::write(&policy, "[allow]\nglobals = [\"not a name\"]\n").unwrap();
    mlsec()
        .args(["scan", &sk, "--policy", policy.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a dotted Python name"));
}

#[test]
fn found_beats_error_for_scans() {
    mlsec()
        .args([
            "scan",
            &fixture("malicious/eval.pkl"),
            "/no/such/model.pt",
            "--format",
            "json",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: /no/such/model.pt: no such file or directory",
        ));
    mlsec().args(["scan", "/no/such/model.pt"]).assert().code(2);
}

#[test]
fn verify_data_flag_reaches_the_scanner() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = std::fs::read(fixture("benign/state-dict.pt")).unwrap();
    let key = b"archive/data/0";
    let at = data.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    data[at + 2] ^= 0x40;
    write(dir.path(), "t.pt", &data);
    let path = dir.path().join("t.pt");
    let p = path.to_str().unwrap();
    scan_json(&[p], 0);
    let v = scan_json(&[p, "--verify-data"], 1);
    assert_eq!(v["findings"][0]["rule"], "MLS-SCAN-006");
}

#[test]
fn convert_writes_safetensors_that_validate_and_refuses_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let o = out.to_str().unwrap();
    let mut convert = mlsec();
    convert.args(["convert", &fixture("benign/state-dict.pt"), "--out", o]);
    let v = json_run(convert, 0);
    let names: Vec<&str> = v["results"]["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fc.bias", "fc.weight"]);
    assert_eq!(v["results"]["tensors"][1]["shape"], serde_json::json!([6]));
    // The output is itself a valid safetensors file by mlsec's own checks.
    let scanned = scan_json(&[o], 0);
    assert_eq!(scanned["results"]["files"][0]["kind"], "safetensors");
    // Values: fc.weight was stored as 0..6 in float32.
    let bytes = std::fs::read(&out).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let off = header["fc.weight"]["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    let w: Vec<f32> = bytes[off..off + 24]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(w, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    // Existing output needs --force.
    mlsec()
        .args(["convert", &fixture("benign/state-dict.pt"), "--out", o])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--force"));
    // A payload is refused by name, and nothing is written.
    let evil = dir.path().join("evil.safetensors");
    mlsec()
        .args([
            "convert",
            &fixture("malicious/torch-zip-payload.pt"),
            "--out",
            evil.to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("refusing global `posix.system`"));
    assert!(!evil.exists());
}

#[test]
fn keygen_sign_verify_end_to_end_with_sarif_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write(&model, "weights.bin", &[1u8; 5000]);
    write(&model, "config.json", b"{}");
    let prefix = dir.path().join("k");
    let p = |s: &str| format!("{}{s}", prefix.display());
    mlsec()
        .args(["keygen", "--type", "p384", "--out"])
        .arg(&prefix)
        .assert()
        .success();
    let sig = dir.path().join("model.sig");
    mlsec()
        .arg("sign")
        .arg(&model)
        .args(["--key", &p(".priv.pem"), "--signature"])
        .arg(&sig)
        .assert()
        .success();
    mlsec()
        .arg("verify")
        .arg(&model)
        .args(["--key", &p(".pub.pem"), "--signature"])
        .arg(&sig)
        .assert()
        .success();
    // Keys are not overwritten by accident.
    mlsec()
        .args(["keygen", "--out"])
        .arg(&prefix)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--force"));
    write(&model, "config.json", b"{\"evil\": 1}");
    let out = mlsec()
        .arg("verify")
        .arg(&model)
        .args(["--key", &p(".pub.pem"), "--format", "sarif", "--signature"])
        .arg(&sig)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let s = json_of(&out);
    let r = &s["runs"][0]["results"][0];
    assert_eq!(r["ruleId"], "MLS-SIGN-002");
    assert_eq!(
        r["properties"]["evidence"]["changed"],
        serde_json::json!(["config.json"])
    );
}

/// A reader that stops early (`mlsec scan … | head`) ends the report
/// quietly: no error, the exit status the findings give. The report is
/// streamed, so this closes the pipe while mlsec is still writing.
#[test]
fn a_closed_output_pipe_is_not_an_error() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..1_000 {
        // PROTO 2, BININT1 1, STOP: a benign pickle of the number 1.
        std::fs::write(dir.path().join(format!("f{i:04}.pkl")), b"\x80\x02K\x01.").unwrap();
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mlsec"))
        .args(["scan", "--format", "json", "-q"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut start = [0u8; 16];
    stdout.read_exact(&mut start).unwrap();
    assert!(start.starts_with(b"{"));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}
