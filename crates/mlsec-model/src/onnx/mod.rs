//! Users' models in ONNX. A graph whose ops the interpreter covers
//! ([`mlsec_onnx::DIFFERENTIABLE_OPS`]) loads as a [`Differentiable`] model:
//! it runs on the engine's tensors, so input gradients flow through it.
//! Any other graph loads as a query-only [`Classifier`] run by tract, and
//! [`OnnxModel::unsupported_ops`] says which ops forced that.

pub mod eval;
mod query;

pub use mlsec_onnx::{graph, proto};

use crate::batch::Batch;
use crate::classifier::{Access, Classifier, Differentiable, Gradient, LogitLoss, ModelInfo};
use crate::error::{ModelError, Result};
use crate::native::{
    devices, engine_chunks, read_bounded, to_vec, GradientAccumulator, MAX_WEIGHTS_BYTES,
};
use burn::prelude::*;
use eval::{Interpreter, Value};
use graph::Graph;
use std::collections::HashMap;
use std::path::Path;

/// An imported ONNX classifier.
pub struct OnnxModel {
    graph: Graph,
    info: ModelInfo,
    /// The value used as logits (before a final softmax, when there is one).
    logits: String,
    /// Whether a final Softmax/LogSoftmax was stripped to get logits.
    pub strips_softmax: bool,
    constants: HashMap<String, Value>,
    ad_constants: HashMap<String, Value>,
    device: Device,
    ad_device: Device,
    /// Runs graphs the interpreter cannot (query-only).
    fallback: Option<query::QueryRunner>,
}

impl OnnxModel {
    /// Loads `path`; inputs are expected in `value_range`.
    pub fn load(path: &Path, value_range: (f32, f32)) -> Result<Self> {
        let bytes = read_bounded(path, MAX_WEIGHTS_BYTES)?;
        Self::from_bytes(&bytes, &path.display().to_string(), value_range)
    }

    pub fn from_bytes(bytes: &[u8], name: &str, value_range: (f32, f32)) -> Result<Self> {
        let at = |e: ModelError| ModelError::new(e.kind, format!("{name}: {}", e.message));
        let graph = Graph::decode(bytes).map_err(|e| at(e.into()))?;
        let sample: Vec<usize> = match graph.input_shape.split_first() {
            Some((_, rest)) if !rest.is_empty() && rest.iter().all(Option::is_some) => rest.iter().map(|d| d.unwrap_or(1)).collect(),
            _ => {
                return Err(at(ModelError::unsupported(format!(
                    "the input {:?} must declare fixed sizes for every dimension after the batch (declared: {:?})",
                    graph.input,
                    graph.input_shape
                ))))
            }
        };
        if sample.len() > 3 {
            return Err(at(ModelError::unsupported(format!(
                "input samples of shape {sample:?} (rank ≤ 3 expected)"
            ))));
        }
        let (device, ad_device) = devices();
        let (logits, strips_softmax) = graph.logits_name();
        let differentiable = graph.unsupported.is_empty();
        let (constants, ad_constants, fallback) = if differentiable {
            (
                eval::constants(&graph, &device).map_err(at)?,
                eval::constants(&graph, &ad_device).map_err(at)?,
                None,
            )
        } else {
            (
                HashMap::new(),
                HashMap::new(),
                Some(query::QueryRunner::new(bytes, logits.as_str()).map_err(at)?),
            )
        };
        let mut model = OnnxModel {
            info: ModelInfo {
                name: name.to_string(),
                input_shape: sample,
                classes: 0,
                value_range,
                access: if differentiable {
                    Access::Gradient
                } else {
                    Access::Query
                },
            },
            graph,
            logits,
            strips_softmax,
            constants,
            ad_constants,
            device,
            ad_device,
            fallback,
        };
        // One forward pass on zeros finds the number of classes and checks
        // that the graph runs at all.
        let zeros = Batch::new(
            vec![0.0; model.info.input_shape.iter().product()],
            [vec![1], model.info.input_shape.clone()].concat(),
        )?;
        model.info.classes = match &model.fallback {
            Some(runner) => runner.run(&zeros).map_err(at)?.1,
            None => model
                .forward(&model.graph_tensor(&zeros, false), false)
                .map_err(at)?
                .dims()[1],
        };
        if model.info.classes < 2 {
            return Err(at(ModelError::unsupported(
                "the output has fewer than two classes",
            )));
        }
        Ok(model)
    }

    /// Ops that kept the model from loading as differentiable (empty when
    /// it is).
    pub fn unsupported_ops(&self) -> &[String] {
        &self.graph.unsupported
    }

    pub fn opset(&self) -> i64 {
        self.graph.opset
    }

    fn graph_tensor(&self, x: &Batch, autodiff: bool) -> (Tensor<4>, Vec<usize>) {
        let mut shape = vec![x.len()];
        shape.extend_from_slice(x.sample_shape());
        let mut p = [1usize; 4];
        p[4 - shape.len()..].copy_from_slice(&shape);
        let device = if autodiff {
            &self.ad_device
        } else {
            &self.device
        };
        (
            Tensor::from_data(TensorData::new(x.data.clone(), p), device),
            shape,
        )
    }

    fn forward(&self, (x, shape): &(Tensor<4>, Vec<usize>), autodiff: bool) -> Result<Tensor<2>> {
        let interpreter = Interpreter {
            graph: &self.graph,
            constants: if autodiff {
                &self.ad_constants
            } else {
                &self.constants
            },
            device: if autodiff {
                &self.ad_device
            } else {
                &self.device
            },
        };
        interpreter.run(x.clone(), shape.clone(), &self.logits)
    }

    fn chunks(&self, x: &Batch, f: impl FnMut(&Batch) -> Result<()>) -> Result<()> {
        engine_chunks(self, x, f)
    }
}

impl Classifier for OnnxModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn logits(&self, x: &Batch) -> Result<Batch> {
        let mut out = Vec::with_capacity(x.len() * self.info.classes);
        self.chunks(x, |chunk| {
            match &self.fallback {
                Some(runner) => out.extend(runner.run(chunk)?.0),
                None => out.extend(to_vec(
                    self.forward(&self.graph_tensor(chunk, false), false)?,
                )),
            }
            Ok(())
        })?;
        Batch::new(out, vec![x.len(), self.info.classes])
    }
}

impl Differentiable for OnnxModel {
    fn gradient(&self, x: &Batch, loss: &dyn LogitLoss) -> Result<Gradient> {
        if !self.graph.unsupported.is_empty() {
            return Err(ModelError::unsupported(format!(
                "no gradients: the graph uses ops the differentiable interpreter does not cover ({})",
                self.graph.unsupported.join(", ")
            )));
        }
        let mut acc = GradientAccumulator::new(loss, self.info.classes);
        self.chunks(x, |chunk| {
            let (t, shape) = self.graph_tensor(chunk, true);
            let t = t.require_grad();
            let z = self.forward(&(t.clone(), shape), true)?;
            acc.add(t, z, &self.ad_device)
        })?;
        acc.finish(x.shape.clone())
    }

    fn features(&self, _x: &Batch) -> Result<Batch> {
        Err(ModelError::unsupported(
            "penultimate features of an ONNX graph are not exposed (its layers have no fixed meaning)",
        ))
    }
}
