//! The detector's exit codes, in one place (DESIGN.md, "Exit codes").

/// What the process returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// No anomaly (or warming up, or nothing to do).
    Ok = 0,
    /// Anomalies found.
    Anomalies = 1,
    /// Usage error: an unusable `--config` (clap exits with 2 itself for bad flags).
    Usage = 2,
    /// Runtime error: corrupt or mismatched model, database error.
    Error = 3,
    /// Another detector holds the model directory's lock (EX_TEMPFAIL).
    Locked = 75,
}
