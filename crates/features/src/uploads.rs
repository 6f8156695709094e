//! Bytes a local program sends to one remote address in a round, over connections it
//! opened: exfiltration through a program the host runs anyway (a web application's
//! worker, a browser) is one more TLS connection to port 443 by a known program, so no
//! listener, program or port is new; what is unusual is how much one destination
//! receives. The most a program sent to any one address in a round is that round's
//! *peak* for the program; the highest peak met in learnt rounds is its *ceiling*,
//! kept in [`crate::Seen`], as [`crate::repeats`] keeps a port's.
//!
//! Only the client side counts: what the host sends from a port it listens on answers
//! its clients (a web server's pages), and a client downloading much is another
//! question.

use std::collections::{BTreeMap, HashMap};

/// Distinct (program, remote) pairs remembered per round; past this (a sweep, which
/// other rules name) new pairs are not counted.
const MAX_TRACKED: usize = 1 << 16;

/// Bytes sent per program and remote address hash in a round.
#[derive(Debug, Default)]
pub(crate) struct UploadCounter {
    per: HashMap<String, HashMap<u64, u64>>,
    pairs: usize,
}

impl UploadCounter {
    /// `bytes` sent by `program` to the remote address of hash `remote`.
    pub(crate) fn sent(&mut self, program: &str, remote: u64, bytes: u64) {
        let to = match self.per.get_mut(program) {
            Some(to) => to,
            None if self.pairs < MAX_TRACKED => self.per.entry(program.to_string()).or_default(),
            None => return,
        };
        match to.get_mut(&remote) {
            Some(b) => *b = b.saturating_add(bytes),
            None if self.pairs < MAX_TRACKED => {
                self.pairs += 1;
                to.insert(remote, bytes);
            }
            None => {}
        }
    }

    /// The round's peaks: per program, the most bytes it sent to one address, sorted by
    /// program.
    pub(crate) fn peaks(&self) -> Vec<(String, u64)> {
        let out: BTreeMap<&String, u64> = self
            .per
            .iter()
            .map(|(p, to)| (p, to.values().copied().max().unwrap_or(0)))
            .collect();
        out.into_iter().map(|(p, b)| (p.clone(), b)).collect()
    }
}

/// Bytes past a program's ceiling that one address may receive in a round before it
/// is named, whatever the ceiling: a program that sent little before (an API client,
/// a mail relay) may still send a large attachment now and then.
pub const UPLOAD_MARGIN: u64 = 4_000_000;

/// How many bytes to one address in a round a program with `ceiling` sends before it
/// is named: four times the ceiling, and at least [`UPLOAD_MARGIN`] more than it.
pub fn upload_limit(ceiling: u64) -> u64 {
    volume_limit(ceiling, UPLOAD_MARGIN)
}

/// Four times `ceiling`, and at least `margin` more than it: how far a volume of bytes
/// may go past the most a learnt round had (uploads, and what new clients send).
pub(crate) fn volume_limit(ceiling: u64, margin: u64) -> u64 {
    ceiling
        .saturating_mul(4)
        .max(ceiling.saturating_add(margin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_per_program_and_address() {
        let mut c = UploadCounter::default();
        c.sent("celery", 1, 700);
        c.sent("celery", 1, 800);
        c.sent("celery", 2, 1000);
        c.sent("firefox", 3, 10);
        assert_eq!(
            c.peaks(),
            vec![("celery".to_string(), 1500), ("firefox".to_string(), 10)]
        );
    }

    #[test]
    fn pairs_stop_growing_at_the_cap() {
        let mut c = UploadCounter::default();
        for remote in 0..(MAX_TRACKED as u64 + 10) {
            c.sent("nmap", remote, 60);
        }
        assert_eq!(c.pairs, MAX_TRACKED);
        // A pair already counted still adds up past the cap.
        c.sent("nmap", 0, 40);
        assert_eq!(c.peaks(), vec![("nmap".to_string(), 100)]);
    }

    #[test]
    fn limits_grow_with_the_ceiling() {
        assert_eq!(upload_limit(0), UPLOAD_MARGIN);
        assert_eq!(upload_limit(1_000_000), 5_000_000);
        assert_eq!(upload_limit(10_000_000), 40_000_000);
        assert_eq!(upload_limit(u64::MAX), u64::MAX);
    }
}
