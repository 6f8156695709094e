//! Incidents (anomalous rounds grouped by cause) and the allow rules an operator sets:
//! read by every detector run, written with its verdicts in one transaction, changed by
//! `detector ack`, `accept` and `allow`.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use crate::rounds::RoundInfo;
use crate::{Db, Error, time};

/// Where an incident stands (`incidents.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Its cause is still seen, and nobody has looked at it.
    Open,
    /// Someone has seen it; its rounds are still never trained on.
    Acknowledged,
    /// Its cause has not been seen for `--close-after` rounds.
    Closed,
    /// Normal: its rounds are trainable and the same cause opens no incident again.
    Accepted,
}

impl IncidentStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Closed => "closed",
            IncidentStatus::Accepted => "accepted",
        }
    }

    fn parse(s: &str) -> IncidentStatus {
        match s {
            "acknowledged" => IncidentStatus::Acknowledged,
            "closed" => IncidentStatus::Closed,
            "accepted" => IncidentStatus::Accepted,
            _ => IncidentStatus::Open,
        }
    }

    /// Open or acknowledged: the cause may still be seen.
    pub fn is_active(self) -> bool {
        matches!(self, IncidentStatus::Open | IncidentStatus::Acknowledged)
    }
}

/// One incident as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// `incidents.id`.
    pub id: i64,
    /// The kind of cause (`new_listener`, `remote_source`, …).
    pub kind: String,
    /// The cause's key (`tcp/4444`, `203.0.113.0/24`, …).
    pub cause: String,
    /// The first round the cause was seen in.
    pub first_round_id: i64,
    /// The last round the cause was seen in.
    pub last_round_id: i64,
    /// Start of the first round (µs).
    #[serde(serialize_with = "as_timestamp")]
    pub start: i64,
    /// End of the last round (µs).
    #[serde(serialize_with = "as_timestamp")]
    pub end: i64,
    /// Highest round score.
    pub peak_score: f64,
    /// Where it stands.
    pub status: IncidentStatus,
    /// Evaluated rounds since the cause was last seen.
    pub quiet_rounds: i64,
    /// Rounds in which the cause was seen.
    pub rounds: i64,
    /// One line for people.
    pub summary: String,
    /// Who and what, as JSON (the actor's address or process, counts, ports, names).
    pub details: serde_json::Value,
    /// When it was opened (timestamp text).
    pub opened_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When it was acknowledged.
    pub acknowledged_at: Option<String>,
    /// When it was accepted.
    pub accepted_at: Option<String>,
    /// `operator` or `drift`.
    pub accepted_by: Option<String>,
    /// When it closed.
    pub closed_at: Option<String>,
    /// Notes given with `ack` and `accept`.
    pub note: Option<String>,
}

fn as_timestamp<S: serde::Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time::format_micros(*us))
}

/// An incident to insert (`id` None) or to update, with the rounds it gained.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentWrite {
    /// The incident as it should be stored; `id` is ignored for a new one.
    pub incident: Incident,
    /// True for a new incident.
    pub new: bool,
    /// Rounds (id, score) to link to it.
    pub rounds: Vec<(i64, Option<f32>)>,
}

/// A round waiting to be learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRound {
    pub round: RoundInfo,
    /// Its score when it was evaluated.
    pub score: Option<f32>,
    /// An accepted incident covers it: someone said it is normal.
    pub accepted: bool,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter<'a> {
    /// Only open and acknowledged ones.
    pub active_only: bool,
    /// Only those whose cause was last seen at or after this time (timestamp text).
    pub since: Option<&'a str>,
}

/// An allow rule (`allow_rules` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowRule {
    /// `allow_rules.id`.
    pub id: i64,
    /// `port`, `process`, `dns` or `cidr`.
    pub kind: String,
    /// What it matches.
    pub value: String,
    /// Why it was added.
    pub note: Option<String>,
    /// When.
    pub created_at: String,
}

const COLUMNS: &str = "id, kind, cause, first_round_id, last_round_id, start_time, end_time, \
     peak_score, status, quiet_rounds, rounds, summary, details, opened_at, updated_at, \
     acknowledged_at, accepted_at, accepted_by, closed_at, note";

