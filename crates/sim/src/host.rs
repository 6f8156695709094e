//! The simulated host and its normal life, one minute at a time.
//!
//! Two profiles share [`Host`] (addresses, listeners, the rate and its rhythm) and
//! differ in [`Role`]: this file is the server, `src/desk.rs` the workstation.
//!
//! The server is a small web server: nginx (80/443, v4 and v6) in front of a gunicorn app on
//! 127.0.0.1:8000 with a postgres pool on 127.0.0.1:5432, sshd, node_exporter scraped
//! every 15 s, chronyd, systemd-resolved, a celery worker calling APIs over TLS and
//! QUIC, an admin's SSH session on weekdays, the internet's background noise (stray
//! SYNs, SSH guessing) and a nightly backup at 03:00. Load follows a daily rhythm with a
//! quieter weekend. Everything a minute holds is drawn from that minute's own stream,
//! so the detector sees a history that is regular but never repeats exactly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portwatch_capture::{Layer, Layers, Packet, Transport};
use portwatch_scan::Socket;

use crate::config::Profile;
use crate::desk::{self, Desk};
use crate::net::{Flow, Owner, SEC, Sock, TcpSession, dns_exchange, family, quic_flow, syn_probe};
use crate::rng::{Rng, stream};

pub(crate) const MINUTE: i64 = 60 * SEC;
pub(crate) const DAY: i64 = 1440 * MINUTE;

/// The name clients ask nginx for.
pub(crate) const SITE: &str = "shop.example.com";
const SITE_WWW: &str = "www.shop.example.com";

/// A remote server the host's own clients talk to.
pub(crate) struct Server {
    pub name: &'static str,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub quic: bool,
}

const SERVERS: [Server; 8] = [
    Server {
        name: "api.stripe.com",
        addr: Ipv4Addr::new(54, 187, 174, 169),
        port: 443,
        quic: false,
    },
    Server {
        name: "o450123.ingest.sentry.io",
        addr: Ipv4Addr::new(34, 120, 195, 249),
        port: 443,
        quic: false,
    },
    Server {
        name: "s3.eu-west-1.amazonaws.com",
        addr: Ipv4Addr::new(52, 218, 62, 11),
        port: 443,
        quic: false,
    },
    Server {
        name: "api.github.com",
        addr: Ipv4Addr::new(140, 82, 121, 6),
        port: 443,
        quic: false,
    },
    Server {
        name: "hooks.slack.com",
        addr: Ipv4Addr::new(3, 120, 218, 43),
        port: 443,
        quic: false,
    },
    Server {
        name: "www.googleapis.com",
        addr: Ipv4Addr::new(142, 250, 186, 74),
        port: 443,
        quic: true,
    },
    Server {
        name: "storage.googleapis.com",
        addr: Ipv4Addr::new(142, 250, 185, 123),
        port: 443,
        quic: true,
    },
    Server {
        name: "api.cloudflare.com",
        addr: Ipv4Addr::new(104, 19, 192, 174),
        port: 443,
        quic: true,
    },
];

/// Names the host resolves besides its servers', most popular first.
const NAMES: [&str; 22] = [
    "api.stripe.com",
    "o450123.ingest.sentry.io",
    "www.googleapis.com",
    "s3.eu-west-1.amazonaws.com",
    "storage.googleapis.com",
    "hooks.slack.com",
    "api.github.com",
    "api.cloudflare.com",
    "r3.o.lencr.org",
    "ocsp.digicert.com",
    "smtp.mailgun.org",
    "2.debian.pool.ntp.org",
    "deb.debian.org",
    "security.debian.org",
    "pypi.org",
    "files.pythonhosted.org",
    "github.com",
    "objects.githubusercontent.com",
    "acme-v02.api.letsencrypt.org",
    "time.cloudflare.com",
    "collector.newrelic.com",
    "login.microsoftonline.com",
];

const WORDS: [&str; 16] = [
    "static", "assets", "cdn", "img", "media", "edge", "api", "files", "eu", "shop", "track",
    "pixel", "auth", "status", "mail", "news",
];
const DOMAINS: [&str; 8] = [
    "fastly.net",
    "akamaiedge.net",
    "cloudfront.net",
    "example-partner.com",
    "mailchimp.com",
    "hubspot.net",
    "zendesk.com",
    "shopifycdn.com",
];

/// Public-looking first octets for remote clients (no private or reserved ranges).
const OCTETS: [u8; 20] = [
    23, 31, 37, 45, 51, 62, 78, 81, 85, 91, 95, 109, 146, 151, 176, 178, 185, 188, 193, 212,
];

