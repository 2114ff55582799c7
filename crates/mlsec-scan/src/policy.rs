//! What a global is allowed to be. Default-deny: a global is safe only when
//! it is on the allow-list. The deny-list never lets anything through; it
//! only says how bad a global is and why. Well-known libraries' classes that
//! are not on the allow-list are reported at low severity, with a reason.

use mlsec_core::Severity;
use serde::Deserialize;

/// How a global is classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Safe to construct: it only rebuilds data.
    Allowed,
    /// On the deny-list: `category` says what it can do.
    Denied {
        severity: Severity,
        category: String,
        resolved: String,
    },
    /// A well-known library's class: runs that library's code on load.
    Known { ecosystem: String },
    /// Not on any list: default-deny.
    Unknown,
}

/// A name pattern: `a.b.c` exactly, or `a.b.*` for everything under `a.b`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(String);

impl Pattern {
    fn matches(&self, qualified: &str) -> bool {
        match self.0.strip_suffix(".*") {
            Some(prefix) => {
                qualified == prefix
                    || qualified
                        .strip_prefix(prefix)
                        .is_some_and(|r| r.starts_with('.'))
            }
            None => self.0 == qualified,
        }
    }
}

/// Built-in allow-list: constructors that only rebuild data (PyTorch's
/// `weights_only` unpickler set, NumPy array reconstruction under both the
/// 1.x `numpy.core` and 2.x `numpy._core` names, data-building builtins).
const ALLOW: &[&str] = &[
    // PyTorch tensors, parameters and storages
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_sparse_csr_tensor",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._tensor._rebuild_from_type_v2",
    "torch.nn.parameter.Parameter",
    "torch.Size",
    "torch.device",
    "torch.serialization._get_layout",
    "torch.storage.UntypedStorage",
    "torch.UntypedStorage",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    "torch.ComplexFloatStorage",
    "torch.ComplexDoubleStorage",
    "torch.QUInt8Storage",
    "torch.QInt8Storage",
    "torch.QInt32Storage",
    "torch.QUInt4x2Storage",
    "torch.QUInt2x4Storage",
    "torch.float32",
    "torch.float",
    "torch.float64",
    "torch.double",
    "torch.float16",
    "torch.half",
    "torch.bfloat16",
    "torch.int64",
    "torch.long",
    "torch.int32",
    "torch.int",
    "torch.int16",
    "torch.short",
    "torch.int8",
    "torch.uint8",
    "torch.bool",
    "torch.complex64",
    "torch.complex128",
    "torch.float8_e4m3fn",
    "torch.float8_e5m2",
    "torch.strided",
    "torch.sparse_coo",
    "torch.sparse_csr",
    "torch.sparse_csc",
    "torch.sparse_bsr",
    "torch.sparse_bsc",
    "torch.per_tensor_affine",
    "torch.per_channel_affine",
    "torch.per_channel_affine_float_qparams",
    "torch.contiguous_format",
    "torch.channels_last",
    "torch.preserve_format",
    // NumPy arrays, scalars and dtypes (1.x and 2.x module names)
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.dtypes.*",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    // TorchScript archives' pickles (data.pkl, constants.pkl, *.debug_pkl):
    // helpers that only build lists, tensors and type tags
    "torch.jit._pickle.build_intlist",
    "torch.jit._pickle.build_tensorlist",
    "torch.jit._pickle.build_doublelist",
    "torch.jit._pickle.build_boollist",
    "torch.jit._pickle.build_tensor_from_id",
    "torch.jit._pickle.restore_type_tag",
    // joblib's array container: its raw bytes follow in the stream (see pickle.rs)
    "joblib.numpy_pickle.NumpyArrayWrapper",
    // Containers and plain data
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "collections.deque",
    "builtins.set",
    "builtins.frozenset",
    "builtins.list",
    "builtins.dict",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.complex",
    "builtins.bool",
    "builtins.bytes",
    "builtins.bytearray",
    "builtins.slice",
    "builtins.range",
    "builtins.object",
    "_codecs.encode",
    "copyreg._reconstructor",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    // Path objects: constructing one touches no file (their methods do,
    // and `pathlib.Path.write_text`-style dotted names stay denied).
    "pathlib.PurePath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "pathlib.Path",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib._local.PurePath",
    "pathlib._local.PurePosixPath",
    "pathlib._local.PureWindowsPath",
    "pathlib._local.Path",
    "pathlib._local.PosixPath",
    "pathlib._local.WindowsPath",
];

