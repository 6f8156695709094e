//! Features per time step (one scanner sample), the feature spec, the seen-set of
//! listening ports and DNS names, and the robust scaler.
//!
//! A step's socket features come from the `rounds_ports` rows of its sample. Its traffic
//! features come from the packets between its sample and the next one; the round's last
//! sample has no next sample inside the round, so its interval is merged into the one
//! before and both steps carry the same traffic figures (otherwise every 12th step would
//! show an empty sliver of time, which the model would have to learn as a pattern).
//!
//! Direction rule (the schema stores no local addresses): the host's own addresses are
//! learnt from traffic — in a host capture they are on the host's side (the side whose
//! port the host has a socket on) of nearly every packet, so an address on that side of
//! at least a fifth of a round's packets is local for the next round.
//! A packet from a local address to a non-local one is *outbound*, the reverse
//! *inbound*. Otherwise (first round, loopback) ports decide: outbound when the source
//! port is one the host has a socket on in this round and the destination port is not,
//! inbound in the mirror case, and else the side with the higher port number is taken as
//! the client. The remote address and port are the other side's.

pub mod calendar;

pub use calendar::SECOND;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

/// Version of the feature definitions below; a model saved with another version is refused.
pub const SPEC_VERSION: u32 = 2;
/// Buckets for hashed listening ports ([`listen_bucket`]).
pub const N_BUCKETS: usize = 64;
/// Calendar inputs per step (time of day, day of week; sin and cos): fed to the model
/// but neither reconstructed nor scored.
pub const N_TIME: usize = 4;
/// Scaled values are clipped to ±CLIP so one huge count cannot dominate training.
pub const CLIP: f32 = 30.0;
/// Smallest scale (IQR of log1p values): features that never vary in training (a port
/// class that is always empty) would otherwise divide by zero.
pub const MIN_SCALE: f32 = 0.25;
/// Most DNS names remembered in the seen-set (oldest forgotten first).
pub const MAX_SEEN_NAMES: usize = 20_000;
/// How far back a remote address's probes of closed ports are remembered for
/// `scan_breadth` (µs): ten minutes, so a scan of one port every 10 s reaches 60.
pub const SCAN_HORIZON: i64 = 600 * crate::calendar::SECOND;

const SOCKET_STATES_TCP: [&str; 4] = ["listen", "estab", "timewait", "other"];
const SOCKET_STATES_UDP: [&str; 2] = ["unconn", "estab"];
/// Where a socket's local port sits: below 1024 (`wk`), another port the host listens on
/// in that sample (`svc`: the server side of inbound connections), or any other port
/// (`cli`: the client side of the host's own connections). Not IANA's registered /
/// dynamic split: Linux draws client ports from 32768–60999, across that boundary, so
/// the same pool of connections would move between classes from one day to the next.
const PORT_CLASSES: [&str; 3] = ["wk", "svc", "cli"];
const N_SOCKET: usize = (SOCKET_STATES_TCP.len() + SOCKET_STATES_UDP.len()) * PORT_CLASSES.len();

/// Index of the first feature after the socket counts and buckets.
const F_BUCKETS: usize = N_SOCKET;
const F_NEW_LISTEN: usize = F_BUCKETS + N_BUCKETS;
const F_PROCESSES: usize = F_NEW_LISTEN + 1;
const F_PKTS: usize = F_PROCESSES + 1;
const F_PKTS_TCP: usize = F_PKTS + 1;
const F_PKTS_UDP: usize = F_PKTS + 2;
const F_PKTS_ICMP: usize = F_PKTS + 3;
const F_PKTS_OTHER: usize = F_PKTS + 4;
const F_BYTES_IN: usize = F_PKTS + 5;
const F_BYTES_OUT: usize = F_PKTS + 6;
const F_REMOTE_PORTS: usize = F_PKTS + 7;
const F_REMOTE_ADDRS: usize = F_PKTS + 8;
const F_SYN: usize = F_PKTS + 9;
const F_DNS_QUERIES: usize = F_PKTS + 10;
const F_DNS_NAMES: usize = F_PKTS + 11;
const F_DNS_NEW: usize = F_PKTS + 12;
const F_DNS_CHARS: usize = F_PKTS + 13;
const F_DNS_LEN_MAX: usize = F_PKTS + 14;
const F_DNS_HIGH_ENTROPY: usize = F_PKTS + 15;
const F_QUIC: usize = F_PKTS + 16;
const F_TLS: usize = F_PKTS + 17;
const F_BYTES_OUT_TOP: usize = F_PKTS + 18;
const F_SYN_CLOSED: usize = F_PKTS + 19;
const F_SCAN_BREADTH: usize = F_PKTS + 20;
const F_SYN_TOP_NET: usize = F_PKTS + 21;
/// Number of scored features per step.
pub const N_FEATURES: usize = F_SYN_TOP_NET + 1;
/// Bits per character above which a DNS name looks random (tunnels, DGAs): English-like
/// names such as `api.github.com` stay near 3.3.
pub const HIGH_ENTROPY: f32 = 4.0;
/// Share of a round's packets an address must appear in to count as the host's own.
pub const LOCAL_ADDR_SHARE: f64 = 0.2;

