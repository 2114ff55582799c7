//! Square Attack (Andriushchenko et al., ECCV 2020): a score-based random
//! search that needs only the model's scores. Each iteration changes one
//! random square window and keeps the change when the margin loss drops.

use super::geometry::{below, normal, uniform, Norm};
use super::{Params, Tick};
use mlsec_model::classifier::argmax_except;
use mlsec_model::{Batch, Classifier, Result};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The fraction of pixels changed at iteration `i` of `n`: `p_init` halved
/// at the paper's schedule (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000
/// of 10,000 iterations, rescaled to `n`).
pub fn window_fraction(p_init: f32, i: usize, n: usize) -> f32 {
    let it = i * 10_000 / n.max(1);
    let halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000]
        .iter()
        .filter(|&&t| it > t)
        .count();
    p_init / (1u32 << halvings) as f32
}

/// Margin `z_y − max_{k≠y} z_k` of each row: negative once misclassified.
fn margins(scores: &Batch, labels: &[usize]) -> Vec<f32> {
    let c = scores.sample_len();
    scores
        .data
        .chunks(c)
        .zip(labels)
        .map(|(z, &y)| z[y] - z[argmax_except(z, y)])
        .collect()
}

/// Runs the attack; returns the adversarials and the queries spent on each
/// sample (including the initial one).
pub fn square(
    model: &dyn Classifier,
    x: &Batch,
    y: &[usize],
    p: &Params,
    iterations: usize,
    tick: &Tick,
) -> Result<(Batch, Vec<u64>)> {
    let (lo, hi) = model.info().value_range;
    let shape = x.sample_shape().to_vec();
    let (ch, h, w) = match shape.as_slice() {
        [c, h, w] => (*c, *h, *w),
        [f] => (1, 1, *f),
        _ => (1, 1, x.sample_len()),
    };
    let n = x.len();
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let p_init = p.p_init.unwrap_or(match p.norm {
        Norm::Linf => 0.3,
        Norm::L2 => 0.1,
    });
    // Initial perturbation: vertical stripes of ±ε (L∞), or a grid of
    // ±meta-squares scaled to norm ε (L2).
    let mut adv = x.clone();
    for i in 0..n {
        let delta = match p.norm {
            Norm::Linf => {
                let mut delta = vec![0.0f32; ch * h * w];
                for c in 0..ch {
                    for col in 0..w {
                        let s = if uniform(&mut rng) < 0.5 {
                            -p.eps
                        } else {
                            p.eps
                        };
                        for row in 0..h {
                            delta[(c * h + row) * w + col] = s;
                        }
                    }
                }
                delta
            }
            Norm::L2 => l2_init(ch, h, w, p.eps, &mut rng),
        };
        let (o, a) = (x.sample(i).to_vec(), adv.sample_mut(i));
        for t in 0..a.len() {
            a[t] = (o[t] + delta[t]).clamp(lo, hi);
        }
    }
    let mut queries = vec![1u64; n];
    let mut loss = margins(&model.logits(&adv)?, y);
    tick(n as u64);
    for it in 1..iterations {
        let active: Vec<usize> = (0..n).filter(|&i| loss[i] >= 0.0).collect();
        if active.is_empty() {
            break;
        }
        let frac = window_fraction(p_init, it, iterations);
        let s = ((frac * (h * w) as f32).sqrt().round() as usize).clamp(1, h.min(w).max(1));
        let mut candidates = adv.select(&active);
        for (j, &i) in active.iter().enumerate() {
            let origin = x.sample(i);
            let cand = candidates.sample_mut(j);
            match p.norm {
                Norm::Linf => {
                    let (r0, c0) = (below(&mut rng, h - s + 1), below(&mut rng, w - s + 1));
                    for c in 0..ch {
                        let v = if uniform(&mut rng) < 0.5 {
                            -p.eps
                        } else {
                            p.eps
                        };
                        for r in r0..r0 + s {
                            for col in c0..c0 + s {
                                let t = (c * h + r) * w + col;
                                cand[t] = (origin[t] + v).clamp(lo, hi);
                            }
                        }
                    }
                }
                Norm::L2 => l2_step(cand, origin, (ch, h, w), s, p.eps, lo, hi, &mut rng),
            }
        }
        let new_loss = margins(
            &model.logits(&candidates)?,
            &active.iter().map(|&i| y[i]).collect::<Vec<_>>(),
        );
        tick(active.len() as u64);
        for (j, &i) in active.iter().enumerate() {
            queries[i] += 1;
            if new_loss[j] < loss[i] {
                loss[i] = new_loss[j];
                adv.sample_mut(i).copy_from_slice(candidates.sample(j));
            }
        }
        if p.max_queries
            .is_some_and(|m| queries.iter().all(|&q| q >= m))
        {
            break;
        }
    }
    Ok((adv, queries))
}

