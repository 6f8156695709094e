//! Probes of closed ports per remote address, kept across rounds: a scan slow enough to
//! touch one port per step only shows as breadth over minutes, longer than a round.

use std::collections::HashMap;

/// How far back a remote address's probes of closed ports are remembered for
/// `scan_breadth` (µs): ten minutes, so a scan of one port every 10 s reaches 60.
pub const SCAN_HORIZON: i64 = 600 * crate::calendar::SECOND;

/// Most remote addresses [`ScanTracker`] follows. A flood of SYNs from spoofed
/// addresses would otherwise grow it without bound; each of those probes once, so they
/// are the ones let go.
pub const MAX_TRACKED_REMOTES: usize = 50_000;

/// Closed ports each remote address probed (bare SYN to a port nothing listens on)
/// within the last [`SCAN_HORIZON`], carried from round to round: a scan slow enough to
/// touch one port per step is only visible over minutes.
#[derive(Clone, Debug, Default)]
pub struct ScanTracker {
    /// Remote address hash → closed port → time of the latest probe.
    by_remote: HashMap<u64, HashMap<u16, i64>>,
}

impl ScanTracker {
    /// Notes a probe of closed `port` by `remote` at `ts`. When [`MAX_TRACKED_REMOTES`]
    /// are followed, a new remote first makes room by dropping those that probed only
    /// one port, and is itself ignored if that frees nothing.
    pub(crate) fn record(&mut self, remote: u64, port: u16, ts: i64) {
        if self.by_remote.len() >= MAX_TRACKED_REMOTES && !self.by_remote.contains_key(&remote) {
            self.by_remote.retain(|_, ports| ports.len() > 1);
            if self.by_remote.len() >= MAX_TRACKED_REMOTES {
                return;
            }
        }
        let last = self
            .by_remote
            .entry(remote)
            .or_default()
            .entry(port)
            .or_insert(ts);
        *last = (*last).max(ts);
    }

    /// Forgets probes older than the horizon before `now`; returns the most closed
    /// ports any one remote probed within it.
    pub(crate) fn breadth_at(&mut self, now: i64) -> usize {
        let cutoff = now - SCAN_HORIZON;
        self.by_remote.retain(|_, ports| {
            ports.retain(|_, ts| *ts > cutoff);
            !ports.is_empty()
        });
        self.by_remote.values().map(HashMap::len).max().unwrap_or(0)
    }

    /// Whether a remote with the widest breadth (as [`ScanTracker::breadth_at`] last
    /// left it) probed at or after `since`: the scan goes on, rather than the breadth
    /// only remembering it.
    pub(crate) fn widest_probed_since(&self, since: i64) -> bool {
        let widest = self.by_remote.values().map(HashMap::len).max().unwrap_or(0);
        widest > 0
            && self
                .by_remote
                .values()
                .filter(|ports| ports.len() == widest)
                .any(|ports| ports.values().any(|&ts| ts >= since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_tracker_is_bounded_under_a_spoofed_flood() {
        let mut t = ScanTracker::default();
        for p in 0..30u16 {
            t.record(7, 1000 + p, 1);
        }
        for remote in 0..(MAX_TRACKED_REMOTES as u64 + 10_000) {
            t.record(100 + remote, 80, 2);
        }
        assert!(t.by_remote.len() <= MAX_TRACKED_REMOTES);
        assert_eq!(t.breadth_at(3), 30, "the real scanner is still followed");
        assert!(t.widest_probed_since(1) && !t.widest_probed_since(2));
    }
}
