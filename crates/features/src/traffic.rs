//! The traffic of one step: what the packets of its interval add up to, and the
//! features read from that sum. Kept apart from the builder, which decides which
//! interval and direction a packet has, so that each packet touches one accumulator.

use std::collections::{BTreeSet, HashMap, HashSet};

use portwatch_capture::{Layer, Layers};

use crate::spec::{
    F_BYTES_IN, F_BYTES_OUT, F_BYTES_OUT_TOP, F_DNS_CHARS, F_DNS_HIGH_ENTROPY, F_DNS_LEN_MAX,
    F_DNS_NAMES, F_DNS_QUERIES, F_PKTS, F_PKTS_ICMP, F_PKTS_OTHER, F_PKTS_TCP, F_PKTS_UDP, F_QUIC,
    F_REMOTE_ADDRS, F_REMOTE_PORTS, F_SYN, F_SYN_CLOSED, F_SYN_TOP_NET, F_TLS,
};

/// Bits per character above which a DNS name looks random (tunnels, DGAs): English-like
/// names such as `api.github.com` stay near 3.3.
pub const HIGH_ENTROPY: f32 = 4.0;

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

/// The packets of one step's interval, summed. Sets rather than counts where a feature
/// counts distinct things, so that merging two intervals (the round's last two) counts
/// a remote seen in both once.
#[derive(Default, Clone)]
pub(crate) struct TrafficAcc {
    /// Packets: total, TCP, UDP, ICMP (v4 or v6), other.
    counts: [f64; 5],
    bytes_in: f64,
    bytes_out: f64,
    remote_ports: HashSet<u16>,
    /// Remote address hashes.
    remote_addrs: HashSet<u64>,
    /// Bare SYNs (SYN without ACK), either direction.
    syn: f64,
    dns_queries: f64,
    /// Query names, one per query, in arrival order.
    names: Vec<String>,
    quic: f64,
    tls: f64,
    /// Bytes sent per remote address hash.
    out_by_remote: HashMap<u64, f64>,
    /// Closed ports inbound bare SYNs went to.
    syn_closed: HashSet<u16>,
    /// Inbound bare SYNs per source network ([`crate::hash::net_of`]).
    syn_by_net: HashMap<u64, u32>,
}

impl TrafficAcc {
    /// Counts a packet under its transport (ICMP or ICMPv6, else TCP, else UDP, else
    /// other) and, unless ICMP, as QUIC or TLS on top. ICMP comes first: an error's
    /// stack goes on with the header it quotes (`ipv4:icmp:ipv4:udp`), and ICMP carried
    /// in a UDP tunnel is ICMP; neither is the host's TCP or UDP traffic.
    pub(crate) fn count_packet(&mut self, layers: &Layers) {
        self.counts[0] += 1.0;
        if layers.contains(Layer::Icmp) || layers.contains(Layer::Icmpv6) {
            self.counts[3] += 1.0;
            return;
        }
        if layers.contains(Layer::Tcp) {
            self.counts[1] += 1.0;
        } else if layers.contains(Layer::Udp) {
            self.counts[2] += 1.0;
        } else {
            self.counts[4] += 1.0;
        }
        if layers.contains(Layer::Quic) {
            self.quic += 1.0;
        }
        if layers.contains(Layer::Tls) {
            self.tls += 1.0;
        }
    }

    /// Counts a bare SYN (a connection attempt), whichever its direction.
    pub(crate) fn count_bare_syn(&mut self) {
        self.syn += 1.0;
    }

    /// Counts an inbound bare SYN from network `net`: a flood from one block shows as
    /// one large count even when every address differs.
    pub(crate) fn count_syn_from_net(&mut self, net: u64) {
        *self.syn_by_net.entry(net).or_default() += 1;
    }

    /// Notes a closed port an inbound bare SYN went to.
    pub(crate) fn note_closed_port(&mut self, port: u16) {
        self.syn_closed.insert(port);
    }

    /// Adds a packet's bytes to its direction; outbound bytes also per remote, so one
    /// destination taking most of the upload (exfiltration) stands out.
    pub(crate) fn add_bytes(&mut self, outbound: bool, len: f64, remote: Option<u64>) {
        if outbound {
            self.bytes_out += len;
            if let Some(h) = remote {
                *self.out_by_remote.entry(h).or_default() += len;
            }
        } else {
            self.bytes_in += len;
        }
    }

    /// Notes a packet's remote end (address hash, and port when it has one).
    pub(crate) fn note_remote(&mut self, addr: Option<u64>, port: Option<u16>) {
        if let Some(h) = addr {
            self.remote_addrs.insert(h);
        }
        if let Some(p) = port {
            self.remote_ports.insert(p);
        }
    }

    /// Counts a DNS query and keeps its name for the name features.
    pub(crate) fn add_query(&mut self, name: &str) {
        self.dns_queries += 1.0;
        self.names.push(name.to_string());
    }

