//! Injected events: each is planned whole when the call starts, from its own random
//! stream, and adds only what the attack itself would add to the host's sockets and
//! traffic. Its activity interval decides which rounds get a `labels` row.

use std::net::{IpAddr, Ipv4Addr};

use portwatch_capture::{Packet, Transport};

use crate::config::EventKind;
use crate::host::{Host, MINUTE, SITE, ephemeral, is_open, random_public_v4};
use crate::net::{Flow, Owner, SEC, Sock, TcpSession, dns_exchange, syn_probe};
use crate::rng::{Rng, stream};
use portwatch_features::listen_bucket;

/// One planned event: its interval, label and everything it adds.
pub(crate) struct Event {
    pub kind: EventKind,
    pub id: i64,
    /// Activity interval `[start, end)`, microseconds.
    pub start: i64,
    pub end: i64,
    pub note: String,
    pub socks: Vec<Sock>,
    pub packets: Vec<Packet>,
}

impl Event {
    /// Whether the event is active during `[from, to)`.
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        self.start < to && from < self.end
    }
}

const BACKDOOR_PORTS: [u16; 8] = [4444, 1337, 31337, 6667, 8081, 5555, 12345, 50050];
const BACKDOOR_NAMES: [&str; 4] = ["kdevtmpfsi", "sysupdate", "kworker-netd", "dbus-helper"];
const TUNNEL_DOMAINS: [&str; 3] = [
    "t.cdn-sync.net",
    "ns1.updates-cloud.com",
    "d.metrics-relay.org",
];
/// Ports of the host's TCP listeners, for `backdoor-collide` to collide with.
const LISTENER_PORTS: [u16; 7] = [22, 53, 80, 443, 5432, 8000, 9100];

/// Plans an event of `kind` starting at `start` (microseconds).
pub(crate) fn plan(kind: EventKind, id: i64, start: i64, host: &Host) -> Event {
    let mut r = Rng::new(host.seed, stream::EVENT, start ^ ((kind as i64) << 56));
    let mut ev = Event {
        kind,
        id,
        start,
        end: start,
        note: String::new(),
        socks: Vec::new(),
        packets: Vec::new(),
    };
    match kind {
        EventKind::Portscan => portscan(&mut ev, &mut r, host),
        EventKind::Slowscan => slowscan(&mut ev, &mut r, host),
        EventKind::Backdoor => backdoor(&mut ev, &mut r, host, false),
        EventKind::BackdoorCollide => backdoor(&mut ev, &mut r, host, true),
        EventKind::Burst => burst(&mut ev, &mut r, host),
        EventKind::Dnstunnel => dnstunnel(&mut ev, &mut r, host, false),
        EventKind::DnstunnelSlow => dnstunnel(&mut ev, &mut r, host, true),
    }
    ev
}

/// `n` distinct ports drawn from `1..=max`, in random order.
fn distinct_ports(r: &mut Rng, n: usize, max: u16) -> Vec<u16> {
    let mut seen = vec![false; usize::from(max) + 1];
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n.min(usize::from(max)) {
        let p = r.between(1, u64::from(max)) as u16;
        if !seen[usize::from(p)] {
            seen[usize::from(p)] = true;
            ports.push(p);
        }
    }
    ports
}

/// A SYN scan (nmap -sS): one source, one source port, 600–1200 ports in 200 s.
fn portscan(ev: &mut Event, r: &mut Rng, host: &Host) {
    let attacker = random_public_v4(r);
    let sport = r.between(33_000, 65_000) as u16;
    let n = r.between(600, 1200) as usize;
    let dur = 200 * SEC;
    for (i, port) in distinct_ports(r, n, 65_535).into_iter().enumerate() {
        let ts = ev.start + i as i64 * dur / n as i64 + r.below(50_000) as i64;
        let flow = probe_flow(host, attacker, sport, port);
        syn_probe(&flow, ts, is_open(port), &mut ev.packets);
    }
    ev.end = ev.start + dur + SEC;
    ev.note = format!("SYN scan from {attacker}: {n} ports in 200 s");
}

/// One port every 10 s for an hour, from a fresh source port each time.
fn slowscan(ev: &mut Event, r: &mut Rng, host: &Host) {
    let attacker = random_public_v4(r);
    let ports = distinct_ports(r, 360, 10_000);
    for (i, &port) in ports.iter().enumerate() {
        let ts = ev.start + i as i64 * 10 * SEC + r.below(SEC as u64) as i64;
        let flow = probe_flow(host, attacker, ephemeral(r), port);
        syn_probe(&flow, ts, is_open(port), &mut ev.packets);
    }
    ev.end = ev.start + 3600 * SEC;
    ev.note = format!("slow SYN scan from {attacker}: one port every 10 s for an hour");
}

