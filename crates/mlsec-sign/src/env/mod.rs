//! `mlsec env verify`: is the Python environment a training job runs in the
//! one that was installed? Every distribution's files are checked against
//! its `RECORD` (PEP 376/627), files no distribution owns are listed —
//! `.pth` start-up hooks above all — and, optionally, the environment is
//! compared with a lockfile and an offline OSV advisory database.

pub mod lock;
pub mod osv;

use crate::rules::{ENV_FILE_CHANGED, ENV_UNRECORDED_FILE};
use crate::SignError;
use base64::Engine;
use mlsec_core::{Finding, Location, Severity};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest metadata file (RECORD, METADATA) read.
const MAX_METADATA_BYTES: u64 = 64 << 20;
/// Folders deeper than this under site-packages are not walked.
const MAX_DEPTH: usize = 64;

/// One RECORD row: path relative to site-packages, `algorithm=digest`, size.
pub type RecordRow = (String, Option<String>, Option<u64>);

/// An installed distribution.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub name: String,
    pub version: String,
    /// The `*.dist-info` (or legacy `*.egg-info`) folder.
    pub metadata_dir: PathBuf,
    /// RECORD rows: path relative to site-packages, `algorithm=digest`, size.
    pub record: Option<Vec<RecordRow>>,
    /// Archive hashes pip recorded for URL installs (`direct_url.json`).
    pub archive_hashes: Vec<String>,
}

/// PEP 503 normalised project name: lower case, runs of `-_.` as `-`.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    crate::read_bounded(path, MAX_METADATA_BYTES)
}

/// `Name:` and `Version:` from core metadata (RFC 822 style headers).
fn name_version(metadata: &str) -> (Option<String>, Option<String>) {
    let (mut name, mut version) = (None, None);
    for line in metadata.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert_with(|| v.trim().to_string());
        }
    }
    (name, version)
}

/// Parses a RECORD file (CSV: path, `algorithm=digest`, size).
pub fn parse_record(bytes: &[u8]) -> Result<Vec<RecordRow>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| format!("RECORD is not CSV: {e}"))?;
        let Some(path) = row.get(0).filter(|p| !p.is_empty()) else {
            continue;
        };
        let hash = row.get(1).filter(|h| !h.is_empty()).map(str::to_string);
        let size = row.get(2).and_then(|s| s.trim().parse().ok());
        rows.push((path.to_string(), hash, size));
    }
    Ok(rows)
}

/// The distributions installed in one site-packages folder, sorted by name.
pub fn distributions(site: &Path) -> Result<Vec<Distribution>, SignError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(site).map_err(|e| SignError::io(site, &e))? {
        let entry = entry.map_err(|e| SignError::io(site, &e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let (meta_file, legacy) = if file_name.ends_with(".dist-info") {
            ("METADATA", false)
        } else if file_name.ends_with(".egg-info") {
            ("PKG-INFO", true)
        } else {
            continue;
        };
        if !dir.is_dir() {
            continue;
        }
        let stem = file_name
            .rsplit_once('.')
            .map_or(file_name.as_str(), |(s, _)| s);
        let (name, version) = match read_bounded(&dir.join(meta_file)) {
            Ok(b) => name_version(&String::from_utf8_lossy(&b)),
            Err(_) => (None, None),
        };
        let mut parts = stem.splitn(2, '-');
        let name = name.unwrap_or_else(|| parts.next().unwrap_or(stem).to_string());
        let version = version.unwrap_or_else(|| parts.next().unwrap_or("?").to_string());
        let record = if legacy {
            // installed-files.txt: paths relative to the egg-info folder, no hashes.
            read_bounded(&dir.join("installed-files.txt"))
                .ok()
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| (format!("{file_name}/{}", l.trim()), None, None))
                        .collect()
                })
        } else {
            match read_bounded(&dir.join("RECORD")) {
                Ok(b) => Some(parse_record(&b).map_err(|e| {
                    SignError::Input(format!("{}: {e}", dir.join("RECORD").display()))
                })?),
                Err(_) => None,
            }
        };
        let archive_hashes = read_bounded(&dir.join("direct_url.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|v| {
                let info = &v["archive_info"];
                let mut h: Vec<String> = info["hashes"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter_map(|(alg, d)| Some(format!("{alg}:{}", d.as_str()?)))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(one) = info["hash"].as_str() {
                    h.push(one.replacen('=', ":", 1));
                }
                h
            })
            .unwrap_or_default();
        out.push(Distribution {
            name,
            version,
            metadata_dir: dir,
            record,
            archive_hashes,
        });
    }
    out.sort_by_cached_key(|d| normalise_name(&d.name));
    Ok(out)
}

