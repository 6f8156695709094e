//! A prepared statement that SQLite reads its text parameters from in place.
//!
//! rusqlite binds every text and blob as `SQLITE_TRANSIENT`: SQLite frees the
//! parameter's previous copy, allocates a new one and copies the bytes, on every bind.
//! On the writer's hot path that was most of binding's cost, and binding was a fifth of
//! the writer's time (`perf`, BENCHMARKS.md). This statement keeps one buffer per
//! parameter and binds it `SQLITE_STATIC`: a bind copies the bytes into a buffer that
//! has long stopped growing, and SQLite keeps a pointer.
//!
//! The one invariant that makes that sound: **a parameter bound to text points into
//! its own buffer, which changes only just before it is bound again.** The buffers
//! belong to the statement and are dropped after it is finalized; a failed bind clears
//! every binding (NULL), so no parameter is left pointing at a buffer that moved.

use std::ffi::{c_char, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;

use rusqlite::{Connection, ffi};

/// A prepared statement of `'c`'s connection, stepped to completion by
/// [`RawStmt::execute`]. Used on one thread (it is neither `Send` nor `Sync`).
pub(crate) struct RawStmt<'c> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: *mut ffi::sqlite3,
    /// Parameter `i`'s text or blob is `bufs[i - 1]` (see the module's invariant).
    bufs: Vec<Vec<u8>>,
    _conn: PhantomData<&'c Connection>,
}

impl<'c> RawStmt<'c> {
    /// Prepares one statement (`SQLITE_PREPARE_PERSISTENT`: it is held for long).
    pub(crate) fn prepare(conn: &'c Connection, sql: &str) -> rusqlite::Result<RawStmt<'c>> {
        // SAFETY: the handle is used only while `conn` is borrowed (`'c`), never to
        // close it.
        let db = unsafe { conn.handle() };
        let len = c_int::try_from(sql.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, None))?;
        let mut stmt = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: `sql` is valid for `len` bytes; `stmt` receives the statement and
        // `tail` where it ended, within `sql`.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                &mut tail,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let stmt = NonNull::new(stmt)
            .ok_or_else(|| failure(ffi::SQLITE_MISUSE, Some("no statement in the SQL".into())))?;
        // One statement: what followed it would never run.
        let used = (tail as usize).saturating_sub(sql.as_ptr() as usize);
        if !sql.get(used..).unwrap_or_default().trim().is_empty() {
            // SAFETY: prepared above, finalized once.
            unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
            let msg = "more than one statement in the SQL".to_string();
            return Err(failure(ffi::SQLITE_MISUSE, Some(msg)));
        }
        // SAFETY: a prepared statement.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) };
        Ok(RawStmt {
            stmt,
            db,
            bufs: vec![Vec::new(); usize::try_from(params).unwrap_or(0)],
            _conn: PhantomData,
        })
    }

    /// Parameter `i` (1-based) as SQLite's index, if the statement has it.
    fn index(&self, i: usize) -> Option<c_int> {
        if (1..=self.bufs.len()).contains(&i) {
            c_int::try_from(i).ok()
        } else {
            None
        }
    }

    /// Binds an integer to parameter `i` (1-based).
    pub(crate) fn bind_int(&mut self, i: usize, v: i64) -> rusqlite::Result<()> {
        let Some(at) = self.index(i) else {
            return self.check(ffi::SQLITE_RANGE);
        };
        // SAFETY: a prepared statement and one of its parameters.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), at, v) };
        self.check(rc)
    }

