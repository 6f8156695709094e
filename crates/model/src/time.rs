//! Timestamps: the schema's `YYYY-MM-DDTHH:MM:SS.ffffffZ` text to and from microseconds
//! since the Unix epoch (UTC).

use chrono::{DateTime, NaiveDateTime};

use crate::{Error, Result};

/// Microseconds in one second.
pub const SECOND: i64 = 1_000_000;

/// Parses a stored timestamp (fraction optional, `Z` or `+00:00` suffix).
pub fn parse_micros(s: &str) -> Result<i64> {
    let t = s.trim();
    if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.fZ") {
        return Ok(dt.and_utc().timestamp_micros());
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_micros())
        .or_else(|_| {
            NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                .map(|d| d.and_utc().timestamp_micros())
        })
        .map_err(|_| Error::Timestamp(s.to_string()))
}

/// Formats microseconds as the schema's timestamp text.
pub fn format_micros(us: i64) -> String {
    match DateTime::from_timestamp_micros(us) {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("@{us}us"),
    }
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
    fn round_trip() {
        let s = "2026-11-25T17:54:15.123456Z";
        let us = parse_micros(s).unwrap();
        assert_eq!(format_micros(us), s);
        assert_eq!(parse_micros("2026-11-25T17:54:15Z").unwrap(), us - 123_456);
        assert!(parse_micros("yesterday").is_err());
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
