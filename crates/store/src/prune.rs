//! `collector prune`: deletes whole rounds older than a cutoff, in one transaction,
//! without scanning whole tables.
//!
//! Packets carry no index and no foreign key, so they go first by each round's rowid
//! range (a primary-key range delete); the round rows then cascade to the indexed
//! child tables. Freed pages are returned with `incremental_vacuum` afterwards.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::{Error, time};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rounds: u64,
    pub packets: u64,
    pub freed_pages: i64,
}

/// Deletes the closed rounds that started before `cutoff_micros` (running rounds are
/// left alone: a collector may still be writing them).
pub fn prune(conn: &mut Connection, cutoff_micros: i64) -> Result<Pruned, Error> {
    let cutoff = time::format_micros(cutoff_micros);
    let mut out = Pruned::default();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        // Uses the start_time index; ranges come from the round rows themselves.
        let mut rounds = tx.prepare(
            "SELECT id, first_packet_id, last_packet_id FROM rounds
              WHERE start_time < ?1 AND status != 'running'",
        )?;
        let victims: Vec<(i64, Option<i64>, Option<i64>)> = rounds
            .query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut del_packets = tx.prepare("DELETE FROM packets WHERE id BETWEEN ?1 AND ?2")?;
        let mut del_round = tx.prepare("DELETE FROM rounds WHERE id = ?1")?;
        for (id, first, last) in victims {
            if let (Some(f), Some(l)) = (first, last) {
                out.packets += del_packets.execute(params![f, l])? as u64;
            }
            del_round.execute(params![id])?;
            out.rounds += 1;
        }
    }
    tx.commit()?;
    let before: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA incremental_vacuum")?;
    let after: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    out.freed_pages = before - after;
    Ok(out)
}