/// Deny-list: (pattern, severity, what it can do). Explains; never allows.
const DENY: &[(&str, Severity, &str)] = &[
    (
        "os.*",
        Severity::Critical,
        "runs commands or touches the file system (os)",
    ),
    (
        "posix.*",
        Severity::Critical,
        "runs commands (posix, the module behind os)",
    ),
    (
        "nt.*",
        Severity::Critical,
        "runs commands (nt, the module behind os on Windows)",
    ),
    (
        "subprocess.*",
        Severity::Critical,
        "runs commands (subprocess)",
    ),
    ("_posixsubprocess.*", Severity::Critical, "runs commands"),
    ("pty.*", Severity::Critical, "spawns processes (pty)"),
    ("commands.*", Severity::Critical, "runs shell commands"),
    ("popen2.*", Severity::Critical, "runs shell commands"),
    ("platform.popen", Severity::Critical, "runs shell commands"),
    (
        "asyncio.*",
        Severity::Critical,
        "can spawn subprocesses (asyncio)",
    ),
    ("multiprocessing.*", Severity::Critical, "starts processes"),
    ("builtins.eval", Severity::Critical, "evaluates Python code"),
    ("builtins.exec", Severity::Critical, "executes Python code"),
    (
        "builtins.compile",
        Severity::Critical,
        "compiles Python code",
    ),
    (
        "builtins.__import__",
        Severity::Critical,
        "imports arbitrary modules",
    ),
    (
        "builtins.getattr",
        Severity::Critical,
        "reaches any attribute, e.g. getattr(os, 'system')",
    ),
    (
        "builtins.setattr",
        Severity::Critical,
        "rewrites attributes of live objects",
    ),
    (
        "builtins.delattr",
        Severity::Critical,
        "deletes attributes of live objects",
    ),
    (
        "builtins.globals",
        Severity::Critical,
        "exposes the interpreter's globals",
    ),
    (
        "builtins.locals",
        Severity::Critical,
        "exposes the interpreter's locals",
    ),
    (
        "builtins.vars",
        Severity::Critical,
        "exposes object namespaces",
    ),
    (
        "builtins.breakpoint",
        Severity::Critical,
        "starts a debugger",
    ),
    ("builtins.open", Severity::High, "opens files"),
    ("builtins.input", Severity::Medium, "reads standard input"),
    ("builtins.print", Severity::Low, "writes to standard output"),
    (
        "sys.*",
        Severity::Critical,
        "manipulates the interpreter (sys)",
    ),
    (
        "importlib.*",
        Severity::Critical,
        "imports arbitrary modules",
    ),
    ("imp.*", Severity::Critical, "imports arbitrary modules"),
    ("pkgutil.*", Severity::Critical, "imports arbitrary modules"),
    (
        "zipimport.*",
        Severity::Critical,
        "imports code from archives",
    ),
    ("runpy.*", Severity::Critical, "runs Python modules"),
    (
        "code.*",
        Severity::Critical,
        "runs Python code (interactive interpreter)",
    ),
    ("codeop.*", Severity::Critical, "compiles Python code"),
    (
        "types.*",
        Severity::Critical,
        "builds functions and code objects",
    ),
    ("marshal.*", Severity::Critical, "loads code objects"),
    ("ctypes.*", Severity::Critical, "calls native code"),
    ("_ctypes.*", Severity::Critical, "calls native code"),
    ("cffi.*", Severity::Critical, "calls native code"),
    (
        "operator.attrgetter",
        Severity::Critical,
        "a gadget that reaches any attribute",
    ),
    (
        "operator.methodcaller",
        Severity::Critical,
        "a gadget that calls any method",
    ),
    (
        "operator.itemgetter",
        Severity::High,
        "a gadget for indirect access",
    ),
    (
        "functools.partial",
        Severity::Critical,
        "a gadget that binds and calls any callable",
    ),
    (
        "functools.reduce",
        Severity::Critical,
        "a gadget that calls any callable",
    ),
    (
        "_functools.*",
        Severity::Critical,
        "a gadget that binds and calls any callable",
    ),
    (
        "itertools.starmap",
        Severity::High,
        "a gadget that calls any callable",
    ),
    (
        "builtins.map",
        Severity::High,
        "a gadget that calls any callable",
    ),
    (
        "builtins.filter",
        Severity::High,
        "a gadget that calls any callable",
    ),
    (
        "pickle.*",
        Severity::Critical,
        "deserialises another pickle",
    ),
    (
        "_pickle.*",
        Severity::Critical,
        "deserialises another pickle",
    ),
    (
        "cPickle.*",
        Severity::Critical,
        "deserialises another pickle",
    ),
    ("dill.*", Severity::Critical, "deserialises code"),
    ("cloudpickle.*", Severity::Critical, "deserialises code"),
    ("shelve.*", Severity::High, "opens pickle databases"),
    ("joblib.load", Severity::High, "deserialises another pickle"),
    (
        "torch.load",
        Severity::High,
        "deserialises another checkpoint",
    ),
    (
        "torch.serialization.load",
        Severity::High,
        "deserialises another checkpoint",
    ),
    (
        "torch.storage._load_from_bytes",
        Severity::High,
        "deserialises another checkpoint",
    ),
    (
        "torch.jit.*",
        Severity::High,
        "loads or compiles TorchScript",
    ),
    ("torch.hub.*", Severity::High, "downloads and runs code"),
    ("torch._dynamo.*", Severity::High, "compiles code"),
    ("torch._inductor.*", Severity::High, "compiles code"),
    ("numpy.load", Severity::High, "deserialises another pickle"),
    (
        "numpy.loads",
        Severity::Critical,
        "deserialises another pickle",
    ),
    (
        "numpy.core.numeric.loads",
        Severity::Critical,
        "deserialises another pickle",
    ),
    (
        "numpy.testing.*",
        Severity::Critical,
        "runstring executes code (numpy.testing)",
    ),
    ("numpy.f2py.*", Severity::Critical, "compiles and runs code"),
    (
        "numpy.distutils.*",
        Severity::Critical,
        "runs build commands",
    ),
    (
        "pandas.read_pickle",
        Severity::Critical,
        "deserialises another pickle",
    ),
    (
        "pandas.io.pickle.*",
        Severity::Critical,
        "deserialises another pickle",
    ),
    (
        "pip.*",
        Severity::Critical,
        "installs packages, running their code",
    ),
    ("_pip.*", Severity::Critical, "installs packages"),
    ("ensurepip.*", Severity::Critical, "installs packages"),
    ("setuptools.*", Severity::Critical, "runs build commands"),
    ("distutils.*", Severity::Critical, "runs build commands"),
    (
        "timeit.*",
        Severity::Critical,
        "executes Python code (timeit)",
    ),
    (
        "profile.*",
        Severity::Critical,
        "executes Python code (profile.run)",
    ),
    (
        "cProfile.*",
        Severity::Critical,
        "executes Python code (cProfile.run)",
    ),
    (
        "pdb.*",
        Severity::Critical,
        "executes Python code (pdb.run)",
    ),
    ("bdb.*", Severity::Critical, "executes Python code"),
    ("trace.*", Severity::Critical, "executes Python code"),
    ("doctest.*", Severity::Critical, "executes Python code"),
    (
        "pydoc.*",
        Severity::Critical,
        "runs shell commands (pydoc.pipepager)",
    ),
    ("idlelib.*", Severity::Critical, "executes Python code"),
    ("lib2to3.*", Severity::High, "rewrites source files"),
    ("IPython.*", Severity::Critical, "executes Python code"),
    (
        "jinja2.*",
        Severity::High,
        "renders templates that can run code",
    ),
    (
        "logging.config.*",
        Severity::Critical,
        "evaluates configuration",
    ),
    ("webbrowser.*", Severity::High, "opens URLs in a browser"),
    ("antigravity.*", Severity::High, "opens a browser on import"),
    ("this.*", Severity::Low, "prints on import"),
    ("shutil.*", Severity::High, "copies, moves or deletes files"),
    ("tempfile.*", Severity::Medium, "creates files"),
    ("pathlib.*", Severity::High, "reads and writes files"),
    ("io.open", Severity::High, "opens files"),
    ("io.FileIO", Severity::High, "opens files"),
    ("_io.open", Severity::High, "opens files"),
    ("_io.FileIO", Severity::High, "opens files"),
    ("codecs.open", Severity::High, "opens files"),
    ("glob.*", Severity::Medium, "lists files"),
    ("fileinput.*", Severity::High, "reads files"),
    ("linecache.*", Severity::Medium, "reads files"),
    ("socket.*", Severity::High, "opens network connections"),
    ("_socket.*", Severity::High, "opens network connections"),
    ("ssl.*", Severity::High, "opens network connections"),
    ("http.*", Severity::High, "makes HTTP requests"),
    ("urllib.*", Severity::High, "makes network requests"),
    ("urllib2.*", Severity::High, "makes network requests"),
    ("urllib3.*", Severity::High, "makes network requests"),
    ("httplib.*", Severity::High, "makes HTTP requests"),
    ("requests.*", Severity::High, "makes HTTP requests"),
    ("httpx.*", Severity::High, "makes HTTP requests"),
    ("aiohttp.*", Severity::High, "makes HTTP requests"),
    ("ftplib.*", Severity::High, "makes network requests"),
    ("smtplib.*", Severity::High, "sends e-mail"),
    ("telnetlib.*", Severity::High, "makes network connections"),
    ("xmlrpc.*", Severity::High, "makes network requests"),
    ("paramiko.*", Severity::High, "opens SSH connections"),
    ("signal.*", Severity::Medium, "changes signal handlers"),
    ("threading.*", Severity::Medium, "starts threads"),
    ("_thread.*", Severity::Medium, "starts threads"),
    ("gc.*", Severity::Medium, "inspects live objects"),
    (
        "builtins.*",
        Severity::High,
        "a builtin that is not a plain data constructor",
    ),
    (
        "copyreg._extension_registry.*",
        Severity::High,
        "an extension-registry code whose global cannot be resolved statically",
    ),
];

