//! SIGINT/SIGTERM end the round early: capture stops, everything read is flushed and
//! the round is closed as `partial`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A stop flag set by SIGINT and SIGTERM.
    pub fn on_signals() -> anyhow::Result<Stop> {
        let s = Stop::default();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&s.0))?;
        }
        Ok(s)
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
