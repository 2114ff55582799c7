//! The in-toto statement, its DSSE envelope and the Sigstore bundle v0.3
//! that model-signing v1 writes (FORMAT.md A5–A7).

use crate::serialize::{Method, Resource, Serialization};
use crate::SignError;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

/// DSSE pre-authentication encoding: the exact bytes a signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[derive(Serialize)]
struct Statement<'a> {
    _type: &'static str,
    subject: Vec<Subject<'a>>,
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Predicate,
}

#[derive(Serialize)]
struct Subject<'a> {
    name: &'a str,
    digest: Digest,
}

#[derive(Serialize)]
struct Digest {
    sha256: String,
}

#[derive(Serialize)]
struct Predicate {
    serialization: Value,
    resources: Vec<ResourceJson>,
}

#[derive(Serialize)]
struct ResourceJson {
    name: String,
    algorithm: String,
    digest: String,
}

/// The statement's bytes, laid out as the reference's protobuf JSON printer
/// does (2-space indent, `": "`, no trailing newline), field order fixed.
pub fn statement_bytes(model_name: &str, ser: &Serialization, resources: &[Resource]) -> Vec<u8> {
    let mut serialization = serde_json::Map::new();
    serialization.insert(
        "method".into(),
        Value::from(match ser.method {
            Method::Files => "files",
            Method::Shards { .. } => "shards",
        }),
    );
    serialization.insert("hash_type".into(), Value::from(ser.hash_type.name()));
    serialization.insert("allow_symlinks".into(), Value::from(ser.allow_symlinks));
    if let Method::Shards { shard_size } = ser.method {
        serialization.insert("shard_size".into(), Value::from(shard_size));
    }
    serialization.insert("ignore_paths".into(), Value::from(ser.ignore_paths.clone()));
    let st = Statement {
        _type: STATEMENT_TYPE,
        subject: vec![Subject {
            name: model_name,
            digest: Digest {
                sha256: hex::encode(crate::serialize::subject_digest(resources)),
            },
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: Predicate {
            serialization: Value::Object(serialization),
            resources: resources
                .iter()
                .map(|r| ResourceJson {
                    name: r.name.clone(),
                    algorithm: r.algorithm.clone(),
                    digest: hex::encode(&r.digest),
                })
                .collect(),
        },
    };
    serde_json::to_vec_pretty(&st).unwrap_or_default()
}

/// A parsed bundle: the payload bytes exactly as received, and what the
/// verifier needs from the rest.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub payload: Vec<u8>,
    pub payload_type: String,
    pub signature: Vec<u8>,
    pub hint: Option<String>,
    pub certificates: Vec<Vec<u8>>,
}

/// The bundle JSON: compact, no trailing newline, as the reference writes it.
pub fn write_bundle(payload: &[u8], signature: &[u8], hint: &str) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let v = serde_json::json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": b64.encode(payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": b64.encode(signature), "keyid": ""}],
        },
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Parses a bundle. Size-capped by the caller; every field checked.
pub fn read_bundle(bytes: &[u8]) -> Result<Bundle, SignError> {
    let bad = |m: &str| SignError::Bundle(m.to_string());
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| SignError::Bundle(format!("not JSON: {e}")))?;
    let media = v["mediaType"].as_str().ok_or_else(|| bad("no mediaType"))?;
    if media != BUNDLE_MEDIA_TYPE {
        return Err(SignError::Bundle(format!(
            "media type `{media}`, expected `{BUNDLE_MEDIA_TYPE}`"
        )));
    }
    let env = &v["dsseEnvelope"];
    let decode = |s: &str| {
        let s = s.trim();
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
            .map_err(|_| bad("invalid base64"))
    };
    let payload = decode(
        env["payload"]
            .as_str()
            .ok_or_else(|| bad("no dsseEnvelope.payload"))?,
    )?;
    let payload_type = env["payloadType"]
        .as_str()
        .ok_or_else(|| bad("no dsseEnvelope.payloadType"))?
        .to_string();
    let sig = env["signatures"][0]["sig"]
        .as_str()
        .ok_or_else(|| bad("no signature"))?;
    let signature = decode(sig)?;
    let vm = &v["verificationMaterial"];
    let hint = vm["publicKey"]["hint"].as_str().map(str::to_string);
    let certificates = vm["x509CertificateChain"]["certificates"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["rawBytes"].as_str())
                .filter_map(|c| decode(c).ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(Bundle {
        payload,
        payload_type,
        signature,
        hint,
        certificates,
    })
}
