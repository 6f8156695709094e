//! The step with a trained model: score the batch, record it, fine-tune on its normal
//! part with replay, keep the update only if held-out normal loss did not rise.

use portwatch_features::{SCAN_HORIZON, feature_names};
use portwatch_model::Autoencoder;
use portwatch_model::inference;
use portwatch_model::persistence::{ModelDir, SIDECAR, Sidecar};
use portwatch_model::training;
use portwatch_store::Db;
use portwatch_store::rounds::RoundInfo;
use portwatch_store::time::now_micros;
use portwatch_store::verdicts::{BatchStatus, Verdict};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::explain::explain;
use super::record::{Conclusion, record_and_save};
use super::series::{
    Loaded, cap_segments, load_rounds, raw_segments, round_scores, runs_where, series_of,
    series_of_raw,
};
use super::verdict::{absorb_normal_scores, judge};
use super::{
    MAX_REPLAY_STEPS, Options, Outcome, POISON_TOLERANCE, REPLAY_CHUNK_ROUNDS, REPLAY_HARD_SHARE,
    Scoring, Status,
};
use crate::{Error, Result};

pub(super) fn scored_step(
    db: &mut Db,
    dir: &ModelDir,
    opts: &Options,
    mut sc: Sidecar,
    model: Autoencoder,
    batch: Vec<RoundInfo>,
) -> Result<Outcome> {
    let started = now_micros();
    let cfg = sc.config.clone();
    let threshold = sc.threshold.ok_or_else(|| {
        Error::Model(portwatch_model::Error::CorruptModel {
            path: dir.path().join(SIDECAR),
            reason: "a trained model without a threshold".into(),
        })
    })?;
    let (l, n_ctx) = load_with_context(db, &sc, &batch)?;
    let valid = model.valid();
    let (series, owner) = series_of(&l, &l.segments, &sc.scaler);
    let (alg, steps, is_model) = {
        let scoring = Scoring::new(&valid, &sc);
        let scorer = scoring.scorer();
        (
            scorer.name().to_string(),
            scorer.score_steps(&series)?,
            scoring.is_model(),
        )
    };
    let scores = round_scores(l.rounds.len(), &owner, &steps);
    let n = l.rounds.len();
    let v = judge(&scores, n_ctx, threshold);
    let names = feature_names();
    let mut anomalies = Vec::new();
    for i in (n_ctx..n).filter(|&i| v.anomalous[i]) {
        anomalies.push(explain(
            db, &l, i, &owner, &steps, &sc.scaler, &names, threshold,
        )?);
    }
    let tune = if !opts.no_train && is_model {
        fine_tune(&l, &sc, &model, &valid, &v.trainable)?
    } else {
        FineTune::default()
    };
    let new_model = tune.model.is_some();
    let trained_rounds = if new_model {
        v.trainable.iter().filter(|t| **t).count()
    } else {
        0
    };
    let verdicts: Vec<Verdict> = (n_ctx..n)
        .map(|i| Verdict {
            round_id: l.rounds[i].id,
            score: scores[i],
            anomalous: v.anomalous[i],
            trained: new_model && v.trainable[i],
        })
        .collect();
    let conclusion = Conclusion {
        started,
        alg: &alg,
        batch: &batch,
        windows: series.windows(cfg.window, 1).len(),
        status: BatchStatus::Scored,
        threshold: Some(threshold),
        loss_before: tune.loss_before,
        loss_after: tune.loss_after,
        verdicts: &verdicts,
        anomalies: &anomalies,
        version: Some(sc.model_version),
    };
    let saved = match tune.model {
        Some((m, runs)) => {
            sc.holdout_loss = tune.loss_after;
            absorb_normal_scores(&mut sc, &scores, &v.trainable);
            for (keys, _) in l.keys.iter().zip(&v.trainable).filter(|(_, t)| **t) {
                sc.seen.add_keys(keys);
            }
            let mut rng =
                ChaCha8Rng::seed_from_u64(cfg.seed ^ sc.model_version.wrapping_mul(0x9e37));
            let mut pool = std::mem::take(&mut sc.replay);
            pool.extend(raw_segments(
                &l,
                &runs,
                REPLAY_CHUNK_ROUNDS,
                Some((&scores, threshold)),
            ));
            sc.replay = cap_segments(pool, MAX_REPLAY_STEPS, REPLAY_HARD_SHARE, &mut rng);
            sc.rounds_trained += trained_rounds as u64;
            record_and_save(db, dir, &conclusion, Some((&m, &mut sc)))?
        }
        None => record_and_save(db, dir, &conclusion, None)?,
    };
    let (batch_id, version) = saved;
    let scored = verdicts.iter().filter(|r| r.score.is_some()).count();
    Ok(Outcome {
        status: Status::Scored,
        message: format!(
            "scored {scored} of {} rounds, {} anomalous (threshold {threshold:.3}); fine-tuning {} on {trained_rounds} rounds",
            batch.len(),
            anomalies.len(),
            tune.verdict,
        ),
        batch_id: Some(batch_id),
        rounds: batch.len(),
        scored_rounds: scored,
        anomalies,
        threshold: Some(threshold),
        trained_rounds,
        loss_before: tune.loss_before,
        loss_after: tune.loss_after,
        fine_tune: tune.verdict.to_string(),
        history_hours: 0.0,
        model_version: version,
    })
}

