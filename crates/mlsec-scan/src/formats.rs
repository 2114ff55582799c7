//! Non-pickle model formats: safetensors, GGUF, Keras (`.keras` and HDF5
//! `model_config`), and ONNX. Each check reads only headers and metadata,
//! with explicit bounds, and reports problems instead of failing.

use crate::policy::{Policy, Verdict};
use crate::rules::*;
use mlsec_core::{Finding, Location, Severity};
use serde_json::Value;

// ---------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------

/// The reference implementation's own header cap (100 MB).
pub const SAFETENSORS_MAX_HEADER: u64 = 100_000_000;

/// Whether bytes start like a safetensors file: a plausible header length
/// followed by `{`.
pub fn is_safetensors(data: &[u8]) -> bool {
    if data.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    (2..=SAFETENSORS_MAX_HEADER).contains(&n) && 8 + n as usize <= data.len() && data[8] == b'{'
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" | "C64" => 8,
        _ => return None,
    })
}

/// Validates a safetensors file's header against its data section.
pub fn check_safetensors(loc: &Location, data: &[u8], out: &mut Vec<Finding>) {
    let mut bad = |msg: String| {
        out.push(
            Finding::new(
                &MALFORMED_MODEL_FILE,
                loc.clone(),
                format!("safetensors: {msg}"),
            )
            .with_evidence("format", "safetensors"),
        )
    };
    let n = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    let header_end = 8usize.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
    let Some(raw_header) = data.get(8..header_end) else {
        return bad(format!("header length {n} runs past the end of the file"));
    };
    let header = match std::str::from_utf8(raw_header) {
        Ok(h) => h,
        Err(_) => return bad("header is not UTF-8".into()),
    };
    let json: Value = match serde_json::from_str(header.trim_end_matches(' ')) {
        Ok(v) => v,
        Err(e) => return bad(format!("header is not valid JSON: {e}")),
    };
    let Some(map) = json.as_object() else {
        return bad("header is not a JSON object".into());
    };
    let body = (data.len() - header_end) as u64;
    let mut spans: Vec<(u64, u64, String)> = Vec::new();
    for (name, entry) in map {
        if name == "__metadata__" {
            if !entry
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
            {
                bad("__metadata__ must map strings to strings".into());
            }
            continue;
        }
        let dtype = entry["dtype"].as_str().unwrap_or("");
        let shape: Option<Vec<u64>> = entry["shape"]
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let offsets: Option<Vec<u64>> = entry["data_offsets"]
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let (Some(size), Some(shape), Some(offsets)) = (dtype_size(dtype), shape, offsets) else {
            bad(format!(
                "tensor `{name}` has an unknown dtype `{dtype}` or a malformed shape/data_offsets"
            ));
            continue;
        };
        if offsets.len() != 2 || offsets[0] > offsets[1] {
            bad(format!("tensor `{name}` has data_offsets {offsets:?}"));
            continue;
        }
        let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let need = numel.and_then(|n| n.checked_mul(size));
        if need != Some(offsets[1] - offsets[0]) {
            bad(format!(
                "tensor `{name}`: {dtype} {shape:?} needs {} bytes, data_offsets give {}",
                need.map_or_else(|| "an overflowing number of".to_string(), |n| n.to_string()),
                offsets[1] - offsets[0]
            ));
        }
        if offsets[1] > body {
            bad(format!(
                "tensor `{name}` ends at {} but the data section has {body} bytes",
                offsets[1]
            ));
        }
        spans.push((offsets[0], offsets[1], name.clone()));
    }
    spans.sort();
    let mut cursor = 0u64;
    for (b, e, name) in &spans {
        if *b < cursor {
            bad(format!("tensor `{name}` overlaps the previous tensor"));
        } else if *b > cursor {
            bad(format!(
                "{} unused bytes before tensor `{name}` (a gap can hide data)",
                b - cursor
            ));
        }
        cursor = cursor.max(*e);
    }
    if cursor < body {
        bad(format!(
            "{} bytes after the last tensor are not part of any tensor",
            body - cursor
        ));
    }
}

// ---------------------------------------------------------------------------
// GGUF
// ---------------------------------------------------------------------------

pub fn is_gguf(data: &[u8]) -> bool {
    data.starts_with(b"GGUF")
}

/// Strings in chat templates that reach outside the Jinja sandbox
/// (CVE-2024-34359, llama-cpp-python rendered templates unsandboxed).
const TEMPLATE_ESCAPES: &[&str] = &[
    "__class__",
    "__globals__",
    "__subclasses__",
    "__builtins__",
    "__import__",
    "__mro__",
    "__base__",
    "__init__",
    "__getattribute__",
    "popen",
    "os.system",
    "subprocess",
    "eval(",
    "exec(",
    "import os",
];

/// Jinja's default globals whose attributes lead to Python's module
/// globals; no chat template needs them.
const TEMPLATE_GADGETS: &[&str] = &["lipsum", "cycler", "joiner"];

