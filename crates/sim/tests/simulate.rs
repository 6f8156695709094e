//! `simulate` against a real database opened by the store: determinism, appending,
//! labels, and that each injected event shows in the data the way the attack would.

// Test helpers outside `#[test]` functions panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::hash::{DefaultHasher, Hash, Hasher};

use portwatch_sim::{EventKind, Inject, Profile, SimConfig, simulate};
use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// The store's handle, which `simulate` writes through, and a plain connection to the
/// same file for the tests' own queries.
struct Opened {
    db: portwatch_store::Db,
    conn: Connection,
}

impl std::ops::Deref for Opened {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

fn open() -> (tempfile::TempDir, Opened) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ports.db");
    let db = portwatch_store::Db::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    (dir, Opened { db, conn })
}

fn cfg(hours: f64, seed: u64, rate: f64, inject: &[&str]) -> SimConfig {
    SimConfig {
        hours,
        seed,
        rate,
        inject: inject.iter().map(|s| s.parse().unwrap()).collect(),
        ..SimConfig::default()
    }
}

fn desk(hours: f64, seed: u64, rate: f64, inject: &[&str]) -> SimConfig {
    SimConfig {
        profile: Profile::Workstation,
        ..cfg(hours, seed, rate, inject)
    }
}

/// A hash of every row the simulator writes.
fn content_hash(conn: &Connection) -> u64 {
    let mut h = DefaultHasher::new();
    for table in ["rounds", "rounds_ports", "packets", "labels"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
            .unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                // Each value with its type, hashed as it is (formatting every cell
                // was most of the workstation tests' time).
                match row.get_ref(i).unwrap() {
                    ValueRef::Null => 0u8.hash(&mut h),
                    ValueRef::Integer(v) => (1u8, v).hash(&mut h),
                    ValueRef::Real(v) => (2u8, v.to_bits()).hash(&mut h),
                    ValueRef::Text(v) => (3u8, v).hash(&mut h),
                    ValueRef::Blob(v) => (4u8, v).hash(&mut h),
                }
            }
        }
    }
    h.finish()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

// Determinism: the same seed gives the same rows, another seed other rows.
#[test]
fn same_seed_same_rows_other_seed_other_rows() {
    let run = |seed| {
        let (_d, mut conn) = open();
        simulate(
            &mut conn.db,
            &cfg(1.0, seed, 5.0, &["portscan@0.2", "dnstunnel@0.5"]),
        )
        .unwrap();
        content_hash(&conn)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

// The rounds' shape: one a minute from the fixed epoch, complete, 12 samples, packets
// inside the round and in its contiguous rowid range.
#[test]
fn rounds_are_complete_minutes_with_their_packets() {
    let (_d, mut conn) = open();
    let s = simulate(&mut conn.db, &cfg(1.0, 1, 5.0, &[])).unwrap();
    assert_eq!(s.rounds, 60);
    assert_eq!(s.last_round_id - s.first_round_id, 59);
    assert_eq!(s.events, 0);
    let first: String = conn
        .query_row(
            "SELECT start_time FROM rounds ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(first, "2026-01-05T00:00:00.000000Z");
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM rounds WHERE source = 'simulated' AND status = 'complete'
                AND samples = 12 AND scan_interval = 5.0 AND packets_captured = packets_stored
                AND end_time = strftime('%Y-%m-%dT%H:%M:55.000000Z', start_time)"
        ),
        60
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(DISTINCT round_id || timestamp) FROM rounds_ports"
        ),
        60 * 12
    );
    // Every packet lies in its round's range and time window.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM packets p JOIN rounds r ON r.id = p.round_id
              WHERE p.id NOT BETWEEN r.first_packet_id AND r.last_packet_id
                 OR p.timestamp < r.start_time OR p.timestamp >= r.end_time"
        ),
        0
    );
    // One row per sample per (port, protocol, family, state, pid), as the scanner writes.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM (SELECT 1 FROM rounds_ports
              GROUP BY round_id, timestamp, port_id, protocol, family, state, pid HAVING count(*) > 1)"
        ),
        0
    );
    // Sample times are 0, 5, ..., 55 s into the round.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM rounds_ports rp JOIN rounds r ON r.id = rp.round_id
              WHERE (julianday(rp.timestamp) - julianday(r.start_time)) * 86400 NOT BETWEEN -0.001 AND 55.001
                 OR CAST(round((julianday(rp.timestamp) - julianday(r.start_time)) * 86400) AS INTEGER) % 5 != 0"
        ),
        0
    );
    // Written without foreign-key checks: every reference has its row.
    let orphans: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(orphans, Vec::<String>::new());
    let stored = count(&conn, "SELECT sum(packets_stored) FROM rounds");
    assert_eq!(stored, count(&conn, "SELECT count(*) FROM packets"));
    assert_eq!(stored as u64, s.packets);
    // Night time at 5 packets/s: the daily rhythm keeps it below the weekly mean.
    assert!(stored > 60 * 55 && stored < 60 * 60 * 5, "{stored}");
}

// Appending: two calls of an hour each give contiguous, non-overlapping rounds.
#[test]
fn second_call_appends_after_the_first() {
    let (_d, mut conn) = open();
    let a = simulate(&mut conn.db, &cfg(1.0, 3, 2.0, &[])).unwrap();
    let b = simulate(&mut conn.db, &cfg(1.0, 3, 2.0, &[])).unwrap();
    assert_eq!(b.first_round_id, a.last_round_id + 1);
    let times: Vec<(String, String)> = conn
        .prepare("SELECT start_time, end_time FROM rounds ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(times.len(), 120);
    for w in times.windows(2) {
        assert!(w[0].1 < w[1].0, "overlap: {w:?}");
    }
    assert_eq!(times[60].0, "2026-01-05T01:00:00.000000Z");
    let ids_in_order = count(
        &conn,
        "SELECT count(*) FROM rounds a JOIN rounds b ON b.id = a.id + 1 WHERE b.start_time > a.start_time",
    );
    assert_eq!(ids_in_order, 119);
}

// Cutting history into calls does not change it (each minute has its own stream).
#[test]
fn history_does_not_depend_on_how_it_was_cut() {
    let (_d1, mut one) = open();
    simulate(&mut one.db, &cfg(2.0, 11, 3.0, &[])).unwrap();
    let (_d2, mut two) = open();
    simulate(&mut two.db, &cfg(1.0, 11, 3.0, &[])).unwrap();
    simulate(&mut two.db, &cfg(1.0, 11, 3.0, &[])).unwrap();
    assert_eq!(content_hash(&one), content_hash(&two));
}

// Labels: one row per affected round, one id per event, unique across calls.
#[test]
fn labels_group_each_events_rounds() {
    let (_d, mut conn) = open();
    let s = simulate(
        &mut conn.db,
        &cfg(2.0, 5, 2.0, &["burst@0.5", "portscan@1"]),
    )
    .unwrap();
    assert_eq!(s.events, 2);
    let rows: Vec<(i64, String, i64)> = conn
        .prepare("SELECT event, kind, count(*) FROM labels GROUP BY event ORDER BY event")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0, rows[0].1.as_str(), rows[0].2), (1, "burst", 5));
    assert_eq!((rows[1].0, rows[1].1.as_str()), (2, "portscan"));
    assert!((4..=5).contains(&rows[1].2), "{rows:?}");
    // The burst starts half an hour in: rounds 31..=35.
    let first: String = conn
        .query_row(
            "SELECT min(r.start_time) FROM labels l JOIN rounds r ON r.id = l.round_id WHERE l.event = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(first, "2026-01-05T00:30:00.000000Z");
    simulate(&mut conn.db, &cfg(1.0, 5, 2.0, &["slowscan@0"])).unwrap();
    assert_eq!(count(&conn, "SELECT max(event) FROM labels"), 3);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM labels WHERE event = 3"),
        60
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM labels WHERE note IS NULL OR note = ''"
        ),
        0
    );
}

