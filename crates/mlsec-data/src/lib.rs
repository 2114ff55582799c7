//! mlsec-data: dataset I/O and the collection-stage controls.
//!
//! Loaders for IDX ([`idx`]), NumPy `.npy`/`.npz` ([`npy`]), CSV and Parquet
//! ([`table`]), image folders ([`image_folder`]) and the bundled MNIST sample
//! ([`mnist`]); every loader parses untrusted bytes with explicit limits and
//! reports problems as a one-line [`DataError`]. [`inspect`] describes a
//! dataset and raises the data-quality findings listed in [`RULES`].

pub mod array;
pub mod detect;
pub mod drift;
mod error;
pub mod frame;
pub mod gate;
pub mod holdout;
pub mod idx;
pub mod image_folder;
pub mod inspect;
pub mod leakage;
pub mod mnist;
pub mod npy;
pub mod reference;
pub mod stats;
pub mod stream;
pub mod table;

pub use array::{DType, NdArray};
pub use detect::Format;
pub use error::{DataError, ErrorKind, Result};
pub use inspect::{inspect, InspectOptions, InspectResults, Inspection, RULES};
