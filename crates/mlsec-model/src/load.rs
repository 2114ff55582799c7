//! Opening a model file, whatever it is: recognised by content, not by
//! extension.

use crate::classifier::{Classifier, Differentiable};
use crate::error::{ModelError, Result};
use crate::native::NativeModel;
use crate::onnx::OnnxModel;
use std::io::Read;
use std::path::Path;

pub enum LoadedModel {
    Native(Box<NativeModel>),
    Onnx(Box<OnnxModel>),
}

impl LoadedModel {
    pub fn classifier(&self) -> &dyn Classifier {
        match self {
            LoadedModel::Native(m) => m.as_ref(),
            LoadedModel::Onnx(m) => m.as_ref(),
        }
    }
    pub fn differentiable(&self) -> &dyn Differentiable {
        match self {
            LoadedModel::Native(m) => m.as_ref(),
            LoadedModel::Onnx(m) => m.as_ref(),
        }
    }
}

/// Loads an mlsec model (safetensors with its JSON config beside it) or an
/// ONNX graph. `value_range` applies to ONNX graphs, whose files do not say
/// what inputs they expect.
pub fn load(path: &Path, value_range: (f32, f32)) -> Result<LoadedModel> {
    let mut head = [0u8; 9];
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, &e))?;
    let n = f.read(&mut head).map_err(|e| ModelError::io(path, &e))?;
    // safetensors: an 8-byte little-endian header length, then '{'.
    if n == 9 && head[8] == b'{' {
        return Ok(LoadedModel::Native(Box::new(NativeModel::load(path)?)));
    }
    // ONNX ModelProto starts with field 1 (ir_version, varint): byte 0x08.
    if n >= 1 && head[0] == 0x08 {
        return Ok(LoadedModel::Onnx(Box::new(OnnxModel::load(
            path,
            value_range,
        )?)));
    }
    Err(ModelError::unsupported(format!(
        "{}: neither an mlsec model (safetensors + JSON config) nor an ONNX graph",
        path.display()
    )))
}
