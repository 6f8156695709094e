//! One live round: a scanner thread samples the socket table, a sniffer thread
//! captures, the writer stores both; the round is closed when its time is up or a
//! signal arrives.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use portwatch_capture::{Error as CaptureError, LiveConfig, LiveSource, Packet, PacketSource};
use portwatch_cli::exit::Usage;
use portwatch_cli::lock::Lock;
use portwatch_cli::stop::Stop;
use portwatch_scan::{BindProbe, SharedOwners, SockDiag, SocketSource, View, aggregate};
use portwatch_store::insert::{RoundSource, RoundStatus};
use portwatch_store::writer::{Finish, Msg, Sender, Totals, Writer};

use crate::cli::{RoundArgs, ScanMethod};
use crate::exit_codes::ExitCode;
use crate::pump::{self, End};

/// Shortest gap between two owner refreshes asked for by the sniffer.
const MIN_REFRESH: Duration = Duration::from_secs(1);

pub fn run(
    lock: &Lock,
    db: &Path,
    args: &RoundArgs,
    stop: &Stop,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    // Everything that can fail because of what the user asked for is checked before a
    // round exists: a bad filter or user name writes nothing.
    let config = LiveConfig {
        interface: args.interface.clone(),
        filter: args.filter.clone(),
        promiscuous: args.promiscuous,
        buffer_size: i32::try_from(u64::from(args.buffer_size) * 1024).unwrap_or(i32::MAX),
        ..LiveConfig::default()
    };
    // The round starts before the capture opens: a frame the capture buffers while the
    // database opens is stamped after this, so the first round holds only its own
    // interval's packets (taken after opening, 20 frames of a test's stream predated it).
    let mut start = portwatch_store::time::now_micros();
    let (mut source, mut capture_error) = match LiveSource::open(&config) {
        Ok(s) => (Some(s), None),
        Err(e @ CaptureError::Filter { .. }) => {
            return Err(Usage(e.to_string()).into());
        }
        // A missing permission still gives a round with the scanner's data.
        Err(e) => (None, Some(e)),
    };
    let user = args
        .user
        .as_deref()
        .map(crate::privs::resolve)
        .transpose()?;
    let iface = match (&source, &args.interface) {
        (Some(s), _) => s.interface().to_owned(),
        (None, Some(i)) => i.clone(),
        (None, None) => portwatch_capture::default_device().unwrap_or_else(|_| "?".into()),
    };
    let schedule = Schedule::of(args);

    let store = crate::open_for_rounds(lock, db)?;
    let mut round = store
        .begin_round(start, RoundSource::Live(&iface), Some(args.scan_interval))
        .context("cannot start a round")?;
    let writer = Writer::spawn(store, round)?;
    if let Some(ids) = &user
        && let Err(e) = crate::privs::drop_to(ids)
    {
        // Close the round as failed rather than leave it `running`.
        let _ = finish(writer, RoundStatus::Failed);
        return Err(e);
    }
    let mut code = ExitCode::Complete;
    // The frame that ended the previous round, stamped past its boundary.
    let mut carry: Option<Packet> = None;
    for n in 1u64.. {
        let last_planned = schedule.rounds.is_some_and(|r| n >= r);
        let end = schedule.end_of(start);
        // The round's clock starts with its row, after opening and migrating the
        // database; a long-running collector's ends on its boundary.
        let started = Instant::now();
        let duration = Duration::from_micros(u64::try_from(end - start).unwrap_or(0));
        let tx = writer.sender();
        if let Some(e) = &capture_error {
            let _ = tx.send(Msg::Note(format!("capture failed: {e}")));
        }
        let plan = RoundPlan {
            started,
            duration,
            // Back-to-back rounds, the last one included, hold exactly the packets
            // stamped within their interval.
            cut: schedule.continuous.then_some(end),
        };
        let threads = capture_and_scan(args, source.as_mut(), &tx, stop, &plan, &mut carry);
        drop(tx);
        let (status, problems) = match threads {
            Ok(outcome) => {
                if matches!(outcome.capture, Some(End::Failed(_))) {
                    // The handle is broken; the next round tries a new one.
                    source = None;
                }
                judge(outcome, capture_error.as_ref(), stop)
            }
            Err(e) => {
                let _ = finish(writer, RoundStatus::Failed);
                return Err(e);
            }
        };
        // Only a stop: a long-running collector was asked to end, which is its way out.
        let stopped_only = schedule.continuous && problems.is_empty();
        code = code.worst(match status {
            RoundStatus::Complete => ExitCode::Complete,
            _ if stopped_only => ExitCode::Complete,
            _ => ExitCode::Partial,
        });
        for p in &problems {
            portwatch_cli::output::warn("collector", p);
        }
        // Back to back, a round ends on its boundary, where the next begins: the cut
        // put every packet stamped before it in this round and none after.
        let now = match plan.cut {
            Some(cut) if !stop.requested() => cut,
            _ => portwatch_store::time::now_micros(),
        };
        let done = Finish {
            end_micros: now,
            status,
            times_from_packets: false,
        };
        if last_planned || stop.requested() || !schedule.continuous {
            let totals = finish_as(writer, done)?;
            print_round(verbose, round, &iface, status, &totals, started);
            break;
        }
        let (totals, next) = writer.rotate(done, now).context("cannot write the round")?;
        print_round(verbose, round, &iface, status, &totals, started);
        (round, start) = (next, now);
        if source.is_none() && user.is_none() {
            // Capture failed (or was never opened): try again for the next round. After
            // `--user` the permission is gone for good, and the note says so each round.
            match LiveSource::open(&config) {
                Ok(s) => (source, capture_error) = (Some(s), None),
                Err(e) => capture_error = Some(e),
            }
        }
    }
    Ok(code)
}

