//! The collector's exit codes, in one place (as fd does), so `--help`, the README and
//! the code cannot disagree; the codes both binaries share (2, 75) come from
//! `portwatch-cli`.

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
Examples:
  collector -v                                  one round (55 s) on the default interface
  collector -i any --duration 25 -f 'not port 22'
  collector --read trace.pcap --read more.pcapng
  collector --user nobody                       drop root once capture and database are open
  collector --forever                           rounds back to back, on the minute, until SIGTERM
  collector --rounds 10 -v                      ten rounds back to back, then exit
  collector simulate --hours 24 --inject portscan@5

Exit codes:
  0   round complete (--rounds/--forever: every round, a stop by signal included)
  1   runtime error
  2   usage error
  3   round partial (capture failed or was interrupted; scanner data kept); with
      --rounds/--forever, any round partial for another reason than the stop
  75  another collector holds the lock on this database (EX_TEMPFAIL)";

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

    #[test]
    fn the_worst_outcome_of_several_files_wins() {
        use ExitCode::*;
        assert_eq!(Complete.worst(Partial), Partial);
        assert_eq!(Error.worst(Partial), Error);
        assert_eq!(Complete.worst(Complete), Complete);
    }
}
