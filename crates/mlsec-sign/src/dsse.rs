//! DSSE envelopes (in-toto attestations, securesystemslib): signing and
//! verification over the PAE of the payload bytes as received.

use crate::bundle::pae;
use crate::keys::{PrivateKey, PublicKey};
use crate::{canonical, SignError};
use base64::Engine;
use serde_json::Value;
use sha2::Digest;

/// securesystemslib's keyid: hex SHA-256 of the canonical JSON of
/// `{keytype, scheme, keyval: {public}}` (Ed25519: hex of the raw key;
/// ECDSA: SubjectPublicKeyInfo PEM text).
pub fn sslib_keyid(key: &PublicKey) -> Result<String, SignError> {
    let (keytype, scheme, public) = match key {
        PublicKey::Ed25519(k) => ("ed25519", "ed25519", hex::encode(k.as_bytes())),
        PublicKey::P256(_) => ("ecdsa", "ecdsa-sha2-nistp256", key.to_pem()?),
        PublicKey::P384(_) => ("ecdsa", "ecdsa-sha2-nistp384", key.to_pem()?),
    };
    let v = serde_json::json!({"keytype": keytype, "scheme": scheme, "keyval": {"public": public}});
    let bytes = canonical::encode(&v).map_err(|e| SignError::Key(e.to_string()))?;
    Ok(hex::encode(sha2::Sha256::digest(bytes)))
}

/// A DSSE envelope signed by `key`, with its securesystemslib keyid.
pub fn sign(payload: &[u8], payload_type: &str, key: &PrivateKey) -> Result<Vec<u8>, SignError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = key.sign(&pae(payload_type, payload));
    let v = serde_json::json!({
        "payload": b64.encode(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": sslib_keyid(&key.public())?, "sig": b64.encode(sig)}],
    });
    serde_json::to_vec_pretty(&v).map_err(|e| SignError::Input(e.to_string()))
}

/// Why an envelope did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeFailure {
    /// No signature names this key's keyid.
    NoSignatureForKey,
    BadSignature,
}

/// The payload type and payload bytes of an envelope whose signature by
/// `key` (matched by keyid, as securesystemslib does) verifies.
pub fn verify(
    bytes: &[u8],
    key: &PublicKey,
) -> Result<Result<(String, Vec<u8>), EnvelopeFailure>, SignError> {
    let bad = |m: &str| SignError::Bundle(m.to_string());
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| SignError::Bundle(format!("not JSON: {e}")))?;
    let decode = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
            .map_err(|_| bad("invalid base64"))
    };
    let payload = decode(v["payload"].as_str().ok_or_else(|| bad("no payload"))?)?;
    let payload_type = v["payloadType"]
        .as_str()
        .ok_or_else(|| bad("no payloadType"))?
        .to_string();
    let keyid = sslib_keyid(key)?;
    let sigs = v["signatures"]
        .as_array()
        .ok_or_else(|| bad("no signatures"))?;
    let mine: Vec<&Value> = sigs
        .iter()
        .filter(|s| s["keyid"].as_str() == Some(keyid.as_str()))
        .collect();
    if mine.is_empty() {
        return Ok(Err(EnvelopeFailure::NoSignatureForKey));
    }
    let message = pae(&payload_type, &payload);
    for s in mine {
        let sig = decode(
            s["sig"]
                .as_str()
                .ok_or_else(|| bad("signature without sig"))?,
        )?;
        if key.verify(&message, &sig) {
            return Ok(Ok((payload_type, payload)));
        }
    }
    Ok(Err(EnvelopeFailure::BadSignature))
}
