//! `mlsec data drift`: the drift monitor.

use crate::cli::{DriftArgs, GlobalArgs};
use crate::output;
use anyhow::{bail, Context, Result};
use mlsec_core::{Finding, Location, Report, Style, TextBody};
use mlsec_data::drift::{self, DriftOptions, WindowDrift, DISTRIBUTION_DRIFT};
use mlsec_data::frame::Frame;
use mlsec_data::stats::KsMethod;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct DriftResults {
    reference: String,
    stream: String,
    reference_rows: usize,
    stream_rows: usize,
    features: Vec<String>,
    window: usize,
    /// The first window that drifted.
    alarm: Option<usize>,
    windows: Vec<WindowDrift>,
}

impl TextBody for DriftResults {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> std::io::Result<()> {
        writeln!(
            out,
            "reference {} ({} rows), stream {} ({} rows), {} features, windows of {}",
            self.reference,
            self.reference_rows,
            self.stream,
            self.stream_rows,
            self.features.len(),
            self.window
        )?;
        let header = [
            "WINDOW", "ROWS", "MAX KS", "FEATURE", "MIN P", "MAX PSI", "MMD P", "DRIFT",
        ];
        let mut rows = Vec::new();
        for w in &self.windows {
            let worst = w
                .features
                .iter()
                .max_by(|a, b| a.ks.statistic.total_cmp(&b.ks.statistic));
            let min_p = w
                .features
                .iter()
                .map(|f| f.ks.pvalue)
                .fold(f64::INFINITY, f64::min);
            let max_psi = w.features.iter().map(|f| f.psi).fold(0.0, f64::max);
            rows.push(vec![
                w.window.to_string(),
                format!("{}..{}", w.first_row, w.first_row + w.rows),
                worst.map_or("-".into(), |f| format!("{:.4}", f.ks.statistic)),
                worst.map_or("-".into(), |f| f.feature.clone()),
                format!("{min_p:.3e}"),
                format!("{max_psi:.4}"),
                w.mmd.map_or("-".into(), |m| format!("{:.3}", m.pvalue)),
                if w.drifted { "yes".into() } else { "no".into() },
            ]);
        }
        let paint = |_: usize, col: usize, cell: &str| -> String {
            if col == 7 && cell.trim_end() == "yes" {
                style.severity(mlsec_core::Severity::Medium, cell)
            } else {
                cell.to_string()
            }
        };
        mlsec_core::write_table(out, &header, &rows, &paint, style)?;
        match self.alarm {
            Some(w) => writeln!(out, "alarm: window {w} is the first that drifted"),
            None => writeln!(out, "no window drifted"),
        }
    }
}

pub fn run(global: &GlobalArgs, args: &DriftArgs) -> Result<u8> {
    let method = match args.method.as_str() {
        "auto" => KsMethod::Auto,
        "exact" => KsMethod::Exact,
        "asymp" => KsMethod::Asymp,
        other => bail!("unknown --method `{other}` (expected auto, exact or asymp)"),
    };
    let bar = crate::commands::data::phase_spinner(global, &format!("reading {}", args.reference));
    let reference = Frame::load(&args.reference, args.label.as_deref())?;
    bar.set_message(format!("reading {}", args.stream));
    let stream = Frame::load(&args.stream, args.label.as_deref())?;
    bar.set_message(format!("comparing windows of {} rows", args.window));
    let opts = DriftOptions {
        window: args.window,
        ks_max: args.ks_max,
        psi_max: args.psi_max,
        mmd_alpha: args.mmd_alpha,
        mmd: !args.no_mmd,
        permutations: args.permutations,
        method,
        seed: args.seed,
        ..DriftOptions::default()
    };
    let windows = drift::monitor(&reference, &stream, &opts)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} against {}", args.stream, args.reference))?;
    bar.finish_and_clear();
    let features = windows
        .first()
        .map(|w| w.features.iter().map(|f| f.feature.clone()).collect())
        .unwrap_or_default();
    let alarm = windows.iter().find(|w| w.drifted).map(|w| w.window);
    let mut findings = Vec::new();
    for w in windows.iter().filter(|w| w.drifted) {
        let mut f = Finding::new(
            &DISTRIBUTION_DRIFT,
            Location::file(args.stream.clone()),
            format!(
                "window {} (rows {}..{}) drifted: {}",
                w.window,
                w.first_row,
                w.first_row + w.rows,
                w.reasons.join("; ")
            ),
        )
        .with_evidence("window", w.window)
        .with_evidence("first_row", w.first_row)
        .with_evidence("reasons", w.reasons.clone());
        if Some(w.window) == alarm {
            f = f.with_evidence("alarm", true);
        }
        findings.push(f);
    }
    let mut report = Report::new(
        output::tool(),
        "data drift",
        DriftResults {
            reference: args.reference.clone(),
            stream: args.stream.clone(),
            reference_rows: reference.rows,
            stream_rows: stream.rows,
            features,
            window: args.window,
            alarm,
            windows,
        },
    );
    report.findings = findings;
    output::finish(global, report, 1, Vec::new())
}

