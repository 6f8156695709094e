//! The figures an operator's tools watch (the detector's `--metrics-file`): one query
//! over the tables' small ends, cheap enough for a run every minute.

use crate::{Db, Error, time};

/// A snapshot of the database's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Incidents `open` or `acknowledged`.
    pub open_incidents: i64,
    /// Incidents ever recorded.
    pub incidents_total: i64,
    /// Rounds that got a score.
    pub rounds_evaluated: i64,
    /// Score of the newest scored round.
    pub last_score: Option<f64>,
    /// Threshold of the newest batch that had one.
    pub threshold: Option<f64>,
    /// End of the newest closed round (µs).
    pub last_round_end: Option<i64>,
    /// Packets libpcap received and dropped, over the rounds the database holds.
    pub packets_captured: i64,
    pub packets_dropped: i64,
    /// The same over the rounds that started after the `recent` cutoff given.
    pub recent_captured: i64,
    pub recent_dropped: i64,
    /// The newest closed round's source and note (`capture failed: …`, `scanner: …`).
    pub last_round_source: Option<String>,
    pub last_round_note: Option<String>,
}

impl Db {
    /// The current [`Health`], with the drop figures of the rounds that started after
    /// `recent_micros` (by start, through its index).
    pub fn health(&self, recent_micros: i64) -> Result<Health, Error> {
        let (h, end) = self.conn.query_row(
            "SELECT (SELECT count(*) FROM incidents WHERE status IN ('open', 'acknowledged')),
                    (SELECT count(*) FROM incidents),
                    (SELECT count(*) FROM batches_rounds WHERE score IS NOT NULL),
                    (SELECT score FROM batches_rounds WHERE score IS NOT NULL
                      ORDER BY round_id DESC LIMIT 1),
                    (SELECT threshold FROM batches WHERE threshold IS NOT NULL
                      ORDER BY id DESC LIMIT 1),
                    (SELECT max(end_time) FROM rounds WHERE status != 'running'),
                    (SELECT coalesce(sum(packets_captured), 0) FROM rounds),
                    (SELECT coalesce(sum(packets_dropped), 0) FROM rounds),
                    (SELECT coalesce(sum(packets_captured), 0) FROM rounds WHERE start_time >= ?1),
                    (SELECT coalesce(sum(packets_dropped), 0) FROM rounds WHERE start_time >= ?1),
                    (SELECT source FROM rounds WHERE status != 'running' ORDER BY id DESC LIMIT 1),
                    (SELECT note FROM rounds WHERE status != 'running' ORDER BY id DESC LIMIT 1)",
            [time::format_micros(recent_micros)],
            |r| {
                Ok((
                    Health {
                        open_incidents: r.get(0)?,
                        incidents_total: r.get(1)?,
                        rounds_evaluated: r.get(2)?,
                        last_score: r.get(3)?,
                        threshold: r.get(4)?,
                        last_round_end: None,
                        packets_captured: r.get(6)?,
                        packets_dropped: r.get(7)?,
                        recent_captured: r.get(8)?,
                        recent_dropped: r.get(9)?,
                        last_round_source: r.get(10)?,
                        last_round_note: r.get(11)?,
                    },
                    r.get::<_, Option<String>>(5)?,
                ))
            },
        )?;
        Ok(Health {
            last_round_end: end.map(|t| time::parse_micros(&t)).transpose()?,
            ..h
        })
    }
}
