//! `mlsec keygen`, `mlsec sign`, `mlsec verify`.

use crate::cli::{GlobalArgs, KeygenArgs, SignArgs, VerifyArgs};
use crate::output::{self, exit};
use anyhow::{bail, Context, Result};
use mlsec_core::{Artifact, Finding, Location, Report, Style, TextBody};
use mlsec_sign::{
    HashType, KeyKind, Method, PrivateKey, PublicKey, Serialization, Trust, VerifyOptions,
};
use serde::Serialize;
use std::io::Write;

pub fn keygen(_global: &GlobalArgs, args: &KeygenArgs) -> Result<u8> {
    let kind = KeyKind::parse(&args.kind).with_context(|| {
        format!(
            "unknown key type `{}` (expected p256, p384 or ed25519)",
            args.kind
        )
    })?;
    let prefix = args.out.display().to_string();
    let (private, public) = (format!("{prefix}.priv.pem"), format!("{prefix}.pub.pem"));
    for p in [&private, &public] {
        if std::path::Path::new(p).exists() && !args.force {
            bail!("{p}: already exists (use --force to replace it)");
        }
    }
    let key = PrivateKey::generate(kind);
    write_private(&private, key.to_pem()?.as_bytes())?;
    std::fs::write(&public, key.public().to_pem()?).with_context(|| public.clone())?;
    eprintln!(
        "{} key written: {private} (keep it secret) and {public}",
        kind.name()
    );
    Ok(exit::OK)
}

/// The private key file is created readable by its owner only.
fn write_private(path: &str, pem: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(pem))
        .with_context(|| path.to_string())
}

#[derive(Serialize)]
struct SignResults {
    model: String,
    signature: String,
    key_type: &'static str,
    hash: &'static str,
    method: String,
    resources: usize,
    subject_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest_cache: Option<String>,
}

impl TextBody for SignResults {
    fn has_findings(&self) -> bool {
        false
    }
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        writeln!(
            out,
            "Signed {} ({} resources, {} {}) with {}",
            self.model, self.resources, self.method, self.hash, self.key_type
        )?;
        writeln!(out, "signature  {}", self.signature)?;
        writeln!(out, "subject    sha256:{}", self.subject_sha256)?;
        if let Some(note) = &self.digest_cache {
            writeln!(out, "cache      {note}")?;
        }
        Ok(())
    }
}

pub fn sign(global: &GlobalArgs, args: &SignArgs) -> Result<u8> {
    let pem = std::fs::read_to_string(&args.key).with_context(|| args.key.display().to_string())?;
    let key = PrivateKey::from_pem(&pem).with_context(|| args.key.display().to_string())?;
    let hash_type = HashType::parse(&args.hash).with_context(|| {
        format!(
            "unknown hash `{}` (expected sha256, blake2b or blake3)",
            args.hash
        )
    })?;
    let method = match args.shard_size {
        Some(0) => bail!("--shard-size must be positive"),
        Some(n) => Method::Shards { shard_size: n },
        None => Method::Files,
    };
    let ser = Serialization {
        method,
        hash_type,
        allow_symlinks: args.allow_symlinks,
        ignore_paths: mlsec_sign::relative_ignores(&args.model, &args.ignore_paths),
    };
    let mut certificates = Vec::new();
    for path in args.cert.iter().chain(args.chain.iter()) {
        let pem = std::fs::read(path).with_context(|| path.display().to_string())?;
        certificates.extend(
            mlsec_sign::x509::load_pem_certificates(&pem)
                .with_context(|| path.display().to_string())?,
        );
    }
    let mut cache = args.digest_cache.as_ref().map(|path| {
        let (cache, warning) = mlsec_sign::cache::DigestCache::load(path);
        if let Some(w) = warning {
            eprintln!("warning: digest cache {w}");
        }
        cache
    });
    let signed = mlsec_sign::sign_with(
        &args.model,
        &key,
        ser.clone(),
        &args.signature,
        &certificates,
        cache.as_mut(),
    )
    .with_context(|| args.model.display().to_string())?;
    let mut cache_note = None;
    if let (Some(cache), Some(path)) = (&cache, &args.digest_cache) {
        cache
            .save(path)
            .with_context(|| path.display().to_string())?;
        cache_note = Some(format!(
            "{} of {} digests reused from {}",
            cache.hits,
            cache.hits + cache.misses,
            path.display()
        ));
    }
    output::write_output(Some(&args.signature), &signed.bundle)?;
    let results = SignResults {
        model: args.model.display().to_string(),
        signature: args.signature.display().to_string(),
        key_type: key.public().kind().name(),
        hash: hash_type.name(),
        method: match ser.method {
            Method::Files => "files".into(),
            Method::Shards { shard_size } => format!("shards of {shard_size} bytes"),
        },
        resources: signed.resources.len(),
        subject_sha256: signed.subject_digest,
        digest_cache: cache_note,
    };
    let mut report = Report::new(output::tool(), "sign", results);
    report.artifacts.push(Artifact {
        path: args.signature.display().to_string(),
        kind: "model-signing-bundle".into(),
        sha256: Some(mlsec_core::digest::sha256_hex(&signed.bundle)),
        bytes: Some(signed.bundle.len() as u64),
    });
    output::emit(global, &report)?;
    Ok(exit::OK)
}

