//! `collector simulate` through the binary, as the README's "try it" steps run it. The
//! simulator's rows are tested in portwatch-sim; the detector's tests simulate through
//! the library.

use crate::util::*;

#[test]
fn simulate_appends_labelled_history_and_says_what_it_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("ports.db");
    let mut c = collector(&db);
    c.args([
        "simulate", "--hours", "1", "--rate", "5", "--seed", "3", "-v",
    ]);
    c.args(["--inject", "portscan@0.3"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let packets = query_i64(&db, "SELECT count(*) FROM packets");
    assert_eq!(
        text.trim(),
        format!("simulated 60 rounds (1..60), {packets} packets, 1 events"),
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM rounds WHERE source = 'simulated' AND status = 'complete'"
        ),
        60
    );
    assert!(
        query_i64(
            &db,
            "SELECT count(DISTINCT round_id) FROM labels WHERE kind = 'portscan'"
        ) > 0
    );

    // A second run appends after the first, under the same lock as live rounds.
    let mut c = collector(&db);
    c.args(["simulate", "--hours", "0.5", "--seed", "4"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "silent without -v");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM rounds"), 90);
}

#[test]
fn an_unknown_event_kind_is_a_usage_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("ports.db");
    let mut c = collector(&db);
    c.args(["simulate", "--hours", "1", "--inject", "teleport@0.5"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("teleport"), "{}", stderr(&out));
    assert!(!db.exists() || query_i64(&db, "SELECT count(*) FROM rounds") == 0);
}

/// Completions for the three shells people use and the man page come from the same
/// definitions as `--help`: every flag is in them.
#[test]
fn completions_and_man_page_know_every_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("never-created.db");
    for (args, want) in [
        (&["completions", "bash"][..], "--scan-interval"),
        (&["completions", "zsh"], "--scan-interval"),
        (&["completions", "fish"], "scan-interval"),
        (&["man"], "scan\\-interval"),
    ] {
        let out = run({
            let mut c = collector(&db);
            c.args(args);
            c
        });
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        for flag in [want, "older", "inject"] {
            assert!(text.contains(flag), "{args:?} lacks {flag}");
        }
    }
    assert!(!db.exists(), "no database for documentation");
}

/// On a terminal, `simulate` and `prune` draw a progress bar on stderr; anywhere else
/// (cron, a pipe) stderr stays empty. `script` gives the run a pseudo-terminal.
#[test]
fn progress_bars_show_on_a_terminal_only() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("ports.db");
    let on_tty = |args: &str| {
        let cmd = format!("{COLLECTOR} --db {} {args}", db.display());
        let out = on_terminal(&cmd);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let drawn = on_tty("simulate --hours 3 --rate 2 --seed 5");
    assert!(
        drawn.contains("simulate") && drawn.contains("/180 minutes"),
        "{drawn:?}"
    );
    let drawn = on_tty("prune --older-than 1s");
    assert!(
        drawn.contains("prune") && drawn.contains("/180 rounds"),
        "{drawn:?}"
    );
    // Piped: nothing on stderr.
    let mut c = collector(&db);
    c.args(["simulate", "--hours", "1", "--rate", "2", "--seed", "6"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}
