#![no_main]
//! The symbolic pickle machine: bounded work and memory on any stream.
use libfuzzer_sys::fuzz_target;
use mlsec_scan::pickle::{analyse, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_ops: 100_000, max_stack: 10_000, max_memo: 10_000, ..Limits::default() };
    let a = analyse(data, &limits);
    assert!(a.end as usize <= data.len());
});
