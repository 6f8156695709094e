//! Learning while an incident is open: a round an incident covers is learnt with the
//! incident's actor left out — the new listener's sockets and packets, the remote
//! network's packets, the domain's queries — so the daily cycle keeps being learnt
//! without the incident being learnt. An incident that names no actor (a group of
//! features, a sustained shift, connections repeated at one of the host's services)
//! cannot be left out, and neither can a known local
//! process: the busiest one is usually the host's own main service, and learning the
//! host without it would teach the model an empty host. Their rounds wait until someone
//! accepts the incident. A program never seen before is no such service: its sockets
//! and packets are left out.

use std::net::IpAddr;

use portwatch_features::{PktRow, SockRow};

use crate::incidents::rules::mask as net_mask;

/// One actor to leave out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Actor {
    Listener {
        tcp: bool,
        port: u16,
    },
    Network {
        net: IpAddr,
        prefix: u8,
    },
    Domain(String),
    /// A new program: its sockets and its packets, by process name.
    Program(String),
}

impl Actor {
    /// The actor of an incident's (kind, cause), or None when it names none.
    pub(super) fn of(kind: &str, cause: &str) -> Option<Actor> {
        match kind {
            "new_listener" => {
                let (proto, port) = cause.split_once('/')?;
                Some(Actor::Listener {
                    tcp: proto == "tcp",
                    port: port.parse().ok()?,
                })
            }
            // Repeated connections (`NET tcp/PORT`) leave the forked servers' sockets
            // behind (sshd's TIME_WAIT by the hundred), which no address mask removes:
            // learnt with the network left out, a workstation's SSH burst taught the
            // model those sockets without their traffic, and two days of false
            // "unusual sockets" followed. They wait for accept, as a feature group does.
            "remote_source" if cause.contains(' ') => None,
            "remote_source" => Actor::network(cause),
            // The host's ICMP with one peer (`icmp NET`, a tunnel over pings): that
            // network's packets, as for a remote source. Learnt with the wrong network
            // left out (the busiest Google one, named before ICMP had a cause of its
            // own), a tunnel's rounds taught the model a browser without Google, and
            // workstation week 924 had seven more false incidents the next morning.
            // A ping sweep (`icmp sweep`) reaches whole networks: its rounds wait.
            "local_process" => Actor::network(cause.strip_prefix("icmp ")?),
            "dns" => Some(Actor::Domain(cause.to_ascii_lowercase())),
            "new_program" => Some(Actor::Program(cause.to_string())),
            _ => None,
        }
    }

    /// A network written `ADDR/PREFIX`.
    fn network(cidr: &str) -> Option<Actor> {
        let (addr, prefix) = cidr.split_once('/')?;
        Some(Actor::Network {
            net: addr.parse().ok()?,
            prefix: prefix.parse().ok()?,
        })
    }
}

/// The actors to leave out of one round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Mask(pub(super) Vec<Actor>);

impl Mask {
    /// Whether a socket-table row stays.
    pub(super) fn keeps_socket(&self, s: &SockRow) -> bool {
        !self.0.iter().any(|a| match a {
            Actor::Listener { tcp, port } => s.tcp == *tcp && s.port == *port,
            Actor::Program(p) => s.process.as_deref() == Some(p.as_str()),
            _ => false,
        })
    }

    /// Whether a packet stays.
    pub(super) fn keeps_packet(&self, p: &PktRow<'_>) -> bool {
        !self.0.iter().any(|a| match a {
            Actor::Listener { tcp, port } => {
                let layer = if *tcp { ":tcp" } else { ":udp" };
                p.protocols.contains(layer) && (p.sport == Some(*port) || p.dport == Some(*port))
            }
            Actor::Network { net, prefix } => [p.src, p.dst].into_iter().flatten().any(|a| {
                a.parse::<IpAddr>().is_ok_and(|a| {
                    let a = a.to_canonical();
                    a.is_ipv4() == net.is_ipv4() && net_mask(a, *prefix) == *net
                })
            }),
            Actor::Domain(d) => p.qry_name.is_some_and(|q| {
                let q = q.trim_end_matches('.').to_ascii_lowercase();
                q == *d || q.ends_with(&format!(".{d}"))
            }),
            Actor::Program(name) => p.process == Some(name.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt<'a>(
        src: &'a str,
        dst: &'a str,
        sport: u16,
        dport: u16,
        qry: Option<&'a str>,
    ) -> PktRow<'a> {
        PktRow {
            protocols: "eth:ipv4:tcp",
            src: Some(src),
            dst: Some(dst),
            sport: Some(sport),
            dport: Some(dport),
            qry_name: qry,
            ..Default::default()
        }
    }

    #[test]
    fn each_actor_leaves_out_its_own_rows_only() {
        let m = Mask(vec![
            Actor::of("new_listener", "tcp/4444").unwrap(),
            Actor::of("remote_source", "203.0.113.0/24").unwrap(),
            Actor::of("dns", "evil.example").unwrap(),
        ]);
        assert!(!m.keeps_packet(&pkt("10.0.0.1", "10.0.0.2", 50000, 4444, None)));
        assert!(!m.keeps_packet(&pkt("203.0.113.9", "10.0.0.1", 40000, 22, None)));
        assert!(!m.keeps_packet(&pkt(
            "10.0.0.1",
            "10.0.0.53",
            5353,
            53,
            Some("x1.t.Evil.example")
        )));
        assert!(m.keeps_packet(&pkt(
            "198.51.100.1",
            "10.0.0.1",
            40000,
            22,
            Some("example.com")
        )));
        let sock = |port: u16, tcp: bool, process: Option<&str>| SockRow {
            ts: 0,
            port,
            tcp,
            state: "LISTEN".into(),
            sockets: 1,
            process: process.map(str::to_string),
        };
        assert!(!m.keeps_socket(&sock(4444, true, Some("nc"))));
        assert!(
            m.keeps_socket(&sock(4444, false, Some("nc"))),
            "udp/4444 is another port"
        );
        assert_eq!(Actor::of("features", "scan"), None);
        assert_eq!(Actor::of("sustained", "scores"), None);
        assert_eq!(
            Actor::of("remote_source", "203.0.113.0/24 tcp/22"),
            None,
            "repeated connections leave sockets no mask removes"
        );
        assert_eq!(Actor::of("local_process", "nginx"), None, "never masked");
        assert_eq!(
            Actor::of("local_process", "icmp sweep"),
            None,
            "whole networks"
        );
        let tunnel = Mask(vec![
            Actor::of("local_process", "icmp 203.0.113.0/24").unwrap(),
        ]);
        let mut ping = pkt("10.0.0.1", "203.0.113.50", 0, 0, None);
        ping.protocols = "eth:ipv4:icmp";
        (ping.sport, ping.dport) = (None, None);
        assert!(!tunnel.keeps_packet(&ping));
        ping.dst = Some("198.51.100.1");
        assert!(tunnel.keeps_packet(&ping), "the monitor's ping stays");
        let beacon = Mask(vec![Actor::of("new_program", "kworker-upd").unwrap()]);
        let mut p = pkt("10.0.0.1", "198.51.100.7", 41000, 443, None);
        assert!(beacon.keeps_packet(&p), "unattributed");
        p.process = Some("kworker-upd");
        assert!(!beacon.keeps_packet(&p));
        p.process = Some("nginx");
        assert!(beacon.keeps_packet(&p));
        let mut s = sock(41000, true, Some("kworker-upd"));
        s.state = "ESTABLISHED".into();
        assert!(!beacon.keeps_socket(&s));
        assert!(beacon.keeps_socket(&sock(80, true, Some("nginx"))));
    }
}