#[derive(Serialize, Default)]
struct VerifyResults {
    model: String,
    signature: String,
    verified: bool,
    resources_signed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

impl TextBody for VerifyResults {
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        for w in &self.warnings {
            writeln!(out, "warning: {w}")?;
        }
        if self.verified {
            writeln!(
                out,
                "Verified {} against {} ({} resources)",
                self.model, self.signature, self.resources_signed
            )
        } else {
            writeln!(
                out,
                "Verification of {} against {} FAILED",
                self.model, self.signature
            )
        }
    }
}

pub fn verify(global: &GlobalArgs, args: &VerifyArgs) -> Result<u8> {
    let trust = match &args.key {
        Some(path) => {
            let pem = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            Trust::Key(PublicKey::from_pem(&pem).with_context(|| path.display().to_string())?)
        }
        None => {
            let mut roots = Vec::new();
            for path in &args.ca {
                let pem = std::fs::read(path).with_context(|| path.display().to_string())?;
                roots.extend(
                    mlsec_sign::x509::load_pem_certificates(&pem)
                        .with_context(|| path.display().to_string())?,
                );
            }
            Trust::Certificates(roots)
        }
    };
    let meta =
        std::fs::metadata(&args.signature).with_context(|| args.signature.display().to_string())?;
    if meta.len() > mlsec_sign::MAX_BUNDLE_BYTES {
        bail!(
            "{}: {} bytes is larger than any signature bundle",
            args.signature.display(),
            meta.len()
        );
    }
    let bundle =
        std::fs::read(&args.signature).with_context(|| args.signature.display().to_string())?;
    let opts = VerifyOptions {
        ignore_paths: mlsec_sign::relative_ignores(&args.model, &args.ignore_paths),
        ignore_unsigned_files: args.ignore_unsigned_files,
        only: args.files.clone(),
    };
    let v = mlsec_sign::verify_with(&args.model, &bundle, &trust, Some(&args.signature), &opts)
        .with_context(|| args.signature.display().to_string())?;
    let shown = args.model.display().to_string();
    let mut report = Report::new(
        output::tool(),
        "verify",
        VerifyResults {
            model: shown.clone(),
            signature: args.signature.display().to_string(),
            verified: v.result.is_ok(),
            resources_signed: v.signed,
            warnings: v.warnings,
        },
    );
    report.artifacts.push(Artifact {
        path: args.signature.display().to_string(),
        kind: "model-signing-bundle".into(),
        sha256: Some(mlsec_core::digest::sha256_hex(&bundle)),
        bytes: Some(bundle.len() as u64),
    });
    if let Err(failure) = &v.result {
        let rule = match failure {
            mlsec_sign::Failure::Differs(_) => &mlsec_sign::rules::MODEL_DIFFERS,
            _ => &mlsec_sign::rules::SIGNATURE_INVALID,
        };
        let mut f = Finding::new(rule, Location::file(shown), failure.to_string());
        if let mlsec_sign::Failure::Differs(d) = failure {
            f = f
                .with_evidence("changed", d.changed.clone())
                .with_evidence("added", d.added.clone())
                .with_evidence("removed", d.removed.clone())
                .with_evidence(
                    "renamed",
                    d.renamed
                        .iter()
                        .map(|(a, b)| format!("{a} -> {b}"))
                        .collect::<Vec<_>>(),
                );
        }
        report.findings.push(f);
    }
    output::finish(global, report, 1, Vec::new())
}

