#![no_main]
//! Canonical JSON of any parsed JSON value: no panic, and deterministic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let a = mlsec_sign::canonical::encode(&v);
        assert_eq!(a, mlsec_sign::canonical::encode(&v));
    }
});
