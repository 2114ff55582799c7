//! `mlsec attack evasion`: adversarial examples and robustness numbers.

use crate::cli::{EvasionArgs, GlobalArgs, NormArg};
use crate::commands::model::{input_range, open};
use crate::commands::train::{progress_bar, set_threads};
use crate::output;
use anyhow::{anyhow, bail, Context, Result};
use mlsec_attack::evasion::{self, AttackKind, Evaluation, Norm, Params, Run, Target};
use mlsec_attack::rules::{evasion_severity, EVASION_SUCCEEDS};
use mlsec_core::{Finding, Location, Report, Style, TextBody};
use mlsec_data::{DType, NdArray};
use mlsec_model::data::{self, Part};
use mlsec_model::{Access, Batch, Dataset};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Serialize)]
struct EvasionView {
    model: String,
    data: String,
    evaluation: Evaluation,
    /// Robust accuracy at each --sweep budget.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sweep: Vec<SweepPoint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<String>,
}

#[derive(Serialize, Clone)]
struct SweepPoint {
    eps: f32,
    robust_accuracy: f64,
    success_rate: f64,
}

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

impl TextBody for EvasionView {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> std::io::Result<()> {
        let e = &self.evaluation;
        writeln!(out, "model     {}", self.model)?;
        writeln!(out, "data      {} ({} samples)", self.data, e.samples)?;
        writeln!(
            out,
            "attack    {} ({}), {} eps {}",
            e.attack.name(),
            e.threat_model,
            e.norm.name(),
            e.eps
        )?;
        writeln!(out, "clean     {}", pct(e.clean_accuracy))?;
        writeln!(
            out,
            "robust    {} ({} of {} attacked samples fooled: success rate {})",
            pct(e.robust_accuracy),
            e.successes,
            e.attacked,
            pct(e.success_rate)
        )?;
        let norm = |s: &Option<evasion::Summary>| {
            s.map_or("-".to_string(), |s| {
                format!("mean {:.4}, median {:.4}", s.mean, s.median)
            })
        };
        writeln!(out, "linf      {}", norm(&e.perturbation_linf))?;
        writeln!(out, "l2        {}", norm(&e.perturbation_l2))?;
        if e.attack.access() == Access::Query {
            writeln!(
                out,
                "queries   {} per success",
                e.queries_per_success.map_or("-".to_string(), |s| format!(
                    "mean {:.0}, median {:.0}",
                    s.mean, s.median
                ))
            )?;
        }
        writeln!(
            out,
            "time      {:.1} s ({:.1} samples/s)",
            e.seconds, e.samples_per_second
        )?;
        if !self.sweep.is_empty() {
            let rows: Vec<Vec<String>> = self
                .sweep
                .iter()
                .map(|p| {
                    vec![
                        format!("{}", p.eps),
                        pct(p.robust_accuracy),
                        pct(p.success_rate),
                    ]
                })
                .collect();
            mlsec_core::write_table(
                out,
                &["EPS", "ROBUST ACC", "SUCCESS"],
                &rows,
                &|_, _, c| c.to_string(),
                style,
            )?;
        }
        for f in &self.files {
            writeln!(out, "wrote     {f}")?;
        }
        Ok(())
    }
}

fn params(args: &EvasionArgs, kind: AttackKind, eps: f32) -> Params {
    let norm = match args.norm {
        NormArg::Linf => Norm::Linf,
        NormArg::L2 => Norm::L2,
    };
    let mut p = Params::new(kind, norm, eps);
    if let Some(s) = args.steps {
        p.steps = s.max(1);
    }
    p.step_size = args.step_size;
    p.restarts = args.restarts.max(1);
    p.seed = args.seed;
    p.max_queries = args.max_queries;
    p.confidence = args.confidence;
    p.early_stop = !args.no_early_stop;
    p
}