/// Distinct local ports receiving bare SYNs from one address, max over rounds.
fn max_syn_ports_from_one_source(conn: &Connection, labelled: bool) -> i64 {
    let filter = if labelled { "IN" } else { "NOT IN" };
    count(
        conn,
        &format!(
            "SELECT coalesce(max(n), 0) FROM (
               SELECT round_id, src_addr, count(DISTINCT dest_port) AS n FROM packets
                WHERE tcp_flags = 2 AND round_id {filter} (SELECT round_id FROM labels)
                GROUP BY round_id, src_addr)"
        ),
    )
}

// Per-event effects: each shows where the attack would, and normal rounds do not.
#[test]
fn portscan_touches_hundreds_of_ports_from_one_source() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.0, 2, 5.0, &["portscan@0.5"])).unwrap();
    assert!(max_syn_ports_from_one_source(&conn, true) >= 150);
    assert!(max_syn_ports_from_one_source(&conn, false) <= 3);
    // The closed ports answer with RST-ACK.
    assert!(count(&conn, "SELECT count(*) FROM packets WHERE tcp_flags = 20") > 500);
}

#[test]
fn slowscan_is_six_ports_a_minute() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.5, 2, 5.0, &["slowscan@0.25"])).unwrap();
    let n = max_syn_ports_from_one_source(&conn, true);
    assert!((5..=7).contains(&n), "{n}");
    assert_eq!(
        count(&conn, "SELECT count(DISTINCT round_id) FROM labels"),
        60
    );
}

#[test]
fn backdoor_adds_a_listener_of_a_new_process() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.5, 4, 5.0, &["backdoor@0.5"])).unwrap();
    let normal = "(22, 53, 80, 443, 5432, 8000, 9100)";
    let new_listen = |labelled: &str| {
        count(
            &conn,
            &format!(
                "SELECT count(DISTINCT round_id) FROM rounds_ports WHERE state = 'LISTEN'
                  AND port_id NOT IN {normal} AND round_id {labelled} (SELECT round_id FROM labels)"
            ),
        )
    };
    assert_eq!(new_listen("IN"), 40);
    assert_eq!(new_listen("NOT IN"), 0);
    // Someone talks to it.
    let port = count(
        &conn,
        &format!(
            "SELECT port_id FROM rounds_ports WHERE state = 'LISTEN' AND port_id NOT IN {normal} LIMIT 1"
        ),
    );
    assert!(
        count(
            &conn,
            &format!("SELECT count(*) FROM packets WHERE port_id = {port}")
        ) > 300
    );
}

#[test]
fn backdoor_collide_shares_a_bucket_with_a_listener() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.0, 4, 5.0, &["backdoor-collide@0.2"])).unwrap();
    let ports: Vec<(i64, Option<String>)> = conn
        .prepare("SELECT DISTINCT port_id, process FROM rounds_ports WHERE state = 'LISTEN' AND protocol = 'tcp'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let normal = [22u16, 53, 80, 443, 5432, 8000, 9100];
    let extra: Vec<_> = ports
        .iter()
        .filter(|(p, _)| !normal.contains(&(*p as u16)))
        .collect();
    assert_eq!(extra.len(), 1, "{ports:?}");
    let (port, process) = extra[0];
    assert_eq!(process.as_deref(), Some("sshd"));
    let bucket = portwatch_features::listen_bucket(*port as u16);
    assert!(
        normal
            .iter()
            .any(|&p| portwatch_features::listen_bucket(p) == bucket)
    );
}

#[test]
fn burst_piles_up_connections_on_https() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.0, 6, 5.0, &["burst@0.5"])).unwrap();
    let max_tw = |filter: &str| {
        count(
            &conn,
            &format!(
                "SELECT max(s) FROM (SELECT sum(sockets) AS s FROM rounds_ports
                  WHERE port_id = 443 AND state IN ('ESTABLISHED', 'TIME_WAIT')
                    AND round_id {filter} (SELECT round_id FROM labels) GROUP BY round_id, timestamp)"
            ),
        )
    };
    // Rounds before the burst (after it, its TIME_WAIT sockets linger a minute).
    let (attack, normal) = (
        max_tw("IN"),
        max_tw("< (SELECT min(round_id) FROM labels) AND round_id NOT IN"),
    );
    assert!(attack > 100 && attack > 10 * normal, "{attack} vs {normal}");
}

#[test]
fn dnstunnel_sends_hundreds_of_long_names_a_minute() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.0, 8, 5.0, &["dnstunnel@0.3"])).unwrap();
    let per_round = |filter: &str, what: &str| {
        count(
            &conn,
            &format!(
                "SELECT coalesce(max(n), 0) FROM (SELECT {what} AS n FROM packets
                  WHERE dns_qr = 0 AND round_id {filter} (SELECT round_id FROM labels) GROUP BY round_id)"
            ),
        )
    };
    assert!(per_round("IN", "count(*)") >= 250);
    assert!(per_round("IN", "max(length(qry_name))") >= 60);
    assert!(per_round("NOT IN", "count(*)") < 60);
    assert!(per_round("NOT IN", "max(length(qry_name))") < 45);
}

#[test]
fn dnstunnel_slow_keeps_the_query_rate_but_not_the_names() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(3.0, 8, 5.0, &["dnstunnel-slow@1"])).unwrap();
    let avg = |filter: &str| -> f64 {
        conn.query_row(
            &format!(
                "SELECT avg(n) FROM (SELECT r.id, (SELECT count(*) FROM packets p WHERE p.round_id = r.id AND p.dns_qr = 0) AS n
                   FROM rounds r WHERE r.id {filter} (SELECT round_id FROM labels))"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (attack, normal) = (avg("IN"), avg("NOT IN"));
    assert!(attack < 3.5 * normal.max(1.0), "{attack} vs {normal}");
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE dns_qr = 0 AND length(qry_name) > 40
               AND round_id NOT IN (SELECT round_id FROM labels)"
        ) == 0
    );
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE dns_qr = 0 AND length(qry_name) > 40
               AND round_id IN (SELECT round_id FROM labels)"
        ) > 30
    );
}

// Injected events change nothing but what they add: rows outside the event's own are
// the same as without it.
#[test]
fn an_event_changes_only_its_own_rows() {
    let (_d1, mut plain) = open();
    simulate(&mut plain.db, &cfg(1.0, 9, 3.0, &[])).unwrap();
    let (_d2, mut attacked) = open();
    simulate(&mut attacked.db, &cfg(1.0, 9, 3.0, &["portscan@0.5"])).unwrap();
    let normal_dns =
        |c: &Connection| count(c, "SELECT count(*) FROM packets WHERE dns_qr IS NOT NULL");
    assert_eq!(normal_dns(&plain), normal_dns(&attacked));
    let listen = |c: &Connection| {
        count(
            c,
            "SELECT count(*) FROM rounds_ports WHERE state = 'LISTEN'",
        )
    };
    assert_eq!(listen(&plain), listen(&attacked));
    let syn = |c: &Connection| count(c, "SELECT count(*) FROM packets WHERE tcp_flags = 2");
    assert!(syn(&attacked) > syn(&plain) + 500);
}

// Realism of the normal host: listeners are stable, outgoing connections leave
// TIME_WAIT on ephemeral ports, and the nightly backup runs at 03:00.
#[test]
fn normal_host_looks_like_a_server() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(4.0, 12, 5.0, &[])).unwrap();
    let listeners: Vec<(i64, String, Option<String>)> = conn
        .prepare("SELECT DISTINCT port_id, protocol, process FROM rounds_ports WHERE state IN ('LISTEN', 'UNCONN') ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ports: Vec<i64> = listeners.iter().map(|l| l.0).collect();
    assert_eq!(ports, [22, 53, 53, 68, 80, 323, 443, 5432, 8000, 9100]);
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM rounds_ports WHERE state = 'TIME_WAIT' AND port_id BETWEEN 32768 AND 60999 AND pid IS NULL"
        ) > 0
    );
    let backup = count(
        &conn,
        "SELECT count(*) FROM packets WHERE dest_port = 8000 AND dst_addr = '10.0.2.60'
            AND timestamp BETWEEN '2026-01-05T03:00' AND '2026-01-05T03:06'",
    );
    assert!(backup > 500, "{backup}");
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE dest_port = 8000 AND dst_addr = '10.0.2.60' AND timestamp >= '2026-01-05T03:06'"
        ),
        0
    );
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE protocols = 'eth:ipv4:udp:quic' AND server_name IS NOT NULL"
        ) > 0
    );
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE protocols LIKE 'eth:ipv6:tcp%'"
        ) > 0
    );
}

