//! `mlsec env verify`: the Python environment a training job runs in.

use crate::cli::{EnvVerifyArgs, GlobalArgs};
use crate::output;
use anyhow::{bail, Context, Result};
use mlsec_core::{Report, Style, TextBody};
use mlsec_sign::env::{self, lock, osv, EnvSummary};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Serialize)]
struct EnvResults {
    #[serde(flatten)]
    summary: EnvSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    lockfile: Option<LockSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    osv: Option<OsvSummary>,
}

#[derive(Serialize)]
struct LockSummary {
    path: String,
    format: &'static str,
    packages: usize,
}

#[derive(Serialize)]
struct OsvSummary {
    path: String,
    files: usize,
    pypi_advisories: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<String>,
}

impl TextBody for EnvResults {
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        let s = &self.summary;
        for site in &s.site_packages {
            writeln!(out, "site-packages  {site}")?;
        }
        writeln!(
            out,
            "verified       {} distributions, {} files against RECORD digests ({} recorded without digest, {} unrecorded)",
            s.distributions, s.files_verified, s.files_without_digest, s.files_unrecorded
        )?;
        if !s.startup_hooks.is_empty() {
            writeln!(out, "start-up hooks {}", s.startup_hooks.join(", "))?;
        }
        if let Some(l) = &self.lockfile {
            writeln!(
                out,
                "lockfile       {} ({}, {} packages)",
                l.path, l.format, l.packages
            )?;
        }
        if let Some(o) = &self.osv {
            writeln!(
                out,
                "advisories     {} ({} files, {} for PyPI)",
                o.path, o.files, o.pypi_advisories
            )?;
            for u in &o.unreadable {
                writeln!(out, "warning: {u}")?;
            }
        }
        Ok(())
    }
}

fn default_python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) => PathBuf::from(venv).join("bin").join("python"),
        None => PathBuf::from("python3"),
    }
}

pub fn verify(global: &GlobalArgs, args: &EnvVerifyArgs) -> Result<u8> {
    let sites = if args.site_packages.is_empty() {
        let python = args.python.clone().unwrap_or_else(default_python);
        env::site_packages_of(&python)?
    } else {
        for s in &args.site_packages {
            if !s.is_dir() {
                bail!("{}: not a folder", s.display());
            }
        }
        args.site_packages.clone()
    };
    if sites.is_empty() {
        bail!("the interpreter reported no existing site-packages folder");
    }
    let mut summary = EnvSummary::default();
    let mut findings = Vec::new();
    let mut installed = Vec::new();
    for site in &sites {
        let dists = env::distributions(site).with_context(|| site.display().to_string())?;
        findings.extend(env::verify_site(site, &dists, &mut summary)?);
        installed.extend(dists);
    }
    let mut lockfile = None;
    if let Some(path) = &args.lock {
        let (format, locked) = lock::load(path)?;
        findings.extend(lock::compare(path, &locked, &installed));
        lockfile = Some(LockSummary {
            path: path.display().to_string(),
            format: format.name(),
            packages: locked.len(),
        });
    }
    let mut osv_summary = None;
    if let Some(dir) = &args.osv {
        let db = osv::Database::load(dir)?;
        findings.extend(osv::check(&db, &installed));
        osv_summary = Some(OsvSummary {
            path: dir.display().to_string(),
            files: db.files,
            pypi_advisories: db.advisories(),
            unreadable: db.unreadable.iter().take(20).cloned().collect(),
        });
    }
    let mut report = Report::new(
        output::tool(),
        "env verify",
        EnvResults {
            summary,
            lockfile,
            osv: osv_summary,
        },
    );
    report.findings = findings;
    output::finish(global, report, 1, Vec::new())
}