#[derive(Serialize, Default)]
struct AttestResults {
    envelope: String,
    verified: Option<bool>,
    subjects: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicate_type: Option<String>,
}

impl TextBody for AttestResults {
    fn has_findings(&self) -> bool {
        self.verified.is_some()
    }
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        match self.verified {
            None => writeln!(
                out,
                "Wrote {} ({} subjects, SLSA provenance v1 in DSSE)",
                self.envelope, self.subjects
            ),
            Some(true) => writeln!(
                out,
                "Verified {} ({} subjects)",
                self.envelope, self.subjects
            ),
            Some(false) => writeln!(out, "Verification of {} FAILED", self.envelope),
        }
    }
}

pub fn attest(global: &GlobalArgs, args: &crate::cli::AttestArgs) -> Result<u8> {
    if let Some(crate::cli::AttestCommand::Verify {
        envelope,
        key,
        model,
    }) = &args.verify
    {
        return attest_verify(global, envelope, key, model.as_deref());
    }
    let (Some(model), Some(key_path)) = (&args.model, &args.key) else {
        bail!("MODEL and --key are required")
    };
    let pem = std::fs::read_to_string(key_path).with_context(|| key_path.display().to_string())?;
    let key = PrivateKey::from_pem(&pem).with_context(|| key_path.display().to_string())?;
    let mut parameters = Vec::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param `{p}` is not KEY=VALUE"))?;
        parameters.push((k.to_string(), v.to_string()));
    }
    let run = mlsec_sign::attest::TrainingRun {
        datasets: args.datasets.clone(),
        script: args.script.clone(),
        environment: args.environment.clone(),
        builder_id: args.builder_id.clone(),
        invocation_id: args.invocation_id.clone(),
        started_on: args.started_on.clone(),
        finished_on: args.finished_on.clone(),
        parameters,
    };
    let envelope = mlsec_sign::attest::create(model, &run, &key)
        .with_context(|| model.display().to_string())?;
    output::write_output(Some(&args.out), &envelope)?;
    let subjects = mlsec_sign::serialize::walk(model, &Serialization::default(), &[])?.len();
    let mut report = Report::new(
        output::tool(),
        "attest",
        AttestResults {
            envelope: args.out.display().to_string(),
            verified: None,
            subjects,
            predicate_type: Some(mlsec_sign::attest::SLSA_PROVENANCE_V1.into()),
        },
    );
    report.artifacts.push(Artifact {
        path: args.out.display().to_string(),
        kind: "dsse-envelope".into(),
        sha256: Some(mlsec_core::digest::sha256_hex(&envelope)),
        bytes: Some(envelope.len() as u64),
    });
    output::emit(global, &report)?;
    Ok(exit::OK)
}

fn attest_verify(
    global: &GlobalArgs,
    envelope: &std::path::Path,
    key_path: &std::path::Path,
    model: Option<&std::path::Path>,
) -> Result<u8> {
    let pem = std::fs::read_to_string(key_path).with_context(|| key_path.display().to_string())?;
    let key = PublicKey::from_pem(&pem).with_context(|| key_path.display().to_string())?;
    let bytes = std::fs::read(envelope).with_context(|| envelope.display().to_string())?;
    let outcome = mlsec_sign::attest::verify(&bytes, &key, model)
        .with_context(|| envelope.display().to_string())?;
    let shown = envelope.display().to_string();
    let mut results = AttestResults {
        envelope: shown.clone(),
        verified: Some(outcome.is_ok()),
        ..Default::default()
    };
    let mut report_findings = Vec::new();
    match &outcome {
        Ok(st) => {
            results.subjects = st["subject"].as_array().map_or(0, |a| a.len());
            results.predicate_type = st["predicateType"].as_str().map(str::to_string);
        }
        Err(failure) => report_findings.push(Finding::new(
            &mlsec_sign::rules::ATTESTATION_INVALID,
            Location::file(shown.clone()),
            failure.to_string(),
        )),
    }
    let mut report = Report::new(output::tool(), "attest verify", results);
    report.findings = report_findings;
    output::finish(global, report, 1, Vec::new())
}
