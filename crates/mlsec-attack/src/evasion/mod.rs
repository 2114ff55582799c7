//! Evasion: adversarial examples against a trained classifier, and the
//! numbers that say how robust it is (clean and robust accuracy, success
//! rate, perturbation sizes, queries per success).
//!
//! Attacks by the access they need (`docs/attacks.md`):
//! - white-box (gradients): FGSM, PGD, APGD-CE, APGD-DLR, C&W-L2, DeepFool;
//! - score-based (scores only): Square;
//! - decision-based (labels only): HopSkipJump.

mod active;
mod apgd;
mod geometry;
mod gradient;
mod hsj;
mod minimal;
mod square;

pub use apgd::checkpoints;
pub use geometry::Norm;
pub use gradient::AscentLoss;
pub use square::window_fraction;

use mlsec_model::classifier::accuracy;
use mlsec_model::{Access, Batch, Classifier, Dataset, Differentiable, ModelError, Result};
use serde::Serialize;
use std::time::Instant;

/// The attacks mlsec runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    Fgsm,
    Pgd,
    ApgdCe,
    ApgdDlr,
    Cw,
    Deepfool,
    Square,
    Hsj,
}

impl AttackKind {
    pub const ALL: [AttackKind; 8] = [
        AttackKind::Fgsm,
        AttackKind::Pgd,
        AttackKind::ApgdCe,
        AttackKind::ApgdDlr,
        AttackKind::Cw,
        AttackKind::Deepfool,
        AttackKind::Square,
        AttackKind::Hsj,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Fgsm => "fgsm",
            AttackKind::Pgd => "pgd",
            AttackKind::ApgdCe => "apgd-ce",
            AttackKind::ApgdDlr => "apgd-dlr",
            AttackKind::Cw => "cw",
            AttackKind::Deepfool => "deepfool",
            AttackKind::Square => "square",
            AttackKind::Hsj => "hsj",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase().replace('_', "-");
        let alias = match name.as_str() {
            "cw-l2" | "carlini-wagner" => "cw",
            "hopskipjump" | "hop-skip-jump" => "hsj",
            "apgd" => "apgd-ce",
            other => other,
        };
        Self::ALL.into_iter().find(|k| k.name() == alias)
    }

    /// White-box attacks need gradients; the others only queries.
    pub fn access(self) -> Access {
        match self {
            AttackKind::Square | AttackKind::Hsj => Access::Query,
            _ => Access::Gradient,
        }
    }

    /// The threat model in words, for reports.
    pub fn threat_model(self) -> &'static str {
        match self {
            AttackKind::Square => "score-based (black-box)",
            AttackKind::Hsj => "decision-based (black-box)",
            _ => "white-box",
        }
    }

    /// Minimal-perturbation attacks search for the smallest change; ε then
    /// only decides which of their results count as successes.
    pub fn is_minimal(self) -> bool {
        matches!(
            self,
            AttackKind::Cw | AttackKind::Deepfool | AttackKind::Hsj
        )
    }

    /// Norms the attack is defined for.
    pub fn supports(self, norm: Norm) -> bool {
        !(self == AttackKind::Cw && norm == Norm::Linf)
    }

    /// Iterations when the user gives none.
    pub fn default_steps(self) -> usize {
        match self {
            AttackKind::Fgsm => 1,
            AttackKind::Pgd => 40,
            AttackKind::ApgdCe | AttackKind::ApgdDlr => 100,
            AttackKind::Cw => 100,
            AttackKind::Deepfool => 50,
            AttackKind::Square => 5000,
            AttackKind::Hsj => 40,
        }
    }
}

/// Everything an attack run is configured by.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub attack: AttackKind,
    pub norm: Norm,
    pub eps: f32,
    /// Iterations (PGD/APGD/C&W steps, DeepFool iterations, Square and HSJ iterations).
    pub steps: usize,
    /// PGD's step size; default 2.5·ε/steps. C&W's Adam learning rate; default 0.01.
    pub step_size: Option<f32>,
    pub restarts: usize,
    pub seed: u64,
    /// Stop iterating on a sample once it is misclassified (does not change
    /// any reported number; turn off to time full-length attacks).
    pub early_stop: bool,
    /// PGD/APGD's loss (APGD-DLR forces DLR).
    #[serde(skip)]
    pub loss: AscentLoss,
    /// C&W: κ, the margin the adversarial must clear.
    pub confidence: f32,
    pub binary_search_steps: usize,
    pub initial_const: f32,
    /// DeepFool's overshoot.
    pub overshoot: f32,
    /// Square: initial fraction of pixels changed per step.
    pub p_init: Option<f32>,
    /// Query budget per sample (Square, HSJ).
    pub max_queries: Option<u64>,
}

