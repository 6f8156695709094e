//! Connections from one remote address to one listening TCP port in a round: SSH
//! password guessing, credential stuffing against a login page. Each attempt is one
//! more ordinary connection to a known port by a known process, so no feature of the
//! round moves much; what is unusual is how many come from one place. The most any one
//! remote made to a port in a round is that round's *peak* for the port; the highest
//! peak met in normal rounds is the port's *ceiling*, kept in [`crate::Seen`].
//!
//! The same SYNs say which networks connected to each port ([`client_key`]): credential
//! stuffing from a botnet spreads its logins over a hundred addresses or more, none of
//! them repeating much, but nearly all of them networks the host's service never had a
//! client from. [`crate::Seen`] keeps the networks of learnt rounds and, per port, the
//! most never-seen networks one learnt round brought.
//!
//! And what each network sent to each port, SYN or not: a login with a stolen key is
//! one connection to sshd from a network it never had a client from, like any password
//! guesser's, until the intruder's tools go up through it — megabytes where a stranger
//! sends a few kilobytes. [`crate::Seen`] keeps, per port, the most bytes one network
//! never seen before sent in a learnt round.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::hash::net_of;
use crate::seen::port_key;

/// Client networks remembered per port and round; past this (a flood from spoofed
/// addresses, which other rules name) the round's count stops growing.
pub const MAX_ROUND_CLIENTS: usize = 4096;

/// The key of the client network (/24, /48) of `addr` as [`crate::Seen`] keeps it: 32
/// bits of its stable hash, so a week of a busy server's clients stays a few hundred
/// kilobytes in the model's sidecar (a collision makes one new network look known).
pub fn client_key(addr: &str) -> u32 {
    let h = net_of(addr);
    (h >> 32) as u32 ^ h as u32
}

/// Distinct connections remembered per round to tell a retransmitted SYN from a new
/// connection. Past this (a flood, which other rules name) each SYN counts as one.
const MAX_TRACKED: usize = 1 << 16;

/// Counts connection attempts (distinct source ports of bare SYNs) per remote address
/// hash and listening port.
#[derive(Debug, Default)]
pub(crate) struct RepeatCounter {
    opened: HashSet<(u64, u16, u16)>,
    per: HashMap<(u64, u16), u32>,
    /// Per listening port, the networks ([`client_key`]) that connected to it.
    clients: HashMap<u16, HashSet<u32>>,
    /// Per listening port, the bytes each network sent to it.
    received: HashMap<u16, HashMap<u32, u64>>,
}

impl RepeatCounter {
    /// One bare SYN from `remote` (address hash) of network `net` ([`client_key`]) port
    /// `sport` to listening port `port`.
    pub(crate) fn syn(&mut self, remote: u64, net: u32, sport: u16, port: u16) {
        let nets = self.clients.entry(port).or_default();
        if nets.len() < MAX_ROUND_CLIENTS {
            nets.insert(net);
        }
        if self.opened.len() < MAX_TRACKED && !self.opened.insert((remote, sport, port)) {
            return;
        }
        *self.per.entry((remote, port)).or_default() += 1;
    }

    /// `bytes` from network `net` ([`client_key`]) to listening TCP port `port`.
    pub(crate) fn received(&mut self, net: u32, port: u16, bytes: u64) {
        let nets = self.received.entry(port).or_default();
        let full = nets.len() >= MAX_ROUND_CLIENTS;
        match nets.get_mut(&net) {
            Some(b) => *b = b.saturating_add(bytes),
            None if !full => {
                nets.insert(net, bytes);
            }
            None => {}
        }
    }

    /// The round's peaks: per port key, the most connections one remote made.
    pub(crate) fn peaks(&self) -> Vec<(u32, u32)> {
        let mut out: BTreeMap<u32, u32> = BTreeMap::new();
        for (&(_, port), &n) in &self.per {
            let p = out.entry(port_key(true, port)).or_default();
            *p = (*p).max(n);
        }
        out.into_iter().collect()
    }