/// What in a chat template reaches, or is built to reach, outside the
/// sandbox. Named escapes first; then the ways payloads assemble those
/// names so that no literal appears: any double underscore (`'__cla' ~
/// 'ss__'`), escaped underscores (`'\x5f\x5fclass\x5f\x5f'`), attribute
/// access by computed name (`|attr(...)`), characters from codes
/// (`'%c'|format(95)`), names joined from `dict(...)` keys; and Jinja's
/// gadget globals. Chat templates in the wild use none of these.
pub fn template_escape_markers(text: &str) -> Vec<String> {
    let mut hits: Vec<String> = TEMPLATE_ESCAPES
        .iter()
        .filter(|e| text.contains(*e))
        .map(|e| e.to_string())
        .collect();
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let lower = squeezed.to_ascii_lowercase();
    if hits.iter().all(|h| !h.starts_with("__")) && text.contains("__") {
        hits.push("a double-underscore name".into());
    }
    if ["\\x5f", "\\u005f", "\\u0000005f", "\\137"]
        .iter()
        .any(|e| lower.contains(e))
    {
        hits.push("an escaped underscore".into());
    }
    if lower.contains("|attr(") {
        hits.push("|attr() (attribute access by computed name)".into());
    }
    if lower.contains("|format(") && lower.contains("%c") {
        hits.push("characters built from codes with %c".into());
    }
    if lower.contains("dict(") && lower.contains("|join") {
        hits.push("a name joined from dict() keys".into());
    }
    for gadget in TEMPLATE_GADGETS {
        if has_word(text, gadget) {
            hits.push(format!("the `{gadget}` global"));
        }
    }
    hits
}

/// Whether `word` occurs in `text` as a whole identifier.
fn has_word(text: &str, word: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(word).any(|(i, _)| {
        !ident(text[..i].chars().next_back()) && !ident(text[i + word.len()..].chars().next())
    })
}

struct Cursor<'a> {
    d: &'a [u8],
    p: usize,
}

impl<'a> Cursor<'a> {
    /// The next `n` bytes, borrowed from the file (not from the cursor).
    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.p.checked_add(n)?;
        let s = self.d.get(self.p..end)?;
        self.p = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u64()?;
        self.take(n)
    }
}

/// Walks a GGUF header: key/value metadata and tensor infos, bounded by the
/// file's own length (every count is checked against the bytes left).
pub fn check_gguf(loc: &Location, data: &[u8], out: &mut Vec<Finding>) {
    let bad = |msg: String| {
        Finding::new(&MALFORMED_MODEL_FILE, loc.clone(), format!("GGUF: {msg}"))
            .with_evidence("format", "gguf")
    };
    let mut c = Cursor { d: data, p: 4 };
    let Some(version) = c.u32() else {
        return out.push(bad("truncated header".into()));
    };
    if !(1..=3).contains(&version) {
        return out.push(bad(format!("unknown version {version}")));
    }
    let (Some(tensors), Some(kvs)) = (c.u64(), c.u64()) else {
        return out.push(bad("truncated header".into()));
    };
    // Every key/value needs at least 12 bytes, every tensor info at least 24.
    let left = (data.len() - c.p) as u64;
    if kvs > left / 12 || tensors > left / 24 {
        return out.push(bad(format!("declares {kvs} metadata entries and {tensors} tensors, more than its {left} bytes can hold")));
    }
    for i in 0..kvs {
        let Some(key) = c.string().map(|k| String::from_utf8_lossy(k).into_owned()) else {
            return out.push(bad(format!(
                "metadata entry {i}: key runs past the end of the file"
            )));
        };
        let Some(ty) = c.u32() else {
            return out.push(bad(format!("metadata `{key}`: truncated")));
        };
        let mut strings = Vec::new();
        if gguf_value(&mut c, ty, 0, &mut strings).is_none() {
            return out.push(bad(format!("metadata `{key}`: value of type {ty} is malformed or runs past the end of the file")));
        }
        if key.starts_with("tokenizer.chat_template") {
            for s in strings {
                let hits = template_escape_markers(&String::from_utf8_lossy(s));
                if !hits.is_empty() {
                    out.push(
                        Finding::new(
                            &TEMPLATE_INJECTION,
                            loc.clone().with_field(key.clone()),
                            format!(
                                "chat template reaches outside the Jinja sandbox ({})",
                                hits.join(", ")
                            ),
                        )
                        .with_evidence("markers", hits),
                    );
                }
            }
        }
    }
    for i in 0..tensors {
        let Some(name) = c.string().map(|k| String::from_utf8_lossy(k).into_owned()) else {
            return out.push(bad(format!(
                "tensor info {i}: name runs past the end of the file"
            )));
        };
        let Some(dims) = c.u32() else {
            return out.push(bad(format!("tensor `{name}`: truncated")));
        };
        if dims > 8 {
            return out.push(bad(format!("tensor `{name}` declares {dims} dimensions")));
        }
        for _ in 0..dims {
            if c.u64().is_none() {
                return out.push(bad(format!("tensor `{name}`: truncated")));
            }
        }
        let (Some(_ty), Some(offset)) = (c.u32(), c.u64()) else {
            return out.push(bad(format!("tensor `{name}`: truncated")));
        };
        if offset > data.len() as u64 {
            out.push(bad(format!(
                "tensor `{name}` starts at offset {offset}, beyond the file's {} bytes",
                data.len()
            )));
        }
    }
}

