//! The query-only fallback for graphs the differentiable interpreter does
//! not cover: tract-onnx runs almost any ONNX graph (no gradients), so
//! score- and decision-based attacks still work on it.

use crate::batch::Batch;
use crate::error::{ModelError, Result};
use tract_onnx::prelude::*;

pub struct QueryRunner {
    plan: std::sync::Arc<TypedRunnableModel>,
}

fn fail(e: impl std::fmt::Display) -> ModelError {
    ModelError::unsupported(format!(
        "the ONNX runtime fallback (tract) cannot run this graph: {e}"
    ))
}

/// tract is a large parser of untrusted bytes: a panic in it becomes an
/// error instead of taking the process down.
fn guarded<T>(f: impl FnOnce() -> TractResult<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(fail(format!("{e:#}"))),
        Err(_) => Err(fail("it panicked")),
    }
}

impl QueryRunner {
    pub fn new(bytes: &[u8], output: &str) -> Result<Self> {
        let plan = guarded(|| {
            let mut reader = bytes;
            let mut model = tract_onnx::onnx().model_for_read(&mut reader)?;
            model.select_outputs_by_name([output])?;
            model.into_optimized()?.into_runnable()
        })?;
        Ok(QueryRunner { plan })
    }

    /// The graph's output for `x`, flattened, and its row width.
    pub fn run(&self, x: &Batch) -> Result<(Vec<f32>, usize)> {
        guarded(|| {
            let input = Tensor::from_shape(&x.shape, &x.data)?;
            let out = self.plan.run(tvec!(input.into()))?;
            let view = out[0].to_plain_array_view::<f32>()?;
            let width = view.shape().iter().skip(1).product::<usize>().max(1);
            Ok((view.iter().copied().collect(), width))
        })
    }
}