    /// The round's client networks per port key, both sorted.
    pub(crate) fn clients(&self) -> Vec<(u32, Vec<u32>)> {
        let mut out: Vec<(u32, Vec<u32>)> = self
            .clients
            .iter()
            .map(|(&port, nets)| {
                let mut nets: Vec<u32> = nets.iter().copied().collect();
                nets.sort_unstable();
                (port_key(true, port), nets)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The round's bytes per port key and network, both sorted.
    pub(crate) fn received_bytes(&self) -> Vec<(u32, Vec<(u32, u64)>)> {
        let mut out: Vec<(u32, Vec<(u32, u64)>)> = self
            .received
            .iter()
            .map(|(&port, nets)| {
                let mut nets: Vec<(u32, u64)> = nets.iter().map(|(&n, &b)| (n, b)).collect();
                nets.sort_unstable();
                (port_key(true, port), nets)
            })
            .collect();
        out.sort_unstable();
        out
    }
}

/// Bytes past a port's ceiling that one never-seen network may send it in a round
/// before it is named, whatever the ceiling. A stranger's login attempt, a page
/// request or a form is a few kilobytes; half a megabyte is a transfer into the host.
/// A service whose new clients do send that much (uploads to a web application) has a
/// ceiling that says so.
pub const RECEIVED_MARGIN: u64 = 512 * 1024;

/// How many bytes one never-seen network sends a port with `ceiling` in a round before
/// it is named: four times the ceiling, and at least [`RECEIVED_MARGIN`] more than it
/// (the rule of [`crate::upload_limit`], with its own margin).
pub fn received_limit(ceiling: u64) -> u64 {
    crate::uploads::volume_limit(ceiling, RECEIVED_MARGIN)
}

/// How many connections from one remote in a round a port with `ceiling` takes before
/// it is named: twice the ceiling, and at least three more than it (a port whose busiest
/// client made one connection a round is not alarmed by a second and a third).
pub fn repeat_limit(ceiling: u32) -> u32 {
    ceiling.saturating_mul(2).max(ceiling.saturating_add(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmits_are_one_connection_and_peaks_are_per_port() {
        let mut c = RepeatCounter::default();
        for sport in 40_000..40_012 {
            c.syn(7, 70, sport, 22);
            c.syn(7, 70, sport, 22); // the retransmission after a second
        }
        c.syn(8, 70, 50_000, 22);
        for sport in 1..=3 {
            c.syn(9, 90, sport, 443);
        }
        assert_eq!(
            c.peaks(),
            vec![(port_key(true, 22), 12), (port_key(true, 443), 3)]
        );
        assert_eq!(
            c.clients(),
            vec![
                (port_key(true, 22), vec![70]),
                (port_key(true, 443), vec![90])
            ]
        );
    }

    #[test]
    fn client_networks_are_counted_up_to_a_cap() {
        assert_eq!(client_key("203.0.113.7"), client_key("203.0.113.200"));
        assert_ne!(client_key("203.0.113.7"), client_key("203.0.114.7"));
        assert_eq!(client_key("2001:db8:1::1"), client_key("2001:db8:1:ff::9"));
        let mut c = RepeatCounter::default();
        for net in 0..(MAX_ROUND_CLIENTS as u32 + 500) {
            c.syn(u64::from(net), net, 40_000, 443);
        }
        assert_eq!(c.clients()[0].1.len(), MAX_ROUND_CLIENTS);
    }

    #[test]
    fn bytes_are_per_port_and_network_up_to_a_cap() {
        let mut c = RepeatCounter::default();
        c.received(70, 22, 600);
        c.received(70, 22, 1_400);
        c.received(71, 22, 100);
        c.received(70, 443, 5);
        assert_eq!(
            c.received_bytes(),
            vec![
                (port_key(true, 22), vec![(70, 2_000), (71, 100)]),
                (port_key(true, 443), vec![(70, 5)])
            ]
        );
        for net in 0..(MAX_ROUND_CLIENTS as u32 + 10) {
            c.received(1_000 + net, 80, 1);
        }
        // A network already counted still adds up past the cap.
        c.received(1_000, 80, 1);
        let port80 = c.received_bytes().remove(1).1;
        assert_eq!(port80.len(), MAX_ROUND_CLIENTS);
        assert_eq!(port80[0], (1_000, 2));
    }

    #[test]
    fn limits_grow_with_the_ceiling() {
        assert_eq!(received_limit(0), RECEIVED_MARGIN);
        assert_eq!(received_limit(1_000_000), 4_000_000);
        assert_eq!(received_limit(u64::MAX), u64::MAX);
        assert_eq!(repeat_limit(0), 3);
        assert_eq!(repeat_limit(1), 4);
        assert_eq!(repeat_limit(3), 6);
        assert_eq!(repeat_limit(40), 80);
        assert_eq!(repeat_limit(u32::MAX), u32::MAX);
    }
}
