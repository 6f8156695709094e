//! # portwatch-detector
//!
//! The `detector` program, as a library its binary and its tests share: the step that
//! scores new rounds, records verdicts and keeps the model learning ([`step`]), the
//! incidents that group anomalous rounds by cause and the operator's triage
//! ([`incidents`]), what a user reads back — the report ([`report`]), the plot
//! ([`plot`]) and the event-level evaluation against the simulator's labels
//! ([`evaluate`]) — and what the operator's other tools receive ([`deliver`]: an alert
//! file, a hook per incident, Prometheus metrics).
//!
//! The mechanisms live below it: `portwatch-store` holds every SQL statement,
//! `portwatch-features` turns rounds into steps, `portwatch-model` trains and scores,
//! `portwatch-cli` takes the model directory's lock. This crate owns the flow and the
//! output.

pub mod deliver;
mod error;
pub mod evaluate;
pub mod incidents;
pub mod plot;
pub mod report;
pub mod step;

pub use error::{Error, Result};
pub use step::{AnomalyReport, IncidentEvent, Options, Outcome, Status, run_once};
