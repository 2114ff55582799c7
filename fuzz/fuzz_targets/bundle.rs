#![no_main]
//! Signature bundles and DSSE envelopes from untrusted bytes: parsed and
//! checked against a key without panicking, never accepted.
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static mlsec_sign::PublicKey {
    static K: OnceLock<mlsec_sign::PublicKey> = OnceLock::new();
    K.get_or_init(|| mlsec_sign::PrivateKey::generate(mlsec_sign::KeyKind::P256).public())
}

fuzz_target!(|data: &[u8]| {
    let _ = mlsec_sign::bundle::read_bundle(data);
    if let Ok(Ok(_)) = mlsec_sign::dsse::verify(data, key()) {
        panic!("an envelope not made with the key verified");
    }
});