/// The names of the features, in order (the feature spec saved with a model).
pub fn feature_names() -> Vec<String> {
    let mut v = Vec::with_capacity(N_FEATURES);
    for s in SOCKET_STATES_TCP {
        for c in PORT_CLASSES {
            v.push(format!("tcp_{s}_{c}"));
        }
    }
    for s in SOCKET_STATES_UDP {
        for c in PORT_CLASSES {
            v.push(format!("udp_{s}_{c}"));
        }
    }
    for b in 0..N_BUCKETS {
        v.push(format!("listen_bucket_{b:02}"));
    }
    for n in [
        "new_listening_ports",
        "processes",
        "packets",
        "packets_tcp",
        "packets_udp",
        "packets_icmp",
        "packets_other",
        "bytes_in",
        "bytes_out",
        "remote_ports",
        "remote_addrs",
        "tcp_bare_syn",
        "dns_queries",
        "dns_names",
        "dns_new_names",
        "dns_name_chars",
        "dns_name_len_max",
        "dns_high_entropy_names",
        "quic_packets",
        "tls_packets",
        "bytes_out_top_remote",
        "inbound_syn_closed_ports",
        "scan_breadth",
        "inbound_syn_top_net",
    ] {
        v.push(n.to_string());
    }
    v
}

/// The feature spec as saved in the sidecar: a version and the names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// [`SPEC_VERSION`].
    pub version: u32,
    /// [`feature_names`].
    pub names: Vec<String>,
    /// [`N_BUCKETS`].
    pub buckets: usize,
    /// [`N_TIME`].
    pub time_inputs: usize,
}

impl FeatureSpec {
    /// The spec this build computes.
    pub fn current() -> Self {
        FeatureSpec {
            version: SPEC_VERSION,
            names: feature_names(),
            buckets: N_BUCKETS,
            time_inputs: N_TIME,
        }
    }
}

/// 64-bit FNV-1a: a stable hash (std's hasher is randomly keyed per process).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The bucket of a listening port: FNV-1a over its two big-endian bytes, modulo
/// [`N_BUCKETS`], whatever the protocol. `collector simulate` aims its hard backdoor at
/// this function, so it is the one definition both use.
pub fn listen_bucket(port: u16) -> usize {
    (fnv1a(&port.to_be_bytes()) % N_BUCKETS as u64) as usize
}

/// [`PORT_CLASSES`] index of a local port, given whether the host listens on it.
fn port_class(port: u16, listened: bool) -> usize {
    match (port, listened) {
        (0..=1023, _) => 0,
        (_, true) => 1,
        _ => 2,
    }
}

/// Shannon entropy (bits per character) of a name's characters.
pub fn entropy(name: &str) -> f32 {
    let mut counts: HashMap<char, u32> = HashMap::new();
    let mut n = 0u32;
    for c in name.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f32;
    counts
        .values()
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

/// Listening ports and DNS names seen in earlier (normal) data: "new" counts are
/// relative to this set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Seen {
    /// `(tcp as u32) << 16 | port`.
    pub ports: BTreeSet<u32>,
    /// Names in insertion order (the set is rebuilt on load).
    pub names: VecDeque<String>,
    #[serde(skip)]
    name_set: HashSet<String>,
}

