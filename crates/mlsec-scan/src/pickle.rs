//! A symbolic pickle machine: it runs every opcode of protocols 0–5 over
//! symbolic values, so that it sees exactly which globals the real unpickler
//! would import and which of them it would call, without importing or calling
//! anything.
//!
//! It follows CPython's `_Unpickler` (Lib/pickle.py) opcode by opcode: the
//! stack and mark stack, the memo (with writes after POP), frames, stacked
//! pickles in one stream, `STACK_GLOBAL` names taken from the stack or memo,
//! and persistent ids. Hand-written because no Rust crate analyses pickles
//! statically: `serde-pickle` *decodes* values and rejects the very streams an
//! attacker writes, so it cannot report what they would do.
//!
//! Everything found before an error is kept ("found beats error"): a broken
//! stream still executes its prefix in the real unpickler.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Resource limits: a hostile stream may be built to exhaust memory or time.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Opcodes executed per stream, nested streams included.
    pub max_ops: u64,
    /// Values on the stack (all mark levels together).
    pub max_stack: usize,
    /// Memo entries.
    pub max_memo: usize,
    /// Elements retained per container (the rest are counted, not kept).
    pub max_container_items: usize,
    /// Nesting of pickles passed as bytes to loaders (`pickle.loads(b"...")`).
    pub max_nesting: usize,
    /// Distinct nested blobs analysed per stream.
    pub max_nested_blobs: usize,
    /// Distinct globals per stream, nested streams included. Memoised
    /// names can pair up into a new global every few bytes of input.
    pub max_globals: usize,
    /// Bytes of distinct global names per stream, nested streams included:
    /// each global keeps its own copy of its module and name.
    pub max_global_name_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ops: 50_000_000,
            max_stack: 1 << 20,
            max_memo: 1 << 20,
            max_container_items: 4096,
            max_nesting: 4,
            max_nested_blobs: 256,
            max_globals: 1 << 16,
            max_global_name_bytes: 8 << 20,
        }
    }
}

/// How a global was used at one place in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// `REDUCE`, `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, `BUILD` (a `__setstate__`
    /// call), or one of those followed by ` (on its result)` when the object a
    /// global returned is called in turn; or [`GETATTR_RESOLVED`],
    /// [`BUILD_ON_GLOBAL`], [`ITEMS_ON_GLOBAL`].
    pub opcode: &'static str,
    pub offset: u64,
}

/// The use of `builtins.getattr` on a global and a constant name, which the
/// machine resolves to that attribute as a global of its own.
pub const GETATTR_RESOLVED: &str = "REDUCE (getattr resolved statically)";
/// BUILD applied to an imported global itself, not to an object built from
/// it: it sets attributes of a library's class or function (or calls its
/// `__setstate__`), which no pickle written by `pickle.dump` does.
pub const BUILD_ON_GLOBAL: &str = "BUILD (on the imported global itself)";
/// SETITEM(S), APPEND(S) or ADDITEMS applied to an imported global itself
/// (`os.environ`, a module's dict): it changes the library's state.
pub const ITEMS_ON_GLOBAL: &str = "SETITEM/APPEND (on the imported global itself)";

/// A class passed as `base` to `copyreg._reconstructor`, which calls its
/// `__new__` and `__init__` with the stream's state.
pub const CONSTRUCTED_AS_BASE: &str = "REDUCE (as the base of copyreg._reconstructor)";
/// A callable passed as `func` to `torch._tensor._rebuild_from_type_v2`,
/// which calls it with the stream's arguments.
pub const CALLED_BY_REBUILD: &str = "REDUCE (called by torch._tensor._rebuild_from_type_v2)";

/// One global the stream imports, with every call made on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRef {
    pub module: String,
    pub name: String,
    /// The opcode that imported it (`GLOBAL`, `STACK_GLOBAL`, `INST`, `EXT`,
    /// or `getattr` for an attribute resolved statically) and where.
    pub opcode: &'static str,
    pub offset: u64,
    /// How many times the stream imports it.
    pub imports: u64,
    /// The first [`USES_KEPT_PER_OPCODE`] uses of each opcode, in order.
    pub uses: Vec<Use>,
    /// Uses beyond those (a stream can call one global millions of times).
    pub uses_dropped: u64,
}

/// Uses of one global kept per opcode: enough to show where it is called
/// and how, bounded whatever the stream repeats.
pub const USES_KEPT_PER_OPCODE: usize = 16;

impl GlobalRef {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
    pub fn is_called(&self) -> bool {
        !self.uses.is_empty()
    }
}

/// A pickle found inside another, as bytes handed to a loader.
#[derive(Debug, Clone, PartialEq)]
pub struct Nested {
    /// Offset of the call that loads it.
    pub offset: u64,
    /// The loader, e.g. `pickle.loads`.
    pub loader: String,
    pub analysis: Analysis,
    /// The bytes, kept when they hold no pickle: loaders such as
    /// `torch.load` and `numpy.load` also read archives (a PyTorch zip, an
    /// NPZ), which the caller then scans as files of their own.
    pub not_a_pickle: Option<Vec<u8>>,
}

/// Why a stream could not be followed to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub offset: u64,
    pub message: String,
    /// True when a resource limit stopped the analysis (a bomb), rather than malformed bytes.
    pub limit: bool,
}

/// What the machine learnt from one byte stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Analysis {
    pub globals: Vec<GlobalRef>,
    pub nested: Vec<Nested>,
    /// Extension-registry codes (`EXT1/2/4`): globals that cannot be resolved statically.
    pub extensions: Vec<(u64, i64)>,
    /// Persistent ids (PyTorch storages), as seen by `persistent_load`.
    pub persistent_ids: Vec<PersistentId>,
    pub error: Option<StreamError>,
    /// Complete pickles (ending in STOP) in the stream.
    pub pickles: usize,
    /// Offset just past the last STOP.
    pub end: u64,
    pub protocol: Option<u8>,
    pub ops: u64,
    /// Tensors rebuilt as views that reach outside their storage.
    pub tensor_overruns: Vec<TensorOverrun>,
    /// Container opcodes applied to tensors, arrays or storages.
    pub items_on_data: Vec<ItemsOnData>,
}

/// SETITEM(S), APPEND(S) or ADDITEMS applied to a PyTorch storage or to
/// what a PyTorch or NumPy data constructor returned (a tensor, an array,
/// a dtype): no `torch.save` or NumPy pickle does this, and before PyTorch
/// 2.10 the `weights_only` loader applied it without checking the type,
/// corrupting memory (CVE-2026-24747).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsOnData {
    pub offset: u64,
    pub opcode: &'static str,
    /// `module.name` of the constructor, or `None` for a storage.
    pub target: Option<String>,
}

/// A `torch._utils._rebuild_tensor(_v2)` call whose offset, sizes and
/// strides reach past the elements its storage declares: `torch.save` never
/// writes one, and loading it makes a view of memory outside the storage
/// (the heap corruption of CVE-2026-24747 in `weights_only` loading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorOverrun {
    /// Offset of the call.
    pub offset: u64,
    pub storage_key: Option<String>,
    /// Elements the storage declares.
    pub numel: i64,
    /// Why the view does not fit: the last element it reaches, or a
    /// negative or inconsistent size, stride or offset.
    pub reason: String,
}

impl Analysis {
    /// Every global, nested streams included, with the chain of loaders that
    /// reaches it.
    pub fn all_globals(&self) -> Vec<(Vec<String>, &GlobalRef)> {
        let mut out: Vec<(Vec<String>, &GlobalRef)> =
            self.globals.iter().map(|g| (Vec::new(), g)).collect();
        for n in &self.nested {
            for (mut path, g) in n.analysis.all_globals() {
                path.insert(0, format!("{} at offset {}", n.loader, n.offset));
                out.push((path, g));
            }
        }
        out
    }
}

/// A persistent id as PyTorch writes it: `('storage', StorageType, key, location, numel)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistentId {
    pub offset: u64,
    /// The storage type global (e.g. `torch.FloatStorage`), when present.
    pub storage_type: Option<String>,
    pub key: Option<String>,
    pub numel: Option<i64>,
}

/// The `loader` of an inline object-array pickle inside a joblib stream.
pub const INLINE_JOBLIB: &str = "joblib inline object array";

