//! in-toto pipeline provenance (links, layouts, artifact rules), compatible
//! with in-toto 3.x: `mlsec provenance run` writes the links
//! `in-toto-run` writes, `mlsec provenance verify` gives in-toto-verify's
//! verdicts.

pub mod fnmatch;
pub mod metadata;
pub mod rules;
pub mod run;
pub mod time;
pub mod verify;

pub use metadata::{Envelope, Key, Layout, Link};
pub use verify::{verify, Failure, Outcome, VerifyOptions};
