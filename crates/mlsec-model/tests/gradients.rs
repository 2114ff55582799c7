//! Input gradients against central finite differences, for every layer of
//! the zoo and every op of the ONNX interpreter.

mod common;

use common::*;
use mlsec_model::native::{devices, ModelConfig, NativeModel, FORMAT};
use mlsec_model::zoo::Architecture;
use mlsec_model::{Batch, OnnxModel};

const TOLERANCE: f64 = 2e-2;

fn zoo_model(arch: Architecture, input: [usize; 3]) -> NativeModel {
    let (_, ad) = devices();
    let net = arch.init_seeded(input, 5, &ad, 7);
    let config = ModelConfig {
        format: FORMAT.into(),
        version: 1,
        architecture: arch,
        input_shape: input,
        classes: 5,
        value_range: [0.0, 1.0],
        weights_sha256: String::new(),
        training: None,
    };
    NativeModel::from_trained(&net, config)
}

/// Inputs in [0, 1] whose values are all at least 1e-3 apart, so that a
/// finite-difference step never swaps the order of two values (max pooling
/// is not differentiable where two inputs tie).
fn batch(shape: &[usize], seed: u64) -> Batch {
    let n: usize = shape.iter().product();
    let mut r = rng(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (uniform(&mut r, 0.0, 1.0) * (i + 1) as f32) as usize % (i + 1);
        order.swap(i, j);
    }
    let data = order.iter().map(|&k| k as f32 / n as f32).collect();
    Batch::new(data, shape.to_vec()).unwrap()
}

#[test]
fn mlp_linear_and_relu() {
    let m = zoo_model(
        Architecture::Mlp {
            hidden: vec![32, 16],
        },
        [1, 6, 6],
    );
    let e = worst_gradient_error(&m, &batch(&[4, 1, 6, 6], 1), 11);
    assert!(e < TOLERANCE, "relative error {e}");
}

#[test]
fn lenet_convolution_and_max_pooling() {
    let m = zoo_model(
        Architecture::Lenet {
            channels: [4, 6],
            hidden: 12,
        },
        [1, 12, 12],
    );
    let e = worst_gradient_error(&m, &batch(&[3, 1, 12, 12], 2), 12);
    assert!(e < TOLERANCE, "relative error {e}");
}

#[test]
fn resnet_batch_norm_strides_shortcuts_and_global_pooling() {
    let m = zoo_model(Architecture::Resnet { widths: [4, 6, 8] }, [3, 8, 8]);
    let e = worst_gradient_error(&m, &batch(&[3, 3, 8, 8], 3), 13);
    assert!(e < TOLERANCE, "relative error {e}");
}

/// One ONNX op (plus the Flatten → Gemm head) on a [2, 2, 6, 6] input.
fn op_case(
    name: &str,
    nodes: Vec<mlsec_model::onnx::proto::NodeProto>,
    inits: Vec<mlsec_model::onnx::proto::TensorProto>,
    out_features: usize,
) {
    op_case_shaped(name, &[2, 6, 6], nodes, inits, out_features);
}

fn op_case_shaped(
    name: &str,
    input: &[i64],
    nodes: Vec<mlsec_model::onnx::proto::NodeProto>,
    inits: Vec<mlsec_model::onnx::proto::TensorProto>,
    out_features: usize,
) {
    let bytes = classifier_graph(input, nodes, inits, "out", out_features, 5);
    let model =
        OnnxModel::from_bytes(&bytes, name, (0.0, 1.0)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        model.unsupported_ops().is_empty(),
        "{name}: {:?}",
        model.unsupported_ops()
    );
    let mut shape = vec![3usize];
    shape.extend(input.iter().map(|&d| d as usize));
    let e = worst_gradient_error(&model, &batch(&shape, 4), 14);
    assert!(e < TOLERANCE, "{name}: relative error {e}");
}

fn w(name: &str, dims: &[i64], seed: u64) -> mlsec_model::onnx::proto::TensorProto {
    let n: i64 = dims.iter().product();
    floats(name, dims, random(&mut rng(seed), n as usize, -0.5, 0.5))
}

