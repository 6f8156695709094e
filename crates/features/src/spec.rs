//! The feature spec: which values a step has, in which order, and the version a saved
//! model is checked against. Every other module writes into a step by these indices, so
//! the order lives here and nowhere else.

use serde::{Deserialize, Serialize};

/// Version of the feature definitions below; a model saved with another version is refused.
pub const SPEC_VERSION: u32 = 2;
/// Buckets for hashed listening ports ([`crate::listen_bucket`]).
pub const N_BUCKETS: usize = 64;
/// Calendar inputs per step (time of day, day of week; sin and cos): fed to the model
/// but neither reconstructed nor scored.
pub const N_TIME: usize = 4;

/// TCP socket states counted, in feature order: `ss` states other than the first three
/// fall into `other`, so a rare state cannot add a feature.
pub(crate) const SOCKET_STATES_TCP: [&str; 4] = ["listen", "estab", "timewait", "other"];
/// UDP socket states counted: unconnected (the listening kind) or connected.
pub(crate) const SOCKET_STATES_UDP: [&str; 2] = ["unconn", "estab"];
/// Where a socket's local port sits: below 1024 (`wk`), another port the host listens on
/// in that sample (`svc`: the server side of inbound connections), or any other port
/// (`cli`: the client side of the host's own connections). Not IANA's registered /
/// dynamic split: Linux draws client ports from 32768–60999, across that boundary, so
/// the same pool of connections would move between classes from one day to the next.
pub(crate) const PORT_CLASSES: [&str; 3] = ["wk", "svc", "cli"];
/// Socket-count features: one per (state, port class).
const N_SOCKET: usize = (SOCKET_STATES_TCP.len() + SOCKET_STATES_UDP.len()) * PORT_CLASSES.len();

/// Index of the first feature after the socket counts: the listening-port buckets.
pub(crate) const F_BUCKETS: usize = N_SOCKET;
pub(crate) const F_NEW_LISTEN: usize = F_BUCKETS + N_BUCKETS;
pub(crate) const F_PROCESSES: usize = F_NEW_LISTEN + 1;
/// Index of the first traffic feature; everything before it comes from socket samples.
pub(crate) const F_PKTS: usize = F_PROCESSES + 1;
pub(crate) const F_PKTS_TCP: usize = F_PKTS + 1;
pub(crate) const F_PKTS_UDP: usize = F_PKTS + 2;
pub(crate) const F_PKTS_ICMP: usize = F_PKTS + 3;
pub(crate) const F_PKTS_OTHER: usize = F_PKTS + 4;
pub(crate) const F_BYTES_IN: usize = F_PKTS + 5;
pub(crate) const F_BYTES_OUT: usize = F_PKTS + 6;
pub(crate) const F_REMOTE_PORTS: usize = F_PKTS + 7;
pub(crate) const F_REMOTE_ADDRS: usize = F_PKTS + 8;
pub(crate) const F_SYN: usize = F_PKTS + 9;
pub(crate) const F_DNS_QUERIES: usize = F_PKTS + 10;
pub(crate) const F_DNS_NAMES: usize = F_PKTS + 11;
pub(crate) const F_DNS_NEW: usize = F_PKTS + 12;
pub(crate) const F_DNS_CHARS: usize = F_PKTS + 13;
pub(crate) const F_DNS_LEN_MAX: usize = F_PKTS + 14;
pub(crate) const F_DNS_HIGH_ENTROPY: usize = F_PKTS + 15;
pub(crate) const F_QUIC: usize = F_PKTS + 16;
pub(crate) const F_TLS: usize = F_PKTS + 17;
pub(crate) const F_BYTES_OUT_TOP: usize = F_PKTS + 18;
pub(crate) const F_SYN_CLOSED: usize = F_PKTS + 19;
pub(crate) const F_SCAN_BREADTH: usize = F_PKTS + 20;
pub(crate) const F_SYN_TOP_NET: usize = F_PKTS + 21;
/// Number of scored features per step.
pub const N_FEATURES: usize = F_SYN_TOP_NET + 1;

/// [`PORT_CLASSES`] index of a local port, given whether the host listens on it.
pub(crate) fn port_class(port: u16, listened: bool) -> usize {
    match (port, listened) {
        (0..=1023, _) => 0,
        (_, true) => 1,
        _ => 2,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
}
