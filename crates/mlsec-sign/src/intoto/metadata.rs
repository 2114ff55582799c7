//! in-toto metadata (spec v0.9, as in-toto 3.x writes it): the signed
//! "Metablock" (`{"signatures": [{keyid, sig: hex}], "signed": {...}}`,
//! signatures over the canonical JSON of `signed`) and its DSSE form, keys
//! as securesystemslib describes them, links and layouts.

use super::rules::ArtifactRule;
use crate::bundle::PAYLOAD_TYPE;
use crate::keys::{PrivateKey, PublicKey};
use crate::{canonical, dsse, SignError};
use serde_json::Value;
use std::collections::BTreeMap;

/// Largest metadata file read: links of steps over very large folders hold
/// one entry per file, so this is generous, but bounded.
pub const MAX_METADATA_BYTES: u64 = 256 << 20;

/// `path -> {algorithm: hex digest}`, as links record artifacts.
pub type Artifacts = BTreeMap<String, BTreeMap<String, String>>;

/// A functionary or layout key as securesystemslib describes it.
#[derive(Clone)]
pub struct Key {
    pub keyid: String,
    pub public: PublicKey,
}

impl Key {
    pub fn new(public: PublicKey) -> Result<Key, SignError> {
        Ok(Key {
            keyid: dsse::sslib_keyid(&public)?,
            public,
        })
    }

    /// Reads a layout's `keys` entry: `ed25519` (hex of the raw key) or
    /// `ecdsa` (SubjectPublicKeyInfo PEM).
    fn from_json(v: &Value) -> Result<Key, String> {
        let keytype = v["keytype"].as_str().unwrap_or("");
        let scheme = v["scheme"].as_str().unwrap_or("");
        let public = v["keyval"]["public"]
            .as_str()
            .ok_or("a key without keyval.public")?;
        let key = match keytype {
            "ed25519" => {
                let raw: [u8; 32] = hex::decode(public)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or("an ed25519 key whose public value is not 32 hex-encoded bytes")?;
                let k = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map_err(|_| "an ed25519 public key that is not a curve point")?;
                PublicKey::Ed25519(k)
            }
            "ecdsa" | "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" => {
                PublicKey::from_pem(public).map_err(|e| e.to_string())?
            }
            other => {
                return Err(format!(
                    "key type `{other}` (scheme `{scheme}`) is not supported: mlsec verifies \
                     ed25519 and ecdsa (P-256, P-384) keys"
                ))
            }
        };
        let expected_scheme = match &key {
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::P256(_) => "ecdsa-sha2-nistp256",
            PublicKey::P384(_) => "ecdsa-sha2-nistp384",
        };
        if scheme != expected_scheme {
            return Err(format!(
                "scheme `{scheme}` does not fit the key (expected `{expected_scheme}`)"
            ));
        }
        Key::new(key).map_err(|e| e.to_string())
    }

    /// The layout `keys` entry for this key.
    pub fn to_json(&self) -> Result<Value, SignError> {
        let (keytype, scheme, public) = match &self.public {
            PublicKey::Ed25519(k) => ("ed25519", "ed25519", hex::encode(k.as_bytes())),
            PublicKey::P256(_) => ("ecdsa", "ecdsa-sha2-nistp256", self.public.to_pem()?),
            PublicKey::P384(_) => ("ecdsa", "ecdsa-sha2-nistp384", self.public.to_pem()?),
        };
        Ok(serde_json::json!({
            "keyid": self.keyid, "keytype": keytype, "scheme": scheme,
            "keyval": {"public": public},
        }))
    }
}

/// One signature of a metadata file: the keyid it claims and its bytes.
#[derive(Debug, Clone)]
struct Signature {
    keyid: String,
    sig: Vec<u8>,
}

/// A signed metadata file as read, in either of in-toto's two envelopes.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The `signed` object (or the DSSE payload, parsed).
    pub signed: Value,
    /// Exactly the bytes signatures cover: canonical JSON of `signed`, or the
    /// DSSE PAE of the payload bytes as received.
    message: Vec<u8>,
    signatures: Vec<Signature>,
    pub is_dsse: bool,
}

