//! `ProcNet` against recorded `/proc/net` tables with a fake process tree, and
//! against the live `/proc`.

// Test helpers outside `#[test]` fns panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use portwatch_scan::{Error, PortUsage, ProcNet, Socket, SocketSource, Transport, aggregate};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A temporary proc root: a copy of a fixture's `net/` plus fake processes, each
/// `(pid, comm bytes or None for "vanished", socket inodes)`.
/// (pid, comm bytes or None for "vanished", socket inodes held).
type FakeProcess<'a> = (u32, Option<&'a [u8]>, &'a [u64]);

fn fake_proc(net_from: &str, procs: &[FakeProcess]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("net")).unwrap();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        fs::copy(
            fixture(net_from).join("net").join(table),
            dir.path().join("net").join(table),
        )
        .unwrap();
    }
    for &(pid, comm, inodes) in procs {
        add_process(dir.path(), pid, comm, inodes);
    }
    dir
}

fn add_process(root: &Path, pid: u32, comm: Option<&[u8]>, inodes: &[u64]) {
    let p = root.join(pid.to_string());
    fs::create_dir_all(p.join("fd")).unwrap();
    if let Some(comm) = comm {
        let mut c = comm.to_vec();
        c.push(b'\n');
        fs::write(p.join("comm"), c).unwrap();
    }
    // Non-socket fds first, as a real process has them.
    symlink("/dev/null", p.join("fd/0")).unwrap();
    symlink("pipe:[777]", p.join("fd/1")).unwrap();
    symlink("anon_inode:[eventpoll]", p.join("fd/2")).unwrap();
    for (i, inode) in inodes.iter().enumerate() {
        symlink(format!("socket:[{inode}]"), p.join(format!("fd/{}", i + 3))).unwrap();
    }
}

