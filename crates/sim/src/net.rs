//! Building blocks of simulated traffic: sockets with lifetimes, and the packets of
//! TCP sessions, QUIC flows and single UDP exchanges, as the capture parser would have
//! summarised them.

use std::net::IpAddr;
use std::sync::Arc;

use portwatch_capture::{DnsKind, Layer, Layers, Packet, Transport};
use portwatch_scan::Socket;

use crate::rng::Rng;

/// Microseconds per second.
pub(crate) const SEC: i64 = 1_000_000;
/// How long Linux keeps a socket in TIME_WAIT.
pub(crate) const TIME_WAIT: i64 = 60 * SEC;

/// The local process behind a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    pub process: Arc<str>,
    /// Its executable, as `/proc/PID/exe` shows it.
    pub exe: Arc<str>,
    /// The user its sockets belong to.
    pub uid: u32,
}

impl Owner {
    /// A packaged program: its usual path and service user on Debian.
    pub fn new(pid: u32, process: &str) -> Self {
        let (exe, uid) = match process {
            "sshd" => ("/usr/sbin/sshd".to_string(), 0),
            "nginx" => ("/usr/sbin/nginx".to_string(), 33),
            "postgres" => ("/usr/lib/postgresql/16/bin/postgres".to_string(), 104),
            "gunicorn" | "celery" => ("/usr/bin/python3.11".to_string(), 33),
            "node_exporter" => ("/usr/bin/prometheus-node-exporter".to_string(), 65534),
            "systemd-resolve" => ("/usr/lib/systemd/systemd-resolved".to_string(), 991),
            "systemd-network" => ("/usr/lib/systemd/systemd-networkd".to_string(), 998),
            "chronyd" => ("/usr/sbin/chronyd".to_string(), 102),
            "cupsd" | "avahi-daemon" | "NetworkManager" => (format!("/usr/sbin/{process}"), 0),
            "firefox" => ("/usr/lib/firefox-esr/firefox-esr".to_string(), 1000),
            "chrome" => ("/opt/google/chrome/chrome".to_string(), 1000),
            "http" | "https" => (format!("/usr/lib/apt/methods/{process}"), 42),
            _ => (format!("/usr/bin/{process}"), 0),
        };
        Owner {
            pid,
            process: Arc::from(process),
            exe: Arc::from(exe),
            uid,
        }
    }

    /// A program an intruder dropped: run by the web server's user from a world-
    /// writable directory, whatever name it gives itself.
    pub fn dropped(pid: u32, process: &str) -> Self {
        Owner {
            exe: Arc::from(format!("/dev/shm/.{process}")),
            uid: 33,
            ..Owner::new(pid, process)
        }
    }
}

/// One local socket over its life: `open_state` during `[start, end)`, then TIME_WAIT
/// (no owner, as the kernel shows it) for a minute if this side closed first.
#[derive(Debug, Clone)]
pub(crate) struct Sock {
    pub transport: Transport,
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    pub start: i64,
    pub end: i64,
    pub open_state: &'static str,
    pub time_wait: bool,
    pub owner: Option<Owner>,
}

impl Sock {
    /// The last instant at which this socket is still in the table.
    pub fn gone_after(&self) -> i64 {
        if self.time_wait {
            self.end + TIME_WAIT
        } else {
            self.end
        }
    }

    /// The socket as the scanner would see it at `t`, if it exists then.
    pub fn at(&self, t: i64) -> Option<Socket> {
        let (state, owner) = if t >= self.start && t < self.end {
            (self.open_state, self.owner.as_ref())
        } else if self.time_wait && t >= self.end && t < self.end + TIME_WAIT {
            ("TIME_WAIT", None)
        } else {
            return None;
        };
        Some(Socket {
            transport: self.transport,
            family: family(self.local),
            local_addr: self.local,
            local_port: self.local_port,
            remote_addr: self.remote,
            remote_port: self.remote_port,
            state,
            uid: owner.map_or(0, |o| o.uid),
            inode: 0,
            pid: owner.map(|o| o.pid),
            process: owner.map(|o| o.process.clone()),
            exe: owner.map(|o| o.exe.clone()),
            netns: None,
            container: None,
        })
    }
}

pub(crate) fn family(a: IpAddr) -> u8 {
    if a.is_ipv4() { 4 } else { 6 }
}

