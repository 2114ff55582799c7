//! A decoded, checked ONNX graph: nodes in order, constants on the host,
//! and the list of ops the differentiable interpreter cannot run.

use crate::proto::{self, attribute_type, data_type, ModelProto, NodeProto, TensorProto};
use crate::{OnnxError as ModelError, Result};
use std::collections::{HashMap, HashSet};

/// Most elements any one constant may hold (a crafted dims list must not
/// make us allocate terabytes).
pub const MAX_CONSTANT_ELEMENTS: usize = 1 << 28;
/// Most nodes in a graph.
pub const MAX_NODES: usize = 100_000;

/// A constant held on the host: floats, or integers (shapes, axes, indices).
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: HostData,
}

impl HostTensor {
    pub fn len(&self) -> usize {
        match &self.data {
            HostData::F32(v) => v.len(),
            HostData::I64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn as_i64(&self) -> Vec<i64> {
        match &self.data {
            HostData::I64(v) => v.clone(),
            HostData::F32(v) => v.iter().map(|&f| f as i64).collect(),
        }
    }
    pub fn as_f32(&self) -> Vec<f32> {
        match &self.data {
            HostData::F32(v) => v.clone(),
            HostData::I64(v) => v.iter().map(|&i| i as f32).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Float(f32),
    Int(i64),
    Str(String),
    Tensor(HostTensor),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Other,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub op: String,
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: HashMap<String, Attr>,
}

impl Node {
    pub fn int(&self, name: &str, default: i64) -> i64 {
        match self.attrs.get(name) {
            Some(Attr::Int(i)) => *i,
            _ => default,
        }
    }
    pub fn float(&self, name: &str, default: f32) -> f32 {
        match self.attrs.get(name) {
            Some(Attr::Float(f)) => *f,
            _ => default,
        }
    }
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        match self.attrs.get(name) {
            Some(Attr::Ints(v)) => Some(v.clone()),
            _ => None,
        }
    }
    pub fn string(&self, name: &str) -> Option<&str> {
        match self.attrs.get(name) {
            Some(Attr::Str(s)) => Some(s),
            _ => None,
        }
    }
    /// The `k`-th input, when present and not the empty "omitted" name.
    pub fn input(&self, k: usize) -> Option<&str> {
        self.inputs
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    fn label(&self) -> String {
        if self.name.is_empty() {
            self.op.clone()
        } else {
            format!("{} ({})", self.op, self.name)
        }
    }
}

/// The ops the interpreter differentiates through (and the shape helpers
/// that exporters put around them).
pub const DIFFERENTIABLE_OPS: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "Flatten",
    "Reshape",
    "Transpose",
    "Concat",
    "Identity",
    "Dropout",
    "Constant",
    "Clip",
    "Pad",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Cast",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Abs",
];

#[derive(Debug, Clone)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub constants: HashMap<String, HostTensor>,
    pub input: String,
    /// Declared input shape; `None` for symbolic dimensions.
    pub input_shape: Vec<Option<usize>>,
    pub output: String,
    pub opset: i64,
    pub producer: String,
    /// Ops (with node names) the interpreter cannot differentiate; empty
    /// when the whole graph is differentiable.
    pub unsupported: Vec<String>,
}

fn tensor(t: &TensorProto) -> Result<HostTensor> {
    if !t.external_data.is_empty() || t.data_location == 1 {
        return Err(ModelError::unsupported(format!(
            "initializer {:?} keeps its data in an external file; mlsec loads self-contained ONNX models only",
            t.name
        )));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    let mut count = 1usize;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| {
            ModelError::malformed(format!("tensor {:?} has a negative dimension", t.name))
        })?;
        count = count
            .checked_mul(d)
            .filter(|&c| c <= MAX_CONSTANT_ELEMENTS)
            .ok_or_else(|| {
                ModelError::malformed(format!("tensor {:?} is too large ({:?})", t.name, t.dims))
            })?;
        shape.push(d);
    }
    let raw = &t.raw_data;
    let from_raw = |size: usize| -> Result<&[u8]> {
        if raw.len() != count * size {
            return Err(ModelError::malformed(format!(
                "tensor {:?}: {} raw bytes for {} elements of {} bytes",
                t.name,
                raw.len(),
                count,
                size
            )));
        }
        Ok(raw)
    };
    let data = match t.data_type {
        data_type::FLOAT if !raw.is_empty() => HostData::F32(
            from_raw(4)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        data_type::FLOAT => HostData::F32(t.float_data.clone()),
        data_type::DOUBLE if !raw.is_empty() => HostData::F32(
            from_raw(8)?
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
        ),
        data_type::DOUBLE => HostData::F32(t.double_data.iter().map(|&v| v as f32).collect()),
        data_type::INT64 if !raw.is_empty() => HostData::I64(
            from_raw(8)?
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
        ),
        data_type::INT64 => HostData::I64(t.int64_data.clone()),
        data_type::INT32 if !raw.is_empty() => HostData::I64(
            from_raw(4)?
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
        ),
        data_type::INT32 | data_type::INT8 | data_type::UINT8 | data_type::BOOL
            if raw.is_empty() =>
        {
            HostData::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect())
        }
        data_type::INT8 => {
            HostData::I64(from_raw(1)?.iter().map(|&b| i64::from(b as i8)).collect())
        }
        data_type::UINT8 | data_type::BOOL => {
            HostData::I64(from_raw(1)?.iter().map(|&b| i64::from(b)).collect())
        }
        other => {
            return Err(ModelError::unsupported(format!(
            "tensor {:?} has ONNX data type {other}; mlsec reads float, double and integer tensors",
            t.name
        )))
        }
    };
    let out = HostTensor { shape, data };
    if out.len() != count {
        return Err(ModelError::malformed(format!(
            "tensor {:?} holds {} values for shape {:?}",
            t.name,
            out.len(),
            t.dims
        )));
    }
    Ok(out)
}

fn attribute(a: &proto::AttributeProto) -> Result<Attr> {
    Ok(match a.r#type {
        attribute_type::FLOAT => Attr::Float(a.f),
        attribute_type::INT => Attr::Int(a.i),
        attribute_type::STRING => Attr::Str(String::from_utf8_lossy(&a.s).into_owned()),
        attribute_type::TENSOR => match &a.t {
            Some(t) => Attr::Tensor(tensor(t)?),
            None => Attr::Other,
        },
        attribute_type::FLOATS => Attr::Floats(a.floats.clone()),
        attribute_type::INTS => Attr::Ints(a.ints.clone()),
        _ => Attr::Other,
    })
}