impl Seen {
    /// Rebuilds the lookup set after deserialising.
    pub fn rebuild(&mut self) {
        self.name_set = self.names.iter().cloned().collect();
    }
    /// Whether a listening port is known.
    pub fn has_port(&self, key: u32) -> bool {
        self.ports.contains(&key)
    }
    /// Adds a listening port; true if it was new.
    pub fn add_port(&mut self, key: u32) -> bool {
        self.ports.insert(key)
    }
    /// Whether a DNS name is known.
    pub fn has_name(&self, name: &str) -> bool {
        self.name_set.contains(name)
    }
    /// Adds a DNS name; true if it was new.
    pub fn add_name(&mut self, name: &str) -> bool {
        if self.name_set.contains(name) {
            return false;
        }
        self.name_set.insert(name.to_string());
        self.names.push_back(name.to_string());
        while self.names.len() > MAX_SEEN_NAMES {
            if let Some(old) = self.names.pop_front() {
                self.name_set.remove(&old);
            }
        }
        true
    }
    /// Adds what a round contained.
    pub fn add_keys(&mut self, keys: &RoundKeys) {
        for p in &keys.ports {
            self.add_port(*p);
        }
        for n in &keys.names {
            self.add_name(n);
        }
    }
}

/// Key for a listening (protocol, port) in [`Seen`].
pub fn port_key(tcp: bool, port: u16) -> u32 {
    (u32::from(tcp) << 16) | u32::from(port)
}

/// Listening ports and DNS names that occurred in a round (to extend [`Seen`] once the
/// round is known to be normal).
#[derive(Clone, Debug, Default)]
pub struct RoundKeys {
    /// Port keys ([`port_key`]).
    pub ports: Vec<u32>,
    /// Query names.
    pub names: Vec<String>,
}

/// What lies behind a step's values, for explanations.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// Listening ports first seen at this step: (protocol, port, process).
    pub new_ports: Vec<(String, u16, Option<String>)>,
    /// DNS names first seen at this step (at most a few).
    pub new_names: Vec<String>,
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

/// One `rounds_ports` row.
#[derive(Clone, Debug)]
pub struct SockRow {
    /// Sample time (µs).
    pub ts: i64,
    /// Local port.
    pub port: u16,
    /// TCP (else UDP).
    pub tcp: bool,
    /// Socket state as stored (`LISTEN`, `UNCONN`, …).
    pub state: String,
    /// Sockets in this row.
    pub sockets: i64,
    /// Owning process.
    pub process: Option<String>,
}

/// The packet columns features use.
#[derive(Clone, Debug, Default)]
pub struct PktRow<'a> {
    /// Capture time (µs).
    pub ts: i64,
    /// Layer stack, e.g. `eth:ipv4:udp:dns`.
    pub protocols: &'a str,
    /// DNS question name.
    pub qry_name: Option<&'a str>,
    /// Whether the DNS answer section is present.
    pub has_resp: bool,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// Source address.
    pub src: Option<&'a str>,
    /// Destination address.
    pub dst: Option<&'a str>,
    /// Wire length.
    pub length: i64,
    /// TCP flags.
    pub tcp_flags: Option<i64>,
    /// 0 query, 1 response, None when not DNS.
    pub dns_qr: Option<i64>,
}

#[derive(Default, Clone)]
struct TrafficAcc {
    counts: [f64; 5], // total, tcp, udp, icmp, other
    bytes_in: f64,
    bytes_out: f64,
    remote_ports: HashSet<u16>,
    remote_addrs: HashSet<u64>,
    syn: f64,
    dns_queries: f64,
    names: Vec<String>,
    quic: f64,
    tls: f64,
    out_by_remote: HashMap<u64, f64>,
    syn_closed: HashSet<u16>,
    syn_by_net: HashMap<u64, u32>,
}

impl TrafficAcc {
    fn merge(&mut self, o: TrafficAcc) {
        for i in 0..5 {
            self.counts[i] += o.counts[i];
        }
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.remote_ports.extend(o.remote_ports);
        self.remote_addrs.extend(o.remote_addrs);
        self.syn += o.syn;
        self.dns_queries += o.dns_queries;
        self.names.extend(o.names);
        self.quic += o.quic;
        self.tls += o.tls;
        self.syn_closed.extend(o.syn_closed);
        for (k, v) in o.out_by_remote {
            *self.out_by_remote.entry(k).or_default() += v;
        }
        for (k, v) in o.syn_by_net {
            *self.syn_by_net.entry(k).or_default() += v;
        }
    }
}

/// Closed ports each remote address probed (bare SYN to a port nothing listens on)
/// within the last [`SCAN_HORIZON`], carried from round to round: a scan slow enough to
/// touch one port per step is only visible over minutes.
#[derive(Clone, Debug, Default)]
pub struct ScanTracker {
    /// Remote address hash → closed port → time of the latest probe.
    by_remote: HashMap<u64, HashMap<u16, i64>>,
}