pub fn run(global: &GlobalArgs, args: &EvasionArgs) -> Result<u8> {
    set_threads(args.threads)?;
    let kind = AttackKind::parse(&args.attack).ok_or_else(|| {
        anyhow!(
            "unknown --attack {:?} (one of {})",
            args.attack,
            AttackKind::ALL.map(|k| k.name()).join(", ")
        )
    })?;
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let model = open(global, &args.model, input_range(&args.input_range)?)?;
    let data = data::load(&args.data, args.labels.as_deref(), Part::Test)?.head(args.n);
    let (lo, hi) = model.classifier().info().value_range;
    if let Some(v) = data.inputs.data.iter().find(|v| !(lo..=hi).contains(*v)) {
        bail!("the data has a value {v} outside the model's input range [{lo}, {hi}] (see --input-range)");
    }
    let target = if args.query_only || model.classifier().info().access == Access::Query {
        Target::QueryOnly(model.classifier())
    } else {
        Target::WhiteBox(model.differentiable())
    };
    let p = params(args, kind, args.eps);
    let total = (data.len() * p.steps * p.restarts) as u64;
    let bar = progress_bar(global, total);
    bar.set_message(format!("{} eps {}", kind.name(), args.eps));
    let tick = |k: u64| bar.inc(k);
    let run = evasion::evaluate(target, &data, &p, &tick)?;
    bar.finish_and_clear();

    let mut sweep = Vec::new();
    for &eps in &args.sweep {
        let bar = progress_bar(global, (data.len() * p.steps * p.restarts) as u64);
        bar.set_message(format!("sweep: {} eps {eps}", kind.name()));
        let tick = |k: u64| bar.inc(k);
        let r = evasion::evaluate(target, &data, &params(args, kind, eps), &tick)?;
        bar.finish_and_clear();
        sweep.push(SweepPoint {
            eps,
            robust_accuracy: r.evaluation.robust_accuracy,
            success_rate: r.evaluation.success_rate,
        });
    }
    if !sweep.is_empty() && !sweep.iter().any(|p| p.eps == args.eps) {
        // The main run is a point of the curve too.
        sweep.push(SweepPoint {
            eps: args.eps,
            robust_accuracy: run.evaluation.robust_accuracy,
            success_rate: run.evaluation.success_rate,
        });
    }
    sweep.sort_by(|a, b| a.eps.total_cmp(&b.eps));

    let files = match &args.out_dir {
        Some(dir) => write_outputs(dir, &data, &run, &sweep, &run.evaluation)?,
        None => vec![],
    };
    let e = &run.evaluation;
    let mut report = Report::new(
        output::tool(),
        format!("attack evasion --attack {} --eps {}", kind.name(), args.eps),
        EvasionView {
            model: args.model.display().to_string(),
            data: data.name.clone(),
            evaluation: e.clone(),
            sweep,
            files,
        },
    );
    if e.successes > 0 {
        let mut f = Finding::new(
            &EVASION_SUCCEEDS,
            Location::file(args.model.display().to_string()),
            format!(
                "{} ({}, eps {}): robust accuracy {} against clean {}; {} of {} correctly classified samples fooled",
                kind.name(),
                e.norm.name(),
                e.eps,
                pct(e.robust_accuracy),
                pct(e.clean_accuracy),
                e.successes,
                e.attacked
            ),
        )
        .with_severity(evasion_severity(e.success_rate))
        .with_evidence("attack", kind.name())
        .with_evidence("threat_model", e.threat_model)
        .with_evidence("norm", e.norm.name())
        .with_evidence("eps", f64::from(e.eps))
        .with_evidence("clean_accuracy", e.clean_accuracy)
        .with_evidence("robust_accuracy", e.robust_accuracy)
        .with_evidence("success_rate", e.success_rate);
        if let Some(q) = e.queries_per_success {
            f = f.with_evidence("median_queries_per_success", q.median);
        }
        report.findings.push(f);
    }
    let analysed = 1;
    output::finish(global, report, analysed, vec![])
}

