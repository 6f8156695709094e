//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit_codes;

/// Samples which TCP/UDP ports this host uses and captures the packets that flow
/// through them, one round per run, into SQLite. Meant for cron, every minute.
#[derive(Debug, Parser)]
#[command(name = "collector", version, after_help = exit_codes::HELP)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub round: RoundArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct Common {
    /// Database file [default: $PORTWATCH_DB, else /var/lib/portwatch/ports.db for root,
    /// else $XDG_STATE_HOME/portwatch/ports.db]
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Print one summary line per round (silent on success otherwise, for cron).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct RoundArgs {
    /// Interface to capture on [default: libpcap's default device; "any" for all].
    #[arg(short, long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// Length of the round in seconds [default: 55, which leaves room before the next
    /// minute's cron run; 60 with --rounds or --forever, whose rounds end on multiples
    /// of it since the epoch: on the minute].
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub duration: Option<f64>,
    /// Run N rounds back to back in one process, then exit: each starts the instant
    /// the previous one ends, on the same capture handle, so no packet falls between.
    #[arg(long, value_name = "N", conflicts_with_all = ["forever", "read"],
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: Option<u64>,
    /// Run rounds back to back until SIGTERM or SIGINT (for a systemd service); the
    /// round cut short by the signal is stored as `partial` and the exit is 0.
    #[arg(long, conflicts_with = "read")]
    pub forever: bool,
    /// Seconds between socket-table samples (one at the start and one at the end too),
    /// at least 0.1; a sample slower than the interval skips the samples it overran.
    #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = scan_interval_secs)]
    pub scan_interval: f64,
    /// BPF capture filter, as tcpdump takes it.
    #[arg(short, long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Bytes of each packet's transport payload to store (0: none, a privacy choice;
    /// DNS names and TLS SNI are stored regardless).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub payload_bytes: usize,
    /// Kernel capture buffer in KiB, as tcpdump's -B (it counts in the collector's
    /// memory; raise it for sustained rates well above 100,000 packets/s).
    #[arg(short = 'B', long, default_value_t = 8192, value_name = "KIB",
          value_parser = clap::value_parser!(u32).range(256..=1_048_576))]
    pub buffer_size: u32,
    /// Put the interface in promiscuous mode (off: this is a host tool).
    #[arg(long)]
    pub promiscuous: bool,
    /// Drop privileges to this user once capture and database are open (as tcpdump -Z).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// How to find occupied ports: the kernel's socket tables, or the original design's
    /// bind probe (no owners; ports it may not bind are skipped, never counted).
    #[arg(long, value_enum, default_value_t = ScanMethod::Proc)]
    pub scan_method: ScanMethod,
    /// Ingest capture files (pcap or pcapng, whatever the extension; `-` is the
    /// standard input) instead of capturing live: one round per file, no scanner.
    #[arg(short, long, value_name = "FILE")]
    pub read: Vec<PathBuf>,
}

impl RoundArgs {
    /// True when rounds follow each other in this process (`--rounds`, `--forever`).
    pub fn continuous(&self) -> bool {
        self.forever || self.rounds.is_some()
    }

    /// The length of each round, in seconds.
    pub fn round_secs(&self) -> f64 {
        self.duration
            .unwrap_or(if self.continuous() { 60.0 } else { 55.0 })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanMethod {
    /// The kernel's socket tables (netlink sock_diag, else /proc/net/{tcp,udp}{,6}),
    /// with owners from /proc/PID/fd.
    Proc,
    /// Try to bind every port (TCP and UDP); in use = occupied.
    Bind,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Append synthetic history with labelled injected events (for testing the detector).
    #[command(after_help = "\
Examples:
  collector simulate --db ~/pw-sim/sim.db --hours 24 --rate 20
  collector simulate --db ~/pw-sim/sim.db --hours 1 --seed 2 --inject portscan@0.5
  collector simulate --profile workstation --hours 168 --inject beacon@30 --inject upload@50")]
    Simulate(SimulateArgs),
    /// Delete whole rounds older than a cutoff, with their rows, and reclaim space.
    #[command(after_help = "\
Examples:
  collector prune --older-than 30d -v         (crontab.example runs it daily)
  collector prune --older-than 12h")]
    Prune(PruneArgs),
    #[command(flatten)]
    Docs(portwatch_cli::docs::DocsCommand),
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Hours of history to append after the database's last round.
    #[arg(long, value_name = "N")]
    pub hours: f64,
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Mean packets per second.
    #[arg(long, default_value_t = 100.0, value_name = "PPS")]
    pub rate: f64,
    /// Inject an event KIND at HOUR (hours after the start of this span), e.g.
    /// portscan@5.5. Kinds: portscan, slowscan, backdoor, backdoor-collide, burst,
    /// dnstunnel, dnstunnel-slow, outscan, beacon, upload, flood, outage, deploy, bruteforce,
    /// spam, stuffing, exfil, implant, udpflood, icmptunnel, miner, hijack, resolver,
    /// pingsweep, dga, slowloris, proxy, stolenkey.
    #[arg(long, value_name = "KIND@HOUR")]
    pub inject: Vec<portwatch_sim::Inject>,
    /// The simulated host: server (a web server, up all the time) or workstation (a
    /// desktop's browsing on office hours, asleep most nights: no rounds then).
    #[arg(long, default_value = "server", value_name = "PROFILE")]
    pub profile: portwatch_sim::Profile,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Age beyond which rounds are deleted, e.g. 30d, 12h, 2w.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub older_than: std::time::Duration,
    /// Return the freed space to the file system. Without it the freed pages stay in
    /// the file and the next rounds reuse them (a daily prune keeps the file at its
    /// retention plus a day); with it the newest pages move into the holes, which
    /// takes about as long again. For shrinking the file after lowering the retention.
    #[arg(long)]
    pub vacuum: bool,
}

/// Seconds, positive and at most a day (a round is meant to last under a minute).
/// A sample of a busy host's socket tables takes ~10 ms: a shorter interval would only
/// measure the scanner.
fn scan_interval_secs(s: &str) -> Result<f64, String> {
    match positive_secs(s)? {
        v if v >= 0.1 => Ok(v),
        _ => Err("must be at least 0.1 seconds".into()),
    }
}

fn positive_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err("must be a number of seconds in (0, 86400]".into())
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
