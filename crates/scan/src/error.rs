//! The crate's one error type.
//!
//! Every variant names what failed (file and line, or port and protocol) so the
//! collector can print one clear line. The underlying OS error is exposed as the
//! `source`, not repeated in the message, so `{err:#}` prints it exactly once.

use std::io;
use std::path::PathBuf;

/// Why a socket-table sample failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket table or the process directory could not be read (an absent IPv6
    /// table is not an error: the kernel then has IPv6 off).
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A socket-table line did not have the kernel's format. `line` counts from 1,
    /// the header being line 1.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A bind-probe attempt failed with something other than "in use" or
    /// "permission denied".
    #[error("bind probe of {protocol} port {port} over IPv{family} failed")]
    Probe {
        protocol: &'static str,
        family: u8,
        port: u16,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Whether the failure is a permission problem the user can fix (run as root,
    /// or with `CAP_SYS_PTRACE`/`CAP_DAC_READ_SEARCH` for other users' processes).
    pub fn is_permission_denied(&self) -> bool {
        match self {
            Error::Read { source, .. } | Error::Probe { source, .. } => {
                source.kind() == io::ErrorKind::PermissionDenied
            }
            Error::Parse { .. } => false,
        }
    }
}
