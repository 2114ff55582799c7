#![no_main]
//! in-toto links, layouts (classic and DSSE), artifact rules and fnmatch
//! patterns from untrusted bytes: parsed without panicking or hanging, and
//! never accepted as signed by a key that did not sign them.
use libfuzzer_sys::fuzz_target;
use mlsec_sign::intoto::{fnmatch::fnmatch, rules::ArtifactRule, Envelope, Key, Layout, Link};
use std::sync::OnceLock;

fn key() -> &'static Key {
    static K: OnceLock<Key> = OnceLock::new();
    K.get_or_init(|| {
        Key::new(mlsec_sign::PrivateKey::generate(mlsec_sign::KeyKind::Ed25519).public()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::parse(data) {
        let _ = Layout::from_signed(&env.signed);
        let _ = Link::from_signed(&env.signed);
        assert!(env.verify(key()).is_err(), "metadata not signed by the key verified");
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = ArtifactRule::from_json(&v);
    }
    let text = String::from_utf8_lossy(data);
    if let Some((pattern, name)) = text.split_once('\n') {
        let _ = fnmatch(name, pattern);
    }
});
