//! What remote clients do at the host's own services, judged in **every** round
//! whatever its score: one ordinary connection at a time to a known port by a known
//! process moves no feature, so each rule compares the round with a ceiling learnt
//! from normal rounds ([`portwatch_features::Seen`]).
//!
//! - [`repeated_connections`]: one remote opening more connections to a port than any
//!   did (SSH password guessing, slowloris);
//! - [`client_surges`]: more networks the service never had a client from than any
//!   round brought (credential stuffing from a botnet);
//! - [`transfers_in`]: a network never seen sending the service more bytes than any
//!   stranger did (an intruder's tools uploaded through an SSH login with a stolen key).
//!
//! Each names the network (or, for a surge, the port) with the listener's process and
//! the sources' connections, packets and bytes (`service_clients`).

use std::collections::HashSet;
use std::net::IpAddr;

use portwatch_features::{MAX_ROUND_CLIENTS, client_key, repeat_limit};
use portwatch_store::Db;
use portwatch_store::time::format_micros;
use portwatch_store::traffic::{PacketSpan, RepeatSource};
use serde_json::json;

use super::cause::{Cause, EveryRound, Kind, Subject, is_local, network_of};
use crate::Result;

/// The remote sources of connection attempts to TCP `port` in `span`, most connections
/// first (at most `limit`), without the host's own addresses and loopback.
fn remote_sources(
    db: &Db,
    span: &PacketSpan,
    port: u16,
    limit: usize,
    local: &HashSet<u64>,
) -> Result<Vec<(IpAddr, RepeatSource)>> {
    Ok(db
        .repeat_sources(span, port, limit)?
        .into_iter()
        .filter(|s| !is_local(local, &s.addr))
        .filter_map(|s| Some((s.addr.parse::<IpAddr>().ok()?, s)))
        .filter(|(a, _)| !a.is_loopback())
        .collect())
}

/// How many addresses a repeating network's or a surge's details list.
const REPEAT_ADDRESSES: usize = 10;

/// What the causes about a service's remote clients say of them: the addresses (all,
/// sorted, for the subject; the first [`REPEAT_ADDRESSES`] in the details), the first
/// of `sources` as the top address, and their connections, packets, bytes, first and
/// last packet; with the listening `port` and `process`, and the cause's `own` fields.
fn service_clients(
    port: u16,
    process: Option<String>,
    sources: &[&(IpAddr, RepeatSource)],
    own: serde_json::Value,
) -> (Vec<IpAddr>, serde_json::Value) {
    let mut addrs: Vec<IpAddr> = sources.iter().map(|(a, _)| *a).collect();
    addrs.sort();
    let sum = |f: fn(&RepeatSource) -> i64| sources.iter().map(|(_, s)| f(s)).sum::<i64>();
    let mut details = json!({
        "protocol": "tcp",
        "port": port,
        "process": process,
        "addresses": addrs.iter().take(REPEAT_ADDRESSES).map(ToString::to_string).collect::<Vec<_>>(),
        "top_address": sources.first().map(|(_, s)| s.addr.clone()),
        "connections": sum(|s| s.connections),
        "packets": sum(|s| s.packets),
        "bytes": sum(|s| s.bytes),
        "first": sources.iter().map(|(_, s)| s.first).min().map(format_micros),
        "last": sources.iter().map(|(_, s)| s.last).max().map(format_micros),
    });
    if let (serde_json::Value::Object(d), serde_json::Value::Object(own)) = (&mut details, own) {
        d.extend(own);
    }
    (addrs, details)
}

/// Connections from one address in a round to a known port no remote reached in a
/// learnt round ([`portwatch_features::Seen::unreached`]) that make it repeated connections: slowloris
/// from the LAN held 60–150 of sshd's slots on a desktop whose sshd no one uses (the
/// simulator's `slowloris`, workstation week 930; 30–75 connections a round), and was
/// an unnamed "unusual sockets" incident. Above what one client of a service deployed
/// and accepted makes before its rounds are learnt (up to 7 a round in the simulated
/// weeks).
pub const UNREACHED_REPEATS: u32 = 20;

