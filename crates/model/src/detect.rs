//! The hourly step (`detector --once`): load the batch with its context, score steps and
//! rounds, record batches / batches_rounds / anomalies, fine-tune on the normal part of
//! the batch (plus replay), check that held-out normal loss did not rise, save.

use std::collections::HashSet;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;
use serde_json::json;

use crate::baseline::ZScore;
use crate::data::{self, RoundInfo};
use crate::features::{
    Carry, N_FEATURES, N_TIME, RoundKeys, SCAN_HORIZON, Scaler, Seen, Step, feature_names,
};
use crate::inference::{self, ModelScorer, Scorer, StepScores, threshold_from};
use crate::model::{Autoencoder, DetectorConfig};
use crate::persistence::{ModelDir, RawSegment, Sidecar, new_sidecar};
use crate::time::{SECOND, format_micros};
use burn::module::Module;

use crate::training::{self, Series};
use crate::{Error, Result};

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
    fn nothing(msg: &str) -> Self {
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

/// Rounds loaded into steps, in time order, with gap-free segments.
struct Loaded {
    rounds: Vec<RoundInfo>,
    steps: Vec<Vec<Step>>,
    keys: Vec<RoundKeys>,
    segments: Vec<std::ops::Range<usize>>,
}

fn load_rounds(
    conn: &Connection,
    rounds: Vec<RoundInfo>,
    spacing: i64,
    seen: &mut Seen,
) -> Result<Loaded> {
    let mut steps = Vec::with_capacity(rounds.len());
    let mut keys = Vec::with_capacity(rounds.len());
    let mut carry = Carry::default();
    for r in &rounds {
        let (s, k) = data::load_round(conn, r, seen, &mut carry)?;
        steps.push(s);
        keys.push(k);
    }
    let segments = data::split_segments(&rounds, spacing);
    Ok(Loaded {
        rounds,
        steps,
        keys,
        segments,
    })
}

fn raw_row(step: &Step, out: &mut Vec<f32>) {
    out.extend_from_slice(&step.raw);
    out.extend_from_slice(&step.time);
}

fn scale_row(scaler: &Scaler, raw: &[f32], out: &mut Vec<f32>) {
    scaler.transform_into(&raw[..N_FEATURES], out);
    out.extend_from_slice(&raw[N_FEATURES..]);
}

const WIDTH: usize = N_FEATURES + N_TIME;

/// Scales runs of rounds into a series; returns it and, per series step, the round index.
fn series_of(l: &Loaded, runs: &[std::ops::Range<usize>], scaler: &Scaler) -> (Series, Vec<usize>) {
    let mut s = Series::new(N_FEATURES, WIDTH);
    let mut owner = Vec::new();
    let mut raw = Vec::with_capacity(WIDTH);
    for run in runs {
        let mut seg = Vec::new();
        for ri in run.clone() {
            for st in &l.steps[ri] {
                raw.clear();
                raw_row(st, &mut raw);
                scale_row(scaler, &raw, &mut seg);
                owner.push(ri);
            }
        }
        s.segments.push(seg);
    }
    (s, owner)
}

fn raw_segments(l: &Loaded, runs: &[std::ops::Range<usize>]) -> Vec<RawSegment> {
    runs.iter()
        .map(|run| {
            let mut rows = Vec::new();
            for ri in run.clone() {
                for st in &l.steps[ri] {
                    raw_row(st, &mut rows);
                }
            }
            RawSegment { rows }
        })
        .filter(|r| !r.rows.is_empty())
        .collect()
}

fn series_of_raw(segs: &[RawSegment], scaler: &Scaler) -> Series {
    let mut s = Series::new(N_FEATURES, WIDTH);
    for seg in segs {
        let mut out = Vec::with_capacity(seg.rows.len());
        for row in seg.rows.chunks(WIDTH) {
            if row.len() == WIDTH {
                scale_row(scaler, row, &mut out);
            }
        }
        s.segments.push(out);
    }
    s
}

/// Keeps at most `max_steps` steps of `segs`, taking whole segments spread evenly
/// (segments longer than the budget are cut).
fn cap_segments(
    mut segs: Vec<RawSegment>,
    max_steps: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<RawSegment> {
    segs.shuffle(rng);
    let mut out = Vec::new();
    let mut left = max_steps;
    for mut s in segs {
        if left == 0 {
            break;
        }
        let n = s.rows.len() / WIDTH;
        if n > left {
            s.rows.truncate(left * WIDTH);
        }
        left -= s.rows.len() / WIDTH;
        out.push(s);
    }
    out
}

/// Round scores: max over each round's scored steps.
fn round_scores(n_rounds: usize, owner: &[usize], steps: &StepScores) -> Vec<Option<f32>> {
    let mut out: Vec<Option<f32>> = vec![None; n_rounds];
    for (g, s) in steps.score.iter().enumerate() {
        if let (Some(s), Some(&ri)) = (s, owner.get(g)) {
            out[ri] = Some(out[ri].map_or(*s, |m: f32| m.max(*s)));
        }
    }
    out
}

/// Runs of consecutive rounds (within segments) satisfying `keep`.
fn runs_where(
    segments: &[std::ops::Range<usize>],
    keep: impl Fn(usize) -> bool,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    for seg in segments {
        let mut begin = None;
        for i in seg.clone() {
            match (keep(i), begin) {
                (true, None) => begin = Some(i),
                (false, Some(b)) => {
                    out.push(b..i);
                    begin = None;
                }
                _ => {}
            }
        }
        if let Some(b) = begin {
            out.push(b..seg.end);
        }
    }
    out
}

/// Every k-th window, so that at most `max` remain.
fn subsample(w: &[crate::training::WindowRef], max: usize) -> Vec<crate::training::WindowRef> {
    let k = w.len().div_ceil(max.max(1)).max(1);
    w.iter().step_by(k).copied().collect()
}

/// Hours covered by rounds: from the first start to one usual spacing after the last
/// start (a day of minutely rounds is 24 h, not 23 h 59 min 55 s).
fn history_hours(rounds: &[RoundInfo], spacing: i64) -> f64 {
    match (rounds.first(), rounds.last()) {
        (Some(a), Some(b)) => {
            (b.start.max(b.end - spacing) + spacing - a.start) as f64 / (3600.0 * SECOND as f64)
        }
        _ => 0.0,
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
        Some((sc, model)) if !sc.warming_up => scored_step(conn, &dir, opts, sc, model, batch),
        other => cold_start(conn, &dir, opts, other.map(|(sc, _)| sc), batch),
    }
}

struct Split {
    train: Vec<std::ops::Range<usize>>,
    holdout: Vec<std::ops::Range<usize>>,
}

/// Blocks of [`BLOCK_ROUNDS`] rounds inside segments; every fifth block is held out
/// (so held-out rounds cover every hour of the day), unless history is too short.
fn split_history(l: &Loaded) -> Split {
    let mut train = Vec::new();
    let mut holdout = Vec::new();
    let enough = l.rounds.len() >= BLOCK_ROUNDS * 5;
    let mut block = 0usize;
    for seg in &l.segments {
        let mut i = seg.start;
        while i < seg.end {
            let j = (i + BLOCK_ROUNDS).min(seg.end);
            if enough && block % 5 == 4 {
                holdout.push(i..j);
            } else if let Some(last) = train
                .last_mut()
                .filter(|r: &&mut std::ops::Range<usize>| r.end == i)
            {
                last.end = j;
            } else {
                train.push(i..j);
            }
            block += 1;
            i = j;
        }
    }
    Split { train, holdout }
}

fn cold_start(
    conn: &mut Connection,
    dir: &ModelDir,
    opts: &Options,
    previous: Option<Sidecar>,
    batch: Vec<RoundInfo>,
) -> Result<Outcome> {
    let started = format_micros(portwatch_store::time::now_micros());
    let history = data::history_rounds(conn)?;
    let spacing = data::usual_spacing(&history);
    let hours = history_hours(&history, spacing);
    let warming = hours * 3600.0 + 1.0 < opts.min_history_secs;
    if opts.no_train && (previous.is_none() || !warming) {
        return Err(Error::NoModel(format!(
            "no trained model in {} yet: run without --no-train to train one",
            dir.path().display()
        )));
    }
    let cfg = previous
        .as_ref()
        .map_or_else(|| opts.config.clone(), |p| p.config.clone());
    // The first round defines what exists: without this, every port and name would be
    // "new" at the first step of history and teach the model that this is normal.
    let mut seen = Seen::default();
    if let Some(first) = history.first() {
        let (_, keys) = data::load_round(conn, first, &mut Seen::default(), &mut Carry::default())?;
        seen.add_keys(&keys);
    }
    let l = load_rounds(conn, history, spacing, &mut seen)?;
    let split = split_history(&l);
    let scaler = Scaler::fit(
        split
            .train
            .iter()
            .flat_map(|r| r.clone())
            .flat_map(|ri| l.steps[ri].iter())
            .map(|s| s.raw.as_slice()),
    );
    let (train_series, _) = series_of(&l, &split.train, &scaler);
    let windows = train_series.windows(cfg.window, cfg.train_stride);
    let mut sc = new_sidecar(cfg.clone(), scaler.clone());
    sc.round_spacing_us = spacing;
    sc.scan_interval = l
        .rounds
        .iter()
        .filter_map(|r| r.scan_interval)
        .next()
        .unwrap_or(5.0);
    sc.threshold_margin = opts.threshold_margin;
    sc.threshold_quantile = opts.threshold_quantile;
    if let Some(p) = &previous {
        sc.created_at = p.created_at.clone();
        sc.model_version = p.model_version;
    }
    let mut loss = None;
    let mut model = None;
    if !opts.no_train && !windows.is_empty() {
        let fresh = training::fresh_model(&cfg, N_FEATURES, N_TIME);
        let (m, last) = training::train(
            fresh,
            &train_series,
            &windows,
            &cfg,
            cfg.epochs,
            cfg.max_windows_per_epoch,
            cfg.seed,
        )?;
        loss = Some(last);
        model = Some(m);
    }
    let n_train_rounds: usize = split.train.iter().map(|r| r.len()).sum();
    if warming || model.is_none() {
        let msg = format!(
            "warming up: {hours:.1} h of history, scoring starts at {:.1} h",
            opts.min_history_secs / 3600.0
        );
        if let Some(m) = &model {
            sc.residual_scale = inference::residual_scale(
                &m.valid(),
                &train_series,
                &subsample(&windows, 3000),
                cfg.window,
            )?;
            sc.seen = seen;
            sc.rounds_trained = n_train_rounds as u64;
            sc.warming_up = true;
            dir.save(m, &mut sc)?;
        }
        let batch_id = write_batch(
            conn,
            &BatchRow {
                started,
                alg: "cnn-lstm-ae",
                first: batch.first().map(|r| r.id),
                last: batch.last().map(|r| r.id),
                windows: windows.len(),
                anomalies: 0,
                threshold: None,
                loss_before: None,
                loss_after: loss,
                model_version: model.as_ref().map(|_| sc.model_version),
                status: "warming up",
            },
            &[],
            &[],
        )?;
        return Ok(Outcome {
            status: Status::WarmingUp,
            message: msg,
            batch_id: Some(batch_id),
            rounds: batch.len(),
            scored_rounds: 0,
            anomalies: Vec::new(),
            threshold: None,
            trained_rounds: 0,
            loss_before: None,
            loss_after: loss,
            fine_tune: "skipped".into(),
            history_hours: hours,
            model_version: model.as_ref().map(|_| sc.model_version),
        });
    }
    let model = model.ok_or_else(|| Error::Invalid("no model".into()))?;
    let valid = model.valid();
    sc.residual_scale = inference::residual_scale(
        &valid,
        &train_series,
        &subsample(&windows, 3000),
        cfg.window,
    )?;
    let zscore = opts.zscore_baseline.then(|| ZScore::fit(&train_series));
    sc.zscore = zscore.as_ref().map(|z| z.scale.clone());
    let model_scorer = ModelScorer {
        model: &valid,
        residual_scale: &sc.residual_scale,
        window: cfg.window,
        top_k: cfg.score_top_k,
    };
    let scorer: &dyn Scorer = match &zscore {
        Some(z) => z,
        None => &model_scorer,
    };
    // Threshold from held-out rounds (or, with too little history to hold any out, from
    // the training rounds themselves: optimistic, hence the margin).
    let hold_runs = if split.holdout.is_empty() {
        split.train.clone()
    } else {
        split.holdout.clone()
    };
    let (hold_series, hold_owner) = series_of(&l, &hold_runs, &scaler);
    let hold_steps = scorer.score_steps(&hold_series)?;
    let hold_scores: Vec<f32> = round_scores(l.rounds.len(), &hold_owner, &hold_steps)
        .into_iter()
        .flatten()
        .collect();
    let threshold = threshold_from(&hold_scores, sc.threshold_quantile, sc.threshold_margin)
        .ok_or_else(|| Error::Invalid("no held-out round could be scored".into()))?;
    sc.threshold = Some(threshold);
    sc.normal_scores = hold_scores;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    sc.holdout = cap_segments(raw_segments(&l, &hold_runs), MAX_REPLAY_STEPS, &mut rng);
    sc.replay = cap_segments(raw_segments(&l, &split.train), MAX_REPLAY_STEPS, &mut rng);
    sc.seen = seen;
    sc.rounds_trained = n_train_rounds as u64;
    sc.warming_up = false;
    // Score the whole history once and record the rounds not yet evaluated.
    let all_runs = l.segments.clone();
    let (series, owner) = series_of(&l, &all_runs, &scaler);
    let steps = scorer.score_steps(&series)?;
    let scores = round_scores(l.rounds.len(), &owner, &steps);
    let in_batch: HashSet<i64> = batch.iter().map(|r| r.id).collect();
    let trained_set: HashSet<usize> = split.train.iter().flat_map(|r| r.clone()).collect();
    let names = feature_names();
    let mut rows = Vec::new();
    let mut anomalies = Vec::new();
    for (ri, r) in l.rounds.iter().enumerate() {
        if !in_batch.contains(&r.id) {
            continue;
        }
        let score = scores[ri];
        let anomalous = score.is_some_and(|s| s > threshold);
        rows.push(RoundRow {
            round_id: r.id,
            score,
            anomalous,
            trained: trained_set.contains(&ri) && !anomalous,
        });
        if anomalous {
            anomalies.push(explain(
                conn, &l, ri, &owner, &steps, &scaler, &names, threshold,
            )?);
        }
    }
    sc.model_version += 1;
    let batch_id = write_batch(
        conn,
        &BatchRow {
            started,
            alg: scorer.name(),
            first: batch.first().map(|r| r.id),
            last: batch.last().map(|r| r.id),
            windows: series.windows(cfg.window, 1).len(),
            anomalies: anomalies.len(),
            threshold: Some(threshold),
            loss_before: None,
            loss_after: loss,
            model_version: Some(sc.model_version),
            status: "scored",
        },
        &rows,
        &anomalies,
    )?;
    sc.model_version -= 1;
    dir.save(&model, &mut sc)?;
    let scored = rows.iter().filter(|r| r.score.is_some()).count();
    let trained = rows.iter().filter(|r| r.trained).count();
    Ok(Outcome {
        status: Status::Scored,
        message: format!(
            "trained on {hours:.1} h of history; scored {scored} rounds, {} anomalous (threshold {threshold:.3})",
            anomalies.len()
        ),
        batch_id: Some(batch_id),
        rounds: batch.len(),
        scored_rounds: scored,
        anomalies,
        threshold: Some(threshold),
        trained_rounds: trained,
        loss_before: None,
        loss_after: loss,
        fine_tune: "cold start".into(),
        history_hours: hours,
        model_version: Some(sc.model_version),
    })
}

fn scored_step(
    conn: &mut Connection,
    dir: &ModelDir,
    opts: &Options,
    mut sc: Sidecar,
    model: Autoencoder,
    batch: Vec<RoundInfo>,
) -> Result<Outcome> {
    let started = format_micros(portwatch_store::time::now_micros());
    let cfg = sc.config.clone();
    let threshold = sc.threshold.ok_or_else(|| Error::CorruptModel {
        path: dir.path().join(crate::persistence::SIDECAR),
        reason: "a trained model without a threshold".into(),
    })?;
    // Context: enough earlier rounds for the first windows, and for the scan tracker's
    // horizon, so the batch's first rounds get the same features as any other.
    let steps_per_round = (60.0 / sc.scan_interval.max(0.5)).round().max(1.0) as usize;
    let horizon_rounds = (SCAN_HORIZON as f64 / sc.round_spacing_us.max(1) as f64).ceil() as usize;
    let ctx_n = cfg
        .window
        .saturating_sub(1)
        .div_ceil(steps_per_round)
        .max(horizon_rounds);
    let mut rounds = match batch.first() {
        Some(first) if ctx_n > 0 => data::context_rounds(conn, first, ctx_n)?,
        _ => Vec::new(),
    };
    let n_ctx = rounds.len();
    rounds.extend(batch.iter().cloned());
    let mut working_seen = sc.seen.clone();
    let l = load_rounds(conn, rounds, sc.round_spacing_us, &mut working_seen)?;
    let valid = model.valid();
    let zscore = sc.zscore.clone().map(|scale| ZScore { scale });
    let model_scorer = ModelScorer {
        model: &valid,
        residual_scale: &sc.residual_scale,
        window: cfg.window,
        top_k: cfg.score_top_k,
    };
    let scorer: &dyn Scorer = match &zscore {
        Some(z) => z,
        None => &model_scorer,
    };
    let (series, owner) = series_of(&l, &l.segments, &sc.scaler);
    let steps = scorer.score_steps(&series)?;
    let scores = round_scores(l.rounds.len(), &owner, &steps);
    let n = l.rounds.len();
    let anomalous: Vec<bool> = (0..n)
        .map(|i| i >= n_ctx && scores[i].is_some_and(|s| s > threshold))
        .collect();
    let mut excluded = vec![false; n];
    for i in (0..n).filter(|&i| anomalous[i]) {
        {
            for e in excluded
                .iter_mut()
                .take((i + NEIGHBOURS + 1).min(n))
                .skip(i.saturating_sub(NEIGHBOURS))
            {
                *e = true;
            }
        }
    }
    let trainable: Vec<bool> = (0..n)
        .map(|i| i >= n_ctx && !excluded[i] && scores[i].is_some_and(|s| s <= NEAR * threshold))
        .collect();
    let names = feature_names();
    let mut anomalies = Vec::new();
    for i in (n_ctx..n).filter(|&i| anomalous[i]) {
        {
            anomalies.push(explain(
                conn, &l, i, &owner, &steps, &sc.scaler, &names, threshold,
            )?);
        }
    }
    // Fine-tune on the normal part, with replay; refuse the update if held-out loss rises.
    let mut loss_before = None;
    let mut loss_after = None;
    let mut fine_tune = "skipped".to_string();
    let mut new_model = None;
    let mut trained_rounds = 0;
    if !opts.no_train && zscore.is_none() {
        let runs = runs_where(&l.segments, |i| trainable[i]);
        let (mut train_series, _) = series_of(&l, &runs, &sc.scaler);
        let replay = series_of_raw(&sc.replay, &sc.scaler);
        train_series.segments.extend(replay.segments);
        let windows = train_series.windows(cfg.window, cfg.train_stride);
        let batch_windows = series_of(&l, &runs, &sc.scaler)
            .0
            .windows(cfg.window, cfg.train_stride)
            .len();
        if batch_windows > 0 {
            let hold = series_of_raw(&sc.holdout, &sc.scaler);
            let hold_w = hold.windows(cfg.window, 1);
            let before = inference::mse(&valid, &hold, &hold_w, cfg.window)?;
            let (m, _) = training::train(
                model.clone(),
                &train_series,
                &windows,
                &cfg,
                cfg.fine_tune_epochs,
                usize::MAX,
                cfg.seed ^ sc.model_version,
            )?;
            let after = inference::mse(&m.valid(), &hold, &hold_w, cfg.window)?;
            loss_before = Some(before);
            loss_after = Some(after);
            if hold_w.is_empty() || after <= before * (1.0 + POISON_TOLERANCE) + 1e-6 {
                fine_tune = "accepted".into();
                trained_rounds = (0..n).filter(|&i| trainable[i]).count();
                new_model = Some((m, runs));
            } else {
                fine_tune = "rejected".into();
            }
        }
    }
    let trained_flag = |i: usize| new_model.is_some() && trainable[i];
    let rows: Vec<RoundRow> = (n_ctx..n)
        .map(|i| RoundRow {
            round_id: l.rounds[i].id,
            score: scores[i],
            anomalous: anomalous[i],
            trained: trained_flag(i),
        })
        .collect();
    let version = if new_model.is_some() {
        sc.model_version + 1
    } else {
        sc.model_version
    };
    let batch_id = write_batch(
        conn,
        &BatchRow {
            started,
            alg: scorer.name(),
            first: batch.first().map(|r| r.id),
            last: batch.last().map(|r| r.id),
            windows: series.windows(cfg.window, 1).len(),
            anomalies: anomalies.len(),
            threshold: Some(threshold),
            loss_before,
            loss_after,
            model_version: Some(version),
            status: "scored",
        },
        &rows,
        &anomalies,
    )?;
    if let Some((m, runs)) = new_model {
        // Normal rounds' scores (made before training on them) feed the threshold.
        for i in 0..n {
            if trainable[i]
                && let Some(s) = scores[i]
            {
                sc.normal_scores.push(s);
            }
        }
        let excess = sc.normal_scores.len().saturating_sub(MAX_NORMAL_SCORES);
        sc.normal_scores.drain(..excess);
        if let Some(t) = threshold_from(
            &sc.normal_scores,
            sc.threshold_quantile,
            sc.threshold_margin,
        ) {
            sc.threshold = Some(t);
        }
        for (keys, _) in l.keys.iter().zip(&trainable).filter(|(_, t)| **t) {
            sc.seen.add_keys(keys);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ sc.model_version.wrapping_mul(0x9e37));
        let mut pool = std::mem::take(&mut sc.replay);
        pool.extend(raw_segments(&l, &runs));
        sc.replay = cap_segments(pool, MAX_REPLAY_STEPS, &mut rng);
        sc.rounds_trained += trained_rounds as u64;
        dir.save(&m, &mut sc)?;
    }
    let scored = rows.iter().filter(|r| r.score.is_some()).count();
    Ok(Outcome {
        status: Status::Scored,
        message: format!(
            "scored {scored} of {} rounds, {} anomalous (threshold {threshold:.3}); fine-tuning {fine_tune} on {trained_rounds} rounds",
            batch.len(),
            anomalies.len()
        ),
        batch_id: Some(batch_id),
        rounds: batch.len(),
        scored_rounds: scored,
        anomalies,
        threshold: Some(threshold),
        trained_rounds,
        loss_before,
        loss_after,
        fine_tune,
        history_hours: 0.0,
        model_version: Some(version),
    })
}

struct RoundRow {
    round_id: i64,
    score: Option<f32>,
    anomalous: bool,
    trained: bool,
}

struct BatchRow<'a> {
    started: String,
    alg: &'a str,
    first: Option<i64>,
    last: Option<i64>,
    windows: usize,
    anomalies: usize,
    threshold: Option<f32>,
    loss_before: Option<f32>,
    loss_after: Option<f32>,
    model_version: Option<u64>,
    status: &'a str,
}

/// Writes one evaluation in a short `BEGIN IMMEDIATE` transaction (the collector may be
/// writing: the busy timeout waits for it instead of failing).
fn write_batch(
    conn: &mut Connection,
    b: &BatchRow<'_>,
    rows: &[RoundRow],
    anomalies: &[AnomalyReport],
) -> Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let finished = format_micros(portwatch_store::time::now_micros());
    tx.execute(
        "INSERT INTO batches (timestamp, alg, finished_at, first_round_id, last_round_id, windows, \
         anomalies, threshold, loss_before, loss_after, model_version, status) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            b.started,
            b.alg,
            finished,
            b.first,
            b.last,
            b.windows as i64,
            b.anomalies as i64,
            b.threshold.map(f64::from),
            b.loss_before.map(f64::from),
            b.loss_after.map(f64::from),
            b.model_version.map(|v| v.to_string()),
            b.status,
        ],
    )?;
    let id = tx.last_insert_rowid();
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO batches_rounds (batch_id, round_id, score, anomalous, trained) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for r in rows {
            st.execute(params![
                id,
                r.round_id,
                r.score.map(f64::from),
                r.anomalous,
                r.trained
            ])?;
        }
        let mut st = tx.prepare_cached(
            "INSERT INTO anomalies (batch_id, round_id, window_start, window_end, score, threshold, explanation) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for a in anomalies {
            let ws = a
                .explanation
                .get("window_start")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let we = a
                .explanation
                .get("window_end")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            st.execute(params![
                id,
                a.round_id,
                ws,
                we,
                f64::from(a.score),
                f64::from(a.threshold),
                a.explanation.to_string()
            ])?;
        }
    }
    tx.commit()?;
    Ok(id)
}