/// Python 2 module names that Python 3's unpickler maps to their new homes
/// (`_compat_pickle.IMPORT_MAPPING`, with `fix_imports`, protocols 0–2).
const PY2_MODULES: &[(&str, &str)] = &[
    ("__builtin__", "builtins"),
    ("copy_reg", "copyreg"),
    ("cPickle", "pickle"),
    ("exceptions", "builtins"),
    ("urllib2", "urllib.request"),
    ("urlparse", "urllib.parse"),
    ("httplib", "http.client"),
    ("commands", "subprocess"),
    ("thread", "_thread"),
    ("dummy_thread", "_dummy_thread"),
    ("Queue", "queue"),
    ("StringIO", "io"),
    ("cStringIO", "io"),
    ("SocketServer", "socketserver"),
    ("BaseHTTPServer", "http.server"),
    ("SimpleHTTPServer", "http.server"),
    ("CGIHTTPServer", "http.server"),
    ("SimpleXMLRPCServer", "xmlrpc.server"),
    ("DocXMLRPCServer", "xmlrpc.server"),
    ("xmlrpclib", "xmlrpc.client"),
    ("cookielib", "http.cookiejar"),
    ("Cookie", "http.cookies"),
    ("ConfigParser", "configparser"),
    ("anydbm", "dbm"),
    ("whichdb", "dbm"),
    ("dbhash", "dbm.bsd"),
    ("dumbdbm", "dbm.dumb"),
    ("gdbm", "dbm.gnu"),
    ("robotparser", "urllib.robotparser"),
    ("repr", "reprlib"),
    ("_winreg", "winreg"),
    ("_abcoll", "collections.abc"),
    ("UserDict", "collections"),
    ("UserList", "collections"),
    ("UserString", "collections"),
    ("Tkinter", "tkinter"),
];

