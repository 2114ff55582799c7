//! Training loops: Adam with a cosine learning-rate schedule, minibatches
//! shuffled by a seeded ChaCha8 permutation, and a pluggable per-batch
//! [`Objective`] (plain cross-entropy here; adversarial objectives live in
//! mlsec-defend).

use crate::batch::Dataset;
use crate::classifier::{accuracy, Classifier};
use crate::error::{ModelError, Result};
use crate::native::{devices, ModelConfig, NativeModel, FORMAT};
use crate::optim::FusedAdam;
use crate::zoo::{Architecture, Net};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::Instant;

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of Adam; decays to 1% of it on a cosine.
    pub learning_rate: f64,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 5,
            batch_size: 64,
            learning_rate: 1e-3,
            seed: 0,
        }
    }
}

/// Where one minibatch sits in the run, for objectives that schedule
/// (an epsilon ramp) or sample (random starts).
pub struct BatchContext<'a> {
    pub epoch: usize,
    pub epochs: usize,
    /// Fraction of the run done, in [0, 1).
    pub progress: f64,
    pub labels: &'a [usize],
    pub rng: &'a mut ChaCha8Rng,
}

/// The per-batch training loss.
pub trait Objective {
    /// A short name for reports (`standard`, `pgd`, `trades`).
    fn name(&self) -> String;
    /// Parameters to record in the model's config.
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Mean loss of the batch on the trainable `net`, plus the logits on
    /// which training accuracy is counted.
    fn loss(
        &mut self,
        net: &Net,
        x: Tensor<4>,
        y: Tensor<1, Int>,
        ctx: BatchContext,
    ) -> (Tensor<1>, Tensor<2>);
}

/// Empirical risk minimisation: cross-entropy on clean inputs.
pub struct Standard;

impl Objective for Standard {
    fn name(&self) -> String {
        "standard".into()
    }
    fn loss(
        &mut self,
        net: &Net,
        x: Tensor<4>,
        y: Tensor<1, Int>,
        _ctx: BatchContext,
    ) -> (Tensor<1>, Tensor<2>) {
        let logits = net.forward(x);
        (cross_entropy(logits.clone(), y), logits)
    }
}

/// Mean cross-entropy of `logits` against class indices `y`.
pub fn cross_entropy(logits: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
    CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, y)
}

/// What a progress display needs after each minibatch.
#[derive(Debug, Clone)]
pub struct Progress {
    pub epoch: usize,
    pub epochs: usize,
    pub samples_done: usize,
    pub samples_total: usize,
    /// Running means over the current epoch.
    pub loss: f64,
    pub accuracy: f64,
}

/// Per-epoch results.
#[derive(Debug, Clone, Serialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub train_accuracy: f64,
    /// Clean accuracy on the evaluation set, when one was given.
    pub test_accuracy: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub architecture: String,
    pub objective: String,
    pub options: TrainOptions,
    pub epochs: Vec<EpochStats>,
    pub seconds: f64,
    /// Training samples per second (the optimisation only, not evaluation).
    pub samples_per_second: f64,
    pub test_accuracy: Option<f64>,
}

