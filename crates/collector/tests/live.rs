//! A live round on `lo` while the test sends UDP, TCP and DNS traffic to loopback
//! addresses and ports only it uses. Needs root (or CAP_NET_RAW), as CI runs.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;

use crate::util::*;

/// A DNS query for `name` (one question, type A), with id `id`.
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// The response to `query`: the question echoed and one A record pointing back to it.
fn dns_response(query: &[u8]) -> Vec<u8> {
    let mut m = query.to_vec();
    m[2] = 0x81;
    m[3] = 0x80;
    m[7] = 1; // ancount
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    m
}

#[test]
fn a_live_round_on_lo_stores_every_packet_of_the_tests_flows_with_their_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("live.db");
    // Addresses in 127.0.0.0/8 that nothing else on the machine uses.
    let a = Ipv4Addr::new(127, 77, 0, 1);
    let dns_addr = Ipv4Addr::new(127, 77, 0, 53);
    let udp_server = UdpSocket::bind((a, 0)).unwrap();
    let tcp_server = TcpListener::bind((a, 0)).unwrap();
    let dns_server = UdpSocket::bind((dns_addr, 53)).unwrap();
    let (udp_port, tcp_port) = (
        udp_server.local_addr().unwrap().port(),
        tcp_server.local_addr().unwrap().port(),
    );

    let child = collector(&db)
        .args([
            "-i",
            "lo",
            "--duration",
            "6",
            "--scan-interval",
            "1",
            "--payload-bytes",
            "65535",
        ])
        .args(["--filter", "net 127.77.0.0/16"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The capture handle is open before the round row exists: once a sample is
    // committed, traffic is inside the capture.
    wait_for(&db, "SELECT count(*) FROM rounds_ports");

    // UDP: 7 datagrams one way, 3 replies.
    let client = UdpSocket::bind((a, 0)).unwrap();
    let client_port = client.local_addr().unwrap().port();
    for i in 0..7u8 {
        client.send_to(&[i; 100], (a, udp_port)).unwrap();
    }
    let mut buf = [0u8; 2048];
    for _ in 0..7 {
        udp_server.recv_from(&mut buf).unwrap();
    }
    for _ in 0..3 {
        udp_server.send_to(b"ok", (a, client_port)).unwrap();
    }
    // DNS: 4 queries, each answered.
    let resolver = UdpSocket::bind((a, 0)).unwrap();
    let resolver_port = resolver.local_addr().unwrap().port();
    for i in 0..4u16 {
        resolver
            .send_to(
                &dns_query(i, &format!("host{i}.portwatch.test")),
                (dns_addr, 53),
            )
            .unwrap();
        let (n, from) = dns_server.recv_from(&mut buf).unwrap();
        dns_server.send_to(&dns_response(&buf[..n]), from).unwrap();
        resolver.recv_from(&mut buf).unwrap();
    }
    // TCP: one connection, 3000 bytes up, 1000 down, closed.
    let mut conn = TcpStream::connect((a, tcp_port)).unwrap();
    let tcp_client_port = conn.local_addr().unwrap().port();
    let (mut srv, _) = tcp_server.accept().unwrap();
    conn.write_all(&[7u8; 3000]).unwrap();
    let mut got = vec![0u8; 3000];
    srv.read_exact(&mut got).unwrap();
    srv.write_all(&[9u8; 1000]).unwrap();
    let mut back = vec![0u8; 1000];
    conn.read_exact(&mut back).unwrap();
    drop(conn);
    drop(srv);

    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let c = rusqlite::Connection::open(&db).unwrap();
    let (round, status, samples, dropped, first, last): (i64, String, i64, i64, i64, i64) = c
        .query_row(
            "SELECT id, status, samples, packets_dropped, first_packet_id, last_packet_id FROM rounds",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    assert_eq!(status, "complete");
    assert_eq!(samples, 7, "a sample at 0,1,…,6 s");
    assert_eq!(dropped, 0);
    let flow = |src: SocketAddr, dst: SocketAddr, proto: &str| -> i64 {
        c.query_row(
            "SELECT count(*) FROM packets WHERE id BETWEEN ?1 AND ?2 AND round_id = ?3
               AND src_addr = ?4 AND port_id = ?5 AND dst_addr = ?6 AND dest_port = ?7
               AND protocols LIKE ?8",
            rusqlite::params![
                first,
                last,
                round,
                src.ip().to_string(),
                src.port(),
                dst.ip().to_string(),
                dst.port(),
                format!("eth:ipv4:{proto}%")
            ],
            |r| r.get(0),
        )
        .unwrap()
    };
    let sa = |ip: Ipv4Addr, port: u16| SocketAddr::from((ip, port));
    assert_eq!(flow(sa(a, client_port), sa(a, udp_port), "udp"), 7);
    assert_eq!(flow(sa(a, udp_port), sa(a, client_port), "udp"), 3);
    assert_eq!(flow(sa(a, resolver_port), sa(dns_addr, 53), "udp:dns"), 4);
    assert_eq!(flow(sa(dns_addr, 53), sa(a, resolver_port), "udp:dns"), 4);
    // Every UDP datagram once: no duplicates, none missing.
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM packets WHERE protocols LIKE '%udp%'"
        ),
        7 + 3 + 8
    );

    // TCP: one handshake, and exactly the bytes sent in each direction.
    let tcp_sum = |src_port: u16, sql: &str| -> i64 {
        c.query_row(
            &format!(
                "SELECT {sql} FROM packets WHERE protocols LIKE 'eth:ipv4:tcp%' AND port_id = ?1"
            ),
            [src_port],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        tcp_sum(tcp_client_port, "count(*) FILTER (WHERE tcp_flags = 2)"),
        1,
        "one SYN"
    );
    assert_eq!(
        tcp_sum(tcp_port, "count(*) FILTER (WHERE tcp_flags = 18)"),
        1,
        "one SYN-ACK"
    );
    assert_eq!(
        tcp_sum(tcp_client_port, "coalesce(sum(length(payload)), 0)"),
        3000
    );
    assert_eq!(tcp_sum(tcp_port, "coalesce(sum(length(payload)), 0)"), 1000);
    assert!(
        tcp_sum(tcp_client_port, "count(*) FILTER (WHERE tcp_flags & 1)") >= 1,
        "a FIN"
    );

    // DNS names, as sent.
    let names: Vec<(String, Option<String>, i64)> = c
        .prepare("SELECT qry_name, resp_name, dns_qr FROM packets WHERE qry_name IS NOT NULL ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names.len(), 8);
    for (i, pair) in names.chunks(2).enumerate() {
        let want = format!("host{i}.portwatch.test");
        assert_eq!(pair[0], (want.clone(), None, 0));
        assert_eq!(pair[1], (want.clone(), Some(want), 1));
    }

    // Owners: this process made every packet of these flows. The listener was in the
    // first sample, so everything addressed to it is attributed from the start.
    let me = std::process::id() as i64;
    let comm = std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_owned();
    let (to_listeners, attributed): (i64, i64) = c
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE pid = ?1 AND process = ?2) FROM packets
              WHERE dest_port IN (?3, ?4, 53)",
            rusqlite::params![me, comm, udp_port, tcp_port],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(to_listeners >= 7 + 4 + 3);
    assert_eq!(
        attributed, to_listeners,
        "every packet to the test's sockets carries its pid"
    );
    assert_eq!(
        query_i64(
            &db,
            &format!("SELECT count(*) FROM packets WHERE pid IS NOT NULL AND pid != {me}")
        ),
        0
    );

    // The listener is in every sample as LISTEN with this pid, executable and user;
    // the UDP socket as UNCONN.
    let exe = std::env::current_exe().unwrap();
    let uid = unsafe { libc::geteuid() };
    let listen = |proto: &str, port: u16, state: &str| -> i64 {
        c.query_row(
            "SELECT count(DISTINCT timestamp) FROM rounds_ports WHERE round_id = ?1 AND port_id = ?2
               AND protocol = ?3 AND family = 4 AND state = ?4 AND pid = ?5 AND process = ?6
               AND exe = ?7 AND uid = ?8 AND sockets >= 1",
            rusqlite::params![round, port, proto, state, me, comm, exe.to_str(), uid],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(listen("tcp", tcp_port, "LISTEN"), 7);
    assert_eq!(listen("udp", udp_port, "UNCONN"), 7);
    assert_eq!(listen("udp", 53, "UNCONN"), 7);
}

#[test]
fn back_to_back_rounds_share_one_capture_end_on_the_clock_and_lose_no_packet_between() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("rounds.db");
    // Its own /16: the other live test captures all of 127.77.0.0/16 at the same time.
    let a = Ipv4Addr::new(127, 78, 1, 1);
    let server = UdpSocket::bind((a, 0)).unwrap();
    let port = server.local_addr().unwrap().port();
    // Three rounds of 2 s: the first ends on the next even second (at least 1 s away),
    // the others last exactly 2 s each.
    let mut child = collector(&db)
        .args(["-i", "lo", "--rounds", "3", "--duration", "2"])
        .args(["--scan-interval", "1", "--payload-bytes", "4", "-v"])
        .args(["--filter", "net 127.78.1.0/24"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Numbered datagrams, one every 2 ms, from now until the collector has exited: the
    // stored ones must be an unbroken run, across both rotations, and the first round
    // must hold none stamped before its start. (Those sent before the capture opened
    // are not stored. Waiting for the first sample instead could begin after the first
    // round, which may last only a second, and leave it empty.)
    let client = UdpSocket::bind((a, 0)).unwrap();
    let mut sent = 0u32;
    while child.try_wait().unwrap().is_none() {
        client.send_to(&sent.to_be_bytes(), (a, port)).unwrap();
        sent += 1;
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    let c = rusqlite::Connection::open(&db).unwrap();
    type Round = (i64, String, String, String, String, i64, i64);
    let rounds: Vec<Round> = c
        .prepare(
            "SELECT id, start_time, end_time, status, source, first_packet_id, last_packet_id
               FROM rounds ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rounds.len(), 3, "{rounds:?}");
    let micros = |t: &str| portwatch_store::time::parse_micros(t).unwrap();
    for (k, r) in rounds.iter().enumerate() {
        assert_eq!(
            (r.3.as_str(), r.4.as_str()),
            ("complete", "live:lo"),
            "{r:?}"
        );
        let (start, end) = (micros(&r.1), micros(&r.2));
        if k > 0 {
            assert_eq!(
                r.1,
                rounds[k - 1].2,
                "each round starts where the last ended"
            );
            assert_eq!(end - start, 2_000_000, "{r:?}");
        }
        if k < 2 {
            assert_eq!(end % 2_000_000, 0, "rotated on the clock: {r:?}");
            // The cut is by packet time: this round holds exactly its interval's.
            let outside = c
                .query_row(
                    "SELECT count(*) FROM packets WHERE id BETWEEN ?1 AND ?2
                       AND (timestamp < ?3 OR timestamp >= ?4)",
                    rusqlite::params![r.5, r.6, r.1, r.2],
                    |row| row.get::<_, i64>(0),
                )
                .unwrap();
            assert_eq!(outside, 0, "{r:?}");
        }
        if k > 0 {
            assert_eq!(r.5, rounds[k - 1].6 + 1, "rowid ranges follow each other");
        }
    }
    let seqs: Vec<u32> = c
        .prepare("SELECT payload FROM packets WHERE dest_port = ?1 ORDER BY id")
        .unwrap()
        .query_map([port], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|p| u32::from_be_bytes(p.unwrap().try_into().unwrap()))
        .collect();
    assert!(seqs.len() > 1000, "{} of {sent} stored", seqs.len());
    assert!(
        seqs.iter().zip(seqs[0]..).all(|(&s, want)| s == want),
        "an unbroken run: none lost at a rotation"
    );
}

/// `--forever` under systemd: SIGTERM ends the current round at once, stored as
/// partial, and the exit is 0 (the service stopped as asked); the rounds before it are
/// complete and follow each other without a gap.
#[test]
fn forever_runs_rounds_until_sigterm_and_then_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("forever.db");
    let child = collector(&db)
        .args([
            "-i",
            "lo",
            "--forever",
            "--duration",
            "1",
            "--scan-interval",
            "0.5",
        ])
        .args(["--filter", "port 9"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        &db,
        "SELECT count(*) >= 2 FROM rounds WHERE status = 'complete'",
    );
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let c = rusqlite::Connection::open(&db).unwrap();
    let rounds: Vec<(String, String, String)> = c
        .prepare("SELECT start_time, end_time, status FROM rounds ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (last, before) = rounds.split_last().unwrap();
    assert_eq!(last.2, "partial", "{rounds:?}");
    assert!(before.len() >= 2 && before.iter().all(|r| r.2 == "complete"));
    for pair in rounds.windows(2) {
        assert_eq!(pair[1].0, pair[0].1, "no gap: {rounds:?}");
    }
}

/// A listener inside a network namespace the test creates is stored in
/// `rounds_ports` with its namespace and its process, beside the host's own rows.
#[test]
fn a_live_round_stores_the_sockets_of_other_network_namespaces() {
    let port = 47_322u16;
    let Some(ns) = portwatch_testkit::Netns::with_listener("live", port) else {
        return;
    };
    // And one made by `unshare --net`, with no name, as a container runtime makes it.
    let Some(anon) = portwatch_testkit::Netns::unshared_with_listener(port) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("ns.db");
    let out = collector(&db)
        .args(["-i", "lo", "--duration", "2", "--scan-interval", "1"])
        .args(["--filter", "net 127.78.0.0/16"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |state: &str, ns: &portwatch_testkit::Netns| {
        query_i64(
            &db,
            &format!(
                "SELECT count(*) FROM rounds_ports WHERE port_id = {port} AND state = '{state}' \
                 AND netns = {} AND pid = {} AND process = 'python3' AND container IS NULL",
                ns.inode, ns.pid
            ),
        )
    };
    for ns in [&ns, &anon] {
        assert!(row("LISTEN", ns) >= 1, "the listener, every sample");
        assert!(row("ESTABLISHED", ns) >= 1, "its connection");
    }
    let host_rows = query_strings(
        &db,
        &format!(
            "SELECT state || ' ' || coalesce(pid, '-') || ' ' || coalesce(process, '-') \
               FROM rounds_ports WHERE port_id = {port} AND netns IS NULL"
        ),
    );
    assert!(host_rows.is_empty(), "not the host's: {host_rows:?}");
    assert!(query_i64(&db, "SELECT count(*) FROM rounds_ports WHERE netns IS NULL") > 0);
}

/// Captured on the host's end of a veth link to a namespace (a container on a bridge,
/// as the host sees it), the packets of a connection to the service inside are
/// attributed to its process: the scanner's owners cover every namespace.
#[test]
fn packets_of_a_service_in_another_namespace_are_attributed_to_its_process() {
    let port = 47_323u16;
    let Some(ns) = portwatch_testkit::Netns::with_veth_listener("att", port, 7) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("att.db");
    let child = collector(&db)
        .args([
            "-i",
            &ns.host_link(),
            "--duration",
            "4",
            "--scan-interval",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&db, "SELECT count(*) FROM rounds_ports");
    let mut c = TcpStream::connect((Ipv4Addr::new(10, 231, 7, 2), port)).unwrap();
    c.write_all(b"hello from the host").unwrap();
    drop(c);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let owned = |side: &str| {
        query_i64(
            &db,
            &format!(
                "SELECT count(*) FROM packets WHERE {side} = {port} AND process = 'python3' \
                 AND pid = {}",
                ns.pid
            ),
        )
    };
    let seen = query_strings(
        &db,
        "SELECT protocols || ' ' || coalesce(src_addr, '-') || ':' || coalesce(port_id, '-') \
             || ' > ' || coalesce(dst_addr, '-') || ':' || coalesce(dest_port, '-') || ' ' \
             || coalesce(process, '-') FROM packets LIMIT 20",
    );
    assert!(
        owned("dest_port") >= 2,
        "the client's segments to the service: {seen:#?}"
    );
    assert!(owned("port_id") >= 1, "the service's answers");
    assert_eq!(
        query_i64(
            &db,
            &format!(
                "SELECT count(*) FROM packets WHERE (dest_port = {port} OR port_id = {port}) \
                 AND process IS NOT 'python3'"
            )
        ),
        0,
        "every packet of the flow"
    );
}
