#![no_main]
//! The safetensors header checks: bounded on any bytes, findings instead of panics.
use libfuzzer_sys::fuzz_target;
use mlsec_core::Location;
use mlsec_scan::formats;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let loc = Location::file("fuzz");
    if formats::is_safetensors(data) {
        formats::check_safetensors(&loc, data, &mut out);
    }
});
