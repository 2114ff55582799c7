//! TorchScript source in `torch.jit.save` archives (`<archive>/code/**.py`).
//!
//! `torch.jit.load` compiles these files and runs their `__setstate__`
//! methods while loading; `forward` and the other methods run whenever the
//! model is called. TorchScript is a language of its own, and its built-in
//! operators include some that reach outside tensors: `torch.save` and
//! `torch.from_file` touch any path, `torch.as_strided` and `Tensor.set_`
//! make views of memory no storage owns. PyTorch ≤ 2.5.1 also handed such an
//! archive from `torch.load(weights_only=True)` to `torch.jit.load`
//! (CVE-2025-32434).
//!
//! This is a lexer for the part of Python that TorchScript's printer writes
//! (and its parser reads): names, dotted references, string literals,
//! comments, brackets and indentation. No Python parser crate is used: the
//! job is finding references to a few operators (through `getattr` too) and
//! which method holds them, on bytes that may not be valid UTF-8 or valid
//! Python, in one linear pass with nothing but the token list allocated.

use mlsec_core::{Finding, Location, Severity};
use std::collections::BTreeMap;

use crate::rules::TORCHSCRIPT_UNSAFE_OP;

/// Whether an archive member is TorchScript source: `code/` below the
/// archive's top folder (or at the top), ending in `.py`.
pub fn is_code_member(name: &str) -> bool {
    name.ends_with(".py") && (name.starts_with("code/") || name.contains("/code/"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reach {
    /// Reads or writes files by path.
    Files,
    /// Views memory outside what a storage declares.
    Memory,
}

impl Reach {
    /// Worse when `torch.jit.load` itself runs the operator (`__setstate__`)
    /// than when it waits for the model to be called.
    fn severity(self, at_load: bool) -> Severity {
        match (self, at_load) {
            (Reach::Files, true) => Severity::Critical,
            (Reach::Files, false) | (Reach::Memory, true) => Severity::High,
            (Reach::Memory, false) => Severity::Medium,
        }
    }
}

/// Built-in operators that reach outside the tensors a model holds, as
/// `namespace::name` (`torch.save` is `aten::save`).
const UNSAFE_OPS: &[(&str, Reach, &str)] = &[
    (
        "aten::save",
        Reach::Files,
        "writes a value to any file path",
    ),
    (
        "aten::from_file",
        Reach::Files,
        "reads (or maps shared) any file into a tensor",
    ),
    (
        "image::read_file",
        Reach::Files,
        "reads any file into a tensor (torchvision)",
    ),
    (
        "image::write_file",
        Reach::Files,
        "writes a tensor's bytes to any file path (torchvision)",
    ),
    (
        "aten::as_strided",
        Reach::Memory,
        "makes a view with any offset, sizes and strides, unchecked against the storage",
    ),
    (
        "aten::as_strided_",
        Reach::Memory,
        "re-strides a tensor in place, unchecked against the storage",
    ),
    (
        "aten::set_",
        Reach::Memory,
        "re-points a tensor at another storage, offset, sizes and strides",
    ),
    (
        "inductor::_reinterpret_tensor",
        Reach::Memory,
        "makes a view with any offset, sizes and strides, unchecked against the storage",
    ),
];

/// Method names that, called on any tensor (`x.set_(…)`), are the operators
/// above.
const UNSAFE_METHODS: &[(&str, &str)] = &[
    ("as_strided", "aten::as_strided"),
    ("as_strided_", "aten::as_strided_"),
    ("set_", "aten::set_"),
];

/// Operator namespaces that PyTorch itself registers. Others (`torchvision`,
/// `my_ext`) exist only once their native library is loaded.
const BUILTIN_NAMESPACES: &[&str] = &[
    "aten",
    "prim",
    "prims",
    "quantized",
    "_quantized",
    "quantized_decomposed",
    "prepacked",
    "profiler",
    "cuda",
    "mkldnn",
    "mkldnn_prepacked",
    "_caffe2",
    "inductor",
    "image",
];

/// Methods `torch.jit.load` runs before the caller gets the module back.
const LOAD_TIME_METHODS: &[&str] = &["__setstate__"];

/// Distinct findings per file; the rest are counted in the last one kept.
const MAX_FINDINGS_PER_FILE: usize = 64;
/// Distinct (operator, method) pairs and load-time methods remembered.
const MAX_DISTINCT_USES: usize = 1024;
/// Nested `getattr(getattr(…), …)` followed.
const MAX_GETATTR_NESTING: usize = 8;
/// Tokens looked ahead for a `getattr`'s closing bracket.
const MAX_LOOKAHEAD: usize = 4096;
/// Enclosing `class`/`def` blocks tracked; deeper ones count as the
/// innermost tracked method.
const MAX_SCOPES: usize = 256;
/// Bytes of a method name kept.
const MAX_NAME: usize = 128;

/// Where a use was first seen, and how often.
struct Use {
    offset: usize,
    line: usize,
    count: usize,
}

/// TorchScript source analysed per archive. Real archives hold kilobytes
/// (a scripted speech model: 46 files, 60 KB); the bound keeps a deflated
/// member of repeated brackets from costing seconds.
pub const MAX_SOURCE_BYTES: usize = 16 << 20;

/// [`check_torchscript_code`] on the part of `code` that `budget` (bytes
/// left for this archive) covers; what is past it is reported, not read.
pub fn check_within_budget(
    loc: &Location,
    code: &[u8],
    budget: &mut usize,
    out: &mut Vec<Finding>,
) {
    let analysed = code.len().min(*budget);
    *budget -= analysed;
    check_torchscript_code(loc, &code[..analysed], out);
    if analysed < code.len() {
        out.push(
            Finding::new(
                &TORCHSCRIPT_UNSAFE_OP,
                loc.clone().with_offset(analysed as u64),
                format!(
                    "TorchScript source past {} MiB in this archive was not analysed ({} bytes of this file)",
                    MAX_SOURCE_BYTES >> 20,
                    code.len() - analysed
                ),
            )
            .with_severity(Severity::Medium)
            .with_evidence("bytes_not_analysed", code.len() - analysed),
        );
    }
}

/// Reports unsafe operators in the operator tables of a lite-interpreter
/// archive's `bytecode.pkl` (`_save_for_lite_interpreter`, `.ptl`): tuples
/// such as `('aten::save', '', 2)` that the mobile runtime binds by name,
/// with no source in `code/` needed. The names are pickle strings, found
/// with the length prefix their opcode writes, so `aten::save` inside a
/// longer string does not count.
pub fn check_lite_bytecode(loc: &Location, pickle: &[u8], out: &mut Vec<Finding>) {
    for (op, reach, what) in UNSAFE_OPS {
        let name = op.as_bytes();
        let mut uses = 0usize;
        let mut first = None;
        for at in memchr::memmem::find_iter(pickle, name) {
            let short =
                at >= 2 && pickle[at - 2] == 0x8c && usize::from(pickle[at - 1]) == name.len();
            let long = at >= 5
                && pickle[at - 5] == b'X'
                && pickle[at - 4..at] == (name.len() as u32).to_le_bytes();
            if short || long {
                uses += 1;
                first.get_or_insert(at);
            }
        }
        let Some(offset) = first else { continue };
        let severity = reach.severity(false);
        let mut f = Finding::new(
            &TORCHSCRIPT_UNSAFE_OP,
            loc.clone().with_offset(offset as u64),
            format!("lite-interpreter bytecode binds `{op}`, which runs when the model is called: it {what}"),
        )
        .with_severity(severity)
        .with_evidence("operator", *op);
        if uses > 1 {
            f = f.with_evidence("uses", uses);
        }
        out.push(f);
    }
}

/// Reports unsafe operators, custom operator namespaces and load-time
/// methods in one TorchScript source file. Memory stays bounded whatever
/// the input: tokens are produced on demand and the tables are capped.
pub fn check_torchscript_code(loc: &Location, code: &[u8], out: &mut Vec<Finding>) {
    let mut tokens = Tokens::new(code);
    let mut uses: BTreeMap<(String, String), Use> = BTreeMap::new();
    let mut load_time_defs: Vec<(String, usize, usize)> = Vec::new();
    let mut uses_not_kept = 0usize;
    // (indentation, method name or None for a class)
    let mut scopes: Vec<(usize, Option<String>)> = Vec::new();
    while let Some(t) = tokens.peek(0) {
        match t.tok {
            Tok::Line(indent) => {
                while scopes.last().is_some_and(|(d, _)| *d >= indent) {
                    scopes.pop();
                }
                if let (Some(Tok::Name(kw)), Some(Tok::Name(name))) =
                    (tokens.peek(1).map(|t| t.tok), tokens.peek(2).map(|t| t.tok))
                {
                    let name =
                        || String::from_utf8_lossy(&name[..name.len().min(MAX_NAME)]).into_owned();
                    let scope = match kw {
                        b"def" => Some(Some(name())),
                        b"class" => Some(None),
                        _ => None,
                    };
                    if let Some(scope) = scope {
                        if let Some(n) = scope.as_deref().filter(|n| LOAD_TIME_METHODS.contains(n))
                        {
                            if load_time_defs.len() < MAX_FINDINGS_PER_FILE {
                                let def = tokens.peek(1).expect("peeked above");
                                load_time_defs.push((n.to_string(), def.offset, def.line));
                            }
                        }
                        if scopes.len() < MAX_SCOPES {
                            scopes.push((indent, scope));
                        }
                    }
                }
                tokens.advance(1);
            }
            Tok::Name(_) if !tokens.after_dot => {
                let Some((chain, len)) = reference(&mut tokens, 0, 0) else {
                    tokens.advance(1);
                    continue;
                };
                if let Some(op) = operator(&chain) {
                    let method = scopes
                        .iter()
                        .rev()
                        .find_map(|(_, m)| m.clone())
                        .unwrap_or_default();
                    let key = (op, method);
                    if let Some(u) = uses.get_mut(&key) {
                        u.count += 1;
                    } else if uses.len() < MAX_DISTINCT_USES {
                        uses.insert(
                            key,
                            Use {
                                offset: t.offset,
                                line: t.line,
                                count: 1,
                            },
                        );
                    } else {
                        uses_not_kept += 1;
                    }
                }
                tokens.advance(len.max(1));
            }
            _ => tokens.advance(1),
        }
    }

    let mut findings = Vec::new();
    for (name, offset, line) in &load_time_defs {
        findings.push(
            Finding::new(
                &TORCHSCRIPT_UNSAFE_OP,
                at(loc, *offset, *line),
                format!("TorchScript defines `{name}`, which torch.jit.load runs while loading, before the caller can check the module"),
            )
            .with_severity(Severity::Low)
            .with_evidence("method", name.clone()),
        );
    }
    for ((op, method), u) in &uses {
        let at_load = LOAD_TIME_METHODS.contains(&method.as_str());
        let where_ = if method.is_empty() {
            "at the top level".to_string()
        } else if at_load {
            format!("in `{method}`, which torch.jit.load runs while loading")
        } else {
            format!("in `{method}`, which runs when the model is called")
        };
        let (severity, message) = match UNSAFE_OPS.iter().find(|(o, _, _)| o == op) {
            Some((_, reach, what)) => {
                let severity = reach.severity(at_load);
                (severity, format!("TorchScript calls `{op}` {where_}: it {what}"))
            }
            None => (
                Severity::Low,
                format!("TorchScript calls `{op}` {where_}: an operator from a native library that must be loaded first, outside PyTorch"),
            ),
        };
        let mut f = Finding::new(&TORCHSCRIPT_UNSAFE_OP, at(loc, u.offset, u.line), message)
            .with_severity(severity)
            .with_evidence("operator", op.clone());
        if !method.is_empty() {
            f = f.with_evidence("method", method.clone());
        }
        if u.count > 1 {
            f = f.with_evidence("uses", u.count);
        }
        findings.push(f);
    }
    // The most severe first, so the cap drops low findings, not critical ones.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let dropped = findings.len().saturating_sub(MAX_FINDINGS_PER_FILE) + uses_not_kept;
    findings.truncate(MAX_FINDINGS_PER_FILE);
    if dropped > 0 {
        if let Some(last) = findings.last_mut() {
            *last = last.clone().with_evidence("findings_not_listed", dropped);
        }
    }
    out.append(&mut findings);
}

fn at(loc: &Location, offset: usize, line: usize) -> Location {
    loc.clone()
        .with_offset(offset as u64)
        .with_line(line as u64)
}

/// The operator a dotted reference names, as `namespace::name`, when it is
/// one worth reporting: an unsafe built-in, or any operator outside
/// PyTorch's own namespaces.
fn operator(chain: &[Vec<u8>]) -> Option<String> {
    let parts: Vec<&str> = chain
        .iter()
        .map(|p| std::str::from_utf8(p).unwrap_or("\u{fffd}"))
        .collect();
    let (ns, name) = match parts.as_slice() {
        ["torch", "ops", ns, name, ..] | ["ops", ns, name, ..] => (*ns, *name),
        ["torch", name] => ("aten", *name),
        ["torch" | "ops", ..] => return None,
        [.., method] if parts.len() > 1 => {
            return UNSAFE_METHODS
                .iter()
                .find(|(m, _)| m == method)
                .map(|(_, op)| op.to_string());
        }
        _ => return None,
    };
    let op = format!("{ns}::{name}");
    if UNSAFE_OPS.iter().any(|(o, _, _)| *o == op) || !BUILTIN_NAMESPACES.contains(&ns) {
        Some(op)
    } else {
        None
    }
}

/// A dotted reference starting `k` tokens ahead: `a.b.c`, where any link
/// may be `getattr(REF, "name")`. Returns its parts and how many tokens it
/// spans.
fn reference(tokens: &mut Tokens, k: usize, nesting: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut i = k;
    let mut chain = match tokens.peek(i)?.tok {
        Tok::Name(b"getattr") if tokens.peek(i + 1).map(|t| t.tok) == Some(Tok::Punct(b'(')) => {
            if nesting >= MAX_GETATTR_NESTING {
                return None;
            }
            let (mut inner, len) = reference(tokens, i + 2, nesting + 1)?;
            let mut j = i + 2 + len;
            let (Some(Tok::Punct(b',')), Some(Tok::Str(..))) = (
                tokens.peek(j).map(|t| t.tok),
                tokens.peek(j + 1).map(|t| t.tok),
            ) else {
                return None;
            };
            j += 1;
            // Adjacent literals are one string to Python: 'from_fi' 'le'.
            let mut attr = Vec::new();
            while let Some(Tok::Str(start)) = tokens.peek(j).map(|t| t.tok) {
                if attr.len() < MAX_NAME {
                    attr.extend_from_slice(&string(tokens.src, start).0);
                }
                j += 1;
            }
            inner.push(attr);
            // getattr(obj, "name", default): on to the closing bracket.
            let mut depth = 0usize;
            loop {
                if j - i > MAX_LOOKAHEAD {
                    return None;
                }
                let t = tokens.peek(j)?.tok;
                j += 1;
                match t {
                    Tok::Punct(b'(' | b'[' | b'{') => depth += 1,
                    Tok::Punct(b')') if depth == 0 => break,
                    Tok::Punct(b')' | b']' | b'}') => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            i = j;
            inner
        }
        Tok::Name(n) => {
            i += 1;
            vec![n[..n.len().min(MAX_NAME)].to_vec()]
        }
        _ => return None,
    };
    // Past 16 parts the rest of the chain is left unread (and, following
    // dots, never taken for a reference): no operator is that long, and
    // the look-ahead stays small.
    while chain.len() < 16 {
        let (Some(Tok::Punct(b'.')), Some(Tok::Name(n))) = (
            tokens.peek(i).map(|t| t.tok),
            tokens.peek(i + 1).map(|t| t.tok),
        ) else {
            break;
        };
        chain.push(n[..n.len().min(MAX_NAME)].to_vec());
        i += 2;
    }
    Some((chain, i - k))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    /// The start of a logical line, with its indentation.
    Line(usize),
    Name(&'a [u8]),
    /// A string literal starting at this offset (decoded when needed).
    Str(usize),
    Punct(u8),
}

#[derive(Clone, Copy)]
struct Token<'a> {
    tok: Tok<'a>,
    offset: usize,
    /// 1-based.
    line: usize,
}

/// Tokens produced on demand, with a small look-ahead buffer.
struct Tokens<'a> {
    src: &'a [u8],
    lexer: Lexer<'a>,
    ahead: std::collections::VecDeque<Token<'a>>,
    /// Whether the last token consumed was a `.`: a name after one is an
    /// attribute, not the start of a reference.
    after_dot: bool,
}

impl<'a> Tokens<'a> {
    fn new(src: &'a [u8]) -> Self {
        Tokens {
            src,
            lexer: Lexer {
                src,
                i: 0,
                depth: 0,
                line_start: true,
                line: 1,
            },
            ahead: Default::default(),
            after_dot: false,
        }
    }

    fn peek(&mut self, k: usize) -> Option<Token<'a>> {
        while self.ahead.len() <= k {
            let t = self.lexer.next()?;
            self.ahead.push_back(t);
        }
        Some(self.ahead[k])
    }

    fn advance(&mut self, n: usize) {
        for _ in 0..n {
            let Some(t) = self.ahead.pop_front().or_else(|| self.lexer.next()) else {
                return;
            };
            self.after_dot = t.tok == Tok::Punct(b'.');
        }
    }
}

struct Lexer<'a> {
    src: &'a [u8],
    i: usize,
    /// Open brackets: newlines inside them do not end the logical line.
    depth: usize,
    line_start: bool,
    line: usize,
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let src = self.src;
        while self.i < src.len() {
            if self.line_start {
                let mut indent = 0;
                while let Some(&c) = src.get(self.i) {
                    match c {
                        b' ' => indent += 1,
                        b'\t' => indent = (indent / 8 + 1) * 8,
                        b'\x0c' | b'\r' => {}
                        _ => break,
                    }
                    self.i += 1;
                }
                match src.get(self.i) {
                    None => return None,
                    // Blank and comment-only lines do not open or close
                    // blocks: their newline or comment is read below.
                    Some(b'\n' | b'#') => {}
                    Some(_) => {
                        self.line_start = false;
                        return Some(Token {
                            tok: Tok::Line(indent),
                            offset: self.i,
                            line: self.line,
                        });
                    }
                }
            }
            let i = self.i;
            let token = |tok| {
                Some(Token {
                    tok,
                    offset: i,
                    line: self.line,
                })
            };
            match src[i] {
                b'\n' => {
                    self.line_start = self.depth == 0;
                    self.line += 1;
                    self.i += 1;
                }
                b'\\' if src.get(i + 1) == Some(&b'\n') => {
                    self.line += 1;
                    self.i += 2;
                }
                b'#' => {
                    while self.i < src.len() && src[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                b' ' | b'\t' | b'\r' | b'\x0c' => self.i += 1,
                b'\'' | b'"' => {
                    let line = self.line;
                    let (_, end, newlines) = string_end(src, i);
                    self.i = end;
                    self.line += newlines;
                    return Some(Token {
                        tok: Tok::Str(i),
                        offset: i,
                        line,
                    });
                }
                c if c == b'_' || c.is_ascii_alphabetic() => {
                    while self.i < src.len()
                        && (src[self.i] == b'_' || src[self.i].is_ascii_alphanumeric())
                    {
                        self.i += 1;
                    }
                    return token(Tok::Name(&src[i..self.i]));
                }
                c if c.is_ascii_digit() => {
                    // `1.5e3`, `0x1f`: one number, so its dot is no attribute.
                    while self.i < src.len()
                        && (src[self.i] == b'_'
                            || src[self.i] == b'.'
                            || src[self.i].is_ascii_alphanumeric())
                    {
                        self.i += 1;
                    }
                }
                c => {
                    match c {
                        b'(' | b'[' | b'{' => self.depth += 1,
                        b')' | b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                        _ => {}
                    }
                    self.i += 1;
                    return token(Tok::Punct(c));
                }
            }
        }
        None
    }
}

/// Where the string literal at `src[i]` (a quote) ends: whether it is
/// triple-quoted, the index after it, and the newlines inside it. An
/// unterminated literal ends at the end of its line (or of the input, when
/// triple-quoted).
fn string_end(src: &[u8], i: usize) -> (bool, usize, usize) {
    let q = src[i];
    let triple = src.get(i..i + 3) == Some(&[q, q, q][..]);
    let mut j = i + if triple { 3 } else { 1 };
    let mut newlines = 0;
    while j < src.len() {
        match src[j] {
            c if c == q && (!triple || src.get(j..j + 3) == Some(&[q, q, q][..])) => {
                return (triple, j + if triple { 3 } else { 1 }, newlines);
            }
            b'\n' if !triple => return (triple, j, newlines),
            b'\n' => newlines += 1,
            b'\\' => {
                if src.get(j + 1) == Some(&b'\n') {
                    newlines += 1;
                }
                j += 1;
            }
            _ => {}
        }
        j += 1;
    }
    (triple, j.min(src.len()), newlines)
}

/// The value of the string literal at `src[i]`, with the escapes a payload
/// could use to spell a name (`"s\x61ve"`) decoded, at most `MAX_NAME`
/// bytes of it, and the index after the literal.
fn string(src: &[u8], i: usize) -> (Vec<u8>, usize) {
    let (triple, end, _) = string_end(src, i);
    let close = if triple { 3 } else { 1 };
    let body_end = if end >= i + 2 * close && src[end - 1] == src[i] {
        end - close
    } else {
        end
    };
    let mut value = Vec::new();
    let mut j = i + close;
    while j < body_end && value.len() < MAX_NAME {
        let c = src[j];
        j += 1;
        if c != b'\\' || j >= body_end {
            value.push(c);
            continue;
        }
        let e = src[j];
        j += 1;
        let hex = |n: usize, at: usize| {
            src.get(at..at + n)
                .filter(|_| at + n <= body_end)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        };
        match e {
            b'n' => value.push(b'\n'),
            b't' => value.push(b'\t'),
            b'r' => value.push(b'\r'),
            b'0'..=b'7' => {
                let mut n = u32::from(e - b'0');
                let mut k = 0;
                while k < 2 && j < body_end && (b'0'..=b'7').contains(&src[j]) {
                    n = n * 8 + u32::from(src[j] - b'0');
                    j += 1;
                    k += 1;
                }
                push_char(&mut value, n);
            }
            b'x' | b'u' | b'U' => {
                let n = match e {
                    b'x' => 2,
                    b'u' => 4,
                    _ => 8,
                };
                match hex(n, j) {
                    Some(v) => {
                        push_char(&mut value, v);
                        j += n;
                    }
                    None => value.extend_from_slice(&[b'\\', e]),
                }
            }
            b'\n' => {}
            other => value.push(other),
        }
    }
    (value, end)
}

fn push_char(value: &mut Vec<u8>, code: u32) {
    let c = char::from_u32(code).unwrap_or('\u{fffd}');
    let mut buf = [0; 4];
    value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(code: &str) -> Vec<(String, Severity, Option<String>)> {
        let mut out = Vec::new();
        check_torchscript_code(&Location::file("m.pt"), code.as_bytes(), &mut out);
        out.iter()
            .map(|f| {
                (
                    f.evidence
                        .get("operator")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    f.severity,
                    f.evidence
                        .get("method")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                )
            })
            .collect()
    }

    fn expect(
        found: &[(String, Severity, Option<String>)],
        op: &str,
        severity: Severity,
        method: &str,
    ) {
        let want = (op.to_string(), severity, Some(method.to_string()));
        assert!(found.contains(&want), "{want:?} not in {found:?}");
    }

    #[test]
    fn printed_torchscript_of_ordinary_modules_is_quiet() {
        let code = "class LSTMCell(Module):\n  __parameters__ = [\"weight_ih\", ]\n  def forward(self: __torch__.torch.nn.modules.rnn.LSTMCell,\n    input: Tensor) -> Tensor:\n    _0 = \"torch.save(x) in a message\"  # torch.save in a comment\n    _1 = torch.conv1d(input, self.weight_ih, None, [1], [0])\n    ops.prim.RaiseException(\"boom\", \"builtins.ValueError\")\n    _2 = getattr(self.layers, \"0\")\n    return torch.add(_1, 1.5e3)\n";
        assert_eq!(ops(code), vec![]);
    }

    #[test]
    fn file_operators_are_high_and_critical_while_loading() {
        let code = "class M(Module):\n  def forward(self, x: Tensor) -> Tensor:\n    torch.save(x, \"/tmp/out\")\n    return x\n  def __setstate__(self,\n      state: Tuple[Tensor, bool]) -> None:\n    _0 = torch.from_file(\"/etc/passwd\", False, 100)\n    self.w = _0\n    return None\n";
        let found = ops(code);
        expect(&found, "aten::save", Severity::High, "forward");
        expect(
            &found,
            "aten::from_file",
            Severity::Critical,
            "__setstate__",
        );
        assert!(
            found
                .iter()
                .any(|(op, s, _)| op.is_empty() && *s == Severity::Low),
            "the __setstate__ itself: {found:?}"
        );
    }

    #[test]
    fn operators_are_found_through_ops_getattr_escapes_and_methods() {
        let code = "def forward(self, x: Tensor):\n  a = torch.ops.aten.save(x, 'p')\n  b = ops.image.write_file('p', x)\n  c = getattr(getattr(torch, \"op\\x73\").aten, 'from_fi' 'le')\n  d = getattr(torch, \"s\\141ve\")(x, 'p')\n  x.set_(self.other)\n  return x\n";
        let found: Vec<String> = ops(code).into_iter().map(|(o, _, _)| o).collect();
        assert!(found.contains(&"aten::save".to_string()), "{found:?}");
        assert!(
            found.contains(&"image::write_file".to_string()),
            "{found:?}"
        );
        assert!(found.contains(&"aten::set_".to_string()), "{found:?}");
        assert!(found.contains(&"aten::from_file".to_string()), "{found:?}");
    }

    #[test]
    fn memory_views_are_medium_when_called_and_high_while_loading() {
        let code = "class M(Module):\n  def forward(self, x: Tensor):\n    return torch.as_strided(x, [2], [1], 0)\n  def __setstate__(self, s: int):\n    self.w = ops.inductor._reinterpret_tensor(self.w, [9], [1], 99)\n";
        let found = ops(code);
        expect(&found, "aten::as_strided", Severity::Medium, "forward");
        expect(
            &found,
            "inductor::_reinterpret_tensor",
            Severity::High,
            "__setstate__",
        );
    }

    #[test]
    fn custom_namespaces_are_low() {
        let found = ops("def forward(self, b: Tensor):\n  return ops.torchvision.nms(b, b, 0.5)\n");
        assert_eq!(
            found,
            vec![(
                "torchvision::nms".into(),
                Severity::Low,
                Some("forward".into())
            )]
        );
    }

    #[test]
    fn scopes_close_at_dedent_and_ignore_bracketed_lines() {
        let code = "class M(Module):\n  def __setstate__(self, s: int):\n    self.w = f(1,\n  2)\n  def forward(self, x: Tensor):\n    torch.save(x, 'p')\n";
        let found = ops(code);
        expect(&found, "aten::save", Severity::High, "forward");
    }

    #[test]
    fn blank_and_comment_lines_neither_hang_nor_close_blocks() {
        let code = "\n\nclass M(Module):\n\n  # a comment\n  def __setstate__(self, s: int):\n\n      # indented less than nothing\n# at column 0\n    torch.save(s, 'p')\n\n";
        let found = ops(code);
        expect(&found, "aten::save", Severity::Critical, "__setstate__");
    }

    #[test]
    fn source_past_the_archive_budget_is_reported_not_read() {
        let code = b"def forward(self, x: Tensor):\n  return x\ndef __setstate__(self, s: int):\n  torch.save(s, 'p')\n";
        let mut budget = 40;
        let mut out = Vec::new();
        check_within_budget(&Location::file("m.pt"), code, &mut budget, &mut out);
        assert_eq!(budget, 0);
        assert_eq!(out.len(), 1, "only the budget finding: {out:?}");
        assert_eq!(out[0].severity, Severity::Medium);
        assert_eq!(out[0].evidence["bytes_not_analysed"], code.len() - 40);
    }

    #[test]
    fn lite_bytecode_operator_tables_are_checked_by_exact_string() {
        // ('operators', (('aten::save', '', 2), ('aten::save_hook', '', 1)))
        let mut pickle = b"\x80\x02(X\x09\x00\x00\x00operators(".to_vec();
        pickle.extend_from_slice(b"\x8c\x0aaten::save\x8c\x00K\x02\x87");
        pickle.extend_from_slice(b"X\x0f\x00\x00\x00aten::save_hook\x8c\x00K\x01\x87tt.");
        let mut out = Vec::new();
        check_lite_bytecode(&Location::file("m.ptl"), &pickle, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].severity, Severity::High);
        assert_eq!(out[0].evidence["operator"], "aten::save");
        assert!(!out[0].evidence.contains_key("uses"));
    }
}
