#!/usr/bin/env python3
"""`mlsec env verify` on real virtual environments built with `python3 -m venv`
and `pip install` (hash-checking mode): a clean environment passes; a modified
file, a dropped `.pth` start-up hook, a removed file and a version that differs
from the lockfile are each reported; an OSV advisory matches by PEP 440 range.

Usage: python3 tests/interop/env.py path/to/mlsec
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness import check, finish  # noqa: E402

MLSEC = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
OSV = os.path.join(HERE, "osv")


def run(*cmd, cwd=None):
    return subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd)


def venv(path, packages, tmp):
    """A venv with `packages` installed from downloaded wheels under pip's
    --require-hashes, and the requirements.txt (with hashes) that did it."""
    r = run(sys.executable, "-m", "venv", path)
    assert r.returncode == 0, r.stderr
    py = os.path.join(path, "bin", "python")
    wheels = os.path.join(tmp, "wheels-" + os.path.basename(path))
    r = run(py, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
            "--only-binary=:all:", "-d", wheels, *packages)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = []
    for pkg in packages:
        name, version = pkg.split("==")
        wheel = next(w for w in os.listdir(wheels) if w.lower().startswith(name.lower() + "-" + version))
        h = run(py, "-m", "pip", "hash", "--algorithm", "sha256", os.path.join(wheels, wheel)).stdout
        digest = h.strip().split("--hash=")[-1]
        lines.append(f"{pkg} --hash={digest}")
    req = os.path.join(tmp, os.path.basename(path) + "-requirements.txt")
    with open(req, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = run(py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
            "--find-links", wheels, "--require-hashes", "-r", req)
    assert r.returncode == 0, r.stdout + r.stderr
    site = run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    return py, site, req


def verify(py, *extra):
    r = run(MLSEC, "--format", "json", "env", "verify", "--python", py, *extra)
    try:
        report = json.loads(r.stdout)
    except json.JSONDecodeError:
        report = {"findings": [], "results": {}}
    return r.returncode, report, r.stderr


def has(report, rule, fragment, severity=None):
    return any(f["rule"] == rule and fragment in f["message"] and (severity is None or f["severity"] == severity)
               for f in report["findings"])


with tempfile.TemporaryDirectory() as tmp:
    py, site, req = venv(os.path.join(tmp, "env"), ["six==1.17.0", "idna==3.10"], tmp)

    rc, rep, err = verify(py, "--lock", req)
    check("a clean venv verifies against its hash-pinned requirements", rc == 0, json.dumps(rep["findings"])[:800] + err)
    check("every recorded file with a digest was hashed", rep["results"].get("files_verified", 0) > 50, str(rep["results"]))

    with open(os.path.join(site, "six.py"), "a") as f:
        f.write("\nimport os  # tampered\n")
    rc, rep, _ = verify(py)
    check("a modified module is reported as critical", rc == 1 and has(rep, "MLS-ENV-001", "six.py", "critical"),
          json.dumps(rep["findings"])[:800])

    with open(os.path.join(site, "zz_hook.pth"), "w") as f:
        f.write("import os; os.environ.setdefault('X', '1')\n")
    rc, rep, _ = verify(py)
    check("an unrecorded .pth start-up hook is critical", has(rep, "MLS-ENV-002", "zz_hook.pth", "critical"),
          json.dumps(rep["findings"])[:800])
    check("the hook is listed among start-up hooks", "zz_hook.pth" in rep["results"].get("startup_hooks", []),
          str(rep["results"]))

    os.remove(os.path.join(site, "idna", "codec.py"))
    rc, rep, _ = verify(py)
    check("a removed file is reported", has(rep, "MLS-ENV-001", "idna/codec.py is missing"), json.dumps(rep["findings"])[:800])

    other = os.path.join(tmp, "other-requirements.txt")
    with open(req) as f:
        text = f.read().replace("idna==3.10", "idna==3.9")
    with open(other, "w") as f:
        f.write(text + "numpy>=1.26\n")
    rc, rep, _ = verify(py, "--lock", other)
    check("a version other than the locked one is high", has(rep, "MLS-ENV-003", "idna: installed 3.10, locked 3.9", "high"),
          json.dumps(rep["findings"])[:800])
    check("an unpinned requirement is reported", has(rep, "MLS-ENV-003", "numpy is not pinned"), json.dumps(rep["findings"])[:800])

    rc, rep, _ = verify(py, "--osv", OSV)
    check("idna 3.10 is not matched by an advisory fixed in 3.7", not has(rep, "MLS-ENV-004", "idna"),
          json.dumps(rep["findings"])[:800])
    py2, _, _ = venv(os.path.join(tmp, "old"), ["idna==3.6"], tmp)
    rc, rep, _ = verify(py2, "--osv", OSV)
    check("idna 3.6 is matched by GHSA-jjg7-2v4v-x38h (fixed in 3.7)",
          rc == 1 and has(rep, "MLS-ENV-004", "GHSA-jjg7-2v4v-x38h", "medium") and "fixed in 3.7" in json.dumps(rep),
          json.dumps(rep["findings"])[:800])
finish()
