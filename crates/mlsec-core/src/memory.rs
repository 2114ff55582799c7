//! Process-wide memory settings for a batch tool.

/// Keeps memory the process frees for its own reuse instead of handing it
/// back to the kernel at once.
///
/// glibc serves a large allocation with its own `mmap` and unmaps it when
/// freed, so a reader that allocates a fresh buffer per batch (Parquet
/// decoding does, per column and per 64k rows) faults every page of every
/// batch in again: reading a 166 MB Parquet reference spent more time in
/// the kernel than in user space. Serving allocations up to 32 MiB from the
/// heap and trimming it only above 1 GiB cut the page faults of a KS drift
/// run by 30 % and its system time by a quarter (docs/BENCHMARKS.md). The
/// memory is still released at exit; peak RSS grew by 20 MB there.
///
/// Other C libraries and platforms keep their defaults.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is called
    // before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
