//! Writing an evaluation: `batches`, `batches_rounds` and `anomalies` in one short
//! transaction.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::data::RoundInfo;
use crate::time::format_micros;

use crate::Result;

use super::*;

pub(super) struct RoundRow {
    pub(super) round_id: i64,
    pub(super) score: Option<f32>,
    pub(super) anomalous: bool,
    pub(super) trained: bool,
}

/// One `batches` row.
pub(super) struct BatchRow<'a> {
    pub(super) started: String,
    pub(super) alg: &'a str,
    /// The rounds evaluated (first and last ids are recorded).
    pub(super) batch: &'a [RoundInfo],
    pub(super) windows: usize,
    pub(super) anomalies: usize,
    pub(super) threshold: Option<f32>,
    pub(super) loss_before: Option<f32>,
    pub(super) loss_after: Option<f32>,
    pub(super) model_version: Option<u64>,
    pub(super) status: &'a str,
}

impl<'a> BatchRow<'a> {
    /// A scored evaluation of `batch` (losses and model version to be filled in).
    pub(super) fn scored(
        started: String,
        alg: &'a str,
        batch: &'a [RoundInfo],
        windows: usize,
        anomalies: &[AnomalyReport],
        threshold: f32,
    ) -> Self {
        BatchRow {
            started,
            alg,
            batch,
            windows,
            anomalies: anomalies.len(),
            threshold: Some(threshold),
            loss_before: None,
            loss_after: None,
            model_version: None,
            status: "scored",
        }
    }
}

/// Writes one evaluation in a short `BEGIN IMMEDIATE` transaction (the collector may be
/// writing: the busy timeout waits for it instead of failing).
pub(super) fn write_batch(
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
            b.batch.first().map(|r| r.id),
            b.batch.last().map(|r| r.id),
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
