#![no_main]
//! NPY header and body parser: no input may panic, hang or over-allocate.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = mlsec_data::npy::parse(data) {
        assert_eq!(f.array.data.len(), f.array.len() * f.array.dtype.size());
        assert!(f.header.data_offset + f.array.data.len() + f.trailing_bytes == data.len());
    }
});
