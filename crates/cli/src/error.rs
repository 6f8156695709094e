//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong in the shared plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the lock (exit 75 in both binaries).
    #[error("another {holder}{} holds {}; try again later", pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), path.display())]
    Held {
        /// Who takes this lock: `collector`, `detector`.
        holder: &'static str,
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, when its lock file says.
        pid: Option<u32>,
    },
    /// A file or directory could not be created, opened or locked.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A directory another user could write in or owns (see [`crate::trust`]).
    #[error("{}: {why}; refusing to use it (make it yours and not writable by others, or choose another place)", path.display())]
    Untrusted {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A file where portwatch expects its own that it must not open: a symbolic link,
    /// not a regular file, or another user's.
    #[error("{}: {why}; refusing to open it", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
