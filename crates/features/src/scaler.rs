//! The robust scaler: turns a step's raw counts into values of comparable size for the
//! model, fitted on training steps and saved with the model.

use serde::{Deserialize, Serialize};

use crate::spec::N_FEATURES;

/// Scaled values are clipped to ±CLIP so one huge count cannot dominate training.
pub const CLIP: f32 = 30.0;
/// Smallest scale (IQR of log1p values): features that never vary in training (a port
/// class that is always empty) would otherwise divide by zero.
pub const MIN_SCALE: f32 = 0.25;
/// Share of a feature's median count used as its compression offset.
pub const OFFSET_SHARE: f32 = 0.1;

/// Robust scaling fitted on training steps. A count `x` is first compressed to
/// `ln(1 + x / c)`, where the offset `c` is [`OFFSET_SHARE`] of the feature's median
/// count (at least 1, so sparse counts get plain `ln(1 + x)`); then
/// `(t - median) / max(IQR, MIN_SCALE)`, clipped to ±[`CLIP`]. The offset keeps a quiet
/// few seconds (a busy count falling to zero) from looking like a jump of several
/// orders of magnitude, while a tenfold rise moves as far as it does under plain log1p.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Per-feature offset `c` (a count).
    pub offset: Vec<f32>,
    /// Per-feature median of the compressed values.
    pub median: Vec<f32>,
    /// Per-feature scale of the compressed values.
    pub scale: Vec<f32>,
}

/// Quantile by linear interpolation of a sorted slice (`q` in 0..=1).
pub fn quantile_sorted(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = (pos - lo as f64) as f32;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

impl Scaler {
    /// Fits on rows of raw counts.
    pub fn fit<'a>(rows: impl Iterator<Item = &'a [f32]>) -> Self {
        let mut cols: Vec<Vec<f32>> = vec![Vec::new(); N_FEATURES];
        for r in rows {
            for (c, x) in cols.iter_mut().zip(r.iter()) {
                c.push(x.max(0.0));
            }
        }
        let mut offset = Vec::with_capacity(N_FEATURES);
        let mut median = Vec::with_capacity(N_FEATURES);
        let mut scale = Vec::with_capacity(N_FEATURES);
        for mut c in cols {
            c.sort_by(f32::total_cmp);
            let off = (OFFSET_SHARE * quantile_sorted(&c, 0.5)).max(1.0);
            // The compression is monotone: quantiles of compressed values are the
            // compressed quantiles.
            let t = |q: f64| compress(quantile_sorted(&c, q), off);
            offset.push(off);
            median.push(t(0.5));
            scale.push((t(0.75) - t(0.25)).max(MIN_SCALE));
        }
        Scaler {
            offset,
            median,
            scale,
        }
    }

    /// Scales one step's raw counts into `out`.
    pub fn transform_into(&self, raw: &[f32], out: &mut Vec<f32>) {
        for (((x, c), m), s) in raw
            .iter()
            .zip(&self.offset)
            .zip(&self.median)
            .zip(&self.scale)
        {
            out.push(((compress(*x, *c) - m) / s).clamp(-CLIP, CLIP));
        }
    }

    /// The training median of feature `f`, as a count.
    pub fn median_count(&self, f: usize) -> f32 {
        match (self.offset.get(f), self.median.get(f)) {
            (Some(c), Some(m)) => c * m.exp_m1(),
            _ => 0.0,
        }
    }
}

/// The compression `ln(1 + x / offset)` of a count (negative counts, which no feature
/// has, as 0): see [`Scaler`] for why the offset.
fn compress(x: f32, offset: f32) -> f32 {
    (x.max(0.0) / offset).ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaler_is_robust() {
        let rows: Vec<Vec<f32>> = (0..101)
            .map(|i| {
                let mut r = vec![0.0; N_FEATURES];
                r[0] = i as f32;
                r[1] = if i == 100 { 1e6 } else { 1.0 };
                r
            })
            .collect();
        let sc = Scaler::fit(rows.iter().map(|r| r.as_slice()));
        let close = |a: f32, b: f32| (a - b).abs() < 1e-4;
        // Feature 0: counts 0..=100, median 50, offset 5.
        assert_eq!(sc.offset[0], 5.0);
        assert!(close(sc.median[0], 11f32.ln()));
        assert!(close(sc.scale[0], 16f32.ln() - 6f32.ln()));
        assert!(close(sc.median_count(0), 50.0));
        // Feature 1: constant 1 with one huge outlier; sparse, so offset 1.
        assert_eq!(sc.offset[1], 1.0);
        assert!(close(sc.median[1], 2f32.ln()));
        assert_eq!(sc.scale[1], MIN_SCALE, "an outlier does not move the scale");
        let mut out = Vec::new();
        sc.transform_into(&rows[100], &mut out);
        assert_eq!(out[1], CLIP);
        // A busy count dropping to zero stays within a few scales of its median.
        out.clear();
        sc.transform_into(&rows[0], &mut out);
        assert!(
            close(out[0], -(11f32.ln()) / (16f32.ln() - 6f32.ln())),
            "{}",
            out[0]
        );
        assert!(out[0] > -2.5);
    }

    #[test]
    fn quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert_eq!(quantile_sorted(&v, 1.0), 5.0);
        assert_eq!(quantile_sorted(&v, 0.125), 1.5);
        assert_eq!(quantile_sorted(&[], 0.5), 0.0);
    }
}
