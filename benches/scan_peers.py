#!/usr/bin/env python3
"""Benchmark `mlsec scan` against picklescan, modelscan and fickling, in one run.

Usage:
    python3 -m venv ~/.cache/mlsec/bench-venv
    ~/.cache/mlsec/bench-venv/bin/pip install picklescan==1.0.5 modelscan==0.8.8 fickling==0.1.12 typing_extensions
    cargo build --release -p mlsec-cli
    ~/.cache/mlsec/bench-venv/bin/python benches/scan_peers.py target/release/mlsec [--detection-only]

Workloads (all generated here, page cache warm, medians of repeated runs):
  1. 2,000 small pickles in one folder: files/s for each tool's own CLI on the
     folder (fickling has no folder mode: one Python process calling
     fickling.scan_file on each file, start-up included, like the others).
  2. A 1 GiB PyTorch zip checkpoint (one 1 GiB float32 storage): mlsec with and
     without --verify-data (CRC of every member), picklescan and modelscan.
  3. Detection on the fixture corpus (crates/mlsec-scan/tests/fixtures): files
     flagged by each tool among the malicious and among the benign fixtures,
     the benign set including real files from PyPI packages (tests/real).
"""
import io
import os
import pickle
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

MLSEC = os.path.abspath(sys.argv[1])
BIN = os.path.dirname(sys.executable)
PICKLESCAN = os.path.join(BIN, "picklescan")
MODELSCAN = os.path.join(BIN, "modelscan")
PY = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "mlsec-scan", "tests", "fixtures")


def timed(cmd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def small_pickles(folder, n=2000):
    for i in range(n):
        obj = {"id": i, "name": f"layer{i}", "w": [i * 0.5, i + 1.0, -i], "cfg": {"p": i % 6, "ok": i % 2 == 0}}
        with open(os.path.join(folder, f"f{i:05d}.pkl"), "wb") as f:
            f.write(pickle.dumps(obj, protocol=i % 6))


def big_checkpoint(path, gib=1):
    """A PyTorch-layout zip: data.pkl referencing one storage of `gib` GiB."""
    numel = gib * (1 << 30) // 4
    pk = (b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x06\x00\x00\x00weightq\x02"
          b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05"
          b"X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07" + b"J" + struct.pack("<i", numel) +
          b"tq\x08QK\x00" + b"J" + struct.pack("<i", numel) + b"\x85K\x01\x85\x89h\x00)Rq\ttq\nRq\x0bs.")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("archive/data.pkl", pk)
        z.writestr("archive/version", "3\n")
        chunk = os.urandom(1 << 20)
        with z.open("archive/data/0", "w", force_zip64=True) as w:
            for _ in range(gib * 1024):
                w.write(chunk)


def fickling_folder_cmd(folder):
    code = ("import fickling,os,sys\n"
            f"d={folder!r}\n"
            "for n in sorted(os.listdir(d)):\n"
            "    fickling.scan_file(os.path.join(d,n), graceful=True)\n")
    return [PY, "-c", code]


def flagged(tool, path):
    if tool == "mlsec":
        r = subprocess.run([MLSEC, "scan", path, "-q"], capture_output=True)
        return r.returncode == 1
    if tool == "picklescan":
        r = subprocess.run([PICKLESCAN, "-p", path], capture_output=True, text=True)
        return "Infected files: 0" not in r.stdout and ("Infected files:" in r.stdout or r.returncode == 1)
    if tool == "modelscan":
        r = subprocess.run([MODELSCAN, "-p", path], capture_output=True, text=True)
        return r.returncode == 1
    if tool == "fickling":
        code = ("import fickling,sys\n"
                f"r=fickling.scan_file({path!r}, graceful=True)\n"
                "sys.exit(0 if str(r.severity).endswith('LIKELY_SAFE') and not r.errors else 1)")
        r = subprocess.run([PY, "-c", code], capture_output=True)
        return r.returncode == 1
    raise ValueError(tool)


def main():
    if "--detection-only" not in sys.argv:
        timings()
    detection()


def timings():
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "small")
        os.makedirs(folder)
        small_pickles(folder)
        print("## 2,000 small pickles (median of 5 runs)\n")
        print("| tool | seconds | files/s | mlsec speed-up |")
        print("|---|---|---|---|")
        t_m = timed([MLSEC, "scan", folder, "-q", "--format", "json", "--fail-on", "never"], 5)
        rows = [("mlsec", t_m)]
        rows.append(("picklescan", timed([PICKLESCAN, "-p", folder], 5)))
        rows.append(("modelscan", timed([MODELSCAN, "-p", folder], 3)))
        rows.append(("fickling", timed(fickling_folder_cmd(folder), 3)))
        for name, t in rows:
            print(f"| {name} | {t:.3f} | {2000 / t:,.0f} | {t / t_m:.1f}x |")

        ckpt = os.path.join(tmp, "big.pt")
        big_checkpoint(ckpt)
        size = os.path.getsize(ckpt)
        subprocess.run(["cat", ckpt], stdout=subprocess.DEVNULL)  # warm the page cache
        print(f"\n## 1 GiB PyTorch zip checkpoint ({size:,} bytes, page cache warm; median of 5 runs)\n")
        print("| tool | seconds | GB/s |")
        print("|---|---|---|")
        t_plain = timed([MLSEC, "scan", ckpt, "-q", "--fail-on", "never"], 5)
        t_verify = timed([MLSEC, "scan", ckpt, "-q", "--fail-on", "never", "--verify-data"], 5)
        t_ps = timed([PICKLESCAN, "-p", ckpt], 3)
        t_ms = timed([MODELSCAN, "-p", ckpt], 3)
        print(f"| mlsec scan | {t_plain * 1000:.1f} ms | — |")
        print(f"| mlsec scan --verify-data | {t_verify:.3f} | {size / t_verify / 1e9:.2f} |")
        print(f"| picklescan | {t_ps:.3f} | — |")
        print(f"| modelscan | {t_ms:.3f} | — |")


def detection():
    print("\n## Detection on the fixture corpus (files flagged)\n")
    mal = sorted(os.path.join(FIXTURES, "malicious", f) for f in os.listdir(os.path.join(FIXTURES, "malicious")))
    ben = sorted(os.path.join(FIXTURES, "benign", f) for f in os.listdir(os.path.join(FIXTURES, "benign")))
    real = os.path.join(ROOT, "crates", "mlsec-scan", "tests", "real")
    ben += sorted(os.path.join(real, f) for f in os.listdir(real) if f.endswith((".pth", ".jit", ".onnx")))
    print(f"| tool | malicious flagged (of {len(mal)}) | benign flagged (of {len(ben)}) |")
    print("|---|---|---|")
    for tool in ["mlsec", "picklescan", "modelscan", "fickling"]:
        m = sum(flagged(tool, p) for p in mal)
        b = sum(flagged(tool, p) for p in ben)
        print(f"| {tool} | {m} | {b} |")


if __name__ == "__main__":
    main()
