//! The decoder on valid, malformed, hostile and arbitrary bytes.

use mlsec_onnx::proto::*;
use mlsec_onnx::{Graph, HostData};
use proptest::prelude::*;
use prost::Message;

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: (d > 0).then_some(d),
                            dim_param: (d <= 0).then(|| "N".into()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "test".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: inits,
            input: vec![value_info("x", &[0, 4])],
            output: vec![value_info("y", &[0, 3])],
        }),
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn weights() -> TensorProto {
    TensorProto {
        name: "w".into(),
        dims: vec![4, 3],
        data_type: data_type::FLOAT,
        raw_data: (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn valid() -> Vec<u8> {
    model(
        vec![
            node("MatMul", &["x", "w"], &["h"]),
            node("Softmax", &["h"], &["y"]),
        ],
        vec![weights()],
    )
    .encode_to_vec()
}

#[test]
fn a_valid_graph_decodes_with_its_constants_and_logits() {
    let g = Graph::decode(&valid()).unwrap();
    assert_eq!(g.input, "x");
    assert_eq!(g.input_shape, vec![None, Some(4)]);
    assert_eq!(g.opset, 13);
    assert!(g.unsupported.is_empty());
    assert_eq!(g.constants["w"].shape, vec![4, 3]);
    assert_eq!(
        g.constants["w"].data,
        HostData::F32((0..12).map(|i| i as f32).collect())
    );
    // Attacks want logits: the final softmax's input.
    assert_eq!(g.logits_name(), ("h".to_string(), true));
}

#[test]
fn ops_outside_the_interpreter_are_listed() {
    let mut n = node("Erf", &["h"], &["y"]);
    n.name = "erf_1".into();
    let bytes = model(
        vec![node("MatMul", &["x", "w"], &["h"]), n],
        vec![weights()],
    )
    .encode_to_vec();
    let g = Graph::decode(&bytes).unwrap();
    assert_eq!(g.unsupported, vec!["Erf (erf_1)".to_string()]);
    let mut custom = node("Relu", &["h"], &["y"]);
    custom.domain = "com.example".into();
    let bytes = model(
        vec![node("MatMul", &["x", "w"], &["h"]), custom],
        vec![weights()],
    )
    .encode_to_vec();
    assert_eq!(Graph::decode(&bytes).unwrap().unsupported.len(), 1);
}

#[test]
fn hostile_graphs_are_refused_with_reasons() {
    // A dims list whose product is astronomically large.
    let mut huge = weights();
    huge.dims = vec![1 << 40, 1 << 40];
    let e = Graph::decode(
        &model(vec![node("MatMul", &["x", "w"], &["y"])], vec![huge]).encode_to_vec(),
    )
    .unwrap_err();
    assert!(e.message.contains("too large"), "{e}");
    // Raw bytes that do not match the dims.
    let mut short = weights();
    short.raw_data.truncate(10);
    let e = Graph::decode(
        &model(vec![node("MatMul", &["x", "w"], &["y"])], vec![short]).encode_to_vec(),
    )
    .unwrap_err();
    assert!(e.message.contains("raw bytes"), "{e}");
    // External data (a path outside the file) is never followed.
    let mut ext = weights();
    ext.external_data = vec![StringStringEntryProto {
        key: "location".into(),
        value: "/etc/passwd".into(),
    }];
    let e =
        Graph::decode(&model(vec![node("MatMul", &["x", "w"], &["y"])], vec![ext]).encode_to_vec())
            .unwrap_err();
    assert!(e.unsupported && e.message.contains("external file"), "{e}");
    // A node reading a value nothing produced (cycles, forward references).
    let e = Graph::decode(
        &model(
            vec![
                node("Relu", &["later"], &["y"]),
                node("Relu", &["x"], &["later"]),
            ],
            vec![],
        )
        .encode_to_vec(),
    )
    .unwrap_err();
    assert!(e.message.contains("topological"), "{e}");
    // No output producer.
    let e = Graph::decode(&model(vec![node("Relu", &["x"], &["z"])], vec![]).encode_to_vec())
        .unwrap_err();
    assert!(e.message.contains("nothing produces"), "{e}");
    // Not protobuf at all.
    assert!(Graph::decode(b"\x08\x07\xff\xff\xff").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Graph::decode(&bytes);
    }

    #[test]
    fn corrupted_models_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let mut bytes = valid();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= b;
        }
        let end = cut.index(bytes.len() + 1);
        let _ = Graph::decode(&bytes[..end]);
    }
}
