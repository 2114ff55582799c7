#!/usr/bin/env python3
"""False alarms on artifacts written by the real libraries, not by stubs.

The fixture corpus (scripts/make_scan_fixtures.py) imitates each library's
globals with stub modules so that CI needs no PyTorch. This script writes
the same kinds of artifact with PyTorch, scikit-learn, SciPy, NumPy, pandas
and joblib themselves (checkpoints, whole-model pickles, fitted estimators,
DataFrames with every pandas dtype, time zones and Arrow-backed columns
included, Arrow tables, and what a fine-tuning run leaves: transformers'
training_args.bin, a PEFT adapter and config, a Lightning checkpoint; statsmodels, gensim,
NLTK, imbalanced-learn, XGBoost and LightGBM models; Keras 3 models), then scans them
with mlsec, picklescan and modelscan, and prints the highest severity mlsec
gives each file. A benign artifact must get no finding at medium or above
(whole-model pickles and fitted estimators are reported low: loading them
runs the library's code, see docs/scanner.md).

Usage (benchmark-only environments, not part of CI):
    ~/.cache/mlsec/torch-venv/bin/pip install torch scikit-learn scipy pandas joblib pyarrow \
        transformers accelerate peft lightning omegaconf gensim nltk statsmodels imbalanced-learn xgboost lightgbm \
        keras h5py
    cargo build --release -p mlsec-cli
    ~/.cache/mlsec/torch-venv/bin/python benches/scan_benign_libraries.py target/release/mlsec \
        [--peers ~/.cache/mlsec/bench-venv/bin]
"""
import json
import os
import warnings
import pickle
import subprocess
import sys
import tempfile

import joblib
import numpy as np
import pandas as pd
import torch
from torch import nn

ORDER = ["info", "low", "medium", "high", "critical"]


def write_torch(out):
    def tsave(name, obj):
        torch.save(obj, os.path.join(out, name + ".pt"))

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4 * 26 * 26, 10), nn.GELU(), nn.Dropout(0.1), nn.LayerNorm(10))
    tsave("torch_state_dict", m.state_dict())
    tsave("torch_whole_sequential", m)
    tsave("torch_whole_weight_norm", nn.Sequential(nn.utils.weight_norm(nn.Linear(4, 4))))
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m(torch.randn(2, 1, 28, 28)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 10)
    tsave("torch_checkpoint", {"model": m.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "epoch": 3, "rng": torch.get_rng_state(),
                               "np_rng": np.random.get_state(), "dtype": torch.float16,
                               "device": torch.device("cpu"), "size": torch.Size([2, 3])})
    tsave("torch_whole_optimizer", opt)
    tsave("torch_grad_scaler_state", torch.amp.GradScaler("cpu").state_dict())
    tsave("torch_sparse", {"coo": torch.eye(3).to_sparse(), "csr": torch.eye(3).to_sparse_csr()})
    tsave("torch_dtypes", {"bf16": torch.ones(3, dtype=torch.bfloat16), "c64": torch.ones(2, dtype=torch.complex64),
                           "q": torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.quint8)})
    with open(os.path.join(out, "torch_tensor_pickle_dumps.pkl"), "wb") as f:
        pickle.dump({"embedding": torch.ones(3)}, f, protocol=4)


def write_sklearn(out):
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (GradientBoostingRegressor, HistGradientBoostingClassifier, IsolationForest,
                                  RandomForestClassifier)
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    x = np.random.RandomState(0).randn(60, 4)
    y = (x[:, 0] > 0).astype(int)
    models = {
        "logistic": LogisticRegression().fit(x, y),
        "random_forest": RandomForestClassifier(n_estimators=3).fit(x, y),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "gradient_boosting": GradientBoostingRegressor(n_estimators=3).fit(x, y),
        "isolation_forest": IsolationForest(n_estimators=3).fit(x),
        "knn_kd_tree": KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        "knn_ball_tree": KNeighborsClassifier(algorithm="ball_tree").fit(x, y),
        "pipeline": make_pipeline(FunctionTransformer(np.log1p), StandardScaler(),
                                  SVC(probability=True)).fit(np.abs(x), y),
        "mlp": MLPClassifier(max_iter=5).fit(x, y),
        "kmeans": KMeans(2, n_init=1).fit(x),
        "pca": PCA(2).fit(x),
        "gaussian_process": GaussianProcessClassifier().fit(x[:20], y[:20]),
        "decision_tree": DecisionTreeClassifier().fit(x, y),
        "sgd": SGDClassifier(loss="log_loss").fit(x, y),
        "column_transformer": ColumnTransformer([("s", StandardScaler(), [0, 1]),
                                                 ("o", OneHotEncoder(), [2])]).fit(np.round(x)),
    }
    for name, model in models.items():
        with open(os.path.join(out, f"sklearn_{name}.pkl"), "wb") as f:
            pickle.dump(model, f, protocol=4)
        joblib.dump(model, os.path.join(out, f"sklearn_{name}.joblib"))


