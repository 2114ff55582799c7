//! The interpreter: runs a [`Graph`] with the engine's own differentiable
//! tensor ops, so that input gradients flow through it like through a zoo
//! network.
//!
//! Every float value is held as a rank-4 tensor whose leading dimensions
//! are 1, next to its logical ONNX shape (rank ≤ 4). Leading ones are
//! exactly what NumPy-style broadcasting adds, so elementwise ops broadcast
//! correctly on the padded tensors, and NCHW ops see their natural layout.
//! Shape arithmetic (Shape → Gather → Concat → Reshape, as exporters write
//! `x.view(x.size(0), -1)`) runs on the host on integer values.

use crate::error::{ModelError, Result};
use crate::ops::{conv2d_with, max_pool2d_with};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, log_softmax, relu, sigmoid, softmax, tanh};
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions, PadMode};
use mlsec_onnx::{Attr, Graph, HostData, HostTensor, Node};
use std::collections::HashMap;

/// A value flowing through the graph.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // float tensors are the common case
pub enum Value {
    F(Tensor<4>, Vec<usize>),
    I(Vec<i64>, Vec<usize>),
}

fn err(node: &Node, message: impl std::fmt::Display) -> ModelError {
    ModelError::unsupported(format!("ONNX node {} {:?}: {message}", node.op, node.name))
}

/// Pads a logical shape to four dimensions with leading ones.
fn physical(shape: &[usize]) -> Result<[usize; 4]> {
    if shape.len() > 4 {
        return Err(ModelError::unsupported(format!(
            "a tensor of rank {} (shape {shape:?}); the interpreter handles rank ≤ 4",
            shape.len()
        )));
    }
    let mut p = [1usize; 4];
    p[4 - shape.len()..].copy_from_slice(shape);
    Ok(p)
}

fn float_tensor(data: Vec<f32>, shape: &[usize], device: &Device) -> Result<Tensor<4>> {
    Ok(Tensor::from_data(
        TensorData::new(data, physical(shape)?),
        device,
    ))
}

/// Converts constants for one device.
pub fn constants(graph: &Graph, device: &Device) -> Result<HashMap<String, Value>> {
    graph
        .constants
        .iter()
        .map(|(k, t)| Ok((k.clone(), host_value(t, device)?)))
        .collect()
}

fn host_value(t: &HostTensor, device: &Device) -> Result<Value> {
    Ok(match &t.data {
        HostData::F32(v) => Value::F(float_tensor(v.clone(), &t.shape, device)?, t.shape.clone()),
        HostData::I64(v) => Value::I(v.clone(), t.shape.clone()),
    })
}

fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| {
        if i < r - s.len() {
            1
        } else {
            s[i - (r - s.len())]
        }
    };
    (0..r)
        .map(|i| {
            let (x, y) = (get(a, i), get(b, i));
            if x == y || y == 1 {
                Some(x)
            } else if x == 1 {
                Some(y)
            } else {
                None
            }
        })
        .collect()
}

/// A normalised axis (negative counts from the end).
fn axis(node: &Node, a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    if !(0..r.max(1)).contains(&a) {
        return Err(err(node, format!("axis {a} out of range for rank {rank}")));
    }
    Ok(a as usize)
}

pub struct Interpreter<'a> {
    pub graph: &'a Graph,
    pub constants: &'a HashMap<String, Value>,
    pub device: &'a Device,
}

