#![no_main]
//! The TorchScript source lexer: bounded on any bytes, findings instead of
//! panics, at most one finding list per file.
use libfuzzer_sys::fuzz_target;
use mlsec_core::Location;
use mlsec_scan::torchscript;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    torchscript::check_torchscript_code(&Location::file("fuzz"), data, &mut out);
    assert!(out.len() <= 64);
});
