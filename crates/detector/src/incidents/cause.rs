//! Why a round is anomalous, named as an actor an operator can act on: a new listener
//! (port, protocol, process), a remote source (its address and network), a local
//! process sending unusual traffic, a DNS domain — or, when nothing more specific
//! explains the round, the group of features that moved.
//!
//! The group of features with the largest share of the round's worst step decides
//! where to look ([`derive`](fn@derive)); new listeners are named whatever the group, because a
//! port that starts listening is always worth a line. The types every rule returns
//! ([`Cause`], [`Kind`], [`Subject`]) and what a rule sees of a round ([`RoundView`]
//! for an anomalous one, [`EveryRound`] for any) live here.
//!
//! Some actors move no feature and are named in every round whatever its score: what
//! remote clients do at the host's services (password guessing, a botnet's logins, a
//! stranger's upload: [`super::clients`]), what the host's own programs do (a program
//! never seen, a first connection to a new port, an upload over a program's ceiling, a
//! light channel to a new network: [`super::programs`]), and here a resolver never
//! seen answering ([`new_resolvers`]) and a listener served by an executable that never
//! served it ([`new_executables`]).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use portwatch_features::{RoundKeys, Seen, client_key, fnv1a};
use portwatch_store::Db;
use portwatch_store::rounds::{RoundInfo, SocketOwner};
use portwatch_store::time::format_micros;
use portwatch_store::traffic::{DnsResponder, PacketSpan, SenderOrder, SenderStats};
use serde_json::json;

use super::rules::mask;
use crate::Result;

/// Distinct destination ports one sender's connection attempts (SYN without ACK)
/// reach in one round that make it a scanner. Replies to the host's own connections
/// reach many of its ephemeral ports, but never with a bare SYN.
pub const SCAN_PORTS: i64 = 10;
/// Distinct hosts of one /24 (or /48) one local sender's connection attempts reach in
/// one round that make it a sweep of that network.
pub const SCAN_HOSTS: i64 = 20;

/// Connection attempts to one port in one round, from this many sources at least,
/// that make a flood.
pub const FLOOD_SYNS: i64 = 1000;
pub const FLOOD_SOURCES: i64 = 100;

/// The group of a `scan` cause in a round without a probe of its own: only the scan
/// breadth's ten minutes of memory moved, so it is the echo of the scan before it.
pub const SCAN_MEMORY: &str = "scan memory";
/// The echo group of a sustained shift that no actor explains.
pub const SHIFT: &str = "shift";

/// ICMP packets with one peer in a round that make it the actor of a sustained shift
/// (a ping a second each way for half a round): a monitor's ping or two a minute is
/// no actor (server week 923 named one, at 0.3× the threshold).
pub const SHIFT_ICMP_PACKETS: i64 = 60;
/// Names never seen that make a domain the actor of a sustained shift.
pub const SHIFT_NEW_NAMES: u64 = 10;

/// What an incident is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A port that the model's history never saw listening.
    NewListener,
    /// A port that listened in the round before and no longer does (a service gone).
    VanishedListener,
    /// A remote address or network (scans, floods, unusual inbound traffic).
    RemoteSource,
    /// A local process as the source of unusual traffic.
    LocalProcess,
    /// A program the model never saw on the network (sockets or traffic, listening on
    /// nothing), in any round it talks.
    NewProgram,
    /// Unusual DNS: a registered domain.
    Dns,
    /// A group of features, when no actor stands out.
    Features,
    /// A moderate shift that lasted (no single round over the threshold).
    Sustained,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NewListener => "new_listener",
            Kind::VanishedListener => "vanished_listener",
            Kind::RemoteSource => "remote_source",
            Kind::LocalProcess => "local_process",
            Kind::NewProgram => "new_program",
            Kind::Dns => "dns",
            Kind::Features => "features",
            Kind::Sustained => "sustained",
        }
    }

    /// The feature groups whose later echoes belong to an incident of this kind: the
    /// scan breadth holds ten minutes of probes ([`SCAN_MEMORY`]), and a scan or a
    /// flood leaves half-open and TIME_WAIT sockets behind it; a service gone keeps its
    /// listening sockets missing; the evidence a sender's or a domain's rounds piled up
    /// keeps a lasting-shift test up for a while ([`SHIFT`]). A new listener's later
    /// rounds are its own by presence, and a group-only cause beside an open new
    /// listener is something else (a flood at it).
    pub fn echoes(self) -> &'static [&'static str] {
        match self {
            Kind::RemoteSource | Kind::LocalProcess | Kind::NewProgram => {
                &["scan", SCAN_MEMORY, "sockets", SHIFT]
            }
            Kind::Dns => &[SHIFT],
            // The listening sockets of a service gone move the socket features for as
            // long as it is gone.
            Kind::VanishedListener => &["sockets"],
            _ => &[],
        }
    }
}

/// What an allow rule can match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A listening port and its process.
    Listener {
        tcp: bool,
        port: u16,
        process: Option<String>,
    },
    /// Remote addresses.
    Remote(Vec<IpAddr>),
    /// A local process.
    Process(String),
    /// A registered DNS domain, and the names queried under it.
    Domain { domain: String, names: Vec<String> },
    /// Nothing a rule can name.
    None,
}

/// One cause seen in one round.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    pub kind: Kind,
    /// The same for every round this cause explains.
    pub key: String,
    /// What rules match.
    pub subject: Subject,
    /// The feature group that pointed here (for echoes).
    pub group: &'static str,
    /// The actor and its figures in this round, as JSON.
    pub details: serde_json::Value,
}

/// The feature group of a feature name.
pub fn group_of(feature: &str) -> &'static str {
    match feature {
        "tcp_bare_syn" | "inbound_syn_closed_ports" | "scan_breadth" | "inbound_syn_top_net" => {
            "scan"
        }
        f if f.starts_with("dns_") => "dns",
        f if f.starts_with("tcp_")
            || f.starts_with("udp_")
            || f.starts_with("listen_bucket_")
            || f == "new_listening_ports"
            || f == "processes" =>
        {
            "sockets"
        }
        _ => "traffic",
    }
}

