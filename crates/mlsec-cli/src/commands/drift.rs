//! `mlsec data drift`: the drift monitor.

use crate::cli::{DriftArgs, GlobalArgs};
use crate::output;
use anyhow::{bail, Context, Result};
use mlsec_core::{Finding, Location, Report, Style, TextBody};
use mlsec_data::drift::{self, DriftOptions, WindowDrift, DISTRIBUTION_DRIFT};
use mlsec_data::reference::ReferenceData;
use mlsec_data::stats::KsMethod;
use mlsec_data::stream::{ChunkOptions, FrameChunks};
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

/// Opens a reference for reading in chunks, as often as its passes need.
fn reference_opener<'a>(
    path: &'a str,
    label: Option<&'a str>,
) -> impl Fn() -> mlsec_data::Result<FrameChunks> + 'a {
    move || FrameChunks::open(path, label, ChunkOptions::default())
}

pub fn run(global: &GlobalArgs, args: &DriftArgs) -> Result<u8> {
    let method = match args.method.as_str() {
        "auto" => KsMethod::Auto,
        "exact" => KsMethod::Exact,
        "asymp" => KsMethod::Asymp,
        other => bail!("unknown --method `{other}` (expected auto, exact or asymp)"),
    };
    let bar = crate::commands::data::phase_spinner(global, &format!("reading {}", args.reference));
    let open_reference = reference_opener(&args.reference, args.label.as_deref());
    let reference_options = args.reference_memory.options();
    let mut reference = mlsec_data::reference::read(open_reference()?, &reference_options)?;
    // The stream is read chunk by chunk: only the reference and the window
    // being compared are held, so the stream may be larger than memory.
    let mut stream =
        FrameChunks::open(&args.stream, args.label.as_deref(), ChunkOptions::default())?;
    let stream_names = stream.names().to_vec();
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
    if let ReferenceData::Sorted(sorted) = &mut reference {
        if opts.mmd {
            if args.reference == "-" {
                bail!(
                    "a reference over --reference-memory is read twice for MMD, \
                     which standard input cannot be: give a file, more memory, or --no-mmd"
                );
            }
            bar.set_message(format!("reading {} again for MMD", args.reference));
            let rows = drift::mmd_reference_rows(sorted.rows, &opts);
            sorted.prepare_mmd(open_reference, &rows)?;
        }
    }
    let reference_rows = drift::Reference::from(&reference).rows();
    bar.set_message(format!("opening {}", args.stream));
    let progress = std::cell::Cell::new((0u64, 1u64));
    let chunks = std::iter::from_fn(|| {
        let next = stream.next();
        progress.set(stream.progress());
        next
    });
    let windows =
        drift::monitor_chunks((&mut reference).into(), &stream_names, chunks, &opts, |w| {
            let (done, total) = progress.get();
            bar.set_message(format!(
                "window {} (rows from {}), {}",
                w.window,
                w.first_row,
                read_so_far(done, total, &args.stream)
            ));
        })
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
            reference_rows,
            stream_rows: windows.iter().map(|w| w.rows).sum(),
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
    use mlsec_data::stats::IsolationForestParams;
    let bar = crate::commands::data::phase_spinner(global, &format!("reading {}", args.reference));
    let open_reference = reference_opener(&args.reference, args.label.as_deref());
    let reference_options = args.reference_memory.options();
    let reference = mlsec_data::reference::read(open_reference()?, &reference_options)?;
    bar.set_message(format!("opening {}", args.batch));
    // The batch is scored chunk by chunk: it may be larger than memory.
    let mut batch = FrameChunks::open(&args.batch, args.label.as_deref(), ChunkOptions::default())?;
    let reference_names = match &reference {
        ReferenceData::Whole(f) => &f.names,
        ReferenceData::Sorted(s) => &s.names,
    };
    let (features, names): (Vec<usize>, Vec<&String>) = reference_names
        .iter()
        .enumerate()
        .filter(|(_, n)| batch.names().contains(n))
        .unzip();
    if names.is_empty() {
        bail!(
            "{} and {} share no numeric feature",
            args.reference,
            args.batch
        );
    }
    let batch_at: Vec<usize> = names
        .iter()
        .filter_map(|n| batch.names().iter().position(|m| m == *n))
        .collect();
    if let ReferenceData::Sorted(_) = &reference {
        if args.reference == "-" {
            bail!(
                "a reference over --reference-memory is read again for the rows the forest \
                 samples, which standard input cannot be: give a file or more memory"
            );
        }
        bar.set_message(format!(
            "reading {} again for the forest's samples",
            args.reference
        ));
    } else {
        bar.set_message("fitting the Isolation Forest".to_string());
    }
    let params = IsolationForestParams {
        n_estimators: args.trees,
        max_samples: args.max_samples,
        seed: args.seed,
        contamination: args.contamination,
    };
    // A gap (in the reference or the batch) reads as the reference's
    // median of that feature.
    let (forest, fill) = mlsec_data::reference::rows::fit_forest(
        &reference,
        features,
        &params,
        &open_reference,
        &reference_options,
    )
    .map_err(anyhow::Error::msg)
    .with_context(|| args.reference.clone())?;
    let offset = args.threshold.unwrap_or(forest.offset);
    let mut scores_out = match &args.scores_out {
        Some(path) => Some(ScoresFile::create(path)?),
        None => None,
    };
    // Only the rows that can be reported are kept: the most anomalous
    // `top` (and the first 1,000 flagged, listed as evidence).
    let mut most_anomalous = MostAnomalous::new(args.top.max(MAX_LISTED_ROWS));
    let (mut rows, mut flagged) = (0usize, 0usize);
    while let Some(chunk) = batch.next() {
        let chunk = chunk?;
        let cols: Vec<&[f64]> = batch_at
            .iter()
            .map(|&j| chunk.columns[j].as_slice())
            .collect();
        let scores = forest
            .score_columns(&cols, &fill)
            .map_err(anyhow::Error::msg)?;
        if let Some(out) = &mut scores_out {
            out.write(&scores)?;
        }
        for (i, &s) in scores.iter().enumerate() {
            flagged += usize::from(s < offset);
            most_anomalous.push(rows + i, s);
        }
        rows += chunk.rows;
        let (done, total) = batch.progress();
        bar.set_message(format!(
            "scored {rows} rows, {}",
            read_so_far(done, total, &args.batch)
        ));
    }
    bar.finish_and_clear();
    if let Some(out) = scores_out {
        out.finish()?;
    }
    let ranked = most_anomalous.into_sorted();
    let listed: Vec<usize> = ranked
        .iter()
        .filter(|(_, s)| *s < offset)
        .take(MAX_LISTED_ROWS)
        .map(|(r, _)| *r)
        .collect();
    let mut findings = Vec::new();
    if let Some(&(first, score)) = ranked.first().filter(|_| flagged > 0) {
        findings.push(
            Finding::new(
                &mlsec_data::drift::OUTLIER_ROWS,
                Location::file(args.batch.clone()),
                format!(
                    "{flagged} of {rows} rows score below {offset:.4} (most anomalous: row {first} at {score:.4})"
                ),
            )
            .with_evidence("rows", listed)
            .with_evidence("offset", offset),
        );
    }
    let mut report = Report::new(
        output::tool(),
        "data outliers",
        OutlierResults {
            reference: args.reference.clone(),
            batch: args.batch.clone(),
            features: names.into_iter().cloned().collect(),
            rows,
            offset,
            outliers: flagged,
            top: ranked.into_iter().take(args.top).collect(),
        },
    );
    report.findings = findings;
    output::finish(global, report, 1, Vec::new())
}

