//! `collector prune`: deletes whole rounds older than a cutoff, each with all its rows
//! in one transaction, without scanning whole tables.
//!
//! Packets carry no index and no foreign key, so they go first by each round's rowid
//! range (a primary-key range delete); the round rows then cascade to the indexed
//! child tables. Freed pages are returned with `incremental_vacuum` afterwards.

use rusqlite::{TransactionBehavior, params};

use crate::{Db, Error, time};

/// What [`Db::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rounds: u64,
    pub packets: u64,
    pub freed_pages: i64,
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

impl Db {
    /// Deletes the closed rounds that started before `cutoff_micros` (running rounds
    /// are left alone: a collector may still be writing them).
    pub fn prune(&mut self, cutoff_micros: i64) -> Result<Pruned, Error> {
        prune(&mut self.conn, cutoff_micros, &mut |_, _| {})
    }

    /// [`Db::prune`], telling `progress` the rounds deleted so far and the rounds to
    /// delete after each one (for a progress bar).
    pub fn prune_with_progress(
        &mut self,
        cutoff_micros: i64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Pruned, Error> {
        prune(&mut self.conn, cutoff_micros, progress)
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
    conn: &mut rusqlite::Connection,
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
    // One short transaction per round: a live round's writer waits at most for one
    // round's deletion, never for a whole month's.
    for (id, first, last) in victims {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let (Some(f), Some(l)) = (first, last) {
            out.packets += tx.execute(PACKETS, params![f, l])? as u64;
        }
        tx.execute(ROUND, params![id])?;
        tx.commit()?;
        out.rounds += 1;
        progress(out.rounds, total);
    }
    // `incremental_vacuum` frees one page per result row; step it to the end, in
    // slices so that each holds the write lock only briefly.
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
        out.freed_pages += n;
    }
    Ok(out)
}
