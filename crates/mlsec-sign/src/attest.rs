//! Training attestations: an in-toto Statement v1 with a SLSA provenance v1
//! predicate, in a DSSE envelope (FORMAT.md C1–C3). Subjects are the model's
//! files; resolved dependencies are the datasets, the training script and the
//! environment description, each with its SHA-256.

use crate::bundle::{PAYLOAD_TYPE, STATEMENT_TYPE};
use crate::keys::{PrivateKey, PublicKey};
use crate::serialize::{self, Serialization};
use crate::{dsse, SignError};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The `buildType` mlsec records for a training run.
pub const BUILD_TYPE: &str = "https://github.com/mlsec/mlsec/attestations/training/v1";

/// What a training run consumed and how it ran.
#[derive(Debug, Clone, Default)]
pub struct TrainingRun {
    pub datasets: Vec<PathBuf>,
    pub script: Option<PathBuf>,
    pub environment: Option<PathBuf>,
    pub builder_id: String,
    pub invocation_id: Option<String>,
    pub started_on: Option<String>,
    pub finished_on: Option<String>,
    /// Free-form parameters (`key=value`), recorded as `externalParameters`.
    pub parameters: Vec<(String, String)>,
}

fn file_digest(path: &Path) -> Result<String, SignError> {
    mlsec_core::digest::sha256_file(path)
        .map(|(h, _)| h)
        .map_err(|e| SignError::io(path, &e))
}

fn dependency(path: &Path, role: &str) -> Result<Value, SignError> {
    let digest = if path.is_dir() {
        // A folder (an image dataset): the manifest digest of its files.
        let files = serialize::walk(path, &Serialization::default(), &[])?;
        let resources = serialize::hash(&files, &Serialization::default())?;
        let listing: Vec<(String, String)> = resources
            .iter()
            .map(|r| (r.name.clone(), hex::encode(&r.digest)))
            .collect();
        mlsec_core::digest::manifest_digest(listing.iter().map(|(p, h)| (p.as_str(), h.as_str())))
    } else {
        file_digest(path)?
    };
    Ok(json!({
        "uri": format!("file:{}", path.display().to_string().replace('\\', "/")),
        "digest": {"sha256": digest},
        "annotations": {"role": role},
    }))
}

/// The statement's bytes: compact JSON with sorted keys (serde_json's map).
pub fn statement(model: &Path, run: &TrainingRun) -> Result<Vec<u8>, SignError> {
    let files = serialize::walk(model, &Serialization::default(), &[])?;
    let resources = serialize::hash(&files, &Serialization::default())?;
    let subjects: Vec<Value> = resources
        .iter()
        .map(|r| json!({"name": r.name, "digest": {"sha256": hex::encode(&r.digest)}}))
        .collect();
    let mut deps = Vec::new();
    for d in &run.datasets {
        deps.push(dependency(d, "dataset")?);
    }
    if let Some(s) = &run.script {
        deps.push(dependency(s, "training-script")?);
    }
    if let Some(e) = &run.environment {
        deps.push(dependency(e, "environment")?);
    }
    let mut external = serde_json::Map::new();
    external.insert("model".into(), Value::from(model.display().to_string()));
    for (k, v) in &run.parameters {
        external.insert(k.clone(), Value::from(v.clone()));
    }
    let mut metadata = serde_json::Map::new();
    for (k, v) in [
        ("invocationId", &run.invocation_id),
        ("startedOn", &run.started_on),
        ("finishedOn", &run.finished_on),
    ] {
        if let Some(v) = v {
            metadata.insert(k.into(), Value::from(v.clone()));
        }
    }
    let st = json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": run.builder_id, "version": {"mlsec": env!("CARGO_PKG_VERSION")}},
                "metadata": metadata,
            },
        },
    });
    serde_json::to_vec(&st).map_err(|e| SignError::Input(e.to_string()))
}

/// Signs a training run's attestation.
pub fn create(model: &Path, run: &TrainingRun, key: &PrivateKey) -> Result<Vec<u8>, SignError> {
    let payload = statement(model, run)?;
    dsse::sign(&payload, PAYLOAD_TYPE, key)
}

/// The outcome of verifying an attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestFailure {
    Envelope(dsse::EnvelopeFailure),
    BadStatement(String),
    /// Subjects whose file is missing or whose digest differs.
    Subjects {
        changed: Vec<String>,
        missing: Vec<String>,
    },
}

impl std::fmt::Display for AttestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttestFailure::Envelope(dsse::EnvelopeFailure::NoSignatureForKey) => {
                f.write_str("no signature in the envelope is by this key")
            }
            AttestFailure::Envelope(dsse::EnvelopeFailure::BadSignature) => {
                f.write_str("the signature does not match the payload")
            }
            AttestFailure::BadStatement(m) => write!(f, "the attested statement is invalid: {m}"),
            AttestFailure::Subjects { changed, missing } => {
                let mut parts = Vec::new();
                if !changed.is_empty() {
                    parts.push(format!("changed: {}", changed.join(", ")));
                }
                if !missing.is_empty() {
                    parts.push(format!("missing: {}", missing.join(", ")));
                }
                write!(
                    f,
                    "the model differs from the attested subjects ({})",
                    parts.join("; ")
                )
            }
        }
    }
}

/// Verifies an envelope with `key`; with `model`, also that every subject's
/// file still has the attested digest. Returns the statement on success.
pub fn verify(
    envelope: &[u8],
    key: &PublicKey,
    model: Option<&Path>,
) -> Result<Result<Value, AttestFailure>, SignError> {
    let (payload_type, payload) = match dsse::verify(envelope, key)? {
        Ok(x) => x,
        Err(e) => return Ok(Err(AttestFailure::Envelope(e))),
    };
    if payload_type != PAYLOAD_TYPE {
        return Ok(Err(AttestFailure::BadStatement(format!(
            "payloadType {payload_type}"
        ))));
    }
    let st: Value = match serde_json::from_slice(&payload) {
        Ok(v) => v,
        Err(e) => return Ok(Err(AttestFailure::BadStatement(format!("not JSON: {e}")))),
    };
    if st["_type"] != STATEMENT_TYPE {
        return Ok(Err(AttestFailure::BadStatement(format!(
            "_type {}",
            st["_type"]
        ))));
    }
    let Some(subjects) = st["subject"].as_array().filter(|s| !s.is_empty()) else {
        return Ok(Err(AttestFailure::BadStatement("no subjects".into())));
    };
    if let Some(root) = model {
        let (mut changed, mut missing) = (Vec::new(), Vec::new());
        for s in subjects {
            let (Some(name), Some(want)) = (s["name"].as_str(), s["digest"]["sha256"].as_str())
            else {
                return Ok(Err(AttestFailure::BadStatement(
                    "a subject without name or sha256 digest".into(),
                )));
            };
            if !serialize::is_safe_name(name) {
                return Ok(Err(AttestFailure::BadStatement(format!(
                    "subject `{name}` escapes the model folder"
                ))));
            }
            let path = if name == "." {
                root.to_path_buf()
            } else {
                root.join(name)
            };
            match mlsec_core::digest::sha256_file(&path) {
                Ok((have, _)) if have == want => {}
                Ok(_) => changed.push(name.to_string()),
                Err(_) => missing.push(name.to_string()),
            }
        }
        if !changed.is_empty() || !missing.is_empty() {
            return Ok(Err(AttestFailure::Subjects { changed, missing }));
        }
    }
    Ok(Ok(st))
}
