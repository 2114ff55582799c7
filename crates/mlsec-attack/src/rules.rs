//! Rules for attack results: one rule, one place, with its documentation.

use mlsec_core::{OwaspMl, Rule, RuleDocs, Severity, Stage};

pub static EVASION_SUCCEEDS: Rule = Rule {
    code: "MLS-EVA-001",
    name: "adversarial-examples",
    summary: "An evasion attack changed the model's prediction with a perturbation inside the threat model's budget.",
    default_severity: Severity::High,
    stage: Stage::Inference,
    atlas: &["AML.T0015", "AML.T0043"],
    owasp: Some(OwaspMl::Ml01InputManipulation),
    docs: RuleDocs {
        what_it_detects: "`mlsec attack evasion` attacks every test sample the model classifies \
            correctly and counts those it misclassifies after a perturbation of at most ε in the \
            chosen norm (L∞ or L2), inside the valid input range. The finding gives clean and robust \
            accuracy, the success rate, perturbation sizes and, for query-based attacks, the queries \
            per success. Severity: critical when the attack succeeds on at least 90% of samples, high \
            from 50%, medium from 10%, low below.",
        why_it_matters: "An attacker who can shape inputs (an uploaded image, a transaction, a \
            sensor reading) can choose one the model gets wrong while a person sees no change \
            (AML.T0015, crafted with white-box gradients or only queries: AML.T0043). Robust \
            accuracy at a stated ε is the number a model's owner can defend; clean accuracy says \
            nothing about it.",
        example: "A LeNet at 99.1% clean accuracy on MNIST: `pgd (linf, eps 0.3): robust accuracy \
            0.0% — 100.0% of 1982 correctly classified samples fooled, median linf 0.300`. \
            Adversarial training (`mlsec train --adversarial pgd`) is the control.",
    },
};

pub static RULES: &[&Rule] = &[&EVASION_SUCCEEDS];

/// Severity from the share of attacked samples that were fooled.
pub fn evasion_severity(success_rate: f64) -> Severity {
    if success_rate >= 0.9 {
        Severity::Critical
    } else if success_rate >= 0.5 {
        Severity::High
    } else if success_rate >= 0.1 {
        Severity::Medium
    } else {
        Severity::Low
    }
}
