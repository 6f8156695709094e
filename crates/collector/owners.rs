//! Which local process owns a packet: the scanner publishes a (protocol, port) → owner
//! map at each sample, and the sniffer looks packets up in its own copy.
//!
//! The sniffer must never wait for the scanner (it keeps up with 100k packets/s), so the
//! map is swapped whole behind a generation counter and the sniffer re-reads it only
//! when the counter moved. A local port the map does not know asks the scanner for an
//! early sample (rate-limited), so a connection opened mid-round is attributed from then
//! on.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use portwatch_capture::{Packet, Transport};
use portwatch_scan::Socket;

type Map = HashMap<(Transport, u16), (u32, Option<Arc<str>>)>;

/// Shared between the scanner (writer of the map) and the sniffer (reader).
#[derive(Default)]
pub struct Owners {
    map: Mutex<Arc<Map>>,
    local: Mutex<Arc<HashSet<IpAddr>>>,
    generation: AtomicU64,
    /// Set by the sniffer on a miss; the scanner samples early and clears it.
    pub wanted: AtomicBool,
}

impl Owners {
    /// Publishes the owners seen in a sample, plus the host's own addresses (those of
    /// its sockets and of its interfaces), which tell which end of a packet is local.
    pub fn publish(&self, sockets: &[Socket], interface_addrs: &[IpAddr]) {
        let mut map = Map::with_capacity(sockets.len());
        let mut local: HashSet<IpAddr> = interface_addrs.iter().copied().collect();
        for s in sockets {
            if !s.local_addr.is_unspecified() {
                local.insert(s.local_addr);
            }
            if let Some(pid) = s.pid {
                // Listeners and their accepted sockets share a port and a process; the
                // first socket seen stands for them.
                map.entry((s.transport, s.local_port))
                    .or_insert_with(|| (pid, s.process.clone()));
            }
        }
        if let Ok(mut m) = self.map.lock() {
            *m = Arc::new(map);
        }
        if let Ok(mut l) = self.local.lock() {
            *l = Arc::new(local);
        }
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// The sniffer's view: a snapshot refreshed when the scanner publishes.
pub struct View {
    shared: Arc<Owners>,
    seen: u64,
    map: Arc<Map>,
    local: Arc<HashSet<IpAddr>>,
}

impl View {
    pub fn new(shared: Arc<Owners>) -> View {
        View {
            shared,
            seen: u64::MAX,
            map: Arc::default(),
            local: Arc::default(),
        }
    }

    fn refresh(&mut self) {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g != self.seen {
            self.seen = g;
            if let Ok(m) = self.shared.map.lock() {
                self.map = Arc::clone(&m);
            }
            if let Ok(l) = self.shared.local.lock() {
                self.local = Arc::clone(&l);
            }
        }
    }

    /// Fills `pid` and `process` from the local end of the packet: the sender when the
    /// source address is local, else the receiver (both ends of loopback traffic are
    /// local; the sender is the one that made it).
    pub fn attribute(&mut self, p: &mut Packet) {
        self.refresh();
        let Some(t) = p.transport else { return };
        let is_local =
            |a: Option<IpAddr>| a.is_some_and(|a| a.is_loopback() || self.local.contains(&a));
        let candidates = [
            (is_local(p.src_addr), p.src_port),
            (is_local(p.dst_addr), p.dst_port),
        ];
        let mut missed = false;
        for (local, port) in candidates {
            let (true, Some(port)) = (local, port) else {
                continue;
            };
            match self.map.get(&(t, port)) {
                Some((pid, process)) => {
                    p.pid = Some(*pid);
                    p.process = process.clone();
                    return;
                }
                None => missed = true,
            }
        }
        if missed {
            self.shared.wanted.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn sock(port: u16, pid: u32, addr: IpAddr) -> Socket {
        Socket {
            transport: Transport::Tcp,
            family: 4,
            local_addr: addr,
            local_port: port,
            remote_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            remote_port: 0,
            state: "LISTEN",
            uid: 0,
            inode: 1,
            pid: Some(pid),
            process: Some(Arc::from(format!("p{pid}"))),
        }
    }

    fn pkt(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Packet {
        Packet {
            transport: Some(Transport::Tcp),
            src_addr: Some(IpAddr::from(src)),
            dst_addr: Some(IpAddr::from(dst)),
            src_port: Some(sport),
            dst_port: Some(dport),
            ..Packet::default()
        }
    }

    #[test]
    fn the_local_end_decides_and_a_remote_port_never_matches_a_local_service() {
        let shared = Arc::new(Owners::default());
        let me = IpAddr::from([10, 0, 0, 5]);
        // nginx listens on 443; a browser has 50000 open to a remote 443.
        shared.publish(&[sock(443, 1, me), sock(50000, 2, me)], &[me]);
        let mut v = View::new(Arc::clone(&shared));
        let mut incoming = pkt([93, 184, 216, 34], 443, [10, 0, 0, 5], 50000);
        v.attribute(&mut incoming);
        assert_eq!(
            incoming.pid,
            Some(2),
            "the reply belongs to the browser, not nginx"
        );
        let mut outgoing = pkt([10, 0, 0, 5], 50000, [93, 184, 216, 34], 443);
        v.attribute(&mut outgoing);
        assert_eq!(outgoing.pid, Some(2));
        assert_eq!(outgoing.process.as_deref(), Some("p2"));
        let mut to_nginx = pkt([93, 184, 216, 34], 40000, [10, 0, 0, 5], 443);
        v.attribute(&mut to_nginx);
        assert_eq!(to_nginx.pid, Some(1));
        assert!(!shared.wanted.load(Ordering::Relaxed));
    }

    #[test]
    fn a_miss_on_a_local_port_asks_for_a_sample_and_a_publish_is_seen() {
        let shared = Arc::new(Owners::default());
        let lo = IpAddr::from([127, 0, 0, 1]);
        shared.publish(&[], &[]);
        let mut v = View::new(Arc::clone(&shared));
        let mut p = pkt([127, 0, 0, 1], 41000, [127, 0, 0, 1], 9000);
        v.attribute(&mut p);
        assert_eq!(p.pid, None);
        assert!(shared.wanted.swap(false, Ordering::Relaxed));
        shared.publish(&[sock(9000, 7, lo)], &[]);
        v.attribute(&mut p);
        assert_eq!(p.pid, Some(7));
    }
}
