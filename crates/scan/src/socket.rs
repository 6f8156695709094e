//! What one socket-table sample holds, and how it is folded into `rounds_ports` rows.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

pub use portwatch_capture::Transport;

/// One socket from the kernel's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub transport: Transport,
    /// 4 or 6.
    pub family: u8,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// `LISTEN`, `ESTABLISHED`, `TIME_WAIT`, …; UDP `UNCONN` or `ESTABLISHED` (as ss prints).
    pub state: &'static str,
    /// The socket's owner uid as the kernel's table gives it;
    /// [`UNKNOWN_UID`](crate::UNKNOWN_UID) when the source cannot tell (the bind probe).
    pub uid: u32,
    pub inode: u64,
    pub pid: Option<u32>,
    pub process: Option<Arc<str>>,
    /// The owning process's executable (`/proc/PID/exe`), escaped as stored names are;
    /// `None` when not visible (kernel threads, another user's process as non-root).
    pub exe: Option<Arc<str>>,
    /// The network namespace (its nsfs inode, as `ls -iL /proc/PID/ns/net` shows it)
    /// when it is not the scanner's own: a container's, an `ip netns`'s. `None` for the
    /// host's own sockets.
    pub netns: Option<u64>,
    /// The container of that namespace, named from its first process's cgroup
    /// (`docker:3f4e1c2a9b8d/web-1`; [`crate::netns::container_of`]).
    pub container: Option<Arc<str>>,
}

/// One `rounds_ports` row: the sockets of a sample grouped by
/// (network namespace, port, protocol, family, state, pid), with their count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUsage {
    pub port: u16,
    pub transport: Transport,
    pub family: u8,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub process: Option<Arc<str>>,
    /// The owning process's executable, when visible.
    pub exe: Option<Arc<str>>,
    /// The user that created the sockets (of the first one, when they differ).
    pub uid: Option<u32>,
    pub sockets: u32,
    /// The network namespace, when not the host's own ([`Socket::netns`]).
    pub netns: Option<u64>,
    /// Its container, when named ([`Socket::container`]).
    pub container: Option<Arc<str>>,
}

/// Groups a sample's sockets into rows, in a stable order (port, protocol, family,
/// state, pid) so that equal samples give equal rows.
pub fn aggregate(sockets: &[Socket]) -> Vec<PortUsage> {
    type Key = (u16, Transport, u8, &'static str, Option<u32>, Option<u64>);
    let mut groups: BTreeMap<Key, PortUsage> = BTreeMap::new();
    for s in sockets {
        groups
            .entry((s.local_port, s.transport, s.family, s.state, s.pid, s.netns))
            .or_insert_with(|| PortUsage {
                port: s.local_port,
                transport: s.transport,
                family: s.family,
                state: s.state,
                pid: s.pid,
                process: s.process.clone(),
                exe: s.exe.clone(),
                uid: (s.uid != crate::UNKNOWN_UID).then_some(s.uid),
                sockets: 0,
                netns: s.netns,
                container: s.container.clone(),
            })
            .sockets += 1;
    }
    groups.into_values().collect()
}