/// `-v`: one line per round.
fn print_round(
    verbose: bool,
    round: i64,
    iface: &str,
    status: RoundStatus,
    totals: &Totals,
    started: Instant,
) {
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
}

/// How many rounds a run makes and where each ends.
struct Schedule {
    /// Rounds back to back (`--rounds`, `--forever`) rather than one.
    continuous: bool,
    /// At most this many (None: until a signal).
    rounds: Option<u64>,
    /// Round length, µs.
    length: i64,
}

/// A long-running collector's first round is at least this long (µs): one started a
/// moment before the minute joins the next minute instead of lasting a few ms.
const SHORTEST_FIRST: i64 = 1_000_000;

impl Schedule {
    fn of(args: &RoundArgs) -> Schedule {
        Schedule {
            continuous: args.continuous(),
            rounds: if args.forever {
                None
            } else {
                Some(args.rounds.unwrap_or(1))
            },
            length: (args.round_secs() * 1e6) as i64,
        }
    }

    /// The end (µs) of a round that starts at `start`: `length` later for a cron
    /// round; for back-to-back rounds, the next multiple of `length` since the epoch
    /// (the next minute), so that rounds line up with the clock whenever they began.
    fn end_of(&self, start: i64) -> i64 {
        if self.continuous {
            ((start + SHORTEST_FIRST) / self.length + 1) * self.length
        } else {
            start + self.length
        }
    }
}

fn finish(writer: Writer, status: RoundStatus) -> anyhow::Result<Totals> {
    finish_as(
        writer,
        Finish {
            end_micros: portwatch_store::time::now_micros(),
            status,
            times_from_packets: false,
        },
    )
}

fn finish_as(writer: Writer, done: Finish) -> anyhow::Result<Totals> {
    writer.finish(done).context("cannot write the round")
}

/// How the two threads ended.
struct Outcome {
    scan: anyhow::Result<()>,
    capture: Option<End>,
}

/// When one round runs.
struct RoundPlan {
    started: Instant,
    duration: Duration,
    /// The boundary past which frames belong to the next round (µs).
    cut: Option<i64>,
}

