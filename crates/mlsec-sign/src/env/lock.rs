//! Lockfiles: `requirements.txt` (pip's hash-checking mode), `uv.lock` and
//! `poetry.lock`, read into one list of locked packages and compared with
//! what is installed.

use super::{normalise_name, Distribution};
use crate::rules::ENV_LOCK_MISMATCH;
use crate::SignError;
use mlsec_core::{Finding, Location, Severity};
use std::collections::BTreeMap;
use std::path::Path;

/// Largest lockfile read.
const MAX_LOCK_BYTES: u64 = 64 << 20;
/// How deep `-r other.txt` includes are followed.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A package as the lockfile pins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub name: String,
    /// The exact version pinned, if any.
    pub version: Option<String>,
    /// `algorithm:hex` archive hashes.
    pub hashes: Vec<String>,
    /// Where it is written, for messages (`requirements.txt:12`).
    pub origin: String,
    /// A path or editable source (the project itself): nothing to hash.
    pub local: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockFormat {
    Requirements,
    Uv,
    Poetry,
}

impl LockFormat {
    pub fn name(self) -> &'static str {
        match self {
            LockFormat::Requirements => "requirements",
            LockFormat::Uv => "uv.lock",
            LockFormat::Poetry => "poetry.lock",
        }
    }
}

fn read(path: &Path) -> Result<String, SignError> {
    let meta = std::fs::metadata(path).map_err(|e| SignError::io(path, &e))?;
    if meta.len() > MAX_LOCK_BYTES {
        return Err(SignError::Input(format!(
            "{}: larger than {MAX_LOCK_BYTES} bytes",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| SignError::io(path, &e))?;
    String::from_utf8(bytes)
        .map_err(|_| SignError::Input(format!("{}: not UTF-8 text", path.display())))
}

/// Reads a lockfile, recognising its format by name, then by content.
pub fn load(path: &Path) -> Result<(LockFormat, Vec<Locked>), SignError> {
    let text = read(path)?;
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shown = path.display().to_string();
    let bad = |e: String| SignError::Input(format!("{shown}: {e}"));
    let looks_toml = text.contains("[[package]]");
    if file == "uv.lock" || (looks_toml && text.lines().any(|l| l.starts_with("requires-python"))) {
        return Ok((LockFormat::Uv, parse_uv(&text, &shown).map_err(bad)?));
    }
    if file == "poetry.lock" || (looks_toml && text.contains("[metadata]")) {
        return Ok((
            LockFormat::Poetry,
            parse_poetry(&text, &shown).map_err(bad)?,
        ));
    }
    let mut out = Vec::new();
    parse_requirements(path, &text, 0, &mut out)?;
    Ok((LockFormat::Requirements, out))
}

/// Parses lockfile text without touching the file system (`-r` includes
/// are refused): for callers holding the bytes, and for fuzzing.
pub fn parse_text(format: LockFormat, text: &str) -> Result<Vec<Locked>, String> {
    match format {
        LockFormat::Uv => parse_uv(text, "lock"),
        LockFormat::Poetry => parse_poetry(text, "lock"),
        LockFormat::Requirements => {
            let mut out = Vec::new();
            parse_requirements(
                Path::new("requirements.txt"),
                text,
                MAX_INCLUDE_DEPTH,
                &mut out,
            )
            .map_err(|e| e.to_string())?;
            Ok(out)
        }
    }
}

/// pip's requirements format: one requirement per logical line (`\`
/// continues), `#` comments, `--hash=alg:hex` options, `-r`/`-c` includes.
fn parse_requirements(
    path: &Path,
    text: &str,
    depth: usize,
    out: &mut Vec<Locked>,
) -> Result<(), SignError> {
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(body) = raw.strip_suffix('\\') {
            acc.push_str(body);
            acc.push(' ');
            pending = Some((start, acc));
        } else {
            acc.push_str(raw);
            logical.push((start, acc));
        }
    }
    if let Some(p) = pending {
        logical.push(p);
    }
    for (line_no, line) in logical {
        // A comment starts at `#` preceded by whitespace (or at the start).
        let line = match line
            .find(" #")
            .or_else(|| line.starts_with('#').then_some(0))
        {
            Some(i) => &line[..i],
            None => line.as_str(),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let origin = format!("{}:{line_no}", path.display());
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if matches!(first, "-r" | "--requirement" | "-c" | "--constraint")
            || first.starts_with("--requirement=")
            || first.starts_with("-r")
        {
            let target = match first.split_once('=') {
                Some((_, t)) => t.to_string(),
                None if first.len() > 2 && first.starts_with("-r") => first[2..].to_string(),
                None => words.next().unwrap_or_default().to_string(),
            };
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(SignError::Input(format!(
                    "{origin}: includes nested too deep"
                )));
            }
            let inc = path.parent().unwrap_or(Path::new(".")).join(target);
            let text = read(&inc)?;
            parse_requirements(&inc, &text, depth + 1, out)?;
            continue;
        }
        if first.starts_with('-') {
            // Other global options (--index-url, --require-hashes, …).
            continue;
        }
        let mut hashes = Vec::new();
        let mut spec = String::new();
        for w in line.split_whitespace() {
            if let Some(h) = w.strip_prefix("--hash=") {
                hashes.push(h.to_string());
            } else if w.starts_with("--") {
                continue;
            } else {
                spec.push_str(w);
                spec.push(' ');
            }
        }
        let spec = spec.trim();
        let local = spec.starts_with('.')
            || spec.starts_with('/')
            || spec.contains("://")
            || spec.starts_with("-e");
        let name_end = spec
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(spec.len());
        let name = &spec[..name_end];
        if name.is_empty() || local {
            continue;
        }
        let rest = spec[name_end..].trim_start();
        // Extras, then the version specifier, then `; markers`.
        let rest = if rest.starts_with('[') {
            rest.split_once(']').map_or("", |(_, r)| r).trim_start()
        } else {
            rest
        };
        let specifier = rest.split(';').next().unwrap_or_default().trim();
        let version = specifier
            .strip_prefix("===")
            .or_else(|| specifier.strip_prefix("=="))
            .map(str::trim)
            .filter(|v| !v.contains(['*', ',', '<', '>', '!', '~']))
            .map(str::to_string);
        out.push(Locked {
            name: normalise_name(name),
            version,
            hashes,
            origin,
            local: false,
        });
    }
    Ok(())
}

fn toml_packages(text: &str) -> Result<Vec<toml::Table>, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| format!("not TOML: {e}"))?;
    Ok(doc
        .get("package")
        .and_then(|p| p.as_array())
        .map(|a| a.iter().filter_map(|p| p.as_table().cloned()).collect())
        .unwrap_or_default())
}