/// A global as (module, name).
type Global = (&'static str, &'static str);

/// Python 2 (module, name) pairs Python 3's unpickler maps one by one
/// (`_compat_pickle.NAME_MAPPING`, the exceptions aside, which keep their
/// names): `__builtin__.xrange` is `range`, `__builtin__.reduce` is
/// `functools.reduce`.
const PY2_NAMES: &[(Global, Global)] = &[
    (("__builtin__", "xrange"), ("builtins", "range")),
    (("__builtin__", "reduce"), ("functools", "reduce")),
    (("__builtin__", "intern"), ("sys", "intern")),
    (("__builtin__", "unichr"), ("builtins", "chr")),
    (("__builtin__", "unicode"), ("builtins", "str")),
    (("__builtin__", "long"), ("builtins", "int")),
    (("__builtin__", "basestring"), ("builtins", "str")),
    (("exceptions", "StandardError"), ("builtins", "Exception")),
    (("itertools", "izip"), ("builtins", "zip")),
    (("itertools", "imap"), ("builtins", "map")),
    (("itertools", "ifilter"), ("builtins", "filter")),
    (("itertools", "ifilterfalse"), ("itertools", "filterfalse")),
    (("itertools", "izip_longest"), ("itertools", "zip_longest")),
    (
        ("UserDict", "IterableUserDict"),
        ("collections", "UserDict"),
    ),
    (("UserDict", "UserDict"), ("collections", "UserDict")),
    (("UserList", "UserList"), ("collections", "UserList")),
    (("UserString", "UserString"), ("collections", "UserString")),
    (("whichdb", "whichdb"), ("dbm", "whichdb")),
    (("_socket", "fromfd"), ("socket", "fromfd")),
    (("socket", "_socketobject"), ("socket", "SocketType")),
    (
        ("_multiprocessing", "Connection"),
        ("multiprocessing.connection", "Connection"),
    ),
    (
        ("multiprocessing.process", "Process"),
        ("multiprocessing.context", "Process"),
    ),
    (
        ("multiprocessing.forking", "Popen"),
        ("multiprocessing.popen_fork", "Popen"),
    ),
    (
        ("urllib", "ContentTooShortError"),
        ("urllib.error", "ContentTooShortError"),
    ),
    (("urllib", "getproxies"), ("urllib.request", "getproxies")),
    (
        ("urllib", "pathname2url"),
        ("urllib.request", "pathname2url"),
    ),
    (("urllib", "quote_plus"), ("urllib.parse", "quote_plus")),
    (("urllib", "quote"), ("urllib.parse", "quote")),
    (("urllib", "unquote_plus"), ("urllib.parse", "unquote_plus")),
    (("urllib", "unquote"), ("urllib.parse", "unquote")),
    (
        ("urllib", "url2pathname"),
        ("urllib.request", "url2pathname"),
    ),
    (("urllib", "urlcleanup"), ("urllib.request", "urlcleanup")),
    (("urllib", "urlencode"), ("urllib.parse", "urlencode")),
    (("urllib", "urlopen"), ("urllib.request", "urlopen")),
    (("urllib", "urlretrieve"), ("urllib.request", "urlretrieve")),
    (("urllib2", "HTTPError"), ("urllib.error", "HTTPError")),
    (("urllib2", "URLError"), ("urllib.error", "URLError")),
];

