//! Scoring: reconstruction errors per window, then per step (median over the windows that
//! cover it), then per round (max over its steps, in the detector).
//!
//! A window's error at a step is the mean over features of the squared residual divided
//! by that feature's typical residual on training data (`residual_scale`): a feature the
//! model always reconstructs well (an empty port class) then counts as much when it
//! breaks as a noisy packet count does when it moves a lot.

use burn::prelude::*;

use crate::model::Autoencoder;
use crate::training::{Series, WindowRef, infer_device};
use crate::{Error, Result};
use portwatch_features::calendar::{DAY_SLOTS, day_slot};
use portwatch_features::quantile_sorted;

/// Smallest residual scale (scaled units), so perfectly reconstructed features do not
/// divide by zero.
pub const MIN_RESIDUAL_SCALE: f32 = 0.1;
/// Windows per inference batch.
const INFER_BATCH: usize = 256;

/// Per-step results, in series order (segments concatenated).
#[derive(Clone, Debug, Default)]
pub struct StepScores {
    /// Step score (None when no window covers the step: a segment shorter than a window).
    pub score: Vec<Option<f32>>,
    /// Per-feature mean normalised squared error over the covering windows.
    pub feature_error: Vec<Vec<f32>>,
}

/// Anything that turns a series into step scores: the autoencoder, or the z-score
/// baseline.
pub trait Scorer {
    /// A short name (`batches.alg`).
    fn name(&self) -> &str;
    /// Scores every step of `series`.
    fn score_steps(&self, series: &Series) -> Result<StepScores>;
}

/// Median of a small list (mean of the middle two for an even count).
pub fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Runs the model over windows in chunks; `f` gets each chunk's refs, outputs
/// (`[len, window, n_features]`) and inputs (`[len, window, width]`), in order.
///
/// Chunks are run two at a time, the second on a scoped thread: the model is small,
/// so one chunk keeps one core busy and a second core would otherwise sit idle while
/// a cold start scores a day of windows. Two chunks in flight bound the memory.
pub fn forward_windows(
    model: &Autoencoder,
    series: &Series,
    refs: &[WindowRef],
    window: usize,
    mut f: impl FnMut(&[WindowRef], &[f32], &[f32]),
) -> Result<()> {
    let run = |chunk: &[WindowRef]| -> Result<(Vec<f32>, Vec<f32>)> {
        let input = series.gather(chunk, window);
        let x = Tensor::<3>::from_data(
            TensorData::new(input.clone(), [chunk.len(), window, series.width]),
            &infer_device(),
        );
        let out = model
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Invalid(format!("model output: {e:?}")))?;
        Ok((out, input))
    };
    let chunks: Vec<&[WindowRef]> = refs.chunks(INFER_BATCH).collect();
    for pair in chunks.chunks(2) {
        let (first, second) = match pair {
            [a, b] => std::thread::scope(|s| {
                let second = s.spawn(|| run(b));
                let first = run(a);
                let second = second
                    .join()
                    .unwrap_or_else(|_| Err(Error::Invalid("a scoring thread panicked".into())));
                (first, Some(second))
            }),
            [a] => (run(a), None),
            _ => continue,
        };
        let (out, input) = first?;
        f(pair[0], &out, &input);
        if let Some(second) = second {
            let (out, input) = second?;
            f(pair[1], &out, &input);
        }
    }
    Ok(())
}

/// Plain MSE of the model on some windows (training loss, held-out loss).
pub fn mse(model: &Autoencoder, series: &Series, refs: &[WindowRef], window: usize) -> Result<f32> {
    let nf = series.n_features;
    let w = series.width;
    let mut sum = 0.0f64;
    let mut n = 0usize;
    forward_windows(model, series, refs, window, |chunk, out, inp| {
        for k in 0..chunk.len() * window {
            for f in 0..nf {
                let r = out[k * nf + f] - inp[k * w + f];
                sum += f64::from(r * r);
            }
            n += nf;
        }
    })?;
    Ok(if n == 0 {
        f32::NAN
    } else {
        (sum / n as f64) as f32
    })
}

/// The half-hour slot of a series row, from its first two calendar inputs (time-of-day
/// sin and cos, right after the `nf` features).
fn row_slot(row: &[f32], nf: usize) -> usize {
    match (row.get(nf), row.get(nf + 1)) {
        (Some(s), Some(c)) => day_slot(*s, *c),
        _ => 0,
    }
}

/// Quantile of |residual| that sets a feature's scale, divided by [`TAIL_Z`].
pub const TAIL_QUANTILE: f64 = 0.995;
/// The standard normal's two-sided 0.995 point: for Gaussian residuals the tail
/// estimate equals the RMS.
pub const TAIL_Z: f32 = 2.81;

