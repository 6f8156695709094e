//! What the host's own programs do on the network, named in **every** round whatever
//! its score: a program never seen ([`new_program`]), a known program's first
//! connection to a remote port it never used or a server's first connection out
//! ([`new_services`]), a known program sending one address more than it ever did
//! ([`large_uploads`]), and a known program holding a light channel open to a network
//! it never reached ([`held_channels`]). Each details the program's identity and busiest
//! peers (`program_traffic`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use portwatch_features::client_key;
use portwatch_store::Db;
use portwatch_store::rounds::RoundInfo;
use portwatch_store::time::format_micros;
use portwatch_store::traffic::{PacketSpan, ProcessFlow};
use serde_json::json;

use super::cause::{Cause, EveryRound, Kind, Subject, add_identity, is_local, network_of};
use crate::Result;

/// A known local program as the cause of what it did in the traffic, keyed `key`.
fn program_cause(process: &str, key: String, details: serde_json::Value) -> Cause {
    Cause {
        kind: Kind::LocalProcess,
        key,
        subject: Subject::Process(process.to_string()),
        group: "traffic",
        details,
    }
}

/// How many of a program's peers its details list.
const PROGRAM_PEERS: usize = 5;

/// A program the model never saw on the network, as it talked in `round`: its identity
/// (from its sockets, where the scanner saw them) and its peers (remote address, port,
/// server name) with packets and bytes.
pub fn new_program(
    db: &Db,
    round: &RoundInfo,
    process: &str,
    local: &HashSet<u64>,
) -> Result<Cause> {
    let mut details = program_traffic(db, round, process, None, local)?;
    if let serde_json::Value::Object(m) = &mut details {
        m.insert("activity".into(), json!("new program"));
    }
    Ok(Cause {
        kind: Kind::NewProgram,
        key: process.to_string(),
        subject: Subject::Process(process.to_string()),
        group: "traffic",
        details,
    })
}

/// Known programs that opened connections in `round` to a remote TCP port they never
/// used before ([`portwatch_features::Seen::new_service`]): a web application mailing on port 25, a
/// database connecting out. One cause per program and port, keyed `PROCESS tcp/PORT`.
/// And a server that never connected anywhere ([`portwatch_features::Seen::never_connected`]) connecting
/// out, while it listens on a known port: nginx made an open proxy, a reverse shell
/// from a web server. The simulator's `proxy` on a server (week 931) was named only by
/// the strangers at port 80 and a DNS incident per site. One cause per program, keyed
/// `PROCESS outbound`, with every port it reached.
pub fn new_services(db: &Db, r: &EveryRound<'_>) -> Result<Vec<Cause>> {
    let (round, keys, seen, local) = (r.round, r.keys, r.seen, r.local);
    let mut out = Vec::new();
    let mut servers: Option<BTreeSet<String>> = None;
    let mut first_out: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for (process, port) in &keys.services {
        if !seen.never_connected(process) {
            continue;
        }
        if servers.is_none() {
            // The round's programs serving a port the model knows.
            let known = db
                .listener_executables(round.id)?
                .into_iter()
                .filter(|(port, tcp, _)| seen.has_port(portwatch_features::port_key(*tcp, *port)))
                .filter_map(|(_, _, o)| o.process)
                .collect();
            servers = Some(known);
        }
        if servers.as_ref().is_some_and(|s| s.contains(process)) {
            first_out.entry(process).or_default().push(*port);
        }
    }
    for (process, ports) in first_out {
        let mut details = program_traffic(db, round, process, None, local)?;
        if let serde_json::Value::Object(m) = &mut details {
            m.insert("activity".into(), json!("first connections out"));
            m.insert("ports".into(), json!(ports));
        }
        out.push(program_cause(
            process,
            format!("{process} outbound"),
            details,
        ));
    }
    for (process, port) in keys
        .services
        .iter()
        .filter(|(p, port)| seen.new_service(p, *port))
    {
        let mut details = program_traffic(db, round, process, Some(*port), local)?;
        if let serde_json::Value::Object(m) = &mut details {
            m.insert("activity".into(), json!("new destination port"));
            m.insert("port".into(), json!(port));
            m.insert("protocol".into(), json!("tcp"));
        }
        out.push(program_cause(
            process,
            format!("{process} tcp/{port}"),
            details,
        ));
    }
    Ok(out)
}

