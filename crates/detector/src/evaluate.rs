//! Event-level scoring of the detector's verdicts against the simulator's labels.
//!
//! Round-level accuracy would reward a detector for flagging every minute of a long
//! event and punish it for flagging the minute after one; an operator cares whether an
//! attack raised an alarm, how soon, and how often alarms are false. So:
//!
//! - An **alarm** is a run of consecutive anomalous rounds (consecutive in the time
//!   order of evaluated rounds, gaps between rounds ignored).
//! - An **event** (one `labels.event`) counts only if at least one of its rounds was
//!   evaluated. Its window runs from its first evaluated round to
//!   [`TOLERANCE_ROUNDS`] evaluated rounds after its last one, since some evidence
//!   (TIME_WAIT sockets, a model's window) outlives the attack.
//! - An event is **detected** if an anomalous round falls in its window; its **delay**
//!   is the minutes from its first labelled round's start to that anomalous round's.
//! - An alarm is **true** if any of its rounds falls in some event's window, else
//!   **false**. Precision = true alarms / alarms; recall = detected events / events.
//! - **False alarms per day** = false alarms / (evaluated rounds / 1440): each round
//!   stands for one minute of watching.
//!
//! Per kind, recall and delay are over that kind's events, and precision counts the
//! alarms that hit an event of that kind against those plus all false alarms (alarms
//! on other kinds' events are neither), as if the kind were the only attack.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use portwatch_store::Db;
use serde::Serialize;

use crate::Result;

/// Evaluated rounds after an event's last round in which an anomaly still counts.
pub const TOLERANCE_ROUNDS: usize = 5;

/// Metrics of one event kind, or of all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Events with at least one evaluated round.
    pub events: u64,
    pub detected: u64,
    /// Alarms that hit an event (of this kind, in a per-kind row).
    pub true_alarms: u64,
    /// Alarms that hit no event at all.
    pub false_alarms: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Mean and largest delay of detected events, minutes.
    pub mean_delay_minutes: Option<f64>,
    pub max_delay_minutes: Option<f64>,
}

/// One kind's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindMetrics {
    pub kind: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// Incident-level figures of one event kind, or of all: what an operator sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentMetrics {
    /// Events with at least one evaluated round.
    pub events: u64,
    /// Events an incident opened for (within the event's first evaluated round, less
    /// one, to [`TOLERANCE_ROUNDS`] after its last).
    pub caught: u64,
    /// `caught / events`.
    pub caught_share: Option<f64>,
    /// Rounds from the event's first evaluated round to the first round of its first
    /// incident (0: flagged in its first round), median and largest.
    pub first_alert_median_rounds: Option<f64>,
    pub first_alert_max_rounds: Option<f64>,
    /// Rounds from the event's last evaluated round to the last round its incidents
    /// saw their cause in (≤ 0: ended with the event), median and largest.
    pub end_delay_median_rounds: Option<f64>,
    pub end_delay_max_rounds: Option<f64>,
    /// Caught events by the kind of their first incident (`new_program`,
    /// `remote_source`, …): which rule or score caught them.
    pub caught_by: BTreeMap<String, u64>,
}

/// One kind's incident figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindIncidents {
    pub kind: String,
    #[serde(flatten)]
    pub metrics: IncidentMetrics,
}

/// Incidents against the labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentEvaluation {
    /// Incidents over evaluated rounds.
    pub incidents: u64,
    /// Incidents opened for no event.
    pub false_incidents: u64,
    /// False incidents by incident kind (the sustained-shift rule's are `sustained`).
    pub false_by_kind: BTreeMap<String, u64>,
    /// False incidents / evaluated days.
    pub false_incidents_per_day: Option<f64>,
    pub overall: IncidentMetrics,
    pub per_kind: Vec<KindIncidents>,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub evaluated_rounds: u64,
    /// Evaluated rounds / 1440.
    pub evaluated_days: f64,
    pub tolerance_rounds: u64,
    pub alarms: u64,
    pub false_alarms_per_day: Option<f64>,
    pub overall: Metrics,
    pub per_kind: Vec<KindMetrics>,
    /// The same events judged by incidents rather than anomalous rounds.
    pub incidents: IncidentEvaluation,
}

