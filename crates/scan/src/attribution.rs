//! Which local process owns a packet: the collector's scanner thread publishes a map
//! of local endpoints to owners at each sample, and its sniffer thread looks packets
//! up in its own copy ([`View`]).
//!
//! The sniffer must never wait for the scanner (it keeps up with 100k packets/s), so the
//! map is swapped whole behind a generation counter and the sniffer re-reads it only
//! when the counter moved. A local port the map does not know at all asks the scanner
//! for an early sample, once per port per scan interval, so a connection opened
//! mid-round is attributed from then on without a port scan against the host turning
//! into a rescan storm.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::socket::Socket;
use portwatch_capture::{Packet, Transport};

/// (network namespace, protocol, local address, local port) → owner; `None` for a
/// socket the table shows but whose process is not visible (another user's, the
/// kernel's). Wildcard listeners are keyed by the unspecified address of their family,
/// within their namespace (`None`: the host's own), so a container's `0.0.0.0:80` and
/// the host's stay apart.
type Owner = (u32, Option<Arc<str>>);
type Map = HashMap<(Option<u64>, Transport, IpAddr, u16), Option<Owner>>;
/// A local address → the namespace it belongs to (`None`: the host's own).
type Locals = HashMap<IpAddr, Option<u64>>;

/// Shared between the scanner (writer of the map) and the sniffer (reader).
#[derive(Default)]
pub struct SharedOwners {
    map: Mutex<Arc<Map>>,
    local: Mutex<Arc<Locals>>,
    generation: AtomicU64,
    /// Moves only with the regular samples, which reset the sniffer's "already asked"
    /// set.
    samples: AtomicU64,
    /// Set by the sniffer on a miss; the scanner samples early and clears it.
    pub wanted: AtomicBool,
}

