//! Reading rounds, socket samples and packets from SQLite, and splitting rounds at gaps.
//!
//! Packets of a round are read through its rowid range (`first_packet_id ..=
//! last_packet_id`): `packets` has no index on `round_id` by design. Rows are streamed
//! into the feature builder, so memory stays flat however busy the round was.

use std::ops::Range;

use rusqlite::{Connection, params};

use crate::Result;

/// A `rounds` row as selected by [`COLUMNS`], before parsing the timestamps.
type RawRound = (i64, String, String, Option<f64>, Option<i64>, Option<i64>);
use crate::features::{Carry, PktRow, RoundBuilder, RoundKeys, Seen, SockRow, Step};
use crate::time::parse_micros;

/// A round the detector may evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundInfo {
    /// `rounds.id`.
    pub id: i64,
    /// Start (µs).
    pub start: i64,
    /// End (µs).
    pub end: i64,
    /// `rounds.scan_interval` (s).
    pub scan_interval: Option<f64>,
    /// Packet rowid range.
    pub first_packet_id: Option<i64>,
    /// Packet rowid range.
    pub last_packet_id: Option<i64>,
}

/// The rounds the detector looks at: live or simulated, closed (`end_time` set), not
/// failed; file ingests (`file:*`) are not host history.
const ELIGIBLE: &str = "r.end_time IS NOT NULL AND r.status IN ('complete', 'partial') \
     AND (r.source = 'simulated' OR r.source LIKE 'live:%')";

const COLUMNS: &str =
    "r.id, r.start_time, r.end_time, r.scan_interval, r.first_packet_id, r.last_packet_id";

fn round_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRound> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn collect_rounds(
    rows: impl Iterator<Item = rusqlite::Result<RawRound>>,
) -> Result<Vec<RoundInfo>> {
    let mut out = Vec::new();
    for r in rows {
        let (id, start, end, scan_interval, first_packet_id, last_packet_id) = r?;
        out.push(RoundInfo {
            id,
            start: parse_micros(&start)?,
            end: parse_micros(&end)?,
            scan_interval,
            first_packet_id,
            last_packet_id,
        });
    }
    Ok(out)
}

/// The batch: eligible rounds no evaluation has seen, in time order.
pub fn batch_rounds(conn: &Connection) -> Result<Vec<RoundInfo>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM rounds r WHERE {ELIGIBLE} \
         AND NOT EXISTS (SELECT 1 FROM batches_rounds b WHERE b.round_id = r.id) \
         ORDER BY r.start_time, r.id"
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], round_from_row)?;
    collect_rounds(rows)
}

/// Every eligible round, evaluated or not, in time order (the cold start's history).
pub fn history_rounds(conn: &Connection) -> Result<Vec<RoundInfo>> {
    let sql =
        format!("SELECT {COLUMNS} FROM rounds r WHERE {ELIGIBLE} ORDER BY r.start_time, r.id");
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], round_from_row)?;
    collect_rounds(rows)
}

/// Up to `n` eligible rounds that started before `round` (context for the batch's first
/// windows), in time order.
pub fn context_rounds(conn: &Connection, before: &RoundInfo, n: usize) -> Result<Vec<RoundInfo>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM rounds r WHERE {ELIGIBLE} AND r.start_time < ?1 \
         ORDER BY r.start_time DESC, r.id DESC LIMIT ?2"
    );
    let mut st = conn.prepare(&sql)?;
    let start = crate::time::format_micros(before.start);
    let rows = st.query_map(params![start, n as i64], round_from_row)?;
    let mut v = collect_rounds(rows)?;
    v.reverse();
    Ok(v)
}

/// The usual spacing between round starts: the median difference (60 s for a minutely
/// cron; the default when there are fewer than two rounds).
pub fn usual_spacing(rounds: &[RoundInfo]) -> i64 {
    let mut d: Vec<i64> = rounds.windows(2).map(|w| w[1].start - w[0].start).collect();
    if d.is_empty() {
        return 60 * crate::time::SECOND;
    }
    d.sort_unstable();
    d[d.len() / 2].max(1)
}