/// Trains `architecture` on `train` and evaluates clean accuracy on `test`
/// after every epoch. Deterministic for a seed on one machine.
pub fn train(
    architecture: &Architecture,
    train: &Dataset,
    test: Option<&Dataset>,
    options: &TrainOptions,
    objective: &mut dyn Objective,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(NativeModel, TrainReport)> {
    let shape = train.inputs.sample_shape();
    let input: [usize; 3] = match shape {
        [c, h, w] => [*c, *h, *w],
        _ => {
            return Err(ModelError::mismatch(format!(
                "training needs image-shaped samples [channels, height, width]; got {shape:?}"
            )))
        }
    };
    if train.is_empty() || options.batch_size == 0 || options.epochs == 0 {
        return Err(ModelError::mismatch(
            "nothing to train: empty data, zero epochs or a zero batch size",
        ));
    }
    let classes = train.classes.max(test.map_or(0, |t| t.classes));
    let (_, device) = devices();
    let mut net = architecture.init_seeded(input, classes, &device, options.seed);
    let mut optim = FusedAdam::init();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let n = train.len();
    let steps_per_epoch = n.div_ceil(options.batch_size);
    let total_steps = steps_per_epoch * options.epochs;
    let d = train.inputs.sample_len();

    let config = |weights_sha256: String, training: Option<serde_json::Value>| ModelConfig {
        format: FORMAT.to_string(),
        version: 1,
        architecture: architecture.clone(),
        input_shape: input,
        classes,
        value_range: [0.0, 1.0],
        weights_sha256,
        training,
    };

    let started = Instant::now();
    let mut train_seconds = 0.0;
    let mut epochs = Vec::with_capacity(options.epochs);
    let mut order: Vec<usize> = (0..n).collect();
    for epoch in 0..options.epochs {
        let epoch_start = Instant::now();
        shuffle(&mut order, &mut rng);
        let (mut loss_sum, mut right, mut seen) = (0.0f64, 0usize, 0usize);
        for (step, idx) in order.chunks(options.batch_size).enumerate() {
            let global = epoch * steps_per_epoch + step;
            let t = global as f64 / total_steps as f64;
            let lr = options.learning_rate
                * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()));
            let mut xs = Vec::with_capacity(idx.len() * d);
            let mut labels = Vec::with_capacity(idx.len());
            for &i in idx {
                xs.extend_from_slice(train.inputs.sample(i));
                labels.push(train.labels[i]);
            }
            let x = Tensor::<4>::from_data(
                TensorData::new(xs, [idx.len(), input[0], input[1], input[2]]),
                &device,
            );
            let y = Tensor::<1, Int>::from_data(
                TensorData::new(
                    labels.iter().map(|&l| l as i64).collect::<Vec<_>>(),
                    [idx.len()],
                ),
                &device,
            );
            let ctx = BatchContext {
                epoch,
                epochs: options.epochs,
                progress: t,
                labels: &labels,
                rng: &mut rng,
            };
            let (loss, logits) = objective.loss(&net, x, y, ctx);
            let grads = loss.backward();
            let value = f64::from(loss.detach().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(ModelError::mismatch(format!(
                    "training diverged at epoch {} (loss {value}); lower --lr",
                    epoch + 1
                )));
            }
            let grads = GradientsParams::from_grads(grads, &net);
            net = optim.step(lr, net, grads);
            let predicted = logits.detach().argmax(1).into_data();
            let predicted = predicted.convert::<i64>();
            let predicted = predicted.as_slice::<i64>().expect("argmax is integer");
            right += predicted
                .iter()
                .zip(&labels)
                .filter(|(p, l)| **p as usize == **l)
                .count();
            loss_sum += value * idx.len() as f64;
            seen += idx.len();
            progress(&Progress {
                epoch,
                epochs: options.epochs,
                samples_done: epoch * n + seen,
                samples_total: options.epochs * n,
                loss: loss_sum / seen as f64,
                accuracy: right as f64 / seen as f64,
            });
        }
        train_seconds += epoch_start.elapsed().as_secs_f64();
        let test_accuracy = match test {
            Some(t) => Some(evaluate(
                &NativeModel::from_trained(&net, config(String::new(), None)),
                t,
            )?),
            None => None,
        };
        epochs.push(EpochStats {
            epoch: epoch + 1,
            loss: loss_sum / seen as f64,
            train_accuracy: right as f64 / seen as f64,
            test_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
    }
    let report = TrainReport {
        architecture: architecture.name().to_string(),
        objective: objective.name(),
        options: options.clone(),
        test_accuracy: epochs.last().and_then(|e| e.test_accuracy),
        epochs,
        seconds: started.elapsed().as_secs_f64(),
        samples_per_second: (n * options.epochs) as f64 / train_seconds.max(1e-9),
    };
    let training = serde_json::json!({
        "data": train.name,
        "samples": n,
        "objective": objective.name(),
        "objective_parameters": objective.describe(),
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "seed": options.seed,
        "test_accuracy": report.test_accuracy,
    });
    Ok((
        NativeModel::from_trained(&net, config(String::new(), Some(training))),
        report,
    ))
}

/// Clean accuracy of `model` on `data`.
pub fn evaluate(model: &dyn Classifier, data: &Dataset) -> Result<f64> {
    Ok(accuracy(&model.predict(&data.inputs)?, &data.labels))
}

/// Fisher–Yates with ChaCha8, written out so that the permutation for a seed
/// never changes with a dependency's release.
pub fn shuffle(order: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}
