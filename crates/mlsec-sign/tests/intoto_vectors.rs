//! Every in-toto vector made by in-toto 3.1.0 (`shared/reference/signing/
//! vectors/in-toto`) gets in-toto-verify's verdict from mlsec, failing at the
//! same check; links mlsec writes sign the same canonical bytes in-toto does.

use mlsec_sign::intoto::{self, time, Failure, Key, Link};
use mlsec_sign::{canonical, PrivateKey, PublicKey};
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/signing/vectors/in-toto"
    ));
    assert!(p.is_dir(), "in-toto vectors expected at {}", p.display());
    p
}

fn public(name: &str) -> Key {
    let pem =
        std::fs::read_to_string(vectors().join("keys").join(format!("{name}.pub.pem"))).unwrap();
    Key::new(PublicKey::from_pem(&pem).unwrap()).unwrap()
}

fn private(name: &str) -> PrivateKey {
    let pem =
        std::fs::read_to_string(vectors().join("keys").join(format!("{name}.priv.pem"))).unwrap();
    PrivateKey::from_pem(&pem).unwrap()
}

/// Copies a work folder, so that inspections run where nothing is shared.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn verify_at(layout: &str, key: &str, links: &Path, work: &Path, now: i64) -> Result<(), Failure> {
    let bytes = std::fs::read(vectors().join(layout)).unwrap();
    let keys = [public(key)];
    intoto::verify(
        &bytes,
        &intoto::VerifyOptions {
            layout_keys: &keys,
            link_dir: links,
            workdir: work,
            run_inspections: true,
            now,
        },
    )
    .expect("verification runs")
    .result
}

fn verify(layout: &str, key: &str, links: &str, work: &str) -> Result<(), Failure> {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&vectors().join("work").join(work), tmp.path());
    verify_at(
        layout,
        key,
        &vectors().join("links").join(links),
        tmp.path(),
        time::now_utc(),
    )
}

#[test]
fn every_vector_gets_in_toto_verify_s_verdict() {
    // PASS vectors.
    assert_eq!(verify("root.layout", "owner", "good", "good"), Ok(()));
    assert_eq!(verify("root-dsse.layout", "owner", "dsse", "dsse"), Ok(()));

    // LayoutExpiredError.
    assert!(matches!(
        verify("root-expired.layout", "owner", "good", "good"),
        Err(Failure::Expired { .. })
    ));
    // ThresholdVerificationError: mallory's link filed under carol's name.
    match verify("root.layout", "owner", "forged", "good") {
        Err(Failure::Threshold {
            step,
            required: 1,
            found: 0,
            ..
        }) => assert_eq!(step, "train"),
        other => panic!("{other:?}"),
    }
    // LinkNotFoundError.
    assert_eq!(
        verify("root.layout", "owner", "missing", "good"),
        Err(Failure::LinkNotFound {
            step: "preprocess".into(),
            required: 1,
            found: 0
        })
    );
    assert_eq!(
        verify("root-threshold2.layout", "owner", "good", "good"),
        Err(Failure::LinkNotFound {
            step: "train".into(),
            required: 2,
            found: 1
        })
    );
    // SignatureVerificationError: bob did not sign the layout.
    match verify("root.layout", "bob", "good", "good") {
        Err(Failure::LayoutSignature(m)) => assert!(m.contains(&public("bob").keyid), "{m}"),
        other => panic!("{other:?}"),
    }
    // RuleVerificationError at the same rule, item and artifacts.
    for (links, work, item, artifact) in [
        ("good", "tampered-final", "check-model", "model/weights.bin"),
        (
            "tampered-intermediate",
            "tampered-intermediate",
            "train",
            "data/clean.csv",
        ),
    ] {
        match verify("root.layout", "owner", links, work) {
            Err(Failure::Rule(r)) => {
                assert_eq!((r.item.as_str(), r.rule.as_str()), (item, "DISALLOW *"));
                assert_eq!(r.artifacts, vec![artifact.to_string()]);
            }
            other => panic!("{work}: {other:?}"),
        }
    }
}

#[test]
fn expiry_is_checked_against_the_given_time() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&vectors().join("work/good"), tmp.path());
    let links = vectors().join("links/good");
    let expires = time::parse_utc("2035-01-01T00:00:00Z").unwrap();
    assert_eq!(
        verify_at("root.layout", "owner", &links, tmp.path(), expires - 1),
        Ok(())
    );
    assert!(matches!(
        verify_at("root.layout", "owner", &links, tmp.path(), expires),
        Err(Failure::Expired { .. })
    ));
}