#[test]
fn inject_outside_the_span_is_refused() {
    let (_d, mut conn) = open();
    let c = SimConfig {
        hours: 1.0,
        inject: vec![Inject {
            kind: EventKind::Burst,
            hour: 1.0,
        }],
        ..SimConfig::default()
    };
    assert!(matches!(
        simulate(&mut conn.db, &c),
        Err(portwatch_sim::Error::InjectOutOfSpan { .. })
    ));
    assert_eq!(count(&conn, "SELECT count(*) FROM rounds"), 0);
}

fn ints(conn: &Connection, sql: &str) -> Vec<i64> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn floats(conn: &Connection, sql: &str) -> Vec<f64> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn text(conn: &Connection, sql: &str) -> String {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Socket rows, in the labelled rounds, of processes no earlier round had.
fn sockets_of_new_processes(conn: &Connection) -> i64 {
    count(
        conn,
        "SELECT count(*) FROM rounds_ports
          WHERE process IS NOT NULL AND round_id IN (SELECT round_id FROM labels)
            AND process NOT IN (SELECT process FROM rounds_ports WHERE process IS NOT NULL
                                 AND round_id < (SELECT min(round_id) FROM labels))",
    )
}

/// Seconds since the Unix epoch of a stored timestamp column, for SQL.
const SECS: &str = "(julianday(timestamp) - 2440587.5) * 86400.0";

// The host scans others: SYNs from its own address to over a thousand ports of one
// host or to port 22/445 of some 200 addresses, from nmap's own sockets.
#[test]
fn outscan_turns_the_host_into_a_scanner() {
    let mut one_host = Vec::new();
    // Seed 2 scans the ports of one host, seed 5 sweeps a /24 (both variants asserted).
    for seed in [2, 5] {
        let (_d, mut conn) = open();
        simulate(&mut conn.db, &cfg(1.0, seed, 5.0, &["outscan@0.2"])).unwrap();
        let (ports, hosts): (i64, i64) = conn
            .query_row(
                "SELECT count(DISTINCT dest_port), count(DISTINCT dst_addr) FROM packets
                  WHERE tcp_flags = 2 AND src_addr = '10.0.2.15' AND process = 'nmap'
                    AND round_id IN (SELECT round_id FROM labels)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(
            ports >= 1000 || hosts >= 150,
            "{ports} ports, {hosts} hosts"
        );
        one_host.push(ports >= 1000);
        // Nothing like it in the host's normal life.
        let normal = count(
            &conn,
            "SELECT max(n) FROM (SELECT count(DISTINCT dst_addr || ':' || dest_port) AS n FROM packets
              WHERE tcp_flags = 2 AND src_addr = '10.0.2.15'
                AND round_id NOT IN (SELECT round_id FROM labels) GROUP BY round_id)",
        );
        assert!(normal < 20, "{normal}");
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM packets WHERE process = 'nmap'
                  AND round_id NOT IN (SELECT round_id FROM labels)"
            ),
            0
        );
        // connect() leaves the scanner's sockets in the table: SYN_SENT owned by nmap
        // in most samples, TIME_WAIT after the open ports.
        let samples = count(
            &conn,
            "SELECT count(DISTINCT round_id || timestamp) FROM rounds_ports
              WHERE state = 'SYN_SENT' AND process = 'nmap'
                AND round_id IN (SELECT round_id FROM labels)",
        );
        assert!(samples >= 20, "{samples}");
        // The targets answer: RST-ACK from closed ports, SYN-ACK from open ones.
        for flags in [20, 18] {
            assert!(
                count(
                    &conn,
                    &format!(
                        "SELECT count(*) FROM packets WHERE tcp_flags = {flags}
                          AND dst_addr = '10.0.2.15' AND process = 'nmap'"
                    )
                ) > 0
            );
        }
    }
    assert_eq!(one_host, [true, false]);
}

// Command and control: one address never contacted before, called once a minute
// (±10 %) for three hours by a new process, after looking up its odd name.
#[test]
fn beacon_calls_one_new_address_about_once_a_minute() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(4.0, 2, 2.0, &["beacon@0.5"])).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM labels"), 180);
    // Of the destinations new in the event, the most called.
    let dst = text(
        &conn,
        "SELECT dst_addr FROM packets
          WHERE tcp_flags = 2 AND src_addr = '10.0.2.15' AND round_id IN (SELECT round_id FROM labels)
            AND dst_addr NOT IN (SELECT dst_addr FROM packets WHERE dst_addr IS NOT NULL
                                  AND round_id < (SELECT min(round_id) FROM labels))
          GROUP BY dst_addr ORDER BY count(*) DESC LIMIT 1",
    );
    let calls = floats(
        &conn,
        &format!(
            "SELECT {SECS} FROM packets WHERE tcp_flags = 2 AND dst_addr = '{dst}' ORDER BY id"
        ),
    );
    // 180 calls, of which the rounds' 55 s windows catch about 55/60.
    assert!((150..=180).contains(&calls.len()), "{}", calls.len());
    let mut gaps: Vec<f64> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    assert!(gaps[0] >= 53.0, "{gaps:?}");
    let median = gaps[gaps.len() / 2];
    assert!((57.0..=63.0).contains(&median), "{median}");
    // At most one call per round, in nearly every labelled round.
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM packets
                  WHERE tcp_flags = 2 AND dst_addr = '{dst}' GROUP BY round_id)"
            )
        ),
        1
    );
    // Its process is new, and the name in its TLS hello is looked up.
    let (process, sni): (String, String) = conn
        .query_row(
            &format!(
                "SELECT process, server_name FROM packets
                  WHERE dst_addr = '{dst}' AND server_name IS NOT NULL LIMIT 1"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        !["nginx", "gunicorn", "celery", "sshd", "restic"].contains(&process.as_str()),
        "{process}"
    );
    assert!(
        count(
            &conn,
            &format!("SELECT count(*) FROM packets WHERE dns_qr = 0 AND qry_name = '{sni}'")
        ) >= 20
    );
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM rounds_ports WHERE state = 'ESTABLISHED' AND process = '{process}'"
            )
        ) > 0
    );
}

