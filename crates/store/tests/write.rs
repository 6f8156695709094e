//! The writer thread and prune against a real database file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::{IpAddr, Ipv4Addr};

use portwatch_capture::{DnsKind, Layer, Packet, Transport};
use portwatch_scan::PortUsage;
use portwatch_store::Db;
use portwatch_store::insert::{RoundSource, RoundStatus};
use portwatch_store::writer::{Finish, Msg, Writer};
use rusqlite::Connection;

fn packet(i: i64) -> Packet {
    let mut p = Packet {
        ts_micros: 1_764_000_000_000_000 + i,
        length: 60 + i as u32,
        src_addr: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        dst_addr: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
        transport: Some(Transport::Udp),
        src_port: Some(40000),
        dst_port: Some(53),
        dns: Some(DnsKind::Query),
        qry_name: Some(format!("n{i}.example")),
        malformed: i % 10 == 0,
        ..Packet::default()
    };
    if i % 1000 == 999 {
        // Tunnelled: IPv4 in IPv6, the tunnel's ends kept apart.
        p.outer_src = Some("2001:db8::1".parse().unwrap());
        p.outer_dst = Some("2001:db8::2".parse().unwrap());
        p.layers.push(Layer::Eth);
        p.layers.push(Layer::Ipv6);
    } else {
        p.layers.push(Layer::Eth);
    }
    for l in [Layer::Ipv4, Layer::Udp, Layer::Dns] {
        p.layers.push(l);
    }
    p
}

fn round(
    db: &std::path::Path,
    source: RoundSource<'_>,
    start: i64,
    packets: i64,
) -> (i64, Connection) {
    let store = Db::open(db).unwrap();
    let id = store.begin_round(start, source, Some(5.0)).unwrap();
    let w = Writer::spawn(store, id).unwrap();
    let tx = w.sender();
    let batch: Vec<Packet> = (0..packets).map(packet).collect();
    for chunk in batch.chunks(1000) {
        tx.send(Msg::Packets(chunk.to_vec())).unwrap();
    }
    tx.send(Msg::Sample {
        ts_micros: start,
        rows: vec![PortUsage {
            port: 22,
            transport: Transport::Tcp,
            family: 4,
            state: "LISTEN",
            pid: Some(1),
            process: Some("sshd".into()),
            exe: Some("/usr/sbin/sshd".into()),
            netns: None,
            container: None,
            uid: Some(0),
            sockets: 2,
        }],
    })
    .unwrap();
    tx.send(Msg::Stats {
        captured: packets as u64 + 5,
        dropped: 5,
    })
    .unwrap();
    tx.send(Msg::Note("hello".into())).unwrap();
    let totals = w
        .finish(Finish {
            end_micros: start + 55_000_000,
            status: RoundStatus::Complete,
            times_from_packets: false,
        })
        .unwrap();
    assert_eq!(totals.close.packets_stored, packets as u64);
    (id, Connection::open(db).unwrap())
}

#[test]
fn writer_stores_every_row_and_records_the_round_range() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("w.db");
    let file = RoundSource::File(std::path::Path::new("test"));
    let (id, conn) = round(&db, file, 1_764_000_000_000_000, 45_000);
    let row: (String, i64, i64, i64, i64, i64, i64, i64, String) = conn
        .query_row(
            "SELECT status, packets_captured, packets_dropped, packets_stored, packets_malformed,
                    first_packet_id, last_packet_id, samples, note FROM rounds WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(row.0, "complete");
    assert_eq!((row.1, row.2, row.3, row.4), (45_005, 5, 45_000, 4_500));
    assert_eq!(row.6 - row.5 + 1, 45_000, "contiguous rowid range");
    assert_eq!((row.7, row.8.as_str()), (1, "hello"));
    let (n, distinct, proto, ts): (i64, i64, String, String) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT qry_name), min(protocols), min(timestamp) FROM packets
              WHERE id BETWEEN ?1 AND ?2",
            [row.5, row.6],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (n, distinct, proto.as_str()),
        (45_000, 45_000, "eth:ipv4:udp:dns")
    );
    assert_eq!(ts, "2025-11-24T16:00:00.000000Z");
    let tunnelled: (i64, i64, String, String) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT outer_dst_addr), min(outer_src_addr), min(protocols)
               FROM packets WHERE outer_src_addr IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        tunnelled,
        (
            45,
            1,
            "2001:db8::1".to_string(),
            "eth:ipv6:ipv4:udp:dns".to_string()
        )
    );
    let end: String = conn
        .query_row("SELECT end_time FROM rounds", [], |r| r.get(0))
        .unwrap();
    assert_eq!(end, "2025-11-24T16:00:55.000000Z");
    let sockets: (i64, String, i64) = conn
        .query_row(
            "SELECT sockets, exe, uid FROM rounds_ports WHERE port_id = 22 AND state = 'LISTEN'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(sockets, (2, "/usr/sbin/sshd".to_string(), 0));
    let talkers: i64 = conn
        .query_row("SELECT count(*) FROM round_talkers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        talkers, 0,
        "a capture file's round gets no per-round totals"
    );
    assert_no_dangling_references(&conn);
}

