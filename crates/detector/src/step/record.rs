//! The ending every scoring run shares: the verdicts recorded in one short
//! transaction, then the model saved. The batch row carries the version the save gives
//! the model, so a batch always names the model that came out of it.

use portwatch_model::Autoencoder;
use portwatch_model::persistence::{ModelDir, Sidecar};
use portwatch_store::Db;
use portwatch_store::incidents::IncidentWrite;
use portwatch_store::rounds::RoundInfo;
use portwatch_store::time::{format_micros, now_micros};
use portwatch_store::verdicts::{BatchStatus, NewAnomaly, NewBatch, Verdict};

use super::AnomalyReport;
use crate::Result;

/// What a run concluded.
pub(super) struct Conclusion<'a> {
    /// When the run started (µs).
    pub(super) started: i64,
    /// The scorer's name.
    pub(super) alg: &'a str,
    /// The rounds evaluated.
    pub(super) batch: &'a [RoundInfo],
    /// Windows scored (or trained on, while warming up).
    pub(super) windows: usize,
    pub(super) status: BatchStatus,
    pub(super) threshold: Option<f32>,
    pub(super) loss_before: Option<f32>,
    pub(super) loss_after: Option<f32>,
    /// One per evaluated round (none while warming up).
    pub(super) verdicts: &'a [Verdict],
    pub(super) anomalies: &'a [AnomalyReport],
    /// The model's version now, before any save.
    pub(super) version: Option<u64>,
    /// Incidents opened or moved.
    pub(super) incidents: &'a [IncidentWrite],
}

/// What was recorded.
pub(super) struct Recorded {
    pub(super) batch_id: i64,
    /// The model's version after the run.
    pub(super) version: Option<u64>,
    /// The incidents' ids, in the order of `Conclusion::incidents`.
    pub(super) incident_ids: Vec<i64>,
}

/// Records `c`, then saves `save` (the model and its sidecar) if given.
pub(super) fn record_and_save(
    db: &mut Db,
    dir: &ModelDir,
    c: &Conclusion<'_>,
    save: Option<(&Autoencoder, &mut Sidecar)>,
) -> Result<Recorded> {
    let version = match (&save, c.version) {
        (Some((_, sc)), _) => Some(sc.model_version + 1),
        (None, v) => v,
    };
    let texts: Vec<(String, &str, &str)> = c
        .anomalies
        .iter()
        .map(|a| {
            let field = |k: &str| a.explanation.get(k).and_then(|v| v.as_str()).unwrap_or("");
            (
                a.explanation.to_string(),
                field("window_start"),
                field("window_end"),
            )
        })
        .collect();
    let anomalies: Vec<NewAnomaly<'_>> = c
        .anomalies
        .iter()
        .zip(&texts)
        .map(|(a, (text, ws, we))| NewAnomaly {
            round_id: a.round_id,
            window_start: ws,
            window_end: we,
            score: a.score,
            threshold: a.threshold,
            explanation: text,
        })
        .collect();
    let (batch_id, incident_ids) = db.record_batch(
        &NewBatch {
            started: c.started,
            alg: c.alg,
            first_round_id: c.batch.first().map(|r| r.id),
            last_round_id: c.batch.last().map(|r| r.id),
            windows: c.windows,
            anomalies: c.anomalies.len(),
            threshold: c.threshold,
            loss_before: c.loss_before,
            loss_after: c.loss_after,
            model_version: version,
            status: c.status,
        },
        c.verdicts,
        &anomalies,
        c.incidents,
    )?;
    if let Some((model, sc)) = save {
        dir.save(model, sc, &format_micros(now_micros()))?;
    }
    Ok(Recorded {
        batch_id,
        version,
        incident_ids,
    })
}
