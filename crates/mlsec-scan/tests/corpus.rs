//! The fixture corpus (written by scripts/make_scan_fixtures.py): every
//! malicious artifact is caught at the expected severity with the expected
//! globals and rules; no benign artifact produces a finding above its bound.

use mlsec_core::Severity;
use mlsec_scan::{scan_bytes, ScanOptions};
use serde_json::Value;
use std::path::Path;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

#[test]
fn every_fixture_meets_its_expectation() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    let opts = ScanOptions::default();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (rel, exp) in expected.as_object().unwrap() {
        let data = std::fs::read(fixtures().join(rel)).unwrap();
        let scan = scan_bytes(rel, &data, &opts);
        let highest = scan.findings.iter().map(|f| f.severity).max();
        let sev = |v: &Value| v.as_str().map(|s| s.parse::<Severity>().unwrap());
        if let Some(min) = sev(&exp["min_severity"]) {
            if highest.is_none_or(|h| h < min) {
                failures.push(format!(
                    "{rel}: highest {highest:?}, expected at least {min} ({})",
                    exp["why"]
                ));
            }
        }
        if let Some(max) = sev(&exp["max_severity"]) {
            if highest.is_some_and(|h| h > max) {
                failures.push(format!(
                    "{rel}: false alarm {highest:?} > {max}: {:?}",
                    scan.findings.iter().map(|f| &f.message).collect::<Vec<_>>()
                ));
            }
        }
        for g in exp["globals"].as_array().unwrap() {
            let g = g.as_str().unwrap();
            let named = scan.findings.iter().any(|f| {
                f.evidence.get("global").and_then(Value::as_str) == Some(g)
                    || f.evidence.get("resolved").and_then(Value::as_str) == Some(g)
                    || f.evidence
                        .get("globals")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|x| x == g))
            });
            if !named {
                failures.push(format!("{rel}: no finding names {g}"));
            }
        }
        for r in exp["rules"].as_array().unwrap() {
            if !scan.findings.iter().any(|f| f.rule == r.as_str().unwrap()) {
                failures.push(format!("{rel}: rule {r} not raised"));
            }
        }
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} fixtures");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn verify_data_catches_a_changed_member() {
    let data = std::fs::read(fixtures().join("benign/state-dict.pt")).unwrap();
    // Flip one byte of the first tensor's storage (stored, so the bytes are plain).
    let key = b"archive/data/0";
    let at = data.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let mut tampered = data.clone();
    tampered[at + 2] ^= 0x40;
    let plain = scan_bytes("t.pt", &tampered, &ScanOptions::default());
    assert!(
        plain.findings.is_empty(),
        "without --verify-data nothing is read beyond the pickles"
    );
    let verify = ScanOptions {
        verify_data: true,
        ..ScanOptions::default()
    };
    let checked = scan_bytes("t.pt", &tampered, &verify);
    assert!(
        checked.findings.iter().any(|f| f.rule == "MLS-SCAN-006"),
        "{:?}",
        checked.findings
    );
    assert!(scan_bytes("ok.pt", &data, &verify).findings.is_empty());
}

#[test]
fn archives_handed_to_a_loader_many_times_are_scanned_once() {
    // The fixture's zip, as the latin-1 string it passes to
    // torch.storage._load_from_bytes, loaded 2,000 times over: each load
    // makes a fresh copy, and all are one file to scan. The whole stream
    // also reads as a zip whose members overlap 4,000 local headers, each
    // member a zip of the headers after it: bounded, not cubic, work.
    let data = std::fs::read(fixtures().join("malicious/nested-zip-load-from-bytes.pkl")).unwrap();
    let head = b"c_codecs\nencode\nX";
    let at = data.windows(head.len()).position(|w| w == head).unwrap() + head.len();
    let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let text = &data[at + 4..at + 4 + len];
    let mut stream = b"\x80\x02(".to_vec();
    for _ in 0..2000 {
        stream.extend_from_slice(b"ctorch.storage\n_load_from_bytes\nc_codecs\nencode\nX");
        stream.extend_from_slice(&(len as u32).to_le_bytes());
        stream.extend_from_slice(text);
        stream.extend_from_slice(b"X\x06\x00\x00\x00latin1\x86R\x85R");
    }
    stream.extend_from_slice(b"l.");
    let scan = scan_bytes("many.pkl", &stream, &ScanOptions::default());
    let payloads = scan
        .findings
        .iter()
        .filter(|f| f.evidence.get("global").and_then(Value::as_str) == Some("posix.system"))
        .count();
    assert_eq!(payloads, 1, "{:?}", scan.findings);
    assert!(scan.findings.len() < 10_000, "{}", scan.findings.len());
    assert!(scan
        .findings
        .iter()
        .any(|f| f.message.contains("resource limit") && f.severity == Severity::High));
}