struct Round {
    start: i64,
    anomalous: bool,
}

struct EventRows {
    kind: String,
    start: i64,
    idx: Vec<usize>,
}

/// Scores `batches_rounds` against `labels` (see the module docs for the definitions).
pub fn evaluate(db: &Db) -> Result<Evaluation> {
    let mut rounds = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for r in db.evaluated_rounds()? {
        index.insert(r.id, rounds.len());
        rounds.push(Round {
            start: r.start,
            anomalous: r.anomalous,
        });
    }
    let mut events: BTreeMap<i64, EventRows> = BTreeMap::new();
    for l in db.labelled_rounds()? {
        let e = events.entry(l.event).or_insert_with(|| EventRows {
            kind: l.kind,
            start: l.start,
            idx: Vec::new(),
        });
        e.start = e.start.min(l.start);
        if let Some(&i) = index.get(&l.round_id) {
            e.idx.push(i);
        }
    }
    let spans: Vec<(String, usize, usize)> = db
        .incident_spans()?
        .into_iter()
        .filter_map(|(kind, a, b)| Some((kind, *index.get(&a)?, *index.get(&b)?)))
        .collect();
    let events = merge_continued(events.into_values().filter(|e| !e.idx.is_empty()).collect());
    let incidents = score_incidents(rounds.len(), &events, &spans);
    let mut ev = score(&rounds, events);
    ev.incidents = incidents;
    Ok(ev)
}

/// One event continued by later `simulate` calls (a `deploy@0` in each hour after the
/// service was deployed) is labelled as one event per call: events of one kind whose
/// rounds follow on without a gap are one event here.
fn merge_continued(mut events: Vec<EventRows>) -> Vec<EventRows> {
    events.sort_by_key(|e| (e.kind.clone(), e.idx.iter().copied().min().unwrap_or(0)));
    let mut out: Vec<EventRows> = Vec::new();
    for e in events {
        let lo = e.idx.iter().copied().min().unwrap_or(0);
        match out.last_mut() {
            Some(p) if p.kind == e.kind && p.idx.iter().copied().max().unwrap_or(0) + 1 >= lo => {
                p.start = p.start.min(e.start);
                p.idx.extend(e.idx);
            }
            _ => out.push(e),
        }
    }
    out.sort_by_key(|e| e.start);
    out
}

/// Event windows in evaluated-round positions: first round to [`TOLERANCE_ROUNDS`]
/// after the last (within the evaluated rounds).
fn windows_of(n_rounds: usize, events: &[EventRows]) -> Vec<(usize, usize)> {
    events
        .iter()
        .map(|e| {
            let lo = e.idx.iter().copied().min().unwrap_or(0);
            let hi = e.idx.iter().copied().max().unwrap_or(0) + TOLERANCE_ROUNDS;
            (lo, hi.min(n_rounds.saturating_sub(1)))
        })
        .collect()
}

