use crate::{OwaspMl, Rule, Severity, Stage};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Where a finding was made, as precisely as the input allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The path as the user gave it (or `-` for standard input).
    pub path: String,
    /// A member inside an archive (zip entry, NPZ array, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Byte offset inside the file or member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// 1-based line number in a text file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 0-based sample (row, image) index in a dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<u64>,
    /// A column, array or field name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Location {
    pub fn file(path: impl Into<String>) -> Self {
        Location {
            path: path.into(),
            ..Default::default()
        }
    }
    pub fn with_member(mut self, member: impl Into<String>) -> Self {
        self.member = Some(member.into());
        self
    }
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
    pub fn with_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }
    pub fn with_sample(mut self, sample: u64) -> Self {
        self.sample = Some(sample);
        self
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for Location {
    /// `path[!member][:line][@offset][#sample][ field]`, compact for tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(m) = &self.member {
            write!(f, "!{m}")?;
        }
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(o) = self.offset {
            write!(f, "@{o}")?;
        }
        if let Some(s) = self.sample {
            write!(f, " sample {s}")?;
        }
        if let Some(c) = &self.field {
            write!(f, " [{c}]")?;
        }
        Ok(())
    }
}

/// One thing mlsec found, tied to the rule that found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule's stable code, e.g. `MLS-DATA-003`.
    pub rule: &'static str,
    /// The rule's name, e.g. `conflicting-labels`.
    pub rule_name: &'static str,
    pub severity: Severity,
    pub stage: Stage,
    pub atlas: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owasp: Option<OwaspMl>,
    pub location: Location,
    pub message: String,
    /// Machine-readable facts behind the message (counts, values, names).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, serde_json::Value>,
}

impl Finding {
    /// A finding with the rule's default severity, stage and taxonomy.
    pub fn new(rule: &'static Rule, location: Location, message: impl Into<String>) -> Self {
        Finding {
            rule: rule.code,
            rule_name: rule.name,
            severity: rule.default_severity,
            stage: rule.stage,
            atlas: rule.atlas,
            owasp: rule.owasp,
            location,
            message: message.into(),
            evidence: BTreeMap::new(),
        }
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn with_evidence(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.evidence.insert(key.to_string(), value.into());
        self
    }

    /// A stable identity for this finding across runs: the rule and the
    /// location, not the message wording, so rewording a message does not
    /// reopen every alert in a code-scanning UI.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.rule,
            &self.location.path,
            self.location.member.as_deref().unwrap_or(""),
            self.location.field.as_deref().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        for n in [
            self.location.offset,
            self.location.line,
            self.location.sample,
        ] {
            h.update(n.map(|n| n.to_le_bytes()).unwrap_or([0xff; 8]));
        }
        hex::encode(&h.finalize()[..16])
    }
}
