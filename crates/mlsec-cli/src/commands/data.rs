//! `mlsec data …`: dataset commands.

use crate::cli::{DataCommand, GlobalArgs, InspectArgs};
use crate::output;
use anyhow::Result;
use mlsec_core::{Finding, Location, Report};
use mlsec_data::{InspectOptions, InspectResults};
use std::io::IsTerminal;

pub fn run(global: &GlobalArgs, cmd: &DataCommand) -> Result<u8> {
    match cmd {
        DataCommand::Inspect(args) => inspect(global, args),
        DataCommand::Drift(args) => crate::commands::drift::run(global, args),
        DataCommand::Outliers(args) => crate::commands::drift::outliers(global, args),
        DataCommand::Gate(args) => crate::commands::gate::gate(global, args),
        DataCommand::Manifest(args) => crate::commands::gate::manifest(global, args),
        DataCommand::Ledger(args) => crate::commands::gate::ledger(global, args),
    }
}

fn progress_bar(global: &GlobalArgs, path: &str) -> indicatif::ProgressBar {
    if global.quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} files ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(format!("reading {path}"));
    bar
}

/// A spinner with elapsed time for a long computation, on a terminal only
/// and not with `--quiet`; its message says which phase is running.
pub(crate) fn phase_spinner(global: &GlobalArgs, first: &str) -> indicatif::ProgressBar {
    if global.quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message(first.to_string());
    bar
}

fn inspect(global: &GlobalArgs, args: &InspectArgs) -> Result<u8> {
    if !(args.imbalance_ratio.is_finite() && (0.0..=1.0).contains(&args.imbalance_ratio)) {
        anyhow::bail!(
            "--imbalance-ratio must be between 0 and 1, got {}",
            args.imbalance_ratio
        );
    }
    let opts = InspectOptions {
        label: args.label.clone(),
        max_bytes: args.max_bytes,
        imbalance_ratio: args.imbalance_ratio,
    };
    let mut report = Report::new(output::tool(), "data inspect", InspectResults::default());
    let mut failures = Vec::new();
    for path in &args.paths {
        let bar = progress_bar(global, path);
        let result = mlsec_data::inspect(path, &opts, &|n| bar.set_position(n));
        bar.finish_and_clear();
        match result {
            Ok(insp) => {
                report.artifacts.push(insp.artifact);
                report.results.datasets.push(insp.summary);
                report.findings.extend(insp.findings);
            }
            Err(e) => {
                eprintln!("error: {e}");
                failures.push(
                    Finding::new(
                        &mlsec_core::rules::INPUT_NOT_ANALYSED,
                        Location::file(path.clone()),
                        e.to_string(),
                    )
                    .with_evidence("kind", format!("{:?}", e.kind).to_lowercase()),
                );
            }
        }
    }
    let analysed = report.results.datasets.len();
    output::finish(global, report, analysed, failures)
}
