//! The collector binary and the helpers every end-to-end test shares.

use std::path::Path;
use std::process::Command;

pub use portwatch_testkit::*;

pub const COLLECTOR: &str = env!("CARGO_BIN_EXE_collector");

/// `collector --db DB`.
pub fn collector(db: &Path) -> Command {
    command(COLLECTOR, db)
}

/// A live round on `lo` of 60 s that captures nothing (`port 9`), once it has stored
/// its first sample: a collector that holds the database's lock.
pub fn long_live_round(db: &Path) -> std::process::Child {
    let child = collector(db)
        .args([
            "-i",
            "lo",
            "--duration",
            "60",
            "--scan-interval",
            "1",
            "--filter",
            "port 9",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(db, "SELECT count(*) FROM rounds_ports");
    child
}

/// `collector --read` of a small shared capture (DNS over UDP).
pub fn read_small(db: &Path) -> Command {
    let mut c = collector(db);
    c.arg("--read")
        .arg(pcaps_dir().join("tcpdump__dns_udp.pcap"));
    c
}