/// Known programs that sent more bytes to one remote address in `round`, as a
/// client, than their ceiling allows ([`portwatch_features::Seen::over_upload_ceiling`]): exfiltration
/// through the web application's worker or the browser, to port 443 like all their
/// traffic. One cause per program, keyed by its name as the heaviest sender's is, so
/// the two are one incident; with the round's peak, the ceiling it went over, and the
/// program's busiest peers.
pub fn large_uploads(db: &Db, r: &EveryRound<'_>) -> Result<Vec<Cause>> {
    let mut out = Vec::new();
    for (process, peak) in &r.keys.uploads {
        let Some(ceiling) = r.seen.over_upload_ceiling(process, *peak) else {
            continue;
        };
        let mut details = program_traffic(db, r.round, process, None, r.local)?;
        if let serde_json::Value::Object(m) = &mut details {
            m.insert("activity".into(), json!("upload"));
            m.insert("round_peak".into(), json!(peak));
            m.insert("ceiling".into(), json!(ceiling));
        }
        out.push(program_cause(process, process.clone(), details));
    }
    Ok(out)
}

/// Rounds in a row a known program must exchange packets with a network it never
/// reached in a learnt round before the channel is named: five minutes of a connection
/// kept open, where page loads and API calls come and go.
pub const HELD_ROUNDS: usize = 5;
/// Most packets a round of such a channel carries: a command channel's heartbeats and
/// commands are a few dozen; a video or a download from a new mirror is thousands, and
/// other rules (upload ceilings) watch volume.
pub const HELD_PACKETS: i64 = 300;
/// Rounds read back to find where a channel's run of rounds began (four hours).
const HELD_LOOKBACK: usize = 240;
/// Longest pause between one round's end and the next one's start that still counts
/// as "in a row" (a round is a minute; a collector restarted late is not).
const HELD_GAP_MICROS: i64 = 90_000_000;

/// Known programs holding a light channel to a network they never reached in a learnt
/// round ([`portwatch_features::Seen::new_peer`]): in each of the last [`HELD_ROUNDS`] rounds or more, back
/// to back, 1 to [`HELD_PACKETS`] packets with it (no learnt round before the first of
/// that run had the pair: up to `HELD_LOOKBACK` rounds are read back to find it),
/// over one connection kept through the last five (the same local
/// port: a browser on a site it never visited opens new connections as it goes — 141
/// false incidents in simulated workstation week 906 without this). A command channel
/// through the web application's worker or the browser, kept open for hours with a
/// heartbeat, is one such; nothing else about it is new. The rounds before this one
/// are read from their totals (`round_talkers`), the connection from their packets.
/// One cause per program and network, keyed `PROCESS NETWORK`, its subject the remote
/// address (an allow rule by CIDR silences a channel an operator knows).
pub fn held_channels(db: &Db, r: &EveryRound<'_>, talks: &mut Talks) -> Result<Vec<Cause>> {
    if r.keys.peers.is_empty() {
        return Ok(Vec::new());
    }
    let mut rounds = db.rounds_before(r.round, HELD_LOOKBACK - 1)?;
    rounds.push(r.round.clone());
    // The rounds back to back up to this one.
    let mut from = rounds.len() - 1;
    while from > 0 && rounds[from].start - rounds[from - 1].end <= HELD_GAP_MICROS {
        from -= 1;
    }
    let rounds = &rounds[from..];
    if rounds.len() < HELD_ROUNDS {
        return Ok(Vec::new());
    }
    let mut fresh: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (process, net) in &r.keys.peers {
        if r.seen.new_peer(process, *net, rounds[0].start) {
            fresh.entry(process.as_str()).or_default().push(*net);
        }
    }
    let index: HashMap<i64, usize> = rounds.iter().enumerate().map(|(i, x)| (x.id, i)).collect();
    let mut out = Vec::new();
    for (process, nets) in fresh {
        // Per network of a fresh pair: its packets per round, and per remote address
        // in this round.
        let mut per_net: HashMap<u32, (Vec<i64>, BTreeMap<&str, i64>)> = nets
            .iter()
            .map(|&n| (n, (vec![0i64; rounds.len()], BTreeMap::new())))
            .collect();
        for t in talks.window(db, rounds[0].id, r.round.id, process, r.local)? {
            let (Some(&i), Some((per_round, now))) =
                (index.get(&t.round_id), per_net.get_mut(&t.net))
            else {
                continue;
            };
            per_round[i] += t.packets;
            if t.round_id == r.round.id {
                *now.entry(t.remote.as_str()).or_default() += t.packets;
            }
        }
        for net in nets {
            let Some((per_round, now)) = per_net.get(&net) else {
                continue;
            };
            // The channel's run: the last rounds, each light and not empty.
            let run = per_round
                .iter()
                .rev()
                .take_while(|&&n| (1..=HELD_PACKETS).contains(&n))
                .count();
            // New as of the run's first round: a fine-tune may have learnt its first
            // rounds before it was named (they looked like any others), which must not
            // make the channel known.
            if run < HELD_ROUNDS
                || !r
                    .seen
                    .new_peer(process, net, rounds[rounds.len() - run].start)
            {
                continue;
            }
            let last = &rounds[rounds.len() - HELD_ROUNDS..];
            let Some((addr, _)) = now
                .iter()
                .max_by_key(|(a, n)| (**n, std::cmp::Reverse(**a)))
            else {
                continue;
            };
            let Ok(ip) = addr.parse::<IpAddr>() else {
                continue;
            };
            // One connection held through every round (its local port in each): page
            // loads and API calls open new ones; a channel keeps its own.
            let Some((local_port, flow)) = one_connection(db, last, process, addr)? else {
                continue;
            };
            let network = network_of(ip);
            let mut details = program_traffic(db, r.round, process, None, r.local)?;
            if let serde_json::Value::Object(m) = &mut details {
                m.insert("activity".into(), json!("held channel"));
                m.insert("address".into(), json!(addr));
                m.insert("network".into(), json!(network));
                m.insert("rounds".into(), json!(run));
                m.insert(
                    "round_packets".into(),
                    json!(per_round[per_round.len() - HELD_ROUNDS..]),
                );
                m.insert("local_port".into(), json!(local_port));
                let remote_port = if flow.src.as_deref() == Some(*addr) {
                    flow.sport
                } else {
                    flow.dport
                };
                m.insert("port".into(), json!(remote_port));
                m.insert("server_name".into(), json!(flow.server_name));
            }
            out.push(Cause {
                kind: Kind::LocalProcess,
                key: format!("{process} {network}"),
                subject: Subject::Remote(vec![ip]),
                group: "traffic",
                details,
            });
        }
    }
    Ok(out)
}

