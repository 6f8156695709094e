//! End-to-end tests of the collector, run as a user runs it: real SQLite files, real
//! capture files, live capture on loopback, real signals.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

// The binary, and helpers shared with the detector's tests (portwatch-testkit).
mod util;

// A hostile local user: planted links, a second name for the database, a foreign file.
mod hardening;
// `collector --read` of every shared capture, checked against tshark's counts.
mod ingest;
// A live round on `lo` with traffic the test generates: exact per-flow counts, names,
// owning process, and the test's listener in `rounds_ports`.
mod live;
// One collector per database, SIGTERM, missing capture permission, prune.
mod rounds;
// `collector simulate` through the binary: its summary line and a bad --inject.
mod simulate;