fn find(sockets: &[Socket], t: Transport, family: u8, port: u16, state: &str) -> Vec<Socket> {
    sockets
        .iter()
        .filter(|s| {
            s.transport == t && s.family == family && s.local_port == port && s.state == state
        })
        .cloned()
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[cfg(target_endian = "little")]
mod recorded {
    use super::*;

    #[test]
    fn recorded_tables_parse_with_every_state() {
        let mut src = ProcNet::with_root(fixture("loopback-mix")).without_owners();
        let s = src.sample().unwrap();
        assert_eq!(s.len(), 14);
        assert!(s.iter().all(|s| s.pid.is_none()));

        let tcp = Transport::Tcp;
        let listen = find(&s, tcp, 4, 47001, "LISTEN");
        assert_eq!(listen.len(), 1);
        assert_eq!(listen[0].local_addr, ip("127.0.0.1"));
        assert_eq!(listen[0].inode, 24170);
        assert_eq!(find(&s, tcp, 4, 47001, "ESTABLISHED").len(), 1);
        let tw: Vec<_> = s.iter().filter(|s| s.state == "TIME_WAIT").collect();
        assert_eq!(tw.len(), 1);
        assert_eq!((tw[0].remote_port, tw[0].inode), (47001, 0));

        let l6 = find(&s, tcp, 6, 47002, "LISTEN");
        assert_eq!(l6[0].local_addr, ip("::1"));
        let any6 = find(&s, tcp, 6, 47003, "LISTEN");
        assert_eq!(any6[0].local_addr, ip("::"));
        let mapped = find(&s, tcp, 6, 47003, "ESTABLISHED");
        assert_eq!(mapped[0].local_addr, ip("::ffff:127.0.0.1"));
        assert_eq!(mapped[0].remote_addr, ip("::ffff:127.0.0.1"));

        let udp = Transport::Udp;
        assert_eq!(
            find(&s, udp, 4, 47004, "UNCONN")[0].local_addr,
            ip("127.0.0.1")
        );
        let conn = find(&s, udp, 4, 47005, "ESTABLISHED");
        assert_eq!(conn[0].remote_port, 47004);
        assert_eq!(find(&s, udp, 6, 47006, "UNCONN")[0].local_addr, ip("::1"));
    }

    #[test]
    fn owners_from_a_fake_process_tree() {
        let root = fake_proc(
            "loopback-mix",
            &[
                (100, Some(b"server"), &[24170, 24172, 24171]),
                (200, Some(b"tab\there\\"), &[24175, 24176, 24177, 24183]),
                // A forked child sharing the listener: the lower pid wins.
                (150, Some(b"worker"), &[24170]),
                // Vanished between the fd walk and the comm read: not an owner.
                (300, None, &[24181]),
                // Holds sockets not in the tables: harmless.
                (400, Some(b"other"), &[999_999]),
            ],
        );
        // The executable link, as the kernel shows it (a deleted binary keeps its
        // path with " (deleted)"); process 200's cannot be read (a kernel thread's).
        symlink("/usr/sbin/server (deleted)", root.path().join("100/exe")).unwrap();
        // Non-process entries of /proc are ignored.
        fs::create_dir(root.path().join("sys")).unwrap();
        fs::write(root.path().join("uptime"), "1 1\n").unwrap();

        let mut src = ProcNet::with_root(root.path());
        let s = src.sample().unwrap();
        let tcp = Transport::Tcp;
        let listen = &find(&s, tcp, 4, 47001, "LISTEN")[0];
        assert_eq!(listen.pid, Some(100));
        assert_eq!(listen.process.as_deref(), Some("server"));
        assert_eq!(listen.exe.as_deref(), Some("/usr/sbin/server (deleted)"));
        let est = &find(&s, tcp, 4, 47001, "ESTABLISHED")[0];
        assert_eq!(est.pid, Some(100));
        let l6 = &find(&s, tcp, 6, 47002, "LISTEN")[0];
        assert_eq!(l6.pid, Some(200));
        // Escaped as every stored name is: a control byte as its C escape, the
        // backslash doubled.
        assert_eq!(l6.process.as_deref(), Some("tab\\there\\\\"));
        assert_eq!(l6.exe, None);
        assert_eq!(
            find(&s, Transport::Udp, 6, 47006, "UNCONN")[0].pid,
            Some(200)
        );
        // TIME_WAIT (inode 0), the vanished process's socket, the machine's own
        // listener on 2024: no owner.
        for s in s
            .iter()
            .filter(|s| s.state == "TIME_WAIT" || s.local_port == 47004 || s.local_port == 2024)
        {
            assert_eq!((s.pid, s.process.as_deref()), (None, None), "{s:?}");
        }
        assert_eq!(src.owner_refreshes(), 1);
    }

    #[test]
    fn owner_cache_refreshes_only_on_unseen_inodes() {
        let root = fake_proc("loopback-mix", &[(100, Some(b"server"), &[24170])]);
        let mut src = ProcNet::with_root(root.path());
        src.sample().unwrap();
        assert_eq!(src.owner_refreshes(), 1);
        // Same table: inodes are either owned or known to be ownerless — no walk.
        src.sample().unwrap();
        src.sample().unwrap();
        assert_eq!(src.owner_refreshes(), 1);

        // A new socket appears, with its process: one walk, then cached again.
        let tcp = root.path().join("net/tcp");
        let mut text = fs::read_to_string(&tcp).unwrap();
        text.push_str("   9: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55555 1 0000000000000000 100 0 0 10 0\n");
        fs::write(&tcp, &text).unwrap();
        add_process(root.path(), 500, Some(b"newcomer"), &[55555]);
        let s = src.sample().unwrap();
        assert_eq!(src.owner_refreshes(), 2);
        assert_eq!(
            find(&s, Transport::Tcp, 4, 8080, "LISTEN")[0].pid,
            Some(500)
        );
        src.sample().unwrap();
        assert_eq!(src.owner_refreshes(), 2);

        // A new socket nobody visible holds: one walk, then remembered as ownerless.
        text.push_str("  10: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 66666 1 0000000000000000 100 0 0 10 0\n");
        fs::write(&tcp, &text).unwrap();
        src.sample().unwrap();
        src.sample().unwrap();
        assert_eq!(src.owner_refreshes(), 3);

        // New TIME_WAIT sockets (inode 0) never trigger a walk.
        text.push_str("  11: 0100007F:1F92 0100007F:1F90 06 00000000:00000000 03:0000175A 00000000     0        0 0 3 0000000000000000\n");
        fs::write(&tcp, &text).unwrap();
        src.sample().unwrap();
        assert_eq!(src.owner_refreshes(), 3);
    }

    #[test]
    fn aggregate_groups_a_recorded_sample() {
        let root = fake_proc("loopback-mix", &[(100, Some(b"server"), &[24170, 24172])]);
        let rows = aggregate(&ProcNet::with_root(root.path()).sample().unwrap());
        let row = |port, state: &str| -> Vec<PortUsage> {
            rows.iter()
                .filter(|r| r.port == port && r.state == state)
                .cloned()
                .collect()
        };
        let l = row(47001, "LISTEN");
        assert_eq!((l.len(), l[0].sockets, l[0].pid), (1, 1, Some(100)));
        // The accepted side is on port 47001 too: its own row.
        let e = row(47001, "ESTABLISHED");
        assert_eq!((e.len(), e[0].sockets, e[0].pid), (1, 1, Some(100)));
        assert_eq!(rows.iter().map(|r| r.sockets).sum::<u32>(), 14);
    }
}

#[test]
fn missing_ipv6_tables_are_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("net")).unwrap();
    fs::write(
        dir.path().join("net/tcp"),
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    )
    .unwrap();
    let s = ProcNet::with_root(dir.path()).sample().unwrap();
    assert!(s.is_empty());
}