/// One program's traffic with one remote address in one round (`round_talkers`), the
/// remote's network ([`client_key`]) parsed once.
struct Talk {
    round_id: i64,
    remote: String,
    net: u32,
    packets: i64,
}

/// For one detector run, per program, the talker rows of the rounds [`held_channels`]
/// looks back over. Rounds are scored oldest first and the rule reads up to
/// `HELD_LOOKBACK` rounds back from each, so each round's rows are read from the
/// store and their addresses parsed once, not once per round that looks back at them:
/// reading the window again for every round made a workstation's cold start (1,053
/// rounds) spend 18 s in this rule.
#[derive(Default)]
pub struct Talks {
    /// Per program: the ids of the first and last rounds read, and their rows.
    by_process: HashMap<String, (i64, i64, VecDeque<Talk>)>,
}

impl Talks {
    /// `process`'s rows of the rounds with ids in `first..=last`, reading from the
    /// store only the rounds not read yet.
    fn window(
        &mut self,
        db: &Db,
        first: i64,
        last: i64,
        process: &str,
        local: &HashSet<u64>,
    ) -> Result<&VecDeque<Talk>> {
        let held = self
            .by_process
            .entry(process.to_owned())
            .or_insert_with(|| (first, first - 1, VecDeque::new()));
        // A window that moved back (not the order rounds are scored in) is read anew.
        if first < held.0 || last < held.1 {
            *held = (first, first - 1, VecDeque::new());
        }
        while held.2.front().is_some_and(|t| t.round_id < first) {
            held.2.pop_front();
        }
        if last > held.1 {
            for t in db.process_talks(held.1.max(first - 1) + 1, last, process)? {
                let remote = match (t.src, t.dst) {
                    (Some(s), d) if is_local(local, &s) => d,
                    (s, _) => s,
                };
                if let Some(remote) = remote {
                    held.2.push_back(Talk {
                        round_id: t.round_id,
                        net: client_key(&remote),
                        remote,
                        packets: t.packets,
                    });
                }
            }
        }
        held.0 = first;
        held.1 = held.1.max(last);
        Ok(&held.2)
    }
}

