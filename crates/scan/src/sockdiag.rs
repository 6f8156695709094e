//! The fast path: the kernel's socket tables over netlink `sock_diag` (INET_DIAG),
//! the interface ss uses.
//!
//! Why it exists: with 10,000 sockets, reading `/proc/net/{tcp,tcp6,udp,udp6}` cost
//! ~24 ms here (the kernel formatting text, and walking the shared TCP hash once
//! for `tcp` and again for `tcp6`), over the design's 20 ms budget for a whole
//! sample; the same dump over netlink is binary and cheaper (BENCH.md). The
//! `/proc/net` reader stays: it is what recorded-file tests exercise, and it is the
//! fallback for any table netlink cannot dump (no `udp_diag` module, a kernel
//! without sock_diag, IPv6 off), so a sample is the kernel's table either way.
//!
//! Hand-written on libc rather than with netlink-packet-sock-diag: the request is
//! one fixed 72-byte message and each reply one fixed 72-byte header we read five
//! fields of; the parse is a pure function of the reply bytes, tested on bytes built
//! in the tests.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::attribution::interface_addrs;
use crate::error::Error;
use crate::netns;
use crate::owners::OwnerMap;
use crate::procnet::{ProcNet, TABLES, tcp_state_name, udp_state_name};
use crate::socket::{Socket, Transport};
use crate::source::SocketSource;

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, `inet_diag_sockid`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retrans, sockid (48), expires,
/// rqueue, wqueue, uid, inode.
const MSG_LEN: usize = 72;

/// The request for one dump of every socket of `protocol` in `family` (AF_INET or
/// AF_INET6), all states.
pub fn dump_request(family: u8, protocol: u8, seq: u32) -> [u8; NLMSG_HDRLEN + REQ_LEN] {
    let mut m = [0u8; NLMSG_HDRLEN + REQ_LEN];
    m[0..4].copy_from_slice(&((NLMSG_HDRLEN + REQ_LEN) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // pid 0: the kernel. Then the request: family, protocol, ext = 0, pad = 0.
    m[16] = family;
    m[17] = protocol;
    // Every state (bit n = state n), TIME_WAIT and SYN_RECV included, as /proc/net.
    m[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    m
}

/// What one received buffer said.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// More messages follow in the next read.
    More,
    /// NLMSG_DONE: the dump is complete.
    Done,
}

/// Parses one netlink read of a sock_diag dump, appending its sockets. A kernel
/// error reply becomes that errno; a truncated or inconsistent message is
/// `InvalidData` — never a panic.
pub fn parse_dump(buf: &[u8], transport: Transport, out: &mut Vec<Socket>) -> io::Result<Batch> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sock_diag reply: {what}"),
        )
    };
    let mut rest = buf;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32_at(rest, 0) as usize;
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(bad("message length out of bounds"));
        }
        let payload = &rest[NLMSG_HDRLEN..len];
        match ty {
            NLMSG_DONE => return Ok(Batch::Done),
            NLMSG_ERROR => {
                if payload.len() < 4 {
                    return Err(bad("short error message"));
                }
                let errno = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(errno.saturating_neg()));
                }
            }
            SOCK_DIAG_BY_FAMILY => {
                if payload.len() < MSG_LEN {
                    return Err(bad("short inet_diag_msg"));
                }
                out.push(
                    parse_msg(payload, transport).ok_or_else(|| bad("unknown address family"))?,
                );
            }
            // NLMSG_NOOP, NLMSG_OVERRUN and anything new: nothing for us.
            _ => {}
        }
        let aligned = (len + 3) & !3;
        rest = rest.get(aligned..).unwrap_or(&[]);
    }
    Ok(Batch::More)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One `inet_diag_msg` (at least MSG_LEN bytes).
