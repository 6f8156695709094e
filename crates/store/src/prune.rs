//! `collector prune`: deletes whole rounds older than a cutoff, each with all its rows,
//! without scanning whole tables.
//!
//! Packets carry no index and no foreign key from rounds, so they go first by each
//! round's rowid range (a primary-key range delete); the round rows then cascade to
//! the indexed child tables. Rounds go in batches, each two short transactions (the
//! packets, then the rounds), with a page cache big enough that a batch's pages are
//! written to the WAL once: with the default (2 MiB, 32 pages of 64 KiB), one
//! transaction per round wrote the cascade's index pages again and again.
//!
//! The freed pages stay in the file, on SQLite's freelist, where the next rounds'
//! rows reuse them: a database pruned daily stays at its retention plus a day. Giving
//! them back to the file system (`vacuum`) moves the newest pages into the holes, a
//! day's worth of writes for a day pruned, so it is asked for, not done every day.
//! Measured: BENCHMARKS.md, "Prune of a day".

use rusqlite::{Connection, TransactionBehavior, params};

use crate::{Db, Error, time};

/// What [`Db::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rounds: u64,
    pub packets: u64,
    /// Pages returned to the file system (with `vacuum`).
    pub returned_pages: i64,
    /// Pages left free in the file for new rows.
    pub free_pages: i64,
}

/// The rounds to delete, through the start_time index; ranges come from the rows.
/// (Not `ORDER BY id`: SQLite would then walk the whole table in rowid order rather
/// than the index, as the plan test caught; they are sorted afterwards.)
const VICTIMS: &str = "SELECT id, first_packet_id, last_packet_id FROM rounds
  WHERE start_time < ?1 AND status != 'running'";
/// A round's packets, by its rowid range (a primary-key range delete).
const PACKETS: &str = "DELETE FROM packets WHERE id BETWEEN ?1 AND ?2";
/// The round row; its child rows go by cascade through their indexes.
const ROUND: &str = "DELETE FROM rounds WHERE id = ?1";

/// At most this many rounds per transaction: an hour of a live host.
const BATCH_ROUNDS: usize = 60;
/// At most about this many packets per transaction (~0.3 s of deleting here), so a
/// live round beside prune waits for one batch at most, never for a day.
const BATCH_PACKETS: u64 = 500_000;
/// The page cache while deleting, in KiB (SQLite's default is 2 MiB).
const CACHE_KIB: i64 = 64 * 1024;

impl Db {
    /// Deletes the closed rounds that started before `cutoff_micros` (running rounds
    /// are left alone: a collector may still be writing them); with `vacuum`, returns
    /// the freed pages to the file system.
    pub fn prune(&mut self, cutoff_micros: i64, vacuum: bool) -> Result<Pruned, Error> {
        self.prune_with_progress(cutoff_micros, vacuum, &mut |_, _| {})
    }

    /// [`Db::prune`], telling `progress` the rounds deleted so far and the rounds to
    /// delete after each batch (for a progress bar).
    pub fn prune_with_progress(
        &mut self,
        cutoff_micros: i64,
        vacuum: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Pruned, Error> {
        let saved: i64 = self.conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        self.conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        let out = prune(&mut self.conn, cutoff_micros, progress);
        // The connection may live on (tests, a library user): back to its own cache,
        // and foreign keys on whatever happened.
        self.conn.pragma_update(None, "cache_size", saved)?;
        self.conn.pragma_update(None, "foreign_keys", true)?;
        let mut out = out?;
        if vacuum {
            out.returned_pages = incremental_vacuum(&self.conn)?;
        }
        out.free_pages = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        Ok(out)
    }

    /// SQLite's plan (`EXPLAIN QUERY PLAN` detail lines) for each statement prune runs,
    /// so a test can hold that none scans a whole table.
    pub fn prune_query_plans(&self) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for sql in [VICTIMS, PACKETS, ROUND] {
            let mut st = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let n = st.parameter_count();
            let args: Vec<i64> = vec![0; n];
            let mut rows = st.query(rusqlite::params_from_iter(args))?;
            while let Some(r) = rows.next()? {
                out.push(r.get::<_, String>(3)?);
            }
        }
        Ok(out)
    }
}

fn prune(
    conn: &mut Connection,
    cutoff_micros: i64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Pruned, Error> {
    let cutoff = time::format_micros(cutoff_micros);
    let mut out = Pruned::default();
    let mut victims: Vec<(i64, Option<i64>, Option<i64>)> = conn
        .prepare(VICTIMS)?
        .query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    victims.sort_unstable();
    let total = victims.len() as u64;
    let mut rest = victims.as_slice();
    while !rest.is_empty() {
        // The batch: up to BATCH_ROUNDS rounds, cut early once it holds BATCH_PACKETS
        // (a capture file's round of millions goes alone).
        let mut n = 0;
        let mut packets = 0u64;
        while n < rest.len() && n < BATCH_ROUNDS && packets < BATCH_PACKETS {
            if let (_, Some(f), Some(l)) = rest[n] {
                packets += u64::try_from(l - f + 1).unwrap_or(0);
            }
            n += 1;
        }
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        // The packets first, in their own transaction and without foreign-key
        // processing: with it on, SQLite reads each deleted row's `port_id` for the
        // `ports` reference (a day took 1.3–1.5 s longer). A prune cut short between
        // the two leaves rounds whose packets are gone; they are older than the cutoff,
        // and the next prune deletes them.
        conn.pragma_update(None, "foreign_keys", false)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut del = tx.prepare_cached(PACKETS)?;
            for &(_, first, last) in batch {
                if let (Some(f), Some(l)) = (first, last) {
                    out.packets += del.execute(params![f, l])? as u64;
                }
            }
        }
        tx.commit()?;
        // The rounds with foreign keys on: their child rows go by cascade.
        conn.pragma_update(None, "foreign_keys", true)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut del = tx.prepare_cached(ROUND)?;
            for &(id, _, _) in batch {
                del.execute(params![id])?;
            }
        }
        tx.commit()?;
        out.rounds += batch.len() as u64;
        progress(out.rounds, total);
    }
    Ok(out)
}

/// Returns every free page to the file system; how many. `incremental_vacuum` frees
/// one page per result row; it is stepped in slices of 256 so that each holds the
/// write lock only briefly.
fn incremental_vacuum(conn: &Connection) -> Result<i64, Error> {
    let mut returned = 0;
    loop {
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if free == 0 {
            break;
        }
        let mut stmt = conn.prepare("PRAGMA incremental_vacuum(256)")?;
        let mut rows = stmt.query([])?;
        let mut n = 0;
        while rows.next()?.is_some() {
            n += 1;
        }
        if n == 0 {
            break;
        }
        returned += n;
    }
    Ok(returned)
}
