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
//! learnt from traffic — in a host capture they are on nearly every packet, so an
//! address seen in at least a fifth of a round's packets is local for the next round.
//! A packet from a local address to a non-local one is *outbound*, the reverse
//! *inbound*. Otherwise (first round, loopback) ports decide: outbound when the source
//! port is one the host has a socket on in this round and the destination port is not,
//! inbound in the mirror case, and else the side with the higher port number is taken as
//! the client. The remote address and port are the other side's.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

/// Version of the feature definitions below; a model saved with another version is refused.
pub const SPEC_VERSION: u32 = 1;
/// Buckets for hashed listening ports.
pub const N_BUCKETS: usize = 16;
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

const SOCKET_STATES_TCP: [&str; 4] = ["listen", "estab", "timewait", "other"];
const SOCKET_STATES_UDP: [&str; 2] = ["unconn", "estab"];
const PORT_CLASSES: [&str; 3] = ["wk", "reg", "eph"];

/// Index of the first feature after the socket counts and buckets.
const F_NEW_LISTEN: usize = 18 + N_BUCKETS;
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
/// Number of scored features per step.
pub const N_FEATURES: usize = F_SYN_CLOSED + 1;
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

/// The bucket of a listening (protocol, port).
pub fn port_bucket(tcp: bool, port: u16) -> usize {
    let p = port.to_be_bytes();
    (fnv1a(&[u8::from(tcp), p[0], p[1]]) % N_BUCKETS as u64) as usize
}

fn port_class(port: u16) -> usize {
    match port {
        0..=1023 => 0,
        1024..=49151 => 1,
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
    /// `ln(1 + value)` of each feature.
    pub raw: Vec<f32>,
    /// [`crate::time::calendar_inputs`].
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
    }
}

/// Builds the steps of one round from its socket samples and a stream of its packets.
pub struct RoundBuilder {
    round_id: i64,
    step_ts: Vec<i64>,
    sock: Vec<Vec<f64>>,
    evidence: Vec<Evidence>,
    local: HashSet<u32>,
    listening: HashSet<u32>,
    local_addrs: HashSet<u64>,
    addr_counts: HashMap<u64, u32>,
    packets: u32,
    traffic: Vec<TrafficAcc>,
    keys: RoundKeys,
}

