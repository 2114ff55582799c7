//! Statistics for the ingestion gate and the drift monitor: the two-sample
//! Kolmogorov–Smirnov test as scipy computes it, PSI, chi-square on label
//! counts, and kernel MMD with a permutation p-value.

pub mod drift;
pub mod iforest;
pub mod kolmogorov;
pub mod ks;
pub mod mmd;
pub mod ranked;
pub mod special;

pub use drift::{chisquare, psi_sorted};
pub use iforest::{IsolationForest, IsolationForestParams};
pub use ks::{ks_2samp, KsMethod, KsResult};
pub use mmd::{mmd_test, MmdResult};
pub use ranked::{compare, Comparison};

/// Runs `job` over `0..n` cut into one contiguous range per core and
/// concatenates the results in order.
pub fn on_threads<T: Send>(
    n: usize,
    job: impl Fn(std::ops::Range<usize>) -> Vec<T> + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let job = &job;
                s.spawn(move || job(start..(start + chunk).min(n)))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker threads do not panic"))
            .collect()
    })
}