/// Whether a node can run in the interpreter, with attribute values the
/// interpreter implements.
fn differentiable(n: &NodeProto, node: &Node, rank_hint: Option<usize>) -> bool {
    if !(n.domain.is_empty() || n.domain == "ai.onnx")
        || !DIFFERENTIABLE_OPS.contains(&n.op_type.as_str())
    {
        return false;
    }
    match n.op_type.as_str() {
        "Pad" => node.string("mode").is_none_or(|m| m == "constant"),
        "Conv" | "MaxPool" | "AveragePool" => {
            let k = node.ints("kernel_shape").map(|k| k.len());
            let two_d = k
                .or(rank_hint.map(|r| r.saturating_sub(2)))
                .is_none_or(|k| k == 2);
            // MaxPool's optional Indices output is not produced.
            two_d && !(n.op_type == "MaxPool" && n.output.len() > 1 && !n.output[1].is_empty())
        }
        _ => true,
    }
}

impl Graph {
    pub fn decode(bytes: &[u8]) -> Result<Graph> {
        use prost::Message;
        let model = ModelProto::decode(bytes)
            .map_err(|e| ModelError::malformed(format!("not an ONNX model: {e}")))?;
        let g = model
            .graph
            .ok_or_else(|| ModelError::malformed("ONNX model without a graph"))?;
        if g.node.len() > MAX_NODES {
            return Err(ModelError::malformed(format!(
                "{} nodes is over the {MAX_NODES} limit",
                g.node.len()
            )));
        }
        let opset = model
            .opset_import
            .iter()
            .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .max()
            .unwrap_or(1);
        let mut constants = HashMap::new();
        for t in &g.initializer {
            constants.insert(t.name.clone(), tensor(t)?);
        }
        let inputs: Vec<_> = g
            .input
            .iter()
            .filter(|v| !constants.contains_key(&v.name))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(ModelError::unsupported(format!(
                "a classifier has one input; this graph has {}: {:?}",
                inputs.len(),
                inputs.iter().map(|v| &v.name).collect::<Vec<_>>()
            )));
        };
        let input_shape = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| {
                        d.dim_value
                            .and_then(|v| usize::try_from(v).ok())
                            .filter(|&v| v > 0)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let output = g
            .output
            .first()
            .map(|o| o.name.clone())
            .ok_or_else(|| ModelError::malformed("ONNX graph without an output"))?;
        let rank_hint = Some(Vec::<Option<usize>>::len(&input_shape)).filter(|&r| r > 0);
        let mut nodes = Vec::with_capacity(g.node.len());
        let mut unsupported = Vec::new();
        let mut produced: HashSet<&str> = HashSet::new();
        produced.insert(&input.name);
        for k in constants.keys() {
            produced.insert(k);
        }
        for n in &g.node {
            for i in n.input.iter().filter(|s| !s.is_empty()) {
                if !produced.contains(i.as_str()) {
                    return Err(ModelError::malformed(format!(
                        "node {} {:?} reads {i:?} before anything produces it (nodes must be in topological order)",
                        n.op_type, n.name
                    )));
                }
            }
            for o in &n.output {
                produced.insert(o);
            }
            let mut attrs = HashMap::new();
            for a in &n.attribute {
                attrs.insert(a.name.clone(), attribute(a)?);
            }
            let node = Node {
                op: n.op_type.clone(),
                name: n.name.clone(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                attrs,
            };
            if !differentiable(n, &node, rank_hint) {
                unsupported.push(node.label());
            }
            nodes.push(node);
        }
        if !produced.contains(output.as_str()) {
            return Err(ModelError::malformed(format!(
                "nothing produces the graph output {output:?}"
            )));
        }
        Ok(Graph {
            nodes,
            constants,
            input: input.name.clone(),
            input_shape,
            output,
            opset,
            producer: model.producer_name,
            unsupported,
        })
    }

    /// The name whose value is the logits: the graph output, or the input
    /// of a final Softmax/LogSoftmax (attacks want logits, and softmax of
    /// them still gives the model's probabilities).
    pub fn logits_name(&self) -> (String, bool) {
        if let Some(last) = self
            .nodes
            .iter()
            .rev()
            .find(|n| n.outputs.contains(&self.output))
        {
            if (last.op == "Softmax" || last.op == "LogSoftmax") && last.input(0).is_some() {
                return (last.inputs[0].clone(), true);
            }
        }
        (self.output.clone(), false)
    }
}
