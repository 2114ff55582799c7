#![no_main]
//! The 7z reader: any input is read without panicking, and what it hands
//! out stays within the member, total and count limits.
use libfuzzer_sys::fuzz_target;
use mlsec_scan::sevenzip::{read_members, Budget};

const BUDGET: Budget = Budget {
    member_bytes: 1 << 20,
    total_bytes: 4 << 20,
    members: 1_000,
};

fuzz_target!(|data: &[u8]| {
    let mut total = 0usize;
    let (count, _) = read_members(data, BUDGET, |m| {
        assert!(m.bytes.len() as u64 <= BUDGET.member_bytes);
        total += m.bytes.len();
    });
    assert!(count <= BUDGET.members);
    assert!(total as u64 <= BUDGET.total_bytes);
});