/// Incidents (kind, first and last position) against events. An incident belongs to
/// an event when it opened within the event's window (or the round before it): an
/// incident that was already open for something else does not catch it.
fn score_incidents(
    n_rounds: usize,
    events: &[EventRows],
    spans: &[(String, usize, usize)],
) -> IncidentEvaluation {
    let windows = windows_of(n_rounds, events);
    let overlaps = |&(_, a, _): &(String, usize, usize), &(lo, hi): &(usize, usize)| {
        lo.saturating_sub(1) <= a && a <= hi
    };
    let mut false_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for s in spans
        .iter()
        .filter(|s| !windows.iter().any(|w| overlaps(s, w)))
    {
        *false_by_kind.entry(s.0.clone()).or_default() += 1;
    }
    let false_incidents = false_by_kind.values().sum();
    let median = |mut v: Vec<f64>| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        })
    };
    let metrics = |select: &dyn Fn(&EventRows) -> bool| {
        let mut first = Vec::new();
        let mut end = Vec::new();
        let mut caught_by: BTreeMap<String, u64> = BTreeMap::new();
        let mut n = 0u64;
        for (e, w) in events.iter().zip(&windows).filter(|(e, _)| select(e)) {
            n += 1;
            let hits: Vec<&(String, usize, usize)> =
                spans.iter().filter(|s| overlaps(s, w)).collect();
            if hits.is_empty() {
                continue;
            }
            let lo = w.0 as f64;
            let last = e.idx.iter().copied().max().unwrap_or(w.0) as f64;
            if let Some(s) = hits.iter().min_by_key(|s| s.1) {
                *caught_by.entry(s.0.clone()).or_default() += 1;
            }
            first.push(
                hits.iter()
                    .map(|s| (s.1 as f64 - lo).max(0.0))
                    .fold(f64::MAX, f64::min),
            );
            end.push(
                hits.iter()
                    .map(|s| s.2 as f64 - last)
                    .fold(f64::MIN, f64::max),
            );
        }
        let caught = first.len() as u64;
        IncidentMetrics {
            events: n,
            caught,
            caught_share: ratio(caught, n),
            first_alert_max_rounds: first.iter().copied().reduce(f64::max),
            first_alert_median_rounds: median(first),
            end_delay_max_rounds: end.iter().copied().reduce(f64::max),
            end_delay_median_rounds: median(end),
            caught_by,
        }
    };
    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let days = n_rounds as f64 / 1440.0;
    IncidentEvaluation {
        incidents: spans.len() as u64,
        false_incidents,
        false_by_kind,
        false_incidents_per_day: (days > 0.0).then(|| false_incidents as f64 / days),
        overall: metrics(&|_| true),
        per_kind: kinds
            .iter()
            .map(|&k| KindIncidents {
                kind: k.to_owned(),
                metrics: metrics(&|e: &EventRows| e.kind == k),
            })
            .collect(),
    }
}

