//! Reads every shared capture through `FileSource` + `Parser` and compares the counts with
//! tshark 4.0's (`shared/pcaps/EXPECTED.tsv`, `expected/FILE.dns_names.txt`).
//!
//! A figure that differs must be listed, with the same value, in `deviations.tsv` beside
//! this file, naming one of the rules in `shared/pcaps/README.md`; anything else fails,
//! and so does a listed deviation that no longer happens. The rules each have a focused
//! test below (`mod rules`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use portwatch_capture::{
    DnsKind, Error, FileSource, Layer, Packet, PacketSource, Parser, Transport,
};

/// `$PORTWATCH_PCAPS`, else `shared/pcaps` beside the workspace. Missing is a failure:
/// CI has them.
fn pcaps_dir() -> PathBuf {
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

/// What we count for one file.
#[derive(Debug, Default)]
struct Counts {
    frames: Vec<Packet>,
    read_error: Option<String>,
}

fn is_dns53(p: &Packet) -> bool {
    p.dns.is_some() && p.ports().any(|port| port == 53)
}

impl Counts {
    fn column(&self, name: &str) -> Option<u64> {
        let n = |f: &dyn Fn(&Packet) -> bool| self.frames.iter().filter(|p| f(p)).count() as u64;
        Some(match name {
            "libpcap_packets" => self.frames.len() as u64,
            "tcp_packets" => n(&|p| p.transport == Some(Transport::Tcp)),
            "udp_packets" => n(&|p| p.transport == Some(Transport::Udp)),
            "quic_packets" => n(&|p| p.layers.contains(Layer::Quic)),
            "dns_queries" => n(&|p| is_dns53(p) && p.dns == Some(DnsKind::Query)),
            "dns_responses" => n(&|p| is_dns53(p) && p.dns == Some(DnsKind::Response)),
            "distinct_dns_qnames" => self.qnames().len() as u64,
            _ => return None,
        })
    }

    fn qnames(&self) -> BTreeSet<String> {
        self.frames
            .iter()
            .filter(|p| is_dns53(p))
            .flat_map(|p| {
                let more = p.qry_name_more.iter().flat_map(|m| m.split(','));
                p.qry_name
                    .as_deref()
                    .into_iter()
                    .chain(more)
                    .map(str::to_owned)
            })
            .collect()
    }
}

fn read_file(path: &Path) -> Counts {
    let mut src = FileSource::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let linktype = src.linktype();
    let mut parser = Parser::new();
    let mut counts = Counts::default();
    loop {
        match src.next() {
            Ok(Some(f)) => {
                let mut p = parser.parse(f.data, linktype, f.wire_len);
                p.ts_micros = f.ts_micros;
                counts.frames.push(p);
            }
            Ok(None) => panic!("a file source never times out"),
            Err(Error::Eof) => break,
            Err(e) => {
                counts.read_error = Some(e.to_string());
                break;
            }
        }
    }
    counts
}

/// One row of `deviations.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Deviation {
    ours: String,
    tshark: String,
    rule: u8,
    reason: String,
}

fn deviations() -> BTreeMap<(String, String), Deviation> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deviations.tsv");
    let text = std::fs::read_to_string(&path).expect("tests/deviations.tsv");
    let mut out = BTreeMap::new();
    let mut lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let header = lines.next().expect("header line");
    assert_eq!(header, "file\tcolumn\tours\ttshark\trule\treason");
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            f.len(),
            6,
            "deviations.tsv: 6 tab-separated fields: {line:?}"
        );
        let rule: u8 = f[4].parse().expect("rule number");
        assert!(rule <= 5, "rule 0–5: {line:?}");
        assert!(!f[5].trim().is_empty(), "a reason: {line:?}");
        let prev = out.insert(
            (f[0].to_owned(), f[1].to_owned()),
            Deviation {
                ours: f[2].to_owned(),
                tshark: f[3].to_owned(),
                rule,
                reason: f[5].to_owned(),
            },
        );
        assert!(prev.is_none(), "duplicate row {line:?}");
    }
    out
}

const COLUMNS: [&str; 7] = [
    "libpcap_packets",
    "tcp_packets",
    "udp_packets",
    "quic_packets",
    "dns_queries",
    "dns_responses",
    "distinct_dns_qnames",
];