impl RoundBuilder {
    /// Starts a round. `socks` are its `rounds_ports` rows; when it has none (an empty
    /// socket table, or no scanner), steps are laid out every `scan_interval` seconds
    /// from `start` to `end`. `seen` is updated as listening ports appear, so "new"
    /// counts only the first sample a port shows up in.
    pub fn new(
        round_id: i64,
        start: i64,
        end: i64,
        scan_interval: Option<f64>,
        socks: &[SockRow],
        seen: &mut Seen,
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
        let mut sock = vec![vec![0.0f64; F_PKTS]; n];
        let mut evidence = vec![Evidence::default(); n];
        let mut local = HashSet::new();
        let mut listening_any = HashSet::new();
        let mut listening: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); n];
        let mut procs: Vec<HashSet<&str>> = vec![HashSet::new(); n];
        let mut owner: HashMap<u32, Option<String>> = HashMap::new();
        for s in socks {
            let Ok(i) = step_ts.binary_search(&s.ts) else {
                continue;
            };
            local.insert(port_key(s.tcp, s.port));
            let class = port_class(s.port);
            let st = s.state.to_ascii_uppercase();
            let (idx, listen) = if s.tcp {
                let k = match st.as_str() {
                    "LISTEN" => 0,
                    "ESTABLISHED" => 1,
                    "TIME_WAIT" => 2,
                    _ => 3,
                };
                (k * 3 + class, k == 0)
            } else {
                let k = usize::from(st != "UNCONN");
                (12 + k * 3 + class, k == 0)
            };
            sock[i][idx] += s.sockets.max(0) as f64;
            if listen {
                let key = port_key(s.tcp, s.port);
                listening_any.insert(key);
                listening[i].insert(key);
                owner.entry(key).or_insert_with(|| s.process.clone());
            }
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
                sock[i][18 + port_bucket(tcp, port)] += 1.0;
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
            step_ts,
            sock,
            evidence,
            local,
            listening: listening_any,
            local_addrs: HashSet::new(),
            addr_counts: HashMap::new(),
            packets: 0,
            traffic: vec![TrafficAcc::default(); n],
            keys,
        }
    }

    /// The host's addresses (hashed with [`fnv1a`]) learnt from the previous round.
    pub fn with_local_addrs(mut self, addrs: HashSet<u64>) -> Self {
        self.local_addrs = addrs;
        self
    }

    /// Addresses on at least [`LOCAL_ADDR_SHARE`] of this round's packets (call after
    /// the packets, before [`RoundBuilder::finish`]).
    pub fn learnt_local_addrs(&self) -> HashSet<u64> {
        let min = (f64::from(self.packets) * LOCAL_ADDR_SHARE).max(1.0);
        self.addr_counts
            .iter()
            .filter(|(_, c)| f64::from(**c) >= min)
            .map(|(a, _)| *a)
            .collect()
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
        let tcp = protos.contains("tcp");
        let udp = protos.contains("udp");
        acc.counts[0] += 1.0;
        if tcp {
            acc.counts[1] += 1.0;
        } else if udp {
            acc.counts[2] += 1.0;
        } else if protos.contains("icmp") {
            acc.counts[3] += 1.0;
        } else {
            acc.counts[4] += 1.0;
        }
        if protos.contains("quic") {
            acc.quic += 1.0;
        }
        if protos.contains("tls") {
            acc.tls += 1.0;
        }
        if let Some(f) = p.tcp_flags
            && tcp
            && f & 0x02 != 0
            && f & 0x10 == 0
        {
            acc.syn += 1.0;
        }
        let sp = p.sport.unwrap_or(0);
        let dp = p.dport.unwrap_or(0);
        let src_h = p.src.map(|a| fnv1a(a.as_bytes()));
        let dst_h = p.dst.map(|a| fnv1a(a.as_bytes()));
        self.packets += 1;
        for h in [src_h, dst_h].into_iter().flatten() {
            *self.addr_counts.entry(h).or_default() += 1;
        }
        let src_la = src_h.is_some_and(|h| self.local_addrs.contains(&h));
        let dst_la = dst_h.is_some_and(|h| self.local_addrs.contains(&h));
        let outbound = match (src_la, dst_la) {
            (true, false) => true,
            (false, true) => false,
            _ => {
                let src_local = (tcp || udp) && self.local.contains(&port_key(tcp, sp));
                let dst_local = (tcp || udp) && self.local.contains(&port_key(tcp, dp));
                match (src_local, dst_local) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => sp >= dp,
                }
            }
        };
        let acc = &mut self.traffic[i];
        if !outbound
            && tcp
            && p.tcp_flags.is_some_and(|f| f & 0x02 != 0 && f & 0x10 == 0)
            && !self.listening.contains(&port_key(true, dp))
        {
            acc.syn_closed.insert(dp);
        }
        let len = p.length.max(0) as f64;
        let (raddr, rport) = if outbound {
            acc.bytes_out += len;
            if let Some(a) = p.dst {
                *acc.out_by_remote.entry(fnv1a(a.as_bytes())).or_default() += len;
            }
            (p.dst, p.dport)
        } else {
            acc.bytes_in += len;
            (p.src, p.sport)
        };
        if let Some(a) = raddr {
            acc.remote_addrs.insert(fnv1a(a.as_bytes()));
        }
        if let Some(rp) = rport
            && (tcp || udp)
        {
            acc.remote_ports.insert(rp);
        }
        let is_query = match p.dns_qr {
            Some(q) => q == 0,
            None => protos.contains("dns") && !p.has_resp,
        };
        if is_query && let Some(name) = p.qry_name {
            acc.dns_queries += 1.0;
            acc.names.push(name.to_string());
        }
    }

    /// Finishes the round: one [`Step`] per sample, and the round's keys for [`Seen`].
    pub fn finish(mut self, seen: &mut Seen) -> (Vec<Step>, RoundKeys) {
        let n = self.step_ts.len();
        if n >= 2 {
            let last = std::mem::take(&mut self.traffic[n - 1]);
            self.traffic[n - 2].merge(last);
            self.traffic[n - 1] = self.traffic[n - 2].clone();
        }
        let mut names_round: BTreeSet<String> = BTreeSet::new();
        let mut steps: Vec<Step> = Vec::with_capacity(n);
        for i in 0..n {
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
            let distinct: BTreeSet<&str> = acc.names.iter().map(String::as_str).collect();
            v[F_DNS_NAMES] = distinct.len() as f64;
            let mut new = 0.0;
            let mut evidence = std::mem::take(&mut self.evidence[i]);
            if n >= 2 && i == n - 1 {
                // The last step repeats the previous one's traffic: its "new" names too.
                if let Some(prev) = steps.last() {
                    new = f64::from(prev.raw[F_DNS_NEW]).exp_m1();
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
            let raw = v.iter().map(|x| (x.max(0.0)).ln_1p() as f32).collect();
            steps.push(Step {
                ts: self.step_ts[i],
                round_id: self.round_id,
                raw,
                time: crate::time::calendar_inputs(self.step_ts[i]),
                evidence,
            });
        }
        self.keys.names = names_round.into_iter().collect();
        (steps, self.keys)
    }
}

/// Robust scaling fitted on training steps: `(x - median) / max(IQR, MIN_SCALE)`,
/// clipped to ±[`CLIP`]; applied to log1p values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Per-feature median.
    pub median: Vec<f32>,
    /// Per-feature scale.
    pub scale: Vec<f32>,
}

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
    /// Fits on rows of raw features.
    pub fn fit<'a>(rows: impl Iterator<Item = &'a [f32]>) -> Self {
        let mut cols: Vec<Vec<f32>> = vec![Vec::new(); N_FEATURES];
        for r in rows {
            for (c, x) in cols.iter_mut().zip(r.iter()) {
                c.push(*x);
            }
        }
        let mut median = Vec::with_capacity(N_FEATURES);
        let mut scale = Vec::with_capacity(N_FEATURES);
        for mut c in cols {
            c.sort_by(f32::total_cmp);
            median.push(quantile_sorted(&c, 0.5));
            let iqr = quantile_sorted(&c, 0.75) - quantile_sorted(&c, 0.25);
            scale.push(iqr.max(MIN_SCALE));
        }
        Scaler { median, scale }
    }

    /// Scales one step's raw features into `out`.
    pub fn transform_into(&self, raw: &[f32], out: &mut Vec<f32>) {
        for ((x, m), s) in raw.iter().zip(&self.median).zip(&self.scale) {
            out.push(((x - m) / s).clamp(-CLIP, CLIP));
        }
    }
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
        assert!(port_bucket(true, 22) < N_BUCKETS);
    }

    #[test]
    fn entropy_of_names() {
        assert_eq!(entropy("aaaa"), 0.0);
        assert!((entropy("ab") - 1.0).abs() < 1e-6);
        assert!(entropy("x7f9q2kz1m") > entropy("google"));
    }

    #[test]
    fn socket_and_packet_features() {
        let s = crate::time::SECOND;
        let socks = vec![
            sock(0, 22, true, "LISTEN", 1),
            sock(0, 22, true, "ESTABLISHED", 2),
            sock(5 * s, 22, true, "LISTEN", 1),
            sock(5 * s, 8080, true, "LISTEN", 1),
            sock(5 * s, 53000, false, "UNCONN", 1),
            sock(10 * s, 22, true, "LISTEN", 1),
        ];
        let mut seen = Seen::default();
        seen.add_port(port_key(true, 22));
        let mut b = RoundBuilder::new(1, 0, 10 * s, Some(5.0), &socks, &mut seen);
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
        let (steps, keys) = b.finish(&mut seen);
        assert_eq!(steps.len(), 3);
        let names = feature_names();
        let get = |i: usize, n: &str| {
            let j = names.iter().position(|x| x == n).unwrap();
            steps[i].raw[j].exp_m1().round()
        };
        assert_eq!(get(0, "tcp_listen_wk"), 1.0);
        assert_eq!(get(0, "tcp_estab_wk"), 2.0);
        assert_eq!(get(1, "tcp_listen_reg"), 1.0);
        assert_eq!(get(1, "udp_unconn_eph"), 1.0);
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
        let s = crate::time::SECOND;
        let b = RoundBuilder::new(1, 0, 55 * s, Some(5.0), &[], &mut seen);
        let (steps, _) = b.finish(&mut seen);
        assert_eq!(steps.len(), 12);
    }

    #[test]
    fn scaler_is_robust() {
        let rows: Vec<Vec<f32>> = (0..101)
            .map(|i| {
                let mut r = vec![0.0; N_FEATURES];
                r[0] = i as f32;
                r[1] = if i == 100 { 100.0 } else { 1.0 };
                r
            })
            .collect();
        let sc = Scaler::fit(rows.iter().map(|r| r.as_slice()));
        assert_eq!(sc.median[0], 50.0);
        assert_eq!(sc.scale[0], 50.0);
        assert_eq!(sc.median[1], 1.0);
        assert_eq!(sc.scale[1], MIN_SCALE, "an outlier does not move the scale");
        let mut out = Vec::new();
        sc.transform_into(&rows[100], &mut out);
        assert_eq!(out[0], 1.0);
        assert_eq!(out[1], CLIP);
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
