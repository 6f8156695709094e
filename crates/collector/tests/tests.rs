//! End-to-end tests of both binaries, run as a user runs them: real SQLite files,
//! real capture files, live capture on loopback, real signals.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

// Shared helpers: running the binaries, temporary databases, queries.
mod util;

// `collector --read` of every shared capture, checked against tshark's counts.
mod ingest;
// A live round on `lo` with traffic the test generates: exact per-flow counts, names,
// owning process, and the test's listener in `rounds_ports`.
mod live;
// One collector per database, SIGTERM, missing capture permission, prune.
mod rounds;
// The detector on simulated history: the binaries end to end, a corrupt model, and a
// cron-like day with every kind of event.
mod detector;
