//! Times mlsec's KS screen and Isolation Forest on arrays already in
//! memory, for `benches/stats_peers.py`, which times scipy and
//! scikit-learn the same way in the same run (the like-for-like figure;
//! the script also times the CLI end to end, reading included).
//!
//! - `ks REF BATCH`: `drift::monitor` with one window holding the whole
//!   batch and MMD off, which is what `mlsec data drift --window <rows>
//!   --no-mmd` computes once both files are read;
//! - `if REF BATCH`: `IsolationForest::fit_columns` on the reference and
//!   `score_columns` on the batch, with `mlsec data outliers`' defaults.
//!
//! Prints one JSON object: the median seconds over `--runs` (default 5)
//! and what was computed, so that the script can check it against scipy.
//!
//! cargo run --release -p mlsec-data --example screens -- ks|if REF BATCH [--runs N]

use mlsec_data::drift::{monitor, DriftOptions};
use mlsec_data::frame::Frame;
use mlsec_data::stats::{IsolationForest, IsolationForestParams};
use std::time::Instant;

mod timing;
use timing::{median, take_runs};

fn main() {
    // As the CLI does.
    mlsec_core::memory::keep_freed_memory();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let runs = take_runs(&mut args);
    let [what, reference, batch] = args.as_slice() else {
        eprintln!("usage: screens ks|if REF BATCH [--runs N]");
        std::process::exit(2);
    };
    let load = |p: &str| Frame::load(p, None).unwrap_or_else(|e| panic!("{p}: {e}"));
    let (reference, batch) = (load(reference), load(batch));
    let mut seconds = Vec::with_capacity(runs);
    let result = match what.as_str() {
        "ks" => {
            let opts = DriftOptions {
                window: batch.rows,
                mmd: false,
                ..DriftOptions::default()
            };
            let mut windows = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                windows = monitor(&reference, &batch, &opts).expect("drift");
                seconds.push(t.elapsed().as_secs_f64());
            }
            let ks: Vec<[f64; 2]> = windows[0]
                .features
                .iter()
                .map(|f| [f.ks.statistic, f.ks.pvalue])
                .collect();
            serde_json::json!({ "ks": ks })
        }
        "if" => {
            let columns: Vec<&[f64]> = reference.columns.iter().map(Vec::as_slice).collect();
            let rows: Vec<&[f64]> = batch.columns.iter().map(Vec::as_slice).collect();
            let fill = vec![0.0; columns.len()];
            let params = IsolationForestParams {
                seed: 20261122,
                ..IsolationForestParams::default()
            };
            let mut scores = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                let forest = IsolationForest::fit_columns(&columns, &fill, &params).expect("fit");
                scores = forest.score_columns(&rows, &fill).expect("score");
                seconds.push(t.elapsed().as_secs_f64());
            }
            // The script checks these against the CLI's `--scores-out`.
            serde_json::json!({ "scores": scores.len(), "score_sum": scores.iter().sum::<f64>() })
        }
        other => panic!("unknown screen {other} (ks or if)"),
    };
    let mut out = result;
    out["seconds"] = serde_json::json!(median(seconds));
    println!("{out}");
}