/// Builds the explanation of an anomalous round: its worst step, the features with the
/// largest share of that step's error, and the ports, processes and names behind them.
#[allow(clippy::too_many_arguments)]
fn explain(
    conn: &Connection,
    l: &Loaded,
    ri: usize,
    owner: &[usize],
    steps: &StepScores,
    scaler: &Scaler,
    names: &[String],
    threshold: f32,
) -> Result<AnomalyReport> {
    let r = &l.rounds[ri];
    let idx: Vec<usize> = (0..owner.len()).filter(|&g| owner[g] == ri).collect();
    let worst = idx
        .iter()
        .copied()
        .max_by(|&a, &b| {
            steps.score[a]
                .unwrap_or(f32::MIN)
                .total_cmp(&steps.score[b].unwrap_or(f32::MIN))
        })
        .unwrap_or(0);
    let k = idx.iter().position(|&g| g == worst).unwrap_or(0);
    let step = l.steps[ri].get(k);
    let score = steps.score.get(worst).copied().flatten().unwrap_or(0.0);
    let fe = steps.feature_error.get(worst).cloned().unwrap_or_default();
    let total: f32 = fe.iter().sum::<f32>().max(1e-12);
    let mut order: Vec<usize> = (0..fe.len()).collect();
    order.sort_by(|&a, &b| fe[b].total_cmp(&fe[a]));
    let top: Vec<serde_json::Value> = order
        .iter()
        .take(5)
        .filter(|&&f| fe[f] / total >= 0.02)
        .map(|&f| {
            let value = step.map_or(0.0, |s| s.raw[f]);
            let typical = scaler.median_count(f);
            json!({
                "feature": names[f],
                "share": (fe[f] / total * 1000.0).round() / 1000.0,
                "value": (value * 100.0).round() / 100.0,
                "typical": (typical * 100.0).round() / 100.0,
            })
        })
        .collect();
    let ts = step.map_or(r.start, |s| s.ts);
    let next = l.steps[ri]
        .get(k + 1)
        .map_or(r.end, |s| s.ts)
        .max(ts + SECOND);
    let (lo, hi) = (format_micros(ts), format_micros(next));
    let mut destinations = Vec::new();
    let mut sources = Vec::new();
    let mut dns = Vec::new();
    if let (Some(a), Some(b)) = (r.first_packet_id, r.last_packet_id) {
        let mut st = conn.prepare_cached(
            "SELECT dst_addr, dest_port, process, count(*) AS c, sum(length) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
             GROUP BY dst_addr, dest_port, process ORDER BY c DESC LIMIT 5",
        )?;
        let mut rows = st.query(params![a, b, lo, hi])?;
        while let Some(row) = rows.next()? {
            destinations.push(json!({
                "addr": row.get::<_, Option<String>>(0)?,
                "port": row.get::<_, Option<i64>>(1)?,
                "process": row.get::<_, Option<String>>(2)?,
                "packets": row.get::<_, i64>(3)?,
                "bytes": row.get::<_, Option<i64>>(4)?,
            }));
        }
        let mut st = conn.prepare_cached(
            "SELECT src_addr, count(*) AS c, count(DISTINCT dest_port) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
             GROUP BY src_addr ORDER BY c DESC LIMIT 3",
        )?;
        let mut rows = st.query(params![a, b, lo, hi])?;
        while let Some(row) = rows.next()? {
            sources.push(json!({
                "addr": row.get::<_, Option<String>>(0)?,
                "packets": row.get::<_, i64>(1)?,
                "distinct_dest_ports": row.get::<_, i64>(2)?,
            }));
        }
        let mut st = conn.prepare_cached(
            "SELECT qry_name, count(*) AS c FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 AND qry_name IS NOT NULL \
             GROUP BY qry_name ORDER BY length(qry_name) DESC, c DESC LIMIT 5",
        )?;
        let mut rows = st.query(params![a, b, lo, hi])?;
        while let Some(row) = rows.next()? {
            dns.push(json!({"name": row.get::<_, String>(0)?, "queries": row.get::<_, i64>(1)?}));
        }
    }
    let mut new_ports = Vec::new();
    let mut new_names = Vec::new();
    for s in &l.steps[ri] {
        for (proto, port, process) in &s.evidence.new_ports {
            new_ports.push(json!({"protocol": proto, "port": port, "process": process, "at": format_micros(s.ts)}));
        }
        for n in &s.evidence.new_names {
            if new_names.len() < 10 && !new_names.contains(n) {
                new_names.push(n.clone());
            }
        }
    }
    let explanation = json!({
        "round_score": (score * 1000.0).round() / 1000.0,
        "threshold": (threshold * 1000.0).round() / 1000.0,
        "worst_step": format_micros(ts),
        "window_start": lo,
        "window_end": hi,
        "top_features": top,
        "new_listening_ports": new_ports,
        "new_dns_names": new_names,
        "top_destinations": destinations,
        "top_sources": sources,
        "longest_dns_names": dns,
    });
    Ok(AnomalyReport {
        round_id: r.id,
        round_start: format_micros(r.start),
        score,
        threshold,
        explanation,
    })
}
