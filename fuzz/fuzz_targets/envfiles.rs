#![no_main]
//! What `mlsec env verify` reads from an environment and the user: RECORD
//! files, requirements/uv/poetry lockfiles and OSV advisories, from
//! untrusted bytes, without panicking.
use libfuzzer_sys::fuzz_target;
use mlsec_sign::env::{lock, osv, parse_record};

fuzz_target!(|data: &[u8]| {
    let _ = parse_record(data);
    let text = String::from_utf8_lossy(data);
    for format in [lock::LockFormat::Requirements, lock::LockFormat::Uv, lock::LockFormat::Poetry] {
        let _ = lock::parse_text(format, &text);
    }
    if let Ok(a) = serde_json::from_slice::<osv::Advisory>(data) {
        let v: pep440_rs::Version = "1.2.3".parse().unwrap();
        for x in &a.affected {
            for r in &x.ranges {
                let _ = osv::in_range(&v, &r.events);
            }
        }
    }
});
