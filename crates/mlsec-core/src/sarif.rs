//! SARIF 2.1.0 output, built from typed structures that mirror the parts of
//! the OASIS schema mlsec fills in, shaped for GitHub code scanning
//! (rule metadata in `tool.driver.rules`, `region.startLine` on every
//! location, `partialFingerprints`, `security-severity`).

use crate::{atlas, Artifact, Finding, Report, RuleRegistry};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
pub const SARIF_VERSION: &str = "2.1.0";
/// Key under `partialFingerprints`; the `/v1` lets us change the recipe later.
pub const FINGERPRINT_KEY: &str = "mlsecFindingHash/v1";
const INFORMATION_URI: &str = "https://github.com/mlsec/mlsec";

#[derive(Debug, Serialize)]
pub struct SarifLog {
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    pub version: &'static str,
    pub runs: Vec<Run>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub tool: Tool,
    pub invocations: Vec<Invocation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<SarifArtifact>,
    pub results: Vec<SarifResult>,
    pub original_uri_base_ids: BTreeMap<String, ArtifactLocation>,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub driver: ToolComponent,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolComponent {
    pub name: &'static str,
    pub version: &'static str,
    pub semantic_version: &'static str,
    pub information_uri: &'static str,
    pub rules: Vec<ReportingDescriptor>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportingDescriptor {
    pub id: &'static str,
    pub name: &'static str,
    pub short_description: Message,
    pub full_description: Message,
    pub help: MultiformatMessage,
    pub help_uri: String,
    pub default_configuration: ReportingConfiguration,
    pub properties: RuleProperties,
}

#[derive(Debug, Serialize)]
pub struct ReportingConfiguration {
    pub level: &'static str,
}

#[derive(Debug, Serialize)]
pub struct RuleProperties {
    pub tags: Vec<String>,
    #[serde(rename = "security-severity")]
    pub security_severity: &'static str,
    pub precision: &'static str,
    pub stage: &'static str,
    pub atlas: Vec<AtlasRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owasp: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct AtlasRef {
    pub id: &'static str,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct Message {
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct MultiformatMessage {
    pub text: String,
    pub markdown: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    pub execution_successful: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_execution_notifications: Vec<Notification>,
}

#[derive(Debug, Serialize)]
pub struct Notification {
    pub level: &'static str,
    pub message: Message,
}

#[derive(Debug, Serialize)]
pub struct SarifArtifact {
    pub location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hashes: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactLocation {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_base_id: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifResult {
    pub rule_id: &'static str,
    pub rule_index: usize,
    pub level: &'static str,
    pub message: Message,
    pub locations: Vec<SarifLocation>,
    pub partial_fingerprints: BTreeMap<&'static str, String>,
    pub properties: ResultProperties,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifLocation {
    pub physical_location: PhysicalLocation,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logical_locations: Vec<LogicalLocation>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalLocation {
    pub artifact_location: ArtifactLocation,
    pub region: Region,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    /// Always present: GitHub code scanning needs a line to place an alert;
    /// binary inputs get line 1 plus the precise `byteOffset`.
    pub start_line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_offset: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogicalLocation {
    pub fully_qualified_name: String,
    pub kind: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ResultProperties {
    pub severity: &'static str,
    pub stage: &'static str,
    pub atlas: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owasp: Option<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, serde_json::Value>,
}

/// Builds the SARIF log. Every rule in `registry` is described in the driver
/// (code-scanning UIs show rule help even for rules with no results), and a
/// finding whose rule is missing from it is a programming error reported as
/// `InvalidInput` rather than a malformed log.
pub fn build_sarif<B>(report: &Report<B>, registry: &RuleRegistry) -> io::Result<SarifLog> {
    let rules: Vec<ReportingDescriptor> = registry.rules().iter().map(|r| descriptor(r)).collect();
    let mut results = Vec::with_capacity(report.findings.len());
    for f in &report.findings {
        let rule_index = registry
            .rules()
            .iter()
            .position(|r| r.code == f.rule)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("finding names rule {} that is not registered", f.rule),
                )
            })?;
        results.push(result(f, rule_index));
    }
    let artifacts = report.artifacts.iter().map(artifact).collect();
    let mut bases = BTreeMap::new();
    bases.insert(
        "%SRCROOT%".to_string(),
        ArtifactLocation {
            uri: "./".to_string(),
            uri_base_id: None,
        },
    );
    Ok(SarifLog {
        schema: SARIF_SCHEMA,
        version: SARIF_VERSION,
        runs: vec![Run {
            tool: Tool {
                driver: ToolComponent {
                    name: report.tool.name,
                    version: report.tool.version,
                    semantic_version: report.tool.version,
                    information_uri: INFORMATION_URI,
                    rules,
                },
            },
            invocations: vec![Invocation {
                execution_successful: true,
                tool_execution_notifications: Vec::new(),
            }],
            artifacts,
            results,
            original_uri_base_ids: bases,
        }],
    })
}

/// The SARIF rendering, pretty-printed.
pub fn render_sarif<B>(
    report: &Report<B>,
    registry: &RuleRegistry,
    out: &mut dyn Write,
) -> io::Result<()> {
    let log = build_sarif(report, registry)?;
    crate::pretty_json::write_pretty_json(&log, out)
}

fn descriptor(rule: &'static crate::Rule) -> ReportingDescriptor {
    let mut tags = vec!["security".to_string(), format!("stage:{}", rule.stage)];
    tags.extend(rule.atlas.iter().map(|id| format!("atlas:{id}")));
    if let Some(o) = rule.owasp {
        tags.push(format!("owasp-ml:{}", o.id()));
    }
    ReportingDescriptor {
        id: rule.code,
        name: rule.name,
        short_description: Message {
            text: rule.summary.to_string(),
        },
        full_description: Message {
            text: rule.docs.what_it_detects.to_string(),
        },
        help: MultiformatMessage {
            text: format!(
                "{}\n\nWhy it matters: {}\n\nExample: {}",
                rule.docs.what_it_detects, rule.docs.why_it_matters, rule.docs.example
            ),
            markdown: rule.markdown(),
        },
        help_uri: format!(
            "{INFORMATION_URI}/blob/main/docs/rules.md#{}",
            rule.code.to_ascii_lowercase()
        ),
        default_configuration: ReportingConfiguration {
            level: rule.default_severity.sarif_level(),
        },
        properties: RuleProperties {
            tags,
            security_severity: rule.default_severity.security_severity(),
            precision: "high",
            stage: rule.stage.as_str(),
            atlas: rule
                .atlas
                .iter()
                .map(|id| AtlasRef {
                    id,
                    name: atlas::display_name(id).unwrap_or_default(),
                })
                .collect(),
            owasp: rule.owasp.map(|o| o.id()),
        },
    }
}

fn result(f: &Finding, rule_index: usize) -> SarifResult {
    let mut logical = Vec::new();
    if let Some(m) = &f.location.member {
        logical.push(LogicalLocation {
            fully_qualified_name: m.clone(),
            kind: "member",
        });
    }
    if let Some(field) = &f.location.field {
        logical.push(LogicalLocation {
            fully_qualified_name: field.clone(),
            kind: "variable",
        });
    }
    if let Some(s) = f.location.sample {
        logical.push(LogicalLocation {
            fully_qualified_name: format!("sample[{s}]"),
            kind: "element",
        });
    }
    let mut fingerprints = BTreeMap::new();
    fingerprints.insert(FINGERPRINT_KEY, f.fingerprint());
    SarifResult {
        rule_id: f.rule,
        rule_index,
        level: f.severity.sarif_level(),
        message: Message {
            text: f.message.clone(),
        },
        locations: vec![SarifLocation {
            physical_location: PhysicalLocation {
                artifact_location: artifact_location(&f.location.path),
                region: Region {
                    start_line: f.location.line.unwrap_or(1).max(1),
                    byte_offset: f.location.offset,
                },
            },
            logical_locations: logical,
        }],
        partial_fingerprints: fingerprints,
        properties: ResultProperties {
            severity: f.severity.as_str(),
            stage: f.stage.as_str(),
            atlas: f.atlas,
            owasp: f.owasp.map(|o| o.id()),
            evidence: f.evidence.clone(),
        },
    }
}

fn artifact(a: &Artifact) -> SarifArtifact {
    let mut hashes = BTreeMap::new();
    if let Some(h) = &a.sha256 {
        hashes.insert("sha-256", h.clone());
    }
    SarifArtifact {
        location: artifact_location(&a.path),
        length: a.bytes,
        hashes,
        roles: vec!["analysisTarget"],
    }
}

/// A relative path becomes a URI relative to `%SRCROOT%` (what code scanning
/// resolves against the repository root); an absolute one a `file://` URI.
pub fn artifact_location(path: &str) -> ArtifactLocation {
    let unified = path.replace('\\', "/");
    if unified == "-" {
        return ArtifactLocation {
            uri: "stdin".to_string(),
            uri_base_id: None,
        };
    }
    if unified.starts_with('/') {
        ArtifactLocation {
            uri: format!("file://{}", percent_encode_path(&unified)),
            uri_base_id: None,
        }
    } else {
        let rel = unified.trim_start_matches("./");
        ArtifactLocation {
            uri: percent_encode_path(rel),
            uri_base_id: Some("%SRCROOT%"),
        }
    }
}

/// Percent-encodes everything outside RFC 3986's unreserved set and `/`.
/// Hand-written because it is six lines and a URL crate would be the only
/// dependency needing it in mlsec-core.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_relative_uris_and_odd_characters_are_escaped() {
        let loc = artifact_location("./data/my file#1.csv");
        assert_eq!(loc.uri, "data/my%20file%231.csv");
        assert_eq!(loc.uri_base_id, Some("%SRCROOT%"));
        let abs = artifact_location("/tmp/x.npy");
        assert_eq!(abs.uri, "file:///tmp/x.npy");
        assert!(abs.uri_base_id.is_none());
    }
}