    /// Binds NULL to parameter `i`.
    pub(crate) fn bind_null(&mut self, i: usize) -> rusqlite::Result<()> {
        let Some(at) = self.index(i) else {
            return self.check(ffi::SQLITE_RANGE);
        };
        // SAFETY: as for `bind_int`.
        let rc = unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), at) };
        self.check(rc)
    }

    /// Binds text to parameter `i`, read in place from the parameter's buffer.
    pub(crate) fn bind_text(&mut self, i: usize, v: &str) -> rusqlite::Result<()> {
        let Some(at) = self.fill(i, v.as_bytes()) else {
            return self.check(ffi::SQLITE_RANGE);
        };
        // SAFETY: `at` is the parameter's buffer, which holds `v` (valid UTF-8) and
        // stays where it is until this parameter is bound again or the statement is
        // finalized (the module's invariant).
        let rc = unsafe {
            ffi::sqlite3_bind_text64(
                self.stmt.as_ptr(),
                at.0,
                at.1,
                at.2,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as u8,
            )
        };
        self.check(rc)
    }

    /// Binds a blob to parameter `i`, read in place as [`RawStmt::bind_text`]'s text.
    pub(crate) fn bind_blob(&mut self, i: usize, v: &[u8]) -> rusqlite::Result<()> {
        let Some(at) = self.fill(i, v) else {
            return self.check(ffi::SQLITE_RANGE);
        };
        // SAFETY: as for `bind_text`.
        let rc = unsafe {
            ffi::sqlite3_bind_blob64(
                self.stmt.as_ptr(),
                at.0,
                at.1.cast(),
                at.2,
                ffi::SQLITE_STATIC(),
            )
        };
        self.check(rc)
    }

    /// Copies `v` into parameter `i`'s buffer; returns the parameter's index, where the
    /// copy is and its length, or `None` for no such parameter. An empty value points
    /// at a static empty string (an empty `Vec`'s pointer is dangling).
    fn fill(&mut self, i: usize, v: &[u8]) -> Option<(c_int, *const c_char, u64)> {
        let at = self.index(i)?;
        if v.is_empty() {
            return Some((at, c"".as_ptr(), 0));
        }
        let buf = &mut self.bufs[i - 1];
        buf.clear();
        buf.extend_from_slice(v);
        Some((at, buf.as_ptr().cast(), buf.len() as u64))
    }

    /// Runs the statement to completion and resets it; the bindings stay. A statement
    /// that returns rows is an error.
    pub(crate) fn execute(&mut self) -> rusqlite::Result<()> {
        let p = self.stmt.as_ptr();
        // SAFETY: a prepared statement, reset after every step.
        let rc = unsafe { ffi::sqlite3_step(p) };
        let result = match rc {
            ffi::SQLITE_DONE => Ok(()),
            ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
            _ => Err(error(self.db, rc)),
        };
        // SAFETY: as above. After a failed step it returns the same error, already
        // taken.
        unsafe { ffi::sqlite3_reset(p) };
        result
    }

    /// After a failed bind, clears every binding: the failed one may have been left
    /// pointing at its buffer's old place.
    fn check(&mut self, rc: c_int) -> rusqlite::Result<()> {
        if rc == ffi::SQLITE_OK {
            return Ok(());
        }
        let e = error(self.db, rc);
        // SAFETY: a prepared statement.
        unsafe { ffi::sqlite3_clear_bindings(self.stmt.as_ptr()) };
        Err(e)
    }
}

impl Drop for RawStmt<'_> {
    fn drop(&mut self) {
        // SAFETY: finalized once, before `bufs` is dropped (fields drop after `drop`).
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

fn failure(code: c_int, msg: Option<String>) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), msg)
}