/// The writer's connection runs without foreign keys (`docs/DESIGN.md` §8): what it
/// wrote must still satisfy every one of them.
fn assert_no_dangling_references(conn: &Connection) {
    let dangling: Vec<(String, i64, String)> = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        dangling,
        Vec::new(),
        "(table, rowid, parent) without a parent"
    );
}

#[test]
fn a_writer_that_never_pauses_keeps_the_wal_small() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("wal.db");
    let store = Db::open(&db).unwrap();
    // An idle second connection keeps the WAL file after the writer closes, at the
    // largest size it reached (SQLite reuses the file from its start, never shrinks it).
    let keep = Connection::open(&db).unwrap();
    let _: i64 = keep
        .query_row("SELECT count(*) FROM rounds", [], |r| r.get(0))
        .unwrap();
    let id = store
        .begin_round(1_764_000_000_000_000, RoundSource::Simulated, None)
        .unwrap();
    let w = Writer::spawn(store, id).unwrap();
    let tx = w.sender();
    let rows = 4 * portwatch_store::writer::WAL_RESTART_ROWS as i64;
    for start in (0..rows).step_by(2_000) {
        tx.send(Msg::Packets((start..start + 2_000).map(packet).collect()))
            .unwrap();
    }
    let totals = w
        .finish(Finish {
            end_micros: 1_764_000_060_000_000,
            status: RoundStatus::Complete,
            times_from_packets: false,
        })
        .unwrap();
    assert_eq!(totals.close.packets_stored, rows as u64);
    let wal = std::fs::metadata(tmp.path().join("wal.db-wal"))
        .unwrap()
        .len();
    let data = std::fs::metadata(&db).unwrap().len();
    // Every row went through the WAL, which held about a quarter of them at most (and
    // the schema: the WAL starts over only after the first rows).
    assert!(data > 40_000_000, "{data} bytes of database");
    assert!(
        wal < data / 2,
        "a {wal}-byte WAL for a {data}-byte database"
    );
}