/// Loaders whose bytes argument is itself a pickle: analysed recursively.
const PICKLE_LOADERS: &[&str] = &[
    "pickle.loads",
    "pickle._loads",
    "_pickle.loads",
    "cPickle.loads",
    "pickle.load",
    "_pickle.load",
    "dill.loads",
    "dill._dill.loads",
    "cloudpickle.loads",
    "joblib.load",
    "torch.load",
    "torch.serialization.load",
    "torch.storage._load_from_bytes",
    "numpy.load",
    "numpy.loads",
    "numpy.core.numeric.loads",
    "pandas.read_pickle",
];

#[derive(Debug, Clone)]
enum V {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    /// Index into `Machine::globals`.
    Global(usize),
    Object(Rc<Obj>),
    /// Index into `Machine::lists` (an arena: self-referencing lists are
    /// cycles of indices, freed with the machine, not leaked `Rc` cycles).
    List(usize),
    Tuple(Rc<[V]>),
    /// Index into `Machine::dicts`.
    Dict(usize),
    Set,
    /// A value we do not model (buffers, persistent objects, …).
    Opaque,
    /// What `persistent_load` returned for `Analysis::persistent_ids[i]`
    /// (a PyTorch storage).
    Storage(usize),
}

#[derive(Debug)]
struct Obj {
    /// The global whose call produced this object, if any.
    source: Option<usize>,
    args: Vec<V>,
    /// Bytes this object stands for (`_codecs.encode(s, 'latin1')`, `io.BytesIO(b)`).
    bytes: Option<Rc<[u8]>>,
}

/// Analyses a byte stream holding one or more pickles.
pub fn analyse(data: &[u8], limits: &Limits) -> Analysis {
    let mut budget = Budget {
        ops: limits.max_ops,
        globals: limits.max_globals,
        name_bytes: limits.max_global_name_bytes,
        kept_bytes: KEPT_NOT_A_PICKLE_BYTES,
    };
    analyse_nested(data, limits, 0, &mut budget, usize::MAX)
}

/// What is left of the limits that a stream and the pickles nested in it
/// share.
struct Budget {
    ops: u64,
    globals: usize,
    name_bytes: usize,
    /// Room left for copies of nested bytes that are no pickle.
    kept_bytes: usize,
}

/// What one stream may keep of nested bytes for scanning as files: the
/// same copy of one string handed to a loader many times must not
/// multiply memory.
const KEPT_NOT_A_PICKLE_BYTES: usize = 64 << 20;

/// `max_pickles`: stop after this many complete pickles (1 for a pickle
/// embedded in an outer stream, which the outer stream continues after).
fn analyse_nested(
    data: &[u8],
    limits: &Limits,
    depth: usize,
    budget: &mut Budget,
    max_pickles: usize,
) -> Analysis {
    let mut m = Machine {
        data,
        pos: 0,
        limits,
        depth,
        budget,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Memo::default(),
        globals: Vec::new(),
        global_index: HashMap::new(),
        out: Analysis::default(),
        seen_blobs: HashSet::new(),
        stack_total: 0,
        max_pickles,
        lists: Vec::new(),
        dicts: Vec::new(),
    };
    m.run();
    let mut out = m.out;
    out.globals = m.globals;
    out
}

struct Machine<'a, 'b> {
    data: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    depth: usize,
    budget: &'b mut Budget,
    stack: Vec<V>,
    marks: Vec<Vec<V>>,
    memo: Memo,
    globals: Vec<GlobalRef>,
    global_index: HashMap<(String, String), usize>,
    out: Analysis,
    seen_blobs: HashSet<usize>,
    /// Values held across all mark levels.
    stack_total: usize,
    max_pickles: usize,
    /// Arena of mutable containers (lists, dicts), each bounded.
    lists: Vec<Vec<V>>,
    dicts: Vec<Vec<(V, V)>>,
}

/// The memo. Picklers number its entries 0, 1, 2, … in the order they are
/// written (MEMOIZE has no key at all: it takes the next number), so those
/// live in a vector indexed by key, and only keys written out of that order
/// — hand-made or hostile streams — go to a map. Hashing every key cost a
/// quarter of the analysis of a small pickle.
#[derive(Default)]
struct Memo {
    in_order: Vec<V>,
    out_of_order: HashMap<u64, V>,
    len: usize,
}

impl Memo {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, key: u64) -> Option<&V> {
        match usize::try_from(key) {
            Ok(i) if i < self.in_order.len() => Some(&self.in_order[i]),
            _ => self.out_of_order.get(&key),
        }
    }

    fn insert(&mut self, key: u64, v: V) {
        let next = self.in_order.len();
        let replaced = match usize::try_from(key) {
            Ok(i) if i < next => {
                self.in_order[i] = v;
                true
            }
            Ok(i) if i == next => {
                self.in_order.push(v);
                // An earlier out-of-order write of this key moves here.
                !self.out_of_order.is_empty() && self.out_of_order.remove(&key).is_some()
            }
            _ => self.out_of_order.insert(key, v).is_some(),
        };
        if !replaced {
            self.len += 1;
        }
    }

    fn clear(&mut self) {
        self.in_order.clear();
        self.out_of_order.clear();
        self.len = 0;
    }
}

type Step = Result<(), (u64, String, bool)>;

fn malformed<T>(offset: usize, msg: impl Into<String>) -> Result<T, (u64, String, bool)> {
    Err((offset as u64, msg.into(), false))
}

impl Machine<'_, '_> {
    fn run(&mut self) {
        loop {
            if self.pos >= self.data.len() {
                if self.out.pickles == 0 {
                    self.fail(self.pos, "empty or truncated stream: no STOP opcode", false);
                }
                return;
            }
            let start = self.pos;
            // After a complete pickle, more bytes may be a stacked pickle or
            // unrelated data: only follow them if they start with an opcode.
            if self.out.pickles > 0 && !is_opcode(self.data[self.pos]) {
                return;
            }
            match self.one_pickle() {
                Ok(()) => {
                    self.out.pickles += 1;
                    self.out.end = self.pos as u64;
                    if self.out.pickles >= self.max_pickles {
                        return;
                    }
                    self.stack.clear();
                    self.marks.clear();
                    self.stack_total = 0;
                    // Each pickle.load() starts with an empty memo.
                    self.memo.clear();
                }
                Err((offset, message, limit)) => {
                    // A second "pickle" that fails at once is trailing data, not an error.
                    if self.out.pickles > 0 && self.pos <= start + 1 && !limit {
                        return;
                    }
                    self.fail(offset as usize, &message, limit);
                    return;
                }
            }
        }
    }

    fn fail(&mut self, offset: usize, message: &str, limit: bool) {
        self.out.error = Some(StreamError {
            offset: offset as u64,
            message: message.to_string(),
            limit,
        });
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], (u64, String, bool)> {
        let at = self.pos;
        match self.pos.checked_add(n) {
            Some(end) if end <= self.data.len() => {
                self.pos = end;
                Ok(&self.data[at..end])
            }
            _ => malformed(
                at,
                format!(
                    "truncated {what}: needs {n} bytes, {} left",
                    self.data.len() - at.min(self.data.len())
                ),
            ),
        }
    }

