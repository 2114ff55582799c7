//! Host-side batches: the currency between datasets, models and attacks.
//! Attacks work on plain `f32` buffers so that one implementation serves
//! native models, ONNX graphs and remote endpoints alike.

use crate::error::{ModelError, Result};

/// `shape[0]` samples of `shape[1..]` each, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

impl Batch {
    pub fn new(data: Vec<f32>, shape: Vec<usize>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if shape.is_empty() || n != data.len() {
            return Err(ModelError::mismatch(format!(
                "batch of {} values does not have shape {shape:?}",
                data.len()
            )));
        }
        Ok(Batch { data, shape })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.shape[0]
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.shape[1..].iter().product()
    }
    pub fn sample_shape(&self) -> &[usize] {
        &self.shape[1..]
    }
    pub fn sample(&self, i: usize) -> &[f32] {
        let d = self.sample_len();
        &self.data[i * d..(i + 1) * d]
    }
    pub fn sample_mut(&mut self, i: usize) -> &mut [f32] {
        let d = self.sample_len();
        &mut self.data[i * d..(i + 1) * d]
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Batch {
        let d = self.sample_len();
        let mut data = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            data.extend_from_slice(self.sample(i));
        }
        let mut shape = self.shape.clone();
        shape[0] = indices.len();
        Batch { data, shape }
    }

    /// Samples `start..end`.
    pub fn range(&self, start: usize, end: usize) -> Batch {
        let d = self.sample_len();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Batch {
            data: self.data[start * d..end * d].to_vec(),
            shape,
        }
    }

    /// Concatenates batches with the same sample shape.
    pub fn concat(parts: &[Batch]) -> Result<Batch> {
        let first = parts
            .first()
            .ok_or_else(|| ModelError::mismatch("nothing to concatenate"))?;
        let mut shape = first.shape.clone();
        shape[0] = 0;
        let mut data = Vec::new();
        for p in parts {
            if p.sample_shape() != first.sample_shape() {
                return Err(ModelError::mismatch("batches differ in sample shape"));
            }
            shape[0] += p.len();
            data.extend_from_slice(&p.data);
        }
        Ok(Batch { data, shape })
    }

    /// Clamps every value into `[lo, hi]`.
    pub fn clamp(&mut self, lo: f32, hi: f32) {
        for v in &mut self.data {
            *v = v.clamp(lo, hi);
        }
    }
}

/// A labelled dataset of inputs in the model's value range.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub inputs: Batch,
    pub labels: Vec<usize>,
    pub classes: usize,
    /// Where it came from, for reports (`mnist:test`, a path…).
    pub name: String,
}

impl Dataset {
    pub fn new(inputs: Batch, labels: Vec<usize>, name: impl Into<String>) -> Result<Self> {
        if labels.len() != inputs.len() {
            return Err(ModelError::mismatch(format!(
                "{} inputs but {} labels",
                inputs.len(),
                labels.len()
            )));
        }
        let classes = labels.iter().max().map_or(0, |m| m + 1);
        Ok(Dataset {
            inputs,
            labels,
            classes,
            name: name.into(),
        })
    }
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The first `n` samples (or all when fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            inputs: self.inputs.range(0, n),
            labels: self.labels[..n].to_vec(),
            classes: self.classes,
            name: self.name.clone(),
        }
    }
}
