//! `detector`: evaluates the rounds the collector wrote. See `detector --help` and
//! docs/DESIGN.md. This file parses arguments, runs one command of the
//! `portwatch_detector` library and prints its result; the exit codes are in
//! `exit_codes.rs`.

mod cli;
mod exit_codes;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use portwatch_cli::exit::{LOCKED, Usage, code_for};
use portwatch_cli::output::emit;
use portwatch_cli::stop::Stop;
use portwatch_detector::incidents::rules::Rule;
use portwatch_detector::{Options, Outcome, Status, deliver, report, run_once};
use portwatch_model::DetectorConfig;
use portwatch_store::Db;
use portwatch_store::incidents::IncidentFilter;

use crate::cli::{AllowCommand, Cli, Command};
use crate::exit_codes::ExitCode;

fn main() {
    let cli = Cli::parse();
    portwatch_cli::exit::main(
        "detector",
        || run(&cli).map(i32::from),
        |err| {
            let locked = err.chain().any(|e| {
                e.downcast_ref::<portwatch_detector::Error>()
                    .is_some_and(portwatch_detector::Error::is_locked)
            });
            if locked {
                LOCKED
            } else {
                code_for(err, ExitCode::Error.into())
            }
        },
    )
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Docs(d)) = &cli.command {
        portwatch_cli::docs::print(d, <Cli as clap::CommandFactory>::command())?;
        return Ok(ExitCode::Ok);
    }
    let db = portwatch_store::paths::resolve_db(cli.common.db.as_deref())?;
    match &cli.command {
        // Answered above, before the database was even resolved.
        Some(Command::Docs(_)) => Ok(ExitCode::Ok),
        Some(Command::Report { since }) => {
            let store = open_existing(&db)?;
            let since = since.as_deref().map(cli::parse_since).transpose()?;
            let rep = report::report(&store, since.as_deref())?;
            let model_dir = portwatch_store::paths::model_dir(cli.model_dir.as_deref(), &db);
            let (_, _, warnings) =
                current_health(&store, &model_dir, std::time::SystemTime::now())?;
            if cli.common.json {
                let mut v = serde_json::to_value(&rep)?;
                if let serde_json::Value::Object(m) = &mut v {
                    m.insert("warnings".into(), serde_json::to_value(&warnings)?);
                }
                emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
            } else {
                let mut text = rep.to_string();
                for w in &warnings {
                    text.push_str(&format!("warning: {}\n", w.message));
                }
                emit(&text)?;
            }
            Ok(ExitCode::Ok)
        }
        Some(Command::Plot { out, since }) => {
            if portwatch_detector::plot::Format::of(out).is_none() {
                return Err(Usage(format!(
                    "--out {}: the chart is written as .png or .svg",
                    out.display()
                ))
                .into());
            }
            let since = since.as_deref().map(cli::parse_since_micros).transpose()?;
            let store = open_existing(&db)?;
            let n = portwatch_detector::plot::plot(&store, out, since)?;
            if cli.common.verbose {
                println!("wrote {} ({n} rounds)", out.display());
            }
            Ok(ExitCode::Ok)
        }
        Some(Command::Incidents { open, since }) => {
            let store = open_existing(&db)?;
            let since = since.as_deref().map(cli::parse_since).transpose()?;
            let list = store.incidents(&IncidentFilter {
                active_only: *open,
                since: since.as_deref(),
            })?;
            if cli.common.json {
                let mut text = String::new();
                for i in &list {
                    text.push_str(&serde_json::to_string(i)?);
                    text.push('\n');
                }
                emit(&text)?;
            } else {
                emit(&report::incident_table(&list))?;
            }
            Ok(ExitCode::Ok)
        }
        Some(Command::Ack { id, note }) => {
            let mut store = open_existing(&db)?;
            if !store.acknowledge_incident(*id, note.as_deref())? {
                return Err(Usage(format!(
                    "no incident {id} to acknowledge (see `detector incidents`)"
                ))
                .into());
            }
            if cli.common.verbose {
                println!("incident {id} acknowledged");
            }
            Ok(ExitCode::Ok)
        }
        Some(Command::Accept { id, note }) => {
            let mut store = open_existing(&db)?;
            if !store.accept_incident(*id, "operator", note.as_deref())? {
                return Err(Usage(format!(
                    "no incident {id} left to accept (see `detector incidents`)"
                ))
                .into());
            }
            if cli.common.verbose {
                println!("incident {id} accepted: the next fine-tune learns it");
            }
            Ok(ExitCode::Ok)
        }
        Some(Command::Allow { command }) => allow(cli, &db, command),
        Some(Command::Evaluate) => {
            let store = open_existing(&db)?;
            let ev = portwatch_detector::evaluate::evaluate(&store).context("evaluate")?;
            if cli.common.json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&ev)?))?;
            } else {
                emit(&ev.to_string())?;
            }
            Ok(ExitCode::Ok)
        }
        None => {
            let model_dir = portwatch_store::paths::model_dir(cli.model_dir.as_deref(), &db);
            let opts = options(cli)?;
            if cli.once {
                step(cli, &db, &model_dir, &opts)
            } else {
                serve(cli, &db, &model_dir, &opts)
            }
        }
    }
}

