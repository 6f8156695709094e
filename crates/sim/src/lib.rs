//! Synthetic host history for portwatch, written into the real schema, with labelled
//! injected attacks — the ground truth the detector is tuned and judged against.
//!
//! Live captures cannot say which minutes were attacks, and a detector tuned on a
//! handful of hand-made anomalies learns those anomalies. So [`simulate`] appends
//! rounds of a plausible host after the database's last round, through the store's own
//! typed inserts, and injects the events asked for ([`EventKind`]), each with one
//! `labels` row per affected round. The host is one of two [`Profile`]s, because a
//! detector tuned on one rhythm learns that rhythm: a small web server with a daily
//! rhythm, a nightly backup and the internet's background noise (`src/host.rs`), or a
//! workstation whose browser follows office hours and which sleeps most nights, leaving
//! gaps in the history (`src/desk.rs`); the crate's README describes both.
//! `detector evaluate` then scores the detector's verdicts against those labels, event
//! by event.
//!
//! Everything is a function of the seed and the database's state: the same seed on the
//! same database gives identical rows, and each minute draws from its own random
//! stream, so history grown hour by hour is as regular as history made in one call.

mod config;
mod db;
mod desk;
mod events;
mod host;
mod net;
mod rng;
mod run;

pub use config::{EventKind, Inject, Profile, SimConfig};
pub use db::DEFAULT_EPOCH_MICROS;
pub use run::{SimSummary, simulate, simulate_with_progress};

/// What can go wrong: bad parameters, or the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid --inject {0:?}: expected KIND@HOUR, e.g. portscan@5.5")]
    InvalidInject(String),
    #[error(
        "unknown event kind {0:?}: expected one of {kinds}",
        kinds = EventKind::ALL.map(EventKind::name).join(", ")
    )]
    UnknownKind(String),
    #[error("unknown profile {0:?}: expected server or workstation")]
    UnknownProfile(String),
    #[error("--inject {inject}: the hour must lie within the simulated span of {hours} h")]
    InjectOutOfSpan { inject: String, hours: f64 },
    #[error("invalid simulation parameters: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] portwatch_store::Error),
}
