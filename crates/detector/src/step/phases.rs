//! Where a run's time goes: the wall time of each phase of a step, printed with `-v`
//! and in the `--json` batch line, so an operator (and BENCHMARKS.md) can tell a slow
//! database from a slow model without a profiler.

use std::time::Instant;

use serde::Serialize;

/// The phases of a step, in the order a run usually passes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading rounds (socket samples and packets) from the store and building their
    /// features. One pass: packets are streamed into the feature builder row by row, so
    /// the two are not timed apart (`benches/phases.sh` times the read alone).
    Load,
    /// Scaling the series and running the model (or the baseline) over it.
    Score,
    /// Explaining anomalous rounds and naming their causes: the incidents' queries.
    Incidents,
    /// Training or fine-tuning, with the rounds loaded for it and the threshold and
    /// residual scales computed from the trained model.
    Train,
    /// Recording the batch and saving the model.
    Save,
}

/// Seconds spent in each phase of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Phases {
    pub load: f64,
    pub score: f64,
    pub incidents: f64,
    pub train: f64,
    pub save: f64,
}

impl Phases {
    fn slot(&mut self, p: Phase) -> &mut f64 {
        match p {
            Phase::Load => &mut self.load,
            Phase::Score => &mut self.score,
            Phase::Incidents => &mut self.incidents,
            Phase::Train => &mut self.train,
            Phase::Save => &mut self.save,
        }
    }

    /// One line for `-v`: the phases that took any time, e.g.
    /// `load 3.91 s, score 0.31 s, save 0.02 s`.
    pub fn line(&self) -> String {
        [
            ("load", self.load),
            ("score", self.score),
            ("incidents", self.incidents),
            ("train", self.train),
            ("save", self.save),
        ]
        .iter()
        .filter(|(_, s)| *s >= 0.005)
        .map(|(n, s)| format!("{n} {s:.2} s"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// A stopwatch that charges the time since the last switch to the phase it was in.
#[derive(Debug)]
pub struct PhaseClock {
    current: Phase,
    since: Instant,
    spent: Phases,
}

impl PhaseClock {
    /// Starts in [`Phase::Load`]: every step begins by reading rounds.
    pub fn start() -> Self {
        PhaseClock {
            current: Phase::Load,
            since: Instant::now(),
            spent: Phases::default(),
        }
    }

    /// Charges the time since the last switch to the current phase and enters `p`.
    pub fn enter(&mut self, p: Phase) {
        let now = Instant::now();
        *self.spent.slot(self.current) += now.duration_since(self.since).as_secs_f64();
        self.current = p;
        self.since = now;
    }

    /// The totals, the current phase charged up to now.
    pub fn finish(mut self) -> Phases {
        self.enter(self.current);
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_goes_to_the_phase_it_was_spent_in() {
        let mut c = PhaseClock::start();
        std::thread::sleep(std::time::Duration::from_millis(30));
        c.enter(Phase::Score);
        c.enter(Phase::Save);
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.enter(Phase::Load);
        let p = c.finish();
        assert!(p.load >= 0.03 && p.save >= 0.02, "{p:?}");
        assert!(
            p.score < p.save && p.train == 0.0 && p.incidents == 0.0,
            "{p:?}"
        );
        let line = p.line();
        assert!(
            line.starts_with("load 0.0") && line.contains(", save 0.0"),
            "{line}"
        );
        assert!(!line.contains("train"), "{line}");
    }
}
