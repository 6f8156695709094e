//! What an anomalous round's explanation says: its worst step, the features behind
//! its error, and the ports, processes, addresses and names behind those.

use portwatch_features::{SECOND, Scaler};
use portwatch_model::inference::StepScores;
use portwatch_store::Db;
use portwatch_store::time::format_micros;
use portwatch_store::traffic::PacketSpan;
use serde_json::json;

use super::AnomalyReport;
use super::series::Loaded;
use crate::Result;

/// Most destinations, sources and DNS names an explanation lists.
const TOP_DESTINATIONS: usize = 5;
const TOP_SOURCES: usize = 3;
const TOP_NAMES: usize = 5;

/// Builds the explanation of an anomalous round: its worst step, the features with the
/// largest share of that step's error, and the ports, processes and names behind them.
#[allow(clippy::too_many_arguments)]
pub(super) fn explain(
    db: &Db,
    l: &Loaded,
    ri: usize,
    owner: &[usize],
    steps: &StepScores,
    scaler: &Scaler,
    names: &[String],
    threshold: f32,
) -> Result<AnomalyReport> {
    let r = &l.rounds[ri];
    let idx: Vec<usize> = (0..owner.len()).filter(|&g| owner[g] == ri).collect();
    let worst = idx
        .iter()
        .copied()
        .max_by(|&a, &b| {
            steps.score[a]
                .unwrap_or(f32::MIN)
                .total_cmp(&steps.score[b].unwrap_or(f32::MIN))
        })
        .unwrap_or(0);
    let k = idx.iter().position(|&g| g == worst).unwrap_or(0);
    let step = l.steps[ri].get(k);
    let score = steps.score.get(worst).copied().flatten().unwrap_or(0.0);
    let fe = steps.feature_error.get(worst).cloned().unwrap_or_default();
    let total: f32 = fe.iter().sum::<f32>().max(1e-12);
    let mut order: Vec<usize> = (0..fe.len()).collect();
    order.sort_by(|&a, &b| fe[b].total_cmp(&fe[a]));
    let top: Vec<serde_json::Value> = order
        .iter()
        .take(5)
        .filter(|&&f| fe[f] / total >= 0.02)
        .map(|&f| {
            let value = step.map_or(0.0, |s| s.raw[f]);
            let typical = scaler.median_count(f);
            json!({
                "feature": names[f],
                "share": (fe[f] / total * 1000.0).round() / 1000.0,
                "value": (value * 100.0).round() / 100.0,
                "typical": (typical * 100.0).round() / 100.0,
            })
        })
        .collect();
    let ts = step.map_or(r.start, |s| s.ts);
    // The traffic behind the step: up to the next sample, except that the round's last
    // two steps share the interval from the second-to-last sample to the round's end.
    let steps_of = &l.steps[ri];
    let n = steps_of.len();
    let (from, until) = if n >= 2 && k + 2 >= n {
        (steps_of[n - 2].ts, r.end + 1)
    } else {
        (ts, steps_of.get(k + 1).map_or(r.end + 1, |s| s.ts))
    };
    let until = until.max(from + SECOND);
    let (lo, hi) = (format_micros(from), format_micros(until));
    let mut destinations = Vec::new();
    let mut sources = Vec::new();
    let mut dns = Vec::new();
    if let Some((first_id, last_id)) = r.packet_range() {
        let span = PacketSpan {
            first_id,
            last_id,
            from,
            until,
        };
        for d in db.top_destinations(&span, TOP_DESTINATIONS)? {
            destinations.push(json!({
                "addr": d.addr,
                "port": d.port,
                "process": d.process,
                "packets": d.packets,
                "bytes": d.bytes,
            }));
        }
        for s in db.top_sources(&span, TOP_SOURCES)? {
            sources.push(json!({
                "addr": s.addr,
                "packets": s.packets,
                "distinct_dest_ports": s.distinct_dest_ports,
            }));
        }
        for n in db.longest_dns_names(&span, TOP_NAMES)? {
            dns.push(json!({"name": n.name, "queries": n.queries}));
        }
    }
    let mut new_ports = Vec::new();
    let mut new_names = Vec::new();
    for s in &l.steps[ri] {
        for (proto, port, process) in &s.evidence.new_ports {
            new_ports.push(json!({"protocol": proto, "port": port, "process": process, "at": format_micros(s.ts)}));
        }
        for n in &s.evidence.new_names {
            if new_names.len() < 10 && !new_names.contains(n) {
                new_names.push(n.clone());
            }
        }
    }
    let explanation = json!({
        "round_score": (score * 1000.0).round() / 1000.0,
        "threshold": (threshold * 1000.0).round() / 1000.0,
        "worst_step": format_micros(ts),
        "window_start": lo,
        "window_end": hi,
        "top_features": top,
        "new_listening_ports": new_ports,
        "new_dns_names": new_names,
        "top_destinations": destinations,
        "top_sources": sources,
        "longest_dns_names": dns,
    });
    Ok(AnomalyReport {
        round_id: r.id,
        round_start: format_micros(r.start),
        score,
        threshold,
        explanation,
    })
}
