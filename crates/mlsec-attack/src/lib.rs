//! mlsec-attack: attack simulations, measured against the controls that
//! answer them. Today: data poisoning with ground truth, so that the
//! ingestion gate's precision and recall are measured, not assumed.

pub mod poison;
