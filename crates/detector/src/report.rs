//! `detector report`: recent evaluations and anomalies, as a table or JSON, and the
//! one-line summary of an explanation that `--once` prints per anomaly.

use std::fmt;

use portwatch_store::Db;
use portwatch_store::incidents::{AllowRule, Incident, IncidentFilter};
use portwatch_store::time::format_micros;
use portwatch_store::verdicts::{AnomalyRow, BatchSummary};
use serde::Serialize;

use crate::Result;
use crate::incidents::tracker::EventKind;
use crate::step::IncidentEvent;

/// What `detector report` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Lower bound on round start times, if any.
    pub since: Option<String>,
    /// Evaluations, oldest first.
    pub batches: Vec<BatchSummary>,
    /// Anomalies, oldest first.
    pub anomalies: Vec<AnomalyRow>,
    /// Incidents seen since `since`, oldest first.
    pub incidents: Vec<Incident>,
}

/// Reads evaluations and anomalies whose rounds started at or after `since` (schema
/// timestamp text).
pub fn report(db: &Db, since: Option<&str>) -> Result<Report> {
    Ok(Report {
        since: since.map(str::to_string),
        batches: db.batch_summaries(since)?,
        anomalies: db.anomaly_rows(since)?,
        incidents: db.incidents(&IncidentFilter {
            active_only: false,
            since,
        })?,
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
        if self.incidents.is_empty() {
            writeln!(f, "no incidents")?;
        } else {
            write!(f, "{}", incident_table(&self.incidents))?;
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

/// The line a run prints for an incident event: opened, closed and adapted always,
/// updated only with `-v`.
pub fn event_line(e: &IncidentEvent, verbose: bool) -> Option<String> {
    let i = &e.incident;
    let what = match e.event {
        EventKind::Opened => "opened",
        EventKind::Closed => "closed",
        EventKind::Adapted => "accepted as drift",
        EventKind::Updated if verbose => "updated",
        EventKind::Updated => return None,
    };
    Some(format!("incident {} {what}: {}", i.id, i.summary))
}

/// Incidents as a table, one per line, the summary last.
pub fn incident_table(list: &[Incident]) -> String {
    let mut out = format!(
        "{:>5}  {:<12}  {:<13}  {:<17}  {:>6}  summary\n",
        "id", "status", "kind", "last seen", "rounds"
    );
    for i in list {
        let last = format_micros(i.end);
        out.push_str(&format!(
            "{:>5}  {:<12}  {:<13}  {:<17}  {:>6}  {}\n",
            i.id,
            i.status.as_str(),
            i.kind,
            last.get(..16).unwrap_or(&last).replace('T', " "),
            i.rounds,
            i.summary
        ));
    }
    out
}

/// Allow rules as a table.
pub fn rule_table(rules: &[AllowRule]) -> String {
    if rules.is_empty() {
        return "no allow rules\n".into();
    }
    let mut out = format!("{:>4}  {:<8}  {:<32}  note\n", "id", "kind", "value");
    for r in rules {
        out.push_str(&format!(
            "{:>4}  {:<8}  {:<32}  {}\n",
            r.id,
            r.kind,
            r.value,
            r.note.as_deref().unwrap_or("")
        ));
    }
    out
}
