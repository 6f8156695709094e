//! Rounds loaded into steps and turned into series: scaling, gap-free runs, the
//! cold-start split, replay and held-out samples, round scores.

use std::ops::Range;

use portwatch_features::{N_FEATURES, N_TIME, RoundKeys, SECOND, Scaler, Seen, Step};
use portwatch_model::inference::StepScores;
use portwatch_model::persistence::RawSegment;
use portwatch_model::training::{Series, WindowRef};
use portwatch_store::Db;
use portwatch_store::rounds::RoundInfo;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use std::collections::HashMap;

use super::BLOCK_ROUNDS;
use super::mask::Mask;
use super::rounds::{build_rounds, split_segments};
use crate::Result;

/// Rounds loaded into steps, in time order, with gap-free segments.
pub(super) struct Loaded {
    pub(super) rounds: Vec<RoundInfo>,
    pub(super) steps: Vec<Vec<Step>>,
    pub(super) keys: Vec<RoundKeys>,
    pub(super) segments: Vec<Range<usize>>,
    /// Hashes of the host's own addresses, as learnt by the last round.
    pub(super) local_addrs: std::collections::HashSet<u64>,
}

pub(super) fn load_rounds(
    db: &Db,
    rounds: Vec<RoundInfo>,
    spacing: i64,
    seen: &mut Seen,
) -> Result<Loaded> {
    load_rounds_masked(db, rounds, spacing, seen, &HashMap::new(), false)
}

/// [`load_rounds`], leaving out of each round what its entry in `masks` names (out of
/// its keys too unless `keys_whole`: see [`load_round`]).
pub(super) fn load_rounds_masked(
    db: &Db,
    rounds: Vec<RoundInfo>,
    spacing: i64,
    seen: &mut Seen,
    masks: &HashMap<i64, Mask>,
    keys_whole: bool,
) -> Result<Loaded> {
    let mut steps = Vec::with_capacity(rounds.len());
    let mut keys = Vec::with_capacity(rounds.len());
    let carry = build_rounds(db, &rounds, seen, masks, keys_whole, |_, s, k| {
        steps.push(s);
        keys.push(k);
    })?;
    let segments = split_segments(&rounds, spacing);
    Ok(Loaded {
        rounds,
        steps,
        keys,
        segments,
        local_addrs: carry.local_addrs,
    })
}

pub(super) fn raw_row(step: &Step, out: &mut Vec<f32>) {
    out.extend_from_slice(&step.raw);
    out.extend_from_slice(&step.time);
}

pub(super) fn scale_row(scaler: &Scaler, raw: &[f32], out: &mut Vec<f32>) {
    scaler.transform_into(&raw[..N_FEATURES], out);
    out.extend_from_slice(&raw[N_FEATURES..]);
}

pub(super) const WIDTH: usize = N_FEATURES + N_TIME;

/// Scales runs of rounds into a series; returns it and, per series step, the round index.
pub(super) fn series_of(
    l: &Loaded,
    runs: &[Range<usize>],
    scaler: &Scaler,
) -> (Series, Vec<usize>) {
    let mut s = Series::new(N_FEATURES, WIDTH);
    let mut owner = Vec::new();
    let mut raw = Vec::with_capacity(WIDTH);
    for run in runs {
        let mut seg = Vec::new();
        for ri in run.clone() {
            for st in &l.steps[ri] {
                raw.clear();
                raw_row(st, &mut raw);
                scale_row(scaler, &raw, &mut seg);
                owner.push(ri);
            }
        }
        s.segments.push(seg);
    }
    (s, owner)
}

/// Raw segments of `runs`, cut into pieces of at most `chunk` rounds (`usize::MAX`:
/// whole runs). Each piece's hardness is its highest round score over `threshold`
/// (0 without scores), so replay can keep the normal rounds the model found hardest.
pub(super) fn raw_segments(
    l: &Loaded,
    runs: &[Range<usize>],
    chunk: usize,
    scored: Option<(&[Option<f32>], f32)>,
) -> Vec<RawSegment> {
    let mut out = Vec::new();
    for run in runs {
        let rounds: Vec<usize> = run.clone().collect();
        for piece in rounds.chunks(chunk.max(1)) {
            let mut rows = Vec::new();
            let mut hardness = 0.0f32;
            for &ri in piece {
                for st in &l.steps[ri] {
                    raw_row(st, &mut rows);
                }
                if let Some((scores, t)) = scored
                    && let Some(Some(sc)) = scores.get(ri)
                {
                    hardness = hardness.max(sc / t.max(f32::MIN_POSITIVE));
                }
            }
            if !rows.is_empty() {
                out.push(RawSegment { rows, hardness });
            }
        }
    }
    out
}

pub(super) fn series_of_raw(segs: &[RawSegment], scaler: &Scaler) -> Series {
    let mut s = Series::new(N_FEATURES, WIDTH);
    for seg in segs {
        let mut out = Vec::with_capacity(seg.rows.len());
        for row in seg.rows.chunks(WIDTH) {
            if row.len() == WIDTH {
                scale_row(scaler, row, &mut out);
            }
        }
        s.segments.push(out);
    }
    s
}

