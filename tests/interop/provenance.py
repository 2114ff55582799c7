#!/usr/bin/env python3
"""Interop check for `mlsec provenance` against in-toto 3.1.0, both ways:
links and layouts signed by mlsec pass `in-toto-verify`; links written by
`in-toto-run` and layouts signed by in-toto's own API pass
`mlsec provenance verify`; tampering between steps fails in both tools.

Usage: python3 tests/interop/provenance.py path/to/mlsec path/to/in-toto-venv/bin
Needs: pip install in-toto==3.1.0 cryptography==46.0.3  (.ci/run installs them)
"""
import json
import os
import subprocess
import sys
import tempfile

from harness import check, finish  # noqa: E402  (tests/interop is on sys.path)

MLSEC, BIN = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
PY = os.path.join(BIN, "python")


def run(*cmd, cwd=None):
    return subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd)


def keyid(pub):
    r = run(MLSEC, "provenance", "key", pub)
    return json.loads(r.stdout)


def layout(keys, names):
    """The layout of the tiny ML pipeline; `names` maps role -> keyid."""
    def step(name, who, cmd, materials, products):
        return {"_type": "step", "name": name, "threshold": 1, "pubkeys": [names[who]],
                "expected_command": cmd, "expected_materials": materials,
                "expected_products": products}
    return {
        "_type": "layout", "expires": "2035-01-01T00:00:00Z", "readme": "interop", "keys": keys,
        "steps": [
            step("ingest", "alice", ["cp", "raw/data.csv", "data/ingested.csv"],
                 [["ALLOW", "raw/data.csv"], ["DISALLOW", "*"]],
                 [["CREATE", "data/ingested.csv"], ["DISALLOW", "*"]]),
            step("preprocess", "bob", ["sort", "-o", "data/clean.csv", "data/ingested.csv"],
                 [["MATCH", "data/ingested.csv", "WITH", "PRODUCTS", "FROM", "ingest"], ["DISALLOW", "*"]],
                 [["CREATE", "data/clean.csv"], ["DISALLOW", "*"]]),
            step("train", "carol", ["sh", "train.sh"],
                 [["MATCH", "data/clean.csv", "WITH", "PRODUCTS", "FROM", "preprocess"],
                  ["ALLOW", "train.sh"], ["DISALLOW", "*"]],
                 [["CREATE", "model/*"], ["DISALLOW", "*"]]),
        ],
        "inspect": [{
            "_type": "inspection", "name": "check-model", "run": ["ls", "model"],
            "expected_materials": [["MATCH", "model/*", "WITH", "PRODUCTS", "FROM", "train"],
                                   ["MATCH", "data/clean.csv", "WITH", "PRODUCTS", "FROM", "preprocess"],
                                   ["MATCH", "data/ingested.csv", "WITH", "PRODUCTS", "FROM", "ingest"],
                                   ["MATCH", "*", "WITH", "MATERIALS", "FROM", "ingest"],
                                   ["ALLOW", "train.sh"], ["DISALLOW", "*"]],
            "expected_products": [["MATCH", "*", "WITH", "MATERIALS", "FROM", "check-model"],
                                  ["DISALLOW", "*"]],
        }],
    }


def workdir(base):
    for d in ("raw", "data", "model"):
        os.makedirs(os.path.join(base, d), exist_ok=True)
    with open(os.path.join(base, "raw", "data.csv"), "w") as f:
        f.write("id,label\n3,c\n1,a\n2,b\n")
    with open(os.path.join(base, "train.sh"), "w") as f:
        f.write("sha256sum data/clean.csv > model/weights.bin\nprintf '{\"layers\": 2}\\n' > model/config.json\n")


STEPS = [
    ("ingest", "alice", ["raw/data.csv"], ["data/ingested.csv"], ["cp", "raw/data.csv", "data/ingested.csv"]),
    ("preprocess", "bob", ["data/ingested.csv"], ["data/clean.csv"], ["sort", "-o", "data/clean.csv", "data/ingested.csv"]),
    ("train", "carol", ["data/clean.csv", "train.sh"], ["model"], ["sh", "train.sh"]),
]


def chain(tool, base, keys, dsse=False, tamper=False):
    for name, who, materials, products, cmd in STEPS:
        if tamper and name == "train":
            with open(os.path.join(base, "data", "clean.csv"), "a") as f:
                f.write("9,evil\n")
        if tool == "mlsec":
            args = [MLSEC, "-q", "provenance", "run", "--step", name, "--key", keys[who] + ".priv.pem",
                    "--materials", *materials, "--products", *products] + (["--dsse"] if dsse else []) + ["--", *cmd]
        else:
            args = [os.path.join(BIN, "in-toto-run"), "-n", name, "--signing-key", keys[who] + ".priv.pem",
                    "-m", *materials, "-p", *products] + (["--use-dsse"] if dsse else []) + ["--", *cmd]
        r = run(*args, cwd=base)
        if r.returncode != 0:
            return r.stdout + r.stderr
    return None


def in_toto_verify(base, layout_file, owner_pub):
    return run(os.path.join(BIN, "in-toto-verify"), "-l", layout_file, "--verification-keys", owner_pub,
               "--link-dir", ".", cwd=base)