/// Lexical normalisation of `base/rel` (RECORD paths may climb out of
/// site-packages, e.g. `../../../bin/pip` for scripts).
fn resolve(base: &Path, rel: &str) -> PathBuf {
    let mut out = if Path::new(rel).is_absolute() {
        PathBuf::new()
    } else {
        base.to_path_buf()
    };
    for part in Path::new(rel).components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Whether a file is code that runs when imported or executed.
fn is_code(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".py", ".pth", ".so", ".pyd", ".dylib", ".dll"]
        .iter()
        .any(|e| lower.ends_with(e))
        || lower.contains(".so.")
        || lower.contains("/bin/")
        || lower.starts_with("../")
}

fn file_digest(path: &Path, algorithm: &str) -> std::io::Result<Option<(Vec<u8>, u64)>> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 256 << 10];
    let mut size = 0u64;
    macro_rules! run {
        ($h:expr) => {{
            let mut h = $h;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                h.update(&buf[..n]);
            }
            h.finalize().to_vec()
        }};
    }
    let digest = match algorithm {
        "sha256" => run!(sha2::Sha256::new()),
        "sha384" => run!(sha2::Sha384::new()),
        "sha512" => run!(sha2::Sha512::new()),
        _ => return Ok(None),
    };
    Ok(Some((digest, size)))
}

/// What verifying an environment found, beyond the findings.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct EnvSummary {
    pub site_packages: Vec<String>,
    pub distributions: usize,
    pub files_verified: usize,
    pub files_without_digest: usize,
    pub files_unrecorded: usize,
    pub startup_hooks: Vec<String>,
}

/// The lines of a `.pth` file that `site` executes (those starting with
/// `import` followed by a space or tab).
pub fn executable_pth_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("import ") || l.starts_with("import\t"))
        .map(str::to_string)
        .collect()
}

