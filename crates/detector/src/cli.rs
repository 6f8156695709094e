//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  detector --once -v                            score the new rounds (cron, every minute)
  detector --once --alert-exec 'mail -s portwatch root' --metrics-file /var/lib/node_exporter/portwatch.prom
  detector incidents --open
  detector ack 12 --note 'looking into it'
  detector accept 14 --note 'the new API server'
  detector report --since 24h

Exit codes:
  0   no incident opened (or warming up, or nothing to do)
  1   this run opened an incident (a systemd unit sets SuccessExitStatus=1)
  2   usage error
  3   runtime error (corrupt or mismatched model, database error)
  75  another detector holds the lock in the model directory

Files: --db, else $PORTWATCH_DB, else /var/lib/portwatch/ports.db (root) or
$XDG_STATE_HOME/portwatch/ports.db; --model-dir, else $PORTWATCH_MODEL_DIR, else model/
beside the database. Silent on success unless -v or --json (an empty batch prints
one line: no new rounds usually means the collector is not running).";

/// Scores port usage with a CNN-LSTM autoencoder, records anomalies, keeps learning.
#[derive(Debug, Parser)]
#[command(name = "detector", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Evaluate the new rounds once and exit (as cron runs it).
    #[arg(long)]
    pub once: bool,
    /// Without --once: run the same step every DURATION (e.g. 1h, 30m, 90s).
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub interval: Duration,
    /// Model directory.
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Score only: no fine-tuning, the model directory is not written.
    #[arg(long)]
    pub no_train: bool,
    /// History needed before scoring starts (cold start).
    #[arg(long, value_parser = parse_duration, default_value = "24h")]
    pub min_history: Duration,
    /// Fine-tune only when the newest round is DURATION past the latest round learnt
    /// (scoring runs every minute; learning hourly is enough).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub train_every: Duration,
    /// Fine-tune in this run, whatever --train-every says.
    #[arg(long, conflicts_with = "no_train")]
    pub train: bool,
    /// Close an incident after N evaluated rounds without its cause.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub close_after: i64,
    /// Accept an incident nobody acknowledged as normal once its cause has been
    /// present this long (drift: a service deployed for good); 0 = never.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration_or_zero)]
    pub adapt_after: Duration,
    /// Benchmarks only: at cold start, choose the per-feature z-score baseline as the
    /// scorer (MODEL.md compares it with the autoencoder).
    #[arg(long, hide = true)]
    pub zscore_baseline: bool,
    /// Benchmarks only: at cold start, the factor on the tail quantile of normal round
    /// scores that sets the threshold (default 1.5, see MODEL.md).
    #[arg(long, hide = true, default_value_t = 1.5)]
    pub threshold_margin: f32,
    /// Append every incident event (opened, updated, closed, adapted) to FILE as a JSON
    /// line, for log shippers (created 0600).
    #[arg(long, value_name = "FILE")]
    pub alert_file: Option<PathBuf>,
    /// Run CMD (with sh -c) for each incident this run opens: the event's JSON on its
    /// stdin, PORTWATCH_INCIDENT_ID, _KIND, _CAUSE and _SUMMARY in its environment.
    /// A failure is one line on stderr; the run's verdicts are recorded before.
    #[arg(long, value_name = "CMD")]
    pub alert_exec: Option<String>,
    /// Kill an --alert-exec command still running after DURATION.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub alert_timeout: Duration,
    /// Write the Prometheus text format to FILE after each run, atomically (for
    /// node_exporter's textfile collector: --collector.textfile.directory).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Cold start only: the model's hyperparameters, a JSON file with any of the fields
    /// of `config` in model.json (window, channels, hidden, epochs, lr, ...); the others
    /// keep their defaults (MODEL.md says why they have them). Later runs use the
    /// configuration saved with the model.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// SQLite database.
    #[arg(long, value_name = "PATH", global = true)]
    pub db: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print one summary line.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Recent evaluations and anomalies with their explanations.
    #[command(
        after_help = "Examples:\n  detector report --since 24h\n  detector report --since 2026-11-25 --json | jq .incidents"
    )]
    Report {
        /// Only rounds since WHEN: a duration ago (24h, 7d) or a timestamp
        /// (2026-11-25 or 2026-11-25T10:00:00Z).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// A chart of round scores against the threshold, incidents shaded, and the
    /// busiest ports below, as PNG or SVG (by the file's extension).
    #[command(
        after_help = "Examples:\n  detector plot --out scores.png --since 24h\n  detector plot --out week.svg --since 2026-11-25"
    )]
    Plot {
        /// Output file: .png or .svg.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only rounds since WHEN: a duration ago (24h, 7d) or a date/timestamp
        /// (2026-11-25 or 2026-11-25T10:00:00Z) [default: all].
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Event-level precision, recall, F1, delay and false alarms per day against the
    /// `labels` that `collector simulate` wrote.
    #[command(
        after_help = "Examples:\n  collector simulate --db sim.db --hours 48 --inject portscan@30 && detector --once --db sim.db\n  detector evaluate --db sim.db"
    )]
    Evaluate,
    /// Incidents: anomalous rounds grouped by cause, with the actor named.
    #[command(
        after_help = "Examples:\n  detector incidents --open\n  detector incidents --since 7d --json"
    )]
    Incidents {
        /// Only open and acknowledged ones.
        #[arg(long)]
        open: bool,
        /// Only those seen since WHEN: a duration ago (24h, 7d) or a timestamp.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Acknowledge an incident: seen, being handled. It stays recorded and its rounds
    /// are still never learnt as they are (an open one becomes `acknowledged`, which
    /// also keeps it from being accepted as drift).
    #[command(after_help = "Examples:\n  detector ack 12 --note 'on it'")]
    Ack {
        /// The incident's id (`detector incidents`).
        id: i64,
        /// Why, for the record.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Accept an incident as normal: its rounds become trainable, its ports and names
    /// join what the model knows, and the same cause opens no incident again.
    #[command(
        after_help = "Examples:\n  detector accept 14 --note 'the new API server, deployed on purpose'"
    )]
    Accept {
        /// The incident's id (`detector incidents`).
        id: i64,
        /// Why, for the record.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Rules for activity that is normal: matching activity opens no incident and
    /// counts as normal for training.
    #[command(
        after_help = "Examples:\n  detector allow add port tcp/8443 --note 'admin UI'\n  detector allow list\n  detector allow remove 3"
    )]
    Allow {
        #[command(subcommand)]
        command: AllowCommand,
    },
    #[command(flatten)]
    Docs(portwatch_cli::docs::DocsCommand),
}