#[test]
fn real_model_files_are_clean() {
    // Files written by torch.save, torch.jit.save and an ONNX exporter, from
    // registry packages (see tests/real/README.md): nothing above low.
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/real"));
    let mut seen = 0;
    for (name, kind) in [
        ("lpips-v0.1-alex.pth", "pytorch-legacy"),
        ("lpips-v0.1-vgg.pth", "pytorch-legacy"),
        ("silero_vad.jit", "pytorch-zip"),
        ("silero_vad_16k_sequence.onnx", "onnx"),
    ] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let scan = scan_bytes(name, &data, &ScanOptions::default());
        assert_eq!(scan.kind.name(), kind, "{name}");
        let high: Vec<_> = scan
            .findings
            .iter()
            .filter(|f| f.severity > Severity::Low)
            .map(|f| &f.message)
            .collect();
        assert!(high.is_empty(), "{name}: {high:?}");
        seen += 1;
    }
    // Licence texts are not pickles, although `Copyright…` starts with an opcode byte.
    let text = std::fs::read(dir.join("LICENSE.lpips")).unwrap();
    assert_eq!(
        scan_bytes("LICENSE", &text, &ScanOptions::default())
            .kind
            .name(),
        "other"
    );
    assert_eq!(seen, 4);
}

#[test]
fn real_legacy_checkpoint_converts() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/real"));
    let data = std::fs::read(dir.join("lpips-v0.1-alex.pth")).unwrap();
    let tensors = mlsec_scan::convert::to_tensors(&data).unwrap();
    let shapes: Vec<(String, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.shape.clone()))
        .collect();
    let channels: Vec<usize> = shapes.iter().map(|(_, s)| s[1]).collect();
    assert_eq!(channels, [64, 192, 384, 256, 256], "{shapes:?}");
    assert!(tensors
        .values()
        .all(|t| t.dtype == "F32" && t.data.len() == t.shape.iter().product::<usize>() * 4));
}

#[test]
fn verify_data_checks_storage_sizes_against_data_pkl() {
    let verify = ScanOptions {
        verify_data: true,
        ..ScanOptions::default()
    };
    for name in [
        "verify/storage-truncated.pt",
        "verify/storage-extra-bytes.pt",
    ] {
        let data = std::fs::read(fixtures().join(name)).unwrap();
        let found = scan_bytes(name, &data, &verify);
        let f = found
            .findings
            .iter()
            .find(|f| f.rule == "MLS-SCAN-006")
            .unwrap_or_else(|| panic!("{name}: {:?}", found.findings));
        assert_eq!(f.evidence["declared_elements"], 6, "{name}");
        assert_eq!(f.location.member.as_deref(), Some("archive/data/0"));
    }
    // A consistent checkpoint passes verification.
    let ok = std::fs::read(fixtures().join("benign/state-dict.pt")).unwrap();
    assert!(scan_bytes("ok", &ok, &verify).findings.is_empty());
}

#[test]
fn the_inflate_cap_never_truncates_stored_members() {
    // Stored (uncompressed) members are read in place: a cap meant for
    // decompression bombs must neither flag them nor skip their CRC.
    let data = std::fs::read(fixtures().join("benign/state-dict.pt")).unwrap();
    let tiny_cap = ScanOptions {
        verify_data: true,
        max_member_bytes: 8,
        ..ScanOptions::default()
    };
    assert!(scan_bytes("ok.pt", &data, &tiny_cap).findings.is_empty());
    let key = b"archive/data/0";
    let at = data.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    let mut tampered = data.clone();
    tampered[at + 20] ^= 0x01; // past the 8-byte cap
    let found = scan_bytes("t.pt", &tampered, &tiny_cap);
    assert!(
        found.findings.iter().any(|f| f.rule == "MLS-SCAN-006"),
        "{:?}",
        found.findings
    );
}
