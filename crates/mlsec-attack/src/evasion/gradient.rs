//! White-box attacks that follow the loss gradient inside the ε-ball:
//! FGSM (Goodfellow et al., 2015) and PGD with random starts and restarts
//! (Madry et al., 2018).

use super::active::{Active, Best};
use super::{Params, Tick};
use mlsec_model::classifier::{CrossEntropy, Dlr};
use mlsec_model::{Batch, Differentiable, Gradient, LogitLoss, Result};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Which loss the attacker ascends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AscentLoss {
    CrossEntropy,
    Dlr,
}

pub(crate) fn loss_for<'a>(kind: AscentLoss, labels: &'a [usize]) -> Box<dyn LogitLoss + 'a> {
    match kind {
        AscentLoss::CrossEntropy => Box::new(CrossEntropy { labels }),
        AscentLoss::Dlr => Box::new(Dlr { labels }),
    }
}

/// How PGD walks: iterations, step size, and whether it starts at a
/// random point of the ball (FGSM: one step of ε from the clean input).
pub struct Walk {
    pub steps: usize,
    pub step_size: f32,
    pub random_start: bool,
}

/// Projected gradient ascent on `loss` from a random start (or from the
/// clean input when `random_start` is off), `restarts` times; each sample
/// keeps the first adversarial found, or else its last iterate.
pub fn pgd(
    model: &dyn Differentiable,
    x: &Batch,
    y: &[usize],
    p: &Params,
    walk: &Walk,
    tick: &Tick,
) -> Result<Batch> {
    let (lo, hi) = model.info().value_range;
    let mut best = Best::new(x);
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    for _restart in 0..p.restarts.max(1) {
        let todo = best.todo();
        if todo.is_empty() {
            break;
        }
        let mut a = Active::new(x, y, todo);
        if walk.random_start {
            a.random_start(p, (lo, hi), &mut rng);
        }
        for _ in 0..walk.steps {
            if a.is_empty() {
                break;
            }
            let (g, kept) = gradient_step(model, &mut a, &mut best, p, tick)?;
            for (j, &k) in kept.iter().enumerate() {
                let origin = a.origin.sample(j).to_vec();
                let cur = a.current.sample_mut(j);
                p.norm.ascend(cur, g.input.sample(k), walk.step_size);
                p.norm.project(cur, &origin, p.eps, lo, hi);
            }
        }
        best.finish(model, &a, |j| a.current.sample(j))?;
    }
    Ok(best.points)
}

/// One gradient of the attack's loss at the active points: records the
/// samples already misclassified there, drops them when stopping early, and
/// returns the gradient with, for each kept sample, its row in it.
pub(crate) fn gradient_step(
    model: &dyn Differentiable,
    a: &mut Active,
    best: &mut Best,
    p: &Params,
    tick: &Tick,
) -> Result<(Gradient, Vec<usize>)> {
    let g = {
        let loss = loss_for(p.loss, &a.labels);
        model.gradient(&a.current, loss.as_ref())?
    };
    let keep = best.record(a, &g.logits, p.early_stop);
    tick(a.len() as u64);
    let kept = a.retain(&keep);
    Ok((g, kept))
}