/// Verifies every distribution in `site` against its RECORD and lists
/// files no distribution owns.
pub fn verify_site(
    site: &Path,
    dists: &[Distribution],
    summary: &mut EnvSummary,
) -> Result<Vec<Finding>, SignError> {
    let mut findings = Vec::new();
    let shown = |p: &Path| p.display().to_string();
    let mut owned: BTreeSet<PathBuf> = BTreeSet::new();
    for d in dists {
        let label = format!("{} {}", d.name, d.version);
        let Some(record) = &d.record else {
            findings.push(
                Finding::new(
                    &ENV_FILE_CHANGED,
                    Location::file(shown(&d.metadata_dir)),
                    format!("{label}: no RECORD, so its files cannot be verified"),
                )
                .with_severity(Severity::Low),
            );
            continue;
        };
        for (rel, hash, size) in record {
            let path = resolve(site, rel);
            owned.insert(path.clone());
            let Some(hash) = hash else {
                summary.files_without_digest += 1;
                continue;
            };
            let Some((alg, want)) = hash.split_once('=') else {
                summary.files_without_digest += 1;
                continue;
            };
            let want = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(want.trim_end_matches('='))
                .unwrap_or_default();
            match file_digest(&path, alg) {
                Ok(Some((got, got_size))) => {
                    summary.files_verified += 1;
                    let same = bool::from(subtle::ConstantTimeEq::ct_eq(
                        got.as_slice(),
                        want.as_slice(),
                    ));
                    if !same || size.is_some_and(|s| s != got_size) {
                        let severity = if is_code(rel) {
                            Severity::Critical
                        } else {
                            Severity::High
                        };
                        findings.push(
                            Finding::new(
                                &ENV_FILE_CHANGED,
                                Location::file(shown(&path)),
                                format!("{label}: {rel} differs from its RECORD digest"),
                            )
                            .with_severity(severity)
                            .with_evidence("distribution", d.name.clone())
                            .with_evidence("recorded", hash.clone())
                            .with_evidence(
                                "actual",
                                format!(
                                    "{alg}={}",
                                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&got)
                                ),
                            ),
                        );
                    }
                }
                Ok(None) => summary.files_without_digest += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => findings.push(
                    Finding::new(
                        &ENV_FILE_CHANGED,
                        Location::file(shown(&path)),
                        format!("{label}: {rel} is missing"),
                    )
                    .with_severity(Severity::Medium)
                    .with_evidence("distribution", d.name.clone()),
                ),
                Err(e) => findings.push(
                    Finding::new(
                        &ENV_FILE_CHANGED,
                        Location::file(shown(&path)),
                        format!("{label}: {rel} cannot be read ({e})"),
                    )
                    .with_severity(Severity::Medium),
                ),
            }
        }
    }
    // Owners of start-up hooks, for the info-level listing.
    let owner: BTreeMap<PathBuf, String> = dists
        .iter()
        .flat_map(|d| {
            d.record
                .iter()
                .flatten()
                .map(move |(rel, _, _)| (resolve(site, rel), format!("{} {}", d.name, d.version)))
        })
        .collect();
    let mut stack = vec![(site.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let path = entry.path();
            let Ok(ty) = entry.file_type() else {
                continue;
            };
            if ty.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, format!("{rel}/"), depth + 1));
                }
                continue;
            }
            // Byte-code caches are written by the interpreter at import.
            if prefix.ends_with("__pycache__/") && name.ends_with(".pyc") {
                continue;
            }
            let top_level_pth = prefix.is_empty() && name.ends_with(".pth");
            let hooks = if top_level_pth {
                read_bounded(&path)
                    .map(|b| executable_pth_lines(&String::from_utf8_lossy(&b)))
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if !hooks.is_empty() {
                summary.startup_hooks.push(rel.clone());
            }
            if owned.contains(&path) {
                if !hooks.is_empty() {
                    let by = owner.get(&path).cloned().unwrap_or_default();
                    findings.push(
                        Finding::new(
                            &ENV_UNRECORDED_FILE,
                            Location::file(shown(&path)),
                            format!("{rel} runs code at interpreter start-up (installed by {by})"),
                        )
                        .with_severity(Severity::Info)
                        .with_evidence("lines", hooks),
                    );
                }
                continue;
            }
            summary.files_unrecorded += 1;
            let (severity, message) = if !hooks.is_empty() {
                (
                    Severity::Critical,
                    format!(
                        "{rel} runs code at interpreter start-up and belongs to no distribution"
                    ),
                )
            } else if top_level_pth {
                (
                    Severity::Medium,
                    format!("{rel} adds import paths and belongs to no distribution"),
                )
            } else if is_code(&rel) {
                (
                    Severity::High,
                    format!("{rel} is code that belongs to no distribution"),
                )
            } else {
                (Severity::Low, format!("{rel} belongs to no distribution"))
            };
            let mut f = Finding::new(&ENV_UNRECORDED_FILE, Location::file(shown(&path)), message)
                .with_severity(severity);
            if !hooks.is_empty() {
                f = f.with_evidence("lines", hooks);
            }
            findings.push(f);
        }
    }
    summary.distributions += dists.len();
    summary.site_packages.push(shown(site));
    Ok(findings)
}

