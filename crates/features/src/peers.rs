//! The remote networks each local program reaches as a client, and which of them a
//! program reached in learnt rounds. A command channel through a program the host
//! runs anyway (the web application's worker, the browser) is one long connection to
//! port 443 of an address that program never talked to: no program, port, name or
//! volume is new, only the peer. Known pairs are kept as [`crate::Seen`] keeps client
//! networks, the longest gone forgotten first past [`MAX_KNOWN_PEERS`].

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::hash::fnv1a;
use crate::seen::forget_oldest;

/// Distinct (program, network) pairs remembered per round; past this (a sweep, which
/// other rules name) new pairs are not counted.
const MAX_TRACKED: usize = 1 << 14;

/// Most (program, network) pairs remembered: a browser reaches a few thousand
/// networks in a week.
pub const MAX_KNOWN_PEERS: usize = 65_536;

/// The (program, remote network) pairs of a round's client traffic. Looked up by the
/// program's name as given, so a packet of a pair already counted allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct PeerCounter {
    per: HashMap<String, HashSet<u32>>,
    pairs: usize,
}

impl PeerCounter {
    /// `program` sent to a remote address of network `net` ([`crate::client_key`]).
    pub(crate) fn sent(&mut self, program: &str, net: u32) {
        let nets = match self.per.get_mut(program) {
            Some(nets) => nets,
            None if self.pairs < MAX_TRACKED => self.per.entry(program.to_string()).or_default(),
            None => return,
        };
        if self.pairs < MAX_TRACKED && nets.insert(net) {
            self.pairs += 1;
        }
    }

    /// The round's pairs, sorted.
    pub(crate) fn pairs(self) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = self
            .per
            .into_iter()
            .flat_map(|(p, nets)| nets.into_iter().map(move |n| (p.clone(), n)))
            .collect();
        out.sort_unstable();
        out
    }
}

/// (program, network) pairs of learnt rounds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Peers {
    /// Per pair ([`pair_key`]), the learnt round it last occurred in (a count of learnt
    /// rounds).
    known: HashMap<u64, u64>,
    rounds: u64,
    /// Per pair, the start (µs) of the first learnt round it occurred in: a channel's
    /// first rounds look like any others and may be learnt before the channel has
    /// lasted long enough to be named, so "new" is judged as of a time.
    #[serde(default)]
    first: HashMap<u64, i64>,
}

impl Peers {
    /// Whether the pair occurred in a learnt round that started before `since`.
    pub(crate) fn knew_before(&self, program: &str, net: u32, since: i64) -> bool {
        let key = pair_key(program, net);
        self.known.contains_key(&key) && self.first.get(&key).is_none_or(|&at| at < since)
    }

    /// Learns the pairs of a round that started at `start` (µs).
    pub(crate) fn learn(&mut self, pairs: &[(String, u32)], start: i64) {
        self.rounds += 1;
        for (program, net) in pairs {
            let key = pair_key(program, *net);
            self.known.insert(key, self.rounds);
            self.first.entry(key).or_insert(start);
        }
        forget_oldest(&mut self.known, MAX_KNOWN_PEERS);
        if self.first.len() > self.known.len() {
            self.first.retain(|k, _| self.known.contains_key(k));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.known.len()
    }
}

fn pair_key(program: &str, net: u32) -> u64 {
    fnv1a(program.as_bytes()) ^ u64::from(net).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_counts_each_pair_once_up_to_the_cap() {
        let mut c = PeerCounter::default();
        c.sent("gunicorn", 7);
        c.sent("gunicorn", 7);
        c.sent("firefox", 7);
        c.sent("gunicorn", 9);
        assert_eq!(
            c.pairs(),
            vec![
                ("firefox".to_string(), 7),
                ("gunicorn".to_string(), 7),
                ("gunicorn".to_string(), 9)
            ]
        );
        let mut c = PeerCounter::default();
        for net in 0..(MAX_TRACKED as u32 + 10) {
            c.sent("nmap", net);
        }
        assert_eq!(c.pairs().len(), MAX_TRACKED);
    }

    #[test]
    fn pairs_are_known_per_program_and_the_longest_gone_are_forgotten() {
        let mut p = Peers::default();
        p.learn(&[("gunicorn".into(), 1), ("firefox".into(), 2)], 100);
        let knows = |p: &Peers, program: &str, net: u32| p.knew_before(program, net, i64::MAX);
        assert!(knows(&p, "gunicorn", 1) && knows(&p, "firefox", 2));
        assert!(!knows(&p, "gunicorn", 2), "another program's network");
        assert!(!knows(&p, "firefox", 1));
        // Known as of its first learnt round, not before it.
        assert!(p.knew_before("gunicorn", 1, 101) && !p.knew_before("gunicorn", 1, 100));
        // Fill past the cap with later rounds: the first round's pairs go, the pair
        // met again stays.
        for r in 0..(MAX_KNOWN_PEERS as u32 / 1000 + 1) {
            let mut pairs: Vec<(String, u32)> = (0..1000)
                .map(|k| ("apt".to_string(), 10 + r * 1000 + k))
                .collect();
            pairs.push(("gunicorn".into(), 1));
            p.learn(&pairs, 200 + i64::from(r));
        }
        assert!(p.len() <= MAX_KNOWN_PEERS);
        assert!(knows(&p, "gunicorn", 1), "met in every round");
        assert!(
            p.knew_before("gunicorn", 1, 101),
            "first learnt at 100 still"
        );
        assert!(!knows(&p, "firefox", 2), "gone longest");
        assert_eq!(p.first.len(), p.known.len());
    }
}
