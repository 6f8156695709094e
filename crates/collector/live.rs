//! One live round: a scanner thread samples the socket table, a sniffer thread
//! captures, the writer stores both; the round is closed when its time is up or a
//! signal arrives.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use portwatch_capture::{Error as CaptureError, LiveConfig, LiveSource, PacketSource};
use portwatch_scan::{BindProbe, SockDiag, SocketSource, aggregate};
use portwatch_store::write::{self, RoundStatus};
use portwatch_store::writer::{Finish, Msg, Sender, Writer};

use crate::cli::{RoundArgs, ScanMethod};
use crate::exit::ExitCode;
use crate::lock::Lock;
use crate::owners::{Owners, View};
use crate::pump::{self, End};
use crate::stop::Stop;

/// Shortest gap between two owner refreshes asked for by the sniffer.
const MIN_REFRESH: Duration = Duration::from_millis(500);

pub fn run(
    lock: &Lock,
    db: &Path,
    args: &RoundArgs,
    stop: &Stop,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let duration = Duration::from_secs_f64(args.duration);
    let interval = Duration::from_secs_f64(args.scan_interval);

    // Capture first: a bad filter is the user's mistake and nothing is written; a
    // missing permission still gives a round with the scanner's data.
    let config = LiveConfig {
        interface: args.interface.clone(),
        filter: args.filter.clone(),
        promiscuous: args.promiscuous,
        ..LiveConfig::default()
    };
    let (source, capture_error) = match LiveSource::open(&config) {
        Ok(s) => (Some(s), None),
        Err(e @ CaptureError::Filter { .. }) => {
            return Err(crate::exit::Usage(e.to_string()).into());
        }
        Err(e) => (None, Some(e)),
    };
    let iface = match (&source, &args.interface) {
        (Some(s), _) => s.interface().to_owned(),
        (None, Some(i)) => i.clone(),
        (None, None) => portwatch_capture::default_device().unwrap_or_else(|_| "?".into()),
    };

    let conn = lock.open_db(db)?;
    let start = portwatch_store::time::now_micros();
    let round = write::begin_round(
        &conn,
        start,
        &format!("live:{iface}"),
        Some(args.scan_interval),
    )
    .context("cannot start a round")?;
    let writer = Writer::spawn(conn, db, round)?;
    let tx = writer.sender();
    if let Some(e) = &capture_error {
        let _ = tx.send(Msg::Note(format!("capture failed: {e}")));
    }
    if let Some(user) = &args.user {
        crate::privs::drop_to(user)?;
    }

    let owners = Arc::new(Owners::default());
    let deadline = started + duration;
    let scanner = {
        let (tx, stop, owners) = (tx.clone(), stop.clone(), Arc::clone(&owners));
        let method = args.scan_method;
        thread::Builder::new()
            .name("scanner".into())
            .spawn(move || scan_loop(method, &tx, &stop, &owners, started, interval, duration))?
    };
    let sniffer = source.map(|mut source| {
        let (tx, stop, view) = (tx.clone(), stop.clone(), View::new(Arc::clone(&owners)));
        let payload_bytes = args.payload_bytes;
        thread::Builder::new()
            .name("sniffer".into())
            .spawn(move || {
                let opts = pump::Options {
                    payload_bytes,
                    deadline: Some(deadline),
                    stop: &stop,
                    owners: Some(view),
                };
                pump::pump(&mut source as &mut dyn PacketSource, &tx, opts)
            })
    });
    let sniffer = sniffer.transpose()?;
    drop(tx);

    let scan_result = scanner
        .join()
        .map_err(|_| anyhow::anyhow!("scanner thread panicked"))?;
    let end = match sniffer {
        Some(h) => Some(
            h.join()
                .map_err(|_| anyhow::anyhow!("sniffer thread panicked"))?,
        ),
        None => None,
    };

    let mut status = RoundStatus::Complete;
    let mut problems: Vec<String> = Vec::new();
    if let Some(e) = &capture_error {
        status = RoundStatus::Partial;
        problems.push(format!("{e}"));
    }
    match &end {
        Some(End::Failed(e)) => {
            status = RoundStatus::Partial;
            problems.push(format!("capture stopped: {e}"));
        }
        Some(End::Interrupted) => status = RoundStatus::Partial,
        _ => {}
    }
    if stop.requested() {
        status = RoundStatus::Partial;
    }
    if let Err(e) = &scan_result {
        problems.push(format!("scanner: {e:#}"));
    }
    let totals = writer
        .finish(Finish {
            end_micros: portwatch_store::time::now_micros(),
            status,
            times_from_packets: false,
        })
        .context("cannot write the round")?;
    for p in &problems {
        eprintln!("collector: {p}");
    }
    if verbose {
        let c = &totals.close;
        println!(
            "round {round} live:{iface} {}: {} packets stored ({} captured, {} dropped, {} malformed), {} samples, {} port rows, {:.1}s",
            status.as_str(),
            c.packets_stored,
            c.packets_captured,
            c.packets_dropped,
            c.packets_malformed,
            c.samples,
            totals.sample_rows,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(match status {
        RoundStatus::Complete => ExitCode::Complete,
        _ => ExitCode::Partial,
    })
}

/// Samples at the round's start and every `interval` up to and including its end; in
/// between, answers the sniffer's requests for fresher owners.
fn scan_loop(
    method: ScanMethod,
    tx: &Sender,
    stop: &Stop,
    owners: &Owners,
    started: Instant,
    interval: Duration,
    duration: Duration,
) -> anyhow::Result<()> {
    let mut source: Box<dyn SocketSource> = match method {
        ScanMethod::Proc => Box::new(SockDiag::new()),
        ScanMethod::Bind => Box::new(BindProbe::new()),
    };
    let samples = (duration.as_secs_f64() / interval.as_secs_f64()).floor() as u32 + 1;
    let mut first_error: Option<portwatch_scan::Error> = None;
    let mut last_refresh = Instant::now();
    for k in 0..samples {
        let at = started + interval.mul_f64(f64::from(k));
        // Wait for the sample time, refreshing owners early when the sniffer asks.
        loop {
            if stop.requested() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= at {
                break;
            }
            if owners.wanted.load(Ordering::Relaxed) && last_refresh.elapsed() >= MIN_REFRESH {
                owners.wanted.store(false, Ordering::Relaxed);
                last_refresh = Instant::now();
                if let Ok(sockets) = source.sample() {
                    owners.publish(&sockets, &[]);
                }
            }
            thread::sleep((at - now).min(Duration::from_millis(50)));
        }
        let ts = portwatch_store::time::now_micros();
        match source.sample() {
            Ok(sockets) => {
                last_refresh = Instant::now();
                owners.publish(&sockets, &[]);
                tx.send(Msg::Sample {
                    ts_micros: ts,
                    rows: aggregate(&sockets),
                })?;
            }
            Err(e) => {
                // One note per round, not one per sample; later samples may succeed.
                if first_error.is_none() {
                    tx.send(Msg::Note(format!("scanner: {e}")))?;
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