def mlsec_verify(base, layout_file, owner_pub):
    return run(MLSEC, "provenance", "verify", "--layout", layout_file, "--layout-key", owner_pub,
               "--links", ".", "--workdir", ".", cwd=base)


SIGN_WITH_IN_TOTO = """
import json, sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from in_toto.models.layout import Layout
from in_toto.models.metadata import Metablock, Envelope
signed = json.load(open(sys.argv[1]))
lay = Layout.read(signed)
signer = CryptoSigner(load_pem_private_key(open(sys.argv[2], "rb").read(), None))
if sys.argv[4] == "dsse":
    env = Envelope.from_signable(lay); env.create_signature(signer); env.dump(sys.argv[3])
else:
    mb = Metablock(signed=lay); mb.create_signature(signer); mb.dump(sys.argv[3])
"""

with tempfile.TemporaryDirectory() as tmp:
    keys = {}
    for who, kind in (("owner", "ed25519"), ("alice", "p256"), ("bob", "ed25519"), ("carol", "p256")):
        keys[who] = os.path.join(tmp, who)
        r = run(MLSEC, "keygen", "--type", kind, "--out", keys[who])
        check(f"mlsec keygen {who} ({kind})", r.returncode == 0, r.stderr)
    key_entries, names = {}, {}
    for who in ("alice", "bob", "carol"):
        entry = keyid(keys[who] + ".pub.pem")
        key_entries.update(entry)
        names[who] = next(iter(entry))
    layout_json = os.path.join(tmp, "layout.json")
    with open(layout_json, "w") as f:
        json.dump(layout(key_entries, names), f)
    owner_pub = keys["owner"] + ".pub.pem"

    # Layouts signed by mlsec (classic and DSSE) and by in-toto's API.
    layouts = {}
    for form in ("classic", "dsse"):
        layouts[f"mlsec-{form}"] = os.path.join(tmp, f"mlsec-{form}.layout")
        r = run(MLSEC, "provenance", "sign-layout", layout_json, "--key", keys["owner"] + ".priv.pem",
                "--out", layouts[f"mlsec-{form}"], *(["--dsse"] if form == "dsse" else []))
        check(f"mlsec sign-layout ({form})", r.returncode == 0, r.stderr)
        layouts[f"in-toto-{form}"] = os.path.join(tmp, f"in-toto-{form}.layout")
        r = run(PY, "-c", SIGN_WITH_IN_TOTO, layout_json, keys["owner"] + ".priv.pem",
                layouts[f"in-toto-{form}"], form)
        check(f"in-toto signs the same layout ({form})", r.returncode == 0, r.stderr)

    for tool in ("mlsec", "in-toto"):
        for dsse in (False, True):
            form = "dsse" if dsse else "classic"
            base = os.path.join(tmp, f"{tool}-{form}")
            workdir(base)
            err = chain(tool, base, keys, dsse=dsse)
            check(f"{tool} runs the three steps ({form} links)", err is None, err)
            other = "in-toto" if tool == "mlsec" else "mlsec"
            for lay_name in (f"mlsec-{form}", f"in-toto-{form}"):
                r = in_toto_verify(base, layouts[lay_name], owner_pub)
                check(f"in-toto-verify accepts {tool}'s {form} links with the {lay_name} layout",
                      r.returncode == 0, r.stdout + r.stderr)
                r = mlsec_verify(base, layouts[lay_name], owner_pub)
                check(f"mlsec verifies {tool}'s {form} links with the {lay_name} layout",
                      r.returncode == 0, r.stdout + r.stderr)
            # A label changed between preprocess and train: both tools refuse.
            bad = os.path.join(tmp, f"{tool}-{form}-tampered")
            workdir(bad)
            err = chain(tool, bad, keys, dsse=dsse, tamper=True)
            check(f"{tool} runs a tampered chain ({form})", err is None, err)
            lay = layouts[f"{other}-{form}"]
            r = in_toto_verify(bad, lay, owner_pub)
            check(f"in-toto-verify rejects {tool}'s tampered chain ({form})",
                  r.returncode == 1 and "data/clean.csv" in r.stderr + r.stdout, r.stdout + r.stderr)
            r = mlsec_verify(bad, lay, owner_pub)
            check(f"mlsec rejects {tool}'s tampered chain ({form}) at the same artifact",
                  r.returncode == 1 and "DISALLOW * matched data/clean.csv" in r.stdout.replace("`", ""),
                  r.stdout + r.stderr)
    # The final product altered after the chain: the inspection catches it in both.
    base = os.path.join(tmp, "mlsec-classic")
    with open(os.path.join(base, "model", "weights.bin"), "a") as f:
        f.write("backdoor\n")
    r = in_toto_verify(base, layouts["mlsec-classic"], owner_pub)
    check("in-toto-verify rejects an altered final model", r.returncode == 1, r.stdout + r.stderr)
    r = mlsec_verify(base, layouts["mlsec-classic"], owner_pub)
    check("mlsec rejects an altered final model", r.returncode == 1 and "model/weights.bin" in r.stdout,
          r.stdout + r.stderr)
finish()