/// The `name` of a `[[package]]` entry.
fn package_name(p: &toml::Table) -> Result<&str, String> {
    p.get("name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| "a package without name".to_string())
}

/// A `[[package]]` entry of a TOML lockfile as a locked package.
fn toml_locked(
    p: &toml::Table,
    name: &str,
    hashes: Vec<String>,
    shown: &str,
    local: bool,
) -> Locked {
    Locked {
        name: normalise_name(name),
        version: p
            .get("version")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        hashes,
        origin: format!("{shown} [{name}]"),
        local,
    }
}

fn parse_uv(text: &str, shown: &str) -> Result<Vec<Locked>, String> {
    let mut out = Vec::new();
    for p in toml_packages(text)? {
        let name = package_name(&p)?;
        let source = p.get("source").and_then(|s| s.as_table());
        let local = source.is_some_and(|s| {
            ["editable", "virtual", "path", "directory"]
                .iter()
                .any(|k| s.contains_key(*k))
        });
        let mut hashes = Vec::new();
        if let Some(h) = p
            .get("sdist")
            .and_then(|s| s.get("hash"))
            .and_then(|h| h.as_str())
        {
            hashes.push(h.to_string());
        }
        for w in p
            .get("wheels")
            .and_then(|w| w.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(h) = w.get("hash").and_then(|h| h.as_str()) {
                hashes.push(h.to_string());
            }
        }
        out.push(toml_locked(&p, name, hashes, shown, local));
    }
    Ok(out)
}

fn parse_poetry(text: &str, shown: &str) -> Result<Vec<Locked>, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| format!("not TOML: {e}"))?;
    // Poetry < 1.5 kept hashes in [metadata.files], keyed by name.
    let legacy = doc
        .get("metadata")
        .and_then(|m| m.get("files"))
        .and_then(|f| f.as_table());
    let hashes_of = |files: Option<&toml::Value>| -> Vec<String> {
        files
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("hash").and_then(|h| h.as_str()).map(str::to_string))
            .collect()
    };
    let mut out = Vec::new();
    for p in toml_packages(text)? {
        let name = package_name(&p)?;
        let mut hashes = hashes_of(p.get("files"));
        if hashes.is_empty() {
            hashes = hashes_of(legacy.and_then(|l| l.get(name)));
        }
        let local = p
            .get("source")
            .and_then(|s| s.get("type"))
            .and_then(|t| t.as_str())
            .is_some_and(|t| matches!(t, "directory" | "file" | "git"));
        out.push(toml_locked(&p, name, hashes, shown, local));
    }
    Ok(out)
}

/// Tools that bootstrap an environment rather than belong to the project.
const BOOTSTRAP: &[&str] = &["pip", "setuptools", "wheel", "distribute"];

