//! # portwatch-model
//!
//! Everything the `detector` binary does, as a library: reading rounds from SQLite
//! ([`data`]), features per scanner sample ([`features`]), the Burn CNN-LSTM autoencoder
//! ([`model`]), training ([`training`]), scoring ([`inference`]), persistence in the
//! model directory ([`persistence`]), the hourly batch step ([`detect`]), and the
//! report and plot ([`report`]). A per-feature z-score scorer ([`baseline`]) sits behind
//! the same [`inference::Scorer`] interface for comparison.

pub mod baseline;
pub mod data;
pub mod detect;
mod error;
pub mod features;
pub mod inference;
pub mod model;
pub mod persistence;
pub mod report;
pub mod time;
pub mod training;

pub use detect::{Options, Outcome, Status, run_once};
pub use error::{Error, Result};
pub use model::{Autoencoder, DetectorConfig};
