//! Time as the model sees it: microsecond timestamps, and the calendar inputs of a
//! step (time of day and day of week as points on circles).

/// Microseconds in one second (timestamps are µs since the Unix epoch, UTC).
pub const SECOND: i64 = 1_000_000;

/// Time-of-day and day-of-week as points on circles: `[sin, cos]` of each, so 23:59 is
/// next to 00:00 and Sunday next to Monday.
pub fn calendar_inputs(us: i64) -> [f32; 4] {
    let secs = us.div_euclid(SECOND);
    let day = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400) as f64 / 86_400.0;
    // 1970-01-01 was a Thursday: Monday = 0.
    let dow = (day + 3).rem_euclid(7) as f64 / 7.0;
    let tau = std::f64::consts::TAU;
    [
        (tau * tod).sin() as f32,
        (tau * tod).cos() as f32,
        (tau * dow).sin() as f32,
        (tau * dow).cos() as f32,
    ]
}

/// Half-hours of the day: the slots residual scales are kept for.
pub const DAY_SLOTS: usize = 48;

/// The half-hour of the day (0..[`DAY_SLOTS`]) of a step, from its time-of-day inputs
/// (the first two of [`calendar_inputs`]).
pub fn day_slot(sin_tod: f32, cos_tod: f32) -> usize {
    let frac =
        (f64::from(sin_tod).atan2(f64::from(cos_tod)) / std::f64::consts::TAU).rem_euclid(1.0);
    ((frac * DAY_SLOTS as f64) as usize).min(DAY_SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_slots_follow_the_clock() {
        for (h, m, slot) in [
            (0, 0, 0),
            (0, 29, 0),
            (0, 30, 1),
            (3, 0, 6),
            (3, 4, 6),
            (23, 59, 47),
        ] {
            let c = calendar_inputs((h * 3600 + m * 60 + 1) * SECOND + 5 * 86_400 * SECOND);
            assert_eq!(day_slot(c[0], c[1]), slot, "{h}:{m}");
        }
    }

    #[test]
    fn calendar_is_periodic() {
        let a = calendar_inputs(0);
        let b = calendar_inputs(7 * 86_400 * SECOND);
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}