/// `detector allow add|list|remove`.
fn allow(cli: &Cli, db: &Path, command: &AllowCommand) -> anyhow::Result<ExitCode> {
    let mut store = open_existing(db)?;
    match command {
        AllowCommand::Add { kind, value, note } => {
            let rule = Rule::parse(kind, value).map_err(Usage)?;
            let id = store.add_allow_rule(rule.kind(), &rule.value(), note.as_deref())?;
            if cli.common.verbose {
                println!("rule {id}: allow {} {}", rule.kind(), rule.value());
            }
        }
        AllowCommand::List => {
            let rules = store.allow_rules()?;
            if cli.common.json {
                let mut text = String::new();
                for r in &rules {
                    text.push_str(&serde_json::to_string(r)?);
                    text.push('\n');
                }
                emit(&text)?;
            } else {
                emit(&report::rule_table(&rules))?;
            }
        }
        AllowCommand::Remove { id } => {
            if !store.remove_allow_rule(*id)? {
                return Err(Usage(format!("no rule {id} (see `detector allow list`)")).into());
            }
            if cli.common.verbose {
                println!("rule {id} removed");
            }
        }
    }
    Ok(ExitCode::Ok)
}

/// The step's options from the flags; an unusable `--config` file is a usage error
/// (exit 2), like a bad flag.
fn options(cli: &Cli) -> anyhow::Result<Options> {
    let mut opts = Options {
        no_train: cli.no_train,
        min_history_secs: cli.min_history.as_secs_f64(),
        zscore_baseline: cli.zscore_baseline,
        threshold_margin: cli.threshold_margin,
        close_after: cli.close_after,
        train_every: cli.train_every,
        train_now: cli.train,
        adapt_after: (!cli.adapt_after.is_zero()).then_some(cli.adapt_after),
        progress: portwatch_cli::progress::wanted(cli.common.json),
        ..Options::default()
    };
    if let Some(path) = &cli.config {
        let cfg = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| DetectorConfig::with_overrides(&text).map_err(|e| e.to_string()));
        match cfg {
            Ok(cfg) => opts.config = cfg,
            Err(e) => return Err(Usage(format!("--config {}: {e}", path.display())).into()),
        }
    }
    Ok(opts)
}

fn open_existing(db: &Path) -> anyhow::Result<Db> {
    Db::open_existing(db).with_context(|| format!("open {}", db.display()))
}

/// One evaluation; prints per the flags and returns the exit code.
fn step(cli: &Cli, db: &Path, model_dir: &Path, opts: &Options) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    // The collector creates the database; a detector pointed at a missing one is
    // pointed at the wrong place (as `report` says), not asked to start one.
    let mut store = open_existing(db)?;
    let out = run_once(&mut store, model_dir, opts)
        .with_context(|| format!("model {}", model_dir.display()))?;
    print_outcome(cli, &out, t.elapsed())?;
    deliver(cli, &store, model_dir, &out, t.elapsed());
    Ok(if out.opened_incident() {
        ExitCode::Incident
    } else {
        ExitCode::Ok
    })
}

