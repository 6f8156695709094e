//! A hostile local user against the collector running as root: links planted where
//! root is about to create, open or lock a file, and a second name for the database.
//! The planting runs as `nobody` (setpriv), as an attacker's would.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Defect: `ln -s /tmp/victim /tmp/ww/sim.db.lock` made root replace the victim's
/// contents with a pid, and a link at the database made root chmod the victim.
#[test]
fn links_planted_in_a_world_writable_directory_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ww = world_writable_dir(tmp.path());
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let db = ww.join("sim.db");
    for name in ["sim.db", "sim.db.lock", "sim.db-wal", "sim.db-journal"] {
        as_nobody(&[
            "ln",
            "-s",
            victim.to_str().unwrap(),
            ww.join(name).to_str().unwrap(),
        ]);
    }
    let out = run({
        let mut c = collector(&db);
        c.args(["simulate", "--hours", "0.05"]);
        c
    });
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.contains(&format!(
            "{}: writable by other users (mode 1777); refusing to use it",
            ww.display()
        )),
        "{msg}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(mode(&victim), 0o644);
    assert_eq!(
        std::fs::read_dir(&ww).unwrap().count(),
        4,
        "nothing created"
    );
}

/// In a directory only root can write, a link at the database's name (left there by
/// an admin's mistake or an old tool) is still not followed.
#[test]
fn a_symlink_at_the_database_is_refused_and_its_target_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let db = tmp.path().join("p.db");
    std::os::unix::fs::symlink(&victim, &db).unwrap();
    let out = run(read_small(&db));
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("p.db: is a symbolic link; refusing to open it"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"", "not made a database");
    assert_eq!(mode(&victim), 0o644, "not chmodded");
}

/// Defect: a hard link to the database got past the lock (named by path): two
/// collectors wrote at once and the index broke. The lock is the file's own.
#[test]
fn a_hard_link_to_the_database_is_the_same_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("p.db");
    let alias = tmp.path().join("alias.db");
    let mut first = long_live_round(&db);
    std::fs::hard_link(&db, &alias).unwrap();
    let second = run(read_small(&alias));
    let msg = stderr(&second);
    assert_eq!(second.status.code(), Some(75), "{msg}");
    assert!(
        msg.contains(&format!("another collector (pid {}) holds", first.id())),
        "{msg}"
    );
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    assert!(first.wait().unwrap().code().is_some());
    assert_eq!(query_i64(&db, "SELECT count(*) FROM rounds"), 1);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// Another application's SQLite file given as the database: refused, not a byte
/// changed (defect: portwatch's tables were added to it silently).
#[test]
fn another_applications_database_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&db).unwrap();
    let out = run(read_small(&db));
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.contains("no portwatch schema"), "{msg}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// Defect: file paths with control characters were printed raw: a file name can forge
/// a second line in cron mail or send escapes to the terminal.
#[test]
fn a_file_name_with_control_characters_is_printed_escaped_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("p.db");
    let evil = tmp.path().join("x\ncollector: all fine\x1b[2J.pcap");
    std::fs::write(&evil, b"not a capture").unwrap();
    let out = run({
        let mut c = collector(&db);
        c.arg("--read").arg(&evil);
        c
    });
    let msg = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(!msg.contains('\x1b'), "{msg:?}");
    assert!(
        msg.contains("x\\ncollector: all fine\\033[2J.pcap"),
        "{msg:?}"
    );
}
