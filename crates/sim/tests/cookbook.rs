//! The README's console cookbook (section "Looking at the data") run on simulated
//! history: every ```sql block of the section is taken from README.md as it is, so a
//! query added there later is run here too.
//!
//! The history ends now, because the queries' windows are relative to `'now'`: an
//! empty seed round 25 hours and a minute ago makes `simulate` (which appends after the
//! last round) fill the 25 hours up to now, with a deploy (tcp/8443) 2 hours ago and a
//! port scan half an hour ago. A detector's verdicts (one open and one closed incident,
//! the scan's anomalies) and a failed round with drops are written through the store,
//! so that the incident, anomaly and data-loss queries have rows to find.
//!
//! Each block must be one read-only statement under a numbered question
//! (`-- N. …?`) and run without error; the queries below, found by a phrase of their
//! SQL, must also give the answer this history holds. Speed is measured by
//! `benches/cookbook.sh`, not here.

// Test helpers outside `#[test]` functions panic on failure by design.
#![allow(clippy::unwrap_used)]

use portwatch_sim::{SimConfig, simulate};
use portwatch_store::incidents::{Incident, IncidentStatus, IncidentWrite};
use portwatch_store::insert::{RoundClose, RoundSource, RoundStatus};
use portwatch_store::time::{format_micros, now_micros};
use portwatch_store::verdicts::{BatchStatus, NewAnomaly, NewBatch, Verdict};
use rusqlite::Connection;
use rusqlite::types::Value;

const README: &str = include_str!("../../../README.md");
const SECTION: &str = "## Looking at the data";

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;

