//! Rules raised by mlsec itself rather than by one check.

use crate::{OwaspMl, Rule, RuleDocs, Severity, Stage};

/// An input could not be analysed (unreadable, malformed or unsupported).
pub static INPUT_NOT_ANALYSED: Rule = Rule {
    code: "MLS-CORE-001",
    name: "input-not-analysed",
    summary: "An input could not be read or parsed, so nothing about it is assured.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "A file or folder given to mlsec that it could not open, or whose \
            contents are malformed, truncated or of a kind the command does not support. \
            When several inputs are given, each one that fails becomes a finding of this \
            rule and the others are still analysed (\"found beats error\").",
        why_it_matters: "A security check that silently skips what it cannot read gives \
            false assurance. Malformed files are also a classic way to slip past scanners \
            that parse differently from the loader that will later read the same bytes, \
            so an unreadable artifact must be looked at, not ignored.",
        example: "`mlsec data inspect good.csv broken.npy` reports broken.npy as \
            `MLS-CORE-001 broken.npy: truncated NPY: header declares 800 data bytes, \
            file has 10`, inspects good.csv, and exits 1 if good.csv had findings at or \
            above --fail-on, otherwise 2.",
    },
};

/// The rules of this crate, for the CLI's registry.
pub static RULES: &[&Rule] = &[&INPUT_NOT_ANALYSED];
