//! mlsec-defend: controls that make a model harder to attack. Today the
//! adversarial-training objectives, plugged into mlsec-model's training
//! loop: Madry et al.'s PGD adversarial training and Zhang et al.'s TRADES.

pub mod adversarial;

pub use adversarial::{AdversarialConfig, PgdAt, Trades};