    fn line(&mut self, what: &str) -> Result<&[u8], (u64, String, bool)> {
        let at = self.pos;
        match self.data[at..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos = at + i + 1;
                let mut l = &self.data[at..at + i];
                if l.last() == Some(&b'\r') {
                    l = &l[..l.len() - 1];
                }
                Ok(l)
            }
            None => malformed(at, format!("truncated {what}: no end of line")),
        }
    }

    fn u8(&mut self) -> Result<u8, (u64, String, bool)> {
        Ok(self.take(1, "argument")?[0])
    }
    fn u16(&mut self) -> Result<u16, (u64, String, bool)> {
        let b = self.take(2, "argument")?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, (u64, String, bool)> {
        let b = self.take(4, "argument")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, (u64, String, bool)> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, (u64, String, bool)> {
        let b = self.take(8, "argument")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn push(&mut self, v: V, at: usize) -> Step {
        if self.stack_total >= self.limits.max_stack {
            return Err((
                at as u64,
                format!(
                    "stack exceeds {} values (a pickle bomb?)",
                    self.limits.max_stack
                ),
                true,
            ));
        }
        self.stack_total += 1;
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self, at: usize, op: &str) -> Result<V, (u64, String, bool)> {
        match self.stack.pop() {
            Some(v) => {
                self.stack_total -= 1;
                Ok(v)
            }
            None => malformed(at, format!("{op} on an empty stack")),
        }
    }

    fn top(&self, at: usize, op: &str) -> Result<&V, (u64, String, bool)> {
        self.stack
            .last()
            .map_or_else(|| malformed(at, format!("{op} on an empty stack")), Ok)
    }

    fn pop_mark(&mut self, at: usize, op: &str) -> Result<Vec<V>, (u64, String, bool)> {
        match self.marks.pop() {
            Some(prev) => {
                let items = std::mem::replace(&mut self.stack, prev);
                self.stack_total -= items.len();
                Ok(items)
            }
            None => malformed(at, format!("{op} without a MARK")),
        }
    }

    fn memo_put(&mut self, key: u64, at: usize) -> Step {
        let v = self.top(at, "PUT")?.clone();
        if self.memo.len() >= self.limits.max_memo && self.memo.get(key).is_none() {
            return Err((
                at as u64,
                format!(
                    "memo exceeds {} entries (a pickle bomb?)",
                    self.limits.max_memo
                ),
                true,
            ));
        }
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u64, at: usize) -> Step {
        match self.memo.get(key) {
            Some(v) => {
                let v = v.clone();
                self.push(v, at)
            }
            None => malformed(at, format!("memo key {key} was never PUT")),
        }
    }

    fn global(
        &mut self,
        module: &str,
        name: &str,
        opcode: &'static str,
        at: usize,
    ) -> Result<usize, (u64, String, bool)> {
        let key = (module.to_string(), name.to_string());
        if let Some(&i) = self.global_index.get(&key) {
            self.globals[i].imports += 1;
            return Ok(i);
        }
        let bytes = module.len() + name.len();
        if self.budget.globals == 0 || self.budget.name_bytes < bytes {
            return Err((
                at as u64,
                format!(
                    "over {} distinct globals or {} bytes of their names (a pickle bomb?)",
                    self.limits.max_globals, self.limits.max_global_name_bytes
                ),
                true,
            ));
        }
        self.budget.globals -= 1;
        self.budget.name_bytes -= bytes;
        self.globals.push(GlobalRef {
            module: module.to_string(),
            name: name.to_string(),
            opcode,
            offset: at as u64,
            imports: 1,
            uses: Vec::new(),
            uses_dropped: 0,
        });
        self.global_index.insert(key, self.globals.len() - 1);
        Ok(self.globals.len() - 1)
    }

    fn record_use(&mut self, global: usize, opcode: &'static str, at: usize) {
        let g = &mut self.globals[global];
        if g.uses.iter().filter(|u| u.opcode == opcode).count() < USES_KEPT_PER_OPCODE {
            g.uses.push(Use {
                opcode,
                offset: at as u64,
            });
        } else {
            g.uses_dropped += 1;
        }
    }

    /// Records a call of `callable` with `args` and returns its result.
    fn call(&mut self, callable: &V, args: Vec<V>, opcode: &'static str, at: usize) -> V {
        if let Some(attribute) = self.static_getattr(callable, &args, opcode, at) {
            return attribute;
        }
        let source = match callable {
            V::Global(i) => {
                self.record_use(*i, opcode, at);
                Some(*i)
            }
            V::Object(o) => {
                // Calling what a global returned (`getattr(os, 'system')(...)`).
                if let Some(i) = o.source {
                    let op = match opcode {
                        "REDUCE" => "REDUCE (on its result)",
                        "NEWOBJ" => "NEWOBJ (on its result)",
                        "NEWOBJ_EX" => "NEWOBJ_EX (on its result)",
                        "OBJ" => "OBJ (on its result)",
                        _ => "BUILD (on its result)",
                    };
                    self.record_use(i, op, at);
                }
                o.source
            }
            _ => None,
        };
        let name = source
            .map(|i| self.globals[i].qualified())
            .unwrap_or_default();
        // Allowed constructors that call a global passed to them: the call
        // is the global's, so it is recorded on it.
        let passed_on = match name.as_str() {
            // `base.__new__(cls, state)` and `base.__init__(obj, state)`.
            "copyreg._reconstructor" | "copy_reg._reconstructor" => {
                Some((args.get(1), CONSTRUCTED_AS_BASE))
            }
            // `func(*args)`, then the result is cast to `new_type`.
            "torch._tensor._rebuild_from_type_v2" => Some((args.first(), CALLED_BY_REBUILD)),
            _ => None,
        };
        if let Some((Some(V::Global(g)), how)) = passed_on {
            let g = *g;
            self.record_use(g, how, at);
        }
        if matches!(
            name.as_str(),
            "torch._utils._rebuild_tensor" | "torch._utils._rebuild_tensor_v2"
        ) {
            self.check_tensor_view(&args, at);
        }
        if PICKLE_LOADERS.contains(&name.as_str()) {
            self.nested_loads(&name, &args, at);
        }
        let bytes = match name.as_str() {
            // Protocol 2 writes bytes as `_codecs.encode(str, 'latin1')`.
            "_codecs.encode" | "codecs.encode" => match args.first() {
                Some(V::Str(s)) => Some(
                    s.chars()
                        .map(|c| c as u32 as u8)
                        .collect::<Vec<u8>>()
                        .into(),
                ),
                _ => None,
            },
            "io.BytesIO"
            | "_io.BytesIO"
            | "builtins.bytes"
            | "builtins.bytearray"
            | "__builtin__.bytearray" => args.first().and_then(bytes_of),
            _ => None,
        };
        let keep = args.len().min(self.limits.max_container_items);
        let mut args = args;
        args.truncate(keep);
        V::Object(Rc::new(Obj {
            source,
            args,
            bytes,
        }))
    }

    /// `getattr(G, 'name')` on a global `G` and a constant name is how Python
    /// pickles class methods (`getattr(ZoneInfo, '_unpickle')`) and, since
    /// 3.12, enum members (`getattr(Color, 'RED')`). The real unpickler ends
    /// up holding `G.name`, so that is the global recorded (and classified),
    /// and this use of `getattr` is marked [`GETATTR_RESOLVED`]. Any other
    /// `getattr` (a computed object or name) stays an ordinary call.
    fn static_getattr(
        &mut self,
        callable: &V,
        args: &[V],
        opcode: &'static str,
        at: usize,
    ) -> Option<V> {
        let V::Global(getattr) = callable else {
            return None;
        };
        let g = &self.globals[*getattr];
        if opcode != "REDUCE"
            || g.name != "getattr"
            || !matches!(g.module.as_str(), "builtins" | "__builtin__")
        {
            return None;
        }
        let [V::Global(target), V::Str(attribute)] = args else {
            return None;
        };
        if attribute.is_empty() || !attribute.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let t = &self.globals[*target];
        // Real attribute paths are short; a chain of getattr calls built to
        // grow one is left as ordinary (critical) getattr calls.
        if t.name.len() + attribute.len() > 256 || t.name.matches('.').count() >= 16 {
            return None;
        }
        let (module, name) = (t.module.clone(), format!("{}.{attribute}", t.name));
        // Past a limit, getattr stays a call; the next import stops the stream.
        let resolved = self.global(&module, &name, "getattr", at).ok()?;
        self.record_use(*getattr, GETATTR_RESOLVED, at);
        Some(V::Global(resolved))
    }

    /// Analyses byte strings handed to a pickle loader as pickles of their own.
    fn nested_loads(&mut self, loader: &str, args: &[V], at: usize) {
        let mut blobs = Vec::new();
        for a in args {
            self.collect_bytes(a, 3, &mut blobs);
        }
        for blob in blobs {
            let id = Rc::as_ptr(&blob) as *const u8 as usize;
            if !self.seen_blobs.insert(id) || self.out.nested.len() >= self.limits.max_nested_blobs
            {
                continue;
            }
            if self.depth + 1 > self.limits.max_nesting {
                self.out.nested.push(Nested {
                    offset: at as u64,
                    loader: loader.to_string(),
                    analysis: Analysis {
                        error: Some(StreamError {
                            offset: 0,
                            message: format!(
                                "nested deeper than {} pickles; not followed",
                                self.limits.max_nesting
                            ),
                            limit: true,
                        }),
                        ..Analysis::default()
                    },
                    not_a_pickle: None,
                });
                continue;
            }
            let analysis =
                analyse_nested(&blob, self.limits, self.depth + 1, self.budget, usize::MAX);
            let keep = analysis.pickles == 0 && blob.len() <= self.budget.kept_bytes;
            let not_a_pickle = keep.then(|| {
                self.budget.kept_bytes -= blob.len();
                blob.to_vec()
            });
            self.out.nested.push(Nested {
                offset: at as u64,
                loader: loader.to_string(),
                analysis,
                not_a_pickle,
            });
        }
    }

    fn one_pickle(&mut self) -> Step {
        loop {
            if self.budget.ops == 0 {
                return Err((
                    self.pos as u64,
                    format!("over {} opcodes (a pickle bomb?)", self.limits.max_ops),
                    true,
                ));
            }
            self.budget.ops -= 1;
            self.out.ops += 1;
            let at = self.pos;
            let op = match self.data.get(at) {
                Some(&b) => b,
                None => return malformed(at, "truncated stream: no STOP opcode"),
            };
            self.pos += 1;
            match op {
                b'\x80' => {
                    let p = self.u8()?;
                    if p > 5 {
                        return malformed(at, format!("unsupported pickle protocol {p}"));
                    }
                    self.out.protocol.get_or_insert(p);
                }
                b'\x95' => {
                    let n = self.u64()?;
                    if n > (self.data.len() - self.pos) as u64 {
                        return malformed(
                            at,
                            format!("FRAME of {n} bytes runs past the end of the stream"),
                        );
                    }
                }
                b'.' => {
                    self.pop(at, "STOP")?;
                    return Ok(());
                }
                // ---- numbers
                b'I' => {
                    let l = self.line("INT")?;
                    let v = match l {
                        b"00" | b"01" => V::Bool,
                        _ => parse_int(l)
                            .map(V::Int)
                            .ok_or(())
                            .or_else(|_| malformed(at, "INT argument is not an integer"))?,
                    };
                    self.push(v, at)?;
                }
                b'J' => {
                    let v = self.i32()?;
                    self.push(V::Int(v as i64), at)?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(V::Int(v as i64), at)?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(V::Int(v as i64), at)?;
                }
                b'L' => {
                    let l = self.line("LONG")?;
                    let l = l.strip_suffix(b"L").unwrap_or(l);
                    let v = parse_int(l).map(V::Int).unwrap_or(V::Opaque);
                    if v.is_opaque()
                        && !l
                            .iter()
                            .all(|b| b.is_ascii_digit() || *b == b'-' || *b == b'+')
                    {
                        return malformed(at, "LONG argument is not an integer");
                    }
                    self.push(v, at)?;
                }
                b'\x8a' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n, "LONG1")?;
                    let v = small_le_int(b);
                    self.push(v, at)?;
                }
                b'\x8b' => {
                    let n = self.i32()?;
                    if n < 0 {
                        return malformed(at, "LONG4 with a negative byte count");
                    }
                    let b = self.take(n as usize, "LONG4")?;
                    let v = small_le_int(b);
                    self.push(v, at)?;
                }
                b'F' => {
                    let l = self.line("FLOAT")?;
                    if std::str::from_utf8(l)
                        .ok()
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .is_none()
                    {
                        return malformed(at, "FLOAT argument is not a number");
                    }
                    self.push(V::Float, at)?;
                }
                b'G' => {
                    self.take(8, "BINFLOAT")?;
                    self.push(V::Float, at)?;
                }
                // ---- strings and bytes
                b'S' => {
                    let l = self.line("STRING")?.to_vec();
                    let s = unquote_py2_string(&l)
                        .ok_or(())
                        .or_else(|_| malformed(at, "STRING argument is not a quoted string"))?;
                    self.push(V::Str(latin1(&s)), at)?;
                }
                b'T' => {
                    let n = self.i32()?;
                    if n < 0 {
                        return malformed(at, "BINSTRING with a negative length");
                    }
                    let b = self.take(n as usize, "BINSTRING")?;
                    let v = V::Str(latin1(b));
                    self.push(v, at)?;
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n, "SHORT_BINSTRING")?;
                    let v = V::Str(latin1(b));
                    self.push(v, at)?;
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b: Rc<[u8]> = self.take(n, "BINBYTES")?.into();
                    self.push(V::Bytes(b), at)?;
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b: Rc<[u8]> = self.take(n, "SHORT_BINBYTES")?.into();
                    self.push(V::Bytes(b), at)?;
                }
                b'\x8e' | b'\x96' => {
                    let n = self.u64()?;
                    let n = usize::try_from(n)
                        .or_else(|_| malformed(at, "length does not fit in memory"))?;
                    let what = if op == b'\x8e' {
                        "BINBYTES8"
                    } else {
                        "BYTEARRAY8"
                    };
                    let b: Rc<[u8]> = self.take(n, what)?.into();
                    self.push(V::Bytes(b), at)?;
                }
                b'V' => {
                    let l = self.line("UNICODE")?;
                    let s = raw_unicode_escape(l);
                    self.push(V::Str(s.into()), at)?;
                }
                b'\x8c' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n, "SHORT_BINUNICODE")?;
                    let v = V::Str(String::from_utf8_lossy(b).into());
                    self.push(v, at)?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n, "BINUNICODE")?;
                    let v = V::Str(String::from_utf8_lossy(b).into());
                    self.push(v, at)?;
                }
                b'\x8d' => {
                    let n = self.u64()?;
                    let n = usize::try_from(n)
                        .or_else(|_| malformed(at, "length does not fit in memory"))?;
                    let b = self.take(n, "BINUNICODE8")?;
                    let v = V::Str(String::from_utf8_lossy(b).into());
                    self.push(v, at)?;
                }
                b'N' => self.push(V::None, at)?,
                b'\x88' | b'\x89' => self.push(V::Bool, at)?,
                b'\x97' => self.push(V::Opaque, at)?, // NEXT_BUFFER
                b'\x98' => {
                    self.top(at, "READONLY_BUFFER")?;
                }
                // ---- containers
                b']' => {
                    let l = self.new_list(Vec::new());
                    self.push(l, at)?;
                }
                b')' => self.push(V::Tuple(Rc::from(Vec::new())), at)?,
                b'}' => {
                    let d = self.new_dict();
                    self.push(d, at)?;
                }
                b'\x8f' => self.push(V::Set, at)?,
                b'a' => {
                    let v = self.pop(at, "APPEND")?;
                    let list = self.top(at, "APPEND")?.clone();
                    self.extend(&list, vec![v], "APPEND", at);
                }
                b'e' => {
                    let items = self.pop_mark(at, "APPENDS")?;
                    let list = self.top(at, "APPENDS")?.clone();
                    self.extend(&list, items, "APPENDS", at);
                }
                b'l' => {
                    let mut items = self.pop_mark(at, "LIST")?;
                    items.truncate(self.limits.max_container_items);
                    let l = self.new_list(items);
                    self.push(l, at)?;
                }
                b't' => {
                    let mut items = self.pop_mark(at, "TUPLE")?;
                    items.truncate(self.limits.max_container_items);
                    self.push(V::Tuple(items.into()), at)?;
                }
                b'\x85' | b'\x86' | b'\x87' => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at, "TUPLE")?);
                    }
                    items.reverse();
                    self.push(V::Tuple(items.into()), at)?;
                }
                b'd' => {
                    let items = self.pop_mark(at, "DICT")?;
                    if items.len() % 2 != 0 {
                        return malformed(at, "DICT with an odd number of items");
                    }
                    let d = self.new_dict();
                    self.set_items(&d, items, "DICT", at);
                    self.push(d, at)?;
                }
                b's' => {
                    let v = self.pop(at, "SETITEM")?;
                    let k = self.pop(at, "SETITEM")?;
                    let target = self.top(at, "SETITEM")?.clone();
                    self.set_items(&target, vec![k, v], "SETITEM", at);
                }
                b'u' => {
                    let items = self.pop_mark(at, "SETITEMS")?;
                    if items.len() % 2 != 0 {
                        return malformed(at, "SETITEMS with an odd number of items");
                    }
                    let target = self.top(at, "SETITEMS")?.clone();
                    self.set_items(&target, items, "SETITEMS", at);
                }
                b'\x90' => {
                    self.pop_mark(at, "ADDITEMS")?;
                    let target = self.top(at, "ADDITEMS")?.clone();
                    self.method_call(&target, "ADDITEMS", at);
                }
                b'\x91' => {
                    self.pop_mark(at, "FROZENSET")?;
                    self.push(V::Set, at)?;
                }
                // ---- stack and memo
                b'0' => {
                    if self.stack.is_empty() {
                        self.pop_mark(at, "POP")?;
                    } else {
                        self.pop(at, "POP")?;
                    }
                }
                b'2' => {
                    let v = self.top(at, "DUP")?.clone();
                    self.push(v, at)?;
                }
                b'(' => {
                    if self.marks.len() >= self.limits.max_stack {
                        return Err((at as u64, "too many MARKs (a pickle bomb?)".into(), true));
                    }
                    let prev = std::mem::take(&mut self.stack);
                    self.marks.push(prev);
                }
                b'1' => {
                    self.pop_mark(at, "POP_MARK")?;
                }
                b'g' => {
                    let l = self.line("GET")?;
                    let k = parse_int(l)
                        .filter(|k| *k >= 0)
                        .ok_or(())
                        .or_else(|_| malformed(at, "GET argument is not a memo key"))?;
                    self.memo_get(k as u64, at)?;
                }
                b'h' => {
                    let k = self.u8()? as u64;
                    self.memo_get(k, at)?;
                }
                b'j' => {
                    let k = self.u32()? as u64;
                    self.memo_get(k, at)?;
                }
                b'p' => {
                    let l = self.line("PUT")?;
                    let k = parse_int(l)
                        .filter(|k| *k >= 0)
                        .ok_or(())
                        .or_else(|_| malformed(at, "PUT argument is not a memo key"))?;
                    self.memo_put(k as u64, at)?;
                }
                b'q' => {
                    let k = self.u8()? as u64;
                    self.memo_put(k, at)?;
                }
                b'r' => {
                    let k = self.u32()? as u64;
                    self.memo_put(k, at)?;
                }
                b'\x94' => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k, at)?;
                }
                // ---- globals and calls
                b'\x82' | b'\x83' | b'\x84' => {
                    let code = match op {
                        b'\x82' => self.u8()? as i64,
                        b'\x83' => self.u16()? as i64,
                        _ => self.i32()? as i64,
                    };
                    self.out.extensions.push((at as u64, code));
                    let g =
                        self.global("copyreg._extension_registry", &code.to_string(), "EXT", at)?;
                    self.push(V::Global(g), at)?;
                }
                b'c' => {
                    let module = String::from_utf8_lossy(self.line("GLOBAL module")?).into_owned();
                    let name = String::from_utf8_lossy(self.line("GLOBAL name")?).into_owned();
                    let g = self.global(&module, &name, "GLOBAL", at)?;
                    self.push(V::Global(g), at)?;
                }
                b'\x93' => {
                    let name = self.pop(at, "STACK_GLOBAL")?;
                    let module = self.pop(at, "STACK_GLOBAL")?;
                    match (module, name) {
                        (V::Str(m), V::Str(n)) => {
                            let g = self.global(&m, &n, "STACK_GLOBAL", at)?;
                            self.push(V::Global(g), at)?;
                        }
                        _ => {
                            return malformed(
                                at,
                                "STACK_GLOBAL needs two strings (module and name)",
                            )
                        }
                    }
                }
                b'R' => {
                    let args = self.pop(at, "REDUCE")?;
                    let callable = self.pop(at, "REDUCE")?;
                    let args = self.tuple_items(&args);
                    let r = self.call(&callable, args, "REDUCE", at);
                    self.push(r, at)?;
                }
                b'b' => {
                    let state = self.pop(at, "BUILD")?;
                    let inst = self.top(at, "BUILD")?.clone();
                    if let V::Global(i) = &inst {
                        self.record_use(*i, BUILD_ON_GLOBAL, at);
                    }
                    if let V::Object(o) = &inst {
                        if let Some(i) = o.source {
                            self.record_use(i, "BUILD", at);
                            if self.globals[i].qualified()
                                == "joblib.numpy_pickle.NumpyArrayWrapper"
                            {
                                self.skip_joblib_array(&state, at)?;
                            }
                        }
                    }
                }
                b'i' => {
                    let module = String::from_utf8_lossy(self.line("INST module")?).into_owned();
                    let name = String::from_utf8_lossy(self.line("INST name")?).into_owned();
                    let args = self.pop_mark(at, "INST")?;
                    let g = self.global(&module, &name, "INST", at)?;
                    let r = self.call(&V::Global(g), args, "INST", at);
                    self.push(r, at)?;
                }
                b'o' => {
                    let mut items = self.pop_mark(at, "OBJ")?;
                    if items.is_empty() {
                        return malformed(at, "OBJ without a class");
                    }
                    let cls = items.remove(0);
                    let r = self.call(&cls, items, "OBJ", at);
                    self.push(r, at)?;
                }
                b'\x81' => {
                    let args = self.pop(at, "NEWOBJ")?;
                    let cls = self.pop(at, "NEWOBJ")?;
                    let r = self.call(&cls, self.tuple_items(&args), "NEWOBJ", at);
                    self.push(r, at)?;
                }
                b'\x92' => {
                    let _kwargs = self.pop(at, "NEWOBJ_EX")?;
                    let args = self.pop(at, "NEWOBJ_EX")?;
                    let cls = self.pop(at, "NEWOBJ_EX")?;
                    let r = self.call(&cls, self.tuple_items(&args), "NEWOBJ_EX", at);
                    self.push(r, at)?;
                }
                b'P' => {
                    let l = self.line("PERSID")?.to_vec();
                    self.out.persistent_ids.push(PersistentId {
                        offset: at as u64,
                        storage_type: None,
                        key: Some(String::from_utf8_lossy(&l).into_owned()),
                        numel: None,
                    });
                    self.push(V::Opaque, at)?;
                }
                b'Q' => {
                    let pid = self.pop(at, "BINPERSID")?;
                    let rec = self.persistent_id(&pid, at);
                    self.out.persistent_ids.push(rec);
                    let storage = V::Storage(self.out.persistent_ids.len() - 1);
                    self.push(storage, at)?;
                }
                other => {
                    return malformed(at, format!("invalid opcode 0x{other:02x}"));
                }
            }
        }
    }

    fn new_list(&mut self, mut items: Vec<V>) -> V {
        items.truncate(self.limits.max_container_items);
        self.lists.push(items);
        V::List(self.lists.len() - 1)
    }

    fn new_dict(&mut self) -> V {
        self.dicts.push(Vec::new());
        V::Dict(self.dicts.len() - 1)
    }

    /// A call's arguments: the items of its argument tuple (or list).
    fn tuple_items(&self, v: &V) -> Vec<V> {
        match v {
            V::Tuple(items) => items.to_vec(),
            V::List(i) => self.lists[*i].clone(),
            other => vec![other.clone()],
        }
    }

    /// Byte strings reachable from a loader's arguments (through tuples,
    /// lists and wrapper objects such as `io.BytesIO`), depth-bounded so
    /// self-referencing lists terminate.
    fn collect_bytes(&self, v: &V, depth: usize, out: &mut Vec<Rc<[u8]>>) {
        match v {
            V::Bytes(_) | V::Str(_) => out.extend(bytes_of(v)),
            V::Object(o) => {
                if let Some(b) = &o.bytes {
                    out.push(b.clone());
                } else if depth > 0 {
                    for a in &o.args {
                        self.collect_bytes(a, depth - 1, out);
                    }
                }
            }
            V::Tuple(items) if depth > 0 => {
                for a in items.iter() {
                    self.collect_bytes(a, depth - 1, out);
                }
            }
            V::List(i) if depth > 0 => {
                for a in &self.lists[*i] {
                    self.collect_bytes(a, depth - 1, out);
                }
            }
            _ => {}
        }
    }

    /// SETITEM(S) and DICT: a dict keeps (a bounded number of) its items; on
    /// any other object the opcode calls `__setitem__`.
    fn set_items(&mut self, target: &V, items: Vec<V>, opcode: &'static str, at: usize) {
        match target {
            V::Dict(i) => {
                let cap = self.limits.max_container_items;
                let d = &mut self.dicts[*i];
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    if d.len() >= cap {
                        break;
                    }
                    d.push((k, v));
                }
            }
            other => self.method_call(other, opcode, at),
        }
    }

    /// joblib writes each NumPy array's bytes straight into the stream after
    /// the `NumpyArrayWrapper`'s BUILD (after a padding-length byte and the
    /// padding, when `numpy_array_alignment_bytes` is set); object arrays are
    /// an inline pickle instead. Skip, or analyse, exactly what joblib's
    /// unpickler reads, so the stream after the array is followed too.
    fn skip_joblib_array(&mut self, state: &V, at: usize) -> Step {
        let V::Dict(i) = state else { return Ok(()) };
        let d = &self.dicts[*i];
        let get = |key: &str| {
            d.iter()
                .find(|(k, _)| matches!(k, V::Str(s) if &**s == key))
                .map(|(_, v)| v.clone())
        };
        let dtype = match get("dtype") {
            Some(V::Object(o)) => match o.args.first() {
                Some(V::Str(s)) => s.to_string(),
                _ => return malformed(at, "joblib array wrapper without a readable dtype"),
            },
            _ => return malformed(at, "joblib array wrapper without a dtype"),
        };
        let shape: Option<Vec<u64>> = match get("shape") {
            Some(V::Tuple(t)) => t
                .iter()
                .map(|v| {
                    if let V::Int(n) = v {
                        u64::try_from(*n).ok()
                    } else {
                        None
                    }
                })
                .collect(),
            _ => None,
        };
        let aligned = get("numpy_array_alignment_bytes").is_some();
        let code = dtype.trim_start_matches(['<', '>', '|', '=']);
        if code.starts_with('O') {
            // An inline pickle of the object array: analyse it as part of this stream.
            let sub = analyse_nested(
                &self.data[self.pos..],
                self.limits,
                self.depth + 1,
                self.budget,
                1,
            );
            let consumed = sub.end as usize;
            let failed = sub.error.is_some() && sub.pickles == 0;
            self.out.nested.push(Nested {
                offset: self.pos as u64,
                loader: INLINE_JOBLIB.to_string(),
                analysis: sub,
                not_a_pickle: None,
            });
            if failed {
                return malformed(self.pos, "joblib object array is not a readable pickle");
            }
            self.pos += consumed;
            return Ok(());
        }
        let Some(shape) = shape else {
            return malformed(at, "joblib array wrapper without a shape");
        };
        let kind = code.chars().next().unwrap_or('?');
        let digits: u64 = code[kind.len_utf8().min(code.len())..].parse().unwrap_or(0);
        let itemsize = if kind == 'U' {
            digits.saturating_mul(4)
        } else {
            digits
        };
        if itemsize == 0 {
            return malformed(at, format!("joblib array of unsupported dtype `{dtype}`"));
        }
        if aligned {
            let pad = self.u8()? as usize;
            self.take(pad, "joblib array padding")?;
        }
        let bytes = shape.iter().try_fold(itemsize, |a, &n| a.checked_mul(n));
        let bytes = bytes
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(())
            .or_else(|_| malformed(at, "joblib array size overflows"))?;
        self.take(bytes, "joblib array data")?;
        Ok(())
    }

    /// APPEND(S) on a list, or an `append`/`extend` call on any other object.
    fn extend(&mut self, target: &V, items: Vec<V>, opcode: &'static str, at: usize) {
        match target {
            V::List(i) => {
                let cap = self.limits.max_container_items;
                let l = &mut self.lists[*i];
                let room = cap.saturating_sub(l.len());
                l.extend(items.into_iter().take(room));
            }
            other => self.method_call(other, opcode, at),
        }
    }

    /// SETITEM(S), ADDITEMS, APPEND(S) on an object that is not the builtin
    /// container call its methods (`__setitem__`, `add`, `extend`).
    fn method_call(&mut self, target: &V, opcode: &'static str, at: usize) {
        let data = match target {
            V::Global(i) => {
                self.record_use(*i, ITEMS_ON_GLOBAL, at);
                None
            }
            V::Object(o) => o.source.and_then(|i| {
                self.record_use(i, "BUILD (method call on its result)", at);
                let g = &self.globals[i];
                builds_data(&g.module).then(|| Some(format!("{}.{}", g.module, g.name)))
            }),
            V::Storage(_) => Some(None),
            _ => None,
        };
        if let Some(target) = data {
            if self.out.items_on_data.len() < 64 {
                self.out.items_on_data.push(ItemsOnData {
                    offset: at as u64,
                    opcode,
                    target,
                });
            }
        }
    }

    /// `(storage, storage_offset, size, stride, …)`: the view must stay
    /// within the storage's declared elements.
    fn check_tensor_view(&mut self, args: &[V], at: usize) {
        let [V::Storage(s), V::Int(offset), V::Tuple(size), V::Tuple(stride), ..] = args else {
            return;
        };
        let pid = &self.out.persistent_ids[*s];
        let Some(numel) = pid.numel else {
            return;
        };
        let ints = |t: &[V]| -> Option<Vec<i64>> {
            t.iter()
                .map(|v| match v {
                    V::Int(i) => Some(*i),
                    _ => None,
                })
                .collect()
        };
        let (Some(size), Some(stride)) = (ints(size), ints(stride)) else {
            return;
        };
        let reason = if size.len() != stride.len() {
            Some(format!("{} sizes but {} strides", size.len(), stride.len()))
        } else if *offset < 0 || size.iter().chain(&stride).any(|v| *v < 0) {
            Some("a negative offset, size or stride".to_string())
        } else if size.contains(&0) {
            None
        } else {
            // Index of the last element the view reaches, plus one.
            let end = size
                .iter()
                .zip(&stride)
                .try_fold(*offset + 1, |acc, (n, st)| {
                    (n - 1).checked_mul(*st).and_then(|d| acc.checked_add(d))
                });
            match end {
                Some(end) if end <= numel => None,
                Some(end) => Some(format!(
                    "the view reaches element {end} of a storage of {numel}"
                )),
                None => Some("its extent overflows 64 bits".to_string()),
            }
        };
        if let Some(reason) = reason {
            let rec = TensorOverrun {
                offset: at as u64,
                storage_key: pid.key.clone(),
                numel,
                reason,
            };
            if self.out.tensor_overruns.len() < 64 {
                self.out.tensor_overruns.push(rec);
            }
        }
    }

    fn persistent_id(&self, pid: &V, at: usize) -> PersistentId {
        let mut rec = PersistentId {
            offset: at as u64,
            storage_type: None,
            key: None,
            numel: None,
        };
        if let V::Tuple(items) = pid {
            if let Some(V::Global(g)) = items.get(1) {
                rec.storage_type = Some(self.globals[*g].qualified());
            }
            if let Some(V::Str(k)) = items.get(2) {
                rec.key = Some(k.to_string());
            }
            if let Some(V::Int(n)) = items.get(4) {
                rec.numel = Some(*n);
            }
        }
        rec
    }
}