impl SharedOwners {
    /// Publishes the owners seen in a sample (`regular`: one of the round's samples, not
    /// an early refresh), plus the host's own addresses (those of its sockets and of
    /// its interfaces), which tell which end of a packet is local.
    pub fn publish(
        &self,
        sockets: &[Socket],
        interface_addrs: &[IpAddr],
        namespace_addrs: &[(u64, IpAddr)],
        regular: bool,
    ) {
        let mut map = Map::with_capacity(sockets.len());
        // The host's addresses first: an address in several namespaces (every one has
        // its 127.0.0.1) is the host's, whose traffic the capture mostly sees.
        let mut local: Locals = interface_addrs
            .iter()
            .map(|a| (a.to_canonical(), None))
            .collect();
        for &(ns, a) in namespace_addrs {
            local.entry(a.to_canonical()).or_insert(Some(ns));
        }
        for s in sockets {
            let addr = s.local_addr.to_canonical();
            if !addr.is_unspecified() {
                local.entry(addr).or_insert(s.netns);
            }
            let owner = s.pid.map(|pid| (pid, s.process.clone()));
            // Listeners and their accepted sockets share an endpoint and a process; a
            // socket with a visible owner wins over one without.
            let e = map
                .entry((s.netns, s.transport, addr, s.local_port))
                .or_insert(None);
            if e.is_none() {
                *e = owner;
            }
        }
        if let Ok(mut m) = self.map.lock() {
            *m = Arc::new(map);
        }
        if let Ok(mut l) = self.local.lock() {
            *l = Arc::new(local);
        }
        if regular {
            self.samples.fetch_add(1, Ordering::Release);
        }
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// The sniffer's view: a snapshot refreshed when the scanner publishes.
pub struct View {
    shared: Arc<SharedOwners>,
    seen: u64,
    seen_samples: u64,
    map: Arc<Map>,
    local: Arc<Locals>,
    asked: HashSet<(Transport, u16)>,
}

impl View {
    pub fn new(shared: Arc<SharedOwners>) -> View {
        View {
            shared,
            seen: u64::MAX,
            seen_samples: u64::MAX,
            map: Arc::default(),
            local: Arc::default(),
            asked: HashSet::new(),
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
            let s = self.shared.samples.load(Ordering::Acquire);
            if s != self.seen_samples {
                self.seen_samples = s;
                self.asked.clear();
            }
        }
    }

    /// The socket entry for a local endpoint, in the namespace its address belongs to:
    /// the exact address, else a wildcard listener of its family (an IPv6 wildcard
    /// also takes IPv4 unless v6only).
    fn lookup(&self, t: Transport, addr: IpAddr, port: u16) -> Option<&Option<Owner>> {
        let ns = self.local.get(&addr).copied().flatten();
        let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let wild: &[IpAddr] = if addr.is_ipv4() {
            &[any4, any6]
        } else {
            &[any6]
        };
        std::iter::once(&addr)
            .chain(wild)
            .find_map(|a| self.map.get(&(ns, t, *a, port)))
    }

    /// Fills `pid` and `process` from the local end of the packet: the sender when the
    /// source address is local, else the receiver (both ends of loopback traffic are
    /// local; the sender is the one that made it).
    pub fn attribute(&mut self, p: &mut Packet) {
        self.refresh();
        let Some(t) = p.transport else { return };
        let mut missed = None;
        for (addr, port) in [(p.src_addr, p.src_port), (p.dst_addr, p.dst_port)] {
            let (Some(addr), Some(port)) = (addr, port) else {
                continue;
            };
            let addr = addr.to_canonical();
            if !(addr.is_loopback() || self.local.contains_key(&addr)) {
                continue;
            }
            match self.lookup(t, addr, port) {
                Some(Some((pid, process))) => {
                    p.pid = Some(*pid);
                    p.process = process.clone();
                    return;
                }
                // Known socket, owner not visible: nothing a rescan would change.
                Some(None) => {}
                None => missed = missed.or(Some(port)),
            }
        }
        if let Some(port) = missed
            && self.asked.insert((t, port))
        {
            self.shared.wanted.store(true, Ordering::Relaxed);
        }
    }
}

/// The addresses of the host's interfaces (`getifaddrs`), so traffic to an address
/// with only wildcard listeners is still seen as local.
pub fn interface_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let sa = (*cur).ifa_addr;
            if !sa.is_null() {
                match i32::from((*sa).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(sa as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(sa as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(t: Transport, addr: IpAddr, port: u16, pid: Option<u32>) -> Socket {
        Socket {
            transport: t,
            family: if addr.is_ipv4() { 4 } else { 6 },
            local_addr: addr,
            local_port: port,
            remote_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            remote_port: 0,
            state: "LISTEN",
            uid: 0,
            inode: 1,
            pid,
            process: pid.map(|p| Arc::from(format!("p{p}"))),
            exe: None,
            netns: None,
            container: None,
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

    const TCP: Transport = Transport::Tcp;

    #[test]
    fn the_local_end_decides_and_a_remote_port_never_matches_a_local_service() {
        let shared = Arc::new(SharedOwners::default());
        let me = IpAddr::from([10, 0, 0, 5]);
        // nginx listens on *:443; a browser has 50000 open to a remote 443.
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        shared.publish(
            &[sock(TCP, any, 443, Some(1)), sock(TCP, me, 50000, Some(2))],
            &[me],
            &[],
            true,
        );
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
        assert_eq!(
            (outgoing.pid, outgoing.process.as_deref()),
            (Some(2), Some("p2"))
        );
        let mut to_nginx = pkt([93, 184, 216, 34], 40000, [10, 0, 0, 5], 443);
        v.attribute(&mut to_nginx);
        assert_eq!(to_nginx.pid, Some(1), "the wildcard listener owns it");
        assert!(!shared.wanted.load(Ordering::Relaxed));
    }

    #[test]
    fn services_bound_to_different_addresses_on_one_port_are_told_apart() {
        let shared = Arc::new(SharedOwners::default());
        let resolved = IpAddr::from([127, 0, 0, 53]);
        let lan = IpAddr::from([192, 168, 1, 1]);
        shared.publish(
            &[
                sock(TCP, resolved, 53, Some(10)),
                sock(TCP, lan, 53, Some(20)),
            ],
            &[lan],
            &[],
            true,
        );
        let mut v = View::new(Arc::clone(&shared));
        let mut a = pkt([127, 0, 0, 1], 40000, [127, 0, 0, 53], 53);
        v.attribute(&mut a);
        assert_eq!(a.pid, Some(10));
        let mut b = pkt([192, 168, 1, 7], 40000, [192, 168, 1, 1], 53);
        v.attribute(&mut b);
        assert_eq!(b.pid, Some(20));
        // A dual-stack [::] listener takes IPv4 traffic; mapped addresses count as IPv4.
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        shared.publish(&[sock(TCP, any6, 8080, Some(30))], &[lan], &[], true);
        let mut c = pkt([192, 168, 1, 7], 40000, [192, 168, 1, 1], 8080);
        v.attribute(&mut c);
        assert_eq!(c.pid, Some(30));
    }

    #[test]
    fn a_miss_asks_once_per_port_per_sample_and_unowned_sockets_never_ask() {
        let shared = Arc::new(SharedOwners::default());
        let lo = IpAddr::from([127, 0, 0, 1]);
        shared.publish(&[sock(TCP, lo, 7000, None)], &[], &[], true);
        let mut v = View::new(Arc::clone(&shared));
        let mut p = pkt([10, 9, 9, 9], 41000, [127, 0, 0, 1], 7000);
        v.attribute(&mut p);
        assert_eq!(p.pid, None);
        assert!(
            !shared.wanted.load(Ordering::Relaxed),
            "a known socket without owner"
        );

        let mut p = pkt([127, 0, 0, 1], 41000, [127, 0, 0, 1], 9000);
        v.attribute(&mut p);
        assert!(shared.wanted.swap(false, Ordering::Relaxed));
        // An early refresh that still does not know the port: no second request.
        shared.publish(&[], &[], &[], false);
        v.attribute(&mut p);
        assert!(!shared.wanted.load(Ordering::Relaxed));
        // The next regular sample knows it.
        shared.publish(&[sock(TCP, lo, 9000, Some(7))], &[], &[], true);
        v.attribute(&mut p);
        assert_eq!(p.pid, Some(7));
    }

    /// A container's wildcard listener and the host's on the same port stay apart: a
    /// packet to the container's address is its process's, one to the host's the
    /// host's, and loopback (every namespace has one) is the host's.
    #[test]
    fn each_namespace_has_its_own_wildcard_listeners() {
        let shared = Arc::new(SharedOwners::default());
        let any = IpAddr::from([0, 0, 0, 0]);
        let (lan, container) = (
            IpAddr::from([192, 168, 1, 1]),
            IpAddr::from([172, 17, 0, 2]),
        );
        let mut inside = sock(TCP, any, 80, Some(2));
        inside.netns = Some(4_026_532_281);
        shared.publish(
            &[sock(TCP, any, 80, Some(1)), inside],
            &[lan, IpAddr::from([127, 0, 0, 1])],
            &[
                (4_026_532_281, container),
                (4_026_532_281, IpAddr::from([127, 0, 0, 1])),
            ],
            true,
        );
        let mut v = View::new(Arc::clone(&shared));
        let mut to_container = pkt([172, 17, 0, 1], 40000, [172, 17, 0, 2], 80);
        v.attribute(&mut to_container);
        assert_eq!(to_container.pid, Some(2));
        let mut to_host = pkt([192, 168, 1, 7], 40000, [192, 168, 1, 1], 80);
        v.attribute(&mut to_host);
        assert_eq!(to_host.pid, Some(1));
        let mut lo = pkt([127, 0, 0, 1], 40000, [127, 0, 0, 1], 80);
        v.attribute(&mut lo);
        assert_eq!(lo.pid, Some(1));
    }

    #[test]
    fn interface_addresses_include_loopback() {
        assert!(interface_addrs().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
