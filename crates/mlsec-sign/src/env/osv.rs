//! An offline OSV advisory database: the JSON files OSV publishes per
//! ecosystem (`PyPI/all.zip`, extracted), matched against installed
//! distributions by PEP 503 name and PEP 440 version.

use super::{normalise_name, Distribution};
use crate::rules::ENV_KNOWN_VULNERABILITY;
use crate::SignError;
use mlsec_core::{Finding, Location, Severity};
use pep440_rs::Version;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Largest advisory file read (real ones are a few KiB).
const MAX_ADVISORY_BYTES: u64 = 16 << 20;
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    #[serde(default)]
    pub withdrawn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    pub package: Option<Package>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub ecosystem: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<BTreeMap<String, String>>,
}

/// Advisories for PyPI packages, by normalised name.
#[derive(Debug, Default)]
pub struct Database {
    by_package: BTreeMap<String, Vec<Advisory>>,
    pub files: usize,
    pub unreadable: Vec<String>,
}

impl Database {
    pub fn load(dir: &Path) -> Result<Database, SignError> {
        if !dir.is_dir() {
            return Err(SignError::Input(format!(
                "{}: not a folder of OSV JSON files",
                dir.display()
            )));
        }
        let mut db = Database::default();
        let mut stack: Vec<(PathBuf, usize)> = vec![(dir.to_path_buf(), 0)];
        while let Some((d, depth)) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| SignError::io(&d, &e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(ty) = entry.file_type() else { continue };
                if ty.is_dir() && depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                } else if ty.is_file() && path.extension().is_some_and(|e| e == "json") {
                    db.files += 1;
                    match read_advisory(&path) {
                        Ok(a) => db.add(a),
                        Err(e) => db.unreadable.push(format!("{}: {e}", path.display())),
                    }
                }
            }
        }
        Ok(db)
    }

    fn add(&mut self, a: Advisory) {
        if a.withdrawn.is_some() {
            return;
        }
        let mut names: Vec<String> = a
            .affected
            .iter()
            .filter_map(|x| x.package.as_ref())
            .filter(|p| p.ecosystem == "PyPI")
            .map(|p| normalise_name(&p.name))
            .collect();
        names.sort();
        names.dedup();
        for n in names {
            self.by_package.entry(n).or_default().push(a.clone());
        }
    }

    pub fn advisories(&self) -> usize {
        self.by_package.values().map(Vec::len).sum()
    }

    /// Advisories affecting `name` at `version`, with the fixed versions
    /// their ranges name.
    pub fn affecting(&self, name: &str, version: &str) -> Vec<(&Advisory, Vec<String>)> {
        let key = normalise_name(name);
        let Some(list) = self.by_package.get(&key) else {
            return Vec::new();
        };
        let parsed = Version::from_str(version).ok();
        list.iter()
            .filter_map(|a| {
                let mut fixes = Vec::new();
                let hit = a.affected.iter().any(|x| {
                    let ours = x
                        .package
                        .as_ref()
                        .is_some_and(|p| p.ecosystem == "PyPI" && normalise_name(&p.name) == key);
                    if !ours {
                        return false;
                    }
                    for r in &x.ranges {
                        for e in &r.events {
                            if let Some(f) = e.get("fixed") {
                                fixes.push(f.clone());
                            }
                        }
                    }
                    let listed = x
                        .versions
                        .iter()
                        .any(|v| match (&parsed, Version::from_str(v)) {
                            (Some(p), Ok(q)) => *p == q,
                            _ => v == version,
                        });
                    listed
                        || parsed.as_ref().is_some_and(|v| {
                            x.ranges
                                .iter()
                                .filter(|r| r.kind == "ECOSYSTEM")
                                .any(|r| in_range(v, &r.events))
                        })
                });
                fixes.sort();
                fixes.dedup();
                hit.then_some((a, fixes))
            })
            .collect()
    }
}

fn read_advisory(path: &Path) -> Result<Advisory, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_ADVISORY_BYTES {
        return Err(format!("larger than {MAX_ADVISORY_BYTES} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not an OSV advisory: {e}"))
}

/// Whether `v` lies in an OSV ECOSYSTEM range: events sorted by version
/// (`introduced: "0"` first); the last boundary at or below `v` decides.
pub fn in_range(v: &Version, events: &[BTreeMap<String, String>]) -> bool {
    let mut bounds: Vec<(Option<Version>, &str)> = Vec::new();
    for e in events {
        for (kind, value) in e {
            let at = if kind == "introduced" && value == "0" {
                None
            } else {
                match Version::from_str(value) {
                    Ok(x) => Some(x),
                    Err(_) => continue,
                }
            };
            bounds.push((at, kind.as_str()));
        }
    }
    // `None` (the beginning of time) sorts first.
    bounds.sort_by(|a, b| a.0.cmp(&b.0));
    let mut affected = false;
    for (at, kind) in bounds {
        match (kind, at) {
            ("introduced", None) => affected = true,
            ("introduced", Some(x)) if *v >= x => affected = true,
            ("fixed" | "limit", Some(x)) if *v >= x => affected = false,
            ("last_affected", Some(x)) if *v > x => affected = false,
            _ => {}
        }
    }
    affected
}

fn severity_of(a: &Advisory) -> Severity {
    let s = a
        .database_specific
        .as_ref()
        .and_then(|d| d.get("severity"))
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_ascii_uppercase();
    match s.as_str() {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MODERATE" | "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        _ => Severity::High,
    }
}

/// A finding per advisory affecting an installed distribution.
pub fn check(db: &Database, installed: &[Distribution]) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in installed {
        for (a, fixes) in db.affecting(&d.name, &d.version) {
            let aliases = if a.aliases.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.aliases.join(", "))
            };
            let fix = if fixes.is_empty() {
                "no fixed version".to_string()
            } else {
                format!("fixed in {}", fixes.join(", "))
            };
            out.push(
                Finding::new(
                    &ENV_KNOWN_VULNERABILITY,
                    Location::file(d.metadata_dir.display().to_string()),
                    format!(
                        "{} {} is affected by {}{aliases}: {fix}",
                        d.name, d.version, a.id
                    ),
                )
                .with_severity(severity_of(a))
                .with_evidence("advisory", a.id.clone())
                .with_evidence("aliases", a.aliases.clone())
                .with_evidence("summary", a.summary.clone().unwrap_or_default())
                .with_evidence("fixed", fixes),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(pairs: &[(&str, &str)]) -> Vec<BTreeMap<String, String>> {
        pairs
            .iter()
            .map(|(k, v)| BTreeMap::from([(k.to_string(), v.to_string())]))
            .collect()
    }

    #[test]
    fn ranges_follow_pep_440_order() {
        let v = |s: &str| Version::from_str(s).unwrap();
        let r = ev(&[("introduced", "0"), ("fixed", "2.6.0")]);
        assert!(in_range(&v("2.5.1"), &r));
        assert!(
            in_range(&v("2.6.0rc1"), &r),
            "a pre-release sorts before the release"
        );
        assert!(!in_range(&v("2.6.0"), &r));
        assert!(!in_range(&v("2.10"), &r), "2.10 is after 2.6, not before");
        let two = ev(&[
            ("introduced", "1.0"),
            ("fixed", "1.2"),
            ("introduced", "2.0"),
            ("last_affected", "2.3"),
        ]);
        assert!(!in_range(&v("0.9"), &two));
        assert!(in_range(&v("1.1"), &two));
        assert!(!in_range(&v("1.5"), &two));
        assert!(in_range(&v("2.3"), &two));
        assert!(!in_range(&v("2.3.1"), &two));
    }
}
