//! The cold start: train on all history, set the threshold on held-out rounds, score
//! the rounds not yet evaluated once (or report warming up).

use portwatch_cli::progress::{Bar, Unit};
use std::collections::{HashMap, HashSet};

use portwatch_features::{N_FEATURES, N_TIME, RoundKeys, Scaler, Seen, feature_names};
use portwatch_model::baseline::ZScore;
use portwatch_model::inference::{self, threshold_from};
use portwatch_model::persistence::{ModelDir, Sidecar, new_sidecar};
use portwatch_model::training::{self, Series, WindowRef};
use portwatch_model::{Autoencoder, DetectorConfig};
use portwatch_store::Db;
use portwatch_store::rounds::RoundInfo;
use portwatch_store::time::{format_micros, now_micros};
use portwatch_store::verdicts::{BatchStatus, Verdict};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::explain::explain;
use super::phases::{Phase, PhaseClock};
use super::record::{Conclusion, record_and_save};
use super::rounds::{build_rounds, usual_spacing};
use super::series::{
    Loaded, Split, cap_segments, history_hours, load_rounds, raw_segments, round_scores, series_of,
    split_history, subsample,
};
use super::sustained::sustained_rounds;
use super::triage::triage_rounds;
use super::{
    MAX_REPLAY_STEPS, Options, Outcome, Phases, REPLAY_CHUNK_ROUNDS, REPLAY_HARD_SHARE,
    RESIDUAL_WINDOWS, SEEN_SEED, Scoring, Status,
};
use crate::{Error, Result};

pub(super) fn cold_start(
    db: &mut Db,
    dir: &ModelDir,
    opts: &Options,
    previous: Option<Sidecar>,
    batch: Vec<RoundInfo>,
    clock: &mut PhaseClock,
) -> Result<Outcome> {
    let started = now_micros();
    let history = db.history_rounds()?;
    let spacing = usual_spacing(&history);
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
    let mut seen = seed_seen(db, &history)?;
    let l = load_rounds(db, history, spacing, &mut seen)?;
    // Every program that talked in the history is known, with the ports it talked to,
    // every port's busiest client, and every client network (each port's ceiling of new
    // ones counted against the networks of the rounds before): a daily job of the
    // first day exists as much as its first hour's.
    for keys in &l.keys {
        seen.add_programs(&keys.programs);
        seen.add_repeats(&keys.repeats);
        seen.add_services(&keys.services);
        seen.add_clients(keys, true);
        seen.add_uploads(&keys.uploads);
    }
    clock.enter(Phase::Train);
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
    let mut sc = new_sidecar(cfg.clone(), scaler, &format_micros(now_micros()));
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
    if !warming && !opts.no_train && windows.is_empty() {
        // Enough hours but no stretch without a gap as long as a window: waiting would
        // not help, so say so instead of reporting "warming up" forever.
        return Err(Error::Invalid(format!(
            "{hours:.1} h of history hold no gap-free run of {} samples to train on \
             (window {} in the model config)",
            cfg.window, cfg.window
        )));
    }
    let trained = if !opts.no_train && !windows.is_empty() {
        let bar = Bar::new(opts.progress, "train", cfg.epochs as u64, Unit::Count);
        bar.set_message("epochs");
        let trained = training::train(
            training::fresh_model(&cfg, N_FEATURES, N_TIME),
            &train_series,
            &windows,
            &cfg,
            cfg.epochs,
            cfg.max_windows_per_epoch,
            cfg.seed,
            &mut |epoch, loss| {
                bar.set_position(epoch as u64);
                bar.set_message(&format!("epochs, loss {loss:.4}"));
            },
        )?;
        bar.finish();
        Some(trained)
    } else {
        None
    };
    let n_train_rounds: usize = split.train.iter().map(|r| r.len()).sum();
    sc.seen = seen;
    sc.rounds_trained = n_train_rounds as u64;
    let cold = Cold {
        started,
        hours,
        batch: &batch,
        train_series: &train_series,
        windows: &windows,
        cfg: &cfg,
    };
    match trained {
        Some((model, loss)) if !warming => {
            scored_cold_start(db, dir, opts, &cold, &l, &split, sc, model, loss, clock)
        }
        trained => warming_up(db, dir, opts, &cold, sc, trained, clock),
    }
}