/// The paper's "meta-square" pattern of side `s`: nested rings whose
/// weight grows towards the centre, normalised to unit L2 norm, with its
/// two halves of opposite sign (randomly transposed).
fn meta_square(s: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut eta = vec![0.0f32; s * s];
    let half = s / 2;
    let centre = |len: usize| len as f32 / 2.0 - 0.5;
    for r in 0..s {
        for c in 0..s {
            // Ring index: distance to the border of the square.
            let ring = (centre(s) - (r as f32 - centre(s)).abs())
                .min(centre(s) - (c as f32 - centre(s)).abs())
                .max(0.0);
            let mut v = 0.0;
            for k in 0..=(ring as usize) {
                v += 1.0 / ((half + 1 - k.min(half)) as f32).powi(2);
            }
            eta[r * s + c] = if c < half.max(1) { v } else { -v };
        }
    }
    if s > 1 && uniform(rng) < 0.5 {
        let copy = eta.clone();
        for r in 0..s {
            for c in 0..s {
                eta[r * s + c] = copy[c * s + r];
            }
        }
    }
    let norm = eta.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    eta.iter_mut().for_each(|v| *v /= norm);
    eta
}

fn l2_init(ch: usize, h: usize, w: usize, eps: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut delta = vec![0.0f32; ch * h * w];
    let s = (h.min(w) / 5).max(1);
    for r0 in (0..h.saturating_sub(s - 1)).step_by(s) {
        for c0 in (0..w.saturating_sub(s - 1)).step_by(s) {
            let eta = meta_square(s, rng);
            for c in 0..ch {
                let sgn = if uniform(rng) < 0.5 { -1.0 } else { 1.0 };
                for r in 0..s {
                    for col in 0..s {
                        delta[(c * h + r0 + r) * w + c0 + col] = sgn * eta[r * s + col];
                    }
                }
            }
        }
    }
    let norm = delta.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    delta.iter_mut().for_each(|v| *v *= eps / norm);
    delta
}

/// One L2 proposal: moves the perturbation mass of two random windows into
/// a fresh meta-square in the first, keeping ‖δ‖₂ ≤ ε.
#[allow(clippy::too_many_arguments)]
fn l2_step(
    cand: &mut [f32],
    origin: &[f32],
    (ch, h, w): (usize, usize, usize),
    s: usize,
    eps: f32,
    lo: f32,
    hi: f32,
    rng: &mut ChaCha8Rng,
) {
    let (r1, c1) = (below(rng, h - s + 1), below(rng, w - s + 1));
    let (r2, c2) = (below(rng, h - s + 1), below(rng, w - s + 1));
    let total: f32 = cand
        .iter()
        .zip(origin)
        .map(|(a, o)| (a - o) * (a - o))
        .sum();
    let eta = meta_square(s, rng);
    for c in 0..ch {
        let idx = |r: usize, col: usize| (c * h + r) * w + col;
        let mut window_mass = 0.0f32;
        let mut seen = std::collections::HashSet::new();
        for r in 0..s {
            for col in 0..s {
                for t in [idx(r1 + r, c1 + col), idx(r2 + r, c2 + col)] {
                    if seen.insert(t) {
                        window_mass += (cand[t] - origin[t]).powi(2);
                    }
                }
            }
        }
        let spare = ((eps * eps - total) / ch as f32).max(0.0);
        let budget = (window_mass + spare).sqrt();
        for &t in &seen {
            cand[t] = origin[t];
        }
        let sgn = if normal(rng) < 0.0 { -1.0 } else { 1.0 };
        for r in 0..s {
            for col in 0..s {
                let t = idx(r1 + r, c1 + col);
                cand[t] = (origin[t] + sgn * budget * eta[r * s + col]).clamp(lo, hi);
            }
        }
    }
}
