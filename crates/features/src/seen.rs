//! The seen-set: listening ports, DNS names and programs on the network met in earlier
//! data, which every "new" is relative to, each port's ceiling of connections from
//! one remote address in a round ([`crate::repeats`]), and the networks the host's
//! services had clients from, with each port's ceiling of never-seen ones in a round,
//! and each program's ceiling of bytes sent to one address ([`crate::uploads`]). It is
//! saved with a model; a round's own
//! ports, names and programs come out as [`RoundKeys`], so a caller can extend its set
//! only once the round is known to be normal.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::peers::Peers;
use crate::repeats::repeat_limit;
use crate::uploads::upload_limit;

/// Most DNS names remembered in the seen-set (oldest forgotten first).
pub const MAX_SEEN_NAMES: usize = 20_000;

/// Most client networks remembered (those gone longest forgotten first): a week of the
/// simulated web server's clients is about 20,000.
pub const MAX_KNOWN_CLIENTS: usize = 32_768;

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
    /// Names of local processes that had traffic or sockets without listening (the
    /// clients of the network: a browser, apt, a backup tool). `None` in a model saved
    /// before programs were tracked: the caller seeds it from recent history.
    #[serde(default)]
    pub programs: Option<BTreeSet<String>>,
    /// Per TCP port key, the most connections one remote address made to it in a normal
    /// round. `None` in a model saved before they were tracked: nothing is over a
    /// ceiling until the caller seeds them from history.
    #[serde(default)]
    pub repeats: Option<BTreeMap<u32, u32>>,
    /// Per program, the remote TCP ports it opened connections to (its services: a web
    /// app's database and APIs, a backup tool's server). `None` in a model saved before
    /// they were tracked, as `repeats`.
    #[serde(default)]
    pub services: Option<BTreeMap<String, BTreeSet<u16>>>,
    /// Client networks of learnt rounds and each port's ceiling of new ones. `None` in
    /// a model saved before they were tracked, as `repeats`.
    #[serde(default)]
    pub clients: Option<Clients>,
    /// Per program, the most bytes it sent to one remote address in a learnt round, as
    /// a client ([`crate::uploads`]). `None` in a model saved before they were tracked,
    /// as `repeats`.
    #[serde(default)]
    pub uploads: Option<BTreeMap<String, u64>>,
    /// (program, remote network) pairs of learnt rounds' client traffic
    /// ([`crate::peers`]). `None` in a model saved before they were tracked, as
    /// `repeats`.
    #[serde(default)]
    pub peers: Option<Peers>,
    /// Networks ([`crate::client_key`]) that answered the host's DNS in learnt rounds:
    /// its resolvers. `None` in a model saved before they were tracked, as `repeats`.
    #[serde(default)]
    pub resolvers: Option<BTreeSet<u32>>,
}

/// Most resolver networks remembered: a stub or a forwarder has one to three; a host
/// that resolves recursively meets thousands (and the detector does not ask it).
pub const MAX_KNOWN_RESOLVERS: usize = 1024;

/// The networks ([`crate::client_key`]) that connected or sent to the host's listening
/// TCP ports in learnt rounds, and per port key the most networks never seen before that
/// one learnt round brought (the *ceiling*), and the most bytes one such network sent
/// it in a learnt round. Only learnt rounds add networks, so a botnet's addresses stay
/// unknown for as long as its rounds are not learnt, however often each comes back.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Clients {
    /// Per network, the learnt round it last connected in (a count of learnt rounds).
    known: HashMap<u32, u64>,
    /// Learnt rounds so far.
    rounds: u64,
    ceilings: BTreeMap<u32, u32>,
    /// Per port key, the most bytes one never-seen network sent it in a learnt round
    /// (none: 0). `None` in a model saved before they were tracked: the caller learns
    /// the clients again from history.
    #[serde(default)]
    received: Option<BTreeMap<u32, u64>>,
}

