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
            libraries' classes and unpickling helpers (scikit-learn, pandas, …), reported once per \
            library. Any other function of such a library that is called (`numpy.size`, \
            `pandas.read_csv`), a call of what a library global returned, and BUILD or SETITEM applied \
            to an imported global itself are high. `getattr(G, 'name')` with a constant name is \
            resolved to the global `G.name` (class methods, enum members).",
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
            members that cannot be read; zip and tar archives that start with a pickle (polyglots \
            that `pickle.load` runs); pickles, archives and compressed streams nested deeper than \
            the archive depth followed (3), and work past the budget for nested archives; 7z and \
            compressed content that cannot be analysed in full (an unreadable index, encryption, \
            an unsupported coder, a decompression bomb past the limits). mlsec analyses every \
            member it can find by either route, and the pickle of a polyglot.",
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

pub static MALFORMED_MODEL_FILE: Rule = Rule {
    code: "MLS-SCAN-008",
    name: "malformed-model-file",
    summary: "A model file's header contradicts itself or its data.",
    default_severity: Severity::Medium,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010", "AML.T0011.000"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "safetensors headers that are not JSON, exceed the 100 MB cap, or whose tensors \
            overlap, leave gaps, run past the data or disagree with dtype × shape; GGUF headers whose \
            counts or string lengths run past the file; ONNX tensors whose declared size disagrees with \
            their data; PyTorch tensors rebuilt (`_rebuild_tensor_v2`) as views whose offset, sizes and \
            strides reach past the elements their storage declares, or are negative (high: a view of \
            memory outside the storage, the heap corruption of CVE-2026-24747); `SETITEM`, `APPEND` or \
            `ADDITEMS` applied to a PyTorch storage or to a tensor, array or dtype that an allow-listed \
            PyTorch or NumPy constructor returned (high: the `weights_only` loader before PyTorch 2.10 \
            applied them unchecked, the other half of CVE-2026-24747).",
        why_it_matters: "Parsers in C and C++ (llama.cpp, ONNX runtimes) have had memory-safety bugs on \
            exactly these inconsistencies, and gaps or trailing bytes in an otherwise safe format are \
            room to smuggle a second payload.",
        example: "`model.safetensors` whose `fc.weight` is `F32 [4, 4]` (64 bytes) with data_offsets \
            `[0, 80]`: reported with both sizes.",
    },
};

pub static TEMPLATE_INJECTION: Rule = Rule {
    code: "MLS-SCAN-009",
    name: "template-injection",
    summary: "A GGUF chat template reaches outside the Jinja sandbox.",
    default_severity: Severity::Critical,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0011.000", "AML.T0010"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "`tokenizer.chat_template` metadata in GGUF files that uses Python object \
            internals (`__class__`, `__globals__`, `__subclasses__`, `__builtins__`, …) or names \
            `os`, `popen`, `subprocess`, `eval`.",
        why_it_matters: "Inference servers render the template for every request; rendered outside a \
            sandbox (CVE-2024-34359 in llama-cpp-python) such a template runs commands on the server.",
        example: "`{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}` \
            in the template: reported with the markers found.",
    },
};

pub static KERAS_UNSAFE_LAYER: Rule = Rule {
    code: "MLS-SCAN-010",
    name: "keras-unsafe-config",
    summary: "A Keras model config loads code: a Lambda layer, a module outside Keras, or unsafe deserialisation.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0011.000", "AML.T0010"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "In `.keras` archives (`config.json`) and HDF5 files (`model_config`), at any \
            nesting depth: Lambda layers, `module`/`class_name` pairs that import from outside Keras \
            (CVE-2025-1550), references to `enable_unsafe_deserialization` (CVE-2025-9906), Keras \
            functions used as gadgets (CVE-2025-8747), layers that read a file the config names while \
            loading (lookup layers' `vocabulary`, CVE-2025-12058; `TFSMLayer`'s SavedModel; keras-hub \
            tokenizers' vocabulary, merges or proto files), and `TorchModuleWrapper` layers, whose \
            `module` is a pickled PyTorch module that Keras `torch.load`s (medium; the module is \
            scanned as a nested checkpoint and its own findings follow).",
        why_it_matters: "Keras rebuilds a model by importing the modules and calling the classes its \
            config names, and Lambda layers carry marshalled Python bytecode; either way, loading the \
            file runs code chosen by whoever wrote it.",
        example: "A layer config `{\"module\": \"os\", \"class_name\": \"system\", …}`: reported as critical, \
            `config imports os.system from outside Keras`.",
    },
};

