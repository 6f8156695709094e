//! Rounds as the step sees them: their usual spacing, gap-free segments, and one
//! round's samples and packets turned into steps.
//!
//! Packets are streamed from the store into the feature builder one row at a time
//! (the store reads them by the round's rowid range), so memory stays flat however
//! busy the round was.

use std::ops::Range;

use portwatch_features::{Carry, RoundBuilder, RoundKeys, SECOND, Seen, Step};
use portwatch_store::Db;
use portwatch_store::rounds::RoundInfo;

use super::mask::Mask;
use crate::Result;

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

/// Loads one round and turns it into steps, leaving out of its features what `mask`
/// names — and out of its keys too, unless `keys_whole` (scoring with an open
/// incident's actor left out: what listens and which programs talk is still
/// presence). `seen` advances as ports and names appear; `carry` holds what the
/// previous round handed on and is replaced by this round's.
pub(super) fn load_round(
    db: &Db,
    info: &RoundInfo,
    seen: &mut Seen,
    carry: &mut Carry,
    mask: Option<&Mask>,
    keys_whole: bool,
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
    db.for_each_packet(info, |p| {
        if mask.is_none_or(|m| m.keeps_packet(p)) {
            b.add_packet(p);
        } else if keys_whole {
            b.keep_program_of(p);
        }
    })?;
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
