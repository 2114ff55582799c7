//! `mlsec provenance run|verify|sign-layout|key`: in-toto pipeline provenance.

use crate::cli::{
    GlobalArgs, ProvenanceCommand, ProvenanceRunArgs, ProvenanceVerifyArgs, SignLayoutArgs,
};
use crate::output::{self, exit};
use anyhow::{bail, Context, Result};
use mlsec_core::{Artifact, Finding, Location, Report, Style, TextBody};
use mlsec_sign::intoto::{self, metadata, run, Key};
use mlsec_sign::{PrivateKey, PublicKey};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

pub fn run(global: &GlobalArgs, cmd: &ProvenanceCommand) -> Result<u8> {
    match cmd {
        ProvenanceCommand::Run(args) => run_step(global, args),
        ProvenanceCommand::Verify(args) => verify(global, args),
        ProvenanceCommand::SignLayout(args) => sign_layout(global, args),
        ProvenanceCommand::Key { key } => {
            let key = Key::new(read_public(key)?)?;
            let entry = key.to_json()?;
            let text =
                serde_json::to_string_pretty(&serde_json::json!({ key.keyid.clone(): entry }))?;
            output::write_output(global.output.as_deref(), format!("{text}\n").as_bytes())?;
            Ok(exit::OK)
        }
    }
}

fn read_private(path: &Path) -> Result<PrivateKey> {
    let pem = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    PrivateKey::from_pem(&pem).with_context(|| path.display().to_string())
}

fn read_public(path: &Path) -> Result<PublicKey> {
    let pem = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    PublicKey::from_pem(&pem).with_context(|| path.display().to_string())
}

#[derive(Serialize)]
struct RunResults {
    step: String,
    link: String,
    keyid: String,
    command: Vec<String>,
    return_value: i32,
    materials: usize,
    products: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

impl TextBody for RunResults {
    fn has_findings(&self) -> bool {
        false
    }
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        for w in &self.warnings {
            writeln!(out, "warning: {w}")?;
        }
        writeln!(
            out,
            "Step {}: {} materials, {} products, command exited {}",
            self.step, self.materials, self.products, self.return_value
        )?;
        writeln!(out, "link   {}", self.link)?;
        writeln!(out, "keyid  {}", self.keyid)
    }
}

