//! Minimal-perturbation white-box attacks: they look for the smallest
//! change that flips the label, rather than the worst case in a fixed ball.
//! Carlini & Wagner's L2 attack (IEEE S&P 2017) and DeepFool
//! (Moosavi-Dezfooli et al., CVPR 2016).

use super::geometry::{sign, Norm};
use super::{Params, Tick};
use mlsec_model::classifier::{argmax, argmax_except, LogitWeights};
use mlsec_model::{Batch, Differentiable, LogitLoss, ModelError, Result};

/// `c_i · max(z_y − max_{k≠y} z_k, −κ)`: the C&W objective's classification
/// term, zero gradient once the margin passes −κ.
struct CwTerm<'a> {
    labels: &'a [usize],
    c: &'a [f32],
    kappa: f32,
}

impl LogitLoss for CwTerm<'_> {
    fn eval(&self, i: usize, z: &[f32], g: &mut [f32]) -> f32 {
        g.fill(0.0);
        let y = self.labels[i];
        let m = argmax_except(z, y);
        let margin = z[y] - z[m];
        if margin <= -self.kappa {
            return -self.kappa * self.c[i];
        }
        g[y] = self.c[i];
        g[m] = -self.c[i];
        self.c[i] * margin
    }
}

/// C&W L2: Adam on w with x' = lo + (tanh w + 1)/2 · (hi − lo), minimising
/// ‖x' − x‖² + c·f(x'), with a binary search on c per sample. Returns the
/// smallest adversarial found per sample (or the clean input when none).
pub fn carlini_wagner(
    model: &dyn Differentiable,
    x: &Batch,
    y: &[usize],
    p: &Params,
    steps: usize,
    learning_rate: f32,
    tick: &Tick,
) -> Result<Batch> {
    let (lo, hi) = model.info().value_range;
    let span = hi - lo;
    let n = x.len();
    let d = x.sample_len();
    let mut best = x.clone();
    let mut best_l2 = vec![f32::INFINITY; n];
    let mut c = vec![p.initial_const; n];
    let mut lower = vec![0.0f32; n];
    let mut upper = vec![f32::INFINITY; n];
    let to_w = |v: f32| {
        let t = ((v - lo) / span * 2.0 - 1.0).clamp(-0.999_999, 0.999_999);
        t.atanh()
    };
    for _search in 0..p.binary_search_steps.max(1) {
        let mut w: Vec<f32> = x.data.iter().map(|&v| to_w(v)).collect();
        let (mut m1, mut m2) = (vec![0.0f32; w.len()], vec![0.0f32; w.len()]);
        let mut succeeded = vec![false; n];
        let mut adv = x.clone();
        for t in 1..=steps {
            for (a, &wi) in adv.data.iter_mut().zip(&w) {
                *a = lo + (wi.tanh() + 1.0) / 2.0 * span;
            }
            let term = CwTerm {
                labels: y,
                c: &c,
                kappa: p.confidence,
            };
            let g = model.gradient(&adv, &term)?;
            tick(n as u64);
            let classes = g.logits.sample_len();
            for i in 0..n {
                let z = &g.logits.data[i * classes..(i + 1) * classes];
                let m = argmax_except(z, y[i]);
                let l2 = Norm::L2.distance(adv.sample(i), x.sample(i));
                if z[y[i]] - z[m] <= -p.confidence && argmax(z) != y[i] {
                    succeeded[i] = true;
                    if l2 < best_l2[i] {
                        best_l2[i] = l2;
                        best.sample_mut(i).copy_from_slice(adv.sample(i));
                    }
                }
            }
            // Adam on w; the gradient of ‖x' − x‖² is 2(x' − x).
            let (b1, b2) = (0.9f32, 0.999f32);
            let (bc1, bc2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
            for k in 0..w.len() {
                let th = w[k].tanh();
                let dx = 2.0 * (adv.data[k] - x.data[k]) + g.input.data[k];
                let dw = dx * (1.0 - th * th) / 2.0 * span;
                m1[k] = b1 * m1[k] + (1.0 - b1) * dw;
                m2[k] = b2 * m2[k] + (1.0 - b2) * dw * dw;
                w[k] -= learning_rate * (m1[k] / bc1) / ((m2[k] / bc2).sqrt() + 1e-8);
            }
        }
        for i in 0..n {
            if succeeded[i] {
                upper[i] = upper[i].min(c[i]);
                c[i] = (lower[i] + upper[i]) / 2.0;
            } else {
                lower[i] = lower[i].max(c[i]);
                c[i] = if upper[i].is_finite() {
                    (lower[i] + upper[i]) / 2.0
                } else {
                    c[i] * 10.0
                };
            }
        }
        let _ = d;
    }
    Ok(best)
}

/// DeepFool: repeatedly steps to the nearest linearised decision boundary
/// (L2, or L∞ with the dual ℓ1 norm), then overshoots by `overshoot`.
pub fn deepfool(
    model: &dyn Differentiable,
    x: &Batch,
    y: &[usize],
    p: &Params,
    steps: usize,
    tick: &Tick,
) -> Result<Batch> {
    let (lo, hi) = model.info().value_range;
    let classes = model.info().classes;
    let n = x.len();
    let d = x.sample_len();
    let mut adv = x.clone();
    let mut total = vec![0.0f32; n * d];
    let mut active: Vec<usize> = (0..n).collect();
    for _ in 0..steps {
        if active.is_empty() {
            break;
        }
        let cur = adv.select(&active);
        // One backward pass per class: ∇z_k for every active sample.
        let mut grads = Vec::with_capacity(classes);
        let mut logits = None;
        for k in 0..classes {
            let mut weights = vec![0.0f32; active.len() * classes];
            for j in 0..active.len() {
                weights[j * classes + k] = 1.0;
            }
            let g = model.gradient(&cur, &LogitWeights { weights: &weights })?;
            logits.get_or_insert(g.logits);
            grads.push(g.input);
        }
        tick(active.len() as u64);
        let logits = logits.ok_or_else(|| ModelError::mismatch("a model with no classes"))?;
        let mut still = Vec::with_capacity(active.len());
        for (j, &i) in active.iter().enumerate() {
            let z = logits.sample(j);
            if argmax(z) != y[i] {
                continue;
            }
            let gy = grads[y[i]].sample(j);
            let mut best: Option<(f32, usize)> = None;
            for (k, gk) in grads.iter().enumerate() {
                if k == y[i] {
                    continue;
                }
                let fk = z[k] - z[y[i]];
                let wn = match p.norm {
                    Norm::L2 => gk
                        .sample(j)
                        .iter()
                        .zip(gy)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>()
                        .sqrt(),
                    Norm::Linf => gk
                        .sample(j)
                        .iter()
                        .zip(gy)
                        .map(|(a, b)| (a - b).abs())
                        .sum::<f32>(),
                };
                let dist = fk.abs() / wn.max(1e-12);
                if best.is_none_or(|(b, _)| dist < b) {
                    best = Some((dist, k));
                }
            }
            let Some((dist, k)) = best else { continue };
            let gk = grads[k].sample(j);
            let w: Vec<f32> = gk.iter().zip(gy).map(|(a, b)| a - b).collect();
            let r = &mut total[i * d..(i + 1) * d];
            match p.norm {
                Norm::L2 => {
                    let wn = w.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    for (rt, wv) in r.iter_mut().zip(&w) {
                        *rt += (dist + 1e-4) * wv / wn;
                    }
                }
                Norm::Linf => {
                    for (rt, wv) in r.iter_mut().zip(&w) {
                        *rt += (dist + 1e-4) * sign(*wv);
                    }
                }
            }
            let origin = x.sample(i);
            let a = adv.sample_mut(i);
            for t in 0..d {
                a[t] = (origin[t] + (1.0 + p.overshoot) * r[t]).clamp(lo, hi);
            }
            still.push(i);
        }
        active = still;
    }
    Ok(adv)
}
