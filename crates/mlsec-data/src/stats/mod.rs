//! Statistics for the ingestion gate and the drift monitor: the two-sample
//! Kolmogorov–Smirnov test as scipy computes it, PSI, chi-square on label
//! counts, and kernel MMD with a permutation p-value.

pub mod drift;
pub mod iforest;
pub mod kolmogorov;
pub mod ks;
pub mod mmd;
pub mod ranked;
pub mod sorted;
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

/// Runs `job` on every index of `0..n`, each core taking the next index
/// as it finishes one, and returns the results in index order. For a few
/// coarse items of uneven cost (parts of a file, columns): a slow item or
/// a busy core no longer leaves the other cores idle, as a fixed split of
/// the items does.
pub fn on_threads_each<T: Send>(n: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n);
    if threads <= 1 {
        return (0..n).map(job).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (job, next) = (&job, &next);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        mine.push((i, job(i)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker threads do not panic"))
            .collect()
    });
    done.sort_unstable_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod thread_tests {
    use super::*;

    #[test]
    fn every_index_runs_once_and_results_keep_their_order() {
        for n in [0, 1, 2, 3, 17, 100] {
            let got = on_threads_each(n, |i| {
                // Uneven work, so that the claims interleave.
                std::thread::sleep(std::time::Duration::from_micros((i % 3) as u64 * 50));
                i * 10
            });
            assert_eq!(got, (0..n).map(|i| i * 10).collect::<Vec<_>>());
        }
    }
}
