//! Incidents: anomalous rounds grouped by cause into what an operator reads once,
//! understands, and acknowledges or accepts.
//!
//! - [`cause`]: the causes of an anomalous round — the actor behind it;
//! - [`clients`]: what remote clients do at the host's services, in every round;
//! - [`programs`]: what the host's own programs do on the network, in every round;
//! - [`tracker`]: the incidents' life, round by round (pure);
//! - [`rules`]: allow rules (port, process, DNS suffix, network);
//! - [`summary`]: one line per incident.

pub mod cause;
pub mod clients;
pub mod programs;
pub mod rules;
pub mod summary;
#[cfg(test)]
mod test_rounds;
pub mod tracker;