#[test]
fn rotating_closes_the_round_and_continues_in_the_next_with_contiguous_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("r.db");
    let store = Db::open(&db).unwrap();
    let t0 = 1_764_000_000_000_000;
    let first = store
        .begin_round(t0, RoundSource::Live("lo"), Some(5.0))
        .unwrap();
    let w = Writer::spawn(store, first).unwrap();
    let tx = w.sender();
    let done = |end| Finish {
        end_micros: end,
        status: RoundStatus::Complete,
        times_from_packets: false,
    };
    let mut ids = vec![first];
    let mut closed = Vec::new();
    for k in 0..3i64 {
        let mut batch: Vec<Packet> = (k * 100..k * 100 + 100).map(packet).collect();
        for p in batch.iter_mut().take(10 * (k as usize + 1)) {
            p.process = Some("gunicorn".into());
        }
        tx.send(Msg::Packets(batch)).unwrap();
        tx.send(Msg::Note(format!("round {k}"))).unwrap();
        let end = t0 + (k + 1) * 60_000_000;
        if k < 2 {
            let (totals, next) = w.rotate(done(end), end).unwrap();
            closed.push(totals);
            ids.push(next);
        } else {
            closed.push(w.finish(done(end)).unwrap());
            break;
        }
    }
    assert!(closed.iter().all(|t| t.close.packets_stored == 100));
    let conn = Connection::open(&db).unwrap();
    let talkers: i64 = conn
        .query_row(
            "SELECT count(DISTINCT round_id) FROM round_talkers",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(talkers, 3, "each live round gets its totals");
    assert_no_dangling_references(&conn);
    // A program's talks, round by round, from the totals: 20 and 30 packets in the
    // second and third rounds (the first is outside the range asked for).
    let store = Db::open(&db).unwrap();
    let talks = store.process_talks(ids[1], ids[2], "gunicorn").unwrap();
    let got: Vec<(i64, &str, &str, i64)> = talks
        .iter()
        .map(|t| {
            let (s, d) = (t.src.as_deref().unwrap(), t.dst.as_deref().unwrap());
            (t.round_id, s, d, t.packets)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[1], "127.0.0.1", "127.0.0.2", 20),
            (ids[2], "127.0.0.1", "127.0.0.2", 30)
        ]
    );
    assert!(talks.iter().all(|t| t.bytes > 60 * t.packets));
    assert_eq!(
        store.process_talks(ids[0], ids[2], "nginx").unwrap(),
        vec![]
    );
    let mut st = conn
        .prepare(
            "SELECT id, start_time, end_time, source, status, scan_interval, first_packet_id, \
                    last_packet_id, note FROM rounds ORDER BY id",
        )
        .unwrap();
    type Row = (i64, String, String, String, String, f64, i64, i64, String);
    let rows: Vec<Row> = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
    for (k, r) in rows.iter().enumerate() {
        assert_eq!(
            (r.3.as_str(), r.4.as_str(), r.5),
            ("live:lo", "complete", 5.0)
        );
        assert_eq!(r.7 - r.6 + 1, 100, "each round its own 100 packets");
        assert_eq!(
            r.8,
            format!("round {k}"),
            "notes do not leak into the next round"
        );
        if k > 0 {
            assert_eq!(r.6, rows[k - 1].7 + 1, "ranges follow each other");
            assert_eq!(r.1, rows[k - 1].2, "each round starts where the last ended");
        }
    }
}

#[test]
fn prune_deletes_old_rounds_with_all_their_rows_and_keeps_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("p.db");
    let day = 86_400_000_000i64;
    let t0 = 1_764_000_000_000_000;
    let lo = RoundSource::Live("lo");
    round(&db, lo, t0, 3000);
    round(&db, lo, t0 + day, 2000);
    let (_, conn) = round(&db, lo, t0 + 2 * day, 1000);
    let pages =
        |c: &Connection| -> i64 { c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap() };
    let before = pages(&conn);
    let pruned = Db::open(&db).unwrap().prune(t0 + day + 1, false).unwrap();
    assert_eq!((pruned.rounds, pruned.packets), (2, 5000));
    // The freed pages stay in the file, free for the next rounds' rows.
    assert_eq!(pruned.returned_pages, 0, "{pruned:?}");
    assert!(pruned.free_pages > 0, "{pruned:?}");
    assert_eq!(pages(&conn), before);
    let left: (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM rounds), (SELECT count(*) FROM packets),
                    (SELECT count(*) FROM rounds_ports), (SELECT sum(packets) FROM round_talkers)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        left,
        (1, 1000, 1, 1000),
        "the pruned rounds' totals went with them"
    );
    // A new round's rows fill the freed pages: the file does not grow.
    round(&db, lo, t0 + 3 * day, 1000);
    assert_eq!(pages(&conn), before);
    // With vacuum (and nothing old enough to delete) the rest goes back to the file
    // system: no free page is left.
    let vacuumed = Db::open(&db).unwrap().prune(t0, true).unwrap();
    assert_eq!(vacuumed.rounds, 0);
    assert!(vacuumed.returned_pages > 0, "{vacuumed:?}");
    assert_eq!(vacuumed.free_pages, 0, "{vacuumed:?}");
    assert_eq!(pages(&conn), before - vacuumed.returned_pages);
    // The plans of prune's own statements never scan a whole table (the cascade's
    // child deletes go through the round_id indexes, which the schema test checks).
    let plan = portwatch_store::Db::open(&db)
        .unwrap()
        .prune_query_plans()
        .unwrap();
    assert!(plan.len() >= 3, "{plan:?}");
    assert!(plan.iter().all(|p| !p.starts_with("SCAN")), "{plan:?}");
}

