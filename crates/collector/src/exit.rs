//! The collector's exit codes, in one place (as fd does), so `--help`, the README and
//! the code cannot disagree.

/// How a collector run ended, as cron and scripts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    /// The round is complete.
    Complete = 0,
    /// A runtime error (database, file system, scanner).
    Error = 1,
    /// Bad arguments (clap exits with 2 itself).
    Usage = 2,
    /// The round is partial: capture failed or was interrupted; scanner data kept.
    Partial = 3,
    /// Another collector holds the database's lock (EX_TEMPFAIL).
    Locked = 75,
}

impl ExitCode {
    /// The worse of two outcomes, for runs of several rounds (`--read A B`).
    pub fn worst(self, other: ExitCode) -> ExitCode {
        fn rank(c: ExitCode) -> u8 {
            match c {
                ExitCode::Complete => 0,
                ExitCode::Partial => 1,
                ExitCode::Error => 2,
                ExitCode::Usage => 3,
                ExitCode::Locked => 4,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// The table printed under `--help`.
pub const HELP: &str = "\
Exit codes:
  0   round complete
  1   runtime error
  2   usage error
  3   round partial (capture failed or was interrupted; scanner data kept)
  75  another collector holds the lock on this database (EX_TEMPFAIL)";

/// An error in what the user asked for (a bad BPF filter) that clap could not see:
/// reported like clap's own, with exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}
