//! The collector binary and the helpers every end-to-end test shares.

use std::path::Path;
use std::process::Command;

pub use portwatch_testkit::*;

pub const COLLECTOR: &str = env!("CARGO_BIN_EXE_collector");

/// `collector --db DB`.
pub fn collector(db: &Path) -> Command {
    command(COLLECTOR, db)
}
