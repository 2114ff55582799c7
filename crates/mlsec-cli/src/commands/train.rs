//! `mlsec train`: a zoo model on a dataset, optionally adversarially.

use crate::cli::{GlobalArgs, TrainArgs};
use crate::output::{self, exit};
use anyhow::{anyhow, bail, Context, Result};
use mlsec_core::{Report, Style, TextBody};
use mlsec_defend::{AdversarialConfig, PgdAt, Trades};
use mlsec_model::data::{self, Part};
use mlsec_model::train::{self, Objective, Standard, TrainOptions, TrainReport};
use mlsec_model::zoo::Architecture;
use serde::Serialize;
use std::io::{IsTerminal, Write};

#[derive(Serialize)]
struct TrainView {
    #[serde(flatten)]
    report: TrainReport,
    weights: String,
    config: String,
    weights_sha256: String,
}

impl TextBody for TrainView {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> std::io::Result<()> {
        let r = &self.report;
        writeln!(
            out,
            "model     {} ({} objective), {} epochs, batch {}, lr {}, seed {}",
            r.architecture,
            r.objective,
            r.options.epochs,
            r.options.batch_size,
            r.options.learning_rate,
            r.options.seed
        )?;
        let rows: Vec<Vec<String>> = r
            .epochs
            .iter()
            .map(|e| {
                vec![
                    e.epoch.to_string(),
                    format!("{:.4}", e.loss),
                    format!("{:.2}%", 100.0 * e.train_accuracy),
                    e.test_accuracy
                        .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
                    format!("{:.1}", e.seconds),
                ]
            })
            .collect();
        mlsec_core::write_table(
            out,
            &["EPOCH", "LOSS", "TRAIN ACC", "TEST ACC", "SECONDS"],
            &rows,
            &|_, _, c| c.to_string(),
            style,
        )?;
        writeln!(
            out,
            "speed     {:.0} training samples/s, {:.1} s in all",
            r.samples_per_second, r.seconds
        )?;
        writeln!(
            out,
            "weights   {} (sha256 {})",
            self.weights, self.weights_sha256
        )?;
        writeln!(out, "config    {}", self.config)
    }
}

/// Sets the size of the thread pool the engine runs on.
pub(crate) fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up the thread pool")?;
    }
    Ok(())
}

pub(crate) fn progress_bar(global: &GlobalArgs, total: u64) -> indicatif::ProgressBar {
    if global.quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub fn train(global: &GlobalArgs, args: &TrainArgs) -> Result<u8> {
    set_threads(args.threads)?;
    let architecture = Architecture::by_name(&args.model).ok_or_else(|| {
        anyhow!(
            "unknown --model {:?} (one of {})",
            args.model,
            Architecture::NAMES.join(", ")
        )
    })?;
    let train_data = data::load(&args.data, args.labels.as_deref(), Part::Train)?;
    let test_data = match (&args.test, args.data.as_str()) {
        (Some(t), _) => Some(data::load(t, args.test_labels.as_deref(), Part::Test)?),
        (None, mlsec_data::mnist::NAME) => Some(data::load(&args.data, None, Part::Test)?),
        (None, _) => None,
    };
    if !(args.eps.is_finite() && args.eps >= 0.0 && (0.0..=1.0).contains(&args.warmup)) {
        bail!("--eps must be a non-negative number and --warmup a fraction in [0, 1]");
    }
    let attack = AdversarialConfig {
        eps: args.eps,
        steps: args.attack_steps,
        step_size: args.attack_step_size,
        warmup: args.warmup,
    };
    let mut objective: Box<dyn Objective> = match args.adversarial.as_deref() {
        None => Box::new(Standard),
        Some("pgd") | Some("pgd-at") | Some("madry") => Box::new(PgdAt(attack)),
        Some("trades") => Box::new(Trades {
            attack,
            beta: args.beta,
        }),
        Some(other) => bail!("unknown --adversarial {other:?} (pgd or trades)"),
    };
    let options = TrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
    };
    let bar = progress_bar(global, (train_data.len() * args.epochs) as u64);
    let (mut model, report) = train::train(
        &architecture,
        &train_data,
        test_data.as_ref(),
        &options,
        objective.as_mut(),
        &mut |p| {
            bar.set_position(p.samples_done as u64);
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} acc {:.1}%",
                p.epoch + 1,
                p.epochs,
                p.loss,
                100.0 * p.accuracy
            ));
        },
    )?;
    bar.finish_and_clear();
    let config = model.save(&args.out)?;
    let view = TrainView {
        weights: args.out.display().to_string(),
        config: config.display().to_string(),
        weights_sha256: model.config().weights_sha256.clone(),
        report,
    };
    let command = format!("train --model {}", args.model);
    output::emit(global, &Report::new(output::tool(), command, view))?;
    Ok(exit::OK)
}
