//! Where the simulator touches the database: finding where to append, and writing a
//! round through the store's typed inserts (the same code path as the collector).

use portwatch_capture::Packet;
use portwatch_scan::PortUsage;
use portwatch_store::insert::{RoundClose, RoundSource, RoundStatus};
use portwatch_store::{Db, Tx};

use crate::Error;
use crate::host::MINUTE;

/// Where an empty database's history starts: Monday 2026-01-05T00:00:00Z.
pub const DEFAULT_EPOCH_MICROS: i64 = 1_767_571_200 * 1_000_000;

/// Start of the first new round: one minute after the latest start or end time of any
/// round, floored to the minute (so never overlapping it), or [`DEFAULT_EPOCH_MICROS`].
pub(crate) fn next_start(db: &Db) -> Result<i64, Error> {
    Ok(match db.latest_round_time()? {
        None => DEFAULT_EPOCH_MICROS,
        Some(t) => (t + MINUTE).div_euclid(MINUTE) * MINUTE,
    })
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
pub(crate) fn write_round(tx: &Tx<'_>, rows: &RoundRows<'_>) -> Result<i64, Error> {
    let id = tx.begin_round(
        rows.start,
        RoundSource::Simulated,
        Some(rows.scan_interval_secs),
    )?;
    for (ts, usages) in rows.samples {
        tx.insert_port_usages(id, *ts, usages)?;
    }
    let span = tx.insert_packets(id, rows.packets)?;
    let n = rows.packets.len() as u64;
    tx.close_round(
        id,
        &RoundClose {
            start_micros: None,
            end_micros: rows.end,
            status: Some(RoundStatus::Complete),
            packets_captured: n,
            packets_dropped: 0,
            packets_stored: n,
            packets_malformed: 0,
            first_packet_id: span.map(|(first, _)| first),
            last_packet_id: span.map(|(_, last)| last),
            samples: rows.samples.len() as u32,
            note: None,
        },
    )?;
    Ok(id)
}
