//! Sockets in a network namespace the test creates (`ip netns add`, through the
//! testkit's `Netns`), read by the scanner from the host's namespace: each listener
//! and connection appears with its namespace and its process. Needs root (entering a
//! namespace); as another user the test says so and checks nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use portwatch_scan::sockstat::SockStat;
use portwatch_scan::{SockDiag, SocketSource, Transport, aggregate};
use portwatch_testkit::Netns;

#[test]
fn sockets_of_another_namespace_are_sampled_with_their_namespace_and_process() {
    let port = 47_321u16;
    let Some(ns) = Netns::with_listener("scan", port) else {
        return;
    };
    let (pid, ino) = (ns.pid, ns.inode);

    let mut scan = SockDiag::new();
    let sample = scan.sample().unwrap();
    let inside: Vec<_> = sample
        .iter()
        .filter(|s| s.netns == Some(ino) && s.transport == Transport::Tcp)
        .collect();
    let listen = inside
        .iter()
        .find(|s| s.local_port == port && s.state == "LISTEN")
        .unwrap_or_else(|| panic!("no listener in {ino}: {inside:#?}"));
    assert_eq!(listen.pid, Some(pid), "attributed to its process");
    assert_eq!(listen.process.as_deref(), Some("python3"));
    assert_eq!(listen.container, None, "not in a container");
    let estab = inside.iter().filter(|s| s.state == "ESTABLISHED").count();
    assert_eq!(estab, 2, "both ends of the connection: {inside:#?}");
    // Not in the host's own namespace, and not seen by a scanner of its own only.
    assert!(
        !sample
            .iter()
            .any(|s| s.netns.is_none() && s.local_port == port),
        "the port is the namespace's"
    );
    assert!(scan.other_namespaces() >= 1);
    let own = SockDiag::new().own_namespace_only().sample().unwrap();
    assert!(own.iter().all(|s| s.netns.is_none()));
    assert!(
        !own.iter()
            .any(|s| s.local_port == port && s.pid == Some(pid))
    );
    // Rows keep the namespace apart from a host socket on the same port.
    let rows = aggregate(&sample);
    assert!(
        rows.iter()
            .any(|r| r.port == port && r.state == "LISTEN" && r.netns == Some(ino)),
        "{rows:#?}"
    );
}

/// A namespace made by `unshare --net`, as container runtimes make theirs: it has no
/// name under `/run/netns` and is found through its process alone.
#[test]
fn an_unshared_namespace_is_found_through_its_process() {
    let port = 47_323u16;
    let Some(ns) = Netns::unshared_with_listener(port) else {
        return;
    };
    let sample = SockDiag::new().sample().unwrap();
    let inside: Vec<_> = sample
        .iter()
        .filter(|s| s.netns == Some(ns.inode) && s.transport == Transport::Tcp)
        .collect();
    assert!(
        inside
            .iter()
            .any(|s| s.local_port == port && s.state == "LISTEN" && s.pid == Some(ns.pid)),
        "no listener of pid {} in {}: {inside:#?}",
        ns.pid,
        ns.inode
    );
    assert_eq!(
        inside.iter().filter(|s| s.state == "ESTABLISHED").count(),
        2,
        "{inside:#?}"
    );
}

/// However many namespaces exist, a sample reads at most its cap of them (a local user
/// can make thousands): here two the test makes, and a cap of one.
#[test]
fn the_namespaces_read_are_capped() {
    let (Some(a), Some(b)) = (
        Netns::with_listener("capa", 47_331),
        Netns::with_listener("capb", 47_332),
    ) else {
        return;
    };
    let mut scan = SockDiag::new().with_namespace_cap(1);
    let sample = scan.sample().unwrap();
    assert_eq!(scan.other_namespaces(), 1);
    let read: std::collections::BTreeSet<u64> = sample.iter().filter_map(|s| s.netns).collect();
    assert_eq!(read.len(), 1, "{read:?}");
    // Without the cap both are read.
    let all = SockDiag::new().sample().unwrap();
    for ns in [&a, &b] {
        assert!(all.iter().any(|s| s.netns == Some(ns.inode)), "{}", ns.name);
    }
}

/// A namespace's socket counts, read through files a thread opened inside it and then
/// left: its TCP sockets are counted, its empty UDP tables are seen empty (so the
/// scanner dumps its TCP table and not the UDP ones, and the listener is still found).
#[test]
fn a_namespaces_socket_counts_are_its_own() {
    let port = 47_331u16;
    let Some(ns) = Netns::with_listener("stat", port) else {
        return;
    };
    // A UDP socket in the host's namespace, which the host's counts show: counts read
    // from the wrong namespace would show it too.
    let _host_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(SockStat::open_own().unwrap().read().udp4);
    let path = std::path::PathBuf::from(format!("/proc/{}/ns/net", ns.pid));
    let stat = portwatch_scan::netns::inside(&path, || Ok(SockStat::open_own()))
        .unwrap()
        .expect("/proc/thread-self/net/sockstat");
    let counted = stat.read();
    assert!(counted.tcp, "{counted:?}");
    assert!(
        !counted.udp4 && !counted.udp6,
        "no UDP socket in there: {counted:?}"
    );
    let sample = SockDiag::new().sample().unwrap();
    assert!(
        sample
            .iter()
            .any(|s| s.netns == Some(ns.inode) && s.local_port == port && s.state == "LISTEN")
    );
}
