#![no_main]
//! NPZ (zip of NPY members) with a small inflate limit, as a zip-bomb guard.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mlsec_data::npy::parse_npz(data, 1 << 20);
});