fn run_step(global: &GlobalArgs, args: &ProvenanceRunArgs) -> Result<u8> {
    let key = read_private(&args.key)?;
    if args.step.is_empty() || args.step.contains(['/', '\\']) {
        bail!(
            "--step `{}` must be a plain name (it becomes a file name)",
            args.step
        );
    }
    let mut excludes: Vec<String> = run::DEFAULT_EXCLUDES
        .iter()
        .map(|s| s.to_string())
        .collect();
    excludes.extend(args.exclude.iter().cloned());
    let ran = run::run_step(&run::StepOptions {
        name: &args.step,
        materials: &args.materials,
        products: &args.products,
        command: &args.command,
        base: &args.base_path,
        excludes,
        record_streams: args.record_streams,
    })?;
    let (file, bytes) = run::sign_link(&ran.link, &key, args.dsse)?;
    let path = args.out_dir.join(&file);
    output::write_output(Some(&path), &bytes)?;
    let count = |k: &str| ran.link[k].as_object().map_or(0, |m| m.len());
    let results = RunResults {
        step: args.step.clone(),
        link: path.display().to_string(),
        keyid: mlsec_sign::dsse::sslib_keyid(&key.public())?,
        command: args.command.clone(),
        return_value: ran.return_value,
        materials: count("materials"),
        products: count("products"),
        warnings: ran.warnings,
    };
    let mut report = Report::new(output::tool(), "provenance run", results);
    report.artifacts.push(Artifact {
        path: path.display().to_string(),
        kind: if args.dsse {
            "in-toto-link-dsse"
        } else {
            "in-toto-link"
        }
        .into(),
        sha256: Some(mlsec_core::digest::sha256_hex(&bytes)),
        bytes: Some(bytes.len() as u64),
    });
    output::emit(global, &report)?;
    Ok(if ran.return_value == 0 {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

#[derive(Serialize)]
struct VerifyResults {
    layout: String,
    verified: bool,
    /// Steps and the functionaries whose links were accepted.
    steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct StepResult {
    name: String,
    signers: Vec<String>,
}

impl TextBody for VerifyResults {
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        for w in &self.warnings {
            writeln!(out, "warning: {w}")?;
        }
        for s in &self.steps {
            let short: Vec<&str> = s.signers.iter().map(|k| &k[..k.len().min(8)]).collect();
            writeln!(out, "step {:<16} signed by {}", s.name, short.join(", "))?;
        }
        if self.verified {
            writeln!(
                out,
                "The supply chain described by {} verified.",
                self.layout
            )
        } else {
            writeln!(
                out,
                "Verification of the supply chain described by {} FAILED",
                self.layout
            )
        }
    }
}

fn verify(global: &GlobalArgs, args: &ProvenanceVerifyArgs) -> Result<u8> {
    let keys = args
        .layout_keys
        .iter()
        .map(|p| Ok(Key::new(read_public(p)?)?))
        .collect::<Result<Vec<Key>>>()?;
    let meta =
        std::fs::metadata(&args.layout).with_context(|| args.layout.display().to_string())?;
    if meta.len() > metadata::MAX_METADATA_BYTES {
        bail!(
            "{}: {} bytes is larger than any layout",
            args.layout.display(),
            meta.len()
        );
    }
    let bytes = std::fs::read(&args.layout).with_context(|| args.layout.display().to_string())?;
    if !args.links.is_dir() {
        bail!("{}: not a folder of links", args.links.display());
    }
    let outcome = intoto::verify(
        &bytes,
        &intoto::VerifyOptions {
            layout_keys: &keys,
            link_dir: &args.links,
            workdir: &args.workdir,
            run_inspections: !args.skip_inspections,
            now: intoto::time::now_utc(),
        },
    )
    .with_context(|| args.layout.display().to_string())?;
    let shown = args.layout.display().to_string();
    let mut report = Report::new(
        output::tool(),
        "provenance verify",
        VerifyResults {
            layout: shown.clone(),
            verified: outcome.result.is_ok(),
            steps: outcome
                .steps
                .iter()
                .map(|(name, signers)| StepResult {
                    name: name.clone(),
                    signers: signers.clone(),
                })
                .collect(),
            warnings: outcome.warnings,
        },
    );
    report.artifacts.push(Artifact {
        path: shown.clone(),
        kind: "in-toto-layout".into(),
        sha256: Some(mlsec_core::digest::sha256_hex(&bytes)),
        bytes: Some(bytes.len() as u64),
    });
    if let Err(failure) = &outcome.result {
        let mut f = Finding::new(
            &mlsec_sign::rules::PROVENANCE_BROKEN,
            Location::file(shown),
            failure.to_string(),
        );
        let mut inner = failure;
        while let intoto::Failure::Sublayout { inner: i, .. } = inner {
            inner = i;
        }
        if let intoto::Failure::Rule(r) = inner {
            f = f
                .with_evidence("item", r.item.clone())
                .with_evidence("artifact_list", r.kind.name())
                .with_evidence("rule", r.rule.clone())
                .with_evidence("artifacts", r.artifacts.clone())
                .with_evidence(
                    "queue_after_each_rule",
                    r.trace
                        .iter()
                        .map(|(rule, queue)| format!("{rule}: [{}]", queue.join(", ")))
                        .collect::<Vec<_>>(),
                );
        }
        report.findings.push(f);
    }
    output::finish(global, report, 1, Vec::new())
}

fn sign_layout(global: &GlobalArgs, args: &SignLayoutArgs) -> Result<u8> {
    let key = read_private(&args.key)?;
    let bytes = std::fs::read(&args.layout).with_context(|| args.layout.display().to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not JSON", args.layout.display()))?;
    // An already signed layout is re-signed from its `signed` part.
    let mut signed = match v.get("signed") {
        Some(s) => s.clone(),
        None => v,
    };
    for f in &args.functionaries {
        let (name, path) = f
            .split_once('=')
            .with_context(|| format!("--functionary `{f}` is not NAME=PUB.pem"))?;
        let key = Key::new(read_public(Path::new(path))?)?;
        if !signed["keys"].is_object() {
            signed["keys"] = serde_json::json!({});
        }
        signed["keys"][&key.keyid] = key.to_json()?;
        for step in signed["steps"].as_array_mut().into_iter().flatten() {
            for id in step["pubkeys"].as_array_mut().into_iter().flatten() {
                if id.as_str() == Some(name) {
                    *id = key.keyid.clone().into();
                }
            }
        }
    }
    intoto::Layout::from_signed(&signed)
        .map_err(anyhow::Error::msg)
        .with_context(|| args.layout.display().to_string())?;
    let out = metadata::sign(&signed, &key, args.dsse)?;
    output::write_output(Some(&args.out), &out)?;
    if !global.quiet {
        eprintln!(
            "layout signed by {} written to {}",
            mlsec_sign::dsse::sslib_keyid(&key.public())?,
            args.out.display()
        );
    }
    Ok(exit::OK)
}