impl Envelope {
    pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        if v.get("payloadType").is_some() {
            return Self::parse_dsse(&v);
        }
        let signed = v.get("signed").ok_or("no `signed` object")?.clone();
        if !signed.is_object() {
            return Err("`signed` is not an object".into());
        }
        let message = canonical::encode(&signed).map_err(|e| e.to_string())?;
        let signatures = signature_list(&v, |s| hex::decode(s).ok())?;
        Ok(Envelope {
            signed,
            message,
            signatures,
            is_dsse: false,
        })
    }

    fn parse_dsse(v: &Value) -> Result<Envelope, String> {
        use base64::Engine;
        let decode = |s: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.trim()))
                .ok()
        };
        let payload_type = v["payloadType"]
            .as_str()
            .ok_or("payloadType is not a string")?;
        if payload_type != PAYLOAD_TYPE {
            return Err(format!(
                "DSSE payloadType `{payload_type}` (expected `{PAYLOAD_TYPE}`)"
            ));
        }
        let payload = decode(v["payload"].as_str().ok_or("no DSSE payload")?)
            .ok_or("the DSSE payload is not base64")?;
        let signed: Value = serde_json::from_slice(&payload)
            .map_err(|e| format!("the DSSE payload is not JSON: {e}"))?;
        if !signed.is_object() {
            return Err("the DSSE payload is not a JSON object".into());
        }
        let signatures = signature_list(v, decode)?;
        Ok(Envelope {
            signed,
            message: crate::bundle::pae(payload_type, &payload),
            signatures,
            is_dsse: true,
        })
    }

    pub fn type_name(&self) -> &str {
        self.signed["_type"].as_str().unwrap_or("")
    }

    /// Whether some signature claiming `key`'s keyid verifies, as
    /// securesystemslib checks it.
    pub fn verify(&self, key: &Key) -> Result<(), String> {
        let mine: Vec<&Signature> = self
            .signatures
            .iter()
            .filter(|s| s.keyid == key.keyid)
            .collect();
        if mine.is_empty() {
            return Err(format!("no signature found for key '{}'", key.keyid));
        }
        if mine
            .iter()
            .any(|s| key.public.verify(&self.message, &s.sig))
        {
            Ok(())
        } else {
            Err(format!("the signature by key '{}' is invalid", key.keyid))
        }
    }

    /// The keyids the signatures claim, in file order.
    pub fn signer_keyids(&self) -> Vec<&str> {
        self.signatures.iter().map(|s| s.keyid.as_str()).collect()
    }
}

fn signature_list(
    v: &Value,
    decode: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<Signature>, String> {
    let list = v["signatures"]
        .as_array()
        .ok_or("`signatures` is not a list")?;
    list.iter()
        .map(|s| {
            let keyid = s["keyid"].as_str().ok_or("a signature without keyid")?;
            let sig = s["sig"].as_str().ok_or("a signature without sig")?;
            Ok(Signature {
                keyid: keyid.to_string(),
                sig: decode(sig).ok_or("a signature that is not encoded as expected")?,
            })
        })
        .collect()
}

/// Signs `signed` in the classic form (the file in-toto 3.x writes:
/// indent 1, sorted keys) or as DSSE.
pub fn sign(signed: &Value, key: &PrivateKey, use_dsse: bool) -> Result<Vec<u8>, SignError> {
    if use_dsse {
        let payload = serde_json::to_vec(signed).map_err(|e| SignError::Input(e.to_string()))?;
        return dsse::sign(&payload, PAYLOAD_TYPE, key);
    }
    let message = canonical::encode(signed).map_err(|e| SignError::Input(e.to_string()))?;
    let keyid = dsse::sslib_keyid(&key.public())?;
    let block = serde_json::json!({
        "signatures": [{"keyid": keyid, "sig": hex::encode(key.sign(&message))}],
        "signed": signed,
    });
    to_indent1(&block)
}

/// JSON with one-space indentation, like Python's `json.dumps(indent=1)`.
pub fn to_indent1(v: &Value) -> Result<Vec<u8>, SignError> {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)
        .map_err(|e| SignError::Input(e.to_string()))?;
    Ok(out)
}

/// What a link says a step did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    pub name: String,
    pub command: Vec<String>,
    pub materials: Artifacts,
    pub products: Artifacts,
    pub return_value: Option<i64>,
}

