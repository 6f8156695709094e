//! Rounds as the step sees them: their usual spacing, gap-free segments, and one
//! round's samples and packets turned into steps.
//!
//! Packets are streamed from the store into the feature builder in bounded batches,
//! read ahead on another thread (the store reads them by the round's rowid range), so
//! memory stays flat however busy the round was.

use std::collections::HashMap;
use std::ops::Range;

use portwatch_features::{Carry, PktRow, RoundBuilder, RoundKeys, SECOND, Seen, Step};
use portwatch_store::Db;
use portwatch_store::batches::PacketBatch;
use portwatch_store::rounds::RoundInfo;

use super::mask::Mask;
use crate::{Error, Result};

/// The usual spacing between round starts: the median difference (60 s for a minutely
/// cron; the default when there are fewer than two rounds).
pub fn usual_spacing(rounds: &[RoundInfo]) -> i64 {
    let mut d: Vec<i64> = rounds.windows(2).map(|w| w[1].start - w[0].start).collect();
    if d.is_empty() {
        return 60 * SECOND;
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

/// Packets read ahead per batch, and batches in flight between the reader thread and
/// the builder: at most ~16,000 rows (a few MB) however busy the rounds.
const BATCH_ROWS: usize = 4096;
const BATCHES_IN_FLIGHT: usize = 3;

/// Loads `rounds` (in time order) and turns each into steps, handing them to `each`
/// with the round's index. Each round leaves out of its features what its entry in
/// `masks` names — and out of its keys too, unless `keys_whole` (scoring with an open
/// incident's actor left out: what listens and which programs talk is still
/// presence). `seen` advances as ports and names appear; returns what the last round
/// hands on.
///
/// The packets are read on a second connection by a reader thread, a few batches
/// ahead ([`portwatch_store::batches`]): decoding rows and counting them into features
/// overlap, which takes loading a day of history from one core's time to about half.
pub(super) fn build_rounds(
    db: &Db,
    rounds: &[RoundInfo],
    seen: &mut Seen,
    masks: &HashMap<i64, Mask>,
    keys_whole: bool,
    mut each: impl FnMut(usize, Vec<Step>, RoundKeys),
) -> Result<Carry> {
    let reader = db.reader()?;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<PacketBatch>(BATCHES_IN_FLIGHT);
        let read =
            scope.spawn(move || reader.packet_batches(rounds, BATCH_ROWS, |b| tx.send(b).is_ok()));
        let mut carry = Carry::default();
        let mut ahead: Option<PacketBatch> = None;
        let mut built = Ok(());
        for (i, info) in rounds.iter().enumerate() {
            let packets = |add: &mut dyn FnMut(&PktRow<'_>)| {
                while let Some(b) = ahead.take().or_else(|| rx.recv().ok()) {
                    if b.round != i {
                        ahead = Some(b); // the next round's first batch
                        break;
                    }
                    b.for_each(&mut *add);
                }
            };
            match build_round(
                db,
                info,
                seen,
                &mut carry,
                masks.get(&info.id),
                keys_whole,
                packets,
            ) {
                Ok((steps, keys)) => each(i, steps, keys),
                Err(e) => {
                    built = Err(e);
                    break;
                }
            }
        }
        drop(rx); // a reader still sending stops
        let read = read
            .join()
            .map_err(|_| Error::Invalid("the packet reader thread panicked".into()))?;
        // A reader's error first: it cut the packets short.
        read?;
        built.map(|()| carry)
    })
}

/// Turns one round into steps: its sockets from `db`, its packets from `packets`.
fn build_round(
    db: &Db,
    info: &RoundInfo,
    seen: &mut Seen,
    carry: &mut Carry,
    mask: Option<&Mask>,
    keys_whole: bool,
    packets: impl FnOnce(&mut dyn FnMut(&PktRow<'_>)),
) -> Result<(Vec<Step>, RoundKeys)> {
    let mut socks = db.round_sockets(info.id)?;
    let mut left_out = Vec::new();
    if let Some(m) = mask {
        (socks, left_out) = socks.into_iter().partition(|s| m.keeps_socket(s));
    }
    let mut b = RoundBuilder::new(
        info.id,
        (info.start, info.end),
        info.scan_interval,
        &socks,
        seen,
        std::mem::take(carry),
    );
    if keys_whole {
        b.keep_keys_of(&left_out);
    }
    packets(&mut |p| {
        if mask.is_none_or(|m| m.keeps_packet(p)) {
            b.add_packet(p);
        } else if keys_whole {
            b.keep_program_of(p);
        }
    });
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
            start: start_s * SECOND,
            end: (start_s + 55) * SECOND,
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
        assert_eq!(sp, 60 * SECOND);
        assert_eq!(split_segments(&rounds, sp), vec![0..3, 3..6]);
        // 89 s is still "about a minute", 91 s is a missed run.
        let rounds = vec![r(1, 0), r(2, 89), r(3, 180)];
        assert_eq!(split_segments(&rounds, 60 * SECOND), vec![0..2, 2..3]);
        assert!(split_segments(&[], 1).is_empty());
    }
}
