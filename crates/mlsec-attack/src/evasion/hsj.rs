//! HopSkipJump (Chen, Jordan & Wainwright, IEEE S&P 2020): a decision-based
//! attack that sees only the predicted label. From a misclassified start it
//! walks along the decision boundary towards the clean input, estimating
//! the boundary's normal from the signs of random probes.

use super::geometry::{normal, uniform, Norm};
use super::{Params, Tick};
use mlsec_model::{Batch, Classifier, Result};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const INIT_TRIES: usize = 100;
const INIT_EVALS: f32 = 100.0;
const MAX_EVALS: usize = 10_000;
const GAMMA: f32 = 1.0;

struct Oracle<'a> {
    model: &'a dyn Classifier,
    label: usize,
    shape: Vec<usize>,
    queries: u64,
    budget: u64,
}

impl Oracle<'_> {
    /// Whether each candidate is misclassified.
    fn adversarial(&mut self, points: &[Vec<f32>]) -> Result<Vec<bool>> {
        let mut shape = self.shape.clone();
        shape[0] = points.len();
        let batch = Batch::new(points.concat(), shape)?;
        self.queries += points.len() as u64;
        Ok(self
            .model
            .predict(&batch)?
            .into_iter()
            .map(|p| p != self.label)
            .collect())
    }
    fn spent(&self) -> bool {
        self.queries >= self.budget
    }
}

fn blend(norm: Norm, origin: &[f32], adv: &[f32], alpha: f32) -> Vec<f32> {
    match norm {
        Norm::L2 => origin
            .iter()
            .zip(adv)
            .map(|(o, a)| (1.0 - alpha) * o + alpha * a)
            .collect(),
        // L∞: clip into the box of radius α·‖adv − origin‖∞.
        Norm::Linf => origin
            .iter()
            .zip(adv)
            .map(|(o, a)| a.clamp(o - alpha, o + alpha))
            .collect(),
    }
}

