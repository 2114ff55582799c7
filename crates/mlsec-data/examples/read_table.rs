//! Times mlsec's table readers on the files given, for
//! `benches/stats_peers.py` (which times pandas on the same files in the
//! same run). Prints one JSON object per file: the median seconds of
//! `table::read_table` (typed columns, as `data inspect` and the gate read
//! them) and of `Frame::load` (numeric features, as drift and the screens
//! read them).
//!
//! cargo run --release -p mlsec-data --example read_table -- FILE... [--runs N]

use std::time::Instant;

mod timing;
use timing::{median, take_runs};

fn main() {
    // As the CLI does.
    mlsec_core::memory::keep_freed_memory();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let runs = take_runs(&mut args);
    for path in &args {
        let mut table_s = Vec::new();
        let mut frame_s = Vec::new();
        let (mut rows, mut columns) = (0, 0);
        for _ in 0..runs {
            let t = Instant::now();
            let table = mlsec_data::table::read_table(std::path::Path::new(path))
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            table_s.push(t.elapsed().as_secs_f64());
            (rows, columns) = (table.rows, table.columns.len());
            drop(table);
            let t = Instant::now();
            let frame = mlsec_data::frame::Frame::load(path, None)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            frame_s.push(t.elapsed().as_secs_f64());
            drop(frame);
        }
        println!(
            "{}",
            serde_json::json!({
                "file": path,
                "rows": rows,
                "columns": columns,
                "table_s": median(table_s),
                "frame_s": median(frame_s),
            })
        );
    }
}