/// The connection's error for `code`, with its message.
#[cold]
fn error(db: *mut ffi::sqlite3, code: c_int) -> rusqlite::Error {
    // SAFETY: `db` is an open connection; the message is copied at once.
    let msg = unsafe {
        if ffi::sqlite3_errcode(db) == code {
            let m = ffi::sqlite3_errmsg(db);
            (!m.is_null()).then(|| std::ffi::CStr::from_ptr(m).to_string_lossy().into_owned())
        } else {
            None
        }
    };
    failure(code, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::Value;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT, b BLOB, c INTEGER NOT NULL DEFAULT 0)")
            .unwrap();
        conn
    }

    fn rows(conn: &Connection) -> Vec<(Value, Value, i64)> {
        let mut stmt = conn
            .prepare("SELECT a, b, c FROM t ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    /// What is bound stays bound from one execution to the next, and a parameter bound
    /// again with longer text (its buffer moves) stores the new text.
    #[test]
    fn bindings_are_read_in_place_and_survive_executions() {
        let conn = db();
        let mut s = RawStmt::prepare(&conn, "INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)").unwrap();
        s.bind_text(1, "short").unwrap();
        s.bind_blob(2, &[1, 2, 3]).unwrap();
        s.bind_int(3, 7).unwrap();
        s.execute().unwrap();
        s.execute().unwrap();
        let long = "x".repeat(100_000);
        s.bind_text(1, &long).unwrap();
        s.execute().unwrap();
        s.bind_text(1, "").unwrap();
        s.bind_blob(2, &[]).unwrap();
        s.execute().unwrap();
        s.bind_null(1).unwrap();
        s.bind_int(3, i64::MIN).unwrap();
        s.execute().unwrap();
        drop(s);
        let b = Value::Blob(vec![1, 2, 3]);
        assert_eq!(
            rows(&conn),
            vec![
                (text("short"), b.clone(), 7),
                (text("short"), b.clone(), 7),
                (text(&long), b, 7),
                (text(""), Value::Blob(Vec::new()), 7),
                (Value::Null, Value::Blob(Vec::new()), i64::MIN),
            ]
        );
    }

    /// A failed bind leaves no parameter pointing anywhere: every binding is cleared.
    #[test]
    fn a_failed_bind_clears_every_binding() {
        let conn = db();
        let mut s = RawStmt::prepare(&conn, "INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)").unwrap();
        let range = |e: rusqlite::Error| matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == ffi::SQLITE_RANGE);
        type Bind = dyn Fn(&mut RawStmt<'_>) -> rusqlite::Result<()>;
        let failed_binds: [&Bind; 4] = [
            &|s| s.bind_text(0, "no parameter 0"),
            &|s| s.bind_blob(4, b"nor 4"),
            &|s| s.bind_int(9, 1),
            &|s| s.bind_null(4),
        ];
        for (n, fail) in (1..).zip(failed_binds) {
            s.bind_text(1, "cleared").unwrap();
            s.bind_int(3, n).unwrap();
            assert!(range(fail(&mut s).unwrap_err()), "bind {n}");
            // `c` is NOT NULL: cleared, the insert fails, with SQLite's message.
            let e = s.execute().unwrap_err();
            assert!(
                e.to_string().contains("NOT NULL constraint failed: t.c"),
                "{e}"
            );
            // Usable again after: `a` was cleared too.
            s.bind_int(3, n).unwrap();
            s.execute().unwrap();
        }
        drop(s);
        let nulls = |n| (Value::Null, Value::Null, n);
        assert_eq!(rows(&conn), vec![nulls(1), nulls(2), nulls(3), nulls(4)]);
    }

    /// A bind SQLite refuses after the buffer has moved (longer text than it held)
    /// leaves no binding at its old place; shorter text after longer is written over it;
    /// a statement SQLite prepares again after a schema change keeps its bindings.
    #[test]
    fn bindings_survive_refusals_shorter_text_and_schema_changes() {
        let conn = db();
        let mut s = RawStmt::prepare(&conn, "INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)").unwrap();
        s.bind_text(1, "a longer text first").unwrap();
        s.bind_text(1, "short").unwrap();
        s.bind_int(3, 1).unwrap();
        s.execute().unwrap();
        // SAFETY: the test's own connection; a limit, not its state.
        unsafe { ffi::sqlite3_limit(conn.handle(), ffi::SQLITE_LIMIT_LENGTH, 64) };
        let e = s.bind_text(1, &"x".repeat(1_000)).unwrap_err();
        assert!(
            matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::TooBig),
            "{e}"
        );
        // SAFETY: as above.
        unsafe { ffi::sqlite3_limit(conn.handle(), ffi::SQLITE_LIMIT_LENGTH, 1_000_000_000) };
        s.bind_int(3, 2).unwrap();
        s.execute().unwrap();
        s.bind_text(2, "kept across the change").unwrap();
        conn.execute_batch("CREATE TABLE z (x)").unwrap();
        s.execute().unwrap();
        drop(s);
        let kept = Value::Text("kept across the change".into());
        assert_eq!(
            rows(&conn),
            vec![
                (text("short"), Value::Null, 1),
                (Value::Null, Value::Null, 2),
                (Value::Null, kept, 2)
            ]
        );
    }

    #[test]
    fn statements_that_return_rows_or_do_not_parse_are_errors() {
        let conn = db();
        let mut s = RawStmt::prepare(&conn, "SELECT 1").unwrap();
        assert!(matches!(
            s.execute(),
            Err(rusqlite::Error::ExecuteReturnedResults)
        ));
        let e = RawStmt::prepare(&conn, "INSERT INTO nowhere VALUES (1)")
            .err()
            .unwrap();
        assert!(e.to_string().contains("no such table: nowhere"), "{e}");
        assert!(RawStmt::prepare(&conn, "  ").is_err());
        let e = RawStmt::prepare(&conn, "DELETE FROM t; DROP TABLE t")
            .err()
            .unwrap();
        assert!(e.to_string().contains("more than one statement"), "{e}");
        RawStmt::prepare(&conn, "DELETE FROM t; \n ").unwrap();
    }
}
