#!/usr/bin/env python3
"""Interop check for 7z in `mlsec scan`: archives written by py7zr, the
reference pure-Python 7-Zip implementation, with every coder and filter it
offers, solid and not, with directories and empty files beside the members.
A harmless pickle payload inside must be found critical, naming its member;
the same archive around plain data must give no finding at all.

Nothing is unpickled: the payload calls `posix.system("true")` only if
loaded, and is only ever written.

Usage: python3 tests/interop/sevenzip.py path/to/mlsec
Needs: pip install py7zr   (.ci/run installs it)
"""
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile

import py7zr

from harness import check, finish  # noqa: E402  (tests/interop is on sys.path)

MLSEC = sys.argv[1] if len(sys.argv) > 1 else "target/debug/mlsec"


class Payload:
    def __reduce__(self):
        import posix
        return posix.system, ("true",)


MALICIOUS = pickle.dumps(Payload(), protocol=2)
BENIGN = pickle.dumps({"epoch": 7, "weights": [0.25] * 64}, protocol=4)

CODERS = {
    "lzma2": [{"id": py7zr.FILTER_LZMA2, "preset": 9}],
    "lzma": [{"id": py7zr.FILTER_LZMA}],
    "x86-lzma2": [{"id": py7zr.FILTER_X86}, {"id": py7zr.FILTER_LZMA2}],
    "arm-lzma2": [{"id": py7zr.FILTER_ARM}, {"id": py7zr.FILTER_LZMA2}],
    "delta-lzma": [{"id": py7zr.FILTER_DELTA, "dist": 4}, {"id": py7zr.FILTER_LZMA}],
    "bzip2": [{"id": py7zr.FILTER_BZIP2}],
    "deflate": [{"id": py7zr.FILTER_DEFLATE}],
    "ppmd": [{"id": py7zr.FILTER_PPMD, "order": 8, "mem": "16m"}],
    "copy": [{"id": py7zr.FILTER_COPY}],
}


def write_7z(path, members, filters):
    with py7zr.SevenZipFile(path, "w", filters=filters) as z:
        for name, blob in members:
            if name.endswith("/"):
                # py7zr records directories from the file system.
                with tempfile.TemporaryDirectory() as empty:
                    z.write(empty, name.rstrip("/"))
            else:
                z.writestr(blob, name)


def scan(path):
    out = subprocess.run([MLSEC, "scan", path, "--format", "json", "--fail-on", "never"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr
    report = json.loads(out.stdout)
    return report, ""


def main():
    with tempfile.TemporaryDirectory() as d:
        for label, filters in CODERS.items():
            for payload, benign in ((MALICIOUS, False), (BENIGN, True)):
                members = [("model/", b""), ("model/config.json", b'{"layers": 3}' * 40),
                           ("model/empty.txt", b""), ("model/weights.bin", payload),
                           ("model/notes.md", b"# card\n" * 30)]
                path = os.path.join(d, f"{label}-{'benign' if benign else 'malicious'}.7z")
                write_7z(path, members, filters)
                # py7zr reads back what it wrote, or the archive is not a fair test.
                with py7zr.SevenZipFile(path) as z:
                    names = set(z.getnames())
                check(f"py7zr reads its own {label} archive", "model/weights.bin" in names, names)
                report, err = scan(path)
                if report is None:
                    check(f"mlsec scans {label}", False, err)
                    continue
                kinds = [f["kind"] for f in report["results"]["files"]]
                findings = report["findings"]
                if benign:
                    check(f"{label}: plain data in 7z gives no finding", kinds == ["7z"] and not findings,
                          (kinds, findings))
                else:
                    hits = [f for f in findings if f["severity"] == "critical"
                            and f["location"].get("member") == "model/weights.bin"]
                    check(f"{label}: pickle payload in 7z is critical, at its member", len(hits) == 1,
                          findings)
        # A solid archive with the payload behind a larger member that
        # does not compress: reaching it means decoding that member first.
        buf = io.BytesIO()
        with py7zr.SevenZipFile(buf, "w") as z:
            z.writestr(os.urandom(1 << 20), "archive/data/0")
            z.writestr(MALICIOUS, "archive/data.pkl")
        path = os.path.join(d, "solid-tail.7z")
        with open(path, "wb") as f:
            f.write(buf.getvalue())
        report, err = scan(path)
        ok = report is not None and any(f["severity"] == "critical"
                                         and f["location"].get("member") == "archive/data.pkl"
                                         for f in report["findings"])
        check("payload behind 1 MiB of incompressible data in a solid block is found", ok,
              report["findings"] if report else err)
        # An encrypted archive cannot be read: reported, never passed.
        path = os.path.join(d, "encrypted.7z")
        with py7zr.SevenZipFile(path, "w", password="secret") as z:
            z.writestr(MALICIOUS, "model.pkl")
        report, err = scan(path)
        ok = report is not None and any(f["rule"] == "MLS-SCAN-005" and "encrypted" in f["message"]
                                        for f in report["findings"])
        check("encrypted 7z is reported as not analysed", ok, report["findings"] if report else err)
    finish()


if __name__ == "__main__":
    main()