/// The console views answer the first questions from a fresh round: who listens and
/// since when, what is new today, the last hour's talkers, the last day's names; and
/// `round_packets` has one `round_id` and direction-named ports.
#[test]
fn console_views_answer_from_a_current_round() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("v.db");
    let start = portwatch_store::time::now_micros() - 120_000_000;
    let (id, conn) = round(&db, RoundSource::Live("lo"), start, 300);
    let listening: (i64, String, String, String, i64, String) = conn
        .query_row(
            "SELECT port, protocol, process, exe, uid, since FROM listening_now",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        (listening.0, listening.1.as_str(), listening.2.as_str()),
        (22, "tcp", "sshd")
    );
    assert_eq!((listening.3.as_str(), listening.4), ("/usr/sbin/sshd", 0));
    assert_eq!(listening.5, portwatch_store::time::format_micros(start));
    let new_today: i64 = conn
        .query_row("SELECT count(*) FROM listening_new_today", [], |r| r.get(0))
        .unwrap();
    // First seen two minutes ago: new today, unless the test straddles midnight.
    let midnight = start.div_euclid(86_400_000_000) * 86_400_000_000;
    if start - midnight > 120_000_000 {
        assert_eq!(new_today, 1);
    }
    let (talkers, packets): (i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(packets) FROM top_talkers_last_hour",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (talkers, packets),
        (1, 300),
        "one (process, src, dst), every packet"
    );
    let names: i64 = conn
        .query_row("SELECT count(*) FROM dns_names_last_day", [], |r| r.get(0))
        .unwrap();
    assert_eq!(names, 300);
    let st = conn.prepare("SELECT * FROM round_packets LIMIT 1").unwrap();
    let cols: Vec<&str> = st.column_names().collect();
    assert_eq!(
        cols.iter().filter(|c| c.starts_with("round_id")).count(),
        1,
        "{cols:?}"
    );
    assert!(cols.contains(&"src_port") && cols.contains(&"dst_port") && cols.contains(&"flags"));
    let (src, dst): (i64, i64) = conn
        .query_row(
            "SELECT src_port, dst_port FROM round_packets WHERE round_id = ?1 LIMIT 1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((src, dst), (40000, 53));
}

/// The start of the one-round files of the query tests.
const T0: i64 = 1_764_000_000_000_000;

/// `batch` written as one complete round starting at [`T0`] into a new file; the open
/// database (kept with its directory) and the span of every packet.
fn one_round(batch: Vec<Packet>) -> (tempfile::TempDir, Db, portwatch_store::traffic::PacketSpan) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("q.db");
    let store = Db::open(&path).unwrap();
    let id = store
        .begin_round(T0, RoundSource::File(std::path::Path::new("t")), None)
        .unwrap();
    let w = Writer::spawn(store, id).unwrap();
    let n = batch.len() as i64;
    w.sender().send(Msg::Packets(batch)).unwrap();
    w.finish(Finish {
        end_micros: T0 + 55_000_000,
        status: RoundStatus::Complete,
        times_from_packets: false,
    })
    .unwrap();
    let db = Db::open(&path).unwrap();
    (tmp, db, portwatch_store::traffic::PacketSpan::whole(1, n))
}

#[test]
fn repeat_sources_count_connections_not_retransmissions() {
    let t0 = T0;
    let syn = |i: i64, src: [u8; 4], sport: u16, flags: u8| {
        let mut p = Packet {
            ts_micros: t0 + i,
            length: 60,
            src_addr: Some(IpAddr::V4(Ipv4Addr::from(src))),
            dst_addr: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            transport: Some(Transport::Tcp),
            src_port: Some(sport),
            dst_port: Some(22),
            tcp_flags: Some(flags),
            ..Packet::default()
        };
        for l in [Layer::Eth, Layer::Ipv4, Layer::Tcp] {
            p.layers.push(l);
        }
        p
    };
    let mut batch = Vec::new();
    for k in 0..7u16 {
        let i = i64::from(k) * 10;
        batch.push(syn(i, [203, 0, 113, 7], 40_000 + k, 0x02));
        batch.push(syn(i + 1, [203, 0, 113, 7], 40_000 + k, 0x02)); // retransmitted
        batch.push(syn(i + 2, [203, 0, 113, 7], 40_000 + k, 0x10)); // its ACK
    }
    batch.push(syn(100, [198, 51, 100, 23], 50_000, 0x02));
    let (_tmp, db, span) = one_round(batch);
    let top = db.repeat_sources(&span, 22, 5).unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(
        (top[0].addr.as_str(), top[0].connections, top[0].packets),
        ("203.0.113.7", 7, 21)
    );
    assert_eq!((top[0].first, top[0].last), (t0, t0 + 62));
    assert_eq!(
        (top[1].addr.as_str(), top[1].connections),
        ("198.51.100.23", 1)
    );
    assert!(db.repeat_sources(&span, 443, 5).unwrap().is_empty());
}

