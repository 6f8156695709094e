//! Which rounds of a batch are anomalous, which may be trained on, and how the normal
//! ones move the threshold — decisions made on scores alone, so they are tested here
//! without a database or a model.

use portwatch_model::inference::threshold_from;
use portwatch_model::persistence::Sidecar;

use super::{MAX_NORMAL_SCORES, NEAR, NEIGHBOURS};

/// The verdict on each loaded round (context rounds included, never flagged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Verdicts {
    /// Above the threshold (and not context).
    pub(super) anomalous: Vec<bool>,
    /// May be fine-tuned on: scored, not context, at most [`NEAR`] × threshold, and not
    /// within [`NEIGHBOURS`] rounds of an anomalous one.
    pub(super) trainable: Vec<bool>,
}

/// What triage said about a round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Triage {
    /// Every cause of the round is allowed or accepted: it counts as normal.
    pub(super) normal: bool,
    /// The round belongs to an incident nobody accepted: never trained on as it is.
    pub(super) held: bool,
    /// Held, and every incident it belongs to names an actor that can be left out:
    /// learnt later, without them.
    pub(super) maskable: bool,
}

/// Which rounds score above the threshold; the first `n_ctx` rounds are context only.
pub(super) fn over_threshold(scores: &[Option<f32>], n_ctx: usize, threshold: f32) -> Vec<bool> {
    (0..scores.len())
        .map(|i| i >= n_ctx && scores[i].is_some_and(|s| s > threshold))
        .collect()
}

/// Judges rounds by their scores and their triage (`triage` may be empty: nothing
/// allowed, nothing held); the first `n_ctx` rounds are context only.
pub(super) fn judge(
    scores: &[Option<f32>],
    n_ctx: usize,
    threshold: f32,
    triage: &[Triage],
) -> Verdicts {
    let n = scores.len();
    let t = |i: usize| triage.get(i).copied().unwrap_or_default();
    let anomalous = over_threshold(scores, n_ctx, threshold);
    let mut excluded = vec![false; n];
    for i in (0..n).filter(|&i| anomalous[i] && !t(i).normal) {
        for e in excluded
            .iter_mut()
            .take((i + NEIGHBOURS + 1).min(n))
            .skip(i.saturating_sub(NEIGHBOURS))
        {
            *e = true;
        }
    }
    let trainable = (0..n)
        .map(|i| {
            i >= n_ctx
                && !excluded[i]
                && !t(i).held
                && scores[i].is_some_and(|s| t(i).normal || s <= NEAR * threshold)
        })
        .collect();
    Verdicts {
        anomalous,
        trainable,
    }
}

/// Adds the trainable rounds' scores (made before training on them) to the normal
/// scores behind the threshold, keeps the latest [`MAX_NORMAL_SCORES`], and moves the
/// threshold to their quantile × margin.
pub(super) fn absorb_normal_scores(sc: &mut Sidecar, scores: &[Option<f32>], trainable: &[bool]) {
    for (s, t) in scores.iter().zip(trainable) {
        if *t && let Some(s) = s {
            sc.normal_scores.push(*s);
        }
    }
    let excess = sc.normal_scores.len().saturating_sub(MAX_NORMAL_SCORES);
    sc.normal_scores.drain(..excess);
    if let Some(t) = threshold_from(
        &sc.normal_scores,
        sc.threshold_quantile,
        sc.threshold_margin,
    ) {
        sc.threshold = Some(t);
    }
}

#[cfg(test)]
mod tests {
    use portwatch_features::Scaler;
    use portwatch_model::DetectorConfig;
    use portwatch_model::persistence::new_sidecar;

    use super::*;

    #[test]
    fn anomalous_rounds_and_their_neighbours_are_not_trained_on() {
        // Context of 2 rounds, then 8 batch rounds; threshold 10.
        let s = |v: f32| Some(v);
        let scores = [
            s(50.0), // context: never anomalous, never trained on
            s(1.0),
            s(1.0),
            s(1.0),
            s(1.0),
            s(12.0), // anomalous
            s(1.0),
            s(1.0),
            s(1.0),
            s(9.0), // a close call: above NEAR × threshold
            None,   // unscored
            s(1.0),
        ];
        let v = judge(&scores, 2, 10.0, &[]);
        let flagged: Vec<usize> = (0..scores.len()).filter(|&i| v.anomalous[i]).collect();
        assert_eq!(flagged, vec![5]);
        let trained: Vec<usize> = (0..scores.len()).filter(|&i| v.trainable[i]).collect();
        assert_eq!(
            trained,
            vec![2, 8, 11],
            "neighbours 3..=7, the close call and None out"
        );
    }

    #[test]
    fn a_flagged_round_at_the_edge_excludes_what_exists() {
        let v = judge(&[Some(20.0), Some(1.0)], 0, 10.0, &[]);
        assert_eq!(v.anomalous, vec![true, false]);
        assert_eq!(v.trainable, vec![false, false]);
        assert_eq!(judge(&[], 0, 1.0, &[]).anomalous, Vec::<bool>::new());
    }

    #[test]
    fn allowed_rounds_are_trained_on_and_held_ones_are_not() {
        let normal = Triage {
            normal: true,
            ..Triage::default()
        };
        let held = Triage {
            held: true,
            ..Triage::default()
        };
        let scores = [
            Some(1.0),
            Some(20.0),
            Some(1.0),
            Some(1.0),
            Some(1.0),
            Some(1.0),
        ];
        let triage = [
            Triage::default(),
            normal,
            Triage::default(),
            held,
            Triage::default(),
            Triage::default(),
        ];
        let v = judge(&scores, 0, 10.0, &triage);
        assert!(v.anomalous[1], "the verdict stays the model's");
        assert_eq!(
            v.trainable,
            vec![true, true, true, false, true, true],
            "an allowed anomaly neither excludes its neighbours nor is left out"
        );
    }

    #[test]
    fn normal_scores_move_the_threshold_and_are_capped() {
        let scaler = Scaler {
            offset: vec![],
            median: vec![],
            scale: vec![],
        };
        let mut sc = new_sidecar(
            DetectorConfig::small(),
            scaler,
            "2026-01-05T00:00:00.000000Z",
        );
        sc.threshold_quantile = 0.9;
        sc.threshold_margin = 2.0;
        // Only trainable rounds count: [3, 5] → 0.9-quantile 4.8, × 2. With the
        // untrainable 100 it would be 162.
        let scores = [Some(3.0), Some(100.0), None, Some(5.0)];
        absorb_normal_scores(&mut sc, &scores, &[true, false, true, true]);
        assert_eq!(sc.normal_scores, vec![3.0, 5.0]);
        let t = sc.threshold.unwrap();
        assert!((t - 9.6).abs() < 1e-4, "{t}");
        // A full buffer drops its oldest scores.
        sc.normal_scores = vec![1.0; MAX_NORMAL_SCORES];
        absorb_normal_scores(&mut sc, &[Some(7.0)], &[true]);
        assert_eq!(sc.normal_scores.len(), MAX_NORMAL_SCORES);
        assert_eq!(sc.normal_scores.last(), Some(&7.0));
    }
}
