//! Every shared capture (`$PORTWATCH_PCAPS`) through `collector --read` into SQLite; the stored
//! figures must equal tshark's (EXPECTED.tsv) except where `deviations.tsv` of the
//! capture crate names a rule (each rule has its own test in that crate).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::*;

fn tsv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// (file, column) → what we give instead of tshark's: a number, or for `dns_qnames`
/// the JSON lists of names only we / only tshark give.
fn deviations() -> BTreeMap<(String, String), (String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../capture/tests/deviations.tsv");
    tsv(&path)
        .into_iter()
        .skip(1)
        .map(|r| ((r[0].clone(), r[1].clone()), (r[2].clone(), r[3].clone())))
        .collect()
}

fn figures(db: &Path, round: i64) -> BTreeMap<&'static str, u64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let q = |filter: &str| -> u64 {
        let sql = format!(
            "SELECT count(*) FROM packets p JOIN rounds r ON p.id BETWEEN r.first_packet_id AND r.last_packet_id
              WHERE r.id = ?1 AND ({filter})"
        );
        conn.query_row(&sql, [round], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    };
    let tok = |t: &str| format!("(':' || protocols || ':') LIKE '%:{t}:%'");
    let dns53 = "dns_qr IS NOT NULL AND (port_id = 53 OR dest_port = 53)";
    let mut m = BTreeMap::new();
    m.insert("libpcap_packets", q("1"));
    // As tshark's filters (pcaps/README.md): the plain columns leave out frames with
    // ICMP in them (an error quoting a header), the `_incl_icmp_quoted` ones do not.
    let no_icmp = format!("NOT {} AND NOT {}", tok("icmp"), tok("icmpv6"));
    m.insert("tcp_packets", q(&format!("{} AND {no_icmp}", tok("tcp"))));
    m.insert("udp_packets", q(&format!("{} AND {no_icmp}", tok("udp"))));
    m.insert("tcp_packets_incl_icmp_quoted", q(&tok("tcp")));
    m.insert("udp_packets_incl_icmp_quoted", q(&tok("udp")));
    m.insert("quic_packets", q(&tok("quic")));
    m.insert("dns_queries", q(&format!("{dns53} AND dns_qr = 0")));
    m.insert("dns_responses", q(&format!("{dns53} AND dns_qr = 1")));
    m
}

