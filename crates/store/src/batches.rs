//! The packets of many rounds, read ahead in batches on another thread.
//!
//! Loading a day of history is one pass over its packets: SQLite decoding each row
//! (about half the time) and the features counting it (the other half), one after the
//! other on one core. A [`PacketBatch`] owns its rows — their text in one buffer — so
//! a reader thread on its own connection ([`Db::reader`]) can decode the next rows while
//! the caller counts the last ones: the two halves overlap on two cores. Batches are
//! bounded in rows and the caller bounds how many are in flight, so memory stays flat
//! however busy a round was. Tested in `tests/write.rs` against rounds the writer
//! stored.

use std::ops::Range;

use portwatch_features::PktRow;
use rusqlite::params;

use crate::rounds::{PACKETS_OF_RANGE, RoundInfo, packet_row};
use crate::{Db, Error};

/// Up to some packets of one round, owned.
#[derive(Debug, Default)]
pub struct PacketBatch {
    /// The round's index in the slice given to [`Db::packet_batches`].
    pub round: usize,
    text: String,
    rows: Vec<Row>,
}

/// A packet with its text as ranges of the batch's buffer.
#[derive(Debug)]
struct Row {
    ts: i64,
    protocols: Range<usize>,
    qry_name: Option<Range<usize>>,
    has_resp: bool,
    sport: Option<u16>,
    dport: Option<u16>,
    src: Option<Range<usize>>,
    dst: Option<Range<usize>>,
    length: i64,
    tcp_flags: Option<i64>,
    dns_qr: Option<i64>,
    process: Option<Range<usize>>,
}

impl PacketBatch {
    fn new(round: usize, rows: usize) -> Self {
        PacketBatch {
            round,
            text: String::with_capacity(rows * 48),
            rows: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, p: &PktRow<'_>) {
        let text = &mut self.text;
        let mut keep = |s: &str| {
            let start = text.len();
            text.push_str(s);
            start..text.len()
        };
        let row = Row {
            ts: p.ts,
            protocols: keep(p.protocols),
            qry_name: p.qry_name.map(&mut keep),
            has_resp: p.has_resp,
            sport: p.sport,
            dport: p.dport,
            src: p.src.map(&mut keep),
            dst: p.dst.map(&mut keep),
            length: p.length,
            tcp_flags: p.tcp_flags,
            dns_qr: p.dns_qr,
            process: p.process.map(&mut keep),
        };
        self.rows.push(row);
    }

    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Hands each packet to `f`, in rowid order.
    pub fn for_each(&self, mut f: impl FnMut(&PktRow<'_>)) {
        let text = |r: &Range<usize>| self.text.get(r.clone()).unwrap_or("");
        for r in &self.rows {
            f(&PktRow {
                ts: r.ts,
                protocols: text(&r.protocols),
                qry_name: r.qry_name.as_ref().map(text),
                has_resp: r.has_resp,
                sport: r.sport,
                dport: r.dport,
                src: r.src.as_ref().map(text),
                dst: r.dst.as_ref().map(text),
                length: r.length,
                tcp_flags: r.tcp_flags,
                dns_qr: r.dns_qr,
                process: r.process.as_ref().map(text),
            });
        }
    }
}

impl Db {
    /// A second connection to the same database, for a reader thread (a `Db` is not
    /// shared between threads).
    pub fn reader(&self) -> Result<Db, Error> {
        Db::open_existing(self.path())
    }

    /// Reads the packets of `rounds`, in order, in batches of at most `rows` packets
    /// (a round with no packet gives none), handing each to `send`; stops early, without
    /// error, when `send` returns false (the receiver is gone).
    pub fn packet_batches(
        &self,
        rounds: &[RoundInfo],
        rows: usize,
        mut send: impl FnMut(PacketBatch) -> bool,
    ) -> Result<(), Error> {
        let rows = rows.max(1);
        let mut st = self.conn.prepare_cached(PACKETS_OF_RANGE)?;
        for (i, round) in rounds.iter().enumerate() {
            let Some((lo, hi)) = round.packet_range() else {
                continue;
            };
            let mut batch = PacketBatch::new(i, rows);
            let mut it = st.query(params![lo, hi])?;
            while let Some(r) = it.next()? {
                batch.push(&packet_row(r)?);
                if batch.len() == rows {
                    let full = std::mem::replace(&mut batch, PacketBatch::new(i, rows));
                    if !send(full) {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() && !send(batch) {
                return Ok(());
            }
        }
        Ok(())
    }
}
