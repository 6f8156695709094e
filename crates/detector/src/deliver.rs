//! Handing a run's results to the tools an operator already runs: a JSON-lines file a
//! log shipper tails (`--alert-file`), a command per opened incident (`--alert-exec`,
//! a pager or a chat hook), and the Prometheus text format for node_exporter's textfile
//! collector (`--metrics-file`).
//!
//! None of them may hold a run up or lose its verdicts: they run after the batch is
//! recorded, a command gets a deadline and is killed past it, and every failure is one
//! line on stderr.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use portwatch_store::health::Health;

use crate::incidents::tracker::EventKind;
use crate::step::{IncidentEvent, Outcome};

/// Appends each incident event of the run to `path` as one JSON line (the `--json`
/// event lines). Created 0600 if missing; a symlink at the name is refused.
pub fn append_events(path: &Path, events: &[IncidentEvent]) -> std::io::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for e in events {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    // One write for the run's lines: a reader never sees half a run.
    f.write_all(text.as_bytes())
}

/// Runs `command` (through `sh -c`) once per incident this run opened, with the
/// event's JSON on stdin and `PORTWATCH_INCIDENT_ID`, `_KIND`, `_CAUSE` and `_SUMMARY`
/// in its environment; all in parallel, each killed once `timeout` has passed.
/// Returns one line per failure, for stderr.
pub fn run_hooks(command: &str, events: &[IncidentEvent], timeout: Duration) -> Vec<String> {
    let mut problems = Vec::new();
    let mut running: Vec<(i64, Child)> = Vec::new();
    for e in events.iter().filter(|e| e.event == EventKind::Opened) {
        let i = &e.incident;
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("PORTWATCH_INCIDENT_ID", i.id.to_string())
            .env("PORTWATCH_INCIDENT_KIND", &i.kind)
            .env("PORTWATCH_INCIDENT_CAUSE", &i.cause)
            .env("PORTWATCH_INCIDENT_SUMMARY", &i.summary)
            .stdin(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(err) => {
                problems.push(format!("--alert-exec: incident {}: {err}", i.id));
                continue;
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its input is its own business.
            let json = serde_json::to_string(e).unwrap_or_default();
            let _ = writeln!(stdin, "{json}");
        }
        running.push((i.id, child));
    }
    let deadline = Instant::now() + timeout;
    while !running.is_empty() {
        running.retain_mut(|(id, child)| match child.try_wait() {
            Ok(Some(status)) if status.success() => false,
            Ok(Some(status)) => {
                problems.push(format!("--alert-exec: incident {id}: {status}"));
                false
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                problems.push(format!(
                    "--alert-exec: incident {id}: still running after {} s, killed",
                    timeout.as_secs_f64()
                ));
                false
            }
            Ok(None) => true,
            Err(err) => {
                problems.push(format!("--alert-exec: incident {id}: {err}"));
                false
            }
        });
        if !running.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    problems
}

/// Something an operator should look at though no incident says it: the collector
/// silent, packets dropped, capture lost, the model not learning.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Warning {
    /// `no_rounds`, `drops`, `capture`, `model_stale` (the metric's label).
    pub kind: &'static str,
    pub message: String,
}

/// Every warning kind, so that the metrics can say 0 for each one not raised.
pub const WARNING_KINDS: [&str; 4] = ["no_rounds", "drops", "capture", "model_stale"];

/// No live round ended for this long: the collector runs every minute.
pub const SILENT_AFTER: Duration = Duration::from_secs(5 * 60);
/// Dropped packets over the last hour above this share.
pub const DROP_LIMIT: f64 = 0.01;
/// No model saved for this long: fine-tuning has stopped.
pub const STALE_AFTER: Duration = Duration::from_secs(48 * 3600);

/// The warnings `h` (with drops over the last hour) and the model's age call for.
/// The heartbeat only concerns live capture: simulated or file history has none.
pub fn warnings(h: &Health, model_saved: Option<SystemTime>, now: SystemTime) -> Vec<Warning> {
    let mut out = Vec::new();
    let now_micros = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as i64;
    let live = h
        .last_round_source
        .as_deref()
        .is_some_and(|s| s.starts_with("live:"));
    if let Some(end) = h.last_round_end.filter(|_| live) {
        let silent = Duration::from_micros(u64::try_from(now_micros - end).unwrap_or(0));
        if silent > SILENT_AFTER {
            out.push(Warning {
                kind: "no_rounds",
                message: format!(
                    "no round has ended for {} min: is the collector running?",
                    silent.as_secs() / 60
                ),
            });
        }
    }
    if h.recent_captured > 0 {
        let share = h.recent_dropped as f64 / h.recent_captured as f64;
        if share > DROP_LIMIT {
            out.push(Warning {
                kind: "drops",
                message: format!(
                    "{} of {} packets dropped in the last hour ({:.1} %): raise the collector's --buffer-size or filter",
                    h.recent_dropped,
                    h.recent_captured,
                    share * 100.0
                ),
            });
        }
    }
    if live
        && let Some(note) = h
            .last_round_note
            .as_deref()
            .filter(|n| n.contains("capture failed"))
    {
        out.push(Warning {
            kind: "capture",
            message: format!("the last round captured no packets: {note}"),
        });
    }
    if let Some(age) = model_saved.and_then(|t| now.duration_since(t).ok())
        && age > STALE_AFTER
    {
        out.push(Warning {
            kind: "model_stale",
            message: format!(
                "the model was last saved {} h ago: fine-tuning is refused or not running",
                age.as_secs() / 3600
            ),
        });
    }
    out
}

/// What one run adds to the database's [`Health`] for the metrics.
pub struct RunFigures<'a> {
    pub outcome: &'a Outcome,
    pub took: Duration,
    /// When the model was last saved, if there is one.
    pub model_saved: Option<SystemTime>,
    /// The warnings raised.
    pub warnings: &'a [Warning],
}