/// Most remote addresses [`ScanTracker`] follows. A flood of SYNs from spoofed
/// addresses would otherwise grow it without bound; each of those probes once, so they
/// are the ones let go.
pub const MAX_TRACKED_REMOTES: usize = 50_000;

impl ScanTracker {
    fn record(&mut self, remote: u64, port: u16, ts: i64) {
        if self.by_remote.len() >= MAX_TRACKED_REMOTES && !self.by_remote.contains_key(&remote) {
            self.by_remote.retain(|_, ports| ports.len() > 1);
            if self.by_remote.len() >= MAX_TRACKED_REMOTES {
                return;
            }
        }
        let last = self
            .by_remote
            .entry(remote)
            .or_default()
            .entry(port)
            .or_insert(ts);
        *last = (*last).max(ts);
    }

    /// Forgets probes older than the horizon before `now`; returns the most closed
    /// ports any one remote probed within it.
    fn breadth_at(&mut self, now: i64) -> usize {
        let cutoff = now - SCAN_HORIZON;
        self.by_remote.retain(|_, ports| {
            ports.retain(|_, ts| *ts > cutoff);
            !ports.is_empty()
        });
        self.by_remote.values().map(HashMap::len).max().unwrap_or(0)
    }
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

/// Hash of the network a remote address belongs to: its /24 (IPv4) or /48 (IPv6), the
/// unit a flood from one provider's block arrives in.
fn net_of(addr: &str) -> u64 {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            let o = a.octets();
            fnv1a(&[4, o[0], o[1], o[2]])
        }
        Ok(std::net::IpAddr::V6(a)) => {
            let o = a.octets();
            fnv1a(&[6, o[0], o[1], o[2], o[3], o[4], o[5]])
        }
        Err(_) => fnv1a(addr.as_bytes()),
    }
}

/// The layers of a packet's `protocols` stack that features look at, found in one pass
/// (this runs once per packet).
#[derive(Default)]
struct Layers {
    tcp: bool,
    udp: bool,
    icmp: bool,
    quic: bool,
    tls: bool,
    dns: bool,
}

impl Layers {
    fn of(protocols: &str) -> Layers {
        let mut l = Layers::default();
        for layer in protocols.split(':') {
            match layer {
                "tcp" => l.tcp = true,
                "udp" => l.udp = true,
                "icmp" | "icmpv6" => l.icmp = true,
                "quic" => l.quic = true,
                "tls" => l.tls = true,
                "dns" => l.dns = true,
                _ => {}
            }
        }
        l
    }
}

