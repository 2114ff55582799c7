//! The samples an attack is still working on. Once a sample is fooled, a
//! bounded attack may stop spending gradients on it (`early_stop`); the
//! arrays are compacted together so that the next batch is smaller.

use super::Params;
use mlsec_model::classifier::argmax;
use mlsec_model::{Batch, Classifier, Result};
use rand_chacha::ChaCha8Rng;

pub struct Active {
    /// Index of each active sample in the attacked batch.
    pub index: Vec<usize>,
    pub origin: Batch,
    pub current: Batch,
    pub labels: Vec<usize>,
}

impl Active {
    pub fn new(x: &Batch, labels: &[usize], which: Vec<usize>) -> Self {
        let origin = x.select(&which);
        Active {
            labels: which.iter().map(|&i| labels[i]).collect(),
            current: origin.clone(),
            origin,
            index: which,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Moves every sample to a uniformly random point of its ε-ball.
    pub fn random_start(&mut self, p: &Params, (lo, hi): (f32, f32), rng: &mut ChaCha8Rng) {
        for j in 0..self.len() {
            let origin = self.origin.sample(j);
            p.norm
                .random_start(self.current.sample_mut(j), origin, p.eps, lo, hi, rng);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Keeps the samples where `keep[j]` holds; returns the kept positions
    /// so that callers can compact their own per-sample state.
    pub fn retain(&mut self, keep: &[bool]) -> Vec<usize> {
        let kept: Vec<usize> = (0..self.len()).filter(|&j| keep[j]).collect();
        if kept.len() == self.len() {
            return kept;
        }
        self.index = kept.iter().map(|&j| self.index[j]).collect();
        self.labels = kept.iter().map(|&j| self.labels[j]).collect();
        self.origin = self.origin.select(&kept);
        self.current = self.current.select(&kept);
        kept
    }
}

/// Keeps the entries of `v` at `kept` positions.
pub fn compact<T: Clone>(v: &mut Vec<T>, kept: &[usize]) {
    if kept.len() != v.len() {
        *v = kept.iter().map(|&j| v[j].clone()).collect();
    }
}

/// The best adversarial found so far for every attacked sample, and
/// whether it fools the model.
pub struct Best {
    pub points: Batch,
    pub fooled: Vec<bool>,
}

impl Best {
    pub fn new(x: &Batch) -> Self {
        Best {
            points: x.clone(),
            fooled: vec![false; x.len()],
        }
    }

    /// Samples not fooled yet.
    pub fn todo(&self) -> Vec<usize> {
        (0..self.fooled.len())
            .filter(|&i| !self.fooled[i])
            .collect()
    }

    /// Records the active samples that `logits` (of `a.current`) show to be
    /// misclassified; returns which samples to keep attacking.
    pub fn record(&mut self, a: &Active, logits: &Batch, early_stop: bool) -> Vec<bool> {
        let c = logits.sample_len();
        a.labels
            .iter()
            .enumerate()
            .map(|(j, &label)| {
                if argmax(&logits.data[j * c..(j + 1) * c]) == label {
                    return true;
                }
                let i = a.index[j];
                self.fooled[i] = true;
                self.points
                    .sample_mut(i)
                    .copy_from_slice(a.current.sample(j));
                !early_stop
            })
            .collect()
    }

    /// After the last step: checks the final iterates and keeps, for samples
    /// still not fooled, `fallback(j)` (the last or the highest-loss point).
    pub fn finish<'p>(
        &mut self,
        model: &dyn Classifier,
        a: &'p Active,
        fallback: impl Fn(usize) -> &'p [f32],
    ) -> Result<()> {
        if a.is_empty() {
            return Ok(());
        }
        let pred = model.predict(&a.current)?;
        for (j, (&p, &label)) in pred.iter().zip(&a.labels).enumerate() {
            let i = a.index[j];
            if self.fooled[i] {
                continue;
            }
            let point = if p != label {
                a.current.sample(j)
            } else {
                fallback(j)
            };
            self.points.sample_mut(i).copy_from_slice(point);
            self.fooled[i] = p != label;
        }
        Ok(())
    }
}