/// One host address, two programs: the browser's connections and nmap's sweep of a
/// /24 are two senders, and each one's destinations are its own.
#[test]
fn syn_destinations_are_per_sender_address_and_process() {
    let t0 = T0;
    let syn = |i: i64, dst: [u8; 4], process: Option<&str>| {
        let mut p = Packet {
            ts_micros: t0 + i,
            length: 60,
            src_addr: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            dst_addr: Some(IpAddr::V4(Ipv4Addr::from(dst))),
            transport: Some(Transport::Tcp),
            src_port: Some(40_000 + i as u16),
            dst_port: Some(443),
            tcp_flags: Some(0x02),
            process: process.map(Into::into),
            ..Packet::default()
        };
        for l in [Layer::Eth, Layer::Ipv4, Layer::Tcp] {
            p.layers.push(l);
        }
        p
    };
    let mut batch = Vec::new();
    for k in 0..30u8 {
        batch.push(syn(i64::from(k), [10, 0, 40, k], Some("nmap")));
        batch.push(syn(100 + i64::from(k), [93, 184, k, 1], Some("firefox")));
    }
    batch.push(syn(200, [192, 0, 2, 1], None));
    let (_tmp, db, span) = one_round(batch);
    let of = |process| {
        let mut d = db
            .syn_destinations(&span, "10.0.0.1", process, 100)
            .unwrap();
        d.sort();
        d
    };
    let nmap = of(Some("nmap"));
    assert_eq!(nmap.len(), 30);
    assert!(nmap.iter().all(|d| d.starts_with("10.0.40.")), "{nmap:?}");
    let firefox = of(Some("firefox"));
    assert_eq!(firefox.len(), 30);
    assert!(firefox.iter().all(|d| d.starts_with("93.184.")));
    assert_eq!(of(None), vec!["192.0.2.1".to_string()], "unattributed");
}

#[test]
fn udp_targets_count_datagrams_to_ports_nothing_listens_on() {
    let t0 = T0;
    let udp = |i: i64, src: [u8; 4], dst: [u8; 4], dport: u16, top: Option<Layer>| {
        let mut p = Packet {
            ts_micros: t0 + i,
            length: 100,
            src_addr: Some(IpAddr::V4(Ipv4Addr::from(src))),
            dst_addr: Some(IpAddr::V4(Ipv4Addr::from(dst))),
            transport: Some(Transport::Udp),
            src_port: Some(40_000),
            dst_port: Some(dport),
            ..Packet::default()
        };
        for l in [Layer::Eth, Layer::Ipv4, Layer::Udp].into_iter().chain(top) {
            p.layers.push(l);
        }
        p
    };
    let mut batch = Vec::new();
    // A flood: 300 sources, random ports of 10.0.0.1.
    for k in 0..300u16 {
        let src = [198, 18, (k >> 8) as u8, k as u8];
        batch.push(udp(i64::from(k), src, [10, 0, 0, 1], 1024 + k * 7, None));
    }
    // The host's DNS service's clients (it listens on 53), and its own QUIC out.
    for k in 0..500u16 {
        let src = [203, 0, 113, (k % 250) as u8];
        batch.push(udp(
            1000 + i64::from(k),
            src,
            [10, 0, 0, 1],
            53,
            Some(Layer::Dns),
        ));
        if k < 200 {
            let out = [10, 0, 0, 1];
            batch.push(udp(2000 + i64::from(k), out, [9, 9, 9, 9], 443, None));
        }
    }
    let (_tmp, db, span) = one_round(batch);
    let top = db.udp_targets(&span, &[53, 5353], 5).unwrap();
    assert_eq!(top[0].addr, "10.0.0.1");
    assert_eq!(
        (top[0].datagrams, top[0].sources, top[0].ports, top[0].bytes),
        (300, 300, 300, 30_000)
    );
    assert_eq!((top[0].first, top[0].last), (t0, t0 + 299));
    // The QUIC server the host talks to: a remote, listed after it (the caller keeps
    // the host's own addresses).
    assert_eq!((top[1].addr.as_str(), top[1].datagrams), ("9.9.9.9", 200));
    // Nothing listening: the DNS service's clients count too.
    let all = db.udp_targets(&span, &[], 5).unwrap();
    assert_eq!((all[0].addr.as_str(), all[0].datagrams), ("10.0.0.1", 800));
}