// An ICMP tunnel: pings to one new address, many a second, carrying data out.
#[test]
fn icmptunnel_pings_one_new_address_with_data() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(2.0, 3, 2.0, &["icmptunnel@0.5"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((20..=40).contains(&labelled), "{labelled}");
    let out = "protocols = 'eth:ipv4:icmp' AND src_addr = '10.0.2.15'";
    let during = "round_id IN (SELECT round_id FROM labels)";
    // The host pings its monitor now and then; during the tunnel, one more address,
    // never reached before, takes a request or more a second.
    let (dst, requests, mean_len): (String, i64, f64) = conn
        .query_row(
            &format!(
                "SELECT dst_addr, count(*), avg(length) FROM packets WHERE {out} AND {during}
                  GROUP BY dst_addr ORDER BY count(*) DESC LIMIT 1"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(requests >= 40 * labelled, "{requests} in {labelled} rounds");
    assert!(mean_len > 500.0, "data out: {mean_len}");
    assert_eq!(
        count(
            &conn,
            &format!("SELECT count(*) FROM packets WHERE dst_addr = '{dst}' AND NOT ({during})")
        ),
        0
    );
    // Each request has its reply, shorter.
    let replies = floats(
        &conn,
        &format!("SELECT avg(length) FROM packets WHERE src_addr = '{dst}' AND {during}"),
    );
    assert!(replies[0] < 300.0, "{replies:?}");
    assert!(
        count(
            &conn,
            &format!("SELECT count(*) FROM packets WHERE src_addr = '{dst}'")
        ) >= requests - 5
    );
    // No socket: the tunnel's raw socket is not a TCP or UDP one.
    assert_eq!(sockets_of_new_processes(&conn), 0);
}

// A miner: a new process holds one stratum connection to a pool it looked up.
#[test]
fn miner_holds_one_connection_to_a_pool() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(2.0, 4, 2.0, &["miner@0.5"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((30..=45).contains(&labelled), "{labelled}");
    let during = "round_id IN (SELECT round_id FROM labels)";
    let (process, port, dst, conns, rounds): (String, i64, String, i64, i64) = conn
        .query_row(
            &format!(
                "SELECT process, dest_port, dst_addr, count(DISTINCT port_id), count(DISTINCT round_id)
                   FROM packets WHERE src_addr = '10.0.2.15' AND {during}
                    AND dest_port IN (3333, 14444, 10128, 5555)
                  GROUP BY process, dest_port, dst_addr"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert!(
        ["kswapd0", "ksoftirqd", "networkservice", "sysguard"].contains(&process.as_str()),
        "{process}"
    );
    assert!([3333, 14444, 10128, 5555].contains(&port), "{port}");
    assert_eq!(conns, 1, "one connection (one local port)");
    assert!(rounds + 3 >= labelled, "{rounds} of {labelled} rounds");
    // Plain TCP: no TLS, no name in a hello; the pool was looked up first.
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE dst_addr = '{dst}' AND (server_name IS NOT NULL OR protocols LIKE '%tls%')"
            )
        ),
        0
    );
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE dns_qr = 0 AND {during} AND qry_name IN
                  ('pool.supportxmr.com', 'xmr-eu1.nanopool.org', 'gulf.moneroocean.stream', 'pool.hashvault.pro')"
            )
        ) >= 1
    );
    // Its socket, from a world-writable directory.
    assert_eq!(
        text(
            &conn,
            &format!(
                "SELECT DISTINCT exe FROM rounds_ports WHERE state = 'ESTABLISHED' AND process = '{process}'"
            )
        ),
        format!("/dev/shm/.{process}")
    );
}

// A domain-generation algorithm: dozens of random names a minute, every one NXDOMAIN,
// from the host to its resolver; each lookup a short-lived socket of a dropped process.
#[test]
fn dga_looks_up_random_names_that_do_not_exist() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(2.0, 4, 2.0, &["dga@0.5"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((30..=60).contains(&labelled), "{labelled}");
    let during = "round_id IN (SELECT round_id FROM labels)";
    let nx = |inside: bool| {
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE dns_qr = 1 AND resp_name IS NULL
                   AND {} {during}",
                if inside { "" } else { "NOT" }
            ),
        )
    };
    // At least 20 a minute, and none in the host's own lookups.
    assert!(
        nx(true) >= 15 * labelled,
        "{} in {labelled} rounds",
        nx(true)
    );
    assert_eq!(nx(false), 0);
    // Each a distinct name of 8–20 letters under one of the six top-level domains.
    let (names, shortest, longest): (i64, i64, i64) = conn
        .query_row(
            &format!(
                "SELECT count(DISTINCT qry_name), min(instr(qry_name, '.')), max(instr(qry_name, '.'))
                   FROM packets WHERE dns_qr = 1 AND resp_name IS NULL AND {during}"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(names * 100 >= nx(true) * 99, "{names} names");
    assert!(shortest >= 9 && longest <= 21, "{shortest}..{longest}");
    // Sent from the host to its resolver.
    assert_eq!(
        text(
            &conn,
            &format!(
                "SELECT group_concat(DISTINCT src_addr || '>' || dst_addr) FROM packets
                  WHERE dns_qr = 0 AND {during}
                    AND qry_name IN (SELECT qry_name FROM packets WHERE dns_qr = 1 AND resp_name IS NULL)"
            )
        ),
        "10.0.2.15>10.0.2.3"
    );
}

// Slowloris: hundreds of connections held on nginx's port 80 from one address, with
// little traffic.
#[test]
fn slowloris_holds_hundreds_of_connections_from_one_address() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.5, 4, 2.0, &["slowloris@0.3"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((20..=41).contains(&labelled), "{labelled}");
    let during = "round_id IN (SELECT round_id FROM labels)";
    let held = |inside: bool| {
        count(
            &conn,
            &format!(
                "SELECT coalesce(max(n), 0) FROM (SELECT sum(sockets) AS n FROM rounds_ports
                   WHERE port_id = 80 AND state = 'ESTABLISHED' AND {} {during} GROUP BY round_id)",
                if inside { "" } else { "NOT" }
            ),
        )
    };
    assert!(held(true) >= 300, "{}", held(true));
    assert!(
        held(true) >= 10 * held(false).max(1),
        "{} vs {}",
        held(true),
        held(false)
    );
    // One address opened them; its packets are a few bytes each.
    let (sources, avg): (i64, f64) = conn
        .query_row(
            &format!(
                "SELECT count(DISTINCT src_addr), avg(length) FROM packets
                  WHERE dest_port = 80 AND {during}
                    AND src_addr = (SELECT src_addr FROM packets WHERE tcp_flags = 2 AND dest_port = 80
                                      AND {during} GROUP BY src_addr ORDER BY count(*) DESC LIMIT 1)"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(sources, 1);
    assert!(avg < 90.0, "{avg}");
}

// An open proxy: strangers' requests at nginx's port 80, and nginx, which never
// connects out, fetching their pages from dozens of sites.
#[test]
fn proxy_makes_nginx_fetch_pages_for_strangers() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(2.0, 4, 2.0, &["proxy@0.3"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((30..=61).contains(&labelled), "{labelled}");
    let fetched = |inside: bool, what: &str| {
        count(
            &conn,
            &format!(
                "SELECT {what} FROM packets WHERE process = 'nginx' AND src_addr = '10.0.2.15'
                   AND tcp_flags = 2 AND dest_port IN (80, 443)
                   AND {} round_id IN (SELECT round_id FROM labels)",
                if inside { "" } else { "NOT" }
            ),
        )
    };
    assert!(fetched(true, "count(DISTINCT dst_addr)") >= 30);
    assert!(fetched(true, "count(*)") >= 10 * 30, "10–40 a minute");
    assert_eq!(
        fetched(false, "count(*)"),
        0,
        "nginx connects out only as a proxy"
    );
    // Each fetch is looked up, and its page comes back in full segments.
    assert!(
        count(
            &conn,
            "SELECT count(DISTINCT qry_name) FROM packets WHERE dns_qr = 1 AND qry_name LIKE 'www.%'
               AND round_id IN (SELECT round_id FROM labels)"
        ) >= 20
    );
    // The pages go back from port 80 to the 20–60 addresses that asked.
    let clients = count(
        &conn,
        "SELECT count(DISTINCT dst_addr) FROM packets WHERE src_addr = '10.0.2.15' AND port_id = 80
           AND length = 1514 AND round_id IN (SELECT round_id FROM labels)",
    );
    assert!(clients >= 20, "{clients}");
}

// A stolen key: one SSH connection from an address never seen, typed into, with the
// intruder's tools uploaded through it.
#[test]
fn stolenkey_is_one_typed_ssh_session_from_a_new_address() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.5, 4, 2.0, &["stolenkey@0.3"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((20..=41).contains(&labelled), "{labelled}");
    let during = "round_id IN (SELECT round_id FROM labels)";
    // The intruder: who sent sshd the most while it lasted.
    let intruder = text(
        &conn,
        &format!(
            "SELECT src_addr FROM packets WHERE dest_port = 22 AND {during}
              GROUP BY src_addr ORDER BY sum(length) DESC LIMIT 1"
        ),
    );
    let from = |what: &str, inside: bool| {
        count(
            &conn,
            &format!(
                "SELECT {what} FROM packets WHERE src_addr = '{intruder}' AND dest_port = 22
                   AND {} {during}",
                if inside { "" } else { "NOT" }
            ),
        )
    };
    let tools = from("coalesce(sum(length), 0)", true);
    assert!(tools >= 1_000_000, "{intruder}: {tools}");
    assert!(from("count(*)", true) >= 100, "keystrokes");
    assert_eq!(
        from("count(*) FILTER (WHERE tcp_flags = 2)", true),
        1,
        "one connection"
    );
    assert_eq!(from("count(*)", false), 0, "never seen before");
}

// A trojaned sshd: the same name, port and clients; another executable and master pid.
#[test]
fn hijack_serves_sshd_from_another_executable() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(2.0, 5, 2.0, &["hijack@0.5"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((40..=60).contains(&labelled), "{labelled}");
    let listener = |when: &str| {
        text(
            &conn,
            &format!(
                "SELECT group_concat(DISTINCT exe || ' ' || pid) FROM rounds_ports \
                  WHERE port_id = 22 AND state = 'LISTEN' AND {when}"
            ),
        )
    };
    let during = "round_id IN (SELECT round_id FROM labels)";
    assert_eq!(
        listener("round_id < (SELECT min(round_id) FROM labels)"),
        "/usr/sbin/sshd 812"
    );
    assert_eq!(
        listener("round_id > (SELECT max(round_id) FROM labels)"),
        "/usr/sbin/sshd 812"
    );
    // Rounds wholly inside the event (the first and last see the swap mid-round).
    let inside = "round_id > (SELECT min(round_id) FROM labels) \
                  AND round_id < (SELECT max(round_id) FROM labels)";
    let now = listener(inside);
    assert!(
        now.starts_with("/var/tmp/.ssh/sshd ") && !now.contains(','),
        "{now}"
    );
    // Its sessions and their traffic go on, under the same name.
    assert_eq!(
        text(
            &conn,
            &format!(
                "SELECT group_concat(DISTINCT exe) FROM rounds_ports WHERE process = 'sshd' AND {inside}"
            )
        ),
        "/var/tmp/.ssh/sshd"
    );
    assert!(
        count(
            &conn,
            &format!("SELECT count(*) FROM packets WHERE process = 'sshd' AND {during}")
        ) > 0
    );
}

// A rogue resolver: the host's DNS goes to one public address for the event, and only
// then; nothing else changes.
#[test]
fn resolver_sends_the_hosts_dns_elsewhere() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(2.5, 7, 2.0, &["resolver@0.5"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((30..=91).contains(&labelled), "{labelled}");
    // Rounds wholly inside the event (the first and last see the switch mid-round).
    let inside = "round_id > (SELECT min(round_id) FROM labels) \
                  AND round_id < (SELECT max(round_id) FROM labels)";
    let outside = "round_id NOT IN (SELECT round_id FROM labels)";
    let resolvers = |when: &str| {
        text(
            &conn,
            &format!(
                "SELECT group_concat(DISTINCT dst_addr) FROM packets WHERE dns_qr = 0 AND {when}"
            ),
        )
    };
    assert_eq!(resolvers(outside), "10.0.2.3");
    let rogue = resolvers(inside);
    assert!(
        !rogue.contains(',') && !rogue.starts_with("10.") && !rogue.starts_with("192.168."),
        "{rogue}"
    );
    // It answers every query, and is never reached outside the event.
    let to_rogue = |qr: i64, end: &str| {
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE dns_qr = {qr} AND {end}_addr = '{rogue}' AND {inside}"
            ),
        )
    };
    assert!(to_rogue(0, "dst") >= 10, "{}", to_rogue(0, "dst"));
    assert!(to_rogue(1, "src") >= to_rogue(0, "dst") - 2);
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE '{rogue}' IN (src_addr, dst_addr) AND {outside}"
            )
        ),
        0
    );
    // The names looked up are the host's usual ones.
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(DISTINCT qry_name) FROM packets WHERE dns_qr = 0 AND {inside}
                   AND qry_name IN (SELECT qry_name FROM packets WHERE dns_qr = 0 AND {outside})"
            )
        ) >= 3
    );
}