    /// Adds another interval's traffic (the round's last, merged into the one before).
    pub(crate) fn merge(&mut self, o: TrafficAcc) {
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

    /// The distinct query names, sorted: the order "new" names are added to the
    /// seen-set in, so it does not depend on packet order within the interval.
    pub(crate) fn distinct_names(&self) -> BTreeSet<&str> {
        self.names.iter().map(String::as_str).collect()
    }

    /// Writes the step's traffic features into `v` (a full step, [`crate::N_FEATURES`]
    /// long): all that depend on this interval alone, that is all but the new DNS
    /// names and the scan breadth, which need the seen-set and earlier steps.
    pub(crate) fn write_features(&self, v: &mut [f64]) {
        v[F_PKTS] = self.counts[0];
        v[F_PKTS_TCP] = self.counts[1];
        v[F_PKTS_UDP] = self.counts[2];
        v[F_PKTS_ICMP] = self.counts[3];
        v[F_PKTS_OTHER] = self.counts[4];
        v[F_BYTES_IN] = self.bytes_in;
        v[F_BYTES_OUT] = self.bytes_out;
        v[F_REMOTE_PORTS] = self.remote_ports.len() as f64;
        v[F_REMOTE_ADDRS] = self.remote_addrs.len() as f64;
        v[F_SYN] = self.syn;
        v[F_DNS_QUERIES] = self.dns_queries;
        v[F_QUIC] = self.quic;
        v[F_TLS] = self.tls;
        v[F_BYTES_OUT_TOP] = self.out_by_remote.values().copied().fold(0.0, f64::max);
        v[F_SYN_CLOSED] = self.syn_closed.len() as f64;
        v[F_SYN_TOP_NET] = f64::from(self.syn_by_net.values().copied().max().unwrap_or(0));
        self.write_name_features(v);
    }

    /// The DNS name features of the interval. Sums and counts, not means: a step without
    /// queries is then simply zero, like its query count, instead of an outlier "mean
    /// length 0".
    fn write_name_features(&self, v: &mut [f64]) {
        v[F_DNS_NAMES] = self.distinct_names().len() as f64;
        v[F_DNS_CHARS] = self.names.iter().map(|s| s.chars().count() as f64).sum();
        v[F_DNS_LEN_MAX] = self
            .names
            .iter()
            .map(|s| s.chars().count() as f64)
            .fold(0.0, f64::max);
        v[F_DNS_HIGH_ENTROPY] = self
            .names
            .iter()
            .filter(|s| entropy(s) >= HIGH_ENTROPY)
            .count() as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::N_FEATURES;

    #[test]
    fn entropy_of_names() {
        assert_eq!(entropy("aaaa"), 0.0);
        assert!((entropy("ab") - 1.0).abs() < 1e-6);
        assert!(entropy("x7f9q2kz1m") > entropy("google"));
    }

    /// Merging the round's last interval into the one before counts distinct things once.
    #[test]
    fn merge_adds_counts_and_unites_sets() {
        let mut a = TrafficAcc::default();
        a.count_packet(&Layers::parse("eth:ipv4:tcp:tls"));
        a.add_bytes(true, 100.0, Some(1));
        a.note_remote(Some(1), Some(443));
        a.add_query("example.com");
        let mut b = TrafficAcc::default();
        b.count_packet(&Layers::parse("eth:ipv6:icmpv6"));
        b.add_bytes(true, 50.0, Some(1));
        b.note_remote(Some(1), Some(443));
        b.add_query("example.com");
        a.merge(b);
        let mut v = vec![0.0; N_FEATURES];
        a.write_features(&mut v);
        assert_eq!(v[F_PKTS], 2.0);
        assert_eq!(v[F_PKTS_TCP], 1.0);
        assert_eq!(v[F_PKTS_ICMP], 1.0);
        assert_eq!(v[F_TLS], 1.0);
        assert_eq!(v[F_BYTES_OUT_TOP], 150.0);
        assert_eq!(v[F_REMOTE_ADDRS], 1.0);
        assert_eq!(v[F_REMOTE_PORTS], 1.0);
        assert_eq!(v[F_DNS_QUERIES], 2.0);
        assert_eq!(v[F_DNS_NAMES], 1.0);
        assert_eq!(v[F_DNS_CHARS], 22.0);
    }

    #[test]
    fn an_icmp_error_quoting_quic_or_icmp_in_a_tunnel_counts_as_icmp() {
        let mut a = TrafficAcc::default();
        a.count_packet(&Layers::parse("eth:ipv6:icmpv6:ipv6:udp:quic"));
        a.count_packet(&Layers::parse("eth:ipv4:udp:vxlan:eth:ipv4:icmp"));
        a.count_packet(&Layers::parse("eth:ipv4:udp:quic"));
        let mut v = vec![0.0; N_FEATURES];
        a.write_features(&mut v);
        assert_eq!(v[F_PKTS_ICMP], 2.0);
        assert_eq!(v[F_PKTS_UDP], 1.0);
        assert_eq!(v[F_QUIC], 1.0);
    }
}