fn parse_msg(m: &[u8], transport: Transport) -> Option<Socket> {
    let family = match i32::from(m[0]) {
        libc::AF_INET => 4,
        libc::AF_INET6 => 6,
        _ => return None,
    };
    let state = match transport {
        Transport::Tcp => tcp_state_name(m[1]),
        Transport::Udp => udp_state_name(m[1]),
    };
    // sockid at 4: sport, dport (network order), src[16], dst[16], if, cookie.
    let local_port = u16::from_be_bytes([m[4], m[5]]);
    let remote_port = u16::from_be_bytes([m[6], m[7]]);
    let addr = |at: usize| -> IpAddr {
        if family == 4 {
            Ipv4Addr::new(m[at], m[at + 1], m[at + 2], m[at + 3]).into()
        } else {
            let mut b = [0u8; 16];
            b.copy_from_slice(&m[at..at + 16]);
            Ipv6Addr::from(b).into()
        }
    };
    Some(Socket {
        transport,
        family,
        local_addr: addr(8),
        local_port,
        remote_addr: addr(24),
        remote_port,
        state,
        uid: u32_at(m, 64),
        inode: u64::from(u32_at(m, 68)),
        pid: None,
        process: None,
        exe: None,
        netns: None,
        container: None,
    })
}

/// The kernel's socket tables over netlink sock_diag, each table falling back to
/// its `/proc/net` file when netlink cannot dump it, with owners as [`ProcNet`]
/// finds them (cached inode → pid map over `/proc/PID/fd`) — in the scanner's own
/// network namespace and, as root, in every other one a process is in
/// ([`crate::netns`]): a container's listeners are the host's too.
#[derive(Debug)]
pub struct SockDiag {
    netlink: Option<OwnedFd>,
    /// Where processes are listed (`/proc`).
    root: PathBuf,
    /// The scanner's own namespace; `None` when unknown (then no other is read).
    own_ns: Option<u64>,
    /// Read the other namespaces too.
    all_namespaces: bool,
    /// Most other namespaces read ([`MAX_OTHER_NAMESPACES`]).
    namespace_cap: usize,
    /// A netlink socket made inside each other namespace, with its container, kept
    /// while the namespace exists.
    others: BTreeMap<u64, Other>,
    /// Entering a namespace was refused (not root): not tried again.
    denied: bool,
    /// Which namespace each process is in.
    namespaces: netns::NamespaceCache,
    /// Which of [`TABLES`] netlink could not dump, so later samples go straight to
    /// the file.
    use_file: [bool; 4],
    fallback: ProcNet,
    owners: Option<OwnerMap>,
    buf: Vec<u8>,
    seq: u32,
    /// The last sample's size, to allocate the next one once.
    last_len: usize,
}

/// Another network namespace as the scanner reads it.
#[derive(Debug)]
struct Other {
    netlink: OwnedFd,
    container: Option<Arc<str>>,
    /// Its interfaces' addresses, read inside it when it was first met (a container
    /// keeps its address for its life).
    addrs: Vec<IpAddr>,
}

/// Most other network namespaces a sample reads. Each holds a netlink socket open and
/// costs a walk of the kernel's TCP table per sample (about 4 ms here with one table
/// for all namespaces, BENCHMARKS.md): a local user who makes thousands (unprivileged
/// user namespaces allow it) must not exhaust the collector's descriptors or stretch
/// a sample past its interval. Past it, the lowest-numbered pids' namespaces are read
/// (services started early: a host's containers before a user's sandboxes).
pub const MAX_OTHER_NAMESPACES: usize = 128;

impl Default for SockDiag {
    fn default() -> Self {
        Self::new()
    }
}

impl SockDiag {
    /// The live system, with owners; `/proc` for owners and fallbacks.
    pub fn new() -> Self {
        Self::with_proc_root("/proc")
    }