fn score(rounds: &[Round], events: Vec<EventRows>) -> Evaluation {
    let windows = windows_of(rounds.len(), &events);

    // Alarms: runs of consecutive anomalous rounds.
    let mut alarms: Vec<(usize, usize)> = Vec::new();
    for (i, r) in rounds.iter().enumerate() {
        if r.anomalous {
            match alarms.last_mut() {
                Some((_, end)) if *end + 1 == i => *end = i,
                _ => alarms.push((i, i)),
            }
        }
    }
    let hits = |&(a, b): &(usize, usize), &(lo, hi): &(usize, usize)| a <= hi && lo <= b;
    let false_alarms = alarms
        .iter()
        .filter(|al| !windows.iter().any(|w| hits(al, w)))
        .count() as u64;

    // Per event: detected, delay.
    let delays: Vec<Option<f64>> = events
        .iter()
        .zip(&windows)
        .map(|(e, &(lo, hi))| {
            (lo..=hi)
                .find(|&i| rounds[i].anomalous)
                .map(|i| ((rounds[i].start - e.start) as f64 / 60e6).max(0.0))
        })
        .collect();

    let metrics = |select: &dyn Fn(&EventRows) -> bool| {
        let chosen: Vec<usize> = (0..events.len()).filter(|&i| select(&events[i])).collect();
        let true_alarms = alarms
            .iter()
            .filter(|al| chosen.iter().any(|&i| hits(al, &windows[i])))
            .count() as u64;
        let found: Vec<f64> = chosen.iter().filter_map(|&i| delays[i]).collect();
        let n = chosen.len() as u64;
        let detected = found.len() as u64;
        let precision = ratio(true_alarms, true_alarms + false_alarms);
        let recall = ratio(detected, n);
        Metrics {
            events: n,
            detected,
            true_alarms,
            false_alarms,
            precision,
            recall,
            f1: match (precision, recall) {
                (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                (Some(_), Some(_)) => Some(0.0),
                _ => None,
            },
            mean_delay_minutes: (!found.is_empty())
                .then(|| found.iter().sum::<f64>() / found.len() as f64),
            max_delay_minutes: found.iter().copied().reduce(f64::max),
        }
    };

    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let per_kind = kinds
        .iter()
        .map(|&k| KindMetrics {
            kind: k.to_owned(),
            metrics: metrics(&|e: &EventRows| e.kind == k),
        })
        .collect();
    let evaluated_days = rounds.len() as f64 / 1440.0;
    Evaluation {
        evaluated_rounds: rounds.len() as u64,
        evaluated_days,
        tolerance_rounds: TOLERANCE_ROUNDS as u64,
        alarms: alarms.len() as u64,
        false_alarms_per_day: (evaluated_days > 0.0).then(|| false_alarms as f64 / evaluated_days),
        overall: metrics(&|_| true),
        per_kind,
        incidents: score_incidents(rounds.len(), &[], &[]),
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<f64>, prec: usize| match v {
            Some(x) => format!("{x:.prec$}"),
            None => "-".to_owned(),
        };
        writeln!(
            f,
            "evaluated rounds: {} ({:.2} days); an anomaly up to {} rounds after an event counts",
            self.evaluated_rounds, self.evaluated_days, self.tolerance_rounds
        )?;
        writeln!(
            f,
            "{:<18} {:>6} {:>8} {:>6} {:>6} {:>9} {:>6} {:>6} {:>10} {:>9}",
            "kind",
            "events",
            "detected",
            "true",
            "false",
            "precision",
            "recall",
            "F1",
            "delay_mean",
            "delay_max"
        )?;
        let rows = self
            .per_kind
            .iter()
            .map(|k| (k.kind.as_str(), &k.metrics))
            .chain(std::iter::once(("all", &self.overall)));
        for (kind, m) in rows {
            writeln!(
                f,
                "{:<18} {:>6} {:>8} {:>6} {:>6} {:>9} {:>6} {:>6} {:>10} {:>9}",
                kind,
                m.events,
                m.detected,
                m.true_alarms,
                m.false_alarms,
                opt(m.precision, 3),
                opt(m.recall, 3),
                opt(m.f1, 3),
                opt(m.mean_delay_minutes, 1),
                opt(m.max_delay_minutes, 1),
            )?;
        }
        writeln!(
            f,
            "alarms: {} ({} false); false alarms per day: {}",
            self.alarms,
            self.overall.false_alarms,
            opt(self.false_alarms_per_day, 2)
        )?;
        let inc = &self.incidents;
        writeln!(f)?;
        writeln!(
            f,
            "incidents: {} ({} false{}); false incidents per day: {}",
            inc.incidents,
            inc.false_incidents,
            tally(&inc.false_by_kind, ": "),
            opt(inc.false_incidents_per_day, 2)
        )?;
        writeln!(
            f,
            "{:<18} {:>6} {:>6} {:>7} {:>12} {:>9} {:>10} {:>9}  caught_by",
            "kind",
            "events",
            "caught",
            "share",
            "first_median",
            "first_max",
            "end_median",
            "end_max"
        )?;
        let rows = inc
            .per_kind
            .iter()
            .map(|k| (k.kind.as_str(), &k.metrics))
            .chain(std::iter::once(("all", &inc.overall)));
        for (kind, m) in rows {
            writeln!(
                f,
                "{:<18} {:>6} {:>6} {:>7} {:>12} {:>9} {:>10} {:>9}  {}",
                kind,
                m.events,
                m.caught,
                opt(m.caught_share, 3),
                opt(m.first_alert_median_rounds, 1),
                opt(m.first_alert_max_rounds, 0),
                opt(m.end_delay_median_rounds, 1),
                opt(m.end_delay_max_rounds, 0),
                tally(&m.caught_by, ""),
            )?;
        }
        Ok(())
    }
}

/// `kind 2, other 1` (after `lead` when not empty).
fn tally(counts: &BTreeMap<String, u64>, lead: &str) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!("{lead}{}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// Verdicts and labels written by hand into a real database, and the store's
    /// handle that `evaluate` reads through.
    struct Fixture {
        _dir: tempfile::TempDir,
        db: Db,
        conn: Connection,
    }

    /// Where the rounds start: the simulator's epoch, a Monday.
    const EPOCH: i64 = 1_767_571_200 * 1_000_000;

    /// A database with `n` rounds one minute apart, all evaluated in one batch, the
    /// given ones anomalous.
    fn db(n: i64, anomalous: &[i64], unevaluated: &[i64]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.db");
        let db = Db::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO batches (id, timestamp, alg) VALUES (1, '2026-01-06T00:00:00.000000Z', 'test')",
            [],
        )
        .unwrap();
        for i in 0..n {
            let start = portwatch_store::time::format_micros(EPOCH + i * 60_000_000);
            conn.execute(
                "INSERT INTO rounds (id, start_time, end_time, source, status) VALUES (?1, ?2, ?2, 'simulated', 'complete')",
                rusqlite::params![i + 1, start],
            )
            .unwrap();
            if !unevaluated.contains(&i) {
                conn.execute(
                    "INSERT INTO batches_rounds (batch_id, round_id, score, anomalous) VALUES (1, ?1, 0.0, ?2)",
                    rusqlite::params![i + 1, anomalous.contains(&i)],
                )
                .unwrap();
            }
        }
        Fixture {
            _dir: dir,
            db,
            conn,
        }
    }

    fn label(f: &Fixture, event: i64, kind: &str, rounds: std::ops::RangeInclusive<i64>) {
        for i in rounds {
            f.conn
                .execute(
                    "INSERT INTO labels (round_id, event, kind, note) VALUES (?1, ?2, ?3, 'test')",
                    rusqlite::params![i + 1, event, kind],
                )
                .unwrap();
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn detected_missed_late_and_false_alarms() {
        // Alarms: {11} in the portscan, {20,21} false, {52} in the backdoor's
        // tolerance, {90} false; the burst is missed.
        let conn = db(100, &[11, 20, 21, 52, 90], &[]);
        label(&conn, 1, "portscan", 10..=12);
        label(&conn, 2, "backdoor", 40..=49);
        label(&conn, 3, "burst", 70..=72);
        let e = evaluate(&conn.db).unwrap();
        assert_eq!(e.evaluated_rounds, 100);
        assert_eq!(e.alarms, 4);
        let o = &e.overall;
        assert_eq!(
            (o.events, o.detected, o.true_alarms, o.false_alarms),
            (3, 2, 2, 2)
        );
        assert!(close(o.precision, 0.5));
        assert!(close(o.recall, 2.0 / 3.0));
        assert!(close(o.f1, 2.0 * 0.5 * (2.0 / 3.0) / (0.5 + 2.0 / 3.0)));
        assert!(close(o.mean_delay_minutes, (1.0 + 12.0) / 2.0));
        assert!(close(o.max_delay_minutes, 12.0));
        assert!(close(e.false_alarms_per_day, 2.0 / (100.0 / 1440.0)));

        let kind = |k: &str| &e.per_kind.iter().find(|m| m.kind == k).unwrap().metrics;
        assert!(close(kind("portscan").recall, 1.0));
        assert!(close(kind("portscan").precision, 1.0 / 3.0));
        assert!(close(kind("portscan").mean_delay_minutes, 1.0));
        assert!(close(kind("backdoor").mean_delay_minutes, 12.0));
        assert!(close(kind("burst").recall, 0.0));
        assert!(close(kind("burst").precision, 0.0));
        assert_eq!(kind("burst").mean_delay_minutes, None);
        let text = e.to_string();
        assert!(text.contains("portscan") && text.contains("all"), "{text}");
    }

    #[test]
    fn anomaly_beyond_tolerance_is_a_false_alarm() {
        let conn = db(30, &[10 + TOLERANCE_ROUNDS as i64 + 1], &[]);
        label(&conn, 7, "burst", 8..=10);
        let e = evaluate(&conn.db).unwrap();
        assert_eq!(e.overall.detected, 0);
        assert_eq!(e.overall.false_alarms, 1);
        assert!(close(e.overall.precision, 0.0));
    }

    #[test]
    fn one_alarm_spanning_two_events_detects_both() {
        let conn = db(40, &[10, 11, 12, 13, 14, 15], &[]);
        label(&conn, 1, "portscan", 10..=11);
        label(&conn, 2, "burst", 14..=15);
        let e = evaluate(&conn.db).unwrap();
        assert_eq!(e.alarms, 1);
        assert_eq!(e.overall.detected, 2);
        assert!(close(e.overall.precision, 1.0));
        assert_eq!(e.false_alarms_per_day, Some(0.0));
    }

    #[test]
    fn unevaluated_events_are_left_out() {
        // Event 1's rounds were never evaluated; event 2's were only partly, and its
        // delay runs from its first labelled round, evaluated or not.
        let conn = db(30, &[12], &[2, 3, 4, 10]);
        label(&conn, 1, "dnstunnel", 2..=4);
        label(&conn, 2, "dnstunnel", 10..=12);
        let e = evaluate(&conn.db).unwrap();
        assert_eq!(e.evaluated_rounds, 26);
        assert_eq!(e.overall.events, 1);
        assert_eq!(e.overall.detected, 1);
        assert!(close(e.overall.mean_delay_minutes, 2.0));
    }

    #[test]
    fn empty_database_has_no_metrics() {
        let conn = db(0, &[], &[]);
        let e = evaluate(&conn.db).unwrap();
        assert_eq!(e.evaluated_rounds, 0);
        assert_eq!(e.overall.precision, None);
        assert_eq!(e.overall.recall, None);
        assert_eq!(e.false_alarms_per_day, None);
        assert!(e.to_string().contains("false alarms per day: -"));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["overall"]["events"], 0);
    }

    fn incident(f: &Fixture, kind: &str, first: i64, last: i64) {
        f.conn
            .execute(
                "INSERT INTO incidents (kind, cause, first_round_id, last_round_id, start_time, \
                 end_time, peak_score, summary, details, opened_at, updated_at) \
                 VALUES (?1, 'k', ?2, ?3, '', '', 1.0, '', '{}', '', '')",
                rusqlite::params![kind, first + 1, last + 1],
            )
            .unwrap();
    }

    #[test]
    fn incidents_are_judged_per_event_with_their_delays() {
        // A scan in rounds 10..=12 caught by an incident 11..=13; a backdoor 40..=49
        // caught late (45..=52); a burst 70..=72 missed; one incident on no event.
        let f = db(100, &[], &[]);
        label(&f, 1, "portscan", 10..=12);
        label(&f, 2, "backdoor", 40..=49);
        label(&f, 3, "burst", 70..=72);
        // A service deployed for good, continued by a second call: one event.
        label(&f, 4, "deploy", 80..=82);
        label(&f, 5, "deploy", 83..=85);
        // An outage during a long incident opened for something else: not caught.
        label(&f, 6, "outage", 62..=64);
        incident(&f, "features", 55, 70);
        incident(&f, "remote_source", 11, 13);
        incident(&f, "new_listener", 45, 52);
        incident(&f, "features", 95, 96);
        incident(&f, "new_listener", 80, 99);
        let e = evaluate(&f.db).unwrap().incidents;
        assert_eq!((e.incidents, e.false_incidents), (5, 2));
        assert!(close(e.false_incidents_per_day, 2.0 * 1440.0 / 100.0));
        assert_eq!((e.overall.events, e.overall.caught), (5, 3));
        let k = |name: &str| &e.per_kind.iter().find(|k| k.kind == name).unwrap().metrics;
        assert_eq!(k("portscan").first_alert_max_rounds, Some(1.0));
        assert_eq!(k("portscan").end_delay_max_rounds, Some(1.0));
        assert_eq!(k("backdoor").first_alert_max_rounds, Some(5.0));
        assert_eq!(k("backdoor").end_delay_max_rounds, Some(3.0));
        assert_eq!(k("burst").caught, 0);
        assert_eq!((k("deploy").events, k("deploy").caught), (1, 1));
        assert_eq!(k("outage").caught, 0);
        // First alerts: 1, 5 and 0 rounds.
        assert_eq!(e.overall.first_alert_median_rounds, Some(1.0));
        // Which incidents caught them, and which were false.
        let by = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
        };
        assert_eq!(k("portscan").caught_by, by(&[("remote_source", 1)]));
        assert_eq!(
            e.overall.caught_by,
            by(&[("new_listener", 2), ("remote_source", 1)])
        );
        assert_eq!(e.false_by_kind, by(&[("features", 2)]));
        let text = evaluate(&f.db).unwrap().to_string();
        assert!(text.contains("(2 false: features 2)"), "{text}");
        assert!(text.contains("new_listener 2, remote_source 1"), "{text}");
    }
}
