//! A per-feature z-score baseline behind the same [`Scorer`] interface: a step's error
//! is the mean over features of the squared robust z-score of its scaled value against
//! the training distribution (scaled values are already `(x - median) / IQR`), divided by
//! the feature's training variance like the model's residuals. No temporal context, no
//! calendar: what a simple detector would do.

use crate::Result;
use crate::inference::{MIN_RESIDUAL_SCALE, Scorer, StepScores, aggregate};
use crate::training::Series;

/// The z-score scorer.
pub struct ZScore {
    /// Per-feature RMS of scaled values on training data.
    pub scale: Vec<f32>,
}

impl ZScore {
    /// Fits on a training series.
    pub fn fit(train: &Series) -> Self {
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
        aggregate(series, 1, 0, |sink| {
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