#[test]
fn onnx_conv_with_padding_strides_groups_and_dilations() {
    op_case(
        "Conv",
        vec![node(
            "Conv",
            &["x", "cw", "cb"],
            &["out"],
            vec![
                attr_ints("pads", &[1, 0, 2, 1]),
                attr_ints("strides", &[1, 2]),
                attr_int("group", 2),
                attr_ints("dilations", &[1, 1]),
            ],
        )],
        vec![w("cw", &[4, 1, 3, 3], 1), w("cb", &[4], 2)],
        4 * 7 * 3,
    );
    op_case(
        "Conv SAME_UPPER dilated",
        vec![node(
            "Conv",
            &["x", "cw"],
            &["out"],
            vec![
                attr_str("auto_pad", "SAME_UPPER"),
                attr_ints("dilations", &[2, 2]),
                attr_ints("kernel_shape", &[3, 3]),
            ],
        )],
        vec![w("cw", &[3, 2, 3, 3], 3)],
        3 * 6 * 6,
    );
}

#[test]
fn onnx_pooling() {
    op_case(
        "MaxPool",
        vec![node(
            "MaxPool",
            &["x"],
            &["out"],
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("strides", &[2, 2]),
                attr_ints("pads", &[1, 1, 1, 1]),
            ],
        )],
        vec![],
        2 * 3 * 3,
    );
    op_case(
        "AveragePool",
        vec![node(
            "AveragePool",
            &["x"],
            &["out"],
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[2, 2]),
                attr_ints("pads", &[1, 1, 1, 1]),
                attr_int("count_include_pad", 0),
            ],
        )],
        vec![],
        2 * 4 * 4,
    );
    op_case(
        "AveragePool count_include_pad",
        vec![node(
            "AveragePool",
            &["x"],
            &["out"],
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("pads", &[1, 1, 1, 1]),
                attr_int("count_include_pad", 1),
            ],
        )],
        vec![],
        2 * 6 * 6,
    );
    op_case(
        "GlobalAveragePool",
        vec![node("GlobalAveragePool", &["x"], &["out"], vec![])],
        vec![],
        2,
    );
    op_case(
        "GlobalMaxPool",
        vec![node("GlobalMaxPool", &["x"], &["out"], vec![])],
        vec![],
        2,
    );
}

#[test]
fn onnx_batch_normalization() {
    let mut var = random(&mut rng(9), 2, 0.5, 2.0);
    var[0] = 1.3;
    op_case(
        "BatchNormalization",
        vec![node(
            "BatchNormalization",
            &["x", "s", "b", "m", "v"],
            &["out"],
            vec![attr_float("epsilon", 1e-3)],
        )],
        vec![
            w("s", &[2], 1),
            w("b", &[2], 2),
            w("m", &[2], 3),
            floats("v", &[2], var),
        ],
        72,
    );
}

#[test]
fn onnx_elementwise_and_activations() {
    for op in [
        "Relu", "Sigmoid", "Tanh", "Neg", "Exp", "Identity", "Dropout", "Abs",
    ] {
        op_case(op, vec![node(op, &["x"], &["out"], vec![])], vec![], 72);
    }
    op_case(
        "LeakyRelu",
        vec![node(
            "LeakyRelu",
            &["x"],
            &["out"],
            vec![attr_float("alpha", 0.2)],
        )],
        vec![],
        72,
    );
    // Log and Sqrt on inputs shifted away from zero.
    for op in ["Log", "Sqrt"] {
        op_case(
            op,
            vec![
                node("Add", &["x", "one"], &["p"], vec![]),
                node(op, &["p"], &["out"], vec![]),
            ],
            vec![floats("one", &[], vec![1.0])],
            72,
        );
    }
    for op in ["Add", "Sub", "Mul", "Div"] {
        // Broadcast a per-channel [2, 1, 1] constant and a scalar.
        let c = floats("c", &[2, 1, 1], vec![1.5, 0.75]);
        op_case(
            op,
            vec![node(op, &["x", "c"], &["out"], vec![])],
            vec![c],
            72,
        );
    }
    op_case(
        "Clip",
        vec![node("Clip", &["x", "lo", "hi"], &["out"], vec![])],
        vec![floats("lo", &[], vec![0.2]), floats("hi", &[], vec![0.8])],
        72,
    );
    op_case(
        "Softmax",
        vec![node("Softmax", &["x"], &["out"], vec![attr_int("axis", 1)])],
        vec![],
        72,
    );
    op_case(
        "LogSoftmax",
        vec![node(
            "LogSoftmax",
            &["x"],
            &["out"],
            vec![attr_int("axis", -1)],
        )],
        vec![],
        72,
    );
}

