//! The access an attacker has to a model, as traits (DESIGN.md, "Key
//! interfaces"): [`Classifier`] answers queries; [`Differentiable`] also
//! gives input gradients of a loss on the logits, and penultimate features.
//! Attacks declare which one they need.

use crate::batch::Batch;
use crate::error::{ModelError, Result};
use std::sync::atomic::{AtomicU64, Ordering};

/// How much of the model an attacker sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Scores or labels for chosen inputs only.
    Query,
    /// Weights and gradients (white-box).
    Gradient,
}

/// What a model takes and gives.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    /// Architecture or file name, for reports.
    pub name: String,
    /// Shape of one input sample, e.g. `[1, 28, 28]`.
    pub input_shape: Vec<usize>,
    pub classes: usize,
    /// The valid input range; attacks keep adversarial inputs inside it.
    pub value_range: (f32, f32),
    pub access: Access,
}

/// Query access: a batch in, one row of class scores (logits) per sample out.
pub trait Classifier: Send + Sync {
    fn info(&self) -> &ModelInfo;

    /// Class scores, `[n, classes]`. Softmax of these gives probabilities.
    fn logits(&self, x: &Batch) -> Result<Batch>;

    fn probabilities(&self, x: &Batch) -> Result<Batch> {
        let mut z = self.logits(x)?;
        let c = z.sample_len();
        for row in z.data.chunks_mut(c) {
            softmax_in_place(row);
        }
        Ok(z)
    }

    fn predict(&self, x: &Batch) -> Result<Vec<usize>> {
        Ok(argmax_rows(&self.logits(x)?))
    }

    /// Checks that `x` fits the model before a long job starts.
    fn check_input(&self, x: &Batch) -> Result<()> {
        let info = self.info();
        if x.sample_shape() != info.input_shape.as_slice() {
            return Err(ModelError::mismatch(format!(
                "the model {} takes inputs of shape {:?}, the data has {:?}",
                info.name,
                info.input_shape,
                x.sample_shape()
            )));
        }
        Ok(())
    }
}

/// White-box access: input gradients of any loss on the logits.
pub trait Differentiable: Classifier {
    /// One forward and one backward pass: the logits, the per-sample losses
    /// and d(sum of losses)/d(input).
    fn gradient(&self, x: &Batch, loss: &dyn LogitLoss) -> Result<Gradient>;

    /// Penultimate-layer activations, `[n, features]`.
    fn features(&self, x: &Batch) -> Result<Batch>;
}

/// The output of [`Differentiable::gradient`].
#[derive(Debug, Clone)]
pub struct Gradient {
    pub logits: Batch,
    pub losses: Vec<f32>,
    pub input: Batch,
}

/// A per-sample loss on the logits with its gradient, evaluated on the host.
/// Keeping losses out of the engine lets every model kind (native, ONNX)
/// share them, at the cost of one small device-to-host copy of the logits.
pub trait LogitLoss: Sync {
    /// The loss of sample `i` given its logits; writes d loss / d logits.
    fn eval(&self, i: usize, logits: &[f32], grad: &mut [f32]) -> f32;
}

/// Cross-entropy against `labels` (the attacker ascends it).
pub struct CrossEntropy<'a> {
    pub labels: &'a [usize],
}

impl LogitLoss for CrossEntropy<'_> {
    fn eval(&self, i: usize, z: &[f32], g: &mut [f32]) -> f32 {
        g.copy_from_slice(z);
        let lse = softmax_in_place(g);
        let y = self.labels[i];
        g[y] -= 1.0;
        lse - z[y]
    }
}

/// Croce & Hein's difference-of-logits ratio (AutoAttack, ICML 2020):
/// `-(z_y - max_{i≠y} z_i) / (z_π1 - z_π3)`, invariant to shifting and
/// scaling the logits, so a model cannot hide behind saturated softmax.
/// Needs at least three classes.
pub struct Dlr<'a> {
    pub labels: &'a [usize],
}

impl LogitLoss for Dlr<'_> {
    fn eval(&self, i: usize, z: &[f32], g: &mut [f32]) -> f32 {
        g.fill(0.0);
        let y = self.labels[i];
        let m = argmax_except(z, y);
        let (p1, p3) = first_and_third(z);
        let a = z[y] - z[m];
        let d = z[p1] - z[p3] + 1e-12;
        g[y] -= 1.0 / d;
        g[m] += 1.0 / d;
        g[p1] += a / (d * d);
        g[p3] -= a / (d * d);
        -a / d
    }
}

/// The margin `z_y - max_{i≠y} z_i` (negative once misclassified); with
/// `target`, `max_{i≠t} z_i - z_t`. Carlini & Wagner's f6 before clipping.
pub struct Margin<'a> {
    pub labels: &'a [usize],
    pub targeted: bool,
}

impl LogitLoss for Margin<'_> {
    fn eval(&self, i: usize, z: &[f32], g: &mut [f32]) -> f32 {
        g.fill(0.0);
        let t = self.labels[i];
        let m = argmax_except(z, t);
        if self.targeted {
            g[m] += 1.0;
            g[t] -= 1.0;
            z[m] - z[t]
        } else {
            g[t] += 1.0;
            g[m] -= 1.0;
            z[t] - z[m]
        }
    }
}

/// `sum_k w[i][k] z_k`: a vector-Jacobian product with chosen weights
/// (DeepFool's gradient of one logit difference).
pub struct LogitWeights<'a> {
    pub weights: &'a [f32],
}

impl LogitLoss for LogitWeights<'_> {
    fn eval(&self, i: usize, z: &[f32], g: &mut [f32]) -> f32 {
        let c = z.len();
        g.copy_from_slice(&self.weights[i * c..(i + 1) * c]);
        z.iter().zip(g.iter()).map(|(a, b)| a * b).sum()
    }
}

/// Softmax in place; returns log-sum-exp of the input.
pub fn softmax_in_place(row: &mut [f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
    max + sum.ln()
}

/// Index of the largest value of each row (first on ties).
pub fn argmax_rows(scores: &Batch) -> Vec<usize> {
    let c = scores.sample_len();
    scores.data.chunks(c).map(argmax).collect()
}

pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (k, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = k;
        }
    }
    best
}

/// Index of the largest value other than `skip`.
pub fn argmax_except(row: &[f32], skip: usize) -> usize {
    let mut best = usize::MAX;
    for (k, &v) in row.iter().enumerate() {
        if k != skip && (best == usize::MAX || v > row[best]) {
            best = k;
        }
    }
    best
}

/// Indices of the largest and the third-largest values.
fn first_and_third(row: &[f32]) -> (usize, usize) {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    (order[0], order[2.min(order.len() - 1)])
}

/// Counts the samples sent to a model: the cost of a query-based attack.
pub struct QueryCounter<'a> {
    inner: &'a dyn Classifier,
    queries: AtomicU64,
}

impl<'a> QueryCounter<'a> {
    pub fn new(inner: &'a dyn Classifier) -> Self {
        QueryCounter {
            inner,
            queries: AtomicU64::new(0),
        }
    }
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Classifier for QueryCounter<'_> {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    fn logits(&self, x: &Batch) -> Result<Batch> {
        self.queries.fetch_add(x.len() as u64, Ordering::Relaxed);
        self.inner.logits(x)
    }
}

/// Accuracy of `predictions` against `labels`.
pub fn accuracy(predictions: &[usize], labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let right = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    right as f64 / labels.len() as f64
}