#[test]
fn malformed_table_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("net")).unwrap();
    fs::write(
        dir.path().join("net/udp6"),
        "  sl  local_address remote_address st\n   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 0:0 0:0 0 0 0 10\n   1: garbage\n",
    )
    .unwrap();
    let err = ProcNet::with_root(dir.path()).sample().unwrap_err();
    let Error::Parse { path, line, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((path.clone(), *line), (dir.path().join("net/udp6"), 3));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}:3: ", dir.path().join("net/udp6").display())),
        "{msg}"
    );

    // Bytes that are not text: still an error naming the line, not a panic.
    fs::write(dir.path().join("net/udp6"), b"header\n\xff\xfe\n").unwrap();
    let err = ProcNet::with_root(dir.path()).sample().unwrap_err();
    assert!(matches!(err, Error::Parse { line: 2, .. }), "{err:?}");
}

#[test]
fn unreadable_table_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the table should be: reading it fails with EISDIR.
    fs::create_dir_all(dir.path().join("net/tcp")).unwrap();
    let err = ProcNet::with_root(dir.path()).sample().unwrap_err();
    assert!(
        matches!(&err, Error::Read { path, .. } if path.ends_with("net/tcp")),
        "{err:?}"
    );
}

/// The real kernel: our own listener and UDP socket appear with our pid and name.
#[test]
fn live_proc_sees_our_sockets_with_pid_and_comm() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = udp.local_addr().unwrap().port();
    // Two accepted connections: two ESTABLISHED sockets on the listener's port.
    let clients: Vec<_> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let accepted: Vec<_> = (0..2).map(|_| listener.accept().unwrap().0).collect();

    let me = std::process::id();
    let comm = fs::read("/proc/self/comm").unwrap();
    let comm = portwatch_capture::escape::escape(comm.strip_suffix(b"\n").unwrap());

    let mut src = ProcNet::new();
    let s = src.sample().unwrap();
    let l = find(&s, Transport::Tcp, 4, port, "LISTEN");
    assert_eq!(l.len(), 1, "{s:#?}");
    assert_eq!(l[0].local_addr, ip("127.0.0.1"));
    assert_eq!(l[0].pid, Some(me));
    assert_eq!(l[0].process.as_deref(), Some(comm.as_str()));
    let exe = std::env::current_exe().unwrap();
    assert_eq!(l[0].exe.as_deref(), exe.to_str());
    assert_eq!(l[0].uid, unsafe { libc::geteuid() });
    let u = find(&s, Transport::Udp, 4, uport, "UNCONN");
    assert_eq!(u.len(), 1);
    assert_eq!(
        (u[0].pid, u[0].process.as_deref()),
        (Some(me), Some(comm.as_str()))
    );

    let rows = aggregate(&s);
    let ours: Vec<_> = rows
        .iter()
        .filter(|r| r.port == port && r.pid == Some(me))
        .collect();
    assert_eq!(ours.len(), 2, "{ours:#?}");
    // Other tests of this binary run in parallel threads of this process, and Linux
    // may hand one of their client sockets the same local port number towards another
    // peer; count exactly only the two connections made here.
    assert_eq!(ours[0].state, "ESTABLISHED");
    assert!(ours[0].sockets >= 2, "{ours:#?}");
    let client_ports: Vec<u16> = clients
        .iter()
        .map(|c| c.local_addr().unwrap().port())
        .collect();
    // Counted as distinct connections: a table read while other threads open sockets
    // can list one twice (the kernel walks hash buckets that change under it).
    let mine: std::collections::BTreeSet<u16> = find(&s, Transport::Tcp, 4, port, "ESTABLISHED")
        .into_iter()
        .map(|x| x.remote_port)
        .filter(|p| client_ports.contains(p))
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!((ours[1].state, ours[1].sockets), ("LISTEN", 1));
    assert_eq!(ours[1].exe.as_deref(), exe.to_str());
    assert_eq!(ours[1].uid, Some(unsafe { libc::geteuid() }));
    assert_eq!(ours[1].process.as_deref(), Some(comm.as_str()));
    let urow: Vec<_> = rows
        .iter()
        .filter(|r| r.port == uport && r.transport == Transport::Udp)
        .collect();
    assert_eq!(
        (urow.len(), urow[0].state, urow[0].sockets, urow[0].pid),
        (1, "UNCONN", 1, Some(me))
    );

    // A second sample of an unchanged table reuses the owner map.
    let before = src.owner_refreshes();
    drop((clients, accepted));
    src.sample().unwrap();
    assert!(src.owner_refreshes() <= before + 1);
}

