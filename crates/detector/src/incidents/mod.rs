//! Incidents: anomalous rounds grouped by cause into what an operator reads once,
//! understands, and acknowledges or accepts.
//!
//! - [`cause`]: the causes of an anomalous round — the actor behind it;
//! - [`tracker`]: the incidents' life, round by round (pure);
//! - [`rules`]: allow rules (port, process, DNS suffix, network);
//! - [`summary`]: one line per incident.

pub mod cause;
pub mod rules;
pub mod summary;
pub mod tracker;