// A ping sweep: every address of the host's /24 pinged, the silent ones twice; only
// the live neighbours answer.
#[test]
fn pingsweep_pings_every_address_of_the_network() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.0, 8, 2.0, &["pingsweep@0.3"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((1..=12).contains(&labelled), "{labelled}");
    let during = "round_id IN (SELECT round_id FROM labels)";
    let icmp = "protocols = 'eth:ipv4:icmp'";
    let out = |what: &str| {
        count(
            &conn,
            &format!(
                "SELECT {what} FROM packets WHERE {icmp} AND src_addr = '10.0.2.15'
                   AND dst_addr LIKE '10.0.2.%' AND {during}"
            ),
        )
    };
    // 253 addresses (all but the host's own), 250 of them silent and pinged again.
    assert_eq!(out("count(DISTINCT dst_addr)"), 253);
    assert!(out("count(*)") >= 253 + 250, "{}", out("count(*)"));
    assert_eq!(
        text(
            &conn,
            &format!(
                "SELECT group_concat(DISTINCT src_addr) FROM (SELECT src_addr FROM packets
                   WHERE {icmp} AND dst_addr = '10.0.2.15' AND src_addr LIKE '10.0.2.%'
                     AND {during} ORDER BY src_addr)"
            )
        ),
        "10.0.2.3,10.0.2.50,10.0.2.60"
    );
    // No socket: ping's is a raw one.
    assert_eq!(sockets_of_new_processes(&conn), 0);
}

// Exfiltration: hundreds of megabytes out over one connection to one new address.
#[test]
fn upload_sends_hundreds_of_megabytes_to_one_new_address() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(1.0, 2, 2.0, &["upload@0.2"])).unwrap();
    let labelled = count(&conn, "SELECT count(*) FROM labels");
    assert!((10..=21).contains(&labelled), "{labelled}");
    let dst = text(
        &conn,
        "SELECT dst_addr FROM packets WHERE src_addr = '10.0.2.15'
          AND round_id IN (SELECT round_id FROM labels)
          GROUP BY dst_addr ORDER BY sum(length) DESC LIMIT 1",
    );
    let bytes = |dir: &str| {
        count(
            &conn,
            &format!("SELECT coalesce(sum(length), 0) FROM packets WHERE {dir}_addr = '{dst}'"),
        )
    };
    let (out, back) = (bytes("dst"), bytes("src"));
    // The rounds capture 55 s of each minute: scaled back, what left the host.
    assert!(out as f64 * 60.0 / 55.0 >= 300e6, "{out}");
    assert!(out <= 1_000_000_000, "{out}");
    assert!(back * 10 < out, "{back} vs {out}");
    // One connection, never seen before, from one process, after a lookup.
    assert_eq!(
        count(
            &conn,
            &format!("SELECT count(DISTINCT port_id) FROM packets WHERE dst_addr = '{dst}'")
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE (dst_addr = '{dst}' OR src_addr = '{dst}')
                  AND round_id < (SELECT min(round_id) FROM labels)"
            )
        ),
        0
    );
    let (process, sni): (String, String) = conn
        .query_row(
            &format!(
                "SELECT process, server_name FROM packets
                  WHERE dst_addr = '{dst}' AND server_name IS NOT NULL"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(["rclone", "curl"].contains(&process.as_str()), "{process}");
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE dns_qr = 0 AND qry_name = '{sni}'
                  AND timestamp < (SELECT min(timestamp) FROM packets WHERE dst_addr = '{dst}')"
            )
        ) > 0
    );
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(DISTINCT round_id) FROM rounds_ports
                  WHERE state = 'ESTABLISHED' AND process = '{process}'"
            )
        ) >= 10
    );
}