/// How much of an input has been read, for a progress message (a pipe's
/// size is not known: then only its name).
fn read_so_far(done: u64, total: u64, input: &str) -> String {
    if total == 0 {
        format!("reading {input}")
    } else {
        format!("{:.0}% of {input} read", 100.0 * done as f64 / total as f64)
    }
}

/// Flagged rows listed as a finding's evidence, most anomalous first.
const MAX_LISTED_ROWS: usize = 1000;

/// The `keep` lowest-scoring rows seen so far (ties by row), in memory
/// proportional to `keep` whatever the number of rows pushed.
struct MostAnomalous {
    keep: usize,
    rows: Vec<(usize, f64)>,
}

impl MostAnomalous {
    fn new(keep: usize) -> Self {
        MostAnomalous {
            keep,
            rows: Vec::with_capacity(2 * keep + 1),
        }
    }

    fn order(a: &(usize, f64), b: &(usize, f64)) -> std::cmp::Ordering {
        a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))
    }

    fn push(&mut self, row: usize, score: f64) {
        self.rows.push((row, score));
        if self.rows.len() > 2 * self.keep {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        if self.rows.len() > self.keep {
            self.rows.select_nth_unstable_by(self.keep, Self::order);
            self.rows.truncate(self.keep);
        }
    }

    fn into_sorted(mut self) -> Vec<(usize, f64)> {
        self.shrink();
        self.rows.sort_by(Self::order);
        self.rows
    }
}

/// `--scores-out`: every row's score as a float64 NPY file, written while
/// the batch streams past and moved into place when complete.
struct ScoresFile {
    /// `None` once finished.
    writer: Option<mlsec_data::npy::F64Writer<std::fs::File>>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl ScoresFile {
    fn create(path: &std::path::Path) -> Result<Self> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let name = path.file_name().context("--scores-out must name a file")?;
        let tmp = dir.join(format!(".{}.mlsec-tmp", name.to_string_lossy()));
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(ScoresFile {
            writer: Some(
                mlsec_data::npy::F64Writer::new(file)
                    .with_context(|| format!("{}: cannot write", path.display()))?,
            ),
            tmp,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, scores: &[f64]) -> Result<()> {
        let Some(w) = &mut self.writer else {
            bail!("{}: already finished", self.path.display());
        };
        w.write(scores)
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }

    fn finish(mut self) -> Result<()> {
        let Some(w) = self.writer.take() else {
            bail!("{}: already finished", self.path.display());
        };
        w.finish()
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.path))
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }
}

impl Drop for ScoresFile {
    /// An error part-way leaves no half-written file behind.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::MostAnomalous;

    #[test]
    fn most_anomalous_keeps_what_a_full_sort_would_list() {
        let scores: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f64 / 10.0)
            .collect();
        let mut m = MostAnomalous::new(37);
        for (r, &s) in scores.iter().enumerate() {
            m.push(r, s);
        }
        let mut all: Vec<(usize, f64)> = scores.iter().copied().enumerate().collect();
        all.sort_by(MostAnomalous::order);
        all.truncate(37);
        assert_eq!(m.into_sorted(), all);
    }
}
