#!/usr/bin/env python3
"""Benchmark mlsec's engine and evasion attacks against PyTorch + IBM ART on
the same architecture, data, batch size and thread count, in one run.

Usage (a benchmark-only environment, not part of CI; add `--runs N` for
more alternations, `--training-only` to skip the attacks):
    python3 -m venv ~/.cache/mlsec/torch-venv
    ~/.cache/mlsec/torch-venv/bin/pip install torch==2.15.0 adversarial-robustness-toolbox==1.20.1 numpy safetensors packaging
    cargo build --release -p mlsec-cli
    ~/.cache/mlsec/torch-venv/bin/python benches/evasion_peers.py target/release/mlsec

Data: the bundled MNIST sample (data/*.gz), split 8,000 / 2,000 by a fixed
NumPy permutation and written to NPZ files that both tools read.
Architecture: mlsec's `lenet` (conv 5x5 1->32 pad 2, ReLU, maxpool 2, conv 5x5
32->64 pad 2, ReLU, maxpool 2, fc 3136->256, ReLU, fc 256->10), rebuilt in
PyTorch; the script checks that mlsec's trained weights give the same logits
in PyTorch (so the two really are one architecture).
Workloads, 2 threads each (torch.set_num_threads(2), mlsec --threads 2),
medians of 3 runs:
  1. training: one epoch of Adam (lr 1e-3, batch 64): samples/s;
  2. PGD-40, L-inf eps 0.3, step 0.01, on 200 test images (mlsec
     --no-early-stop, so that both run every step): images/s;
  3. APGD-CE, 100 steps, eps 0.3, one restart, on 200 test images
     (mlsec --no-early-stop; ART attacks every still-robust sample): images/s.
"""
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from art.attacks.evasion import AutoProjectedGradientDescent, ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier

MLSEC = os.path.abspath(sys.argv[1])
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `--runs N` (default 3) alternates the tools N times per workload; with
# `--training-only` the attacks are skipped; `--baseline BIN` also trains with
# another mlsec binary in every run, so that two builds are compared under the
# same drift (training only). The machine drifts by +-20 %
# within minutes, so more alternations give steadier medians.
RUNS = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
TRAINING_ONLY = "--training-only" in sys.argv
BASELINE = os.path.abspath(sys.argv[sys.argv.index("--baseline") + 1]) if "--baseline" in sys.argv else None
N_ATTACK = 200
torch.set_num_threads(2)
torch.manual_seed(0)


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * 7 * 7, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def mlsec(*args, binary=None):
    r = subprocess.run([binary or MLSEC, "--format", "json", "--quiet", "--fail-on", "never", *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"mlsec {' '.join(args)} failed: {r.stderr}")
    return json.loads(r.stdout)["results"]


def median(xs):
    return statistics.median(xs)


def main():
    images = idx(os.path.join(ROOT, "data/mnist-sample-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    labels = idx(os.path.join(ROOT, "data/mnist-sample-labels-idx1-ubyte.gz")).astype(np.int64)
    order = np.random.RandomState(20261122).permutation(len(labels))
    tr, te = order[:8000], order[8000:]
    x_train, y_train = images[tr][:, None], labels[tr]
    x_test, y_test = images[te][:, None], labels[te]
    tmp = tempfile.mkdtemp()
    train_npz, test_npz = os.path.join(tmp, "train.npz"), os.path.join(tmp, "test.npz")
    np.savez(train_npz, x=x_train, y=y_train)
    np.savez(test_npz, x=x_test[:N_ATTACK], y=y_test[:N_ATTACK])

    # 1. Training throughput.
    mlsec_train, torch_train, baseline_train = [], [], []
    model_path = os.path.join(tmp, "lenet.safetensors")
    for run in range(RUNS):
        train_args = ["train", "--model", "lenet", "--data", train_npz, "--epochs", "1", "--batch-size", "64",
                      "--seed", str(run), "--threads", "2"]
        if BASELINE:
            r = mlsec(*train_args, "--out", os.path.join(tmp, "baseline.safetensors"), binary=BASELINE)
            baseline_train.append(r["samples_per_second"])
        r = mlsec(*train_args, "--out", model_path)
        mlsec_train.append(r["samples_per_second"])
        net = LeNet()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        perm = torch.randperm(len(yt))
        start = time.perf_counter()
        for b in range(0, len(yt), 64):
            i = perm[b:b + 64]
            opt.zero_grad()
            loss = F.cross_entropy(net(xt[i]), yt[i])
            loss.backward()
            opt.step()
        torch_train.append(len(yt) / (time.perf_counter() - start))
    print(f"training samples/s: mlsec {median(mlsec_train):.0f}, PyTorch {median(torch_train):.0f} "
          f"(ratio {median(mlsec_train) / median(torch_train):.2f}); per run: "
          + ", ".join(f"{m:.0f}/{t:.0f}" for m, t in zip(mlsec_train, torch_train)))
    if BASELINE:
        ratios = [m / b for m, b in zip(mlsec_train, baseline_train)]
        print(f"baseline build {median(baseline_train):.0f} samples/s (ratio to PyTorch "
              f"{median(baseline_train) / median(torch_train):.2f}); this build / baseline, median of per-run "
              f"ratios {median(ratios):.2f}; per run: " + ", ".join(f"{b:.0f}" for b in baseline_train))
    if TRAINING_ONLY:
        return

    # The same weights in both: mlsec's model loaded into PyTorch.
    from safetensors.numpy import load_file
    w = load_file(model_path)
    state = {}
    for k, v in w.items():
        t = torch.from_numpy(v.copy())
        if k.startswith("fc") and k.endswith("weight"):
            t = t.T.contiguous()  # burn stores Linear weights as [in, out]
        state[k] = t
    net.load_state_dict(state)
    net.eval()
    logits_npy = os.path.join(tmp, "logits.npy")
    mlsec("model", "predict", "--model", model_path, "--data", test_npz, "--out", logits_npy)
    with torch.no_grad():
        ref = net(torch.from_numpy(x_test[:N_ATTACK])).numpy()
    diff = float(np.abs(np.load(logits_npy) - ref).max())
    print(f"mlsec's trained LeNet in PyTorch: max logit difference {diff:.2e}")

    clf = PyTorchClassifier(model=net, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10,
                            clip_values=(0.0, 1.0), optimizer=None)
    xa, ya = x_test[:N_ATTACK], y_test[:N_ATTACK]
    rows = []
    for name, mlsec_args, make in [
        ("PGD-40", ["--attack", "pgd", "--steps", "40", "--step-size", "0.01"],
         lambda: ProjectedGradientDescent(clf, norm=np.inf, eps=0.3, eps_step=0.01, max_iter=40, num_random_init=1,
                                          batch_size=128, verbose=False)),
        ("APGD-CE", ["--attack", "apgd-ce", "--steps", "100"],
         lambda: AutoProjectedGradientDescent(clf, norm=np.inf, eps=0.3, eps_step=0.1, max_iter=100, nb_random_init=1,
                                              batch_size=128, loss_type="cross_entropy", verbose=False)),
    ]:
        ours, theirs, ours_robust, theirs_robust = [], [], [], []
        for _ in range(RUNS):
            r = mlsec("attack", "evasion", "--model", model_path, "--data", test_npz, "--eps", "0.3", "--n", str(N_ATTACK),
                      "--no-early-stop", "--threads", "2", *mlsec_args)["evaluation"]
            ours.append(r["samples_per_second"])
            ours_robust.append(r["robust_accuracy"])
            attack = make()
            start = time.perf_counter()
            adv = attack.generate(x=xa, y=ya)
            theirs.append(len(xa) / (time.perf_counter() - start))
            theirs_robust.append(float((clf.predict(adv).argmax(1) == ya).mean()))
        rows.append((name, median(ours), median(theirs), median(ours_robust), median(theirs_robust)))
        print(f"{name} images/s: mlsec {median(ours):.1f}, ART {median(theirs):.1f} (ratio {median(ours) / median(theirs):.2f}); "
              f"robust accuracy mlsec {median(ours_robust):.3f}, ART {median(theirs_robust):.3f}")
    print(json.dumps({"training": [median(mlsec_train), median(torch_train)], "logit_diff": diff,
                      "attacks": rows}))


if __name__ == "__main__":
    main()
