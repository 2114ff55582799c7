//! mlsec-model: the model engine. The [`Classifier`] and [`Differentiable`]
//! traits that attacks are written against, a model zoo (MLP, LeNet, a small
//! ResNet) on burn's pure-Rust `flex` CPU backend, training loops, the
//! two-file model format (safetensors + JSON) and dataset loading.
//!
//! burn is the measured choice (`../shared/reference/rust-ml-stack.md`,
//! `docs/architecture.md`): 2.4–3.4× faster than candle on these networks,
//! with correct max-pool gradients.

pub mod batch;
pub mod classifier;
pub mod data;
mod error;
pub mod native;
pub mod onnx;
pub mod ops;
pub mod optim;
pub mod train;
pub mod zoo;

pub use batch::{Batch, Dataset};
pub use classifier::{Access, Classifier, Differentiable, Gradient, LogitLoss, ModelInfo};
pub use error::{ErrorKind, ModelError, Result};
pub use native::{ModelConfig, NativeModel};
pub use onnx::OnnxModel;

mod load;
pub use load::{load, LoadedModel};

/// Re-exported so that crates building objectives (mlsec-defend) use the
/// same engine version.
pub use burn;