/// Builds the steps of one round from its socket samples and a stream of its packets.
pub struct RoundBuilder {
    round_id: i64,
    end: i64,
    step_ts: Vec<i64>,
    sock: Vec<Vec<f64>>,
    evidence: Vec<Evidence>,
    local: HashSet<u32>,
    listening: HashSet<u32>,
    carry: Carry,
    addr_counts: HashMap<u64, u32>,
    packets: u32,
    traffic: Vec<TrafficAcc>,
    /// Probes of closed ports in this round: (time, remote hash, port).
    probes: Vec<(i64, u64, u16)>,
    keys: RoundKeys,
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
        let n = step_ts.len();
        let is_listen = |s: &SockRow| {
            let st = s.state.as_str();
            if s.tcp {
                st.eq_ignore_ascii_case("LISTEN")
            } else {
                st.eq_ignore_ascii_case("UNCONN")
            }
        };
        // Listening sockets first: they decide the class of every other socket.
        let mut listening: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); n];
        let mut listening_any = HashSet::new();
        let mut owner: HashMap<u32, Option<String>> = HashMap::new();
        for s in socks.iter().filter(|s| is_listen(s)) {
            if let Ok(i) = step_ts.binary_search(&s.ts) {
                let key = port_key(s.tcp, s.port);
                listening_any.insert(key);
                listening[i].insert(key);
                owner.entry(key).or_insert_with(|| s.process.clone());
            }
        }
        let mut sock = vec![vec![0.0f64; F_PKTS]; n];
        let mut evidence = vec![Evidence::default(); n];
        let mut local = HashSet::new();
        let mut procs: Vec<HashSet<&str>> = vec![HashSet::new(); n];
        for s in socks {
            let Ok(i) = step_ts.binary_search(&s.ts) else {
                continue;
            };
            let key = port_key(s.tcp, s.port);
            local.insert(key);
            let class = port_class(s.port, listening[i].contains(&key));
            let st = s.state.as_str();
            let state = if s.tcp {
                ["LISTEN", "ESTABLISHED", "TIME_WAIT"]
                    .iter()
                    .position(|x| st.eq_ignore_ascii_case(x))
                    .unwrap_or(3)
            } else {
                SOCKET_STATES_TCP.len() + usize::from(!is_listen(s))
            };
            sock[i][state * PORT_CLASSES.len() + class] += s.sockets.max(0) as f64;
            if let Some(p) = &s.process {
                procs[i].insert(p.as_str());
            }
        }
        let mut keys = RoundKeys::default();
        let mut round_ports = BTreeSet::new();
        for i in 0..n {
            for &key in &listening[i] {
                let tcp = key >> 16 == 1;
                let port = (key & 0xffff) as u16;
                sock[i][F_BUCKETS + listen_bucket(port)] += 1.0;
                if seen.add_port(key) {
                    sock[i][F_NEW_LISTEN] += 1.0;
                    if evidence[i].new_ports.len() < 8 {
                        evidence[i].new_ports.push((
                            if tcp { "tcp" } else { "udp" }.to_string(),
                            port,
                            owner.get(&key).cloned().flatten(),
                        ));
                    }
                }
                round_ports.insert(key);
            }
            sock[i][F_PROCESSES] = procs[i].len() as f64;
        }
        keys.ports = round_ports.into_iter().collect();
        RoundBuilder {
            round_id,
            end: end.max(start),
            step_ts,
            sock,
            evidence,
            local,
            listening: listening_any,
            carry,
            addr_counts: HashMap::new(),
            packets: 0,
            traffic: vec![TrafficAcc::default(); n],
            probes: Vec::new(),
            keys,
        }
    }

    /// Adds one packet of the round.
    pub fn add_packet(&mut self, p: &PktRow<'_>) {
        let n = self.step_ts.len();
        let mut i = match self.step_ts.binary_search(&p.ts) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        };
        if n >= 2 && i == n - 1 {
            i = n - 2;
        }
        let acc = &mut self.traffic[i];
        let protos = p.protocols;
        let layers = Layers::of(protos);
        let (tcp, udp) = (layers.tcp, layers.udp);
        acc.counts[0] += 1.0;
        if tcp {
            acc.counts[1] += 1.0;
        } else if udp {
            acc.counts[2] += 1.0;
        } else if layers.icmp {
            acc.counts[3] += 1.0;
        } else {
            acc.counts[4] += 1.0;
        }
        if layers.quic {
            acc.quic += 1.0;
        }
        if layers.tls {
            acc.tls += 1.0;
        }
        let bare_syn = tcp && p.tcp_flags.is_some_and(|f| f & 0x02 != 0 && f & 0x10 == 0);
        if bare_syn {
            acc.syn += 1.0;
        }
        let sp = p.sport.unwrap_or(0);
        let dp = p.dport.unwrap_or(0);
        let src_h = p.src.map(|a| fnv1a(a.as_bytes()));
        let dst_h = p.dst.map(|a| fnv1a(a.as_bytes()));
        // The side whose port is one of the host's sockets is the host's: its address
        // is counted towards the local addresses (a scanner's probes go to closed
        // ports, so however many it sends, its address is not learnt as the host's).
        let src_local = (tcp || udp) && self.local.contains(&port_key(tcp, sp));
        let dst_local = (tcp || udp) && self.local.contains(&port_key(tcp, dp));
        if src_local || dst_local {
            self.packets += 1;
            for h in [src_h.filter(|_| src_local), dst_h.filter(|_| dst_local)]
                .into_iter()
                .flatten()
            {
                *self.addr_counts.entry(h).or_default() += 1;
            }
        }
        let local_addrs = &self.carry.local_addrs;
        let src_la = src_h.is_some_and(|h| local_addrs.contains(&h));
        let dst_la = dst_h.is_some_and(|h| local_addrs.contains(&h));
        let outbound = match (src_la, dst_la) {
            (true, false) => true,
            (false, true) => false,
            _ => match (src_local, dst_local) {
                (true, false) => true,
                (false, true) => false,
                _ => sp >= dp,
            },
        };
        let acc = &mut self.traffic[i];
        if !outbound && bare_syn {
            if let Some(a) = p.src {
                *acc.syn_by_net.entry(net_of(a)).or_default() += 1;
            }
            if !self.listening.contains(&port_key(true, dp)) {
                acc.syn_closed.insert(dp);
                if let Some(h) = src_h {
                    self.probes.push((p.ts, h, dp));
                }
            }
        }
        let len = p.length.max(0) as f64;
        let (raddr, rport) = if outbound {
            acc.bytes_out += len;
            if let Some(h) = dst_h {
                *acc.out_by_remote.entry(h).or_default() += len;
            }
            (dst_h, p.dport)
        } else {
            acc.bytes_in += len;
            (src_h, p.sport)
        };
        if let Some(h) = raddr {
            acc.remote_addrs.insert(h);
        }
        if let Some(rp) = rport
            && (tcp || udp)
        {
            acc.remote_ports.insert(rp);
        }
        let is_query = match p.dns_qr {
            Some(q) => q == 0,
            None => layers.dns && !p.has_resp,
        };
        if is_query && let Some(name) = p.qry_name {
            acc.dns_queries += 1.0;
            acc.names.push(name.to_string());
        }
    }

    /// Finishes the round: one [`Step`] per sample, the round's keys for [`Seen`], and
    /// what the next round needs ([`Carry`]): the host's addresses are those on the
    /// host's side (a port it has a socket on) of at least [`LOCAL_ADDR_SHARE`] of this
    /// round's packets that have such a side, or the previous ones if none.
    pub fn finish(mut self, seen: &mut Seen) -> (Vec<Step>, RoundKeys, Carry) {
        let n = self.step_ts.len();
        if n >= 2 {
            let last = std::mem::take(&mut self.traffic[n - 1]);
            self.traffic[n - 2].merge(last);
            self.traffic[n - 1] = self.traffic[n - 2].clone();
        }
        let mut carry = std::mem::take(&mut self.carry);
        let min = (f64::from(self.packets) * LOCAL_ADDR_SHARE).max(1.0);
        let learnt: HashSet<u64> = self
            .addr_counts
            .iter()
            .filter(|(_, c)| f64::from(**c) >= min)
            .map(|(a, _)| *a)
            .collect();
        if !learnt.is_empty() {
            carry.local_addrs = learnt;
        }
        // Scan breadth at the end of each step's traffic interval (the round's end for
        // the merged last two), probes fed in time order.
        self.probes.sort_unstable_by_key(|p| p.0);
        let mut probes = self.probes.iter().peekable();
        let mut breadth: Vec<usize> = Vec::with_capacity(n);
        for i in 0..n {
            if n >= 2 && i == n - 1 {
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
                carry.scans.record(remote, port, ts);
                probes.next();
            }
            breadth.push(carry.scans.breadth_at(until));
        }
        let mut names_round: BTreeSet<String> = BTreeSet::new();
        let mut steps: Vec<Step> = Vec::with_capacity(n);
        for (i, breadth) in breadth.into_iter().enumerate() {
            let acc = &self.traffic[i];
            let mut v = std::mem::take(&mut self.sock[i]);
            v.resize(N_FEATURES, 0.0);
            v[F_PKTS] = acc.counts[0];
            v[F_PKTS_TCP] = acc.counts[1];
            v[F_PKTS_UDP] = acc.counts[2];
            v[F_PKTS_ICMP] = acc.counts[3];
            v[F_PKTS_OTHER] = acc.counts[4];
            v[F_BYTES_IN] = acc.bytes_in;
            v[F_BYTES_OUT] = acc.bytes_out;
            v[F_REMOTE_PORTS] = acc.remote_ports.len() as f64;
            v[F_REMOTE_ADDRS] = acc.remote_addrs.len() as f64;
            v[F_SYN] = acc.syn;
            v[F_DNS_QUERIES] = acc.dns_queries;
            v[F_QUIC] = acc.quic;
            v[F_TLS] = acc.tls;
            v[F_BYTES_OUT_TOP] = acc.out_by_remote.values().copied().fold(0.0, f64::max);
            v[F_SYN_CLOSED] = acc.syn_closed.len() as f64;
            v[F_SCAN_BREADTH] = breadth as f64;
            v[F_SYN_TOP_NET] = f64::from(acc.syn_by_net.values().copied().max().unwrap_or(0));
            let distinct: BTreeSet<&str> = acc.names.iter().map(String::as_str).collect();
            v[F_DNS_NAMES] = distinct.len() as f64;
            let mut new = 0.0;
            let mut evidence = std::mem::take(&mut self.evidence[i]);
            if n >= 2 && i == n - 1 {
                // The last step repeats the previous one's traffic: its "new" names too.
                if let Some(prev) = steps.last() {
                    new = f64::from(prev.raw[F_DNS_NEW]);
                    evidence.new_names = prev.evidence.new_names.clone();
                }
            } else {
                for name in &distinct {
                    if seen.add_name(name) {
                        new += 1.0;
                        if evidence.new_names.len() < 8 {
                            evidence.new_names.push((*name).to_string());
                        }
                    }
                    names_round.insert((*name).to_string());
                }
            }
            v[F_DNS_NEW] = new;
            // Sums and counts, not means: a step without queries is then simply zero,
            // like its query count, instead of an outlier "mean length 0".
            v[F_DNS_CHARS] = acc.names.iter().map(|s| s.chars().count() as f64).sum();
            v[F_DNS_LEN_MAX] = acc
                .names
                .iter()
                .map(|s| s.chars().count() as f64)
                .fold(0.0, f64::max);
            v[F_DNS_HIGH_ENTROPY] = acc
                .names
                .iter()
                .filter(|s| entropy(s) >= HIGH_ENTROPY)
                .count() as f64;
            let raw = v.iter().map(|x| x.max(0.0) as f32).collect();
            steps.push(Step {
                ts: self.step_ts[i],
                round_id: self.round_id,
                raw,
                time: crate::calendar::calendar_inputs(self.step_ts[i]),
                evidence,
            });
        }
        self.keys.names = names_round.into_iter().collect();
        (steps, self.keys, carry)
    }
}

