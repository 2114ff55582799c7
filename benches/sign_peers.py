#!/usr/bin/env python3
"""Benchmark `mlsec sign`/`verify` against the reference `model_signing` CLI, same run.

Usage:
    python3 -m venv ~/.cache/mlsec/model-signing-venv
    ~/.cache/mlsec/model-signing-venv/bin/pip install model-signing==1.1.1
    ~/.cache/mlsec/model-signing-venv/bin/pip install pyopenssl==26.2.0 cryptography==46.0.3
    cargo build --release -p mlsec-cli
    python3 benches/sign_peers.py target/release/mlsec ~/.cache/mlsec/model-signing-venv/bin/model_signing

Workloads (issue 4): a 2 GiB model of 4 x 512 MiB files, and 10,000 x 1 KiB files in
100 folders; files+sha256, ECDSA P-256 key, page cache warm; wall-clock medians.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

MLSEC, REF = os.path.abspath(sys.argv[1]), sys.argv[2]
KEYS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference", "signing",
                    "vectors", "model-signing", "keys")
PRIV, PUB = os.path.join(KEYS, "ec-p256.priv.pem"), os.path.join(KEYS, "ec-p256.pub.pem")


def timed(cmd, runs):
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ts.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"{cmd} failed: {r.stderr.decode()[-500:]}")
    return statistics.median(ts)


def warm(folder):
    for root, _, files in os.walk(folder):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                while fh.read(1 << 24):
                    pass


with tempfile.TemporaryDirectory() as tmp:
    big = os.path.join(tmp, "big")
    os.makedirs(big)
    block = os.urandom(1 << 20)
    for i in range(4):
        with open(os.path.join(big, f"shard-{i}.bin"), "wb") as f:
            for j in range(512):
                f.write(block[j % 7:] + block[:j % 7])
    small = os.path.join(tmp, "small")
    for d in range(100):
        os.makedirs(os.path.join(small, f"d{d:02d}"))
        for k in range(100):
            with open(os.path.join(small, f"d{d:02d}", f"f{k:03d}.bin"), "wb") as f:
                f.write(os.urandom(1024))
    print("| workload | mlsec (s) | model_signing (s) | mlsec speed-up |")
    print("|---|---|---|---|")
    for label, model, runs_m, runs_r in (("2 GiB (4 x 512 MiB)", big, 5, 3), ("10,000 x 1 KiB", small, 5, 3)):
        warm(model)
        sig_m, sig_r = os.path.join(tmp, "m.sig"), os.path.join(tmp, "r.sig")
        sm = timed([MLSEC, "sign", model, "--key", PRIV, "--signature", sig_m, "-q"], runs_m)
        sr = timed([REF, "sign", "key", model, "--private_key", PRIV, "--signature", sig_r], runs_r)
        vm = timed([MLSEC, "verify", model, "--key", PUB, "--signature", sig_m, "-q"], runs_m)
        vr = timed([REF, "verify", "key", model, "--public_key", PUB, "--signature", sig_r], runs_r)
        print(f"| sign {label} | {sm:.3f} | {sr:.3f} | {sr / sm:.1f}x |")
        print(f"| verify {label} | {vm:.3f} | {vr:.3f} | {vr / vm:.1f}x |")

    # Re-signing with the digest cache: the first run fills it, files are then
    # older than the 2 s "racy" window, and later runs only stat each file.
    print()
    print("| re-sign, files unchanged | mlsec, no cache (s) | mlsec, digest cache (s) | speed-up |")
    print("|---|---|---|---|")
    time.sleep(2.5)
    for label, model in (("2 GiB (4 x 512 MiB)", big), ("10,000 x 1 KiB", small)):
        warm(model)
        sig, cache = os.path.join(tmp, "c.sig"), os.path.join(tmp, "digests.json")
        base = [MLSEC, "sign", model, "--key", PRIV, "--signature", sig, "-q"]
        subprocess.run(base + ["--digest-cache", cache], check=True, stdout=subprocess.DEVNULL)
        cold = timed(base, 5)
        hot = timed(base + ["--digest-cache", cache], 5)
        print(f"| {label} | {cold:.3f} | {hot:.3f} | {cold / hot:.1f}x |")