/// The Prometheus text exposition of `h` and the run, as node_exporter's textfile
/// collector reads it.
pub fn metrics_text(h: &Health, run: &RunFigures<'_>, now: SystemTime) -> String {
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    };
    let now_s = secs(now);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
    };
    let opened = run
        .outcome
        .incidents
        .iter()
        .filter(|e| e.event == EventKind::Opened)
        .count();
    metric(
        "portwatch_last_score",
        "gauge",
        "Score (reconstruction error) of the newest evaluated round.",
        h.last_score,
    );
    metric(
        "portwatch_threshold",
        "gauge",
        "Score above which a round is anomalous.",
        h.threshold,
    );
    metric(
        "portwatch_incidents_open",
        "gauge",
        "Incidents open or acknowledged.",
        Some(h.open_incidents as f64),
    );
    metric(
        "portwatch_incidents_total",
        "counter",
        "Incidents ever opened.",
        Some(h.incidents_total as f64),
    );
    metric(
        "portwatch_incidents_opened_last_run",
        "gauge",
        "Incidents the last detector run opened.",
        Some(opened as f64),
    );
    metric(
        "portwatch_rounds_evaluated_total",
        "counter",
        "Rounds that got a score.",
        Some(h.rounds_evaluated as f64),
    );
    metric(
        "portwatch_model_age_seconds",
        "gauge",
        "Seconds since the model was last saved.",
        run.model_saved.map(|t| (now_s - secs(t)).max(0.0)),
    );
    metric(
        "portwatch_last_round_age_seconds",
        "gauge",
        "Seconds since the newest closed round ended (the collector's heartbeat).",
        h.last_round_end
            .map(|end| (now_s - end as f64 / 1e6).max(0.0)),
    );
    metric(
        "portwatch_packets_captured_total",
        "counter",
        "Packets libpcap received, over the rounds the database holds.",
        Some(h.packets_captured as f64),
    );
    metric(
        "portwatch_packets_dropped_total",
        "counter",
        "Packets the kernel or the interface dropped, over the rounds the database holds.",
        Some(h.packets_dropped as f64),
    );
    metric(
        "portwatch_detector_last_run_timestamp_seconds",
        "gauge",
        "When the last detector run finished.",
        Some(now_s),
    );
    metric(
        "portwatch_detector_last_run_duration_seconds",
        "gauge",
        "How long the last detector run took.",
        Some(run.took.as_secs_f64()),
    );
    out.push_str(
        "# HELP portwatch_warning 1 while the warning of that kind is raised.\n# TYPE portwatch_warning gauge\n",
    );
    for kind in WARNING_KINDS {
        let on = run.warnings.iter().any(|w| w.kind == kind);
        out.push_str(&format!(
            "portwatch_warning{{kind=\"{kind}\"}} {}\n",
            u8::from(on)
        ));
    }
    out
}

