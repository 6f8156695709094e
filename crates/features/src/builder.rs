//! The round builder: one round's socket samples and packets in, one [`Step`] per
//! sample out, plus what the next round needs ([`Carry`]).
//!
//! A step's socket features come from its own sample; its traffic features from the
//! packets between its sample and the next, with the round's last interval merged into
//! the one before (crate docs). Packets stream through [`RoundBuilder::add_packet`]
//! one at a time, so a round never has to be held in memory.
//!
//! The arithmetic and the order things are visited in are part of the feature spec:
//! saved models and the figures in MODEL.md depend on identical values.

use std::collections::{BTreeSet, HashMap, HashSet};

use portwatch_capture::{Layer, Layers};
use serde::{Deserialize, Serialize};

use crate::calendar::calendar_inputs;
use crate::hash::{fnv1a, listen_bucket, net_of};
use crate::input::{PktRow, SockRow};
use crate::peers::PeerCounter;
use crate::repeats::{RepeatCounter, client_key};
use crate::scan_tracker::ScanTracker;
use crate::seen::{RoundKeys, Seen, port_key};
use crate::spec::{
    F_BUCKETS, F_DNS_NEW, F_NEW_LISTEN, F_PKTS, F_PROCESSES, F_SCAN_BREADTH, N_FEATURES, N_TIME,
    PORT_CLASSES, SOCKET_STATES_TCP, port_class,
};
use crate::traffic::TrafficAcc;
use crate::uploads::UploadCounter;

/// Share of a round's packets an address must appear in to count as the host's own.
pub const LOCAL_ADDR_SHARE: f64 = 0.2;

/// Most new ports, and most new names, [`Evidence`] lists per step: enough to explain
/// a step, bounded when a port sweep or a DNS tunnel makes thousands.
const MAX_EVIDENCE: usize = 8;

/// What lies behind a step's values, for explanations.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// Listening ports first seen at this step: (protocol, port, process).
    pub new_ports: Vec<(String, u16, Option<String>)>,
    /// DNS names first seen at this step (at most a few).
    pub new_names: Vec<String>,
    /// The remote address with the widest scan breadth probed in this step: the scan
    /// goes on (else the breadth only remembers an earlier one, or is 0).
    pub scan_fresh: bool,
}

/// One time step: raw features (after log1p, before scaling) and calendar inputs.
#[derive(Clone, Debug)]
pub struct Step {
    /// Sample time (µs since the epoch).
    pub ts: i64,
    /// The round the sample belongs to.
    pub round_id: i64,
    /// The value of each feature (counts, bytes), before scaling.
    pub raw: Vec<f32>,
    /// [`crate::calendar::calendar_inputs`].
    pub time: [f32; N_TIME],
    /// Ports and names behind "new" counts.
    pub evidence: Evidence,
}

/// What one round hands to the next: the host's addresses learnt from traffic, and
/// recent probes of closed ports.
#[derive(Clone, Debug, Default)]
pub struct Carry {
    /// Hashes ([`fnv1a`]) of the host's own addresses.
    pub local_addrs: HashSet<u64>,
    /// Recent probes per remote address.
    pub scans: ScanTracker,
}

/// Builds the steps of one round from its socket samples and a stream of its packets.
pub struct RoundBuilder {
    round_id: i64,
    /// Start of the round (µs): where its first step's traffic interval begins.
    start: i64,
    end: i64,
    step_ts: Vec<i64>,
    /// Socket features per step (the first [`F_PKTS`] values).
    sock: Vec<Vec<f64>>,
    evidence: Vec<Evidence>,
    /// Port keys the host has any socket on in this round: the host's side of a packet.
    local: HashSet<u32>,
    /// Port keys listened on in any sample of this round: a SYN elsewhere probes a
    /// closed port.
    listening: HashSet<u32>,
    carry: Carry,
    /// Per address hash, packets it was on the host's side of.
    addr_counts: HashMap<u64, u32>,
    /// Packets that had a host's side.
    packets: u32,
    traffic: Vec<TrafficAcc>,
    /// Probes of closed ports in this round: (time, remote hash, port).
    probes: Vec<(i64, u64, u16)>,
    keys: RoundKeys,
    /// Connections per remote address and listening port.
    repeats: RepeatCounter,
    /// Remote TCP ports each local program opened connections to.
    services: HashMap<String, BTreeSet<u16>>,
    /// Bytes each local program sent to each remote address as a client.
    uploads: UploadCounter,
    /// The remote networks each local program sent to as a client.
    peers: PeerCounter,
    /// The networks DNS answers came from ([`RoundKeys::resolvers`]).
    resolvers: BTreeSet<u32>,
    /// The processes listening on each port key in the round.
    listeners: HashMap<u32, HashSet<String>>,
    /// Processes with sockets or packets in the round, and those that listen.
    programs: HashSet<String>,
    listening_programs: HashSet<String>,
}

impl RoundBuilder {
    /// Starts a round. `socks` are its `rounds_ports` rows; when it has none (an empty
    /// socket table, or no scanner), steps are laid out every `scan_interval` seconds
    /// from `start` to `end`. `seen` is updated as listening ports appear, so "new"
    /// counts only the first sample a port shows up in. `carry` comes from the round
    /// before (default for the first).
    pub fn new(
        round_id: i64,
        (start, end): (i64, i64),
        scan_interval: Option<f64>,
        socks: &[SockRow],
        seen: &mut Seen,
        carry: Carry,
    ) -> Self {
        let step_ts = step_times(socks, (start, end), scan_interval);
        let n = step_ts.len();
        // Listening sockets first: they decide the class of every other socket.
        let listeners = Listeners::of(socks, &step_ts);
        let mut sock = socket_counts(socks, &step_ts, &listeners.per_step);
        count_processes(socks, &step_ts, &mut sock);
        count_listen_buckets(&listeners.per_step, &mut sock);
        let evidence = new_listening_ports(&listeners, seen, &mut sock);
        let keys = RoundKeys {
            ports: round_ports(&listeners.per_step),
            ..RoundKeys::default()
        };
        let mut b = RoundBuilder {
            round_id,
            start,
            end: end.max(start),
            local: host_ports(socks, &step_ts),
            step_ts,
            sock,
            evidence,
            listening: listeners.any,
            carry,
            addr_counts: HashMap::new(),
            packets: 0,
            traffic: vec![TrafficAcc::default(); n],
            probes: Vec::new(),
            keys,
            repeats: RepeatCounter::default(),
            services: HashMap::new(),
            uploads: UploadCounter::default(),
            peers: PeerCounter::default(),
            resolvers: BTreeSet::new(),
            listeners: HashMap::new(),
            programs: HashSet::new(),
            listening_programs: HashSet::new(),
        };
        b.note_programs(socks);
        b
    }