impl Interpreter<'_> {
    /// Runs the graph on `x` (`[n, c, h, w]` or `[n, features]` as declared)
    /// and returns the value named `output` as `[n, classes]`.
    pub fn run(&self, x: Tensor<4>, x_shape: Vec<usize>, output: &str) -> Result<Tensor<2>> {
        let mut values: HashMap<&str, Value> = HashMap::new();
        values.insert(self.graph.input.as_str(), Value::F(x, x_shape));
        for node in &self.graph.nodes {
            let out = self.node(node, &values)?;
            for (name, v) in node.outputs.iter().zip(out) {
                values.insert(name.as_str(), v);
            }
            if values.contains_key(output) {
                break;
            }
        }
        match values.remove(output) {
            Some(Value::F(t, shape)) if shape.len() == 2 => Ok(t.reshape([shape[0], shape[1]])),
            Some(Value::F(_, shape)) => Err(ModelError::unsupported(format!(
                "the output {output:?} has shape {shape:?}; a classifier's output is [batch, classes]"
            ))),
            Some(Value::I(..)) => Err(ModelError::unsupported(format!("the output {output:?} is integer-valued"))),
            None => Err(ModelError::malformed(format!("nothing produced {output:?}"))),
        }
    }

    fn get(&self, node: &Node, values: &HashMap<&str, Value>, k: usize) -> Result<Value> {
        let name = node
            .input(k)
            .ok_or_else(|| err(node, format!("input {k} is missing")))?;
        values
            .get(name)
            .or_else(|| self.constants.get(name))
            .cloned()
            .ok_or_else(|| err(node, format!("input {name:?} has no value")))
    }

    fn float(
        &self,
        node: &Node,
        values: &HashMap<&str, Value>,
        k: usize,
    ) -> Result<(Tensor<4>, Vec<usize>)> {
        match self.get(node, values, k)? {
            Value::F(t, s) => Ok((t, s)),
            Value::I(v, s) => Ok((
                float_tensor(v.iter().map(|&i| i as f32).collect(), &s, self.device)?,
                s,
            )),
        }
    }

    fn ints(&self, node: &Node, values: &HashMap<&str, Value>, k: usize) -> Result<Vec<i64>> {
        match self.get(node, values, k)? {
            Value::I(v, _) => Ok(v),
            Value::F(..) => Err(err(
                node,
                "needs a constant integer input (computed shapes are not supported)",
            )),
        }
    }

    fn node(&self, node: &Node, values: &HashMap<&str, Value>) -> Result<Vec<Value>> {
        let unary = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| -> Result<Vec<Value>> {
            let (t, s) = self.float(node, values, 0)?;
            Ok(vec![Value::F(f(t), s)])
        };
        let opset = self.graph.opset;
        match node.op.as_str() {
            "Identity" | "Dropout" => Ok(vec![self.get(node, values, 0)?]),
            "Relu" => unary(&|t| relu(t)),
            "LeakyRelu" => {
                let alpha = f64::from(node.float("alpha", 0.01));
                unary(&|t| leaky_relu(t, alpha))
            }
            "Sigmoid" => unary(&|t| sigmoid(t)),
            "Tanh" => unary(&|t| tanh(t)),
            "Neg" => unary(&|t| t.neg()),
            "Exp" => unary(&|t| t.exp()),
            "Log" => unary(&|t| t.log()),
            "Sqrt" => unary(&|t| t.sqrt()),
            "Abs" => unary(&|t| t.abs()),
            "Softmax" | "LogSoftmax" => {
                let (t, s) = self.float(node, values, 0)?;
                let default = if opset >= 13 { -1 } else { 1 };
                let a = axis(node, node.int("axis", default), s.len())?;
                let log = node.op == "LogSoftmax";
                let apply = |t: Tensor<4>, dim: usize| {
                    if log {
                        log_softmax(t, dim)
                    } else {
                        softmax(t, dim)
                    }
                };
                if opset < 13 && a != s.len() - 1 {
                    // Before opset 13 the input is coerced to 2-D at `axis`.
                    let (outer, inner) = (
                        s[..a].iter().product::<usize>(),
                        s[a..].iter().product::<usize>(),
                    );
                    let flat = apply(t.reshape([1, 1, outer, inner]), 3);
                    return Ok(vec![Value::F(flat.reshape(physical(&s)?), s)]);
                }
                Ok(vec![Value::F(apply(t, a + 4 - s.len()), s)])
            }
            "Add" | "Sub" | "Mul" | "Div" => self.binary(node, values),
            "Clip" => {
                let (t, s) = self.float(node, values, 0)?;
                let bound = |k: usize, name: &str, default: f32| -> Result<f32> {
                    if opset >= 11 {
                        match node.input(k) {
                            Some(_) => match self.get(node, values, k)? {
                                Value::I(v, _) => Ok(v.first().map_or(default, |&i| i as f32)),
                                Value::F(t, _) => Ok(t
                                    .into_data()
                                    .as_slice::<f32>()
                                    .ok()
                                    .and_then(|v| v.first().copied())
                                    .unwrap_or(default)),
                            },
                            None => Ok(default),
                        }
                    } else {
                        Ok(node.float(name, default))
                    }
                };
                let (lo, hi) = (
                    bound(1, "min", f32::NEG_INFINITY)?,
                    bound(2, "max", f32::INFINITY)?,
                );
                let t = if lo.is_finite() { t.clamp_min(lo) } else { t };
                let t = if hi.is_finite() { t.clamp_max(hi) } else { t };
                Ok(vec![Value::F(t, s)])
            }
            "Gemm" => self.gemm(node, values),
            "MatMul" => self.matmul(node, values),
            "Conv" => self.conv(node, values),
            "MaxPool" | "AveragePool" => self.pool(node, values),
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let (t, s) = self.float(node, values, 0)?;
                if s.len() != 4 {
                    return Err(err(node, format!("expects NCHW input, got shape {s:?}")));
                }
                let t = if node.op == "GlobalAveragePool" {
                    t.mean_dims(&[2, 3])
                } else {
                    t.max_dims(&[2, 3])
                };
                Ok(vec![Value::F(t, vec![s[0], s[1], 1, 1])])
            }
            "BatchNormalization" => {
                let (t, s) = self.float(node, values, 0)?;
                let host = |k: usize| -> Result<Vec<f32>> {
                    let name = node
                        .input(k)
                        .ok_or_else(|| err(node, "missing parameter"))?;
                    self.graph
                        .constants
                        .get(name)
                        .map(HostTensor::as_f32)
                        .ok_or_else(|| err(node, "batch-norm parameters must be initializers"))
                };
                let (scale, bias, mean, var) = (host(1)?, host(2)?, host(3)?, host(4)?);
                let eps = node.float("epsilon", 1e-5);
                let c = s
                    .get(1)
                    .copied()
                    .ok_or_else(|| err(node, "input of rank < 2"))?;
                if [scale.len(), bias.len(), mean.len(), var.len()]
                    .iter()
                    .any(|&l| l != c)
                {
                    return Err(err(node, "parameter sizes do not match the channels"));
                }
                let a: Vec<f32> = (0..c).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
                let b: Vec<f32> = (0..c).map(|i| bias[i] - mean[i] * a[i]).collect();
                let mut pshape = vec![1; s.len()];
                pshape[1] = c;
                let a = float_tensor(a, &pshape, self.device)?;
                let b = float_tensor(b, &pshape, self.device)?;
                Ok(vec![Value::F(t * a + b, s)])
            }
            "Flatten" => {
                let v = self.get(node, values, 0)?;
                let s = shape_of(&v);
                // Flatten's axis lies in [-r, r]: negative counts from the rank.
                let r = s.len() as i64;
                let a = node.int("axis", 1);
                let a = if a < 0 { a + r } else { a };
                if !(0..=r).contains(&a) {
                    return Err(err(node, format!("axis {a} out of range for rank {r}")));
                }
                let a = a as usize;
                let new = vec![s[..a].iter().product(), s[a..].iter().product()];
                reshape(v, new)
            }
            "Reshape" => {
                let v = self.get(node, values, 0)?;
                let target = self.ints(node, values, 1)?;
                let s = shape_of(&v);
                let allow_zero = node.int("allowzero", 0) != 0;
                let mut new: Vec<i64> = target
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d == 0 && !allow_zero {
                            s.get(i).map_or(0, |&x| x as i64)
                        } else {
                            d
                        }
                    })
                    .collect();
                let total: usize = s.iter().product();
                if let Some(pos) = new.iter().position(|&d| d == -1) {
                    let known: i64 = new.iter().filter(|&&d| d != -1).product();
                    if known <= 0 {
                        return Err(err(node, format!("cannot infer -1 in {target:?}")));
                    }
                    new[pos] = total as i64 / known;
                }
                if new.iter().any(|&d| d < 0) || new.iter().product::<i64>() as usize != total {
                    return Err(err(node, format!("cannot reshape {s:?} to {target:?}")));
                }
                reshape(v, new.iter().map(|&d| d as usize).collect())
            }
            "Unsqueeze" | "Squeeze" => {
                let v = self.get(node, values, 0)?;
                let s = shape_of(&v);
                let axes = if opset >= 13 && node.input(1).is_some() {
                    Some(self.ints(node, values, 1)?)
                } else {
                    node.ints("axes")
                };
                let new = if node.op == "Unsqueeze" {
                    let axes = axes.ok_or_else(|| err(node, "no axes"))?;
                    let r = s.len() + axes.len();
                    let mut axes: Vec<usize> = axes
                        .iter()
                        .map(|&a| axis(node, a, r))
                        .collect::<Result<_>>()?;
                    axes.sort_unstable();
                    let mut new = s.clone();
                    for a in axes {
                        new.insert(a.min(new.len()), 1);
                    }
                    new
                } else {
                    let axes: Vec<usize> = match axes {
                        Some(a) => a
                            .iter()
                            .map(|&a| axis(node, a, s.len()))
                            .collect::<Result<_>>()?,
                        None => (0..s.len()).filter(|&i| s[i] == 1).collect(),
                    };
                    s.iter()
                        .enumerate()
                        .filter(|(i, _)| !axes.contains(i))
                        .map(|(_, &d)| d)
                        .collect()
                };
                reshape(v, new)
            }
            "Transpose" => {
                let (t, s) = self.float(node, values, 0)?;
                let r = s.len();
                let perm = node
                    .ints("perm")
                    .unwrap_or_else(|| (0..r as i64).rev().collect());
                if perm.len() != r {
                    return Err(err(node, "perm does not match the rank"));
                }
                let off = 4 - r;
                let mut p = [0usize, 1, 2, 3];
                for (i, &a) in perm.iter().enumerate() {
                    p[off + i] = off + axis(node, a, r)?;
                }
                let new: Vec<usize> = perm.iter().map(|&a| s[a as usize]).collect();
                Ok(vec![Value::F(t.permute(p), new)])
            }
            "Concat" => {
                let vals: Vec<Value> = (0..node.inputs.len())
                    .filter(|&k| node.input(k).is_some())
                    .map(|k| self.get(node, values, k))
                    .collect::<Result<_>>()?;
                let first = vals.first().ok_or_else(|| err(node, "no inputs"))?;
                let r = shape_of(first).len();
                let a = axis(node, node.int("axis", 0), r)?;
                if vals.iter().all(|v| matches!(v, Value::I(..))) && r == 1 {
                    let v: Vec<i64> = vals
                        .iter()
                        .flat_map(|v| {
                            if let Value::I(v, _) = v {
                                v.clone()
                            } else {
                                vec![]
                            }
                        })
                        .collect();
                    let n = v.len();
                    return Ok(vec![Value::I(v, vec![n])]);
                }
                let mut shape = shape_of(first);
                shape[a] = vals.iter().map(|v| shape_of(v)[a]).sum();
                let tensors = (0..node.inputs.len())
                    .filter(|&k| node.input(k).is_some())
                    .map(|k| self.float(node, values, k).map(|(t, _)| t))
                    .collect::<Result<Vec<_>>>()?;
                Ok(vec![Value::F(Tensor::cat(tensors, a + 4 - r), shape)])
            }
            "Constant" => {
                let value = match node.attrs.get("value") {
                    Some(Attr::Tensor(t)) => t.clone(),
                    _ => match (
                        node.attrs.get("value_float"),
                        node.attrs.get("value_floats"),
                        node.attrs.get("value_int"),
                        node.attrs.get("value_ints"),
                    ) {
                        (Some(Attr::Float(f)), ..) => HostTensor {
                            shape: vec![],
                            data: HostData::F32(vec![*f]),
                        },
                        (_, Some(Attr::Floats(f)), ..) => HostTensor {
                            shape: vec![f.len()],
                            data: HostData::F32(f.clone()),
                        },
                        (_, _, Some(Attr::Int(i)), _) => HostTensor {
                            shape: vec![],
                            data: HostData::I64(vec![*i]),
                        },
                        (_, _, _, Some(Attr::Ints(i))) => HostTensor {
                            shape: vec![i.len()],
                            data: HostData::I64(i.clone()),
                        },
                        _ => return Err(err(node, "a Constant without a supported value")),
                    },
                };
                Ok(vec![host_value(&value, self.device)?])
            }
            "Shape" => {
                let s = shape_of(&self.get(node, values, 0)?);
                let r = s.len() as i64;
                let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let start = clampi(node.int("start", 0));
                let end = clampi(node.int("end", r));
                let v: Vec<i64> = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
                let n = v.len();
                Ok(vec![Value::I(v, vec![n])])
            }
            "Gather" => {
                let data = self.get(node, values, 0)?;
                let idx = self.ints(node, values, 1)?;
                let idx_shape = shape_of(&self.get(node, values, 1)?);
                match data {
                    Value::I(v, s) if s.len() == 1 && node.int("axis", 0) == 0 => {
                        let n = v.len() as i64;
                        let out: Vec<i64> = idx
                            .iter()
                            .map(|&i| {
                                let i = if i < 0 { i + n } else { i };
                                v.get(i as usize)
                                    .copied()
                                    .ok_or_else(|| err(node, "index out of range"))
                            })
                            .collect::<Result<_>>()?;
                        Ok(vec![Value::I(out, idx_shape)])
                    }
                    _ => Err(err(
                        node,
                        "Gather on tensor data is not supported (only on shapes)",
                    )),
                }
            }
            "Cast" => {
                let v = self.get(node, values, 0)?;
                let to = node.int("to", 1) as i32;
                use mlsec_onnx::proto::data_type as dt;
                match (v, to) {
                    (Value::F(t, s), dt::FLOAT | dt::DOUBLE) => Ok(vec![Value::F(t, s)]),
                    (Value::I(v, s), dt::FLOAT | dt::DOUBLE) => Ok(vec![Value::F(
                        float_tensor(v.iter().map(|&i| i as f32).collect(), &s, self.device)?,
                        s,
                    )]),
                    (Value::I(v, s), _) => Ok(vec![Value::I(v, s)]),
                    (Value::F(..), _) => Err(err(
                        node,
                        "casting tensor data to integers is not differentiable",
                    )),
                }
            }
            "Pad" => {
                let (t, s) = self.float(node, values, 0)?;
                let pads = if opset >= 11 {
                    self.ints(node, values, 1)?
                } else {
                    node.ints("pads").unwrap_or_default()
                };
                let value = if opset >= 11 {
                    match node.input(2) {
                        Some(_) => match self.get(node, values, 2)? {
                            Value::F(t, _) => t
                                .into_data()
                                .as_slice::<f32>()
                                .ok()
                                .and_then(|v| v.first().copied())
                                .unwrap_or(0.0),
                            Value::I(v, _) => v.first().map_or(0.0, |&i| i as f32),
                        },
                        None => 0.0,
                    }
                } else {
                    node.float("value", 0.0)
                };
                let r = s.len();
                if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
                    return Err(err(
                        node,
                        format!("pads {pads:?} (only non-negative pads of every axis)"),
                    ));
                }
                let mut spec = [(0usize, 0usize); 4];
                let mut new = s.clone();
                for i in 0..r {
                    spec[4 - r + i] = (pads[i] as usize, pads[r + i] as usize);
                    new[i] += (pads[i] + pads[r + i]) as usize;
                }
                Ok(vec![Value::F(t.pad(spec, PadMode::Constant(value)), new)])
            }
            other => Err(err(
                node,
                format!("{other} is not supported by the differentiable interpreter"),
            )),
        }
    }

    fn binary(&self, node: &Node, values: &HashMap<&str, Value>) -> Result<Vec<Value>> {
        let (a, b) = (self.get(node, values, 0)?, self.get(node, values, 1)?);
        if let (Value::I(x, sx), Value::I(y, sy)) = (&a, &b) {
            // Shape arithmetic: scalars and equal lengths only.
            let f = |p: i64, q: i64| match node.op.as_str() {
                "Add" => p + q,
                "Sub" => p - q,
                "Mul" => p * q,
                _ => {
                    if q == 0 {
                        0
                    } else {
                        p / q
                    }
                }
            };
            let out: Vec<i64> = if y.len() == 1 {
                x.iter().map(|&p| f(p, y[0])).collect()
            } else if x.len() == 1 {
                y.iter().map(|&q| f(x[0], q)).collect()
            } else if x.len() == y.len() {
                x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect()
            } else {
                return Err(err(node, "integer operands of different lengths"));
            };
            let shape = if sx.len() >= sy.len() {
                sx.clone()
            } else {
                sy.clone()
            };
            return Ok(vec![Value::I(out, shape)]);
        }
        let (x, sx) = self.float(node, values, 0)?;
        let (y, sy) = self.float(node, values, 1)?;
        let shape = broadcast(&sx, &sy)
            .ok_or_else(|| err(node, format!("shapes {sx:?} and {sy:?} do not broadcast")))?;
        let t = match node.op.as_str() {
            "Add" => x + y,
            "Sub" => x - y,
            "Mul" => x * y,
            _ => x / y,
        };
        Ok(vec![Value::F(t, shape)])
    }

    fn gemm(&self, node: &Node, values: &HashMap<&str, Value>) -> Result<Vec<Value>> {
        let (a, sa) = self.float(node, values, 0)?;
        let (b, sb) = self.float(node, values, 1)?;
        if sa.len() != 2 || sb.len() != 2 {
            return Err(err(
                node,
                format!("Gemm needs 2-D operands, got {sa:?} and {sb:?}"),
            ));
        }
        let mut a: Tensor<2> = a.reshape([sa[0], sa[1]]);
        let mut b: Tensor<2> = b.reshape([sb[0], sb[1]]);
        if node.int("transA", 0) != 0 {
            a = a.transpose();
        }
        if node.int("transB", 0) != 0 {
            b = b.transpose();
        }
        let (m, k1) = (a.dims()[0], a.dims()[1]);
        let (k2, n) = (b.dims()[0], b.dims()[1]);
        if k1 != k2 {
            return Err(err(node, format!("inner dimensions {k1} and {k2} differ")));
        }
        let mut y = a.matmul(b) * node.float("alpha", 1.0);
        if node.input(2).is_some() {
            let (c, sc) = self.float(node, values, 2)?;
            broadcast(&[m, n], &sc).ok_or_else(|| {
                err(
                    node,
                    format!("bias {sc:?} does not broadcast to [{m}, {n}]"),
                )
            })?;
            let c: Tensor<2> = c.reshape([physical(&sc)?[2], physical(&sc)?[3]]);
            y = y + c * node.float("beta", 1.0);
        }
        Ok(vec![Value::F(y.reshape([1, 1, m, n]), vec![m, n])])
    }

    fn matmul(&self, node: &Node, values: &HashMap<&str, Value>) -> Result<Vec<Value>> {
        let (a, sa) = self.float(node, values, 0)?;
        let (b, sb) = self.float(node, values, 1)?;
        if sa.len() < 2 || sb.len() < 2 {
            return Err(err(node, "1-D MatMul operands are not supported"));
        }
        let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
        let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
        if k != k2 {
            return Err(err(node, format!("inner dimensions {k} and {k2} differ")));
        }
        let batch = broadcast(&sa[..sa.len() - 2], &sb[..sb.len() - 2])
            .ok_or_else(|| err(node, "batch dimensions do not broadcast"))?;
        let mut shape = batch;
        shape.extend([m, n]);
        physical(&shape)?;
        Ok(vec![Value::F(a.matmul(b), shape)])
    }

    fn conv(&self, node: &Node, values: &HashMap<&str, Value>) -> Result<Vec<Value>> {
        let (x, sx) = self.float(node, values, 0)?;
        let (w, sw) = self.float(node, values, 1)?;
        if sx.len() != 4 || sw.len() != 4 {
            return Err(err(
                node,
                format!("2-D convolution expects NCHW input and weights, got {sx:?} and {sw:?}"),
            ));
        }
        let group = node.int("group", 1).max(1) as usize;
        let strides = pair(node, "strides", 1)?;
        let dilations = pair(node, "dilations", 1)?;
        let kernel = [sw[2], sw[3]];
        let pads = pads(node, [sx[2], sx[3]], kernel, strides, dilations)?;
        if sx[1] != sw[1] * group {
            return Err(err(
                node,
                format!(
                    "{} input channels for weights {sw:?} in {group} groups",
                    sx[1]
                ),
            ));
        }
        let bias = match node.input(2) {
            Some(_) => {
                let (b, sb) = self.float(node, values, 2)?;
                Some(b.reshape([sb.iter().product::<usize>()]))
            }
            None => None,
        };
        let options = ConvOptions {
            stride: strides,
            padding: pads,
            dilation: dilations,
            groups: group,
        };
        let y = conv2d_with(x, w, bias, options);
        let d = y.dims();
        Ok(vec![Value::F(y, d.to_vec())])
    }

    fn pool(&self, node: &Node, values: &HashMap<&str, Value>) -> Result<Vec<Value>> {
        let (x, sx) = self.float(node, values, 0)?;
        if sx.len() != 4 {
            return Err(err(
                node,
                format!("2-D pooling expects NCHW input, got {sx:?}"),
            ));
        }
        let k = node
            .ints("kernel_shape")
            .ok_or_else(|| err(node, "no kernel_shape"))?;
        let kernel = [
            k[0].max(1) as usize,
            k.get(1).copied().unwrap_or(k[0]).max(1) as usize,
        ];
        let strides = pair(node, "strides", 1)?;
        let dilations = pair(node, "dilations", 1)?;
        let pads = pads(node, [sx[2], sx[3]], kernel, strides, dilations)?;
        let ceil_mode = node.int("ceil_mode", 0) != 0;
        let y = if node.op == "MaxPool" {
            max_pool2d_with(
                x,
                MaxPoolOptions {
                    kernel_size: kernel,
                    stride: strides,
                    padding: pads,
                    dilation: dilations,
                    ceil_mode,
                },
            )
        } else {
            if dilations != [1, 1] {
                return Err(err(node, "dilated average pooling"));
            }
            avg_pool2d(
                x,
                AvgPoolOptions {
                    kernel_size: kernel,
                    stride: strides,
                    padding: pads,
                    count_include_pad: node.int("count_include_pad", 0) != 0,
                    ceil_mode,
                },
            )
        };
        let d = y.dims();
        Ok(vec![Value::F(y, d.to_vec())])
    }
}