/// Prints a run's result: with `--json`, one JSON line per incident event and one for
/// the batch; otherwise one line per incident opened, closed or adapted (never one per
/// round), the batch's line with `-v`, and the "nothing to do" line always.
fn print_outcome(cli: &Cli, out: &Outcome, took: Duration) -> anyhow::Result<()> {
    let mut text = String::new();
    if cli.common.json {
        for e in &out.incidents {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        let mut batch = serde_json::to_value(out)?;
        if let serde_json::Value::Object(m) = &mut batch {
            m.remove("incidents");
            m.insert("event".into(), "batch".into());
        }
        text.push_str(&serde_json::to_string(&batch)?);
        text.push('\n');
        return Ok(emit(&text)?);
    }
    if out.status == Status::NothingToDo {
        // Printed even without -v: under cron a run without new rounds means the
        // collector is not running, which is worth a mail.
        text.push_str(&format!("detector: {}\n", out.message));
    } else if cli.common.verbose {
        text.push_str(&format!(
            "detector: {} [{:.2} s: {}]\n",
            out.message,
            took.as_secs_f64(),
            out.phases.line()
        ));
    }
    for e in &out.incidents {
        if let Some(line) = report::event_line(e, cli.common.verbose) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    Ok(emit(&text)?)
}

/// Hands the run's results to the operator's tools (`--alert-file`, `--alert-exec`,
/// `--metrics-file`). The verdicts are recorded already: a failure here is one line on
/// stderr and does not change the exit code.
fn deliver(cli: &Cli, store: &Db, model_dir: &Path, out: &Outcome, took: Duration) {
    let warn = |what: &str, e: &dyn std::fmt::Display| {
        portwatch_cli::output::warn("detector", &format!("{what}: {e}"));
    };
    if let Some(path) = &cli.alert_file
        && let Err(e) = deliver::append_events(path, &out.incidents)
    {
        warn(&format!("--alert-file {}", path.display()), &e);
    }
    if let Some(cmd) = &cli.alert_exec {
        for line in deliver::run_hooks(cmd, &out.incidents, cli.alert_timeout) {
            portwatch_cli::output::warn("detector", &line);
        }
    }
    let now = std::time::SystemTime::now();
    let (health, model_saved, warnings) = match current_health(store, model_dir, now) {
        Ok(h) => h,
        Err(e) => return warn("health", &e),
    };
    if let Err(e) = print_warnings(cli, &warnings) {
        warn("stdout", &e);
    }
    if let Some(path) = &cli.metrics_file {
        let run = deliver::RunFigures {
            outcome: out,
            took,
            model_saved,
            warnings: &warnings,
        };
        let text = deliver::metrics_text(&health, &run, now);
        if let Err(e) = deliver::write_metrics(path, &text) {
            warn(&format!("--metrics-file {}", path.display()), &e);
        }
    }
}

/// The database's health, when the model was saved, and the warnings they call for.
fn current_health(
    store: &Db,
    model_dir: &Path,
    now: std::time::SystemTime,
) -> anyhow::Result<(
    portwatch_store::health::Health,
    Option<std::time::SystemTime>,
    Vec<deliver::Warning>,
)> {
    let hour_ago = portwatch_store::time::now_micros() - 3_600_000_000;
    let health = store.health(hour_ago)?;
    let model_saved = std::fs::metadata(model_dir.join(portwatch_model::persistence::SIDECAR))
        .and_then(|m| m.modified())
        .ok();
    let warnings = deliver::warnings(&health, model_saved, now);
    Ok((health, model_saved, warnings))
}

/// Warnings are printed whatever the flags (cron mails them): one line each, or a JSON
/// line `{"event": "warning", ...}` with `--json`.
fn print_warnings(cli: &Cli, warnings: &[deliver::Warning]) -> std::io::Result<()> {
    let mut text = String::new();
    for w in warnings {
        if cli.common.json {
            let mut v = serde_json::to_value(w).unwrap_or_default();
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("event".into(), "warning".into());
            }
            text.push_str(&v.to_string());
        } else {
            text.push_str(&format!("detector: warning: {}", w.message));
        }
        text.push('\n');
    }
    emit(&text)
}

/// The long-running mode: the same step every `--interval` until SIGINT/SIGTERM.
fn serve(cli: &Cli, db: &Path, model_dir: &Path, opts: &Options) -> anyhow::Result<ExitCode> {
    let stop = Stop::on_signals()?;
    let mut worst = ExitCode::Ok;
    while !stop.requested() {
        let started = Instant::now();
        match step(cli, db, model_dir, opts) {
            Ok(ExitCode::Incident) => worst = ExitCode::Incident,
            Ok(_) => {}
            // A busy lock or a transient DB error: report and try again next interval.
            Err(e) => portwatch_cli::output::warn("detector", &format!("{e:#}")),
        }
        stop.sleep_until(started + cli.interval);
    }
    Ok(worst)
}
