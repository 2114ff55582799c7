#!/usr/bin/env python3
"""`mlsec data drift` with its reference held in memory against the same
reference sorted on disk (`--reference-memory`), for docs/BENCHMARKS.md.

Usage:
    ~/.cache/mlsec/stats-venv/bin/python benches/drift_reference_spill.py BIN [--rows N]

Writes, seeded, a reference of N rows (default 2,000,000) of ten Gaussian
features, a free-text note and a label, and a 200,000-row stream whose
second half drifts in one feature. Runs `data drift` (MMD on) with windows
of 1,000 and of 100,000 rows, once with the default budget (the reference
held in memory) and once with `--reference-memory 32` (sorted into
temporary files), and reports for each: seconds, the peak of the process's
anonymous memory (heap: what must fit in RAM) and of its file-backed pages
(the mapped sorted columns: page cache the kernel may drop), both polled
from /proc every 2 ms, and whether the JSON report is byte-identical to the
in-memory one.
"""

import os
import random
import sys
import tempfile

from peak_memory import run

BIN = os.path.abspath(sys.argv[1])
ROWS = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 2_000_000


def table(path, rows, seed, drift_after=None):
    rnd = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(10)) + ",note,label\n")
        for i in range(rows):
            shift = 0.4 if drift_after is not None and i >= drift_after else 0.0
            xs = [rnd.gauss(0, 1) for _ in range(10)]
            xs[0] += shift
            f.write(",".join(f"{x:.6f}" for x in xs) + f",free text about row {i},{i % 3}\n")


def main():
    with tempfile.TemporaryDirectory() as d:
        table(f"{d}/ref.csv", ROWS, 31)
        table(f"{d}/stream.csv", 200_000, 32, drift_after=100_000)
        size = os.path.getsize(f"{d}/ref.csv")
        print(f"reference: {ROWS:,} rows, {size / 1e6:.0f} MB; stream: 200,000 rows\n")
        print("| window | reference | seconds | peak anonymous MiB | peak file-backed MiB | report |")
        print("|---|---|---|---|---|---|")
        for window in ["1000", "100000"]:
            base = [BIN, "-q", "--format", "json", "--fail-on", "never", "data", "drift",
                    "--reference", "ref.csv", "--stream", "stream.csv", "--window", window]
            t, anon, file, whole = run(base, d)
            print(f"| {window} | in memory | {t:.2f} | {anon:.0f} | {file:.0f} | — |")
            t, anon, file, spilled = run(base + ["--reference-memory", "32"], d)
            same = "identical" if spilled == whole else "DIFFERENT"
            print(f"| {window} | sorted on disk (`--reference-memory 32`) | {t:.2f} | {anon:.0f} | {file:.0f} | {same} |")


if __name__ == "__main__":
    main()
