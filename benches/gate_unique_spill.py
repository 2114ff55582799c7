#!/usr/bin/env python3
"""Time and peak memory of `mlsec data gate` with a `unique` column whose
values are held in memory (the default --reference-memory of 1 GiB) and
written to disk past a smaller budget, and whether the outcomes are the same.

Usage:
    python3 benches/gate_unique_spill.py BIN [--rows N] [--runs N]

The data is generated here, seeded: a batch of --rows rows (default
4,000,000) with a 32-character hexadecimal `id` that repeats every 1,000th
row's id 250 rows later, and an `amount`; a 1,000-row reference. The policy
checks the schema only (`id` unique, `amount` at least 0). Each command runs
in its own process, measured by a small forking helper (peak RSS from
wait4); the figures are medians over --runs (default 3).
"""
import argparse
import json
import os
import random
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peak_rss import measured  # noqa: E402

POLICY = """[schema]
unknown_columns = "ignore"
[schema.columns.id]
type = "string"
unique = true
[schema.columns.amount]
type = "float"
min = 0
[distribution]
ks_max = 1.0
psi_max = 1000.0
"""


def batch(path, rows, seed):
    rng = random.Random(seed)
    ids = []
    with open(path, "w") as f:
        f.write("id,amount\n")
        for i in range(rows):
            ident = f"{rng.getrandbits(128):032x}"
            if i % 1000 == 250 and i >= 1000:
                ident = ids[i - 250]
            ids.append(ident)
            f.write(f"{ident},{rng.uniform(0, 100):.2f}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    b = os.path.abspath(a.bin)
    with tempfile.TemporaryDirectory() as d:
        batch(f"{d}/batch.csv", a.rows, 1)
        batch(f"{d}/ref.csv", 1000, 2)
        with open(f"{d}/policy.toml", "w") as f:
            f.write(POLICY)
        size = os.path.getsize(f"{d}/batch.csv") / 2**20
        print(f"batch.csv {size:.0f} MiB ({a.rows} rows), median of {a.runs} runs")
        print("| --reference-memory (MiB) | seconds | peak RSS (MiB) | rows held | same outcome |")
        print("|---|---|---|---|---|")
        first = None
        for memory in [1024, 64, 16]:
            times, peaks = [], []
            for _ in range(a.runs):
                t, rss, out = measured([b, "-q", "--format", "json", "--fail-on", "never", "data", "gate",
                                        "--reference", "ref.csv", "--batch", "batch.csv", "--policy", "policy.toml",
                                        "--reference-memory", str(memory)], d)
                times.append(t)
                peaks.append(rss)
            report = json.loads(out)
            if first is None:
                first = report
            same = report["results"] == first["results"] and report["findings"] == first["findings"]
            print(f"| {memory} | {statistics.median(times):.2f} | {statistics.median(peaks):.0f} "
                  f"| {len(report['results']['quarantined'])} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