fn probe_flow(host: &Host, attacker: IpAddr, sport: u16, port: u16) -> Flow {
    Flow {
        transport: Transport::Tcp,
        local: host.addr4,
        local_port: port,
        remote: attacker,
        remote_port: sport,
        owner: None,
    }
}

/// A new process listens for 40 minutes; the attacker keeps a control connection and
/// (plain backdoor) pulls data out twice. The colliding variant listens on a port
/// whose bucket an existing listener already fills, calls itself `sshd` and stays
/// quiet.
fn backdoor(ev: &mut Event, r: &mut Rng, host: &Host, collide: bool) {
    let dur = 40 * MINUTE;
    let attacker = random_public_v4(r);
    let pid = r.between(20_000, 39_999) as u32;
    let (port, owner, note) = if collide {
        let target = *r.pick(&LISTENER_PORTS);
        let port = colliding_port(r, target);
        let owner = Owner::new(pid, "sshd");
        let note = format!(
            "process sshd (pid {pid}) listens on tcp/{port}, bucket {} like tcp/{target}; quiet control connection from {attacker}",
            listen_bucket(port)
        );
        (port, owner, note)
    } else {
        let port = *r.pick(&BACKDOOR_PORTS);
        let name = *r.pick(&BACKDOOR_NAMES);
        let owner = Owner::new(pid, name);
        let note = format!(
            "new process {name} (pid {pid}) listens on tcp/{port}; {attacker} connects and pulls data"
        );
        (port, owner, note)
    };
    ev.end = ev.start + dur;
    ev.note = note;
    ev.socks.push(Sock {
        transport: Transport::Tcp,
        local: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        local_port: port,
        remote: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        remote_port: 0,
        start: ev.start,
        end: ev.end,
        open_state: "LISTEN",
        time_wait: false,
        owner: Some(owner.clone()),
    });
    let flow = Flow {
        transport: Transport::Tcp,
        local: host.addr4,
        local_port: port,
        remote: attacker,
        remote_port: ephemeral(r),
        owner: Some(owner),
    };
    let ctrl_start = ev.start + r.between(20, 90) as i64 * SEC;
    let session = TcpSession {
        start: ctrl_start,
        duration: ev.end - 30 * SEC - ctrl_start,
        rtt: 60_000,
        local_is_client: false,
        sni: None,
        data: if collide { 40 } else { 160 },
        client_share: 0.5,
        local_closes: false,
    };
    ev.socks.push(session.emit(&flow, r, &mut ev.packets));
    if !collide {
        for k in 1..=2 {
            let t0 = ev.start + k * 12 * MINUTE + r.below(MINUTE as u64) as i64;
            let n = r.between(300, 1500);
            for i in 0..n as i64 {
                let ts = t0 + i * 40 * SEC / n as i64;
                ev.packets
                    .push(flow.packet(ts, true, 1514, Some(0x10), None));
                if i % 2 == 0 {
                    ev.packets
                        .push(flow.packet(ts + 60_000, false, 66, Some(0x10), None));
                }
            }
        }
    }
}

/// A port above 1023 that is not one of the host's and shares the detector's listening
/// bucket ([`listen_bucket`]) with `target`.
pub(crate) fn colliding_port(r: &mut Rng, target: u16) -> u16 {
    let taken = |p: u16| LISTENER_PORTS.contains(&p) || p == 68 || p == 323;
    let same: Vec<u16> = (1024..=65_535u16)
        .filter(|&p| !taken(p) && listen_bucket(p) == listen_bucket(target))
        .collect();
    *r.pick(&same)
}

