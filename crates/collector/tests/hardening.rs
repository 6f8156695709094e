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

/// `--user`: once capture and database are open the collector is that user — uid,
/// gid and groups — with an empty capability bounding set and `no_new_privs`, and the
/// round still completes.
#[test]
fn user_drops_ids_groups_and_every_capability() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("p.db");
    let mut child = collector(&db)
        .args([
            "-i",
            "lo",
            "--duration",
            "3",
            "--scan-interval",
            "1",
            "--filter",
            "port 9",
        ])
        .args(["--user", "nobody"])
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let field = |text: &str, name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let t0 = std::time::Instant::now();
    let mut seen = None;
    while t0.elapsed() < std::time::Duration::from_secs(3) {
        let text = std::fs::read_to_string(&status_path).unwrap_or_default();
        if field(&text, "Uid:") == "65534 65534 65534 65534" {
            seen = Some(text);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let text = seen.expect("the collector became nobody during its round");
    assert_eq!(field(&text, "Gid:"), "65534 65534 65534 65534");
    assert_eq!(field(&text, "Groups:"), "65534");
    assert_eq!(field(&text, "CapEff:"), "0000000000000000");
    assert_eq!(field(&text, "CapPrm:"), "0000000000000000");
    assert_eq!(field(&text, "CapBnd:"), "0000000000000000");
    assert_eq!(field(&text, "NoNewPrivs:"), "1");
    assert!(child.wait().unwrap().success());
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM rounds WHERE status = 'complete'"),
        1
    );
}

/// The systemd units in contrib/systemd are what `systemd-analyze verify` accepts, with
/// their commands pointed at a binary that exists (verify checks that it is
/// executable; the collector's stands in for the detector, which this package's tests
/// may not have built).
#[test]
fn the_systemd_units_verify() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd");
    let tmp = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/local/bin/collector", COLLECTOR)
            .replace("/usr/local/bin/detector", COLLECTOR);
        let to = tmp.path().join(path.file_name().unwrap());
        std::fs::write(&to, text).unwrap();
        units.push(to);
    }
    assert_eq!(
        units.len(),
        7,
        "three services, their timers, and the long-running collector"
    );
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze (package systemd, installed by .ci/install-deps)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
