//! `mlsec provenance run`: record a step's materials, run its command,
//! record its products, and sign the link, as `in-toto-run` does.

use super::fnmatch::fnmatch;
use super::metadata::{self, Artifacts};
use crate::keys::PrivateKey;
use crate::serialize::{self, Serialization};
use crate::SignError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The patterns in-toto excludes from recorded artifacts by default.
pub const DEFAULT_EXCLUDES: &[&str] = &["*.link*", ".git", "*.pyc", "*~"];

/// Whether a `/`-separated relative path is excluded by a gitignore-style
/// pattern: a pattern without `/` matches any path component (so `.git`
/// excludes everything below a `.git` folder), one with `/` is anchored at
/// the base and matched component by component, `**` spanning components.
pub fn excluded(path: &str, patterns: &[String]) -> bool {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    patterns.iter().any(|pat| {
        let pat = pat.trim_end_matches('/');
        if pat.is_empty() || pat.starts_with('#') {
            return false;
        }
        if !pat.contains('/') {
            return parts.iter().any(|c| fnmatch(c, pat));
        }
        let pp: Vec<&str> = pat.trim_start_matches('/').split('/').collect();
        // A match of any leading part of the path excludes the rest below it.
        (1..=parts.len()).any(|n| components_match(&parts[..n], &pp))
    })
}

fn components_match(path: &[&str], pat: &[&str]) -> bool {
    match (pat.first(), path.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(&"**"), _) => (0..=path.len()).any(|k| components_match(&path[k..], &pat[1..])),
        (Some(_), None) => false,
        (Some(p), Some(c)) => fnmatch(c, p) && components_match(&path[1..], &pat[1..]),
    }
}

/// Lexically normalises a relative path as Python's `os.path.normpath`
/// does (`./a/../b` is `b`), with `/` separators.
fn normalise(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." if out.last().is_some_and(|p| *p != "..") => {
                out.pop();
            }
            ".." if absolute => {}
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Records artifacts: files as given, folders expanded recursively (without
/// following folder symlinks), names relative to `base` with `/`
/// separators, `excludes` applied. Returns the artifacts and a warning per
/// path that does not exist.
pub fn record(
    paths: &[String],
    base: &Path,
    excludes: &[String],
) -> Result<(Artifacts, Vec<String>), SignError> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut warnings = Vec::new();
    for given in paths {
        let name = normalise(given);
        let full = base.join(&name);
        let meta = match std::fs::metadata(&full) {
            Ok(m) => m,
            Err(_) => {
                warnings.push(format!("{given}: does not exist, not recorded"));
                continue;
            }
        };
        if meta.is_file() {
            if name != "." && !excluded(&name, excludes) {
                files.insert(name, full);
            }
            continue;
        }
        let prefix = if name == "." {
            String::new()
        } else {
            format!("{name}/")
        };
        walk_into(&full, &prefix, excludes, &mut files)?;
    }
    let list: Vec<(String, PathBuf)> = files.into_iter().collect();
    let digests = serialize::hash(&list, &Serialization::default())?;
    let artifacts = list
        .iter()
        .zip(digests)
        .map(|((name, _), r)| {
            (
                name.clone(),
                BTreeMap::from([("sha256".to_string(), hex::encode(r.digest))]),
            )
        })
        .collect();
    Ok((artifacts, warnings))
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    excludes: &[String],
    files: &mut BTreeMap<String, PathBuf>,
) -> Result<(), SignError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SignError::io(dir, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SignError::io(dir, &e))?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if excluded(&name, excludes) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| SignError::io(&path, &e))?;
        if kind.is_dir() {
            walk_into(&path, &format!("{name}/"), excludes, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            files.insert(name, path);
        }
    }
    Ok(())
}

/// What running a step produced.
pub struct StepRun {
    pub link: Value,
    pub return_value: i32,
    pub warnings: Vec<String>,
}

pub struct StepOptions<'a> {
    pub name: &'a str,
    pub materials: &'a [String],
    pub products: &'a [String],
    pub command: &'a [String],
    pub base: &'a Path,
    pub excludes: Vec<String>,
    /// Capture stdout/stderr into the link instead of passing them through.
    pub record_streams: bool,
}

/// Records materials, runs the command (directly, never through a shell),
/// records products, and returns the unsigned link.
pub fn run_step(opts: &StepOptions) -> Result<StepRun, SignError> {
    let (materials, mut warnings) = record(opts.materials, opts.base, &opts.excludes)?;
    let (mut rc, mut stdout, mut stderr) = (0, String::new(), String::new());
    if let Some((program, args)) = opts.command.split_first() {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args).current_dir(opts.base);
        let status = if opts.record_streams {
            let out = cmd
                .output()
                .map_err(|e| SignError::Input(format!("cannot run {program}: {e}")))?;
            stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            out.status
        } else {
            cmd.status()
                .map_err(|e| SignError::Input(format!("cannot run {program}: {e}")))?
        };
        rc = status.code().unwrap_or(-1);
    }
    let (products, more) = record(opts.products, opts.base, &opts.excludes)?;
    warnings.extend(more);
    let link = serde_json::json!({
        "_type": "link",
        "name": opts.name,
        "command": opts.command,
        "materials": artifacts_json(&materials),
        "products": artifacts_json(&products),
        "byproducts": {"return-value": rc, "stderr": stderr, "stdout": stdout},
        "environment": {},
    });
    Ok(StepRun {
        link,
        return_value: rc,
        warnings,
    })
}

pub fn artifacts_json(a: &Artifacts) -> Value {
    serde_json::to_value(a).unwrap_or(Value::Null)
}

/// The file name in-toto gives a signed link: `<step>.<keyid[:8]>.link`.
pub fn link_file_name(step: &str, keyid: &str) -> String {
    format!("{step}.{}.link", &keyid[..keyid.len().min(8)])
}

/// Signs a link and names its file.
pub fn sign_link(
    link: &Value,
    key: &PrivateKey,
    use_dsse: bool,
) -> Result<(String, Vec<u8>), SignError> {
    let keyid = crate::dsse::sslib_keyid(&key.public())?;
    let name = link["name"].as_str().unwrap_or("step");
    Ok((
        link_file_name(name, &keyid),
        metadata::sign(link, key, use_dsse)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_excludes_and_anchored_patterns() {
        let d: Vec<String> = DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect();
        assert!(excluded("ingest.1555cded.link", &d));
        assert!(excluded(".git/HEAD", &d));
        assert!(excluded("a/b/c.pyc", &d));
        assert!(excluded("notes.txt~", &d));
        assert!(!excluded("model/weights.bin", &d));
        let a = vec!["data/*.tmp".to_string(), "**/cache".to_string()];
        assert!(excluded("data/x.tmp", &a));
        assert!(!excluded("other/data/x.tmp", &a));
        assert!(excluded("a/b/cache/file", &a));
        assert_eq!(normalise("./a/../b/./c"), "b/c");
        assert_eq!(normalise("."), ".");
    }
}