/// Five minutes of a connection flood to HTTPS from one /24: at least ten times the
/// usual connection rate (300 a minute at the least), short sessions, many closed by
/// nginx, so ESTABLISHED and TIME_WAIT pile up on port 443.
fn burst(ev: &mut Event, r: &mut Rng, host: &Host) {
    let dur = 5 * MINUTE;
    let net = match random_public_v4(r) {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [185, 220, 101, 0],
    };
    let mut total = 0u64;
    for m in 0..5 {
        let t = ev.start + m * MINUTE;
        let normal = host.normal_https_connections(t);
        let n = r.poisson((10.0 * normal).max(300.0));
        total += n;
        for _ in 0..n {
            let remote = IpAddr::V4(Ipv4Addr::new(
                net[0],
                net[1],
                net[2],
                r.between(2, 41) as u8,
            ));
            let flow = Flow {
                transport: Transport::Tcp,
                local: host.addr4,
                local_port: 443,
                remote,
                remote_port: ephemeral(r),
                owner: Some(r.pick(&host.nginx).clone()),
            };
            let s = TcpSession {
                start: t + r.below(MINUTE as u64) as i64,
                duration: (r.lognormal(3.0, 0.7).min(50.0) * SEC as f64) as i64,
                rtt: (r.lognormal(30.0, 0.3) * 1000.0) as i64,
                local_is_client: false,
                sni: Some(SITE),
                data: r.between(2, 6) as u32,
                client_share: 0.4,
                local_closes: r.chance(0.7),
            };
            ev.socks.push(s.emit(&flow, r, &mut ev.packets));
        }
    }
    ev.end = ev.start + dur;
    ev.note = format!(
        "{total} HTTPS connections in 5 min from {}.{}.{}.0/24",
        net[0], net[1], net[2]
    );
}

/// DNS tunnelling through the local resolver to one domain: iodine-like base32 labels.
/// The fast one sends 300–600 queries a minute for 10 minutes; the slow one sends at the
/// host's own lookup rate for an hour, with shorter names.
fn dnstunnel(ev: &mut Event, r: &mut Rng, host: &Host, slow: bool) {
    let domain = *r.pick(&TUNNEL_DOMAINS);
    let minutes = if slow { 60 } else { 10 };
    let pid = r.between(20_000, 39_999) as u32;
    let process = if slow { "python3" } else { "iodine" };
    ev.end = ev.start + minutes * MINUTE;
    ev.socks.push(Sock {
        transport: Transport::Udp,
        local: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_port: ephemeral(r),
        remote: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)),
        remote_port: 53,
        start: ev.start,
        end: ev.end,
        open_state: "ESTABLISHED",
        time_wait: false,
        owner: Some(Owner::new(pid, process)),
    });
    let mut total = 0u64;
    let mut name = String::with_capacity(160);
    for m in 0..minutes {
        let t = ev.start + m * MINUTE;
        let n = if slow {
            r.poisson(host.expected_lookups(t)).max(1)
        } else {
            r.between(300, 600)
        };
        total += n;
        for _ in 0..n {
            name.clear();
            let (lo, hi) = if slow { (28, 40) } else { (50, 63) };
            push_base32(r, &mut name, lo, hi);
            if !slow && r.chance(0.6) {
                name.push('.');
                push_base32(r, &mut name, 20, 40);
            }
            name.push('.');
            name.push_str(domain);
            let ts = t + r.below(MINUTE as u64) as i64;
            let flow = Flow {
                transport: Transport::Udp,
                local: host.addr4,
                local_port: ephemeral(r),
                remote: host.resolver,
                remote_port: 53,
                owner: None,
            };
            let rtt = r.between(20_000, 90_000) as i64;
            let answer = r.between(60, 220) as u32;
            dns_exchange(
                &flow,
                ts,
                rtt,
                &name,
                Some(name.clone()),
                answer,
                &mut ev.packets,
            );
        }
    }
    ev.note = format!(
        "{process} (pid {pid}) tunnels through DNS to {domain}: {total} queries in {minutes} min"
    );
}

/// Appends a random base32 label of `lo..=hi` characters.
fn push_base32(r: &mut Rng, s: &mut String, lo: u64, hi: u64) {
    let len = r.between(lo, hi);
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    for _ in 0..len {
        s.push(char::from(ALPHABET[r.below(32) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_port_collides() {
        let mut r = Rng::new(1, 2, 3);
        for target in LISTENER_PORTS {
            let p = colliding_port(&mut r, target);
            assert!(p >= 1024 && !LISTENER_PORTS.contains(&p));
            assert_eq!(listen_bucket(p), listen_bucket(target));
        }
    }

    #[test]
    fn distinct_ports_are_distinct() {
        let mut r = Rng::new(1, 2, 3);
        let mut p = distinct_ports(&mut r, 500, 1000);
        assert_eq!(p.len(), 500);
        p.sort_unstable();
        p.dedup();
        assert_eq!(p.len(), 500);
    }
}
