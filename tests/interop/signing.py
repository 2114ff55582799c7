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



MAKE_PKI = r"""
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
d, kind = sys.argv[1], sys.argv[2]
curve, h = (ec.SECP256R1(), hashes.SHA256()) if kind == "p256" else (ec.SECP384R1(), hashes.SHA384())
start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
end = datetime.datetime(2035, 1, 1, tzinfo=datetime.timezone.utc)
def name(cn): return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def pem(c): return c.public_bytes(serialization.Encoding.PEM)
def ca(cn):
    k = ec.generate_private_key(curve)
    c = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn)).public_key(k.public_key())
         .serial_number(1).not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
         .sign(k, h))
    return k, c
ca_key, ca_cert = ca("interop CA")
_, other = ca("other CA")
leaf_key = ec.generate_private_key(curve)
def leaf(usage):
    b = (x509.CertificateBuilder().subject_name(name("interop signer")).issuer_name(ca_cert.subject)
         .public_key(leaf_key.public_key()).serial_number(2).not_valid_before(start).not_valid_after(end))
    if usage:
        b = (b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False))
    else:
        b = b.add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False, False), critical=True)
    return b.sign(ca_key, h)
open(f"{d}/ca.pem", "wb").write(pem(ca_cert))
open(f"{d}/other-ca.pem", "wb").write(pem(other))
open(f"{d}/leaf.pem", "wb").write(pem(leaf(True)))
open(f"{d}/leaf-nouse.pem", "wb").write(pem(leaf(False)))
open(f"{d}/leaf.priv.pem", "wb").write(leaf_key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"""


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

    # 3. The certificate method, P-256 and P-384, both directions. The CA and
    # leaf certificates are made with `cryptography` from the reference's venv.
    ref_python = os.path.join(os.path.dirname(REF), "python")
    for kind in ("p256", "p384"):
        d = os.path.join(tmp, f"pki-{kind}")
        os.makedirs(d)
        r = run(ref_python, "-c", MAKE_PKI, d, kind)
        check(f"test PKI created ({kind})", r.returncode == 0, r.stderr)
        leaf_key, leaf, ca, other_ca = (os.path.join(d, n) for n in ("leaf.priv.pem", "leaf.pem", "ca.pem", "other-ca.pem"))
        model = fresh_model(tmp, f"m-cert-{kind}")
        sig = os.path.join(tmp, f"cert-{kind}.sig")
        r = run(MLSEC, "sign", model, "--key", leaf_key, "--cert", leaf, "--chain", ca, "--signature", sig)
        check(f"mlsec signs with a certificate ({kind})", r.returncode == 0, r.stderr)
        r = run(REF, "verify", "certificate", model, "--signature", sig, "--certificate_chain", ca)
        check(f"reference verifies mlsec's certificate signature ({kind})", r.returncode == 0, r.stdout + r.stderr)
        r = run(REF, "verify", "certificate", model, "--signature", sig, "--certificate_chain", other_ca)
        check(f"reference rejects it under another CA ({kind})", r.returncode != 0, r.stdout)
        r = run(MLSEC, "verify", model, "--ca", other_ca, "--signature", sig)
        check(f"mlsec rejects it under another CA ({kind})", r.returncode == 1, r.stdout + r.stderr)
        ref_sig = os.path.join(tmp, f"ref-cert-{kind}.sig")
        r = run(REF, "sign", "certificate", model, "--signature", ref_sig, "--private_key", leaf_key,
                "--signing_certificate", leaf, "--certificate_chain", ca)
        check(f"reference signs with a certificate ({kind})", r.returncode == 0, r.stdout + r.stderr)
        r = run(MLSEC, "verify", model, "--ca", ca, "--signature", ref_sig)
        check(f"mlsec verifies the reference's certificate signature ({kind})", r.returncode == 0, r.stdout + r.stderr)
        nouse_sig = os.path.join(tmp, f"nouse-{kind}.sig")
        r = run(REF, "sign", "certificate", model, "--signature", nouse_sig, "--private_key", leaf_key,
                "--signing_certificate", os.path.join(d, "leaf-nouse.pem"), "--certificate_chain", ca)
        ref_rc = run(REF, "verify", "certificate", model, "--signature", nouse_sig, "--certificate_chain", ca).returncode
        r = run(MLSEC, "verify", model, "--ca", ca, "--signature", nouse_sig)
        check(f"a leaf without signing usage is refused by both ({kind})", ref_rc != 0 and r.returncode == 1,
              f"reference rc={ref_rc}; mlsec: {r.stdout}")

finish()