/// The host: addresses, processes and remote populations, fixed by the seed.
pub(crate) struct Host {
    pub seed: u64,
    pub rate: f64,
    pub addr4: IpAddr,
    pub addr6: IpAddr,
    pub resolver: IpAddr,
    /// Listeners and unconnected UDP sockets that exist all the time.
    pub listeners: Vec<Socket>,
    /// Mean of the profile's activity shape over a week, so the rate is the weekly mean.
    pub(crate) norm: f64,
    /// What the profile's own life needs.
    pub role: Role,
}

/// The part of the host that differs between profiles.
pub(crate) enum Role {
    Server(WebServer),
    Workstation(Desk),
}

/// The web server's processes and remote populations.
pub(crate) struct WebServer {
    pub monitor: IpAddr,
    pub backup: IpAddr,
    pub clients4: Vec<IpAddr>,
    pub clients6: Vec<IpAddr>,
    pub nginx: [Owner; 2],
    pub gunicorn: [Owner; 3],
    pub celery: Owner,
    pub node_exporter: Owner,
}

impl Host {
    pub fn new(seed: u64, rate: f64, profile: Profile) -> Host {
        match profile {
            Profile::Server => Host::server(seed, rate),
            Profile::Workstation => Host::workstation(seed, rate),
        }
    }

