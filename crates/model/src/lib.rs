//! # portwatch-model
//!
//! The neural network and what it needs to live on disk, and nothing else: the Burn
//! CNN-LSTM autoencoder and its [`DetectorConfig`] ([`model`]), training on gap-free
//! series of scaled steps ([`training`]), scoring steps by reconstruction error
//! ([`inference`]), a per-feature z-score scorer behind the same
//! [`inference::Scorer`] interface for comparison ([`baseline`]), and the model
//! directory with its weights and sidecar ([`persistence`]).
//!
//! It reads no database and takes no lock: the detector feeds it series built by
//! `portwatch-features` and holds the model directory's lock while it works.

pub mod baseline;
mod error;
pub mod inference;
mod lstm;
pub mod model;
pub mod persistence;
pub mod training;

pub use error::{Error, Result};
pub use model::{Autoencoder, DetectorConfig};
