//! Rules raised by `mlsec verify`.

use mlsec_core::{OwaspMl, Rule, RuleDocs, Severity, Stage};

pub static SIGNATURE_INVALID: Rule = Rule {
    code: "MLS-SIGN-001",
    name: "signature-invalid",
    summary: "A model's signature does not verify with the trusted key.",
    default_severity: Severity::Critical,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010", "AML.T0058"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "An OpenSSF model-signing bundle whose key hint names another key, whose \
            signature does not cover its payload bytes as received, or whose signed statement is \
            malformed (wrong type, subject digest that does not match its resources, resource names \
            that escape the model folder).",
        why_it_matters: "A signature is the only thing tying a model file to the team that trained \
            it. If it does not verify, the model may have been swapped or edited anywhere between \
            training and serving — exactly what publishing a poisoned model (AML.T0058) relies on.",
        example: "`mlsec verify model/ --key other.pub` on a model signed with another key: \
            `the signature was made with another key (public key hint differs)`.",
    },
};

pub static MODEL_DIFFERS: Rule = Rule {
    code: "MLS-SIGN-002",
    name: "model-differs-from-signature",
    summary: "A signed model's files differ from what was signed.",
    default_severity: Severity::Critical,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010", "AML.T0018"],
    owasp: Some(OwaspMl::Ml10ModelPoisoning),
    docs: RuleDocs {
        what_it_detects:
            "After a valid signature, the model re-hashed the way it was signed does not \
            match the signed manifest: files changed, added, removed or renamed.",
        why_it_matters:
            "Editing a few weights after training is how backdoors are planted in a \
            model that still passes review; any difference means the files are not the ones signed.",
        example: "One flipped byte in `weights.bin`: `the model differs from what was signed \
            (changed: weights.bin)`.",
    },
};

pub static ATTESTATION_INVALID: Rule = Rule {
    code: "MLS-SIGN-003",
    name: "attestation-invalid",
    summary: "A training attestation does not verify, or the model no longer matches it.",
    default_severity: Severity::Critical,
    stage: Stage::Training,
    atlas: &["AML.T0010", "AML.T0018"],
    owasp: Some(OwaspMl::Ml10ModelPoisoning),
    docs: RuleDocs {
        what_it_detects: "A DSSE-wrapped in-toto statement (SLSA provenance v1) with no valid signature \
            by the trusted key (matched by its securesystemslib keyid), a malformed statement, or \
            subjects whose files are missing or have other digests than attested.",
        why_it_matters: "The attestation is the record of which data, script and environment produced \
            a model. If it does not verify, nothing ties the served model to a reviewed training run.",
        example: "`mlsec attest verify attestation.dsse.json --key ci.pub --model model/` after \
            weights were edited: `the model differs from the attested subjects (changed: weights.bin)`.",
    },
};

pub static PROVENANCE_BROKEN: Rule = Rule {
    code: "MLS-SIGN-004",
    name: "provenance-chain-broken",
    summary: "A pipeline's in-toto layout is not satisfied by its signed step links.",
    default_severity: Severity::Critical,
    stage: Stage::Preprocessing,
    atlas: &["AML.T0010", "AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects: "`mlsec provenance verify` found the supply chain a signed in-toto layout \
            describes broken: a layout signature missing or invalid, an expired layout, a step without \
            enough links validly signed by its functionaries, or an artifact rule that fails — an \
            artifact changed between the step that produced it and the step that consumed it, or \
            something no step may create.",
        why_it_matters: "Each stage of an ML pipeline hands files to the next. A normalisation constant \
            edited or a label flipped between preprocessing and training leaves no trace in the model, \
            only in the digests the steps recorded; in-toto ties each hand-off to a signed record so \
            the pipeline stops instead of training on tampered data (AML.T0020).",
        example: "`data/clean.csv` edited after the preprocess step: `materials of `train`: \
            `DISALLOW *` matched data/clean.csv`.",
    },
};

pub static RULES: &[&Rule] = &[
    &SIGNATURE_INVALID,
    &MODEL_DIFFERS,
    &ATTESTATION_INVALID,
    &PROVENANCE_BROKEN,
];