#[test]
fn keyids_and_signed_bytes_match_in_toto() {
    let v = vectors();
    assert_eq!(
        public("alice").keyid,
        "1555cded08c5cbe0cccf4a1fe22a079e4e93c9e84b0b94c871a017e3c251403b"
    );
    let ids = std::fs::read_to_string(v.join("keys/keyids.txt")).unwrap();
    for line in ids.lines() {
        let (name, id) = line.split_once(' ').unwrap();
        assert_eq!(public(name).keyid, id, "{name}");
    }
    let link = std::fs::read(v.join("links/good/ingest.1555cded.link")).unwrap();
    let env = intoto::Envelope::parse(&link).unwrap();
    assert_eq!(
        canonical::encode(&env.signed).unwrap(),
        std::fs::read(v.join("ingest.signed.canonical.json")).unwrap()
    );
    assert!(env.verify(&public("alice")).is_ok());
    assert!(env.verify(&public("bob")).is_err());
}

#[test]
fn links_written_by_mlsec_pass_the_vector_layout_and_tampering_between_steps_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let v = vectors();
    std::fs::create_dir_all(base.join("raw")).unwrap();
    std::fs::create_dir_all(base.join("data")).unwrap();
    std::fs::create_dir_all(base.join("model")).unwrap();
    std::fs::copy(v.join("work/good/raw/data.csv"), base.join("raw/data.csv")).unwrap();
    std::fs::copy(v.join("work/good/train.sh"), base.join("train.sh")).unwrap();
    let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let step = |name: &str, who: &str, m: &[&str], p: &[&str], cmd: &[&str], dsse: bool| {
        let (m, p, cmd) = (s(m), s(p), s(cmd));
        let ran = intoto::run::run_step(&intoto::run::StepOptions {
            name,
            materials: &m,
            products: &p,
            command: &cmd,
            base,
            excludes: s(intoto::run::DEFAULT_EXCLUDES),
            record_streams: false,
        })
        .unwrap();
        assert_eq!(ran.return_value, 0);
        let (file, bytes) = intoto::run::sign_link(&ran.link, &private(who), dsse).unwrap();
        std::fs::write(base.join(file), bytes).unwrap();
        Link::from_signed(&ran.link).unwrap()
    };
    let ingest = step(
        "ingest",
        "alice",
        &["raw/data.csv"],
        &["data/ingested.csv"],
        &["cp", "raw/data.csv", "data/ingested.csv"],
        false,
    );
    // The same signed content as in-toto-run's link for this step.
    let reference =
        intoto::Envelope::parse(&std::fs::read(v.join("links/good/ingest.1555cded.link")).unwrap())
            .unwrap();
    assert_eq!(ingest, Link::from_signed(&reference.signed).unwrap());
    step(
        "preprocess",
        "bob",
        &["data/ingested.csv"],
        &["data/clean.csv"],
        &["sort", "-o", "data/clean.csv", "data/ingested.csv"],
        true,
    );
    // A label flipped between preprocessing and training.
    let clean = std::fs::read_to_string(base.join("data/clean.csv")).unwrap();
    let flipped = clean.replacen("2,b\n", "2,c\n", 1);
    assert_ne!(clean, flipped, "the data has a label to flip");
    std::fs::write(base.join("data/clean.csv"), flipped).unwrap();
    step(
        "train",
        "carol",
        &["data/clean.csv", "train.sh"],
        &["model"],
        &["sh", "train.sh"],
        false,
    );
    let now = time::now_utc();
    match verify_at("root.layout", "owner", base, base, now) {
        Err(Failure::Rule(r)) => assert_eq!(
            (r.item.as_str(), r.artifacts.clone()),
            ("train", vec!["data/clean.csv".to_string()])
        ),
        other => panic!("{other:?}"),
    }
    std::fs::write(base.join("data/clean.csv"), clean).unwrap();
    step(
        "train",
        "carol",
        &["data/clean.csv", "train.sh"],
        &["model"],
        &["sh", "train.sh"],
        false,
    );
    assert_eq!(verify_at("root.layout", "owner", base, base, now), Ok(()));
}
