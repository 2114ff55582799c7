#!/usr/bin/env python3
"""ONNX import against the reference runtime.

Builds classifiers with the `onnx` package (every op the differentiable
interpreter covers appears in at least one graph), runs them with
`onnxruntime`, and checks that `mlsec model predict`:
  - gives the same logits within 1e-4,
  - gives input gradients of the cross-entropy that match finite
    differences of onnxruntime's own outputs,
and that a graph with an op outside the interpreter loads as a query-only
model (run by tract) that names the op, matches onnxruntime and refuses
gradients, and that `mlsec attack evasion` runs on an
imported graph and keeps its perturbations inside the budget.

Usage: python tests/interop/onnx_models.py path/to/mlsec
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

MLSEC = sys.argv[1]
RNG = np.random.default_rng(20261122)
failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def w(*shape, scale=0.3):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, inits, in_shape, out_shape, opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"] + out_shape)],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="mlsec-interop")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def cnn():
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        n("Relu", ["c1"], ["r1"]),
        n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], strides=[1, 1], group=2),
        n("LeakyRelu", ["c2"], ["r2"], alpha=0.1),
        n("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1], count_include_pad=0),
        n("Flatten", ["p2"], ["f"], axis=1),
        n("Gemm", ["f", "w3", "b3"], ["logits"], transB=1),
        n("Softmax", ["logits"], ["y"], axis=1),
    ]
    inits = [init("w1", w(4, 1, 3, 3)), init("b1", w(4)), init("w2", w(8, 2, 3, 3)), init("b2", w(8)),
             init("w3", w(10, 8 * 2 * 2, scale=0.1)), init("b3", w(10))]
    return model(nodes, inits, [1, 12, 12], [10]), [1, 12, 12], True


def lenet():
    # 5×5 convolutions with stride 1 and 8+ channels each side take the
    # Winograd kernels (crates/mlsec-model/src/ops/winograd.rs); the odd
    # 7×7 planes of the second one give tiles past the output's edge.
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[2, 2, 2, 2], kernel_shape=[5, 5]),
        n("Relu", ["c1"], ["r1"]),
        n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["p1", "w2", "b2"], ["c2"], pads=[2, 2, 2, 2], kernel_shape=[5, 5]),
        n("Relu", ["c2"], ["r2"]),
        n("Conv", ["r2", "w3"], ["c3"], pads=[1, 1, 1, 1], kernel_shape=[5, 5]),
        n("Flatten", ["c3"], ["f"], axis=1),
        n("Gemm", ["f", "w4", "b4"], ["y"], transB=1),
    ]
    inits = [init("w1", w(8, 1, 5, 5)), init("b1", w(8)), init("w2", w(12, 8, 5, 5, scale=0.1)), init("b2", w(12)),
             init("w3", w(8, 12, 5, 5, scale=0.1)), init("w4", w(10, 8 * 5 * 5, scale=0.1)), init("b4", w(10))]
    return model(nodes, inits, [1, 14, 14], [10]), [1, 14, 14], False


def resnet():
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        n("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["bn"], epsilon=1e-3),
        n("Relu", ["bn"], ["r1"]),
        n("Conv", ["r1", "w2", "b2"], ["c2"], auto_pad="SAME_UPPER", kernel_shape=[3, 3]),
        n("Add", ["c2", "r1"], ["skip"]),
        n("Clip", ["skip", "lo", "hi"], ["clip"]),
        n("Pad", ["clip", "pads", "padval"], ["pad"], mode="constant"),
        n("MaxPool", ["pad"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("GlobalAveragePool", ["mp"], ["gap"]),
        n("Shape", ["gap"], ["shape"]),
        n("Gather", ["shape", "zero"], ["batch"], axis=0),
        n("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        n("Concat", ["batch1", "minus1"], ["newshape"], axis=0),
        n("Reshape", ["gap", "newshape"], ["flat"]),
        n("Dropout", ["flat"], ["drop"]),
        n("Identity", ["drop"], ["ident"]),
        n("MatMul", ["ident", "w3"], ["mm"]),
        n("Add", ["mm", "b3"], ["y"]),
    ]
    c = 6
    inits = [init("w1", w(c, 3, 3, 3)), init("g", RNG.uniform(0.5, 1.5, c).astype(np.float32)),
             init("beta", w(c)), init("mean", w(c)), init("var", RNG.uniform(0.5, 2, c).astype(np.float32)),
             init("w2", w(c, c, 3, 3, scale=0.2)), init("b2", w(c)),
             init("lo", np.float32(-1.0)), init("hi", np.float32(2.5)),
             init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64)), init("padval", np.float32(0.25)),
             init("zero", np.array(0, dtype=np.int64)), init("axes0", np.array([0], dtype=np.int64)),
             init("minus1", np.array([-1], dtype=np.int64)),
             init("w3", w(c, 5)), init("b3", w(5))]
    return model(nodes, inits, [3, 10, 10], [5]), [3, 10, 10], False


def mlp():
    n = helper.make_node
    nodes = [
        n("MatMul", ["x", "w1"], ["h1"]),
        n("Add", ["h1", "b1"], ["a1"]),
        n("Sigmoid", ["a1"], ["s1"]),
        n("Gemm", ["s1", "w2"], ["h2"], alpha=0.7),
        n("Tanh", ["h2"], ["t2"]),
        n("Constant", [], ["k"], value=helper.make_tensor("kv", TensorProto.FLOAT, [], [1.5])),
        n("Mul", ["t2", "k"], ["m2"]),
        n("Sub", ["m2", "b2"], ["d2"]),
        n("Div", ["d2", "den"], ["q2"]),
        n("Transpose", ["q2"], ["tr"], perm=[1, 0]),
        n("Transpose", ["tr"], ["tr2"], perm=[1, 0]),
        n("Concat", ["tr2", "s1"], ["cat"], axis=1),
        n("Gemm", ["cat", "w3", "b3"], ["y"], transB=1, beta=0.5),
    ]
    inits = [init("w1", w(20, 16)), init("b1", w(16)), init("w2", w(16, 12)), init("b2", w(12)),
             init("den", RNG.uniform(0.5, 2, 12).astype(np.float32)), init("w3", w(4, 28)), init("b3", w(4))]
    return model(nodes, inits, [20], [4]), [20], False


def unsupported():
    n = helper.make_node
    nodes = [n("MatMul", ["x", "w"], ["h"]), n("Erf", ["h"], ["y"])]
    return model(nodes, [init("w", w(8, 3))], [8], [3]), [8], False


def run(*args):
    return subprocess.run([MLSEC, *args], capture_output=True, text=True)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(probs, labels):
    return -np.log(probs[np.arange(len(labels)), labels]).sum()


with tempfile.TemporaryDirectory() as tmp:
    for name, build in [("cnn", cnn), ("lenet", lenet), ("resnet", resnet), ("mlp", mlp)]:
        m, shape, softmax_out = build()
        path = os.path.join(tmp, f"{name}.onnx")
        onnx.save(m, path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        x = RNG.uniform(0, 1, [16] + shape).astype(np.float32)
        ref = sess.run(None, {"x": x})[0]
        classes = ref.shape[1]
        labels = RNG.integers(0, classes, 16).astype(np.int64)
        np.save(os.path.join(tmp, "x.npy"), x)
        np.save(os.path.join(tmp, "y.npy"), labels)
        out, grad = os.path.join(tmp, "logits.npy"), os.path.join(tmp, "grad.npy")
        r = run("model", "predict", "--model", path, "--data", os.path.join(tmp, "x.npy"),
                "--labels", os.path.join(tmp, "y.npy"), "--out", out, "--gradient", grad)
        if r.returncode != 0:
            check(f"{name}: mlsec model predict runs", False, r.stderr.strip())
            continue
        logits = np.load(out)
        mine = softmax(logits) if softmax_out else logits
        diff = float(np.abs(mine - ref).max())
        check(f"{name}: {'probabilities' if softmax_out else 'logits'} match onnxruntime within 1e-4 (max diff {diff:.2e})", diff <= 1e-4, f"max diff {diff}")

        # Input gradient of the summed cross-entropy against central finite
        # differences of onnxruntime's outputs, along the gradient and along
        # random directions.
        g = np.load(grad).astype(np.float64)
        probs = lambda v: ref_probs(v)  # noqa: E731

        def ref_probs(v):
            o = sess.run(None, {"x": v.astype(np.float32)})[0].astype(np.float64)
            return o if softmax_out else softmax(o)

        gnorm = float(np.linalg.norm(g))
        errs = []
        for k in range(4):
            d = g / gnorm if k == 0 else RNG.standard_normal(g.shape)
            d /= np.linalg.norm(d)
            h = 1e-2
            fd = (cross_entropy(ref_probs(x + h * d), labels) - cross_entropy(ref_probs(x - h * d), labels)) / (2 * h)
            errs.append(abs(fd - float((g * d).sum())) / max(gnorm, 1e-6))
        worst = max(errs)
        check(f"{name}: input gradients match finite differences (worst error {worst:.1e} of |g|)", worst < 2e-2, f"errors {errs}")

        info = run("--format", "json", "model", "inspect", path)
        access = json.loads(info.stdout)["results"]["access"] if info.returncode == 0 else None
        check(f"{name}: loads as differentiable", access == "gradient", info.stdout + info.stderr)

    # An attack on an imported graph keeps its budget.
    m, shape, _ = cnn()
    path = os.path.join(tmp, "attack.onnx")
    onnx.save(m, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = RNG.uniform(0, 1, [40] + shape).astype(np.float32)
    y = sess.run(None, {"x": x})[0].argmax(axis=1).astype(np.int64)
    np.savez(os.path.join(tmp, "d.npz"), x=x, y=y)
    adv_dir = os.path.join(tmp, "adv")
    r = run("--fail-on", "never", "--format", "json", "attack", "evasion", "--model", path, "--data", os.path.join(tmp, "d.npz"),
            "--attack", "pgd", "--eps", "0.1", "--n", "40", "--out-dir", adv_dir)
    if r.returncode != 0:
        check("pgd on an imported graph runs", False, r.stderr.strip())
    else:
        ev = json.loads(r.stdout)["results"]["evaluation"]
        adv = np.load(os.path.join(adv_dir, "adversarial.npy"))
        idx = np.load(os.path.join(adv_dir, "indices.npy"))
        gap = float(np.abs(adv - x[idx]).max())
        check(f"pgd on an imported graph: clean accuracy 1.0, perturbation {gap:.4f} <= 0.1",
              ev["clean_accuracy"] == 1.0 and gap <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1, json.dumps(ev))
        fooled = np.load(os.path.join(adv_dir, "fooled.npy"))
        preds = sess.run(None, {"x": adv.astype(np.float32)})[0].argmax(axis=1)
        agree = bool(np.all((preds != y[idx]) == fooled))
        check("onnxruntime agrees on which adversarials fool the graph", agree, f"{preds} vs {fooled}")

    # A graph with an op outside the interpreter loads as query-only (run
    # by tract), names the op, matches onnxruntime, and refuses gradients.
    m, shape, _ = unsupported()
    path = os.path.join(tmp, "erf.onnx")
    onnx.save(m, path)
    r = run("--format", "json", "model", "inspect", path)
    view = json.loads(r.stdout)["results"] if r.returncode == 0 else {}
    check("a graph with an op outside the interpreter loads as query-only, naming the op",
          view.get("access") == "query" and any("Erf" in op for op in view.get("query_only_because", [])), r.stdout + r.stderr)
    x = RNG.uniform(0, 1, [16] + shape).astype(np.float32)
    np.save(os.path.join(tmp, "xe.npy"), x)
    out = os.path.join(tmp, "erf_logits.npy")
    r = run("model", "predict", "--model", path, "--data", os.path.join(tmp, "xe.npy"), "--out", out)
    if r.returncode != 0:
        check("query-only graph: mlsec model predict runs", False, r.stderr)
    else:
        ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        diff = float(np.abs(np.load(out) - ref).max())
        check(f"query-only graph: outputs match onnxruntime within 1e-4 (max diff {diff:.2e})", diff <= 1e-4)
    np.save(os.path.join(tmp, "ye.npy"), np.zeros(16, dtype=np.int64))
    r = run("model", "predict", "--model", path, "--data", os.path.join(tmp, "xe.npy"), "--labels",
            os.path.join(tmp, "ye.npy"), "--out", out, "--gradient", os.path.join(tmp, "g.npy"))
    check("query-only graph: gradients are refused", r.returncode == 2 and "queries only" in r.stderr, r.stderr)

print(f"\n{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
