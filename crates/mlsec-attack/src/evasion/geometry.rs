//! Norm balls and the box of valid inputs: projections, random starts and
//! steepest-ascent directions, on one sample's flat slice at a time.

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The threat model's norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    Linf,
    L2,
}

impl Norm {
    pub fn name(self) -> &'static str {
        match self {
            Norm::Linf => "linf",
            Norm::L2 => "l2",
        }
    }

    /// The size of `delta` in this norm.
    pub fn size(self, delta: impl Iterator<Item = f32>) -> f32 {
        match self {
            Norm::Linf => delta.fold(0.0, |m, v| m.max(v.abs())),
            Norm::L2 => delta.map(|v| v * v).sum::<f32>().sqrt(),
        }
    }

    /// Distance between two samples.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        self.size(a.iter().zip(b).map(|(x, y)| x - y))
    }

    /// Overwrites `x` with the nearest point of the ε-ball around `origin`
    /// intersected with the box `[lo, hi]`.
    pub fn project(self, x: &mut [f32], origin: &[f32], eps: f32, lo: f32, hi: f32) {
        match self {
            Norm::Linf => {
                for (v, &o) in x.iter_mut().zip(origin) {
                    *v = v.clamp(o - eps, o + eps).clamp(lo, hi);
                }
            }
            Norm::L2 => {
                let n = self.distance(x, origin);
                if n > eps {
                    let s = eps / n;
                    for (v, &o) in x.iter_mut().zip(origin) {
                        *v = o + (*v - o) * s;
                    }
                }
                for v in x.iter_mut() {
                    *v = v.clamp(lo, hi);
                }
            }
        }
    }

    /// Adds `step` times the steepest-ascent direction of `grad` for this
    /// norm: its sign (L∞) or its unit vector (L2).
    pub fn ascend(self, x: &mut [f32], grad: &[f32], step: f32) {
        match self {
            Norm::Linf => {
                for (v, g) in x.iter_mut().zip(grad) {
                    *v += step * sign(*g);
                }
            }
            Norm::L2 => {
                let n = grad.iter().map(|g| g * g).sum::<f32>().sqrt();
                if n > 0.0 {
                    for (v, g) in x.iter_mut().zip(grad) {
                        *v += step * g / n;
                    }
                }
            }
        }
    }

    /// A uniformly random point of the ε-ball around `origin` (L2: uniform
    /// direction, radius ε·u^(1/d)), clipped to the box.
    pub fn random_start(
        self,
        x: &mut [f32],
        origin: &[f32],
        eps: f32,
        lo: f32,
        hi: f32,
        rng: &mut ChaCha8Rng,
    ) {
        match self {
            Norm::Linf => {
                for (v, &o) in x.iter_mut().zip(origin) {
                    *v = o + eps * (2.0 * uniform(rng) - 1.0);
                }
            }
            Norm::L2 => {
                let dir: Vec<f32> = (0..origin.len()).map(|_| normal(rng)).collect();
                let n = dir.iter().map(|g| g * g).sum::<f32>().sqrt().max(1e-12);
                let r = eps * uniform(rng).powf(1.0 / origin.len() as f32);
                for ((v, &o), d) in x.iter_mut().zip(origin).zip(&dir) {
                    *v = o + r * d / n;
                }
            }
        }
        self.project(x, origin, eps, lo, hi);
    }
}

pub fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Uniform in [0, 1).
pub fn uniform(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32
}

/// Standard normal (Box–Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1 = uniform(rng).max(1e-12);
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

/// Uniform integer in `0..n`.
pub fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}