// A SYN flood: thousands of spoofed sources a minute, the backlog full of SYN_RECV,
// no handshake completed.
#[test]
fn flood_fills_the_backlog_with_spoofed_syns() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(0.5, 2, 2.0, &["flood@0.1"])).unwrap();
    let per_round: Vec<(i64, i64)> = conn
        .prepare(
            "SELECT count(*), count(DISTINCT src_addr) FROM packets
              WHERE tcp_flags = 2 AND dst_addr = '10.0.2.15' AND dest_port = 443
                AND round_id IN (SELECT round_id FROM labels) GROUP BY round_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(per_round.len(), 10);
    for (syns, sources) in per_round {
        // A round holds 55 s of the minute.
        assert!(syns as f64 * 60.0 / 55.0 >= 5000.0, "{syns}");
        assert!(syns <= 20_000);
        assert!(sources >= 1000, "{sources}");
    }
    let syn_recv = |filter: &str| {
        count(
            &conn,
            &format!(
                "SELECT coalesce(max(sockets), 0) FROM rounds_ports
                  WHERE state = 'SYN_RECV' AND port_id = 443 AND round_id {filter}"
            ),
        )
    };
    // nginx's backlog (511) fills; nothing of the kind before the flood.
    assert!(syn_recv("IN (SELECT round_id FROM labels)") >= 500);
    assert_eq!(syn_recv("< (SELECT min(round_id) FROM labels)"), 0);
    // Each SYN gets a SYN-ACK (and the queued ones retransmits); no source completes
    // the handshake (the flood's SYNs are 60-byte frames, the normal clients' 74).
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE tcp_flags = 18 AND port_id = 443
              AND round_id IN (SELECT round_id FROM labels)"
        ) > 50_000
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE tcp_flags = 16 AND dest_port = 443
              AND src_addr IN (SELECT src_addr FROM packets WHERE tcp_flags = 2 AND length = 60)"
        ),
        0
    );
}

/// Rounds (ids) that have a LISTEN row on `port`.
fn rounds_listening(conn: &Connection, port: u16) -> Vec<i64> {
    ints(
        conn,
        &format!(
            "SELECT DISTINCT round_id FROM rounds_ports WHERE state = 'LISTEN' AND port_id = {port} ORDER BY 1"
        ),
    )
}

// A service stops for half an hour: its listener and connections vanish from the
// socket table, its traffic stops and its clients' SYNs get RST; then it is back.
#[test]
fn outage_takes_a_listener_away_for_half_an_hour() {
    // Seed 2 stops node_exporter (its scraper connects from outside), seed 4 postgres
    // and seed 5 the app (both on loopback only: the socket table shows them).
    for (seed, port) in [(2, 9100), (4, 5432), (5, 8000)] {
        let (_d, mut conn) = open();
        simulate(&mut conn.db, &cfg(1.5, seed, 2.0, &["outage@0.3"])).unwrap();
        let labelled = ints(&conn, "SELECT round_id FROM labels ORDER BY 1");
        assert_eq!(labelled, (19..=48).collect::<Vec<_>>());
        let listening = rounds_listening(&conn, port);
        let expected: Vec<i64> = (1..=90).filter(|r| !labelled.contains(r)).collect();
        assert_eq!(listening, expected, "{port}");
        // The other listeners stay.
        for other in [22, 80, 443, 5432, 8000, 9100]
            .into_iter()
            .filter(|&p| p != port)
        {
            assert_eq!(rounds_listening(&conn, other).len(), 90, "{other}");
        }
        // No connection of the service either.
        assert_eq!(
            count(
                &conn,
                &format!(
                    "SELECT count(*) FROM rounds_ports WHERE port_id = {port}
                      AND round_id IN (SELECT round_id FROM labels)"
                )
            ),
            0
        );
        let text = text(&conn, "SELECT note FROM labels LIMIT 1");
        assert!(text.contains(&format!("tcp/{port}")), "{text}");
        if port == 9100 {
            // The scraper's SYNs every 15 s, each answered by RST-ACK, and nothing else.
            let during = |flags: &str| {
                count(
                    &conn,
                    &format!(
                        "SELECT count(*) FROM packets WHERE (dest_port = 9100 OR port_id = 9100)
                          AND tcp_flags {flags} AND round_id IN (SELECT round_id FROM labels)"
                    ),
                )
            };
            let syns = during("= 2");
            assert!(syns >= 100, "{syns}");
            assert_eq!(during("= 20"), syns);
            assert_eq!(during("NOT IN (2, 20)"), 0);
            // Scrapes resume after it.
            assert!(
                count(
                    &conn,
                    "SELECT count(*) FROM packets WHERE port_id = 9100 AND tcp_flags = 24
                      AND round_id > (SELECT max(round_id) FROM labels)"
                ) > 50
            );
        } else {
            // The app's side of its connections to the service (the postgres pool, or
            // all of a dead app's sockets) goes too: gunicorn's ESTABLISHED sockets on
            // ephemeral ports, per sample.
            let app = |filter: &str| -> f64 {
                conn.query_row(
                    &format!(
                        "SELECT coalesce(avg(n), 0) FROM (SELECT r.round_id, r.timestamp,
                                (SELECT coalesce(sum(sockets), 0) FROM rounds_ports g
                                  WHERE g.round_id = r.round_id AND g.timestamp = r.timestamp
                                    AND g.state = 'ESTABLISHED' AND g.process = 'gunicorn'
                                    AND g.port_id BETWEEN 32768 AND 60999) AS n
                           FROM (SELECT DISTINCT round_id, timestamp FROM rounds_ports) r
                          WHERE r.round_id {filter} (SELECT round_id FROM labels))"
                    ),
                    [],
                    |r| r.get(0),
                )
                .unwrap()
            };
            let (during, otherwise) = (app("IN"), app("NOT IN"));
            assert!(otherwise >= 5.0, "{otherwise}");
            if port == 5432 {
                // The five pool connections, not the app's API calls.
                assert!(
                    during <= otherwise - 4.5 && during > 0.0,
                    "{during} vs {otherwise}"
                );
            } else {
                assert_eq!(during, 0.0);
                // A dead app makes no API calls.
                assert_eq!(
                    count(
                        &conn,
                        "SELECT count(*) FROM packets WHERE process = 'gunicorn'
                          AND round_id IN (SELECT round_id FROM labels)"
                    ),
                    0
                );
            }
        }
    }
}

// A new service for good: the listener from the event's round to the end of the call,
// clients on the host's rhythm, and a later call's `deploy@0` continues the same one.
#[test]
fn deploy_stays_to_the_end_and_a_later_call_continues_it() {
    let (_d, mut conn) = open();
    simulate(&mut conn.db, &cfg(2.0, 2, 2.0, &["deploy@0.5"])).unwrap();
    simulate(&mut conn.db, &cfg(1.0, 2, 2.0, &["deploy@0"])).unwrap();
    assert_eq!(
        rounds_listening(&conn, 8443),
        (31..=180).collect::<Vec<_>>()
    );
    // In every sample of those rounds, owned by one api-server process.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM rounds_ports WHERE port_id = 8443 AND state = 'LISTEN'
              AND process = 'api-server'"
        ),
        150 * 12
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(DISTINCT pid) FROM rounds_ports WHERE port_id = 8443"
        ),
        1
    );
    let labels: Vec<(i64, i64, i64)> = conn
        .prepare("SELECT min(round_id), max(round_id), count(*) FROM labels WHERE kind = 'deploy' GROUP BY event ORDER BY event")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(labels, [(31, 120, 90), (121, 180, 60)]);
    // A handful of clients, in both calls.
    let clients = |filter: &str| {
        count(
            &conn,
            &format!(
                "SELECT count(DISTINCT src_addr) FROM packets WHERE dest_port = 8443
                  AND tcp_flags = 2 AND process = 'api-server' AND round_id {filter}"
            ),
        )
    };
    assert!((2..=7).contains(&clients("> 0")), "{}", clients("> 0"));
    assert!(clients("> 120") >= 2);
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE dest_port = 8443 AND tcp_flags = 2 AND process = 'api-server'"
        ) >= 30
    );
}

