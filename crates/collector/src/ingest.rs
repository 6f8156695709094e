//! `--read FILE...`: each capture file becomes one round, timed by its first and last
//! packet, with no scanner.

use std::path::Path;

use portwatch_capture::{FileSource, PacketSource};
use portwatch_cli::lock::Lock;
use portwatch_cli::progress::{self, Bar, Unit};
use portwatch_cli::stop::Stop;
use portwatch_store::insert::{RoundSource, RoundStatus};
use portwatch_store::writer::{Finish, Writer};

use crate::exit_codes::ExitCode;
use crate::pump::{self, End};

pub fn run(
    lock: &Lock,
    db: &Path,
    file: &Path,
    payload_bytes: usize,
    stop: &Stop,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let mut source = FileSource::open(file)?;
    let store = crate::open_for_rounds(lock, db)?;
    let now = portwatch_store::time::now_micros();
    let round = store.begin_round(now, RoundSource::File(file), None)?;
    let writer = Writer::spawn(store, round)?;
    let tx = writer.sender();
    // The size only scales the bar (a pipe has none, and gets none).
    let size = std::fs::metadata(file)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let bar = match size {
        Some(len) => Bar::new(progress::wanted(false), "read", len, Unit::Bytes),
        None => Bar::hidden(),
    };
    bar.set_message(&file.display().to_string());
    let opts = pump::Options {
        payload_bytes,
        deadline: None,
        stop,
        owners: None,
        cut: None,
        progress: Some(&bar),
    };
    let end = pump::pump(&mut source as &mut dyn PacketSource, &tx, opts, &mut None);
    bar.finish();
    let (status, problem) = match end {
        End::Eof => (RoundStatus::Complete, None),
        End::Failed(e) => {
            let line = format!("{e}");
            let _ = tx.send(portwatch_store::writer::Msg::Note(line.clone()));
            (RoundStatus::Partial, Some(line))
        }
        End::Interrupted | End::Deadline | End::WriterGone => (RoundStatus::Partial, None),
    };
    drop(tx);
    // The caller names the file; the store's error names the database.
    let totals = writer.finish(Finish {
        end_micros: now,
        status,
        times_from_packets: true,
    })?;
    if let Some(p) = problem {
        portwatch_cli::output::warn("collector", &format!("{}: {p}", file.display()));
    }
    if verbose {
        let c = &totals.close;
        println!(
            "round {round} file:{} {}: {} packets stored ({} malformed)",
            file.display(),
            status.as_str(),
            c.packets_stored,
            c.packets_malformed
        );
    }
    Ok(match status {
        RoundStatus::Complete => ExitCode::Complete,
        _ => ExitCode::Partial,
    })
}