/// The group with the largest share among `(feature, share)` pairs.
pub fn top_group(top: &[(String, f32)]) -> &'static str {
    let mut by: BTreeMap<&'static str, f32> = BTreeMap::new();
    for (f, share) in top {
        *by.entry(group_of(f)).or_default() += share;
    }
    by.into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or("traffic", |(g, _)| g)
}

/// The /24 (IPv4) or /48 (IPv6) of an address: the unit remote sources are grouped by.
pub fn network_of(addr: IpAddr) -> String {
    match addr.to_canonical() {
        a @ IpAddr::V4(_) => format!("{}/24", mask(a, 24)),
        a @ IpAddr::V6(_) => format!("{}/48", mask(a, 48)),
    }
}

/// The registered domain of a name, approximately: the last two labels, or three when
/// the second-to-last is a short second-level label under a two-letter country code
/// (`example.co.uk`). Good enough to group a tunnel's random names under one domain.
pub fn registered_domain(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
    let n = labels.len();
    if n <= 2 {
        return labels.join(".");
    }
    let keep = if labels[n - 1].len() == 2 && labels[n - 2].len() <= 3 {
        3
    } else {
        2
    };
    labels[n - keep.min(n)..].join(".")
}

/// Everything cause-finding needs about one anomalous round.
pub struct RoundView<'a> {
    pub round: &'a RoundInfo,
    /// The round's listening ports and DNS names.
    pub keys: &'a RoundKeys,
    /// The features with the largest share of the worst step's error.
    pub top_features: &'a [(String, f32)],
    /// What the model knows: ports and names not in it are new.
    pub seen: &'a Seen,
    /// Hashes of the host's own addresses.
    pub local: &'a HashSet<u64>,
    /// The round before it and its listening ports, when loaded: a known port that
    /// listened there and not here is a service gone.
    pub previous: Option<(&'a RoundInfo, &'a RoundKeys)>,
    /// A round of a sustained shift rather than one over the threshold: only strong
    /// evidence names an actor (a new listener, a scanner, names never seen), since the
    /// heaviest sender of an ordinary round is the host's own main service.
    pub shift: bool,
}

/// What the causes found in every round, anomalous or not, look at.
#[derive(Clone, Copy)]
pub struct EveryRound<'a> {
    pub round: &'a RoundInfo,
    /// Its keys: connections per remote and port, programs' services.
    pub keys: &'a RoundKeys,
    pub seen: &'a Seen,
    /// Hashes of the host's own addresses.
    pub local: &'a HashSet<u64>,
}

impl EveryRound<'_> {
    /// The round's packets, if it has any.
    pub(super) fn span(&self) -> Option<PacketSpan> {
        let (a, b) = self.round.packet_range()?;
        Some(PacketSpan::whole(a, b))
    }
}

/// The causes of one anomalous round.
pub fn derive(db: &Db, v: &RoundView<'_>) -> Result<Vec<Cause>> {
    let mut out = new_listeners(db, v)?;
    out.extend(vanished_listeners(db, v)?);
    let group = top_group(v.top_features);
    let span = v.round.packet_range().map(|(a, b)| PacketSpan::whole(a, b));
    // A scanner or a flood is named whatever group led: sockets left half-open by a
    // scan or a flood can outweigh the scan features themselves.
    let strong = match &span {
        Some(span) => scanner(db, v, span)?,
        None => None,
    };
    let found = match (group, span) {
        _ if strong.is_some() => strong,
        // ICMP names no process and is rarely the most bytes: when it led the error,
        // its peer is the actor.
        ("traffic", Some(span)) if led_by(v.top_features, "packets_icmp") => {
            // A shift's round needs more than a monitor's pings to name one.
            let least = if v.shift { SHIFT_ICMP_PACKETS } else { 1 };
            match icmp_sweep(db, v, &span)? {
                Some(c) => Some(c),
                None => match icmp_peer(db, v, &span, least)? {
                    Some(c) => Some(c),
                    None if v.shift => None,
                    None => heavy_sender(db, v, &span)?,
                },
            }
        }
        ("traffic", Some(span)) if !v.shift => heavy_sender(db, v, &span)?,
        // A domain is the actor only for names never seen (a shift needs many).
        ("dns", Some(span)) => domain(db, v, &span)?.filter(|c| {
            let new = c.details["new_names"].as_u64().unwrap_or(0);
            new >= if v.shift { SHIFT_NEW_NAMES } else { 1 }
        }),
        _ => None,
    };
    match found {
        Some(c) => out.push(c),
        // A new listener explains what moves around it (its sockets, its clients'
        // connection attempts); a scanner or a flood would have been named above.
        // Otherwise name the group.
        None if out.is_empty() => out.push(Cause {
            kind: Kind::Features,
            key: group.to_string(),
            subject: Subject::None,
            group,
            details: json!({
                "group": group,
                "top_features": v.top_features.iter().map(|(f, s)| json!({"feature": f, "share": s})).collect::<Vec<_>>(),
            }),
        }),
        None => {}
    }
    Ok(out)
}

fn new_listeners(db: &Db, v: &RoundView<'_>) -> Result<Vec<Cause>> {
    let mut out = Vec::new();
    for &key in &v.keys.ports {
        if v.seen.has_port(key) {
            continue;
        }
        let tcp = key >> 16 == 1;
        let port = (key & 0xffff) as u16;
        let owner = db.listener_owner(v.round.id, port, tcp)?;
        out.push(listener(Kind::NewListener, tcp, port, owner));
    }
    Ok(out)
}

/// Known ports that listened in the round before and not in this one.
fn vanished_listeners(db: &Db, v: &RoundView<'_>) -> Result<Vec<Cause>> {
    let Some((prev, prev_keys)) = v.previous else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for &key in &prev_keys.ports {
        if v.keys.ports.contains(&key) || !v.seen.has_port(key) {
            continue;
        }
        let tcp = key >> 16 == 1;
        let port = (key & 0xffff) as u16;
        let owner = db.listener_owner(prev.id, port, tcp)?;
        out.push(listener(Kind::VanishedListener, tcp, port, owner));
    }
    Ok(out)
}

