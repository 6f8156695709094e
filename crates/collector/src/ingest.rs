//! `--read FILE...`: each capture file becomes one round, timed by its first and last
//! packet, with no scanner.

use std::path::Path;

use anyhow::Context;
use portwatch_capture::{FileSource, PacketSource};
use portwatch_store::write::{self, RoundStatus};
use portwatch_store::writer::{Finish, Writer};

use crate::exit::ExitCode;
use crate::lock::Lock;
use crate::pump::{self, End};
use crate::stop::Stop;

pub fn run(
    lock: &Lock,
    db: &Path,
    file: &Path,
    payload_bytes: usize,
    stop: &Stop,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let mut source = FileSource::open(file)?;
    let conn = lock.open_db(db)?;
    let now = portwatch_store::time::now_micros();
    let round = write::begin_round(&conn, now, &format!("file:{}", file.display()), None)
        .map_err(portwatch_store::Error::from)?;
    let writer = Writer::spawn(conn, db, round)?;
    let tx = writer.sender();
    let opts = pump::Options {
        payload_bytes,
        deadline: None,
        stop,
        owners: None,
    };
    let end = pump::pump(&mut source as &mut dyn PacketSource, &tx, opts);
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
    let totals = writer
        .finish(Finish {
            end_micros: now,
            status,
            times_from_packets: true,
        })
        .with_context(|| format!("cannot store {}", file.display()))?;
    if let Some(p) = problem {
        eprintln!("collector: {}: {p}", file.display());
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
