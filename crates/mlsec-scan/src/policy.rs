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
    /// A well-known library's global: runs that library's code on load.
    /// `exact` when the policy names this very global (rather than its whole
    /// module with `.*`), which vouches for calling it too; otherwise only
    /// its classes and unpickling helpers are expected to be called (see
    /// [`is_constructor_like`]).
    Known { ecosystem: String, exact: bool },
    /// Not on any list: default-deny.
    Unknown,
}

/// A name pattern: `a.b.c` exactly, `a.b.*` for everything under `a.b`, or
/// (built-in lists only) `a.b.c_*` for every `a.b` attribute whose name
/// starts with `c_` and everything under it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(String);

impl Pattern {
    fn is_wildcard(&self) -> bool {
        self.0.ends_with('*')
    }

    fn matches(&self, qualified: &str) -> bool {
        if let Some(prefix) = self.0.strip_suffix(".*") {
            return qualified == prefix
                || qualified
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('.'));
        }
        match self.0.strip_suffix('*') {
            Some(prefix) => qualified.starts_with(prefix),
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
    // A namespace of attributes: pickled as the class called with nothing,
    // then its attributes set (statsmodels' results hold them).
    "types.SimpleNamespace",
    // A value kept as an attribute, such as gensim's `Word2Vec.hashfxn`:
    // calling it only hashes an object this stream built.
    "builtins.hash",
    // The standard library's typed arrays: `_array_reconstructor` builds
    // an `array.array` (or a subclass, itself a global checked on its own)
    // from a type code and bytes.
    "array.array",
    "array._array_reconstructor",
    // Apache Arrow values as their own `__reduce__` writes them, which is
    // how pandas 3 pickles its default (Arrow-backed) string columns and
    // any `ArrowDtype` column: arrays from their buffers, chunked arrays,
    // record batches, tables, schemas, fields, scalars and data types.
    // Arrow's file systems, datasets, expressions and compute functions
    // (`FileSystem._from_uri`, `PyFileSystem`, `get_function`) are not here.
    "pyarrow.lib._restore_array",
    "pyarrow.lib.chunked_array",
    "pyarrow.lib._reconstruct_record_batch",
    "pyarrow.lib._reconstruct_table",
    "pyarrow.lib.py_buffer",
    "pyarrow.lib.schema",
    "pyarrow.lib.field",
    "pyarrow.lib.KeyValueMetadata",
    "pyarrow.lib.scalar",
    "pyarrow.lib.DictionaryScalar._reconstruct",
    "pyarrow.lib.type_for_alias",
    "pyarrow.lib.list_",
    "pyarrow.lib.large_list",
    "pyarrow.lib.list_view",
    "pyarrow.lib.large_list_view",
    "pyarrow.lib.map_",
    "pyarrow.lib.struct",
    "pyarrow.lib.union",
    "pyarrow.lib.dictionary",
    "pyarrow.lib.timestamp",
    "pyarrow.lib.binary",
    "pyarrow.lib.decimal32",
    "pyarrow.lib.decimal64",
    "pyarrow.lib.decimal128",
    "pyarrow.lib.decimal256",
    "pyarrow.lib.run_end_encoded",
    "pyarrow.lib.fixed_shape_tensor",
    "pyarrow.lib.json_",
    "pyarrow.lib.uuid",
    "pyarrow.lib.bool8",
    "pyarrow.lib.opaque",
    // Time zones as pickled by datetime and pandas values: `ZoneInfo` is
    // written as `getattr(ZoneInfo, '_unpickle')(key, …)`, pytz zones as
    // `pytz._p(…)`; both only look a zone up in the time-zone database.
    "zoneinfo.ZoneInfo",
    "zoneinfo.ZoneInfo._unpickle",
    "zoneinfo._zoneinfo.ZoneInfo",
    "zoneinfo._zoneinfo.ZoneInfo._unpickle",
    "pytz._p",
    "pytz._UTC",
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
    // YAML's unsafe loaders build any Python object a tag names
    // (`!!python/object/apply:os.system`); `safe_load` stays unlisted.
    (
        "yaml.unsafe_load",
        Severity::Critical,
        "deserialises YAML into arbitrary Python calls",
    ),
    (
        "yaml.unsafe_load_all",
        Severity::Critical,
        "deserialises YAML into arbitrary Python calls",
    ),
    (
        "yaml.load",
        Severity::Critical,
        "deserialises YAML into arbitrary Python calls (with an unsafe Loader)",
    ),
    (
        "yaml.load_all",
        Severity::Critical,
        "deserialises YAML into arbitrary Python calls (with an unsafe Loader)",
    ),
    (
        "yaml.full_load",
        Severity::Critical,
        "deserialises YAML into Python objects (CVE-2020-14343)",
    ),
    (
        "yaml.full_load_all",
        Severity::Critical,
        "deserialises YAML into Python objects (CVE-2020-14343)",
    ),
    (
        "yaml.UnsafeLoader",
        Severity::Critical,
        "deserialises YAML into arbitrary Python calls",
    ),
    (
        "yaml.constructor.*",
        Severity::Critical,
        "constructs arbitrary Python objects from YAML",
    ),
    (
        "jsonpickle.*",
        Severity::Critical,
        "decodes JSON into arbitrary Python objects and calls",
    ),
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
        "torch.jit.unsupported_tensor_ops.*",
        Severity::Critical,
        "executes Python code (execWrapper; picklescan GHSA-vr7h-p6mm-wpmh)",
    ),
    (
        "torch.jit.annotations.*",
        Severity::Critical,
        "evaluates type comments with eval (CVE-2022-45907)",
    ),
    (
        "torch.jit.*",
        Severity::High,
        "loads or compiles TorchScript",
    ),
    ("torch.hub.*", Severity::High, "downloads and runs code"),
    (
        "torch._dynamo.*",
        Severity::Critical,
        "compiles and evaluates code (GuardBuilder.get evaluates its argument)",
    ),
    (
        "torch._inductor.*",
        Severity::Critical,
        "compiles code and runs compilers (codecache.compile_file runs a command)",
    ),
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
    // Functions of well-known libraries that run code, commands or other
    // pickles: without these entries they would be reported with their
    // library (low when only referenced), so each is named with its reason.
    // Most are public scanner bypasses (picklescan GHSA-f745-w6jp-hpxx,
    // GHSA-4r9r-ch6f-vxmx, GHSA-4whj-rm5r-c2v8, GHSA-f4x7-rfwp-v3xw,
    // GHSA-h3qp-7fh3-f8h4, GHSA-vv6j-3g6g-2pvj; CVE-2024-5480,
    // CVE-2024-48063, CVE-2022-45907).
    (
        "torch.utils.collect_env.*",
        Severity::Critical,
        "runs shell commands (torch.utils.collect_env.run)",
    ),
    (
        "torch.utils.bottleneck.*",
        Severity::Critical,
        "runs Python code under a profiler",
    ),
    (
        "torch.utils.cpp_extension.*",
        Severity::Critical,
        "compiles and loads native code",
    ),
    (
        "torch.utils._config_module.*",
        Severity::Critical,
        "loads configuration by unpickling or executing it",
    ),
    (
        "torch.utils.data.datapipes.*",
        Severity::High,
        "decoders that unpickle their input",
    ),
    (
        "torch.fx.experimental.symbolic_shapes.*",
        Severity::Critical,
        "evaluates guard expressions as Python code",
    ),
    (
        "torch.fx.graph_module.*",
        Severity::Critical,
        "executes Python source carried in the pickle (GraphModule code)",
    ),
    (
        "torch.distributed.*",
        Severity::Critical,
        "runs functions remotely or over the network (RPC)",
    ),
    (
        "torch.testing.*",
        Severity::Critical,
        "test helpers that run commands and code",
    ),
    (
        "torch.package.*",
        Severity::High,
        "imports code from a package archive",
    ),
    ("torch.export.load", Severity::High, "loads another archive"),
    ("torch.compile", Severity::High, "compiles code"),
    (
        "torch.utils.benchmark.*",
        Severity::High,
        "compiles and times code",
    ),
    (
        "numpy.ctypeslib.*",
        Severity::Critical,
        "loads native libraries",
    ),
    (
        "numpy.lib.format.*",
        Severity::High,
        "reads and writes array files, pickled ones included",
    ),
    (
        "numpy.lib.npyio.*",
        Severity::High,
        "reads and writes files",
    ),
    // NumPy 2's names for the two modules above.
    (
        "numpy.lib._format_impl.*",
        Severity::High,
        "reads and writes array files, pickled ones included",
    ),
    (
        "numpy.lib._npyio_impl.*",
        Severity::High,
        "reads and writes files",
    ),
    ("numpy.fromfile", Severity::High, "reads files"),
    ("numpy.loadtxt", Severity::High, "reads files"),
    ("numpy.genfromtxt", Severity::High, "reads files and URLs"),
    ("numpy.fromregex", Severity::High, "reads files"),
    ("numpy.save", Severity::High, "writes files"),
    ("numpy.savez", Severity::High, "writes files"),
    ("numpy.savez_compressed", Severity::High, "writes files"),
    ("numpy.savetxt", Severity::High, "writes files"),
    // Classes of well-known libraries are low as library code, except
    // these, whose construction or collection touches files, the network
    // or processes.
    (
        "numpy.DataSource",
        Severity::High,
        "downloads files; one whose state marks its folder temporary deletes that folder when collected",
    ),
    (
        "numpy.lib._datasource.*",
        Severity::High,
        "downloads files; a DataSource whose state marks its folder temporary deletes that folder when collected",
    ),
    (
        "numpy.memmap",
        Severity::High,
        "creates, truncates and maps files",
    ),
    (
        "numpy.core.memmap.*",
        Severity::High,
        "creates, truncates and maps files",
    ),
    (
        "numpy._core.memmap.*",
        Severity::High,
        "creates, truncates and maps files",
    ),
    (
        "pandas.HDFStore",
        Severity::High,
        "opens, creates and truncates HDF5 files",
    ),
    ("pandas.ExcelWriter", Severity::High, "creates files"),
    ("pandas.ExcelFile", Severity::High, "reads files"),
    (
        "torch.utils.tensorboard.*",
        Severity::High,
        "creates folders and writes event files",
    ),
    (
        "torch.multiprocessing.*",
        Severity::High,
        "starts processes",
    ),
    (
        "torch.library.*",
        Severity::High,
        "registers or overrides operator implementations",
    ),
    (
        "pandas.eval",
        Severity::Critical,
        "evaluates expressions as code",
    ),
    (
        "pandas.core.computation.*",
        Severity::Critical,
        "evaluates expressions as code",
    ),
    (
        "pandas.io.*",
        Severity::High,
        "reads and writes files and URLs",
    ),
    ("pandas.read_*", Severity::High, "reads files and URLs"),
    (
        "torchvision.datasets.*",
        Severity::High,
        "downloads and reads files",
    ),
    (
        "torchaudio.datasets.*",
        Severity::High,
        "downloads and reads files",
    ),
    ("torchvision.io.*", Severity::High, "reads and writes files"),
    (
        "lightning.pytorch.cli.*",
        Severity::High,
        "instantiates the classes its arguments name, and trains",
    ),
    (
        "pytorch_lightning.cli.*",
        Severity::High,
        "instantiates the classes its arguments name, and trains",
    ),
    (
        "accelerate.commands.*",
        Severity::Critical,
        "starts processes and runs scripts",
    ),
    (
        "statsmodels.iolib.smpickle.*",
        Severity::Critical,
        "loads and saves pickles",
    ),
    (
        "statsmodels.iolib.*",
        Severity::High,
        "reads and writes files",
    ),
    (
        "gensim.utils.unpickle",
        Severity::Critical,
        "loads a pickle from a file or URL",
    ),
    (
        "gensim.utils.pickle",
        Severity::High,
        "writes files",
    ),
    (
        "gensim.downloader.*",
        Severity::High,
        "downloads models and data",
    ),
    (
        "nltk.data.*",
        Severity::Critical,
        "loads resources from files and URLs, pickles included",
    ),
    (
        "nltk.downloader.*",
        Severity::High,
        "downloads data",
    ),
    ("nltk.download", Severity::High, "downloads data"),
    (
        "typing.get_type_hints",
        Severity::Critical,
        "evaluates annotation strings as code",
    ),
    (
        "typing._eval_type",
        Severity::Critical,
        "evaluates annotation strings as code",
    ),
    (
        "typing.evaluate_forward_ref",
        Severity::Critical,
        "evaluates annotation strings as code",
    ),
    (
        "typing.ForwardRef",
        Severity::High,
        "compiles its string, which evaluating the reference runs",
    ),
    (
        "omegaconf.OmegaConf.*",
        Severity::High,
        "loads and saves files, resolves interpolations",
    ),
    (
        "omegaconf.omegaconf.OmegaConf.*",
        Severity::High,
        "loads and saves files, resolves interpolations",
    ),
    (
        "pyarrow.lib.foreign_buffer",
        Severity::Critical,
        "reads process memory at any address",
    ),
    (
        "pyarrow.fs.*",
        Severity::High,
        "opens local and remote file systems (S3, GCS, HDFS, Azure)",
    ),
    (
        "pyarrow._fs.*",
        Severity::High,
        "opens local and remote file systems (S3, GCS, HDFS, Azure)",
    ),
    (
        "pyarrow._s3fs.*",
        Severity::High,
        "connects to S3",
    ),
    (
        "pyarrow._gcsfs.*",
        Severity::High,
        "connects to Google Cloud Storage",
    ),
    (
        "pyarrow._hdfs.*",
        Severity::High,
        "connects to HDFS",
    ),
    (
        "pyarrow._azurefs.*",
        Severity::High,
        "connects to Azure storage",
    ),
    (
        "pyarrow._dataset*",
        Severity::High,
        "reads and writes dataset files",
    ),
    (
        "pyarrow.dataset.*",
        Severity::High,
        "reads and writes dataset files",
    ),
    (
        "pyarrow.parquet.*",
        Severity::High,
        "reads and writes files",
    ),
    (
        "pyarrow.csv.*",
        Severity::High,
        "reads and writes files",
    ),
    (
        "pyarrow._flight.*",
        Severity::High,
        "connects to Arrow Flight servers",
    ),
    (
        "sklearn.datasets.*",
        Severity::High,
        "downloads and reads files",
    ),
    ("scipy.io.*", Severity::High, "reads and writes files"),
    (
        "transformers.dynamic_module_utils.*",
        Severity::Critical,
        "downloads and imports remote code",
    ),
    (
        "huggingface_hub.*",
        Severity::High,
        "downloads files from the Hub",
    ),
    (
        "uuid._*",
        Severity::Critical,
        "runs commands (uuid's helpers)",
    ),
    ("_osx_support.*", Severity::Critical, "runs commands"),
    ("_aix_support.*", Severity::Critical, "runs commands"),
    ("_pyrepl.*", Severity::Critical, "runs commands (pagers)"),
    ("platform._syscmd_*", Severity::Critical, "runs commands"),
    (
        "venv.*",
        Severity::Critical,
        "creates environments and runs pip",
    ),
    (
        "test.*",
        Severity::Critical,
        "CPython's test helpers, which spawn processes",
    ),
    (
        "imaplib.IMAP4_stream",
        Severity::Critical,
        "runs a command as its connection",
    ),
    ("logging.FileHandler", Severity::High, "creates files"),
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
    ("pyarrow.*", "Apache Arrow"),
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
    // Every `training_args.bin` holds Accelerate's state and enums, PEFT
    // adapters pickle their configs, Lightning checkpoints their hyper-
    // parameters as OmegaConf containers typed with `typing.Any`.
    ("accelerate.*", "Hugging Face Accelerate"),
    ("peft.*", "Hugging Face PEFT"),
    ("trl.*", "Hugging Face TRL"),
    ("sentence_transformers.*", "sentence-transformers"),
    ("diffusers.*", "Hugging Face diffusers"),
    ("timm.*", "timm"),
    ("torchvision.*", "torchvision"),
    ("torchaudio.*", "torchaudio"),
    ("lightning.*", "Lightning"),
    ("pytorch_lightning.*", "PyTorch Lightning"),
    ("lightning_fabric.*", "Lightning Fabric"),
    (
        "omegaconf.*",
        "OmegaConf configurations (Hydra, Lightning, NeMo)",
    ),
    ("typing.*", "Python type annotations"),
    ("statsmodels.*", "statsmodels"),
    ("gensim.*", "gensim"),
    ("nltk.*", "NLTK"),
    ("imblearn.*", "imbalanced-learn"),
    ("sentencepiece.*", "SentencePiece"),
    ("numpy.*", "NumPy"),
    ("collections.*", "Python collections"),
    ("re._compile", "Python regular expressions"),
    ("re.compile", "Python regular expressions"),
    ("enum.*", "Python enums"),
    ("argparse.Namespace", "argparse"),
    ("dateutil.tz.*", "dateutil time zones"),
];

