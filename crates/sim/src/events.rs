//! Injected events: each is planned when the call starts, from its own random
//! stream, and adds only what the attack itself would add to the host's sockets and
//! traffic. Its activity interval decides which rounds get a `labels` row.
//!
//! Most events are planned whole. Those too large to hold in memory at once (an upload
//! of a gigabyte, a flood of 200,000 SYNs) or open-ended (a deployed service) make
//! their traffic minute by minute ([`Ongoing`]); an outage takes away rather than adds
//! ([`Down`], applied by the run loop to the host's sockets and packets).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portwatch_capture::{Layer, Packet, Transport};
use portwatch_scan::Socket;

use crate::config::{EventKind, Profile};
use crate::host::{Host, MINUTE, Role, SITE, ephemeral, icmp, random_public_v4};
use crate::net::{Flow, Owner, SEC, Sock, TcpSession, dns_exchange, flags, syn_probe};
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
    /// Traffic made minute by minute by [`Event::minute`].
    pub ongoing: Option<Ongoing>,
    /// A service of the host that is down during the event.
    pub down: Option<Down>,
    /// What the event changes in the host's own sockets and packets while it lasts.
    pub rewrite: Option<Rewrite>,
}

impl Event {
    /// Whether the event is active during `[from, to)`.
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        self.start < to && from < self.end
    }

    /// Adds the event's traffic of the minute starting at `t` (events planned whole
    /// add nothing here).
    pub fn minute(&mut self, host: &Host, t: i64, socks: &mut Vec<Sock>, out: &mut Vec<Packet>) {
        match &mut self.ongoing {
            None => {}
            Some(Ongoing::Upload(u)) => u.minute(host, t, out),
            Some(Ongoing::Flood(f)) => f.minute(host, t, socks, out),
            Some(Ongoing::Deploy(d)) => d.minute(host, t, socks, out),
            Some(Ongoing::UdpFlood(f)) => f.minute(host, t, out),
        }
    }
}

/// The state of an event that makes its traffic minute by minute.
pub(crate) enum Ongoing {
    Upload(Upload),
    Flood(Flood),
    Deploy(Deploy),
    UdpFlood(UdpFlood),
}

/// A service of the host that stops during `[start, end)`: the scanner no longer sees
/// its listeners, its connections or its processes' sockets, and its traffic stops —
/// except the clients' SYNs, which the kernel now answers with RST.
pub(crate) struct Down {
    pub port: u16,
    /// The service's processes (a master and its workers): their sockets and packets
    /// go with them.
    pub pids: Vec<u32>,
    pub start: i64,
    pub end: i64,
}

impl Down {
    pub fn active(&self, t: i64) -> bool {
        (self.start..self.end).contains(&t)
    }

    /// Whether `s` belongs to the stopped service: its listeners and accepted
    /// connections (local port), the client side of connections to it over loopback,
    /// and anything its processes own.
    pub fn hides(&self, s: &Socket) -> bool {
        let on_port = s.transport == Transport::Tcp
            && (s.local_port == self.port
                || (s.remote_port == self.port && s.remote_addr.is_loopback()));
        on_port || s.pid.is_some_and(|p| self.pids.contains(&p))
    }

    /// What becomes of a packet of the host while the service is down: kept
    /// (`Some(None)`), kept with the kernel's RST-ACK answer (`Some(Some(rst))`, for a
    /// SYN to the port) or dropped (`None`).
    pub fn filter(&self, host: &Host, p: &Packet) -> Option<Option<Packet>> {
        if !self.active(p.ts_micros) {
            return Some(None);
        }
        let tcp = p.transport == Some(Transport::Tcp);
        let to_port =
            tcp && p.dst_port == Some(self.port) && p.dst_addr.is_some_and(|a| host.is_local(a));
        let from_port =
            tcp && p.src_port == Some(self.port) && p.src_addr.is_some_and(|a| host.is_local(a));
        if to_port {
            if p.tcp_flags != Some(flags::SYN) {
                return None;
            }
            let (Some(src), Some(dst), Some(sport)) = (p.src_addr, p.dst_addr, p.src_port) else {
                return None;
            };
            let flow = Flow {
                transport: Transport::Tcp,
                local: dst,
                local_port: self.port,
                remote: src,
                remote_port: sport,
                owner: None,
            };
            let rst = flow.packet(
                p.ts_micros + 120,
                true,
                54,
                Some(flags::RST | flags::ACK),
                None,
            );
            return Some(Some(rst));
        }
        if from_port || p.pid.is_some_and(|pid| self.pids.contains(&pid)) {
            return None;
        }
        Some(None)
    }
}

/// A change to the host's own sockets and packets during `[start, end)`, applied by
/// the run loop to each round.
pub(crate) struct Rewrite {
    pub start: i64,
    pub end: i64,
    pub swap: Swap,
}

/// What a [`Rewrite`] changes.
pub(crate) enum Swap {
    /// A program of the host's replaced by an impostor of the same name: every socket
    /// of the program shows the impostor's executable and user, its listening master
    /// the impostor's pid, and the master's packets that pid; everything else (port,
    /// clients, traffic, the sessions' own processes) is as before.
    Impostor {
        process: &'static str,
        /// The real master's pid.
        master: u32,
        impostor: Owner,
    },
    /// The host's DNS answered by another resolver: queries to the usual resolver's
    /// port 53 go to `to`, and the answers come from it.
    Resolver { from: IpAddr, to: IpAddr },
}

impl Rewrite {
    pub fn active(&self, t: i64) -> bool {
        (self.start..self.end).contains(&t)
    }

    /// Whether the rewrite overlaps `[from, to)`.
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        self.start < to && from < self.end
    }

    /// Changes a socket sampled while the rewrite is active.
    pub fn socket(&self, s: &mut Socket) {
        match &self.swap {
            Swap::Impostor {
                process,
                master,
                impostor,
            } => {
                if s.process.as_deref() != Some(*process) {
                    return;
                }
                s.exe = Some(impostor.exe.clone());
                s.uid = impostor.uid;
                if s.pid == Some(*master) {
                    s.pid = Some(impostor.pid);
                }
            }
            Swap::Resolver { from, to } => {
                if s.remote_addr == *from && s.remote_port == 53 {
                    s.remote_addr = *to;
                }
            }
        }
    }

    /// Changes a packet, if it falls while the rewrite is active.
    pub fn packet(&self, p: &mut Packet) {
        if !self.active(p.ts_micros) {
            return;
        }
        match &self.swap {
            Swap::Impostor {
                master, impostor, ..
            } => {
                if p.pid == Some(*master) {
                    p.pid = Some(impostor.pid);
                }
            }
            Swap::Resolver { from, to } => {
                if p.dst_addr == Some(*from) && p.dst_port == Some(53) {
                    p.dst_addr = Some(*to);
                } else if p.src_addr == Some(*from) && p.src_port == Some(53) {
                    p.src_addr = Some(*to);
                }
            }
        }
    }
}

const BACKDOOR_PORTS: [u16; 8] = [4444, 1337, 31337, 6667, 8081, 5555, 12345, 50050];
const BACKDOOR_NAMES: [&str; 4] = ["kdevtmpfsi", "sysupdate", "kworker-netd", "dbus-helper"];
const TUNNEL_DOMAINS: [&str; 3] = [
    "t.cdn-sync.net",
    "ns1.updates-cloud.com",
    "d.metrics-relay.org",
];
/// Ports of the server's TCP listeners, which `backdoor-collide` collides with (the
/// host's own list, [`Host::tcp_listen_ports`], must keep giving these on the server).
#[cfg(test)]
const LISTENER_PORTS: [u16; 7] = [22, 53, 80, 443, 5432, 8000, 9100];