/// Known ecosystems: not allowed (their classes run library code on load)
/// but expected in some model files, so reported low rather than high.
const KNOWN: &[(&str, &str)] = &[
    (
        "__torch__.*",
        "TorchScript (classes compiled from the archive's code/ folder by torch.jit.load)",
    ),
    ("sklearn.*", "scikit-learn"),
    ("scipy.*", "SciPy"),
    ("pandas.*", "pandas"),
    ("xgboost.*", "XGBoost"),
    ("lightgbm.*", "LightGBM"),
    ("catboost.*", "CatBoost"),
    ("joblib.numpy_pickle.*", "joblib"),
    ("joblib._store_backends.*", "joblib"),
    ("torch.nn.*", "PyTorch modules (a whole-model pickle)"),
    ("torch.optim.*", "PyTorch optimizers"),
    ("torch.*", "PyTorch"),
    ("transformers.*", "Hugging Face transformers"),
    ("tokenizers.*", "Hugging Face tokenizers"),
    ("numpy.*", "NumPy"),
    ("collections.*", "Python collections"),
    ("re._compile", "Python regular expressions"),
    ("re.compile", "Python regular expressions"),
    ("enum.*", "Python enums"),
    ("argparse.Namespace", "argparse"),
];

/// A scan policy: the built-in lists plus what the user's TOML adds.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: Vec<Pattern>,
    deny: Vec<(Pattern, Severity, String)>,
    known: Vec<(Pattern, String)>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow: ALLOW.iter().map(|p| Pattern(p.to_string())).collect(),
            deny: DENY
                .iter()
                .map(|(p, s, c)| (Pattern(p.to_string()), *s, c.to_string()))
                .collect(),
            known: KNOWN
                .iter()
                .map(|(p, e)| (Pattern(p.to_string()), e.to_string()))
                .collect(),
        }
    }
}

