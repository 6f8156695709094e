//! The one capture loop, for live interfaces and files alike (as sniffnet has it):
//! frames → parser → owner attribution → batches to the writer.

use std::time::{Duration, Instant};

use portwatch_capture::source::{Frame, Stats, copy_payload};
use portwatch_capture::{Packet, PacketSource, Parser};
use portwatch_store::writer::{Msg, Sender};

use portwatch_cli::progress::Bar;
use portwatch_cli::stop::Stop;
use portwatch_scan::View;

/// Packets per message to the writer.
const BATCH: usize = 2048;
/// Longest a live packet waits in a batch before being sent on.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Longest the ring is drained after the round's end.
const DRAIN: Duration = Duration::from_secs(2);
/// Longest it is drained after a stop was asked for: SIGTERM means now.
const DRAIN_STOPPED: Duration = Duration::from_millis(100);

/// Why the loop ended.
#[derive(Debug)]
pub enum End {
    /// A file had no more frames.
    Eof,
    /// The round's time was up.
    Deadline,
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The source failed (frames before the failure were kept).
    Failed(portwatch_capture::Error),
    /// The writer stopped (its error is reported by `Writer::finish`).
    WriterGone,
}

pub struct Options<'a> {
    pub payload_bytes: usize,
    pub deadline: Option<Instant>,
    pub stop: &'a Stop,
    pub owners: Option<View>,
    /// A long-running collector's round boundary (µs): the first frame stamped at or
    /// after it ends the round and waits in `carry` for the next one, so each round
    /// holds exactly the packets of its minute.
    pub cut: Option<i64>,
    /// A file's progress bar, moved to the read position every 1024 frames.
    pub progress: Option<&'a Bar>,
}

/// Reads `source` until it ends, the deadline passes or a stop is requested. A packet
/// in `carry` (the frame that ended the previous round) is this round's first; the
/// libpcap counters sent to the writer count from this call on.
pub fn pump(
    source: &mut dyn PacketSource,
    tx: &Sender,
    mut opts: Options<'_>,
    carry: &mut Option<Packet>,
) -> End {
    let mut parser = Parser::new();
    let linktype = source.linktype();
    let base = source.stats();
    let mut batch = Vec::with_capacity(BATCH);
    batch.extend(carry.take());
    let mut last_flush = Instant::now();
    let mut frames: u64 = 0;
    let end = loop {
        // Checked every 1024 frames and on every read timeout: cheap, and prompt enough.
        if frames.is_multiple_of(1024) || batch.is_empty() {
            if opts.stop.requested() {
                break End::Interrupted;
            }
            if opts.deadline.is_some_and(|d| Instant::now() >= d) {
                break End::Deadline;
            }
            if let Some(bar) = opts.progress
                && let Some(at) = source.position()
            {
                bar.set_position(at);
            }
        }
        match source.next() {
            Ok(Some(frame)) => {
                frames += 1;
                let p = decode(&mut parser, linktype, &frame, &mut opts);
                if opts.cut.is_some_and(|cut| p.ts_micros >= cut) {
                    *carry = Some(p);
                    break End::Deadline;
                }
                batch.push(p);
                if batch.len() >= BATCH {
                    if flush(tx, source, &mut batch, base).is_err() {
                        break End::WriterGone;
                    }
                    last_flush = Instant::now();
                }
            }
            Ok(None) => {}
            Err(e) if e.is_eof() => break End::Eof,
            Err(e) => break End::Failed(e),
        }
        if !batch.is_empty() && opts.deadline.is_some() && last_flush.elapsed() >= FLUSH_EVERY {
            if flush(tx, source, &mut batch, base).is_err() {
                break End::WriterGone;
            }
            last_flush = Instant::now();
        }
    };
    // Frames the kernel already accepted are part of the round: read what is queued in
    // the ring (until a read finds nothing, at most DRAIN) before closing it. A file
    // (no deadline) has nothing queued: reading on would only ignore the stop. Nor does
    // a round whose next frame is already past the boundary.
    let drain = match end {
        _ if opts.deadline.is_none() || carry.is_some() => None,
        End::Deadline => Some(DRAIN),
        End::Interrupted => Some(DRAIN_STOPPED),
        _ => None,
    };
    if let Some(drain) = drain {
        let until = Instant::now() + drain;
        while Instant::now() < until {
            match source.next() {
                Ok(Some(frame)) => {
                    let p = decode(&mut parser, linktype, &frame, &mut opts);
                    if opts.cut.is_some_and(|cut| p.ts_micros >= cut) {
                        *carry = Some(p);
                        break;
                    }
                    batch.push(p);
                    if batch.len() >= BATCH && flush(tx, source, &mut batch, base).is_err() {
                        return End::WriterGone;
                    }
                }
                _ => break,
            }
        }
    }
    if flush(tx, source, &mut batch, base).is_err() {
        return End::WriterGone;
    }
    end
}

/// One frame to one row: parsed, timed, payload copied as asked, owner attributed.
fn decode(parser: &mut Parser, linktype: i32, frame: &Frame<'_>, opts: &mut Options<'_>) -> Packet {
    let mut p = parser.parse(frame.data, linktype, frame.wire_len);
    p.ts_micros = frame.ts_micros;
    copy_payload(&mut p, frame.data, opts.payload_bytes);
    if let Some(v) = opts.owners.as_mut() {
        v.attribute(&mut p);
    }
    p
}

/// Sends the batch, and libpcap's counters since `base` (the round's start).
fn flush(
    tx: &Sender,
    source: &mut dyn PacketSource,
    batch: &mut Vec<Packet>,
    base: Option<Stats>,
) -> Result<(), portwatch_store::Error> {
    if !batch.is_empty() {
        tx.send(Msg::Packets(std::mem::replace(
            batch,
            Vec::with_capacity(BATCH),
        )))?;
    }
    if let Some(s) = source.stats() {
        let b = base.unwrap_or_default();
        tx.send(Msg::Stats {
            captured: s.received.saturating_sub(b.received),
            dropped: (s.dropped + s.if_dropped).saturating_sub(b.dropped + b.if_dropped),
        })?;
    }
    Ok(())
}
