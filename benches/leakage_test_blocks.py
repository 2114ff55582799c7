#!/usr/bin/env python3
"""Time and peak memory of `mlsec audit leakage --text` with the test split
held in one block (the default --test-memory of 1 GiB) and in blocks of a
smaller --test-memory, and whether the reports are the same.

Usage:
    ~/.cache/mlsec/stats-venv/bin/python benches/leakage_test_blocks.py BIN [--test-rows N] [--runs N]

The data is generated here, seeded: 100,000 training texts (10-19 of 2,000
words) with a number, a date and a label; a test split of --test-rows texts
(default 400,000), of which every 20th is a training row with two words
changed and every 50th a training row copied whole. Each command runs in
its own process, measured by a small forking helper (peak RSS from wait4);
the figures are medians over --runs (default 3) runs.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peak_rss import measured  # noqa: E402

import numpy as np
import pandas as pd


def splits(d, test_rows):
    rng = np.random.default_rng(20261124)
    words = np.array([f"w{i}" for i in range(2000)])
    n_train = 100_000
    docs = [" ".join(rng.choice(words, size=rng.integers(10, 20))) for _ in range(n_train)]
    x = rng.normal(size=n_train).round(6)
    days = rng.integers(1, 28, size=n_train)
    labels = rng.integers(0, 2, size=n_train)
    pd.DataFrame({"text": docs, "x": x, "day": [f"2026-02-{d:02}" for d in days],
                  "label": labels}).to_csv(f"{d}/train.csv", index_label="id")
    test = {"text": [], "x": [], "day": [], "label": []}
    for j in range(test_rows):
        if j % 50 == 0:
            i = int(rng.integers(0, n_train))
            row = (docs[i], x[i], f"2026-02-{days[i]:02}", labels[i])
        elif j % 20 == 0:
            i = int(rng.integers(0, n_train))
            w = docs[i].split()
            for _ in range(2):
                w[int(rng.integers(0, len(w)))] = str(rng.choice(words))
            row = (" ".join(w), round(rng.normal(), 6), "2026-03-01", rng.integers(0, 2))
        else:
            row = (" ".join(rng.choice(words, size=rng.integers(10, 20))), round(rng.normal(), 6),
                   "2026-03-01", rng.integers(0, 2))
        for k, v in zip(test, row):
            test[k].append(v)
    pd.DataFrame(test).to_csv(f"{d}/test.csv", index_label="id")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("--test-rows", type=int, default=400_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    b = os.path.abspath(a.bin)
    with tempfile.TemporaryDirectory() as d:
        splits(d, a.test_rows)
        mib = lambda f: os.path.getsize(f"{d}/{f}") / 2**20
        print(f"train.csv {mib('train.csv'):.1f} MiB, test.csv {mib('test.csv'):.1f} MiB "
              f"({a.test_rows} rows), median of {a.runs} runs")
        print("| --test-memory (MiB) | test blocks | seconds | peak RSS (MiB) | exact | near | same report |")
        print("|---|---|---|---|---|---|---|")
        whole = None
        for memory in [1024, 256, 64, 16]:
            times, peaks = [], []
            for _ in range(a.runs):
                t, rss, out = measured([b, "-q", "--format", "json", "--fail-on", "never", "audit", "leakage",
                                        "--train", "train.csv", "--test", "test.csv", "--ignore", "id",
                                        "--text", "text", "--label", "label", "--time", "day",
                                        "--test-memory", str(memory)], d)
                times.append(t)
                peaks.append(rss)
            report = json.loads(out)
            blocks = report["results"].pop("test_blocks", 1)
            if whole is None:
                whole = report
            same = report["results"] == whole["results"] and report["findings"] == whole["findings"]
            res = report["results"]
            print(f"| {memory} | {blocks} | {statistics.median(times):.2f} | {statistics.median(peaks):.0f} "
                  f"| {len(res['exact_duplicates'])} | {len(res['near_duplicates'])} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
