#!/usr/bin/env python3
"""Benchmark mlsec's KS screen and Isolation Forest against scipy and
scikit-learn, in one run, on the same data.

Usage:
    python3 -m venv ~/.cache/mlsec/stats-venv
    ~/.cache/mlsec/stats-venv/bin/pip install numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pandas pyarrow datasketch imagehash
    cargo build --release -p mlsec-data --examples
    cargo build --release -p mlsec-cli
    ~/.cache/mlsec/stats-venv/bin/python benches/stats_peers.py target/release/mlsec

Workloads (issue 5):
  1. KS on 20 features, 1,000,000 reference rows against a 100,000-row batch:
     scipy.stats.ks_2samp per feature on arrays already in memory, against
     `mlsec data drift --window 100000 --no-mmd` end to end (reading both
     Parquet files included) and against the same computation on arrays
     already in memory (the `screens` example: the like-for-like figure);
     statistics and p-values compared.
  2. Isolation Forest fit on 1,000,000 rows x 8 features and scoring a
     100,000-row batch with 2 % planted outliers: scikit-learn (fit and
     score_samples timed apart) against `mlsec data outliers` end to end
     and against fit + score on arrays in memory (the `screens` example);
     ROC AUC of both on the planted outliers.
  3. MinHash/LSH near-duplicate texts against datasketch, 4. image
     near-duplicates against imagehash (both slow: one run each).
  5. Reading CSV and Parquet tables against pandas (`read_csv`,
     `read_parquet`): mlsec's readers timed in-process by the
     `read_table` example (`cargo build --release -p mlsec-data --examples`),
     as typed tables (`data inspect`, the gate) and as numeric frames
     (drift, outliers).
  6. Drift over CSV streams of 1M and 4M rows read in chunks: time and peak
     memory (RSS) of `mlsec data drift` against pandas `read_csv(chunksize=)`
     with `scipy.stats.ks_2samp` per window, each in its own process.
  7. The leakage audit of a 2M-row training CSV streamed past the test
     split: time and peak memory against pandas reading both splits whole
     and joining on row hashes (exact duplicates only).
Medians of 3 runs (5 for reading); n_jobs left at scikit-learn's default.
`--only ks,if,minhash,images,read,stream,leakstream` runs a subset.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peak_rss import PEAK_RSS_HELPER  # noqa: E402

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

MLSEC = os.path.abspath(sys.argv[1])
READ_TABLE = os.path.join(os.path.dirname(MLSEC), "examples", "read_table")
SCREENS = os.path.join(os.path.dirname(MLSEC), "examples", "screens")
ONLY = set(sys.argv[sys.argv.index("--only") + 1].split(",")) if "--only" in sys.argv else None
RUNS = 3


def wanted(section):
    return ONLY is None or section in ONLY


def median_time(fn, runs=RUNS):
    ts, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


# Each command runs under a small helper that measures its peak RSS
# (benches/peak_rss.py says why).

def run_measured(cmd):
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", PEAK_RSS_HELPER, *cmd], capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    kib = int(r.stderr.rsplit("MAXRSS_KIB", 1)[1])
    return elapsed, kib / 1024, r.stdout


def screens(*args):
    """The `screens` example: the median of 3 in-process runs on arrays in memory."""
    r = subprocess.run([SCREENS, *args, "--runs", str(RUNS)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout)


def mlsec(*args):
    r = subprocess.run([MLSEC, "-q", "--format", "json", "--fail-on", "never", *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout)


with tempfile.TemporaryDirectory() as tmp:
    if wanted("ks"):
        rng = np.random.default_rng(20261122 + 1)
        # 1. KS.
        names = [f"x{i}" for i in range(20)]
        ref = rng.normal(size=(1_000_000, 20))
        batch = rng.normal(size=(100_000, 20))
        batch[:, :5] += 0.02  # a small shift in five features
        ref_path, batch_path = os.path.join(tmp, "ref.parquet"), os.path.join(tmp, "batch.parquet")
        pd.DataFrame(ref, columns=names).to_parquet(ref_path)
        pd.DataFrame(batch, columns=names).to_parquet(batch_path)
        t_scipy, sp = median_time(lambda: [stats.ks_2samp(ref[:, i], batch[:, i]) for i in range(20)])
        t_mlsec, ours = median_time(lambda: mlsec("data", "drift", "--reference", ref_path, "--stream", batch_path,
                                                  "--window", "100000", "--no-mmd"))
        feats = ours["results"]["windows"][0]["features"]
        max_d = max(abs(f["ks"]["statistic"] - s.statistic) for f, s in zip(feats, sp))
        max_p = max(abs(f["ks"]["pvalue"] - s.pvalue) / max(s.pvalue, 1e-300) for f, s in zip(feats, sp))
        in_memory = screens("ks", ref_path, batch_path)
        assert in_memory["ks"] == [[f["ks"]["statistic"], f["ks"]["pvalue"]] for f in feats], "in-memory KS differs"
        t_mem = in_memory["seconds"]
        print("## KS, 20 features, 1,000,000 reference rows vs a 100,000-row batch (median of 3)\n")
        print("| tool | seconds | speed-up |")
        print("|---|---|---|")
        print(f"| scipy.stats.ks_2samp x 20 (arrays in memory) | {t_scipy:.3f} | 1.0x |")
        print(f"| mlsec, arrays in memory (`screens ks`, like for like) | {t_mem:.3f} | {t_scipy / t_mem:.1f}x |")
        print(f"| mlsec data drift (reads both Parquet files) | {t_mlsec:.3f} | {t_scipy / t_mlsec:.1f}x |")
        print(f"\nlargest difference from scipy: statistic {max_d:.1e}, p-value {max_p:.1e} (relative)\n")

    if wanted("if"):
        rng = np.random.default_rng(20261122 + 2)
        # 2. Isolation Forest.
        d = 8
        ref = rng.normal(size=(1_000_000, d))
        inl = rng.normal(size=(98_000, d))
        out = rng.uniform(-5, 5, size=(2_000, d))
        batch = np.vstack([inl, out])
        truth = np.r_[np.zeros(len(inl)), np.ones(len(out))]
        cols = [f"f{i}" for i in range(d)]
        ref_path, batch_path = os.path.join(tmp, "if-ref.parquet"), os.path.join(tmp, "if-batch.parquet")
        pd.DataFrame(ref, columns=cols).to_parquet(ref_path)
        pd.DataFrame(batch, columns=cols).to_parquet(batch_path)
        t_fit, forest = median_time(lambda: IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(ref))
        t_score, sk_scores = median_time(lambda: forest.score_samples(batch))
        scores_path = os.path.join(tmp, "scores.npy")
        t_m, _ = median_time(lambda: mlsec("data", "outliers", "--reference", ref_path, "--batch", batch_path,
                                           "--scores-out", scores_path))
        ours = np.load(scores_path)
        in_memory = screens("if", ref_path, batch_path)
        assert in_memory["score_sum"] == sum(ours.tolist()), "in-memory scores differ from the CLI's"
        t_mem = in_memory["seconds"]
        auc_sk, auc_m = roc_auc_score(truth, -sk_scores), roc_auc_score(truth, -ours)
        print("## Isolation Forest: fit on 1,000,000 x 8, score 100,000 rows (2 % planted outliers; median of 3)\n")
        print("| tool | fit (s) | score (s) | total (s) | ROC AUC | speed-up |")
        print("|---|---|---|---|---|---|")
        print(f"| scikit-learn IsolationForest (arrays in memory) | {t_fit:.3f} | {t_score:.3f} | {t_fit + t_score:.3f} "
              f"| {auc_sk:.4f} | 1.0x |")
        print(f"| mlsec, arrays in memory (`screens if`, like for like) | | | {t_mem:.3f} | {auc_m:.4f} "
              f"| {(t_fit + t_score) / t_mem:.1f}x |")
        print(f"| mlsec data outliers (reads both Parquet files) | | | {t_m:.3f} | {auc_m:.4f} "
              f"| {(t_fit + t_score) / t_m:.1f}x |")

    if wanted("minhash"):
        rng = np.random.default_rng(20261122 + 3)
        # 3. MinHash/LSH near-duplicate search: 200,000 short training texts and
        # 2,000 test texts, 1,000 of them near-copies (two words changed).
        words = [f"w{i}" for i in range(2000)]
        docs = [" ".join(rng.choice(words, size=rng.integers(10, 20))) for _ in range(200_000)]
        planted, test_docs = [], []
        for j in range(2000):
            if j < 1000:
                i = int(rng.integers(0, len(docs)))
                d = docs[i].split()
                for _ in range(2):
                    d[int(rng.integers(0, len(d)))] = str(rng.choice(words))
                planted.append((i, j))
                test_docs.append(" ".join(d))
            else:
                test_docs.append(" ".join(rng.choice(words, size=rng.integers(10, 20))))
        train_path, test_path = os.path.join(tmp, "text-train.csv"), os.path.join(tmp, "text-test.csv")
        pd.DataFrame({"text": docs}).to_csv(train_path, index_label="id")
        pd.DataFrame({"text": test_docs}).to_csv(test_path, index_label="id")

        def shingles(t, k=5):
            t = " ".join(t.lower().split())
            return {t[i:i + k].encode() for i in range(max(1, len(t) - k + 1))}

        def datasketch_run():
            from datasketch import MinHash, MinHashLSH
            lsh = MinHashLSH(threshold=0.5, num_perm=128)
            for i, d in enumerate(docs):
                m = MinHash(num_perm=128)
                m.update_batch(list(shingles(d)))
                lsh.insert(i, m)
            found = set()
            for j, d in enumerate(test_docs):
                m = MinHash(num_perm=128)
                m.update_batch(list(shingles(d)))
                for i in lsh.query(m):
                    found.add((i, j))
            return found

        t_ds, ds_found = median_time(datasketch_run, runs=1)
        t_ml, ml = median_time(lambda: mlsec("audit", "leakage", "--train", train_path, "--test", test_path,
                                             "--ignore", "id", "--text", "text"))
        ml_found = {(p[0], p[1]) for p in ml["results"]["near_duplicates"]}
        planted_set = set(planted)

        def rp(found):
            tp = len(found & planted_set)
            return tp / len(planted_set), tp / max(len(found), 1)

        (r_ds, p_ds), (r_ml, p_ml) = rp(ds_found), rp(ml_found)
        print("\n## MinHash/LSH near-duplicates: 200,000 training texts, 2,000 test texts, 1,000 planted near-copies\n")
        print("| tool | seconds | docs/s | recall | precision | speed-up |")
        print("|---|---|---|---|---|---|")
        n = len(docs) + len(test_docs)
        print(f"| datasketch 2.0.0 (128 perms, LSH threshold 0.5, 5-char shingles; 1 run) | {t_ds:.2f} | {n / t_ds:,.0f} "
              f"| {r_ds:.3f} | {p_ds:.3f} | 1.0x |")
        print(f"| mlsec audit leakage --text (reads both CSV files) | {t_ml:.2f} | {n / t_ml:,.0f} | {r_ml:.3f} "
              f"| {p_ml:.3f} | {t_ds / t_ml:.1f}x |")

    if wanted("images"):
        rng = np.random.default_rng(20261122 + 4)
        # 4. Image near-duplicates on the bundled MNIST split: the 8,000 training
        # digits, and 2,000 test digits of which 200 are training digits shifted
        # by one pixel, brightened, or re-encoded as JPEG (quality 75).
        from PIL import Image
        import imagehash
        from mnist_planted import planted_split
        train_imgs, test_imgs, planted = planted_split()
        tr_dir, te_dir = os.path.join(tmp, "img-train"), os.path.join(tmp, "img-test")
        os.makedirs(tr_dir)
        os.makedirs(te_dir)
        for i, img in enumerate(train_imgs):
            Image.fromarray(img).save(os.path.join(tr_dir, f"{i:05d}.png"))
        for j, img in enumerate(test_imgs):
            Image.fromarray(img).save(os.path.join(te_dir, f"{j:05d}.png"))

        def phash_run(max_distance):
            trh = [imagehash.phash(Image.fromarray(x)) for x in train_imgs]
            found = set()
            for j, x in enumerate(test_imgs):
                h = imagehash.phash(Image.fromarray(x))
                for i, t in enumerate(trh):
                    if h - t <= max_distance:
                        found.add((i, j))
            return found

        planted_pairs = {(i, j) for j, i in planted.items()}

        def rp2(found):
            tp = len(found & planted_pairs)
            return tp / len(planted_pairs), tp / max(len(found), 1)

        print("\n## Image near-duplicates: 8,000 MNIST training digits vs 2,000 test digits (200 planted copies)\n")
        print("| tool | seconds | recall | precision |")
        print("|---|---|---|---|")
        for d in (0, 4, 8):
            t, found = median_time(lambda: phash_run(d), runs=1)
            r, p = rp2(found)
            print(f"| imagehash {imagehash.__version__} phash, Hamming distance <= {d} | {t:.2f} | {r:.3f} | {p:.3f} |")
        t, res = median_time(lambda: mlsec("audit", "leakage", "--images", "--train", tr_dir, "--test", te_dir), runs=1)
        found = {(q[0], q[1]) for q in res["results"]["near_duplicates"]} | {(q[0], q[1]) for q in res["results"]["exact_duplicates"]}
        r, p = rp2(found)
        print(f"| mlsec audit leakage --images (reads 10,000 PNG files) | {t:.2f} | {r:.3f} | {p:.3f} |")

    # 5. Reading tables: a mixed table (8 float, 2 integer, 1 text and 1
    # label column; 500,000 rows) as CSV and Parquet, and the KS workload's
    # 1,000,000 x 20 float reference as Parquet.
    if wanted("read"):
        rng = np.random.default_rng(20261122 + 5)
        n = 500_000
        df = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(8)})
        df["count"] = rng.integers(0, 1000, size=n)
        df["year"] = rng.integers(1990, 2025, size=n)
        df["city"] = rng.choice(["paris", "lyon", "nice", "lille", "nantes"], size=n)
        df["label"] = rng.integers(0, 2, size=n)
        files = [os.path.join(tmp, "mixed.csv"), os.path.join(tmp, "mixed.parquet"), os.path.join(tmp, "wide.parquet")]
        df.to_csv(files[0], index=False)
        df.to_parquet(files[1])
        pd.DataFrame(rng.normal(size=(1_000_000, 20)), columns=[f"x{i}" for i in range(20)]).to_parquet(files[2])
        r = subprocess.run([READ_TABLE, *files, "--runs", "5"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        ours = [json.loads(line) for line in r.stdout.splitlines()]
        print("\n## Reading tables (median of 5, page cache warm)\n")
        print("| file | pandas (s) | mlsec typed table (s) | mlsec numeric frame (s) | speed-up (table) |")
        print("|---|---|---|---|---|")
        for path, o in zip(files, ours):
            read = (lambda p=path: pd.read_csv(p)) if path.endswith(".csv") else (lambda p=path: pd.read_parquet(p))
            t_pd, _ = median_time(read, runs=5)
            size = os.path.getsize(path) / 1e6
            print(f"| {os.path.basename(path)} ({o['rows']:,} x {o['columns']}, {size:.0f} MB) | {t_pd:.3f} "
                  f"| {o['table_s']:.3f} | {o['frame_s']:.3f} | {t_pd / o['table_s']:.2f}x |")

    # 6. Drift over a stream read in chunks: peak memory stays that of the
    # reference plus one window whatever the stream's size. The peer is what a
    # Python user writes: pandas read_csv(chunksize=window) with
    # scipy.stats.ks_2samp per feature and window, in its own process.
    if wanted("leakstream"):
        rng = np.random.default_rng(20261122 + 7)
        # 7. The leakage audit of a training split read in chunks: 2,000,000
        # rows (200,000 texts of 10-19 words, each ten times, with a number
        # and a label) against 2,000 test rows, 1,000 of them near-copies.
        words = [f"w{i}" for i in range(2000)]
        docs = [" ".join(rng.choice(words, size=rng.integers(10, 20))) for _ in range(200_000)]
        train_path, test_path = os.path.join(tmp, "leak-train.csv"), os.path.join(tmp, "leak-test.csv")
        with open(train_path, "w") as f:
            f.write("id,text,x,label\n")
            for rep in range(10):
                part = pd.DataFrame({"id": np.arange(rep * len(docs), (rep + 1) * len(docs)), "text": docs,
                                     "x": rng.normal(size=len(docs)), "label": rng.integers(0, 2, size=len(docs))})
                part.to_csv(f, header=False, index=False)
        test_docs = []
        for j in range(2000):
            d = docs[int(rng.integers(0, len(docs)))].split() if j < 1000 else list(rng.choice(words, size=15))
            d[int(rng.integers(0, len(d)))] = str(rng.choice(words))
            test_docs.append(" ".join(d))
        pd.DataFrame({"id": np.arange(2000), "text": test_docs, "x": rng.normal(size=2000),
                      "label": rng.integers(0, 2, size=2000)}).to_csv(test_path, index=False)
        peer = (
            "import sys, pandas as pd\n"
            "train, test = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])\n"
            "cols = ['text', 'x']\n"
            "h = set(pd.util.hash_pandas_object(train[cols], index=False))\n"
            "print(sum(x in h for x in pd.util.hash_pandas_object(test[cols], index=False)))\n"
        )
        size = os.path.getsize(train_path) / 1e6
        t_py, rss_py, _ = run_measured([sys.executable, "-c", peer, train_path, test_path])
        t_m, rss_m, out = run_measured([MLSEC, "-q", "--format", "json", "--fail-on", "never", "audit", "leakage",
                                        "--train", train_path, "--test", test_path, "--ignore", "id",
                                        "--text", "text", "--label", "label"])
        res = json.loads(out)["results"]
        print(f"\n## Leakage audit of a {size:.0f} MB, 2,000,000-row training CSV read in chunks (one run each)\n")
        print("| tool | what it does | seconds | peak RSS (MiB) |")
        print("|---|---|---|---|")
        print(f"| pandas read_csv (both splits whole) + hash_pandas_object | exact duplicates only | {t_py:.2f} | {rss_py:.0f} |")
        print(f"| mlsec audit leakage --text --label | exact and near duplicates ({len(res['near_duplicates'])} pairs), "
              f"target leakage on {res['screened_rows']:,} sampled rows | {t_m:.2f} | {rss_m:.0f} |")
        os.remove(train_path)

    if wanted("stream"):
        rng = np.random.default_rng(20261122 + 6)
        d, window = 10, 100_000
        cols = [f"x{i}" for i in range(d)]
        ref_path = os.path.join(tmp, "stream-ref.csv")
        pd.DataFrame(rng.normal(size=(100_000, d)), columns=cols).to_csv(ref_path, index=False)
        peer = (
            "import sys, numpy as np, pandas as pd\n"
            "from scipy import stats\n"
            "ref = pd.read_csv(sys.argv[1]).to_numpy()\n"
            "worst = 0.0\n"
            f"for w in pd.read_csv(sys.argv[2], chunksize={window}):\n"
            "    x = w.to_numpy()\n"
            "    worst = max(worst, max(stats.ks_2samp(ref[:, i], x[:, i]).statistic for i in range(x.shape[1])))\n"
            "print(worst)\n"
        )

        print("\n## Drift over a CSV stream read in chunks (windows of 100,000 rows, 10 features, one run each)\n")
        print("| stream | tool | seconds | peak RSS (MiB) | speed-up |")
        print("|---|---|---|---|---|")
        for rows in (1_000_000, 4_000_000):
            path = os.path.join(tmp, f"stream-{rows}.csv")
            with open(path, "w") as f:
                f.write(",".join(cols) + "\n")
                for start in range(0, rows, 500_000):
                    part = rng.normal(size=(min(500_000, rows - start), d))
                    part[:, 0] += 0.05 * (start / rows)  # a slow drift in one feature
                    pd.DataFrame(part).to_csv(f, header=False, index=False)
            size = os.path.getsize(path) / 1e6
            t_py, rss_py, _ = run_measured([sys.executable, "-c", peer, ref_path, path])
            t_m, rss_m, _ = run_measured([MLSEC, "-q", "--format", "json", "--fail-on", "never", "data", "drift",
                                          "--reference", ref_path, "--stream", path,
                                          "--window", str(window), "--no-mmd"])
            print(f"| {rows:,} rows ({size:.0f} MB) | pandas chunks + scipy.stats.ks_2samp | {t_py:.2f} | {rss_py:.0f} | 1.0x |")
            print(f"| | mlsec data drift | {t_m:.2f} | {rss_m:.0f} | {t_py / t_m:.1f}x |")
            os.remove(path)