/// Robust scaling fitted on training steps. A count `x` is first compressed to
/// `ln(1 + x / c)`, where the offset `c` is [`OFFSET_SHARE`] of the feature's median
/// count (at least 1, so sparse counts get plain `ln(1 + x)`); then
/// `(t - median) / max(IQR, MIN_SCALE)`, clipped to ±[`CLIP`]. The offset keeps a quiet
/// few seconds (a busy count falling to zero) from looking like a jump of several
/// orders of magnitude, while a tenfold rise moves as far as it does under plain log1p.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Per-feature offset `c` (a count).
    pub offset: Vec<f32>,
    /// Per-feature median of the compressed values.
    pub median: Vec<f32>,
    /// Per-feature scale of the compressed values.
    pub scale: Vec<f32>,
}

/// Share of a feature's median count used as its compression offset.
pub const OFFSET_SHARE: f32 = 0.1;

/// Quantile by linear interpolation of a sorted slice (`q` in 0..=1).
pub fn quantile_sorted(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = (pos - lo as f64) as f32;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

impl Scaler {
    /// Fits on rows of raw counts.
    pub fn fit<'a>(rows: impl Iterator<Item = &'a [f32]>) -> Self {
        let mut cols: Vec<Vec<f32>> = vec![Vec::new(); N_FEATURES];
        for r in rows {
            for (c, x) in cols.iter_mut().zip(r.iter()) {
                c.push(x.max(0.0));
            }
        }
        let mut offset = Vec::with_capacity(N_FEATURES);
        let mut median = Vec::with_capacity(N_FEATURES);
        let mut scale = Vec::with_capacity(N_FEATURES);
        for mut c in cols {
            c.sort_by(f32::total_cmp);
            let off = (OFFSET_SHARE * quantile_sorted(&c, 0.5)).max(1.0);
            // The compression is monotone: quantiles of compressed values are the
            // compressed quantiles.
            let t = |q: f64| compress(quantile_sorted(&c, q), off);
            offset.push(off);
            median.push(t(0.5));
            scale.push((t(0.75) - t(0.25)).max(MIN_SCALE));
        }
        Scaler {
            offset,
            median,
            scale,
        }
    }

    /// Scales one step's raw counts into `out`.
    pub fn transform_into(&self, raw: &[f32], out: &mut Vec<f32>) {
        for (((x, c), m), s) in raw
            .iter()
            .zip(&self.offset)
            .zip(&self.median)
            .zip(&self.scale)
        {
            out.push(((compress(*x, *c) - m) / s).clamp(-CLIP, CLIP));
        }
    }

    /// The training median of feature `f`, as a count.
    pub fn median_count(&self, f: usize) -> f32 {
        match (self.offset.get(f), self.median.get(f)) {
            (Some(c), Some(m)) => c * m.exp_m1(),
            _ => 0.0,
        }
    }
}

