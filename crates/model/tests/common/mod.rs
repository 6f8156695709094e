//! A small synthetic-history writer for the model crate's tests and benchmarks (the sim
//! crate's `collector simulate` is the real one; this keeps these tests independent of
//! it). Rounds every 60 s, 12 samples every 5 s, a host with sshd, nginx, postgres and a
//! resolver, HTTPS/QUIC/DNS traffic with a daily rhythm, a daily backup job at 03:00, and
//! injectable events in plain and hard forms, with `labels`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity
)]

use std::path::Path;

use portwatch_model::time::{SECOND, format_micros};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, params};

/// Opens (creating) a DB with the production schema and pragmas.
pub fn open_db(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'rounds'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if v < 1 && has == 0 {
        let sql = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/0001_initial.sql"),
        )
        .unwrap();
        conn.execute_batch(&sql).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    conn
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    PortScan,
    Backdoor,
    DnsTunnel,
    Exfil,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::PortScan, Kind::Backdoor, Kind::DnsTunnel, Kind::Exfil];
    pub fn name(self) -> &'static str {
        match self {
            Kind::PortScan => "port_scan",
            Kind::Backdoor => "backdoor",
            Kind::DnsTunnel => "dns_tunnel",
            Kind::Exfil => "exfiltration",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Inject {
    pub kind: Kind,
    /// Hours after the start of this append.
    pub hour: f64,
    pub hard: bool,
}

pub struct Sim {
    pub rate: f64,
    rng: ChaCha8Rng,
}

/// Start of simulated time: a Monday, 00:00 UTC.
pub const T0: i64 = 1_763_942_400 * SECOND; // 2025-11-24T00:00:00Z

const NAMES: [&str; 12] = [
    "example.com",
    "api.github.com",
    "deb.debian.org",
    "ntp.ubuntu.com",
    "www.google.com",
    "fonts.gstatic.com",
    "mail.example.org",
    "cdn.jsdelivr.net",
    "s3.amazonaws.com",
    "login.microsoftonline.com",
    "updates.example.net",
    "time.cloudflare.com",
];

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> usize {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        let n: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        return (mean + n * mean.sqrt()).round().max(0.0) as usize;
    }
    let l = (-mean).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

impl Sim {
    pub fn new(seed: u64, rate: f64) -> Self {
        Sim {
            rate,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Appends `hours` of rounds after the DB's last round (or at T0), with events.
    pub fn append(&mut self, conn: &mut Connection, hours: f64, inject: &[Inject]) {
        let last: Option<String> = conn
            .query_row("SELECT max(start_time) FROM rounds", [], |r| r.get(0))
            .unwrap();
        let mut start = match last {
            Some(s) => portwatch_model::time::parse_micros(&s).unwrap() + 60 * SECOND,
            None => T0,
        };
        let mut event_id: i64 = conn
            .query_row("SELECT coalesce(max(event), 0) FROM labels", [], |r| {
                r.get(0)
            })
            .unwrap();
        let event_ids: Vec<i64> = inject
            .iter()
            .map(|_| {
                event_id += 1;
                event_id
            })
            .collect();
        let rounds = (hours * 60.0).round() as usize;
        let tx = conn.transaction().unwrap();
        for k in 0..rounds {
            let minute = k as f64 / 60.0;
            let active: Vec<(usize, &Inject)> = inject
                .iter()
                .enumerate()
                .filter(|(_, e)| minute >= e.hour && minute < e.hour + 5.0 / 60.0)
                .collect();
            let rid = self.round(&tx, start, &active);
            for (i, e) in &active {
                tx.execute(
                    "INSERT INTO labels (round_id, event, kind, note) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        rid,
                        event_ids[*i],
                        e.kind.name(),
                        if e.hard { "hard" } else { "plain" }
                    ],
                )
                .unwrap();
            }
            start += 60 * SECOND;
        }
        tx.commit().unwrap();
    }

    fn round(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        start: i64,
        events: &[(usize, &Inject)],
    ) -> i64 {
        tx.execute(
            "INSERT INTO rounds (start_time, end_time, source, status, scan_interval, samples) \
             VALUES (?1, ?2, 'simulated', 'complete', 5.0, 12)",
            params![format_micros(start), format_micros(start + 55 * SECOND)],
        )
        .unwrap();
        let rid = tx.last_insert_rowid();
        let tod = (start.rem_euclid(86_400 * SECOND)) as f64 / (86_400.0 * SECOND as f64);
        let diurnal = 1.0 + 0.6 * (std::f64::consts::TAU * (tod - 0.375)).sin();
        let backup = (3.0 / 24.0..3.25 / 24.0).contains(&tod);
        let mut sock = tx
            .prepare_cached(
                "INSERT INTO rounds_ports (round_id, port_id, timestamp, protocol, family, state, sockets, pid, process) \
                 VALUES (?1, ?2, ?3, ?4, 4, ?5, ?6, ?7, ?8)",
            )
            .unwrap();
        let mut pkt = tx
            .prepare_cached(
                "INSERT INTO packets (timestamp, protocols, qry_name, port_id, dest_port, round_id, src_addr, dst_addr, length, tcp_flags, dns_qr, process) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .unwrap();
        let has = |k: Kind| {
            events
                .iter()
                .find(|(_, e)| e.kind == k)
                .map(|(_, e)| e.hard)
        };
        for s in 0..12 {
            let ts = start + s * 5 * SECOND;
            let tss = format_micros(ts);
            let mut rows: Vec<(i64, &str, &str, i64, i64, &str)> = vec![
                (22, "tcp", "LISTEN", 1, 800, "sshd"),
                (80, "tcp", "LISTEN", 4, 900, "nginx"),
                (5432, "tcp", "LISTEN", 1, 1000, "postgres"),
                (53, "udp", "UNCONN", 1, 500, "systemd-resolve"),
                (68, "udp", "UNCONN", 1, 501, "dhclient"),
            ];
            let est = poisson(&mut self.rng, 4.0 * diurnal) as i64;
            if est > 0 {
                rows.push((443, "tcp", "ESTABLISHED", est, 1200, "firefox"));
            }
            let tw = poisson(&mut self.rng, 2.0 * diurnal) as i64;
            if tw > 0 {
                rows.push((80, "tcp", "TIME_WAIT", tw, 0, ""));
            }
            if backup {
                rows.push((45000 + (s % 3), "tcp", "ESTABLISHED", 3, 4000, "rsync"));
            }
            if let Some(hard) = has(Kind::Backdoor) {
                let port = if hard { 8081 } else { 4444 };
                rows.push((
                    port,
                    "tcp",
                    "LISTEN",
                    1,
                    6666,
                    if hard { "python3" } else { "nc" },
                ));
            }
            for (port, proto, state, n, pid, proc_) in rows {
                let (pid, p) = if proc_.is_empty() {
                    (None, None)
                } else {
                    (Some(pid), Some(proc_))
                };
                sock.execute(params![rid, port, tss, proto, state, n, pid, p])
                    .unwrap();
            }
            // Traffic in the 5 s after this sample.
            let mut emit = |this: &mut Self,
                            n: usize,
                            f: &mut dyn FnMut(
                &mut Self,
                i64,
            ) -> (
                String,
                Option<String>,
                i64,
                i64,
                String,
                String,
                i64,
                Option<i64>,
                Option<i64>,
                Option<String>,
            )| {
                for _ in 0..n {
                    let t = ts + (this.rng.random::<f64>() * 5.0 * SECOND as f64) as i64;
                    let (protos, q, sp, dp, src, dst, len, flags, qr, proc_) = f(this, t);
                    pkt.execute(params![
                        format_micros(t),
                        protos,
                        q,
                        sp,
                        dp,
                        rid,
                        src,
                        dst,
                        len,
                        flags,
                        qr,
                        proc_
                    ])
                    .unwrap();
                }
            };
            let base = self.rate * 5.0 * diurnal;
            let n_https = poisson(&mut self.rng, base * 0.6);
            emit(self, n_https, &mut |this, _| {
                let out = this.rng.random::<bool>();
                let eph = 40000 + this.rng.random_range(0..20000i64);
                if out {
                    (
                        "eth:ipv4:tcp:tls".into(),
                        None,
                        eph,
                        443,
                        "10.0.0.2".into(),
                        format!("93.184.216.{}", this.rng.random_range(1..20)),
                        200 + this.rng.random_range(0..1200),
                        Some(0x18),
                        None,
                        Some("firefox".into()),
                    )
                } else {
                    (
                        "eth:ipv4:tcp:tls".into(),
                        None,
                        443,
                        eph,
                        format!("93.184.216.{}", this.rng.random_range(1..20)),
                        "10.0.0.2".into(),
                        200 + this.rng.random_range(0..1200),
                        Some(0x18),
                        None,
                        Some("firefox".into()),
                    )
                }
            });
            let n_http = poisson(&mut self.rng, base * 0.2);
            emit(self, n_http, &mut |this, _| {
                let eph = 30000 + this.rng.random_range(0..30000i64);
                let syn = this.rng.random::<f64>() < 0.1;
                (
                    "eth:ipv4:tcp".into(),
                    None,
                    eph,
                    80,
                    format!(
                        "198.18.{}.{}",
                        this.rng.random_range(0..4),
                        this.rng.random_range(1..250)
                    ),
                    "10.0.0.2".into(),
                    60 + this.rng.random_range(0..600),
                    Some(if syn { 0x02 } else { 0x18 }),
                    None,
                    Some("nginx".into()),
                )
            });
            let n_quic = poisson(&mut self.rng, base * 0.1);
            emit(self, n_quic, &mut |this, _| {
                (
                    "eth:ipv4:udp:quic".into(),
                    None,
                    50000 + this.rng.random_range(0..10000i64),
                    443,
                    "10.0.0.2".into(),
                    "142.250.1.1".into(),
                    1200,
                    None,
                    None,
                    Some("firefox".into()),
                )
            });
            let n_dns = poisson(&mut self.rng, (base * 0.1).max(0.3));
            emit(self, n_dns, &mut |this, _| {
                let name = if this.rng.random::<f64>() < 0.02 {
                    format!("host{}.example.net", this.rng.random_range(0..100000))
                } else {
                    NAMES[this.rng.random_range(0..NAMES.len())].to_string()
                };
                (
                    "eth:ipv4:udp:dns".into(),
                    Some(name),
                    40000 + this.rng.random_range(0..20000i64),
                    53,
                    "10.0.0.2".into(),
                    "10.0.0.1".into(),
                    80,
                    None,
                    Some(0),
                    Some("systemd-resolve".into()),
                )
            });
            if backup {
                let n = poisson(&mut self.rng, 300.0);
                emit(self, n, &mut |this, _| {
                    (
                        "eth:ipv4:tcp".into(),
                        None,
                        45000 + this.rng.random_range(0..3i64),
                        873,
                        "10.0.0.2".into(),
                        "10.0.0.50".into(),
                        1400,
                        Some(0x18),
                        None,
                        Some("rsync".into()),
                    )
                });
            }
            if let Some(hard) = has(Kind::PortScan) {
                let n = if hard { 25 } else { 300 };
                emit(self, n, &mut |this, _| {
                    (
                        "eth:ipv4:tcp".into(),
                        None,
                        40000 + this.rng.random_range(0..1000i64),
                        this.rng.random_range(1..10000i64),
                        "203.0.113.7".into(),
                        "10.0.0.2".into(),
                        60,
                        Some(0x02),
                        None,
                        None,
                    )
                });
            }
            if let Some(hard) = has(Kind::DnsTunnel) {
                let n = if hard { 6 } else { 60 };
                emit(self, n, &mut |this, _| {
                    let label: String = (0..if hard { 24 } else { 50 })
                        .map(|_| {
                            char::from(
                                b"abcdefghijklmnopqrstuvwxyz0123456789"
                                    [this.rng.random_range(0..36)],
                            )
                        })
                        .collect();
                    (
                        "eth:ipv4:udp:dns".into(),
                        Some(format!("{label}.t.evil.example")),
                        40000 + this.rng.random_range(0..20000i64),
                        53,
                        "10.0.0.2".into(),
                        "10.0.0.1".into(),
                        120,
                        None,
                        Some(0),
                        Some("curl".into()),
                    )
                });
            }
            if let Some(hard) = has(Kind::Exfil) {
                let n = if hard { 80 } else { 600 };
                emit(self, n, &mut |this, _| {
                    (
                        "eth:ipv4:tcp".into(),
                        None,
                        51000 + this.rng.random_range(0..2i64),
                        8443,
                        "10.0.0.2".into(),
                        "198.51.100.9".into(),
                        1400,
                        Some(0x18),
                        None,
                        Some("scp".into()),
                    )
                });
            }
            if let Some(hard) = has(Kind::Backdoor) {
                let port = if hard { 8081 } else { 4444 };
                let n = if hard { 2 } else { 10 };
                emit(self, n, &mut |this, _| {
                    (
                        "eth:ipv4:tcp".into(),
                        None,
                        50000 + this.rng.random_range(0..100i64),
                        port,
                        "192.0.2.66".into(),
                        "10.0.0.2".into(),
                        100,
                        Some(0x18),
                        None,
                        Some("nc".into()),
                    )
                });
            }
        }
        drop(sock);
        drop(pkt);
        let range: (Option<i64>, Option<i64>) = tx
            .query_row("SELECT min(id), max(id) FROM packets WHERE id > coalesce((SELECT max(last_packet_id) FROM rounds WHERE id < ?1), 0)", [rid], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        tx.execute(
            "UPDATE rounds SET first_packet_id = ?1, last_packet_id = ?2 WHERE id = ?3",
            params![range.0, range.1, rid],
        )
        .unwrap();
        rid
    }
}

/// Event-level evaluation (a stand-in for `portwatch_sim::eval`): an event is detected
/// when one of its rounds, or one of the two rounds after it, is anomalous (the round before counts too: its last steps share windows with the event); false alarms
/// are runs of anomalous rounds outside events (and their two-round tails).
pub struct Eval {
    pub events: Vec<(i64, String, String, bool)>, // event, kind, note, detected
    pub false_alarms: usize,
    pub days: f64,
}

pub fn evaluate(conn: &Connection) -> Eval {
    let mut st = conn
        .prepare(
            "SELECT l.event, l.kind, coalesce(l.note, ''), max(coalesce(b.anomalous, 0)), min(l.round_id), max(l.round_id) \
             FROM labels l LEFT JOIN batches_rounds b ON b.round_id BETWEEN l.round_id AND l.round_id + 2 \
             GROUP BY l.event ORDER BY l.event",
        )
        .unwrap();
    let mut covered = std::collections::HashSet::new();
    let events = st
        .query_map([], |r| {
            let lo: i64 = r.get(4)?;
            let hi: i64 = r.get(5)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, i64>(3)? == 1,
                lo,
                hi,
            ))
        })
        .unwrap()
        .map(|x| x.unwrap())
        .map(|(e, k, n, d, lo, hi)| {
            for id in lo - 1..=hi + 2 {
                covered.insert(id);
            }
            (e, k, n, d)
        })
        .collect();
    let mut st = conn
        .prepare("SELECT round_id FROM batches_rounds WHERE anomalous = 1 ORDER BY round_id")
        .unwrap();
    let ids: Vec<i64> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|x| x.unwrap())
        .collect();
    let mut false_alarms = 0;
    let mut prev = -10;
    for id in ids {
        if !covered.contains(&id) && id > prev + 1 {
            false_alarms += 1;
        }
        if !covered.contains(&id) {
            prev = id;
        }
    }
    let n: i64 = conn
        .query_row("SELECT count(*) FROM batches_rounds", [], |r| r.get(0))
        .unwrap();
    Eval {
        events,
        false_alarms,
        days: n as f64 / 1440.0,
    }
}
