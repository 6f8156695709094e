//! One detector step (`detector --once`): load the rounds no evaluation has seen with
//! their context, score steps and rounds, record the verdicts, fine-tune on the normal
//! part (plus replay) unless held-out normal loss would rise, save.
//!
//! - [`rounds`]: spacing, gap-free segments, one round loaded into steps;
//! - `series`: loaded rounds as scaled series, the cold-start split, replay;
//! - `cold`: no trained model yet — train on all history, set the threshold;
//! - `scored`: a trained model — score the batch, fine-tune;
//! - `verdict`: which rounds are anomalous and which may be trained on (pure);
//! - `explain`: what an anomalous round's explanation says;
//! - `record`: the ending both share — verdicts recorded, then the model saved;
//! - [`phases`]: where the run's time went.

mod cold;
mod explain;
mod mask;
pub mod phases;
mod record;
pub mod rounds;
mod scored;
mod series;
mod sustained;
mod triage;
mod verdict;

pub use phases::Phases;
pub use triage::IncidentEvent;

use phases::PhaseClock;

use std::path::Path;

use portwatch_cli::lock::Lock;
use portwatch_model::inference::{ModelScorer, Scorer};
use portwatch_model::persistence::{ModelDir, Sidecar};
use portwatch_model::{Autoencoder, DetectorConfig, baseline::ZScore};
use portwatch_store::Db;
use serde::Serialize;

use crate::Result;

/// Rounds scoring above `NEAR × threshold` are neither trained on nor used for the
/// threshold: close calls stay out of "normal".
pub const NEAR: f32 = 0.8;
/// Rounds on each side of an anomalous round that are not trained on either.
pub const NEIGHBOURS: usize = 2;
/// Held-out loss may rise by this fraction after fine-tuning before the update is
/// refused (noise between runs is well under it).
pub const POISON_TOLERANCE: f32 = 0.05;
/// Fine-tunes refused in a row after which the next is kept whatever its held-out loss,
/// and that loss becomes the reference: a normal that kept moving away from the
/// held-out windows for three hours is the normal (a poisoning that patient is what
/// `--adapt-after` accepts too). Without it, simulated weeks learnt nothing for their
/// last 17–22 hours once a deploy had been accepted: servers 923 and 925 with the
/// held-out windows replaced by the accepted change's, workstations 906 and 926 with
/// those added to the cold start's. With it, each of eight weeks had at most 3 in a
/// row, and the same incidents either way.
pub const MAX_REFUSED_IN_A_ROW: usize = 3;
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
pub const SEEN_SEED: i64 = 3600 * portwatch_features::SECOND;
/// Training windows sampled for residual scales.
const RESIDUAL_WINDOWS: usize = 3000;
/// Cold-start split: blocks of this many rounds, every fifth held out.
const BLOCK_ROUNDS: usize = 10;

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
    /// Evaluated rounds without its cause after which an incident closes.
    pub close_after: i64,
    /// Presence after which an incident nobody acknowledged is accepted as drift
    /// (None: never).
    pub adapt_after: Option<std::time::Duration>,
    /// Fine-tune only when the newest round is this far past the latest round
    /// trained on (scoring runs every minute; learning hourly is enough).
    pub train_every: std::time::Duration,
    /// Fine-tune now, whatever `train_every` says.
    pub train_now: bool,
    /// Draw progress bars (a cold start's training) on stderr.
    pub progress: bool,
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
            close_after: 5,
            adapt_after: Some(std::time::Duration::from_secs(24 * 3600)),
            train_every: std::time::Duration::from_secs(3600),
            train_now: false,
            progress: false,
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
    /// What this run did to incidents: opened, updated, closed, adapted.
    pub incidents: Vec<IncidentEvent>,
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
    /// Seconds spent in each phase.
    pub phases: Phases,
}

impl Outcome {
    /// Whether this run opened an incident (exit code 1).
    pub fn opened_incident(&self) -> bool {
        self.incidents
            .iter()
            .any(|e| e.event == crate::incidents::tracker::EventKind::Opened)
    }

    /// An outcome of a run that found nothing to do.
    pub fn nothing(msg: &str) -> Self {
        Outcome {
            status: Status::NothingToDo,
            message: msg.to_string(),
            batch_id: None,
            rounds: 0,
            scored_rounds: 0,
            anomalies: Vec::new(),
            incidents: Vec::new(),
            threshold: None,
            trained_rounds: 0,
            loss_before: None,
            loss_after: None,
            fine_tune: "skipped".into(),
            history_hours: 0.0,
            model_version: None,
            phases: Phases::default(),
        }
    }
}

/// One detector step on `db` with the model in `model_dir` (created 0700 if missing),
/// holding the directory's lock for the whole run.
pub fn run_once(db: &mut Db, model_dir: &Path, opts: &Options) -> Result<Outcome> {
    portwatch_cli::dirs::prepare(model_dir)?;
    let _lock = Lock::directory(model_dir, "detector")?;
    let dir = ModelDir::new(model_dir);
    let mut clock = PhaseClock::start();
    let loaded = dir.load()?;
    let batch = db.unevaluated_rounds()?;
    if batch.is_empty() {
        return Ok(Outcome::nothing(
            "nothing to do: no new closed rounds since the last evaluation",
        ));
    }
    let mut out = match loaded {
        Some((sc, model)) if !sc.warming_up => {
            scored::scored_step(db, &dir, opts, sc, model, batch, &mut clock)
        }
        other => cold::cold_start(db, &dir, opts, other.map(|(sc, _)| sc), batch, &mut clock),
    }?;
    out.phases = clock.finish();
    Ok(out)
}

/// The scorer a model directory's sidecar asks for: the autoencoder, or the z-score
/// baseline when it was chosen at cold start.
enum Scoring<'a> {
    Model(ModelScorer<'a>),
    ZScore(ZScore),
}

impl<'a> Scoring<'a> {
    fn new(model: &'a Autoencoder, sc: &'a Sidecar) -> Self {
        let cfg = &sc.config;
        match &sc.zscore {
            Some(scale) => Scoring::ZScore(ZScore {
                scale: scale.clone(),
                top_k: cfg.score_top_k,
            }),
            None => Scoring::Model(ModelScorer {
                model,
                residual_scale: &sc.residual_scale,
                window: cfg.window,
                top_k: cfg.score_top_k,
            }),
        }
    }

    fn scorer(&self) -> &dyn Scorer {
        match self {
            Scoring::Model(m) => m,
            Scoring::ZScore(z) => z,
        }
    }

    fn is_model(&self) -> bool {
        matches!(self, Scoring::Model(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_detector_is_locked_out() {
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("p.db")).unwrap();
        let model = tmp.path().join("model");
        std::fs::create_dir(&model).unwrap();
        let _held = Lock::directory(&model, "detector").unwrap();
        let err = run_once(&mut db, &model, &Options::default()).unwrap_err();
        assert!(err.is_locked(), "{err}");
        assert!(
            err.to_string().starts_with("another detector (pid "),
            "{err}"
        );
    }
}