/// Per-feature residual scales on some windows, for each half-hour of the day
/// ([`DAY_SLOTS`] rows of `n_features`, row-major).
///
/// The day-wide scale of a feature is the larger of its RMS residual and the 99.5th
/// percentile of |residual| / 2.81, floored at [`MIN_RESIDUAL_SCALE`]. The tail term
/// matters for sparse features: a count that is zero 99 % of the time but moves during
/// a daily job has a tiny RMS, and would otherwise make the job's start and end (which
/// the model cannot time to the step) look like attacks.
///
/// A slot's scale is the larger of the day-wide one and the same estimate over the
/// residuals of that half-hour and the two beside it: residuals are not equally large
/// all day. A nightly backup's upload starts and stops at random seconds, so during its
/// minutes the traffic features miss by more than at any other time; measured on the
/// whole day, those misses look like attacks every night. Per slot, only the hour
/// around the job is made more tolerant, and only for the features the job moves.
pub fn residual_scale(
    model: &Autoencoder,
    series: &Series,
    refs: &[WindowRef],
    window: usize,
) -> Result<Vec<f32>> {
    let nf = series.n_features;
    let w = series.width;
    let mut by_slot: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); nf]; DAY_SLOTS];
    let mut moved = vec![0usize; nf];
    let mut n = 0usize;
    forward_windows(model, series, refs, window, |chunk, out, inp| {
        for k in 0..chunk.len() * window {
            let row = &inp[k * w..(k + 1) * w];
            let slot = row_slot(row, nf);
            for (f, c) in by_slot[slot].iter_mut().enumerate() {
                c.push((out[k * nf + f] - row[f]).abs());
                if row[f].abs() > 0.01 {
                    moved[f] += 1;
                }
            }
            n += 1;
        }
    })?;
    let estimate = |c: &mut Vec<f32>| -> f32 {
        if c.is_empty() {
            return 0.0;
        }
        let rms = (c.iter().map(|x| f64::from(x * x)).sum::<f64>() / c.len() as f64).sqrt() as f32;
        c.sort_by(f32::total_cmp);
        rms.max(quantile_sorted(c, TAIL_QUANTILE) / TAIL_Z)
    };
    let mut day = Vec::with_capacity(nf);
    for (f, moved) in moved.iter().enumerate() {
        let mut all: Vec<f32> = by_slot.iter().flat_map(|s| s[f].iter().copied()).collect();
        // A feature that moves away from its median in normal history (a daily job's
        // connections) cannot be timed to the step; one that never moves (an unused
        // port class, a hash bucket) keeps the fine floor, so any change there counts.
        let floor = if *moved as f64 >= ACTIVE_FRACTION * n as f64 {
            ACTIVE_MIN_RESIDUAL_SCALE
        } else {
            MIN_RESIDUAL_SCALE
        };
        day.push(estimate(&mut all).max(floor));
    }
    let mut out = Vec::with_capacity(DAY_SLOTS * nf);
    for slot in 0..DAY_SLOTS {
        let near = [
            (slot + DAY_SLOTS - 1) % DAY_SLOTS,
            slot,
            (slot + 1) % DAY_SLOTS,
        ];
        for (f, d) in day.iter().enumerate() {
            let mut c: Vec<f32> = near
                .iter()
                .flat_map(|&s| by_slot[s][f].iter().copied())
                .collect();
            // Too few residuals to estimate a tail: keep the day-wide scale.
            let local = if c.len() >= MIN_SLOT_RESIDUALS {
                estimate(&mut c)
            } else {
                0.0
            };
            out.push(d.max(local));
        }
    }
    Ok(out)
}

/// Fewest residuals around a slot for its own scale (below, the day-wide one is used).
pub const MIN_SLOT_RESIDUALS: usize = 200;

/// Fraction of training steps a feature must leave its median in to count as active.
pub const ACTIVE_FRACTION: f64 = 0.002;
/// Residual-scale floor of active features.
pub const ACTIVE_MIN_RESIDUAL_SCALE: f32 = 0.5;

