//! `mlsec provenance`, `mlsec verify --ca`, `mlsec sign --digest-cache` and
//! `mlsec env verify` from the command line, on the reference vectors and on
//! folders made here.

mod common;
use common::{json_of, json_run, mlsec};
use std::path::PathBuf;

fn vectors(kind: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/signing/vectors"
    ))
    .join(kind)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn provenance_verify_gives_the_vector_verdicts_with_findings() {
    let v = vectors("in-toto");
    let work = tempfile::tempdir().unwrap();
    copy_dir(&v.join("work/good"), work.path());
    let verify = |links: &str| {
        let mut cmd = mlsec();
        cmd.current_dir(work.path())
            .args(["provenance", "verify", "--layout"])
            .arg(v.join("root.layout"));
        cmd.arg("--layout-key")
            .arg(v.join("keys/owner.pub.pem"))
            .arg("--links")
            .arg(v.join("links").join(links));
        cmd
    };
    let ok = json_run(verify("good"), 0);
    assert_eq!(ok["results"]["verified"], true);
    assert_eq!(ok["results"]["steps"].as_array().unwrap().len(), 3);
    let forged = json_run(verify("forged"), 1);
    let f = &forged["findings"][0];
    assert_eq!(f["rule"], "MLS-SIGN-004");
    assert_eq!(f["stage"], "preprocessing");
    assert!(
        f["message"].as_str().unwrap().contains("step 'train'"),
        "{f}"
    );
    // A layout key that did not sign the layout.
    let mut wrong = mlsec();
    wrong
        .current_dir(work.path())
        .args(["provenance", "verify", "--layout"])
        .arg(v.join("root.layout"));
    wrong
        .arg("--layout-key")
        .arg(v.join("keys/bob.pub.pem"))
        .arg("--links")
        .arg(v.join("links/good"));
    let r = json_run(wrong, 1);
    assert!(r["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("no signature found for key"));
    // Not a layout at all: an error, exit 2.
    mlsec()
        .args(["provenance", "verify", "--layout"])
        .arg(v.join("facts.json"))
        .arg("--layout-key")
        .arg(v.join("keys/owner.pub.pem"))
        .assert()
        .code(2);
}

/// `provenance run` with JSON output: `--format` goes before the
/// subcommand, since everything after `--` is the step's command.
fn run_step(
    dir: &std::path::Path,
    key: &std::path::Path,
    rest: &[&str],
    code: i32,
) -> serde_json::Value {
    let mut c = mlsec();
    c.current_dir(dir)
        .args([
            "--format",
            "json",
            "provenance",
            "run",
            "--step",
            "ingest",
            "--key",
        ])
        .arg(key)
        .args(rest);
    json_of(&c.assert().code(code).get_output().stdout)
}

#[test]
fn provenance_run_writes_a_link_the_layout_accepts() {
    let v = vectors("in-toto");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::create_dir_all(w.join("raw")).unwrap();
    std::fs::create_dir_all(w.join("data")).unwrap();
    std::fs::copy(v.join("work/good/raw/data.csv"), w.join("raw/data.csv")).unwrap();
    let key = v.join("keys/alice.priv.pem");
    let r = run_step(
        w,
        &key,
        &[
            "--materials",
            "raw/data.csv",
            "--products",
            "data/ingested.csv",
            "--",
            "cp",
            "raw/data.csv",
            "data/ingested.csv",
        ],
        0,
    );
    assert_eq!(r["results"]["return_value"], 0);
    let link = w.join("ingest.1555cded.link");
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&link).unwrap()).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v.join("links/good/ingest.1555cded.link")).unwrap())
            .unwrap();
    assert_eq!(ours["signed"], theirs["signed"]);
    // A failing command still gets its link, and exit status 1.
    let r = run_step(w, &key, &["--materials", "raw/data.csv", "--", "false"], 1);
    assert_eq!(r["results"]["return_value"], 1);
}

#[test]
fn verify_with_a_ca_and_sign_with_a_digest_cache() {
    let v = vectors("model-signing");
    let mut c = mlsec();
    c.args(["verify"])
        .arg(v.join("tiny-model"))
        .arg("--ca")
        .arg(v.join("keys/cert-ca.pem"));
    c.arg("--signature")
        .arg(v.join("sigs/cert-p256.sig"))
        .arg("--ignore-paths")
        .arg(v.join("tiny-model/.DS_Store"));
    assert_eq!(json_run(c, 0)["results"]["verified"], true);
    let mut c = mlsec();
    c.args(["verify"])
        .arg(v.join("tiny-model"))
        .arg("--ca")
        .arg(v.join("keys/cert-leaf.pem"));
    c.arg("--signature").arg(v.join("sigs/cert-p256.sig"));
    let r = json_run(c, 1);
    assert!(r["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("not trusted"));
    // Neither --key nor --ca: a usage error.
    mlsec()
        .args(["verify"])
        .arg(v.join("tiny-model"))
        .assert()
        .code(2);

    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("w.bin"), vec![7u8; 4096]).unwrap();
    let sign = || {
        let mut c = mlsec();
        c.args(["sign"])
            .arg(&model)
            .arg("--key")
            .arg(v.join("keys/ec-p256.priv.pem"));
        c.arg("--signature")
            .arg(tmp.path().join("m.sig"))
            .arg("--digest-cache")
            .arg(tmp.path().join("cache.json"));
        c
    };
    let r = json_run(sign(), 0);
    assert!(r["results"]["digest_cache"]
        .as_str()
        .unwrap()
        .starts_with("0 of 1"));
    assert!(tmp.path().join("cache.json").is_file());
}

#[test]
fn env_verify_reports_a_planted_startup_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path();
    std::fs::create_dir_all(site.join("p-1.0.dist-info")).unwrap();
    std::fs::write(site.join("p.py"), "x = 1\n").unwrap();
    std::fs::write(
        site.join("p-1.0.dist-info/METADATA"),
        "Name: p\nVersion: 1.0\n",
    )
    .unwrap();
    // sha256 of "x = 1\n", urlsafe base64 without padding.
    use base64::Engine;
    use sha2::Digest;
    let d =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(b"x = 1\n"));
    std::fs::write(
        site.join("p-1.0.dist-info/RECORD"),
        format!("p.py,sha256={d},6\np-1.0.dist-info/METADATA,,\np-1.0.dist-info/RECORD,,\n"),
    )
    .unwrap();
    let run = || {
        let mut c = mlsec();
        c.args(["env", "verify", "--site-packages"]).arg(site);
        c
    };
    let clean = json_run(run(), 0);
    assert_eq!(clean["results"]["files_verified"], 1);
    std::fs::write(site.join("x.pth"), "import os\n").unwrap();
    let r = json_run(run(), 1);
    assert_eq!(r["findings"][0]["rule"], "MLS-ENV-002");
    assert_eq!(r["findings"][0]["severity"], "critical");
    // A lockfile that pins another version.
    std::fs::write(tmp.path().join("req.txt"), "p==2.0 --hash=sha256:00\n").unwrap();
    let mut c = run();
    c.arg("--lock").arg(tmp.path().join("req.txt"));
    let r = json_run(c, 1);
    assert!(r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["message"] == "p: installed 1.0, locked 2.0"));
}
