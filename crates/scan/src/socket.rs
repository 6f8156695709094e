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
    pub uid: u32,
    pub inode: u64,
    pub pid: Option<u32>,
    pub process: Option<Arc<str>>,
}

/// One `rounds_ports` row: the sockets of a sample grouped by
/// (port, protocol, family, state, pid), with their count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUsage {
    pub port: u16,
    pub transport: Transport,
    pub family: u8,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub process: Option<Arc<str>>,
    pub sockets: u32,
}

/// Groups a sample's sockets into rows, in a stable order (port, protocol, family,
/// state, pid) so that equal samples give equal rows.
pub fn aggregate(sockets: &[Socket]) -> Vec<PortUsage> {
    type Key = (u16, Transport, u8, &'static str, Option<u32>);
    let mut groups: BTreeMap<Key, (Option<Arc<str>>, u32)> = BTreeMap::new();
    for s in sockets {
        let e = groups
            .entry((s.local_port, s.transport, s.family, s.state, s.pid))
            .or_insert_with(|| (s.process.clone(), 0));
        e.1 += 1;
    }
    groups
        .into_iter()
        .map(
            |((port, transport, family, state, pid), (process, sockets))| PortUsage {
                port,
                transport,
                family,
                state,
                pid,
                process,
                sockets,
            },
        )
        .collect()
}
