#![no_main]
//! The gguf header checks: bounded on any bytes, findings instead of panics.
use libfuzzer_sys::fuzz_target;
use mlsec_core::Location;
use mlsec_scan::formats;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let loc = Location::file("fuzz");
    let mut d = b"GGUF".to_vec();
    d.extend_from_slice(data);
    formats::check_gguf(&loc, &d, &mut out);
});
