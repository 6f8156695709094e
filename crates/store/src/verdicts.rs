//! The detector's verdicts: `batches`, `batches_rounds` and `anomalies` written in one
//! short transaction, and read back for `detector report`, `plot` and `evaluate`.

use rusqlite::{TransactionBehavior, params};
use serde::Serialize;

use crate::incidents::{IncidentWrite, write_incidents};
use crate::{Db, Error, time};

/// What an evaluation did (`batches.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    /// Not enough history yet: trained, nothing scored.
    WarmingUp,
    /// The batch was scored.
    Scored,
}

impl BatchStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::WarmingUp => "warming up",
            BatchStatus::Scored => "scored",
        }
    }
}

/// One `batches` row to write.
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    /// When the evaluation started (µs).
    pub started: i64,
    /// The scorer (`cnn-lstm-ae`, `zscore`).
    pub alg: &'a str,
    /// The first and last rounds evaluated.
    pub first_round_id: Option<i64>,
    /// See `first_round_id`.
    pub last_round_id: Option<i64>,
    /// Windows scored (or trained on, while warming up).
    pub windows: usize,
    /// Anomalous rounds.
    pub anomalies: usize,
    /// Threshold used.
    pub threshold: Option<f32>,
    /// Held-out loss before fine-tuning.
    pub loss_before: Option<f32>,
    /// Held-out loss after fine-tuning.
    pub loss_after: Option<f32>,
    /// The model's version once this run's save is done.
    pub model_version: Option<u64>,
    /// What the evaluation did.
    pub status: BatchStatus,
}

/// One `batches_rounds` row: the verdict on one round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// `rounds.id`.
    pub round_id: i64,
    /// Round score (None: not enough steps to score).
    pub score: Option<f32>,
    /// Above the threshold.
    pub anomalous: bool,
    /// Normal enough to learn from (trained on now, or by a later fine-tune).
    pub trainable: bool,
    /// Fine-tuned on.
    pub trained: bool,
}

/// One `anomalies` row.
#[derive(Debug, Clone)]
pub struct NewAnomaly<'a> {
    /// `rounds.id`.
    pub round_id: i64,
    /// Start of the traffic interval the explanation describes (schema timestamp text).
    pub window_start: &'a str,
    /// Its end.
    pub window_end: &'a str,
    /// Round score.
    pub score: f32,
    /// Threshold it exceeded.
    pub threshold: f32,
    /// The explanation, JSON text.
    pub explanation: &'a str,
}

/// One evaluation as `detector report` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct BatchSummary {
    /// `batches.id`.
    pub id: i64,
    /// When it ran.
    pub timestamp: String,
    /// `warming up` or `scored`.
    pub status: Option<String>,
    /// Rounds recorded in `batches_rounds`.
    pub rounds: i64,
    /// Anomalous rounds.
    pub anomalies: i64,
    /// Rounds fine-tuned on.
    pub trained: i64,
    /// Threshold used.
    pub threshold: Option<f64>,
    /// Held-out loss before fine-tuning.
    pub loss_before: Option<f64>,
    /// Held-out loss after.
    pub loss_after: Option<f64>,
    /// Model version after the run.
    pub model_version: Option<String>,
}

/// One anomaly as `detector report` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyRow {
    /// `anomalies.id`.
    pub id: i64,
    /// The round.
    pub round_id: i64,
    /// Its start.
    pub round_start: String,
    /// Round score.
    pub score: f64,
    /// Threshold.
    pub threshold: f64,
    /// Stored explanation (a JSON string if the stored text is not JSON).
    pub explanation: serde_json::Value,
}

/// An evaluated round in time order, for `detector evaluate`.
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluatedRound {
    /// `rounds.id`.
    pub id: i64,
    /// Round start (µs).
    pub start: i64,
    /// The verdict.
    pub anomalous: bool,
}