/// Remote sources that opened more connections to a listening TCP port in `round` than
/// its ceiling allows ([`portwatch_features::Seen::over_ceiling`]), or more than [`UNREACHED_REPEATS`] at a
/// port no remote reached in a learnt round: one cause per network, keyed
/// `NET tcp/PORT`, with the port, its process, the connections and the ceiling they
/// went over.
pub fn repeated_connections(db: &Db, r: &EveryRound<'_>) -> Result<Vec<Cause>> {
    let (round, keys, seen) = (r.round, r.keys, r.seen);
    let Some(span) = r.span() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Cause> = Vec::new();
    // A port the model never saw listening is a new listener's incident, whoever
    // connects to it.
    for &(key, peak) in keys.repeats.iter().filter(|(k, _)| seen.has_port(*k)) {
        let (ceiling, limit) = match seen.over_ceiling(key, peak) {
            Some(c) => (c, repeat_limit(c)),
            None if seen.unreached(key) && peak > UNREACHED_REPEATS => (0, UNREACHED_REPEATS),
            None => continue,
        };
        let port = (key & 0xffff) as u16;
        let limit = i64::from(limit);
        let over: Vec<_> = remote_sources(db, &span, port, REPEAT_ADDRESSES * 2, r.local)?
            .into_iter()
            .filter(|(_, s)| s.connections > limit)
            .collect();
        let Some((top_addr, top)) = over.first() else {
            continue;
        };
        let net = network_of(*top_addr);
        if out.iter().any(|c| c.details["network"] == net.as_str()) {
            continue;
        }
        let same: Vec<_> = over.iter().filter(|(a, _)| network_of(*a) == net).collect();
        let owner = db.listener_owner(round.id, port, true)?.unwrap_or_default();
        let (addrs, details) = service_clients(
            port,
            owner.process,
            &same,
            json!({
                "activity": "repeated connections",
                "network": net,
                "round_peak": top.connections,
                "ceiling": ceiling,
            }),
        );
        out.push(Cause {
            kind: Kind::RemoteSource,
            // Keyed by port too: what to do about guessing at sshd is not what to do
            // about a scan from the same network.
            key: format!("{net} tcp/{port}"),
            subject: Subject::Remote(addrs),
            group: "traffic",
            details,
        });
    }
    Ok(out)
}

/// Networks never seen in a learnt round that sent a listening TCP port more bytes in
/// `round` than its ceiling allows ([`portwatch_features::Seen::over_received_ceiling`]): a login with a
/// stolen key, whose intruder uploads tools through one SSH session (the simulator's
/// `stolenkey`, missed on server week 931 before this rule: one ordinary connection
/// to sshd, from one more network than the guessers'). One cause per network and port,
/// keyed `NET tcp/PORT` as repeated connections are (the two are one incident), with
/// the bytes, the ceiling they went over, and the network's connections.
pub fn transfers_in(db: &Db, r: &EveryRound<'_>) -> Result<Vec<Cause>> {
    let (round, keys, seen) = (r.round, r.keys, r.seen);
    let mut out: Vec<Cause> = Vec::new();
    for (key, nets) in keys.received.iter().filter(|(k, _)| seen.has_port(*k)) {
        let over: Vec<(u32, u64, u64)> = nets
            .iter()
            .filter_map(|&(net, bytes)| {
                let ceiling = seen.over_received_ceiling(*key, net, bytes)?;
                Some((net, bytes, ceiling))
            })
            .collect();
        if over.is_empty() {
            continue;
        }
        let Some(span) = r.span() else {
            return Ok(out);
        };
        let port = (key & 0xffff) as u16;
        let sources = remote_sources(db, &span, port, MAX_ROUND_CLIENTS, r.local)?;
        let owner = db.listener_owner(round.id, port, true)?.unwrap_or_default();
        for (net, sent, ceiling) in over {
            let mut same: Vec<&(IpAddr, RepeatSource)> = sources
                .iter()
                .filter(|(_, s)| client_key(&s.addr) == net)
                .collect();
            same.sort_by_key(|(a, s)| (std::cmp::Reverse(s.bytes), *a));
            let Some((top_addr, _)) = same.first() else {
                continue;
            };
            let network = network_of(*top_addr);
            let (addrs, details) = service_clients(
                port,
                owner.process.clone(),
                &same,
                json!({
                    "activity": "large transfer",
                    "network": network,
                    "round_bytes": sent,
                    "ceiling": ceiling,
                }),
            );
            out.push(Cause {
                kind: Kind::RemoteSource,
                key: format!("{network} tcp/{port}"),
                subject: Subject::Remote(addrs),
                group: "traffic",
                details,
            });
        }
    }
    Ok(out)
}