    /// Takes socket rows left out of the features (an open incident's listener,
    /// masked while it is scored) into the round's keys all the same: what listens
    /// and which programs talk is presence, whatever is scored.
    pub fn keep_keys_of(&mut self, socks: &[SockRow]) {
        for s in socks {
            if is_listen(s) {
                self.keys.ports.push(port_key(s.tcp, s.port));
            }
        }
        self.keys.ports.sort_unstable();
        self.keys.ports.dedup();
        self.note_programs(socks);
    }

    /// The processes of socket rows: those that listen, and the others.
    fn note_programs(&mut self, socks: &[SockRow]) {
        for s in socks {
            if let Some(p) = &s.process {
                if is_listen(s) {
                    let owners = self.listeners.entry(port_key(s.tcp, s.port)).or_default();
                    if !owners.contains(p) {
                        owners.insert(p.clone());
                    }
                }
                let set = if is_listen(s) {
                    &mut self.listening_programs
                } else {
                    &mut self.programs
                };
                if !set.contains(p) {
                    set.insert(p.clone());
                }
            }
        }
    }

    /// Takes the program of a packet left out of the features into the round's keys.
    pub fn keep_program_of(&mut self, p: &PktRow<'_>) {
        if let Some(process) = p.process
            && !self.programs.contains(process)
        {
            self.programs.insert(process.to_string());
        }
    }

    /// Adds one packet of the round.
    pub fn add_packet(&mut self, p: &PktRow<'_>) {
        let i = self.step_of(p.ts);
        let layers = Layers::parse(p.protocols);
        let tcp = layers.contains(Layer::Tcp);
        let udp = layers.contains(Layer::Udp);
        self.traffic[i].count_packet(&layers);
        let bare_syn = tcp && p.tcp_flags.is_some_and(is_bare_syn);
        if bare_syn {
            self.traffic[i].count_bare_syn();
        }
        let ends = self.ends(p, tcp, udp);
        self.count_host_side(&ends);
        let outbound = self.is_outbound(&ends);
        if !outbound && bare_syn {
            self.record_inbound_syn(i, p, &ends);
        }
        if !outbound && tcp {
            self.record_received(p, &ends);
        }
        // A SYN to a port the host listens on, attributed to the program that listens
        // there, is a connection to that program (the direction rule can guess wrong
        // when a client's port is also one of the host's, or the host's IPv6 address is
        // not learnt yet), not one it opened.
        if outbound
            && bare_syn
            && let Some(process) = p.process
            && !self
                .listeners
                .get(&port_key(true, ends.dport))
                .is_some_and(|owners| owners.contains(process))
        {
            match self.services.get_mut(process) {
                Some(ports) => {
                    ports.insert(ends.dport);
                }
                None => {
                    self.services
                        .insert(process.to_string(), BTreeSet::from([ends.dport]));
                }
            }
        }
        self.record_transfer(i, p, &ends, outbound, tcp || udp);
        if outbound && (tcp || udp) {
            self.record_upload(p, &ends, tcp);
        }
        if is_dns_query(p, &layers)
            && let Some(name) = p.qry_name
        {
            self.traffic[i].add_query(name);
        }
        // An answer to the host's own lookups: from port 53 of a remote address.
        if !outbound
            && p.sport == Some(53)
            && is_dns_response(p, &layers)
            && let Some(a) = p.src
            && !is_loopback(a)
            && ends
                .src
                .is_some_and(|h| !self.carry.local_addrs.contains(&h))
        {
            self.resolvers.insert(client_key(a));
        }
        self.keep_program_of(p);
    }

    /// Finishes the round: one [`Step`] per sample, the round's keys for [`Seen`], and
    /// what the next round needs ([`Carry`]): the host's addresses are those on the
    /// host's side (a port it has a socket on) of at least [`LOCAL_ADDR_SHARE`] of this
    /// round's packets that have such a side, or the previous ones if none.
    pub fn finish(mut self, seen: &mut Seen) -> (Vec<Step>, RoundKeys, Carry) {
        self.merge_last_interval();
        let mut carry = std::mem::take(&mut self.carry);
        if let Some(addrs) = self.learnt_local_addrs() {
            carry.local_addrs = addrs;
        }
        let breadth = self.scan_breadth(&mut carry.scans);
        let mut names_round: BTreeSet<String> = BTreeSet::new();
        let mut steps: Vec<Step> = Vec::with_capacity(breadth.len());
        for (i, (breadth, fresh)) in breadth.into_iter().enumerate() {
            let mut v = std::mem::take(&mut self.sock[i]);
            v.resize(N_FEATURES, 0.0);
            self.traffic[i].write_features(&mut v);
            v[F_SCAN_BREADTH] = breadth as f64;
            let mut evidence = std::mem::take(&mut self.evidence[i]);
            evidence.scan_fresh = fresh;
            v[F_DNS_NEW] = if self.is_merged_last(i) {
                repeat_new_names(steps.last(), &mut evidence)
            } else {
                new_dns_names(&self.traffic[i], seen, &mut evidence, &mut names_round)
            };
            steps.push(self.step(i, &v, evidence));
        }
        self.keys.names = names_round.into_iter().collect();
        let mut programs: Vec<String> = self
            .programs
            .into_iter()
            .filter(|p| !self.listening_programs.contains(p))
            .collect();
        programs.sort_unstable();
        self.keys.programs = programs;
        self.keys.repeats = self.repeats.peaks();
        self.keys.clients = self.repeats.clients();
        self.keys.received = self.repeats.received_bytes();
        self.keys.uploads = self.uploads.peaks();
        self.keys.peers = self.peers.pairs();
        self.keys.resolvers = self.resolvers.into_iter().collect();
        self.keys.start = self.start;
        let mut services: Vec<(String, u16)> = self
            .services
            .into_iter()
            .flat_map(|(p, ports)| ports.into_iter().map(move |port| (p.clone(), port)))
            .collect();
        services.sort_unstable();
        self.keys.services = services;
        (steps, self.keys, carry)
    }

    /// Whether step `i` is the round's last of several, whose interval is merged into
    /// the one before.
    fn is_merged_last(&self, i: usize) -> bool {
        let n = self.step_ts.len();
        n >= 2 && i == n - 1
    }

