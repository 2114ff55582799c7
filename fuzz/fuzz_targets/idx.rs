#![no_main]
//! IDX parser, plain and gzipped (bounded inflate).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = mlsec_data::idx::parse(data) {
        assert!(f.header.data_offset + f.array.data.len() + f.trailing_bytes == data.len());
    }
    let _ = mlsec_data::idx::parse_gzip(data, 1 << 20);
});
