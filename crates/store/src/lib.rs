//! # portwatch-store
//!
//! The SQLite store shared by `collector` and `detector`, and the only crate that
//! speaks SQL. It owns the schema (`migrate`, with the numbered steps in the crate's
//! `migrations/`), where the database lives and with which permissions ([`paths`]),
//! how a connection is set up ([`Db`]), the timestamp text format ([`time`]), and every
//! statement, as methods named after what they read or write:
//!
//! - [`insert`], [`writer`]: rounds, socket samples and packets (the collector's writer
//!   thread, and the simulator through [`Tx`]);
//! - [`rounds`]: the rounds the detector evaluates, their samples, their packets
//!   streamed by rowid range;
//! - [`traffic`]: aggregates over a round's packets, for explanations;
//! - [`verdicts`]: batches, per-round verdicts and anomalies, and the report's reads;
//! - [`incidents`]: incidents and the allow rules;
//! - [`labels`]: the simulator's ground truth;
//! - [`series`]: scores and busy ports round by round, for plots;
//! - [`prune`]: deleting old rounds;
//! - [`health`]: the figures monitoring watches.
//!
//! Other crates never see rusqlite: they get [`Db`], [`Tx`] and plain row types, and
//! one error type, [`Error`].

pub mod batches;
mod db;
pub mod error;
pub mod health;
pub mod incidents;
pub mod insert;
pub mod labels;
mod migrate;
pub mod paths;
pub mod prune;
mod raw;
pub mod rounds;
pub mod series;
pub mod time;
pub mod traffic;
pub mod verdicts;
pub mod writer;

pub use db::{BUSY_TIMEOUT, Db, Tx};
pub use error::Error;
pub use migrate::CURRENT as SCHEMA_VERSION;
