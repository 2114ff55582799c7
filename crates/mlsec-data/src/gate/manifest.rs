//! Signed batch manifests: an in-toto Statement v1 naming the batch file and
//! its SHA-256, with the sending source in the predicate, in a DSSE envelope
//! signed by the source's key (the formats of `mlsec attest`, so any DSSE
//! verifier can check one).

use mlsec_sign::keys::{PrivateKey, PublicKey};
use serde_json::Value;

pub const PREDICATE_TYPE: &str = "https://mlsec.dev/data-batch/v1";
const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The statement for a batch.
pub fn statement(batch_name: &str, sha256: &str, source: &str, rows: usize) -> Value {
    serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": batch_name, "digest": {"sha256": sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"source": source, "rows": rows},
    })
}

/// Signs a batch manifest.
pub fn create(statement: &Value, key: &PrivateKey) -> Result<Vec<u8>, String> {
    let payload = serde_json::to_vec(statement).map_err(|e| e.to_string())?;
    mlsec_sign::dsse::sign(&payload, PAYLOAD_TYPE, key).map_err(|e| e.to_string())
}

/// What a verified manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub source: String,
    pub sha256: String,
    pub rows: Option<u64>,
}

/// Checks an envelope against the keys of the allowed sources, then reads
/// it: the first source whose key signed it is the sender, and the sender
/// named inside must be that source. `Err` says why the batch is refused.
pub fn verify(envelope: &[u8], sources: &[(String, PublicKey)]) -> Result<Manifest, String> {
    let mut signer = None;
    for (name, key) in sources {
        match mlsec_sign::dsse::verify(envelope, key) {
            Ok(Ok((payload_type, payload))) => {
                if payload_type != PAYLOAD_TYPE {
                    return Err(format!(
                        "payload type `{payload_type}` is not an in-toto statement"
                    ));
                }
                signer = Some((name.clone(), payload));
                break;
            }
            Ok(Err(_)) => continue,
            Err(e) => return Err(format!("not a DSSE envelope: {e}")),
        }
    }
    let Some((source, payload)) = signer else {
        return Err("no allowed source's key signed this manifest".into());
    };
    let v: Value =
        serde_json::from_slice(&payload).map_err(|e| format!("statement is not JSON: {e}"))?;
    if v["predicateType"] != PREDICATE_TYPE {
        return Err(format!(
            "predicate type {} is not {PREDICATE_TYPE}",
            v["predicateType"]
        ));
    }
    let claimed = v["predicate"]["source"].as_str().unwrap_or_default();
    if claimed != source {
        return Err(format!(
            "signed by `{source}` but claims to come from `{claimed}`"
        ));
    }
    let subjects = v["subject"]
        .as_array()
        .ok_or("statement without subjects")?;
    if subjects.len() != 1 {
        return Err("a batch manifest names exactly one batch".into());
    }
    let sha256 = subjects[0]["digest"]["sha256"]
        .as_str()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("subject without a SHA-256 digest")?
        .to_ascii_lowercase();
    Ok(Manifest {
        source,
        sha256,
        rows: v["predicate"]["rows"].as_u64(),
    })
}
