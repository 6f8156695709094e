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
    pub fn run(&self, mut s: f32, scores: &[Option<f32>], threshold: f32) -> (f32, Vec<f32>) {
        let mut trace = Vec::with_capacity(scores.len());
        for x in scores {
            if let Some(x) = x
                && *x <= threshold
            {
                s = step(s, x / self.usual);
            }
            trace.push(s);
        }
        (s, trace)
    }

    /// Whether a sum says "shifted".
    pub fn alarm(&self, s: f32) -> bool {
        s > self.h
    }
}

/// Which of the batch's rounds (`batch`: indices in `l`, in time order) belong to a
/// lasting shift and are not over the threshold already; the sum starts from the
/// rounds evaluated before the batch. All false until enough normal scores exist.
pub(super) fn sustained_rounds(
    db: &Db,
    normal_scores: &[f32],
    l: &Loaded,
    batch: &[usize],
    scores: &[Option<f32>],
    over: &[bool],
    threshold: f32,
) -> Result<Vec<bool>> {
    let mut out = vec![false; l.rounds.len()];
    let (Some(c), Some(&first)) = (Cusum::calibrate(normal_scores), batch.first()) else {
        return Ok(out);
    };
    let prior = db.scores_before(l.rounds[first].start, LOOKBACK_ROUNDS)?;
    let (s0, _) = c.run(0.0, &prior, threshold);
    let batch_scores: Vec<Option<f32>> = batch.iter().map(|&i| scores[i]).collect();
    let (_, trace) = c.run(s0, &batch_scores, threshold);
    for (&i, s) in batch.iter().zip(trace) {
        out[i] = c.alarm(s) && !over[i];
    }
    Ok(out)
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
    fn too_little_history_is_not_calibrated() {
        assert!(Cusum::calibrate(&[1.0; 59]).is_none());
        assert!(Cusum::calibrate(&[0.0; 100]).is_none());
    }
}
