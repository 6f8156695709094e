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
use crate::sockstat::{Occupied, SockStat};
use crate::source::SocketSource;

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The original TCP dump (`struct inet_diag_req`): the kernel serves it with the family
/// left unspecified, so one walk of its TCP hash gives the IPv4 and the IPv6 sockets.
const TCPDIAG_GETSOCK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, `inet_diag_sockid`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_req`: family, src_len, dst_len, ext, `inet_diag_sockid`, states,
/// dbs.
const COMPAT_REQ_LEN: usize = 60;
/// The states dumped: every state /proc/net shows (bit n = state n, TIME_WAIT and
/// SYN_RECV included, and 12 for the request sockets the kernel keeps as
/// `TCP_NEW_SYN_RECV`). Not bit 13, `TCP_BOUND_INACTIVE` (Linux 6.5): sockets bound and
/// neither listening nor connected, which /proc/net does not list, and which the
/// kernel finds by walking its bind hash table — one table for every network
/// namespace, so asking for them cost about 0.85 ms a dump here even in a namespace
/// with a TCP table of its own.
const STATES: u32 = 0x1fff;
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
    m[20..24].copy_from_slice(&STATES.to_ne_bytes());
    m
}

/// The request for one dump of every TCP socket, IPv4 and IPv6 in one walk of the
/// kernel's TCP hash table (the original `TCPDIAG_GETSOCK`, which the kernel still
/// serves): with one table for every namespace, the walk is what a dump costs (about
/// 2 ms here for 262,144 buckets), and two dumps per family walked it twice.
pub fn tcp_dump_request(seq: u32) -> [u8; NLMSG_HDRLEN + COMPAT_REQ_LEN] {
    let mut m = [0u8; NLMSG_HDRLEN + COMPAT_REQ_LEN];
    m[0..4].copy_from_slice(&((NLMSG_HDRLEN + COMPAT_REQ_LEN) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // The family is ignored for a dump (the kernel dumps both); AF_INET as ss sends.
    m[16] = libc::AF_INET as u8;
    // After the 48-byte socket id: the states, then `dbs` (unused).
    m[68..72].copy_from_slice(&STATES.to_ne_bytes());
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
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
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
    dumper: Dumper,
    /// The helper thread's, for the other half of many namespaces.
    helper: Dumper,
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
    /// Its socket counts, opened inside it: an empty table is not dumped.
    stat: Option<SockStat>,
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
            dumper: Dumper::new(),
            helper: Dumper::new(),
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
        let tcp_done = !self.use_file[0] && !self.use_file[1] && {
            let fd = self.netlink.as_ref().map(AsRawFd::as_raw_fd);
            match self.dumper.dump_tcp_both(fd, &mut sockets) {
                Ok(done) => done,
                Err(_) => {
                    // As below: a fresh socket, and one dump per table this time.
                    self.netlink = open_netlink().ok();
                    false
                }
            }
        };
        for (i, (name, transport, family)) in TABLES.into_iter().enumerate() {
            if tcp_done && transport == Transport::Tcp {
                continue;
            }
            if !self.use_file[i] {
                let before = sockets.len();
                let fd = self.netlink.as_ref().map(AsRawFd::as_raw_fd);
                match self.dumper.dump(fd, transport, family, &mut sockets) {
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
                let open = || Ok((open_netlink()?, interface_addrs(), SockStat::open_own()));
                match netns::inside(&path, open) {
                    Ok((netlink, addrs, stat)) => {
                        let container =
                            netns::container_of(&self.root, pid, &netns::Runtimes::default())
                                .map(Arc::from);
                        self.others.insert(
                            ns,
                            Other {
                                netlink,
                                container,
                                addrs,
                                stat,
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
        }
        // Then their dumps: with many namespaces, half of them on a helper thread (the
        // kernel's walk of its TCP table, once per namespace, is most of the time).
        let work: Vec<Work> = self
            .others
            .iter()
            .map(|(&ns, o)| Work {
                ns,
                fd: o.netlink.as_raw_fd(),
                container: o.container.clone(),
                occupied: o.stat.as_ref().map_or(Occupied::ALL, SockStat::read),
            })
            .collect();
        let (mine, theirs) = if work.len() >= PARALLEL_NAMESPACES {
            work.split_at(work.len() / 2)
        } else {
            (&work[..], &[][..])
        };
        let (dumper, helper) = (&mut self.dumper, &mut self.helper);
        let (failed, (theirs_out, theirs_failed)) = std::thread::scope(|scope| {
            let h = (!theirs.is_empty()).then(|| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    let failed = dump_namespaces(helper, theirs, &mut out);
                    (out, failed)
                })
            });
            let failed = dump_namespaces(dumper, mine, sockets);
            // A helper that panicked (it does not: no unwrap on anything it reads)
            // leaves its namespaces out of this sample.
            let theirs = h
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| (Vec::new(), theirs.iter().map(|w| w.ns).collect()))
                })
                .unwrap_or_default();
            (failed, theirs)
        });
        sockets.extend(theirs_out);
        for ns in failed.into_iter().chain(theirs_failed) {
            // Left out this time; a fresh socket next time.
            self.others.remove(&ns);
        }
    }
}

/// Most network namespaces dumped on the sampling thread alone; from this many on,
/// half are dumped on a helper thread.
const PARALLEL_NAMESPACES: usize = 4;

/// Another namespace to dump this sample.
struct Work {
    ns: u64,
    /// Its netlink socket.
    fd: RawFd,
    container: Option<Arc<str>>,
    /// Its tables that hold sockets now; the others are not dumped.
    occupied: Occupied,
}

/// Dumps the occupied tables of other namespaces, each socket tagged with its namespace
/// and container; returns the namespaces that failed, whose sockets are left out of this
/// sample.
fn dump_namespaces(d: &mut Dumper, work: &[Work], sockets: &mut Vec<Socket>) -> Vec<u64> {
    let mut failed = Vec::new();
    for w in work {
        let before = sockets.len();
        let tcp = if w.occupied.tcp {
            d.dump_tcp_both(Some(w.fd), sockets)
        } else {
            Ok(true) // nothing to dump: as good as done
        };
        let ok = match tcp {
            Ok(tcp_done) => TABLES
                .into_iter()
                .filter(|(_, transport, _)| !(tcp_done && *transport == Transport::Tcp))
                .filter(|&(_, transport, family)| w.occupied.holds(transport, family))
                .all(|(_, transport, family)| {
                    let start = sockets.len();
                    match d.dump(Some(w.fd), transport, family, sockets) {
                        Ok(()) => true,
                        // A table this kernel cannot dump (no udp_diag, IPv6 off).
                        Err(e) if unsupported(&e) => {
                            sockets.truncate(start);
                            true
                        }
                        Err(_) => false,
                    }
                }),
            Err(_) => false,
        };
        if !ok {
            sockets.truncate(before);
            failed.push(w.ns);
            continue;
        }
        for s in &mut sockets[before..] {
            s.netns = Some(w.ns);
            s.container = w.container.clone();
        }
    }
    failed
}

/// One thread's side of sock_diag dumps: its receive buffer and sequence numbers.
#[derive(Debug)]
struct Dumper {
    buf: Vec<u8>,
    seq: u32,
    /// Whether to ask for both TCP tables in one dump ([`tcp_dump_request`]); false
    /// once a kernel refused it (then one dump per family).
    tcp_both: bool,
}

impl Dumper {
    fn new() -> Self {
        Dumper {
            // The kernel sends at most ~32 KiB per read of a dump.
            buf: vec![0; 64 * 1024],
            seq: 0,
            tcp_both: true,
        }
    }

    /// Both TCP tables in one dump, where the kernel serves it: Ok(true) when done,
    /// Ok(false) when the kernel refuses it (then never asked again: one dump per
    /// family instead), an error (with nothing appended) for anything else.
    fn dump_tcp_both(&mut self, fd: Option<RawFd>, out: &mut Vec<Socket>) -> io::Result<bool> {
        if !self.tcp_both {
            return Ok(false);
        }
        let Some(fd) = fd else { return Ok(false) };
        self.seq = self.seq.wrapping_add(1);
        let req = tcp_dump_request(self.seq);
        let before = out.len();
        match self.exchange(fd, &req, Transport::Tcp, out) {
            Ok(()) => Ok(true),
            Err(e) => {
                out.truncate(before);
                if unsupported(&e) {
                    self.tcp_both = false;
                    Ok(false)
                } else {
                    Err(e)
                }
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
        self.exchange(fd, &req, transport, out)
    }

    /// Sends one dump request and reads its replies to the end.
    fn exchange(
        &mut self,
        fd: RawFd,
        req: &[u8],
        transport: Transport,
        out: &mut Vec<Socket>,
    ) -> io::Result<()> {
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
        assert_eq!(u32_at(&r, 20), 0x1fff, "not TCP_BOUND_INACTIVE");
        assert!(r[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn tcp_request_layout() {
        let r = tcp_dump_request(9);
        assert_eq!(u32_at(&r, 0), 76);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 18);
        assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301);
        assert_eq!(u32_at(&r, 8), 9);
        assert_eq!(r[16], 2);
        assert!(r[17..68].iter().all(|&b| b == 0), "lengths, ext, socket id");
        assert_eq!(u32_at(&r, 68), 0x1fff, "every state /proc/net shows");
        assert_eq!(u32_at(&r, 72), 0);
    }

    /// The one TCP dump gives what the two per-family dumps give: the live kernel, a
    /// listener on each family.
    #[test]
    fn one_tcp_dump_gives_both_families() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").ok();
        let mut scan = SockDiag::new().without_owners().own_namespace_only();
        let fd = scan.netlink.as_ref().map(AsRawFd::as_raw_fd);
        let mut both = Vec::new();
        let d = &mut scan.dumper;
        assert!(d.dump_tcp_both(fd, &mut both).unwrap(), "served here");
        let mut each = Vec::new();
        d.dump(fd, Transport::Tcp, 4, &mut each).unwrap();
        d.dump(fd, Transport::Tcp, 6, &mut each).unwrap();
        let key = |s: &Socket| (s.local_addr, s.local_port, s.remote_addr, s.remote_port);
        let has = |v: &[Socket], port: u16| v.iter().any(|s| s.local_port == port);
        let port4 = v4.local_addr().unwrap().port();
        assert!(has(&both, port4) && has(&each, port4));
        if let Some(v6) = &v6 {
            let port6 = v6.local_addr().unwrap().port();
            assert!(has(&both, port6) && has(&each, port6));
        }
        // Sockets come and go between two dumps on a live host (other tests run): the
        // listeners of this test, in LISTEN, are in both, with the same fields.
        for s in both.iter().filter(|s| s.state == "LISTEN") {
            if let Some(e) = each.iter().find(|e| key(e) == key(s)) {
                assert_eq!((e.family, e.uid, e.inode), (s.family, s.uid, s.inode));
            }
        }
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
