#![no_main]
//! What `mlsec data gate` reads from users and senders: the policy (TOML)
//! and signed batch manifests (and the audit's time and text readers), from
//! untrusted bytes — parsed without
//! panicking, and a manifest never verified by a key that did not sign it.
use libfuzzer_sys::fuzz_target;
use mlsec_data::gate::{manifest, policy::Policy};
use std::sync::OnceLock;

fn key() -> &'static mlsec_sign::PublicKey {
    static K: OnceLock<mlsec_sign::PublicKey> = OnceLock::new();
    K.get_or_init(|| mlsec_sign::PrivateKey::generate(mlsec_sign::KeyKind::Ed25519).public())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Policy::parse(&text);
    // The leakage audit's readers of user text: times and shingles.
    let _ = mlsec_data::leakage::parse_time(&text);
    let _ = mlsec_data::leakage::minhash::shingles(&text, 5);
    let sources = [("vendor".to_string(), key().clone())];
    assert!(manifest::verify(data, &sources).is_err(), "a manifest not signed by the key verified");
});