    /// The web server, exactly as it was before there were profiles (the determinism
    /// test holds its rows to that).
    fn server(seed: u64, rate: f64) -> Host {
        let mut r = Rng::new(seed, stream::ADDRESSES, 0);
        let clients4 = (0..1500)
            .map(|_| {
                IpAddr::V4(Ipv4Addr::new(
                    *r.pick(&OCTETS),
                    r.below(256) as u8,
                    r.below(256) as u8,
                    r.between(1, 254) as u8,
                ))
            })
            .collect();
        let clients6 = (0..400)
            .map(|_| {
                IpAddr::V6(Ipv6Addr::new(
                    0x2a00 + r.below(0x100) as u16,
                    r.below(0x10000) as u16,
                    r.below(0x10000) as u16,
                    0,
                    0,
                    0,
                    0,
                    r.between(1, 0xffff) as u16,
                ))
            })
            .collect();
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        let any4 = v4(0, 0, 0, 0);
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let sshd = Owner::new(812, "sshd");
        let nginx_master = Owner::new(1034, "nginx");
        let postgres = Owner::new(901, "postgres");
        let gunicorn_master = Owner::new(1290, "gunicorn");
        let node_exporter = Owner::new(1210, "node_exporter");
        let resolved = Owner::new(588, "systemd-resolve");
        let chronyd = Owner::new(640, "chronyd");
        let networkd = Owner::new(560, "systemd-network");
        use Transport::{Tcp, Udp};
        let l = |t, addr, port, state, o: &Owner| Socket {
            transport: t,
            family: family(addr),
            local_addr: addr,
            local_port: port,
            remote_addr: if addr.is_ipv4() { any4 } else { any6 },
            remote_port: 0,
            state,
            uid: o.uid,
            inode: 0,
            pid: Some(o.pid),
            process: Some(o.process.clone()),
            exe: Some(o.exe.clone()),
            netns: None,
            container: None,
        };
        let listeners = vec![
            l(Tcp, any4, 22, "LISTEN", &sshd),
            l(Tcp, any6, 22, "LISTEN", &sshd),
            l(Tcp, v4(127, 0, 0, 53), 53, "LISTEN", &resolved),
            l(Tcp, any4, 80, "LISTEN", &nginx_master),
            l(Tcp, any6, 80, "LISTEN", &nginx_master),
            l(Tcp, any4, 443, "LISTEN", &nginx_master),
            l(Tcp, any6, 443, "LISTEN", &nginx_master),
            l(Tcp, v4(127, 0, 0, 1), 5432, "LISTEN", &postgres),
            l(
                Tcp,
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                5432,
                "LISTEN",
                &postgres,
            ),
            l(Tcp, v4(127, 0, 0, 1), 8000, "LISTEN", &gunicorn_master),
            l(Tcp, any6, 9100, "LISTEN", &node_exporter),
            l(Udp, v4(127, 0, 0, 53), 53, "UNCONN", &resolved),
            l(Udp, v4(10, 0, 2, 15), 68, "UNCONN", &networkd),
            l(Udp, v4(127, 0, 0, 1), 323, "UNCONN", &chronyd),
            l(
                Udp,
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                323,
                "UNCONN",
                &chronyd,
            ),
        ];
        let norm = (0..7 * 1440)
            .map(|m| activity_shape(m as i64 * MINUTE))
            .sum::<f64>()
            / (7.0 * 1440.0);
        Host {
            seed,
            rate,
            addr4: v4(10, 0, 2, 15),
            addr6: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x15, 0, 0, 0, 0, 0x15)),
            resolver: v4(10, 0, 2, 3),
            listeners,
            norm,
            role: Role::Server(WebServer {
                monitor: v4(10, 0, 2, 50),
                backup: v4(10, 0, 2, 60),
                clients4,
                clients6,
                nginx: [Owner::new(1035, "nginx"), Owner::new(1036, "nginx")],
                gunicorn: [
                    Owner::new(1301, "gunicorn"),
                    Owner::new(1302, "gunicorn"),
                    Owner::new(1303, "gunicorn"),
                ],
                celery: Owner::new(1402, "celery"),
                node_exporter,
            }),
        }
    }

    /// Which profile this host is (for the events that differ by profile).
    pub fn profile(&self) -> Profile {
        match self.role {
            Role::Server(_) => Profile::Server,
            Role::Workstation(_) => Profile::Workstation,
        }
    }

    /// The profile's relative load at `t` (its weekly mean is `norm`).
    pub fn shape(&self, t: i64) -> f64 {
        match self.role {
            Role::Server(_) => activity_shape(t),
            Role::Workstation(_) => desk::shape(t),
        }
    }

    /// Expected rhythm-following packets in the minute starting at `t` (before
    /// per-minute noise).
    pub fn expected_packets(&self, t: i64) -> f64 {
        let fixed = match self.role {
            Role::Server(_) => FIXED_PER_MINUTE,
            Role::Workstation(_) => desk::FIXED_PER_MINUTE,
        };
        let budget = self.rate * 60.0;
        let rhythmic = (1.0 - fixed / budget.max(1.0)).max(0.3);
        budget * rhythmic * self.shape(t) / self.norm
    }

    /// Mean DNS lookups per minute at `t`: what `dnstunnel-slow` imitates.
    pub fn expected_lookups(&self, t: i64) -> f64 {
        match self.role {
            Role::Server(_) => self.expected_packets(t) * SHARE_DNS / PKTS_LOOKUP,
            Role::Workstation(_) => self.expected_packets(t) * desk::LOOKUPS_PER_PACKET,
        }
    }

    /// Mean inbound HTTPS connections per minute at `t`: what `burst` multiplies on the
    /// server.
    pub fn normal_https_connections(&self, t: i64) -> f64 {
        self.expected_packets(t) * SHARE_HTTPS / PKTS_HTTPS
    }

    /// The first minute from `t` on at which the machine is awake (`t` itself for a
    /// server, and at most a day later).
    pub fn awake_from(&self, t: i64) -> i64 {
        let mut t = t;
        for _ in 0..24 * 60 {
            if !self.asleep(t) {
                break;
            }
            t += MINUTE;
        }
        t
    }

    /// Whether the machine is suspended at `t`: no traffic, no sockets sampled, no
    /// round. Only a workstation sleeps.
    pub fn asleep(&self, t: i64) -> bool {
        match &self.role {
            Role::Server(_) => false,
            Role::Workstation(d) => d.asleep(self.seed, t),
        }
    }

    /// Ports that answer a SYN from the network (the others are closed or bound to
    /// loopback).
    pub fn is_open(&self, port: u16) -> bool {
        match self.role {
            Role::Server(_) => is_open(port),
            Role::Workstation(_) => port == 22,
        }
    }

    /// Whether `addr` is one of the host's own (or loopback) addresses.
    pub fn is_local(&self, addr: IpAddr) -> bool {
        addr == self.addr4 || addr == self.addr6 || addr.is_loopback()
    }

    /// Where a remote attacker of the events that come from outside sits: anywhere on
    /// the internet for the server; on the LAN for a workstation, which sits behind NAT
    /// and is reachable only from neighbours (a compromised one, here). The server's
    /// draw is the one the events always made, so its rows are unchanged.
    pub fn attacker(&self, r: &mut Rng) -> IpAddr {
        match &self.role {
            Role::Server(_) => random_public_v4(r),
            Role::Workstation(d) => d.neighbour(r),
        }
    }

    /// The other machines up on the host's own network: its resolver (the router), and
    /// the monitoring and backup servers, or the LAN's devices.
    pub fn lan_hosts(&self) -> Vec<IpAddr> {
        let mut out = vec![self.resolver];
        match &self.role {
            Role::Server(s) => out.extend([s.monitor, s.backup]),
            Role::Workstation(d) => out.extend_from_slice(d.lan_devices()),
        }
        out
    }

    /// Ports of the host's TCP listeners, ascending, without repeats.
    pub fn tcp_listen_ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self
            .listeners
            .iter()
            .filter(|s| s.transport == Transport::Tcp && s.state == "LISTEN")
            .map(|s| s.local_port)
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// Ports of every listener and unconnected UDP socket, ascending, without repeats.
    pub fn all_listen_ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self.listeners.iter().map(|s| s.local_port).collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    pub fn local_for(&self, remote: IpAddr) -> IpAddr {
        if remote.is_ipv4() {
            self.addr4
        } else {
            self.addr6
        }
    }

    /// A remote web client: mostly returning ones (Zipf-like), some new each time.
    fn client(s: &WebServer, r: &mut Rng) -> IpAddr {
        if r.chance(0.25) {
            let i = r.zipf(s.clients6.len(), 2.5);
            s.clients6[i]
        } else if r.chance(0.1) {
            random_public_v4(r)
        } else {
            let i = r.zipf(s.clients4.len(), 2.5);
            s.clients4[i]
        }
    }

    /// A lookup's flow from the host to its resolver, from a fresh ephemeral port.
    pub fn resolver_flow(&self, r: &mut Rng) -> Flow {
        Flow {
            transport: Transport::Udp,
            local: self.addr4,
            local_port: ephemeral(r),
            remote: self.resolver,
            remote_port: 53,
            owner: None,
        }
    }

    /// One DNS lookup of `name` (A, and AAAA half the time).
    pub fn lookup(&self, r: &mut Rng, ts: i64, name: &str, out: &mut Vec<Packet>) {
        let rtt = if r.chance(0.7) {
            r.between(300, 2_000) as i64
        } else {
            r.between(8_000, 60_000) as i64
        };
        let f = self.resolver_flow(r);
        dns_exchange(&f, ts, rtt, name, Some(name.to_owned()), 16, out);
        if r.chance(0.5) {
            let f = self.resolver_flow(r);
            dns_exchange(&f, ts + 200, rtt, name, Some(name.to_owned()), 28, out);
        }
    }

    /// Sockets that stay up for hours (the profile's own: `server_standing`,
    /// `desk_standing`).
    pub fn standing(&self, t: i64, out: &mut Vec<Socket>) {
        match &self.role {
            Role::Server(s) => self.server_standing(s, t, out),
            Role::Workstation(d) => self.desk_standing(d, t, out),
        }
    }

    /// Normal activity that starts in the minute beginning at `t` (a multiple of a
    /// minute): sockets with their lifetimes and packets (some of which may fall after
    /// the minute, or in the gap between rounds).
    pub fn minute(&self, t: i64, socks: &mut Vec<Sock>, out: &mut Vec<Packet>) {
        match &self.role {
            Role::Server(s) => self.server_minute(s, t, socks, out),
            Role::Workstation(d) => self.desk_minute(d, t, socks, out),
        }
    }

    /// The server's standing sockets: postgres pool, nginx upstream keepalive,
    /// Prometheus' scrape connection and the admin's SSH session.
    fn server_standing(&self, s: &WebServer, t: i64, out: &mut Vec<Socket>) {
        let day = t.div_euclid(DAY);
        let mut r = Rng::new(self.seed, stream::DAY, day);
        let lo4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let pair =
            |out: &mut Vec<Socket>, sport: u16, client: &Owner, dport: u16, server: &Owner| {
                for (lport, rport, o) in [(sport, dport, client), (dport, sport, server)] {
                    out.push(Socket {
                        transport: Transport::Tcp,
                        family: 4,
                        local_addr: lo4,
                        local_port: lport,
                        remote_addr: lo4,
                        remote_port: rport,
                        state: "ESTABLISHED",
                        uid: o.uid,
                        inode: 0,
                        pid: Some(o.pid),
                        process: Some(o.process.clone()),
                        exe: Some(o.exe.clone()),
                        netns: None,
                        container: None,
                    });
                }
            };
        // Connections re-established once a day (a deploy, a pool recycle).
        for i in 0..5u32 {
            let port = ephemeral(&mut r);
            let backend = Owner::new(2001 + i + (day as u32 % 50) * 10, "postgres");
            pair(out, port, &s.gunicorn[i as usize % 3], 5432, &backend);
        }
        for i in 0..3 {
            let port = ephemeral(&mut r);
            pair(out, port, &s.nginx[i % 2], 8000, &s.gunicorn[i]);
        }
        let scrape_port = self.scrape_port(day);
        out.push(Socket {
            transport: Transport::Tcp,
            family: 6,
            local_addr: self.addr6,
            local_port: 9100,
            remote_addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x15, 0, 0, 0, 0, 0x50)),
            remote_port: scrape_port,
            state: "ESTABLISHED",
            uid: s.node_exporter.uid,
            inode: 0,
            pid: Some(s.node_exporter.pid),
            process: Some(s.node_exporter.process.clone()),
            exe: Some(s.node_exporter.exe.clone()),
            netns: None,
            container: None,
        });
        if let Some(sock) = self
            .admin_session(t)
            .and_then(|flow| flow.sock(t, t + 1, "ESTABLISHED", false).at(t))
        {
            out.push(sock);
        }
    }

    /// Prometheus' side of the scrape connection, kept alive all day.
    fn scrape_port(&self, day: i64) -> u16 {
        Rng::new(self.seed, stream::DAY, day ^ 0x9100).between(40_000, 60_000) as u16
    }

    /// The admin's SSH session on weekdays, roughly 09:00–17:30, if it is up at `t`.
    fn admin_session(&self, t: i64) -> Option<Flow> {
        let day = t.div_euclid(DAY);
        if weekday(t) >= 5 {
            return None;
        }
        let mut r = Rng::new(self.seed, stream::DAY, day ^ 0x55);
        let start = day * DAY + 9 * 3600 * SEC + r.below(60 * 60) as i64 * SEC;
        let end = day * DAY + 17 * 3600 * SEC + r.below(90 * 60) as i64 * SEC;
        if t < start || t >= end {
            return None;
        }
        let flow = Flow {
            transport: Transport::Tcp,
            local: self.addr4,
            local_port: 22,
            remote: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 23)),
            remote_port: ephemeral(&mut r),
            owner: Some(Owner::new(4000 + r.below(20_000) as u32, "sshd")),
        };
        Some(flow)
    }

    /// The server's minute.
    fn server_minute(&self, sv: &WebServer, t: i64, socks: &mut Vec<Sock>, out: &mut Vec<Packet>) {
        let mut r = Rng::new(self.seed, stream::MINUTE, t / MINUTE);
        // Slow drift (10-minute blocks) times per-minute noise around the daily shape.
        let slow = Rng::new(self.seed, stream::SLOW_NOISE, t.div_euclid(10 * MINUTE)).normal();
        let e = self.expected_packets(t) * (0.12 * slow + 0.15 * r.normal()).exp();
        let in_minute = |r: &mut Rng| t + r.below(MINUTE as u64) as i64;

        // Inbound HTTPS to nginx.
        for _ in 0..r.poisson(e * SHARE_HTTPS / PKTS_HTTPS) {
            let remote = Host::client(sv, &mut r);
            let flow = self.inbound(sv, &mut r, remote, 443);
            let s = TcpSession {
                start: in_minute(&mut r),
                duration: (r.lognormal(4.0, 1.0).min(110.0) * SEC as f64) as i64,
                rtt: (r.lognormal(40.0, 0.5) * 1000.0) as i64,
                local_is_client: false,
                sni: Some(if r.chance(0.9) { SITE } else { SITE_WWW }),
                data: r.lognormal(9.0, 0.8).min(400.0) as u32,
                client_share: 0.3,
                local_closes: r.chance(0.4),
            };
            socks.push(s.emit(&flow, &mut r, out));
        }
        // Plain HTTP: redirects to HTTPS, nginx closes.
        for _ in 0..r.poisson(e * SHARE_HTTP / PKTS_HTTP) {
            let remote = Host::client(sv, &mut r);
            let flow = self.inbound(sv, &mut r, remote, 80);
            let s = TcpSession {
                start: in_minute(&mut r),
                duration: (r.lognormal(0.3, 0.5) * SEC as f64) as i64,
                rtt: (r.lognormal(40.0, 0.5) * 1000.0) as i64,
                local_is_client: false,
                sni: None,
                data: r.between(2, 4) as u32,
                client_share: 0.5,
                local_closes: true,
            };
            socks.push(s.emit(&flow, &mut r, out));
        }
        // The app's own API calls over TLS (with a lookup when the cache expired).
        for _ in 0..r.poisson(e * SHARE_TLS_OUT / PKTS_TLS_OUT) {
            let srv = loop {
                let s = &SERVERS[r.zipf(SERVERS.len(), 1.8)];
                if !s.quic {
                    break s;
                }
            };
            let start = in_minute(&mut r);
            if r.chance(0.2) {
                self.lookup(&mut r, start - 3_000, srv.name, out);
            }
            let owner = if r.chance(0.7) {
                r.pick(&sv.gunicorn).clone()
            } else {
                sv.celery.clone()
            };
            let flow = Flow {
                transport: Transport::Tcp,
                local: self.addr4,
                local_port: ephemeral(&mut r),
                remote: IpAddr::V4(srv.addr),
                remote_port: srv.port,
                owner: Some(owner),
            };
            let s = TcpSession {
                start,
                duration: (r.lognormal(0.8, 0.8).min(100.0) * SEC as f64) as i64,
                rtt: (r.lognormal(20.0, 0.4) * 1000.0) as i64,
                local_is_client: true,
                sni: Some(srv.name),
                data: r.lognormal(8.0, 0.7).min(300.0) as u32,
                client_share: 0.4,
                local_closes: r.chance(0.8),
            };
            socks.push(s.emit(&flow, &mut r, out));
        }
        // QUIC from the celery worker.
        for _ in 0..r.poisson(e * SHARE_QUIC / PKTS_QUIC) {
            let quic: Vec<&Server> = SERVERS.iter().filter(|s| s.quic).collect();
            let srv = quic[r.zipf(quic.len(), 1.5)];
            let start = in_minute(&mut r);
            if r.chance(0.2) {
                self.lookup(&mut r, start - 3_000, srv.name, out);
            }
            let flow = Flow {
                transport: Transport::Udp,
                local: self.addr4,
                local_port: ephemeral(&mut r),
                remote: IpAddr::V4(srv.addr),
                remote_port: srv.port,
                owner: Some(sv.celery.clone()),
            };
            let n = r.lognormal(25.0, 0.6).min(500.0) as u32;
            let dur = (r.lognormal(2.0, 0.8).min(100.0) * SEC as f64) as i64;
            socks.push(quic_flow(&flow, start, dur, n, srv.name, &mut r, out));
        }
        // Other lookups: popular names, now and then one never seen before.
        for _ in 0..r.poisson(e * SHARE_DNS / PKTS_LOOKUP) {
            let ts = in_minute(&mut r);
            let name = NAMES[r.zipf(NAMES.len(), 2.2)];
            self.lookup(&mut r, ts, name, out);
        }
        if r.chance(0.04) {
            let name = format!(
                "{}{}-{}.{}",
                r.pick(&WORDS),
                r.below(40),
                r.pick(&WORDS),
                r.pick(&DOMAINS)
            );
            let ts = in_minute(&mut r);
            self.lookup(&mut r, ts, &name, out);
        }

        self.scrapes(sv, &mut r, t, out);
        self.background(&mut r, t, e, socks, out);
        if let Some(flow) = self.admin_session(t) {
            for _ in 0..r.poisson((e * 0.02).max(8.0)) {
                let ts = in_minute(&mut r);
                let outbound = r.chance(0.6);
                let len = if outbound {
                    r.between(90, 1400)
                } else {
                    r.between(66, 150)
                } as u32;
                out.push(flow.packet(ts, outbound, len, Some(0x18), None));
            }
        }
        self.backup(sv, &mut r, t, e, socks, out);
    }

    fn inbound(&self, s: &WebServer, r: &mut Rng, remote: IpAddr, port: u16) -> Flow {
        Flow {
            transport: Transport::Tcp,
            local: self.local_for(remote),
            local_port: port,
            remote,
            remote_port: if r.chance(0.7) {
                ephemeral(r)
            } else {
                r.between(49_152, 65_535) as u16
            },
            owner: Some(r.pick(&s.nginx).clone()),
        }
    }

    /// Prometheus every 15 s over its kept-alive connection, a blackbox ping each
    /// minute, NTP polls and ARP.
    fn scrapes(&self, s: &WebServer, r: &mut Rng, t: i64, out: &mut Vec<Packet>) {
        let day = t.div_euclid(DAY);
        let phase = Rng::new(self.seed, stream::DAY, day ^ 0x15).below(15 * SEC as u64) as i64;
        let scrape = Flow {
            transport: Transport::Tcp,
            local: self.addr6,
            local_port: 9100,
            remote: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x15, 0, 0, 0, 0, 0x50)),
            remote_port: 0,
            owner: Some(s.node_exporter.clone()),
        };
        let scrape = Flow {
            remote_port: self.scrape_port(day),
            ..scrape
        };
        for k in 0..4 {
            let ts = t + phase + k * 15 * SEC + r.below(20_000) as i64;
            out.push(scrape.packet(ts, false, 280, Some(0x18), None));
            for j in 0..r.between(3, 5) as i64 {
                out.push(scrape.packet(ts + 4_000 + j * 200, true, 1514, Some(0x10), None));
            }
            out.push(scrape.packet(
                ts + 5_200,
                true,
                r.between(300, 1400) as u32,
                Some(0x18),
                None,
            ));
            out.push(scrape.packet(ts + 5_600, false, 66, Some(0x10), None));
        }
        let ping = Flow {
            transport: Transport::Tcp,
            local: self.addr4,
            local_port: 0,
            remote: s.monitor,
            remote_port: 0,
            owner: None,
        };
        let ts = t + phase + r.below(1000) as i64;
        for (dt, outbound) in [(0, false), (300, true)] {
            let mut p = icmp(&ping, ts + dt, outbound);
            p.length = 98;
            out.push(p);
        }
        if r.chance(0.25) {
            let f = Flow {
                transport: Transport::Udp,
                local: self.addr4,
                local_port: ephemeral(r),
                remote: IpAddr::V4(Ipv4Addr::new(162, 159, 200, 1 + r.below(3) as u8)),
                remote_port: 123,
                owner: None,
            };
            let ts = t + r.below(MINUTE as u64) as i64;
            out.push(f.packet(ts, true, 90, None, None));
            out.push(f.packet(ts + 15_000, false, 90, None, None));
        }
        for _ in 0..r.poisson(1.5) {
            let mut layers = Layers::default();
            layers.push(Layer::Eth);
            layers.push(Layer::Arp);
            out.push(Packet {
                ts_micros: t + r.below(MINUTE as u64) as i64,
                length: if r.chance(0.5) { 42 } else { 60 },
                layers,
                ..Packet::default()
            });
        }
    }

    /// The internet's constant noise: stray SYNs to random ports and SSH guessing.
    fn background(
        &self,
        r: &mut Rng,
        t: i64,
        e: f64,
        socks: &mut Vec<Sock>,
        out: &mut Vec<Packet>,
    ) {
        const POPULAR: [u16; 12] = [
            23, 445, 3389, 8080, 22, 80, 443, 5900, 1433, 3306, 8443, 2323,
        ];
        for _ in 0..r.poisson(0.5) {
            let port = if r.chance(0.7) {
                *r.pick(&POPULAR)
            } else {
                r.between(1, 65_535) as u16
            };
            let flow = Flow {
                transport: Transport::Tcp,
                local: self.addr4,
                local_port: port,
                remote: random_public_v4(r),
                remote_port: r.between(1024, 65_535) as u16,
                owner: None,
            };
            syn_probe(&flow, t + r.below(MINUTE as u64) as i64, is_open(port), out);
        }
        for _ in 0..r.poisson(0.3 + e / 20_000.0) {
            let flow = Flow {
                transport: Transport::Tcp,
                local: self.addr4,
                local_port: 22,
                remote: random_public_v4(r),
                remote_port: r.between(32_768, 60_999) as u16,
                owner: Some(Owner::new(5000 + r.below(60_000) as u32, "sshd")),
            };
            let s = TcpSession {
                start: t + r.below(MINUTE as u64) as i64,
                duration: (r.uniform(1.0, 8.0) * SEC as f64) as i64,
                rtt: (r.lognormal(80.0, 0.5) * 1000.0) as i64,
                local_is_client: false,
                sni: None,
                data: r.between(8, 24) as u32,
                client_share: 0.5,
                local_closes: r.chance(0.3),
            };
            socks.push(s.emit(&flow, r, out));
        }
    }

    /// The nightly backup: 03:00 for about five minutes, restic uploading over a few
    /// parallel connections to the backup server's port 8000, after a lookup.
    fn backup(
        &self,
        s: &WebServer,
        r: &mut Rng,
        t: i64,
        e: f64,
        socks: &mut Vec<Sock>,
        out: &mut Vec<Packet>,
    ) {
        let day = t.div_euclid(DAY);
        let since = t - (day * DAY + 3 * 3600 * SEC);
        if !(0..5 * MINUTE).contains(&since) {
            return;
        }
        let mut dr = Rng::new(self.seed, stream::DAY, day ^ 0xbac);
        let owner = Owner::new(30_000 + dr.below(30_000) as u32, "restic");
        if since == 0 {
            self.lookup(r, t + 500_000, "backup.internal.example", out);
        }
        let volume = (self.rate * 60.0 * 0.8).max(300.0);
        let conns = r.between(10, 16);
        for _ in 0..conns {
            let flow = Flow {
                transport: Transport::Tcp,
                local: self.addr4,
                local_port: ephemeral(r),
                remote: s.backup,
                remote_port: 8000,
                owner: Some(owner.clone()),
            };
            let s = TcpSession {
                start: t + SEC + r.below(55 * SEC as u64) as i64,
                duration: (r.uniform(2.0, 20.0) * SEC as f64) as i64,
                rtt: 600,
                local_is_client: true,
                sni: None,
                data: (volume / conns as f64 * r.uniform(0.6, 1.4)) as u32,
                client_share: 0.85,
                local_closes: true,
            };
            socks.push(s.emit(&flow, r, out));
        }
        let _ = e;
    }
}

