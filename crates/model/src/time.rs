//! Time for the model: the database's timestamps (through the store crate, which owns
//! their one format) and the calendar inputs of a step.

pub use portwatch_store::time::format_micros;

use crate::{Error, Result};

/// Microseconds in one second.
pub const SECOND: i64 = 1_000_000;

/// Parses a stored timestamp (or a variant a user types) into microseconds.
pub fn parse_micros(s: &str) -> Result<i64> {
    portwatch_store::time::parse_micros(s).map_err(|_| Error::Timestamp(s.to_string()))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_is_periodic() {
        let a = calendar_inputs(0);
        let b = calendar_inputs(7 * 86_400 * SECOND);
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}