/// Plans an event of `kind` starting at `start` (microseconds) in a call whose span
/// ends at `span_end` (where an open-ended event, `deploy`, ends).
pub(crate) fn plan(kind: EventKind, id: i64, start: i64, span_end: i64, host: &Host) -> Event {
    let key = start ^ ((kind as i64) << 56);
    let mut r = Rng::new(host.seed, stream::EVENT, key);
    let mut ev = Event {
        kind,
        id,
        start,
        end: start,
        note: String::new(),
        socks: Vec::new(),
        packets: Vec::new(),
        ongoing: None,
        down: None,
        rewrite: None,
    };
    match kind {
        EventKind::Portscan => portscan(&mut ev, &mut r, host),
        EventKind::Slowscan => slowscan(&mut ev, &mut r, host),
        EventKind::Backdoor => backdoor(&mut ev, &mut r, host, false),
        EventKind::BackdoorCollide => backdoor(&mut ev, &mut r, host, true),
        EventKind::Burst => burst(&mut ev, &mut r, host),
        EventKind::Dnstunnel => dnstunnel(&mut ev, &mut r, host, false),
        EventKind::DnstunnelSlow => dnstunnel(&mut ev, &mut r, host, true),
        EventKind::Outscan => outscan(&mut ev, &mut r, host),
        EventKind::Beacon => beacon(&mut ev, &mut r, host),
        EventKind::Upload => upload(&mut ev, &mut r, host, key, None),
        EventKind::Flood => flood(&mut ev, &mut r, host, key),
        EventKind::Outage => outage(&mut ev, &mut r, host),
        EventKind::Deploy => deploy(&mut ev, host, span_end),
        EventKind::Bruteforce => bruteforce(&mut ev, &mut r, host),
        EventKind::Spam => spam(&mut ev, &mut r, host),
        EventKind::Stuffing => stuffing(&mut ev, &mut r, host),
        EventKind::Exfil => {
            let owner = match &host.role {
                Role::Server(s) if r.chance(0.5) => r.pick(&s.gunicorn).clone(),
                Role::Server(s) => s.celery.clone(),
                Role::Workstation(d) => d.browser.clone(),
            };
            let bytes = r.uniform(100e6, 400e6);
            upload(&mut ev, &mut r, host, key, Some((owner, bytes)));
        }
        EventKind::Implant => implant(&mut ev, &mut r, host),
        EventKind::Udpflood => udpflood(&mut ev, &mut r, key),
        EventKind::Icmptunnel => icmptunnel(&mut ev, &mut r, host),
        EventKind::Miner => miner(&mut ev, &mut r, host),
        EventKind::Hijack => hijack(&mut ev, &mut r, host),
        EventKind::Resolver => resolver(&mut ev, &mut r, host),
        EventKind::Pingsweep => pingsweep(&mut ev, &mut r, host),
        EventKind::Dga => dga(&mut ev, &mut r, host),
        EventKind::Slowloris => slowloris(&mut ev, &mut r, host),
        EventKind::Proxy => proxy(&mut ev, &mut r, host),
        EventKind::Stolenkey => stolenkey(&mut ev, &mut r, host),
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
    let attacker = host.attacker(r);
    let sport = r.between(33_000, 65_000) as u16;
    let n = r.between(600, 1200) as usize;
    let dur = 200 * SEC;
    for (i, port) in distinct_ports(r, n, 65_535).into_iter().enumerate() {
        let ts = ev.start + i as i64 * dur / n as i64 + r.below(50_000) as i64;
        let flow = probe_flow(host, attacker, sport, port);
        syn_probe(&flow, ts, host.is_open(port), &mut ev.packets);
    }
    ev.end = ev.start + dur + SEC;
    ev.note = format!("SYN scan from {attacker}: {n} ports in 200 s");
}

/// One port every 10 s for an hour, from a fresh source port each time.
fn slowscan(ev: &mut Event, r: &mut Rng, host: &Host) {
    let attacker = host.attacker(r);
    let ports = distinct_ports(r, 360, 10_000);
    for (i, &port) in ports.iter().enumerate() {
        let ts = ev.start + i as i64 * 10 * SEC + r.below(SEC as u64) as i64;
        let flow = probe_flow(host, attacker, ephemeral(r), port);
        syn_probe(&flow, ts, host.is_open(port), &mut ev.packets);
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
    let attacker = host.attacker(r);
    let pid = r.between(20_000, 39_999) as u32;
    let (port, owner, note) = if collide {
        let target = *r.pick(&host.tcp_listen_ports());
        let port = colliding_port(r, target, &host.all_listen_ports());
        let owner = Owner::dropped(pid, "sshd");
        let note = format!(
            "process sshd (pid {pid}) listens on tcp/{port}, bucket {} like tcp/{target}; quiet control connection from {attacker}",
            listen_bucket(port)
        );
        (port, owner, note)
    } else {
        let port = *r.pick(&BACKDOOR_PORTS);
        let name = *r.pick(&BACKDOOR_NAMES);
        let owner = Owner::dropped(pid, name);
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
    let flow = inbound(host, r, port, attacker, owner);
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

/// A port above 1023 that is not one of the host's (`taken`) and shares the detector's
/// listening bucket ([`listen_bucket`]) with `target`.
pub(crate) fn colliding_port(r: &mut Rng, target: u16, taken: &[u16]) -> u16 {
    let taken = |p: u16| taken.contains(&p);
    let same: Vec<u16> = (1024..=65_535u16)
        .filter(|&p| !taken(p) && listen_bucket(p) == listen_bucket(target))
        .collect();
    *r.pick(&same)
}

/// Five minutes of a connection flood to HTTPS from one /24: at least ten times the
/// usual connection rate (300 a minute at the least), short sessions, many closed by
/// nginx, so ESTABLISHED and TIME_WAIT pile up on port 443. A workstation serves no
/// HTTPS: there the burst goes to sshd ([`burst_ssh`]).
fn burst(ev: &mut Event, r: &mut Rng, host: &Host) {
    let Role::Server(server) = &host.role else {
        return burst_ssh(ev, r, host);
    };
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
                owner: Some(r.pick(&server.nginx).clone()),
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

/// The workstation's burst: the same five minutes of at least 300 connections a minute
/// from addresses of one /24, aimed at sshd, its only service reachable from the
/// network, from the LAN it sits on (a NATed desktop is unreachable from outside);
/// each connection is a forked `sshd` that closes after a failed login. Models an SSH
/// brute-force wave from compromised neighbours.
fn burst_ssh(ev: &mut Event, r: &mut Rng, host: &Host) {
    let dur = 5 * MINUTE;
    let mut total = 0u64;
    for m in 0..5 {
        let t = ev.start + m * MINUTE;
        let n = r.poisson(300.0);
        total += n;
        for _ in 0..n {
            let remote = IpAddr::V4(Ipv4Addr::new(192, 168, 1, r.between(150, 189) as u8));
            let flow = Flow {
                transport: Transport::Tcp,
                local: host.addr4,
                local_port: 22,
                remote,
                remote_port: ephemeral(r),
                owner: Some(Owner::new(r.between(40_000, 60_000) as u32, "sshd")),
            };
            let s = TcpSession {
                start: t + r.below(MINUTE as u64) as i64,
                duration: (r.lognormal(2.0, 0.5).min(20.0) * SEC as f64) as i64,
                rtt: r.between(300, 2_000) as i64,
                local_is_client: false,
                sni: None,
                data: r.between(8, 16) as u32,
                client_share: 0.5,
                local_closes: r.chance(0.7),
            };
            ev.socks.push(s.emit(&flow, r, &mut ev.packets));
        }
    }
    ev.end = ev.start + dur;
    ev.note =
        format!("{total} SSH connections in 5 min from 192.168.1.150-189 (workstation: sshd)");
}

/// An hour of SSH password guessing from one address: 6–20 connections a minute to
/// sshd, a forked `sshd` per connection that closes after a few failed logins. From the
/// internet on a server; from the LAN on a workstation (a NATed desktop is reachable
/// only there).
fn bruteforce(ev: &mut Event, r: &mut Rng, host: &Host) {
    let minutes = 60;
    let remote = match host.role {
        Role::Server(_) => random_public_v4(r),
        _ => IpAddr::V4(Ipv4Addr::new(192, 168, 1, r.between(150, 250) as u8)),
    };
    let per_minute = r.between(6, 20) as f64;
    let mut total = 0u64;
    for m in 0..minutes {
        let t = ev.start + m * MINUTE;
        let n = r.poisson(per_minute);
        total += n;
        for _ in 0..n {
            let flow = Flow {
                transport: Transport::Tcp,
                local: host.addr4,
                local_port: 22,
                remote,
                remote_port: ephemeral(r),
                owner: Some(Owner::new(r.between(40_000, 60_000) as u32, "sshd")),
            };
            let s = TcpSession {
                start: t + r.below(MINUTE as u64) as i64,
                duration: (r.lognormal(4.0, 0.5).min(30.0) * SEC as f64) as i64,
                rtt: (r.lognormal(60.0, 0.4) * 1000.0) as i64,
                local_is_client: false,
                sni: None,
                data: r.between(10, 24) as u32,
                client_share: 0.5,
                local_closes: true,
            };
            ev.socks.push(s.emit(&flow, r, &mut ev.packets));
        }
    }
    ev.end = ev.start + minutes * MINUTE;
    ev.note = format!(
        "SSH password guessing from {remote}: {total} connections in {minutes} min ({per_minute:.0} a minute)"
    );
}

/// Mail domains spam goes to: large providers and a long tail of small ones.
const SPAM_BIG: [&str; 6] = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "gmx.de",
    "web.de",
    "orange.fr",
];
const SPAM_TLDS: [&str; 6] = ["com", "net", "org", "de", "co.uk", "fr"];

/// An hour of spam sent straight to the recipients' mail exchangers by a compromised web
/// application: a lookup of the MX host, then one SMTP session to port 25 per mail.
fn spam(ev: &mut Event, r: &mut Rng, host: &Host) {
    let owner = match host.role {
        Role::Server(_) => Owner::new(1290 + r.between(1, 8) as u32, "gunicorn"),
        _ => Owner::new(r.between(20_000, 39_999) as u32, "python3"),
    };
    let per_minute = r.between(2, 6) as f64;
    let mut exchangers: Vec<(String, IpAddr)> = SPAM_BIG
        .iter()
        .map(|d| (format!("mx1.{d}"), random_public_v4(r)))
        .collect();
    let mut mails = 0u64;
    for m in 0..60 {
        let t = ev.start + m * MINUTE;
        for _ in 0..r.poisson(per_minute) {
            // Half to the big providers, half to a small domain met once or twice.
            let (mx, addr) = if r.chance(0.5) {
                r.pick(&exchangers).clone()
            } else {
                let mut d = String::from("mail.");
                for _ in 0..r.between(5, 10) {
                    d.push(char::from(b'a' + r.below(26) as u8));
                }
                d.push('.');
                let tld = SPAM_TLDS[r.below(SPAM_TLDS.len() as u64) as usize];
                d.push_str(tld);
                let e = (d, random_public_v4(r));
                exchangers.push(e.clone());
                e
            };
            let start = t + r.below(MINUTE as u64) as i64;
            host.lookup(r, start, &mx, &mut ev.packets);
            let flow = Flow {
                transport: Transport::Tcp,
                local: host.addr4,
                local_port: ephemeral(r),
                remote: addr,
                remote_port: 25,
                owner: Some(owner.clone()),
            };
            let s = TcpSession {
                start: start + r.between(2_000, 40_000) as i64,
                duration: (r.lognormal(2.0, 0.5).min(15.0) * SEC as f64) as i64,
                rtt: (r.lognormal(50.0, 0.5) * 1000.0) as i64,
                local_is_client: true,
                sni: None,
                data: r.between(12, 40) as u32,
                client_share: 0.8,
                local_closes: true,
            };
            ev.socks.push(s.emit(&flow, r, &mut ev.packets));
            mails += 1;
        }
    }
    ev.end = ev.start + 60 * MINUTE;
    ev.note = format!(
        "{} (pid {}) sends spam to port 25 of the recipients' mail exchangers: {mails} mails in an hour ({per_minute:.0} a minute)",
        owner.process, owner.pid
    );
}

/// An hour of credential stuffing: a botnet's addresses each log in every 2–6 minutes
/// with a few leaked passwords, over HTTPS to nginx on a server, to sshd from the LAN
/// on a workstation.
fn stuffing(ev: &mut Event, r: &mut Rng, host: &Host) {
    let (port, n) = match &host.role {
        Role::Server(_) => (443, r.between(100, 300)),
        _ => (22, r.between(20, 40)),
    };
    let bots: Vec<(IpAddr, u64)> = (0..n)
        .map(|_| {
            let a = match host.role {
                Role::Server(_) => random_public_v4(r),
                _ => IpAddr::V4(Ipv4Addr::new(192, 168, 1, r.between(30, 250) as u8)),
            };
            (a, r.between(2, 6))
        })
        .collect();
    let mut logins = 0u64;
    for m in 0..60 {
        let t = ev.start + m * MINUTE;
        for &(remote, every) in &bots {
            if !r.chance(1.0 / every as f64) {
                continue;
            }
            let owner = match &host.role {
                Role::Server(s) => r.pick(&s.nginx).clone(),
                _ => Owner::new(r.between(40_000, 60_000) as u32, "sshd"),
            };
            let flow = inbound(host, r, port, remote, owner);
            let s = TcpSession {
                start: t + r.below(MINUTE as u64) as i64,
                duration: (r.lognormal(3.0, 0.6).min(30.0) * SEC as f64) as i64,
                rtt: (r.lognormal(80.0, 0.5) * 1000.0) as i64,
                local_is_client: false,
                sni: (port == 443).then_some(SITE),
                data: r.between(6, 20) as u32,
                client_share: 0.5,
                local_closes: r.chance(0.5),
            };
            ev.socks.push(s.emit(&flow, r, &mut ev.packets));
            logins += 1;
        }
    }
    ev.end = ev.start + 60 * MINUTE;
    ev.note =
        format!("credential stuffing at tcp/{port} from {n} addresses: {logins} logins in an hour");
}

/// Ports a LAN host commonly has open, for the one-host scan to find.
const LAN_OPEN: [u16; 10] = [22, 80, 443, 139, 445, 631, 3306, 5432, 8080, 9100];

/// How one connect attempt of a scan ends.
#[derive(Clone, Copy, PartialEq)]
enum Probe {
    /// SYN-ACK: the scanner completes the handshake and closes (FIN), leaving
    /// TIME_WAIT.
    Open,
    /// RST-ACK at once.
    Closed,
    /// No answer (a firewall's drop, or no host): the kernel retransmits the SYN after
    /// a second and the scanner gives up soon after, the socket in SYN_SENT all along.
    Silent,
}

/// A TCP connect scan (`nmap -sT`, what an unprivileged process can do) run by the
/// host: either ~1,500 ports of one LAN host, or port 22 or 445 of ~200 addresses of
/// an internal /24 (a sweep for SSH or SMB to move to), over about five minutes. Each
/// attempt is a real socket of the scanner (SYN_SENT, then ESTABLISHED and TIME_WAIT on
/// open ports), with reverse lookups of the hosts that answered, as nmap does.
fn outscan(ev: &mut Event, r: &mut Rng, host: &Host) {
    let nmap = Owner::new(r.between(20_000, 39_999) as u32, "nmap");
    let dur = r.between(270, 330) as i64 * SEC;
    let lan = match host.profile() {
        Profile::Server => [10, 0, 2],
        Profile::Workstation => [192, 168, 1],
    };
    let own = match host.addr4 {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(_) => 0,
    };
    let mut targets: Vec<(Ipv4Addr, u16, Probe)> = Vec::new();
    let what = if r.chance(0.5) {
        let last = loop {
            let x = r.between(2, 254) as u8;
            if x != own {
                break x;
            }
        };
        let target = Ipv4Addr::new(lan[0], lan[1], lan[2], last);
        let n = r.between(1_350, 1_650) as usize;
        let filtered = r.uniform(0.15, 0.4);
        let open: Vec<u16> = (0..r.between(3, 6)).map(|_| *r.pick(&LAN_OPEN)).collect();
        // The well-known ports are in any scan, the rest at random, in random order
        // (nmap shuffles its ports).
        let mut ports = LAN_OPEN.to_vec();
        ports.extend(
            distinct_ports(r, n, 65_535)
                .into_iter()
                .filter(|p| !LAN_OPEN.contains(p))
                .take(n - LAN_OPEN.len()),
        );
        for i in (1..ports.len()).rev() {
            ports.swap(i, r.below(i as u64 + 1) as usize);
        }
        for port in ports {
            let probe = if open.contains(&port) {
                Probe::Open
            } else if r.chance(filtered) {
                Probe::Silent
            } else {
                Probe::Closed
            };
            targets.push((target, port, probe));
        }
        format!("{n} ports of {target}")
    } else {
        let net = [10, 0, r.between(3, 40) as u8];
        let port = if r.chance(0.5) { 22 } else { 445 };
        let n = r.between(180, 230) as usize;
        let mut lasts: Vec<u16> = distinct_ports(r, n, 254);
        lasts.sort_unstable();
        for last in lasts {
            let addr = Ipv4Addr::new(net[0], net[1], net[2], last as u8);
            let probe = if !r.chance(0.35) {
                Probe::Silent
            } else if r.chance(0.5) {
                Probe::Open
            } else {
                Probe::Closed
            };
            targets.push((addr, port, probe));
        }
        format!(
            "port {port} of {n} addresses of {}.{}.{}.0/24",
            net[0], net[1], net[2]
        )
    };
    let n = targets.len() as i64;
    let mut answered: Vec<(Ipv4Addr, i64)> = Vec::new();
    for (i, &(addr, port, probe)) in targets.iter().enumerate() {
        let ts = ev.start + i as i64 * dur / n + r.below(100_000) as i64;
        let flow = Flow {
            transport: Transport::Tcp,
            local: host.addr4,
            local_port: ephemeral(r),
            remote: IpAddr::V4(addr),
            remote_port: port,
            owner: Some(nmap.clone()),
        };
        let rtt = r.between(200, 900) as i64;
        let out = &mut ev.packets;
        out.push(flow.packet(ts, true, 74, Some(flags::SYN), None));
        match probe {
            Probe::Closed => {
                out.push(flow.packet(ts + rtt, false, 60, Some(flags::RST | flags::ACK), None));
                ev.socks.push(flow.sock(ts, ts + rtt, "SYN_SENT", false));
                answered.push((addr, ts));
            }
            Probe::Open => {
                out.push(flow.packet(ts + rtt, false, 74, Some(flags::SYN | flags::ACK), None));
                out.push(flow.packet(ts + rtt + 30, true, 66, Some(flags::ACK), None));
                let close = ts + rtt + r.between(1_000, 5_000) as i64;
                out.push(flow.packet(close, true, 66, Some(flags::FIN | flags::ACK), None));
                out.push(flow.packet(close + rtt, false, 66, Some(flags::FIN | flags::ACK), None));
                out.push(flow.packet(close + rtt + 30, true, 66, Some(flags::ACK), None));
                ev.socks.push(flow.sock(ts, ts + rtt, "SYN_SENT", false));
                ev.socks
                    .push(flow.sock(ts + rtt, close, "ESTABLISHED", true));
                answered.push((addr, ts));
            }
            Probe::Silent => {
                let give_up = ts + r.between(1_200_000, 2_500_000) as i64;
                out.push(flow.packet(ts + SEC, true, 74, Some(flags::SYN), None));
                ev.socks.push(flow.sock(ts, give_up, "SYN_SENT", false));
            }
        }
    }
    // nmap resolves the hosts it found up, in one batch at the end.
    answered.sort_by_key(|a| a.0);
    answered.dedup_by_key(|a| a.0);
    let end = ev.start + dur;
    for (addr, _) in &answered {
        let o = addr.octets();
        let name = format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]);
        let flow = Flow {
            transport: Transport::Udp,
            local: host.addr4,
            local_port: ephemeral(r),
            remote: host.resolver,
            remote_port: 53,
            owner: None,
        };
        let ts = end + r.below(2 * SEC as u64) as i64;
        let answer = r.chance(0.5).then(|| name.clone());
        dns_exchange(
            &flow,
            ts,
            r.between(500, 5_000) as i64,
            &name,
            answer,
            40,
            &mut ev.packets,
        );
    }
    ev.end = end + 3 * SEC;
    ev.note = format!(
        "nmap (pid {}) on this host connect-scans {what} in {} s; hosts up: {}",
        nmap.pid,
        dur / SEC,
        answered.len()
    );
}

const BEACON_NAMES: [&str; 4] = [
    "kworker-upd",
    "kthreadd-sync",
    "dbus-notifier",
    "snapd-helper",
];
const SHADY_TLDS: [&str; 6] = ["xyz", "top", "online", "site", "info", "cc"];

/// Command-and-control beaconing: a new process calls one new address every 60 s
/// (±10 %) for three hours over short TLS connections, SNI a random-looking domain,
/// looked up again whenever the resolver's cache of it expired (its TTL is short, as
/// C2 domains' are). Each call leaves the process's ESTABLISHED socket for a second or
/// two and a TIME_WAIT for a minute.
fn beacon(ev: &mut Event, r: &mut Rng, host: &Host) {
    let pid = r.between(20_000, 39_999) as u32;
    let name: &str = BEACON_NAMES[r.below(BEACON_NAMES.len() as u64) as usize];
    let owner = Owner::dropped(pid, name);
    let mut domain = String::new();
    for _ in 0..r.between(10, 14) {
        let c = r.below(36) as u8;
        domain.push(char::from(if c < 26 { b'a' + c } else { b'0' + c - 26 }));
    }
    domain.push('.');
    let tld = *r.pick(&SHADY_TLDS);
    domain.push_str(tld);
    let addr = random_public_v4(r);
    let ttl = r.between(60, 300) as i64 * SEC;
    ev.end = ev.start + 3 * 3600 * SEC;
    let mut t = ev.start + r.below(60 * SEC as u64) as i64;
    let mut looked_up: Option<i64> = None;
    let mut calls = 0;
    while t < ev.end {
        let mut start = t;
        if looked_up.is_none_or(|l| t - l >= ttl) {
            host.lookup(r, t, &domain, &mut ev.packets);
            looked_up = Some(t);
            start += r.between(2_000, 60_000) as i64;
        }
        let flow = Flow {
            transport: Transport::Tcp,
            local: host.addr4,
            local_port: ephemeral(r),
            remote: addr,
            remote_port: 443,
            owner: Some(owner.clone()),
        };
        let s = TcpSession {
            start,
            duration: (r.lognormal(0.8, 0.5).min(5.0) * SEC as f64) as i64,
            rtt: (r.lognormal(90.0, 0.3) * 1000.0) as i64,
            local_is_client: true,
            sni: Some(&domain),
            data: r.between(3, 8) as u32,
            client_share: 0.5,
            local_closes: true,
        };
        ev.socks.push(s.emit(&flow, r, &mut ev.packets));
        calls += 1;
        t += (60.0 * r.uniform(0.9, 1.1) * SEC as f64) as i64;
    }
    ev.note = format!(
        "new process {} (pid {}) beacons to {domain} ({addr}:443) every 60 s ±10 % for 3 h: {calls} TLS calls",
        owner.process, owner.pid
    );
}

/// One TLS connection from the host to port 443 of a new address, after a lookup of
/// its name at the event's start: the upload's and the implant's. Its handshake, its
/// socket for `[start, start + dur)` and its close are planned here; what it carries
/// is the caller's.
struct TlsChannel<'a> {
    owner: &'a Owner,
    addr: IpAddr,
    name: &'a str,
    start: i64,
    dur: i64,
    rtt: i64,
    /// Share of the handshake's and close's bytes the host sends.
    client_share: f64,
}

impl TlsChannel<'_> {
    /// Adds the lookup, the handshake, the close and the socket to `ev`; the flow, for
    /// the data.
    fn open(&self, ev: &mut Event, r: &mut Rng, host: &Host) -> Flow {
        host.lookup(r, ev.start, self.name, &mut ev.packets);
        let flow = Flow {
            transport: Transport::Tcp,
            local: host.addr4,
            local_port: ephemeral(r),
            remote: self.addr,
            remote_port: 443,
            owner: Some(self.owner.clone()),
        };
        let session = TcpSession {
            start: self.start,
            duration: self.dur,
            rtt: self.rtt,
            local_is_client: true,
            sni: Some(self.name),
            data: 0,
            client_share: self.client_share,
            local_closes: true,
        };
        ev.socks.push(session.emit(&flow, r, &mut ev.packets));
        flow
    }
}

