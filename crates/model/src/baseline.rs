//! A per-feature z-score baseline behind the same [`Scorer`] interface: a step's error
//! is built from the squared robust z-scores of its scaled values against the training
//! distribution (scaled values are already `(x - median) / IQR`), each divided by the
//! feature's training variance like the model's residuals, and combined as the model's
//! are (the mean of the `top_k` largest), so the comparison is of the model, not of the
//! aggregation. No temporal context, no calendar: what a simple detector would do.

use crate::Result;
use crate::inference::{MIN_RESIDUAL_SCALE, Scorer, StepScores, aggregate};
use crate::training::Series;

/// The z-score scorer.
pub struct ZScore {
    /// Per-feature RMS of scaled values on training data.
    pub scale: Vec<f32>,
    /// Features averaged per step error, as the model's `score_top_k`.
    pub top_k: usize,
}

impl ZScore {
    /// Fits on a training series.
    pub fn fit(train: &Series, top_k: usize) -> Self {
        let nf = train.n_features;
        let w = train.width;
        let mut sums = vec![0.0f64; nf];
        let mut n = 0usize;
        for seg in &train.segments {
            for row in seg.chunks(w) {
                for (s, x) in sums.iter_mut().zip(row) {
                    *s += f64::from(x * x);
                }
                n += 1;
            }
        }
        ZScore {
            top_k,
            scale: sums
                .iter()
                .map(|s| ((s / n.max(1) as f64).sqrt() as f32).max(MIN_RESIDUAL_SCALE))
                .collect(),
        }
    }
}

impl Scorer for ZScore {
    fn name(&self) -> &str {
        "zscore"
    }

    fn score_steps(&self, series: &Series) -> Result<StepScores> {
        let nf = series.n_features;
        let w = series.width;
        aggregate(series, self.top_k, |sink| {
            let mut errs = vec![0.0f32; nf];
            for (s, seg) in series.segments.iter().enumerate() {
                for (i, row) in seg.chunks(w).enumerate() {
                    for f in 0..nf {
                        let z = row[f] / self.scale[f];
                        errs[f] = z * z;
                    }
                    sink((s, i), 0, &errs);
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two features, one steady and one that varies in training; a step where the
    /// steady one jumps scores by that jump alone under top-1, diluted under the mean.
    #[test]
    fn a_jump_in_one_feature_is_its_squared_z_score() {
        let mut train = Series::new(2, 2);
        train.segments.push(
            (0..100)
                .flat_map(|i| [0.0, if i % 2 == 0 { 1.0 } else { -1.0 }])
                .collect(),
        );
        let top1 = ZScore::fit(&train, 1);
        assert_eq!(top1.scale, vec![MIN_RESIDUAL_SCALE, 1.0]);
        let mut test = Series::new(2, 2);
        test.segments.push(vec![0.0, 1.0, 1.0, 0.0]);
        let s = top1.score_steps(&test).unwrap().score;
        assert_eq!(s[0], Some(1.0), "normal variation: z = 1");
        assert_eq!(s[1], Some(100.0), "1 / 0.1, squared");
        let mean = ZScore { top_k: 0, ..top1 };
        assert_eq!(mean.score_steps(&test).unwrap().score[1], Some(50.0));
    }
}
