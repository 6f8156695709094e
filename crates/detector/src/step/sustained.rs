//! Sustained deviations: a moderate shift that lasts — several consecutive rounds well
//! above their usual score, though under the single-round threshold (the host itself
//! scanning slowly, a long low-rate attack on a service). One round's score against a
//! high threshold hears spikes only; evidence accumulated over rounds hears these.
//!
//! A one-sided CUSUM on the round score relative to the usual (median) normal score:
//! `S_t = max(0, S_{t-1} + min(r_t, k + c) − k)`. A round raises `S` only when its
//! ratio `r_t` exceeds `k`, by at most `c`, so a shift is declared after a few rounds
//! however high one round scores; a shift is declared while `S > h`. Rounds over the
//! single-round threshold are the threshold's business and leave `S` as it is (an
//! attack of 50× would otherwise keep the sum up for hours after it ended). `h` is
//! calibrated on the model's own normal round scores (the ones behind the threshold):
//! the largest `S` normal history ever reached, times a margin, so that normal streaks
//! stay below it.
//!
//! A round that an incident naming an actor holds (a backdoor listening, a scanner
//! named) may lower `S` but not raise it: its excess is that incident's, already
//! announced. Otherwise a backdoor's 23 rounds at 3–4× the usual score, under the
//! threshold, left a sum that took 50 rounds to drain once it was gone, and those
//! rounds opened a "sustained deviation" of their own (simulated workstation week 926).

use portwatch_model::inference::median;
use portwatch_store::Db;

use super::series::Loaded;
use crate::Result;

/// Ratio to the usual score below which a round is no evidence of a shift.
pub const K: f32 = 2.0;
/// Most one round adds to the sum.
pub const C: f32 = 2.0;
/// Margin over the largest CUSUM normal history reached.
pub const H_MARGIN: f32 = 1.5;
/// Smallest `h`: at least this much accumulated excess (e.g. four rounds at 3.5×).
pub const H_MIN: f32 = 6.0;
/// Earlier rounds read to carry the sum into a run.
pub const LOOKBACK_ROUNDS: usize = 120;

/// A calibrated detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cusum {
    /// The usual (median) normal round score.
    pub usual: f32,
    /// Decision level.
    pub h: f32,
}

impl Cusum {
    /// Calibrates on normal round scores in time order; None with fewer than 60 (an hour
    /// of rounds) or a zero median.
    pub fn calibrate(normal: &[f32]) -> Option<Cusum> {
        if normal.len() < 60 {
            return None;
        }
        let mut v: Vec<f32> = normal.iter().copied().filter(|x| x.is_finite()).collect();
        let usual = median(&mut v)?;
        if usual <= 0.0 {
            return None;
        }
        let mut s = 0.0f32;
        let mut worst = 0.0f32;
        for x in normal {
            s = step(s, *x / usual);
            worst = worst.max(s);
        }
        Some(Cusum {
            usual,
            h: (worst * H_MARGIN).max(H_MIN),
        })
    }

    /// The sum after `scores` (rounds without a score, or over `threshold`, leave it
    /// as it is).
    #[cfg(test)]
    pub fn run(&self, mut s: f32, scores: &[Option<f32>], threshold: f32) -> (f32, Vec<f32>) {
        let mut trace = Vec::with_capacity(scores.len());
        for x in scores {
            s = self.next(s, *x, threshold);
            trace.push(s);
        }
        (s, trace)
    }

    /// The sum after one round's score.
    fn next(&self, s: f32, score: Option<f32>, threshold: f32) -> f32 {
        match score {
            Some(x) if x <= threshold => step(s, x / self.usual),
            _ => s,
        }
    }

    /// Whether a sum says "shifted".
    pub fn alarm(&self, s: f32) -> bool {
        s > self.h
    }
}

/// The sum walked over a batch's rounds in time order, as triage learns which rounds
/// an incident naming an actor holds: [`ShiftWalk::enter`] a round, then
/// [`ShiftWalk::leave`] it.
#[derive(Clone, Debug)]
pub(super) struct ShiftWalk {
    cusum: Option<Cusum>,
    threshold: f32,
    /// The sum before the round entered.
    s: f32,
    /// The sum with the round entered counted in full.
    counted: f32,
}

impl ShiftWalk {
    /// A walk that never alarms (too little normal history).
    pub(super) fn none() -> ShiftWalk {
        ShiftWalk {
            cusum: None,
            threshold: f32::MAX,
            s: 0.0,
            counted: 0.0,
        }
    }

    /// Enters the next round: whether its sum, counted in full, says "shifted".
    pub(super) fn enter(&mut self, score: Option<f32>) -> bool {
        let Some(c) = self.cusum else {
            return false;
        };
        self.counted = c.next(self.s, score, self.threshold);
        c.alarm(self.counted)
    }