fn gguf_value<'a>(
    c: &mut Cursor<'a>,
    ty: u32,
    depth: usize,
    strings: &mut Vec<&'a [u8]>,
) -> Option<()> {
    match ty {
        0 | 1 | 7 => c.take(1).map(|_| ()),
        2 | 3 => c.take(2).map(|_| ()),
        4..=6 => c.take(4).map(|_| ()),
        10..=12 => c.take(8).map(|_| ()),
        8 => {
            strings.push(c.string()?);
            Some(())
        }
        9 if depth < 4 => {
            let item = c.u32()?;
            let n = c.u64()?;
            if n > (c.d.len() - c.p) as u64 {
                return None;
            }
            for _ in 0..n {
                gguf_value(c, item, depth + 1, strings)?;
            }
            Some(())
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Keras
// ---------------------------------------------------------------------------

/// Modules a Keras config may name without running foreign code.
const KERAS_MODULES: &[&str] = &[
    "keras",
    "keras_hub",
    "keras_nlp",
    "keras_cv",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
];

/// Where a serialized Keras function (`"class_name": "function"`) may come
/// from: the namespaces of things applied to tensors. A function from
/// anywhere else in Keras — `keras.models.load_model`, `keras.utils.get_file`,
/// `keras.config.enable_unsafe_deserialization`, the saving library's
/// `set_global_attribute` — is a gadget that runs on load even with
/// safe_mode on (CVE-2025-8747, CVE-2025-9906).
const KERAS_FUNCTION_NAMESPACES: &[&str] = &[
    "activations",
    "losses",
    "metrics",
    "initializers",
    "regularizers",
    "constraints",
    "ops",
    "backend",
    "random",
];

/// Whether `module` (inside Keras) is one of [`KERAS_FUNCTION_NAMESPACES`]:
/// `keras.activations`, `keras.src.losses.losses`, `tf_keras.metrics`, …
fn is_tensor_function_module(module: &str) -> bool {
    let rest = KERAS_MODULES
        .iter()
        .find_map(|k| module.strip_prefix(k).and_then(|r| r.strip_prefix('.')))
        .unwrap_or("");
    let rest = rest.strip_prefix("src.").unwrap_or(rest);
    let first = rest.split('.').next().unwrap_or("");
    KERAS_FUNCTION_NAMESPACES.contains(&first)
}

/// Checks a Keras model config (the `config.json` of a `.keras` archive, or
/// the `model_config` attribute of an HDF5 file).
pub fn check_keras_config(
    loc: &Location,
    config: &Value,
    policy: &Policy,
    out: &mut Vec<Finding>,
) -> Vec<EmbeddedModule> {
    let mut modules = Vec::new();
    walk_keras(loc, config, policy, out, &mut modules, 0, "$", false);
    modules
}

/// A PyTorch module pickled inside a Keras config (`TorchModuleWrapper`),
/// for the caller to scan as a checkpoint of its own.
#[derive(Debug)]
pub struct EmbeddedModule {
    /// Where it sits: the config's location with the JSON path as its field.
    pub location: Location,
    pub bytes: Vec<u8>,
}

/// Embedded modules decoded per config: each is a whole checkpoint to scan.
const MAX_EMBEDDED_MODULES: usize = 64;

/// `TorchModuleWrapper.get_config` stores `torch.save(module)` in base64 under
/// `module`, or as Keras's serialised bytes (`{"class_name": "__bytes__",
/// "config": {"value": …}}`).
fn wrapped_torch_module(config: Option<&Value>) -> Option<Vec<u8>> {
    use base64::Engine;
    let module = config?.get("module")?;
    let text = match module {
        Value::String(s) => s.as_str(),
        Value::Object(m) if m.get("class_name").and_then(Value::as_str) == Some("__bytes__") => {
            m.get("config")?.get("value")?.as_str()?
        }
        _ => return None,
    };
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .or_else(|| Some(text.as_bytes().to_vec()))
}

/// Keras preprocessing layers whose `vocabulary` may be a file path, read
/// when the layer is rebuilt (CVE-2025-12058; refused under safe_mode since
/// keras-team/keras#21751, October 2025).
const LOOKUP_LAYERS: &[&str] = &[
    "StringLookup",
    "IntegerLookup",
    "IndexLookup",
    "TextVectorization",
];
/// keras-hub tokenizer fields read from a path when they hold a string
/// (guarded under safe_mode since keras-team/keras-hub#2517, January 2026).
const TOKENIZER_FILE_FIELDS: &[&str] = &["vocabulary", "merges", "proto"];

/// A layer config that makes loading read a file (or a URL, through
/// `tf.io.gfile`) named by the model: the field, the path and why.
fn external_file_reference(
    class: &str,
    config: Option<&Value>,
) -> Option<(&'static str, String, String)> {
    let config = config?;
    let field_str = |f: &'static str| {
        config
            .get(f)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(|s| (f, s.to_string()))
    };
    if LOOKUP_LAYERS.contains(&class) {
        let (f, target) = field_str("vocabulary")?;
        let message = format!("{class} layer reads its vocabulary from `{target}` when the model is loaded (CVE-2025-12058): any local file, or a URL through tf.io.gfile, whose contents the model then exposes");
        return Some((f, target, message));
    }
    if class == "TFSMLayer" {
        let (f, target) = field_str("filepath")?;
        let message = format!("TFSMLayer loads the TensorFlow SavedModel at `{target}` when the model is loaded: a graph from outside the archive, which can read and write files");
        return Some((f, target, message));
    }
    if class.ends_with("Tokenizer") {
        let (f, target) = TOKENIZER_FILE_FIELDS.iter().find_map(|f| field_str(f))?;
        let message = format!("{class} reads its `{f}` from `{target}` when the model is loaded: any local file, whose contents the model then exposes");
        return Some((f, target, message));
    }
    None
}

/// `in_lambda`: inside a Lambda layer already reported (its `__lambda__`
/// function is the same finding).
#[allow(clippy::too_many_arguments)]
fn walk_keras(
    loc: &Location,
    v: &Value,
    policy: &Policy,
    out: &mut Vec<Finding>,
    modules: &mut Vec<EmbeddedModule>,
    depth: usize,
    path: &str,
    in_lambda: bool,
) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            let class = map.get("class_name").and_then(Value::as_str).unwrap_or("");
            // Keras deserialises only objects that have a `class_name`; a
            // plain dict's `module` key is data (TorchModuleWrapper keeps its
            // pickled module there).
            let module = map
                .get("module")
                .filter(|_| map.contains_key("class_name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let lambda = class == "Lambda" || (class == "__lambda__" && !in_lambda);
            // A serialized function names itself in `config`.
            let function = (class == "function")
                .then(|| map.get("config").and_then(Value::as_str))
                .flatten();
            let in_keras = KERAS_MODULES
                .iter()
                .any(|k| module == *k || module.starts_with(&format!("{k}.")));
            if lambda {
                let called = map
                    .get("config")
                    .and_then(|c| c.get("function"))
                    .filter(|f| f.get("class_name").and_then(Value::as_str) == Some("function"));
                let message = match called {
                    Some(f) => format!(
                        "Lambda layer calls `{}.{}` when the model is loaded or run",
                        f.get("module").and_then(Value::as_str).unwrap_or("?"),
                        f.get("config").and_then(Value::as_str).unwrap_or("?")
                    ),
                    None => "Lambda layer: its Python bytecode runs when the model is loaded with safe_mode off".to_string(),
                };
                out.push(
                    Finding::new(
                        &KERAS_UNSAFE_LAYER,
                        loc.clone().with_field(path.to_string()),
                        message,
                    )
                    .with_severity(Severity::Critical)
                    .with_evidence("class_name", class),
                );
            }
            if let Some((field, target, message)) =
                external_file_reference(class, map.get("config"))
            {
                out.push(
                    Finding::new(
                        &KERAS_UNSAFE_LAYER,
                        loc.clone().with_field(format!("{path}.config.{field}")),
                        message,
                    )
                    .with_severity(Severity::High)
                    .with_evidence("class_name", class)
                    .with_evidence("path", target),
                );
            }
            if class == "TorchModuleWrapper" {
                let field = loc.clone().with_field(format!("{path}.config.module"));
                let decoded = wrapped_torch_module(map.get("config"));
                out.push(
                    Finding::new(
                        &KERAS_UNSAFE_LAYER,
                        field.clone(),
                        format!(
                            "TorchModuleWrapper layer carries a pickled PyTorch module: Keras loads it with torch.load(weights_only=False) when safe_mode is off, and did so whatever safe_mode said before its August 2025 fix (keras-team/keras#21575); {}",
                            if decoded.is_some() { "the module is scanned as a nested checkpoint" } else { "its `module` field could not be read" }
                        ),
                    )
                    .with_severity(Severity::Medium)
                    .with_evidence("class_name", class),
                );
                if let Some(bytes) = decoded.filter(|_| modules.len() < MAX_EMBEDDED_MODULES) {
                    modules.push(EmbeddedModule {
                        location: field,
                        bytes,
                    });
                }
            }
            if let Some(name) = function.filter(|_| in_keras && !is_tensor_function_module(module))
            {
                out.push(
                    Finding::new(&KERAS_UNSAFE_LAYER, loc.clone().with_field(path.to_string()), format!("config calls the Keras function `{module}.{name}`, which is not applied to tensors: a gadget that runs on load even with safe_mode on (CVE-2025-8747, CVE-2025-9906)"))
                        .with_severity(Severity::Critical)
                        .with_evidence("global", format!("{module}.{name}")),
                );
            }
            if !module.is_empty() && !in_keras {
                let name = if let Some(f) = function {
                    f
                } else if class.is_empty() {
                    map.get("registered_name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                } else {
                    class
                };
                let sev = match policy.classify(module, name) {
                    Verdict::Denied { severity, .. } => severity,
                    Verdict::Allowed => Severity::Low,
                    _ => Severity::High,
                };
                out.push(
                    Finding::new(&KERAS_UNSAFE_LAYER, loc.clone().with_field(path.to_string()), format!("config imports `{module}.{name}` from outside Keras (CVE-2025-1550): loading imports and calls it"))
                        .with_severity(sev)
                        .with_evidence("global", format!("{module}.{name}")),
                );
            }
            for (k, child) in map {
                if let Some(s) = child.as_str() {
                    if s.contains("enable_unsafe_deserialization") {
                        out.push(
                            Finding::new(&KERAS_UNSAFE_LAYER, loc.clone().with_field(format!("{path}.{k}")), "config calls enable_unsafe_deserialization, switching safe_mode off from inside the model (CVE-2025-9906)")
                                .with_severity(Severity::Critical),
                        );
                    }
                }
                walk_keras(
                    loc,
                    child,
                    policy,
                    out,
                    modules,
                    depth + 1,
                    &format!("{path}.{k}"),
                    in_lambda || lambda,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk_keras(
                    loc,
                    child,
                    policy,
                    out,
                    modules,
                    depth + 1,
                    &format!("{path}[{i}]"),
                    in_lambda,
                );
            }
        }
        _ => {}
    }
}

pub fn is_hdf5(data: &[u8]) -> bool {
    data.starts_with(b"\x89HDF\r\n\x1a\n")
}

/// HDF5 Keras files keep their architecture as a JSON string attribute;
/// rather than implement HDF5, find each embedded JSON object that starts
/// like a Keras config and check it (bounded: at most 64 objects of 16 MiB).
pub fn check_hdf5_keras(
    loc: &Location,
    data: &[u8],
    policy: &Policy,
    out: &mut Vec<Finding>,
) -> Vec<EmbeddedModule> {
    let mut modules = Vec::new();
    let mut start = 0;
    let mut seen = 0;
    let mut scan_budget: usize = 256 << 20;
    // Keras 2 writes `{"class_name": …}`, Keras 3 `{"module": "keras", "class_name": …}`.
    while let Some(i) = memchr::memchr(b'{', &data[start..]) {
        let at = start + i;
        let rest = &data[at + 1..];
        if !(rest.starts_with(b"\"class_name\"") || rest.starts_with(b"\"module\"")) {
            start = at + 1;
            continue;
        }
        // Every candidate that never closes is read to its cap: bound the total.
        let cap = (data.len() - at).min(16 << 20);
        if scan_budget < cap {
            break;
        }
        scan_budget -= cap;
        if let Some(end) = balanced_json_end(&data[at..], 16 << 20) {
            scan_budget += cap - end;
            if let Ok(v) = serde_json::from_slice::<Value>(&data[at..at + end]) {
                modules.extend(check_keras_config(
                    &loc.clone().with_offset(at as u64),
                    &v,
                    policy,
                    out,
                ));
                seen += 1;
            }
            start = at + end;
        } else {
            start = at + 1;
        }
        if seen >= 64 {
            break;
        }
    }
    modules.truncate(MAX_EMBEDDED_MODULES);
    modules
}

fn balanced_json_end(d: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    for (i, &b) in d.iter().enumerate().take(max) {
        if in_str {
            match b {
                _ if esc => esc = false,
                b'\\' => esc = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------
// ONNX
// ---------------------------------------------------------------------------

/// Operator domains served by the standard ONNX runtimes.
const STANDARD_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "com.microsoft",
    "com.microsoft.nchwc",
    "ai.onnx.contrib",
];

/// A protobuf field: number and either a varint or a length-delimited slice.
/// Hand-written wire-format reader: ONNX needs only walking a few fields, and
/// a generated protobuf crate would add a build step and accept unbounded input.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn fields(mut d: &[u8]) -> impl Iterator<Item = Option<(u32, Field<'_>)>> {
    std::iter::from_fn(move || {
        if d.is_empty() {
            return None;
        }
        let mut parse = || -> Option<(u32, Field<'_>)> {
            let (key, n) = varint(d)?;
            d = &d[n..];
            let num = u32::try_from(key >> 3).ok()?;
            match key & 7 {
                0 => {
                    let (v, n) = varint(d)?;
                    d = &d[n..];
                    Some((num, Field::Varint(v)))
                }
                1 => {
                    d = d.get(8..)?;
                    Some((num, Field::Fixed))
                }
                2 => {
                    let (len, n) = varint(d)?;
                    let len = usize::try_from(len).ok()?;
                    let s = d.get(n..n.checked_add(len)?)?;
                    d = &d[n + len..];
                    Some((num, Field::Bytes(s)))
                }
                5 => {
                    d = d.get(4..)?;
                    Some((num, Field::Fixed))
                }
                _ => None,
            }
        };
        let r = parse();
        if r.is_none() {
            d = &[];
        }
        Some(r)
    })
}

fn varint(d: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in d.iter().enumerate().take(10) {
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Whether bytes parse as an ONNX ModelProto with a graph.
pub fn is_onnx(data: &[u8]) -> bool {
    if data.first() != Some(&0x08) {
        return false;
    }
    let mut graph = false;
    for f in fields(data) {
        match f {
            None => return false,
            Some((7, Field::Bytes(_))) => graph = true,
            Some(_) => {}
        }
    }
    graph
}

/// Checks external-data locations, operator domains and declared sizes.
pub fn check_onnx(loc: &Location, data: &[u8], out: &mut Vec<Finding>) {
    // Model-local functions (FunctionProto: name 1, domain 10) are defined
    // in the file itself, so calling one needs no native library; PyTorch's
    // exporter writes them under domains such as `pkg.onnxscript.torch_lib`.
    let mut local = Local::default();
    for (num, f) in fields(data).map_while(|f| f) {
        if let (25, Field::Bytes(function)) = (num, f) {
            let (mut name, mut domain) = (String::new(), String::new());
            for (n, f) in fields(function).map_while(|f| f) {
                match (n, f) {
                    (1, Field::Bytes(s)) => name = String::from_utf8_lossy(s).into_owned(),
                    (10, Field::Bytes(s)) => domain = String::from_utf8_lossy(s).into_owned(),
                    _ => {}
                }
            }
            local.functions.insert((domain, name));
        }
    }
    let mut opsets = Vec::new();
    for (num, f) in fields(data).map_while(|f| f) {
        match (num, f) {
            (8, Field::Bytes(b)) => {
                for (n, f) in fields(b).map_while(|f| f) {
                    if let (1, Field::Bytes(s)) = (n, f) {
                        opsets.push(String::from_utf8_lossy(s).into_owned());
                    }
                }
            }
            (7, Field::Bytes(g)) => onnx_graph(loc, g, &local, out, 0),
            // training_info: its initialization and algorithm graphs
            (20, Field::Bytes(t)) => {
                for (n, f) in fields(t).map_while(|f| f) {
                    if let (1 | 2, Field::Bytes(g)) = (n, f) {
                        onnx_graph(loc, g, &local, out, 1);
                    }
                }
            }
            // functions: their nodes, like a graph's
            (25, Field::Bytes(function)) => {
                for (n, f) in fields(function).map_while(|f| f) {
                    if let (7, Field::Bytes(node)) = (n, f) {
                        onnx_node(loc, node, &local, out, 1);
                    }
                }
            }
            _ => {}
        }
    }
    for domain in opsets {
        if !STANDARD_DOMAINS.contains(&domain.as_str()) && !local.has_domain(&domain) {
            out.push(
                Finding::new(&ONNX_UNSAFE, loc.clone(), format!("opset import of custom operator domain `{domain}`: running the model needs a native custom-op library"))
                    .with_severity(Severity::Medium)
                    .with_evidence("domain", domain),
            );
        }
    }
}

/// The model's own functions, as (domain, name).
#[derive(Default)]
struct Local {
    functions: std::collections::BTreeSet<(String, String)>,
}

impl Local {
    fn has_domain(&self, domain: &str) -> bool {
        self.functions.iter().any(|(d, _)| d == domain)
    }

    fn defines(&self, domain: &str, op: &str) -> bool {
        self.functions.iter().any(|(d, n)| d == domain && n == op)
    }
}

/// Every tensor a graph holds — initializers, sparse initializers, node
/// attributes — and its subgraphs, to any depth up to 16.
fn onnx_graph(loc: &Location, g: &[u8], local: &Local, out: &mut Vec<Finding>, depth: usize) {
    if depth > 16 {
        return;
    }
    for (num, f) in fields(g).map_while(|f| f) {
        match (num, f) {
            // initializer
            (5, Field::Bytes(t)) => onnx_tensor(loc, t, out),
            // sparse_initializer
            (15, Field::Bytes(sparse)) => onnx_sparse_tensor(loc, sparse, out),
            (1, Field::Bytes(node)) => onnx_node(loc, node, local, out, depth),
            _ => {}
        }
    }
}

/// A SparseTensorProto's values and indices, both TensorProtos.
fn onnx_sparse_tensor(loc: &Location, sparse: &[u8], out: &mut Vec<Finding>) {
    for (n, f) in fields(sparse).map_while(|f| f) {
        if let (1 | 2, Field::Bytes(t)) = (n, f) {
            onnx_tensor(loc, t, out);
        }
    }
}

/// A node: its operator domain (unless it calls one of the model's own
/// functions), and the tensors and subgraphs in its attributes (`t`,
/// `tensors`, `sparse_tensor`, `sparse_tensors`, `g`, `graphs`).
fn onnx_node(loc: &Location, node: &[u8], local: &Local, out: &mut Vec<Finding>, depth: usize) {
    let mut op = String::new();
    let mut domain = String::new();
    for (n, f) in fields(node).map_while(|f| f) {
        match (n, f) {
            (4, Field::Bytes(s)) => op = String::from_utf8_lossy(s).into_owned(),
            (7, Field::Bytes(s)) => domain = String::from_utf8_lossy(s).into_owned(),
            (5, Field::Bytes(a)) => {
                for (an, af) in fields(a).map_while(|f| f) {
                    match (an, af) {
                        (5, Field::Bytes(t)) | (10, Field::Bytes(t)) => onnx_tensor(loc, t, out),
                        (22, Field::Bytes(t)) | (23, Field::Bytes(t)) => {
                            onnx_sparse_tensor(loc, t, out)
                        }
                        (6, Field::Bytes(sg)) | (11, Field::Bytes(sg)) => {
                            onnx_graph(loc, sg, local, out, depth + 1)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !STANDARD_DOMAINS.contains(&domain.as_str()) && !local.defines(&domain, &op) {
        out.push(
            Finding::new(
                &ONNX_UNSAFE,
                loc.clone().with_field(op.clone()),
                format!("node `{op}` uses custom operator domain `{domain}`"),
            )
            .with_severity(Severity::Medium)
            .with_evidence("domain", domain),
        );
    }
}

/// Bytes per element of ONNX `TensorProto.DataType` values with fixed sizes.
fn onnx_elem_size(data_type: u64) -> Option<u64> {
    Some(match data_type {
        2 | 3 | 9 => 1,
        4 | 5 | 10 | 16 => 2,
        1 | 6 | 12 => 4,
        7 | 11 | 13 | 14 => 8,
        15 => 16,
        _ => return None,
    })
}

fn onnx_tensor(loc: &Location, t: &[u8], out: &mut Vec<Finding>) {
    let mut name = String::new();
    let mut dims: Vec<u64> = Vec::new();
    let mut data_type = 0u64;
    let mut raw_len: Option<u64> = None;
    for (n, f) in fields(t).map_while(|f| f) {
        match (n, f) {
            (1, Field::Varint(d)) => dims.push(d),
            (1, Field::Bytes(packed)) => {
                let mut p = packed;
                while let Some((d, k)) = varint(p) {
                    dims.push(d);
                    p = &p[k..];
                }
            }
            (2, Field::Varint(dt)) => data_type = dt,
            (8, Field::Bytes(s)) => name = String::from_utf8_lossy(s).into_owned(),
            (9, Field::Bytes(raw)) => raw_len = Some(raw.len() as u64),
            (13, Field::Bytes(entry)) => {
                let mut key = String::new();
                let mut value = String::new();
                for (en, ef) in fields(entry).map_while(|f| f) {
                    match (en, ef) {
                        (1, Field::Bytes(s)) => key = String::from_utf8_lossy(s).into_owned(),
                        (2, Field::Bytes(s)) => value = String::from_utf8_lossy(s).into_owned(),
                        _ => {}
                    }
                }
                if key == "location" {
                    let escapes = value.starts_with('/')
                        || value.starts_with('\\')
                        || value.contains(':')
                        || value.split(['/', '\\']).any(|c| c == "..");
                    if escapes {
                        out.push(
                            Finding::new(&ONNX_UNSAFE, loc.clone().with_field(name.clone()), format!("tensor `{name}` reads external data from `{value}`, outside the model folder (CVE-2024-27318)"))
                                .with_severity(Severity::High)
                                .with_evidence("location", value.clone()),
                        );
                    }
                }
                if (key == "offset" || key == "length") && value.parse::<u64>().is_err() {
                    out.push(
                        Finding::new(&MALFORMED_MODEL_FILE, loc.clone().with_field(name.clone()), format!("tensor `{name}` declares external {key} `{value}`, not a byte count"))
                            .with_evidence("format", "onnx"),
                    );
                }
            }
            _ => {}
        }
    }
    if let (Some(raw), Some(size)) = (raw_len, onnx_elem_size(data_type)) {
        let need = dims.iter().try_fold(size, |a, &d| a.checked_mul(d));
        if need != Some(raw) {
            out.push(
                Finding::new(&MALFORMED_MODEL_FILE, loc.clone().with_field(name.clone()), format!(
                    "tensor `{name}` declares dims {dims:?} ({} bytes) but holds {raw} bytes of raw data",
                    need.map_or_else(|| "an overflowing number of".to_string(), |n| n.to_string())
                ))
                    .with_evidence("format", "onnx"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Keras function outside the tensor namespaces is a gadget wherever
    /// the config puts it, not only in a Lambda.
    #[test]
    fn torch_module_wrappers_hand_their_module_over() {
        use base64::Engine;
        let blob = b"\x80\x02}q\x00.";
        let encoded = base64::engine::general_purpose::STANDARD.encode(blob);
        for module in [
            serde_json::json!(encoded),
            serde_json::json!({"class_name": "__bytes__", "config": {"value": encoded}}),
        ] {
            let config = serde_json::json!({"module": "keras", "class_name": "Sequential",
                "config": {"layers": [{"module": "keras.layers", "class_name": "TorchModuleWrapper",
                    "config": {"name": "w", "module": module}}]}});
            let mut out = Vec::new();
            let modules = check_keras_config(
                &Location::file("m.keras"),
                &config,
                &Policy::default(),
                &mut out,
            );
            assert_eq!(modules.len(), 1);
            assert_eq!(modules[0].bytes, blob);
            assert_eq!(
                modules[0].location.field.as_deref(),
                Some("$.config.layers[0].config.module")
            );
            // One finding, for the wrapper: the base64 text is not a module name.
            assert_eq!(out.len(), 1, "{out:?}");
            assert_eq!(out[0].severity, Severity::Medium);
        }
    }

    #[test]
    fn keras_3_hdf5_configs_are_found() {
        // Keys in the order Keras 3 writes them: `module` first.
        let config = r#"{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "os", "class_name": "system", "config": {"command": "id"}}]}}"#;
        let mut data = b"\x89HDF\r\n\x1a\n".to_vec();
        data.extend_from_slice(&[0; 64]);
        data.extend_from_slice(config.as_bytes());
        let mut out = Vec::new();
        check_hdf5_keras(&Location::file("m.h5"), &data, &Policy::default(), &mut out);
        assert!(
            out.iter().any(|f| f.severity == Severity::Critical),
            "{out:?}"
        );
    }

    #[test]
    fn keras_function_gadgets_are_found_outside_lambdas_too() {
        let config = |module: &str, name: &str| {
            serde_json::json!({"module": "keras", "class_name": "Sequential", "config": {"layers": [
                {"module": "keras.layers", "class_name": "Dense", "config": {"units": 2,
                    "activation": {"module": module, "class_name": "function", "config": name,
                                   "registered_name": "function"}}}]}})
        };
        let findings = |module: &str, name: &str| {
            let mut out = Vec::new();
            check_keras_config(
                &Location::file("m.keras"),
                &config(module, name),
                &Policy::default(),
                &mut out,
            );
            out
        };
        for (module, name) in [
            ("keras.utils", "get_file"),
            ("keras.src.saving.serialization_lib", "set_global_attribute"),
            ("tf_keras.models", "load_model"),
        ] {
            let f = findings(module, name);
            assert!(
                f.iter().any(|f| f.severity == Severity::Critical
                    && f.message.contains(&format!("{module}.{name}"))),
                "{module}.{name}: {f:?}"
            );
        }
        for (module, name) in [
            ("keras.activations", "relu"),
            ("keras.src.activations.activations", "gelu"),
            ("keras.losses", "mean_squared_error"),
        ] {
            assert!(findings(module, name).is_empty(), "{module}.{name}");
        }
        // Outside Keras, the function named in `config` is what is judged.
        let f = findings("builtins", "eval");
        assert!(f.iter().any(|f| f.severity == Severity::Critical), "{f:?}");
    }

    /// Sandbox escapes as published (CVE-2024-34359 and the SSTI
    /// literature), including the forms that avoid every literal name.
    #[test]
    fn template_escapes_are_found_however_they_are_spelled() {
        for payload in [
            "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
            "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
            "{{ ()|attr('__cla' ~ 'ss__') }}",
            r"{{ ''|attr('\x5f\x5fclass\x5f\x5f')|attr('\x5f\x5fmro\x5f\x5f') }}",
            r"{{ ''['\u005f\u005fclass\u005f\u005f'] }}",
            "{% set u = '%c'|format(95) %}{{ ()|attr(u*2 ~ 'class' ~ u*2) }}",
            "{% set n = dict(a=1)|join %}{{ lipsum|attr(n) }}",
            "{{ joiner.__init__ }}",
            "{{ lipsum['__glo' + 'bals__'] }}",
        ] {
            assert!(
                !template_escape_markers(payload).is_empty(),
                "missed: {payload}"
            );
        }
    }

    /// Templates as models ship them (ChatML, Llama 3, Mistral, Qwen 2.5
    /// with tools, Gemma): none of them is flagged.
    #[test]
    fn ordinary_chat_templates_are_clean() {
        for template in [
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
            "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
            "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}",
            "{%- if tools %}{{- '<|im_start|>system\n' }}{%- for tool in tools %}{{- \"\n\" }}{{- tool | tojson }}{%- endfor %}{%- endif %}{%- for message in messages %}{%- if message.role == \"assistant\" and message.tool_calls %}{%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}{{- tool_call.name }}{{- tool_call.arguments | tojson }}{%- endfor %}{%- endif %}{%- endfor %}{%- set ns = namespace(found=false) %}",
            "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}",
        ] {
            assert_eq!(template_escape_markers(template), Vec::<String>::new(), "{template}");
        }
    }

    #[test]
    fn safetensors_header_length_past_the_end_is_a_finding_not_a_panic() {
        // Found by fuzzing: a header length between len-8 and len.
        let mut d = 50u64.to_le_bytes().to_vec();
        d.extend_from_slice(b"{\"a\": 1}");
        d.resize(52, b' ');
        assert!(!is_safetensors(&d));
        let mut out = Vec::new();
        check_safetensors(&Location::file("x"), &d, &mut out);
        assert!(
            out[0].message.contains("runs past the end"),
            "{}",
            out[0].message
        );
    }
}
