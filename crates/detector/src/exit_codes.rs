//! The detector's exit codes, in one place (docs/DESIGN.md, "Exit codes"); the
//! codes both binaries share (2, 75) come from `portwatch-cli`.

/// What the process returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// No incident opened (or warming up, or nothing to do).
    Ok = 0,
    /// This run opened an incident.
    Incident = 1,
    /// Usage error: an unusable `--config` (clap exits with 2 itself for bad flags).
    Usage = 2,
    /// Runtime error: corrupt or mismatched model, database error.
    Error = 3,
    /// Another detector holds the model directory's lock (EX_TEMPFAIL).
    Locked = 75,
}

impl From<ExitCode> for i32 {
    fn from(c: ExitCode) -> i32 {
        c as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_codes_agree_with_portwatch_cli() {
        assert_eq!(i32::from(ExitCode::Usage), portwatch_cli::exit::USAGE);
        assert_eq!(i32::from(ExitCode::Locked), portwatch_cli::exit::LOCKED);
    }
}
