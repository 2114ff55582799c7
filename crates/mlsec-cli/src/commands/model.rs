//! `mlsec model inspect|predict`.

use crate::cli::{GlobalArgs, ModelInspectArgs, ModelPredictArgs};
use crate::output::{self, exit};
use anyhow::{bail, Context, Result};
use mlsec_core::{Report, Style, TextBody};
use mlsec_data::{DType, NdArray};
use mlsec_model::classifier::CrossEntropy;
use mlsec_model::{data, Access, LoadedModel, ModelInfo};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

pub(crate) fn input_range(v: &[f32]) -> Result<(f32, f32)> {
    match v {
        [lo, hi] if lo.is_finite() && hi.is_finite() && lo < hi => Ok((*lo, *hi)),
        _ => bail!("--input-range must be two finite numbers LO,HI with LO < HI"),
    }
}

/// Loads any model mlsec reads, with a useful error; says on standard
/// error when an ONNX graph loads as query-only, and why.
pub(crate) fn open(global: &GlobalArgs, path: &Path, range: (f32, f32)) -> Result<LoadedModel> {
    let model = mlsec_model::load(path, range)
        .with_context(|| format!("loading the model {}", path.display()))?;
    if let LoadedModel::Onnx(m) = &model {
        if !m.unsupported_ops().is_empty() && !global.quiet {
            eprintln!(
                "note: {} loads as query-only (no gradients): ops outside the differentiable interpreter: {}",
                path.display(),
                m.unsupported_ops().join(", ")
            );
        }
    }
    Ok(model)
}

#[derive(Serialize)]
struct InspectView {
    path: String,
    format: &'static str,
    #[serde(flatten)]
    info: ModelInfo,
    /// mlsec models: the architecture and training record.
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<mlsec_model::ModelConfig>,
    /// ONNX: the opset and whether a final softmax is stripped for logits.
    #[serde(skip_serializing_if = "Option::is_none")]
    opset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strips_softmax: Option<bool>,
    /// ONNX ops outside the differentiable interpreter (why a graph is query-only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    query_only_because: Vec<String>,
}

impl TextBody for InspectView {
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        writeln!(out, "model     {} ({})", self.path, self.format)?;
        writeln!(
            out,
            "input     {:?} in [{}, {}]",
            self.info.input_shape, self.info.value_range.0, self.info.value_range.1
        )?;
        writeln!(out, "classes   {}", self.info.classes)?;
        let access = match self.info.access {
            Access::Gradient => "gradients (white-box attacks run)",
            Access::Query => "queries only (square and hsj run)",
        };
        writeln!(out, "access    {access}")?;
        if let Some(c) = &self.config {
            writeln!(
                out,
                "arch      {}",
                serde_json::to_string(&c.architecture).unwrap_or_default()
            )?;
            if let Some(t) = &c.training {
                writeln!(out, "training  {t}")?;
            }
            writeln!(out, "sha256    {}", c.weights_sha256)?;
        }
        if let Some(o) = self.opset {
            writeln!(out, "opset     {o}")?;
        }
        if !self.query_only_because.is_empty() {
            writeln!(
                out,
                "because   ops outside the differentiable interpreter: {}",
                self.query_only_because.join(", ")
            )?;
        }
        if self.strips_softmax == Some(true) {
            writeln!(out, "logits    the input of the final softmax")?;
        }
        Ok(())
    }
}

pub fn inspect(global: &GlobalArgs, args: &ModelInspectArgs) -> Result<u8> {
    let model = open(global, &args.model, input_range(&args.input_range)?)?;
    let view = match &model {
        LoadedModel::Native(m) => InspectView {
            path: args.model.display().to_string(),
            format: "mlsec-model",
            info: model.classifier().info().clone(),
            config: Some(m.config().clone()),
            opset: None,
            strips_softmax: None,
            query_only_because: vec![],
        },
        LoadedModel::Onnx(m) => InspectView {
            path: args.model.display().to_string(),
            format: "onnx",
            info: model.classifier().info().clone(),
            config: None,
            opset: Some(m.opset()),
            strips_softmax: Some(m.strips_softmax),
            query_only_because: m.unsupported_ops().to_vec(),
        },
    };
    output::emit(global, &Report::new(output::tool(), "model inspect", view))?;
    Ok(exit::OK)
}

fn write_f32(path: &Path, shape: Vec<usize>, data: &[f32]) -> Result<()> {
    let array = NdArray::new(
        DType::F32,
        shape,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(path, mlsec_data::npy::write(&array))
        .with_context(|| format!("{}: cannot write", path.display()))
}

#[derive(Serialize)]
struct PredictView {
    samples: usize,
    classes: usize,
    logits: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gradient: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
}

impl TextBody for PredictView {
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        writeln!(out, "samples   {} ({} classes)", self.samples, self.classes)?;
        if let Some(a) = self.accuracy {
            writeln!(out, "accuracy  {:.2}%", 100.0 * a)?;
        }
        writeln!(out, "logits    {}", self.logits)?;
        if let Some(g) = &self.gradient {
            writeln!(out, "gradient  {g}")?;
        }
        Ok(())
    }
}

pub fn predict(global: &GlobalArgs, args: &ModelPredictArgs) -> Result<u8> {
    let model = open(global, &args.model, input_range(&args.input_range)?)?;
    let classifier = model.classifier();
    let labelled = args.labels.is_some() || args.data == mlsec_data::mnist::NAME;
    let (inputs, labels) = if labelled {
        let d = data::load(&args.data, args.labels.as_deref(), data::Part::Test)?;
        (d.inputs, Some(d.labels))
    } else {
        (data::load_inputs(&args.data)?, None)
    };
    let logits = classifier.logits(&inputs)?;
    write_f32(&args.out, logits.shape.clone(), &logits.data)?;
    let accuracy = labels.as_ref().map(|l| {
        mlsec_model::classifier::accuracy(&mlsec_model::classifier::argmax_rows(&logits), l)
    });
    if let Some(path) = &args.gradient {
        let Some(labels) = &labels else {
            bail!("--gradient needs labels (--labels LABELS.npy)");
        };
        if classifier.info().access != Access::Gradient {
            bail!("this model answers queries only; it has no input gradients");
        }
        let g = model
            .differentiable()
            .gradient(&inputs, &CrossEntropy { labels })?;
        write_f32(path, g.input.shape.clone(), &g.input.data)?;
    }
    let view = PredictView {
        samples: inputs.len(),
        classes: classifier.info().classes,
        logits: args.out.display().to_string(),
        gradient: args.gradient.as_ref().map(|p| p.display().to_string()),
        accuracy,
    };
    output::emit(global, &Report::new(output::tool(), "model predict", view))?;
    Ok(exit::OK)
}