/// The local port of a connection `process` had with `addr` in every one of `rounds`
/// (the lowest, if several), and that connection's flow in the last round.
fn one_connection(
    db: &Db,
    rounds: &[RoundInfo],
    process: &str,
    addr: &str,
) -> Result<Option<(i64, ProcessFlow)>> {
    let mut common: Option<BTreeMap<i64, ProcessFlow>> = None;
    for round in rounds {
        let Some((a, b)) = round.packet_range() else {
            return Ok(None);
        };
        let mut ports = BTreeMap::new();
        for f in db.process_flows(&PacketSpan::whole(a, b), process, None, Some(addr), 64)? {
            let local = if f.src.as_deref() == Some(addr) {
                f.dport
            } else {
                f.sport
            };
            if let Some(port) = local {
                ports.insert(port, f);
            }
        }
        common = Some(match common {
            None => ports,
            Some(before) => ports
                .into_iter()
                .filter(|(p, _)| before.contains_key(p))
                .collect(),
        });
    }
    Ok(common.and_then(|c| c.into_iter().next()))
}

/// What a local program did in `round` (only its flows with `port` at either end, when
/// given): pid, executable and user, packets and bytes, and its busiest peers (remote
/// address, port, server name).
fn program_traffic(
    db: &Db,
    round: &RoundInfo,
    process: &str,
    port: Option<u16>,
    local: &HashSet<u64>,
) -> Result<serde_json::Value> {
    #[derive(Default)]
    struct Peer {
        packets: i64,
        bytes: i64,
        server_name: Option<String>,
    }
    let mut peers: BTreeMap<(String, i64), Peer> = BTreeMap::new();
    let (mut packets, mut bytes, mut pid) = (0, 0, None);
    if let Some((a, b)) = round.packet_range() {
        for f in db.process_flows(&PacketSpan::whole(a, b), process, port, None, 200)? {
            packets += f.packets;
            bytes += f.bytes;
            pid = pid.or(f.pid);
            // The remote end is the one that is not the host's.
            let src_local = f.src.as_deref().is_some_and(|a| is_local(local, a));
            let (addr, port) = if src_local {
                (f.dst, f.dport)
            } else {
                (f.src, f.sport)
            };
            let p = peers
                .entry((addr.unwrap_or_default(), port.unwrap_or(0)))
                .or_default();
            p.packets += f.packets;
            p.bytes += f.bytes;
            if p.server_name.is_none() {
                p.server_name = f.server_name;
            }
        }
    }
    let owner = db.process_owner(round.id, process, pid)?;
    let pid = pid.or_else(|| owner.as_ref().and_then(|o| o.pid));
    let mut ranked: Vec<((String, i64), Peer)> = peers.into_iter().collect();
    ranked.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then_with(|| a.0.cmp(&b.0)));
    let mut details = json!({
        "process": process,
        "pid": pid,
        "destinations": ranked.len(),
        "packets": packets,
        "bytes": bytes,
        "peers": ranked.iter().take(PROGRAM_PEERS).map(|((addr, port), p)| json!({
            "address": addr,
            "port": port,
            "server_name": p.server_name,
            "packets": p.packets,
            "bytes": p.bytes,
        })).collect::<Vec<_>>(),
        "first": format_micros(round.start),
        "last": format_micros(round.end),
    });
    if let Some(o) = owner {
        add_identity(&mut details, &o);
    }
    Ok(details)
}

#[cfg(test)]
mod tests {
    use portwatch_features::{RoundKeys, Seen, fnv1a, port_key};

    use super::*;
    use crate::incidents::test_rounds::{every_round, store_rounds};