/// Domains a command channel hides behind (a CDN front, a paste site, a cloud
/// function).
const IMPLANT_DOMAINS: [&str; 4] = [
    "d3k9x2.cloudfront.net",
    "api.pastebin-cdn.net",
    "fn-eu-west.azurewebsites.net",
    "telemetry-sync.workers.dev",
];

/// A command channel through a program the host runs anyway (the `implant` kind): one
/// lookup, then one TLS connection to port 443 of a new address held for 1–2 hours,
/// with a heartbeat every 30 s (±20 %) and now and then a command and its output.
/// Planned whole: a few thousand packets.
fn implant(ev: &mut Event, r: &mut Rng, host: &Host) {
    let owner = match &host.role {
        Role::Server(s) => r.pick(&s.gunicorn).clone(),
        Role::Workstation(d) => d.browser.clone(),
    };
    let domain = *r.pick(&IMPLANT_DOMAINS);
    let addr = random_public_v4(r);
    let dur = (r.uniform(60.0, 120.0) * MINUTE as f64) as i64;
    let rtt = (r.lognormal(60.0, 0.3) * 1000.0) as i64;
    let start = ev.start + 40_000;
    let channel = TlsChannel {
        owner: &owner,
        addr,
        name: domain,
        start,
        dur,
        rtt,
        client_share: 0.5,
    };
    let flow = channel.open(ev, r, host);
    let tls = Some(Layer::Tls);
    let end = start + dur - 2 * rtt;
    let mut t = start + 4 * rtt + r.below(30 * SEC as u64) as i64;
    let mut next_command = t + (r.uniform(3.0, 8.0) * MINUTE as f64) as i64;
    let (mut beats, mut commands) = (0, 0);
    while t < end {
        // Heartbeat: the implant asks, the server answers "nothing", the implant acks.
        let psh = Some(flags::PSH | flags::ACK);
        ev.packets
            .push(flow.packet(t, true, r.between(120, 260) as u32, psh, tls));
        ev.packets
            .push(flow.packet(t + rtt, false, r.between(100, 200) as u32, psh, tls));
        ev.packets
            .push(flow.packet(t + rtt + 200, true, 66, Some(flags::ACK), None));
        beats += 1;
        if t >= next_command {
            // A command in, then its output out in full segments, acknowledged.
            let at = t + rtt + 5_000;
            ev.packets.push(flow.packet(
                at,
                false,
                r.between(1_000, 3_000).min(1514) as u32,
                psh,
                tls,
            ));
            let out_bytes = r.between(5_000, 50_000);
            let segments = out_bytes.div_ceil(1448);
            for k in 0..segments {
                let ts = at + 20_000 + k as i64 * 300;
                let f = if k + 1 == segments {
                    psh
                } else {
                    Some(flags::ACK)
                };
                ev.packets.push(flow.packet(ts, true, 1514, f, tls));
                if k % 2 == 1 || k + 1 == segments {
                    ev.packets
                        .push(flow.packet(ts + rtt, false, 66, Some(flags::ACK), None));
                }
            }
            commands += 1;
            next_command = t + (r.uniform(3.0, 8.0) * MINUTE as f64) as i64;
        }
        t += (30.0 * r.uniform(0.8, 1.2) * SEC as f64) as i64;
    }
    ev.end = start + dur;
    ev.note = format!(
        "{} (pid {}) holds a command channel to {domain} ({addr}:443) for {:.0} min: {beats} heartbeats, {commands} commands",
        owner.process,
        owner.pid,
        dur as f64 / MINUTE as f64
    );
}