#[derive(Serialize)]
struct OutlierResults {
    reference: String,
    batch: String,
    features: Vec<String>,
    rows: usize,
    offset: f64,
    outliers: usize,
    /// The most anomalous rows: (row, score).
    top: Vec<(usize, f64)>,
}

impl TextBody for OutlierResults {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> std::io::Result<()> {
        writeln!(
            out,
            "{} rows of {} scored by an Isolation Forest fit on {} ({} features); offset {:.4}",
            self.rows,
            self.batch,
            self.reference,
            self.features.len(),
            self.offset
        )?;
        let rows: Vec<Vec<String>> = self
            .top
            .iter()
            .map(|(r, s)| vec![r.to_string(), format!("{s:.4}")])
            .collect();
        mlsec_core::write_table(
            out,
            &["ROW", "SCORE"],
            &rows,
            &|_, _, c| c.to_string(),
            style,
        )?;
        writeln!(
            out,
            "{} of {} rows below the offset",
            self.outliers, self.rows
        )
    }
}

pub fn outliers(global: &GlobalArgs, args: &crate::cli::OutliersArgs) -> Result<u8> {
    use mlsec_data::stats::{IsolationForest, IsolationForestParams};
    let bar = crate::commands::data::phase_spinner(global, &format!("reading {}", args.reference));
    let reference = Frame::load(&args.reference, args.label.as_deref())?;
    bar.set_message(format!("reading {}", args.batch));
    let batch = Frame::load(&args.batch, args.label.as_deref())?;
    bar.set_message("fitting the Isolation Forest and scoring".to_string());
    let names = reference.shared_features(&batch);
    if names.is_empty() {
        bail!(
            "{} and {} share no numeric feature",
            args.reference,
            args.batch
        );
    }
    let fill = reference.gap_fill(&batch, &names);
    let params = IsolationForestParams {
        n_estimators: args.trees,
        max_samples: args.max_samples,
        seed: args.seed,
        contamination: args.contamination,
    };
    let columns: Vec<&[f64]> = names
        .iter()
        .map(|n| reference.feature(n).unwrap_or(&[]))
        .collect();
    let forest = IsolationForest::fit_columns(&columns, &fill, &params)
        .map_err(anyhow::Error::msg)
        .with_context(|| args.reference.clone())?;
    let scores = forest
        .score_samples(&batch.row_major(&names, &fill))
        .map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    let offset = args.threshold.unwrap_or(forest.offset);
    if let Some(path) = &args.scores_out {
        let bytes: Vec<u8> = scores.iter().flat_map(|s| s.to_le_bytes()).collect();
        let array = mlsec_data::array::NdArray::new(
            mlsec_data::array::DType::F64,
            vec![scores.len()],
            bytes,
        )?;
        output::write_output(Some(path), &mlsec_data::npy::write(&array))?;
    }
    // Most anomalous first, ties by row; only the rows reported are sorted.
    let by_score = |a: &usize, b: &usize| scores[*a].total_cmp(&scores[*b]).then(a.cmp(b));
    let mut flagged: Vec<usize> = (0..scores.len()).filter(|&r| scores[r] < offset).collect();
    flagged.sort_by(by_score);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    if args.top < order.len() {
        order.select_nth_unstable_by(args.top, by_score);
        order.truncate(args.top);
    }
    order.sort_by(by_score);
    let mut findings = Vec::new();
    if !flagged.is_empty() {
        findings.push(
            Finding::new(
                &mlsec_data::drift::OUTLIER_ROWS,
                Location::file(args.batch.clone()),
                format!(
                    "{} of {} rows score below {offset:.4} (most anomalous: row {} at {:.4})",
                    flagged.len(),
                    scores.len(),
                    flagged[0],
                    scores[flagged[0]]
                ),
            )
            .with_evidence(
                "rows",
                flagged.iter().take(1000).copied().collect::<Vec<_>>(),
            )
            .with_evidence("offset", offset),
        );
    }
    let mut report = Report::new(
        output::tool(),
        "data outliers",
        OutlierResults {
            reference: args.reference.clone(),
            batch: args.batch.clone(),
            features: names,
            rows: scores.len(),
            offset,
            outliers: flagged.len(),
            top: order
                .iter()
                .take(args.top)
                .map(|&r| (r, scores[r]))
                .collect(),
        },
    );
    report.findings = findings;
    output::finish(global, report, 1, Vec::new())
}
