#![no_main]
//! The ONNX graph decoder behind `mlsec model` and the attacks: bounded,
//! errors instead of panics, whatever the bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = mlsec_onnx::Graph::decode(data) {
        let _ = g.logits_name();
    }
});
