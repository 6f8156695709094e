//! Connections from one remote address to one listening TCP port in a round: SSH
//! password guessing, credential stuffing against a login page. Each attempt is one
//! more ordinary connection to a known port by a known process, so no feature of the
//! round moves much; what is unusual is how many come from one place. The most any one
//! remote made to a port in a round is that round's *peak* for the port; the highest
//! peak met in normal rounds is the port's *ceiling*, kept in [`crate::Seen`].

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::seen::port_key;

/// Distinct connections remembered per round to tell a retransmitted SYN from a new
/// connection. Past this (a flood, which other rules name) each SYN counts as one.
const MAX_TRACKED: usize = 1 << 16;

/// Counts connection attempts (distinct source ports of bare SYNs) per remote address
/// hash and listening port.
#[derive(Debug, Default)]
pub(crate) struct RepeatCounter {
    opened: HashSet<(u64, u16, u16)>,
    per: HashMap<(u64, u16), u32>,
}

impl RepeatCounter {
    /// One bare SYN from `remote` (address hash) port `sport` to listening port `port`.
    pub(crate) fn syn(&mut self, remote: u64, sport: u16, port: u16) {
        if self.opened.len() < MAX_TRACKED && !self.opened.insert((remote, sport, port)) {
            return;
        }
        *self.per.entry((remote, port)).or_default() += 1;
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
            c.syn(7, sport, 22);
            c.syn(7, sport, 22); // the retransmission after a second
        }
        c.syn(8, 50_000, 22);
        for sport in 1..=3 {
            c.syn(9, sport, 443);
        }
        assert_eq!(
            c.peaks(),
            vec![(port_key(true, 22), 12), (port_key(true, 443), 3)]
        );
    }

    #[test]
    fn limits_grow_with_the_ceiling() {
        assert_eq!(repeat_limit(0), 3);
        assert_eq!(repeat_limit(1), 4);
        assert_eq!(repeat_limit(3), 6);
        assert_eq!(repeat_limit(40), 80);
        assert_eq!(repeat_limit(u32::MAX), u32::MAX);
    }
}