#[derive(Debug, Subcommand)]
pub enum AllowCommand {
    /// Add a rule: `port tcp/8080` (or `udp/53`, `8080`), `process NAME`, `dns SUFFIX`,
    /// `cidr 203.0.113.0/24`.
    #[command(
        after_help = "Examples:\n  detector allow add port tcp/8080\n  detector allow add process backup-agent\n  detector allow add dns example.com\n  detector allow add cidr 192.0.2.0/24 --note 'office'"
    )]
    Add {
        /// port, process, dns or cidr.
        kind: String,
        /// What it matches.
        value: String,
        /// Why, for the record.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// List the rules.
    #[command(after_help = "Examples:\n  detector allow list --json")]
    List,
    /// Remove a rule by id.
    #[command(after_help = "Examples:\n  detector allow remove 3")]
    Remove {
        /// The rule's id (`detector allow list`).
        id: i64,
    },
}

/// Parses a duration as `collector prune` does (humantime: `90s`, `30m`, `1h30m`,
/// `7d`), refusing zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if d.is_zero() => Err("the duration must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (e.g. 90s, 30m, 1h, 7d)")),
    }
}

/// A duration where `0` means "never" (returned as zero).
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

/// `--since`: a duration ago (`24h`) or a date/timestamp, as the schema's text.
pub fn parse_since(s: &str) -> anyhow::Result<String> {
    parse_since_micros(s).map(portwatch_store::time::format_micros)
}

/// `--since` as microseconds since the epoch; a value that is neither a duration nor a
/// date is a usage error (exit 2).
pub fn parse_since_micros(s: &str) -> anyhow::Result<i64> {
    use portwatch_store::time::{now_micros, parse_micros};
    if let Ok(d) = parse_duration(s) {
        let ago = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        return Ok(now_micros().saturating_sub(ago));
    }
    if let Ok(us) = parse_micros(s) {
        return Ok(us);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp_micros());
    }
    Err(portwatch_cli::exit::Usage(format!(
        "--since {s:?}: expected a duration (24h, 7d) or a date/timestamp (2026-11-25, 2026-11-25T10:00:00Z)"
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    #[test]
    fn every_command_shows_examples() {
        let missing = portwatch_cli::docs::without_examples(&super::Cli::command());
        assert!(missing.is_empty(), "no examples in --help of {missing:?}");
    }

    #[test]
    fn help_matches_its_snapshot() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/help.txt");
        if let Err(e) = portwatch_cli::docs::check_help_snapshot(&super::Cli::command(), &path) {
            panic!("{e}");
        }
    }
}
