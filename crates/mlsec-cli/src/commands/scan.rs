//! `mlsec scan PATH…`: static analysis of model artifacts.

use crate::cli::{GlobalArgs, ScanArgs};
use crate::output;
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

/// Files under `path`, sorted; symbolic links to folders are not followed
/// (no loops). File types come from the directory entries, so listing a
/// folder of small files costs no stat call per file.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries = Vec::new();
    for e in std::fs::read_dir(path)? {
        let e = e?;
        entries.push((e.path(), e.file_type()?));
    }
    // Byte order of the names: the same order for every run, and far
    // cheaper than comparing paths component by component.
    entries.sort_by(|a, b| {
        a.0.as_os_str()
            .as_encoded_bytes()
            .cmp(b.0.as_os_str().as_encoded_bytes())
    });
    for (p, ty) in entries {
        if ty.is_dir() {
            collect(&p, out)?;
        } else if ty.is_file() || (ty.is_symlink() && p.is_file()) {
            out.push(p);
        }
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
        max_member_bytes: args.max_member_bytes,
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
    // Files are scanned on every core; results are kept in input order so
    // the report does not depend on scheduling.
    let scan_path =
        |shown: &str, path: &Option<PathBuf>| -> Result<(FileResult, Vec<Finding>), String> {
            match path {
                None => {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .take(args.max_bytes)
                        .read_to_end(&mut buf)
                        .map_err(|e| io_message(&e))?;
                    Ok(scan_one(shown, &buf, &opts))
                }
                Some(p) => SMALL_FILE.with_borrow_mut(|buf| {
                    map_file(p, args.max_bytes, buf).map(|bytes| match bytes {
                        Bytes::Small(n) => scan_one(shown, &buf[..n], &opts),
                        big => scan_one(shown, &big, &opts),
                    })
                }),
            }
        };
    let results: Vec<std::sync::Mutex<Option<Scanned>>> =
        inputs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(inputs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((shown, path)) = inputs.get(i) else {
                    break;
                };
                let r = scan_path(shown, path);
                bar.inc(1);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    for ((shown, _), slot) in inputs.iter().zip(results) {
        match slot.into_inner().ok().flatten() {
            Some(Ok((file, findings))) => {
                report.artifacts.push(Artifact {
                    path: file.path.clone(),
                    kind: file.kind.to_string(),
                    sha256: None,
                    bytes: Some(file.bytes),
                });
                report.results.files.push(file);
                report.findings.extend(findings);
            }
            Some(Err(message)) => fail(shown, message, &mut failures),
            None => fail(shown, "not scanned (worker stopped)".into(), &mut failures),
        }
    }
    bar.finish_and_clear();
    let analysed = report.results.files.len();
    output::finish(global, report, analysed, failures)
}

/// One input's outcome: its summary and findings, or why it could not be read.
type Scanned = Result<(FileResult, Vec<Finding>), String>;

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

thread_local! {
    /// Each worker's buffer for small files, zeroed once and reused.
    static SMALL_FILE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads a file for scanning. Small files are read into `small` with one
/// `read` — no `stat`, no allocation — and `Bytes::Small(n)` says how much
/// of it they fill; larger ones are read whole up to 1 MiB, or else
/// memory-mapped, so scanning a multi-gigabyte checkpoint touches only the
/// pages the analysis reads (the pickle, not the tensor data).
fn map_file(path: &Path, max: u64, small: &mut Vec<u8>) -> Result<Bytes, String> {
    const MAP_ABOVE: usize = 1 << 20;
    const FIRST_READ: usize = 64 << 10;
    let mut file = std::fs::File::open(path).map_err(|e| io_message(&e))?;
    if small.len() != FIRST_READ {
        small.resize(FIRST_READ, 0);
    }
    let n = loop {
        match file.read(small) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_message(&e)),
        }
    };
    // A read of a regular file returns less than asked only at its end (on
    // Linux and the BSDs), so a short first read is the whole file: no
    // second `read` to see end-of-file. A full one means there is more.
    if n < FIRST_READ {
        return Ok(Bytes::Small(n));
    }
    let mut buf = small.clone();
    (&mut file)
        .take((MAP_ABOVE - FIRST_READ) as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_message(&e))?;
    if buf.len() <= MAP_ABOVE {
        return Ok(Bytes::Owned(buf));
    }
    drop(buf);
    let len = file.metadata().map_err(|e| io_message(&e))?.len();
    if len > max {
        return Err(format!(
            "{len} bytes is over the {max}-byte limit (--max-bytes)"
        ));
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
    /// The whole file is the first `n` bytes of the small-file buffer.
    Small(usize),
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Small(_) => &[],
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
