//! mlsec-onnx: decodes ONNX models into a checked graph (nodes in
//! topological order, constants on the host, the ops a differentiable
//! interpreter can run). A crate of its own so that the decoder of these
//! untrusted bytes is fuzzed without compiling a tensor engine.

pub mod graph;
pub mod proto;

pub use graph::{Attr, Graph, HostData, HostTensor, Node, DIFFERENTIABLE_OPS};

/// A one-line decoding error; `unsupported` marks valid models that ask
/// for something mlsec does not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxError {
    pub unsupported: bool,
    pub message: String,
}

impl OnnxError {
    pub fn malformed(message: impl Into<String>) -> Self {
        OnnxError {
            unsupported: false,
            message: message.into(),
        }
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        OnnxError {
            unsupported: true,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for OnnxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OnnxError {}

pub type Result<T> = std::result::Result<T, OnnxError>;
