//! `collector`: one run is one round. See `collector --help` and docs/DESIGN.md.
//!
//! The binary owns the round engine: a live round ([`live`]: scanner and sniffer
//! threads feeding the store's writer), capture files ([`ingest`]), and the one capture
//! loop both use ([`pump`]); `simulate` and `prune` are thin commands over
//! `portwatch-sim` and `portwatch-store`. The mechanisms are the library crates'.

mod cli;
mod exit_codes;
mod ingest;
mod live;
mod privs;
mod pump;

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use portwatch_cli::exit::code_for;
use portwatch_cli::lock::Lock;
use portwatch_cli::progress::{self, Bar, Unit};
use portwatch_cli::stop::Stop;
use portwatch_store::Db;

use crate::cli::{Cli, Command};
use crate::exit_codes::ExitCode;

fn main() {
    let cli = Cli::parse();
    portwatch_cli::exit::main(
        "collector",
        || run(&cli).map(i32::from),
        |err| code_for(err, ExitCode::Error.into()),
    )
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Docs(d)) = &cli.command {
        portwatch_cli::docs::print(d, <Cli as clap::CommandFactory>::command())?;
        return Ok(ExitCode::Complete);
    }
    let db = portwatch_store::paths::resolve_db(cli.common.db.as_deref())?;
    let verbose = cli.common.verbose;
    // A live round's filter is checked before any directory or file is created: a
    // usage error writes nothing.
    if cli.command.is_none()
        && cli.round.read.is_empty()
        && let Some(filter) = &cli.round.filter
    {
        portwatch_capture::check_filter(filter)
            .map_err(|e| portwatch_cli::exit::Usage(e.to_string()))?;
    }
    if let Some(dir) = db.parent() {
        portwatch_cli::dirs::prepare(dir)?;
    }
    // Prune only deletes closed rounds and needs no lock (SQLite serialises it with a
    // running round), so the daily job never makes a minute's round fail.
    if let Some(Command::Prune(p)) = &cli.command {
        return prune(&db, p, verbose);
    }
    // Everything that appends rounds holds the database's lock for its whole run: one
    // writer at a time keeps each round's packets a contiguous rowid range.
    let lock = match Lock::database(&db, "collector") {
        Ok(l) => l,
        Err(e @ portwatch_cli::Error::Held { .. }) => {
            portwatch_cli::output::warn("collector", &e.to_string());
            return Ok(ExitCode::Locked);
        }
        Err(e) => return Err(e.into()),
    };
    let stop = Stop::on_signals()?;
    match &cli.command {
        Some(Command::Prune(p)) => prune(&db, p, verbose),
        Some(Command::Simulate(s)) => simulate(&lock, &db, s, verbose),
        // Answered before the database was even resolved.
        Some(Command::Docs(_)) => Ok(ExitCode::Complete),
        None if !cli.round.read.is_empty() => {
            let mut code = ExitCode::Complete;
            for file in &cli.round.read {
                let c = match ingest::run(&lock, &db, file, cli.round.payload_bytes, &stop, verbose)
                {
                    Ok(c) => c,
                    Err(e) => {
                        portwatch_cli::output::warn(
                            "collector",
                            &format!("{}: {e:#}", file.display()),
                        );
                        // A file that cannot be read spoils only itself; a database
                        // that cannot store (a full disk) would fail every file after.
                        if e.is::<portwatch_store::Error>() {
                            return Ok(ExitCode::Error);
                        }
                        ExitCode::Error
                    }
                };
                code = code.worst(c);
                if stop.requested() {
                    break;
                }
            }
            Ok(code)
        }
        None => live::run(&lock, &db, &cli.round, &stop, verbose),
    }
}

/// Opens the database for appending rounds. Holding the lock proves no other
/// collector is running, so rounds still marked `running` are leftovers of one that
/// died; they are closed as `failed` here.
fn open_for_rounds(_lock: &Lock, db: &Path) -> anyhow::Result<Db> {
    let store = Db::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    store
        .fail_stale_rounds()
        .with_context(|| format!("cannot update {}", db.display()))?;
    Ok(store)
}

fn simulate(
    lock: &Lock,
    db: &Path,
    s: &cli::SimulateArgs,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let mut store = open_for_rounds(lock, db)?;
    let cfg = portwatch_sim::SimConfig {
        hours: s.hours,
        seed: s.seed,
        rate: s.rate,
        inject: s.inject.clone(),
        profile: s.profile,
        ..portwatch_sim::SimConfig::default()
    };
    let bar = Bar::new(progress::wanted(false), "simulate", 0, Unit::Count);
    bar.set_message("minutes");
    let sum = portwatch_sim::simulate_with_progress(&mut store, &cfg, &mut |done, all| {
        bar.set_length(all);
        bar.set_position(done);
    })?;
    bar.finish();
    if verbose {
        println!(
            "simulated {} rounds ({}..{}), {} packets, {} events",
            sum.rounds, sum.first_round_id, sum.last_round_id, sum.packets, sum.events
        );
    }
    Ok(ExitCode::Complete)
}

fn prune(db: &Path, p: &cli::PruneArgs, verbose: bool) -> anyhow::Result<ExitCode> {
    let mut store = Db::open(db)?;
    let cutoff = portwatch_store::time::now_micros()
        - i64::try_from(p.older_than.as_micros()).unwrap_or(i64::MAX);
    let bar = Bar::new(progress::wanted(false), "prune", 0, Unit::Count);
    bar.set_message("rounds");
    let pruned = store.prune_with_progress(cutoff, p.vacuum, &mut |done, all| {
        bar.set_length(all);
        bar.set_position(done);
    })?;
    bar.finish();
    if verbose {
        let space = if p.vacuum {
            format!(
                "{} pages returned to the file system",
                pruned.returned_pages
            )
        } else {
            format!("{} pages free for new rounds", pruned.free_pages)
        };
        println!(
            "pruned {} rounds ({} packets) older than {}; {space}",
            pruned.rounds,
            pruned.packets,
            portwatch_store::time::format_micros(cutoff),
        );
    }
    Ok(ExitCode::Complete)
}