/// Writes `text` to `path` atomically (a temp file beside it, renamed over it), so the
/// textfile collector never reads half a file. 0644: node_exporter runs as another
/// user, and the figures hold no names.
pub fn write_metrics(path: &Path, text: &str) -> portwatch_model::Result<()> {
    portwatch_model::persistence::write_atomic_mode(path, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_prometheus_text_and_unknowns_are_left_out() {
        let h = Health {
            open_incidents: 2,
            incidents_total: 7,
            rounds_evaluated: 1440,
            last_score: Some(1.5),
            threshold: None,
            last_round_end: Some(1_700_000_000_000_000),
            packets_captured: 10,
            packets_dropped: 1,
            ..Health::default()
        };
        let outcome = Outcome::nothing("test");
        let warned = [Warning {
            kind: "drops",
            message: String::new(),
        }];
        let run = RunFigures {
            outcome: &outcome,
            took: Duration::from_millis(250),
            model_saved: None,
            warnings: &warned,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_060);
        let text = metrics_text(&h, &run, now);
        assert!(
            text.contains("# TYPE portwatch_incidents_open gauge\nportwatch_incidents_open 2\n")
        );
        assert!(
            text.contains("portwatch_last_round_age_seconds 60\n"),
            "{text}"
        );
        assert!(text.contains("portwatch_detector_last_run_duration_seconds 0.25\n"));
        assert!(
            !text.contains("portwatch_threshold"),
            "no threshold yet: no line"
        );
        assert!(!text.contains("portwatch_model_age_seconds"));
        assert!(text.contains("portwatch_warning{kind=\"drops\"} 1\n"));
        assert!(text.contains("portwatch_warning{kind=\"no_rounds\"} 0\n"));
        // Every sample line is NAME[{LABELS}] VALUE, every name has its HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(' ').unwrap();
            let name = name.split('{').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }

    #[test]
    fn warnings_follow_the_figures() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let micros = |ago: u64| 1_700_000_000_000_000 - ago as i64 * 1_000_000;
        let quiet = Health {
            last_round_end: Some(micros(60)),
            last_round_source: Some("live:eth0".into()),
            recent_captured: 100_000,
            recent_dropped: 500,
            ..Health::default()
        };
        assert_eq!(warnings(&quiet, Some(now), now), vec![]);
        let kinds = |h: &Health, saved| {
            warnings(h, saved, now)
                .iter()
                .map(|w| w.kind)
                .collect::<Vec<_>>()
        };
        let silent = Health {
            last_round_end: Some(micros(600)),
            ..quiet.clone()
        };
        assert_eq!(kinds(&silent, None), ["no_rounds"]);
        assert!(warnings(&silent, None, now)[0].message.contains("10 min"));
        // Simulated or file history has no heartbeat.
        let simulated = Health {
            last_round_source: Some("simulated".into()),
            ..silent.clone()
        };
        assert!(kinds(&simulated, None).is_empty());
        let dropping = Health {
            recent_dropped: 5_000,
            ..quiet.clone()
        };
        assert_eq!(kinds(&dropping, None), ["drops"]);
        let blind = Health {
            last_round_note: Some("capture failed: permission denied".into()),
            ..quiet.clone()
        };
        assert_eq!(kinds(&blind, None), ["capture"]);
        let old = now - Duration::from_secs(49 * 3600);
        assert_eq!(kinds(&quiet, Some(old)), ["model_stale"]);
    }

    #[test]
    fn metrics_files_are_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("portwatch.prom");
        write_metrics(&path, "a 1\n").unwrap();
        write_metrics(&path, "b 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b 2\n");
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "no temp left"
        );
    }
}