/// The listening TCP ports that more client networks never seen in a learnt round
/// reached in `round` than the port's ceiling allows ([`portwatch_features::Seen::over_client_ceiling`]):
/// credential stuffing from a botnet, a distributed password guessing, a crawler
/// farm. One cause per port, keyed `new clients tcp/PORT` (the actor is many networks;
/// an allow rule by CIDR that covers every one of them opens nothing), with the
/// networks, the ceiling, the connections and the busiest of the new addresses.
pub fn client_surges(db: &Db, r: &EveryRound<'_>) -> Result<Vec<Cause>> {
    let (round, keys, seen) = (r.round, r.keys, r.seen);
    let Some(span) = r.span() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Cause> = Vec::new();
    for (key, nets) in keys.clients.iter().filter(|(k, _)| seen.has_port(*k)) {
        let Some(networks) = seen.unknown_clients(nets) else {
            continue;
        };
        let Some(ceiling) = seen.over_client_ceiling(*key, networks) else {
            continue;
        };
        let port = (key & 0xffff) as u16;
        let new: Vec<_> = remote_sources(db, &span, port, MAX_ROUND_CLIENTS, r.local)?
            .into_iter()
            .filter(|(_, s)| s.connections > 0 && !seen.knows_client(&s.addr))
            .collect();
        if new.is_empty() {
            continue;
        }
        let owner = db.listener_owner(round.id, port, true)?.unwrap_or_default();
        let (addrs, details) = service_clients(
            port,
            owner.process,
            &new.iter().collect::<Vec<_>>(),
            json!({
                "activity": "new clients",
                "networks": networks,
                "ceiling": ceiling,
            }),
        );
        out.push(Cause {
            kind: Kind::RemoteSource,
            key: format!("new clients tcp/{port}"),
            subject: Subject::Remote(addrs),
            group: "traffic",
            details,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use portwatch_features::{RoundKeys, Seen, port_key};
    use portwatch_store::rounds::RoundInfo;

    use super::*;
    use crate::incidents::test_rounds::{every_round, store_rounds};

    /// A round where 192.168.1.77 opens `n` connections to the host's sshd (a SYN from
    /// a new source port each) and 192.168.1.5 opens two.
    fn ssh_round(db: &mut Db, n: u16) -> RoundInfo {
        use portwatch_capture::{Layers, Packet, Transport};
        let t0 = 1_767_225_600_000_000;
        let syn = |k: u16, from: [u8; 4]| Packet {
            ts_micros: t0 + i64::from(k) * 500_000,
            length: 74,
            layers: Layers::parse("eth:ipv4:tcp"),
            src_addr: Some(IpAddr::from(from)),
            dst_addr: Some(IpAddr::from([10, 0, 0, 1])),
            transport: Some(Transport::Tcp),
            src_port: Some(50_000 + k),
            dst_port: Some(22),
            tcp_flags: Some(0x02),
            ..Packet::default()
        };
        let mut packets: Vec<Packet> = (0..n).map(|k| syn(k, [192, 168, 1, 77])).collect();
        packets.extend((0..2).map(|k| syn(1_000 + k, [192, 168, 1, 5])));
        packets.sort_by_key(|p| p.ts_micros);
        store_rounds(db, [(t0, packets)]).pop().unwrap()
    }

    #[test]
    fn many_connections_to_a_port_no_remote_reached_are_repeated_connections() {
        let ssh = port_key(true, 22);
        let mut seen = Seen::default();
        seen.add_port(ssh);
        // Ceilings tracked (the web server's), none for sshd.
        seen.add_repeats(&[(port_key(true, 443), 9)]);
        let named = |n: u16, seen: &Seen| {
            let keys = RoundKeys {
                repeats: vec![(ssh, u32::from(n))],
                ..RoundKeys::default()
            };
            every_round(|db| ssh_round(db, n), &keys, seen, repeated_connections)
        };
        let c = named(UNREACHED_REPEATS as u16 + 10, &seen);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].kind, c[0].key.as_str()),
            (Kind::RemoteSource, "192.168.1.0/24 tcp/22")
        );
        assert_eq!(c[0].details["top_address"], "192.168.1.77");
        assert_eq!(c[0].details["ceiling"], json!(0));
        assert_eq!(
            c[0].details["connections"],
            json!(UNREACHED_REPEATS + 10),
            "the neighbour's two are under the limit"
        );
        // As many as one client of a service accepted before it is learnt: nothing.
        assert_eq!(named(UNREACHED_REPEATS as u16, &seen), Vec::new());
        // Without ceilings tracked (an old model), nothing either.
        let mut untracked = Seen::default();
        untracked.add_port(ssh);
        assert_eq!(named(UNREACHED_REPEATS as u16 + 10, &untracked), Vec::new());
        // With a learnt ceiling the usual rule applies: 2 × 30 allowed.
        seen.add_repeats(&[(ssh, 30)]);
        assert_eq!(named(UNREACHED_REPEATS as u16 + 10, &seen), Vec::new());
    }

    /// A round where 203.0.113.9 sends the host's sshd `kb` kilobytes in 1 kB segments
    /// on a connection opened before the round, 192.168.1.5 sends 2 MB, and
    /// 198.51.100.7 connects and sends 10 kB.
    fn upload_round(db: &mut Db, kb: u16) -> RoundInfo {
        use portwatch_capture::{Layers, Packet, Transport};
        let t0 = 1_767_225_600_000_000;
        let segment = |k: u16, from: [u8; 4], flags: u8| Packet {
            ts_micros: t0 + i64::from(k) * 10_000,
            length: 1_000,
            layers: Layers::parse("eth:ipv4:tcp"),
            src_addr: Some(IpAddr::from(from)),
            dst_addr: Some(IpAddr::from([10, 0, 0, 1])),
            transport: Some(Transport::Tcp),
            src_port: Some(50_000),
            dst_port: Some(22),
            tcp_flags: Some(flags),
            ..Packet::default()
        };
        let mut packets: Vec<Packet> = (0..kb)
            .map(|k| segment(k, [203, 0, 113, 9], 0x18))
            .collect();
        packets.extend((0..2_000).map(|k| segment(k, [192, 168, 1, 5], 0x18)));
        packets.push(segment(0, [198, 51, 100, 7], 0x02));
        packets.extend((1..10).map(|k| segment(k, [198, 51, 100, 7], 0x18)));
        packets.sort_by_key(|p| p.ts_micros);
        store_rounds(db, [(t0, packets)]).pop().unwrap()
    }

    #[test]
    fn a_network_never_seen_sending_a_service_megabytes_is_named() {
        use portwatch_features::RECEIVED_MARGIN;
        let ssh = port_key(true, 22);
        let (stranger, known, guesser) = (
            client_key("203.0.113.9"),
            client_key("192.168.1.5"),
            client_key("198.51.100.7"),
        );
        let mut seen = Seen::default();
        seen.add_port(ssh);
        // The admin's network is known; a stranger once sent 8 kB.
        let learnt = RoundKeys {
            clients: vec![(ssh, vec![known])],
            ..RoundKeys::default()
        };
        seen.add_clients(&learnt, false);
        let once = RoundKeys {
            received: vec![(ssh, vec![(client_key("192.0.2.1"), 8_000)])],
            ..RoundKeys::default()
        };
        seen.add_clients(&once, true);
        let named = |kb: u16, seen: &Seen| {
            let mut nets = vec![
                (stranger, u64::from(kb) * 1_000),
                (known, 2_000_000),
                (guesser, 10_000),
            ];
            nets.sort_unstable();
            let keys = RoundKeys {
                received: vec![(ssh, nets)],
                ..RoundKeys::default()
            };
            every_round(|db| upload_round(db, kb), &keys, seen, transfers_in)
        };
        let c = named(600, &seen);
        assert_eq!(
            c.len(),
            1,
            "the known network's 2 MB and a guesser's 10 kB are not: {c:?}"
        );
        assert_eq!(
            (c[0].kind, c[0].key.as_str()),
            (Kind::RemoteSource, "203.0.113.0/24 tcp/22")
        );
        let d = &c[0].details;
        assert_eq!(d["activity"], "large transfer");
        assert_eq!(d["top_address"], "203.0.113.9");
        assert_eq!(d["round_bytes"], json!(600_000));
        assert_eq!(d["ceiling"], json!(8_000));
        assert_eq!(d["packets"], json!(600));
        assert_eq!(
            d["connections"],
            json!(0),
            "its connection is older than the round"
        );
        // Under the ceiling and its margin: nothing.
        let under = ((8_000 + RECEIVED_MARGIN) / 1_000) as u16;
        assert_eq!(named(under, &seen), Vec::new());
        // Once its network is learnt, its transfers are a client's.
        let mut knows = seen.clone();
        knows.add_clients(
            &RoundKeys {
                clients: vec![(ssh, vec![stranger])],
                ..RoundKeys::default()
            },
            true,
        );
        assert_eq!(named(600, &knows), Vec::new());
        // A port the model never saw listening is a new listener's incident.
        let mut unlistened = seen.clone();
        unlistened.ports.clear();
        assert_eq!(named(600, &unlistened), Vec::new());
    }
}