impl Params {
    pub fn new(attack: AttackKind, norm: Norm, eps: f32) -> Self {
        Params {
            attack,
            norm,
            eps,
            steps: attack.default_steps(),
            step_size: None,
            restarts: 1,
            seed: 0,
            early_stop: true,
            loss: if attack == AttackKind::ApgdDlr {
                AscentLoss::Dlr
            } else {
                AscentLoss::CrossEntropy
            },
            confidence: 0.0,
            binary_search_steps: 5,
            initial_const: 0.1,
            overshoot: 0.02,
            p_init: None,
            max_queries: None,
        }
    }

    fn check(&self, classes: usize) -> Result<()> {
        if !self.attack.supports(self.norm) {
            return Err(ModelError::unsupported(format!(
                "{} is defined for the L2 norm only",
                self.attack.name()
            )));
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(ModelError::mismatch(format!(
                "--eps {} must be a non-negative number",
                self.eps
            )));
        }
        if self.attack == AttackKind::ApgdDlr && classes < 3 {
            return Err(ModelError::unsupported(
                "APGD-DLR needs at least three classes (the DLR loss divides by z_π1 − z_π3)",
            ));
        }
        Ok(())
    }
}

/// The model under attack, with the access the attacker has.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    WhiteBox(&'a dyn Differentiable),
    QueryOnly(&'a dyn Classifier),
}

impl<'a> Target<'a> {
    pub fn classifier(&self) -> &'a dyn Classifier {
        match *self {
            Target::WhiteBox(m) => m as &dyn Classifier,
            Target::QueryOnly(m) => m,
        }
    }
}

/// Called with the number of sample-iterations just done.
pub type Tick<'a> = dyn Fn(u64) + Sync + 'a;

/// Adversarial examples for `x` and the queries each one cost (zero for
/// white-box attacks, which are measured in gradient steps instead).
pub struct Outcome {
    pub adversarial: Batch,
    pub queries: Vec<u64>,
}

/// Runs the configured attack on every sample of `x`.
pub fn attack(target: Target, x: &Batch, y: &[usize], p: &Params, tick: &Tick) -> Result<Outcome> {
    let model = target.classifier();
    model.check_input(x)?;
    p.check(model.info().classes)?;
    let white = |what: &str| match target {
        Target::WhiteBox(m) => Ok(m),
        Target::QueryOnly(_) => Err(ModelError::unsupported(format!(
            "{what} needs gradients, and this model answers queries only (use square or hsj)"
        ))),
    };
    let none = || vec![0u64; x.len()];
    let adversarial = match p.attack {
        AttackKind::Fgsm => {
            let walk = gradient::Walk {
                steps: 1,
                step_size: p.step_size.unwrap_or(p.eps),
                random_start: false,
            };
            gradient::pgd(white("fgsm")?, x, y, p, &walk, tick)?
        }
        AttackKind::Pgd => {
            let walk = gradient::Walk {
                steps: p.steps,
                step_size: p.step_size.unwrap_or(2.5 * p.eps / p.steps.max(1) as f32),
                random_start: true,
            };
            gradient::pgd(white("pgd")?, x, y, p, &walk, tick)?
        }
        AttackKind::ApgdCe | AttackKind::ApgdDlr => {
            apgd::apgd(white(p.attack.name())?, x, y, p, p.steps, tick)?
        }
        AttackKind::Cw => minimal::carlini_wagner(
            white("cw")?,
            x,
            y,
            p,
            p.steps,
            p.step_size.unwrap_or(0.1),
            tick,
        )?,
        AttackKind::Deepfool => minimal::deepfool(white("deepfool")?, x, y, p, p.steps, tick)?,
        AttackKind::Square => {
            let (adv, q) = square::square(model, x, y, p, p.steps, tick)?;
            return Ok(Outcome {
                adversarial: adv,
                queries: q,
            });
        }
        AttackKind::Hsj => {
            let (adv, q) = hsj::hop_skip_jump(model, x, y, p, p.steps, tick)?;
            return Ok(Outcome {
                adversarial: adv,
                queries: q,
            });
        }
    };
    Ok(Outcome {
        adversarial,
        queries: none(),
    })
}

