//! Adversarial training objectives. The inner maximisation runs on the
//! engine's tensors (no host round trips) against a frozen copy of the
//! network, so that only the outer step updates the weights.
//!
//! - **PGD-AT** (Madry et al., "Towards deep learning models resistant to
//!   adversarial attacks", ICLR 2018): minimise the cross-entropy on PGD
//!   adversarials found from a random start in the L∞ ball.
//! - **TRADES** (Zhang et al., ICML 2019): cross-entropy on clean inputs
//!   plus β·KL(f(x) ‖ f(x')), x' maximising that KL inside the ball.
//!
//! Both ramp ε up linearly over the first part of the run: on small data a
//! full-size ε from the first batch often leaves the network stuck at
//! chance (a known failure of PGD-AT on MNIST at ε = 0.3).

use mlsec_model::burn::prelude::*;
use mlsec_model::burn::tensor::activation::{log_softmax, softmax};
use mlsec_model::burn::tensor::Distribution;
use mlsec_model::train::{cross_entropy, BatchContext, Objective};
use mlsec_model::zoo::Net;
use serde::Serialize;

/// The inner attack of adversarial training.
#[derive(Debug, Clone, Serialize)]
pub struct AdversarialConfig {
    /// L∞ radius, in input units (MNIST pixels: 0.3).
    pub eps: f32,
    /// PGD steps per batch.
    pub steps: usize,
    /// Step size; default 2.5·ε/steps.
    pub step_size: Option<f32>,
    /// Fraction of the run over which ε grows linearly from 0.
    pub warmup: f64,
}

impl AdversarialConfig {
    fn eps_at(&self, progress: f64) -> f32 {
        if self.warmup <= 0.0 {
            self.eps
        } else {
            self.eps * (progress / self.warmup).min(1.0) as f32
        }
    }
    fn step(&self, eps: f32) -> f32 {
        match self.step_size {
            Some(s) => s * eps / self.eps.max(f32::MIN_POSITIVE),
            None => 2.5 * eps / self.steps.max(1) as f32,
        }
    }
}

/// Projected sign-gradient ascent of `objective(logits)` from `start`,
/// kept inside the ε-ball around `x` and the [0, 1] box.
fn ascend(
    frozen: &Net,
    x: &Tensor<4>,
    start: Tensor<4>,
    eps: f32,
    step: f32,
    steps: usize,
    objective: &dyn Fn(Tensor<2>) -> Tensor<1>,
) -> Tensor<4> {
    let lo = x.clone() - eps;
    let hi = x.clone() + eps;
    let mut adv = start
        .max_pair(lo.clone())
        .min_pair(hi.clone())
        .clamp(0.0, 1.0);
    for _ in 0..steps {
        let a = adv.clone().detach().require_grad();
        let loss = objective(frozen.forward(a.clone()));
        let grads = loss.backward();
        let g = match a.grad(&grads) {
            Some(g) => g.autodiff(),
            None => break,
        };
        adv = (a.detach() + g.sign() * step)
            .max_pair(lo.clone())
            .min_pair(hi.clone())
            .clamp(0.0, 1.0);
    }
    adv.detach()
}

/// Madry et al.'s PGD adversarial training.
pub struct PgdAt(pub AdversarialConfig);

impl Objective for PgdAt {
    fn name(&self) -> String {
        "pgd".into()
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
    fn loss(
        &mut self,
        net: &Net,
        x: Tensor<4>,
        y: Tensor<1, Int>,
        ctx: BatchContext,
    ) -> (Tensor<1>, Tensor<2>) {
        let eps = self.0.eps_at(ctx.progress);
        let x = x.detach();
        let adv = if eps > 0.0 {
            let frozen = net.clone().freeze();
            let start =
                x.clone() + x.random_like(Distribution::Uniform(-f64::from(eps), f64::from(eps)));
            let labels = y.clone();
            ascend(
                &frozen,
                &x,
                start,
                eps,
                self.0.step(eps),
                self.0.steps,
                &|z| cross_entropy(z, labels.clone()),
            )
        } else {
            x
        };
        let logits = net.forward(adv);
        (cross_entropy(logits.clone(), y), logits)
    }
}

/// TRADES: clean cross-entropy plus β times the KL divergence between the
/// predictions on clean and adversarial inputs.
pub struct Trades {
    pub attack: AdversarialConfig,
    pub beta: f32,
}

/// Mean over the batch of KL(p ‖ softmax(q_logits)), p given as probabilities.
fn kl(p: Tensor<2>, q_logits: Tensor<2>) -> Tensor<1> {
    let log_p = p.clone().clamp_min(1e-12).log();
    (p * (log_p - log_softmax(q_logits, 1))).sum_dim(1).mean()
}

impl Objective for Trades {
    fn name(&self) -> String {
        "trades".into()
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "attack": self.attack, "beta": self.beta })
    }
    fn loss(
        &mut self,
        net: &Net,
        x: Tensor<4>,
        y: Tensor<1, Int>,
        ctx: BatchContext,
    ) -> (Tensor<1>, Tensor<2>) {
        let eps = self.attack.eps_at(ctx.progress);
        let x = x.detach();
        let clean_logits = net.forward(x.clone());
        let ce = cross_entropy(clean_logits.clone(), y);
        if eps <= 0.0 {
            return (ce, clean_logits);
        }
        let frozen = net.clone().freeze();
        let p_clean = softmax(frozen.forward(x.clone()), 1).detach();
        let start = x.clone() + x.random_like(Distribution::Normal(0.0, 0.001));
        let adv = ascend(
            &frozen,
            &x,
            start,
            eps,
            self.attack.step(eps),
            self.attack.steps,
            &|z| kl(p_clean.clone(), z),
        );
        let p_model = softmax(clean_logits.clone(), 1);
        let robust = kl(p_model, net.forward(adv));
        (ce + robust * self.beta, clean_logits)
    }
}