#[test]
fn onnx_shape_ops() {
    op_case(
        "Flatten",
        vec![node(
            "Flatten",
            &["x"],
            &["out"],
            vec![attr_int("axis", -3)],
        )],
        vec![],
        72,
    );
    op_case(
        "Reshape",
        vec![node("Reshape", &["x", "shape"], &["out"], vec![])],
        vec![ints("shape", &[3], vec![0, 12, -1])],
        72,
    );
    op_case(
        "Transpose",
        vec![node(
            "Transpose",
            &["x"],
            &["out"],
            vec![attr_ints("perm", &[0, 3, 1, 2])],
        )],
        vec![],
        72,
    );
    op_case(
        "Concat",
        vec![node(
            "Concat",
            &["x", "x"],
            &["out"],
            vec![attr_int("axis", 1)],
        )],
        vec![],
        144,
    );
    op_case(
        "Pad",
        vec![node(
            "Pad",
            &["x", "pads", "v"],
            &["out"],
            vec![attr_str("mode", "constant")],
        )],
        vec![
            ints("pads", &[8], vec![0, 0, 1, 2, 0, 0, 2, 1]),
            floats("v", &[], vec![0.5]),
        ],
        2 * 9 * 9,
    );
    op_case(
        "Shape/Gather/Unsqueeze/Concat/Reshape",
        vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Gather", &["s", "zero"], &["n"], vec![attr_int("axis", 0)]),
            node("Unsqueeze", &["n", "axes"], &["n1"], vec![]),
            node(
                "Concat",
                &["n1", "minus1"],
                &["shape"],
                vec![attr_int("axis", 0)],
            ),
            node("Reshape", &["x", "shape"], &["r"], vec![]),
            node("Unsqueeze", &["r", "axes1"], &["u"], vec![]),
            node("Squeeze", &["u", "axes1"], &["out"], vec![]),
        ],
        vec![
            ints("zero", &[], vec![0]),
            ints("axes", &[1], vec![0]),
            ints("minus1", &[1], vec![-1]),
            ints("axes1", &[1], vec![1]),
        ],
        72,
    );
    op_case(
        "Constant and Cast",
        vec![
            node(
                "Constant",
                &[],
                &["k"],
                vec![mlsec_model::onnx::proto::AttributeProto {
                    name: "value".into(),
                    r#type: 4,
                    t: Some(floats("kv", &[], vec![2.0])),
                    ..Default::default()
                }],
            ),
            node("Cast", &["k"], &["kc"], vec![attr_int("to", 1)]),
            node("Mul", &["x", "kc"], &["out"], vec![]),
        ],
        vec![],
        72,
    );
}

#[test]
fn onnx_gemm_and_matmul() {
    op_case_shaped(
        "Gemm transA/transB alpha beta",
        &[5],
        vec![
            node("Transpose", &["x"], &["xt"], vec![]),
            node(
                "Gemm",
                &["xt", "gw", "gb"],
                &["out"],
                vec![
                    attr_int("transA", 1),
                    attr_int("transB", 1),
                    attr_float("alpha", 0.5),
                    attr_float("beta", 2.0),
                ],
            ),
        ],
        vec![w("gw", &[4, 5], 1), w("gb", &[4], 2)],
        4,
    );
    op_case_shaped(
        "MatMul",
        &[5],
        vec![node("MatMul", &["x", "mw"], &["out"], vec![])],
        vec![w("mw", &[5, 6], 3)],
        6,
    );
    op_case(
        "MatMul batched",
        vec![node("MatMul", &["x", "mw"], &["out"], vec![])],
        vec![w("mw", &[6, 4], 4)],
        2 * 6 * 4,
    );
}
