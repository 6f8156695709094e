//! Forward-only schema migrations, embedded from the crate's `migrations/` at build time.
//!
//! `user_version` holds the number of the last step applied. Each step runs in its own
//! `BEGIN IMMEDIATE` transaction and re-reads the version inside it, so a collector and
//! a detector opening a fresh database at the same moment apply every step once.

use rusqlite::{Connection, TransactionBehavior};

use crate::Error;

/// Every migration, in order: (version it brings the schema to, SQL).
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_incidents.sql")),
    (3, include_str!("../migrations/0003_owners.sql")),
    (4, include_str!("../migrations/0004_views.sql")),
    (5, include_str!("../migrations/0005_talkers.sql")),
    (6, include_str!("../migrations/0006_listeners_index.sql")),
    (7, include_str!("../migrations/0007_tunnel_ends.sql")),
    (8, include_str!("../migrations/0008_namespaces.sql")),
    (
        9,
        include_str!("../migrations/0009_listeners_per_namespace.sql"),
    ),
];

/// The schema version this build writes.
pub const CURRENT: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub(crate) fn user_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// True for a database with no schema at all (a new or empty file).
pub(crate) fn is_empty(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    Ok(n == 0 && user_version(conn)? == 0)
}

/// True for a database with tables but no portwatch schema version: another
/// application's file, which must not get portwatch's tables added to it.
pub(crate) fn is_foreign(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    Ok(n > 0 && user_version(conn)? == 0)
}

/// Applies the missing steps. Returns how many were applied. A database newer than this
/// build is refused rather than written with an older idea of the schema.
pub(crate) fn migrate(conn: &mut Connection, path: &std::path::Path) -> Result<usize, Error> {
    let found = user_version(conn)?;
    if found > CURRENT {
        return Err(Error::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known: CURRENT,
        });
    }
    let mut applied = 0;
    for &(version, sql) in MIGRATIONS {
        // Only a database that is behind takes the write lock: opening a current one
        // (every run) must not wait behind a collector's commits or need write access.
        if found >= version {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if user_version(&tx)? >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        applied += 1;
    }
    Ok(applied)
}
