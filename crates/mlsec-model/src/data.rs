//! Labelled image datasets for training and attacks: the bundled MNIST
//! split, or NumPy files (`.npy` inputs with a `.npy` of labels, or an
//! `.npz` holding both).

use crate::batch::{Batch, Dataset};
use crate::error::{ModelError, Result};
use crate::native::read_bounded;
use mlsec_data::{mnist, NdArray};
use std::path::Path;

/// Largest dataset file read into memory.
pub const MAX_DATA_BYTES: u64 = 4 << 30;

/// Which part of a dataset with a fixed split to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

/// `mnist` (the bundled sample, split 8,000 / 2,000) or a NumPy file.
/// `labels` is required with a `.npy` of inputs; an `.npz` carries its
/// labels as `y` / `labels` beside `x` / `images`.
pub fn load(spec: &str, labels: Option<&Path>, part: Part) -> Result<Dataset> {
    if spec == mnist::NAME && !Path::new(spec).exists() {
        let (train, test) = bundled_mnist()?;
        return Ok(match part {
            Part::Train => train,
            Part::Test => test,
        });
    }
    let bytes = read_bounded(Path::new(spec), MAX_DATA_BYTES)?;
    from_bytes(&bytes, labels, spec)
}

/// A labelled dataset from the bytes of a `.npz` (inputs and labels) or a
/// `.npy` of inputs with `labels` beside it; `name` is used in errors.
pub fn from_bytes(bytes: &[u8], labels: Option<&Path>, name: &str) -> Result<Dataset> {
    let spec = name;
    let (inputs, label_array) = if bytes.starts_with(b"PK") {
        let members = mlsec_data::npy::parse_npz(bytes, MAX_DATA_BYTES)
            .map_err(|e| ModelError::from(e.at(spec)))?;
        let find = |names: &[&str]| {
            members
                .iter()
                .find(|m| names.contains(&m.name.as_str()))
                .map(|m| m.file.array.clone())
        };
        let x = find(&INPUT_NAMES).ok_or_else(|| {
            ModelError::malformed(format!(
                "{spec}: no inputs array (named x, images or inputs) among {:?}",
                members.iter().map(|m| &m.name).collect::<Vec<_>>()
            ))
        })?;
        let y = match labels {
            Some(p) => read_npy(p)?,
            None => {
                find(&["y", "Y", "labels", "targets", "y_test", "y_train"]).ok_or_else(|| {
                    ModelError::malformed(format!("{spec}: no labels array (named y or labels)"))
                })?
            }
        };
        (x, y)
    } else {
        let x = mlsec_data::npy::parse(bytes)
            .map_err(|e| ModelError::from(e.at(spec)))?
            .array;
        let labels = labels.ok_or_else(|| {
            ModelError::mismatch(format!(
                "{spec}: a .npy of inputs needs --labels LABELS.npy"
            ))
        })?;
        (x, read_npy(labels)?)
    };
    let inputs = images_to_batch(&inputs)
        .map_err(|e| ModelError::new(e.kind, format!("{spec}: {}", e.message)))?;
    let labels = labels_to_vec(&label_array)?;
    Dataset::new(inputs, labels, spec)
}

/// The bundled MNIST sample as (train, test), pixels scaled to [0, 1].
pub fn bundled_mnist() -> Result<(Dataset, Dataset)> {
    let m = mnist::load()?;
    let split = m.split();
    let part = |idx: &[usize], name: &str| -> Result<Dataset> {
        let mut data = Vec::with_capacity(idx.len() * 784);
        for &i in idx {
            data.extend(
                m.images
                    .sample_bytes(i)
                    .iter()
                    .map(|&b| f32::from(b) / 255.0),
            );
        }
        let labels = idx.iter().map(|&i| usize::from(m.labels[i])).collect();
        Dataset::new(Batch::new(data, vec![idx.len(), 1, 28, 28])?, labels, name)
    };
    Ok((
        part(&split.train, "mnist:train")?,
        part(&split.test, "mnist:test")?,
    ))
}

fn read_npy(path: &Path) -> Result<NdArray> {
    let bytes = read_bounded(path, MAX_DATA_BYTES)?;
    Ok(mlsec_data::npy::parse(&bytes)
        .map_err(|e| ModelError::from(e.at(&path.display().to_string())))?
        .array)
}

/// `[n, h, w]` (one channel added), `[n, c, h, w]` or `[n, features]`;
/// uint8 pixels are scaled by 1/255, floats are taken as they are (the
/// model's input range is checked by whoever uses them).
pub fn images_to_batch(a: &NdArray) -> Result<Batch> {
    let shape = match a.shape.as_slice() {
        [n, h, w] => vec![*n, 1, *h, *w],
        [n, c, h, w] => vec![*n, *c, *h, *w],
        [n, f] => vec![*n, *f],
        s => {
            return Err(ModelError::mismatch(format!(
                "inputs must be [n, features], [n, height, width] or [n, channels, height, width], not {s:?}"
            )))
        }
    };
    let scale = if a.dtype == mlsec_data::DType::U8 {
        1.0 / 255.0
    } else {
        1.0
    };
    if !(a.dtype.is_float() || a.dtype == mlsec_data::DType::U8) {
        return Err(ModelError::unsupported(format!(
            "inputs of dtype {} (use uint8 pixels or floats)",
            a.dtype.name()
        )));
    }
    let data: Vec<f32> = (0..a.len())
        .map(|i| (a.get_f64(i) * scale) as f32)
        .collect();
    if let Some(bad) = data.iter().find(|v| !v.is_finite()) {
        return Err(ModelError::mismatch(format!(
            "input value {bad} is not finite"
        )));
    }
    Batch::new(data, shape)
}

/// Inputs without labels: `mnist` (the test digits), a `.npy`, or the
/// inputs array of an `.npz`.
pub fn load_inputs(spec: &str) -> Result<Batch> {
    if spec == mnist::NAME && !Path::new(spec).exists() {
        return Ok(bundled_mnist()?.1.inputs);
    }
    let path = Path::new(spec);
    let bytes = read_bounded(path, MAX_DATA_BYTES)?;
    let array = if bytes.starts_with(b"PK") {
        let members = mlsec_data::npy::parse_npz(&bytes, MAX_DATA_BYTES)
            .map_err(|e| ModelError::from(e.at(spec)))?;
        members
            .into_iter()
            .find(|m| INPUT_NAMES.contains(&m.name.as_str()))
            .map(|m| m.file.array)
            .ok_or_else(|| {
                ModelError::malformed(format!(
                    "{spec}: no inputs array (named x, images or inputs)"
                ))
            })?
    } else {
        mlsec_data::npy::parse(&bytes)
            .map_err(|e| ModelError::from(e.at(spec)))?
            .array
    };
    images_to_batch(&array).map_err(|e| ModelError::new(e.kind, format!("{spec}: {}", e.message)))
}

const INPUT_NAMES: [&str; 6] = ["x", "X", "images", "inputs", "x_test", "x_train"];

fn labels_to_vec(a: &NdArray) -> Result<Vec<usize>> {
    if a.shape.len() != 1 || !a.dtype.is_integer() {
        return Err(ModelError::mismatch(format!(
            "labels must be a 1-D integer array, not {} {:?}",
            a.dtype.name(),
            a.shape
        )));
    }
    (0..a.len())
        .map(|i| match a.get_i128(i) {
            Some(v) if (0..=100_000).contains(&v) => Ok(v as usize),
            other => Err(ModelError::mismatch(format!(
                "label {other:?} is not a class index"
            ))),
        })
        .collect()
}
