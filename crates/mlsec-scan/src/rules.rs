//! The scanner's rules, with their documentation.

use mlsec_core::{OwaspMl, Rule, RuleDocs, Severity, Stage};

const UNSAFE_ARTIFACT: &[&str] = &["AML.T0011.000", "AML.T0010"];

pub static UNSAFE_CALL: Rule = Rule {
    code: "MLS-SCAN-001",
    name: "unsafe-global-call",
    summary: "Loading the artifact calls a global that is not on the allow-list.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: UNSAFE_ARTIFACT,
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "A pickle stream (a raw pickle, a PyTorch checkpoint, a NumPy object array, \
            a member of an archive, or a pickle nested in another) that imports a global and calls it \
            through REDUCE, INST, OBJ, NEWOBJ, NEWOBJ_EX or BUILD (`__setstate__`), where the global is \
            not on the allow-list of constructors that only rebuild data. The finding names the fully \
            qualified global, how the unpickler resolves it (`random` + `_os.system` is `os.system`), \
            the opcode and its byte offset. Severity comes from the deny-list (critical for code \
            execution, high for files and network), high for unknown globals, and low for well-known \
            libraries' classes (scikit-learn, pandas, …), reported once per library.",
        why_it_matters: "Unpickling *is* running code: `pickle.load`, `torch.load(weights_only=False)`, \
            `numpy.load(allow_pickle=True)` and `joblib.load` call whatever the stream names. A model \
            downloaded from a hub can therefore run a shell command the moment it is loaded. mlsec \
            decides by emulating the stream, never by executing it, and denies by default: a global \
            nobody has vouched for is a finding, whatever its name.",
        example: "A checkpoint whose `data.pkl` holds `GLOBAL 'posix' 'system'`, a tuple `('curl … | sh',)` \
            and `REDUCE` is reported as critical: `posix.system called through REDUCE at offset 42: runs \
            commands`. A PyTorch state dict that only uses `torch._utils._rebuild_tensor_v2`, \
            `collections.OrderedDict` and storages produces no finding.",
    },
};

pub static UNSAFE_IMPORT: Rule = Rule {
    code: "MLS-SCAN-002",
    name: "unsafe-global-import",
    summary: "The artifact imports a global that is not on the allow-list, without calling it.",
    default_severity: Severity::Medium,
    stage: Stage::SupplyChain,
    atlas: UNSAFE_ARTIFACT,
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "A global imported by GLOBAL, STACK_GLOBAL or INST that the stream never \
            calls directly. Deny-listed globals keep their severity; unknown ones are medium; \
            well-known libraries' classes are info.",
        why_it_matters: "Importing a module runs its top-level code, and a global that is not called \
            directly can still be called indirectly — passed to an allowed function, stored where a \
            later step calls it, or reached through `__reduce__` chains. A data file has no reason to \
            reference `os.system` at all.",
        example: "`GLOBAL 'builtins' 'exec'` stored in a dict value: reported as critical \
            `builtins.exec imported by GLOBAL at offset 12, not called: executes Python code`.",
    },
};

pub static NESTED_PICKLE: Rule = Rule {
    code: "MLS-SCAN-003",
    name: "nested-pickle",
    summary: "A pickle is passed as bytes to a loader inside another pickle.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: UNSAFE_ARTIFACT,
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "A call to `pickle.loads`, `torch.load`, `numpy.load`, `joblib.load`, \
            `dill.loads` or a similar loader whose argument is a byte string (directly, through \
            `_codecs.encode` or `io.BytesIO`). The inner pickle is analysed too, recursively up to a \
            depth limit, and its findings are reported with the chain of loaders that reaches them.",
        why_it_matters: "Hiding the payload in a second pickle defeats scanners that only look at \
            the outer stream's globals: the outer stream names only `pickle.loads`.",
        example: "`pickle.loads(b'\\x80\\x04…posix…system…')` inside `data.pkl`: an MLS-SCAN-003 \
            finding at the call, and an MLS-SCAN-001 finding for `posix.system` located at \
            `data.pkl>nested@57`.",
    },
};