fn qnames(db: &Path, round: i64) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut s = conn
        .prepare(
            "SELECT qry_name FROM packets p JOIN rounds r ON p.id BETWEEN r.first_packet_id AND r.last_packet_id
              WHERE r.id = ?1 AND qry_name IS NOT NULL AND (port_id = 53 OR dest_port = 53)",
        )
        .unwrap();
    s.query_map([round], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|n| n.unwrap())
        // A message with several questions stores them comma-separated; compared as
        // tshark prints them (it leaves `\` raw).
        .flat_map(|n| {
            n.split(',')
                .map(portwatch_capture::escape::as_tshark_prints)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_shared_capture_stores_what_tshark_counts() {
    let dir = pcaps_dir();
    let expected = tsv(&dir.join("EXPECTED.tsv"));
    let header = expected[0].clone();
    let devs = deviations();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("ingest.db");
    let mut failures = Vec::new();
    for (i, row) in expected.iter().skip(1).enumerate() {
        let file = &row[0];
        let out = run({
            let mut c = collector(&db);
            c.arg("--read").arg(dir.join(file));
            c
        });
        // The one file with a corrupt record is a partial round (3) after keeping its
        // frames; every other file is complete (0).
        let code = out.status.code();
        let want = if file == "suri__corrupt_record_len.pcap" {
            3
        } else {
            0
        };
        assert_eq!(code, Some(want), "{file}: {}", stderr(&out));
        let round = i as i64 + 1;
        assert_eq!(
            query_i64(
                &db,
                &format!(
                    "SELECT count(*) FROM rounds WHERE id = {round} AND source LIKE 'file:%{file}'"
                )
            ),
            1,
            "{file}: one round per file"
        );
        let ours = figures(&db, round);
        for (col, value) in header.iter().zip(row) {
            let Some(&got) = ours.get(col.as_str()) else {
                continue;
            };
            let want: u64 = match devs.get(&(file.clone(), col.clone())) {
                Some((ours, _)) => ours.parse().unwrap(),
                None => value.parse().unwrap(),
            };
            if got != want {
                failures.push(format!("{file} {col}: stored {got}, expected {want}"));
            }
        }
        let names = qnames(&db, round);
        let path = dir.join("expected").join(format!("{file}.dns_names.txt"));
        let mut want: BTreeSet<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some((ours_only, tshark_only)) = devs.get(&(file.clone(), "dns_qnames".to_owned())) {
            let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap();
            want.extend(list(ours_only));
            for n in list(tshark_only) {
                want.remove(&n);
            }
        }
        if names != want {
            failures.push(format!(
                "{file}: names differ: missing {:?}, extra {:?}",
                want.difference(&names).take(5).collect::<Vec<_>>(),
                names.difference(&want).take(5).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing vanished: every round's stored count equals its rowid range.
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM rounds WHERE packets_stored > 0
               AND last_packet_id - first_packet_id + 1 != packets_stored"
        ),
        0
    );
}

#[test]
fn a_truncated_file_keeps_its_frames_and_says_why() {
    let dir = pcaps_dir();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("t.db");
    let out = run({
        let mut c = collector(&db);
        c.arg("--read")
            .arg(dir.join("suri__corrupt_record_len.pcap"));
        c
    });
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("after 1 frames"), "{}", stderr(&out));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (status, stored, note): (String, i64, String) = conn
        .query_row("SELECT status, packets_stored, note FROM rounds", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((status.as_str(), stored), ("partial", 1));
    assert!(note.contains("invalid packet capture length"), "{note}");

    // A file that is not a capture at all: a clear error, exit 1, nothing stored.
    let junk = tmp.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file").unwrap();
    let out = run({
        let mut c = collector(&db);
        c.arg("--read").arg(&junk);
        c
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("junk.pcap"), "{}", stderr(&out));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM rounds"), 1);
}

#[test]
fn the_format_is_detected_from_the_magic_bytes_not_the_extension() {
    let dir = pcaps_dir();
    let tmp = tempfile::tempdir().unwrap();
    // A pcapng named .pcap and a pcap named .pcapng.
    let ng = tmp.path().join("really-ng.pcap");
    std::fs::copy(dir.join("cs__dns_lab.pcapng"), &ng).unwrap();
    let classic = tmp.path().join("really-classic.pcapng");
    std::fs::copy(dir.join("tcpdump__dns_udp.pcap"), &classic).unwrap();
    let db = tmp.path().join("m.db");
    let out = run({
        let mut c = collector(&db);
        c.arg("--read").arg(&ng).arg("--read").arg(&classic);
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(query_i64(&db, "SELECT sum(packets_stored) FROM rounds"), 24);
}

/// `--read -` reads the standard input, as `tcpdump -r -` does: the same rows as the
/// file itself, and a pipe that ends before a capture's header is a one-line error.
#[test]
fn a_dash_reads_the_standard_input() {
    use std::process::Stdio;
    let file = pcaps_dir().join("cs__dns_lab.pcapng");
    let tmp = tempfile::tempdir().unwrap();
    let (piped, named) = (tmp.path().join("piped.db"), tmp.path().join("named.db"));
    // A pipe (no file position, so no progress bar), fed by a thread.
    let mut child = collector(&piped)
        .args(["--read", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let feed = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes));
    let out = child.wait_with_output().unwrap();
    feed.join().unwrap().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run({
        let mut c = collector(&named);
        c.arg("--read").arg(&file);
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let rows =
        "SELECT timestamp || ' ' || protocols || ' ' || coalesce(qry_name, '-') || ' ' || length
                  FROM packets ORDER BY id";
    let piped_rows = query_strings(&piped, rows);
    assert_eq!(piped_rows.len(), 22);
    assert_eq!(piped_rows, query_strings(&named, rows));
    assert_eq!(
        query_strings(&piped, "SELECT source FROM rounds"),
        ["file:-"]
    );
    let out = collector(&piped)
        .args(["--read", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot open capture file -: truncated dump file"),
        "{err}"
    );
}

/// Tunnelled frames of the mix are stored as the flows they carry, their tunnel's ends
/// in `outer_src_addr`/`outer_dst_addr`: frame 42720 is TCP inside GTP-U, frame 26073
/// IPv4 inside IPv6.
#[test]
fn tunnelled_frames_are_stored_as_their_inner_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("t.db");
    let out = run({
        let mut c = collector(&db);
        c.arg("--read").arg(pcaps_dir().join("bench_mixed_A.pcap"));
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let frame = |n: i64| -> (String, String, String, i64) {
        conn.query_row(
            "SELECT protocols, src_addr, outer_src_addr, dest_port FROM packets
              WHERE id = (SELECT first_packet_id FROM rounds) + ?1 - 1",
            [n],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    };
    let (stack, src, outer, dport) = frame(42720);
    assert_eq!(stack, "eth:vlan:vlan:ipv4:udp:gtp:ipv4:tcp");
    assert_ne!(src, outer, "the inner source, the tunnel's apart");
    assert_ne!(dport, 2152, "the inner TCP port, not GTP-U's");
    let (stack, src, outer, _) = frame(26073);
    assert!(stack.starts_with("eth:ipv6:ipv4"), "{stack}");
    assert!(
        !src.contains(':') && outer.contains(':'),
        "{src} in {outer}"
    );
    // Outer ends belong to tunnelled frames only: a tunnel's layer or a second IP header.
    let tunnelled = "(protocols GLOB '*:gtp:*' OR protocols GLOB '*:gre:*' \
        OR protocols GLOB '*:vxlan:*' OR protocols GLOB '*:geneve:*' \
        OR protocols GLOB '*:teredo:*' OR protocols GLOB '*:capwap*' \
        OR length(protocols) - length(replace(protocols, 'ipv', '')) >= 6)";
    assert_eq!(
        query_i64(
            &db,
            &format!(
                "SELECT count(*) FROM packets WHERE outer_src_addr IS NOT NULL AND NOT {tunnelled}"
            )
        ),
        0
    );
    assert!(
        query_i64(
            &db,
            "SELECT count(*) FROM packets WHERE outer_src_addr IS NOT NULL"
        ) >= 50
    );
}

/// `round_packets` shows TCP flags as tcpdump does: a SYN scan is `S` probes answered
/// by `S.` (open) or `R.` (closed), as tshark counts them on the same capture.
#[test]
fn round_packets_show_tcp_flags_as_tcpdump_does() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("f.db");
    let file = pcaps_dir().join("ndpi__synscan.pcap");
    let out = run({
        let mut c = collector(&db);
        c.arg("--read").arg(&file);
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let tshark = |filter: &str| -> i64 {
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&file)
            .args(["-Y", filter])
            .output()
            .expect("tshark (installed by .ci/install-deps)");
        String::from_utf8_lossy(&out.stdout).lines().count() as i64
    };
    for (flags, filter) in [
        ("S", "tcp.flags == 0x002"),
        ("S.", "tcp.flags == 0x012"),
        ("R.", "tcp.flags == 0x014"),
    ] {
        let ours = query_i64(
            &db,
            &format!("SELECT count(*) FROM round_packets WHERE flags = '{flags}'"),
        );
        assert_eq!(ours, tshark(filter), "{flags}");
        assert!(ours > 0, "{flags}");
    }
}