/// Shares of the rhythm-following packets by kind of traffic, and the mean packets of
/// one flow of each kind (handshakes, data, close; plus the lookups some flows make),
/// so that flows per minute come out at the asked rate.
const SHARE_HTTPS: f64 = 0.60;
const PKTS_HTTPS: f64 = 23.4;
const SHARE_HTTP: f64 = 0.03;
const PKTS_HTTP: f64 = 9.0;
const SHARE_TLS_OUT: f64 = 0.17;
const PKTS_TLS_OUT: f64 = 21.8;
const SHARE_QUIC: f64 = 0.13;
const PKTS_QUIC: f64 = 33.6;
const SHARE_DNS: f64 = 0.05;
const PKTS_LOOKUP: f64 = 3.0;
/// Mean packets a minute that do not follow the rhythm (scrapes, pings, NTP, ARP, the
/// internet's noise, the admin's session, the backup), taken off the rhythm's budget so
/// the weekly mean stays at the asked rate.
const FIXED_PER_MINUTE: f64 = 50.0;

/// Relative load over the week: quiet nights, a broad daytime peak with an evening
/// shoulder, weekends at about 60 %.
pub(crate) fn activity_shape(t: i64) -> f64 {
    let h = t.rem_euclid(DAY) as f64 / (3600 * SEC) as f64;
    let day = (-((h - 14.0) / 4.0).powi(2)).exp();
    let evening = 0.45 * (-((h - 20.5) / 1.8).powi(2)).exp();
    let base = 0.18 + day + evening;
    if weekday(t) >= 5 { 0.6 * base } else { base }
}