    /// Leaves the round entered last; `held`: an incident naming an actor holds it, so
    /// its excess is not counted (a fall is).
    pub(super) fn leave(&mut self, held: bool) {
        self.s = if held {
            self.counted.min(self.s)
        } else {
            self.counted
        };
    }
}

/// Which of the batch's rounds (`batch`: indices in `l`, in time order) may belong to
/// a lasting shift, not over the threshold already, were no round of the batch held by
/// an incident naming an actor (a superset of what the walk finds: holding only lowers
/// the sum); and the walk, from the sum the rounds evaluated before the batch left. All
/// false until enough normal scores exist.
pub(super) fn sustained_rounds(
    db: &Db,
    normal_scores: &[f32],
    l: &Loaded,
    batch: &[usize],
    scores: &[Option<f32>],
    over: &[bool],
    threshold: f32,
) -> Result<(Vec<bool>, ShiftWalk)> {
    let mut out = vec![false; l.rounds.len()];
    let (Some(c), Some(&first)) = (Cusum::calibrate(normal_scores), batch.first()) else {
        return Ok((out, ShiftWalk::none()));
    };
    let mut walk = ShiftWalk {
        cusum: Some(c),
        threshold,
        s: 0.0,
        counted: 0.0,
    };
    for (score, held) in db.scores_before(l.rounds[first].start, LOOKBACK_ROUNDS)? {
        walk.enter(score);
        walk.leave(held);
    }
    let mut upper = walk.clone();
    for &i in batch {
        out[i] = upper.enter(scores[i]) && !over[i];
        upper.leave(false);
    }
    Ok((out, walk))
}

fn step(s: f32, ratio: f32) -> f32 {
    (s + ratio.min(K + C) - K).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Normal scores: mostly near 1 with a rare round at 2.5.
    fn normal() -> Vec<f32> {
        (0..2000)
            .map(|i| {
                if i % 97 == 0 {
                    2.5
                } else {
                    0.8 + (i % 7) as f32 * 0.06
                }
            })
            .collect()
    }

    #[test]
    fn normal_history_stays_below_and_a_lasting_shift_crosses() {
        let c = Cusum::calibrate(&normal()).unwrap();
        assert!((c.usual - 0.98).abs() < 0.05, "{c:?}");
        let (s, _) = c.run(
            0.0,
            &normal().into_iter().map(Some).collect::<Vec<_>>(),
            f32::MAX,
        );
        assert!(!c.alarm(s));
        // Three times the usual score for a while: no single round near a 5× threshold,
        // but the sum crosses within a few rounds and stays over while it lasts.
        let shifted: Vec<Option<f32>> = (0..15).map(|_| Some(3.0 * c.usual)).collect();
        let (_, trace) = c.run(0.0, &shifted, 5.0 * c.usual);
        let first = trace.iter().position(|s| c.alarm(*s)).unwrap();
        assert!(first <= 6, "crossed at round {first}: {trace:?}");
        assert!(trace[first..].iter().all(|s| c.alarm(*s)));
        // It falls back once the shift ends.
        let mut after = shifted.clone();
        after.extend((0..30).map(|_| Some(c.usual)));
        let (end, _) = c.run(0.0, &after, 5.0 * c.usual);
        assert!(!c.alarm(end));
        // An attack far over the threshold leaves the sum where it was.
        let attack: Vec<Option<f32>> = (0..20).map(|_| Some(50.0 * c.usual)).collect();
        let (s, _) = c.run(0.0, &attack, 5.0 * c.usual);
        assert_eq!(s, 0.0);
    }

    #[test]
    fn rounds_an_actor_explains_lower_the_sum_but_do_not_raise_it() {
        let c = Cusum::calibrate(&normal()).unwrap();
        let mut walk = ShiftWalk {
            cusum: Some(c),
            threshold: 5.0 * c.usual,
            s: 0.0,
            counted: 0.0,
        };
        // A backdoor's rounds at 4× the usual score, under the threshold: held by its
        // incident, they add nothing; counted, the sum would be far over `h`.
        for _ in 0..23 {
            walk.enter(Some(4.0 * c.usual));
            walk.leave(true);
        }
        assert_eq!(walk.s, 0.0);
        assert!(!walk.enter(Some(1.5 * c.usual)), "no echo once it is gone");
        walk.leave(false);
        // The same rounds not held are a lasting shift, which ordinary rounds drain.
        for _ in 0..23 {
            walk.enter(Some(4.0 * c.usual));
            walk.leave(false);
        }
        assert!(c.alarm(walk.s));
        let high = walk.s;
        // A held round below the usual level still drains it.
        walk.enter(Some(0.5 * c.usual));
        walk.leave(true);
        assert!(walk.s < high);
        assert!(!ShiftWalk::none().enter(Some(1000.0)));
    }

    #[test]
    fn too_little_history_is_not_calibrated() {
        assert!(Cusum::calibrate(&[1.0; 59]).is_none());
        assert!(Cusum::calibrate(&[0.0; 100]).is_none());
    }
}
