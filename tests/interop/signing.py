#!/usr/bin/env python3
"""Interop check for `mlsec sign`/`mlsec verify` against the reference
`model_signing` CLI (OpenSSF model-signing 1.1.1), in both directions.

Usage: python3 tests/interop/signing.py path/to/mlsec path/to/model_signing
Needs: pip install model-signing==1.1.1 pyopenssl cryptography==46.0.3  (.ci/run installs them)
"""
import os
import shutil
import subprocess
import sys
import tempfile

from harness import check, finish  # noqa: E402  (tests/interop is on sys.path)

MLSEC, REF = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "..", "..", "shared", "reference", "signing", "vectors", "model-signing")



def run(*cmd, cwd=None):
    return subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd)


def fresh_model(tmp, name):
    dst = os.path.join(tmp, name)
    shutil.copytree(os.path.join(VECTORS, "tiny-model"), dst)
    for root, dirs, files in os.walk(dst):
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
        os.chmod(root, 0o755)
    return dst


with tempfile.TemporaryDirectory() as tmp:
    # 1. mlsec signs, the reference verifies (P-256 and P-384).
    for kind in ("p256", "p384"):
        model = fresh_model(tmp, f"m-{kind}")
        prefix = os.path.join(tmp, kind)
        sig = os.path.join(tmp, f"{kind}.sig")
        r = run(MLSEC, "keygen", "--type", kind, "--out", prefix)
        r = r if r.returncode else run(MLSEC, "sign", model, "--key", prefix + ".priv.pem", "--signature", sig)
        check(f"mlsec sign ({kind})", r.returncode == 0, r.stderr)
        r = run(REF, "verify", "key", model, "--signature", sig, "--public_key", prefix + ".pub.pem")
        check(f"reference verifies mlsec's {kind} signature", r.returncode == 0, r.stdout + r.stderr)
        with open(os.path.join(model, "weights.bin"), "r+b") as f:
            f.seek(1000)
            b = f.read(1)
            f.seek(1000)
            f.write(bytes([b[0] ^ 1]))
        r = run(REF, "verify", "key", model, "--signature", sig, "--public_key", prefix + ".pub.pem")
        check(f"reference rejects a tampered model signed by mlsec ({kind})", r.returncode != 0, r.stdout)

    # 2. The reference signs, mlsec verifies.
    model = fresh_model(tmp, "m-ref")
    sig = os.path.join(tmp, "ref.sig")
    key = os.path.join(VECTORS, "keys", "ec-p256.priv.pem")
    pub = os.path.join(VECTORS, "keys", "ec-p256.pub.pem")
    r = run(REF, "sign", "key", model, "--signature", sig, "--private_key", key)
    check("reference signs", r.returncode == 0, r.stdout + r.stderr)
    r = run(MLSEC, "verify", model, "--key", pub, "--signature", sig)
    check("mlsec verifies the reference's signature", r.returncode == 0, r.stdout + r.stderr)
    os.remove(os.path.join(model, "tokenizer", "vocab.txt"))
    r = run(MLSEC, "verify", model, "--key", pub, "--signature", sig, "--format", "json")
    check("mlsec names the file removed after the reference signed",
          r.returncode == 1 and "tokenizer/vocab.txt" in r.stdout, r.stdout + r.stderr)

finish()
