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

/// The message pre-1.0 model-signing signed by mistake: the PAE header
/// with a capital `V` followed by Python's `repr()` of the payload bytes
/// (`b'...'` with escapes). Verifiers accept it for old signatures.
pub fn pae_compat(payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEV1 {} {PAYLOAD_TYPE} {} ",
        PAYLOAD_TYPE.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(python_bytes_repr(payload).as_bytes());
    out
}

/// Python's `repr(bytes)`: single quotes unless the bytes hold `'` and no
/// `"`; `\\`, the quote, `\t`, `\n`, `\r` escaped; other bytes outside
/// printable ASCII as `\xNN`.
fn python_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
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

/// What a bundle carries to identify the signer.
pub enum Material {
    /// The key method: hex SHA-256 of the public key's PEM.
    Hint(String),
    /// The certificate method: DER certificates, the signing one first.
    Certificates(Vec<Vec<u8>>),
}

/// The bundle JSON: compact, no trailing newline, as the reference writes it.
pub fn write_bundle(payload: &[u8], signature: &[u8], material: &Material) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let material = match material {
        Material::Hint(hint) => {
            serde_json::json!({"publicKey": {"hint": hint}, "tlogEntries": []})
        }
        Material::Certificates(certs) => serde_json::json!({
            "x509CertificateChain": {
                "certificates": certs.iter().map(|c| serde_json::json!({"rawBytes": b64.encode(c)})).collect::<Vec<_>>(),
            },
            "tlogEntries": [],
        }),
    };
    let v = serde_json::json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": material,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr_of_bytes() {
        // Values printed by CPython 3.11: repr(b"a'b\n\x00\xff\\"), repr(b'a"b\'').
        assert_eq!(
            python_bytes_repr(b"a'b\n\x00\xff\\"),
            r#"b"a'b\n\x00\xff\\""#
        );
        assert_eq!(python_bytes_repr(b"a\"b'"), r#"b'a"b\''"#);
        assert_eq!(python_bytes_repr(b"{\"x\": 1}\t\r"), r#"b'{"x": 1}\t\r'"#);
        assert!(pae_compat(b"{}").starts_with(b"DSSEV1 28 application/vnd.in-toto+json 2 b'{}'"));
    }
}