    /// Rounds a minute apart from `t0` (µs), the last after a gap, each with a light
    /// channel from gunicorn to 203.0.113.7:443 and a heavy download by apt from
    /// 198.51.100.9.
    fn channel_rounds(db: &mut Db, t0: i64, starts: &[i64]) -> Vec<RoundInfo> {
        use portwatch_capture::{Packet, Transport};
        let packet =
            |ts: i64, out: bool, remote: [u8; 4], (local, port): (u16, u16), process: &str| {
                let (host, remote) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from(remote));
                Packet {
                    ts_micros: ts,
                    length: 120,
                    src_addr: Some(if out { host } else { remote }),
                    dst_addr: Some(if out { remote } else { host }),
                    transport: Some(Transport::Tcp),
                    src_port: Some(if out { local } else { port }),
                    dst_port: Some(if out { port } else { local }),
                    tcp_flags: Some(0x18),
                    process: Some(process.into()),
                    ..Packet::default()
                }
            };
        let rounds = (0u16..).zip(starts).map(|(r, &start)| {
            let start = t0 + start;
            // Six light packets of the channel, six of a site visited each minute on
            // a new connection, then 400 of the download.
            let flows = [
                (
                    6,
                    10_000_000,
                    [203, 0, 113, 7],
                    (45_000, 443),
                    "gunicorn",
                    2,
                ),
                (
                    6,
                    1_000_000,
                    [192, 0, 2, 80],
                    (46_000 + r, 443),
                    "firefox",
                    2,
                ),
                (400, 100_000, [198, 51, 100, 9], (45_001, 80), "apt", 4),
            ];
            let mut packets = Vec::new();
            for (n, every, remote, port, process, out_each) in flows {
                for k in 0..n {
                    packets.push(packet(
                        start + k * every,
                        k % out_each == 0,
                        remote,
                        port,
                        process,
                    ));
                }
            }
            (start, packets)
        });
        store_rounds(db, rounds.collect::<Vec<_>>())
    }

    #[test]
    fn a_light_channel_to_a_new_network_is_named_after_five_rounds_back_to_back() {
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("ports.db")).unwrap();
        let minute = 60_000_000;
        // Five rounds back to back, then one ten minutes later.
        let starts: Vec<i64> = (0..5).map(|k| k * minute).chain([15 * minute]).collect();
        let rounds = channel_rounds(&mut db, 1_767_225_600_000_000, &starts);
        assert_eq!(rounds.len(), 6);
        let (gunicorn, apt, firefox) = (
            ("gunicorn".to_string(), client_key("203.0.113.7")),
            ("apt".to_string(), client_key("198.51.100.9")),
            ("firefox".to_string(), client_key("192.0.2.80")),
        );
        let keys = RoundKeys {
            peers: vec![apt.clone(), firefox.clone(), gunicorn.clone()],
            ..RoundKeys::default()
        };
        let mut seen = Seen::default();
        seen.add_programs(&[
            "gunicorn".to_string(),
            "apt".to_string(),
            "firefox".to_string(),
        ]);
        seen.add_peers(&[], 0);
        let local = HashSet::from([fnv1a(b"10.0.0.1")]);
        let at = |i: usize, seen: &Seen| {
            let every = EveryRound {
                round: &rounds[i],
                keys: &keys,
                seen,
                local: &local,
            };
            held_channels(&db, &every, &mut Talks::default()).unwrap()
        };
        assert_eq!(at(3, &seen), Vec::new(), "four rounds are not five");
        let named = at(4, &seen);
        assert_eq!(
            named.len(),
            1,
            "apt's download is too heavy, firefox's visits are new connections: {named:?}"
        );
        let c = &named[0];
        assert_eq!(
            (c.kind, c.key.as_str()),
            (Kind::LocalProcess, "gunicorn 203.0.113.0/24")
        );
        assert_eq!(
            c.subject,
            Subject::Remote(vec!["203.0.113.7".parse().unwrap()])
        );
        assert_eq!(c.details["activity"], "held channel");
        assert_eq!(
            (c.details["port"].clone(), c.details["local_port"].clone()),
            (json!(443), json!(45_000))
        );
        assert_eq!(c.details["round_packets"], json!([6, 6, 6, 6, 6]));
        assert_eq!(at(5, &seen), Vec::new(), "a gap breaks the run");
        // Learnt from the run's own first round, it is still new as of that round;
        // learnt from a round before the run, it is the program's own.
        for k in [0, 3] {
            let mut learnt = seen.clone();
            learnt.add_peers(std::slice::from_ref(&gunicorn), rounds[k].start);
            assert_eq!(at(4, &learnt).len(), 1, "learnt from round {k} of the run");
        }
        seen.add_peers(std::slice::from_ref(&gunicorn), rounds[0].start - 1);
        assert_eq!(at(4, &seen), Vec::new());
    }

    /// A round in which nginx listens on port 80 and opens `fetches` connections to
    /// 203.0.113.80–: a SYN and a page back each.
    fn proxy_round(db: &mut Db, fetches: u8) -> RoundInfo {
        use portwatch_capture::{Layers, Packet, Transport};
        let t0 = 1_767_225_600_000_000;
        let host = IpAddr::from([10, 0, 0, 1]);
        let mut packets = Vec::new();
        for k in 0..fetches {
            let site = IpAddr::from([203, 0, 113, 80 + k]);
            let p = |dt: i64, out: bool, flags: u8, length: u32| Packet {
                ts_micros: t0 + i64::from(k) * 1_000_000 + dt,
                length,
                layers: Layers::parse("eth:ipv4:tcp"),
                src_addr: Some(if out { host } else { site }),
                dst_addr: Some(if out { site } else { host }),
                transport: Some(Transport::Tcp),
                src_port: Some(if out { 40_000 + u16::from(k) } else { 443 }),
                dst_port: Some(if out { 443 } else { 40_000 + u16::from(k) }),
                tcp_flags: Some(flags),
                process: Some("nginx".into()),
                pid: Some(1036),
                ..Packet::default()
            };
            packets.extend([p(0, true, 0x02, 74), p(50_000, false, 0x18, 1514)]);
        }
        let round = store_rounds(db, [(t0, packets)]).pop().unwrap();
        let tx = db.transaction().unwrap();
        let listener = portwatch_scan::PortUsage {
            port: 80,
            transport: portwatch_capture::Transport::Tcp,
            family: 4,
            state: "LISTEN",
            pid: Some(1036),
            process: Some("nginx".into()),
            exe: Some("/usr/sbin/nginx".into()),
            uid: Some(0),
            sockets: 1,
            netns: None,
            container: None,
        };
        tx.insert_port_usages(round.id, t0, [&listener]).unwrap();
        tx.commit().unwrap();
        round
    }

    #[test]
    fn a_server_that_never_connected_out_connecting_out_is_named() {
        let mut seen = Seen::default();
        seen.add_port(port_key(true, 80));
        // Connections and client programs tracked: the app reaches its database; nginx
        // is known by its listener only.
        seen.add_services(&[("gunicorn".into(), 5432)]);
        seen.add_programs(&["apt".to_string()]);
        let keys = RoundKeys {
            services: vec![("nginx".into(), 443)],
            ..RoundKeys::default()
        };
        let named = |seen: &Seen| every_round(|db| proxy_round(db, 12), &keys, seen, new_services);
        let c = named(&seen);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(
            (c[0].kind, c[0].key.as_str()),
            (Kind::LocalProcess, "nginx outbound")
        );
        let d = &c[0].details;
        assert_eq!(d["activity"], "first connections out");
        assert_eq!(d["ports"], json!([443]));
        assert_eq!(d["destinations"], json!(12));
        assert_eq!(d["pid"], json!(1036));
        // Listening on a port the model does not know, it is a new listener's business.
        let mut unknown_port = seen.clone();
        unknown_port.ports.clear();
        assert_eq!(named(&unknown_port), Vec::new());
        // Once it has connected out in learnt rounds, a new port is a new service, named
        // by that rule; a port it used, nothing.
        let mut connects = seen.clone();
        connects.add_services(&[("nginx".into(), 8000)]);
        assert_eq!(named(&connects)[0].key, "nginx tcp/443");
        connects.add_services(&[("nginx".into(), 443)]);
        assert_eq!(named(&connects), Vec::new());
    }

    #[test]
    fn one_run_reading_each_round_once_names_what_fresh_reads_name() {
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("ports.db")).unwrap();
        let minute = 60_000_000;
        // Five rounds back to back, a gap, six more: the second run's window starts
        // after the first's rounds, which the cache must drop.
        let starts: Vec<i64> = (0..5).chain(15..21).map(|k| k * minute).collect();
        let rounds = channel_rounds(&mut db, 1_767_225_600_000_000, &starts);
        let keys = RoundKeys {
            peers: vec![("gunicorn".to_string(), client_key("203.0.113.7"))],
            ..RoundKeys::default()
        };
        let mut seen = Seen::default();
        seen.add_programs(&["gunicorn".to_string()]);
        seen.add_peers(&[], 0);
        let local = HashSet::from([fnv1a(b"10.0.0.1")]);
        let mut talks = Talks::default();
        let at = |i: usize, talks: &mut Talks| {
            let every = EveryRound {
                round: &rounds[i],
                keys: &keys,
                seen: &seen,
                local: &local,
            };
            held_channels(&db, &every, talks).unwrap()
        };
        // In the order rounds are scored, then back to an earlier round.
        let mut named = Vec::new();
        for i in (0..rounds.len()).chain([4, 9, 10]) {
            let carried = at(i, &mut talks);
            assert_eq!(carried, at(i, &mut Talks::default()), "round {i}");
            if !carried.is_empty() {
                assert_eq!(carried[0].details["round_packets"], json!([6, 6, 6, 6, 6]));
                named.push(i);
            }
        }
        assert_eq!(named, [4, 9, 10, 4, 9, 10]);
    }
}
