//! Rules: stable codes with their documentation, declared next to the code
//! that raises them and gathered into one [`RuleRegistry`].

use crate::{atlas, OwaspMl, Severity, Stage};
use std::collections::BTreeSet;

/// A check mlsec performs. The docs are the single source for `mlsec rules`,
/// SARIF `tool.driver.rules[]` and the generated rule reference.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable code, `MLS-<AREA>-<NNN>`; never reused once published.
    pub code: &'static str,
    /// Kebab-case name, e.g. `conflicting-labels`.
    pub name: &'static str,
    /// One sentence shown in tables and as SARIF `shortDescription`.
    pub summary: &'static str,
    pub default_severity: Severity,
    pub stage: Stage,
    /// MITRE ATLAS technique ids (checked against the embedded catalogue).
    pub atlas: &'static [&'static str],
    pub owasp: Option<OwaspMl>,
    pub docs: RuleDocs,
}

/// The three parts of every rule's documentation.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleDocs {
    pub what_it_detects: &'static str,
    pub why_it_matters: &'static str,
    pub example: &'static str,
}

impl Rule {
    /// The documentation as Markdown, used for SARIF `help.markdown` and `mlsec rules CODE`.
    pub fn markdown(&self) -> String {
        let mut md = format!("# {} `{}`\n\n{}\n\n", self.code, self.name, self.summary);
        md.push_str(&format!(
            "Default severity: **{}**. Stage: **{}**.",
            self.default_severity, self.stage
        ));
        if !self.atlas.is_empty() {
            let ids: Vec<String> = self
                .atlas
                .iter()
                .map(|id| match atlas::display_name(id) {
                    Some(name) => format!("[{id}]({}) {name}", atlas::url(id)),
                    None => id.to_string(),
                })
                .collect();
            md.push_str(&format!(" MITRE ATLAS: {}.", ids.join(", ")));
        }
        if let Some(o) = self.owasp {
            md.push_str(&format!(" OWASP ML Top 10: {} {}.", o.id(), o.name()));
        }
        md.push_str(&format!(
            "\n\n## What it detects\n\n{}\n\n## Why it matters\n\n{}\n\n## Example\n\n{}\n",
            self.docs.what_it_detects, self.docs.why_it_matters, self.docs.example
        ));
        md
    }
}

/// Every rule mlsec knows, in code order.
#[derive(Debug, Clone, Default)]
pub struct RuleRegistry {
    rules: Vec<&'static Rule>,
}

/// Why a registry is inconsistent; a test turns each into a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("rule code {0} is declared twice")]
    DuplicateCode(&'static str),
    #[error("rule name {0} is used by two rules")]
    DuplicateName(&'static str),
    #[error("rule {code}: `{id}` is not a MITRE ATLAS technique id")]
    UnknownAtlasId {
        code: &'static str,
        id: &'static str,
    },
    #[error("rule {0}: code must look like MLS-AREA-NNN")]
    BadCode(&'static str),
    #[error("rule {0}: every part of its docs must be written")]
    MissingDocs(&'static str),
}

impl RuleRegistry {
    /// Collects the rule lists each crate exports (`mlsec_data::RULES`, …).
    pub fn from_groups(groups: &[&[&'static Rule]]) -> Self {
        let mut rules: Vec<&'static Rule> = groups.iter().flat_map(|g| g.iter().copied()).collect();
        rules.sort_by_key(|r| r.code);
        RuleRegistry { rules }
    }

    pub fn rules(&self) -> &[&'static Rule] {
        &self.rules
    }

    pub fn get(&self, code: &str) -> Option<&'static Rule> {
        self.rules
            .iter()
            .copied()
            .find(|r| r.code.eq_ignore_ascii_case(code) || r.name == code)
    }

    /// Checks the invariants the rest of mlsec relies on: unique codes and
    /// names, well-formed codes, real ATLAS ids and complete docs.
    pub fn validate(&self) -> Result<(), Vec<RegistryError>> {
        let mut errors = Vec::new();
        let mut codes = BTreeSet::new();
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            if !codes.insert(rule.code) {
                errors.push(RegistryError::DuplicateCode(rule.code));
            }
            if !names.insert(rule.name) {
                errors.push(RegistryError::DuplicateName(rule.name));
            }
            if !is_well_formed_code(rule.code) {
                errors.push(RegistryError::BadCode(rule.code));
            }
            for id in rule.atlas {
                if atlas::technique(id).is_none() {
                    errors.push(RegistryError::UnknownAtlasId {
                        code: rule.code,
                        id,
                    });
                }
            }
            let d = &rule.docs;
            if [rule.summary, d.what_it_detects, d.why_it_matters, d.example]
                .iter()
                .any(|s| s.trim().is_empty())
            {
                errors.push(RegistryError::MissingDocs(rule.code));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn is_well_formed_code(code: &str) -> bool {
    let mut parts = code.split('-');
    let (Some("MLS"), Some(area), Some(num), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !area.is_empty()
        && area.bytes().all(|b| b.is_ascii_uppercase())
        && num.len() == 3
        && num.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    static GOOD: Rule = Rule {
        owasp: Some(OwaspMl::Ml02DataPoisoning),
        ..clone_of_good()
    };
    static SAME_CODE: Rule = Rule {
        name: "other-name",
        atlas: &["AML.T9999"],
        ..clone_of_good()
    };
    static BAD_CODE: Rule = Rule {
        code: "MLS-test-1",
        name: "bad-code",
        ..clone_of_good()
    };

    const fn clone_of_good() -> Rule {
        Rule {
            code: "MLS-TEST-001",
            name: "test-rule",
            summary: "A rule for tests.",
            default_severity: Severity::Low,
            stage: Stage::Collection,
            atlas: &["AML.T0020"],
            owasp: None,
            docs: RuleDocs {
                what_it_detects: "x",
                why_it_matters: "y",
                example: "z",
            },
        }
    }

    #[test]
    fn a_consistent_registry_validates() {
        let reg = RuleRegistry::from_groups(&[&[&GOOD]]);
        assert_eq!(reg.validate(), Ok(()));
        assert_eq!(reg.get("mls-test-001").unwrap().name, "test-rule");
        assert_eq!(reg.get("test-rule").unwrap().code, "MLS-TEST-001");
    }

    #[test]
    fn duplicate_codes_unknown_atlas_ids_and_bad_codes_are_reported() {
        let reg = RuleRegistry::from_groups(&[&[&GOOD, &SAME_CODE], &[&BAD_CODE]]);
        let errors = reg.validate().unwrap_err();
        assert!(errors.contains(&RegistryError::DuplicateCode("MLS-TEST-001")));
        assert!(errors.contains(&RegistryError::UnknownAtlasId {
            code: "MLS-TEST-001",
            id: "AML.T9999"
        }));
        assert!(errors.contains(&RegistryError::BadCode("MLS-test-1")));
    }

    #[test]
    fn markdown_names_atlas_techniques() {
        let md = GOOD.markdown();
        assert!(md.contains("AML.T0020"), "{md}");
        assert!(md.contains("Poison Training Data"), "{md}");
        assert!(md.contains("## Why it matters"));
    }
}
