//! mlsec-sign: model signing compatible with OpenSSF model-signing v1.
//!
//! A model folder (or file) is serialised into resources ([`serialize`]),
//! described by an in-toto statement, wrapped in DSSE and written as a
//! Sigstore bundle v0.3 ([`bundle`]). Verification checks the signature over
//! the payload bytes exactly as received before reading anything in them,
//! then re-hashes the model and says precisely what differs.

pub mod attest;
pub mod bundle;
pub mod cache;
pub mod canonical;
pub mod dsse;
pub mod env;
pub mod intoto;
pub mod keys;
pub mod rules;
pub mod serialize;
pub mod x509;

pub use keys::{KeyKind, PrivateKey, PublicKey};
pub use serialize::{HashType, Method, Resource, Serialization};

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest signature file read (a 10,000-file model's bundle is ~2 MB).
pub const MAX_BUNDLE_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0}")]
    Input(String),
    #[error("key: {0}")]
    Key(String),
    #[error("invalid signature bundle: {0}")]
    Bundle(String),
}

impl SignError {
    pub fn io(path: &Path, e: &std::io::Error) -> SignError {
        let what = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        SignError::Input(format!("{}: {what}", path.display()))
    }
}

/// Reads a whole file of untrusted metadata, refusing it beyond `max` bytes
/// (read through a `take`, so a file that grows meanwhile is still bounded).
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(buf)
}

/// Ignore paths given on the command line are relative to the current
/// directory (`tiny-model/.DS_Store`) or to the model root (`.DS_Store`).
pub fn relative_ignores(model: &Path, given: &[PathBuf]) -> Vec<String> {
    let canon = model.canonicalize().ok();
    given
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(model)
                .ok()
                .map(Path::to_path_buf)
                .or_else(|| {
                    canon.as_ref().and_then(|c| {
                        p.canonicalize()
                            .ok()?
                            .strip_prefix(c)
                            .ok()
                            .map(Path::to_path_buf)
                    })
                })
                .unwrap_or_else(|| p.clone());
            rel.to_string_lossy()
                .replace('\\', "/")
                .trim_start_matches("./")
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The signature file's path relative to the model, when it lies inside it.
fn signature_inside(model: &Path, signature: &Path) -> Option<String> {
    let m = model.canonicalize().ok()?;
    let parent = signature
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let s = parent.canonicalize().ok()?.join(signature.file_name()?);
    s.strip_prefix(&m)
        .ok()
        .map(|r| r.to_string_lossy().replace('\\', "/"))
}

/// What signing produced.
pub struct Signed {
    pub bundle: Vec<u8>,
    pub resources: Vec<Resource>,
    pub subject_digest: String,
}

/// Signs a model: the signature path, if inside the model, is ignored and
/// recorded among the signed ignore paths.
pub fn sign(
    model: &Path,
    key: &PrivateKey,
    ser: Serialization,
    signature: &Path,
) -> Result<Signed, SignError> {
    sign_with(model, key, ser, signature, &[], None)
}

/// Signs a model; with `certificates` (DER, the signing certificate first,
/// then its chain) the bundle carries them instead of a key hint — the
/// reference's certificate method. The certificate must hold `key`'s
/// public half.
pub fn sign_with(
    model: &Path,
    key: &PrivateKey,
    mut ser: Serialization,
    signature: &Path,
    certificates: &[Vec<u8>],
    cache: Option<&mut cache::DigestCache>,
) -> Result<Signed, SignError> {
    if let Some(leaf) = certificates.first() {
        let in_cert = x509::public_key(leaf)?;
        if in_cert.to_pem()? != key.public().to_pem()? {
            return Err(SignError::Key(
                "the certificate's public key is not the signing key's".into(),
            ));
        }
        if matches!(in_cert, PublicKey::Ed25519(_)) {
            return Err(SignError::Key(
                "the certificate method takes ECDSA keys (P-256, P-384)".into(),
            ));
        }
    }
    if matches!(ser.method, Method::Shards { .. }) && ser.hash_type != HashType::Sha256 {
        return Err(SignError::Input(
            "shard serialisation uses sha256 only".into(),
        ));
    }
    if let Some(inner) = signature_inside(model, signature) {
        ser.ignore_paths.push(inner);
    }
    let mut signed_ignores: Vec<String> = serialize::DEFAULT_IGNORES
        .iter()
        .map(|s| s.to_string())
        .collect();
    for p in &ser.ignore_paths {
        if !signed_ignores.contains(p) {
            signed_ignores.push(p.clone());
        }
    }
    let files = serialize::walk(model, &ser, &[])?;
    let resources = match cache {
        Some(c) => serialize::hash_cached(&files, &ser, c)?,
        None => serialize::hash(&files, &ser)?,
    };
    ser.ignore_paths = signed_ignores;
    let name = model
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| model.display().to_string());
    let payload = bundle::statement_bytes(&name, &ser, &resources);
    let sig = key.sign(&bundle::pae(bundle::PAYLOAD_TYPE, &payload));
    let material = if certificates.is_empty() {
        bundle::Material::Hint(key.public().hint()?)
    } else {
        bundle::Material::Certificates(certificates.to_vec())
    };
    Ok(Signed {
        bundle: bundle::write_bundle(&payload, &sig, &material),
        subject_digest: hex::encode(serialize::subject_digest(&resources)),
        resources,
    })
}