impl Db {
    /// Writes one evaluation — the batch, its verdicts and anomalies, and the incidents
    /// they opened or moved — in a short `BEGIN IMMEDIATE` transaction (the collector
    /// may be writing: the busy timeout waits for it instead of failing); returns the
    /// batch's id and the incidents' ids, in the order given. Rounds that `prune` (which
    /// takes no lock) deleted while the detector worked on them are skipped: their
    /// verdicts describe nothing left.
    pub fn record_batch(
        &mut self,
        b: &NewBatch<'_>,
        verdicts: &[Verdict],
        anomalies: &[NewAnomaly<'_>],
        incidents: &[IncidentWrite],
    ) -> Result<(i64, Vec<i64>), Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let finished = time::format_micros(time::now_micros());
        tx.execute(
            "INSERT INTO batches (timestamp, alg, finished_at, first_round_id, last_round_id, windows, \
             anomalies, threshold, loss_before, loss_after, model_version, status) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                time::format_micros(b.started),
                b.alg,
                finished,
                b.first_round_id,
                b.last_round_id,
                b.windows as i64,
                b.anomalies as i64,
                b.threshold.map(f64::from),
                b.loss_before.map(f64::from),
                b.loss_after.map(f64::from),
                b.model_version.map(|v| v.to_string()),
                b.status.as_str(),
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO batches_rounds (batch_id, round_id, score, anomalous, trainable, \
                 trained) SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
                 WHERE EXISTS (SELECT 1 FROM rounds WHERE id = ?2)",
            )?;
            for v in verdicts {
                st.execute(params![
                    id,
                    v.round_id,
                    v.score.map(f64::from),
                    v.anomalous,
                    v.trainable || v.trained,
                    v.trained
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO anomalies (batch_id, round_id, window_start, window_end, score, \
                 threshold, explanation) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
                 WHERE EXISTS (SELECT 1 FROM rounds WHERE id = ?2)",
            )?;
            for a in anomalies {
                st.execute(params![
                    id,
                    a.round_id,
                    a.window_start,
                    a.window_end,
                    f64::from(a.score),
                    f64::from(a.threshold),
                    a.explanation
                ])?;
            }
        }
        let ids = write_incidents(&tx, incidents)?;
        tx.commit()?;
        Ok((id, ids))
    }

    /// Evaluations whose last round started at or after `since` (schema timestamp
    /// text; all when None), oldest first.
    pub fn batch_summaries(&self, since: Option<&str>) -> Result<Vec<BatchSummary>, Error> {
        let mut st = self.conn.prepare(
            "SELECT b.id, b.timestamp, b.status, b.threshold, b.loss_before, b.loss_after, \
                    b.model_version, count(br.id), coalesce(sum(br.anomalous), 0), \
                    coalesce(sum(br.trained), 0) \
               FROM batches b LEFT JOIN batches_rounds br ON br.batch_id = b.id \
              WHERE ?1 = '' OR EXISTS (SELECT 1 FROM rounds r WHERE r.id = b.last_round_id \
                                         AND r.start_time >= ?1) \
              GROUP BY b.id ORDER BY b.id",
        )?;
        let rows = st.query_map(params![since.unwrap_or("")], |r| {
            Ok(BatchSummary {
                id: r.get(0)?,
                timestamp: r.get(1)?,
                status: r.get(2)?,
                threshold: r.get(3)?,
                loss_before: r.get(4)?,
                loss_after: r.get(5)?,
                model_version: r.get(6)?,
                rounds: r.get(7)?,
                anomalies: r.get(8)?,
                trained: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Anomalies of rounds that started at or after `since` (all when None), in time
    /// order.
    pub fn anomaly_rows(&self, since: Option<&str>) -> Result<Vec<AnomalyRow>, Error> {
        let mut st = self.conn.prepare(
            "SELECT a.id, a.round_id, r.start_time, a.score, a.threshold, a.explanation \
               FROM anomalies a JOIN rounds r ON r.id = a.round_id \
              WHERE r.start_time >= ?1 ORDER BY r.start_time, a.id",
        )?;
        let rows = st.query_map(params![since.unwrap_or("")], |r| {
            let text: String = r.get(5)?;
            Ok(AnomalyRow {
                id: r.get(0)?,
                round_id: r.get(1)?,
                round_start: r.get(2)?,
                score: r.get(3)?,
                threshold: r.get(4)?,
                explanation: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// How many of the latest fine-tunes, up to `limit`, were refused in a row: a
    /// fine-tune is a batch with a held-out loss after it, and a refused one left the
    /// model's version where the fine-tune before it had.
    pub fn fine_tunes_refused_in_a_row(&self, limit: usize) -> Result<usize, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT model_version FROM batches WHERE loss_after IS NOT NULL \
              ORDER BY id DESC LIMIT ?1",
        )?;
        let versions: Vec<Option<String>> = st
            .query_map([limit as i64 + 1], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(versions
            .windows(2)
            .take_while(|w| w[0].is_some() && w[0] == w[1])
            .count())
    }

    /// The scores of up to `n` evaluated rounds that started before `before` (µs), in
    /// time order, each with whether an incident that names an actor holds it (one of
    /// another kind than `features` or `sustained`): what a sum over rounds carries
    /// into a run. (`masked` is not it: it is written when the round is learnt, an
    /// hour or more later.)
    pub fn scores_before(&self, before: i64, n: usize) -> Result<Vec<(Option<f32>, bool)>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT br.score, EXISTS (SELECT 1 FROM incidents_rounds ir \
                      JOIN incidents i ON i.id = ir.incident_id \
                     WHERE ir.round_id = br.round_id AND i.kind NOT IN ('features', 'sustained')) \
               FROM batches_rounds br JOIN rounds r ON r.id = br.round_id \
              WHERE r.start_time < ?1 ORDER BY r.start_time DESC, r.id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![time::format_micros(before), n as i64], |r| {
            Ok((r.get::<_, Option<f64>>(0)?, r.get::<_, bool>(1)?))
        })?;
        let mut v: Vec<(Option<f32>, bool)> = rows
            .map(|r| r.map(|(s, m)| (s.map(|s| s as f32), m)))
            .collect::<rusqlite::Result<_>>()?;
        v.reverse();
        Ok(v)
    }

    /// Every evaluated round with its verdict, in time order.
    pub fn evaluated_rounds(&self) -> Result<Vec<EvaluatedRound>, Error> {
        let mut st = self.conn.prepare(
            "SELECT r.id, r.start_time, br.anomalous \
               FROM batches_rounds br JOIN rounds r ON r.id = br.round_id \
              ORDER BY r.start_time, r.id",
        )?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(EvaluatedRound {
                id: row.get(0)?,
                start: time::parse_micros(&row.get::<_, String>(1)?)?,
                anomalous: row.get::<_, i64>(2)? != 0,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insert::RoundSource;

    /// Defect: `prune` during a cold start made the detector fail with a FOREIGN KEY
    /// error after its training; the vanished rounds are now skipped.
    #[test]
    fn verdicts_for_rounds_pruned_meanwhile_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("v.db")).unwrap();
        let kept = db
            .begin_round(1_764_000_000_000_000, RoundSource::Simulated, None)
            .unwrap();
        let gone = db
            .begin_round(1_764_000_060_000_000, RoundSource::Simulated, None)
            .unwrap();
        db.conn
            .execute("DELETE FROM rounds WHERE id = ?1", [gone])
            .unwrap();
        let verdict = |round_id| Verdict {
            round_id,
            score: Some(1.0),
            anomalous: true,
            trainable: false,
            trained: false,
        };
        let anomaly = |round_id| NewAnomaly {
            round_id,
            window_start: "a",
            window_end: "b",
            score: 1.0,
            threshold: 0.5,
            explanation: "{}",
        };
        let batch = NewBatch {
            windows: 2,
            anomalies: 2,
            threshold: Some(0.5),
            ..scored_batch(1_764_000_100_000_000, Some(kept), Some(gone))
        };
        db.record_batch(
            &batch,
            &[verdict(kept), verdict(gone)],
            &[anomaly(kept), anomaly(gone)],
            &[],
        )
        .unwrap();
        let n = |sql: &str| -> i64 { db.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(n("SELECT count(*) FROM batches_rounds"), 1);
        assert_eq!(n("SELECT count(*) FROM anomalies"), 1);
    }

    /// A scored batch over the given rounds with nothing in it; tests set what matters.
    fn scored_batch(started: i64, first: Option<i64>, last: Option<i64>) -> NewBatch<'static> {
        NewBatch {
            started,
            alg: "test",
            first_round_id: first,
            last_round_id: last,
            windows: 0,
            anomalies: 0,
            threshold: None,
            loss_before: None,
            loss_after: None,
            model_version: None,
            status: BatchStatus::Scored,
        }
    }

    #[test]
    fn scores_before_say_which_rounds_an_incident_with_an_actor_holds() {
        use crate::incidents::{Incident, IncidentStatus, IncidentWrite};
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("v.db")).unwrap();
        let t0 = 1_764_000_000_000_000;
        let ids: Vec<i64> = (0..4)
            .map(|k| {
                db.begin_round(t0 + k * 60_000_000, RoundSource::Simulated, None)
                    .unwrap()
            })
            .collect();
        let verdicts: Vec<Verdict> = ids
            .iter()
            .zip([1.0, 8.0, 9.0, 3.0])
            .map(|(&round_id, score)| Verdict {
                round_id,
                score: Some(score),
                anomalous: false,
                trainable: true,
                trained: false,
            })
            .collect();
        let incident = |kind: &str, rounds: &[i64]| IncidentWrite {
            incident: Incident {
                id: 0,
                kind: kind.into(),
                cause: "x".into(),
                first_round_id: rounds[0],
                last_round_id: rounds[rounds.len() - 1],
                start: t0,
                end: t0,
                peak_score: 9.0,
                status: IncidentStatus::Open,
                quiet_rounds: 0,
                rounds: rounds.len() as i64,
                summary: String::new(),
                details: serde_json::json!({}),
                opened_at: "a".into(),
                updated_at: "a".into(),
                acknowledged_at: None,
                accepted_at: None,
                accepted_by: None,
                closed_at: None,
                note: None,
            },
            new: true,
            rounds: rounds.iter().map(|&r| (r, None)).collect(),
        };
        let batch = NewBatch {
            windows: 4,
            threshold: Some(10.0),
            ..scored_batch(t0, ids.first().copied(), ids.last().copied())
        };
        // A backdoor holds rounds 1 and 2; a lasting shift names no one (round 3).
        db.record_batch(
            &batch,
            &verdicts,
            &[],
            &[
                incident("new_listener", &ids[1..3]),
                incident("sustained", &ids[3..]),
            ],
        )
        .unwrap();
        let before = db.scores_before(t0 + 4 * 60_000_000, 10).unwrap();
        assert_eq!(
            before,
            vec![
                (Some(1.0), false),
                (Some(8.0), true),
                (Some(9.0), true),
                (Some(3.0), false)
            ]
        );
        // The latest `n`, in time order.
        assert_eq!(
            db.scores_before(t0 + 3 * 60_000_000, 2).unwrap()[1],
            (Some(9.0), true)
        );
    }

    #[test]
    fn refused_fine_tunes_are_those_that_left_the_version_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("v.db")).unwrap();
        // (model version after the run, whether it fine-tuned): a cold start, two
        // kept updates, a minute's run without one, then two refused.
        let runs = [
            (1, false),
            (2, true),
            (3, true),
            (3, false),
            (3, true),
            (3, true),
        ];
        let mut refused = Vec::new();
        for (version, tuned) in runs {
            let batch = NewBatch {
                threshold: Some(1.0),
                loss_before: tuned.then_some(0.1),
                loss_after: tuned.then_some(0.2),
                model_version: Some(version),
                ..scored_batch(1_764_000_100_000_000, None, None)
            };
            db.record_batch(&batch, &[], &[], &[]).unwrap();
            refused.push(db.fine_tunes_refused_in_a_row(3).unwrap());
        }
        assert_eq!(refused, [0, 0, 0, 0, 1, 2]);
        assert_eq!(
            db.fine_tunes_refused_in_a_row(1).unwrap(),
            1,
            "up to the limit"
        );
    }
}
