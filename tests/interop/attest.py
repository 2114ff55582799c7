#!/usr/bin/env python3
"""Interop check for `mlsec attest` against the reference DSSE and attestation
code in-toto uses: securesystemslib verifies mlsec's envelopes (Ed25519 and
P-256) and the statement parses into the in-toto-attestation protobufs
(Statement v1, SLSA Provenance v1); envelopes signed by securesystemslib
verify with `mlsec attest verify`, and tampering is refused by both.

Usage: <in-toto venv>/bin/python tests/interop/attest.py path/to/mlsec
Needs: pip install in-toto==3.1.0 in-toto-attestation==0.9.3 cryptography==46.0.3
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from harness import check, finish  # noqa: E402

MLSEC = os.path.abspath(sys.argv[1])
PT = "application/vnd.in-toto+json"


def run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


def sslib_verify(envelope_bytes, pub_path):
    env = Envelope.from_dict(json.loads(envelope_bytes))
    key = SSlibKey.from_crypto(load_pem_public_key(open(pub_path, "rb").read()))
    try:
        env.verify([key], 1)
        return True, env
    except Exception as e:  # securesystemslib raises VerificationError
        return False, e


with tempfile.TemporaryDirectory() as tmp:
    model = os.path.join(tmp, "model")
    os.makedirs(model)
    with open(os.path.join(model, "weights.bin"), "wb") as f:
        f.write(bytes(range(256)) * 64)
    with open(os.path.join(model, "config.json"), "w") as f:
        f.write('{"layers": 2}\n')
    data = os.path.join(tmp, "train.csv")
    with open(data, "w") as f:
        f.write("x,label\n1,0\n2,1\n")

    for kind in ("ed25519", "p256"):
        prefix = os.path.join(tmp, kind)
        run(MLSEC, "keygen", "--type", kind, "--out", prefix)
        out = os.path.join(tmp, f"{kind}.dsse.json")
        r = run(MLSEC, "attest", model, "--key", prefix + ".priv.pem", "--dataset", data,
                "--param", "epochs=3", "--out", out)
        check(f"mlsec attest ({kind})", r.returncode == 0, r.stderr)
        raw = open(out, "rb").read()
        ok, env = sslib_verify(raw, prefix + ".pub.pem")
        check(f"securesystemslib verifies mlsec's envelope ({kind})", ok, str(env))
        if ok:
            statement = json.loads(env.payload)
            try:
                st = json_format.ParseDict(statement, statement_pb2.Statement())
                json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
                parsed = st.predicate_type == "https://slsa.dev/provenance/v1"
            except Exception as e:
                parsed = False
                print(e)
            check(f"the statement parses as in-toto Statement v1 + SLSA Provenance v1 ({kind})", parsed)
            names = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
            want = hashlib.sha256(open(os.path.join(model, "weights.bin"), "rb").read()).hexdigest()
            check(f"subjects carry the files' SHA-256 ({kind})", names.get("weights.bin") == want, str(names))
        # The same envelope with its payload changed: both refuse.
        doc = json.loads(raw)
        payload = base64.b64decode(doc["payload"]).replace(b"epochs", b"epochz")
        doc["payload"] = base64.b64encode(payload).decode()
        bad = os.path.join(tmp, f"{kind}.bad.json")
        with open(bad, "w") as f:
            json.dump(doc, f)
        ok, _ = sslib_verify(open(bad, "rb").read(), prefix + ".pub.pem")
        r = run(MLSEC, "attest", "verify", bad, "--key", prefix + ".pub.pem")
        check(f"a changed payload is refused by both ({kind})", not ok and r.returncode == 1, r.stdout)

        # securesystemslib signs a provenance statement; mlsec verifies it.
        signer = CryptoSigner(load_pem_private_key(open(prefix + ".priv.pem", "rb").read(), None))
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": n, "digest": {"sha256": hashlib.sha256(open(os.path.join(model, n), "rb").read()).hexdigest()}}
                        for n in ("config.json", "weights.bin")],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "https://example.com/train@v1", "externalParameters": {}},
                          "runDetails": {"builder": {"id": "https://example.com/builder"}}},
        }
        e = Envelope(payload=json.dumps(statement).encode(), payload_type=PT, signatures={})
        e.sign(signer)
        theirs = os.path.join(tmp, f"{kind}.sslib.json")
        with open(theirs, "w") as f:
            json.dump(e.to_dict(), f)
        r = run(MLSEC, "attest", "verify", theirs, "--key", prefix + ".pub.pem", "--model", model)
        check(f"mlsec verifies securesystemslib's envelope and the model's subjects ({kind})", r.returncode == 0,
              r.stdout + r.stderr)

    with open(os.path.join(model, "weights.bin"), "ab") as f:
        f.write(b"\0")
    r = run(MLSEC, "attest", "verify", theirs, "--key", prefix + ".pub.pem", "--model", model)
    check("mlsec names the weights changed after attestation", r.returncode == 1 and "weights.bin" in r.stdout,
          r.stdout)
finish()