/// The ```sql blocks between the section's heading and the next `## ` heading.
fn cookbook() -> Vec<String> {
    let mut lines = README.lines().skip_while(|l| *l != SECTION);
    assert_eq!(
        lines.next(),
        Some(SECTION),
        "README.md has no {SECTION:?} section"
    );
    let mut blocks = Vec::new();
    let mut block: Option<String> = None;
    for line in lines.take_while(|l| !l.starts_with("## ")) {
        match (&mut block, line) {
            (None, "```sql") => block = Some(String::new()),
            (Some(_), "```") => blocks.push(block.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(block.is_none(), "an unclosed ```sql block in {SECTION:?}");
    blocks
}

/// A query's result: column names and rows.
struct Answer {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Answer {
    fn col(&self, name: &str) -> Vec<&Value> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.columns));
        self.rows.iter().map(|r| &r[i]).collect()
    }

    fn texts(&self, name: &str) -> Vec<String> {
        self.col(name)
            .into_iter()
            .map(|v| match v {
                Value::Text(s) => s.clone(),
                Value::Integer(i) => i.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn ints(&self, name: &str) -> Vec<i64> {
        self.col(name)
            .into_iter()
            .map(|v| match v {
                Value::Integer(i) => *i,
                other => panic!("column {name:?}: {other:?} is not an integer"),
            })
            .collect()
    }

    /// `protocol/port` of each row.
    fn listeners(&self) -> Vec<String> {
        let ports = self.ints("port");
        self.texts("protocol")
            .into_iter()
            .zip(ports)
            .map(|(p, n)| format!("{p}/{n}"))
            .collect()
    }
}

/// Runs one cookbook block: exactly one statement (rusqlite refuses a second one),
/// which must not write.
fn run(conn: &Connection, sql: &str) -> Answer {
    let mut st = conn
        .prepare(sql)
        .unwrap_or_else(|e| panic!("cookbook query does not prepare: {e}\n{sql}"));
    assert!(st.readonly(), "cookbook query writes:\n{sql}");
    let columns: Vec<String> = st.column_names().map(str::to_string).collect();
    let n = columns.len();
    let rows = st
        .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Vec<Value>>>>())
        .unwrap_or_else(|e| panic!("cookbook query fails: {e}\n{sql}"));
    Answer { columns, rows }
}

/// What the history written by [`history`] holds, for the checks.
struct Facts {
    /// The failed round with drops, the newest round.
    failed_round: i64,
    /// The scan's label, `SYN scan from ADDRESS: N ports in 200 s`.
    scan_note: String,
    /// The causes of the open and of the closed incident.
    open_cause: String,
    closed_cause: String,
    packets: i64,
    round_42_packets: i64,
}

/// 25 hours of a simulated server up to now at 5 packets/s, a detector's verdicts on
/// the port scan, and a failed round.
fn history(path: &std::path::Path) -> Facts {
    let mut db = portwatch_store::Db::open(path).unwrap();
    let now = now_micros();
    let seed = now - 25 * HOUR - MINUTE;
    let tx = db.transaction().unwrap();
    let id = tx.begin_round(seed, RoundSource::Simulated, None).unwrap();
    let close = RoundClose {
        end_micros: seed,
        status: Some(RoundStatus::Complete),
        ..RoundClose::default()
    };
    tx.close_round(id, &close).unwrap();
    tx.commit().unwrap();

    let cfg = SimConfig {
        hours: 25.0,
        seed: 1,
        rate: 5.0,
        inject: ["deploy@23", "portscan@24.5"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
        ..SimConfig::default()
    };
    let sum = simulate(&mut db, &cfg).unwrap();
    assert_eq!(sum.events, 2);

    let conn = Connection::open(path).unwrap();
    let (scan_note, scan_rounds) = {
        let mut st = conn
            .prepare(
                "SELECT l.note, r.id, r.start_time, r.end_time FROM labels l
                   JOIN rounds r ON r.id = l.round_id WHERE l.kind = 'portscan' ORDER BY r.id",
            )
            .unwrap();
        let rows: Vec<(String, i64, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(!rows.is_empty(), "the scan has no labelled rounds");
        let note = rows[0].0.clone();
        let rounds: Vec<(i64, String, String)> =
            rows.into_iter().map(|(_, id, s, e)| (id, s, e)).collect();
        (note, rounds)
    };

    // What the detector would write about the scan: anomalous rounds, an open incident
    // for it, and a closed one from earlier in the day.
    let incident = |cause: &str, status, first: i64, last: i64| Incident {
        id: 0,
        kind: "remote_source".into(),
        cause: cause.into(),
        first_round_id: first,
        last_round_id: last,
        start: now - HOUR,
        end: now - HOUR + MINUTE,
        peak_score: 3.0,
        status,
        quiet_rounds: 0,
        rounds: 1,
        summary: format!("{cause} probed many ports"),
        details: serde_json::json!({ "cause": cause }),
        opened_at: format_micros(now),
        updated_at: format_micros(now),
        acknowledged_at: None,
        accepted_at: None,
        accepted_by: None,
        closed_at: (status == IncidentStatus::Closed).then(|| format_micros(now)),
        note: None,
    };
    let (first, last) = (scan_rounds[0].0, scan_rounds[scan_rounds.len() - 1].0);
    let open_cause = "198.51.100.0/24".to_string();
    let closed_cause = "192.0.2.0/24".to_string();
    let writes = [
        IncidentWrite {
            incident: incident(&open_cause, IncidentStatus::Open, first, last),
            new: true,
            rounds: scan_rounds.iter().map(|r| (r.0, Some(3.0))).collect(),
        },
        IncidentWrite {
            incident: incident(&closed_cause, IncidentStatus::Closed, 2, 2),
            new: true,
            rounds: vec![(2, Some(2.0))],
        },
    ];
    let verdicts: Vec<Verdict> = scan_rounds
        .iter()
        .map(|r| Verdict {
            round_id: r.0,
            score: Some(3.0),
            anomalous: true,
            trainable: false,
            trained: false,
        })
        .collect();
    let anomalies: Vec<NewAnomaly<'_>> = scan_rounds
        .iter()
        .map(|r| NewAnomaly {
            round_id: r.0,
            window_start: &r.1,
            window_end: &r.2,
            score: 3.0,
            threshold: 1.0,
            explanation: r#"{"features":["scan"]}"#,
        })
        .collect();
    let batch = NewBatch {
        started: now,
        alg: "cnn-lstm-ae",
        first_round_id: Some(first),
        last_round_id: Some(last),
        windows: scan_rounds.len(),
        anomalies: scan_rounds.len(),
        threshold: Some(1.0),
        loss_before: None,
        loss_after: None,
        model_version: Some(1),
        status: BatchStatus::Scored,
    };
    db.record_batch(&batch, &verdicts, &anomalies, &writes)
        .unwrap();

    // A live round that lost packets and died, after the simulated history.
    let start = now_micros();
    let tx = db.transaction().unwrap();
    let failed_round = tx
        .begin_round(start, RoundSource::Live("eth0"), Some(5.0))
        .unwrap();
    let close = RoundClose {
        end_micros: start + 1_000_000,
        status: Some(RoundStatus::Failed),
        packets_captured: 100,
        packets_dropped: 40,
        note: Some("writer failed: disk full".into()),
        ..RoundClose::default()
    };
    tx.close_round(failed_round, &close).unwrap();
    tx.commit().unwrap();

    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    Facts {
        failed_round,
        scan_note,
        open_cause,
        closed_cause,
        packets: one("SELECT count(*) FROM packets"),
        round_42_packets: one("SELECT packets_stored FROM rounds WHERE id = 42"),
    }
}

/// Which block a check is about: the one containing `phrase` (exactly one must).
fn find<'a>(blocks: &'a [String], phrase: &str) -> &'a str {
    let found: Vec<&String> = blocks.iter().filter(|b| b.contains(phrase)).collect();
    assert_eq!(
        found.len(),
        1,
        "{phrase:?} should appear in exactly one cookbook query"
    );
    found[0]
}

#[test]
fn the_cookbook_blocks_are_numbered_questions() {
    let blocks = cookbook();
    assert!(
        blocks.len() >= 10,
        "only {} queries in the cookbook",
        blocks.len()
    );
    for (i, b) in blocks.iter().enumerate() {
        let head = format!("-- {}. ", i + 1);
        let first = b.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&head),
            "query {} should start with {head:?}:\n{b}",
            i + 1
        );
        // The question ends on the comment lines above the statement.
        let question: String = b
            .lines()
            .take_while(|l| l.starts_with("--"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(question.contains('?'), "query {} asks nothing:\n{b}", i + 1);
        assert!(
            b.lines()
                .any(|l| !l.starts_with("--") && !l.trim().is_empty()),
            "query {} has no statement",
            i + 1
        );
    }
}

#[test]
fn every_cookbook_query_runs_and_answers_on_a_simulated_day() {
    let blocks = cookbook();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ports.db");
    let facts = history(&path);
    let conn = Connection::open(&path).unwrap();

    // Every block runs, the ones without a check below too.
    for b in &blocks {
        run(&conn, b);
    }
    let ask = |phrase: &str| run(&conn, find(&blocks, phrase));

    // 1. The last ten rounds, newest (the failed one) first.
    let a = ask("FROM round_summary");
    assert_eq!(a.rows.len(), 10);
    assert_eq!(a.ints("id")[0], facts.failed_round);

    // 2. The listeners of the last sample: sshd's from the start, the deploy's.
    let now = ask("FROM listening_now");
    let listening = now.listeners();
    for l in ["tcp/22", "tcp/80", "tcp/443", "tcp/8443"] {
        assert!(listening.contains(&l.to_string()), "{l} in {listening:?}");
    }

    // 4. New in the last day: the deploy's port, not the ports seen for 25 hours.
    let new = ask("WITH RECURSIVE port");
    assert_eq!(new.listeners(), ["tcp/8443"]);
    assert_eq!(new.texts("process"), ["api-server"]);
    let deployed = new.texts("first_seen").remove(0);

    // 3. New today: the deploy if it came after midnight (UTC), else nothing.
    let today = ask("FROM listening_new_today");
    let expected: &[&str] = if deployed[..10] == format_micros(now_micros())[..10] {
        &["tcp/8443"]
    } else {
        &[]
    };
    assert_eq!(today.listeners(), expected, "deployed at {deployed}");

    // 5. Port 22's owner over the whole history.
    let a = ask("port_id = 22");
    assert!(!a.rows.is_empty());
    assert!(
        a.texts("process").iter().all(|p| p == "sshd"),
        "{:?}",
        a.rows
    );

    // 6. The open incident, not the closed one.
    let a = ask("FROM incident_list");
    let causes = a.texts("cause");
    assert_eq!(causes, [facts.open_cause.as_str()]);
    assert!(!causes.contains(&facts.closed_cause));

    // 7. The scan's anomalies.
    let a = ask("FROM anomaly_list");
    assert!(!a.rows.is_empty() && a.rows.len() <= 10);

    // 8. Someone talked in the last hour.
    let a = ask("FROM top_talkers_last_hour");
    assert!(!a.rows.is_empty());
    assert!(a.ints("packets").iter().all(|&n| n > 0));

    // 9. The scanner first, with the hundreds of ports it probed.
    let a = ask("p.tcp_flags & 18 = 2");
    let top = a.texts("src_addr").remove(0);
    assert!(
        facts.scan_note.contains(&format!("from {top}:")),
        "top SYN sender {top}, scan: {}",
        facts.scan_note
    );
    // 600 to 1,200 ports in 200 s, of which rounds capture 55 s a minute.
    assert!(a.ints("ports")[0] >= 500, "{:?}", a.rows[0]);

    // 10. Names looked up in the last hour: the resolver's.
    let a = ask("+p.dns_qr = 0");
    assert!(!a.rows.is_empty());
    assert!(a.col("name").iter().all(|v| matches!(v, Value::Text(_))));

    // 11. TLS and QUIC server names of the last hour.
    let a = ask("p.server_name IS NOT NULL");
    assert!(
        a.texts("server_name")
            .iter()
            .any(|s| s == "shop.example.com")
    );

    // 12. An hour three hours ago, summed up from the rounds' totals: they add up to
    // the packets of those rounds, counted one by one (the top 20 pairs hold most).
    let a = ask("JOIN round_talkers t");
    assert!(!a.rows.is_empty() && a.rows.len() <= 20);
    let top: i64 = a.ints("packets").iter().sum();
    let all: i64 = conn
        .query_row(
            "SELECT count(*) FROM rounds r
               JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id
              WHERE r.start_time >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-3 hours')
                AND r.start_time < strftime('%Y-%m-%dT%H:%M:%S', 'now', '-2 hours')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let totals: i64 = conn
        .query_row(
            "SELECT sum(t.packets) FROM rounds r JOIN round_talkers t ON t.round_id = r.id
              WHERE r.start_time >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-3 hours')
                AND r.start_time < strftime('%Y-%m-%dT%H:%M:%S', 'now', '-2 hours')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        totals, all,
        "every packet of the hour is in its rounds' totals"
    );
    assert!(top > 0 && top <= all);

    // 13. Round 42's packets, every one of them.
    let a = ask("FROM round_packets");
    assert!(facts.round_42_packets > 0);
    assert_eq!(a.rows.len() as i64, facts.round_42_packets);

    // 14. Only the failed round lost data.
    let a = ask("packets_dropped > 0");
    assert_eq!(a.ints("id"), [facts.failed_round]);

    // 15. The days add up to every stored packet.
    let a = ask("pragma_page_count()");
    assert!(a.rows.len() >= 2, "25 hours span two days: {:?}", a.rows);
    assert_eq!(a.ints("packets").iter().sum::<i64>(), facts.packets);
}
