//! `detector`: evaluates the rounds the collector wrote. See `detector --help` and
//! DESIGN.md. This binary only parses arguments and calls `portwatch-model`; the store
//! crate opens the database (WAL, busy timeout) and resolves the default paths.

mod cli;
mod exit_codes;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use portwatch_model::{Error as ModelError, Options, Outcome, Status};

use crate::cli::{Cli, Command};
use crate::exit_codes::ExitCode;

fn main() {
    let cli = Cli::parse();
    let code = match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("detector: {err:#}");
            if err
                .chain()
                .any(|e| matches!(e.downcast_ref::<ModelError>(), Some(ModelError::Locked(_))))
            {
                ExitCode::Locked
            } else {
                ExitCode::Error
            }
        }
    };
    std::process::exit(code as i32);
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let db = portwatch_store::paths::resolve_db(cli.common.db.as_deref())?;
    match &cli.command {
        Some(Command::Report { since }) => {
            let conn = open_existing(&db)?;
            let since = since.as_deref().map(parse_since).transpose()?;
            let rep = portwatch_model::report::report(&conn, since.as_deref())?;
            if cli.common.json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&rep)?))?;
            } else {
                emit(&rep.to_string())?;
            }
            Ok(ExitCode::Ok)
        }
        Some(Command::Plot { out }) => {
            let conn = open_existing(&db)?;
            let n = portwatch_model::report::plot(&conn, out)?;
            if cli.common.verbose {
                println!("wrote {} ({n} rounds)", out.display());
            }
            Ok(ExitCode::Ok)
        }
        Some(Command::Evaluate) => {
            let conn = open_existing(&db)?;
            let ev = portwatch_sim::eval::evaluate(&conn).context("evaluate")?;
            if cli.common.json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&ev)?))?;
            } else {
                emit(&ev.to_string())?;
            }
            Ok(ExitCode::Ok)
        }
        None => {
            let model_dir = portwatch_store::paths::model_dir(cli.model_dir.as_deref(), &db);
            let mut opts = Options {
                no_train: cli.no_train,
                min_history_secs: cli.min_history.as_secs_f64(),
                zscore_baseline: cli.zscore_baseline,
                threshold_margin: cli.threshold_margin,
                ..Options::default()
            };
            if let Some(path) = &cli.config {
                // A config file that cannot be used is a usage error (exit 2), like a bad flag.
                let cfg = std::fs::read_to_string(path)
                    .map_err(|e| e.to_string())
                    .and_then(|text| {
                        portwatch_model::DetectorConfig::with_overrides(&text)
                            .map_err(|e| e.to_string())
                    });
                match cfg {
                    Ok(cfg) => opts.config = cfg,
                    Err(e) => {
                        eprintln!("detector: --config {}: {e}", path.display());
                        return Ok(ExitCode::Usage);
                    }
                }
            }
            if cli.once {
                step(cli, &db, &model_dir, &opts)
            } else {
                serve(cli, &db, &model_dir, &opts)
            }
        }
    }
}

/// Writes to stdout; a closed pipe (`detector report | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn open_existing(db: &Path) -> anyhow::Result<rusqlite::Connection> {
    portwatch_store::open_existing(db).with_context(|| format!("open {}", db.display()))
}

/// One evaluation; prints per the flags and returns the exit code.
fn step(cli: &Cli, db: &Path, model_dir: &Path, opts: &Options) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let mut conn = portwatch_store::open(db).with_context(|| format!("open {}", db.display()))?;
    let out = portwatch_model::run_once(&mut conn, model_dir, opts)
        .with_context(|| format!("model {}", model_dir.display()))?;
    print_outcome(cli, &out, t.elapsed())?;
    Ok(if out.anomalies.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Anomalies
    })
}

fn print_outcome(cli: &Cli, out: &Outcome, took: Duration) -> anyhow::Result<()> {
    if cli.common.json {
        println!("{}", serde_json::to_string(out)?);
    } else if out.status == Status::NothingToDo {
        // Printed even without -v: under cron an hour without new rounds means the
        // collector is not running, which is worth a mail.
        println!("detector: {}", out.message);
    } else if cli.common.verbose || (out.status == Status::Scored && !out.anomalies.is_empty()) {
        // Anomalies are worth a cron mail; everything else only with -v.
        if cli.common.verbose {
            println!("detector: {} [{:.2} s]", out.message, took.as_secs_f64());
        }
        for a in &out.anomalies {
            println!(
                "anomaly: round {} at {} score {:.3} > {:.3}: {}",
                a.round_id,
                a.round_start,
                a.score,
                a.threshold,
                portwatch_model::report::summarize(&a.explanation)
            );
        }
    }
    Ok(())
}

/// The long-running mode: the same step every `--interval` until SIGINT/SIGTERM.
fn serve(cli: &Cli, db: &Path, model_dir: &Path, opts: &Options) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    let mut worst = ExitCode::Ok;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match step(cli, db, model_dir, opts) {
            Ok(ExitCode::Anomalies) => worst = ExitCode::Anomalies,
            Ok(_) => {}
            // A busy lock or a transient DB error: report and try again next interval.
            Err(e) => eprintln!("detector: {e:#}"),
        }
        while !stop.load(Ordering::Relaxed) && started.elapsed() < cli.interval {
            std::thread::sleep(Duration::from_millis(200).min(cli.interval));
        }
    }
    Ok(worst)
}

/// `--since`: a duration ago (`24h`) or a date/timestamp, as the schema's text.
fn parse_since(s: &str) -> anyhow::Result<String> {
    if let Ok(d) = cli::parse_duration(s) {
        let now = chrono::Utc::now().timestamp_micros();
        let ago = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        return Ok(portwatch_model::time::format_micros(
            now.saturating_sub(ago),
        ));
    }
    if let Ok(us) = portwatch_model::time::parse_micros(s) {
        return Ok(portwatch_model::time::format_micros(us));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(portwatch_model::time::format_micros(
            t.and_utc().timestamp_micros(),
        ));
    }
    anyhow::bail!(
        "--since {s:?}: expected a duration (24h, 7d) or a date/timestamp (2026-11-25, 2026-11-25T10:00:00Z)"
    )
}