    /// Owners and fallback tables under another root (the netlink dump is always
    /// the live kernel's).
    pub fn with_proc_root(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        SockDiag {
            netlink: open_netlink().ok(),
            own_ns: netns::netns_of(&root, "self"),
            root: root.clone(),
            all_namespaces: true,
            namespace_cap: MAX_OTHER_NAMESPACES,
            others: BTreeMap::new(),
            denied: false,
            namespaces: netns::NamespaceCache::default(),
            use_file: [false; 4],
            fallback: ProcNet::with_root(root.clone()).without_owners(),
            owners: Some(OwnerMap::new(root)),
            // The kernel sends at most ~32 KiB per read of a dump.
            buf: vec![0; 64 * 1024],
            seq: 0,
            last_len: 0,
        }
    }

    /// Do not look up owners.
    pub fn without_owners(mut self) -> Self {
        self.owners = None;
        self
    }

    /// Read at most `n` other namespaces (tests; the default is
    /// [`MAX_OTHER_NAMESPACES`]).
    pub fn with_namespace_cap(mut self, n: usize) -> Self {
        self.namespace_cap = n;
        self
    }

    /// Read the scanner's own network namespace only.
    pub fn own_namespace_only(mut self) -> Self {
        self.all_namespaces = false;
        self
    }

    /// How many other network namespaces the last sample read.
    pub fn other_namespaces(&self) -> usize {
        self.others.len()
    }

    /// Whether the netlink socket could be opened at all (else every table comes
    /// from `/proc/net`).
    pub fn has_netlink(&self) -> bool {
        self.netlink.is_some()
    }

    /// The tables (`tcp`, `udp6`, …) read from `/proc/net` because netlink could not
    /// dump them — for `-v` output and tests.
    pub fn file_fallbacks(&self) -> Vec<&'static str> {
        TABLES
            .iter()
            .zip(self.use_file)
            .filter(|(_, file)| *file)
            .map(|((name, _, _), _)| *name)
            .collect()
    }

    /// How many process-table walks this source has made.
    pub fn owner_refreshes(&self) -> u64 {
        self.owners.as_ref().map_or(0, OwnerMap::refreshes)
    }

    /// Reads the four tables without owners.
    pub fn read_tables(&mut self) -> Result<Vec<Socket>, Error> {
        let mut sockets = Vec::with_capacity(self.last_len + self.last_len / 8);
        for (i, (name, transport, family)) in TABLES.into_iter().enumerate() {
            if !self.use_file[i] {
                let before = sockets.len();
                let fd = self.netlink.as_ref().map(AsRawFd::as_raw_fd);
                match self.dump(fd, transport, family, &mut sockets) {
                    Ok(()) => continue,
                    Err(e) => {
                        sockets.truncate(before);
                        // Not available for this table (no udp_diag, IPv6 off): the
                        // file for this and every later sample. Anything else: the
                        // file for this sample only, and a fresh netlink socket so
                        // the rest of an aborted dump cannot mix into the next one.
                        if unsupported(&e) {
                            self.use_file[i] = true;
                        } else {
                            self.netlink = open_netlink().ok();
                        }
                    }
                }
            }
            self.fallback
                .read_table(name, transport, family, &mut sockets)?;
        }
        if self.all_namespaces {
            self.read_other_namespaces(&mut sockets);
        }
        Ok(sockets)
    }

    /// Appends the sockets of every other network namespace, each tagged with it and
    /// its container. A namespace that cannot be read this time is left out of this
    /// sample (a process that exits, a table the kernel will not dump); without the
    /// right to enter namespaces, none is tried again.
    fn read_other_namespaces(&mut self, sockets: &mut Vec<Socket>) {
        let Some(own) = self.own_ns else { return };
        if self.denied {
            return;
        }
        let mut chosen: Vec<(u64, u32)> = self
            .namespaces
            .scan(&self.root)
            .into_iter()
            .filter(|&(ns, _)| ns != own)
            .collect();
        chosen.sort_unstable_by_key(|&(_, pid)| pid);
        chosen.truncate(self.namespace_cap);
        self.others
            .retain(|ns, _| chosen.iter().any(|(c, _)| c == ns));
        for (ns, pid) in chosen {
            if !self.others.contains_key(&ns) {
                let path = self.root.join(pid.to_string()).join("ns/net");
                match netns::inside(&path, || Ok((open_netlink()?, interface_addrs()))) {
                    Ok((netlink, addrs)) => {
                        let container =
                            netns::container_of(&self.root, pid, &netns::Runtimes::default())
                                .map(Arc::from);
                        self.others.insert(
                            ns,
                            Other {
                                netlink,
                                container,
                                addrs,
                            },
                        );
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                        self.denied = true;
                        return;
                    }
                    Err(_) => continue,
                }
            }
            let Some(other) = self.others.get(&ns) else {
                continue;
            };
            let (fd, container) = (other.netlink.as_raw_fd(), other.container.clone());
            let before = sockets.len();
            for (_, transport, family) in TABLES {
                let start = sockets.len();
                match self.dump(Some(fd), transport, family, sockets) {
                    Ok(()) => {}
                    // A table this kernel cannot dump (no udp_diag, IPv6 off).
                    Err(e) if unsupported(&e) => sockets.truncate(start),
                    Err(_) => {
                        // Left out this time; a fresh socket next time.
                        sockets.truncate(before);
                        self.others.remove(&ns);
                        break;
                    }
                }
            }
            for s in &mut sockets[before..] {
                s.netns = Some(ns);
                s.container = container.clone();
            }
        }
    }

    fn dump(
        &mut self,
        fd: Option<RawFd>,
        transport: Transport,
        family: u8,
        out: &mut Vec<Socket>,
    ) -> io::Result<()> {
        let Some(fd) = fd else {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        };
        self.seq = self.seq.wrapping_add(1);
        let af = if family == 6 {
            libc::AF_INET6
        } else {
            libc::AF_INET
        } as u8;
        let protocol = match transport {
            Transport::Tcp => libc::IPPROTO_TCP,
            Transport::Udp => libc::IPPROTO_UDP,
        } as u8;
        let req = dump_request(af, protocol, self.seq);
        // SAFETY: fd is our open netlink socket; req is a live buffer of req.len() bytes.
        let sent = unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            // SAFETY: buf is a live, writable buffer of buf.len() bytes.
            let n = unsafe { libc::recv(fd, self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            let n = n as usize;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            if parse_dump(&self.buf[..n], transport, out)? == Batch::Done {
                return Ok(());
            }
        }
    }
}