/// Attributes that lead from any object to the interpreter's internals
/// (`numpy.__builtins__` is a dict holding `eval`; `X.__class__.__subclasses__`
/// reaches every class): a global that walks through one is an escape,
/// whatever module it starts from, so it is never allowed.
const INTERNALS: &[&str] = &[
    "__builtins__",
    "__globals__",
    "__dict__",
    "__class__",
    "__base__",
    "__bases__",
    "__mro__",
    "__subclasses__",
    "__import__",
    "__getattribute__",
    "__getattr__",
    "__setattr__",
    "__delattr__",
    "__code__",
    "__closure__",
    "__func__",
    "__self__",
    "__loader__",
    "__spec__",
    "__reduce__",
    "__reduce_ex__",
    "__init_subclass__",
    "__subclasshook__",
    "__defaults__",
    "__kwdefaults__",
];

/// Whether calling a global of a well-known library while loading is what
/// that library's own pickles do: construct one of its classes (a name that
/// starts with a capital, `Booster`, `_Foo`), or call one of its unpickling
/// helpers (`_unpickle_block`, `__pyx_unpickle_Tree`, `_reconstruct`,
/// `_new_Index`, `__randomstate_ctor`, `newObj`). Any other function of
/// the library (`numpy.size`, `pandas.read_csv`,
/// `torch.utils.collect_env.run`) is not, and is reported like an unknown
/// global.
pub fn is_constructor_like(qualified: &str) -> bool {
    let last = qualified.rsplit('.').next().unwrap_or(qualified);
    let mut chars = last.trim_start_matches('_').chars();
    match (chars.next(), chars.next()) {
        (Some(first), _) if first.is_uppercase() => return true,
        // Classes typed by BLAS prefix, one per precision (statsmodels'
        // Cython `sStatespace`, `dKalmanFilter`, `zInitialization`).
        (Some('s' | 'd' | 'c' | 'z'), Some(second)) if second.is_uppercase() => return true,
        _ => {}
    }
    let lower = last.to_ascii_lowercase();
    ["unpickle", "reconstruct", "rebuild"]
        .iter()
        .any(|w| lower.contains(w))
        || lower.starts_with("_new_")
        || lower.ends_with("_ctor")
        || lower == "newobj"
}

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
    /// A name that walks through the interpreter's internals (`__builtins__`,
    /// `__globals__`, …) is denied first and can never be allowed. Then the
    /// allow-list, for the literal name and its Python 3 spelling only (a
    /// dotted `name`, which walks attributes, only by an entry naming it
    /// exactly, never by a `.*` entry); then the deny-list for every way the
    /// name can resolve; then the well-known libraries; anything else is
    /// unknown and denied by default.
    pub fn classify(&self, module: &str, name: &str) -> Verdict {
        let literal = format!("{module}.{name}");
        let normalised = normalise_module(module, name);
        if let Some(part) = literal.split('.').find(|part| INTERNALS.contains(part)) {
            return Verdict::Denied {
                severity: Severity::Critical,
                category: format!(
                    "walks through {part}, the interpreter's internals, to reach eval, exec or any module"
                ),
                resolved: literal,
            };
        }
        let dotted = name.contains('.');
        if self.allow.iter().any(|p| {
            (!dotted || !p.is_wildcard()) && (p.matches(&literal) || p.matches(&normalised))
        }) {
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
            if let Some((p, eco)) = self.known.iter().find(|(p, _)| p.matches(cand)) {
                return Verdict::Known {
                    ecosystem: eco.clone(),
                    exact: !p.is_wildcard(),
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

/// How many leading attributes of a dotted name are tried as module aliases.
const MAX_ALIAS_PARTS: usize = 16;

/// The names a `module` + `name` pair may stand for. Protocol 4 resolves a
/// dotted `name` attribute by attribute (`random` + `_os.system` is
/// `os.system`, because `random` imports `os as _os`), and Python 2 module
/// names are mapped to their Python 3 homes.
pub fn resolutions(module: &str, name: &str) -> Vec<String> {
    let mut out = vec![format!("{module}.{name}"), normalise_module(module, name)];
    let parts: Vec<&str> = name.split('.').collect();
    // Each alias costs a copy of the rest of the name: only the first
    // attributes can plausibly be module aliases, and a hostile name of
    // thousands of parts must not cost their square.
    for i in 0..parts.len().saturating_sub(1).min(MAX_ALIAS_PARTS) {
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

    /// Each `(module, name)` is denied at `severity`.
    fn assert_denied_at(p: &Policy, severity: Severity, names: &[(&str, &str)]) {
        for (module, name) in names {
            match p.classify(module, name) {
                Verdict::Denied { severity: s, .. } if s == severity => {}
                other => panic!("{module}.{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn interpreter_internals_are_denied_whatever_the_module() {
        let p = Policy::default();
        assert_denied_at(
            &p,
            Severity::Critical,
            &[
                ("numpy", "__builtins__"),
                ("collections.OrderedDict", "__init__.__globals__"),
                ("builtins", "object.__subclasses__"),
                ("torch._utils", "_rebuild_tensor.__globals__"),
            ],
        );
        // Even a policy file cannot allow them.
        let p = Policy::with_toml("[allow]\nglobals = [\"numpy.*\"]").unwrap();
        assert!(matches!(
            p.classify("numpy", "__builtins__"),
            Verdict::Denied { .. }
        ));
    }

    #[test]
    fn a_name_of_many_parts_costs_linear_time() {
        // 200,000 parts: trying every part as a module alias would copy the
        // name 200,000 times (minutes); only the first parts are tried.
        let name = "a.".repeat(199_999) + "a";
        assert!(resolutions("mypkg", &name).len() <= 2 * MAX_ALIAS_PARTS + 3);
        assert_eq!(Policy::default().classify("mypkg", &name), Verdict::Unknown);
        // Aliases among the first parts still resolve.
        assert!(resolutions("random", "_os.system").contains(&"os.system".to_string()));
    }

    #[test]
    fn constructors_and_unpickling_helpers_are_told_from_other_functions() {
        for name in [
            "xgboost.core.Booster",
            "sklearn.tree._tree.Tree",
            "pandas._libs.internals._unpickle_block",
            "pandas._libs.tslibs.nattype.__nat_unpickle",
            "sklearn._loss._loss.__pyx_unpickle_CyHalfSquaredError",
            "numpy.ma.core._mareconstruct",
            "pandas.core.indexes.base._new_Index",
            "numpy.random.mtrand.__RandomState_ctor",
            "sklearn.metrics._dist_metrics.newObj",
            "transformers.trainer_utils.IntervalStrategy.STEPS",
            "statsmodels.tsa.statespace._kalman_filter.dKalmanFilter",
            "statsmodels.tsa.statespace._representation.zStatespace",
        ] {
            assert!(is_constructor_like(name), "{name}");
        }
        for name in [
            "numpy.size",
            "pandas.io.parsers.readers.read_csv",
            "torch.utils.collect_env.run",
            "torch.fx.experimental.symbolic_shapes.ShapeEnv.evaluate_guards_expression",
            "collections.namedtuple",
            "scipy.linalg.solve",
            "numpy.dot",
            "gensim.utils.call_on_class_only",
        ] {
            assert!(!is_constructor_like(name), "{name}");
        }
    }

    #[test]
    fn known_entries_say_whether_they_name_the_global_itself() {
        let p = Policy::default();
        assert_eq!(
            p.classify("re", "_compile"),
            Verdict::Known {
                ecosystem: "Python regular expressions".into(),
                exact: true
            }
        );
        assert!(matches!(
            p.classify("sklearn.svm._classes", "SVC"),
            Verdict::Known { exact: false, .. }
        ));
        // Prefix patterns of the built-in deny-list.
        assert!(matches!(
            p.classify("pandas", "read_csv"),
            Verdict::Denied { .. }
        ));
        assert_eq!(p.classify("uuid", "UUID"), Verdict::Allowed);
        assert!(matches!(
            p.classify("uuid", "_get_command_stdout"),
            Verdict::Denied {
                severity: Severity::Critical,
                ..
            }
        ));
        // A dotted name is allowed by an entry naming it exactly, never by `.*`.
        assert_eq!(
            p.classify("zoneinfo", "ZoneInfo._unpickle"),
            Verdict::Allowed
        );
        assert_ne!(
            p.classify("numpy.dtypes", "Float64DType._os.system"),
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
    fn deserialisers_that_run_code_are_critical() {
        let p = Policy::default();
        assert_denied_at(
            &p,
            Severity::Critical,
            &[
                ("yaml", "unsafe_load"),
                ("yaml", "load"),
                ("yaml", "full_load_all"),
                ("yaml.constructor", "UnsafeConstructor"),
                ("jsonpickle", "decode"),
                ("jsonpickle.unpickler", "Unpickler"),
            ],
        );
        // The safe loader is not critical.
        assert!(!matches!(
            p.classify("yaml", "safe_load"),
            Verdict::Denied {
                severity: Severity::Critical,
                ..
            }
        ));
    }

    #[test]
    fn library_classes_that_touch_files_or_processes_are_denied() {
        let p = Policy::default();
        assert_denied_at(
            &p,
            Severity::High,
            &[
                ("numpy", "DataSource"),
                ("numpy.lib._datasource", "DataSource"),
                ("numpy", "memmap"),
                ("numpy._core.memmap", "memmap"),
                ("numpy.lib._npyio_impl", "NpzFile"),
                ("numpy.lib._format_impl", "open_memmap"),
                ("pandas", "HDFStore"),
                ("pandas", "ExcelWriter"),
                ("torch.utils.tensorboard.writer", "SummaryWriter"),
                ("torch.multiprocessing", "Process"),
                ("torch.library", "Library"),
            ],
        );
        // Their neighbours stay library classes.
        for (module, name) in [
            ("pandas.core.frame", "DataFrame"),
            ("torch.utils.data.dataset", "TensorDataset"),
        ] {
            assert!(
                matches!(p.classify(module, name), Verdict::Known { .. }),
                "{module}.{name}"
            );
        }
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
