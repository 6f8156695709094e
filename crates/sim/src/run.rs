//! The simulation loop: one round per minute (none while a workstation sleeps), one
//! transaction per simulated hour.

use std::collections::BTreeMap;

use portwatch_capture::Packet;
use portwatch_scan::{PortUsage, Socket, aggregate};
use portwatch_store::Db;

use crate::Error;
use crate::config::SimConfig;
use crate::db::{self, RoundRows};
use crate::events::{self, Down, Event, Rewrite};
use crate::host::{Host, MINUTE};
use crate::net::{SEC, Sock};

/// What a [`simulate`] call wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimSummary {
    /// Rounds written: one per minute of the span, less the minutes a workstation slept.
    pub rounds: u64,
    pub first_round_id: i64,
    pub last_round_id: i64,
    pub packets: u64,
    /// Injected events (each with its own `labels.event` id).
    pub events: u64,
}

/// Minutes per transaction: an hour, so a crash loses at most that hour and commits are
/// rare enough not to matter for speed.
const ROUNDS_PER_TX: u64 = 60;
/// Minutes of normal activity generated before the first round, so that sockets and
/// packets of connections opened just before it (TIME_WAIT lasts a minute, sessions up
/// to two) are there as they would have been.
const WARM_UP_MINUTES: i64 = 3;

/// Appends `cfg.hours` of simulated rounds after the database's last round, with the
/// injected events and their labels.
pub fn simulate(db: &mut Db, cfg: &SimConfig) -> Result<SimSummary, Error> {
    simulate_with_progress(db, cfg, &mut |_, _| {})
}