/// What both endings of a cold start need to know.
struct Cold<'a> {
    started: i64,
    hours: f64,
    batch: &'a [RoundInfo],
    train_series: &'a Series,
    windows: &'a [WindowRef],
    cfg: &'a DetectorConfig,
}

/// The first hour of history defines what exists: without this, every port and name
/// would be "new" at its first sample (a host resolves most of its names within an
/// hour) and the first rounds would be flagged, or teach that "new" is normal.
fn seed_seen(db: &Db, history: &[RoundInfo]) -> Result<Seen> {
    let mut seen = Seen::default();
    if let Some(first) = history.first() {
        let n = history
            .iter()
            .take_while(|r| r.start < first.start + SEEN_SEED)
            .count();
        let seed = &history[..n];
        // Its client networks are known without raising any port's ceiling of new
        // ones: every client is new in the first hour.
        learn_keys(db, seed, |_, keys| {
            seen.add_keys(&RoundKeys {
                clients: Vec::new(),
                received: Vec::new(),
                ..keys.clone()
            });
            seen.add_clients(keys, false);
        })?;
    }
    Ok(seen)
}

/// Rounds a model from before connection ceilings and services were tracked learns
/// them from, at its first fine-tune (a day of rounds a minute apart).
const UNTRACKED_SEED_ROUNDS: usize = 1440;

/// Seeds what a model saved before they were tracked lacks — connection ceilings,
/// programs' services, client networks and what they sent, upload ceilings, programs'
/// peers — from the rounds before `first`, so that an upgrade neither stays blind until
/// the next cold start nor alarms on the first busy client or the first backup. Once,
/// at the first fine-tune.
pub(super) fn seed_untracked(db: &Db, first: &RoundInfo, seen: &mut Seen) -> Result<()> {
    let (repeats, services, clients, uploads, peers, resolvers) = (
        seen.repeats.is_none(),
        seen.services.is_none(),
        // A model from before what clients sent was tracked learns its clients again.
        !seen.tracks_received(),
        seen.uploads.is_none(),
        seen.peers.is_none(),
        seen.resolvers.is_none(),
    );
    if !repeats && !services && !clients && !uploads && !peers && !resolvers {
        return Ok(());
    }
    let rounds = db.rounds_before(first, UNTRACKED_SEED_ROUNDS)?;
    if repeats {
        seen.add_repeats(&[]);
    }
    if clients {
        seen.clients = None;
    }
    if services {
        seen.add_services(&[]);
    }
    if uploads {
        seen.add_uploads(&[]);
    }
    if peers {
        seen.add_peers(&[], 0);
    }
    if resolvers {
        seen.add_resolvers(&[]);
    }
    let seed_end = rounds.first().map_or(0, |r| r.start + SEEN_SEED);
    learn_keys(db, &rounds, |round, keys| {
        if repeats {
            seen.add_repeats(&keys.repeats);
        }
        if services {
            seen.add_services(&keys.services);
        }
        if uploads {
            seen.add_uploads(&keys.uploads);
        }
        if peers {
            seen.add_peers(&keys.peers, keys.start);
        }
        if resolvers {
            seen.add_resolvers(&keys.resolvers);
        }
        if clients {
            // As at a cold start: the first hour's networks seed the set.
            seen.add_clients(keys, round.start >= seed_end);
        }
    })
}

/// Loads each round's keys on a scratch seen-set (what is new in them is not the
/// question) and hands them to `learn`.
fn learn_keys(
    db: &Db,
    rounds: &[RoundInfo],
    mut learn: impl FnMut(&RoundInfo, &RoundKeys),
) -> Result<()> {
    let mut scratch = Seen::default();
    build_rounds(
        db,
        rounds,
        &mut scratch,
        &HashMap::new(),
        false,
        |i, _, keys| {
            learn(&rounds[i], &keys);
        },
    )?;
    Ok(())
}