/// A listener as a cause: its port and protocol, and its owner as far as the scanner
/// saw it (process, pid, executable, user).
fn listener(kind: Kind, tcp: bool, port: u16, owner: Option<SocketOwner>) -> Cause {
    let proto = if tcp { "tcp" } else { "udp" };
    let owner = owner.unwrap_or_default();
    let mut details = json!({
        "protocol": proto,
        "port": port,
        "process": owner.process,
        "pid": owner.pid,
    });
    add_identity(&mut details, &owner);
    Cause {
        kind,
        key: format!("{proto}/{port}"),
        subject: Subject::Listener {
            tcp,
            port,
            process: owner.process.clone(),
        },
        group: "sockets",
        details,
    }
}

/// Adds the executable, the user (uid, and its name where this host knows it), and the
/// network namespace and container when not the host's.
pub(super) fn add_identity(details: &mut serde_json::Value, owner: &SocketOwner) {
    let serde_json::Value::Object(m) = details else {
        return;
    };
    if let Some(exe) = &owner.exe {
        m.insert("exe".into(), json!(exe));
    }
    if let Some(c) = &owner.container {
        m.insert("container".into(), json!(c));
    }
    if let Some(ns) = owner.netns {
        m.insert("netns".into(), json!(ns));
    }
    if let Some(uid) = owner.uid {
        m.insert("uid".into(), json!(uid));
        if let Some(name) = u32::try_from(uid).ok().and_then(user_name) {
            m.insert("user".into(), json!(name));
        }
    }
}

/// The login name of `uid` from `/etc/passwd` (what `ls -l` shows for local users);
/// None for a uid it does not list (a container's, a directory service's).
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&passwd, uid)
}

fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

pub(super) fn is_local(local: &HashSet<u64>, addr: &str) -> bool {
    local.contains(&fnv1a(addr.as_bytes()))
}

