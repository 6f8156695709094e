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

/// What one run adds to the database's [`Health`] for the metrics.
pub struct RunFigures<'a> {
    pub outcome: &'a Outcome,
    pub took: Duration,
    /// When the model was last saved, if there is one.
    pub model_saved: Option<SystemTime>,
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
        };
        let outcome = Outcome::nothing("test");
        let run = RunFigures {
            outcome: &outcome,
            took: Duration::from_millis(250),
            model_saved: None,
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
        // Every sample line is NAME VALUE, every name has its HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
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