    /// The step whose traffic interval holds `ts`: the latest sample at or before it (the
    /// first for a packet before the first sample), and the one before the last for
    /// a packet after the last.
    fn step_of(&self, ts: i64) -> usize {
        let i = match self.step_ts.binary_search(&ts) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        };
        if self.is_merged_last(i) { i - 1 } else { i }
    }

    /// A packet's two ends as the direction rule sees them.
    fn ends(&self, p: &PktRow<'_>, tcp: bool, udp: bool) -> Ends {
        let sport = p.sport.unwrap_or(0);
        let dport = p.dport.unwrap_or(0);
        let socket = |port| (tcp || udp) && self.local.contains(&port_key(tcp, port));
        let listens = |port| self.listening.contains(&port_key(tcp, port));
        let (src_host, dst_host) = match (socket(sport), socket(dport)) {
            // Both ports are the host's: its connection to a remote service on a port
            // it serves too (an upload to :443 from a host running nginx). The side
            // whose port does not listen is the host's; else both may be.
            (true, true) => match (listens(sport), listens(dport)) {
                (false, true) => (true, false),
                (true, false) => (false, true),
                _ => (true, true),
            },
            ends => ends,
        };
        Ends {
            src: p.src.map(|a| fnv1a(a.as_bytes())),
            dst: p.dst.map(|a| fnv1a(a.as_bytes())),
            sport,
            dport,
            src_host,
            dst_host,
        }
    }

    /// Local-address learning: the side whose port is one of the host's sockets is the
    /// host's, so its address is counted towards the local addresses (a scanner's probes
    /// go to closed ports, so however many it sends, its address is not learnt as the
    /// host's; nor is the server of a large upload to a port the host listens on too,
    /// [`RoundBuilder::ends`]).
    fn count_host_side(&mut self, e: &Ends) {
        if e.src_host || e.dst_host {
            self.packets += 1;
            for h in [e.src.filter(|_| e.src_host), e.dst.filter(|_| e.dst_host)]
                .into_iter()
                .flatten()
            {
                *self.addr_counts.entry(h).or_default() += 1;
            }
        }
    }

    /// The direction rule (crate docs): the addresses learnt as the host's decide; else
    /// the ports the host has sockets on; else the higher port is the client's.
    fn is_outbound(&self, e: &Ends) -> bool {
        let local_addrs = &self.carry.local_addrs;
        let src_la = e.src.is_some_and(|h| local_addrs.contains(&h));
        let dst_la = e.dst.is_some_and(|h| local_addrs.contains(&h));
        match (src_la, dst_la) {
            (true, false) => true,
            (false, true) => false,
            _ => match (e.src_host, e.dst_host) {
                (true, false) => true,
                (false, true) => false,
                _ => e.sport >= e.dport,
            },
        }
    }

    /// Probe recording for an inbound bare SYN: counted per source network, and when
    /// nothing in the round listens on its TCP port, kept as a probe of a closed port
    /// (the step's count now, the scan breadth at [`RoundBuilder::finish`]).
    fn record_inbound_syn(&mut self, i: usize, p: &PktRow<'_>, e: &Ends) {
        let acc = &mut self.traffic[i];
        if let Some(a) = p.src {
            acc.count_syn_from_net(net_of(a));
        }
        if !self.listening.contains(&port_key(true, e.dport)) {
            acc.note_closed_port(e.dport);
            if let Some(h) = e.src {
                self.probes.push((p.ts, h, e.dport));
            }
        } else if let Some((h, a)) = self.remote_client(p, e) {
            self.repeats.syn(h, client_key(a), e.sport, e.dport);
        }
    }

    /// The source of an inbound packet as a client of the host's services: its address
    /// (hash and text) when it is neither the host's nor loopback.
    fn remote_client<'p>(&self, p: &PktRow<'p>, e: &Ends) -> Option<(u64, &'p str)> {
        let (h, a) = (e.src?, p.src?);
        (!self.carry.local_addrs.contains(&h) && !is_loopback(a)).then_some((h, a))
    }

    /// Bytes of an inbound TCP packet to a port the host listens on, from a remote
    /// client, counted per network ([`RoundKeys::received`]).
    fn record_received(&mut self, p: &PktRow<'_>, e: &Ends) {
        if self.listening.contains(&port_key(true, e.dport))
            && let Some((_, a)) = self.remote_client(p, e)
        {
            self.repeats
                .received(client_key(a), e.dport, p.length.max(0) as u64);
        }
    }

    /// Bytes a local program sent as a client (from a port the host does not listen
    /// on) to a remote address that is neither the host's nor loopback, and the
    /// address's network.
    fn record_upload(&mut self, p: &PktRow<'_>, e: &Ends, tcp: bool) {
        if let (Some(process), Some(h), Some(a)) = (p.process, e.dst, p.dst)
            && !self.listening.contains(&port_key(tcp, e.sport))
            && !self.carry.local_addrs.contains(&h)
            && !is_loopback(a)
        {
            self.uploads.sent(process, h, p.length.max(0) as u64);
            self.peers.sent(process, crate::client_key(a));
        }
    }

    /// Bytes by direction, and the remote end: the other side's address and port (a
    /// port only when the packet has a transport with ports, `has_ports`).
    fn record_transfer(
        &mut self,
        i: usize,
        p: &PktRow<'_>,
        e: &Ends,
        outbound: bool,
        has_ports: bool,
    ) {
        let (remote_addr, remote_port) = if outbound {
            (e.dst, p.dport)
        } else {
            (e.src, p.sport)
        };
        let acc = &mut self.traffic[i];
        acc.add_bytes(outbound, p.length.max(0) as f64, remote_addr);
        acc.note_remote(remote_addr, remote_port.filter(|_| has_ports));
    }

    /// Merges the last interval into the one before, and gives both steps the merged
    /// traffic (crate docs: why the last interval is merged).
    fn merge_last_interval(&mut self) {
        let n = self.step_ts.len();
        if n >= 2 {
            let last = std::mem::take(&mut self.traffic[n - 1]);
            self.traffic[n - 2].merge(last);
            self.traffic[n - 1] = self.traffic[n - 2].clone();
        }
    }

    /// Learning local addresses: those on the host's side of at least
    /// [`LOCAL_ADDR_SHARE`] of this round's packets that have such a side (and of one
    /// packet at least). `None` when no address qualifies, so the previous ones stay.
    fn learnt_local_addrs(&self) -> Option<HashSet<u64>> {
        let min = (f64::from(self.packets) * LOCAL_ADDR_SHARE).max(1.0);
        let learnt: HashSet<u64> = self
            .addr_counts
            .iter()
            .filter(|(_, c)| f64::from(**c) >= min)
            .map(|(a, _)| *a)
            .collect();
        (!learnt.is_empty()).then_some(learnt)
    }

    /// Scan breadth per step: at the end of each step's traffic interval (the round's
    /// end for the merged last two), with this round's probes fed to `scans` in time
    /// order.
    fn scan_breadth(&mut self, scans: &mut ScanTracker) -> Vec<(usize, bool)> {
        let n = self.step_ts.len();
        self.probes.sort_unstable_by_key(|p| p.0);
        let mut probes = self.probes.iter().peekable();
        let mut breadth: Vec<(usize, bool)> = Vec::with_capacity(n);
        for i in 0..n {
            if self.is_merged_last(i) {
                breadth.push(breadth[i - 1]);
                break;
            }
            let merged_tail = i + 2 >= n;
            let until = if merged_tail {
                self.end
            } else {
                self.step_ts[i + 1]
            };
            while let Some(&&(ts, remote, port)) = probes.peek() {
                if ts >= until && !merged_tail {
                    break;
                }
                scans.record(remote, port, ts);
                probes.next();
            }
            let since = if i == 0 { self.start } else { self.step_ts[i] };
            breadth.push((scans.breadth_at(until), scans.widest_probed_since(since)));
        }
        breadth
    }

    /// Step `i` from its feature values `v` (negative values, which no count has, are
    /// clamped to 0).
    fn step(&self, i: usize, v: &[f64], evidence: Evidence) -> Step {
        Step {
            ts: self.step_ts[i],
            round_id: self.round_id,
            raw: v.iter().map(|x| x.max(0.0) as f32).collect(),
            time: calendar_inputs(self.step_ts[i]),
            evidence,
        }
    }
}