/// Loads the batch after enough earlier rounds for the first windows and for the scan
/// tracker's horizon, so the batch's first rounds get the same features as any other.
/// Returns the loaded rounds and how many of them are context.
fn load_with_context(db: &Db, sc: &Sidecar, batch: &[RoundInfo]) -> Result<(Loaded, usize)> {
    let steps_per_round = (60.0 / sc.scan_interval.max(0.5)).round().max(1.0) as usize;
    let horizon_rounds = (SCAN_HORIZON as f64 / sc.round_spacing_us.max(1) as f64).ceil() as usize;
    let ctx_n = sc
        .config
        .window
        .saturating_sub(1)
        .div_ceil(steps_per_round)
        .max(horizon_rounds);
    let mut rounds = match batch.first() {
        Some(first) if ctx_n > 0 => db.rounds_before(first, ctx_n)?,
        _ => Vec::new(),
    };
    let n_ctx = rounds.len();
    rounds.extend(batch.iter().cloned());
    let mut working_seen = sc.seen.clone();
    let l = load_rounds(db, rounds, sc.round_spacing_us, &mut working_seen)?;
    Ok((l, n_ctx))
}

/// The result of fine-tuning: the new model and the runs it trained on when the update
/// is kept, the held-out losses, and `accepted`, `rejected` or `skipped`.
struct FineTune {
    model: Option<(Autoencoder, Vec<std::ops::Range<usize>>)>,
    loss_before: Option<f32>,
    loss_after: Option<f32>,
    verdict: &'static str,
}

impl Default for FineTune {
    fn default() -> Self {
        FineTune {
            model: None,
            loss_before: None,
            loss_after: None,
            verdict: "skipped",
        }
    }
}

/// Fine-tunes on the trainable rounds with replay; refuses the update if the loss on
/// held-out normal windows rises by more than [`POISON_TOLERANCE`].
fn fine_tune(
    l: &Loaded,
    sc: &Sidecar,
    model: &Autoencoder,
    valid: &Autoencoder,
    trainable: &[bool],
) -> Result<FineTune> {
    let cfg = &sc.config;
    let runs = runs_where(&l.segments, |i| trainable[i]);
    let (mut train_series, _) = series_of(l, &runs, &sc.scaler);
    let batch_windows = train_series.windows(cfg.window, cfg.train_stride).len();
    if batch_windows == 0 {
        return Ok(FineTune::default());
    }
    let replay = series_of_raw(&sc.replay, &sc.scaler);
    train_series.segments.extend(replay.segments);
    let windows = train_series.windows(cfg.window, cfg.train_stride);
    let hold = series_of_raw(&sc.holdout, &sc.scaler);
    let hold_w = hold.windows(cfg.window, 1);
    let before = match sc.holdout_loss {
        Some(loss) => loss,
        None => inference::mse(valid, &hold, &hold_w, cfg.window)?,
    };
    let (m, _) = training::train(
        model.clone(),
        &train_series,
        &windows,
        cfg,
        cfg.fine_tune_epochs,
        usize::MAX,
        cfg.seed ^ sc.model_version,
    )?;
    let after = inference::mse(&m.valid(), &hold, &hold_w, cfg.window)?;
    let kept = hold_w.is_empty() || after <= before * (1.0 + POISON_TOLERANCE) + 1e-6;
    Ok(FineTune {
        model: kept.then_some((m, runs)),
        loss_before: Some(before),
        loss_after: Some(after),
        verdict: if kept { "accepted" } else { "rejected" },
    })
}