fn incident_from(r: &Row<'_>) -> rusqlite::Result<(Incident, String, String)> {
    let details: String = r.get(12)?;
    Ok((
        Incident {
            id: r.get(0)?,
            kind: r.get(1)?,
            cause: r.get(2)?,
            first_round_id: r.get(3)?,
            last_round_id: r.get(4)?,
            start: 0,
            end: 0,
            peak_score: r.get(7)?,
            status: IncidentStatus::parse(&r.get::<_, String>(8)?),
            quiet_rounds: r.get(9)?,
            rounds: r.get(10)?,
            summary: r.get(11)?,
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
            opened_at: r.get(13)?,
            updated_at: r.get(14)?,
            acknowledged_at: r.get(15)?,
            accepted_at: r.get(16)?,
            accepted_by: r.get(17)?,
            closed_at: r.get(18)?,
            note: r.get(19)?,
        },
        r.get(5)?,
        r.get(6)?,
    ))
}

impl Db {
    /// Incidents matching `f`, oldest first.
    pub fn incidents(&self, f: &IncidentFilter<'_>) -> Result<Vec<Incident>, Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents \
              WHERE (?1 = 0 OR status IN ('open', 'acknowledged')) AND end_time >= ?2 \
              ORDER BY start_time, id"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![f.active_only, f.since.unwrap_or("")], incident_from)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut i, start, end) = row?;
            i.start = time::parse_micros(&start)?;
            i.end = time::parse_micros(&end)?;
            out.push(i);
        }
        Ok(out)
    }

    /// One incident.
    pub fn incident(&self, id: i64) -> Result<Option<Incident>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1");
        let row = self.conn.query_row(&sql, [id], incident_from).optional()?;
        match row {
            None => Ok(None),
            Some((mut i, start, end)) => {
                i.start = time::parse_micros(&start)?;
                i.end = time::parse_micros(&end)?;
                Ok(Some(i))
            }
        }
    }

    /// Every incident's (kind, first round, last round), by id: what `detector
    /// evaluate` matches against the simulator's labels.
    pub fn incident_spans(&self) -> Result<Vec<(String, i64, i64)>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT kind, first_round_id, last_round_id FROM incidents ORDER BY id",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every accepted incident: causes that are normal.
    pub fn accepted_incidents(&self) -> Result<Vec<Incident>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE status = 'accepted' ORDER BY id");
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([], incident_from)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut i, start, end) = row?;
            i.start = time::parse_micros(&start)?;
            i.end = time::parse_micros(&end)?;
            out.push(i);
        }
        Ok(out)
    }

    /// Acknowledges an incident (`note` appended): an open one becomes
    /// `acknowledged`, a closed one keeps its status and gains the acknowledgement.
    /// False when no incident has this id or it is accepted.
    pub fn acknowledge_incident(&mut self, id: i64, note: Option<&str>) -> Result<bool, Error> {
        let now = time::format_micros(time::now_micros());
        let n = self.conn.execute(
            "UPDATE incidents SET \
                    status = CASE WHEN status = 'open' THEN 'acknowledged' ELSE status END, \
                    acknowledged_at = ?2, updated_at = ?2, \
                    note = CASE WHEN ?3 IS NULL THEN note \
                                ELSE coalesce(note || '; ', '') || ?3 END \
              WHERE id = ?1 AND status != 'accepted'",
            params![id, now, note],
        )?;
        Ok(n == 1)
    }

    /// Accepts an incident as normal (`by`: `operator` or `drift`); false when no
    /// incident has this id or it is already accepted.
    pub fn accept_incident(
        &mut self,
        id: i64,
        by: &str,
        note: Option<&str>,
    ) -> Result<bool, Error> {
        let now = time::format_micros(time::now_micros());
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE incidents SET status = 'accepted', accepted_at = ?2, accepted_by = ?3, \
                    updated_at = ?2, \
                    note = CASE WHEN ?4 IS NULL THEN note \
                                ELSE coalesce(note || '; ', '') || ?4 END \
              WHERE id = ?1 AND status != 'accepted'",
            params![id, now, by, note],
        )?;
        mark_trainable(&tx, id)?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Rounds judged trainable and not trained on yet (normal rounds scored since the
    /// last fine-tune, rounds of incidents accepted since), the most recent `limit`, in
    /// time order, with their scores and whether an accepted incident covers them.
    pub fn pending_training_rounds(&self, limit: usize) -> Result<Vec<PendingRound>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT r.id, r.start_time, r.end_time, r.scan_interval, r.first_packet_id, \
                    r.last_packet_id, br.score, \
                    EXISTS (SELECT 1 FROM incidents_rounds ir JOIN incidents i \
                              ON i.id = ir.incident_id \
                             WHERE ir.round_id = r.id AND i.status = 'accepted') \
               FROM batches_rounds br JOIN rounds r ON r.id = br.round_id \
              WHERE br.trainable = 1 AND br.trained = 0 AND r.end_time IS NOT NULL \
              ORDER BY r.start_time DESC, r.id DESC LIMIT ?1",
        )?;
        let mut rows = st.query([limit as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(PendingRound {
                round: RoundInfo {
                    id: r.get(0)?,
                    start: time::parse_micros(&r.get::<_, String>(1)?)?,
                    end: time::parse_micros(&r.get::<_, String>(2)?)?,
                    scan_interval: r.get(3)?,
                    first_packet_id: r.get(4)?,
                    last_packet_id: r.get(5)?,
                },
                score: r.get::<_, Option<f64>>(6)?.map(|s| s as f32),
                accepted: r.get(7)?,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// The start (µs) of the latest round trained on, if any: fine-tunes are spaced by
    /// the rounds' own clock, so simulated history behaves as live history does.
    pub fn latest_trained_round(&self) -> Result<Option<i64>, Error> {
        let t: Option<String> = self.conn.query_row(
            "SELECT max(r.start_time) FROM batches_rounds br JOIN rounds r ON r.id = br.round_id \
              WHERE br.trained = 1",
            [],
            |r| r.get(0),
        )?;
        t.map(|t| time::parse_micros(&t)).transpose()
    }

    /// Marks rounds as trained on, `masked` ones with their incidents' actors left out
    /// (their verdicts stay).
    pub fn mark_trained(&mut self, round_ids: &[i64], masked: &[i64]) -> Result<(), Error> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "UPDATE batches_rounds SET trained = 1, masked = ?2 WHERE round_id = ?1",
            )?;
            for id in round_ids {
                st.execute(params![id, masked.contains(id)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Takes rounds out of what is to be learnt (`trainable = 0`): rounds held out to
    /// guard later fine-tunes, and rounds that still looked anomalous with their
    /// incidents' actors left out. Accepting an incident makes its rounds trainable
    /// again.
    pub fn mark_untrainable(&mut self, round_ids: &[i64]) -> Result<(), Error> {
        // Most fine-tunes have none.
        if round_ids.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut st =
                tx.prepare_cached("UPDATE batches_rounds SET trainable = 0 WHERE round_id = ?1")?;
            for id in round_ids {
                st.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The (round, kind, cause) of every incident nobody accepted that covers one of
    /// `round_ids`: the actors to leave out when learning those rounds.
    pub fn incident_causes_of(
        &self,
        round_ids: &[i64],
    ) -> Result<Vec<(i64, String, String)>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT ir.round_id, i.kind, i.cause FROM incidents_rounds ir \
               JOIN incidents i ON i.id = ir.incident_id \
              WHERE ir.round_id = ?1 AND i.status != 'accepted'",
        )?;
        let mut out = Vec::new();
        for id in round_ids {
            let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Every allow rule, by id.
    pub fn allow_rules(&self) -> Result<Vec<AllowRule>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, kind, value, note, created_at FROM allow_rules ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(AllowRule {
                id: r.get(0)?,
                kind: r.get(1)?,
                value: r.get(2)?,
                note: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Adds an allow rule (the caller checked `kind` and `value`); an identical rule
    /// is kept once. Returns its id.
    pub fn add_allow_rule(
        &mut self,
        kind: &str,
        value: &str,
        note: Option<&str>,
    ) -> Result<i64, Error> {
        let now = time::format_micros(time::now_micros());
        self.conn.execute(
            "INSERT INTO allow_rules (kind, value, note, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (kind, value) DO UPDATE SET note = coalesce(excluded.note, note)",
            params![kind, value, note, now],
        )?;
        Ok(self.conn.query_row(
            "SELECT id FROM allow_rules WHERE kind = ?1 AND value = ?2",
            params![kind, value],
            |r| r.get(0),
        )?)
    }

    /// Removes an allow rule; false when none has this id.
    pub fn remove_allow_rule(&mut self, id: i64) -> Result<bool, Error> {
        Ok(self
            .conn
            .execute("DELETE FROM allow_rules WHERE id = ?1", [id])?
            == 1)
    }
}

/// Makes an accepted incident's evaluated rounds trainable: the next fine-tune learns
/// them.
fn mark_trainable(tx: &rusqlite::Transaction<'_>, incident_id: i64) -> Result<(), Error> {
    // Rounds learnt with the incident's actor left out are learnt again, whole.
    tx.prepare_cached(
        "UPDATE batches_rounds SET trainable = 1, trained = trained * (1 - masked), masked = 0 \
          WHERE round_id IN (SELECT round_id FROM incidents_rounds WHERE incident_id = ?1)",
    )?
    .execute([incident_id])?;
    Ok(())
}

/// Writes incidents inside the verdicts' transaction; returns the ids, in order.
pub(crate) fn write_incidents(
    tx: &rusqlite::Transaction<'_>,
    writes: &[IncidentWrite],
) -> Result<Vec<i64>, Error> {
    let mut ids = Vec::with_capacity(writes.len());
    for w in writes {
        let i = &w.incident;
        let details = i.details.to_string();
        let (start, end) = (time::format_micros(i.start), time::format_micros(i.end));
        let id = if w.new {
            tx.prepare_cached(
                "INSERT INTO incidents (kind, cause, first_round_id, last_round_id, start_time, \
                 end_time, peak_score, status, quiet_rounds, rounds, summary, details, \
                 opened_at, updated_at, acknowledged_at, accepted_at, accepted_by, closed_at, note) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                         ?17, ?18, ?19)",
            )?
            .execute(params![
                i.kind,
                i.cause,
                i.first_round_id,
                i.last_round_id,
                start,
                end,
                i.peak_score,
                i.status.as_str(),
                i.quiet_rounds,
                i.rounds,
                i.summary,
                details,
                i.opened_at,
                i.updated_at,
                i.acknowledged_at,
                i.accepted_at,
                i.accepted_by,
                i.closed_at,
                i.note,
            ])?;
            tx.last_insert_rowid()
        } else {
            // Triage columns are left alone: `ack`/`accept` may have run meanwhile;
            // only a closing moves the status, and only from open or acknowledged.
            tx.prepare_cached(
                "UPDATE incidents SET last_round_id = ?2, end_time = ?3, peak_score = ?4, \
                        quiet_rounds = ?5, rounds = ?6, summary = ?7, details = ?8, \
                        updated_at = ?9, closed_at = coalesce(closed_at, ?10), \
                        status = CASE WHEN ?11 = 'closed' AND status IN ('open', 'acknowledged') \
                                      THEN 'closed' \
                                      WHEN ?11 = 'accepted' THEN 'accepted' \
                                      ELSE status END, \
                        accepted_at = CASE WHEN ?11 = 'accepted' \
                                      THEN coalesce(accepted_at, ?12) ELSE accepted_at END, \
                        accepted_by = CASE WHEN ?11 = 'accepted' \
                                      THEN coalesce(accepted_by, ?13) ELSE accepted_by END, \
                        note = CASE WHEN ?11 = 'accepted' AND status != 'accepted' \
                                    THEN ?14 ELSE note END \
                  WHERE id = ?1",
            )?
            .execute(params![
                i.id,
                i.last_round_id,
                end,
                i.peak_score,
                i.quiet_rounds,
                i.rounds,
                i.summary,
                details,
                i.updated_at,
                i.closed_at,
                i.status.as_str(),
                i.accepted_at,
                i.accepted_by,
                i.note,
            ])?;
            i.id
        };
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO incidents_rounds (incident_id, round_id, score) \
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM rounds WHERE id = ?2)",
        )?;
        for (round, score) in &w.rounds {
            st.execute(params![id, round, score.map(f64::from)])?;
        }
        if i.status == IncidentStatus::Accepted {
            mark_trainable(tx, id)?;
        }
        ids.push(id);
    }
    Ok(ids)
}