/// A packet's two ends as the direction rule sees them, worked out once per packet.
struct Ends {
    /// Source address hash ([`fnv1a`]).
    src: Option<u64>,
    /// Destination address hash.
    dst: Option<u64>,
    /// Source port, 0 when the packet has none.
    sport: u16,
    /// Destination port, 0 when the packet has none.
    dport: u16,
    /// Whether the source port is one the host has a socket on (TCP and UDP only).
    src_host: bool,
    /// Whether the destination port is one the host has a socket on.
    dst_host: bool,
}

/// Whether a stored address is a loopback one (the host's own clients of its services).
fn is_loopback(addr: &str) -> bool {
    addr.starts_with("127.") || addr == "::1" || addr.starts_with("::ffff:127.")
}

/// A SYN without ACK: the opening of a connection (or a probe), not its answer.
fn is_bare_syn(flags: i64) -> bool {
    flags & 0x02 != 0 && flags & 0x10 == 0
}

/// Whether a packet is a DNS query: by the stored QR bit, else a DNS packet without an
/// answer section.
fn is_dns_query(p: &PktRow<'_>, layers: &Layers) -> bool {
    match p.dns_qr {
        Some(q) => q == 0,
        None => layers.contains(Layer::Dns) && !p.has_resp,
    }
}

/// Whether a packet is a DNS answer: by the stored QR bit, else a DNS packet with an
/// answer section.
fn is_dns_response(p: &PktRow<'_>, layers: &Layers) -> bool {
    match p.dns_qr {
        Some(q) => q == 1,
        None => layers.contains(Layer::Dns) && p.has_resp,
    }
}

/// Step times: the round's distinct sample times, or when it has none, every
/// `scan_interval` seconds (5 when unknown, at least 0.5) from `start` through `end`,
/// so a round without a scanner still has steps for its traffic.
fn step_times(socks: &[SockRow], (start, end): (i64, i64), scan_interval: Option<f64>) -> Vec<i64> {
    let mut step_ts: Vec<i64> = socks.iter().map(|s| s.ts).collect();
    step_ts.sort_unstable();
    step_ts.dedup();
    if step_ts.is_empty() {
        let iv = (scan_interval.unwrap_or(5.0).max(0.5) * 1e6) as i64;
        let mut t = start;
        while t <= end.max(start) {
            step_ts.push(t);
            t += iv;
        }
    }
    step_ts
}

