//! The hourly step with a trained model: score the batch, record it, fine-tune on its
//! normal part with replay, keep the update only if held-out normal loss did not rise.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rusqlite::Connection;

use crate::baseline::ZScore;
use crate::data::{self, RoundInfo};
use crate::features::{SCAN_HORIZON, feature_names};
use crate::inference::{self, ModelScorer, Scorer, threshold_from};
use crate::model::Autoencoder;
use crate::persistence::{ModelDir, Sidecar};
use crate::time::format_micros;
use burn::module::Module;

use crate::training;
use crate::{Error, Result};

use super::*;
use super::{explain::*, record::*, series::*};

pub(super) fn scored_step(
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
    let zscore = sc.zscore.clone().map(|scale| ZScore {
        scale,
        top_k: cfg.score_top_k,
    });
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
            let before = match sc.holdout_loss {
                Some(loss) => loss,
                None => inference::mse(&valid, &hold, &hold_w, cfg.window)?,
            };
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
                sc.holdout_loss = Some(after);
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
            loss_before,
            loss_after,
            model_version: Some(version),
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
        pool.extend(raw_segments(
            &l,
            &runs,
            REPLAY_CHUNK_ROUNDS,
            Some((&scores, threshold)),
        ));
        sc.replay = cap_segments(pool, MAX_REPLAY_STEPS, REPLAY_HARD_SHARE, &mut rng);
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
