//! The gate's policy file (TOML): trusted sources and their keys, the
//! schema, and the thresholds of the statistical screens.
//!
//! ```toml
//! label = "label"
//!
//! [[sources]]
//! name = "vendor-a"
//! key = "keys/vendor-a.pub.pem"        # relative to the policy file
//!
//! [schema]
//! unknown_columns = "reject"           # or "ignore"
//! [schema.columns.amount]
//! type = "float"                       # float | int | bool | string
//! min = 0.0
//! max = 10000.0
//! nullable = false
//! [schema.columns.id]
//! type = "int"
//! unique = true
//! [schema.columns.country]
//! type = "string"
//! allowed = ["DE", "FR", "NL"]
//!
//! [distribution]                       # batch-level: quarantine the whole batch
//! ks_max = 0.15
//! psi_max = 0.25
//! label_pvalue_min = 0.001             # chi-square of label counts
//!
//! [outliers]                           # row-level, Isolation Forest
//! threshold = -0.6                     # or contamination = 0.01
//!
//! [labels]                             # row-level, k-nearest-neighbour agreement
//! k = 10
//! min_agreement = 0.3
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest policy file read.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub sources: Vec<Source>,
    #[serde(default)]
    pub schema: Schema,
    #[serde(default)]
    pub distribution: Distribution,
    #[serde(default)]
    pub outliers: Option<Outliers>,
    #[serde(default)]
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub name: String,
    /// Public key (PEM) of the source, relative to the policy file.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    #[serde(default)]
    pub unknown_columns: UnknownColumns,
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnRule>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnknownColumns {
    #[default]
    Reject,
    Ignore,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Float,
    Int,
    Bool,
    String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    #[serde(rename = "type")]
    pub kind: ColumnType,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub nullable: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    #[serde(default = "default_ks_max")]
    pub ks_max: f64,
    #[serde(default = "default_psi_max")]
    pub psi_max: f64,
    #[serde(default = "default_label_pvalue_min")]
    pub label_pvalue_min: f64,
}

fn default_ks_max() -> f64 {
    0.15
}
fn default_psi_max() -> f64 {
    0.25
}
fn default_label_pvalue_min() -> f64 {
    0.001
}

impl Default for Distribution {
    fn default() -> Self {
        Distribution {
            ks_max: default_ks_max(),
            psi_max: default_psi_max(),
            label_pvalue_min: default_label_pvalue_min(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Outliers {
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub contamination: Option<f64>,
    #[serde(default = "default_trees")]
    pub trees: usize,
    #[serde(default)]
    pub seed: u64,
}

fn default_trees() -> usize {
    100
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    #[serde(default = "default_k")]
    pub k: usize,
    /// A row is suspect when fewer than this share of its nearest
    /// reference neighbours carry its label.
    #[serde(default = "default_min_agreement")]
    pub min_agreement: f64,
    /// Reference rows used as neighbours (a seeded sample above this).
    #[serde(default = "default_max_reference")]
    pub max_reference: usize,
}

fn default_k() -> usize {
    10
}
fn default_min_agreement() -> f64 {
    0.3
}
fn default_max_reference() -> usize {
    20_000
}

impl Policy {
    /// Parses policy text; errors name the line and the field.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let p: Policy = toml::from_str(text).map_err(|e| e.to_string())?;
        p.validate()?;
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<(Policy, PathBuf), String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > MAX_POLICY_BYTES {
            return Err(format!(
                "{}: larger than {MAX_POLICY_BYTES} bytes",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let p = Policy::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Ok((p, base))
    }

    fn validate(&self) -> Result<(), String> {
        let d = &self.distribution;
        for (name, v) in [
            ("ks_max", d.ks_max),
            ("label_pvalue_min", d.label_pvalue_min),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("distribution.{name} = {v} is outside [0, 1]"));
            }
        }
        if d.psi_max < 0.0 {
            return Err("distribution.psi_max must not be negative".into());
        }
        for (name, c) in &self.schema.columns {
            if let (Some(lo), Some(hi)) = (c.min, c.max) {
                if lo > hi {
                    return Err(format!("schema.columns.{name}: min {lo} > max {hi}"));
                }
            }
            if c.allowed.is_some() && c.kind != ColumnType::String {
                return Err(format!(
                    "schema.columns.{name}: `allowed` applies to string columns"
                ));
            }
        }
        if let Some(o) = &self.outliers {
            if o.threshold.is_some() && o.contamination.is_some() {
                return Err("outliers: give threshold or contamination, not both".into());
            }
            if o.trees == 0 {
                return Err("outliers.trees must be positive".into());
            }
        }
        if let Some(l) = &self.labels {
            if l.k == 0 || !(0.0..=1.0).contains(&l.min_agreement) {
                return Err("labels: k must be positive and min_agreement in [0, 1]".into());
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sources {
            if !names.insert(&s.name) {
                return Err(format!("source `{}` is listed twice", s.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example_and_refuses_mistakes() {
        let doc = include_str!("policy.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.contains("```toml"))
            .skip(1)
            .take_while(|l| !l.contains("```"))
            .map(|l| {
                l.trim_start_matches("//!")
                    .strip_prefix(' ')
                    .unwrap_or("")
                    .to_string()
                    + "\n"
            })
            .collect();
        let p = Policy::parse(&example).unwrap();
        assert_eq!(p.sources[0].name, "vendor-a");
        assert!(p.schema.columns["id"].unique);
        assert_eq!(p.outliers.unwrap().threshold, Some(-0.6));
        assert!(Policy::parse("[distribution]\nks_max = 2.0\n").is_err());
        assert!(Policy::parse("[schema.columns.a]\ntype = \"float\"\nmin = 3\nmax = 1\n").is_err());
        assert!(Policy::parse("[schema.columns.a]\ntype = \"decimal\"\n").is_err());
        assert!(Policy::parse("surprise = 1\n").is_err());
    }
}