/// A UDP flood at the host (the `udpflood` kind): ten minutes of 20,000–60,000
/// datagrams a minute from spoofed addresses to random ports; nothing answers (the
/// host's firewall drops them after the capture saw them). Made minute by minute.
fn udpflood(ev: &mut Event, r: &mut Rng, key: i64) {
    let per_minute = r.between(20_000, 60_000) as f64;
    ev.end = ev.start + 10 * MINUTE;
    ev.note = format!(
        "UDP flood: about {per_minute:.0} datagrams a minute for 10 min from spoofed addresses to random ports, dropped unanswered"
    );
    ev.ongoing = Some(Ongoing::UdpFlood(UdpFlood {
        per_minute,
        from: ev.start,
        to: ev.end,
        key,
    }));
}

/// An ICMP tunnel (the `icmptunnel` kind): echo requests carrying data out to one new
/// address, 1–4 a second (Poisson) for 20–40 minutes, each answered by a short reply.
/// No lookup and no socket the scanner lists. Planned whole: up to 20,000 packets.
fn icmptunnel(ev: &mut Event, r: &mut Rng, host: &Host) {
    let peer = random_public_v4(r);
    let dur = (r.uniform(20.0, 40.0) * MINUTE as f64) as i64;
    let per_sec = r.uniform(1.0, 4.0);
    let rtt = (r.lognormal(50.0, 0.3) * 1000.0) as i64;
    let flow = Flow {
        transport: Transport::Udp,
        local: host.addr4,
        local_port: 0,
        remote: peer,
        remote_port: 0,
        owner: None,
    };
    ev.end = ev.start + dur;
    let mut t = ev.start + r.below(SEC as u64) as i64;
    let (mut requests, mut bytes) = (0u64, 0u64);
    while t < ev.end {
        // Ethernet, IPv4 and ICMP headers are 42 bytes.
        let mut q = icmp(&flow, t, true);
        q.length = 42 + r.between(150, 1_400) as u32;
        bytes += u64::from(q.length);
        ev.packets.push(q);
        let mut a = icmp(&flow, t + rtt, false);
        a.length = 42 + r.between(60, 250) as u32;
        ev.packets.push(a);
        requests += 1;
        t += (-(1.0 - r.f64()).ln() / per_sec * SEC as f64) as i64 + 1;
    }
    ev.note = format!(
        "ICMP tunnel to {peer} for {:.0} min: {requests} echo requests, {:.1} MB out",
        dur as f64 / MINUTE as f64,
        bytes as f64 / 1e6
    );
}

