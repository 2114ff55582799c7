#!/usr/bin/env python3
"""`mlsec data gate` and `mlsec data outliers` with the reference held in
memory against the same reference sorted on disk (`--reference-memory`),
for docs/BENCHMARKS.md.

Usage:
    python3 benches/gate_reference_spill.py BIN [--rows N]

Writes, seeded, a reference of N rows (default 2,000,000) of ten features
in three Gaussian classes with a label, and a 100,000-row batch of the
same classes in which every 33rd row is moved far away and every 29th has
its label flipped. Gates the batch with the Isolation Forest and label
screens on, once with an outlier threshold and once with a contamination
offset (which scores every reference row), then the other way round (the
large file as the batch, the distribution screen only, so that the batch's
numbers spill), then runs `data outliers --contamination`; each once with the default budget (held in memory) and
once with `--reference-memory 32` (sorted into temporary files, the sampled
rows read again). Reports seconds, the peak of the process's anonymous
memory (heap) and of its file-backed pages (the mapped sorted columns),
polled from /proc every 2 ms, and whether the JSON report is
byte-identical to the in-memory one.
"""

import os
import random
import sys
import tempfile

from peak_memory import run

CENTRES = [[0.0] * 10, [3.0] * 5 + [0.0] * 5, [0.0] * 5 + [3.0] * 5]


def table(path, rows, seed, poisoned=False):
    rnd = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(10)) + ",label\n")
        for i in range(rows):
            c = rnd.randrange(3)
            xs = [m + rnd.gauss(0, 1) for m in CENTRES[c]]
            label = c
            if poisoned and i % 33 == 5:
                xs = [x + 9.0 for x in xs]
            if poisoned and i % 29 == 7:
                label = (c + 1) % 3
            f.write(",".join(f"{x:.5f}" for x in xs) + f",{label}\n")


POLICY = """label = "label"
[distribution]
ks_max = 0.5
psi_max = 10.0
label_pvalue_min = 0.0
[outliers]
{outliers}
[labels]
k = 10
min_agreement = 0.3
"""


def main():
    bin_ = os.path.abspath(sys.argv[1])
    rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 2_000_000
    with tempfile.TemporaryDirectory() as d:
        table(f"{d}/ref.csv", rows, 41)
        table(f"{d}/batch.csv", 100_000, 42, poisoned=True)
        for name, outliers in [("threshold", "threshold = -0.6"), ("contamination", "contamination = 0.01")]:
            with open(f"{d}/{name}.toml", "w") as f:
                f.write(POLICY.format(outliers=outliers))
        with open(f"{d}/distribution.toml", "w") as f:
            f.write(POLICY[:POLICY.index("[outliers]")])
        size = os.path.getsize(f"{d}/ref.csv")
        print(f"reference: {rows:,} rows, {size / 1e6:.0f} MB; batch: 100,000 rows\n")
        print("| command | reference | seconds | peak anonymous MiB | peak file-backed MiB | report |")
        print("|---|---|---|---|---|---|")
        common = [bin_, "-q", "--format", "json", "--fail-on", "never", "data"]
        cases = [
            ("gate, outlier threshold", ["gate", "--reference", "ref.csv", "--batch", "batch.csv",
                                         "--policy", "threshold.toml"]),
            ("gate, contamination 0.01", ["gate", "--reference", "ref.csv", "--batch", "batch.csv",
                                          "--policy", "contamination.toml"]),
            # The roles swapped: a large batch against a small reference,
            # the distribution screen only (KS, PSI, label chi-square).
            ("gate, the reference as a batch against the batch, distribution screen only",
             ["gate", "--reference", "batch.csv", "--batch", "ref.csv", "--policy", "distribution.toml"]),
            ("outliers, contamination 0.01", ["outliers", "--reference", "ref.csv", "--batch",
                                              "batch.csv", "--label", "label",
                                              "--contamination", "0.01"]),
        ]
        for name, args in cases:
            t, anon, file, held = run(common + args, d)
            print(f"| {name} | in memory | {t:.2f} | {anon:.0f} | {file:.0f} | — |")
            t, anon, file, spilled = run(common + args + ["--reference-memory", "32"], d)
            same = "identical" if spilled == held else "DIFFERENT"
            print(f"| {name} | sorted on disk (`--reference-memory 32`) | {t:.2f} | {anon:.0f} | {file:.0f} | {same} |")


if __name__ == "__main__":
    main()
