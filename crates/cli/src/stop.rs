//! SIGINT and SIGTERM as a flag: a collector's round ends early and is closed as
//! `partial` with everything read kept; a long-running detector finishes its step and
//! exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Error;

/// How often [`Stop::sleep`] looks at the flag.
const POLL: Duration = Duration::from_millis(50);

/// A stop flag; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A stop flag set by SIGINT and SIGTERM.
    pub fn on_signals() -> Result<Stop, Error> {
        let s = Stop::default();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&s.0)).map_err(Error::Signals)?;
        }
        Ok(s)
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Asks for a stop (as a signal would).
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Sleeps until `deadline` or until a stop is asked for, whichever comes first;
    /// true when woken by a stop.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.requested() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep((deadline - now).min(POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_cuts_a_sleep_short() {
        let stop = Stop::default();
        let t = Instant::now();
        assert!(!stop.sleep_until(t + Duration::from_millis(60)));
        let other = stop.clone();
        let t = Instant::now();
        let h = std::thread::spawn(move || other.sleep_until(t + Duration::from_secs(600)));
        stop.request();
        assert!(h.join().unwrap());
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "woken by the stop, not the deadline"
        );
        assert!(stop.requested());
    }
}
