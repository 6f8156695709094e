//! `collector`: one run is one round. See `collector --help` and DESIGN.md.
//!
//! This binary only parses arguments and wires the library crates together: capture
//! (`portwatch-capture`), socket tables (`portwatch-scan`), storage
//! (`portwatch-store`) and simulation (`portwatch-sim`).

mod cli;
mod exit;
mod ingest;
mod live;
mod lock;
mod owners;
mod privs;
mod pump;
mod stop;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::ExitCode;

fn main() {
    let cli = Cli::parse();
    let code = match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("collector: {err:#}");
            if err.downcast_ref::<exit::Usage>().is_some() {
                ExitCode::Usage
            } else {
                ExitCode::Error
            }
        }
    };
    std::process::exit(code as i32);
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let db = portwatch_store::paths::resolve_db(cli.common.db.as_deref())?;
    let verbose = cli.common.verbose;
    if let Some(dir) = db.parent() {
        portwatch_store::paths::create_private_dir(dir)?;
    }
    // Prune only deletes closed rounds and needs no lock (SQLite serialises it with a
    // running round), so the daily job never makes a minute's round fail.
    if let Some(Command::Prune(p)) = &cli.command {
        return prune(&db, p, verbose);
    }
    // Everything that appends rounds holds the database's lock for its whole run: one
    // writer at a time keeps each round's packets a contiguous rowid range.
    let lock = match lock::acquire(&db) {
        Ok(l) => l,
        Err(e @ lock::LockError::Held { .. }) => {
            eprintln!("collector: {e}");
            return Ok(ExitCode::Locked);
        }
        Err(lock::LockError::Other(e)) => return Err(e),
    };
    let stop = stop::Stop::on_signals()?;
    match &cli.command {
        Some(Command::Prune(p)) => prune(&db, p, verbose),
        Some(Command::Simulate(s)) => simulate(&lock, &db, s, verbose),
        None if !cli.round.read.is_empty() => {
            let mut code = ExitCode::Complete;
            for file in &cli.round.read {
                let c = match ingest::run(&lock, &db, file, cli.round.payload_bytes, &stop, verbose)
                {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("collector: {}: {e:#}", file.display());
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

fn simulate(
    lock: &lock::Lock,
    db: &std::path::Path,
    s: &cli::SimulateArgs,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let mut conn = lock.open_db(db)?;
    let cfg = portwatch_sim::SimConfig {
        hours: s.hours,
        seed: s.seed,
        rate: s.rate,
        inject: s.inject.clone(),
        ..portwatch_sim::SimConfig::default()
    };
    let sum = portwatch_sim::simulate(&mut conn, &cfg)?;
    if verbose {
        println!(
            "simulated {} rounds ({}..{}), {} packets, {} events",
            sum.rounds, sum.first_round_id, sum.last_round_id, sum.packets, sum.events
        );
    }
    Ok(ExitCode::Complete)
}

fn prune(db: &std::path::Path, p: &cli::PruneArgs, verbose: bool) -> anyhow::Result<ExitCode> {
    let mut conn = portwatch_store::open(db)?;
    let cutoff = portwatch_store::time::now_micros()
        - i64::try_from(p.older_than.as_micros()).unwrap_or(i64::MAX);
    let pruned = portwatch_store::prune::prune(&mut conn, cutoff)?;
    if verbose {
        println!(
            "pruned {} rounds ({} packets) older than {}; {} pages freed",
            pruned.rounds,
            pruned.packets,
            portwatch_store::time::format_micros(cutoff),
            pruned.freed_pages
        );
    }
    Ok(ExitCode::Complete)
}