def write_scipy_numpy(out):
    import scipy.interpolate as si
    import scipy.sparse as sp
    import scipy.spatial as ss
    import scipy.stats as st
    from scipy.spatial.transform import Rotation

    x = np.random.RandomState(0).randn(20, 3)
    with open(os.path.join(out, "scipy_objects.pkl"), "wb") as f:
        pickle.dump({"csr": sp.csr_matrix(np.eye(3)), "coo": sp.coo_array(np.eye(2)), "frozen": st.norm(0, 1),
                     "interp1d": si.interp1d([0, 1, 2], [0, 1, 4]), "kd": ss.cKDTree(x),
                     "rotation": Rotation.from_euler("z", 30, degrees=True),
                     "spline": si.CubicSpline([0, 1, 2], [0, 1, 4])}, f, protocol=4)
    values = {"masked": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]), "matrix": np.matrix([[1, 2], [3, 4]]),
              "records": np.rec.fromrecords([(1, "a")], names="x,y"),
              "dates": np.array(["2024-01-01"], dtype="datetime64[D]"), "random_state": np.random.RandomState(0),
              "generator": np.random.default_rng(0), "structured": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
              "ufunc": np.log1p, "f32": np.float32(1.5), "i64": np.int64(3), "bool": np.bool_(True)}
    for proto in (2, 4):
        with open(os.path.join(out, f"numpy_values_p{proto}.pkl"), "wb") as f:
            pickle.dump(values, f, protocol=proto)
    np.save(os.path.join(out, "numpy_float.npy"), np.arange(10, dtype=np.float32))
    np.savez(os.path.join(out, "numpy_arrays.npz"), a=np.arange(3), b=np.eye(2))


def write_pandas(out):
    df = pd.DataFrame({
        "i": [1, 2, 3], "f": [0.1, 0.2, None], "s": ["a", "b", "c"], "cat": pd.Categorical(["x", "y", "x"]),
        "utc": pd.date_range("2024-01-01", periods=3, tz="UTC"),
        "paris": pd.date_range("2024-01-01", periods=3, tz="Europe/Paris"),
        "td": pd.to_timedelta([1, 2, 3], unit="s"), "period": pd.period_range("2024-01", periods=3, freq="M"),
        "interval": pd.interval_range(0, 3), "boolean": pd.array([True, None, False], dtype="boolean"),
        "Int64": pd.array([1, None, 3], dtype="Int64"), "sparse": pd.arrays.SparseArray([0, 0, 1]),
        "string": pd.array(["a", None, "c"], dtype="string")})
    df.index = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)])
    for proto in (2, 4, 5):
        with open(os.path.join(out, f"pandas_dataframe_p{proto}.pkl"), "wb") as f:
            pickle.dump(df, f, protocol=proto)
    df.to_pickle(os.path.join(out, "pandas_to_pickle.pkl"))
    with open(os.path.join(out, "pandas_scalars.pkl"), "wb") as f:
        pickle.dump({"ts": pd.Timestamp("2024-01-01", tz="US/Eastern"), "nat": pd.NaT, "td": pd.Timedelta(5),
                     "series": pd.Series([1, 2], name="x"), "offset": pd.offsets.Day(2),
                     "period": pd.Period("2024-01"), "range": pd.RangeIndex(5),
                     "dti": pd.DatetimeIndex(["2024-01-01"])}, f, protocol=4)


