//! The store's error type: callers branch on a locked or read-only database and on a
//! schema newer than this build.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    // SQLite's messages already say everything, and rusqlite's error chain repeats them
    // ("Error code 13: …"); showing the message once, without a source, keeps `{err:#}`
    // to one readable line.
    #[error("database {}: {source}", path.display())]
    Sqlite { path: PathBuf, source: Sqlite },
    #[error("{0}")]
    Sql(rusqlite::Error),
    #[error(
        "database {path} has schema version {found}, newer than this build knows ({known}); upgrade portwatch"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "no default database location: neither HOME nor XDG_STATE_HOME is set; pass --db or set PORTWATCH_DB"
    )]
    NoHome,
    #[error("bad timestamp {0:?}: expected YYYY-MM-DDTHH:MM:SS[.ffffff]Z")]
    Timestamp(String),
    #[error(
        "database {path}: cannot use WAL (journal_mode stays {mode}); is it on a network file system?"
    )]
    NoWal { path: PathBuf, mode: String },
    #[error("writer thread stopped unexpectedly")]
    WriterGone,
    #[error("{}: {why}; refusing to open it", path.display())]
    Refused { path: PathBuf, why: String },
    #[error(
        "{}: has tables but no portwatch schema (user_version 0): another application's database? refusing to add portwatch's tables to it",
        path.display()
    )]
    NotPortwatch { path: PathBuf },
}

/// A rusqlite error shown by its message only (see [`Error::Sqlite`]).
#[derive(Debug)]
pub struct Sqlite(pub rusqlite::Error);

impl std::fmt::Display for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Sqlite {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sql(e)
    }
}

impl Error {
    /// True when SQLite reported the database busy or locked (another writer held it
    /// longer than the busy timeout) — worth retrying on the next run, not a corruption.
    pub fn is_busy(&self) -> bool {
        let e = match self {
            Error::Sqlite {
                source: Sqlite(source),
                ..
            }
            | Error::Sql(source) => source,
            _ => return false,
        };
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    /// True when the database (or its directory) cannot be written.
    pub fn is_read_only(&self) -> bool {
        match self {
            Error::Sqlite {
                source: Sqlite(source),
                ..
            }
            | Error::Sql(source) => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
            ),
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::PermissionDenied,
            _ => false,
        }
    }
}
