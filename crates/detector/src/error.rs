//! The crate's one error type: the binary branches on it for the exit code (another
//! detector holding the model directory → 75, everything else → 3).

/// What can stop a detector run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database: opening, a query, a constraint, a disk full.
    #[error(transparent)]
    Store(#[from] portwatch_store::Error),
    /// The model: corrupt or mismatched files, training, saving.
    #[error(transparent)]
    Model(#[from] portwatch_model::Error),
    /// The model directory's lock or the directory itself.
    #[error(transparent)]
    Cli(#[from] portwatch_cli::Error),
    /// The run needs a model but none exists (`--no-train` on a cold start).
    #[error("{0}")]
    NoModel(String),
    /// History or input that cannot be used as it is.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// True when another detector holds the model directory's lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Cli(portwatch_cli::Error::Held { .. }))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