def write_arrow(out):
    """pandas 3 keeps strings in Arrow arrays when pyarrow is installed, and
    pickles them through Arrow's own reducers; Arrow tables pickle the same way."""
    import array

    import pyarrow as pa
    frames = {
        "strings": pd.DataFrame({"name": ["alice", "bob", None], "n": [1, 2, 3]}),
        "arrow_dtypes": pd.DataFrame({
            "i": pd.array([1, None, 3], dtype=pd.ArrowDtype(pa.int64())),
            "l": pd.array([[1], [2, 3], None], dtype=pd.ArrowDtype(pa.list_(pa.int64()))),
            "ts": pd.array([1, 2, 3], dtype=pd.ArrowDtype(pa.timestamp("ms", tz="UTC"))),
            "dec": pd.array([1, 2, 3], dtype=pd.ArrowDtype(pa.decimal128(5, 2)))}),
    }
    for name, df in frames.items():
        for proto in (2, 5):
            with open(os.path.join(out, f"pandas_arrow_{name}_p{proto}.pkl"), "wb") as f:
                pickle.dump(df, f, protocol=proto)
        joblib.dump(df, os.path.join(out, f"pandas_arrow_{name}.joblib"))
    table = pa.table({"s": ["x", "y"], "d": pa.array(["u", "v"]).dictionary_encode(),
                      "m": pa.array([{"k": 1}, {"k": 2}]), "b": pa.array([b"a", b"b"], pa.binary(1))})
    with open(os.path.join(out, "pyarrow_values.pkl"), "wb") as f:
        pickle.dump({"table": table, "batch": table.to_batches()[0], "schema": table.schema,
                     "scalar": pa.scalar(1.5), "buffer": pa.py_buffer(b"abc"),
                     "stdlib_array": array.array("d", [1.0, 2.0])}, f, protocol=4)


def write_hugging_face_and_lightning(out):
    """What a fine-tuning run leaves: `training_args.bin` (TrainingArguments
    with Accelerate's state), a PEFT adapter and its pickled config, and a
    Lightning checkpoint whose hyper-parameters are an OmegaConf config."""
    import lightning as L
    from omegaconf import OmegaConf
    from peft import LoraConfig, get_peft_model
    from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

    torch.save(TrainingArguments(output_dir=os.path.join(out, "run"), report_to="none",
                                 lr_scheduler_type="cosine"), os.path.join(out, "hf_training_args.bin"))
    os.rmdir(os.path.join(out, "run")) if os.path.isdir(os.path.join(out, "run")) else None
    bert = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                    intermediate_size=37, vocab_size=100))
    peft_model = get_peft_model(bert, LoraConfig(r=2, target_modules=["query", "value"]))
    torch.save(peft_model.peft_config, os.path.join(out, "peft_config.bin"))
    torch.save({k: v for k, v in peft_model.state_dict().items() if "lora" in k},
               os.path.join(out, "peft_adapter_model.bin"))

    class Module(L.LightningModule):
        def __init__(self, cfg=None):
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(3, 1)

    model = Module(cfg=OmegaConf.create({"model": {"lr": 0.1, "layers": [1, 2]}, "name": "x"}))
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=os.path.join(out, "pl"))
    trainer.strategy.connect(model)
    trainer.save_checkpoint(os.path.join(out, "lightning.ckpt"))


def write_other_ecosystems(out):
    """Models other libraries pickle: statsmodels results (Cython classes
    typed by BLAS prefix), gensim word vectors, an NLTK Punkt tokenizer, an
    imbalanced-learn pipeline, XGBoost and LightGBM estimators."""
    import lightgbm as lgb
    import statsmodels.api as sm
    import xgboost as xgb
    from gensim.models import Word2Vec
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import make_pipeline as imb_pipeline
    from nltk.tokenize.punkt import PunktSentenceTokenizer, PunktTrainer
    from sklearn.linear_model import LogisticRegression
    from statsmodels.tsa.arima.model import ARIMA

    rng = np.random.RandomState(0)
    x = sm.add_constant(rng.rand(30, 2))
    sm.OLS(x @ [1, 2, 3] + rng.rand(30), x).fit().save(os.path.join(out, "statsmodels_ols.pickle"))
    ARIMA(rng.rand(40), order=(1, 0, 0)).fit().save(os.path.join(out, "statsmodels_arima.pickle"))
    w2v = Word2Vec([["cat", "dog", "fish"], ["dog", "bird"]] * 20, vector_size=8, min_count=1, epochs=1,
                   workers=1, seed=1)
    w2v.save(os.path.join(out, "gensim_word2vec.model"))
    w2v.wv.save(os.path.join(out, "gensim_vectors.kv"))
    trainer = PunktTrainer()
    trainer.train("Hello there. This is Mr. Smith. He is here. Dr. Who is not.", finalize=True)
    with open(os.path.join(out, "nltk_punkt.pickle"), "wb") as f:
        pickle.dump(PunktSentenceTokenizer(trainer.get_params()), f)
    xc, yc = rng.rand(40, 3), (np.arange(40) < 8).astype(int)
    joblib.dump(imb_pipeline(SMOTE(k_neighbors=3), LogisticRegression()).fit(xc, yc),
                os.path.join(out, "imblearn_pipeline.joblib"))
    with open(os.path.join(out, "xgboost_classifier.pkl"), "wb") as f:
        pickle.dump(xgb.XGBClassifier(n_estimators=2).fit(xc, yc), f)
    with open(os.path.join(out, "lightgbm_classifier.pkl"), "wb") as f:
        pickle.dump(lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(xc, yc), f)