/// A trojaned sshd (the `hijack` kind): for 40–60 minutes the host's sshd is the
/// intruder's build, run as root from `/var/tmp/.ssh/sshd`.
fn hijack(ev: &mut Event, r: &mut Rng, host: &Host) {
    let master = host
        .listeners
        .iter()
        .find(|s| s.transport == Transport::Tcp && s.local_port == 22)
        .and_then(|s| s.pid)
        .unwrap_or(1);
    let pid = r.between(20_000, 39_999) as u32;
    let impostor = Owner {
        exe: std::sync::Arc::from("/var/tmp/.ssh/sshd"),
        uid: 0,
        ..Owner::new(pid, "sshd")
    };
    ev.end = ev.start + (r.uniform(40.0, 60.0) * MINUTE as f64) as i64;
    ev.note = format!(
        "sshd (tcp/22) is served by {} (pid {pid}, user root) for {:.0} min instead of /usr/sbin/sshd (pid {master})",
        impostor.exe,
        (ev.end - ev.start) as f64 / MINUTE as f64
    );
    ev.rewrite = Some(Rewrite {
        start: ev.start,
        end: ev.end,
        swap: Swap::Impostor {
            process: "sshd",
            master,
            impostor,
        },
    });
}

/// A rogue resolver (the `resolver` kind): for 30–90 minutes the host's DNS goes to
/// one public address; the run loop rewrites the packets ([`Rewrite`]).
fn resolver(ev: &mut Event, r: &mut Rng, host: &Host) {
    let to = random_public_v4(r);
    ev.end = ev.start + (r.uniform(30.0, 90.0) * MINUTE as f64) as i64;
    ev.note = format!(
        "the host's DNS goes to {to} instead of {} for {:.0} min",
        host.resolver,
        (ev.end - ev.start) as f64 / MINUTE as f64
    );
    ev.rewrite = Some(Rewrite {
        start: ev.start,
        end: ev.end,
        swap: Swap::Resolver {
            from: host.resolver,
            to,
        },
    });
}

/// A ping sweep from the host (the `pingsweep` kind): its own /24, then 0–3 of the
/// /24s beside it, each address pinged once and the silent ones once more.
fn pingsweep(ev: &mut Event, r: &mut Rng, host: &Host) {
    let IpAddr::V4(own) = host.addr4 else {
        return;
    };
    let [a, b, c, _] = own.octets();
    let mut nets = vec![c];
    for _ in 0..r.below(4) {
        nets.push(c.wrapping_add(nets.len() as u8));
    }
    let lan = host.lan_hosts();
    let per_sec = r.uniform(20.0, 80.0);
    let rtt = (r.lognormal(0.5, 0.4) * 1000.0) as i64;
    let mut t = ev.start + r.below(SEC as u64) as i64;
    let (mut sent, mut answered) = (0u64, 0u64);
    for (i, &net) in nets.iter().enumerate() {
        // The live hosts of the /24: the host's own neighbours in its own, a few in
        // the others.
        let live: Vec<IpAddr> = if i == 0 {
            lan.clone()
        } else {
            (0..r.between(2, 10))
                .map(|_| IpAddr::V4(Ipv4Addr::new(a, b, net, r.between(1, 254) as u8)))
                .collect()
        };
        for attempt in 0..2 {
            for last in 1..=254u8 {
                let to = IpAddr::V4(Ipv4Addr::new(a, b, net, last));
                let up = live.contains(&to);
                if to == host.addr4 || (attempt == 1 && up) {
                    continue;
                }
                let flow = Flow {
                    transport: Transport::Udp,
                    local: host.addr4,
                    local_port: 0,
                    remote: to,
                    remote_port: 0,
                    owner: None,
                };
                ev.packets.push(icmp(&flow, t, true));
                sent += 1;
                if up {
                    ev.packets.push(icmp(&flow, t + rtt, false));
                    answered += 1;
                }
                t += (SEC as f64 / per_sec) as i64;
            }
            // fping waits for the last answers before its retry.
            t += SEC;
        }
        if i + 1 < nets.len() {
            t += (r.uniform(30.0, 180.0) * SEC as f64) as i64;
        }
    }
    ev.end = t;
    ev.note = format!(
        "ping sweep of {} /24 networks from {own}: {sent} echo requests, {answered} answered",
        nets.len()
    );
}

/// Mining pools and the ports they take stratum on.
const POOLS: [(&str, u16); 4] = [
    ("pool.supportxmr.com", 3333),
    ("xmr-eu1.nanopool.org", 14444),
    ("gulf.moneroocean.stream", 10128),
    ("pool.hashvault.pro", 5555),
];
/// Names miners take to pass in a process list.
const MINER_NAMES: [&str; 4] = ["kswapd0", "ksoftirqd", "networkservice", "sysguard"];

/// A cryptominer (the `miner` kind): a new process looks up its pool, then holds one
/// plain-TCP stratum connection to it for 30–45 minutes: jobs in every 20–90 s, shares
/// out every 10–60 s, each acknowledged. Planned whole: a few hundred packets.
fn miner(ev: &mut Event, r: &mut Rng, host: &Host) {
    let pid = r.between(20_000, 39_999) as u32;
    let name = *r.pick(&MINER_NAMES);
    let owner = Owner::dropped(pid, name);
    let (pool, port) = *r.pick(&POOLS);
    let addr = random_public_v4(r);
    let dur = (r.uniform(30.0, 45.0) * MINUTE as f64) as i64;
    let rtt = (r.lognormal(40.0, 0.3) * 1000.0) as i64;
    host.lookup(r, ev.start, pool, &mut ev.packets);
    let flow = Flow {
        transport: Transport::Tcp,
        local: host.addr4,
        local_port: ephemeral(r),
        remote: addr,
        remote_port: port,
        owner: Some(owner.clone()),
    };
    // The handshake, the login and its first job, and the close: a session with no
    // data of its own; the jobs and shares are added below.
    let start = ev.start + 30_000;
    let session = TcpSession {
        start,
        duration: dur,
        rtt,
        local_is_client: true,
        sni: None,
        data: 2,
        client_share: 0.5,
        local_closes: true,
    };
    ev.socks.push(session.emit(&flow, r, &mut ev.packets));
    ev.end = start + dur;
    let psh = Some(flags::PSH | flags::ACK);
    let ack = Some(flags::ACK);
    let last = ev.end - 2 * rtt;
    let mut job = start + (r.uniform(20.0, 90.0) * SEC as f64) as i64;
    let mut share = start + (r.uniform(10.0, 60.0) * SEC as f64) as i64;
    let (mut jobs, mut shares) = (0, 0);
    while job.min(share) < last {
        if job <= share {
            ev.packets
                .push(flow.packet(job, false, r.between(300, 520) as u32, psh, None));
            ev.packets.push(flow.packet(job + 200, true, 66, ack, None));
            jobs += 1;
            job += (r.uniform(20.0, 90.0) * SEC as f64) as i64;
        } else {
            // The share and the pool's "OK".
            ev.packets
                .push(flow.packet(share, true, r.between(220, 300) as u32, psh, None));
            ev.packets
                .push(flow.packet(share + rtt, false, r.between(110, 140) as u32, psh, None));
            ev.packets
                .push(flow.packet(share + rtt + 200, true, 66, ack, None));
            shares += 1;
            share += (r.uniform(10.0, 60.0) * SEC as f64) as i64;
        }
    }
    ev.note = format!(
        "new process {} (pid {}, {}) mines at {pool} ({addr}:{port}) for {:.0} min: {jobs} jobs, {shares} shares",
        owner.process,
        owner.pid,
        owner.exe,
        dur as f64 / MINUTE as f64
    );
}

/// Top-level domains a domain-generation algorithm draws from.
const DGA_TLDS: [&str; 6] = ["com", "net", "org", "info", "biz", "ru"];

/// A bot's domain-generation algorithm (the `dga` kind): 20–60 lookups a minute of
/// random names for 30–60 minutes, every one NXDOMAIN. Each lookup is a short-lived
/// UDP socket of the bot's to the local stub resolver (glibc opens one per query) and
/// the query and its answer between the host and its resolver on the wire.
fn dga(ev: &mut Event, r: &mut Rng, host: &Host) {
    let pid = r.between(20_000, 39_999) as u32;
    let process = *r.pick(&BACKDOOR_NAMES);
    let owner = Owner::dropped(pid, process);
    let minutes = r.between(30, 60) as i64;
    let per_minute = r.uniform(20.0, 60.0);
    let mut total = 0u64;
    let mut name = String::with_capacity(32);
    for m in 0..minutes {
        let t = ev.start + m * MINUTE;
        for _ in 0..r.poisson(per_minute) {
            name.clear();
            for _ in 0..r.between(8, 20) {
                name.push(char::from(b'a' + r.below(26) as u8));
            }
            name.push('.');
            let tld = *r.pick(&DGA_TLDS);
            name.push_str(tld);
            let ts = t + r.below(MINUTE as u64) as i64;
            let rtt = (r.lognormal(40.0, 0.6) * 1000.0) as i64;
            ev.socks.push(Sock {
                transport: Transport::Udp,
                local: IpAddr::V4(Ipv4Addr::LOCALHOST),
                local_port: ephemeral(r),
                remote: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)),
                remote_port: 53,
                start: ts,
                end: ts + rtt + 1_000,
                open_state: "ESTABLISHED",
                time_wait: false,
                owner: Some(owner.clone()),
            });
            let flow = host.resolver_flow(r);
            // NXDOMAIN: no answer, the zone's SOA in the authority section.
            let soa = r.between(60, 110) as u32;
            dns_exchange(&flow, ts, rtt, &name, None, soa, &mut ev.packets);
            total += 1;
        }
    }
    ev.end = ev.start + minutes * MINUTE;
    ev.note = format!(
        "new process {} (pid {pid}, {}) looks up {total} generated names in {minutes} min ({per_minute:.0} a minute), all NXDOMAIN",
        owner.process, owner.exe
    );
}

