#![no_main]
//! The whole scanner on arbitrary bytes: recognition, archives, nested pickles.
use libfuzzer_sys::fuzz_target;
use mlsec_scan::{scan_bytes, ScanOptions};

fuzz_target!(|data: &[u8]| {
    let mut opts = ScanOptions::default();
    opts.max_member_bytes = 1 << 20;
    opts.limits.max_ops = 100_000;
    opts.verify_data = true;
    let _ = scan_bytes("fuzz", data, &opts);
});