/// Options for [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// More paths to ignore, relative to the model root.
    pub ignore_paths: Vec<String>,
    /// Only check files the signature names; extra files pass.
    pub ignore_unsigned_files: bool,
    /// Verify only these resources (relative names).
    pub only: Vec<String>,
}

/// Why verification failed; `Differs` lists every difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    KeyMismatch,
    BadSignature,
    /// The certificate chain does not lead to a trusted root, or the
    /// signing certificate may not sign.
    Certificate(String),
    BadStatement(String),
    Differs(Diff),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub changed: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// (old name, new name): a removed and an added file with the same content.
    pub renamed: Vec<(String, String)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.renamed.is_empty()
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::KeyMismatch => {
                f.write_str("the signature was made with another key (public key hint differs)")
            }
            Failure::BadSignature => f.write_str("the signature does not match the signed payload"),
            Failure::Certificate(m) => write!(f, "the signing certificate is not trusted: {m}"),
            Failure::BadStatement(m) => write!(f, "the signed statement is invalid: {m}"),
            Failure::Differs(d) => {
                let mut parts = Vec::new();
                if !d.changed.is_empty() {
                    parts.push(format!("changed: {}", d.changed.join(", ")));
                }
                if !d.added.is_empty() {
                    parts.push(format!("added: {}", d.added.join(", ")));
                }
                if !d.removed.is_empty() {
                    parts.push(format!("removed: {}", d.removed.join(", ")));
                }
                if !d.renamed.is_empty() {
                    parts.push(format!(
                        "renamed: {}",
                        d.renamed
                            .iter()
                            .map(|(a, b)| format!("{a} -> {b}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                write!(
                    f,
                    "the model differs from what was signed ({})",
                    parts.join("; ")
                )
            }
        }
    }
}

/// The outcome of a verification that could be carried out.
#[derive(Debug, Clone)]
pub struct Verified {
    pub result: Result<(), Failure>,
    /// Resources the signature lists.
    pub signed: usize,
    pub serialization: Option<Serialization>,
    /// A warning to show (e.g. a bundle without key hint).
    pub warnings: Vec<String>,
}

/// Verifies a model against a bundle with a public key.
pub fn verify(
    model: &Path,
    bundle_bytes: &[u8],
    key: &PublicKey,
    signature_path: Option<&Path>,
    opts: &VerifyOptions,
) -> Result<Verified, SignError> {
    verify_with(
        model,
        bundle_bytes,
        &Trust::Key(key.clone()),
        signature_path,
        opts,
    )
}

/// What a verifier trusts: one public key (the key method), or CA
/// certificates (DER) that the bundle's signing certificate must chain to.
pub enum Trust {
    Key(PublicKey),
    Certificates(Vec<Vec<u8>>),
}

/// The signature over the payload as received: DSSE PAE with the curve's
/// hash, or the pre-1.0 reference's message (`DSSEV1 … b'…'`, always
/// SHA-256), which the reference still accepts.
fn signature_verifies(key: &PublicKey, b: &bundle::Bundle) -> bool {
    if b.payload_type != bundle::PAYLOAD_TYPE {
        return false;
    }
    if key.verify(&bundle::pae(&b.payload_type, &b.payload), &b.signature) {
        return true;
    }
    use sha2::Digest;
    let compat = bundle::pae_compat(&b.payload);
    key.verify_prehash(&sha2::Sha256::digest(&compat), &b.signature)
}

/// Verifies a model against a bundle, trusting a key or CA certificates.
pub fn verify_with(
    model: &Path,
    bundle_bytes: &[u8],
    trust: &Trust,
    signature_path: Option<&Path>,
    opts: &VerifyOptions,
) -> Result<Verified, SignError> {
    let b = bundle::read_bundle(bundle_bytes)?;
    let mut out = Verified {
        result: Ok(()),
        signed: 0,
        serialization: None,
        warnings: Vec::new(),
    };
    // 1. Key hint or certificate chain, then the signature over the payload
    // bytes as received.
    let key = match trust {
        Trust::Key(key) => {
            match &b.hint {
                Some(h) => {
                    let ours = key.hint()?;
                    if !bool::from(subtle::ConstantTimeEq::ct_eq(h.as_bytes(), ours.as_bytes())) {
                        out.result = Err(Failure::KeyMismatch);
                        return Ok(out);
                    }
                }
                None => out
                    .warnings
                    .push("the bundle names no public key hint".into()),
            }
            key.clone()
        }
        Trust::Certificates(roots) => match x509::verify_chain(&b.certificates, roots) {
            Ok(k) => k,
            Err(m) => {
                out.result = Err(Failure::Certificate(m));
                return Ok(out);
            }
        },
    };
    if !signature_verifies(&key, &b) {
        out.result = Err(Failure::BadSignature);
        return Ok(out);
    }
    // 2. Only now read the payload.
    let (ser, signed) = match parse_statement(&b.payload) {
        Ok(x) => x,
        Err(m) => {
            out.result = Err(Failure::BadStatement(m));
            return Ok(out);
        }
    };
    out.signed = signed.len();
    // 3. Hash the local model the way it was signed.
    let mut extra = opts.ignore_paths.clone();
    if let Some(inner) = signature_path.and_then(|s| signature_inside(model, s)) {
        extra.push(inner);
    }
    let files = serialize::walk(model, &ser, &extra)?;
    let files: Vec<_> = if opts.ignore_unsigned_files || !opts.only.is_empty() {
        let wanted: std::collections::HashSet<&str> = signed
            .keys()
            .map(|n| n.split(':').next().unwrap_or(n))
            .collect();
        files
            .into_iter()
            .filter(|(n, _)| {
                wanted.contains(n.as_str())
                    && (opts.only.is_empty() || opts.only.iter().any(|o| o == n))
            })
            .collect()
    } else {
        files
    };
    let local: BTreeMap<String, (String, Vec<u8>)> = serialize::hash(&files, &ser)?
        .into_iter()
        .map(|r| (r.name, (r.algorithm, r.digest)))
        .collect();
    let signed: BTreeMap<String, (String, Vec<u8>)> = if opts.only.is_empty() {
        signed
    } else {
        signed
            .into_iter()
            .filter(|(n, _)| {
                opts.only
                    .iter()
                    .any(|o| n == o || n.starts_with(&format!("{o}:")))
            })
            .collect()
    };
    let mut diff = Diff::default();
    for (name, want) in &signed {
        match local.get(name) {
            Some(have) if have == want => {}
            Some(_) => diff.changed.push(name.clone()),
            None => diff.removed.push(name.clone()),
        }
    }
    for name in local.keys() {
        if !signed.contains_key(name) && !opts.ignore_unsigned_files {
            diff.added.push(name.clone());
        }
    }
    // A removed and an added file with the same digest: a rename.
    diff.removed.retain(|old| {
        let d = &signed[old];
        if let Some(pos) = diff.added.iter().position(|new| local.get(new) == Some(d)) {
            diff.renamed.push((old.clone(), diff.added.remove(pos)));
            false
        } else {
            true
        }
    });
    out.serialization = Some(ser);
    if !diff.is_empty() {
        out.result = Err(Failure::Differs(diff));
    }
    Ok(out)
}

/// Signed resources: name -> (algorithm, digest).
type Manifest = BTreeMap<String, (String, Vec<u8>)>;

/// Reads the statement: type, predicate, serialisation, resources, and the
/// subject digest recomputed from the resources.
fn parse_statement(payload: &[u8]) -> Result<(Serialization, Manifest), String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    if v["_type"] != bundle::STATEMENT_TYPE {
        return Err(format!(
            "_type is {}, expected {}",
            v["_type"],
            bundle::STATEMENT_TYPE
        ));
    }
    let mut resources = BTreeMap::new();
    let mut ordered = Vec::new();
    match v["predicateType"].as_str() {
        Some(bundle::PREDICATE_TYPE) => {
            let s = &v["predicate"]["serialization"];
            let hash_type = s["hash_type"]
                .as_str()
                .and_then(HashType::parse)
                .ok_or("unknown hash_type")?;
            let method = match s["method"].as_str() {
                Some("files") => Method::Files,
                // The reference writes shard_size as a float (262144.0).
                Some("shards") => Method::Shards {
                    shard_size: s["shard_size"]
                        .as_u64()
                        .or_else(|| {
                            s["shard_size"]
                                .as_f64()
                                .filter(|f| f.fract() == 0.0 && *f >= 1.0)
                                .map(|f| f as u64)
                        })
                        .ok_or("shards without a valid shard_size")?,
                },
                other => return Err(format!("unknown serialization method {other:?}")),
            };
            let ignore_paths = s["ignore_paths"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let ser = Serialization {
                method,
                hash_type,
                allow_symlinks: s["allow_symlinks"].as_bool().unwrap_or(false),
                ignore_paths,
            };
            for r in v["predicate"]["resources"]
                .as_array()
                .ok_or("no resources")?
            {
                let name = r["name"].as_str().ok_or("resource without name")?;
                if !serialize::is_safe_name(name) {
                    return Err(format!("resource name `{name}` escapes the model folder"));
                }
                let digest = hex::decode(r["digest"].as_str().ok_or("resource without digest")?)
                    .map_err(|_| "digest is not hex")?;
                let algorithm = r["algorithm"]
                    .as_str()
                    .ok_or("resource without algorithm")?
                    .to_string();
                ordered.push(Resource {
                    name: name.to_string(),
                    algorithm: algorithm.clone(),
                    digest: digest.clone(),
                });
                resources.insert(name.to_string(), (algorithm, digest));
            }
            let subjects = v["subject"].as_array().ok_or("no subject")?;
            if subjects.len() != 1 {
                return Err(format!("{} subjects, expected exactly one", subjects.len()));
            }
            let want = subjects[0]["digest"]["sha256"]
                .as_str()
                .ok_or("subject without sha256 digest")?;
            if want != hex::encode(serialize::subject_digest(&ordered)) {
                return Err("subject digest does not match the resources".into());
            }
            Ok((ser, resources))
        }
        Some("https://model_signing/Digests/v0.1") => {
            // Legacy v0.2 predicate: one subject per file, sha256.
            for s in v["subject"].as_array().ok_or("no subject")? {
                let name = s["name"].as_str().ok_or("subject without name")?;
                if !serialize::is_safe_name(name) {
                    return Err(format!("subject name `{name}` escapes the model folder"));
                }
                let d = hex::decode(
                    s["digest"]["sha256"]
                        .as_str()
                        .ok_or("subject without sha256")?,
                )
                .map_err(|_| "digest is not hex")?;
                resources.insert(name.to_string(), ("sha256".to_string(), d));
            }
            Ok((Serialization::default(), resources))
        }
        other => Err(format!("unknown predicateType {other:?}")),
    }
}
