#![no_main]
//! Signature bundles and DSSE envelopes from untrusted bytes: parsed and
//! checked against a key without panicking, never accepted; X.509 chains
//! parsed and walked without panicking.
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static mlsec_sign::PublicKey {
    static K: OnceLock<mlsec_sign::PublicKey> = OnceLock::new();
    K.get_or_init(|| mlsec_sign::PrivateKey::generate(mlsec_sign::KeyKind::P256).public())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = mlsec_sign::bundle::read_bundle(data) {
        // Certificate chains from the bundle, checked against themselves as
        // roots: parsed and walked without panicking or looping.
        let _ = mlsec_sign::x509::verify_chain(&b.certificates, &b.certificates);
    }
    let _ = mlsec_sign::x509::verify_chain(&[data.to_vec()], &[data.to_vec()]);
    if let Ok(Ok(_)) = mlsec_sign::dsse::verify(data, key()) {
        panic!("an envelope not made with the key verified");
    }
});