fn compress(x: f32, offset: f32) -> f32 {
    (x.max(0.0) / offset).ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn names_match_count() {
        assert_eq!(feature_names().len(), N_FEATURES);
        let names = feature_names();
        let set: HashSet<_> = names.iter().collect();
        assert_eq!(set.len(), N_FEATURES, "feature names are unique");
        assert_eq!(names[F_SYN], "tcp_bare_syn");
        assert_eq!(names[F_TLS], "tls_packets");
        assert_eq!(names[F_BYTES_OUT_TOP], "bytes_out_top_remote");
        assert_eq!(names[F_SYN_CLOSED], "inbound_syn_closed_ports");
        assert_eq!(names[F_NEW_LISTEN], "new_listening_ports");
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert!(listen_bucket(22) < N_BUCKETS);
        // The contract `collector simulate` aims at: FNV-1a of the big-endian port.
        assert_eq!(listen_bucket(443), (fnv1a(&[1, 187]) % 64) as usize);
    }

    #[test]
    fn entropy_of_names() {
        assert_eq!(entropy("aaaa"), 0.0);
        assert!((entropy("ab") - 1.0).abs() < 1e-6);
        assert!(entropy("x7f9q2kz1m") > entropy("google"));
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
        let mut b = RoundBuilder::new(
            1,
            (0, 10 * s),
            Some(5.0),
            &socks,
            &mut seen,
            Carry::default(),
        );
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
    fn round_without_samples_gets_steps_from_interval() {
        let mut seen = Seen::default();
        let s = crate::calendar::SECOND;
        let b = RoundBuilder::new(1, (0, 55 * s), Some(5.0), &[], &mut seen, Carry::default());
        let (steps, _, _) = b.finish(&mut seen);
        assert_eq!(steps.len(), 12);
    }

    #[test]
    fn scan_tracker_is_bounded_under_a_spoofed_flood() {
        let mut t = ScanTracker::default();
        for p in 0..30u16 {
            t.record(7, 1000 + p, 1);
        }
        for remote in 0..(MAX_TRACKED_REMOTES as u64 + 10_000) {
            t.record(100 + remote, 80, 2);
        }
        assert!(t.by_remote.len() <= MAX_TRACKED_REMOTES);
        assert_eq!(t.breadth_at(3), 30, "the real scanner is still followed");
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
            PktRow {
                ts,
                protocols: "eth:ipv4:tcp",
                sport: Some(40000),
                dport: Some(dport),
                src: Some(src),
                dst: Some("10.0.0.1"),
                length: 60,
                tcp_flags: Some(0x02),
                ..Default::default()
            }
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
    fn scaler_is_robust() {
        let rows: Vec<Vec<f32>> = (0..101)
            .map(|i| {
                let mut r = vec![0.0; N_FEATURES];
                r[0] = i as f32;
                r[1] = if i == 100 { 1e6 } else { 1.0 };
                r
            })
            .collect();
        let sc = Scaler::fit(rows.iter().map(|r| r.as_slice()));
        let close = |a: f32, b: f32| (a - b).abs() < 1e-4;
        // Feature 0: counts 0..=100, median 50, offset 5.
        assert_eq!(sc.offset[0], 5.0);
        assert!(close(sc.median[0], 11f32.ln()));
        assert!(close(sc.scale[0], 16f32.ln() - 6f32.ln()));
        assert!(close(sc.median_count(0), 50.0));
        // Feature 1: constant 1 with one huge outlier; sparse, so offset 1.
        assert_eq!(sc.offset[1], 1.0);
        assert!(close(sc.median[1], 2f32.ln()));
        assert_eq!(sc.scale[1], MIN_SCALE, "an outlier does not move the scale");
        let mut out = Vec::new();
        sc.transform_into(&rows[100], &mut out);
        assert_eq!(out[1], CLIP);
        // A busy count dropping to zero stays within a few scales of its median.
        out.clear();
        sc.transform_into(&rows[0], &mut out);
        assert!(
            close(out[0], -(11f32.ln()) / (16f32.ln() - 6f32.ln())),
            "{}",
            out[0]
        );
        assert!(out[0] > -2.5);
    }

    #[test]
    fn quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert_eq!(quantile_sorted(&v, 1.0), 5.0);
        assert_eq!(quantile_sorted(&v, 0.125), 1.5);
        assert_eq!(quantile_sorted(&[], 0.5), 0.0);
    }
}
