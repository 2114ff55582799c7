#!/usr/bin/env python3
"""Time and peak memory of `mlsec audit leakage` and `mlsec data gate` on
the files behind docs/BENCHMARKS.md's session 9 before/after tables, for
one or more mlsec binaries (an older build against the current one).

Usage:
    ~/.cache/mlsec/stats-venv/bin/python benches/streaming_before_after.py BIN [BIN ...] [--small]

The data is generated here, seeded, so every run makes the same files:
  - leakage: 200,000 training texts (10-19 of 2,000 words) with a number
    and a label, 2,000 test texts (1,000 near-copies with two words
    changed); then the same training rows ten times (2,000,000 rows).
  - gate: a 5,000-row reference and a 200,000-row batch of three Gaussian
    classes in four features, with repeated ids, negative amounts, flipped
    and unknown labels and far-away rows; then the batch ten times
    (2,000,000 rows). The policy checks schema, outliers and labels.
  - references (session 12): the 2,000,000-row gate batch as the reference
    of `data drift` (the 200,000-row batch as its stream, windows of
    100,000, no MMD) and of `data gate` (the 5,000-row reference as its
    batch); and a 2,000,000-row reference of ten Gaussian features with a
    free-text note and a label (277 MB) for `data drift`, with 200,000
    such rows as its stream.
  - images (session 12): `audit leakage --images` with a training split of
    40,000 random 28×28 uint8 images in one NPY file (31 MB) and a test
    split of 1,000 (every tenth a copy of a training image, half of those
    brightened).
`--small` skips the 2,000,000-row files; `--references` runs only the
reference and image workloads. Each command runs once, in its own
process, measured by a small forking helper (peak RSS from wait4).
"""
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peak_rss import measured  # noqa: E402

import numpy as np
import pandas as pd

BINS = [os.path.abspath(b) for b in sys.argv[1:] if not b.startswith("--")]
SMALL = "--small" in sys.argv
REFERENCES_ONLY = "--references" in sys.argv



def repeat(src, dst, times):
    """`src` ten times over, the first column renumbered (an id of 7 kept)."""
    lines = open(src).read().splitlines()
    with open(dst, "w") as f:
        f.write(lines[0] + "\n")
        k = 0
        for _ in range(times):
            for line in lines[1:]:
                first, rest = line.split(",", 1)
                f.write(f"{7 if first == '7' and 'gate' in dst else k},{rest}\n")
                k += 1


def leakage_files(d):
    rng = np.random.default_rng(20261122 + 3)
    words = [f"w{i}" for i in range(2000)]
    docs = [" ".join(rng.choice(words, size=rng.integers(10, 20))) for _ in range(200_000)]
    test_docs = []
    for j in range(2000):
        if j < 1000:
            w = docs[int(rng.integers(0, len(docs)))].split()
            for _ in range(2):
                w[int(rng.integers(0, len(w)))] = str(rng.choice(words))
            test_docs.append(" ".join(w))
        else:
            test_docs.append(" ".join(rng.choice(words, size=rng.integers(10, 20))))
    pd.DataFrame({"text": docs, "x": rng.normal(size=len(docs)),
                  "label": rng.integers(0, 2, size=len(docs))}).to_csv(f"{d}/leak-train.csv", index_label="id")
    pd.DataFrame({"text": test_docs, "x": rng.normal(size=len(test_docs)),
                  "label": rng.integers(0, 2, size=len(test_docs))}).to_csv(f"{d}/leak-test.csv", index_label="id")


def gate_files(d):
    random.seed(5)
    centers = [[0, 0, 0, 0], [4, 4, 0, 0], [0, 4, 4, 4]]

    def dataset(path, n):
        with open(path, "w") as f:
            f.write("id,f0,f1,f2,f3,amount,label\n")
            for i in range(n):
                c = random.randrange(3)
                row = [f"{centers[c][k] + random.gauss(0, 1):.4f}" for k in range(4)]
                amount = f"{random.uniform(0, 100):.2f}"
                if random.random() < 0.01:
                    amount = "-5"
                ident = i if random.random() > 0.01 else 7
                label = "abc"[c]
                if random.random() < 0.02:
                    label = "abc"[(c + 1) % 3]
                if random.random() < 0.005:
                    label = "z"
                if random.random() < 0.01:
                    row = [f"{random.uniform(15, 20):.3f}" for _ in range(4)]
                f.write(f"{ident},{','.join(row)},{amount},{label}\n")

    dataset(f"{d}/gate-ref.csv", 5000)
    dataset(f"{d}/gate-batch.csv", 200_000)
    with open(f"{d}/policy.toml", "w") as f:
        f.write('label = "label"\n[schema]\nunknown_columns = "ignore"\n'
                '[schema.columns.id]\ntype = "int"\nunique = true\n'
                '[schema.columns.amount]\ntype = "float"\nmin = 0\n'
                '[schema.columns.label]\ntype = "string"\nallowed = ["a", "b", "c"]\n'
                '[distribution]\nks_max = 1.0\npsi_max = 100\nlabel_pvalue_min = 0.0\n'
                '[outliers]\nthreshold = -0.62\n[labels]\nk = 10\nmin_agreement = 0.3\n')


