//! The database handle: one place decides the pragmas every connection runs with, and
//! [`Db`] and [`Tx`] are the only ways other crates reach SQLite. The collector's
//! writer thread alone changes two on its own connection (`writer.rs` says why).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::insert::PacketInsert;
use crate::{Error, migrate, paths};

/// How long a connection waits for another writer before reporting "database is
/// locked". The collector commits at least every second and the detector keeps its
/// write transactions short, so this only runs out when something is really stuck.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An open portwatch database: WAL, `synchronous=NORMAL`, foreign keys on, the busy
/// timeout, and the schema up to date. Queries are methods (in the modules named after
/// what they read or write); writes of many rows go through a [`Tx`].
pub struct Db {
    pub(crate) conn: Connection,
    path: PathBuf,
}

/// A write transaction (`BEGIN IMMEDIATE`): it takes the write lock at once, so a
/// concurrent writer makes it wait for the busy timeout instead of failing half-way.
/// Dropped without [`Tx::commit`], it rolls back.
pub struct Tx<'a> {
    /// The packet inserts, prepared at the transaction's first packet and held to its
    /// end (before `tx` in the struct: they are finalized first).
    pub(crate) packets: RefCell<Option<PacketInsert<'a>>>,
    pub(crate) tx: rusqlite::Transaction<'a>,
    /// `tx`'s connection for all of `'a` (`tx` lends it only as long as it is
    /// borrowed), which the packet inserts hold.
    pub(crate) conn: &'a Connection,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to
    /// date. The directory must exist (the binaries create it private, 0700).
    ///
    /// A new file gets 64 KiB pages and incremental auto-vacuum (both only settable
    /// before the first table; 64 KiB pages measured +10–15 % ingest) and WAL, so the
    /// detector reads while the collector writes.
    pub fn open(path: &Path) -> Result<Db, Error> {
        paths::prepare_db_file(path)?;
        // Not `Connection::open`: its URI flag would read a path starting with
        // `file:` as a URI with options; NOFOLLOW refuses a link SQLite is handed.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|source| sqlite(path, source))?;
        Db::configure(conn, path)
    }

    /// Opens an existing database without creating it (for reports): a missing file is
    /// an error rather than a new empty database in the wrong place.
    pub fn open_existing(path: &Path) -> Result<Db, Error> {
        if !path.exists() {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such database"),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|source| sqlite(path, source))?;
        Db::configure(conn, path)
    }

    fn configure(mut conn: Connection, path: &Path) -> Result<Db, Error> {
        let wrap = |source| sqlite(path, source);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(wrap)?;
        if migrate::is_foreign(&conn).map_err(wrap)? {
            return Err(Error::NotPortwatch {
                path: path.to_path_buf(),
            });
        }
        if migrate::is_empty(&conn).map_err(wrap)? {
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
        migrate::migrate(&mut conn, path)?;
        Ok(Db {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with this connection's foreign-key checks off, for a writer whose every
    /// row references a row it wrote in the same transaction or a `ports` row (all
    /// 65,536 exist from the first migration): the simulator. Each check is a lookup
    /// per row that cannot fail, and with checks on, packets go one by one (see
    /// `PacketInsert`); off, `collector simulate` took up to a fifth less time
    /// (BENCHMARKS.md).
    /// The collector's writer does the same on its own connection. When `f` returns,
    /// with a value or an error, the checks are as they were before (a panic in `f`
    /// leaves them off on this connection).
    pub fn with_parents_known<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, E>,
    ) -> Result<T, E> {
        let before = foreign_keys_on(&self.conn).map_err(Error::from)?;
        self.conn
            .pragma_update(None, "foreign_keys", false)
            .map_err(Error::from)?;
        let out = f(self);
        let restored = self.conn.pragma_update(None, "foreign_keys", before);
        let out = out?;
        restored.map_err(Error::from)?;
        Ok(out)
    }

    /// Starts a write transaction.
    pub fn transaction(&mut self) -> Result<Tx<'_>, Error> {
        // `&mut self` is what rules out a transaction already open on this connection.
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        Ok(Tx {
            packets: RefCell::new(None),
            tx,
            conn: &self.conn,
        })
    }

    /// The schema version (`user_version`): the number of the last migration applied.
    pub fn schema_version(&self) -> Result<i64, Error> {
        Ok(migrate::user_version(&self.conn)?)
    }

    /// Applies the migrations this database lacks; returns how many.
    pub fn migrate(&mut self) -> Result<usize, Error> {
        migrate::migrate(&mut self.conn, &self.path)
    }

    /// The connection, for the writer thread (which manages its own transactions).
    pub(crate) fn into_connection(self) -> (Connection, PathBuf) {
        (self.conn, self.path)
    }
}

impl Tx<'_> {
    /// Commits the transaction.
    pub fn commit(self) -> Result<(), Error> {
        let Tx { packets, tx, .. } = self;
        drop(packets);
        Ok(tx.commit()?)
    }
}

fn sqlite(path: &Path, source: rusqlite::Error) -> Error {
    Error::Sqlite {
        path: path.to_path_buf(),
        source: crate::error::Sqlite(source),
    }
}

/// Whether `conn` checks foreign keys (`PRAGMA foreign_keys`).
pub(crate) fn foreign_keys_on(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("PRAGMA foreign_keys")?
        .query_row([], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_run_with_the_pragmas_the_design_names() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("p.db")).unwrap();
        let get = |p: &str| -> String {
            db.conn
                .query_row(&format!("PRAGMA {p}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(get("foreign_keys"), "Integer(1)");
        assert_eq!(get("synchronous"), "Integer(1)", "NORMAL");
        assert_eq!(get("journal_mode"), "Text(\"wal\")");
        assert_eq!(get("busy_timeout"), "Integer(30000)");
    }

    #[test]
    fn parents_known_turns_the_checks_off_for_its_closure_only() {
        let tmp = tempfile::tempdir().unwrap();
        let mut db = Db::open(&tmp.path().join("p.db")).unwrap();
        let fk = |db: &Db| i64::from(foreign_keys_on(&db.conn).unwrap());
        // A round that does not exist: refused with checks, stored without.
        let orphan = |db: &Db| {
            db.conn.execute(
                "INSERT INTO labels (round_id, event, kind, note) VALUES (999, 1, 'x', '')",
                [],
            )
        };
        assert!(orphan(&db).is_err());
        let inside = db
            .with_parents_known(|db| -> Result<i64, Error> {
                orphan(db)?;
                Ok(fk(db))
            })
            .unwrap();
        assert_eq!((inside, fk(&db)), (0, 1));
        // And on again after the closure fails.
        let failed = db.with_parents_known(|_| -> Result<(), Error> { Err(Error::WriterGone) });
        assert!(failed.is_err());
        assert_eq!(fk(&db), 1);
        assert!(orphan(&db).is_err());
        // Nested, the inner call leaves them as the outer one set them: off.
        let nested = db
            .with_parents_known(|db| {
                db.with_parents_known(|_| Ok::<_, Error>(()))
                    .map(|()| fk(db))
            })
            .unwrap();
        assert_eq!((nested, fk(&db)), (0, 1));
    }
}