/// Mean and median of a list (0 when empty).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub median: f64,
}

impl Summary {
    pub fn of(values: &mut [f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Summary {
            mean: values.iter().sum::<f64>() / n as f64,
            median,
        })
    }
}

/// The measured result of one attack at one ε.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub attack: AttackKind,
    pub threat_model: &'static str,
    pub norm: Norm,
    pub eps: f32,
    pub samples: usize,
    pub clean_accuracy: f64,
    /// Correct on the clean input and not fooled within ε.
    pub robust_accuracy: f64,
    /// Of the samples the model got right, the share fooled within ε.
    pub success_rate: f64,
    pub attacked: usize,
    pub successes: usize,
    /// In the attack's norm, over successful adversarials.
    pub perturbation: Option<Summary>,
    /// L∞ and L2 sizes of successful adversarials (both, for comparison).
    pub perturbation_linf: Option<Summary>,
    pub perturbation_l2: Option<Summary>,
    /// Query-based attacks: queries per successful sample.
    pub queries_per_success: Option<Summary>,
    pub seconds: f64,
    /// Attacked samples per second.
    pub samples_per_second: f64,
}

/// What an evaluation leaves behind for writing out.
pub struct Run {
    pub evaluation: Evaluation,
    /// Indices (into the data) of the samples that were attacked.
    pub attacked: Vec<usize>,
    pub outcome: Outcome,
    /// Whether each attacked sample was fooled within ε.
    pub fooled: Vec<bool>,
    /// Predictions on the adversarials.
    pub predictions: Vec<usize>,
}

/// Attacks the correctly classified samples of `data` and measures.
pub fn evaluate(target: Target, data: &Dataset, p: &Params, tick: &Tick) -> Result<Run> {
    let model = target.classifier();
    let clean = model.predict(&data.inputs)?;
    let clean_accuracy = accuracy(&clean, &data.labels);
    let attacked: Vec<usize> = (0..data.len())
        .filter(|&i| clean[i] == data.labels[i])
        .collect();
    let x = data.inputs.select(&attacked);
    let y: Vec<usize> = attacked.iter().map(|&i| data.labels[i]).collect();
    let started = Instant::now();
    let outcome = if attacked.is_empty() {
        Outcome {
            adversarial: x.clone(),
            queries: vec![],
        }
    } else {
        attack(target, &x, &y, p, tick)?
    };
    let seconds = started.elapsed().as_secs_f64();
    let predictions = if attacked.is_empty() {
        vec![]
    } else {
        model.predict(&outcome.adversarial)?
    };
    // Tolerance for float rounding in projections.
    let limit = p.eps * (1.0 + 1e-5) + 1e-6;
    let mut fooled = vec![false; attacked.len()];
    let (mut norms, mut linf, mut l2, mut queries) = (vec![], vec![], vec![], vec![]);
    for j in 0..attacked.len() {
        let (a, o) = (outcome.adversarial.sample(j), x.sample(j));
        let size = p.norm.distance(a, o);
        if predictions[j] != y[j] && size <= limit {
            fooled[j] = true;
            norms.push(f64::from(size));
            linf.push(f64::from(Norm::Linf.distance(a, o)));
            l2.push(f64::from(Norm::L2.distance(a, o)));
            if p.attack.access() == Access::Query {
                queries.push(outcome.queries[j] as f64);
            }
        }
    }
    let successes = norms.len();
    let n = data.len().max(1);
    let evaluation = Evaluation {
        attack: p.attack,
        threat_model: p.attack.threat_model(),
        norm: p.norm,
        eps: p.eps,
        samples: data.len(),
        clean_accuracy,
        robust_accuracy: (attacked.len() - successes) as f64 / n as f64,
        success_rate: if attacked.is_empty() {
            0.0
        } else {
            successes as f64 / attacked.len() as f64
        },
        attacked: attacked.len(),
        successes,
        perturbation: Summary::of(&mut norms),
        perturbation_linf: Summary::of(&mut linf),
        perturbation_l2: Summary::of(&mut l2),
        queries_per_success: Summary::of(&mut queries),
        seconds,
        samples_per_second: attacked.len() as f64 / seconds.max(1e-9),
    };
    Ok(Run {
        evaluation,
        attacked,
        outcome,
        fooled,
        predictions,
    })
}
