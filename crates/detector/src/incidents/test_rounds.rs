//! Rounds stored in a new database for the rule tests of [`super::cause`] and
//! [`super::clients`].

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use portwatch_features::{RoundKeys, Seen, fnv1a};
use portwatch_store::Db;
use portwatch_store::rounds::RoundInfo;

use super::cause::{Cause, EveryRound};
use crate::Result;

/// Stores rounds of 55 s with the given start (µs) and packets, as the store
/// keeps them (rows and round totals); the rounds, as the detector reads them.
pub(crate) fn store_rounds(
    db: &mut Db,
    rounds: impl IntoIterator<Item = (i64, Vec<portwatch_capture::Packet>)>,
) -> Vec<RoundInfo> {
    use portwatch_store::insert::{PacketScratch, RoundClose, RoundSource, RoundStatus};
    let tx = db.transaction().unwrap();
    let mut scratch = PacketScratch::default();
    for (start, packets) in rounds {
        let id = tx
            .begin_round(start, RoundSource::Simulated, Some(5.0))
            .unwrap();
        let ids: Vec<i64> = packets
            .iter()
            .map(|p| tx.insert_packet(id, p, &mut scratch).unwrap())
            .collect();
        let close = RoundClose {
            end_micros: start + 55_000_000,
            status: Some(RoundStatus::Complete),
            first_packet_id: ids.first().copied(),
            last_packet_id: ids.last().copied(),
            packets_stored: ids.len() as u64,
            samples: 12,
            ..RoundClose::default()
        };
        tx.close_round(id, &close).unwrap();
    }
    tx.commit().unwrap();
    db.unevaluated_rounds().unwrap()
}

/// What a rule that looks at every round finds in the round `make` stores in a new
/// database, the host being 10.0.0.1.
pub(crate) fn every_round(
    make: impl FnOnce(&mut Db) -> RoundInfo,
    keys: &RoundKeys,
    seen: &Seen,
    rule: impl FnOnce(&Db, &EveryRound<'_>) -> Result<Vec<Cause>>,
) -> Vec<Cause> {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(&tmp.path().join("ports.db")).unwrap();
    let round = make(&mut db);
    let local = HashSet::from([fnv1a(b"10.0.0.1")]);
    let every = EveryRound {
        round: &round,
        keys,
        seen,
        local: &local,
    };
    rule(&db, &every).unwrap()
}
