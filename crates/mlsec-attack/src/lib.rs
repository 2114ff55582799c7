//! mlsec-attack: attack simulations, measured against the controls that
//! answer them: evasion attacks on trained classifiers (white-box,
//! score-based and decision-based), and data poisoning with ground truth so
//! that the ingestion gate's precision and recall are measured, not assumed.

pub mod evasion;
pub mod poison;
pub mod rules;

pub use rules::RULES;