/// Slowloris (the `slowloris` kind): one address keeps 300–800 connections open to
/// nginx's port 80 (60–150 to sshd from the LAN on a workstation) by sending a few
/// bytes of an unfinished request every 10–15 s. The server closes each after its
/// header timeout (60–300 s; sshd's login grace time, 120 s), leaving TIME_WAIT, and
/// the attacker opens another at once.
fn slowloris(ev: &mut Event, r: &mut Rng, host: &Host) {
    let remote = host.attacker(r);
    let (port, slots) = match host.role {
        Role::Server(_) => (80, r.between(300, 800)),
        Role::Workstation(_) => (22, r.between(60, 150)),
    };
    ev.end = ev.start + (r.uniform(20.0, 40.0) * MINUTE as f64) as i64;
    let rtt = match host.role {
        Role::Server(_) => (r.lognormal(80.0, 0.4) * 1000.0) as i64,
        Role::Workstation(_) => r.between(300, 2_000) as i64,
    };
    let psh = Some(flags::PSH | flags::ACK);
    let ack = Some(flags::ACK);
    let mut conns = 0u64;
    for _ in 0..slots {
        // The attacker opens its connections over the first 30 s.
        let mut t = ev.start + r.below(30 * SEC as u64) as i64;
        while t < ev.end - 10 * SEC {
            let (owner, timeout) = match &host.role {
                Role::Server(s) => (r.pick(&s.nginx).clone(), r.uniform(60.0, 300.0)),
                Role::Workstation(_) => {
                    (Owner::new(r.between(40_000, 60_000) as u32, "sshd"), 120.0)
                }
            };
            let life = ((timeout * SEC as f64) as i64).min(ev.end - t);
            let flow = inbound(host, r, port, remote, owner);
            let session = TcpSession {
                start: t,
                duration: life,
                rtt,
                local_is_client: false,
                sni: None,
                data: 0,
                client_share: 0.5,
                local_closes: true,
            };
            ev.socks.push(session.emit(&flow, r, &mut ev.packets));
            // The drip: a header line's worth, acknowledged.
            let mut d = t + rtt + r.between(100_000, 2 * SEC as u64) as i64;
            while d < t + life - 2 * rtt {
                ev.packets
                    .push(flow.packet(d, false, r.between(70, 90) as u32, psh, None));
                ev.packets.push(flow.packet(d + 200, true, 66, ack, None));
                d += (r.uniform(10.0, 15.0) * SEC as f64) as i64;
            }
            conns += 1;
            t += life + rtt + r.between(50_000, 2 * SEC as u64) as i64;
        }
    }
    ev.note = format!(
        "slowloris from {remote} at tcp/{port}: {slots} connections held, {conns} opened in {:.0} min",
        (ev.end - ev.start) as f64 / MINUTE as f64
    );
}

/// A TCP connection from `remote` to the host's `port`, served by `owner` (the remote
/// port drawn from `r`).
fn inbound(host: &Host, r: &mut Rng, port: u16, remote: IpAddr, owner: Owner) -> Flow {
    Flow {
        transport: Transport::Tcp,
        local: host.addr4,
        local_port: port,
        remote,
        remote_port: ephemeral(r),
        owner: Some(owner),
    }
}

/// Gateways a residential-proxy SDK reports to.
const PROXYWARE_GATEWAYS: [&str; 4] = [
    "gw.peer-relay.net",
    "edge.bandwidth-share.io",
    "node.proxy-sdk.com",
    "api.resi-mesh.net",
];
/// Top-level domains of the sites a relay fetches from.
const PROXY_TLDS: [&str; 5] = ["com", "net", "shop", "xyz", "io"];

/// A relay for strangers (the `proxy` kind), planned whole: on a server nginx as an
/// open forward proxy, each request from one of 20–60 new clients at port 80 making a
/// worker look up and fetch a page from one of 30–150 new sites; on a workstation a
/// residential-proxy SDK in the browser, fetching 5–20 pages a minute from 40–200 new
/// sites and sending each up a TLS channel held to the operator's gateway.
fn proxy(ev: &mut Event, r: &mut Rng, host: &Host) {
    let minutes = r.between(30, 60) as i64;
    ev.end = ev.start + minutes * MINUTE;
    let sites: Vec<(String, IpAddr, u16)> = {
        let n = match host.role {
            Role::Server(_) => r.between(30, 150),
            Role::Workstation(_) => r.between(40, 200),
        };
        (0..n)
            .map(|_| {
                let mut name = String::from("www.");
                for _ in 0..r.between(5, 12) {
                    name.push(char::from(b'a' + r.below(26) as u8));
                }
                name.push('.');
                let tld = *r.pick(&PROXY_TLDS);
                name.push_str(tld);
                let port = if r.chance(0.7) { 443 } else { 80 };
                (name, random_public_v4(r), port)
            })
            .collect()
    };
    let (per_minute, clients, gateway) = match &host.role {
        Role::Server(_) => {
            let clients: Vec<IpAddr> = (0..r.between(20, 60))
                .map(|_| random_public_v4(r))
                .collect();
            (r.uniform(10.0, 40.0), clients, None)
        }
        Role::Workstation(d) => {
            let name = *r.pick(&PROXYWARE_GATEWAYS);
            let addr = random_public_v4(r);
            let rtt = (r.lognormal(50.0, 0.3) * 1000.0) as i64;
            let channel = TlsChannel {
                owner: &d.browser,
                addr,
                name,
                start: ev.start + 40_000,
                dur: ev.end - ev.start - 40_000,
                rtt,
                client_share: 0.5,
            };
            let flow = channel.open(ev, r, host);
            (r.uniform(5.0, 20.0), Vec::new(), Some((flow, name, rtt)))
        }
    };
    let psh = Some(flags::PSH | flags::ACK);
    let (mut fetches, mut relayed) = (0u64, 0u64);
    for m in 0..minutes {
        let t = ev.start + m * MINUTE;
        for _ in 0..r.poisson(per_minute) {
            let at = t + r.below(MINUTE as u64) as i64;
            let (site, addr, port) = r.pick(&sites).clone();
            let owner = match &host.role {
                Role::Server(s) => r.pick(&s.nginx).clone(),
                Role::Workstation(d) => d.browser.clone(),
            };
            let rtt = (r.lognormal(60.0, 0.5) * 1000.0) as i64;
            // The page: 4–40 full segments in, a few requests out.
            let segments = r.between(4, 40) as u32;
            if let Some(&client) = (!clients.is_empty()).then(|| r.pick(&clients)) {
                // The stranger's request, and the page passed back to it.
                let inbound = inbound(host, r, 80, client, owner.clone());
                let s = TcpSession {
                    start: at,
                    duration: (r.lognormal(2.0, 0.5).min(20.0) * SEC as f64) as i64 + 4 * rtt,
                    rtt: (r.lognormal(80.0, 0.5) * 1000.0) as i64,
                    local_is_client: false,
                    sni: None,
                    data: segments + 2,
                    client_share: 0.08,
                    local_closes: r.chance(0.5),
                };
                ev.socks.push(s.emit(&inbound, r, &mut ev.packets));
            }
            host.lookup(r, at + 2_000, &site, &mut ev.packets);
            let out = Flow {
                transport: Transport::Tcp,
                local: host.addr4,
                local_port: ephemeral(r),
                remote: addr,
                remote_port: port,
                owner: Some(owner),
            };
            let s = TcpSession {
                start: at + 10_000,
                duration: (r.lognormal(1.5, 0.5).min(15.0) * SEC as f64) as i64 + 4 * rtt,
                rtt,
                local_is_client: true,
                sni: (port == 443).then_some(site.as_str()),
                data: segments + 2,
                client_share: 0.08,
                local_closes: true,
            };
            ev.socks.push(s.emit(&out, r, &mut ev.packets));
            if let Some((flow, _, rtt)) = &gateway {
                // The page goes up the channel, acknowledged.
                let up = at + 10_000 + s.duration;
                for k in 0..segments {
                    let ts = up + k as i64 * 400;
                    ev.packets
                        .push(flow.packet(ts, true, 1514, psh, Some(Layer::Tls)));
                    if k % 2 == 1 {
                        ev.packets
                            .push(flow.packet(ts + rtt, false, 66, Some(flags::ACK), None));
                    }
                }
                relayed += u64::from(segments) * 1514;
            }
            fetches += 1;
        }
    }
    ev.note = match (&host.role, &gateway) {
        (Role::Workstation(d), Some((flow, name, _))) => format!(
            "{} (pid {}) relays for a residential-proxy network through {name} ({}:443): {fetches} pages from {} sites in {minutes} min, {relayed} bytes sent up",
            d.browser.process,
            d.browser.pid,
            flow.remote,
            sites.len()
        ),
        _ => format!(
            "nginx relays as an open proxy for {} addresses at tcp/80: {fetches} pages from {} sites in {minutes} min",
            clients.len(),
            sites.len()
        ),
    };
}

