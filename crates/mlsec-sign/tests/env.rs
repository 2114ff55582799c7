//! `env::verify_site` on a site-packages folder laid out as pip installs
//! one: RECORD digests written here, then files changed, removed and added.

use base64::Engine;
use mlsec_core::Severity;
use mlsec_sign::env::{self, EnvSummary};
use sha2::Digest;
use std::path::Path;

fn record_line(site: &Path, rel: &str) -> String {
    let bytes = std::fs::read(site.join(rel)).unwrap();
    let d = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&bytes));
    format!("{rel},sha256={d},{}\n", bytes.len())
}

fn install(site: &Path) {
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::create_dir_all(site.join("pkg-1.0.dist-info")).unwrap();
    std::fs::write(site.join("pkg/__init__.py"), "VALUE = 1\n").unwrap();
    std::fs::write(site.join("pkg/data.json"), "{}\n").unwrap();
    std::fs::write(
        site.join("pkg-1.0.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: Pkg\nVersion: 1.0\n",
    )
    .unwrap();
    std::fs::write(site.join("hook.pth"), "import pkg\n").unwrap();
    let mut record = String::new();
    for rel in [
        "pkg/__init__.py",
        "pkg/data.json",
        "pkg-1.0.dist-info/METADATA",
        "hook.pth",
    ] {
        record.push_str(&record_line(site, rel));
    }
    record.push_str("pkg/__pycache__/__init__.cpython-311.pyc,,\npkg-1.0.dist-info/RECORD,,\n");
    std::fs::write(site.join("pkg-1.0.dist-info/RECORD"), record).unwrap();
}

fn check(site: &Path) -> (Vec<mlsec_core::Finding>, EnvSummary) {
    let dists = env::distributions(site).unwrap();
    let mut summary = EnvSummary::default();
    let f = env::verify_site(site, &dists, &mut summary).unwrap();
    (f, summary)
}

#[test]
fn a_clean_install_has_only_its_recorded_hook_listed() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path());
    std::fs::create_dir_all(dir.path().join("pkg/__pycache__")).unwrap();
    std::fs::write(
        dir.path().join("pkg/__pycache__/other.cpython-311.pyc"),
        b"cache",
    )
    .unwrap();
    let (findings, summary) = check(dir.path());
    assert_eq!(summary.distributions, 1);
    assert_eq!(summary.files_verified, 4);
    assert_eq!(summary.files_unrecorded, 0);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        (findings[0].rule, findings[0].severity),
        ("MLS-ENV-002", Severity::Info)
    );
}

#[test]
fn changed_missing_and_planted_files_are_reported_with_severities() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path();
    install(site);
    std::fs::write(site.join("pkg/__init__.py"), "VALUE = 2\n").unwrap();
    std::fs::write(site.join("pkg/data.json"), "[]\n").unwrap();
    std::fs::remove_file(site.join("hook.pth")).unwrap();
    std::fs::write(site.join("evil.pth"), "import os; os.system('true')\n").unwrap();
    std::fs::write(site.join("paths.pth"), "/opt/elsewhere\n").unwrap();
    std::fs::write(site.join("pkg/extra.py"), "x = 1\n").unwrap();
    let (findings, summary) = check(site);
    let find = |fragment: &str| {
        findings
            .iter()
            .find(|f| f.message.contains(fragment))
            .unwrap_or_else(|| panic!("no finding about {fragment}: {findings:?}"))
    };
    assert_eq!(find("pkg/__init__.py differs").severity, Severity::Critical);
    assert_eq!(find("pkg/data.json differs").severity, Severity::High);
    assert_eq!(find("hook.pth is missing").severity, Severity::Medium);
    assert_eq!(find("evil.pth runs code").severity, Severity::Critical);
    assert_eq!(
        find("paths.pth adds import paths").severity,
        Severity::Medium
    );
    assert_eq!(find("pkg/extra.py is code").severity, Severity::High);
    assert_eq!(summary.files_unrecorded, 3);
    assert_eq!(summary.startup_hooks, vec!["evil.pth".to_string()]);
}
