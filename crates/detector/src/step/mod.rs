//! The hourly step (`detector --once`): load the batch with its context, score steps and
//! rounds, record batches / batches_rounds / anomalies, fine-tune on the normal part of
//! the batch (plus replay), check that held-out normal loss did not rise, save.

mod cold;
mod explain;
mod record;
mod series;
mod step;

use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use crate::Result;
use crate::data;
use crate::model::DetectorConfig;
use crate::persistence::ModelDir;

/// Rounds scoring above `NEAR × threshold` are neither trained on nor used for the
/// threshold: close calls stay out of "normal".
pub const NEAR: f32 = 0.8;
/// Rounds on each side of an anomalous round that are not trained on either.
pub const NEIGHBOURS: usize = 2;
/// Held-out loss may rise by this fraction after fine-tuning before the update is
/// refused (noise between runs is well under it).
pub const POISON_TOLERANCE: f32 = 0.05;
/// Most normal round scores kept for the threshold (a week of minutely rounds).
pub const MAX_NORMAL_SCORES: usize = 10_080;
/// Most raw steps kept for replay, and for the held-out check (2 h of 12 samples/min).
pub const MAX_REPLAY_STEPS: usize = 1_440;
/// Share of the replay budget kept for the hardest normal segments (see
/// `series::cap_segments`).
pub const REPLAY_HARD_SHARE: f32 = 0.33;
/// Rounds per replay segment: small enough to choose among, and a daily job's few
/// minutes fit in one or two.
pub const REPLAY_CHUNK_ROUNDS: usize = 5;
/// Cold start: the ports and names of this much history (µs) are what exists, not new.
pub const SEEN_SEED: i64 = 3600 * crate::time::SECOND;
/// Cold-start split: blocks of this many rounds, every fifth held out.
pub(super) const BLOCK_ROUNDS: usize = 10;

/// What a run should do.
#[derive(Clone, Debug)]
pub struct Options {
    /// Score only: no training, nothing saved to the model directory.
    pub no_train: bool,
    /// History needed before scoring starts (seconds).
    pub min_history_secs: f64,
    /// Hyperparameters for a cold start (an existing model keeps its own).
    pub config: DetectorConfig,
    /// Threshold = quantile of normal round scores × this margin.
    pub threshold_margin: f32,
    /// Quantile for the threshold (≈ one false alarm a day of minutely rounds).
    pub threshold_quantile: f64,
    /// Score with the per-feature z-score baseline instead of the autoencoder (chosen
    /// at cold start and kept in the sidecar; the baseline is never fine-tuned).
    pub zscore_baseline: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            no_train: false,
            min_history_secs: 24.0 * 3600.0,
            config: DetectorConfig::new(),
            threshold_margin: 1.5,
            threshold_quantile: 1.0 - 1.0 / 1440.0,
            zscore_baseline: false,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No new closed rounds.
    NothingToDo,
    /// Not enough history yet: trained, nothing scored.
    WarmingUp,
    /// The batch was scored.
    Scored,
}

/// One anomalous round.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyReport {
    /// `rounds.id`.
    pub round_id: i64,
    /// Round start.
    pub round_start: String,
    /// Round score.
    pub score: f32,
    /// Threshold it exceeded.
    pub threshold: f32,
    /// The explanation stored in `anomalies.explanation`.
    pub explanation: serde_json::Value,
}

/// The result of [`run_once`].
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// What happened.
    pub status: Status,
    /// One line for humans.
    pub message: String,
    /// `batches.id` written (None when nothing was to do).
    pub batch_id: Option<i64>,
    /// Rounds in the batch.
    pub rounds: usize,
    /// Rounds that got a score.
    pub scored_rounds: usize,
    /// Anomalous rounds.
    pub anomalies: Vec<AnomalyReport>,
    /// Threshold used.
    pub threshold: Option<f32>,
    /// Rounds fine-tuned on.
    pub trained_rounds: usize,
    /// Held-out loss before fine-tuning.
    pub loss_before: Option<f32>,
    /// Held-out loss after fine-tuning.
    pub loss_after: Option<f32>,
    /// `accepted`, `rejected` (held-out loss rose), `skipped`.
    pub fine_tune: String,
    /// Hours of history when the run started.
    pub history_hours: f64,
    /// Model version after the run.
    pub model_version: Option<u64>,
}

impl Outcome {
    pub(super) fn nothing(msg: &str) -> Self {
        Outcome {
            status: Status::NothingToDo,
            message: msg.to_string(),
            batch_id: None,
            rounds: 0,
            scored_rounds: 0,
            anomalies: Vec::new(),
            threshold: None,
            trained_rounds: 0,
            loss_before: None,
            loss_after: None,
            fine_tune: "skipped".into(),
            history_hours: 0.0,
            model_version: None,
        }
    }
}

/// One detector step on `conn` with the model in `model_dir`.
pub fn run_once(conn: &mut Connection, model_dir: &Path, opts: &Options) -> Result<Outcome> {
    let dir = ModelDir::lock(model_dir)?;
    let loaded = dir.load()?;
    let batch = data::batch_rounds(conn)?;
    if batch.is_empty() {
        return Ok(Outcome::nothing(
            "nothing to do: no new closed rounds since the last evaluation",
        ));
    }
    match loaded {
        Some((sc, model)) if !sc.warming_up => {
            step::scored_step(conn, &dir, opts, sc, model, batch)
        }
        other => cold::cold_start(conn, &dir, opts, other.map(|(sc, _)| sc), batch),
    }
}
