//! Helpers the binaries' end-to-end tests share: the shared captures, running a binary
//! on a database, queries on a database file, a tmpfs that fills up on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The reference captures with tshark's counts: `$PORTWATCH_PCAPS`, else the
/// captures' directory beside the checkout. Missing is a failure: CI has them.
pub fn pcaps_dir() -> PathBuf {
    let dir = match std::env::var_os("PORTWATCH_PCAPS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcaps"),
    };
    assert!(
        dir.join("EXPECTED.tsv").is_file(),
        "shared captures not found at {} (set PORTWATCH_PCAPS)",
        dir.display()
    );
    dir
}

/// `bin --db DB`, with the environment variables that would choose other files
/// removed.
pub fn command(bin: &str, db: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--db").arg(db);
    c.env_remove("PORTWATCH_DB")
        .env_remove("PORTWATCH_MODEL_DIR");
    c
}

pub fn run(mut c: Command) -> Output {
    c.output().expect("binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn query_i64(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Waits (up to 20 s) until `sql` counts at least one row in `db`: how a test knows a
/// collector has opened its round and committed a first sample.
pub fn wait_for(db: &Path, sql: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let n = rusqlite::Connection::open(db)
            .and_then(|conn| conn.query_row(sql, [], |r| r.get::<_, i64>(0)));
        if matches!(n, Ok(n) if n > 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {sql}");
}

/// A small tmpfs mounted for one test (a full disk on demand), unmounted when dropped.
/// Mounting needs root, which CI has.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Tmpfs(dir.to_path_buf())
    }

    /// Grows or shrinks it (never below what it holds).
    pub fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "remount {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