impl Clients {
    /// How many of `nets` are not known.
    fn unknown(&self, nets: &[u32]) -> u32 {
        let n = nets.iter().filter(|n| !self.known.contains_key(n)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Learns a round's networks per port key; with `raise`, first raises each port's
    /// ceilings to the round's count of networks not known before it and to the most
    /// bytes one of them sent.
    fn learn(
        &mut self,
        clients: &[(u32, Vec<u32>)],
        received: &[(u32, Vec<(u32, u64)>)],
        raise: bool,
    ) {
        self.rounds += 1;
        if raise {
            for (key, nets) in clients {
                let n = self.unknown(nets);
                let c = self.ceilings.entry(*key).or_default();
                *c = (*c).max(n);
            }
        }
        let most_received = self.received.get_or_insert_default();
        if raise {
            for (key, nets) in received {
                let new = nets.iter().filter(|(n, _)| !self.known.contains_key(n));
                if let Some(most) = new.map(|&(_, b)| b).max() {
                    let c = most_received.entry(*key).or_default();
                    *c = (*c).max(most);
                }
            }
        }
        // A network that only sent (on a connection older than the round) is a
        // client all the same.
        let sent = received
            .iter()
            .flat_map(|(_, nets)| nets.iter().map(|(n, _)| n));
        for net in clients.iter().flat_map(|(_, nets)| nets).chain(sent) {
            self.known.insert(*net, self.rounds);
        }
        forget_oldest(&mut self.known, MAX_KNOWN_CLIENTS);
    }
}

/// Past `cap` entries, forgets those whose stamp (the learnt round they were last met
/// in) is oldest, down to seven eighths of `cap` at once so that the sort is paid
/// rarely.
pub(crate) fn forget_oldest<K: std::hash::Hash + Eq>(known: &mut HashMap<K, u64>, cap: usize) {
    if known.len() <= cap {
        return;
    }
    let mut stamps: Vec<u64> = known.values().copied().collect();
    let drop = known.len() - cap * 7 / 8;
    let (_, cut, _) = stamps.select_nth_unstable(drop - 1);
    let cut = *cut;
    // Everything older than the cut goes; of the entries last met at it, as many as
    // make up the count.
    let mut ties = drop - known.values().filter(|&&at| at < cut).count();
    known.retain(|_, &mut at| {
        if at == cut && ties > 0 {
            ties -= 1;
            return false;
        }
        at > cut || (at == cut && ties == 0)
    });
}

/// Remote ports past which a program talks to any port (a browser, a package manager
/// following mirrors): a new one says nothing about it.
pub const ANY_SERVICE: usize = 8;

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
    /// Whether a program is known; true while programs are not tracked yet, so a model
    /// from before they were calls nothing new.
    pub fn has_program(&self, name: &str) -> bool {
        self.programs.as_ref().is_none_or(|p| p.contains(name))
    }
    /// Adds programs (and starts tracking them, if not yet).
    pub fn add_programs<'a>(&mut self, names: impl IntoIterator<Item = &'a String>) {
        let set = self.programs.get_or_insert_default();
        for n in names {
            if !set.contains(n) {
                set.insert(n.clone());
            }
        }
    }
    /// The ceiling of `key` when `n` connections from one remote in a round are over
    /// its limit ([`repeat_limit`]); None when they are not, when ceilings are not
    /// tracked yet, or when no remote reached the port in a learnt round (a service
    /// learnt while its clients' packets were left out, as a deployed one is until
    /// accepted, has no ceiling to go over).
    pub fn over_ceiling(&self, key: u32, n: u32) -> Option<u32> {
        let ceiling = *self.repeats.as_ref()?.get(&key)?;
        (n > repeat_limit(ceiling)).then_some(ceiling)
    }
    /// Whether ceilings are tracked and no remote reached `key` in a learnt round: a
    /// listener only the host itself talks to (sshd on a desktop), or one learnt while
    /// its clients were left out (a deployed service until its accepted rounds are
    /// learnt), for which [`Seen::over_ceiling`] has nothing to go over.
    pub fn unreached(&self, key: u32) -> bool {
        self.repeats.as_ref().is_some_and(|m| !m.contains_key(&key))
    }
    /// Raises ceilings to a round's peaks (and starts tracking them, if not yet).
    pub fn add_repeats(&mut self, peaks: &[(u32, u32)]) {
        let map = self.repeats.get_or_insert_default();
        for &(key, n) in peaks {
            let c = map.entry(key).or_default();
            *c = (*c).max(n);
        }
    }
    /// How many of a round's client networks of one port ([`RoundKeys::clients`]) are
    /// not known; None while clients are not tracked.
    pub fn unknown_clients(&self, nets: &[u32]) -> Option<u32> {
        Some(self.clients.as_ref()?.unknown(nets))
    }
    /// Whether the network of `addr` had a connection in a learnt round (true while
    /// clients are not tracked).
    pub fn knows_client(&self, addr: &str) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|c| c.known.contains_key(&crate::client_key(addr)))
    }
    /// The ceiling of `key` when `n` never-seen client networks in a round are over its
    /// limit ([`repeat_limit`], the same rule as one remote's connections); None when
    /// they are not, when clients are not tracked, or when no learnt round had a client
    /// at the port.
    pub fn over_client_ceiling(&self, key: u32, n: u32) -> Option<u32> {
        let ceiling = *self.clients.as_ref()?.ceilings.get(&key)?;
        (n > repeat_limit(ceiling)).then_some(ceiling)
    }
    /// Learns a round's client networks (and starts tracking them, if not yet); with
    /// `raise`, the ports' ceilings first rise to the round's never-seen networks and
    /// what they sent. The first hour of a cold start seeds the networks without
    /// raising: everything is new then.
    pub fn add_clients(&mut self, keys: &RoundKeys, raise: bool) {
        self.clients
            .get_or_insert_default()
            .learn(&keys.clients, &keys.received, raise);
    }
    /// Whether the client networks are tracked with what they sent (false for a model
    /// saved before bytes were: its clients are learnt again).
    pub fn tracks_received(&self) -> bool {
        self.clients.as_ref().is_some_and(|c| c.received.is_some())
    }
    /// The ceiling of `key` when network `net` ([`crate::client_key`]), never seen in a
    /// learnt round, sent it `bytes` in a round, over its limit
    /// ([`crate::received_limit`]); None when they are not, when the network is known,
    /// or while bytes are not tracked. A port no new network sent anything to in a
    /// learnt round has a ceiling of 0.
    pub fn over_received_ceiling(&self, key: u32, net: u32, bytes: u64) -> Option<u64> {
        let clients = self.clients.as_ref()?;
        if clients.known.contains_key(&net) {
            return None;
        }
        let ceiling = clients.received.as_ref()?.get(&key).copied().unwrap_or(0);
        (bytes > crate::received_limit(ceiling)).then_some(ceiling)
    }
    /// The ceiling of `program` when it sent `bytes` to one address in a round, over
    /// its limit ([`upload_limit`]); None when they are not, while uploads are not
    /// tracked, and for a program not known at all (a new program is named as such). A
    /// known program that never sent to a remote address has a ceiling of 0.
    pub fn over_upload_ceiling(&self, program: &str, bytes: u64) -> Option<u64> {
        let ceiling = match self.uploads.as_ref()?.get(program) {
            Some(c) => *c,
            None if self.knows_program(program) => 0,
            None => return None,
        };
        (bytes > upload_limit(ceiling)).then_some(ceiling)
    }
    /// Whether a program is known by name, as a program on the network or by the
    /// connections it opened (false while programs are not tracked).
    fn knows_program(&self, program: &str) -> bool {
        self.programs.as_ref().is_some_and(|p| p.contains(program))
            || self
                .services
                .as_ref()
                .is_some_and(|s| s.contains_key(program))
    }
    /// Raises programs' upload ceilings to a round's peaks (and starts tracking them,
    /// if not yet).
    pub fn add_uploads(&mut self, peaks: &[(String, u64)]) {
        let map = self.uploads.get_or_insert_default();
        for (program, bytes) in peaks {
            match map.get_mut(program) {
                Some(c) => *c = (*c).max(*bytes),
                None => {
                    map.insert(program.clone(), *bytes);
                }
            }
        }
    }
    /// Whether a known program's connection to remote TCP port `port` is its first to
    /// that port. A program is known by the connections it opened before (a service
    /// that also listens, as a web app does) or as a program on the network. False
    /// while services are not tracked, for a program not known at all (a new program or
    /// a new listener is named as such), and for one that talks to any port.
    pub fn new_service(&self, program: &str, port: u16) -> bool {
        let Some(services) = &self.services else {
            return false;
        };
        match services.get(program) {
            Some(ports) => ports.len() < ANY_SERVICE && !ports.contains(&port),
            None => self.programs.as_ref().is_some_and(|p| p.contains(program)),
        }
    }
    /// Whether `program` never opened a connection in what was learnt while connections
    /// were tracked, and is not a known client program either: known, if at all, only
    /// by what it listens on (nginx, sshd, a database). False while services are not
    /// tracked.
    pub fn never_connected(&self, program: &str) -> bool {
        self.services
            .as_ref()
            .is_some_and(|s| !s.contains_key(program))
            && self.programs.as_ref().is_some_and(|p| !p.contains(program))
    }
    /// Adds a round's (program, remote port) connections (and starts tracking them, if
    /// not yet).
    pub fn add_services(&mut self, services: &[(String, u16)]) {
        let map = self.services.get_or_insert_default();
        for (program, port) in services {
            match map.get_mut(program) {
                Some(ports) => {
                    ports.insert(*port);
                }
                None => {
                    map.insert(program.clone(), BTreeSet::from([*port]));
                }
            }
        }
    }
    /// Whether a known program reaching remote network `net` ([`crate::client_key`])
    /// as a client is new as of `since` (µs): no learnt round that started before then
    /// had the pair. False while peers are not tracked, and for a program not known at
    /// all (a new program is named as such).
    pub fn new_peer(&self, program: &str, net: u32, since: i64) -> bool {
        self.peers
            .as_ref()
            .is_some_and(|p| self.knows_program(program) && !p.knew_before(program, net, since))
    }
    /// Learns the (program, network) pairs of a round that started at `start` (µs),
    /// and starts tracking them, if not yet.
    pub fn add_peers(&mut self, pairs: &[(String, u32)], start: i64) {
        self.peers.get_or_insert_default().learn(pairs, start);
    }
    /// Whether DNS answered from network `net` ([`crate::client_key`]) comes from a
    /// resolver no learnt round had, on a host whose learnt rounds had one. False while
    /// resolvers are not tracked.
    pub fn new_resolver(&self, net: u32) -> bool {
        self.resolvers
            .as_ref()
            .is_some_and(|r| !r.is_empty() && !r.contains(&net))
    }
    /// Learns the networks that answered DNS in a round (and starts tracking them, if
    /// not yet).
    pub fn add_resolvers(&mut self, nets: &[u32]) {
        let set = self.resolvers.get_or_insert_default();
        for &n in nets {
            if set.len() >= MAX_KNOWN_RESOLVERS {
                break;
            }
            set.insert(n);
        }
    }
    /// Adds what a round contained.
    pub fn add_keys(&mut self, keys: &RoundKeys) {
        for p in &keys.ports {
            self.add_port(*p);
        }
        for n in &keys.names {
            self.add_name(n);
        }
        self.add_programs(&keys.programs);
        self.add_repeats(&keys.repeats);
        self.add_services(&keys.services);
        self.add_clients(keys, true);
        self.add_uploads(&keys.uploads);
        self.add_peers(&keys.peers, keys.start);
        self.add_resolvers(&keys.resolvers);
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
    /// Processes with traffic or sockets in the round that listened on nothing in it,
    /// sorted (a program that listens is named by its listener).
    pub programs: Vec<String>,
    /// Per TCP port key listened on, the most connections one remote address made to it
    /// in the round (only ports some remote connected to).
    pub repeats: Vec<(u32, u32)>,
    /// (program, remote TCP port) of the connections local programs opened, sorted.
    pub services: Vec<(String, u16)>,
    /// Per TCP port key listened on, the networks ([`crate::client_key`]) whose
    /// connection attempts reached it (at most [`crate::MAX_ROUND_CLIENTS`]), sorted.
    pub clients: Vec<(u32, Vec<u32>)>,
    /// Per TCP port key listened on, the bytes each remote network sent to it (at most
    /// [`crate::MAX_ROUND_CLIENTS`] networks), both sorted.
    pub received: Vec<(u32, Vec<(u32, u64)>)>,
    /// Per program, the most bytes it sent to one remote address in the round as a
    /// client, sorted by program.
    pub uploads: Vec<(String, u64)>,
    /// (program, remote network) pairs of the round's client traffic, sorted.
    pub peers: Vec<(String, u32)>,
    /// The networks ([`crate::client_key`]) that answered DNS to the host in the round
    /// (from port 53), sorted.
    pub resolvers: Vec<u32>,
    /// The round's start (µs): when what is learnt from it was first met.
    pub start: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uploads::UPLOAD_MARGIN;

    #[test]
    fn upload_ceilings_name_known_programs_only() {
        let mut seen = Seen::default();
        assert_eq!(
            seen.over_upload_ceiling("celery", u64::MAX),
            None,
            "not tracked"
        );
        seen.add_programs(&["firefox".to_string()]);
        seen.add_services(&[("celery".to_string(), 5432)]);
        seen.add_uploads(&[("celery".to_string(), 2_000_000)]);
        seen.add_uploads(&[("celery".to_string(), 1_000_000)]);
        assert_eq!(
            seen.uploads.as_ref().unwrap()["celery"],
            2_000_000,
            "the most"
        );
        assert_eq!(seen.over_upload_ceiling("celery", 8_000_000), None);
        assert_eq!(
            seen.over_upload_ceiling("celery", 8_000_001),
            Some(2_000_000)
        );
        // A known program that never sent to a remote address has a ceiling of 0.
        assert_eq!(seen.over_upload_ceiling("firefox", UPLOAD_MARGIN), None);
        assert_eq!(
            seen.over_upload_ceiling("firefox", UPLOAD_MARGIN + 1),
            Some(0)
        );
        // A program never seen is a new program's incident.
        assert_eq!(seen.over_upload_ceiling("rclone", u64::MAX), None);
    }

    /// A round's keys where `nets` connected to port key `key`.
    fn connected(key: u32, nets: Vec<u32>) -> RoundKeys {
        RoundKeys {
            clients: vec![(key, nets)],
            ..RoundKeys::default()
        }
    }

    /// A round's keys where each (network, bytes) sent that much to port key `key`.
    fn sent(key: u32, nets: &[(u32, u64)]) -> RoundKeys {
        RoundKeys {
            received: vec![(key, nets.to_vec())],
            ..RoundKeys::default()
        }
    }

    #[test]
    fn what_networks_never_seen_sent_a_port_has_a_ceiling() {
        use crate::RECEIVED_MARGIN;
        let (ssh, https) = (port_key(true, 22), port_key(true, 443));
        let mut seen = Seen::default();
        assert_eq!(
            seen.over_received_ceiling(ssh, 9, u64::MAX),
            None,
            "not tracked"
        );
        assert!(!seen.tracks_received());
        // The first hour: known, no ceiling raised.
        seen.add_clients(&sent(ssh, &[(1, 3_000_000)]), false);
        assert!(seen.tracks_received());
        assert_eq!(seen.over_received_ceiling(ssh, 1, u64::MAX), None, "known");
        assert_eq!(
            seen.over_received_ceiling(ssh, 9, RECEIVED_MARGIN + 1),
            Some(0),
            "a port no new network sent to has a ceiling of 0"
        );
        assert_eq!(seen.over_received_ceiling(ssh, 9, RECEIVED_MARGIN), None);
        // A learnt round: the known network's bytes raise nothing, a new one's do.
        seen.add_clients(&sent(ssh, &[(1, 9_000_000), (2, 20_000), (3, 8_000)]), true);
        assert_eq!(
            seen.over_received_ceiling(ssh, 9, 20_000 + RECEIVED_MARGIN),
            None
        );
        assert_eq!(
            seen.over_received_ceiling(ssh, 9, 20_001 + RECEIVED_MARGIN),
            Some(20_000)
        );
        assert_eq!(seen.over_received_ceiling(ssh, 2, u64::MAX), None, "learnt");
        seen.add_clients(&sent(https, &[(4, 1_000_000)]), true);
        assert_eq!(seen.over_received_ceiling(https, 9, 4_000_000), None);
        assert_eq!(
            seen.over_received_ceiling(https, 9, 4_000_001),
            Some(1_000_000)
        );
        let back: Seen = serde_json::from_str(&serde_json::to_string(&seen).unwrap()).unwrap();
        assert_eq!(
            back.over_received_ceiling(https, 9, 4_000_001),
            Some(1_000_000)
        );
        // A model saved before bytes were tracked says so.
        let mut json = serde_json::to_value(&seen).unwrap();
        json["clients"].as_object_mut().unwrap().remove("received");
        let old: Seen = serde_json::from_value(json).unwrap();
        assert!(!old.tracks_received());
        assert_eq!(old.over_received_ceiling(ssh, 9, u64::MAX), None);
    }

    #[test]
    fn client_ceilings_count_networks_never_seen_and_the_stale_are_forgotten() {
        let mut seen = Seen::default();
        let https = port_key(true, 443);
        assert_eq!(seen.unknown_clients(&[1, 2]), None, "not tracked yet");
        assert!(
            seen.knows_client("203.0.113.9"),
            "an untracked model alarms on nothing"
        );
        // The first hour seeds networks without a ceiling: everything is new then.
        seen.add_clients(&connected(https, vec![1, 2, 3]), false);
        assert_eq!(
            seen.over_client_ceiling(https, 1000),
            None,
            "no ceiling yet"
        );
        seen.add_clients(&connected(https, vec![1, 2, 4, 5]), true);
        assert_eq!(seen.unknown_clients(&[1, 4, 6, 7]), Some(2));
        assert_eq!(
            seen.over_client_ceiling(https, 5),
            None,
            "2 + 3 is still usual"
        );
        assert_eq!(seen.over_client_ceiling(https, 6), Some(2));
        assert_eq!(seen.over_client_ceiling(port_key(true, 22), 6), None);
        let key = crate::client_key("198.51.100.7");
        seen.add_clients(&connected(https, vec![key]), true);
        assert!(seen.knows_client("198.51.100.200"), "the same /24");
        assert!(!seen.knows_client("198.51.101.7"));
        let back: Seen = serde_json::from_str(&serde_json::to_string(&seen).unwrap()).unwrap();
        assert_eq!(back.over_client_ceiling(https, 6), Some(2));
        assert_eq!(back.unknown_clients(&[1, key, 9]), Some(1));
        // Networks that keep coming back outlive those seen once, long ago.
        let mut seen = Seen::default();
        seen.add_clients(&connected(https, vec![u32::MAX]), false);
        for start in (0..MAX_KNOWN_CLIENTS as u32 + 10).step_by(1000) {
            let nets: Vec<u32> = (start..start + 1000).chain([7_000_000]).collect();
            seen.add_clients(&connected(https, nets), false);
        }
        let c = seen.clients.as_ref().unwrap();
        assert!(c.known.len() <= MAX_KNOWN_CLIENTS);
        assert!(c.known.len() > MAX_KNOWN_CLIENTS * 3 / 4);
        assert_eq!(seen.unknown_clients(&[7_000_000, u32::MAX, 0]), Some(2));
    }

    #[test]
    fn oldest_names_are_forgotten_first() {
        let mut seen = Seen::default();
        assert!(seen.add_name("first.example"));
        assert!(!seen.add_name("first.example"), "already known");
        for k in 0..MAX_SEEN_NAMES {
            seen.add_name(&format!("n{k}.example"));
        }
        assert_eq!(seen.names.len(), MAX_SEEN_NAMES);
        assert!(!seen.has_name("first.example"));
        assert!(seen.has_name("n0.example"));
    }

    #[test]
    fn a_model_from_before_programs_were_tracked_knows_every_program() {
        let old: Seen = serde_json::from_str(r#"{"ports":[65558],"names":["a.example"]}"#).unwrap();
        assert!(old.programs.is_none() && old.has_program("anything"));
        let mut seen = Seen::default();
        seen.add_programs(&["curl".to_string()]);
        let back: Seen = serde_json::from_str(&serde_json::to_string(&seen).unwrap()).unwrap();
        assert!(back.has_program("curl") && !back.has_program("nmap"));
    }

    #[test]
    fn ceilings_are_learnt_from_peaks_and_absent_in_old_models() {
        let old: Seen = serde_json::from_str(r#"{"ports":[65558],"names":[]}"#).unwrap();
        assert_eq!(
            old.over_ceiling(port_key(true, 22), 1000),
            None,
            "untracked"
        );
        let mut seen = Seen::default();
        let ssh = port_key(true, 22);
        seen.add_repeats(&[(ssh, 2)]);
        seen.add_repeats(&[(ssh, 1), (port_key(true, 443), 30)]);
        assert_eq!(seen.over_ceiling(ssh, 5), None, "2 + 3 is still usual");
        assert_eq!(seen.over_ceiling(ssh, 6), Some(2));
        assert_eq!(seen.over_ceiling(port_key(true, 443), 60), None);
        assert_eq!(seen.over_ceiling(port_key(true, 443), 61), Some(30));
        assert_eq!(
            seen.over_ceiling(port_key(true, 5432), 400),
            None,
            "never reached from outside"
        );
        assert!(seen.unreached(port_key(true, 5432)) && !seen.unreached(ssh));
        assert!(!old.unreached(port_key(true, 5432)), "untracked");
        let back: Seen = serde_json::from_str(&serde_json::to_string(&seen).unwrap()).unwrap();
        assert_eq!(back.over_ceiling(ssh, 6), Some(2));
    }

    #[test]
    fn a_new_peer_is_a_known_programs_first_time_at_a_network() {
        let mut seen = Seen::default();
        seen.add_programs(&["firefox".to_string()]);
        let now = i64::MAX;
        assert!(
            !seen.new_peer("firefox", 7, now),
            "not tracked: nothing is new"
        );
        seen.add_keys(&RoundKeys {
            peers: vec![("firefox".into(), 7)],
            services: vec![("gunicorn".into(), 443)],
            start: 1_000,
            ..RoundKeys::default()
        });
        assert!(!seen.new_peer("firefox", 7, now));
        assert!(
            seen.new_peer("firefox", 7, 1_000),
            "learnt only from a round since then"
        );
        assert!(seen.new_peer("firefox", 8, now));
        assert!(
            seen.new_peer("gunicorn", 7, now),
            "known by the connections it opened"
        );
        assert!(
            !seen.new_peer("nc", 8, now),
            "a new program is named as such"
        );
        // A model saved before peers were tracked reads as not tracking them.
        let old: Seen = serde_json::from_str(r#"{"ports":[],"names":[]}"#).unwrap();
        assert!(old.peers.is_none());
    }

    #[test]
    fn a_program_known_only_as_a_listener_never_connected() {
        let mut seen = Seen::default();
        assert!(!seen.never_connected("nginx"), "nothing tracked yet");
        seen.add_services(&[("gunicorn".into(), 5432)]);
        seen.add_programs(&["firefox".to_string()]);
        assert!(seen.never_connected("nginx"));
        assert!(!seen.never_connected("gunicorn"), "it connects out");
        assert!(!seen.never_connected("firefox"), "a client program");
        // Its first connection out, once learnt, is one of its services.
        seen.add_services(&[("nginx".into(), 8000)]);
        assert!(!seen.never_connected("nginx"));
    }

    #[test]
    fn services_are_per_known_program_until_it_talks_to_any_port() {
        let mut seen = Seen::default();
        assert!(!seen.new_service("gunicorn", 25), "untracked");
        seen.add_programs(&["gunicorn".to_string(), "firefox".to_string()]);
        seen.add_services(&[("gunicorn".into(), 5432), ("gunicorn".into(), 443)]);
        assert!(seen.new_service("gunicorn", 25));
        assert!(!seen.new_service("gunicorn", 5432));
        assert!(seen.new_service("firefox", 443), "known, never connected");
        assert!(
            !seen.new_service("nmap", 25),
            "a new program is named as one"
        );
        let many: Vec<(String, u16)> = (0..ANY_SERVICE as u16)
            .map(|k| ("firefox".to_string(), 8000 + k))
            .collect();
        seen.add_services(&many);
        assert!(!seen.new_service("firefox", 25), "talks to any port");
        let back: Seen = serde_json::from_str(&serde_json::to_string(&seen).unwrap()).unwrap();
        assert!(back.new_service("gunicorn", 25) && !back.new_service("gunicorn", 443));
        let old: Seen =
            serde_json::from_str(r#"{"ports":[],"names":[],"programs":["a"]}"#).unwrap();
        assert!(!old.new_service("a", 25), "a model from before services");
    }

    #[test]
    fn keys_and_rebuild() {
        let mut seen = Seen::default();
        seen.add_keys(&RoundKeys {
            ports: vec![port_key(true, 22), port_key(false, 53)],
            names: vec!["example.com".into()],
            programs: vec!["apt".into()],
            repeats: vec![(port_key(true, 22), 2)],
            services: vec![("apt".into(), 443)],
            clients: vec![(port_key(true, 22), vec![crate::client_key("192.0.2.1")])],
            received: vec![(
                port_key(true, 22),
                vec![(crate::client_key("198.51.100.7"), 30_000)],
            )],
            uploads: vec![("apt".into(), 4096)],
            peers: vec![("apt".into(), crate::client_key("91.189.91.81"))],
            resolvers: vec![crate::client_key("10.0.2.3")],
            start: 0,
        });
        assert!(seen.has_port(port_key(true, 22)));
        assert!(!seen.new_resolver(crate::client_key("10.0.2.3")));
        assert!(!seen.new_peer("apt", crate::client_key("91.189.91.82"), i64::MAX));
        assert_eq!(seen.uploads.as_ref().unwrap()["apt"], 4096);
        assert!(seen.knows_client("192.0.2.1"));
        assert!(
            seen.knows_client("198.51.100.7"),
            "it only sent: a client too"
        );
        assert_eq!(
            seen.over_received_ceiling(port_key(true, 22), 9, 30_000 + crate::RECEIVED_MARGIN + 1),
            Some(30_000)
        );
        assert!(seen.has_program("apt") && !seen.has_program("nmap"));
        assert!(!seen.has_port(port_key(true, 53)), "UDP 53 is not TCP 53");
        // What deserialising leaves: the names without the lookup set.
        let mut loaded = Seen {
            ports: seen.ports.clone(),
            names: seen.names.clone(),
            ..Seen::default()
        };
        assert!(!loaded.has_name("example.com"));
        loaded.rebuild();
        assert!(loaded.has_name("example.com"));
    }
}