// The workstation: nights asleep (no rounds for hours), a browser's TLS and QUIC to
// many places by day, a morning update, few listeners and nothing from the internet.
#[test]
fn workstation_sleeps_at_night_and_browses_by_day() {
    let (_d, mut conn) = open();
    // Monday 00:00 to Wednesday 02:00.
    let s = simulate(&mut conn.db, &desk(50.0, 2, 1.0, &[])).unwrap();
    assert!(s.rounds < 50 * 60 - 4 * 60, "{}", s.rounds);
    let minutes: Vec<i64> = floats(
        &conn,
        "SELECT (julianday(start_time) - julianday('2026-01-05')) * 1440 FROM rounds ORDER BY id",
    )
    .into_iter()
    .map(|m| m.round() as i64)
    .collect();
    // Gaps: from the end of the round before to the next; each lasts hours and starts
    // late in the evening.
    let gaps: Vec<(i64, i64)> = minutes
        .windows(2)
        .filter(|w| w[1] - w[0] > 1)
        .map(|w| (w[0] + 1, w[1] - w[0] - 1))
        .collect();
    assert!(!gaps.is_empty());
    for &(from, len) in &gaps {
        let hour = from % 1440 / 60;
        assert!(len >= 4 * 60, "{gaps:?}");
        assert!(!(2..22).contains(&hour), "{gaps:?}");
    }
    // The browser: TLS and QUIC to many names, over v4 and v6.
    let browser = text(
        &conn,
        "SELECT process FROM packets WHERE process IN ('firefox', 'chrome') LIMIT 1",
    );
    let of_browser = |what: &str| {
        count(
            &conn,
            &format!("SELECT {what} FROM packets WHERE process = '{browser}'"),
        )
    };
    assert!(of_browser("count(DISTINCT server_name)") >= 25);
    assert!(of_browser("count(DISTINCT dst_addr)") >= 50);
    assert!(of_browser("sum(protocols LIKE '%:quic')") > 1000);
    assert!(of_browser("sum(protocols LIKE 'eth:ipv6:%')") > 1000);
    assert!(count(&conn, "SELECT count(*) FROM packets WHERE dns_qr = 0") > 500);
    // Office hours are busy, the evening light.
    let per_round = |from: &str, to: &str| -> f64 {
        conn.query_row(
            &format!(
                "SELECT avg(packets_stored) FROM rounds WHERE start_time BETWEEN '2026-01-05T{from}' AND '2026-01-05T{to}'"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (day, evening) = (per_round("10", "12"), per_round("20", "22"));
    assert!(day > 2.5 * evening, "{day} vs {evening}");
    // Few listeners, none of the server's.
    let listeners: Vec<(i64, String)> = conn
        .prepare("SELECT DISTINCT port_id, protocol FROM rounds_ports WHERE state IN ('LISTEN', 'UNCONN') ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ports: Vec<i64> = listeners.iter().map(|l| l.0).collect();
    assert_eq!(ports, [22, 53, 53, 68, 323, 631, 5353]);
    // apt once a day, in the morning.
    let apt: Vec<(String, String)> = conn
        .prepare(
            "SELECT substr(timestamp, 1, 10), min(timestamp) FROM packets
              WHERE process IN ('http', 'https') GROUP BY 1 ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(apt.len(), 2, "{apt:?}");
    for (_, first) in &apt {
        let hour: u32 = first[11..13].parse().unwrap();
        assert!((7..=11).contains(&hour), "{apt:?}");
    }
    // Behind NAT: no connection attempt reaches it.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM packets WHERE tcp_flags = 2 AND dst_addr = '192.168.1.23'"
        ),
        0
    );
}

// Determinism of the workstation: the same seed gives the same rows (events
// included), another seed others, and cutting the history into calls changes nothing.
#[test]
fn workstation_is_deterministic() {
    let run = |seed, calls: &[f64]| {
        let (_d, mut conn) = open();
        for &hours in calls {
            let inject: &[&str] = if calls.len() == 1 {
                &["deploy@9", "outscan@10"]
            } else {
                &[]
            };
            simulate(&mut conn.db, &desk(hours, seed, 1.0, inject)).unwrap();
        }
        content_hash(&conn)
    };
    assert_eq!(run(4, &[12.0]), run(4, &[12.0]));
    assert_ne!(run(4, &[12.0]), run(5, &[12.0]));
    let (_d1, mut one) = open();
    simulate(&mut one.db, &desk(12.0, 4, 1.0, &[])).unwrap();
    let (_d2, mut two) = open();
    simulate(&mut two.db, &desk(9.0, 4, 1.0, &[])).unwrap();
    simulate(&mut two.db, &desk(3.0, 4, 1.0, &[])).unwrap();
    assert_eq!(content_hash(&one), content_hash(&two));
}

// Every kind works on a workstation, aimed at what it has: the LAN for attackers,
// sshd for the burst and the flood, sshd or cupsd for the outage.
#[test]
fn every_kind_runs_on_a_workstation() {
    let (_d, mut conn) = open();
    let inject = [
        "deploy@9",
        "beacon@9.5",
        "outscan@10",
        "burst@10.5",
        "portscan@11",
        "backdoor@11.5",
        "upload@12.5",
        "flood@13",
        "outage@14",
        "backdoor-collide@15",
        "dnstunnel@16",
        "slowscan@16.5",
        "dnstunnel-slow@17.5",
        "bruteforce@17.9",
        "spam@18",
        "stuffing@8",
        "exfil@7.5",
        "implant@5",
        "udpflood@4.5",
        "miner@3",
        "icmptunnel@3.8",
        "hijack@1",
        "resolver@6",
        "pingsweep@0.5",
        "dga@2",
        "slowloris@12.2",
        "proxy@14.5",
        "stolenkey@15.5",
    ];
    assert_eq!(inject.len(), EventKind::ALL.len());
    let s = simulate(&mut conn.db, &desk(19.0, 6, 1.0, &inject)).unwrap();
    assert_eq!(s.events, inject.len() as u64);
    for kind in EventKind::ALL {
        assert!(
            count(
                &conn,
                &format!("SELECT count(*) FROM labels WHERE kind = '{kind}'")
            ) > 0,
            "{kind}"
        );
    }
    let during =
        |kind: &str| format!("round_id IN (SELECT round_id FROM labels WHERE kind = '{kind}')");
    // SSH connection attempts from the LAN during an event.
    let lan_ssh = |what: &str, kind: &str| {
        count(
            &conn,
            &format!(
                "SELECT {what} FROM packets WHERE tcp_flags = 2 AND dest_port = 22 \
                  AND src_addr LIKE '192.168.1.%' AND {}",
                during(kind)
            ),
        )
    };
    // The password guessing: from one LAN address, all hour.
    let guesser = |what: &str| lan_ssh(what, "bruteforce");
    assert_eq!(guesser("count(DISTINCT src_addr)"), 1);
    // The spam: SMTP sessions from one script to many mail exchangers, each looked up.
    let smtp = |what: &str| {
        count(
            &conn,
            &format!(
                "SELECT {what} FROM packets WHERE tcp_flags = 2 AND dest_port = 25 AND {}",
                during("spam")
            ),
        )
    };
    assert_eq!(
        text(
            &conn,
            &format!(
                "SELECT group_concat(DISTINCT process) FROM packets WHERE dest_port = 25 AND {}",
                during("spam")
            )
        ),
        "python3"
    );
    assert!(smtp("count(DISTINCT dst_addr)") >= 20, "many exchangers");
    // The exfiltration: the browser itself sends 100 MB or more to one new address.
    let exfil = text(
        &conn,
        &format!(
            "SELECT process || ' ' || dest_port || ' ' || (sum(length) > 100000000) FROM packets \
              WHERE process IS NOT NULL AND dst_addr NOT LIKE '192.168.%' AND {} \
              GROUP BY dst_addr ORDER BY sum(length) DESC LIMIT 1",
            during("exfil")
        ),
    );
    assert!(
        ["chrome 443 1", "firefox 443 1"].contains(&exfil.as_str()),
        "{exfil}"
    );
    // The command channel: the browser's one connection to a new address, held for an
    // hour or more, sending far less than an upload.
    let implant = text(
        &conn,
        &format!(
            "SELECT process || ' ' || dest_port || ' ' || count(DISTINCT round_id) || ' ' || \
                    (sum(length) < 5000000) FROM packets \
              WHERE process IS NOT NULL AND dst_addr NOT LIKE '192.168.%' AND {} \
                AND dst_addr IN (SELECT dst_addr FROM packets WHERE server_name IN \
                  ('d3k9x2.cloudfront.net', 'api.pastebin-cdn.net', \
                   'fn-eu-west.azurewebsites.net', 'telemetry-sync.workers.dev')) \
              GROUP BY dst_addr",
            during("implant")
        ),
    );
    let fields: Vec<&str> = implant.split(' ').collect();
    assert!(
        ["chrome", "firefox"].contains(&fields[0]) && fields[1] == "443" && fields[3] == "1",
        "{implant}"
    );
    assert!(
        fields[2].parse::<i64>().unwrap() >= 60,
        "an hour or more: {implant}"
    );
    // The UDP flood: datagrams to random ports from spoofed addresses, owned by nothing.
    let flood = |what: &str| {
        count(
            &conn,
            &format!(
                "SELECT {what} FROM packets WHERE protocols = 'eth:ipv4:udp' AND process IS NULL \
                  AND {}",
                during("udpflood")
            ),
        )
    };
    assert!(flood("count(*)") >= 180_000, "{}", flood("count(*)"));
    assert!(flood("count(DISTINCT src_addr)") >= 100_000);
    assert!(flood("count(DISTINCT dest_port)") >= 10_000);
    // The ICMP tunnel and the miner leave the LAN.
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE protocols = 'eth:ipv4:icmp' \
                  AND dst_addr NOT LIKE '192.168.%' AND {}",
                during("icmptunnel")
            )
        ) >= 1000
    );
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(DISTINCT dst_addr) FROM packets WHERE process IN \
                  ('kswapd0', 'ksoftirqd', 'networkservice', 'sysguard') \
                  AND protocols = 'eth:ipv4:tcp' AND dst_addr NOT LIKE '192.168.%' AND {}",
                during("miner")
            )
        ),
        1
    );
    // The rogue resolver: the queries go to one address off the LAN, none to the router.
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(DISTINCT dst_addr) FROM packets WHERE dns_qr = 0 \
                  AND dst_addr NOT LIKE '192.168.%' AND {}",
                during("resolver")
            )
        ),
        1
    );
    // The sweep: every other address of the LAN pinged.
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(DISTINCT dst_addr) FROM packets WHERE protocols = 'eth:ipv4:icmp' \
                  AND src_addr = '192.168.1.23' AND dst_addr LIKE '192.168.1.%' AND {}",
                during("pingsweep")
            )
        ),
        253
    );
    // Slowloris: sshd's unauthenticated slots held from one LAN address.
    assert!(
        count(
            &conn,
            &format!(
                "SELECT max(n) FROM (SELECT sum(sockets) AS n FROM rounds_ports
                   WHERE port_id = 22 AND state = 'ESTABLISHED' AND {} GROUP BY round_id)",
                during("slowloris")
            )
        ) >= 60
    );
    // The hijack: sshd's listener from another executable.
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM rounds_ports WHERE port_id = 22 AND state = 'LISTEN' \
                  AND exe = '/var/tmp/.ssh/sshd' AND {}",
                during("hijack")
            )
        ) >= 40
    );
    // The stuffing: logins at sshd from many LAN addresses, none of them often.
    assert!(
        lan_ssh("count(DISTINCT src_addr)", "stuffing") >= 20,
        "a botnet"
    );
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE qry_name LIKE 'mail.%' AND {}",
                during("spam")
            )
        ) >= 20,
        "MX hosts looked up"
    );
    assert!(guesser("count(*)") >= 6 * 50, "6–20 a minute for an hour");
    // Attackers from outside sit on the LAN.
    let scanner = text(
        &conn,
        &format!(
            "SELECT src_addr FROM packets WHERE tcp_flags = 2 AND dst_addr = '192.168.1.23' AND {}
              GROUP BY src_addr ORDER BY count(*) DESC LIMIT 1",
            during("portscan")
        ),
    );
    assert!(scanner.starts_with("192.168.1."), "{scanner}");
    // The flood and the burst go to sshd.
    assert!(
        count(
            &conn,
            &format!(
                "SELECT coalesce(max(sockets), 0) FROM rounds_ports WHERE state = 'SYN_RECV' AND port_id = 22 AND {}",
                during("flood")
            )
        ) >= 100
    );
    assert!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM packets WHERE tcp_flags = 2 AND dest_port = 22 AND {}",
                during("burst")
            )
        ) >= 1000
    );
    // The proxyware: pages sent up a channel to the operator's gateway.
    let (gateway, sent): (String, i64) = conn
        .query_row(
            &format!(
                "SELECT server_name, (SELECT sum(length) FROM packets q WHERE q.dst_addr = p.dst_addr AND {d})
                   FROM packets p WHERE server_name LIKE '%.%' AND server_name IN
                   ('gw.peer-relay.net', 'edge.bandwidth-share.io', 'node.proxy-sdk.com', 'api.resi-mesh.net')
                   AND {d} LIMIT 1",
                d = during("proxy")
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(sent >= 500_000, "{gateway}: {sent}");
    // The stolen key: one connection to sshd from a LAN device, with megabytes in.
    assert_eq!(lan_ssh("count(*)", "stolenkey"), 1);
    assert!(
        count(
            &conn,
            &format!(
                "SELECT sum(length) FROM packets WHERE dest_port = 22 AND src_addr LIKE '192.168.1.%' AND {}",
                during("stolenkey")
            )
        ) >= 1_000_000
    );
    // The outage takes sshd's or cupsd's listener away.
    let gone = count(
        &conn,
        &format!(
            "SELECT count(DISTINCT port_id) FROM rounds_ports WHERE state = 'LISTEN' AND port_id IN (22, 631) AND {}",
            during("outage")
        ),
    );
    assert_eq!(gone, 1);
}

/// History grown hour by hour moves past a workstation's nights: an hour asked for
/// while it sleeps starts when it wakes.
#[test]
fn hourly_growth_moves_past_a_workstation_night() {
    let (_d, mut conn) = open();
    let ws = |hours: f64| SimConfig {
        profile: "workstation".parse().unwrap(),
        ..cfg(hours, 906, 1.0, &[])
    };
    simulate(&mut conn.db, &ws(24.0)).unwrap();
    let mut last = count(&conn, "SELECT max(id) FROM rounds");
    let mut empty = 0;
    for _ in 0..36 {
        let s = simulate(&mut conn.db, &ws(1.0)).unwrap();
        let now = count(&conn, "SELECT max(id) FROM rounds");
        if now == last {
            empty += 1;
        }
        assert!(s.rounds <= 60);
        last = now;
    }
    assert_eq!(empty, 0, "every hour asked for wrote rounds");
    let span: i64 = conn
        .query_row(
            "SELECT (julianday(max(start_time)) - julianday(min(start_time))) * 24 FROM rounds",
            [],
            |r| r.get::<_, f64>(0).map(|h| h as i64),
        )
        .unwrap();
    assert!(
        span >= 24 + 36,
        "the nights were skipped, not replayed: {span} h"
    );
}