/// Not enough history yet: keep what was trained (if anything) and score nothing.
fn warming_up(
    db: &mut Db,
    dir: &ModelDir,
    opts: &Options,
    c: &Cold<'_>,
    mut sc: Sidecar,
    trained: Option<(Autoencoder, f32)>,
    clock: &mut PhaseClock,
) -> Result<Outcome> {
    let loss = trained.as_ref().map(|(_, l)| *l);
    if let Some((m, _)) = &trained {
        sc.residual_scale = inference::residual_scale(
            &m.valid(),
            c.train_series,
            &subsample(c.windows, RESIDUAL_WINDOWS),
            c.cfg.window,
        )?;
        sc.warming_up = true;
    }
    clock.enter(Phase::Save);
    let saved = record_and_save(
        db,
        dir,
        &Conclusion {
            started: c.started,
            alg: "cnn-lstm-ae",
            batch: c.batch,
            windows: c.windows.len(),
            status: BatchStatus::WarmingUp,
            threshold: None,
            loss_before: None,
            loss_after: loss,
            verdicts: &[],
            anomalies: &[],
            version: None,
            incidents: &[],
        },
        trained.as_ref().map(|(m, _)| (m, &mut sc)),
    )?;
    let (batch_id, version) = (saved.batch_id, saved.version);
    Ok(Outcome {
        status: Status::WarmingUp,
        message: format!(
            "warming up: {:.1} h of history, scoring starts at {:.1} h",
            c.hours,
            opts.min_history_secs / 3600.0
        ),
        batch_id: Some(batch_id),
        rounds: c.batch.len(),
        scored_rounds: 0,
        anomalies: Vec::new(),
        incidents: Vec::new(),
        threshold: None,
        trained_rounds: 0,
        loss_before: None,
        loss_after: loss,
        fine_tune: "skipped".into(),
        history_hours: c.hours,
        model_version: version,
        phases: Phases::default(),
    })
}