pub static ONNX_UNSAFE: Rule = Rule {
    code: "MLS-SCAN-011",
    name: "onnx-unsafe-reference",
    summary: "An ONNX model reads files outside its folder or needs custom native operators.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010", "AML.T0011.000"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "Tensors whose external-data `location` is absolute or climbs out of the model \
            folder with `..` (CVE-2024-27318), and nodes or opset imports in operator domains that no \
            standard runtime provides (custom operators need a native library).",
        why_it_matters: "External data paths are resolved by the loader: a crafted model reads any file \
            the serving process can read into a tensor (and out through the model's outputs). Custom \
            operator libraries are native code.",
        example: "An initializer with `location: ../../../../etc/passwd`: reported as high with the path.",
    },
};

pub static ARCHIVE_PATH_TRAVERSAL: Rule = Rule {
    code: "MLS-SCAN-012",
    name: "archive-path-traversal",
    summary: "An archive member would be written outside the folder it is extracted into.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "Tar members (the old PyTorch layout, model tarballs) whose name is absolute, \
            carries a drive letter or climbs out with `..`, and symbolic or hard links that point \
            outside the archive's folder; GNU long names and PAX `path`/`linkpath` records included. \
            Zip members with such names are reported at medium.",
        why_it_matters: "Model downloads are unpacked by code that trusts the archive: \
            `tarfile.extractall` without a filter writes `../../.bashrc` where it says \
            (CVE-2007-4559; Keras `get_file`, CVE-2025-12060), and a link member lets a later member \
            write through it. Python's `zipfile` strips such names, but other unzip tools do not.",
        example: "A model tarball with a member `../../../home/user/.bashrc`: reported as high with \
            the name and the header's offset.",
    },
};

pub static TORCHSCRIPT_UNSAFE_OP: Rule = Rule {
    code: "MLS-SCAN-013",
    name: "torchscript-unsafe-operator",
    summary: "TorchScript code in a model archive reaches files, raw memory or native libraries.",
    default_severity: Severity::High,
    stage: Stage::SupplyChain,
    atlas: UNSAFE_ARTIFACT,
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "In a `torch.jit.save` archive's `code/` folder, calls of TorchScript \
            operators that reach outside the model's tensors: `torch.save` and `torch.from_file` \
            (and torchvision's `read_file`/`write_file`) touch any path; `torch.as_strided`, \
            `Tensor.set_` and `_reinterpret_tensor` make views unchecked against their storage. \
            Spellings through `torch.ops.aten.…`, `ops.…`, `getattr(torch, \"s\\x61ve\")` and method \
            calls are resolved. A file operator is critical inside `__setstate__`, which \
            `torch.jit.load` runs while loading, and high elsewhere; a memory view is high inside \
            `__setstate__` and medium elsewhere. Operators from namespaces PyTorch does not register \
            (`ops.my_ext.run`) and the `__setstate__` methods themselves are low. Lite-interpreter \
            archives (`bytecode.pkl`) bind operators by name from tables of strings: the same \
            operators found there are reported too.",
        why_it_matters: "A TorchScript archive is a program, not weights: `torch.jit.load` compiles \
            its source and runs `__setstate__` before the caller sees the module, and PyTorch up to \
            2.5.1 did so even from `torch.load(weights_only=True)` (CVE-2025-32434). Writing a file \
            (a `.pth` in site-packages, a shell profile) turns that into code execution, and views \
            past a storage read and write the process's heap.",
        example: "`code/__torch__/m.py` whose `__setstate__` calls \
            `torch.save(self.payload, \"/home/u/.bashrc\")`: reported as critical with the operator \
            `aten::save`, the method and its line.",
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
    &MALFORMED_MODEL_FILE,
    &TEMPLATE_INJECTION,
    &KERAS_UNSAFE_LAYER,
    &ONNX_UNSAFE,
    &ARCHIVE_PATH_TRAVERSAL,
    &TORCHSCRIPT_UNSAFE_OP,
];