/// The site-packages folders of an interpreter. A virtual environment
/// (`pyvenv.cfg` one folder above the interpreter's) is read from disk, not
/// run; any other interpreter is asked with `-I -S`: isolated, and without
/// the `site` module, so that no `.pth` file of the environment under
/// inspection executes.
pub fn site_packages_of(python: &Path) -> Result<Vec<PathBuf>, SignError> {
    let abs = std::path::absolute(python).unwrap_or_else(|_| python.to_path_buf());
    let venv = abs
        .parent()
        .and_then(Path::parent)
        .filter(|r| r.join("pyvenv.cfg").is_file());
    let Some(root) = venv else {
        return ask_interpreter(python);
    };
    let cfg =
        std::fs::read_to_string(root.join("pyvenv.cfg")).map_err(|e| SignError::io(root, &e))?;
    let setting = |key: &str| {
        cfg.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let mut sites = Vec::new();
    for lib in ["lib", "lib64", "Lib"] {
        let Ok(entries) = std::fs::read_dir(root.join(lib)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("site-packages"))
            .filter(|p| p.is_dir())
            .collect();
        if lib == "Lib" && root.join("Lib/site-packages").is_dir() {
            found.push(root.join("Lib/site-packages"));
        }
        found.sort();
        for f in found {
            let canon = f.canonicalize().unwrap_or_else(|_| f.clone());
            if !sites
                .iter()
                .any(|s: &PathBuf| s.canonicalize().ok().as_ref() == Some(&canon))
            {
                sites.push(f);
            }
        }
    }
    if setting("include-system-site-packages").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let base = setting("executable")
            .map(PathBuf::from)
            .or_else(|| setting("home").map(|h| Path::new(&h).join("python3")));
        if let Some(base) = base {
            for s in ask_interpreter(&base)? {
                if !sites.contains(&s) {
                    sites.push(s);
                }
            }
        }
    }
    Ok(sites)
}

fn ask_interpreter(python: &Path) -> Result<Vec<PathBuf>, SignError> {
    let out = std::process::Command::new(python)
        .args([
            "-I",
            "-S",
            "-c",
            "import sysconfig, json; p = sysconfig.get_paths(); print(json.dumps([p['purelib'], p['platlib']]))",
        ])
        .output()
        .map_err(|e| SignError::Input(format!("{}: cannot run it: {e}", python.display())))?;
    if !out.status.success() {
        return Err(SignError::Input(format!(
            "{}: exited with {} ({})",
            python.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let dirs: Vec<String> = serde_json::from_slice(&out.stdout).map_err(|_| {
        SignError::Input(format!(
            "{}: did not report its site-packages",
            python.display()
        ))
    })?;
    let mut seen = Vec::new();
    for d in dirs {
        let p = PathBuf::from(d);
        if p.is_dir() && !seen.contains(&p) {
            seen.push(p);
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_record_rows_and_pth_lines() {
        assert_eq!(normalise_name("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(normalise_name("typing_extensions"), "typing-extensions");
        let rows = parse_record(
            b"six.py,sha256=abc,34703\n__pycache__/six.cpython-311.pyc,,\n\"a,b.py\",sha256=x,1\n",
        )
        .unwrap();
        assert_eq!(
            rows[0],
            ("six.py".into(), Some("sha256=abc".into()), Some(34703))
        );
        assert_eq!(rows[1].1, None);
        assert_eq!(rows[2].0, "a,b.py");
        assert_eq!(
            executable_pth_lines("import os; os.system('x')\n./lib\n#import no\nimport\tsys\n")
                .len(),
            2
        );
        assert_eq!(
            resolve(Path::new("/v/lib/site"), "../../bin/pip"),
            PathBuf::from("/v/bin/pip")
        );
        assert_eq!(
            name_version("Metadata-Version: 2.1\nName: six\nVersion: 1.17.0\n\nName: body"),
            (Some("six".into()), Some("1.17.0".into()))
        );
    }
}
