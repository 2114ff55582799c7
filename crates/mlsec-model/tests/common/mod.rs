//! Shared helpers: finite-difference gradient checks and tiny ONNX graphs.

#![allow(dead_code)]

use mlsec_model::classifier::LogitWeights;
use mlsec_model::onnx::proto::{
    self, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use mlsec_model::{Batch, Differentiable};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn uniform(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * ((rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32)
}

pub fn random(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| uniform(rng, lo, hi)).collect()
}

/// Worst error, relative to |g|, between the analytic directional
/// derivative of `sum w·logits` and central differences, along g itself
/// and three random directions.
pub fn worst_gradient_error(model: &dyn Differentiable, x: &Batch, seed: u64) -> f64 {
    let mut r = rng(seed);
    let classes = model.info().classes;
    let weights = random(&mut r, x.len() * classes, -1.0, 1.0);
    let loss = LogitWeights { weights: &weights };
    let g = model.gradient(x, &loss).expect("gradient");
    let f = |v: &[f32]| -> f64 {
        let b = Batch::new(v.to_vec(), x.shape.clone()).unwrap();
        let z = model.logits(&b).unwrap();
        z.data
            .iter()
            .zip(&weights)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum()
    };
    let gnorm = g
        .input
        .data
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(gnorm > 1e-6, "gradient vanished");
    let mut worst = 0.0f64;
    for k in 0..4 {
        let mut d: Vec<f64> = if k == 0 {
            g.input.data.iter().map(|&v| f64::from(v)).collect()
        } else {
            random(&mut r, x.data.len(), -1.0, 1.0)
                .into_iter()
                .map(f64::from)
                .collect()
        };
        let n = d.iter().map(|v| v * v).sum::<f64>().sqrt();
        d.iter_mut().for_each(|v| *v /= n);
        let h = 1e-3;
        let plus: Vec<f32> = x
            .data
            .iter()
            .zip(&d)
            .map(|(a, b)| (f64::from(*a) + h * b) as f32)
            .collect();
        let minus: Vec<f32> = x
            .data
            .iter()
            .zip(&d)
            .map(|(a, b)| (f64::from(*a) - h * b) as f32)
            .collect();
        let fd = (f(&plus) - f(&minus)) / (2.0 * h);
        let analytic: f64 = g
            .input
            .data
            .iter()
            .zip(&d)
            .map(|(a, b)| f64::from(*a) * b)
            .sum();
        worst = worst.max((fd - analytic).abs() / gnorm);
    }
    worst
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: proto::attribute_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: proto::attribute_type::INT,
        i: v,
        ..Default::default()
    }
}
pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: proto::attribute_type::FLOAT,
        f: v,
        ..Default::default()
    }
}
pub fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: proto::attribute_type::STRING,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

pub fn floats(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: proto::data_type::FLOAT,
        float_data: data,
        ..Default::default()
    }
}

pub fn ints(name: &str, dims: &[i64], data: Vec<i64>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: proto::data_type::INT64,
        int64_data: data,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: proto::data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| proto::Dimension {
                            dim_value: (d > 0).then_some(d),
                            dim_param: (d <= 0).then(|| "N".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

/// A graph `x → nodes → (out) → Flatten → Gemm(3 classes)`, encoded.
/// `out_features` is the flattened size of `out` per sample.
pub fn classifier_graph(
    input: &[i64],
    mut nodes: Vec<NodeProto>,
    mut inits: Vec<TensorProto>,
    out: &str,
    out_features: usize,
    seed: u64,
) -> Vec<u8> {
    use prost::Message;
    let mut r = rng(seed);
    nodes.push(node(
        "Flatten",
        &[out],
        &["flat"],
        vec![attr_int("axis", 1)],
    ));
    nodes.push(node(
        "Gemm",
        &["flat", "head_w", "head_b"],
        &["logits"],
        vec![attr_int("transB", 1)],
    ));
    inits.push(floats(
        "head_w",
        &[3, out_features as i64],
        random(&mut r, 3 * out_features, -0.5, 0.5),
    ));
    inits.push(floats("head_b", &[3], random(&mut r, 3, -0.5, 0.5)));
    let mut dims = vec![0i64];
    dims.extend_from_slice(input);
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "mlsec-tests".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: inits,
            input: vec![value_info("x", &dims)],
            output: vec![value_info("logits", &[0, 3])],
        }),
    }
    .encode_to_vec()
}