/// The netlink fast path and the /proc/net text agree on our own sockets.
#[test]
fn live_sock_diag_matches_proc_net() {
    use portwatch_scan::SockDiag;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let l6 = TcpListener::bind("[::1]:0").ok();
    let me = Some(std::process::id());

    let mut diag = SockDiag::new();
    let fast = diag.sample().unwrap();
    let slow = ProcNet::new().sample().unwrap();
    if !diag.has_netlink() {
        eprintln!("no netlink sock_diag here: SockDiag read /proc/net only");
    }
    eprintln!("tables read from /proc/net: {:?}", diag.file_fallbacks());
    let key = |s: &Socket| {
        (
            s.transport.as_str(),
            s.family,
            s.local_addr,
            s.local_port,
            s.remote_addr,
            s.remote_port,
            s.state,
            s.inode,
            s.uid,
            s.pid,
            s.process.clone(),
        )
    };
    // Only this test's sockets: other tests in this process open and close theirs
    // concurrently.
    let mut ports = vec![port, udp.local_addr().unwrap().port()];
    ports.extend(l6.iter().map(|l| l.local_addr().unwrap().port()));
    let ours =
        |s: &&Socket| s.pid == me && (ports.contains(&s.local_port) || s.remote_port == port);
    let mut a: Vec<_> = fast.iter().filter(ours).map(key).collect();
    let mut b: Vec<_> = slow.iter().filter(ours).map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(a.len() >= 4, "{a:#?}");
    assert_eq!(find(&fast, Transport::Tcp, 4, port, "LISTEN")[0].pid, me);
    drop((client, accepted, udp, l6));
}

const UNPRIVILEGED_CHILD: &str = "PORTWATCH_SCAN_UNPRIVILEGED_PORT";

/// As a non-root user, other users' `/proc/PID/fd` cannot be read: the sample still
/// succeeds, their sockets simply have no owner. As root the test re-runs itself as
/// `nobody` through setpriv, holding a listener the child must see without a pid.
#[test]
fn unprivileged_sample_sees_sockets_without_foreign_owners() {
    if let Some(port) = std::env::var_os(UNPRIVILEGED_CHILD) {
        let port: u16 = port.to_str().unwrap().parse().unwrap();
        for mut src in [
            Box::new(ProcNet::new()) as Box<dyn SocketSource>,
            Box::new(portwatch_scan::SockDiag::new()),
        ] {
            let s = src.sample().unwrap();
            let l = find(&s, Transport::Tcp, 4, port, "LISTEN");
            assert_eq!(l.len(), 1, "{s:#?}");
            assert_eq!(
                (l[0].pid, l[0].process.as_deref(), l[0].exe.as_deref()),
                (None, None, None)
            );
            assert_eq!(l[0].uid, 0);
        }
        println!("{}", portwatch_testkit::CHILD_RAN);
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return portwatch_testkit::skip(
            "not root: cannot hold a socket another user can't attribute",
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    portwatch_testkit::rerun_as_nobody(
        "unprivileged_sample_sees_sockets_without_foreign_owners",
        (UNPRIVILEGED_CHILD, &port.to_string()),
    );
    drop(listener);
}
