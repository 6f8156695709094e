//! The crate's one error type: the detector branches on it (a corrupt or mismatched
//! model is refused and left untouched).

use std::path::PathBuf;

/// Everything that can go wrong while training, scoring or persisting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file in the model directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
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