/// A container's listener is stored with its namespace and container, and the
/// incidents' owner lookup names them.
#[test]
fn a_containers_listener_keeps_its_namespace_and_container() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ns.db");
    let store = Db::open(&path).unwrap();
    let start = 1_764_000_000_000_000;
    let id = store
        .begin_round(start, RoundSource::Simulated, Some(5.0))
        .unwrap();
    let w = Writer::spawn(store, id).unwrap();
    let row = |netns: Option<u64>, container: Option<&str>, pid: u32| PortUsage {
        port: 8080,
        transport: Transport::Tcp,
        family: 4,
        state: "LISTEN",
        pid: Some(pid),
        process: Some("nginx".into()),
        exe: Some("/usr/sbin/nginx".into()),
        uid: Some(0),
        sockets: 1,
        netns,
        container: container.map(Into::into),
    };
    w.sender()
        .send(Msg::Sample {
            ts_micros: start,
            rows: vec![
                row(None, None, 1200),
                row(Some(4_026_532_281), Some("docker:3f4e1c2a9b8d/web-1"), 5151),
            ],
        })
        .unwrap();
    w.finish(Finish {
        end_micros: start + 55_000_000,
        status: RoundStatus::Complete,
        times_from_packets: false,
    })
    .unwrap();
    let db = Db::open(&path).unwrap();
    // Both listen on 8080; the lookup reads the namespace and container of the one
    // it names.
    let owner = db.listener_owner(id, 8080, true).unwrap().unwrap();
    match owner.pid {
        Some(5151) => {
            assert_eq!(owner.netns, Some(4_026_532_281));
            assert_eq!(
                owner.container.as_deref(),
                Some("docker:3f4e1c2a9b8d/web-1")
            );
        }
        Some(1200) => assert_eq!((owner.netns, owner.container), (None, None)),
        other => panic!("{other:?}"),
    }
    assert!(db.listener_owner(id, 8081, true).unwrap().is_none());
    // The incidents' lookup of a process names its container.
    let inside = db.process_owner(id, "nginx", Some(5151)).unwrap().unwrap();
    assert_eq!(inside.netns, Some(4_026_532_281));
    assert_eq!(
        inside.container.as_deref(),
        Some("docker:3f4e1c2a9b8d/web-1")
    );
    // The console's view lists both, the host's first, each with its namespace.
    let conn = Connection::open(&path).unwrap();
    let mut st = conn
        .prepare("SELECT port, pid, netns, container, since IS NOT NULL FROM listening_now")
        .unwrap();
    type Row = (i64, i64, Option<i64>, Option<String>, bool);
    let rows: Vec<Row> = st
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![
            (8080, 1200, None, None, true),
            (
                8080,
                5151,
                Some(4_026_532_281),
                Some("docker:3f4e1c2a9b8d/web-1".to_string()),
                true
            ),
        ]
    );
}

#[test]
fn batches_read_ahead_carry_every_packet_of_every_round_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.db");
    let live = RoundSource::Live("lo");
    let t0 = 1_764_000_000_000_000;
    round(&path, live, t0, 7);
    round(&path, live, t0 + 60_000_000, 0);
    round(&path, live, t0 + 120_000_000, 5);
    let db = Db::open(&path).unwrap();
    let rounds = db.history_rounds().unwrap();
    assert_eq!(rounds.len(), 3);
    let mut want = Vec::new();
    for (i, r) in rounds.iter().enumerate() {
        db.for_each_packet(r, |p| want.push((i, format!("{p:?}"))))
            .unwrap();
    }
    assert_eq!(want.len(), 12);
    let reader = db.reader().unwrap();
    for size in [1, 3, 1000] {
        let mut got = Vec::new();
        reader
            .packet_batches(&rounds, size, |b| {
                assert!(b.len() <= size && !b.is_empty(), "batch of {}", b.len());
                b.for_each(|p| got.push((b.round, format!("{p:?}"))));
                true
            })
            .unwrap();
        assert_eq!(got, want, "batches of {size}");
    }
    // A receiver that hangs up stops the reader, without an error.
    let mut sent = 0;
    reader
        .packet_batches(&rounds, 2, |_| {
            sent += 1;
            false
        })
        .unwrap();
    assert_eq!(sent, 1);
}
