//! Property tests for the parsers of untrusted signing inputs: bundles,
//! DSSE envelopes, canonical JSON, in-toto links, layouts and artifact rules.

use mlsec_sign::{bundle, canonical, dsse, PrivateKey};
use proptest::prelude::*;
use std::sync::OnceLock;

fn key() -> &'static PrivateKey {
    static K: OnceLock<PrivateKey> = OnceLock::new();
    K.get_or_init(|| PrivateKey::generate(mlsec_sign::KeyKind::Ed25519))
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z\\\\\"\n é]{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-zA-Z_é]{0,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bundle_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = bundle::read_bundle(&bytes);
    }

    #[test]
    fn bundle_reader_never_panics_on_json_shapes(v in json_value(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
        let doc = serde_json::json!({"mediaType": bundle::BUNDLE_MEDIA_TYPE, "verificationMaterial": v.clone(),
            "dsseEnvelope": {"payload": b64, "payloadType": bundle::PAYLOAD_TYPE, "signatures": [{"sig": b64}]}});
        let _ = bundle::read_bundle(&serde_json::to_vec(&doc).unwrap());
    }

    #[test]
    fn envelope_verification_never_panics_and_never_accepts_a_changed_payload(payload in prop::collection::vec(any::<u8>(), 1..128), flip in any::<prop::sample::Index>()) {
        let env = dsse::sign(&payload, "application/vnd.in-toto+json", key()).unwrap();
        prop_assert!(dsse::verify(&env, &key().public()).unwrap().is_ok());
        let mut changed = payload.clone();
        let i = flip.index(changed.len());
        changed[i] ^= 1;
        let mut v: serde_json::Value = serde_json::from_slice(&env).unwrap();
        use base64::Engine;
        v["payload"] = base64::engine::general_purpose::STANDARD.encode(&changed).into();
        prop_assert!(dsse::verify(&serde_json::to_vec(&v).unwrap(), &key().public()).unwrap().is_err());
        let _ = dsse::verify(&payload, &key().public());
    }

    #[test]
    fn canonical_json_is_deterministic_sorted_and_compact(v in json_value()) {
        let a = canonical::encode(&v).unwrap();
        // Same value, keys inserted in another order: same bytes.
        let round: serde_json::Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        prop_assert_eq!(&a, &canonical::encode(&round).unwrap());
        // Without raw control characters, canonical JSON is JSON for the same value.
        if !a.iter().any(|b| *b < 0x20) {
            let parsed: serde_json::Value = serde_json::from_slice(&a).unwrap();
            prop_assert_eq!(parsed, v);
        }
    }

    #[test]
    fn intoto_metadata_parsers_never_panic(v in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        use mlsec_sign::intoto::{rules::ArtifactRule, Envelope, Layout, Link};
        let _ = Envelope::parse(&bytes);
        let _ = Layout::from_signed(&v);
        let _ = Link::from_signed(&v);
        let _ = ArtifactRule::from_json(&v);
        for wrapped in [serde_json::json!({"signed": v.clone(), "signatures": []}),
                        serde_json::json!({"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": v.clone()})] {
            let _ = Envelope::parse(&serde_json::to_vec(&wrapped).unwrap());
        }
    }

    #[test]
    fn signed_links_round_trip_and_any_changed_digest_breaks_the_signature(
        paths in prop::collection::btree_map("[a-z]{1,4}(/[a-z]{1,4}){0,2}", "[0-9a-f]{64}", 1..6),
        dsse_form in any::<bool>(),
        pick in any::<prop::sample::Index>(),
    ) {
        use mlsec_sign::intoto::{metadata, Envelope, Key, Link};
        let arts: serde_json::Map<String, serde_json::Value> = paths.iter()
            .map(|(p, h)| (p.clone(), serde_json::json!({"sha256": h}))).collect();
        let link = serde_json::json!({"_type": "link", "name": "step", "command": ["true"],
            "materials": arts, "products": {}, "byproducts": {"return-value": 0}, "environment": {}});
        let bytes = metadata::sign(&link, key(), dsse_form).unwrap();
        let k = Key::new(key().public()).unwrap();
        let env = Envelope::parse(&bytes).unwrap();
        prop_assert!(env.verify(&k).is_ok());
        prop_assert_eq!(Link::from_signed(&env.signed).unwrap().materials.len(), paths.len());
        // Change one digest inside what was signed, keep the signature.
        let victim = paths.keys().nth(pick.index(paths.len())).unwrap().clone();
        let mut tampered = link.clone();
        tampered["materials"][&victim]["sha256"] = "0".repeat(64).into();
        let mut doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if dsse_form {
            use base64::Engine;
            doc["payload"] = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&tampered).unwrap()).into();
        } else {
            doc["signed"] = tampered;
        }
        let env = Envelope::parse(&serde_json::to_vec(&doc).unwrap()).unwrap();
        prop_assert!(env.verify(&k).is_err());
    }

    #[test]
    fn fnmatch_star_matches_everything_and_literals_match_themselves(name in "[a-z/._-]{0,12}") {
        use mlsec_sign::intoto::fnmatch::fnmatch;
        prop_assert!(fnmatch(&name, "*"));
        prop_assert!(fnmatch(&name, &name));
        let (star, longer) = (format!("{name}*"), format!("{name}x"));
        prop_assert!(fnmatch(&name, &star));
        prop_assert!(!fnmatch(&longer, &name));
    }

    #[test]
    fn environment_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), text in "[a-z0-9=<>~!.,;#\\\\ \\n\"\\[\\]-]{0,200}") {
        use mlsec_sign::env::{lock, parse_record};
        let _ = parse_record(&bytes);
        for format in [lock::LockFormat::Requirements, lock::LockFormat::Uv, lock::LockFormat::Poetry] {
            let _ = lock::parse_text(format, &text);
            let _ = lock::parse_text(format, &String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn names_normalise_idempotently(name in "[A-Za-z0-9._-]{1,20}") {
        use mlsec_sign::env::normalise_name;
        let once = normalise_name(&name);
        prop_assert_eq!(normalise_name(&once), once.clone());
        prop_assert!(!once.contains("--") && !once.contains('_') && !once.contains('.'));
    }

    #[test]
    fn an_introduced_fixed_range_is_the_half_open_interval(a in 0u64..20, b in 0u64..20, v in 0u64..25, minor in 0u64..3) {
        use mlsec_sign::env::osv::in_range;
        use std::collections::BTreeMap;
        let (lo, hi) = (a.min(b), a.max(b) + 1);
        let events = vec![
            BTreeMap::from([("introduced".to_string(), format!("{lo}.0"))]),
            BTreeMap::from([("fixed".to_string(), format!("{hi}.0"))]),
        ];
        let version: pep440_rs::Version = format!("{v}.{minor}").parse().unwrap();
        let expected = (lo, 0) <= (v, minor) && (v, minor) < (hi, 0);
        prop_assert_eq!(in_range(&version, &events), expected);
    }
}