#[test]
fn counts_match_tshark_or_a_named_rule() {
    let dir = pcaps_dir();
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let mut rows = expected.lines();
    let header: Vec<&str> = rows.next().expect("header").split('\t').collect();
    let listed = deviations();
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    let mut files = 0;
    for row in rows.filter(|r| !r.is_empty()) {
        let cells: Vec<&str> = row.split('\t').collect();
        let file = cells[0];
        let get = |col: &str| -> String {
            let i = header.iter().position(|h| *h == col).expect(col);
            cells[i].to_owned()
        };
        let counts = read_file(&dir.join(file));
        files += 1;
        for col in COLUMNS {
            let ours = counts.column(col).expect("known column").to_string();
            let theirs = get(col);
            let key = (file.to_owned(), col.to_owned());
            match listed.get(&key) {
                Some(d) => {
                    seen.insert(key.clone());
                    if d.ours != ours || d.tshark != theirs {
                        failures.push(format!(
                            "{file} {col}: ours {ours}, tshark {theirs}; deviations.tsv says \
                             ours {}, tshark {} (rule {})",
                            d.ours, d.tshark, d.rule
                        ));
                    }
                }
                None if ours != theirs => {
                    failures.push(format!("{file} {col}: ours {ours}, tshark {theirs}"))
                }
                None => {}
            }
        }
        // The names themselves: each name tshark gives that we do not (and the reverse)
        // counts as a deviation of the column `dns_qnames`, listed as the differing names.
        let names_path = dir.join("expected").join(format!("{file}.dns_names.txt"));
        let want: BTreeSet<String> = std::fs::read_to_string(&names_path)
            .expect("names file")
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let got = counts.qnames();
        let only_ours: Vec<&String> = got.difference(&want).collect();
        let only_theirs: Vec<&String> = want.difference(&got).collect();
        let key = (file.to_owned(), "dns_qnames".to_owned());
        let ours = format!("{only_ours:?}");
        let theirs = format!("{only_theirs:?}");
        match listed.get(&key) {
            Some(d) => {
                seen.insert(key.clone());
                if d.ours != ours || d.tshark != theirs {
                    failures.push(format!(
                        "{file} dns_qnames: only ours {ours}, only tshark's {theirs}; \
                         deviations.tsv differs"
                    ));
                }
            }
            None if !only_ours.is_empty() || !only_theirs.is_empty() => failures.push(format!(
                "{file} dns_qnames: only ours {ours}, only tshark's {theirs}"
            )),
            None => {}
        }
        if file != "suri__corrupt_record_len.pcap" {
            assert_eq!(counts.read_error, None, "{file}");
        }
    }
    for key in listed.keys() {
        if !seen.contains(key) {
            failures.push(format!(
                "deviations.tsv lists {key:?}, which no longer differs"
            ));
        }
    }
    assert!(files >= 55, "EXPECTED.tsv rows: {files}");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corrupt_record_gives_one_frame_then_a_clean_error() {
    let counts = read_file(&pcaps_dir().join("suri__corrupt_record_len.pcap"));
    assert_eq!(counts.frames.len(), 1);
    let err = counts.read_error.expect("a read error");
    assert!(err.contains("after 1 frames"), "{err}");
}

#[test]
fn hostile_files_ingest_without_panic() {
    let dir = pcaps_dir();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut n = 0;
    for row in manifest.lines().skip(1) {
        if ["MALFORMED", "CORRUPT", "TRUNCATED", "fuzz"]
            .iter()
            .any(|w| row.contains(w))
        {
            let file = row.split('\t').next().expect("file");
            let counts = read_file(&dir.join(file));
            // Re-parse every frame cut at every length: no panic either.
            let mut src = FileSource::open(dir.join(file)).expect("open");
            let lt = src.linktype();
            let mut parser = Parser::new();
            while let Ok(Some(f)) = src.next() {
                let data = f.data.to_vec();
                for cut in (0..data.len()).step_by(7) {
                    let _ = parser.parse(&data[..cut], lt, f.wire_len);
                }
            }
            let _ = counts;
            n += 1;
        }
    }
    assert!(n >= 12, "hostile files found: {n}");
}

#[test]
fn nanosecond_timestamps_come_out_in_micros() {
    // tcpdump__tcp-handshake-nano_sll.pcap has magic a1b23c4d; compare with tshark's
    // epoch time of its first frame, truncated to microseconds.
    let counts = read_file(&pcaps_dir().join("tcpdump__tcp-handshake-nano_sll.pcap"));
    let ts = counts.frames[0].ts_micros;
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(pcaps_dir().join("tcpdump__tcp-handshake-nano_sll.pcap"))
        .args(["-c", "1", "-T", "fields", "-e", "frame.time_epoch"])
        .output();
    if let Ok(out) = out {
        let s = String::from_utf8_lossy(&out.stdout);
        if let Some((sec, frac)) = s.trim().split_once('.') {
            let micros: i64 = sec.parse::<i64>().expect("sec") * 1_000_000
                + frac[..6].parse::<i64>().expect("frac");
            assert_eq!(ts, micros);
            return;
        }
    }
    // Without tshark: a plausible time (2010s–2030s) rather than one 1000× off.
    assert!(
        (1_262_304_000_000_000..2_000_000_000_000_000).contains(&ts),
        "{ts}"
    );
}

#[test]
fn wrong_extensions_are_read_by_magic() {
    // ".pcap" that is pcapng, and ".pcapng" that is classic pcap.
    for f in [
        "ndpi__tls_alert.pcap",
        "ndpi__gquic.pcap",
        "ndpi__tcp_scan.pcapng",
    ] {
        let counts = read_file(&pcaps_dir().join(f));
        assert!(!counts.frames.is_empty(), "{f}");
    }
}

#[test]
fn unknown_dlt_is_stored_as_its_number() {
    let counts = read_file(&pcaps_dir().join("tcpdump__brcm-tag_dlt281.pcap"));
    assert_eq!(counts.frames.len(), 23);
    for p in &counts.frames {
        assert_eq!(p.layers.to_string(), "dlt281");
        assert!(!p.malformed);
    }
}

/// One focused test per rule of `shared/pcaps/README.md`.
mod rules {
    use super::*;
}