/// The socket rows that belong to a step, with that step's index.
fn at_steps<'a>(
    socks: &'a [SockRow],
    step_ts: &'a [i64],
) -> impl Iterator<Item = (usize, &'a SockRow)> + 'a {
    socks
        .iter()
        .filter_map(|s| step_ts.binary_search(&s.ts).ok().map(|i| (i, s)))
}

/// Whether a socket row is a listening one: TCP `LISTEN`, or UDP `UNCONN` (a UDP
/// server's socket is unconnected).
fn is_listen(s: &SockRow) -> bool {
    let st = s.state.as_str();
    if s.tcp {
        st.eq_ignore_ascii_case("LISTEN")
    } else {
        st.eq_ignore_ascii_case("UNCONN")
    }
}

/// Index of a socket's state among [`SOCKET_STATES_TCP`] followed by the UDP states.
fn socket_state(s: &SockRow) -> usize {
    let st = s.state.as_str();
    if s.tcp {
        ["LISTEN", "ESTABLISHED", "TIME_WAIT"]
            .iter()
            .position(|x| st.eq_ignore_ascii_case(x))
            .unwrap_or(3) // "other"
    } else {
        SOCKET_STATES_TCP.len() + usize::from(!is_listen(s))
    }
}

/// Listening sockets and owners: the round's listening port keys, per step and in any
/// step, and the process owning each (the first row's).
struct Listeners {
    /// Per step, sorted so buckets and new ports are visited in a fixed order.
    per_step: Vec<BTreeSet<u32>>,
    /// In any step of the round.
    any: HashSet<u32>,
    /// Owning process per port key, from the first row naming it.
    owner: HashMap<u32, Option<String>>,
}

impl Listeners {
    fn of(socks: &[SockRow], step_ts: &[i64]) -> Self {
        let mut l = Listeners {
            per_step: vec![BTreeSet::new(); step_ts.len()],
            any: HashSet::new(),
            owner: HashMap::new(),
        };
        for (i, s) in at_steps(socks, step_ts).filter(|(_, s)| is_listen(s)) {
            let key = port_key(s.tcp, s.port);
            l.any.insert(key);
            l.per_step[i].insert(key);
            l.owner.entry(key).or_insert_with(|| s.process.clone());
        }
        l
    }
}

/// Socket counts: per step, the sockets of each (state, port class), in a vector the
/// length of the socket features ([`F_PKTS`]).
fn socket_counts(socks: &[SockRow], step_ts: &[i64], listening: &[BTreeSet<u32>]) -> Vec<Vec<f64>> {
    let mut sock = vec![vec![0.0f64; F_PKTS]; step_ts.len()];
    for (i, s) in at_steps(socks, step_ts) {
        let class = port_class(s.port, listening[i].contains(&port_key(s.tcp, s.port)));
        sock[i][socket_state(s) * PORT_CLASSES.len() + class] += s.sockets.max(0) as f64;
    }
    sock
}

/// Distinct owning processes per step.
fn count_processes(socks: &[SockRow], step_ts: &[i64], sock: &mut [Vec<f64>]) {
    let mut procs: Vec<HashSet<&str>> = vec![HashSet::new(); step_ts.len()];
    for (i, s) in at_steps(socks, step_ts) {
        if let Some(p) = &s.process {
            procs[i].insert(p.as_str());
        }
    }
    for (v, p) in sock.iter_mut().zip(&procs) {
        v[F_PROCESSES] = p.len() as f64;
    }
}

/// Port keys the host has any socket on in the round: the host's side of a packet.
fn host_ports(socks: &[SockRow], step_ts: &[i64]) -> HashSet<u32> {
    at_steps(socks, step_ts)
        .map(|(_, s)| port_key(s.tcp, s.port))
        .collect()
}

/// Listening ports per step, by hashed bucket ([`listen_bucket`]).
fn count_listen_buckets(listening: &[BTreeSet<u32>], sock: &mut [Vec<f64>]) {
    for (v, keys) in sock.iter_mut().zip(listening) {
        for &key in keys {
            v[F_BUCKETS + listen_bucket((key & 0xffff) as u16)] += 1.0;
        }
    }
}

/// New listening ports: per step, the listening ports not in `seen` yet (which gains
/// them), and the first few as evidence with their owner.
fn new_listening_ports(
    listeners: &Listeners,
    seen: &mut Seen,
    sock: &mut [Vec<f64>],
) -> Vec<Evidence> {
    let mut evidence = vec![Evidence::default(); sock.len()];
    for ((v, ev), keys) in sock.iter_mut().zip(&mut evidence).zip(&listeners.per_step) {
        for &key in keys {
            if seen.add_port(key) {
                v[F_NEW_LISTEN] += 1.0;
                if ev.new_ports.len() < MAX_EVIDENCE {
                    let tcp = key >> 16 == 1;
                    ev.new_ports.push((
                        if tcp { "tcp" } else { "udp" }.to_string(),
                        (key & 0xffff) as u16,
                        listeners.owner.get(&key).cloned().flatten(),
                    ));
                }
            }
        }
    }
    evidence
}

/// The round's listening port keys, sorted: its ports for [`RoundKeys`].
fn round_ports(listening: &[BTreeSet<u32>]) -> Vec<u32> {
    let all: BTreeSet<u32> = listening.iter().flatten().copied().collect();
    all.into_iter().collect()
}

/// DNS name features that need the seen-set: the step's distinct names not in `seen`
/// yet (which gains them), the first few as evidence, all into `names_round`. Returns
/// the count of new names.
fn new_dns_names(
    acc: &TrafficAcc,
    seen: &mut Seen,
    evidence: &mut Evidence,
    names_round: &mut BTreeSet<String>,
) -> f64 {
    let mut new = 0.0;
    for name in acc.distinct_names() {
        if seen.add_name(name) {
            new += 1.0;
            if evidence.new_names.len() < MAX_EVIDENCE {
                evidence.new_names.push(name.to_string());
            }
        }
        names_round.insert(name.to_string());
    }
    new
}

/// The merged last step repeats the previous one's traffic: its "new" names too (they
/// are no longer new to `seen`). Returns the previous step's count of new names.
fn repeat_new_names(prev: Option<&Step>, evidence: &mut Evidence) -> f64 {
    let mut new = 0.0;
    if let Some(prev) = prev {
        new = f64::from(prev.raw[F_DNS_NEW]);
        evidence.new_names = prev.evidence.new_names.clone();
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::feature_names;

    fn sock(ts: i64, port: u16, tcp: bool, state: &str, n: i64) -> SockRow {
        SockRow {
            ts,
            port,
            tcp,
            state: state.into(),
            sockets: n,
            process: Some("sshd".into()),
        }
    }

    /// A bare SYN from `src`:`sport` to the host (10.0.0.1) port `dport`.
    fn syn_to_host(ts: i64, src: &str, sport: u16, dport: u16) -> PktRow<'_> {
        PktRow {
            ts,
            protocols: "eth:ipv4:tcp",
            sport: Some(sport),
            dport: Some(dport),
            src: Some(src),
            dst: Some("10.0.0.1"),
            length: 60,
            tcp_flags: Some(0x02),
            ..Default::default()
        }
    }

    /// A round of 10 s sampled every 5 s.
    fn ten_seconds(socks: &[SockRow], seen: &mut Seen) -> RoundBuilder {
        let s = crate::calendar::SECOND;
        RoundBuilder::new(1, (0, 10 * s), Some(5.0), socks, seen, Carry::default())
    }

    #[test]
    fn socket_and_packet_features() {
        let s = crate::calendar::SECOND;
        let socks = vec![
            sock(0, 22, true, "LISTEN", 1),
            sock(0, 22, true, "ESTABLISHED", 2),
            sock(5 * s, 22, true, "LISTEN", 1),
            sock(5 * s, 8080, true, "LISTEN", 1),
            sock(5 * s, 53000, false, "UNCONN", 1),
            sock(5 * s, 8080, true, "ESTABLISHED", 3),
            sock(5 * s, 41000, true, "ESTABLISHED", 4),
            sock(5 * s, 50000, true, "TIME_WAIT", 5),
            sock(10 * s, 22, true, "LISTEN", 1),
        ];
        let mut seen = Seen::default();
        seen.add_port(port_key(true, 22));
        let mut b = ten_seconds(&socks, &mut seen);
        // Inbound SYN to 22 at t=1 s, DNS query at 6 s, one at 10.5 s (merged into step 1).
        b.add_packet(&PktRow {
            ts: s,
            protocols: "eth:ipv4:tcp",
            sport: Some(40000),
            dport: Some(22),
            src: Some("10.0.0.9"),
            dst: Some("10.0.0.1"),
            length: 60,
            tcp_flags: Some(0x02),
            ..Default::default()
        });
        for t in [6 * s, 10 * s + s / 2] {
            b.add_packet(&PktRow {
                ts: t,
                protocols: "eth:ipv4:udp:dns",
                qry_name: Some("example.com"),
                sport: Some(50000),
                dport: Some(53),
                src: Some("10.0.0.1"),
                dst: Some("10.0.0.53"),
                length: 80,
                dns_qr: Some(0),
                ..Default::default()
            });
        }
        let (steps, keys, carry) = b.finish(&mut seen);
        assert_eq!(steps.len(), 3);
        assert!(
            carry.local_addrs.contains(&fnv1a(b"10.0.0.1")),
            "on every packet"
        );
        let names = feature_names();
        let get = |i: usize, n: &str| {
            let j = names.iter().position(|x| x == n).unwrap();
            steps[i].raw[j]
        };
        assert_eq!(get(0, "tcp_listen_wk"), 1.0);
        assert_eq!(get(0, "tcp_estab_wk"), 2.0);
        assert_eq!(get(1, "tcp_listen_svc"), 1.0);
        assert_eq!(get(1, "udp_unconn_svc"), 1.0);
        assert_eq!(get(1, "tcp_estab_svc"), 3.0, "server side of a listener");
        assert_eq!(get(1, "tcp_estab_cli"), 4.0, "the host's own connection");
        assert_eq!(get(1, "tcp_timewait_cli"), 5.0);
        assert_eq!(get(0, "tcp_estab_cli"), 0.0);
        assert_eq!(get(0, "new_listening_ports"), 0.0);
        assert_eq!(get(1, "new_listening_ports"), 2.0);
        assert_eq!(get(2, "new_listening_ports"), 0.0);
        assert_eq!(get(0, "tcp_bare_syn"), 1.0);
        assert_eq!(get(0, "bytes_in"), 60.0);
        assert_eq!(get(0, "bytes_out"), 0.0);
        assert_eq!(get(1, "dns_queries"), 2.0);
        assert_eq!(get(1, "dns_names"), 1.0);
        assert_eq!(get(1, "dns_new_names"), 1.0);
        assert_eq!(
            get(2, "dns_queries"),
            2.0,
            "last step repeats the one before"
        );
        assert_eq!(get(1, "bytes_out"), 160.0);
        assert_eq!(get(1, "bytes_out_top_remote"), 160.0);
        assert_eq!(get(1, "dns_name_len_max"), 11.0);
        assert_eq!(steps[1].evidence.new_ports.len(), 2);
        assert_eq!(keys.ports.len(), 3);
        assert_eq!(keys.names, vec!["example.com".to_string()]);
        assert!(seen.has_name("example.com"));
    }

    #[test]
    fn programs_are_the_processes_on_the_network_that_listen_on_nothing() {
        let s = crate::calendar::SECOND;
        let mut socks = vec![
            sock(0, 22, true, "LISTEN", 1),
            sock(0, 22, true, "ESTABLISHED", 1),
            sock(0, 41000, true, "ESTABLISHED", 1),
        ];
        socks[2].process = Some("curl".into());
        let mut seen = Seen::default();
        let mut b = ten_seconds(&socks, &mut seen);
        for process in [Some("restic"), Some("sshd"), Some("restic"), None] {
            b.add_packet(&PktRow {
                ts: s,
                protocols: "eth:ipv4:tcp",
                process,
                length: 60,
                ..Default::default()
            });
        }
        let (steps, keys, _) = b.finish(&mut seen);
        assert_eq!(
            keys.programs,
            vec!["curl".to_string(), "restic".to_string()]
        );
        // What a mask left out of the features stays in the keys when asked to.
        let mut masked = ten_seconds(&socks[..1], &mut Seen::default());
        masked.keep_keys_of(&socks[1..]);
        masked.keep_program_of(&PktRow {
            ts: s,
            protocols: "eth:ipv4:tcp",
            process: Some("restic"),
            ..Default::default()
        });
        let (masked_steps, masked_keys, _) = masked.finish(&mut Seen::default());
        assert_eq!(masked_keys.programs, keys.programs);
        assert_eq!(masked_keys.ports, keys.ports);
        let estab = feature_names()
            .iter()
            .position(|n| n == "tcp_estab_wk")
            .unwrap();
        assert_eq!(steps[0].raw[estab], 1.0);
        assert_eq!(masked_steps[0].raw[estab], 0.0, "but not in the features");
        assert!(seen.has_program("curl"), "untracked: nothing is new");
        seen.add_keys(&keys);
        assert!(seen.has_program("restic") && !seen.has_program("nmap"));
    }

    #[test]
    fn round_without_samples_gets_steps_from_interval() {
        let mut seen = Seen::default();
        let s = crate::calendar::SECOND;
        let b = RoundBuilder::new(1, (0, 55 * s), Some(5.0), &[], &mut seen, Carry::default());
        let (steps, _, _) = b.finish(&mut seen);
        assert_eq!(steps.len(), 12);
    }

    /// A remote probing one closed port every 10 s, over two rounds: breadth grows
    /// across the round boundary and forgets probes older than the horizon; stray
    /// probes from many addresses stay at 1; SYNs from one /24 add up per step.
    #[test]
    fn scan_breadth_spans_rounds_and_syns_group_by_network() {
        let s = crate::calendar::SECOND;
        let names = feature_names();
        let col = |n: &str| names.iter().position(|x| x == n).unwrap();
        let socks = |t0: i64| -> Vec<SockRow> {
            (0..12)
                .map(|k| sock(t0 + k * 5 * s, 22, true, "LISTEN", 1))
                .collect()
        };
        fn syn(ts: i64, src: &str, dport: u16) -> PktRow<'_> {
            syn_to_host(ts, src, 40000, dport)
        }
        let mut seen = Seen::default();
        let mut carry = Carry::default();
        carry.local_addrs.insert(fnv1a(b"10.0.0.1"));
        let mut breadth = Vec::new();
        for round in 0..12i64 {
            let t0 = round * 60 * s;
            let rs = socks(t0);
            let mut b =
                RoundBuilder::new(round, (t0, t0 + 55 * s), Some(5.0), &rs, &mut seen, carry);
            for k in 0..6 {
                let port = 1000 + (round * 6 + k) as u16;
                b.add_packet(&syn(t0 + k * 10 * s + s, "203.0.113.7", port));
            }
            // Strays from different networks, and one to the open port 22.
            b.add_packet(&syn(t0 + 2 * s, &format!("198.51.{round}.9"), 23));
            b.add_packet(&syn(t0 + 3 * s, "192.0.2.1", 22));
            let (steps, _, c) = b.finish(&mut seen);
            carry = c;
            breadth.extend(steps.iter().map(|st| st.raw[col("scan_breadth")]));
            let fresh = steps.iter().filter(|st| st.evidence.scan_fresh).count();
            assert!(
                fresh >= 5,
                "a probe every other step: the scan goes on ({fresh})"
            );
        }
        // Two quiet rounds: the breadth remembers the scan, which is over.
        for round in 12..14i64 {
            let t0 = round * 60 * s;
            let rs = socks(t0);
            let b = RoundBuilder::new(round, (t0, t0 + 55 * s), Some(5.0), &rs, &mut seen, carry);
            let (steps, _, c) = b.finish(&mut seen);
            carry = c;
            assert!(steps[0].raw[col("scan_breadth")] > 0.0);
            assert!(
                steps.iter().all(|st| !st.evidence.scan_fresh),
                "memory only"
            );
        }
        assert_eq!(breadth[0], 1.0);
        assert_eq!(breadth[11], 6.0, "six probes in the first round");
        assert_eq!(breadth[12], 7.0, "the count goes on in the next round");
        assert_eq!(breadth[9 * 12 + 11], 60.0, "ten minutes of probes");
        assert_eq!(breadth[11 * 12 + 11], 60.0, "older probes are forgotten");
        // /24 grouping: 20 SYNs from 20 addresses of one /24 in one step.
        let rs = socks(0);
        let mut b = RoundBuilder::new(99, (0, 55 * s), Some(5.0), &rs, &mut seen, Carry::default());
        for k in 0..20 {
            b.add_packet(&syn(s + k, &format!("192.0.2.{k}"), 22));
        }
        b.add_packet(&syn(s, "2001:db8:1::5", 22));
        let (steps, _, _) = b.finish(&mut seen);
        assert_eq!(steps[0].raw[col("inbound_syn_top_net")], 20.0);
        assert_eq!(steps[1].raw[col("inbound_syn_top_net")], 0.0);
        assert_eq!(
            steps[0].raw[col("scan_breadth")],
            0.0,
            "22 listens: not a probe"
        );
    }

    #[test]
    fn connections_from_one_remote_to_a_listener_are_the_rounds_peak() {
        let s = crate::calendar::SECOND;
        let socks: Vec<SockRow> = (0..12)
            .map(|k| sock(k * 5 * s, 22, true, "LISTEN", 1))
            .collect();
        let syn = syn_to_host;
        let mut seen = Seen::default();
        let mut carry = Carry::default();
        carry.local_addrs.insert(fnv1a(b"10.0.0.1"));
        let mut b = RoundBuilder::new(1, (0, 55 * s), Some(5.0), &socks, &mut seen, carry);
        for k in 0..9u16 {
            let ts = i64::from(k) * 5 * s;
            b.add_packet(&syn(ts, "203.0.113.7", 40_000 + k, 22));
            b.add_packet(&syn(ts + s, "203.0.113.7", 40_000 + k, 22)); // retransmitted
        }
        b.add_packet(&syn(s, "198.51.100.23", 50_000, 22));
        // The host's own clients, and probes of a closed port, are not counted.
        for k in 0..20u16 {
            b.add_packet(&syn(2 * s, "127.0.0.1", 30_000 + k, 22));
            b.add_packet(&syn(2 * s, "10.0.0.1", 31_000 + k, 22));
            b.add_packet(&syn(3 * s, "192.0.2.1", 32_000 + k, 23));
        }
        // The host's own connections: its programs' services, by the SYN that opens them.
        let out = |flags: i64, dport: u16, process: &'static str| PktRow {
            ts: 4 * s,
            protocols: "eth:ipv4:tcp",
            sport: Some(45_000),
            dport: Some(dport),
            src: Some("10.0.0.1"),
            dst: Some("198.51.100.9"),
            length: 60,
            tcp_flags: Some(flags),
            process: Some(process),
            ..Default::default()
        };
        b.add_packet(&out(0x02, 25, "gunicorn"));
        b.add_packet(&out(0x02, 25, "gunicorn"));
        b.add_packet(&out(0x02, 443, "curl"));
        b.add_packet(&out(0x10, 993, "curl")); // no connection opened
        b.add_packet(&out(0x02, 22, "sshd")); // sshd listens on 22: a client's, misread
        b.add_packet(&out(0x02, 22, "backup")); // another program's connection to :22
        // What a client sends in its connection counts with its SYNs, per network: 18
        // SYNs of 60 bytes and two segments from 203.0.113.0/24, one SYN from
        // 198.51.100.0/24. Loopback's, the host's own, and :23's are not counted.
        for src in ["203.0.113.7", "203.0.113.8", "127.0.0.1", "10.0.0.1"] {
            b.add_packet(&PktRow {
                length: 1514,
                tcp_flags: Some(0x18),
                ..syn(5 * s, src, 40_000, 22)
            });
        }
        let (_, keys, _) = b.finish(&mut seen);
        assert_eq!(keys.repeats, vec![(port_key(true, 22), 9)]);
        let mut received = vec![
            (client_key("203.0.113.7"), 18 * 60 + 2 * 1514),
            (client_key("198.51.100.23"), 60),
        ];
        received.sort_unstable();
        assert_eq!(keys.received, vec![(port_key(true, 22), received)]);
        // Two client networks at :22; loopback, the host's own address and :23 (nothing
        // listens: a probe) are none.
        let mut nets = vec![client_key("203.0.113.7"), client_key("198.51.100.23")];
        nets.sort_unstable();
        assert_eq!(keys.clients, vec![(port_key(true, 22), nets)]);
        assert_eq!(
            keys.services,
            vec![
                ("backup".to_string(), 22),
                ("curl".to_string(), 443),
                ("gunicorn".to_string(), 25)
            ]
        );
    }

    /// An upload to port 443 of a remote from a host that serves 443 itself: the bulk
    /// of the round's packets have a host's port at both ends, and the remote must not
    /// be learnt as one of the host's addresses (it was: the next rounds' uploads then
    /// went unseen, as traffic between two of the host's own addresses).
    #[test]
    fn the_server_of_an_upload_to_a_port_the_host_serves_is_not_learnt_as_local() {
        let s = crate::calendar::SECOND;
        let mut socks: Vec<SockRow> = (0..12)
            .map(|k| sock(k * 5 * s, 443, true, "LISTEN", 1))
            .collect();
        socks.extend((0..12).map(|k| sock(k * 5 * s, 45_000, true, "ESTABLISHED", 1)));
        let mut seen = Seen::default();
        let mut b = RoundBuilder::new(
            1,
            (0, 55 * s),
            Some(5.0),
            &socks,
            &mut seen,
            Carry::default(),
        );
        let pkt = |sport: u16, dport: u16, src: &'static str, dst: &'static str| PktRow {
            ts: 4 * s,
            protocols: "eth:ipv4:tcp",
            sport: Some(sport),
            dport: Some(dport),
            src: Some(src),
            dst: Some(dst),
            length: 1514,
            tcp_flags: Some(0x10),
            ..Default::default()
        };
        for _ in 0..90 {
            b.add_packet(&pkt(45_000, 443, "10.0.0.1", "198.51.100.80"));
            b.add_packet(&pkt(443, 45_000, "198.51.100.80", "10.0.0.1"));
        }
        // Its own clients, a few.
        for k in 0..10 {
            b.add_packet(&pkt(443, 50_000 + k, "10.0.0.1", "203.0.113.9"));
        }
        let (_, _, carry) = b.finish(&mut seen);
        assert!(carry.local_addrs.contains(&fnv1a(b"10.0.0.1")));
        assert!(
            !carry.local_addrs.contains(&fnv1a(b"198.51.100.80")),
            "the upload's server is not the host"
        );
    }

    #[test]
    fn a_programs_upload_peak_is_what_it_sent_one_remote_as_a_client() {
        let s = crate::calendar::SECOND;
        let socks: Vec<SockRow> = (0..12)
            .map(|k| sock(k * 5 * s, 443, true, "LISTEN", 1))
            .collect();
        let mut seen = Seen::default();
        let mut carry = Carry::default();
        carry.local_addrs.insert(fnv1a(b"10.0.0.1"));
        let mut b = RoundBuilder::new(1, (0, 55 * s), Some(5.0), &socks, &mut seen, carry);
        let pkt = |sport: u16, src: &'static str, dst: &'static str, length: i64| PktRow {
            ts: 4 * s,
            protocols: "eth:ipv4:tcp",
            sport: Some(sport),
            dport: Some(if src == "10.0.0.1" { 443 } else { 51_000 }),
            src: Some(src),
            dst: Some(dst),
            length,
            tcp_flags: Some(0x18),
            process: Some("celery"),
            ..Default::default()
        };
        for _ in 0..10 {
            b.add_packet(&pkt(45_000, "10.0.0.1", "198.51.100.80", 1500));
        }
        b.add_packet(&pkt(45_001, "10.0.0.1", "198.51.100.81", 9000));
        // Not counted: answers from the port the host listens on, what the host
        // receives, its own address and loopback.
        b.add_packet(&pkt(443, "10.0.0.1", "198.51.100.82", 90_000));
        b.add_packet(&pkt(443, "198.51.100.80", "10.0.0.1", 90_000));
        b.add_packet(&pkt(45_002, "10.0.0.1", "10.0.0.1", 90_000));
        b.add_packet(&pkt(45_003, "10.0.0.1", "127.0.0.1", 90_000));
        b.add_packet(&pkt(45_004, "10.0.0.1", "203.0.113.5", 100));
        let (_, keys, _) = b.finish(&mut seen);
        assert_eq!(keys.uploads, vec![("celery".to_string(), 15_000)]);
        // The same packets' peers: both 198.51.100.x addresses are one network.
        let mut nets = vec![
            ("celery".to_string(), client_key("198.51.100.80")),
            ("celery".to_string(), client_key("203.0.113.5")),
        ];
        nets.sort_unstable();
        assert_eq!(keys.peers, nets);
        assert_ne!(nets[0].1, nets[1].1);
    }

    #[test]
    fn the_networks_that_answer_the_hosts_lookups_are_its_resolvers() {
        let s = crate::calendar::SECOND;
        let socks: Vec<SockRow> = (0..12)
            .map(|k| sock(k * 5 * s, 53, false, "UNCONN", 1))
            .collect();
        let mut seen = Seen::default();
        let mut carry = Carry::default();
        carry.local_addrs.insert(fnv1a(b"10.0.0.1"));
        let mut b = RoundBuilder::new(1, (0, 55 * s), Some(5.0), &socks, &mut seen, carry);
        let dns = |src: &'static str, dst: &'static str, sport: u16, dport: u16, qr: i64| PktRow {
            ts: 4 * s,
            protocols: "eth:ipv4:udp:dns",
            qry_name: Some("example.com"),
            sport: Some(sport),
            dport: Some(dport),
            src: Some(src),
            dst: Some(dst),
            length: 90,
            dns_qr: Some(qr),
            ..Default::default()
        };
        // The host's lookup and its answer, through two resolvers of one network and
        // one of another.
        for resolver in ["10.0.2.3", "10.0.2.4", "203.0.113.53"] {
            b.add_packet(&dns("10.0.0.1", resolver, 40_000, 53, 0));
            b.add_packet(&dns(resolver, "10.0.0.1", 53, 40_000, 1));
        }
        // Not resolvers: the host's own DNS service answering a client, a client's
        // query to it, loopback (a local stub), and an answer not from port 53.
        b.add_packet(&dns("198.51.100.7", "10.0.0.1", 41_000, 53, 0));
        b.add_packet(&dns("10.0.0.1", "198.51.100.7", 53, 41_000, 1));
        b.add_packet(&dns("127.0.0.53", "10.0.0.1", 53, 40_001, 1));
        b.add_packet(&dns("192.0.2.1", "10.0.0.1", 5353, 5353, 1));
        let (_, keys, _) = b.finish(&mut seen);
        let mut nets = vec![client_key("10.0.2.3"), client_key("203.0.113.53")];
        nets.sort_unstable();
        assert_eq!(keys.resolvers, nets);
        assert_eq!(client_key("10.0.2.3"), client_key("10.0.2.4"));
        // Learnt, they are known; another network is a new resolver, but only on a host
        // that had one.
        let mut seen = Seen::default();
        assert!(!seen.new_resolver(client_key("192.0.2.1")), "not tracked");
        seen.add_resolvers(&[]);
        assert!(!seen.new_resolver(client_key("192.0.2.1")), "none learnt");
        seen.add_keys(&keys);
        assert!(!seen.new_resolver(client_key("10.0.2.9")));
        assert!(seen.new_resolver(client_key("192.0.2.1")));
    }
}
