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

pub static ENV_FILE_CHANGED: Rule = Rule {
    code: "MLS-ENV-001",
    name: "installed-file-changed",
    summary: "An installed Python package's file differs from its RECORD, or is missing.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010", "AML.T0010.001"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "`mlsec env verify` re-hashes every file each installed distribution lists in \
            its `*.dist-info/RECORD` (the wheel's own manifest, written at install time) and reports \
            files whose digest or size differs (critical for code: `.py`, `.pth`, native libraries, \
            scripts) and files that are gone (medium).",
        why_it_matters: "Training jobs import dozens of packages; patching one installed file — a data \
            loader, a tokenizer, `torch/serialization.py` — poisons every model trained in that \
            environment without touching the training code or the data (AML.T0010.001).",
        example: "`numpy/lib/_npyio_impl.py` edited after install: `numpy 2.4.6: \
            numpy/lib/_npyio_impl.py differs from its RECORD digest`.",
    },
};

pub static ENV_UNRECORDED_FILE: Rule = Rule {
    code: "MLS-ENV-002",
    name: "unrecorded-file",
    summary: "A file in site-packages belongs to no installed distribution; `.pth` files run code at start-up.",
    default_severity: Severity::Medium,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010", "AML.T0010.001"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "Files under site-packages that no RECORD lists (byte-code caches excepted). \
            A `.pth` file with an `import` line is critical when unrecorded: Python's `site` module \
            executes that line in every interpreter that starts, before any user code. Recorded \
            start-up hooks (setuptools' `distutils-precedence.pth`) are listed at info severity.",
        why_it_matters: "A dropped `.pth` file is a classic persistence trick of malicious PyPI \
            packages: it survives package upgrades, is invisible to `pip list`, and runs in every \
            training job.",
        example: "`site-packages/zz_telemetry.pth` containing `import os; os.system(...)`: \
            `zz_telemetry.pth runs code at interpreter start-up and belongs to no distribution`.",
    },
};

pub static ENV_LOCK_MISMATCH: Rule = Rule {
    code: "MLS-ENV-003",
    name: "lockfile-mismatch",
    summary: "The environment does not match its lockfile: unpinned, unhashed, unlocked or other versions.",
    default_severity: Severity::Medium,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010", "AML.T0010.001"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "Compared with `requirements.txt` (with `--hash`), `uv.lock` or `poetry.lock`: \
            requirements not pinned to one version, pins without hashes, installed distributions the \
            lockfile does not name, installed versions other than the locked ones (high), and archive \
            hashes recorded at install (`direct_url.json`) that the lockfile does not list (high).",
        why_it_matters: "A lockfile with hashes is what makes a training environment reproducible and \
            keeps a dependency-confusion or typosquatted package out; an environment that drifted \
            from it is not the one that was reviewed.",
        example: "`requirements.txt` pins `requests==2.32.3` but 2.31.0 is installed: \
            `requests: installed 2.31.0, locked 2.32.3`.",
    },
};

pub static ENV_KNOWN_VULNERABILITY: Rule = Rule {
    code: "MLS-ENV-004",
    name: "known-vulnerable-package",
    summary: "An installed distribution's version is affected by a published advisory (offline OSV database).",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010", "AML.T0010.001"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "With `--osv DIR` (the OSV JSON advisories for PyPI, as OSV publishes them), \
            each installed distribution is matched by normalised name and its version tested \
            against the advisory's listed versions and ECOSYSTEM ranges under PEP 440 ordering. The \
            advisory's own severity (GHSA `database_specific.severity`) sets the finding's.",
        why_it_matters: "ML stacks pin old versions for reproducibility and then keep them: known \
            remote-code-execution bugs in model loaders (e.g. `torch.load` with `weights_only=True`, \
            CVE-2025-32434) stay exploitable in training and serving environments.",
        example: "`torch 2.5.1` with the PyPI OSV export: `torch 2.5.1 is affected by \
            PYSEC-… (CVE-2025-32434): fixed in 2.6.0`.",
    },
};

pub static RULES: &[&Rule] = &[
    &SIGNATURE_INVALID,
    &MODEL_DIFFERS,
    &ATTESTATION_INVALID,
    &PROVENANCE_BROKEN,
    &ENV_FILE_CHANGED,
    &ENV_UNRECORDED_FILE,
    &ENV_LOCK_MISMATCH,
    &ENV_KNOWN_VULNERABILITY,
];