/// Binary search between `origin` (correct) and `adv` (adversarial) for
/// the boundary, to precision `threshold`.
fn to_boundary(
    oracle: &mut Oracle,
    norm: Norm,
    origin: &[f32],
    adv: &[f32],
    threshold: f32,
) -> Result<Vec<f32>> {
    let (mut lo, mut hi) = match norm {
        Norm::L2 => (0.0f32, 1.0f32),
        Norm::Linf => (0.0, norm.distance(origin, adv)),
    };
    let tol = match norm {
        Norm::L2 => threshold,
        Norm::Linf => threshold.min(hi * threshold),
    };
    while hi - lo > tol && !oracle.spent() {
        let mid = (lo + hi) / 2.0;
        if oracle.adversarial(&[blend(norm, origin, adv, mid)])?[0] {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(blend(norm, origin, adv, hi))
}

/// Attacks each sample in turn; returns the adversarials (the clean input
/// where no start was found) and the queries spent per sample.
pub fn hop_skip_jump(
    model: &dyn Classifier,
    x: &Batch,
    y: &[usize],
    p: &Params,
    iterations: usize,
    tick: &Tick,
) -> Result<(Batch, Vec<u64>)> {
    let (lo, hi) = model.info().value_range;
    let d = x.sample_len();
    let mut sample_shape = vec![1];
    sample_shape.extend_from_slice(x.sample_shape());
    let theta = match p.norm {
        Norm::L2 => GAMMA / (d as f32).powf(1.5),
        Norm::Linf => GAMMA / (d as f32 * d as f32),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let mut out = x.clone();
    let mut queries = vec![0u64; x.len()];
    for i in 0..x.len() {
        let origin = x.sample(i).to_vec();
        let mut oracle = Oracle {
            model,
            label: y[i],
            shape: sample_shape.clone(),
            queries: 0,
            budget: p.max_queries.unwrap_or(u64::MAX),
        };
        // A misclassified start: uniform noise, then the boundary.
        let mut start = None;
        for _ in 0..INIT_TRIES {
            let noise: Vec<f32> = (0..d).map(|_| lo + (hi - lo) * uniform(&mut rng)).collect();
            if oracle.adversarial(std::slice::from_ref(&noise))?[0] {
                start = Some(noise);
                break;
            }
        }
        let Some(start) = start else {
            queries[i] = oracle.queries;
            tick(1);
            continue;
        };
        let mut current = to_boundary(&mut oracle, p.norm, &origin, &start, theta)?;
        let mut dist = p.norm.distance(&current, &origin);
        for t in 1..=iterations {
            if oracle.spent() {
                break;
            }
            // Estimate the boundary normal at `current` from probe signs.
            let delta = if t == 1 {
                0.1 * (hi - lo)
            } else {
                match p.norm {
                    Norm::L2 => (d as f32).sqrt() * theta * dist,
                    Norm::Linf => d as f32 * theta * dist,
                }
            };
            let evals = ((INIT_EVALS * (t as f32).sqrt()) as usize).min(MAX_EVALS);
            let mut probes = Vec::with_capacity(evals);
            let mut dirs = Vec::with_capacity(evals);
            for _ in 0..evals {
                let mut u: Vec<f32> = match p.norm {
                    Norm::L2 => (0..d).map(|_| normal(&mut rng)).collect(),
                    Norm::Linf => (0..d).map(|_| 2.0 * uniform(&mut rng) - 1.0).collect(),
                };
                let n = u.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                u.iter_mut().for_each(|v| *v /= n);
                let probe: Vec<f32> = current
                    .iter()
                    .zip(&u)
                    .map(|(c, v)| (c + delta * v).clamp(lo, hi))
                    .collect();
                let dir: Vec<f32> = probe
                    .iter()
                    .zip(&current)
                    .map(|(a, c)| (a - c) / delta)
                    .collect();
                probes.push(probe);
                dirs.push(dir);
            }
            let signs: Vec<f32> = oracle
                .adversarial(&probes)?
                .into_iter()
                .map(|a| if a { 1.0 } else { -1.0 })
                .collect();
            let mean = signs.iter().sum::<f32>() / signs.len() as f32;
            let centred = mean.abs() < 1.0;
            let mut grad = vec![0.0f32; d];
            for (s, dir) in signs.iter().zip(&dirs) {
                let w = if centred { s - mean } else { *s };
                for (g, v) in grad.iter_mut().zip(dir) {
                    *g += w * v;
                }
            }
            let step_dir: Vec<f32> = match p.norm {
                Norm::L2 => {
                    let n = grad.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    grad.iter().map(|g| g / n).collect()
                }
                Norm::Linf => grad.iter().map(|g| super::geometry::sign(*g)).collect(),
            };
            // Geometric search for a step that stays adversarial.
            let mut xi = match p.norm {
                Norm::L2 => dist / (t as f32).sqrt(),
                Norm::Linf => dist / (t as f32).sqrt(),
            };
            let mut next = None;
            for _ in 0..30 {
                if oracle.spent() {
                    break;
                }
                let cand: Vec<f32> = current
                    .iter()
                    .zip(&step_dir)
                    .map(|(c, v)| (c + xi * v).clamp(lo, hi))
                    .collect();
                if oracle.adversarial(std::slice::from_ref(&cand))?[0] {
                    next = Some(cand);
                    break;
                }
                xi /= 2.0;
            }
            let Some(next) = next else { break };
            let candidate = to_boundary(&mut oracle, p.norm, &origin, &next, theta)?;
            let new_dist = p.norm.distance(&candidate, &origin);
            if new_dist < dist {
                current = candidate;
                dist = new_dist;
            }
        }
        out.sample_mut(i).copy_from_slice(&current);
        queries[i] = oracle.queries;
        tick(1);
    }
    Ok((out, queries))
}
