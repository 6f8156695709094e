//! `detector report` (recent evaluations and anomalies, as a table or JSON) and
//! `detector plot` (round scores against the threshold, as an SVG drawn by hand: no
//! plotting crate is needed for one line chart).

use std::fmt;
use std::fmt::Write as _;
use std::path::Path;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::{Error, Result};

/// One evaluation (`batches` row).
#[derive(Clone, Debug, Serialize)]
pub struct BatchSummary {
    /// `batches.id`.
    pub id: i64,
    /// When it ran.
    pub timestamp: String,
    /// `warming up` or `scored`.
    pub status: Option<String>,
    /// Rounds recorded in `batches_rounds`.
    pub rounds: i64,
    /// Anomalous rounds.
    pub anomalies: i64,
    /// Rounds fine-tuned on.
    pub trained: i64,
    /// Threshold used.
    pub threshold: Option<f64>,
    /// Held-out loss before fine-tuning.
    pub loss_before: Option<f64>,
    /// Held-out loss after.
    pub loss_after: Option<f64>,
    /// Model version after the run.
    pub model_version: Option<String>,
}

/// One anomaly.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyRow {
    /// `anomalies.id`.
    pub id: i64,
    /// The round.
    pub round_id: i64,
    /// Its start.
    pub round_start: String,
    /// Round score.
    pub score: f64,
    /// Threshold.
    pub threshold: f64,
    /// Stored explanation.
    pub explanation: serde_json::Value,
}

/// What `detector report` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Lower bound on round start times, if any.
    pub since: Option<String>,
    /// Evaluations, oldest first.
    pub batches: Vec<BatchSummary>,
    /// Anomalies, oldest first.
    pub anomalies: Vec<AnomalyRow>,
}

