#!/usr/bin/env python3
"""Interop check for `mlsec convert`: the reference `safetensors` package must
load what mlsec writes, with the same values.

Checkpoints are written in PyTorch's own layouts (zip and legacy) by pickle
with stub `torch` modules (the same globals and persistent ids torch.save
writes), so the check runs without installing PyTorch; NumPy files are written
by NumPy. A checkpoint carrying a payload must be refused, naming the global.

Usage: python3 tests/interop/convert.py path/to/mlsec
Needs: pip install numpy safetensors   (.ci/run installs them)
"""
import collections
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import types
import zipfile

import numpy as np
from safetensors.numpy import load_file

from harness import check, finish  # noqa: E402  (tests/interop is on sys.path)

MLSEC = sys.argv[1] if len(sys.argv) > 1 else "target/debug/mlsec"



# Stub torch modules so pickle records torch's globals.
for name in ("torch", "torch._utils"):
    sys.modules.setdefault(name, types.ModuleType(name))
torch = sys.modules["torch"]
utils = sys.modules["torch._utils"]
DTYPES = {np.float32: "FloatStorage", np.float64: "DoubleStorage", np.int64: "LongStorage",
          np.int32: "IntStorage", np.uint8: "ByteStorage", np.float16: "HalfStorage"}
for cls in set(DTYPES.values()):
    c = type(cls, (), {})
    c.__module__, c.__qualname__ = "torch", cls
    setattr(torch, cls, c)


def _rebuild_tensor_v2(*a):
    raise RuntimeError("never called")


_rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class Tensor:
    """Pickles like torch.Tensor: a view (offset, size, stride) of a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (utils._rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, collections.OrderedDict()))

    def values(self):
        flat = self.storage.array
        idx = np.zeros(self.size, dtype=np.int64) + self.offset
        for d, (n, s) in enumerate(zip(self.size, self.stride)):
            shape = [1] * len(self.size)
            shape[d] = n
            idx = idx + (np.arange(n) * s).reshape(shape)
        return flat[idx]


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, DTYPES[obj.array.dtype.type]), obj.key, "cpu", obj.array.size)
        return None


def dumps(obj):
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


rng = np.random.default_rng(0)
s0 = Storage("0", rng.standard_normal(24).astype(np.float32))
s1 = Storage("1", np.arange(10, dtype=np.int64))
s2 = Storage("2", rng.standard_normal(6).astype(np.float16))
state = collections.OrderedDict([
    ("fc.weight", Tensor(s0, 0, [4, 6], [6, 1])),
    ("fc.weight_t", Tensor(s0, 0, [6, 4], [1, 6])),       # a transposed (non-contiguous) view
    ("fc.bias", Tensor(s0, 4, [3], [2])),                  # strided, with an offset
    ("steps", Tensor(s1, 2, [5], [1])),
    ("half", Tensor(s2, 0, [2, 3], [3, 1])),
])
expected = {k: v.values() for k, v in state.items()}


def zip_ckpt(obj, storages):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", dumps(obj))
        z.writestr("archive/version", "3\n")
        for s in storages:
            z.writestr(f"archive/data/{s.key}", s.array.tobytes())
    return buf.getvalue()


def legacy_ckpt(obj, storages):
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2), dumps(obj),
             pickle.dumps([s.key for s in storages], protocol=2)]
    for s in storages:
        parts.append(struct.pack("<q", s.array.size) + s.array.tobytes())
    return b"".join(parts)


def convert(src, out):
    return subprocess.run([MLSEC, "convert", src, "--out", out, "--force", "--format", "json"],
                          capture_output=True, text=True)


with tempfile.TemporaryDirectory() as tmp:
    for kind, data in (("zip", zip_ckpt(state, [s0, s1, s2])), ("legacy", legacy_ckpt(state, [s0, s1, s2]))):
        src = os.path.join(tmp, f"{kind}.pt")
        out = os.path.join(tmp, f"{kind}.safetensors")
        open(src, "wb").write(data)
        r = convert(src, out)
        if r.returncode != 0:
            check(f"convert {kind} checkpoint", False, r.stderr)
            continue
        loaded = load_file(out)
        ok = set(loaded) == set(expected) and all(
            loaded[k].dtype == expected[k].dtype and loaded[k].shape == expected[k].shape
            and np.array_equal(loaded[k], expected[k]) for k in expected)
        check(f"convert {kind} checkpoint: safetensors loads identical values", ok,
              {k: (loaded.get(k), expected[k]) for k in expected})

    a = rng.standard_normal((3, 5)).astype(np.float64)
    np.save(os.path.join(tmp, "a.npy"), a)
    r = convert(os.path.join(tmp, "a.npy"), os.path.join(tmp, "a.safetensors"))
    check("convert .npy", r.returncode == 0 and np.array_equal(load_file(os.path.join(tmp, "a.safetensors"))["array"], a),
          r.stderr)
    np.savez(os.path.join(tmp, "b.npz"), x=a.astype(np.float32), y=np.arange(4, dtype=np.int32))
    r = convert(os.path.join(tmp, "b.npz"), os.path.join(tmp, "b.safetensors"))
    ok = r.returncode == 0
    if ok:
        b = load_file(os.path.join(tmp, "b.safetensors"))
        ok = np.array_equal(b["x"], a.astype(np.float32)) and np.array_equal(b["y"], np.arange(4, dtype=np.int32))
    check("convert .npz", ok, r.stderr)

    class Payload:
        def __reduce__(self):
            import posix
            return posix.system, ("true",)

    evil = collections.OrderedDict([("w", Tensor(s1, 0, [2], [1])), ("x", Payload())])
    src = os.path.join(tmp, "evil.pt")
    open(src, "wb").write(zip_ckpt(evil, [s1]))
    r = convert(src, os.path.join(tmp, "evil.safetensors"))
    check("malicious checkpoint refused, naming the global",
          r.returncode == 2 and "posix.system" in r.stderr and not os.path.exists(os.path.join(tmp, "evil.safetensors")),
          r.stderr)

# A real checkpoint written by torch.save (legacy layout, Python 2 era), bundled
# from the lpips wheel: decode it independently with Python's own pickle
# (find_class restricted to recording names) and the storage tail, then
# compare with mlsec's output.
REAL = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "mlsec-scan", "tests", "real")


class Rec:
    def __init__(self, name):
        self.name = name

    def __call__(self, *args):
        if self.name.endswith("_rebuild_tensor_v2"):
            storage, offset, size, stride = args[:4]
            return ("tensor", storage, offset, size, stride)
        if self.name.endswith("OrderedDict"):
            return collections.OrderedDict(*args)
        raise RuntimeError(self.name)


class Restricted(pickle.Unpickler):
    def find_class(self, module, name):
        if f"{module}.{name}" not in ("torch._utils._rebuild_tensor_v2", "collections.OrderedDict",
                                      "torch.FloatStorage"):
            raise pickle.UnpicklingError(f"{module}.{name}")
        return Rec(f"{module}.{name}")

    def persistent_load(self, pid):
        return pid[2]  # the storage key


for name in ("lpips-v0.1-alex.pth", "lpips-v0.1-vgg.pth"):
    data = open(os.path.join(REAL, name), "rb").read()
    f = io.BytesIO(data)
    loaded = [Restricted(f, encoding="latin1").load() for _ in range(5)]
    state, keys = loaded[3], loaded[4]
    storages = {}
    for key in keys:
        (n,) = struct.unpack("<q", f.read(8))
        storages[key] = np.frombuffer(f.read(4 * n), dtype="<f4")
    want = {}
    for k, (_, skey, off, size, stride) in state.items():
        t = Tensor(Storage(skey, storages[skey]), off, list(size), list(stride))
        want[k] = t.values()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "o.safetensors")
        r = convert(os.path.join(REAL, name), out)
        got = load_file(out) if r.returncode == 0 else {}
    check(f"real torch.save checkpoint {name}: values match an independent decode",
          set(got) == set(want) and all(np.array_equal(got[k], want[k]) for k in want), r.stderr)

finish()