/// Runs the scanner and (when capture is open) the sniffer until the round's end, and
/// joins them. Scoped threads borrow the capture handle, which outlives the round.
fn capture_and_scan(
    args: &RoundArgs,
    source: Option<&mut LiveSource>,
    tx: &Sender,
    stop: &Stop,
    plan: &RoundPlan,
    carry: &mut Option<Packet>,
) -> anyhow::Result<Outcome> {
    let interval = Duration::from_secs_f64(args.scan_interval);
    let owners = Arc::new(SharedOwners::default());
    let RoundPlan {
        started,
        duration,
        cut,
    } = *plan;
    thread::scope(|scope| {
        let scanner = {
            let (tx, owners) = (tx.clone(), Arc::clone(&owners));
            let method = args.scan_method;
            thread::Builder::new()
                .name("scanner".into())
                .spawn_scoped(scope, move || {
                    scan_loop(method, &tx, stop, &owners, started, interval, duration)
                })?
        };
        let sniffer = source
            .map(|source| {
                let (tx, view) = (tx.clone(), View::new(Arc::clone(&owners)));
                let payload_bytes = args.payload_bytes;
                thread::Builder::new()
                    .name("sniffer".into())
                    .spawn_scoped(scope, move || {
                        let opts = pump::Options {
                            payload_bytes,
                            deadline: Some(started + duration),
                            stop,
                            owners: Some(view),
                            cut,
                            progress: None,
                        };
                        pump::pump(source as &mut dyn PacketSource, &tx, opts, carry)
                    })
            })
            .transpose()?;
        let scan = scanner
            .join()
            .map_err(|_| anyhow::anyhow!("scanner thread panicked"))?;
        let capture = match sniffer {
            Some(h) => Some(
                h.join()
                    .map_err(|_| anyhow::anyhow!("sniffer thread panicked"))?,
            ),
            None => None,
        };
        Ok(Outcome { scan, capture })
    })
}

