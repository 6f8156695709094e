//! The bind probe (`--scan-method bind`) against real sockets, as root and as an
//! unprivileged user.

// Test helpers outside `#[test]` fns panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, UdpSocket};

use portwatch_scan::{BindProbe, Probe, SocketSource, Transport, bind::probe};

fn has(found: &[portwatch_scan::Socket], t: Transport, family: u8, port: u16) -> bool {
    found
        .iter()
        .any(|s| s.transport == t && s.family == family && s.local_port == port)
}

#[test]
fn occupied_ports_found_free_ones_not() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = udp.local_addr().unwrap().port();
    let tcp6 = TcpListener::bind("[::1]:0").ok();

    let mut probe_all = BindProbe::with_ports(port.saturating_sub(2)..=port.saturating_add(2));
    let found = probe_all.sample().unwrap();
    assert!(has(&found, Transport::Tcp, 4, port), "{found:#?}");
    let s = found
        .iter()
        .find(|s| s.local_port == port && s.transport == Transport::Tcp)
        .unwrap();
    assert_eq!(
        (s.state, s.pid, s.local_addr.to_string().as_str()),
        ("LISTEN", None, "0.0.0.0")
    );
    // Other reported ports (if any) belong to other processes of this busy machine,
    // which may close them at any moment, so they are not re-checked here.
    assert_eq!(probe_all.denied_ports(), 0);
    // The single-bind function agrees, on the specific address too.
    assert!(matches!(
        probe(Transport::Tcp, ([127, 0, 0, 1], port).into()),
        Probe::Occupied
    ));
    assert!(matches!(
        probe(Transport::Udp, ([127, 0, 0, 1], uport).into()),
        Probe::Occupied
    ));

    let found = BindProbe::with_ports(uport..=uport).sample().unwrap();
    assert!(has(&found, Transport::Udp, 4, uport), "{found:#?}");
    assert_eq!(
        found
            .iter()
            .find(|s| s.transport == Transport::Udp)
            .unwrap()
            .state,
        "UNCONN"
    );

    if let Some(l6) = &tcp6 {
        let p6 = l6.local_addr().unwrap().port();
        let found = BindProbe::with_ports(p6..=p6).ipv6(true).sample().unwrap();
        assert!(has(&found, Transport::Tcp, 6, p6), "{found:#?}");
    }

    drop((tcp, udp, tcp6));
    // Freed: no longer reported. A freed ephemeral port may be taken at once by
    // another program of this busy machine (an outgoing connection, a listener), so
    // a port reported again is retried with fresh ones; one stray is chance, five in
    // a row are a probe that reports freed ports.
    let freed_is_free = |t: Transport| {
        (0..5).any(|_| {
            let port = match t {
                Transport::Tcp => TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port(),
                Transport::Udp => UdpSocket::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port(),
            };
            // The socket is dropped: the port is free again.
            let found = BindProbe::with_ports(port..=port).sample().unwrap();
            !has(&found, t, 4, port)
        })
    };
    assert!(freed_is_free(Transport::Tcp));
    assert!(freed_is_free(Transport::Udp));
}

fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

const CHILD: &str = "PORTWATCH_SCAN_UNPRIVILEGED_CHILD";

/// Ports a non-root user may not bind are counted apart, never as occupied. As root
/// the test re-runs itself as `nobody` through setpriv.
#[test]
fn denied_ports_counted_not_occupied() {
    let euid = unsafe { libc::geteuid() };
    if euid != 0 || std::env::var_os(CHILD).is_some() {
        let start = unprivileged_port_start();
        if start <= 1020 {
            return portwatch_testkit::skip(&format!(
                "ip_unprivileged_port_start is {start}: nothing is denied here"
            ));
        }
        let mut p = BindProbe::with_ports(1020..=1030);
        let found = p.sample().unwrap();
        assert!(found.iter().all(|s| s.local_port >= start), "{found:#?}");
        let expected = u32::from(start.min(1031) - 1020);
        assert_eq!(p.denied_ports(), expected);
        println!("{}", portwatch_testkit::CHILD_RAN);
        return;
    }
    portwatch_testkit::rerun_as_nobody("denied_ports_counted_not_occupied", (CHILD, "1"));
}