/// The policy file (`--policy FILE`), TOML:
///
/// ```toml
/// [allow]
/// globals = ["mypkg.layers.Dense", "mypkg.blocks.*"]
///
/// [known]
/// "mycorp.*" = "our own training code"
///
/// [deny]
/// critical = ["mypkg.debug.run_shell"]
/// high = []
/// medium = []
/// low = []
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow: AllowSection,
    #[serde(default)]
    known: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    deny: DenySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowSection {
    #[serde(default)]
    globals: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenySection {
    #[serde(default)]
    critical: Vec<String>,
    #[serde(default)]
    high: Vec<String>,
    #[serde(default)]
    medium: Vec<String>,
    #[serde(default)]
    low: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl Policy {
    /// The built-in policy extended by a TOML policy file's contents. User
    /// deny entries are checked before the built-in ones; user allow entries
    /// can allow what the built-in deny-list explains (their call).
    pub fn with_toml(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text)
            .map_err(|e| PolicyError(format!("invalid policy: {}", e.to_string().trim())))?;
        let mut policy = Policy::default();
        let check = |p: &str| -> Result<Pattern, PolicyError> {
            let body = p.strip_suffix(".*").unwrap_or(p);
            if body.is_empty()
                || body.split('.').any(|part| {
                    part.is_empty() || !part.chars().all(|c| c.is_alphanumeric() || c == '_')
                })
            {
                return Err(PolicyError(format!(
                    "invalid policy: `{p}` is not a dotted Python name (optionally ending in .*)"
                )));
            }
            Ok(Pattern(p.to_string()))
        };
        for g in &file.allow.globals {
            policy.allow.push(check(g)?);
        }
        let mut user_deny = Vec::new();
        for (list, sev) in [
            (&file.deny.critical, Severity::Critical),
            (&file.deny.high, Severity::High),
            (&file.deny.medium, Severity::Medium),
            (&file.deny.low, Severity::Low),
        ] {
            for g in list {
                user_deny.push((check(g)?, sev, "denied by the scan policy file".to_string()));
            }
        }
        user_deny.extend(policy.deny);
        policy.deny = user_deny;
        let mut known: Vec<(Pattern, String)> = Vec::new();
        for (p, why) in &file.known {
            known.push((check(p)?, why.clone()));
        }
        known.extend(policy.known);
        policy.known = known;
        Ok(policy)
    }

    /// Classifies `module` + `name` as the unpickler would resolve them.
    /// The allow-list is checked first, for the literal name and its Python 3
    /// spelling only (never for a dotted `name`, which walks attributes);
    /// then the deny-list for every way the name can resolve; then the
    /// well-known libraries; anything else is unknown and denied by default.
    pub fn classify(&self, module: &str, name: &str) -> Verdict {
        let literal = format!("{module}.{name}");
        let normalised = normalise_module(module, name);
        if !name.contains('.')
            && self
                .allow
                .iter()
                .any(|p| p.matches(&literal) || p.matches(&normalised))
        {
            return Verdict::Allowed;
        }
        let candidates = resolutions(module, name);
        for cand in &candidates {
            if let Some((_, sev, cat)) = self.deny.iter().find(|(p, _, _)| p.matches(cand)) {
                return Verdict::Denied {
                    severity: *sev,
                    category: cat.clone(),
                    resolved: cand.clone(),
                };
            }
        }
        for cand in &candidates {
            if let Some((_, eco)) = self.known.iter().find(|(p, _)| p.matches(cand)) {
                return Verdict::Known {
                    ecosystem: eco.clone(),
                };
            }
        }
        Verdict::Unknown
    }
}

fn normalise_module(module: &str, name: &str) -> String {
    if let Some((_, (m, n))) = PY2_NAMES.iter().find(|(old, _)| *old == (module, name)) {
        return format!("{m}.{n}");
    }
    let m = PY2_MODULES
        .iter()
        .find(|(old, _)| *old == module)
        .map(|(_, new)| *new)
        .unwrap_or(module);
    format!("{m}.{name}")
}

/// The names a `module` + `name` pair may stand for. Protocol 4 resolves a
/// dotted `name` attribute by attribute (`random` + `_os.system` is
/// `os.system`, because `random` imports `os as _os`), and Python 2 module
/// names are mapped to their Python 3 homes.
pub fn resolutions(module: &str, name: &str) -> Vec<String> {
    let mut out = vec![format!("{module}.{name}"), normalise_module(module, name)];
    let parts: Vec<&str> = name.split('.').collect();
    for i in 0..parts.len().saturating_sub(1) {
        // Attribute `parts[i]` is probably a module imported under that name.
        let alias = parts[i].trim_start_matches('_');
        if alias.is_empty() {
            continue;
        }
        let rest = parts[i + 1..].join(".");
        let m = PY2_MODULES
            .iter()
            .find(|(old, _)| *old == alias)
            .map(|(_, new)| *new)
            .unwrap_or(alias);
        out.push(format!("{m}.{rest}"));
        out.push(format!("{alias}.{rest}"));
    }
    // `os.path` style modules: also check the top-level package.
    if let Some((top, _)) = module.split_once('.') {
        out.push(format!("{top}.{}", parts.last().copied().unwrap_or(name)));
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python2_names_resolve_as_python3_unpickles_them() {
        let p = Policy::default();
        // range(3) pickled at protocol 2 by Python 3.
        assert_eq!(p.classify("__builtin__", "xrange"), Verdict::Allowed);
        assert_eq!(p.classify("__builtin__", "long"), Verdict::Allowed);
        for (module, name, resolved) in [
            ("__builtin__", "reduce", "functools.reduce"),
            ("itertools", "imap", "builtins.map"),
            ("thread", "start_new_thread", "_thread.start_new_thread"),
        ] {
            match p.classify(module, name) {
                Verdict::Denied { resolved: r, .. } => assert_eq!(r, resolved, "{module}.{name}"),
                other => panic!("{module}.{name}: {other:?}"),
            }
        }
        assert!(matches!(
            p.classify("urllib", "urlopen"),
            Verdict::Denied {
                severity: Severity::High,
                ..
            }
        ));
    }

    #[test]
    fn path_objects_are_data_but_their_methods_are_not() {
        let p = Policy::default();
        for name in ["PurePosixPath", "PosixPath", "WindowsPath", "Path"] {
            assert_eq!(p.classify("pathlib", name), Verdict::Allowed, "{name}");
        }
        assert_eq!(p.classify("pathlib._local", "PosixPath"), Verdict::Allowed);
        assert!(matches!(
            p.classify("pathlib", "Path.write_text"),
            Verdict::Denied { .. }
        ));
        assert!(matches!(
            p.classify("pathlib", "Path.unlink"),
            Verdict::Denied { .. }
        ));
    }

    #[test]
    fn allow_list_covers_torch_and_numpy_both_majors() {
        let p = Policy::default();
        assert_eq!(
            p.classify("torch._utils", "_rebuild_tensor_v2"),
            Verdict::Allowed
        );
        assert_eq!(
            p.classify("numpy.core.multiarray", "_reconstruct"),
            Verdict::Allowed
        );
        assert_eq!(
            p.classify("numpy._core.multiarray", "_reconstruct"),
            Verdict::Allowed
        );
        assert_eq!(p.classify("numpy.dtypes", "Float64DType"), Verdict::Allowed);
        assert_eq!(p.classify("__builtin__", "set"), Verdict::Allowed);
        assert_eq!(p.classify("builtins", "set"), Verdict::Allowed);
    }

    #[test]
    fn dotted_names_resolve_like_python() {
        let p = Policy::default();
        match p.classify("random", "_os.system") {
            Verdict::Denied {
                severity, resolved, ..
            } => {
                assert_eq!(severity, Severity::Critical);
                assert_eq!(resolved, "os.system");
            }
            other => panic!("{other:?}"),
        }
        // An allowed name reached through attribute traversal is not allowed.
        assert_ne!(
            p.classify("collections", "OrderedDict.fromkeys"),
            Verdict::Allowed
        );
    }

    #[test]
    fn default_deny_and_known_ecosystems() {
        let p = Policy::default();
        assert_eq!(p.classify("mypkg", "Thing"), Verdict::Unknown);
        assert!(matches!(
            p.classify("sklearn.linear_model._logistic", "LogisticRegression"),
            Verdict::Known { .. }
        ));
        assert!(matches!(
            p.classify("__builtin__", "eval"),
            Verdict::Denied {
                severity: Severity::Critical,
                ..
            }
        ));
        assert!(matches!(
            p.classify("pip", "main"),
            Verdict::Denied {
                severity: Severity::Critical,
                ..
            }
        ));
        assert!(matches!(
            p.classify("builtins", "getattr"),
            Verdict::Denied { .. }
        ));
    }

    #[test]
    fn policy_files_extend_both_lists() {
        let p = Policy::with_toml(
            "[allow]\nglobals = [\"mypkg.*\"]\n[deny]\nhigh = [\"sklearn.evil\"]\n",
        )
        .unwrap();
        assert_eq!(p.classify("mypkg.layers", "Dense"), Verdict::Allowed);
        assert!(matches!(
            p.classify("sklearn", "evil"),
            Verdict::Denied {
                severity: Severity::High,
                ..
            }
        ));
        assert!(Policy::with_toml("[allow]\nglobals = [\"bad name\"]").is_err());
        assert!(Policy::with_toml("[surprise]\n").is_err());
    }
}