/// TCP flag bits.
pub(crate) mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// One conversation between a local and a remote endpoint; makes its packets.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub transport: Transport,
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    pub owner: Option<Owner>,
}

impl Flow {
    /// A packet of this flow; `outbound` when the local side sent it.
    pub fn packet(
        &self,
        ts: i64,
        outbound: bool,
        length: u32,
        tcp_flags: Option<u8>,
        top: Option<Layer>,
    ) -> Packet {
        let mut layers = Layers::default();
        layers.push(Layer::Eth);
        layers.push(if self.local.is_ipv4() {
            Layer::Ipv4
        } else {
            Layer::Ipv6
        });
        layers.push(match self.transport {
            Transport::Tcp => Layer::Tcp,
            Transport::Udp => Layer::Udp,
        });
        if let Some(t) = top {
            layers.push(t);
        }
        let (src, sport, dst, dport) = if outbound {
            (self.local, self.local_port, self.remote, self.remote_port)
        } else {
            (self.remote, self.remote_port, self.local, self.local_port)
        };
        // IPv6 headers are 20 bytes longer than IPv4 ones; full-size frames stay at
        // the Ethernet MTU (the MSS is smaller instead).
        let length = if self.local.is_ipv6() {
            (length + 20).min(1514)
        } else {
            length
        };
        Packet {
            ts_micros: ts,
            length,
            layers,
            src_addr: Some(src),
            dst_addr: Some(dst),
            transport: Some(self.transport),
            src_port: Some(sport),
            dst_port: Some(dport),
            tcp_flags: match self.transport {
                Transport::Tcp => tcp_flags,
                Transport::Udp => None,
            },
            pid: self.owner.as_ref().map(|o| o.pid),
            process: self.owner.as_ref().map(|o| o.process.clone()),
            ..Packet::default()
        }
    }

    /// The socket of this flow over `[start, end)`.
    pub fn sock(&self, start: i64, end: i64, open_state: &'static str, time_wait: bool) -> Sock {
        Sock {
            transport: self.transport,
            local: self.local,
            local_port: self.local_port,
            remote: self.remote,
            remote_port: self.remote_port,
            start,
            end,
            open_state,
            time_wait,
            owner: self.owner.clone(),
        }
    }
}

/// Shape of a TCP session.
#[derive(Debug, Clone)]
pub(crate) struct TcpSession<'a> {
    pub start: i64,
    pub duration: i64,
    pub rtt: i64,
    /// The local side opened the connection.
    pub local_is_client: bool,
    /// TLS with this SNI (ClientHello from the client), or plain TCP. Borrowed, so
    /// that generated names (a beacon's domain, a browser's random CDN host) need no
    /// `'static` storage.
    pub sni: Option<&'a str>,
    /// Data segments after the handshake.
    pub data: u32,
    /// Share of data segments the client sends (uploads are > 0.5).
    pub client_share: f64,
    /// The local side closes first (and so keeps TIME_WAIT).
    pub local_closes: bool,
}

