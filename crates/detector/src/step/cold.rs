//! The cold start: train on all history, set the threshold on held-out rounds, score
//! the rounds not yet evaluated once (or report warming up).

use std::collections::HashSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rusqlite::Connection;

use crate::baseline::ZScore;
use crate::data::{self, RoundInfo};
use crate::features::{Carry, N_FEATURES, N_TIME, Scaler, Seen, feature_names};
use crate::inference::{self, ModelScorer, Scorer, threshold_from};
use crate::persistence::{ModelDir, Sidecar, new_sidecar};
use crate::time::format_micros;
use burn::module::Module;

use crate::training;
use crate::{Error, Result};

use super::*;
use super::{explain::*, record::*, series::*};

pub(super) fn cold_start(
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
    // The first hour of history defines what exists: without this, every port and name
    // would be "new" at its first sample (a host resolves most of its names within an
    // hour) and the first rounds would be flagged, or teach that "new" is normal.
    let mut seen = Seen::default();
    if let Some(first) = history.first() {
        let (mut scratch, mut carry) = (Seen::default(), Carry::default());
        for r in history
            .iter()
            .take_while(|r| r.start < first.start + SEEN_SEED)
        {
            let (_, keys) = data::load_round(conn, r, &mut scratch, &mut carry)?;
            seen.add_keys(&keys);
        }
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
    if !warming && !opts.no_train && windows.is_empty() {
        // Enough hours but no stretch without a gap as long as a window: waiting would
        // not help, so say so instead of reporting "warming up" forever.
        return Err(Error::Invalid(format!(
            "{hours:.1} h of history hold no gap-free run of {} samples to train on \
             (window {} in the model config)",
            cfg.window, cfg.window
        )));
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
                batch: &batch,
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
    let zscore = opts
        .zscore_baseline
        .then(|| ZScore::fit(&train_series, cfg.score_top_k));
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
    sc.seen = seen;
    sc.rounds_trained = n_train_rounds as u64;
    sc.warming_up = false;
    // Score the whole history once and record the rounds not yet evaluated.
    let all_runs = l.segments.clone();
    let (series, owner) = series_of(&l, &all_runs, &scaler);
    let steps = scorer.score_steps(&series)?;
    let scores = round_scores(l.rounds.len(), &owner, &steps);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    sc.holdout = cap_segments(
        raw_segments(&l, &hold_runs, usize::MAX, None),
        MAX_REPLAY_STEPS,
        0.0,
        &mut rng,
    );
    sc.replay = cap_segments(
        raw_segments(
            &l,
            &split.train,
            REPLAY_CHUNK_ROUNDS,
            Some((&scores, threshold)),
        ),
        MAX_REPLAY_STEPS,
        REPLAY_HARD_SHARE,
        &mut rng,
    );
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
    // The batch row carries the version the save below gives the model.
    let batch_id = write_batch(
        conn,
        &BatchRow {
            loss_after: loss,
            model_version: Some(sc.model_version + 1),
            ..BatchRow::scored(
                started,
                scorer.name(),
                &batch,
                series.windows(cfg.window, 1).len(),
                &anomalies,
                threshold,
            )
        },
        &rows,
        &anomalies,
    )?;
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
