//! Live capture on the loopback interface. Needs CAP_NET_RAW: without it the tests check
//! that opening fails with `Error::PermissionDenied` (whose message names the fix), and
//! fail unless skips are allowed (`PORTWATCH_TEST_ALLOW_SKIP=1`).

#![cfg(feature = "pcap")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use portwatch_capture::{
    Error, LiveConfig, LiveSource, PacketSource, Parser, Transport, default_device,
};

fn lo(filter: Option<String>) -> Option<LiveSource> {
    let config = LiveConfig {
        interface: Some("lo".into()),
        filter,
        ..LiveConfig::default()
    };
    match LiveSource::open(&config) {
        Ok(s) => Some(s),
        Err(e @ Error::PermissionDenied { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("setcap cap_net_raw,cap_net_admin=eip"),
                "{msg}"
            );
            portwatch_testkit::skip(&msg);
            None
        }
        Err(e) => panic!("opening lo: {e}"),
    }
}

#[test]
fn captures_udp_on_loopback_with_a_filter() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let Some(mut src) = lo(Some(format!("udp and dst port {port}"))) else {
        return;
    };
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5u8 {
        tx.send_to(&[i; 10], ("127.0.0.1", port)).unwrap();
    }
    let lt = src.linktype();
    let mut parser = Parser::new();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while got < 5 && Instant::now() < deadline {
        if let Some(f) = src.next().unwrap() {
            let p = parser.parse(f.data, lt, f.wire_len);
            assert_eq!(p.transport, Some(Transport::Udp));
            assert_eq!(p.dst_port, Some(port));
            assert!(f.ts_micros > 1_600_000_000_000_000, "a current timestamp");
            got += 1;
        }
    }
    assert_eq!(got, 5);
    let stats = src.stats().expect("live stats");
    assert_eq!(stats.dropped, 0);
}

#[test]
fn read_timeout_returns_none_so_the_caller_can_stop() {
    // A filter nothing matches: `next` must come back empty-handed, promptly.
    let Some(mut src) = lo(Some("udp and port 9 and port 7".into())) else {
        return;
    };
    let start = Instant::now();
    let mut nones = 0;
    while nones < 2 && start.elapsed() < Duration::from_secs(5) {
        if src.next().unwrap().is_none() {
            nones += 1;
        }
    }
    assert_eq!(nones, 2);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn bad_filter_and_bad_interface_are_typed_errors() {
    if lo(None).is_none() {
        return;
    }
    let config = LiveConfig {
        interface: Some("lo".into()),
        filter: Some("this is not bpf".into()),
        ..LiveConfig::default()
    };
    assert!(matches!(
        LiveSource::open(&config),
        Err(Error::Filter { .. })
    ));
    let config = LiveConfig {
        interface: Some("nonexistent0".into()),
        ..LiveConfig::default()
    };
    assert!(matches!(
        LiveSource::open(&config),
        Err(Error::OpenInterface { .. })
    ));
}

#[test]
fn default_device_does_not_panic() {
    match default_device() {
        Ok(name) => assert!(!name.is_empty()),
        Err(e) => eprintln!("no default device here: {e}"),
    }
}
