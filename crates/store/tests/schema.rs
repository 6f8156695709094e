//! The two ways to create a database — `sqlite3 -init init.sql` (the console path) and
//! the binaries' migrations — must give the same schema.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Everything about a schema that a user or the code can observe.
fn describe(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for p in ["user_version", "page_size", "auto_vacuum", "journal_mode"] {
        let v: rusqlite::types::Value = conn
            .query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .unwrap();
        let v = match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t.to_lowercase(),
            other => format!("{other:?}"),
        };
        out.push(format!("pragma {p} = {v}"));
    }
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    let objects: Vec<(String, String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (ty, name, tbl, sql) in objects {
        let sql = sql.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
        out.push(format!("{ty} {name} on {tbl}: {sql:?}"));
        if ty == "table" {
            for q in [
                format!(
                    "SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{name}')"
                ),
                format!(
                    "SELECT id, seq, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list('{name}')"
                ),
                format!(
                    "SELECT name, \"unique\", origin, partial FROM pragma_index_list('{name}') ORDER BY name"
                ),
            ] {
                let mut s = conn.prepare(&q).unwrap();
                let n = s.column_count();
                let rows: Vec<String> = s
                    .query_map([], |r| {
                        (0..n)
                            .map(|i| {
                                r.get::<_, rusqlite::types::Value>(i)
                                    .map(|v| format!("{v:?}"))
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map(|v| v.join("|"))
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                for row in rows {
                    out.push(format!("  {name}: {row}"));
                }
            }
        }
    }
    out
}

#[test]
fn init_sql_and_migrations_give_the_same_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let by_cli = tmp.path().join("cli.db");
    let status = Command::new("sqlite3")
        .current_dir(repo())
        .arg("-init")
        .arg(repo().join("init.sql"))
        .arg(&by_cli)
        .arg("")
        .output()
        .expect("the sqlite3 console must be installed (.ci/run installs it)");
    assert!(status.status.success(), "{status:?}");

    let by_code = tmp.path().join("code.db");
    drop(portwatch_store::Db::open(&by_code).unwrap());

    let a = describe(&Connection::open(&by_cli).unwrap());
    let b = describe(&Connection::open(&by_code).unwrap());
    assert!(a.len() > 20, "schema description too small: {a:?}");
    assert_eq!(a, b);
    assert!(a.contains(&"pragma page_size = 65536".to_string()), "{a:?}");
    assert!(a.contains(&"pragma auto_vacuum = 2".to_string()), "{a:?}");
    assert!(
        a.contains(&"pragma journal_mode = wal".to_string()),
        "{a:?}"
    );
}

#[test]
fn ports_are_seeded_with_id_equal_to_value_and_packets_has_no_index() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.db");
    drop(portwatch_store::Db::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let (n, bad): (i64, i64) = conn
        .query_row("SELECT count(*), sum(id != value) FROM ports", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, bad), (65536, 0));
    let idx: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_index_list('packets')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(idx, 0, "the hot table must stay without secondary indexes");
    // The store's own connections run with foreign keys on: see `db.rs`'s unit tests;
    // the writer's rows are checked against them in `tests/write.rs`.
}

#[test]
fn reopening_applies_nothing_and_a_newer_schema_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("v.db");
    let mut db = portwatch_store::Db::open(&path).unwrap();
    assert_eq!(db.migrate().unwrap(), 0);
    assert_eq!(
        db.schema_version().unwrap(),
        portwatch_store::SCHEMA_VERSION
    );
    drop(db);
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let err = portwatch_store::Db::open(&path).err().unwrap();
    assert!(
        matches!(err, portwatch_store::Error::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
}

/// Another application's SQLite file gets no portwatch tables: one line, untouched.
#[test]
fn another_applications_database_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("app.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('mine');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    for open in [
        portwatch_store::Db::open,
        portwatch_store::Db::open_existing,
    ] {
        let err = open(&path).err().unwrap();
        let msg = err.to_string();
        assert!(
            matches!(err, portwatch_store::Error::NotPortwatch { .. }),
            "{msg}"
        );
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert!(msg.contains("no portwatch schema"), "{msg}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "not a byte changed");
}