/// The round's status and the problems to report: partial when capture failed or was
/// interrupted, or when the scanner failed (its data is what the detector needs most).
fn judge(
    o: Outcome,
    capture_error: Option<&CaptureError>,
    stop: &Stop,
) -> (RoundStatus, Vec<String>) {
    let mut status = RoundStatus::Complete;
    let mut problems = Vec::new();
    if let Some(e) = capture_error {
        status = RoundStatus::Partial;
        problems.push(format!("{e}"));
    }
    match o.capture {
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
    if let Err(e) = o.scan {
        status = RoundStatus::Partial;
        problems.push(format!("scanner: {e:#}"));
    }
    (status, problems)
}

/// Samples at the round's start and every `interval` up to and including its end; in
/// between, answers the sniffer's requests for fresher owners.
fn scan_loop(
    method: ScanMethod,
    tx: &Sender,
    stop: &Stop,
    owners: &SharedOwners,
    started: Instant,
    interval: Duration,
    duration: Duration,
) -> anyhow::Result<()> {
    let mut source: Box<dyn SocketSource> = match method {
        ScanMethod::Proc => Box::new(SockDiag::new()),
        ScanMethod::Bind => Box::new(BindProbe::new()),
    };
    let ifaddrs: Vec<IpAddr> = portwatch_scan::interface_addrs();
    let mut first_error: Option<portwatch_scan::Error> = None;
    let mut last_refresh = Instant::now();
    let mut at = started;
    loop {
        // Wait for the sample time, refreshing owners early when the sniffer asks.
        loop {
            if stop.requested() {
                return first_error.map_or(Ok(()), |e| Err(e.into()));
            }
            let now = Instant::now();
            if now >= at {
                break;
            }
            if owners.wanted.load(Ordering::Relaxed) && last_refresh.elapsed() >= MIN_REFRESH {
                owners.wanted.store(false, Ordering::Relaxed);
                last_refresh = Instant::now();
                if let Ok(sockets) = source.sample() {
                    owners.publish(&sockets, &ifaddrs, &source.namespace_addrs(), false);
                }
            }
            thread::sleep((at - now).min(Duration::from_millis(50)));
        }
        let ts = portwatch_store::time::now_micros();
        match source.sample() {
            Ok(sockets) => {
                last_refresh = Instant::now();
                owners.publish(&sockets, &ifaddrs, &source.namespace_addrs(), true);
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
        match next_sample(started, interval, duration, at, Instant::now()) {
            Some(next) => at = next,
            None => break,
        }
    }
    first_error.map_or(Ok(()), |e| Err(e.into()))
}

/// When to sample next, after the sample planned for `at` finished at `now`: the next
/// multiple of `interval` from the start that is still ahead (samples that a slow
/// sample overran are skipped, not taken late in a burst), the round's end being the
/// last one; None once the end's sample is taken. So a sample slower than the interval
/// never stretches the round beyond its duration.
fn next_sample(
    started: Instant,
    interval: Duration,
    duration: Duration,
    at: Instant,
    now: Instant,
) -> Option<Instant> {
    let end = started + duration;
    if at >= end {
        return None;
    }
    let k = (now.saturating_duration_since(started).as_secs_f64() / interval.as_secs_f64()).floor()
        + 1.0;
    Some((started + interval.mul_f64(k)).min(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_to_back_rounds_end_on_the_minute_and_cron_rounds_after_their_length() {
        let min = 60_000_000i64;
        let t = 1_764_000_000 * 1_000_000 + 17_250_000; // 17.25 s past a minute
        let cron = Schedule {
            continuous: false,
            rounds: Some(1),
            length: 55_000_000,
        };
        assert_eq!(cron.end_of(t), t + 55_000_000);
        let forever = Schedule {
            continuous: true,
            rounds: None,
            length: min,
        };
        let next_minute = (t / min + 1) * min;
        assert_eq!(
            forever.end_of(t),
            next_minute,
            "the first round ends on the minute"
        );
        assert_eq!(
            forever.end_of(next_minute),
            next_minute + min,
            "then whole minutes"
        );
        assert_eq!(
            forever.end_of(next_minute + 3_000),
            next_minute + min,
            "a rotation a few µs late still ends on the next minute"
        );
        assert_eq!(
            forever.end_of(next_minute - 200_000),
            next_minute + min,
            "started 0.2 s before the minute: the first round takes the next minute too"
        );
    }

    #[test]
    fn samples_keep_to_the_interval_and_never_pass_the_end() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (iv, dur) = (ms(5000), ms(55_000));
        // On time: the next multiple, and the end is the last sample.
        assert_eq!(
            next_sample(t0, iv, dur, t0, t0 + ms(10)),
            Some(t0 + ms(5000))
        );
        assert_eq!(
            next_sample(t0, iv, dur, t0 + ms(50_000), t0 + ms(50_010)),
            Some(t0 + ms(55_000))
        );
        assert_eq!(
            next_sample(t0, iv, dur, t0 + ms(55_000), t0 + ms(55_010)),
            None
        );
        // A sample that overran two intervals: the missed ones are skipped.
        assert_eq!(
            next_sample(t0, iv, dur, t0 + ms(5000), t0 + ms(16_000)),
            Some(t0 + ms(20_000))
        );
        // An interval far shorter than a sample (1 ms against ~5 ms): a 2 s round
        // takes about as many samples as fit, and ends at 2 s.
        let (iv, dur) = (ms(1), ms(2000));
        let mut at = t0;
        let mut now = t0;
        let mut samples = 1;
        while let Some(next) = next_sample(t0, iv, dur, at, now) {
            at = next;
            now = now.max(at) + ms(5);
            samples += 1;
        }
        assert_eq!(at, t0 + dur);
        assert!((300..=500).contains(&samples), "{samples}");
        // The last sample starts at the end (or within one sample after it).
        assert!(now <= t0 + dur + ms(10));
    }
}