fn write_npy(path: &Path, dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> Result<()> {
    let array = NdArray::new(dtype, shape, data).map_err(|e| anyhow!("{e}"))?;
    std::fs::write(path, mlsec_data::npy::write(&array))
        .with_context(|| format!("{}: cannot write", path.display()))
}

fn write_outputs(
    dir: &Path,
    data: &Dataset,
    run: &Run,
    sweep: &[SweepPoint],
    e: &Evaluation,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let adv = &run.outcome.adversarial;
    let mut files = Vec::new();
    let mut put = |name: &str, dtype: DType, shape: Vec<usize>, bytes: Vec<u8>| -> Result<()> {
        let path = dir.join(name);
        write_npy(&path, dtype, shape, bytes)?;
        files.push(path.display().to_string());
        Ok(())
    };
    put(
        "adversarial.npy",
        DType::F32,
        adv.shape.clone(),
        adv.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )?;
    let ints = |v: &mut dyn Iterator<Item = usize>| -> Vec<u8> {
        v.flat_map(|x| (x as i64).to_le_bytes()).collect()
    };
    let n = run.attacked.len();
    put(
        "indices.npy",
        DType::I64,
        vec![n],
        ints(&mut run.attacked.iter().copied()),
    )?;
    put(
        "labels.npy",
        DType::I64,
        vec![n],
        ints(&mut run.attacked.iter().map(|&i| data.labels[i])),
    )?;
    put(
        "predictions.npy",
        DType::I64,
        vec![n],
        ints(&mut run.predictions.iter().copied()),
    )?;
    put(
        "fooled.npy",
        DType::Bool,
        vec![n],
        run.fooled.iter().map(|&f| u8::from(f)).collect(),
    )?;
    if adv.shape.len() == 4 && n > 0 {
        let path = dir.join("grid.png");
        let originals = data.inputs.select(&run.attacked);
        write_grid(&path, &originals, adv, &run.fooled)?;
        files.push(path.display().to_string());
    }
    if !sweep.is_empty() {
        let path = dir.join("sweep.svg");
        let mut points: Vec<(f32, f64)> =
            sweep.iter().map(|p| (p.eps, p.robust_accuracy)).collect();
        if !points.iter().any(|p| p.0 == 0.0) {
            points.insert(0, (0.0, e.clean_accuracy));
        }
        let title = format!(
            "{} ({}): robust accuracy against eps",
            e.attack.name(),
            e.norm.name()
        );
        std::fs::write(&path, sweep_svg(&title, &points))
            .with_context(|| format!("{}: cannot write", path.display()))?;
        files.push(path.display().to_string());
    }
    Ok(files)
}

/// Three rows of up to ten samples: originals, perturbations (grey is zero,
/// scaled to the largest change) and adversarials; fooled samples first.
fn write_grid(path: &Path, originals: &Batch, adv: &Batch, fooled: &[bool]) -> Result<()> {
    let (c, h, w) = (adv.shape[1], adv.shape[2], adv.shape[3]);
    let mut order: Vec<usize> = (0..adv.len()).filter(|&j| fooled[j]).collect();
    order.extend((0..adv.len()).filter(|&j| !fooled[j]));
    order.truncate(10);
    const SCALE: usize = 3;
    const GAP: usize = 2;
    let cols = order.len();
    let (cell_w, cell_h) = (w * SCALE + GAP, h * SCALE + GAP);
    let mut img = image::RgbImage::from_pixel(
        (cols * cell_w) as u32,
        (3 * cell_h) as u32,
        image::Rgb([255, 255, 255]),
    );
    let pixel =
        |sample: &[f32], ch: usize, y: usize, x: usize| sample[(ch.min(c - 1) * h + y) * w + x];
    for (col, &j) in order.iter().enumerate() {
        let (o, a) = (originals.sample(j), adv.sample(j));
        let delta: Vec<f32> = a.iter().zip(o).map(|(a, o)| a - o).collect();
        let peak = delta.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        let centred: Vec<f32> = delta.iter().map(|d| 0.5 + d / (2.0 * peak)).collect();
        for (row, sample) in [o, centred.as_slice(), a].into_iter().enumerate() {
            for y in 0..h {
                for x in 0..w {
                    let rgb: [u8; 3] = std::array::from_fn(|k| {
                        (pixel(sample, if c == 3 { k } else { 0 }, y, x).clamp(0.0, 1.0) * 255.0)
                            .round() as u8
                    });
                    for dy in 0..SCALE {
                        for dx in 0..SCALE {
                            img.put_pixel(
                                (col * cell_w + x * SCALE + dx) as u32,
                                (row * cell_h + y * SCALE + dy) as u32,
                                image::Rgb(rgb),
                            );
                        }
                    }
                }
            }
        }
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// A line chart of robust accuracy (0–100%) against ε, as standalone SVG.
/// Written by hand: a plotting crate would add more build time than this
/// one chart is worth.
pub(crate) fn sweep_svg(title: &str, points: &[(f32, f64)]) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 400.0, 60.0, 50.0, 40.0, 20.0);
    let max_eps = points.iter().map(|p| p.0).fold(0.0f32, f32::max).max(1e-6) as f64;
    let x = |e: f32| left + (f64::from(e) / max_eps) * (w - left - right);
    let y = |a: f64| top + (1.0 - a) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        w / 2.0,
        xml_escape(title)
    );
    for k in 0..=5 {
        let a = k as f64 / 5.0;
        s += &format!(
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4:.0}%</text>\n",
            y(a),
            w - right,
            left - 6.0,
            y(a) + 4.0,
            a * 100.0
        );
    }
    for &(e, _) in points {
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x(e),
            h - bottom + 18.0,
            e
        );
    }
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">eps</text>\n<text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">robust accuracy</text>\n",
        (left + w - right) / 2.0,
        h - 10.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    let path: Vec<String> = points
        .iter()
        .map(|&(e, a)| format!("{:.1},{:.1}", x(e), y(a)))
        .collect();
    s += &format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n",
        path.join(" ")
    );
    for &(e, a) in points {
        s += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f77b4\"><title>eps {e}: {:.1}%</title></circle>\n", x(e), y(a), a * 100.0);
    }
    s + "</svg>\n"
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