impl V {
    fn is_opaque(&self) -> bool {
        matches!(self, V::Opaque)
    }
}

/// Modules whose allow-listed globals build tensors, storages, arrays and
/// dtypes: values that are never containers for SETITEM or APPEND.
fn builds_data(module: &str) -> bool {
    matches!(
        module,
        "torch"
            | "torch._utils"
            | "torch._tensor"
            | "torch.storage"
            | "torch.nn.parameter"
            | "numpy"
            | "numpy.core.multiarray"
            | "numpy._core.multiarray"
            | "numpy.core.numeric"
            | "numpy._core.numeric"
    )
}

fn bytes_of(v: &V) -> Option<Rc<[u8]>> {
    match v {
        V::Bytes(b) => Some(b.clone()),
        V::Str(s) => Some(
            s.chars()
                .map(|c| c as u32 as u8)
                .collect::<Vec<u8>>()
                .into(),
        ),
        V::Object(o) => o.bytes.clone(),
        _ => None,
    }
}

/// Whether `b` is the first byte of some opcode.
pub fn is_opcode(b: u8) -> bool {
    matches!(
        b,
        b'I' | b'J'
            | b'K'
            | b'M'
            | b'L'
            | b'S'
            | b'T'
            | b'U'
            | b'B'
            | b'C'
            | b'N'
            | b'V'
            | b'X'
            | b'F'
            | b'G'
            | b']'
            | b'a'
            | b'e'
            | b'l'
            | b')'
            | b't'
            | b'}'
            | b'd'
            | b's'
            | b'u'
            | b'0'
            | b'2'
            | b'('
            | b'1'
            | b'g'
            | b'h'
            | b'j'
            | b'p'
            | b'q'
            | b'r'
            | b'c'
            | b'R'
            | b'b'
            | b'i'
            | b'o'
            | b'P'
            | b'Q'
            | b'.'
            | 0x80..=0x98
    )
}

