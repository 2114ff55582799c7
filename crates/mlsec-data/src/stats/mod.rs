//! Statistics for the ingestion gate and the drift monitor: the two-sample
//! Kolmogorov–Smirnov test as scipy computes it, PSI, chi-square on label
//! counts, and kernel MMD with a permutation p-value.

pub mod drift;
pub mod iforest;
pub mod kolmogorov;
pub mod ks;
pub mod mmd;
pub mod special;

pub use drift::{chisquare, psi_sorted};
pub use iforest::{IsolationForest, IsolationForestParams};
pub use ks::{ks_2samp, KsMethod, KsResult};
pub use mmd::{mmd_test, MmdResult};