/// Reads evaluations and anomalies whose rounds started at or after `since` (schema
/// timestamp text).
pub fn report(conn: &Connection, since: Option<&str>) -> Result<Report> {
    let lower = since.unwrap_or("");
    let mut st = conn.prepare(
        "SELECT b.id, b.timestamp, b.status, b.threshold, b.loss_before, b.loss_after, b.model_version, \
                count(br.id), coalesce(sum(br.anomalous), 0), coalesce(sum(br.trained), 0) \
           FROM batches b LEFT JOIN batches_rounds br ON br.batch_id = b.id \
          WHERE ?1 = '' OR EXISTS (SELECT 1 FROM rounds r WHERE r.id = b.last_round_id AND r.start_time >= ?1) \
          GROUP BY b.id ORDER BY b.id",
    )?;
    let batches = st
        .query_map(params![lower], |r| {
            Ok(BatchSummary {
                id: r.get(0)?,
                timestamp: r.get(1)?,
                status: r.get(2)?,
                threshold: r.get(3)?,
                loss_before: r.get(4)?,
                loss_after: r.get(5)?,
                model_version: r.get(6)?,
                rounds: r.get(7)?,
                anomalies: r.get(8)?,
                trained: r.get(9)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st = conn.prepare(
        "SELECT a.id, a.round_id, r.start_time, a.score, a.threshold, a.explanation \
           FROM anomalies a JOIN rounds r ON r.id = a.round_id \
          WHERE r.start_time >= ?1 ORDER BY r.start_time, a.id",
    )?;
    let anomalies = st
        .query_map(params![lower], |r| {
            let text: String = r.get(5)?;
            Ok(AnomalyRow {
                id: r.get(0)?,
                round_id: r.get(1)?,
                round_start: r.get(2)?,
                score: r.get(3)?,
                threshold: r.get(4)?,
                explanation: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Report {
        since: since.map(str::to_string),
        batches,
        anomalies,
    })
}

/// A short summary of an explanation: top features, then ports and names.
pub fn summarize(e: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(top) = e.get("top_features").and_then(|v| v.as_array()) {
        let f: Vec<String> = top
            .iter()
            .take(3)
            .filter_map(|t| {
                Some(format!(
                    "{} {}→{}",
                    t.get("feature")?.as_str()?,
                    t.get("typical")?,
                    t.get("value")?
                ))
            })
            .collect();
        if !f.is_empty() {
            parts.push(f.join(", "));
        }
    }
    if let Some(p) = e.get("new_listening_ports").and_then(|v| v.as_array())
        && !p.is_empty()
    {
        let s: Vec<String> = p
            .iter()
            .take(3)
            .map(|x| {
                format!(
                    "{}/{} ({})",
                    x.get("port").map(ToString::to_string).unwrap_or_default(),
                    x.get("protocol").and_then(|v| v.as_str()).unwrap_or("?"),
                    x.get("process").and_then(|v| v.as_str()).unwrap_or("?")
                )
            })
            .collect();
        parts.push(format!("new listening {}", s.join(" ")));
    }
    if let Some(d) = e
        .get("top_destinations")
        .and_then(|v| v.as_array())
        .and_then(|v| v.first())
    {
        parts.push(format!(
            "top dst {}:{} ({}) {} pkts",
            d.get("addr").and_then(|v| v.as_str()).unwrap_or("?"),
            d.get("port").map(ToString::to_string).unwrap_or_default(),
            d.get("process").and_then(|v| v.as_str()).unwrap_or("?"),
            d.get("packets")
                .map(ToString::to_string)
                .unwrap_or_default()
        ));
    }
    if let Some(n) = e.get("new_dns_names").and_then(|v| v.as_array())
        && let Some(first) = n.first().and_then(|v| v.as_str())
    {
        parts.push(format!("new names {} (+{})", first, n.len() - 1));
    }
    parts.join("; ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>5}  {:<27}  {:<10}  {:>6}  {:>9}  {:>7}  {:>9}  {:>9}",
            "batch", "ran at", "status", "rounds", "anomalous", "trained", "threshold", "loss"
        )?;
        for b in &self.batches {
            let loss = match (b.loss_before, b.loss_after) {
                (Some(x), Some(y)) => format!("{x:.3}→{y:.3}"),
                (None, Some(y)) => format!("{y:.3}"),
                _ => "-".into(),
            };
            writeln!(
                f,
                "{:>5}  {:<27}  {:<10}  {:>6}  {:>9}  {:>7}  {:>9}  {:>9}",
                b.id,
                b.timestamp,
                b.status.as_deref().unwrap_or("-"),
                b.rounds,
                b.anomalies,
                b.trained,
                b.threshold.map_or("-".into(), |t| format!("{t:.3}")),
                loss
            )?;
        }
        writeln!(f)?;
        if self.anomalies.is_empty() {
            return writeln!(f, "no anomalies");
        }
        writeln!(
            f,
            "{:>6}  {:<27}  {:>8}  {:>9}  explanation",
            "round", "start", "score", "threshold"
        )?;
        for a in &self.anomalies {
            writeln!(
                f,
                "{:>6}  {:<27}  {:>8.3}  {:>9.3}  {}",
                a.round_id,
                a.round_start,
                a.score,
                a.threshold,
                summarize(&a.explanation)
            )?;
        }
        Ok(())
    }
}

/// Writes an SVG line chart of round scores (log scale) with the threshold of each
/// batch and anomalous rounds in red. Only `.svg` is supported.
pub fn plot(conn: &Connection, out: &Path) -> Result<usize> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "svg" {
        return Err(Error::Invalid(format!(
            "{}: only .svg output is supported (no PNG encoder is linked); convert with e.g. `rsvg-convert`",
            out.display()
        )));
    }
    let mut st = conn.prepare(
        "SELECT r.start_time, br.score, br.anomalous, b.threshold FROM batches_rounds br \
           JOIN rounds r ON r.id = br.round_id JOIN batches b ON b.id = br.batch_id \
          WHERE br.score IS NOT NULL ORDER BY r.start_time",
    )?;
    let pts: Vec<(i64, f64, bool, Option<f64>)> = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<f64>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter_map(|(t, s, a, th)| crate::time::parse_micros(&t).ok().map(|t| (t, s, a, th)))
        .collect();
    let (w, h, pad) = (1200.0f64, 400.0f64, 50.0f64);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    if pts.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{pad}" y="{pad}">no scored rounds yet</text></svg>"#
        );
    } else {
        let t0 = pts[0].0 as f64;
        let t1 = (pts[pts.len() - 1].0 as f64).max(t0 + 1.0);
        let ly = |v: f64| v.max(1e-3).log10();
        let mut lo = f64::MAX;
        let mut hi = f64::MIN;
        for p in &pts {
            lo = lo.min(ly(p.1));
            hi = hi.max(ly(p.1));
            if let Some(t) = p.3 {
                hi = hi.max(ly(t));
            }
        }
        if hi - lo < 1e-6 {
            hi = lo + 1.0;
        }
        let x = |t: i64| pad + (t as f64 - t0) / (t1 - t0) * (w - 2.0 * pad);
        let y = |v: f64| h - pad - (ly(v) - lo) / (hi - lo) * (h - 2.0 * pad);
        let mut line = String::new();
        let mut thr = String::new();
        for p in &pts {
            let _ = write!(line, "{:.1},{:.1} ", x(p.0), y(p.1));
            if let Some(t) = p.3 {
                let _ = write!(thr, "{:.1},{:.1} ", x(p.0), y(t));
            }
        }
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1" points="{line}"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="#ff7f0e" stroke-dasharray="4 3" points="{thr}"/>"##
        );
        for p in pts.iter().filter(|p| p.2) {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="red"/>"#,
                x(p.0),
                y(p.1)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{pad}" y="20">round score (log scale, blue), threshold (orange), anomalies (red)</text>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{pad}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            h - 15.0,
            crate::time::format_micros(pts[0].0),
            w - pad,
            h - 15.0,
            crate::time::format_micros(pts[pts.len() - 1].0)
        );
        let _ = writeln!(svg, "</svg>");
    }
    crate::persistence::write_atomic(out, svg.as_bytes())?;
    Ok(pts.len())
}