/// A login with a stolen key (the `stolenkey` kind): one SSH connection from an
/// address never seen, typed into for 20–40 minutes, with the intruder's tools (1–5
/// MB) uploaded through it in the first minutes.
fn stolenkey(ev: &mut Event, r: &mut Rng, host: &Host) {
    let remote = host.attacker(r);
    let dur = (r.uniform(20.0, 40.0) * MINUTE as f64) as i64;
    ev.end = ev.start + dur;
    let rtt = match host.role {
        Role::Server(_) => (r.lognormal(90.0, 0.3) * 1000.0) as i64,
        Role::Workstation(_) => r.between(300, 2_000) as i64,
    };
    let owner = Owner::new(r.between(40_000, 60_000) as u32, "sshd");
    let flow = inbound(host, r, 22, remote, owner.clone());
    let start = ev.start + r.below(20 * SEC as u64) as i64;
    let session = TcpSession {
        start,
        duration: dur - (start - ev.start) - SEC,
        rtt,
        local_is_client: false,
        sni: None,
        // Key exchange and authentication.
        data: r.between(8, 14) as u32,
        client_share: 0.5,
        local_closes: false,
    };
    ev.socks.push(session.emit(&flow, r, &mut ev.packets));
    let psh = Some(flags::PSH | flags::ACK);
    let ack = Some(flags::ACK);
    let end = start + session.duration - 3 * rtt;
    // The tools, a few minutes in: full segments in, every second one acknowledged.
    let upload_at = start + (r.uniform(1.0, 5.0) * MINUTE as f64) as i64;
    let upload = r.between(1_000_000, 5_000_000);
    let segments = upload.div_ceil(1448);
    for k in 0..segments {
        let ts = upload_at + k as i64 * 250;
        ev.packets.push(flow.packet(ts, false, 1514, psh, None));
        if k % 2 == 1 {
            ev.packets.push(flow.packet(ts + 100, true, 66, ack, None));
        }
    }
    let mut t = start + 6 * rtt;
    let (mut keys, mut outputs) = (0u64, 0u64);
    while t < end {
        // A keystroke and its echo; now and then a command's output.
        if t < upload_at || t > upload_at + segments as i64 * 250 + SEC {
            ev.packets
                .push(flow.packet(t, false, r.between(90, 150) as u32, psh, None));
            ev.packets
                .push(flow.packet(t + rtt / 2, true, r.between(90, 150) as u32, psh, None));
            ev.packets.push(flow.packet(t + rtt, false, 66, ack, None));
            keys += 1;
            if r.chance(0.08) {
                for k in 0..r.between(1, 14) {
                    let ts = t + rtt + 2_000 + k as i64 * 300;
                    ev.packets.push(flow.packet(ts, true, 1514, psh, None));
                }
                ev.packets
                    .push(flow.packet(t + 2 * rtt + 6_000, false, 66, ack, None));
                outputs += 1;
            }
        }
        t += (r.lognormal(3.0, 1.0).clamp(0.15, 20.0) * SEC as f64) as i64;
    }
    ev.note = format!(
        "SSH login from {remote} with a stolen key to sshd (pid {}): {:.0} min, {keys} keystrokes, {outputs} outputs, {upload} bytes of tools uploaded",
        owner.pid,
        dur as f64 / MINUTE as f64
    );
}

/// The UDP flood's plan: its rate and interval.
pub(crate) struct UdpFlood {
    per_minute: f64,
    from: i64,
    to: i64,
    key: i64,
}

impl UdpFlood {
    fn minute(&self, host: &Host, t: i64, out: &mut Vec<Packet>) {
        let (a, b) = (t.max(self.from), (t + MINUTE).min(self.to));
        if a >= b {
            return;
        }
        let mut r = Rng::new(host.seed, stream::EVENT_MINUTE, self.key ^ (t / MINUTE));
        let rate = self.per_minute * r.uniform(0.9, 1.1);
        let n = (rate * (b - a) as f64 / MINUTE as f64) as usize;
        let mut times: Vec<i64> = (0..n).map(|_| a + r.below((b - a) as u64) as i64).collect();
        times.sort_unstable();
        for ts in times {
            let flow = Flow {
                transport: Transport::Udp,
                local: host.addr4,
                local_port: r.between(1_024, 65_535) as u16,
                remote: spoofed_v4(&mut r),
                remote_port: r.between(1_024, 65_535) as u16,
                owner: None,
            };
            out.push(flow.packet(ts, false, r.between(64, 512) as u32, None, None));
        }
    }
}

/// Where exfiltrating tools send data: cloud drives for `rclone`, file-drop sites for
/// `curl`.
const RCLONE_DESTS: [&str; 4] = [
    "g.api.mega.co.nz",
    "content.dropboxapi.com",
    "s3.wasabisys.com",
    "eapi.pcloud.com",
];
const CURL_DESTS: [&str; 4] = ["transfer.sh", "temp.sh", "bashupload.com", "oshi.at"];
/// A full Ethernet frame of a bulk transfer.
const FULL_FRAME: f64 = 1514.0;