fn same_version(a: &str, b: &str) -> bool {
    use std::str::FromStr;
    match (
        pep440_rs::Version::from_str(a),
        pep440_rs::Version::from_str(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// Compares the installed distributions with the locked packages.
pub fn compare(lock_path: &Path, locked: &[Locked], installed: &[Distribution]) -> Vec<Finding> {
    let shown = lock_path.display().to_string();
    let mut findings = Vec::new();
    let by_name: BTreeMap<String, &Locked> = locked.iter().map(|l| (l.name.clone(), l)).collect();
    let finding = |severity: Severity, origin: &str, message: String| {
        Finding::new(
            &ENV_LOCK_MISMATCH,
            Location::file(origin.to_string()),
            message,
        )
        .with_severity(severity)
    };
    for l in locked.iter().filter(|l| !l.local) {
        match &l.version {
            None => findings.push(finding(
                Severity::Medium,
                &l.origin,
                format!("{} is not pinned to one version (`==`)", l.name),
            )),
            Some(_) if l.hashes.is_empty() => findings.push(finding(
                Severity::Medium,
                &l.origin,
                format!("{} is pinned without a hash (`--hash=sha256:…`)", l.name),
            )),
            Some(_) => {}
        }
    }
    for d in installed {
        let key = normalise_name(&d.name);
        let label = format!("{} {}", d.name, d.version);
        match by_name.get(&key) {
            None => {
                let severity = if BOOTSTRAP.contains(&key.as_str()) {
                    Severity::Info
                } else {
                    Severity::Medium
                };
                findings.push(
                    finding(
                        severity,
                        &shown,
                        format!("{label} is installed but not in the lockfile"),
                    )
                    .with_evidence("distribution", d.name.clone()),
                );
            }
            Some(l) => {
                if let Some(v) = &l.version {
                    if !same_version(v, &d.version) {
                        findings.push(
                            finding(
                                Severity::High,
                                &l.origin,
                                format!("{}: installed {}, locked {v}", d.name, d.version),
                            )
                            .with_evidence("installed", d.version.clone())
                            .with_evidence("locked", v.clone()),
                        );
                        continue;
                    }
                }
                let norm = |h: &str| h.replacen('=', ":", 1).to_ascii_lowercase();
                if !l.hashes.is_empty()
                    && !d.archive_hashes.is_empty()
                    && !d
                        .archive_hashes
                        .iter()
                        .any(|h| l.hashes.iter().any(|x| norm(x) == norm(h)))
                {
                    findings.push(
                        finding(
                            Severity::High,
                            &l.origin,
                            format!(
                                "{label} was installed from an archive whose hash the lockfile does not list"
                            ),
                        )
                        .with_evidence("archive_hashes", d.archive_hashes.clone()),
                    );
                }
            }
        }
    }
    let installed_names: std::collections::BTreeSet<String> =
        installed.iter().map(|d| normalise_name(&d.name)).collect();
    for l in locked
        .iter()
        .filter(|l| !l.local && !installed_names.contains(&l.name))
    {
        findings.push(finding(
            Severity::Low,
            &l.origin,
            format!("{} is locked but not installed", l.name),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_pins_hashes_extras_markers_and_continuations() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requirements.txt");
        std::fs::write(dir.path().join("more.txt"), "Typing_Extensions==4.12.2\n").unwrap();
        let text = "# top\n--require-hashes\nrequests[socks]==2.32.3 ; python_version >= '3.8' \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\nnumpy>=1.26  # floating\nidna==3.*\n-r more.txt\n./local-pkg\n";
        std::fs::write(&p, text).unwrap();
        let (fmt, l) = load(&p).unwrap();
        assert_eq!(fmt, LockFormat::Requirements);
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].name, "requests");
        assert_eq!(l[0].version.as_deref(), Some("2.32.3"));
        assert_eq!(l[0].hashes, vec!["sha256:aa", "sha256:bb"]);
        assert_eq!(l[0].origin, format!("{}:3", p.display()));
        assert_eq!(
            (l[1].name.as_str(), l[1].version.as_deref()),
            ("numpy", None)
        );
        assert_eq!(l[2].version, None, "a wildcard is not a pin");
        assert_eq!(l[3].name, "typing-extensions");
    }

    #[test]
    fn uv_and_poetry_locks() {
        let dir = tempfile::tempdir().unwrap();
        let uv = dir.path().join("uv.lock");
        std::fs::write(&uv, "version = 1\nrequires-python = \">=3.11\"\n\n[[package]]\nname = \"idna\"\nversion = \"3.10\"\nsource = { registry = \"https://pypi.org/simple\" }\nsdist = { url = \"https://x/idna.tar.gz\", hash = \"sha256:12\", size = 1 }\nwheels = [{ url = \"https://x/idna.whl\", hash = \"sha256:34\", size = 1 }]\n\n[[package]]\nname = \"proj\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\n").unwrap();
        let (fmt, l) = load(&uv).unwrap();
        assert_eq!(fmt, LockFormat::Uv);
        assert_eq!(l[0].hashes, vec!["sha256:12", "sha256:34"]);
        assert!(l[1].local);
        let poetry = dir.path().join("poetry.lock");
        std::fs::write(&poetry, "[[package]]\nname = \"six\"\nversion = \"1.17.0\"\ndescription = \"\"\nfiles = [\n  {file = \"six.whl\", hash = \"sha256:ab\"},\n]\n\n[[package]]\nname = \"old\"\nversion = \"1.0\"\n\n[metadata]\ncontent-hash = \"x\"\n\n[metadata.files]\nold = [{file = \"old.whl\", hash = \"sha256:cd\"}]\n").unwrap();
        let (fmt, l) = load(&poetry).unwrap();
        assert_eq!(fmt, LockFormat::Poetry);
        assert_eq!(l[0].hashes, vec!["sha256:ab"]);
        assert_eq!(l[1].hashes, vec!["sha256:cd"]);
    }
}
