//! mlsec-scan: static, default-deny analysis of model artifacts.
//!
//! Nothing is ever imported, unpickled or executed: pickles are run on a
//! symbolic machine ([`pickle`]), archives are read by a tolerant, bounded
//! reader ([`zipread`]), and every global is judged by a [`policy::Policy`]
//! that allows only constructors of plain data.

pub(crate) mod compression;
pub mod convert;
pub mod formats;
pub mod pickle;
pub mod policy;
pub mod rules;
mod scan;
pub mod sevenzip;
pub mod torchscript;
pub mod zipread;

pub use policy::{Policy, PolicyError, Verdict};
pub use rules::RULES;
pub use scan::{looks_like_pickle, scan_bytes, FileScan, Kind, ScanOptions};