/// Errors that mean "this kernel cannot dump this table over netlink", for good.
fn unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(
                libc::ENOENT
                    | libc::EINVAL
                    | libc::EOPNOTSUPP
                    | libc::EAFNOSUPPORT
                    | libc::EPROTONOSUPPORT
            )
        )
}

fn open_netlink() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl SocketSource for SockDiag {
    fn sample(&mut self) -> Result<Vec<Socket>, Error> {
        let mut sockets = self.read_tables()?;
        if let Some(owners) = &mut self.owners {
            owners.attribute(&mut sockets)?;
        }
        Ok(sockets)
    }

    fn namespace_addrs(&self) -> Vec<(u64, IpAddr)> {
        self.others
            .iter()
            .flat_map(|(ns, o)| o.addrs.iter().map(move |a| (*ns, *a)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply message as the kernel builds it.
    #[allow(clippy::too_many_arguments)]
    fn msg(
        family: u8,
        state: u8,
        src: &[u8],
        sport: u16,
        dst: &[u8],
        dport: u16,
        uid: u32,
        inode: u32,
    ) -> Vec<u8> {
        let mut p = vec![0u8; MSG_LEN];
        p[0] = family;
        p[1] = state;
        p[4..6].copy_from_slice(&sport.to_be_bytes());
        p[6..8].copy_from_slice(&dport.to_be_bytes());
        p[8..8 + src.len()].copy_from_slice(src);
        p[24..24 + dst.len()].copy_from_slice(dst);
        p[64..68].copy_from_slice(&uid.to_ne_bytes());
        p[68..72].copy_from_slice(&inode.to_ne_bytes());
        // An attribute the kernel may append (INET_DIAG_SHUTDOWN), 8 bytes.
        p.extend_from_slice(&[5, 0, 8, 0, 0, 0, 0, 0]);
        frame(SOCK_DIAG_BY_FAMILY, &p)
    }

    fn frame(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn sources_can_move_to_the_scanner_thread() {
        fn send<T: Send>() {}
        send::<SockDiag>();
        send::<ProcNet>();
        send::<crate::BindProbe>();
        send::<crate::Replay>();
    }

    #[test]
    fn unsupported_errors() {
        assert!(unsupported(&io::Error::from_raw_os_error(libc::ENOENT)));
        assert!(unsupported(&io::Error::from(io::ErrorKind::Unsupported)));
        assert!(!unsupported(&io::Error::from_raw_os_error(libc::ENOBUFS)));
    }

    #[test]
    fn request_layout() {
        let r = dump_request(libc::AF_INET6 as u8, libc::IPPROTO_UDP as u8, 7);
        assert_eq!(u32_at(&r, 0), 72);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 20);
        assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301);
        assert_eq!(u32_at(&r, 8), 7);
        assert_eq!((r[16], r[17]), (10, 17));
        assert_eq!(u32_at(&r, 20), u32::MAX);
        assert!(r[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn parses_v4_v6_and_done() {
        let mut buf = msg(2, 10, &[127, 0, 0, 1], 8080, &[0; 4], 0, 1000, 4242);
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        let mut mapped = [0u8; 16];
        mapped[10..12].copy_from_slice(&[0xff, 0xff]);
        mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
        buf.extend(msg(10, 1, &v6, 443, &mapped, 50000, 0, 7));
        buf.extend(msg(10, 6, &mapped, 1, &mapped, 2, 0, 0));
        let mut out = Vec::new();
        assert_eq!(
            parse_dump(&buf, Transport::Tcp, &mut out).unwrap(),
            Batch::More
        );
        buf = frame(NLMSG_DONE, &[0; 4]);
        assert_eq!(
            parse_dump(&buf, Transport::Tcp, &mut out).unwrap(),
            Batch::Done
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].local_addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (out[0].local_port, out[0].state, out[0].uid, out[0].inode),
            (8080, "LISTEN", 1000, 4242)
        );
        assert_eq!((out[0].family, out[0].transport), (4, Transport::Tcp));
        assert_eq!(out[1].local_addr, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            out[1].remote_addr,
            "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            (out[1].family, out[1].state, out[1].remote_port),
            (6, "ESTABLISHED", 50000)
        );
        assert_eq!((out[2].state, out[2].inode), ("TIME_WAIT", 0));
    }

    #[test]
    fn udp_states_and_kernel_errors() {
        let buf = msg(2, 7, &[127, 0, 0, 53], 53, &[0; 4], 0, 0, 9);
        let mut out = Vec::new();
        parse_dump(&buf, Transport::Udp, &mut out).unwrap();
        assert_eq!(out[0].state, "UNCONN");
        let err = parse_dump(
            &frame(NLMSG_ERROR, &(-libc::ENOENT).to_ne_bytes()),
            Transport::Udp,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn truncated_replies_are_errors_not_panics() {
        let good = msg(2, 10, &[127, 0, 0, 1], 1, &[0; 4], 0, 0, 1);
        for cut in 0..good.len() {
            let mut out = Vec::new();
            let _ = parse_dump(&good[..cut], Transport::Tcp, &mut out);
        }
        let mut lying = good.clone();
        lying[0..4].copy_from_slice(&9999u32.to_ne_bytes());
        assert!(parse_dump(&lying, Transport::Tcp, &mut Vec::new()).is_err());
        lying[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(parse_dump(&lying, Transport::Tcp, &mut Vec::new()).is_err());
        let mut family = good;
        family[16] = 99;
        assert!(parse_dump(&family, Transport::Tcp, &mut Vec::new()).is_err());
    }
}