/// A remote scanner (most distinct ports probed), a flood (many sources' connection
/// attempts at one port), or the host scanning others.
fn scanner(db: &Db, v: &RoundView<'_>, span: &PacketSpan) -> Result<Option<Cause>> {
    let senders = db.senders(span, SenderOrder::Breadth, 20)?;
    if let Some(s) = senders
        .iter()
        .find(|s| !is_local(v.local, &s.addr) && s.syn_ports >= SCAN_PORTS)
    {
        return Ok(remote(s, &senders, v.local, "scan"));
    }
    if let Some(t) = db
        .syn_targets(span, 1)?
        .into_iter()
        .find(|t| t.syns >= FLOOD_SYNS && t.sources >= FLOOD_SOURCES)
    {
        return Ok(Some(Cause {
            kind: Kind::RemoteSource,
            key: format!("flood tcp/{}", t.port),
            subject: Subject::None,
            group: "scan",
            details: json!({
                "activity": "flood",
                "port": t.port,
                "sources": t.sources,
                "syns": t.syns,
                "first": format_micros(v.round.start),
                "last": format_micros(v.round.end),
            }),
        }));
    }
    if let Some(c) = udp_flood(db, v, span)? {
        return Ok(Some(c));
    }
    for s in senders.iter().filter(|s| is_local(v.local, &s.addr)) {
        if s.syn_ports >= SCAN_PORTS {
            return local_process(db, v, s, "scan").map(Some);
        }
        // A sweep of one network, not a browser's many sites across the internet.
        if s.syn_destinations >= SCAN_HOSTS {
            let mut by_net: BTreeMap<String, i64> = BTreeMap::new();
            for d in db.syn_destinations(span, &s.addr, s.process.as_deref(), 5000)? {
                if let Ok(a) = d.parse::<IpAddr>() {
                    *by_net.entry(network_of(a)).or_default() += 1;
                }
            }
            if let Some((net, n)) = by_net.into_iter().max_by_key(|(_, n)| *n)
                && n >= SCAN_HOSTS
            {
                let mut c = local_process(db, v, s, "scan")?;
                if let serde_json::Value::Object(m) = &mut c.details {
                    m.insert("network".into(), json!(net));
                    m.insert("destinations".into(), json!(n));
                }
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// A UDP flood at one of the host's addresses: in an anomalous round, at least
/// [`FLOOD_SYNS`] datagrams from at least [`FLOOD_SOURCES`] sources to ports where
/// nothing listens (so a busy DNS or QUIC service's own clients are never one). Keyed
/// `flood udp`: the actor is spoofed addresses by the thousand, which no network names.
fn udp_flood(db: &Db, v: &RoundView<'_>, span: &PacketSpan) -> Result<Option<Cause>> {
    let listening: Vec<u16> = v
        .keys
        .ports
        .iter()
        .filter(|&&k| k >> 16 == 0)
        .map(|&k| (k & 0xffff) as u16)
        .collect();
    let Some(t) = db
        .udp_targets(span, &listening, 4)?
        .into_iter()
        .find(|t| is_local(v.local, &t.addr))
        .filter(|t| t.datagrams >= FLOOD_SYNS && t.sources >= FLOOD_SOURCES)
    else {
        return Ok(None);
    };
    Ok(Some(Cause {
        kind: Kind::RemoteSource,
        key: "flood udp".into(),
        subject: Subject::None,
        group: "scan",
        details: json!({
            "activity": "udp flood",
            "protocol": "udp",
            "address": t.addr,
            "sources": t.sources,
            "datagrams": t.datagrams,
            "ports": t.ports,
            "bytes": t.bytes,
            "first": format_micros(t.first),
            "last": format_micros(t.last),
        }),
    }))
}

/// Whether `feature` has the largest share of the worst step's error.
fn led_by(top: &[(String, f32)], feature: &str) -> bool {
    top.iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .is_some_and(|(f, _)| f == feature)
}

/// Distinct addresses the host's ICMP reaches in a round that make it a sweep: a
/// monitor pings one or two, `fping -g` or `nmap -sn` a whole /24.
pub const SWEEP_ADDRESSES: i64 = 32;
/// Destinations of a sweep read back to name its networks and subject.
const SWEEP_READ: usize = 4096;

/// The host pinging many addresses in a round, for a round whose error `packets_icmp`
/// led: a ping sweep, mapping the network. Named by its single busiest peer (the
/// simulator's `pingsweep`, server week 927 and workstation week 928), each sweep was
/// one incident per /24 it crossed, with "2 packets" to one address; keyed `icmp
/// sweep`, a sweep over several networks and rounds is one. The subject is every
/// address reached, so that a CIDR allow rule for the LAN silences a known scanner.
fn icmp_sweep(db: &Db, v: &RoundView<'_>, span: &PacketSpan) -> Result<Option<Cause>> {
    let Some(f) = db
        .icmp_fanout(span, 8)?
        .into_iter()
        .find(|f| is_local(v.local, &f.src) && f.destinations >= SWEEP_ADDRESSES)
    else {
        return Ok(None);
    };
    let (reached, answered) = db.icmp_reach(span, &f.src, SWEEP_READ)?;
    let addrs: Vec<IpAddr> = reached.iter().filter_map(|a| a.parse().ok()).collect();
    let networks: BTreeSet<String> = addrs.iter().map(|a| network_of(*a)).collect();
    Ok(Some(Cause {
        kind: Kind::LocalProcess,
        key: "icmp sweep".into(),
        subject: Subject::Remote(addrs),
        group: "traffic",
        details: json!({
            "activity": "ping sweep",
            "source": f.src,
            "destinations": f.destinations,
            "subnets": networks,
            "packets": f.packets,
            "answering": answered,
            "first": format_micros(f.first),
            "last": format_micros(f.last),
        }),
    }))
}

/// The remote peer of the most ICMP packets in the round, for a round whose error
/// `packets_icmp` led: a tunnel over pings (ptunnel, icmpsh) or a ping flood. No
/// process is named (ICMP has no port to attribute, and a raw socket is not among the
/// TCP and UDP sockets the scanner lists), and the heaviest sender of bytes is someone
/// else: the host's web server, a CDN the browser downloads from. In simulated weeks
/// 923 and 924 a tunnel was named that way, as nginx or as a new incident for each
/// round's busiest Google or GitHub network. The host sending more bytes than it gets
/// back makes it a local source (`local_process`, keyed `icmp NETWORK`); otherwise the
/// peer is a remote source keyed by its network. Either way the subject is the
/// address, so that a CIDR allow rule silences a monitor's pings. A peer with fewer
/// than `least` ICMP packets in the round is no actor.
fn icmp_peer(db: &Db, v: &RoundView<'_>, span: &PacketSpan, least: i64) -> Result<Option<Cause>> {
    #[derive(Default)]
    struct Peer<'a> {
        local: Option<&'a str>,
        out: (i64, i64),
        back: (i64, i64),
        first: i64,
        last: i64,
    }
    let pairs = db.icmp_pairs(span, 100)?;
    let mut peers: BTreeMap<&str, Peer<'_>> = BTreeMap::new();
    for p in &pairs {
        let (remote, local, outbound) = match (is_local(v.local, &p.src), is_local(v.local, &p.dst))
        {
            (true, false) => (p.dst.as_str(), p.src.as_str(), true),
            (false, true) => (p.src.as_str(), p.dst.as_str(), false),
            _ => continue,
        };
        let e = peers.entry(remote).or_insert_with(|| Peer {
            first: p.first,
            last: p.last,
            ..Peer::default()
        });
        e.local.get_or_insert(local);
        let dir = if outbound { &mut e.out } else { &mut e.back };
        dir.0 += p.packets;
        dir.1 += p.bytes;
        e.first = e.first.min(p.first);
        e.last = e.last.max(p.last);
    }
    let Some((addr, p)) = peers
        .into_iter()
        .filter(|(_, p)| p.out.0 + p.back.0 >= least)
        .max_by_key(|(a, p)| (p.out.0 + p.back.0, std::cmp::Reverse(*a)))
    else {
        return Ok(None);
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Ok(None);
    };
    let network = network_of(ip);
    let host_sends = p.out.1 > p.back.1;
    Ok(Some(Cause {
        kind: if host_sends {
            Kind::LocalProcess
        } else {
            Kind::RemoteSource
        },
        key: if host_sends {
            format!("icmp {network}")
        } else {
            network.clone()
        },
        subject: Subject::Remote(vec![ip]),
        group: "traffic",
        details: json!({
            "activity": "icmp",
            "address": addr,
            "network": network,
            "source": p.local,
            "packets": p.out.0,
            "bytes": p.out.1,
            "packets_in": p.back.0,
            "bytes_in": p.back.1,
            "first": format_micros(p.first),
            "last": format_micros(p.last),
        }),
    }))
}

/// The sender of the most bytes: a local process (an upload, beaconing) or a remote
/// source (a flood).
fn heavy_sender(db: &Db, v: &RoundView<'_>, span: &PacketSpan) -> Result<Option<Cause>> {
    let senders = db.senders(span, SenderOrder::Bytes, 20)?;
    let Some(s) = senders.first() else {
        return Ok(None);
    };
    if !is_local(v.local, &s.addr)
        && let Some(c) = remote(s, &senders, v.local, "traffic")
    {
        return Ok(Some(c));
    }
    local_process(db, v, s, "traffic").map(Some)
}

/// A remote sender as a cause, keyed by its network; the other senders of the same
/// network in the round are named with it.
fn remote(
    s: &SenderStats,
    all: &[SenderStats],
    local: &HashSet<u64>,
    group: &'static str,
) -> Option<Cause> {
    let addr: IpAddr = s.addr.parse().ok()?;
    let net = network_of(addr);
    let peers: Vec<&SenderStats> = all
        .iter()
        .filter(|o| {
            !is_local(local, &o.addr)
                && o.addr.parse::<IpAddr>().is_ok_and(|a| network_of(a) == net)
        })
        .collect();
    let mut addrs: Vec<IpAddr> = peers.iter().filter_map(|o| o.addr.parse().ok()).collect();
    addrs.sort();
    addrs.dedup();
    let packets: i64 = peers.iter().map(|o| o.packets).sum();
    let syns: i64 = peers.iter().map(|o| o.syns).sum();
    let first = peers.iter().map(|o| o.first).min().unwrap_or(s.first);
    let last = peers.iter().map(|o| o.last).max().unwrap_or(s.last);
    Some(Cause {
        kind: Kind::RemoteSource,
        key: net.clone(),
        subject: Subject::Remote(addrs.clone()),
        group,
        details: json!({
            "activity": if group == "scan" { "port scan" } else { "traffic" },
            "network": net,
            "addresses": addrs.iter().take(10).map(ToString::to_string).collect::<Vec<_>>(),
            "top_address": s.addr,
            "ports": if group == "scan" { s.syn_ports } else { s.dest_ports },
            "destinations": s.destinations,
            "packets": packets,
            "syns": syns,
            "bytes": s.bytes,
            "first": format_micros(first),
            "last": format_micros(last),
        }),
    })
}

/// A local process as the sender of unusual traffic, with its executable and user from
/// its sockets in the round, where the scanner saw them.
fn local_process(
    db: &Db,
    v: &RoundView<'_>,
    s: &SenderStats,
    group: &'static str,
) -> Result<Cause> {
    let owner = match &s.process {
        Some(p) => db.process_owner(v.round.id, p, s.pid)?,
        None => None,
    };
    let name = s
        .process
        .clone()
        .unwrap_or_else(|| format!("unattributed {}", s.addr));
    // A program never seen before is that program's incident, whatever it does. One
    // that listens in the round (nginx answering its clients) is a service, which the
    // seen-set knows by its port, not by name.
    let kind = match &s.process {
        Some(p) if !v.seen.has_program(p) && v.keys.programs.binary_search(p).is_ok() => {
            Kind::NewProgram
        }
        _ => Kind::LocalProcess,
    };
    let mut c = Cause {
        kind,
        key: name.clone(),
        subject: match &s.process {
            Some(p) => Subject::Process(p.clone()),
            None => Subject::None,
        },
        group,
        details: json!({
            "activity": if group == "scan" { "scan of other hosts" } else { "traffic" },
            "process": s.process,
            "pid": s.pid,
            "source": s.addr,
            "destinations": if group == "scan" { s.syn_destinations } else { s.destinations },
            "ports": if group == "scan" { s.syn_ports } else { s.dest_ports },
            "packets": s.packets,
            "bytes": s.bytes,
            "first": format_micros(s.first),
            "last": format_micros(s.last),
        }),
    };
    if kind == Kind::NewProgram
        && let Some(p) = &s.process
    {
        // Named as the program it is, with its peers; a scan keeps its figures.
        let mut np = super::programs::new_program(db, v.round, p, v.local)?;
        if group == "scan"
            && let (serde_json::Value::Object(to), serde_json::Value::Object(from)) =
                (&mut np.details, &c.details)
        {
            for k in ["activity", "network", "destinations", "ports"] {
                if let Some(x) = from.get(k) {
                    to.insert(k.into(), x.clone());
                }
            }
        }
        np.group = group;
        return Ok(np);
    }
    if let Some(o) = owner {
        add_identity(&mut c.details, &o);
    }
    Ok(c)
}

/// Networks answering the host's DNS in one round past which the host resolves
/// recursively (it asks the authoritative servers of every domain itself), where a
/// network never seen answering says nothing.
pub const MAX_ROUND_RESOLVERS: usize = 4;

/// The host's DNS answered from a network no learnt round had answer it
/// ([`Seen::new_resolver`]): a rogue resolver (the resolver setting rewritten by
/// malware, a rogue DHCP server's answer), which can send every name the host looks
/// up wherever it likes. Nothing else moves: the names, the processes, the volume are
/// the host's own, and the simulator's `resolver` was missed on its first run (server
/// week 927, workstation week 928: 0 of 2 each) before this rule. A
/// `remote_source` keyed by the network (its packets are left out when the round is
/// learnt); subject the answering addresses. Not asked of a host whose round had more
/// than [`MAX_ROUND_RESOLVERS`] networks answering, nor while no learnt round had any.
pub fn new_resolvers(db: &Db, r: &EveryRound<'_>) -> Result<Vec<Cause>> {
    let nets = &r.keys.resolvers;
    if nets.len() > MAX_ROUND_RESOLVERS || !nets.iter().any(|n| r.seen.new_resolver(*n)) {
        return Ok(Vec::new());
    }
    let Some(span) = r.span() else {
        return Ok(Vec::new());
    };
    // Per new network: its answering addresses, most answers first.
    let mut fresh: BTreeMap<String, Vec<DnsResponder>> = BTreeMap::new();
    for d in db.dns_responders(&span, 16)? {
        let Ok(ip) = d.addr.parse::<IpAddr>() else {
            continue;
        };
        if is_local(r.local, &d.addr) || !r.seen.new_resolver(client_key(&d.addr)) {
            continue;
        }
        fresh.entry(network_of(ip)).or_default().push(d);
    }
    Ok(fresh
        .into_iter()
        .map(|(network, answering)| {
            let addrs: Vec<IpAddr> = answering
                .iter()
                .filter_map(|d| d.addr.parse().ok())
                .collect();
            Cause {
                kind: Kind::RemoteSource,
                key: network.clone(),
                subject: Subject::Remote(addrs),
                group: "dns",
                details: json!({
                    "activity": "new resolver",
                    "address": answering[0].addr,
                    "network": network,
                    "answers": answering.iter().map(|d| d.answers).sum::<i64>(),
                    "names": answering.iter().map(|d| d.names).max().unwrap_or(0),
                }),
            }
        })
        .collect())
}

/// Known listeners served by an executable that never served their port in a learnt
/// round: a trojaned service (sshd replaced by a build of the intruder's that logs
/// passwords, under the same name on the same port, with the same clients) or a
/// service moved to another binary. Nothing else about such a swap moves: the
/// simulator's `hijack` was missed on its first run (server week 925, 0 of 2) before
/// this rule. Keyed `PROTO/PORT EXE`; the subject is the listener, so an allow rule by
/// port silences it. `known` caches, for one detector run, whether a (port, protocol,
/// executable) served in a learnt round; nothing is named before any round was learnt.
pub fn new_executables(
    db: &Db,
    r: &EveryRound<'_>,
    known: &mut HashMap<(u16, bool, String), bool>,
) -> Result<Vec<Cause>> {
    let mut out = Vec::new();
    for (port, tcp, owner) in db.listener_executables(r.round.id)? {
        let Some(exe) = owner.exe.clone() else {
            continue;
        };
        // A port never seen listening is a new listener, named as such.
        if !r.seen.has_port(portwatch_features::port_key(tcp, port)) {
            continue;
        }
        let learnt = match known.entry((port, tcp, exe.clone())) {
            Entry::Occupied(k) => *k.get(),
            Entry::Vacant(k) => *k.insert(db.listener_executable_learnt(port, tcp, &exe)?),
        };
        if learnt {
            continue;
        }
        let before = db.last_learnt_listener_executable(port, tcp)?;
        // A port whose listeners never showed an executable in a learnt round (the
        // scanner could not read it) has nothing to compare with.
        let Some(before) = before else { continue };
        let mut c = listener(Kind::NewListener, tcp, port, Some(owner));
        c.key = format!("{} {exe}", c.key);
        if let serde_json::Value::Object(m) = &mut c.details {
            m.insert("activity".into(), json!("new executable"));
            m.insert("before".into(), json!(before));
        }
        out.push(c);
    }
    Ok(out)
}

/// Never-seen registered domains whose names all went unanswered in one round, from
/// which the actor is the lookups themselves rather than one domain: a domain-
/// generation algorithm's guesses. Each domain got one or two lookups there (the
/// simulator's `dga`, server week 929 and workstation week 930), so naming the domain
/// with the most new names made one incident a round, each after a different domain.
/// A browser's new sites are answered; a mistyped name or a startup probe (Chromium
/// looks up three random names) is a few.
pub const GENERATED_DOMAINS: usize = 10;

/// The registered domain with the most names the model has not seen (else the most
/// queries), and the process asking, where known; or, with [`GENERATED_DOMAINS`] or
/// more never-seen domains none of whose names was answered, one cause keyed
/// `generated names` for them all; or, with as many never-seen domains answered, one
/// keyed `new domains`: a relay fetching for strangers looks up a new site every few
/// seconds (the simulator's `proxy` on a server, week 931: an incident a round, each
/// after another site).
fn domain(db: &Db, v: &RoundView<'_>, span: &PacketSpan) -> Result<Option<Cause>> {
    #[derive(Default)]
    struct Acc {
        queries: i64,
        new_names: HashSet<String>,
        names: HashSet<String>,
        processes: BTreeMap<String, i64>,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for q in db.dns_queries(span, 2000)? {
        let d = registered_domain(&q.name);
        let a = by.entry(d).or_default();
        a.queries += q.queries;
        if !v.seen.has_name(&q.name) {
            a.new_names.insert(q.name.clone());
        }
        a.names.insert(q.name);
        if let Some(p) = q.process {
            *a.processes.entry(p).or_default() += q.queries;
        }
    }
    let top = |processes: &BTreeMap<String, i64>| {
        processes
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(p, _)| p.clone())
    };
    let unanswered: HashSet<String> = db.dns_unanswered(span, 4000)?.into_iter().collect();
    let fresh: Vec<(&String, &Acc)> = by.iter().filter(|(_, a)| !a.new_names.is_empty()).collect();
    let generated: Vec<(&String, &Acc)> = fresh
        .iter()
        .copied()
        .filter(|(_, a)| a.new_names.iter().all(|n| unanswered.contains(n)))
        .collect();
    // Many never-seen domains, answered or not: no one of them is the actor.
    let many = if generated.len() >= GENERATED_DOMAINS {
        Some(("generated names", generated))
    } else if fresh.len() >= GENERATED_DOMAINS {
        Some(("new domains", fresh))
    } else {
        None
    };
    if let Some((key, domains)) = many {
        let mut processes: BTreeMap<String, i64> = BTreeMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut queries = 0;
        for (_, a) in &domains {
            queries += a.queries;
            names.extend(a.new_names.iter().cloned());
            for (p, n) in &a.processes {
                *processes.entry(p.clone()).or_default() += n;
            }
        }
        names.sort();
        let unanswered = names.iter().filter(|n| unanswered.contains(*n)).count();
        return Ok(Some(Cause {
            kind: Kind::Dns,
            key: key.to_string(),
            subject: Subject::Domain {
                domain: String::new(),
                names: names.clone(),
            },
            group: "dns",
            details: json!({
                "activity": key,
                "queries": queries,
                "domains": domains.len(),
                "new_names": names.len(),
                "unanswered": unanswered,
                "examples": names.iter().take(5).collect::<Vec<_>>(),
                "process": top(&processes),
            }),
        }));
    }
    let best = by
        .into_iter()
        .max_by_key(|(_, a)| (a.new_names.len(), a.queries));
    Ok(best.map(|(domain, a)| {
        let process = top(&a.processes);
        let mut examples: Vec<&String> = a.new_names.iter().collect();
        examples.sort();
        Cause {
            kind: Kind::Dns,
            key: domain.clone(),
            subject: Subject::Domain {
                domain: domain.clone(),
                names: a.names.iter().cloned().collect(),
            },
            group: "dns",
            details: json!({
                "domain": domain,
                "queries": a.queries,
                "names": a.names.len(),
                "new_names": a.new_names.len(),
                "examples": examples.into_iter().take(5).collect::<Vec<_>>(),
                "process": process,
            }),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::test_rounds::store_rounds;

    /// A round `minute` minutes into the test's hour with, when `tunnel`, an ICMP tunnel
    /// from 10.0.0.1 to 203.0.113.50 (60 requests of 1,000 bytes, 60 replies of 100);
    /// always a monitor's ping from 198.51.100.1 and its answer, and a download by apt
    /// of 400 packets of 1,500 bytes from 198.51.100.9: the most bytes.
    /// With `sweep`, the host also pings that many addresses of 10.0.0.0/24 and of
    /// 10.0.1.0/24 (from .2 up), and .2 and .3 of each answer.
    fn icmp_round(db: &mut Db, minute: i64, tunnel: bool, sweep: u8) -> RoundInfo {
        use portwatch_capture::{Layers, Packet, Transport};
        let t0 = 1_767_225_600_000_000 + minute * 60_000_000;
        let (host, peer, monitor, mirror) = (
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([203, 0, 113, 50]),
            IpAddr::from([198, 51, 100, 1]),
            IpAddr::from([198, 51, 100, 9]),
        );
        let icmp = |ts: i64, src: IpAddr, dst: IpAddr, length: u32| Packet {
            ts_micros: ts,
            length,
            layers: Layers::parse("eth:ipv4:icmp"),
            src_addr: Some(src),
            dst_addr: Some(dst),
            ..Packet::default()
        };
        let mut packets = vec![
            icmp(t0, monitor, host, 98),
            icmp(t0 + 300, host, monitor, 98),
        ];
        for k in 0..if tunnel { 60 } else { 0 } {
            let ts = t0 + 1_000 + k * 900_000;
            packets.push(icmp(ts, host, peer, 1_000));
            packets.push(icmp(ts + 50_000, peer, host, 100));
        }
        for (k, (net, last)) in (0..2u8)
            .flat_map(|net| (1..=sweep).map(move |last| (net, last)))
            .enumerate()
        {
            let ts = t0 + 5_000 + k as i64 * 20_000;
            let to = IpAddr::from([10, 0, net, last + 1]);
            packets.push(icmp(ts, host, to, 98));
            if last <= 2 {
                packets.push(icmp(ts + 500, to, host, 98));
            }
        }
        for k in 0..400 {
            packets.push(Packet {
                ts_micros: t0 + 2_000 + k * 100_000,
                length: 1_500,
                src_addr: Some(mirror),
                dst_addr: Some(host),
                transport: Some(Transport::Tcp),
                src_port: Some(80),
                dst_port: Some(45_001),
                tcp_flags: Some(0x10),
                process: Some("apt".into()),
                ..Packet::default()
            });
        }
        packets.sort_by_key(|p| p.ts_micros);
        store_rounds(db, [(t0, packets)]).pop().unwrap()
    }

    #[test]
    fn icmp_leading_the_error_names_the_ping_peer_not_the_heaviest_sender() {
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("ports.db")).unwrap();
        let round = icmp_round(&mut db, 0, true, 0);
        let quiet = icmp_round(&mut db, 1, false, 0);
        let keys = RoundKeys::default();
        let seen = Seen::default();
        let local = HashSet::from([fnv1a(b"10.0.0.1")]);
        let causes = |top: &[(String, f32)]| {
            derive(
                &db,
                &RoundView {
                    round: &round,
                    keys: &keys,
                    top_features: top,
                    seen: &seen,
                    local: &local,
                    previous: None,
                    shift: false,
                },
            )
            .unwrap()
        };
        let icmp_led = [
            ("bytes_in".to_string(), 0.1),
            ("packets_icmp".to_string(), 0.8),
        ];
        let c = causes(&icmp_led);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, Kind::LocalProcess);
        assert_eq!(c[0].key, "icmp 203.0.113.0/24");
        assert_eq!(
            c[0].subject,
            Subject::Remote(vec!["203.0.113.50".parse().unwrap()])
        );
        let d = &c[0].details;
        assert_eq!(d["activity"], "icmp");
        assert_eq!(d["source"], "10.0.0.1");
        assert_eq!(
            (d["packets"].as_i64(), d["bytes"].as_i64()),
            (Some(60), Some(60_000))
        );
        assert_eq!(
            (d["packets_in"].as_i64(), d["bytes_in"].as_i64()),
            (Some(60), Some(6_000))
        );
        // In a sustained shift's round, 120 packets are enough; a monitor's two are not.
        let shift = |top: &[(String, f32)], round: &RoundInfo| {
            derive(
                &db,
                &RoundView {
                    round,
                    keys: &keys,
                    top_features: top,
                    seen: &seen,
                    local: &local,
                    previous: None,
                    shift: true,
                },
            )
            .unwrap()
        };
        assert_eq!(shift(&icmp_led, &round)[0].key, "icmp 203.0.113.0/24");
        assert_eq!(shift(&icmp_led, &quiet)[0].kind, Kind::Features);
        // Led by anything else, the heaviest sender is named: the mirror.
        let c = causes(&[
            ("bytes_in".to_string(), 0.8),
            ("packets_icmp".to_string(), 0.1),
        ]);
        assert_eq!(c[0].kind, Kind::RemoteSource, "{c:?}");
        assert_eq!(c[0].key, "198.51.100.0/24");
    }

    #[test]
    fn the_host_pinging_a_network_is_one_sweep_not_its_busiest_peer() {
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("ports.db")).unwrap();
        let sweep = icmp_round(&mut db, 0, false, 40);
        let few = icmp_round(&mut db, 1, false, 15);
        let keys = RoundKeys::default();
        let seen = Seen::default();
        let local = HashSet::from([fnv1a(b"10.0.0.1")]);
        let icmp_led = [("packets_icmp".to_string(), 0.8)];
        let causes = |round: &RoundInfo| {
            derive(
                &db,
                &RoundView {
                    round,
                    keys: &keys,
                    top_features: &icmp_led,
                    seen: &seen,
                    local: &local,
                    previous: None,
                    shift: false,
                },
            )
            .unwrap()
        };
        let c = causes(&sweep);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].kind, c[0].key.as_str()),
            (Kind::LocalProcess, "icmp sweep")
        );
        let d = &c[0].details;
        assert_eq!(d["activity"], "ping sweep");
        assert_eq!(d["source"], "10.0.0.1");
        // 80 addresses and the monitor's echo answered; two of each network answer,
        // and the monitor.
        assert_eq!(d["destinations"], 81);
        assert_eq!(d["packets"], 81);
        assert_eq!(d["answering"], 5);
        assert_eq!(
            d["subnets"],
            json!(["10.0.0.0/24", "10.0.1.0/24", "198.51.100.0/24"])
        );
        let Subject::Remote(addrs) = &c[0].subject else {
            panic!("{:?}", c[0].subject)
        };
        assert_eq!(addrs.len(), 81);
        // Thirty addresses are not a sweep: the busiest peer is named, as before.
        let c = causes(&few);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].details["activity"], "icmp", "{c:?}");
        assert_ne!(c[0].key, "icmp sweep");
    }

    /// A round of lookups from 10.0.0.1 to its resolver: `generated` random-looking
    /// names, one a registered domain, each answered NXDOMAIN; and a browser's three
    /// names under `news.example` and two under `cdn.example`, answered.
    fn dns_round(db: &mut Db, generated: usize) -> RoundInfo {
        use portwatch_capture::{DnsKind, Layers, Packet, Transport};
        let t0 = 1_767_225_600_000_000;
        let (host, resolver) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 53]));
        let mut packets = Vec::new();
        let mut lookup = |k: i64, name: String, answered: bool| {
            let dns = |ts, query: bool| Packet {
                ts_micros: ts,
                length: 90,
                layers: Layers::parse("eth:ipv4:udp:dns"),
                src_addr: Some(if query { host } else { resolver }),
                dst_addr: Some(if query { resolver } else { host }),
                transport: Some(Transport::Udp),
                src_port: Some(if query { 40_000 + k as u16 } else { 53 }),
                dst_port: Some(if query { 53 } else { 40_000 + k as u16 }),
                dns: Some(if query {
                    DnsKind::Query
                } else {
                    DnsKind::Response
                }),
                qry_name: Some(name.clone()),
                resp_name: (!query && answered).then(|| name.clone()),
                ..Packet::default()
            };
            packets.push(dns(t0 + k * 1_000_000, true));
            packets.push(dns(t0 + k * 1_000_000 + 30_000, false));
        };
        let browser = [
            "www.news.example",
            "img.news.example",
            "api.news.example",
            "a.cdn.example",
            "b.cdn.example",
        ];
        for (k, name) in browser.iter().enumerate() {
            lookup(k as i64, name.to_string(), true);
        }
        for k in 0..generated {
            let name: String = (0..12)
                .map(|i| char::from(b'a' + ((k * 7 + i * 3) % 26) as u8))
                .collect();
            lookup(10 + k as i64, format!("{name}.biz"), false);
        }
        store_rounds(db, [(t0, packets)]).pop().unwrap()
    }

    #[test]
    fn many_unresolvable_new_domains_are_one_generated_names_cause() {
        let names_led = [("dns_new_names".to_string(), 0.9)];
        let keys = RoundKeys::default();
        let seen = Seen::default();
        let local = HashSet::from([fnv1a(b"10.0.0.1")]);
        let cause = |generated: usize| {
            let tmp = tempfile::tempdir().unwrap();
            let mut db = Db::open(&tmp.path().join("ports.db")).unwrap();
            let round = dns_round(&mut db, generated);
            let v = RoundView {
                round: &round,
                keys: &keys,
                top_features: &names_led,
                seen: &seen,
                local: &local,
                previous: None,
                shift: false,
            };
            let mut c = derive(&db, &v).unwrap();
            assert_eq!(c.len(), 1, "{c:?}");
            c.pop().unwrap()
        };
        let dga = cause(GENERATED_DOMAINS + 2);
        assert_eq!((dga.kind, dga.key.as_str()), (Kind::Dns, "generated names"));
        let d = &dga.details;
        assert_eq!(d["domains"], json!(GENERATED_DOMAINS + 2));
        assert_eq!(d["unanswered"], json!(GENERATED_DOMAINS + 2));
        assert_eq!(d["queries"], json!(GENERATED_DOMAINS + 2));
        assert!(d["examples"][0].as_str().unwrap().ends_with(".biz"), "{d}");
        // The browser's names were answered: not among them.
        let Subject::Domain { names, .. } = &dga.subject else {
            panic!("{dga:?}")
        };
        assert!(names.iter().all(|n| n.ends_with(".biz")), "{names:?}");
        // Fewer unanswered, but as many never-seen domains with the browser's two, some
        // answered: one `new domains` cause, no one domain named.
        let some = cause(GENERATED_DOMAINS - 1);
        assert_eq!((some.kind, some.key.as_str()), (Kind::Dns, "new domains"));
        assert_eq!(some.details["domains"], json!(GENERATED_DOMAINS + 1));
        assert_eq!(some.details["unanswered"], json!(GENERATED_DOMAINS - 1));
        assert_eq!(some.details["new_names"], json!(GENERATED_DOMAINS - 1 + 5));
        // Fewer still: the domain with the most new names, the browser's.
        let few = cause(GENERATED_DOMAINS - 3);
        assert_eq!((few.kind, few.key.as_str()), (Kind::Dns, "news.example"));
    }

    #[test]
    fn features_fall_into_groups() {
        assert_eq!(group_of("scan_breadth"), "scan");
        assert_eq!(group_of("dns_new_names"), "dns");
        assert_eq!(group_of("tcp_estab_svc"), "sockets");
        assert_eq!(group_of("listen_bucket_07"), "sockets");
        assert_eq!(group_of("bytes_out"), "traffic");
        let top = vec![
            ("bytes_out".to_string(), 0.3),
            ("scan_breadth".to_string(), 0.25),
            ("inbound_syn_closed_ports".to_string(), 0.2),
        ];
        assert_eq!(top_group(&top), "scan", "shares add up per group");
        assert_eq!(top_group(&[]), "traffic");
    }

    #[test]
    fn networks_and_domains() {
        assert_eq!(
            network_of("203.0.113.77".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            network_of("2001:db8:1:2::5".parse().unwrap()),
            "2001:db8:1::/48"
        );
        assert_eq!(
            network_of("::ffff:192.0.2.9".parse().unwrap()),
            "192.0.2.0/24"
        );
        assert_eq!(registered_domain("a1b2c3.t.evil.example"), "evil.example");
        assert_eq!(registered_domain("www.bbc.co.uk."), "bbc.co.uk");
        assert_eq!(registered_domain("api.github.com"), "github.com");
        assert_eq!(registered_domain("localhost"), "localhost");
    }

    #[test]
    fn users_are_named_from_passwd_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # a comment\n\
                      broken\n\
                      www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 33).as_deref(), Some("www-data"));
        assert_eq!(passwd_name(passwd, 1000), None);
    }
}
