//! Connection setup: one place decides the pragmas every connection runs with.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{Error, migrate, paths};

/// How long a connection waits for another writer before reporting "database is
/// locked". The collector commits at least every second and the detector keeps its
/// write transactions short, so this only runs out when something is really stuck.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
///
/// A new file gets 64 KiB pages and incremental auto-vacuum (both only settable before
/// the first table; INGEST_NOTES measured +10–15 % ingest with 64 KiB pages) and WAL, so
/// the detector reads while the collector writes.
pub fn open(path: &Path) -> Result<Connection, Error> {
    paths::prepare_db_file(path)?;
    let mut conn = Connection::open(path).map_err(|source| sqlite(path, source))?;
    configure(&mut conn, path)?;
    Ok(conn)
}

/// Opens an existing database without creating it (for reports): a missing file is an
/// error rather than a new empty database in the wrong place.
pub fn open_existing(path: &Path) -> Result<Connection, Error> {
    if !path.exists() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such database"),
        });
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| sqlite(path, source))?;
    configure(&mut conn, path)?;
    Ok(conn)
}

fn configure(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    let wrap = |source| sqlite(path, source);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(wrap)?;
    if migrate::is_empty(conn).map_err(wrap)? {
        conn.pragma_update(None, "page_size", 65536).map_err(wrap)?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(wrap)?;
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(wrap)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NoWal {
            path: path.to_path_buf(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(wrap)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(wrap)?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate::migrate(conn, path)?;
    Ok(())
}

fn sqlite(path: &Path, source: rusqlite::Error) -> Error {
    Error::Sqlite {
        path: path.to_path_buf(),
        source: crate::error::Sqlite(source),
    }
}
