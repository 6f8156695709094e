//! Ground truth: the `labels` the simulator writes beside the rounds of each injected
//! event, and what the simulator needs to append after existing history.

use rusqlite::{OptionalExtension, params};

use crate::{Db, Error, Tx, time};

/// One labelled round of an injected event.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledRound {
    /// `labels.event`: one id per injected event.
    pub event: i64,
    /// The event's kind (`portscan`, `backdoor`, …).
    pub kind: String,
    /// `rounds.id`.
    pub round_id: i64,
    /// The round's start (µs).
    pub start: i64,
}

impl Db {
    /// The first unused `labels.event` id.
    pub fn next_event_id(&self) -> Result<i64, Error> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(event), 0) + 1 FROM labels", [], |r| {
                r.get(0)
            })?)
    }

    /// The latest start or end time of any round (µs), or None for an empty database.
    pub fn latest_round_time(&self) -> Result<Option<i64>, Error> {
        let last: Option<String> = self
            .conn
            .query_row(
                "SELECT max(coalesce((SELECT max(end_time) FROM rounds), ''),
                            coalesce((SELECT max(start_time) FROM rounds), ''))",
                [],
                |row| row.get(0),
            )
            .optional()?
            .flatten()
            .filter(|s: &String| !s.is_empty());
        last.map(|s| time::parse_micros(&s)).transpose()
    }

    /// Every labelled round, by event and time.
    pub fn labelled_rounds(&self) -> Result<Vec<LabelledRound>, Error> {
        let mut st = self.conn.prepare(
            "SELECT l.event, l.kind, l.round_id, r.start_time
               FROM labels l JOIN rounds r ON r.id = l.round_id
              ORDER BY l.event, r.start_time",
        )?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(LabelledRound {
                event: row.get(0)?,
                kind: row.get(1)?,
                round_id: row.get(2)?,
                start: time::parse_micros(&row.get::<_, String>(3)?)?,
            });
        }
        Ok(out)
    }
}

impl Tx<'_> {
    /// Labels one round as part of an injected event.
    pub fn insert_label(
        &self,
        round_id: i64,
        event: i64,
        kind: &str,
        note: &str,
    ) -> Result<(), Error> {
        self.tx
            .prepare_cached(
                "INSERT INTO labels (round_id, event, kind, note) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![round_id, event, kind, note])?;
        Ok(())
    }
}
