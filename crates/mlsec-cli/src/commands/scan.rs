//! `mlsec scan PATH…`: static analysis of model artifacts.

use crate::cli::{GlobalArgs, ScanArgs};
use crate::output::{self, exit};
use anyhow::{Context, Result};
use mlsec_core::{write_table, Artifact, Finding, Location, Report, Style, TextBody};
use mlsec_scan::{Policy, ScanOptions};
use serde::Serialize;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
struct FileResult {
    path: String,
    kind: &'static str,
    bytes: u64,
    pickles: usize,
    findings: usize,
}

#[derive(Debug, Default, Serialize)]
struct ScanResults {
    files: Vec<FileResult>,
}

impl TextBody for ScanResults {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> std::io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .files
            .iter()
            .map(|f| {
                vec![
                    f.path.clone(),
                    f.kind.to_string(),
                    f.bytes.to_string(),
                    f.pickles.to_string(),
                    f.findings.to_string(),
                ]
            })
            .collect();
        write_table(
            out,
            &["FILE", "KIND", "BYTES", "PICKLES", "FINDINGS"],
            &rows,
            &|_, _, c| c.to_string(),
            style,
        )?;
        let analysed = self.files.iter().filter(|f| f.kind != "other").count();
        writeln!(
            out,
            "{} files, {} recognised as model artifacts.",
            self.files.len(),
            analysed
        )
    }
}

/// Files under `path`, sorted; symbolic links to folders are not followed (no loops).
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let m = std::fs::symlink_metadata(&e)?;
            if m.is_dir() {
                collect(&e, out)?;
            } else if m.is_file() || (m.file_type().is_symlink() && e.is_file()) {
                out.push(e);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

pub fn run(global: &GlobalArgs, args: &ScanArgs) -> Result<u8> {
    let policy = match &args.policy {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read policy", p.display()))?;
            Policy::with_toml(&text).with_context(|| p.display().to_string())?
        }
        None => Policy::default(),
    };
    let opts = ScanOptions {
        policy,
        verify_data: args.verify_data,
        max_member_bytes: args.max_bytes,
        ..ScanOptions::default()
    };
    let mut report = Report::new(output::tool(), "scan", ScanResults::default());
    let mut failures = Vec::new();
    let fail = |path: &str, message: String, failures: &mut Vec<Finding>| {
        eprintln!("error: {path}: {message}");
        failures.push(Finding::new(
            &mlsec_core::rules::INPUT_NOT_ANALYSED,
            Location::file(path),
            format!("{path}: {message}"),
        ));
    };
    let mut inputs: Vec<(String, Option<PathBuf>)> = Vec::new();
    for p in &args.paths {
        if p == "-" {
            inputs.push(("-".into(), None));
            continue;
        }
        let mut files = Vec::new();
        match collect(Path::new(p), &mut files) {
            Ok(()) => inputs.extend(
                files
                    .into_iter()
                    .map(|f| (f.display().to_string(), Some(f))),
            ),
            Err(e) => fail(p, io_message(&e), &mut failures),
        }
    }
    let bar = if inputs.len() > 1 && !global.quiet && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(inputs.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} files ({per_sec}) {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    for (shown, path) in &inputs {
        bar.inc(1);
        let scanned = match path {
            None => {
                let mut buf = Vec::new();
                match std::io::stdin().take(args.max_bytes).read_to_end(&mut buf) {
                    Ok(_) => Ok(scan_one(shown, &buf, &opts)),
                    Err(e) => Err(io_message(&e)),
                }
            }
            Some(p) => map_file(p, args.max_bytes).map(|bytes| scan_one(shown, &bytes, &opts)),
        };
        match scanned {
            Ok((file, findings)) => {
                report.artifacts.push(Artifact {
                    path: file.path.clone(),
                    kind: file.kind.to_string(),
                    sha256: None,
                    bytes: Some(file.bytes),
                });
                report.results.files.push(file);
                report.findings.extend(findings);
            }
            Err(message) => fail(shown, message, &mut failures),
        }
    }
    bar.finish_and_clear();
    if report.results.files.is_empty() {
        return Ok(exit::ERROR);
    }
    let threshold = global.fail_on.threshold();
    let failing = report
        .findings
        .iter()
        .any(|f| threshold.is_some_and(|t| f.severity >= t));
    let any_failure = !failures.is_empty();
    report.findings.extend(failures);
    report.sort_findings();
    output::emit(global, &report)?;
    Ok(if failing {
        exit::FINDINGS
    } else if any_failure {
        exit::ERROR
    } else {
        exit::OK
    })
}

fn scan_one(shown: &str, bytes: &[u8], opts: &ScanOptions) -> (FileResult, Vec<Finding>) {
    let s = mlsec_scan::scan_bytes(shown, bytes, opts);
    let file = FileResult {
        path: shown.to_string(),
        kind: s.kind.name(),
        bytes: bytes.len() as u64,
        pickles: s.pickles,
        findings: s.findings.len(),
    };
    (file, s.findings)
}

/// A read-only memory map: scanning a multi-gigabyte checkpoint touches only
/// the pages the analysis reads (the pickle, not the tensor data).
fn map_file(path: &Path, max: u64) -> Result<Bytes, String> {
    let file = std::fs::File::open(path).map_err(|e| io_message(&e))?;
    let len = file.metadata().map_err(|e| io_message(&e))?.len();
    if len > max {
        return Err(format!(
            "{len} bytes is over the {max}-byte limit (--max-bytes)"
        ));
    }
    if len == 0 {
        return Ok(Bytes::Owned(Vec::new()));
    }
    // SAFETY: the map is read-only and private to this process; if another
    // process truncates the file while we read it the kernel raises SIGBUS,
    // the documented risk every memory-mapped reader accepts.
    match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => Ok(Bytes::Mapped(m)),
        Err(_) => std::fs::read(path)
            .map(Bytes::Owned)
            .map_err(|e| io_message(&e)),
    }
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
