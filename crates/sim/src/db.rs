//! Where the simulator touches the database: finding where to append, and writing a
//! round through the store's typed inserts (the same code path as the collector), plus
//! the `labels` rows only the simulator writes.

use portwatch_capture::Packet;
use portwatch_scan::PortUsage;
use portwatch_store::write::{self, PacketScratch, RoundClose, RoundStatus};
use rusqlite::{Connection, OptionalExtension};

use crate::Error;
use crate::host::MINUTE;

/// Where an empty database's history starts: Monday 2026-01-05T00:00:00Z.
pub const DEFAULT_EPOCH_MICROS: i64 = 1_767_571_200 * 1_000_000;

/// Start of the first new round: one minute after the latest start or end time of any
/// round, floored to the minute (so never overlapping it), or [`DEFAULT_EPOCH_MICROS`].
pub(crate) fn next_start(conn: &Connection) -> Result<i64, Error> {
    let last: Option<String> = conn
        .query_row(
            "SELECT max(coalesce((SELECT max(end_time) FROM rounds), ''),
                        coalesce((SELECT max(start_time) FROM rounds), ''))",
            [],
            |row| row.get(0),
        )
        .optional()?
        .flatten()
        .filter(|s: &String| !s.is_empty());
    Ok(match last {
        None => DEFAULT_EPOCH_MICROS,
        Some(s) => {
            let t = portwatch_store::time::parse_micros(&s)?;
            (t + MINUTE).div_euclid(MINUTE) * MINUTE
        }
    })
}

/// The first unused `labels.event` id.
pub(crate) fn next_event_id(conn: &Connection) -> Result<i64, Error> {
    Ok(
        conn.query_row("SELECT coalesce(max(event), 0) + 1 FROM labels", [], |r| {
            r.get(0)
        })?,
    )
}

/// One finished round, ready to write.
pub(crate) struct RoundRows<'a> {
    pub start: i64,
    pub end: i64,
    pub scan_interval_secs: f64,
    pub samples: &'a [(i64, Vec<PortUsage>)],
    pub packets: &'a [Packet],
}

/// Writes a round (running → complete) and returns its id.
pub(crate) fn write_round(
    conn: &Connection,
    rows: &RoundRows<'_>,
    scratch: &mut PacketScratch,
) -> Result<i64, Error> {
    let id = write::begin_round(conn, rows.start, "simulated", Some(rows.scan_interval_secs))?;
    for (ts, usages) in rows.samples {
        for u in usages {
            write::insert_port_usage(conn, id, *ts, u)?;
        }
    }
    let mut first = None;
    let mut last = None;
    for p in rows.packets {
        let rowid = write::insert_packet(conn, id, p, scratch)?;
        first.get_or_insert(rowid);
        last = Some(rowid);
    }
    let n = rows.packets.len() as u64;
    write::close_round(
        conn,
        id,
        &RoundClose {
            start_micros: None,
            end_micros: rows.end,
            status: Some(RoundStatus::Complete),
            packets_captured: n,
            packets_dropped: 0,
            packets_stored: n,
            packets_malformed: 0,
            first_packet_id: first,
            last_packet_id: last,
            samples: rows.samples.len() as u32,
            note: None,
        },
    )?;
    Ok(id)
}

pub(crate) fn insert_label(
    conn: &Connection,
    round_id: i64,
    event: i64,
    kind: &str,
    note: &str,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO labels (round_id, event, kind, note) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![round_id, event, kind, note])?;
    Ok(())
}