/// Day of the week, Monday = 0 (1970-01-01 was a Thursday).
pub(crate) fn weekday(t: i64) -> i64 {
    (t.div_euclid(DAY) + 3).rem_euclid(7)
}

/// Linux's default ephemeral port range.
pub(crate) fn ephemeral(r: &mut Rng) -> u16 {
    r.between(32_768, 60_999) as u16
}

pub(crate) fn random_public_v4(r: &mut Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        *r.pick(&OCTETS),
        r.below(256) as u8,
        r.below(256) as u8,
        r.between(1, 254) as u8,
    ))
}

/// Ports the host answers on from outside (the others are closed or bound to loopback).
pub(crate) fn is_open(port: u16) -> bool {
    matches!(port, 22 | 80 | 443 | 9100)
}

/// An ICMP packet between the flow's addresses (its ports and transport unused), 98
/// bytes: a ping's.
pub(crate) fn icmp(f: &Flow, ts: i64, outbound: bool) -> Packet {
    let mut layers = Layers::default();
    layers.push(Layer::Eth);
    layers.push(Layer::Ipv4);
    layers.push(Layer::Icmp);
    let (src, dst) = if outbound {
        (f.local, f.remote)
    } else {
        (f.remote, f.local)
    };
    Packet {
        ts_micros: ts,
        length: 98,
        layers,
        src_addr: Some(src),
        dst_addr: Some(dst),
        ..Packet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_mean_is_the_asked_rate() {
        for rate in [2.0, 10.0, 100.0] {
            let host = Host::new(1, rate, Profile::Server);
            // Expected rhythm-following packets plus the fixed part, over a week.
            let week: f64 = (0..7 * 1440)
                .map(|m| host.expected_packets(m * MINUTE) + FIXED_PER_MINUTE)
                .sum();
            let pps = week / (7.0 * 86_400.0);
            assert!((pps - rate).abs() < 0.02 * rate, "{rate}: {pps}");
        }
    }

    #[test]
    fn shape_has_a_daily_rhythm() {
        // 2026-01-05 is a Monday.
        let monday = 20_458 * DAY;
        assert_eq!(weekday(monday), 0);
        let night = activity_shape(monday + 3 * 3600 * SEC);
        let noon = activity_shape(monday + 14 * 3600 * SEC);
        assert!(noon > 3.0 * night);
        assert!(activity_shape(monday + 5 * DAY + 14 * 3600 * SEC) < noon);
    }
}
