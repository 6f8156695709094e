//! The SQLite store shared by `collector` and `detector`.
//!
//! It owns everything that touches the database file as a whole: where it lives and
//! with which permissions ([`paths`]), how a connection is set up and the schema brought
//! up to date ([`open`], [`migrate`]), the timestamp text format ([`time`]), the typed
//! inserts both the collector and the simulator write through ([`write`], [`writer`]),
//! and pruning ([`prune`]). Reading for the model lives with the model, which knows what
//! it needs; the schema itself is `migrations/` (and `init.sql`) at the repository top.

pub mod error;
pub mod migrate;
pub mod paths;
pub mod prune;
pub mod time;
pub mod write;
pub mod writer;

mod conn;

pub use conn::{open, open_existing};
pub use error::Error;