/// Exfiltration: after a lookup, one TLS connection to a new address carries 300 MB–1
/// GB out in 10–20 minutes at a steady rate, the other side only acknowledging (one ACK
/// per two segments). The handshake and the close are planned whole; the data is made
/// minute by minute ([`Upload::minute`]), as a gigabyte is a million packets. `known`:
/// a program the host runs anyway sends the given bytes to a file-drop site instead
/// of a new `rclone` or `curl` (the `exfil` kind).
fn upload(ev: &mut Event, r: &mut Rng, host: &Host, key: i64, known: Option<(Owner, f64)>) {
    let (owner, dest, bytes) = match known {
        Some((owner, bytes)) => (owner, *r.pick(&CURL_DESTS), bytes),
        None => {
            let (process, dests): (&str, &[&'static str]) = if r.chance(0.5) {
                ("rclone", &RCLONE_DESTS)
            } else {
                ("curl", &CURL_DESTS)
            };
            let dest = *r.pick(dests);
            let owner = Owner::new(r.between(20_000, 39_999) as u32, process);
            (owner, dest, r.uniform(300e6, 1e9))
        }
    };
    let process = owner.process.clone();
    let addr = random_public_v4(r);
    let dur = (r.uniform(10.0, 20.0) * MINUTE as f64) as i64;
    let rtt = (r.lognormal(30.0, 0.4) * 1000.0) as i64;
    let start = ev.start + 80_000;
    let channel = TlsChannel {
        owner: &owner,
        addr,
        name: dest,
        start,
        dur,
        rtt,
        client_share: 0.9,
    };
    let flow = channel.open(ev, r, host);
    let from = start + 4 * rtt + 10_000;
    let to = start + dur - 2 * rtt;
    ev.end = start + dur;
    ev.note = format!(
        "{process} (pid {}) uploads {:.0} MB to {dest} ({addr}:443) in {:.1} min",
        owner.pid,
        bytes / 1e6,
        dur as f64 / MINUTE as f64
    );
    ev.ongoing = Some(Ongoing::Upload(Upload {
        flow,
        from,
        to,
        segments_per_sec: bytes / FULL_FRAME / ((to - from) as f64 / SEC as f64),
        rtt,
        key,
    }));
}

/// The data of an upload: full segments out at a steady rate, ACKs in.
pub(crate) struct Upload {
    flow: Flow,
    from: i64,
    to: i64,
    segments_per_sec: f64,
    rtt: i64,
    key: i64,
}

impl Upload {
    /// Segments sent by `t` since the data began: counting cumulatively keeps minute
    /// boundaries from rounding any away.
    fn sent_by(&self, t: i64) -> i64 {
        let t = t.clamp(self.from, self.to);
        ((t - self.from) as f64 / SEC as f64 * self.segments_per_sec) as i64
    }

    fn minute(&self, host: &Host, t: i64, out: &mut Vec<Packet>) {
        let (a, b) = (self.sent_by(t), self.sent_by(t + MINUTE));
        if a == b {
            return;
        }
        let mut r = Rng::new(host.seed, stream::EVENT_MINUTE, self.key ^ (t / MINUTE));
        let gap = SEC as f64 / self.segments_per_sec;
        let tls = Some(Layer::Tls);
        for k in a..b {
            let ts = self.from + (k as f64 * gap) as i64 + r.below(200) as i64;
            let f = if k % 16 == 15 {
                flags::PSH | flags::ACK
            } else {
                flags::ACK
            };
            out.push(self.flow.packet(ts, true, 1514, Some(f), tls));
            if k % 2 == 1 {
                out.push(
                    self.flow
                        .packet(ts + self.rtt / 2, false, 66, Some(flags::ACK), None),
                );
            }
        }
    }
}

/// A SYN flood at the host's inbound service: HTTPS (nginx, listen backlog 511) on the
/// server, sshd (backlog 128) on a workstation. Ten minutes of 5,000–20,000 SYNs a
/// minute from spoofed addresses all over the internet; the host answers each with a
/// SYN-ACK, keeps a SYN_RECV request socket (retransmitting its SYN-ACK at 1, 3, 7, 15
/// and 31 s, dropped at 63 s) while the backlog has room and a SYN cookie once it is
/// full. A few spoofed addresses belong to live hosts, which answer the unexpected
/// SYN-ACK with RST. Made minute by minute ([`Flood::minute`]).
fn flood(ev: &mut Event, r: &mut Rng, host: &Host, key: i64) {
    let (port, backlog) = match host.role {
        Role::Server(_) => (443, 511),
        Role::Workstation(_) => (22, 128),
    };
    let per_minute = r.between(6_000, 19_000) as f64;
    ev.end = ev.start + 10 * MINUTE;
    ev.note = format!(
        "SYN flood at tcp/{port}: about {per_minute:.0} SYNs a minute for 10 min from spoofed addresses; backlog {backlog} full, SYN cookies"
    );
    ev.ongoing = Some(Ongoing::Flood(Flood {
        port,
        backlog,
        per_minute,
        from: ev.start,
        to: ev.end,
        queue: BinaryHeap::new(),
        key,
    }));
}

/// The flood's state: the listen backlog's request sockets (when each leaves it).
pub(crate) struct Flood {
    port: u16,
    backlog: usize,
    per_minute: f64,
    from: i64,
    to: i64,
    queue: BinaryHeap<Reverse<i64>>,
    key: i64,
}

impl Flood {
    fn minute(&mut self, host: &Host, t: i64, socks: &mut Vec<Sock>, out: &mut Vec<Packet>) {
        let (a, b) = (t.max(self.from), (t + MINUTE).min(self.to));
        if a >= b {
            return;
        }
        let mut r = Rng::new(host.seed, stream::EVENT_MINUTE, self.key ^ (t / MINUTE));
        // The attacker's rate wobbles a little from minute to minute, never below 5,000.
        let rate = (self.per_minute * r.uniform(0.92, 1.08)).clamp(5_000.0, 20_000.0);
        let n = (rate * (b - a) as f64 / MINUTE as f64) as usize;
        let mut times: Vec<i64> = (0..n).map(|_| a + r.below((b - a) as u64) as i64).collect();
        times.sort_unstable();
        for ts in times {
            let flow = Flow {
                transport: Transport::Tcp,
                local: host.addr4,
                local_port: self.port,
                remote: spoofed_v4(&mut r),
                remote_port: r.between(1_024, 65_535) as u16,
                owner: None,
            };
            // Bare SYNs without options (60 bytes with the Ethernet padding); the
            // SYN-ACK carries the MSS option only, as that is all the SYN offered.
            out.push(flow.packet(ts, false, 60, Some(flags::SYN), None));
            let synack = |ts| flow.packet(ts, true, 58, Some(flags::SYN | flags::ACK), None);
            out.push(synack(ts + 60));
            let reset = r
                .chance(0.05)
                .then(|| ts + r.between(20_000, 250_000) as i64);
            if let Some(at) = reset {
                out.push(flow.packet(at, false, 60, Some(flags::RST), None));
            }
            while self.queue.peek().is_some_and(|Reverse(end)| *end <= ts) {
                self.queue.pop();
            }
            if self.queue.len() >= self.backlog {
                continue;
            }
            let end = reset.unwrap_or(ts + 63 * SEC);
            self.queue.push(Reverse(end));
            socks.push(flow.sock(ts, end, "SYN_RECV", false));
            for k in [1, 3, 7, 15, 31] {
                let at = ts + k * SEC;
                if at < end {
                    out.push(synack(at));
                }
            }
        }
    }
}

/// A spoofed source: any unicast IPv4 address outside the private, loopback,
/// link-local, shared and multicast ranges.
fn spoofed_v4(r: &mut Rng) -> IpAddr {
    loop {
        let a = Ipv4Addr::from(r.u64() as u32);
        let o = a.octets();
        let reserved = o[0] == 0
            || o[0] == 10
            || o[0] == 127
            || o[0] >= 224
            || (o[0] == 100 && (64..128).contains(&o[1]))
            || (o[0] == 169 && o[1] == 254)
            || (o[0] == 172 && (16..32).contains(&o[1]))
            || (o[0] == 192 && o[1] == 168);
        if !reserved {
            return IpAddr::V4(a);
        }
    }
}

/// A service that can go down, by profile: the port, its processes, and who keeps
/// connecting to it from outside (so that the kernel's RSTs show on the wire).
struct Service {
    port: u16,
    process: &'static str,
    pids: &'static [u32],
    /// Prometheus reconnecting every 15 s to its exporter; `None` when the service's
    /// clients are on loopback (not captured) or absent.
    scraper: Option<IpAddr>,
}

const SERVER_SERVICES: [Service; 3] = [
    Service {
        port: 5432,
        process: "postgres",
        pids: &[901],
        scraper: None,
    },
    Service {
        port: 8000,
        process: "gunicorn",
        pids: &[1290, 1301, 1302, 1303],
        scraper: None,
    },
    Service {
        port: 9100,
        process: "node_exporter",
        pids: &[1210],
        scraper: Some(IpAddr::V6(Ipv6Addr::new(
            0x2001, 0xdb8, 0x15, 0, 0, 0, 0, 0x50,
        ))),
    },
];
const DESK_SERVICES: [Service; 2] = [
    Service {
        port: 22,
        process: "sshd",
        pids: &[1021],
        scraper: None,
    },
    Service {
        port: 631,
        process: "cupsd",
        pids: &[1187],
        scraper: None,
    },
];

/// A service of the host stops for 30 minutes and comes back: postgres, the app
/// (gunicorn) or node_exporter on the server, sshd or cupsd on a workstation — one of
/// the services the profile has. Its listeners, connections and processes' sockets
/// vanish and its traffic stops ([`Down`]); clients that keep trying get RST. On the
/// server postgres and the app listen on loopback, so their clients' failed connects
/// (the app's pool, nginx's upstream) happen on `lo` and only the socket table shows
/// the outage; node_exporter's scraper connects from outside, so its SYNs and the RSTs
/// are on the wire.
fn outage(ev: &mut Event, r: &mut Rng, host: &Host) {
    let services: &[Service] = match host.role {
        Role::Server(_) => &SERVER_SERVICES,
        Role::Workstation(_) => &DESK_SERVICES,
    };
    let svc = r.pick(services);
    ev.end = ev.start + 30 * MINUTE;
    if let Some(scraper) = svc.scraper {
        // Prometheus retries on its 15 s schedule, each time from a new port.
        let phase = r.below(15 * SEC as u64) as i64;
        let mut ts = ev.start + phase;
        while ts < ev.end {
            let flow = Flow {
                transport: Transport::Tcp,
                local: host.local_for(scraper),
                local_port: svc.port,
                remote: scraper,
                remote_port: r.between(40_000, 60_000) as u16,
                owner: None,
            };
            ev.packets
                .push(flow.packet(ts, false, 74, Some(flags::SYN), None));
            ts += 15 * SEC + r.below(20_000) as i64;
        }
    }
    ev.down = Some(Down {
        port: svc.port,
        pids: svc.pids.to_vec(),
        start: ev.start,
        end: ev.end,
    });
    ev.note = format!(
        "{} (tcp/{}) is down for 30 min: no listener, its connections gone{}",
        svc.process,
        svc.port,
        if svc.scraper.is_some() {
            "; the scraper's SYNs get RST"
        } else {
            ""
        }
    );
}

/// The deployed service's port and process name: fixed, so that a later call's
/// `deploy@0` continues the same service.
pub(crate) const DEPLOY_PORT: u16 = 8443;
pub(crate) const DEPLOY_PROCESS: &str = "api-server";
/// Mean sessions a minute of the deployed service at the host's average load.
const DEPLOY_SESSIONS: f64 = 2.0;

/// A new service deployed for good: `api-server` listens on tcp/8443 from the event to
/// the end of the call's span, serving a handful of clients (partners on the internet
/// for the server, colleagues on the LAN for a workstation) a few TLS sessions a
/// minute on the host's own daily rhythm. Its pid and clients come from the seed alone
/// and its sessions from per-minute streams, so a later call's `deploy@0` continues the
/// same service ([`Deploy::minute`]).
fn deploy(ev: &mut Event, host: &Host, span_end: i64) {
    let mut r = Rng::new(host.seed, stream::DEPLOY, -1);
    let owner = Owner::new(r.between(2_400, 2_999) as u32, DEPLOY_PROCESS);
    let clients: Vec<IpAddr> = (0..r.between(4, 7))
        .map(|_| match &host.role {
            Role::Server(_) => random_public_v4(&mut r),
            Role::Workstation(d) => d.neighbour(&mut r),
        })
        .collect();
    ev.end = span_end.max(ev.start + MINUTE);
    ev.socks.push(Sock {
        transport: Transport::Tcp,
        local: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        local_port: DEPLOY_PORT,
        remote: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        remote_port: 0,
        start: ev.start,
        end: ev.end,
        open_state: "LISTEN",
        time_wait: false,
        owner: Some(owner.clone()),
    });
    ev.note = format!(
        "{DEPLOY_PROCESS} (pid {}) deployed on tcp/{DEPLOY_PORT}, serving {} clients; a legitimate change that stays",
        owner.pid,
        clients.len()
    );
    ev.ongoing = Some(Ongoing::Deploy(Deploy {
        owner,
        clients,
        from: ev.start,
        to: ev.end,
    }));
}

/// The deployed service's clients and life.
pub(crate) struct Deploy {
    owner: Owner,
    clients: Vec<IpAddr>,
    from: i64,
    to: i64,
}

impl Deploy {
    fn minute(&self, host: &Host, t: i64, socks: &mut Vec<Sock>, out: &mut Vec<Packet>) {
        if t + MINUTE <= self.from || t >= self.to {
            return;
        }
        let mut r = Rng::new(host.seed, stream::DEPLOY, t / MINUTE);
        let (sni, rtt_ms) = match host.role {
            Role::Server(_) => ("api.shop.example.com", 40.0),
            Role::Workstation(_) => ("devbox.lan", 0.8),
        };
        let mean = DEPLOY_SESSIONS * host.shape(t) / host.norm;
        for _ in 0..r.poisson(mean) {
            let start = t + r.below(MINUTE as u64) as i64;
            let remote = self.clients[r.zipf(self.clients.len(), 1.5)];
            let flow = Flow {
                transport: Transport::Tcp,
                local: host.addr4,
                local_port: DEPLOY_PORT,
                remote,
                remote_port: ephemeral(&mut r),
                owner: Some(self.owner.clone()),
            };
            let s = TcpSession {
                start,
                duration: (r.lognormal(2.0, 0.8).min(60.0) * SEC as f64) as i64,
                rtt: (r.lognormal(rtt_ms, 0.3) * 1000.0) as i64,
                local_is_client: false,
                sni: Some(sni),
                data: r.lognormal(12.0, 0.7).min(200.0) as u32,
                client_share: 0.35,
                local_closes: r.chance(0.3),
            };
            if (self.from..self.to).contains(&start) {
                socks.push(s.emit(&flow, &mut r, out));
            }
        }
    }
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
        let taken = [&LISTENER_PORTS[..], &[68, 323]].concat();
        for target in LISTENER_PORTS {
            let p = colliding_port(&mut r, target, &taken);
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