/// Keeps at most `max_steps` steps of `segs`: first the hardest segments, up to
/// `hard_share` of the budget, then a random choice of the rest (segments longer than
/// what is left are cut). Without the hard share, a daily job's few minutes would soon
/// be crowded out of replay by the hours of ordinary traffic around them, and forgotten
/// a day later.
pub(super) fn cap_segments(
    mut segs: Vec<RawSegment>,
    max_steps: usize,
    hard_share: f32,
    rng: &mut ChaCha8Rng,
) -> Vec<RawSegment> {
    segs.shuffle(rng);
    segs.sort_by(|a, b| b.hardness.total_cmp(&a.hardness));
    let hard_budget = (max_steps as f32 * hard_share.clamp(0.0, 1.0)) as usize;
    let mut hard = Vec::new();
    let mut rest = Vec::new();
    let mut used = 0;
    for s in segs {
        let n = s.rows.len() / WIDTH;
        if s.hardness > 0.0 && used + n <= hard_budget {
            used += n;
            hard.push(s);
        } else {
            rest.push(s);
        }
    }
    rest.shuffle(rng);
    let mut left = max_steps - used.min(max_steps);
    for mut s in rest {
        if left == 0 {
            break;
        }
        let n = s.rows.len() / WIDTH;
        if n > left {
            s.rows.truncate(left * WIDTH);
        }
        left -= s.rows.len() / WIDTH;
        hard.push(s);
    }
    hard
}

/// Round scores: max over each round's scored steps.
pub(super) fn round_scores(
    n_rounds: usize,
    owner: &[usize],
    steps: &StepScores,
) -> Vec<Option<f32>> {
    let mut out: Vec<Option<f32>> = vec![None; n_rounds];
    for (g, s) in steps.score.iter().enumerate() {
        if let (Some(s), Some(&ri)) = (s, owner.get(g)) {
            out[ri] = Some(out[ri].map_or(*s, |m: f32| m.max(*s)));
        }
    }
    out
}

/// Runs of consecutive rounds (within segments) satisfying `keep`.
pub(super) fn runs_where(
    segments: &[Range<usize>],
    keep: impl Fn(usize) -> bool,
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for seg in segments {
        let mut begin = None;
        for i in seg.clone() {
            match (keep(i), begin) {
                (true, None) => begin = Some(i),
                (false, Some(b)) => {
                    out.push(b..i);
                    begin = None;
                }
                _ => {}
            }
        }
        if let Some(b) = begin {
            out.push(b..seg.end);
        }
    }
    out
}

/// Every k-th window, so that at most `max` remain.
pub(super) fn subsample(w: &[WindowRef], max: usize) -> Vec<WindowRef> {
    let k = w.len().div_ceil(max.max(1)).max(1);
    w.iter().step_by(k).copied().collect()
}

/// Hours covered by rounds: from the first start to one usual spacing after the last
/// start (a day of minutely rounds is 24 h, not 23 h 59 min 55 s).
pub(super) fn history_hours(rounds: &[RoundInfo], spacing: i64) -> f64 {
    match (rounds.first(), rounds.last()) {
        (Some(a), Some(b)) => {
            (b.start.max(b.end - spacing) + spacing - a.start) as f64 / (3600.0 * SECOND as f64)
        }
        _ => 0.0,
    }
}

pub(super) struct Split {
    pub(super) train: Vec<Range<usize>>,
    pub(super) holdout: Vec<Range<usize>>,
}

/// Blocks of [`BLOCK_ROUNDS`] rounds inside segments; every fifth block is held out
/// (so held-out rounds cover every hour of the day), unless history is too short.
pub(super) fn split_history(l: &Loaded) -> Split {
    let mut train = Vec::new();
    let mut holdout = Vec::new();
    let enough = l.rounds.len() >= BLOCK_ROUNDS * 5;
    let mut block = 0usize;
    for seg in &l.segments {
        let mut i = seg.start;
        while i < seg.end {
            let j = (i + BLOCK_ROUNDS).min(seg.end);
            if enough && block % 5 == 4 {
                holdout.push(i..j);
            } else if let Some(last) = train
                .last_mut()
                // Blocks join only within a segment: one segment ends where the next
                // begins, and a training window must not span the gap between them.
                .filter(|r: &&mut Range<usize>| r.end == i && i != seg.start)
            {
                last.end = j;
            } else {
                train.push(i..j);
            }
            block += 1;
            i = j;
        }
    }
    Split { train, holdout }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn seg(steps: usize, hardness: f32) -> RawSegment {
        RawSegment {
            rows: vec![hardness; steps * WIDTH],
            hardness,
        }
    }

    #[test]
    fn replay_keeps_the_hardest_segments_then_a_random_rest() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // 40 ordinary segments of 10 steps, and two hard ones (a daily job).
        let mut segs: Vec<RawSegment> = (0..40).map(|i| seg(10, 0.1 + i as f32 * 0.001)).collect();
        segs.push(seg(10, 0.7));
        segs.push(seg(10, 0.6));
        let kept = cap_segments(segs.clone(), 100, 0.3, &mut rng);
        let steps: usize = kept.iter().map(|s| s.rows.len() / WIDTH).sum();
        assert_eq!(steps, 100, "the budget is filled, not exceeded");
        assert!(kept.iter().any(|s| s.hardness == 0.7));
        assert!(kept.iter().any(|s| s.hardness == 0.6));
        // Without a hard share, the two are kept only by chance (here: not both).
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let plain = cap_segments(segs, 100, 0.0, &mut rng);
        let hard = plain.iter().filter(|s| s.hardness >= 0.6).count();
        assert!(hard < 2, "{hard}");
        // A segment longer than what is left is cut to fit.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cut = cap_segments(vec![seg(30, 0.0), seg(30, 0.0)], 45, 0.3, &mut rng);
        let n: Vec<usize> = cut.iter().map(|s| s.rows.len() / WIDTH).collect();
        assert_eq!(n.iter().sum::<usize>(), 45, "{n:?}");
    }
}
