//! Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness
//! with an ensemble of diverse parameter-free attacks", ICML 2020): PGD with
//! momentum whose step size halves at checkpoints when progress stalls, and
//! which restarts from the best point found. With the DLR loss it is the
//! attack that exposes gradient masking that fools plain PGD.

use super::active::{compact, Active, Best};
use super::gradient::gradient_step;
use super::{Params, Tick};
use mlsec_model::{Batch, Differentiable, Result};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const MOMENTUM: f32 = 0.75;
const RHO: f64 = 0.75;

/// The checkpoints: the first after 22% of the steps, then windows that
/// shrink by 3% of the steps down to 6% (the paper's p_{j+1} = p_j +
/// max(p_j − p_{j−1} − 0.03, 0.06), in the integer form AutoAttack uses).
pub fn checkpoints(steps: usize) -> Vec<usize> {
    let first = (steps * 22 / 100).max(1);
    let shrink = (steps * 3 / 100).max(1);
    let floor = (steps * 6 / 100).max(1);
    let mut out = vec![0];
    let (mut at, mut window) = (first, first);
    while at < steps {
        out.push(at);
        window = window.saturating_sub(shrink).max(floor);
        at += window;
    }
    out
}

pub fn apgd(
    model: &dyn Differentiable,
    x: &Batch,
    y: &[usize],
    p: &Params,
    steps: usize,
    tick: &Tick,
) -> Result<Batch> {
    let (lo, hi) = model.info().value_range;
    let d = x.sample_len();
    let mut best = Best::new(x);
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let checks = checkpoints(steps);
    for _restart in 0..p.restarts.max(1) {
        let todo = best.todo();
        if todo.is_empty() {
            break;
        }
        let mut a = Active::new(x, y, todo);
        a.random_start(p, (lo, hi), &mut rng);
        let m = a.len();
        // Per-sample state, compacted together with `a`.
        let mut previous: Vec<Vec<f32>> = (0..m).map(|j| a.current.sample(j).to_vec()).collect();
        let mut eta = vec![2.0 * p.eps; m];
        let mut f_prev = vec![f32::NEG_INFINITY; m];
        let mut f_max = vec![f32::NEG_INFINITY; m];
        let mut x_max: Vec<Vec<f32>> = previous.clone();
        let mut improved = vec![0usize; m];
        let mut f_max_at_check = vec![f32::NEG_INFINITY; m];
        let mut eta_cut_at_check = vec![true; m];
        let mut last_check = 0usize;

        for k in 0..steps {
            if a.is_empty() {
                break;
            }
            let (g, kept) = gradient_step(model, &mut a, &mut best, p, tick)?;
            for v in [&mut eta, &mut f_prev, &mut f_max, &mut f_max_at_check] {
                compact(v, &kept);
            }
            compact(&mut previous, &kept);
            compact(&mut x_max, &kept);
            compact(&mut improved, &kept);
            compact(&mut eta_cut_at_check, &kept);

            let at_check = k > 0 && checks.contains(&k);
            for (j, &r) in kept.iter().enumerate() {
                let f = g.losses[r];
                if f > f_prev[j] {
                    improved[j] += 1;
                }
                f_prev[j] = f;
                let grad = g.input.sample(r);
                let cur = a.current.sample(j).to_vec();
                if f > f_max[j] {
                    f_max[j] = f;
                    x_max[j].copy_from_slice(&cur);
                }
                let origin = a.origin.sample(j);
                // z = P(x_k + η·dir(∇)); x_{k+1} = P(x_k + α(z − x_k) + (1 − α)(x_k − x_{k−1})).
                let mut z = cur.clone();
                p.norm.ascend(&mut z, grad, eta[j]);
                p.norm.project(&mut z, origin, p.eps, lo, hi);
                let alpha = if k == 0 { 1.0 } else { MOMENTUM };
                let mut next = vec![0.0f32; d];
                for t in 0..d {
                    next[t] = cur[t]
                        + alpha * (z[t] - cur[t])
                        + (1.0 - alpha) * (cur[t] - previous[j][t]);
                }
                p.norm.project(&mut next, origin, p.eps, lo, hi);
                previous[j] = cur;
                if at_check {
                    let window = (k - last_check).max(1) as f64;
                    let stalled = (improved[j] as f64) < RHO * window;
                    let flat = !eta_cut_at_check[j] && f_max_at_check[j] >= f_max[j];
                    eta_cut_at_check[j] = stalled || flat;
                    if stalled || flat {
                        eta[j] /= 2.0;
                        next.copy_from_slice(&x_max[j]);
                        previous[j].copy_from_slice(&x_max[j]);
                    }
                    improved[j] = 0;
                    f_max_at_check[j] = f_max[j];
                }
                a.current.sample_mut(j).copy_from_slice(&next);
            }
            if at_check {
                last_check = k;
            }
        }
        // Report the point of highest loss when nothing fooled the model.
        best.finish(model, &a, |j| &x_max[j])?;
    }
    Ok(best.points)
}

#[cfg(test)]
mod tests {
    #[test]
    fn checkpoints_match_the_paper_for_100_steps() {
        // p = 0, .22, .41, .57, .70, .80, .87, .93, .99 (then > 1).
        assert_eq!(
            super::checkpoints(100),
            vec![0, 22, 41, 57, 70, 80, 87, 93, 99]
        );
    }
}
