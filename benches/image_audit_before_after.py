#!/usr/bin/env python3
"""Time and peak memory of `mlsec audit leakage --images` for two mlsec
binaries (an older build against the current one), alternating, with a
check that both report the same pairs with the same correlations.

Usage:
    ~/.cache/mlsec/venv/bin/python benches/image_audit_before_after.py OLD_BIN NEW_BIN [--runs N]

(numpy and Pillow are all it needs.)

The splits are made here from the bundled MNIST sample, seeded, as in
benches/stats_peers.py's image section: the first 8,000 digits train, the
last 2,000 test, of which 200 are training digits shifted by one pixel,
brightened, or re-encoded as JPEG (quality 75). Each split is written as
  - a uint8 NPY array (whole grey levels: mlsec's integer products),
  - a float32 NPY array scaled to [0, 1], as models take them (mlsec's
    float screen, then the exact correlation for the close calls),
  - a folder of PNG files;
and a larger training split, the 8,000 digits five times over with their
brightness changed (40,000 images, uint8 NPY), against the same test split.
"""
import json
import os
import statistics
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peak_rss import measured as measure_command  # noqa: E402
from mnist_planted import planted_split  # noqa: E402

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
RUNS = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
if len(ARGS) < 2:
    raise SystemExit(__doc__)
OLD, NEW = (os.path.abspath(b) for b in ARGS[:2])


def measured(cmd, cwd):
    return measure_command(cmd, cwd, ok=(0, 1))


def main():
    train, test, planted = planted_split()
    tmp = tempfile.mkdtemp(prefix="mlsec-image-audit-")
    np.save(os.path.join(tmp, "train.npy"), train)
    np.save(os.path.join(tmp, "test.npy"), test)
    np.save(os.path.join(tmp, "train-f32.npy"), (train / 255.0).astype(np.float32))
    np.save(os.path.join(tmp, "test-f32.npy"), (test / 255.0).astype(np.float32))
    big = np.concatenate([np.minimum(train.astype(np.int32) + 5 * k, 255).astype(np.uint8) for k in range(5)])
    np.save(os.path.join(tmp, "train-40k.npy"), big)
    for name, arr in (("train-png", train), ("test-png", test)):
        os.makedirs(os.path.join(tmp, name))
        for k, img in enumerate(arr):
            Image.fromarray(img).save(os.path.join(tmp, name, f"{k:05d}.png"))
    workloads = [
        ("8,000 vs 2,000, uint8 NPY", "train.npy", "test.npy"),
        ("8,000 vs 2,000, float32 NPY in [0, 1]", "train-f32.npy", "test-f32.npy"),
        ("8,000 vs 2,000, PNG folders", "train-png", "test-png"),
        ("40,000 vs 2,000, uint8 NPY", "train-40k.npy", "test.npy"),
    ]
    print(f"| workload | {os.path.basename(OLD)}: s (median of {RUNS}), peak RSS MiB "
          f"| {os.path.basename(NEW)}: s, peak RSS MiB | speed-up | pairs | same report |")
    print("|---|---|---|---|---|---|")
    for label, tr, te in workloads:
        times = {OLD: [], NEW: []}
        rss = {OLD: 0.0, NEW: 0.0}
        out = {}
        for _ in range(RUNS):
            for b in (OLD, NEW):
                cmd = [b, "-q", "--format", "json", "--fail-on", "never", "audit", "leakage",
                       "--images", "--train", tr, "--test", te]
                t, m, o = measured(cmd, tmp)
                times[b].append(t)
                rss[b] = max(rss[b], m)
                out[b] = o
        r = json.loads(out[NEW])["results"]
        found = {(p[0], p[1]) for p in r["near_duplicates"]} | {(p[0], p[1]) for p in r["exact_duplicates"]}
        truth = {(i, j) for j, i in planted.items()}
        if tr == "train-40k.npy":
            # Each planted digit has five brightened versions in the 40k split.
            truth = {(i + 8000 * k, j) for (i, j) in truth for k in range(5)}
            hits = sum(1 for (i, j) in found if (i, j) in truth)
        else:
            hits = len(found & truth)
        same = json.loads(out[OLD])["results"] == r
        old_t, new_t = statistics.median(times[OLD]), statistics.median(times[NEW])
        print(f"| {label} | {old_t:.2f}, {rss[OLD]:.0f} | {new_t:.2f}, {rss[NEW]:.0f} | {old_t / new_t:.1f}× "
              f"| {len(found)} ({hits} planted) | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