impl Link {
    pub fn from_signed(v: &Value) -> Result<Link, String> {
        if v["_type"] != "link" {
            return Err(format!("`_type` is {} (expected \"link\")", v["_type"]));
        }
        Ok(Link {
            name: v["name"].as_str().ok_or("a link without name")?.to_string(),
            command: strings(&v["command"], "command")?,
            materials: artifacts(&v["materials"], "materials")?,
            products: artifacts(&v["products"], "products")?,
            return_value: v["byproducts"]["return-value"].as_i64(),
        })
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{what}` holds a non-string"))
            })
            .collect(),
        _ => Err(format!("`{what}` is not a list")),
    }
}

fn artifacts(v: &Value, what: &str) -> Result<Artifacts, String> {
    let map = match v {
        Value::Null => return Ok(Artifacts::new()),
        Value::Object(m) => m,
        _ => return Err(format!("`{what}` is not an object")),
    };
    let mut out = Artifacts::new();
    for (path, hashes) in map {
        let hashes = hashes
            .as_object()
            .ok_or_else(|| format!("`{what}` entry {path:?} is not an object"))?;
        let mut h = BTreeMap::new();
        for (alg, digest) in hashes {
            let d = digest
                .as_str()
                .ok_or_else(|| format!("`{what}` entry {path:?}: digest is not a string"))?;
            h.insert(alg.clone(), d.to_string());
        }
        out.insert(path.clone(), h);
    }
    Ok(out)
}

/// A step of a layout: who may perform it, how many must agree, and what it
/// may consume and produce.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub threshold: usize,
    pub pubkeys: Vec<String>,
    pub expected_command: Vec<String>,
    pub expected_materials: Vec<ArtifactRule>,
    pub expected_products: Vec<ArtifactRule>,
}

/// A command the verifier itself runs after checking the steps.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub name: String,
    pub run: Vec<String>,
    pub expected_materials: Vec<ArtifactRule>,
    pub expected_products: Vec<ArtifactRule>,
}

pub struct Layout {
    pub expires: String,
    pub readme: String,
    pub keys: BTreeMap<String, Key>,
    pub steps: Vec<Step>,
    pub inspections: Vec<Inspection>,
}

impl Layout {
    pub fn from_signed(v: &Value) -> Result<Layout, String> {
        if v["_type"] != "layout" {
            return Err(format!("`_type` is {} (expected \"layout\")", v["_type"]));
        }
        let expires = v["expires"]
            .as_str()
            .ok_or("a layout without `expires`")?
            .to_string();
        super::time::parse_utc(&expires)
            .ok_or_else(|| format!("`expires` {expires:?} is not YYYY-MM-DDTHH:MM:SSZ"))?;
        let mut keys = BTreeMap::new();
        if let Some(map) = v["keys"].as_object() {
            for (id, k) in map {
                let key = Key::from_json(k).map_err(|e| format!("key {id}: {e}"))?;
                if key.keyid != *id {
                    return Err(format!(
                        "key {id}: its content has keyid {} (keys are named by their keyid)",
                        key.keyid
                    ));
                }
                keys.insert(id.clone(), key);
            }
        }
        let rules = |item: &Value, field: &str, name: &str| -> Result<Vec<ArtifactRule>, String> {
            match &item[field] {
                Value::Null => Ok(Vec::new()),
                Value::Array(list) => list
                    .iter()
                    .map(|r| {
                        ArtifactRule::from_json(r).map_err(|e| format!("{name}: {field}: {e}"))
                    })
                    .collect(),
                _ => Err(format!("{name}: `{field}` is not a list")),
            }
        };
        let mut names = std::collections::BTreeSet::new();
        let mut steps = Vec::new();
        for s in v["steps"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let name = s["name"].as_str().ok_or("a step without name")?.to_string();
            let threshold = s["threshold"].as_u64().unwrap_or(1) as usize;
            if threshold == 0 {
                return Err(format!("step {name}: threshold 0"));
            }
            let pubkeys = strings(&s["pubkeys"], "pubkeys")?;
            for k in &pubkeys {
                if !keys.contains_key(k) {
                    return Err(format!(
                        "step {name}: key {k} is not among the layout's keys"
                    ));
                }
            }
            steps.push(Step {
                threshold,
                pubkeys,
                expected_command: strings(&s["expected_command"], "expected_command")?,
                expected_materials: rules(s, "expected_materials", &name)?,
                expected_products: rules(s, "expected_products", &name)?,
                name,
            });
        }
        let mut inspections = Vec::new();
        for s in v["inspect"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let name = s["name"]
                .as_str()
                .ok_or("an inspection without name")?
                .to_string();
            inspections.push(Inspection {
                run: strings(&s["run"], "run")?,
                expected_materials: rules(s, "expected_materials", &name)?,
                expected_products: rules(s, "expected_products", &name)?,
                name,
            });
        }
        for n in steps
            .iter()
            .map(|s| &s.name)
            .chain(inspections.iter().map(|i| &i.name))
        {
            if !names.insert(n.clone()) {
                return Err(format!(
                    "the name {n:?} is used by two steps or inspections"
                ));
            }
        }
        Ok(Layout {
            expires,
            readme: v["readme"].as_str().unwrap_or("").to_string(),
            keys,
            steps,
            inspections,
        })
    }
}
