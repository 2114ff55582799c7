#![no_main]
//! The tolerant zip reader: every member it lists can be read within limits.
use libfuzzer_sys::fuzz_target;
use mlsec_scan::zipread;

fuzz_target!(|data: &[u8]| {
    let ar = zipread::read(data, 1_000);
    for m in &ar.members {
        if let Ok(bytes) = zipread::member_data(data, m, 1 << 20) {
            assert!(bytes.len() <= 1 << 20);
        }
    }
});