/// Splits rounds (in time order) into runs without gaps: a gap is a start-to-start
/// difference above 1.5× the usual spacing (a missed cron run). `spacing` is passed in
/// so a batch is split with the spacing learnt from history.
pub fn split_segments(rounds: &[RoundInfo], spacing: i64) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut begin = 0;
    for i in 1..rounds.len() {
        let d = rounds[i].start - rounds[i - 1].start;
        if d * 2 > spacing * 3 || d <= 0 {
            out.push(begin..i);
            begin = i;
        }
    }
    if begin < rounds.len() {
        out.push(begin..rounds.len());
    }
    out
}

/// Loads one round and turns it into steps. `seen` advances as ports and names appear;
/// `carry` holds what the previous round handed on and is replaced by this round's.
pub fn load_round(
    conn: &Connection,
    info: &RoundInfo,
    seen: &mut Seen,
    carry: &mut Carry,
) -> Result<(Vec<Step>, RoundKeys)> {
    let mut socks = Vec::new();
    {
        let mut st = conn.prepare_cached(
            "SELECT timestamp, port_id, protocol, state, sockets, process FROM rounds_ports \
             WHERE round_id = ?1",
        )?;
        let mut rows = st.query([info.id])?;
        while let Some(r) = rows.next()? {
            let ts: String = r.get(0)?;
            let port: i64 = r.get(1)?;
            let proto: String = r.get(2)?;
            socks.push(SockRow {
                ts: parse_micros(&ts)?,
                port: port.clamp(0, 65535) as u16,
                tcp: proto == "tcp",
                state: r.get(3)?,
                sockets: r.get(4)?,
                process: r.get(5)?,
            });
        }
    }
    let mut b = RoundBuilder::new(
        info.id,
        (info.start, info.end),
        info.scan_interval,
        &socks,
        seen,
        std::mem::take(carry),
    );
    if let (Some(lo), Some(hi)) = (info.first_packet_id, info.last_packet_id) {
        let mut st = conn.prepare_cached(
            "SELECT timestamp, protocols, qry_name, resp_name IS NOT NULL, port_id, dest_port, \
             src_addr, dst_addr, length, tcp_flags, dns_qr FROM packets WHERE id BETWEEN ?1 AND ?2",
        )?;
        let mut rows = st.query(params![lo, hi])?;
        while let Some(r) = rows.next()? {
            let ts_ref = r.get_ref(0)?;
            let ts = parse_micros(ts_ref.as_str().unwrap_or(""))?;
            let port = |i: usize| -> rusqlite::Result<Option<u16>> {
                Ok(r.get::<_, Option<i64>>(i)?
                    .map(|p| p.clamp(0, 65535) as u16))
            };
            let p = PktRow {
                ts,
                protocols: r.get_ref(1)?.as_str().unwrap_or(""),
                qry_name: r.get_ref(2)?.as_str_or_null().ok().flatten(),
                has_resp: r.get::<_, bool>(3)?,
                sport: port(4)?,
                dport: port(5)?,
                src: r.get_ref(6)?.as_str_or_null().ok().flatten(),
                dst: r.get_ref(7)?.as_str_or_null().ok().flatten(),
                length: r.get(8)?,
                tcp_flags: r.get(9)?,
                dns_qr: r.get(10)?,
            };
            b.add_packet(&p);
        }
    }
    let (steps, keys, next) = b.finish(seen);
    *carry = next;
    Ok((steps, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: i64, start_s: i64) -> RoundInfo {
        RoundInfo {
            id,
            start: start_s * crate::time::SECOND,
            end: (start_s + 55) * crate::time::SECOND,
            scan_interval: Some(5.0),
            first_packet_id: None,
            last_packet_id: None,
        }
    }

    #[test]
    fn gaps_split_segments() {
        let rounds = vec![
            r(1, 0),
            r(2, 60),
            r(3, 121),
            r(4, 240),
            r(5, 300),
            r(6, 360),
        ];
        let sp = usual_spacing(&rounds);
        assert_eq!(sp, 60 * crate::time::SECOND);
        assert_eq!(split_segments(&rounds, sp), vec![0..3, 3..6]);
        // 89 s is still "about a minute", 91 s is a missed run.
        let rounds = vec![r(1, 0), r(2, 89), r(3, 180)];
        assert_eq!(
            split_segments(&rounds, 60 * crate::time::SECOND),
            vec![0..2, 2..3]
        );
        assert!(split_segments(&[], 1).is_empty());
    }
}