impl TcpSession<'_> {
    /// Appends the session's packets and returns its socket.
    pub fn emit(&self, flow: &Flow, rng: &mut Rng, out: &mut Vec<Packet>) -> Sock {
        let lc = self.local_is_client;
        let t0 = self.start;
        let rtt = self.rtt.max(100);
        let end = t0 + self.duration.max(6 * rtt);
        let tls = self.sni.map(|_| Layer::Tls);
        // Client-to-server is outbound when the local side is the client.
        out.push(flow.packet(t0, lc, 74, Some(flags::SYN), None));
        out.push(flow.packet(t0 + rtt, !lc, 74, Some(flags::SYN | flags::ACK), None));
        out.push(flow.packet(t0 + rtt + 50, lc, 66, Some(flags::ACK), None));
        let mut t = t0 + rtt + 80;
        if let Some(sni) = self.sni {
            let mut hello = flow.packet(t, lc, 583, Some(flags::PSH | flags::ACK), tls);
            hello.server_name = Some(sni.to_owned());
            out.push(hello);
            t += rtt;
            out.push(flow.packet(t, !lc, 1514, Some(flags::ACK), tls));
            out.push(flow.packet(t + 20, !lc, 1514, Some(flags::ACK), tls));
            out.push(flow.packet(t + 40, !lc, 900, Some(flags::PSH | flags::ACK), tls));
            t += rtt;
            out.push(flow.packet(t, lc, 130, Some(flags::PSH | flags::ACK), tls));
        }
        let close_at = end - rtt;
        let span = (close_at - t).max(1) as f64;
        for _ in 0..self.data {
            let ts = t + (rng.f64() * span) as i64;
            let from_client = rng.chance(self.client_share);
            let outbound = from_client == lc;
            // The side that sends most of the data sends full segments.
            let big = if from_client {
                self.client_share > 0.5
            } else {
                self.client_share <= 0.5
            };
            let len = if big && rng.chance(0.8) {
                1514
            } else {
                rng.between(66, 700) as u32
            };
            let f = if len == 66 {
                flags::ACK
            } else {
                flags::PSH | flags::ACK
            };
            out.push(flow.packet(ts, outbound, len, Some(f), tls.filter(|_| len > 66)));
        }
        // Closer sends FIN first; the other side answers with its FIN; closer ACKs.
        let closer_out = self.local_closes;
        out.push(flow.packet(
            close_at,
            closer_out,
            66,
            Some(flags::FIN | flags::ACK),
            None,
        ));
        out.push(flow.packet(
            close_at + rtt / 2,
            !closer_out,
            66,
            Some(flags::FIN | flags::ACK),
            None,
        ));
        out.push(flow.packet(close_at + rtt, closer_out, 66, Some(flags::ACK), None));
        flow.sock(t0, end, "ESTABLISHED", self.local_closes)
    }
}

/// A QUIC flow from a local connected UDP socket: appends packets, returns the socket.
pub(crate) fn quic_flow(
    flow: &Flow,
    start: i64,
    duration: i64,
    packets: u32,
    sni: &str,
    rng: &mut Rng,
    out: &mut Vec<Packet>,
) -> Sock {
    let mut initial = flow.packet(start, true, 1292, None, Some(Layer::Quic));
    initial.server_name = Some(sni.to_owned());
    out.push(initial);
    out.push(flow.packet(start + 30_000, false, 1292, None, Some(Layer::Quic)));
    out.push(flow.packet(start + 31_000, false, 1100, None, Some(Layer::Quic)));
    let span = duration.max(1) as f64;
    for _ in 0..packets {
        let ts = start + 40_000 + (rng.f64() * span) as i64;
        let outbound = rng.chance(0.3);
        let len = if outbound {
            rng.between(70, 300) as u32
        } else {
            rng.between(900, 1292) as u32
        };
        out.push(flow.packet(ts, outbound, len, None, Some(Layer::Quic)));
    }
    flow.sock(start, start + 40_000 + duration, "ESTABLISHED", false)
}

/// A DNS query from the local resolver and, unless `answer` is `None` (a timeout), its
/// response `rtt` later.
pub(crate) fn dns_exchange(
    flow: &Flow,
    ts: i64,
    rtt: i64,
    name: &str,
    answer: Option<String>,
    answer_len: u32,
    out: &mut Vec<Packet>,
) {
    let qlen = 14 + 20 + 8 + 12 + name.len() as u32 + 2 + 4;
    let mut q = flow.packet(ts, true, qlen, None, Some(Layer::Dns));
    q.dns = Some(DnsKind::Query);
    q.qry_name = Some(name.to_owned());
    out.push(q);
    let mut r = flow.packet(ts + rtt, false, qlen + answer_len, None, Some(Layer::Dns));
    r.dns = Some(DnsKind::Response);
    r.qry_name = Some(name.to_owned());
    r.resp_name = answer;
    out.push(r);
}

/// A bare SYN from a remote probe to a local port, and the host's answer: SYN-ACK then
/// the prober's RST on an open port, RST-ACK on a closed one.
pub(crate) fn syn_probe(flow: &Flow, ts: i64, open: bool, out: &mut Vec<Packet>) {
    out.push(flow.packet(ts, false, 58, Some(flags::SYN), None));
    if open {
        out.push(flow.packet(ts + 150, true, 58, Some(flags::SYN | flags::ACK), None));
        out.push(flow.packet(ts + 30_000, false, 54, Some(flags::RST), None));
    } else {
        out.push(flow.packet(ts + 120, true, 54, Some(flags::RST | flags::ACK), None));
    }
}