def text_table(path, rows, seed, features=10):
    random.seed(seed)
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(features)) + ",note,label\n")
        for i in range(rows):
            xs = ",".join(f"{random.gauss(0, 1):.6f}" for _ in range(features))
            f.write(f"{xs},some free text describing the row {i},{i % 3}\n")


def main():
    import json
    with tempfile.TemporaryDirectory() as d:
        if not REFERENCES_ONLY:
            leakage_files(d)
        gate_files(d)
        sizes = [("", "200k")] if SMALL else [("", "200k"), ("-big", "2M")]
        if not SMALL:
            if not REFERENCES_ONLY:
                repeat(f"{d}/leak-train.csv", f"{d}/leak-train-big.csv", 10)
            repeat(f"{d}/gate-batch.csv", f"{d}/gate-batch-big.csv", 10)
        print("| workload | binary | seconds | peak RSS (MiB) | result |")
        print("|---|---|---|---|---|")
        for suffix, rows in [] if REFERENCES_ONLY else sizes:
            for b in BINS:
                t, rss, out = measured([b, "-q", "--format", "json", "--fail-on", "never", "audit", "leakage",
                                        "--train", f"leak-train{suffix}.csv", "--test", "leak-test.csv",
                                        "--ignore", "id", "--text", "text", "--label", "label"], d)
                res = json.loads(out)["results"]
                print(f"| audit leakage, {rows} training rows | {b} | {t:.2f} | {rss:.0f} "
                      f"| {len(res['near_duplicates'])} near-duplicate pairs |")
            for b in BINS:
                for f in ("q.csv", "a.csv", "gate.db"):
                    if os.path.exists(f"{d}/{f}"):
                        os.remove(f"{d}/{f}")
                t, rss, out = measured([b, "-q", "--format", "json", "--fail-on", "never", "data", "gate",
                                        "--reference", "gate-ref.csv", "--batch", f"gate-batch{suffix}.csv",
                                        "--policy", "policy.toml", "--quarantine", "q.csv", "--accepted", "a.csv",
                                        "--ledger", "gate.db"], d)
                res = json.loads(out)["results"]
                print(f"| data gate, {rows}-row batch | {b} | {t:.2f} | {rss:.0f} "
                      f"| {res['decision']}, {len(res['quarantined'])} rows held |")
        if SMALL:
            return

        def each_binary(workload, args, summary):
            for b in BINS:
                t, rss, out = measured([b, "-q", "--format", "json", "--fail-on", "never", *args], d)
                print(f"| {workload} | {b} | {t:.2f} | {rss:.0f} | {summary(json.loads(out)['results'])} |")

        each_binary("data drift, 2M-row reference",
                    ["data", "drift", "--reference", "gate-batch-big.csv", "--stream", "gate-batch.csv",
                     "--window", "100000", "--no-mmd"],
                    lambda r: f"{len(r['windows'])} windows")
        each_binary("data gate, 2M-row reference",
                    ["data", "gate", "--reference", "gate-batch-big.csv", "--batch", "gate-ref.csv",
                     "--policy", "policy.toml"],
                    lambda r: f"{r['decision']}, {len(r['quarantined'])} rows held")
        rng = np.random.default_rng(12)
        train = rng.integers(0, 256, size=(40_000, 28, 28), dtype=np.uint8)
        test = rng.integers(0, 256, size=(1_000, 28, 28), dtype=np.uint8)
        for j in range(0, 1_000, 10):
            copy = train[(j * 37) % 40_000].astype(np.float64)
            test[j] = np.minimum(copy * 0.8 + 40, 255) if j % 20 else copy
        np.save(f"{d}/train-images.npy", train)
        np.save(f"{d}/test-images.npy", test)
        each_binary("audit leakage --images, 40,000 training images (NPY)",
                    ["audit", "leakage", "--images", "--train", "train-images.npy", "--test", "test-images.npy"],
                    lambda r: f"{len(r['exact_duplicates'])} exact, {len(r['near_duplicates'])} near")
        text_table(f"{d}/ref-text.csv", 2_000_000, 12)
        text_table(f"{d}/stream-text.csv", 200_000, 13)
        each_binary("data drift, 2M-row reference with a text column",
                    ["data", "drift", "--reference", "ref-text.csv", "--stream", "stream-text.csv",
                     "--window", "100000", "--no-mmd"],
                    lambda r: f"{len(r['windows'])} windows, {len(r['features'])} features")

if __name__ == "__main__":
    main()
