#![no_main]
//! The onnx header checks: bounded on any bytes, findings instead of panics.
use libfuzzer_sys::fuzz_target;
use mlsec_core::Location;
use mlsec_scan::formats;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let loc = Location::file("fuzz");
    let _ = formats::is_onnx(data);
    formats::check_onnx(&loc, data, &mut out);
    formats::check_hdf5_keras(&loc, data, &mlsec_scan::Policy::default(), &mut out);
});