/// Aggregates per-window, per-step error vectors into [`StepScores`]: `err(k, f)` gives
/// window-step `k`'s normalised squared error of feature `f`.
pub fn aggregate(
    series: &Series,
    top_k: usize,
    mut per_window: impl FnMut(&mut dyn FnMut(WindowRef, usize, &[f32])) -> Result<()>,
) -> Result<StepScores> {
    let nf = series.n_features;
    let mut offsets = Vec::with_capacity(series.segments.len());
    let mut total = 0;
    for s in 0..series.segments.len() {
        offsets.push(total);
        total += series.len_of(s);
    }
    let mut lists: Vec<Vec<f32>> = vec![Vec::new(); total];
    let mut feat = vec![vec![0.0f32; nf]; total];
    per_window(&mut |(s, i), t, errs: &[f32]| {
        let g = offsets[s] + i + t;
        lists[g].push(step_error(errs, top_k));
        for (a, e) in feat[g].iter_mut().zip(errs) {
            *a += e;
        }
    })?;
    let mut score = Vec::with_capacity(total);
    for (g, l) in lists.iter_mut().enumerate() {
        let n = l.len();
        if n > 0 {
            for a in &mut feat[g] {
                *a /= n as f32;
            }
        }
        score.push(median(l));
    }
    Ok(StepScores {
        score,
        feature_error: feat,
    })
}

/// A window-step's error from its per-feature errors: the mean over all features
/// (`top_k` = 0), or over the `top_k` largest, so that an attack moving two or three
/// features is not diluted by the fifty that stay normal.
pub fn step_error(errs: &[f32], top_k: usize) -> f32 {
    if top_k == 0 || top_k >= errs.len() {
        return errs.iter().sum::<f32>() / errs.len().max(1) as f32;
    }
    let mut v = errs.to_vec();
    v.select_nth_unstable_by(top_k - 1, |a, b| b.total_cmp(a));
    v[..top_k].iter().sum::<f32>() / top_k as f32
}

/// The autoencoder as a [`Scorer`].
pub struct ModelScorer<'a> {
    /// The model (inference device).
    pub model: &'a Autoencoder,
    /// Per-slot, per-feature residual scales from training ([`residual_scale`]).
    pub residual_scale: &'a [f32],
    /// Steps per window.
    pub window: usize,
    /// Features averaged per step error (0 = all; [`step_error`]).
    pub top_k: usize,
}

impl Scorer for ModelScorer<'_> {
    fn name(&self) -> &str {
        "cnn-lstm-ae"
    }

    fn score_steps(&self, series: &Series) -> Result<StepScores> {
        let refs = series.windows(self.window, 1);
        let nf = series.n_features;
        let w = series.width;
        let window = self.window;
        aggregate(series, self.top_k, |sink| {
            let mut errs = vec![0.0f32; nf];
            forward_windows(self.model, series, &refs, window, |chunk, out, inp| {
                for (j, r) in chunk.iter().enumerate() {
                    for t in 0..window {
                        let k = j * window + t;
                        let row = &inp[k * w..(k + 1) * w];
                        let slot = row_slot(row, nf);
                        let scale = self
                            .residual_scale
                            .get(slot * nf..(slot + 1) * nf)
                            .unwrap_or(&[]);
                        for f in 0..nf {
                            let s = scale.get(f).copied().unwrap_or(MIN_RESIDUAL_SCALE);
                            let d = (out[k * nf + f] - row[f]) / s;
                            errs[f] = d * d;
                        }
                        sink(*r, t, &errs);
                    }
                }
            })
        })
    }
}