fn parse_int(l: &[u8]) -> Option<i64> {
    std::str::from_utf8(l).ok()?.trim().parse().ok()
}

fn small_le_int(b: &[u8]) -> V {
    if b.is_empty() {
        return V::Int(0);
    }
    if b.len() <= 8 {
        let mut a = if b[b.len() - 1] & 0x80 != 0 {
            [0xff; 8]
        } else {
            [0; 8]
        };
        a[..b.len()].copy_from_slice(b);
        V::Int(i64::from_le_bytes(a))
    } else {
        V::Opaque
    }
}

fn latin1(b: &[u8]) -> Rc<str> {
    b.iter().map(|&c| c as char).collect::<String>().into()
}

/// Python 2 `repr()` of a str, as protocol 0's STRING writes it.
fn unquote_py2_string(l: &[u8]) -> Option<Vec<u8>> {
    let q = *l.first()?;
    if l.len() < 2 || (q != b'\'' && q != b'"') || *l.last()? != q {
        return None;
    }
    let inner = &l[1..l.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            let c = inner[i + 1];
            i += 2;
            match c {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'\\' => out.push(b'\\'),
                b'\'' => out.push(b'\''),
                b'"' => out.push(b'"'),
                b'x' if i + 2 <= inner.len() => {
                    let h = std::str::from_utf8(&inner[i..i + 2])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())?;
                    out.push(h);
                    i += 2;
                }
                b'0'..=b'7' => {
                    let mut v = (c - b'0') as u32;
                    let mut k = 0;
                    while k < 2 && i < inner.len() && (b'0'..=b'7').contains(&inner[i]) {
                        v = v * 8 + (inner[i] - b'0') as u32;
                        i += 1;
                        k += 1;
                    }
                    out.push(v as u8);
                }
                other => {
                    out.push(b'\\');
                    out.push(other);
                }
            }
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `raw-unicode-escape` decoding: `\uXXXX` and `\UXXXXXXXX`, else latin-1.
fn raw_unicode_escape(l: &[u8]) -> String {
    let mut out = String::with_capacity(l.len());
    let mut i = 0;
    while i < l.len() {
        if l[i] == b'\\' && i + 1 < l.len() && (l[i + 1] == b'u' || l[i + 1] == b'U') {
            let n = if l[i + 1] == b'u' { 4 } else { 8 };
            if let Some(c) = l
                .get(i + 2..i + 2 + n)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
            {
                out.push(c);
                i += 2 + n;
                continue;
            }
        }
        out.push(l[i] as char);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The memo's split into in-order and out-of-order keys is invisible:
        /// it answers like one map under any sequence of writes and clears.
        #[test]
        fn memo_behaves_like_a_map(
            ops in prop::collection::vec((0u64..12, any::<bool>(), 0i64..100), 0..200),
        ) {
            let mut memo = Memo::default();
            let mut model: HashMap<u64, i64> = HashMap::new();
            for (key, clear, value) in ops {
                if clear && value % 17 == 0 {
                    memo.clear();
                    model.clear();
                    continue;
                }
                // Keys past 8 are rare in order: exercise both halves.
                let key = if key > 8 { key * 1_000 } else { key };
                memo.insert(key, V::Int(value));
                model.insert(key, value);
                prop_assert_eq!(memo.len(), model.len());
                for probe in (0..12).chain([9_000, 10_000, 11_000, u64::MAX]) {
                    let got = match memo.get(probe) {
                        Some(V::Int(v)) => Some(*v),
                        Some(_) => unreachable!("only ints are written"),
                        None => None,
                    };
                    prop_assert_eq!(got, model.get(&probe).copied());
                }
            }
        }
    }

    #[test]
    fn memo_keys_written_out_of_order_are_found() {
        // PROTO 2; 'os' PUT as key 5, 'system' as key 0, then key 1 and key 5
        // again (5 is then in order), GET 5 and GET 0 for STACK_GLOBAL, REDUCE.
        let mut p = b"\x80\x02".to_vec();
        p.extend_from_slice(b"X\x02\x00\x00\x00osq\x05"); // BINUNICODE 'os', BINPUT 5
        p.extend_from_slice(b"X\x06\x00\x00\x00systemq\x00"); // 'system', BINPUT 0
        p.extend_from_slice(b"0h\x05q\x01q\x02q\x03q\x04q\x050"); // POP, GET 5, PUT 1..5, POP
        p.extend_from_slice(b"h\x05h\x00\x93)R."); // GET 5, GET 0, STACK_GLOBAL, (), REDUCE
        let a = analyse(&p, &Limits::default());
        assert_eq!(names(&a), ["os.system"]);
        assert!(a.error.is_none(), "{:?}", a.error);
    }

    fn names(a: &Analysis) -> Vec<String> {
        a.globals.iter().map(|g| g.qualified()).collect()
    }

    #[test]
    fn protocol_0_reduce_is_seen_as_a_call() {
        // pickle.dumps of an object whose __reduce__ is (os.system, ('id',)), protocol 0
        let p = b"cposix\nsystem\np0\n(Vid\np1\ntp2\nRp3\n.";
        let a = analyse(p, &Limits::default());
        assert_eq!(names(&a), ["posix.system"]);
        assert_eq!(
            a.globals[0].uses,
            vec![Use {
                opcode: "REDUCE",
                offset: 29
            }]
        );
        assert!(a.error.is_none());
        assert_eq!(a.pickles, 1);
    }

    #[test]
    fn stack_global_names_come_from_the_memo() {
        // PROTO 4, 'os' memoised, POP, then GET it back for STACK_GLOBAL.
        let mut p = vec![0x80, 4];
        p.extend_from_slice(b"\x8c\x02os\x94"); // SHORT_BINUNICODE 'os', MEMOIZE (memo 0)
        p.push(b'0'); // POP: the memo still holds it
        p.extend_from_slice(b"h\x00"); // BINGET 0
        p.extend_from_slice(b"\x8c\x06system\x93"); // STACK_GLOBAL
        p.extend_from_slice(b"\x8c\x02id\x85R."); // ('id',) REDUCE STOP
        let a = analyse(&p, &Limits::default());
        assert_eq!(names(&a), ["os.system"]);
        assert!(a.globals[0].is_called());
    }

    #[test]
    fn findings_before_an_error_are_kept() {
        let p = b"cos\nsystem\n(S'id'\ntR\xff garbage";
        let a = analyse(p, &Limits::default());
        assert_eq!(names(&a), ["os.system"]);
        assert!(a.globals[0].is_called());
        let e = a.error.unwrap();
        assert!(e.message.contains("invalid opcode 0xff"), "{}", e.message);
    }

    #[test]
    fn getattr_on_a_global_with_a_constant_name_is_that_attribute() {
        // getattr(zoneinfo.ZoneInfo, '_unpickle')('UTC', 1), as Python pickles class methods.
        let p = b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x08zoneinfo\x8c\x08ZoneInfo\x93\x8c\x09_unpickle\x86R\x8c\x03UTC\x4b\x01\x86R.";
        let a = analyse(p, &Limits::default());
        assert_eq!(
            names(&a),
            [
                "builtins.getattr",
                "zoneinfo.ZoneInfo",
                "zoneinfo.ZoneInfo._unpickle"
            ]
        );
        assert_eq!(a.globals[0].uses[0].opcode, GETATTR_RESOLVED);
        assert!(!a.globals[1].is_called());
        assert_eq!(a.globals[2].opcode, "getattr");
        assert_eq!(a.globals[2].uses[0].opcode, "REDUCE");
        // A computed name stays an ordinary call of getattr.
        let p = b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x02os\x8c\x04path\x93\x8c\x08builtins\x8c\x03str\x93)R\x86R.";
        let a = analyse(p, &Limits::default());
        assert_eq!(a.globals[0].uses[0].opcode, "REDUCE");
    }

    #[test]
    fn build_and_setitem_on_a_global_itself_are_recorded() {
        // BUILD on collections.OrderedDict itself, then SETITEM on os.environ.
        let p = b"\x80\x02ccollections\nOrderedDict\nN}\x86b0cos\nenviron\nX\x01\x00\x00\x00aX\x01\x00\x00\x00bs.";
        let a = analyse(p, &Limits::default());
        assert_eq!(names(&a), ["collections.OrderedDict", "os.environ"]);
        assert_eq!(a.globals[0].uses[0].opcode, BUILD_ON_GLOBAL);
        assert_eq!(a.globals[1].uses[0].opcode, ITEMS_ON_GLOBAL);
    }

    #[test]
    fn distinct_globals_stop_at_their_limit() {
        // 300 module names × 1 name, paired from the memo: a new global every 6 bytes.
        let mut p = vec![0x80, 4];
        for i in 0..300 {
            let m = format!("m{i:03}");
            p.push(0x8c);
            p.push(m.len() as u8);
            p.extend_from_slice(m.as_bytes());
            p.push(0x94);
        }
        p.extend_from_slice(b"\x8c\x01f\x94");
        for i in 0..300u32 {
            p.push(b'j');
            p.extend_from_slice(&i.to_le_bytes());
            p.extend_from_slice(b"j\x2c\x01\x00\x00\x930");
        }
        p.extend_from_slice(b"N.");
        let limits = Limits {
            max_globals: 100,
            ..Limits::default()
        };
        let a = analyse(&p, &limits);
        assert_eq!(a.globals.len(), 100);
        assert!(a.error.as_ref().is_some_and(|e| e.limit), "{:?}", a.error);
        let limits = Limits {
            max_global_name_bytes: 50,
            ..Limits::default()
        };
        let a = analyse(&p, &limits);
        assert_eq!(a.globals.len(), 10, "5 bytes a global");
        assert!(a.error.as_ref().is_some_and(|e| e.limit));
    }

    #[test]
    fn uses_of_one_global_are_bounded() {
        let mut p = b"\x80\x04\x8c\x05mypkg\x8c\x01f\x93\x94".to_vec();
        for _ in 0..1000 {
            p.extend_from_slice(b"h\x00)R0");
        }
        p.extend_from_slice(b"N.");
        let a = analyse(&p, &Limits::default());
        assert_eq!(a.globals[0].uses.len(), USES_KEPT_PER_OPCODE);
        assert_eq!(
            a.globals[0].uses_dropped,
            1000 - USES_KEPT_PER_OPCODE as u64
        );
    }

    #[test]
    fn container_opcodes_on_tensors_arrays_and_storages_are_recorded() {
        let on = |body: &str| analyse(body.as_bytes(), &Limits::default()).items_on_data;
        // Containers built by allow-listed globals take their items.
        assert!(on("ccollections\nOrderedDict\n)R(S'k'\nI1\nu.").is_empty());
        assert!(on("ccollections\ndeque\n)R(I1\ne.").is_empty());
        assert!(on("(dS'k'\nI1\ns.").is_empty());
        // A rebuilt NumPy array, a dtype and a storage do not.
        let array = on("cnumpy.core.multiarray\n_reconstruct\n(tR(I0\nI1\nu.");
        assert_eq!(array.len(), 1);
        assert_eq!(array[0].opcode, "SETITEMS");
        assert_eq!(
            array[0].target.as_deref(),
            Some("numpy.core.multiarray._reconstruct")
        );
        assert_eq!(array[0].offset, 46);
        assert_eq!(on("cnumpy\ndtype\n(tRI0\na.")[0].opcode, "APPEND");
        let storage = on("(S'storage'\nctorch\nFloatStorage\nS'0'\nS'cpu'\nI6\ntQI1\nI2\ns.");
        assert_eq!(storage.len(), 1);
        assert_eq!(storage[0].target, None);
    }

    #[test]
    fn tensor_views_must_fit_their_storage() {
        // _rebuild_tensor_v2(persistent('storage', FloatStorage, '0', 'cpu', 6), offset, size, stride, …)
        let tensor = |offset: &str, size: &str, stride: &str| {
            format!(
                "ctorch._utils\n_rebuild_tensor_v2\n((S'storage'\nctorch\nFloatStorage\nS'0'\nS'cpu'\nI6\ntQI{offset}\n({size}t({stride}tI00\n(dtR."
            )
        };
        let overruns = |offset: &str, size: &str, stride: &str| {
            analyse(tensor(offset, size, stride).as_bytes(), &Limits::default()).tensor_overruns
        };
        assert!(overruns("0", "I6\n", "I1\n").is_empty());
        assert!(overruns("3", "I3\n", "I1\n").is_empty());
        assert!(overruns("0", "I2\nI3\n", "I3\nI1\n").is_empty());
        assert!(
            overruns("9", "I0\n", "I1\n").is_empty(),
            "empty tensors reach nothing"
        );
        let o = overruns("4", "I3\n", "I1\n");
        assert_eq!(o.len(), 1);
        assert!(
            o[0].reason.contains("element 7 of a storage of 6"),
            "{}",
            o[0].reason
        );
        assert_eq!(o[0].storage_key.as_deref(), Some("0"));
        assert_eq!(overruns("0", "I2\n", "I-1\n").len(), 1);
        assert_eq!(overruns("0", "I2\nI2\n", "I1\n").len(), 1);
        assert_eq!(
            overruns("0", "I2\n", "I4611686018427387904\n").len(),
            1,
            "overflow"
        );
    }

    #[test]
    fn stacked_pickles_are_all_analysed() {
        let mut p = b"\x80\x02}q\x00.".to_vec(); // a harmless dict
        p.extend_from_slice(b"cbuiltins\neval\n(S'1'\ntR.");
        let a = analyse(&p, &Limits::default());
        assert_eq!(a.pickles, 2);
        assert_eq!(names(&a), ["builtins.eval"]);
    }

    #[test]
    fn nested_pickles_in_bytes_are_followed() {
        let inner = b"cos\nsystem\n(S'id'\ntR.";
        let mut p = b"\x80\x03cpickle\nloads\nC".to_vec();
        p.push(inner.len() as u8);
        p.extend_from_slice(inner);
        p.extend_from_slice(b"\x85R.");
        let a = analyse(&p, &Limits::default());
        assert_eq!(names(&a), ["pickle.loads"]);
        assert_eq!(a.nested.len(), 1);
        assert_eq!(names(&a.nested[0].analysis), ["os.system"]);
        let all = a.all_globals();
        assert_eq!(all[1].0, vec!["pickle.loads at offset 40".to_string()]);
    }

    #[test]
    fn memo_bombs_hit_limits_not_memory() {
        // A list that appends itself through the memo a million times.
        let mut p = b"\x80\x04]\x94(".to_vec();
        for _ in 0..100_000 {
            p.extend_from_slice(b"h\x00");
        }
        p.extend_from_slice(b"e.");
        let limits = Limits {
            max_stack: 50_000,
            ..Limits::default()
        };
        let a = analyse(&p, &limits);
        assert!(a.error.as_ref().is_some_and(|e| e.limit), "{:?}", a.error);
    }

    #[test]
    fn build_on_a_constructed_object_is_a_setstate_call() {
        // NEWOBJ of evil.Cls then BUILD with a state dict.
        let p = b"\x80\x02cevil\nCls\n)\x81}b.";
        let a = analyse(p, &Limits::default());
        let uses: Vec<&str> = a.globals[0].uses.iter().map(|u| u.opcode).collect();
        assert_eq!(uses, ["NEWOBJ", "BUILD"]);
    }
}