def write_keras(out):
    """Keras 3 models (on the PyTorch backend) in the `.keras` zip and the
    legacy HDF5 format, and weights alone."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    from keras import layers

    inp = keras.Input((28, 28, 1))
    x = layers.MaxPooling2D()(layers.BatchNormalization()(layers.Conv2D(4, 3, activation="relu")(inp)))
    x = layers.Dense(16, activation=keras.activations.gelu,
                     kernel_regularizer=keras.regularizers.L2(1e-4))(layers.Flatten()(layers.Dropout(0.2)(x)))
    model = keras.Model(inp, layers.Dense(10, activation="softmax")(layers.Rescaling(1 / 255.0)(x)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.save(os.path.join(out, "keras_functional.keras"))
    model.save(os.path.join(out, "keras_functional.h5"))
    model.save_weights(os.path.join(out, "keras_functional.weights.h5"))
    keras.Sequential([keras.Input((5,), dtype="int32"), layers.Embedding(20, 4), layers.LSTM(3),
                      layers.Dense(1, activation="sigmoid")]).save(os.path.join(out, "keras_lstm.keras"))


def peer_flags(peers, folder):
    """Files each peer CLI reports as infected/unsafe (their own exit codes)."""
    out = {}
    for tool, args in (("picklescan", ["-p"]), ("modelscan", ["-p"])):
        exe = os.path.join(peers, tool)
        flagged = 0
        for name in sorted(os.listdir(folder)):
            r = subprocess.run([exe, *args, os.path.join(folder, name)], capture_output=True, text=True)
            if tool == "picklescan":
                flagged += "Infected files: 0" not in r.stdout and "Infected files:" in r.stdout
            else:
                flagged += r.returncode == 1
        out[tool] = flagged
    return out


def main():
    warnings.filterwarnings("ignore")
    mlsec = os.path.abspath(sys.argv[1])
    peers = sys.argv[sys.argv.index("--peers") + 1] if "--peers" in sys.argv else None
    with tempfile.TemporaryDirectory() as out:
        for write in (write_torch, write_sklearn, write_scipy_numpy, write_pandas, write_arrow,
                      write_hugging_face_and_lightning, write_other_ecosystems, write_keras):
            write(out)
        r = subprocess.run([mlsec, "scan", out, "-q", "--format", "json", "--fail-on", "never"],
                           capture_output=True, text=True, check=True)
        report = json.loads(r.stdout)
        highest = {name: "none" for name in os.listdir(out)}
        why = {}
        for f in report["findings"]:
            name = os.path.relpath(f["location"]["path"], out).split(os.sep)[0]
            if highest[name] == "none" or ORDER.index(f["severity"]) > ORDER.index(highest[name]):
                highest[name] = f["severity"]
                why[name] = f["message"]
        print("| file | mlsec's highest finding |")
        print("|---|---|")
        for name in sorted(highest):
            print(f"| {name} | {highest[name]} |")
        alarms = {n: why[n] for n, s in highest.items() if s in ("medium", "high", "critical")}
        print(f"\n{len(highest)} files written by the libraries; mlsec findings at medium or above: {len(alarms)}")
        for n, w in sorted(alarms.items()):
            print(f"  {n}: {w}")
        if peers:
            counts = peer_flags(peers, out)
            print("files flagged by the peers: " + ", ".join(f"{t} {c}" for t, c in counts.items()))


if __name__ == "__main__":
    main()