pub static MALFORMED_PICKLE: Rule = Rule {
    code: "MLS-SCAN-004",
    name: "malformed-pickle",
    summary: "A pickle stream is truncated, corrupt or stopped at a resource limit.",
    default_severity: Severity::Medium,
    stage: Stage::SupplyChain,
    atlas: UNSAFE_ARTIFACT,
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects:
            "A pickle that ends early, holds an invalid opcode, underflows its stack, \
            or exceeds the analysis limits (opcodes, stack, memo: the marks of a pickle bomb). \
            Everything found before that point is still reported.",
        why_it_matters:
            "Python's unpickler executes opcodes as it reads them, so a payload placed \
            before deliberate corruption runs even though loading then fails. Broken pickles \
            (\"nullifAI\") are used precisely because scanners that give up on the error miss the \
            payload.",
        example: "`GLOBAL 'os' 'system'`, `('id',)`, `REDUCE`, then a byte that is no opcode: a \
            critical MLS-SCAN-001 for `os.system` and a medium MLS-SCAN-004 at the bad byte.",
    },
};

pub static ZIP_ANOMALY: Rule = Rule {
    code: "MLS-SCAN-005",
    name: "archive-anomaly",
    summary: "An archive's structure is inconsistent in a way that can hide content from scanners.",
    default_severity: Severity::Medium,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "Zip archives (PyTorch checkpoints, NPZ, Keras files) whose local header \
            names a member differently from the central directory, members missing from the central \
            directory, data prepended to the archive, encrypted members, unsupported compression, or \
            members that cannot be read. mlsec analyses every member it can find by either route.",
        why_it_matters: "Loaders and scanners that read archives differently see different files. \
            Published scanner bypasses (CVE-2025-1944, CVE-2025-1945, CVE-2025-10156) rely on exactly \
            these inconsistencies to show a scanner a harmless member while the loader reads another.",
        example: "A checkpoint whose central directory lists `archive/data.pkl` while the local \
            header says `archive/data.pk1`: reported with both names and the header's offset.",
    },
};

pub static DATA_INTEGRITY: Rule = Rule {
    code: "MLS-SCAN-006",
    name: "tampered-data",
    summary: "An archive member's content does not match its recorded checksum.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "With `--verify-data`: zip members whose CRC-32 differs from the value the \
            archive records for them.",
        why_it_matters: "A checksum mismatch means bytes were changed after the archive was written — \
            weights edited in place to plant a backdoor, or a payload swapped in — and some loaders \
            do not check.",
        example: "`archive/data/0` of a checkpoint with one flipped byte: reported with the expected \
            and actual CRC-32.",
    },
};

pub static PICKLE_IN_DATA_FILE: Rule = Rule {
    code: "MLS-SCAN-007",
    name: "pickle-in-data-file",
    summary: "A data file holds pickled objects.",
    default_severity: Severity::Medium,
    stage: Stage::SupplyChain,
    atlas: UNSAFE_ARTIFACT,
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects:
            "NumPy `.npy` files (alone or inside `.npz`) whose dtype is `object`: their \
            data section is a pickle, analysed like any other.",
        why_it_matters:
            "An array file looks like plain numbers, but `numpy.load(..., allow_pickle=True)` \
            unpickles an object array — and many pipelines pass that flag to make old files load.",
        example:
            "`features.npy` with `'descr': '|O'`: reported, and the embedded pickle's globals are \
            reported as well.",
    },
};

/// The scanner's rules, for the CLI's registry.
pub static RULES: &[&Rule] = &[
    &UNSAFE_CALL,
    &UNSAFE_IMPORT,
    &NESTED_PICKLE,
    &MALFORMED_PICKLE,
    &ZIP_ANOMALY,
    &DATA_INTEGRITY,
    &PICKLE_IN_DATA_FILE,
];
