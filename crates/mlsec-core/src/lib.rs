//! mlsec-core: the vocabulary every mlsec crate shares.
//!
//! - [`Finding`]s, raised by [`Rule`]s that carry their own docs, a default
//!   [`Severity`], a pipeline [`Stage`], MITRE ATLAS ids ([`atlas`]) and an
//!   OWASP ML Top 10 entry ([`OwaspMl`]);
//! - the [`Report`] a command produces and its renderings: terminal text,
//!   JSON (`mlsec-report/1`) and SARIF 2.1.0 ([`sarif`]);
//! - [`digest`]: SHA-256 helpers used to identify artifacts;
//! - [`file_bytes`]: whole files as one slice, mapped when large;
//! - [`memory`]: allocator settings for a batch tool.

pub mod atlas;
pub mod digest;
pub mod file_bytes;
mod finding;
pub mod memory;
mod owasp;
mod pretty_json;
mod report;
mod rule;
pub mod rules;
pub mod sarif;
mod severity;
mod stage;

pub use finding::{Finding, Location};
pub use owasp::OwaspMl;
pub use report::{
    render_json, render_text, write_table, Artifact, Report, Style, Summary, TextBody, ToolInfo,
    REPORT_SCHEMA,
};
pub use rule::{RegistryError, Rule, RuleDocs, RuleRegistry};
pub use severity::{ParseSeverityError, Severity};
pub use stage::Stage;
