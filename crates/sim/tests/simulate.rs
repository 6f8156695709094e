//! `simulate` against a real database opened by the store: determinism, appending,
//! labels, and that each injected event shows in the data the way the attack would.

// Test helpers outside `#[test]` functions panic on failure by design.
#![allow(clippy::unwrap_used)]

use std::hash::{DefaultHasher, Hash, Hasher};

use portwatch_sim::{EventKind, Inject, SimConfig, simulate};
use rusqlite::Connection;

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
                format!("{:?}", row.get_ref(i).unwrap()).hash(&mut h);
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