/// [`simulate`], telling `progress` the minutes done and the minutes in all after each
/// hour's commit (for a progress bar).
pub fn simulate_with_progress(
    db: &mut Db,
    cfg: &SimConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimSummary, Error> {
    cfg.validate()?;
    // Every row references a round written in the same transaction or a `ports` row.
    db.with_parents_known(|db| append(db, cfg, progress))
}

fn append(
    db: &mut Db,
    cfg: &SimConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimSummary, Error> {
    let host = Host::new(cfg.seed, cfg.rate, cfg.profile);
    // A call that would start while a workstation sleeps starts when it wakes: the
    // night leaves no rounds, so without this, history grown hour by hour would start
    // every later call at the same sleeping minute and never move on.
    let start = host.awake_from(db::next_start(db)?);
    let minutes = ((cfg.hours * 60.0).round() as u64).max(1);
    let span_end = start + minutes as i64 * MINUTE;
    let round_len = i64::from(cfg.round_secs) * SEC;
    let interval = i64::from(cfg.scan_interval_secs) * SEC;
    let samples = i64::from(cfg.round_secs / cfg.scan_interval_secs) + 1;

    let mut injects = cfg.inject.clone();
    injects.sort_by(|a, b| a.hour.total_cmp(&b.hour).then(a.kind.cmp(&b.kind)));
    let first_event = db.next_event_id()?;
    let mut events: Vec<Event> = injects
        .iter()
        .enumerate()
        .map(|(i, inj)| {
            let at = start + (inj.hour * 3600.0 * SEC as f64).round() as i64;
            events::plan(inj.kind, first_event + i as i64, at, span_end, &host)
        })
        .collect();

    let mut live: Vec<Sock> = Vec::new();
    let mut pending = Pending::default();
    let mut fresh: Vec<Packet> = Vec::new();
    for m in (1..=WARM_UP_MINUTES).rev() {
        host.minute(start - m * MINUTE, &mut live, &mut fresh);
        pending.add(&mut fresh);
    }
    for ev in &mut events {
        live.append(&mut ev.socks);
        pending.add(&mut ev.packets);
    }

    let mut summary = SimSummary {
        rounds: 0,
        first_round_id: 0,
        last_round_id: 0,
        packets: 0,
        events: events.len() as u64,
    };
    let mut sockets: Vec<Socket> = Vec::new();
    let mut sample_rows: Vec<(i64, Vec<PortUsage>)> = Vec::new();
    let mut round_packets: Vec<Packet> = Vec::new();

    let mut m = 0;
    while m < minutes {
        let tx = db.transaction()?;
        let chunk_end = (m + ROUNDS_PER_TX).min(minutes);
        while m < chunk_end {
            let t = start + m as i64 * MINUTE;
            m += 1;
            // A suspended machine has no traffic, no sockets to sample and no
            // collector run: the minute leaves no round (the detector splits history
            // at such gaps). What was pending for it is dropped with the next round.
            if host.asleep(t) {
                continue;
            }
            let window_end = t + round_len;
            host.minute(t, &mut live, &mut fresh);
            pending.add(&mut fresh);
            for ev in &mut events {
                ev.minute(&host, t, &mut live, &mut fresh);
            }
            pending.add(&mut fresh);
            pending.take_round(t, window_end, &mut round_packets);
            let downs: Vec<&Down> = events
                .iter()
                .filter_map(|e| e.down.as_ref())
                .filter(|d| d.start < window_end && t < d.end)
                .collect();
            if !downs.is_empty() {
                take_down(&downs, &host, window_end, &mut round_packets);
            }
            let rewrites: Vec<&Rewrite> = events
                .iter()
                .filter_map(|e| e.rewrite.as_ref())
                .filter(|x| x.overlaps(t, window_end))
                .collect();
            for x in &rewrites {
                round_packets.iter_mut().for_each(|p| x.packet(p));
            }

            sample_rows.clear();
            for k in 0..samples {
                let ts = t + k * interval;
                sockets.clear();
                sockets.extend(host.listeners.iter().cloned());
                host.standing(ts, &mut sockets);
                sockets.extend(live.iter().filter_map(|s| s.at(ts)));
                if !downs.is_empty() {
                    sockets.retain(|s| !downs.iter().any(|d| d.active(ts) && d.hides(s)));
                }
                for x in rewrites.iter().filter(|x| x.active(ts)) {
                    sockets.iter_mut().for_each(|s| x.socket(s));
                }
                sample_rows.push((ts, aggregate(&sockets)));
            }
            live.retain(|s| s.gone_after() > window_end);

            let id = db::write_round(
                &tx,
                &RoundRows {
                    start: t,
                    end: window_end,
                    scan_interval_secs: f64::from(cfg.scan_interval_secs),
                    samples: &sample_rows,
                    packets: &round_packets,
                },
            )?;
            for ev in events.iter().filter(|e| e.overlaps(t, window_end)) {
                tx.insert_label(id, ev.id, ev.kind.name(), &ev.note)?;
            }
            if summary.rounds == 0 {
                summary.first_round_id = id;
            }
            summary.last_round_id = id;
            summary.rounds += 1;
            summary.packets += round_packets.len() as u64;
        }
        tx.commit()?;
        progress(m, minutes);
    }
    Ok(summary)
}

/// Applies stopped services to a round's packets: their traffic goes, and each SYN
/// to them gets the kernel's RST-ACK (inside the round's window, `end`).
fn take_down(downs: &[&Down], host: &Host, end: i64, packets: &mut Vec<Packet>) {
    let mut kept = Vec::with_capacity(packets.len());
    for p in packets.drain(..) {
        let mut keep = true;
        let mut answer = None;
        for d in downs {
            match d.filter(host, &p) {
                None => keep = false,
                Some(Some(rst)) => answer = Some(rst),
                Some(None) => {}
            }
        }
        if keep {
            kept.push(p);
            if let Some(rst) = answer.filter(|a| a.ts_micros < end) {
                kept.push(rst);
            }
        }
    }
    kept.sort_by_key(|p| p.ts_micros);
    *packets = kept;
}

/// Packets generated ahead of their round, bucketed by minute so each is moved once.
#[derive(Default)]
struct Pending {
    minutes: BTreeMap<i64, Vec<Packet>>,
}

impl Pending {
    fn add(&mut self, packets: &mut Vec<Packet>) {
        for p in packets.drain(..) {
            self.minutes
                .entry(p.ts_micros.div_euclid(MINUTE))
                .or_default()
                .push(p);
        }
    }

    /// Moves the packets of the round `[start, end)` into `out`, in time order (stable,
    /// so equal timestamps keep their generation order); packets of earlier minutes
    /// and of the gap after the round are dropped, as the collector would never see them.
    fn take_round(&mut self, start: i64, end: i64, out: &mut Vec<Packet>) {
        out.clear();
        let minute = start.div_euclid(MINUTE);
        while let Some(entry) = self.minutes.first_entry() {
            if *entry.key() > minute {
                break;
            }
            let (m, packets) = entry.remove_entry();
            if m == minute {
                out.extend(
                    packets
                        .into_iter()
                        .filter(|p| p.ts_micros >= start && p.ts_micros < end),
                );
            }
        }
        out.sort_by_key(|p| p.ts_micros);
    }
}
