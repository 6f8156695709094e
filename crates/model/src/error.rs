//! The crate's one error type: callers (the `detector` binary) branch on it to choose an
//! exit code (`Locked` → 75, everything else → 3).

use std::path::PathBuf;

/// Everything that can go wrong while loading data, training, scoring or persisting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed (locked beyond the busy timeout, schema missing, constraint, disk
    /// full). Shown by its message, not as a source: rusqlite's chain repeats it.
    #[error("database: {0}")]
    Db(rusqlite::Error),
    /// The store crate failed to open or migrate the database.
    #[error("store: {0}")]
    Store(String),
    /// Reading or writing a file in the model directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another detector holds the lock file in the model directory.
    #[error("another detector holds the lock {0} (exit 75: try again later)")]
    Locked(PathBuf),
    /// The model files are unreadable, truncated, corrupt or fail their checksum.
    #[error(
        "corrupt model in {path}: {reason} (restore model.prev.json or remove the directory to retrain)"
    )]
    CorruptModel {
        /// The file at fault.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The model was made by an incompatible version (format or feature spec).
    #[error(
        "model in {path} does not match this detector: {reason} (remove the model directory to retrain)"
    )]
    ModelMismatch {
        /// The sidecar.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A timestamp in the database is not `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`.
    #[error("bad timestamp {0:?} in the database")]
    Timestamp(String),
    /// The operation needs a model but none exists (e.g. `--no-train` on a cold start).
    #[error("{0}")]
    NoModel(String),
    /// Burn failed to encode or decode weights.
    #[error("weights: {0}")]
    Weights(String),
    /// Invalid input to a library function (bad config, empty data).
    #[error("{0}")]
    Invalid(String),
    /// JSON (de)serialisation failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(e)
    }
}