/// The threshold: the `quantile` of round scores on held-out normal history, times a
/// margin. With at least twice `1 / (1 − quantile)` scores the empirical quantile is
/// used. With fewer (a day of held-out rounds cannot measure a 1-in-1440 tail, and one
/// odd round would set it alone) the tail is extrapolated by peaks over threshold: above
/// the level `u` that leaves about ten scores (at most the 90th percentile), excesses are
/// taken as exponential with a scale from their *median* (robust to that odd round):
/// `u + scale · ln(P(score > u) / (1 − quantile))`. For exponential scores this is exact.
pub fn threshold_from(scores: &[f32], quantile: f64, margin: f32) -> Option<f32> {
    let mut v: Vec<f32> = scores.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len() as f64;
    let tail = 1.0 - quantile;
    if quantile <= 0.9 || n * tail >= 2.0 {
        return Some(quantile_sorted(&v, quantile) * margin);
    }
    let p_u = (1.0 - 10.0 / n).max(0.9);
    let u = quantile_sorted(&v, p_u);
    let mut excess: Vec<f32> = v.iter().filter(|&&x| x > u).map(|x| x - u).collect();
    let scale = median(&mut excess).unwrap_or(0.0) / std::f32::consts::LN_2;
    let t = u + scale * (((1.0 - p_u) / tail).max(1.0).ln() as f32);
    Some(t * margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DetectorConfig;
    use crate::training::fresh_model;
    use portwatch_features::calendar::{SECOND, calendar_inputs};

    /// Chunks scored two at a time reach the callback in order, each with the model's
    /// own output for its windows; an odd chunk at the end too.
    #[test]
    fn windows_are_scored_in_order_on_two_threads() {
        let (nf, width, window) = (3, 7, 12);
        let mut s = Series::new(nf, width);
        s.segments.push(
            (0..(3 * INFER_BATCH + 40) * width)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect(),
        );
        let refs = s.windows(window, 1);
        assert!(refs.len() > 2 * INFER_BATCH, "an odd chunk after a pair");
        let model = fresh_model(&DetectorConfig::small(), nf, width - nf).valid();
        let mut seen = Vec::new();
        forward_windows(&model, &s, &refs, window, |chunk, out, input| {
            let want = model
                .forward(Tensor::<3>::from_data(
                    TensorData::new(input.to_vec(), [chunk.len(), window, width]),
                    &infer_device(),
                ))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(out, want.as_slice());
            assert_eq!(input, s.gather(chunk, window).as_slice());
            seen.extend_from_slice(chunk);
        })
        .unwrap();
        assert_eq!(seen, refs);
    }

    /// Feature 0 jumps about only between 03:00 and 03:30 of each day: its scale there
    /// (and in the half-hours beside it) is larger than the day-wide one; everywhere
    /// else, and for the quiet feature 1, the day-wide scale holds.
    #[test]
    fn residual_scales_follow_the_time_of_day() {
        let (nf, w) = (2, 6);
        let mut s = Series::new(nf, w);
        let mut rows = Vec::new();
        for i in 0..2 * 288 {
            let ts = i as i64 * 300 * SECOND; // every 5 minutes, two days
            let c = calendar_inputs(ts);
            let in_job = day_slot(c[0], c[1]) == 6;
            let wild = if in_job {
                ((i * 7919) % 11) as f32 - 5.0
            } else {
                0.0
            };
            rows.extend_from_slice(&[wild, 0.1]);
            rows.extend_from_slice(&c);
        }
        s.segments.push(rows);
        let model = fresh_model(&DetectorConfig::small(), nf, 4).valid();
        let refs = s.windows(12, 1);
        let scale = residual_scale(&model, &s, &refs, 12).unwrap();
        assert_eq!(scale.len(), DAY_SLOTS * nf);
        let at = |slot: usize, f: usize| scale[slot * nf + f];
        assert!(at(6, 0) > 1.5 * at(20, 0), "{} vs {}", at(6, 0), at(20, 0));
        assert!(at(5, 0) > 1.5 * at(20, 0) && at(7, 0) > 1.5 * at(20, 0));
        assert_eq!(
            at(20, 0),
            at(30, 0),
            "away from the job: the day-wide scale"
        );
        assert_eq!(at(6, 1), at(20, 1), "the quiet feature is not affected");
    }

    #[test]
    fn median_of_lists() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn step_score_is_median_over_covering_windows() {
        // One segment of 4 steps, 1 feature, window 2: windows at 0, 1, 2.
        let mut s = Series::new(1, 1);
        s.segments.push(vec![0.0; 4]);
        let errs = [[1.0f32, 10.0], [3.0, 5.0], [7.0, 2.0]];
        assert_eq!(step_error(&[1.0, 5.0, 3.0], 2), 4.0);
        assert_eq!(step_error(&[1.0, 5.0, 3.0], 0), 3.0);
        let out = aggregate(&s, 0, |sink| {
            for (i, e) in errs.iter().enumerate() {
                for (t, v) in e.iter().enumerate() {
                    sink((0, i), t, &[*v]);
                }
            }
            Ok(())
        })
        .unwrap();
        // step 0: [1]; step 1: [10, 3]; step 2: [5, 7]; step 3: [2]
        assert_eq!(out.score, vec![Some(1.0), Some(6.5), Some(6.0), Some(2.0)]);
        assert_eq!(out.feature_error[1], vec![6.5]);
    }

    #[test]
    fn threshold_quantile() {
        // Exponential(1) scores: the 1 - 1/1440 quantile is ln 1440 = 7.27.
        let n = 2000;
        let mut scores: Vec<f32> = (1..=n)
            .map(|i| -(1.0 - i as f32 / (n + 1) as f32).ln())
            .collect();
        let t = threshold_from(&scores, 1.0 - 1.0 / 1440.0, 1.0).unwrap();
        assert!((t - 1440f32.ln()).abs() < 0.4, "{t}");
        // One wild held-out round does not set the threshold.
        scores.push(1000.0);
        let t2 = threshold_from(&scores, 1.0 - 1.0 / 1440.0, 1.0).unwrap();
        assert!((t2 - t).abs() < 0.6, "{t} {t2}");
        assert_eq!(threshold_from(&[2.0, f32::NAN], 0.5, 2.0), Some(4.0));
        assert_eq!(threshold_from(&[], 0.5, 1.0), None);
    }
}