fn shape_of(v: &Value) -> Vec<usize> {
    match v {
        Value::F(_, s) | Value::I(_, s) => s.clone(),
    }
}

fn reshape(v: Value, new: Vec<usize>) -> Result<Vec<Value>> {
    Ok(vec![match v {
        Value::F(t, _) => Value::F(t.reshape(physical(&new)?), new),
        Value::I(d, _) => Value::I(d, new),
    }])
}

fn pair(node: &Node, name: &str, default: usize) -> Result<[usize; 2]> {
    match node.ints(name) {
        None => Ok([default; 2]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 1) => Ok([v[0] as usize, v[1] as usize]),
        Some(v) => Err(err(
            node,
            format!("{name} {v:?} (two positive values expected)"),
        )),
    }
}

/// ONNX pads `[top, left, bottom, right]`, or those `auto_pad` implies.
fn pads(
    node: &Node,
    input: [usize; 2],
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
) -> Result<[(usize, usize); 2]> {
    match node.string("auto_pad").unwrap_or("NOTSET") {
        "NOTSET" => match node.ints("pads") {
            None => Ok([(0, 0); 2]),
            Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => Ok([
                (p[0] as usize, p[2] as usize),
                (p[1] as usize, p[3] as usize),
            ]),
            Some(p) => Err(err(node, format!("pads {p:?}"))),
        },
        "VALID" => Ok([(0, 0); 2]),
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let mut out = [(0, 0); 2];
            for i in 0..2 {
                let out_len = input[i].div_ceil(strides[i]);
                let eff = (kernel[i] - 1) * dilations[i] + 1;
                let total = ((out_len - 1) * strides[i] + eff).saturating_sub(input[i]);
                let (small, big) = (total / 2, total - total / 2);
                out[i] = if mode == "SAME_UPPER" {
                    (small, big)
                } else {
                    (big, small)
                };
            }
            Ok(out)
        }
        other => Err(err(node, format!("auto_pad {other}"))),
    }
}
