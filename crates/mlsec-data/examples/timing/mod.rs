//! What the timing examples share: `--runs N` and the median.

/// Removes `--runs N` from `args` and returns N (5 when absent).
pub fn take_runs(args: &mut Vec<String>) -> usize {
    let Some(i) = args.iter().position(|a| a == "--runs") else {
        return 5;
    };
    let runs = args
        .get(i + 1)
        .and_then(|n| n.parse().ok())
        .expect("--runs takes a number");
    args.drain(i..i + 2);
    runs
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