/// Enough history: set the threshold on held-out rounds, keep replay and held-out
/// samples, score the whole history once and record the rounds not yet evaluated.
#[allow(clippy::too_many_arguments)]
fn scored_cold_start(
    db: &mut Db,
    dir: &ModelDir,
    opts: &Options,
    c: &Cold<'_>,
    l: &Loaded,
    split: &Split,
    mut sc: Sidecar,
    model: Autoencoder,
    loss: f32,
    clock: &mut PhaseClock,
) -> Result<Outcome> {
    let cfg = c.cfg;
    let valid = model.valid();
    sc.residual_scale = inference::residual_scale(
        &valid,
        c.train_series,
        &subsample(c.windows, RESIDUAL_WINDOWS),
        cfg.window,
    )?;
    sc.zscore = opts
        .zscore_baseline
        .then(|| ZScore::fit(c.train_series, cfg.score_top_k).scale);
    // Threshold from held-out rounds (or, with too little history to hold any out, from
    // the training rounds themselves: optimistic, hence the margin).
    let hold_runs = if split.holdout.is_empty() {
        split.train.clone()
    } else {
        split.holdout.clone()
    };
    let (alg, threshold, hold_scores, scores, series, owner, steps) = {
        let scoring = Scoring::new(&valid, &sc);
        let scorer = scoring.scorer();
        let (hold_series, hold_owner) = series_of(l, &hold_runs, &sc.scaler);
        let hold_steps = scorer.score_steps(&hold_series)?;
        let hold_scores: Vec<f32> = round_scores(l.rounds.len(), &hold_owner, &hold_steps)
            .into_iter()
            .flatten()
            .collect();
        let threshold = threshold_from(&hold_scores, sc.threshold_quantile, sc.threshold_margin)
            .ok_or_else(|| Error::Invalid("no held-out round could be scored".into()))?;
        // Score the whole history once.
        clock.enter(Phase::Score);
        let (series, owner) = series_of(l, &l.segments, &sc.scaler);
        let steps = scorer.score_steps(&series)?;
        let scores = round_scores(l.rounds.len(), &owner, &steps);
        let alg = scorer.name().to_string();
        (alg, threshold, hold_scores, scores, series, owner, steps)
    };
    sc.threshold = Some(threshold);
    sc.normal_scores = hold_scores;
    sc.warming_up = false;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    sc.holdout = cap_segments(
        raw_segments(l, &hold_runs, usize::MAX, None),
        MAX_REPLAY_STEPS,
        0.0,
        &mut rng,
    );
    sc.replay = cap_segments(
        raw_segments(
            l,
            &split.train,
            REPLAY_CHUNK_ROUNDS,
            Some((&scores, threshold)),
        ),
        MAX_REPLAY_STEPS,
        REPLAY_HARD_SHARE,
        &mut rng,
    );
    let in_batch: HashSet<i64> = c.batch.iter().map(|r| r.id).collect();
    let trained_set: HashSet<usize> = split.train.iter().flat_map(|r| r.clone()).collect();
    let batch_idx: Vec<usize> = (0..l.rounds.len())
        .filter(|&ri| in_batch.contains(&l.rounds[ri].id))
        .collect();
    let over: Vec<bool> = scores
        .iter()
        .map(|s| s.is_some_and(|s| s > threshold))
        .collect();
    let (shifted, walk) = sustained_rounds(
        db,
        &sc.normal_scores,
        l,
        &batch_idx,
        &scores,
        &over,
        threshold,
    )?;
    clock.enter(Phase::Incidents);
    let names = feature_names();
    let mut anomalies = Vec::new();
    let mut explained = Vec::new();
    for &ri in batch_idx.iter().filter(|&&ri| over[ri] || shifted[ri]) {
        let e = explain(db, l, ri, &owner, &steps, &sc.scaler, &names, threshold)?;
        if over[ri] {
            anomalies.push(e.clone());
        }
        explained.push(e);
    }
    let triaged = triage_rounds(
        db, l, &batch_idx, &scores, walk, threshold, &explained, &sc.seen, opts,
    )?;
    let verdicts: Vec<Verdict> = batch_idx
        .iter()
        .map(|&ri| {
            let anomalous = scores[ri].is_some_and(|s| s > threshold);
            let t = triaged.triage[ri];
            let trained = trained_set.contains(&ri) && (!anomalous || t.normal) && !t.held;
            Verdict {
                round_id: l.rounds[ri].id,
                score: scores[ri],
                anomalous,
                // Held-out rounds measure the model: they are never learnt later either.
                trainable: trained,
                trained,
            }
        })
        .collect();
    clock.enter(Phase::Save);
    let saved = record_and_save(
        db,
        dir,
        &Conclusion {
            started: c.started,
            alg: &alg,
            batch: c.batch,
            windows: series.windows(cfg.window, 1).len(),
            status: BatchStatus::Scored,
            threshold: Some(threshold),
            loss_before: None,
            loss_after: Some(loss),
            verdicts: &verdicts,
            anomalies: &anomalies,
            version: None,
            incidents: &triaged.writes,
        },
        Some((&model, &mut sc)),
    )?;
    let incidents = triaged.events(&saved.incident_ids);
    let (batch_id, version) = (saved.batch_id, saved.version);
    let scored = verdicts.iter().filter(|r| r.score.is_some()).count();
    let trained = verdicts.iter().filter(|r| r.trained).count();
    Ok(Outcome {
        status: Status::Scored,
        message: format!(
            "trained on {:.1} h of history; scored {scored} rounds, {} anomalous (threshold {threshold:.3})",
            c.hours,
            anomalies.len()
        ),
        batch_id: Some(batch_id),
        rounds: c.batch.len(),
        scored_rounds: scored,
        anomalies,
        incidents,
        threshold: Some(threshold),
        trained_rounds: trained,
        loss_before: None,
        loss_after: Some(loss),
        fine_tune: "cold start".into(),
        history_hours: c.hours,
        model_version: version,
        phases: Phases::default(),
    })
}
