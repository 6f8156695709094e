//! Replays the fuzz targets' committed corpus (`fuzz/corpus/TARGET/*`, minimised from
//! runs of 10 million executions or more, with every input that ever crashed a target)
//! through the same entry points the targets call, so CI checks in seconds that none of
//! them panics or breaks an invariant again.

#![cfg(feature = "pcap")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use portwatch_capture::fuzz;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{name} fails again");
        }
        n += 1;
    }
    assert!(n >= 10, "{target}: only {n} inputs in {}", dir.display());
}

#[test]
fn frames() {
    replay("frame", fuzz::frame);
}

#[test]
fn dns_messages() {
    replay("dns", fuzz::dns);
}

#[test]
fn tls_client_hellos() {
    replay("tls", fuzz::tls);
}

#[test]
fn quic_initials() {
    replay("quic", fuzz::quic);
}

#[test]
fn capture_files() {
    replay("file", fuzz::file);
}
