//! Reads every shared capture through `FileSource` + `Parser` and compares the counts with
//! tshark 4.0's (`shared/pcaps/EXPECTED.tsv`, `expected/FILE.dns_names.txt`).
//!
//! A figure that differs must be listed, with the same value, in `deviations.tsv` beside
//! this file, naming one of the rules in `shared/pcaps/README.md`; anything else fails,
//! and so does a listed deviation that no longer happens. The rules each have a focused
//! test below (`mod rules`).

// Test helpers outside `#[test]` functions: a failed read is a failed test.
#![cfg(feature = "pcap")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use portwatch_testkit::pcaps_dir;

use portwatch_capture::{
    DnsKind, Error, FileSource, Layer, Packet, PacketSource, Parser, Transport,
};

/// What we count for one file.
#[derive(Debug, Default)]
struct Counts {
    frames: Vec<Packet>,
    read_error: Option<String>,
}

fn is_dns53(p: &Packet) -> bool {
    p.dns.is_some() && p.ports().any(|port| port == 53)
}

fn has_icmp(p: &Packet) -> bool {
    p.layers.contains(Layer::Icmp) || p.layers.contains(Layer::Icmpv6)
}

impl Counts {
    fn column(&self, name: &str) -> Option<u64> {
        let n = |f: &dyn Fn(&Packet) -> bool| self.frames.iter().filter(|p| f(p)).count() as u64;
        Some(match name {
            "libpcap_packets" => self.frames.len() as u64,
            // As tshark's `tcp` and `udp` filters: a TCP or UDP layer anywhere in the
            // stack (a tunnel's outer UDP as much as the flow it carries); the plain
            // columns leave out frames with ICMP in them (an error quoting a header, or
            // ICMP carried in a tunnel), the `_incl_icmp_quoted` ones do not.
            "tcp_packets" => n(&|p| p.layers.contains(Layer::Tcp) && !has_icmp(p)),
            "udp_packets" => n(&|p| p.layers.contains(Layer::Udp) && !has_icmp(p)),
            "tcp_packets_incl_icmp_quoted" => n(&|p| p.layers.contains(Layer::Tcp)),
            "udp_packets_incl_icmp_quoted" => n(&|p| p.layers.contains(Layer::Udp)),
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
                    // Compared as tshark prints them (it leaves `\` raw).
                    .map(portwatch_capture::escape::as_tshark_prints)
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

const COLUMNS: [&str; 9] = [
    "libpcap_packets",
    "tcp_packets",
    "udp_packets",
    "tcp_packets_incl_icmp_quoted",
    "udp_packets_incl_icmp_quoted",
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
    // Without tshark: a plausible time (2010s–2030s) rather than one 1000× off, and
    // only where skips are allowed.
    portwatch_testkit::skip("tshark is not installed (.ci/install-deps installs it)");
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
fn unreadable_files_are_typed_errors() {
    let err = FileSource::open("/nonexistent/x.pcap").unwrap_err();
    assert!(matches!(err, Error::OpenFile { .. }), "{err}");
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, b"this is not a capture file at all").unwrap();
    let err = FileSource::open(f.path()).unwrap_err();
    assert!(matches!(err, Error::OpenFile { .. }), "{err}");
    assert!(err.to_string().contains(&f.path().display().to_string()));
}

#[test]
fn empty_files_give_eof_at_once() {
    for f in ["tcpdump__empty.pcap", "tcpdump__empty.pcapng"] {
        let mut src = FileSource::open(pcaps_dir().join(f)).unwrap();
        assert!(matches!(src.next(), Err(Error::Eof)), "{f}");
        assert!(src.next().unwrap_err().is_eof(), "{f}: stays at the end");
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

/// QUIC SNI from decrypted client Initials, against what tshark shows
/// (`tls.handshake.extensions_server_name` on `quic` frames). tshark shows a name on the
/// frame where its reassembly of the CRYPTO stream completes, so a ClientHello spread
/// over two Initials can appear one frame apart; these frames agree.
#[cfg(feature = "quic-sni")]
#[test]
fn quic_sni_matches_tshark() {
    for (file, n, name) in [
        ("suri__quic-ietf.pcap", 1, "msquic.net"),
        ("ndpi__quic-v2_sll.pcapng", 1, "test"),
        ("ndpi__quic-draft29.pcap", 1, "localhost"),
        ("ndpi__quic_0rtt.pcap", 1, "abcd"),
        ("ndpi__quic_0rtt.pcap", 5, "ssl.gstatic.com"),
        ("tcpdump__quic_handshake_null.pcap", 1, "localhost"),
        ("bench_mixed_A.pcap", 151, "graph.facebook.com"),
        ("bench_mixed_A.pcap", 26941, "quic.aiortc.org"),
        ("bench_mixed_A.pcap", 31907, "play.google.com"),
        ("bench_mixed_A.pcap", 37117, "classroom.google.com"),
        // Google QUIC: T050 (TLS) and Q050 (its CHLO's SNI tag, tshark's gquic.tag.sni).
        ("bench_mixed_A.pcap", 32490, "fonts.googleapis.com"),
        ("ndpi__gquic.pcap", 1, "www.gstatic.com"),
        // Q050's second CHLO, after the server's rejection, at crypto offset 1024.
        ("bench_mixed_A.pcap", 31932, "www.googletagmanager.com"),
    ] {
        let (p, _) = frame(file, n);
        assert_eq!(p.server_name.as_deref(), Some(name), "{file} frame {n}");
        assert!(p.layers.contains(Layer::Quic));
    }
    // Server Initials do not decrypt with the client's keys: no name.
    let (server, _) = frame("suri__quic-ietf.pcap", 2);
    assert_eq!(server.server_name, None);
}

/// Frame `n` (1-based) of `file`, parsed, with its bytes.
fn frame(file: &str, n: usize) -> (Packet, Vec<u8>) {
    let mut src = FileSource::open(pcaps_dir().join(file)).expect("open");
    let lt = src.linktype();
    let mut parser = Parser::new();
    for i in 1.. {
        match src.next() {
            Ok(Some(f)) => {
                let p = parser.parse(f.data, lt, f.wire_len);
                if i == n {
                    return (p, f.data.to_vec());
                }
            }
            other => panic!("{file} has no frame {n}: {other:?}"),
        }
    }
    unreachable!()
}

/// One focused test per rule of `shared/pcaps/README.md`.
mod rules {
    use super::*;

    /// Rule 1: IP fragments are reassembled. In `ndpi__dns_fragmented.pcap` a DNS
    /// response is split in two IPv4 fragments: frame 2 (MF set, offset 0) holds the UDP
    /// header and the start of the message, frame 3 (offset 185 × 8) the rest. As tshark
    /// shows them, frame 2 is its IP layer only and frame 3 carries the whole datagram:
    /// UDP, and the DNS response with every answer. Where the later fragments never come
    /// (fuzz capture frame 642), no frame has the datagram's UDP, as in tshark.
    #[test]
    fn rule1_ip_reassembly() {
        let (first, _) = frame("ndpi__dns_fragmented.pcap", 2);
        assert_eq!(first.layers.to_string(), "eth:ipv4");
        assert_eq!(first.transport, None);
        assert!(!first.malformed, "held for reassembly, not malformed");

        let (whole, bytes) = frame("ndpi__dns_fragmented.pcap", 3);
        // Fragment offset 185 (in 8-byte units), MF clear.
        assert_eq!(u16::from_be_bytes([bytes[20], bytes[21]]) & 0x1fff, 185);
        assert_eq!(whole.layers.to_string(), "eth:ipv4:udp:dns");
        assert_eq!(whole.transport, Some(Transport::Udp));
        assert_eq!(whole.dns, Some(DnsKind::Response));
        assert!(whole.resp_name.is_some());
        assert!(!whole.malformed);

        let (lone, _) = frame("ndpi__fuzz-2006-06-26-2594.pcap", 642);
        assert_eq!(lone.layers.to_string(), "eth:ipv4");
        assert_eq!(lone.qry_name, None);
    }

    /// Rule 2: TCP segments are not reassembled; a segment that starts a message is read
    /// from its 2-byte length prefix, and only its first message. Frame 4 of
    /// `suri__dns-tcp-multi-message.pcap` packs many queries in one segment: we report
    /// the first one's name. Segments that continue a message are not DNS.
    #[test]
    fn rule2_no_tcp_reassembly() {
        let (p, bytes) = frame("suri__dns-tcp-multi-message.pcap", 4);
        assert_eq!(p.layers.to_string(), "eth:ipv4:tcp:dns");
        assert_eq!(p.dns, Some(DnsKind::Query));
        assert_eq!(p.qry_name.as_deref(), Some("0.google.com"));
        assert_eq!(p.qry_name_more, None);
        // The segment does hold a second length-prefixed message after the first.
        let (start, end) = p.payload_range.expect("payload");
        let payload = &bytes[start..end];
        let first_len = usize::from(u16::from_be_bytes([payload[0], payload[1]]));
        assert!(
            payload.len() > 2 + first_len + 2 + 12,
            "more than one message"
        );

        // A segment without a message start (ACKs here) carries no DNS layer.
        let (ack, _) = frame("suri__dns-tcp-multi-message.pcap", 5);
        assert_eq!(ack.layers.to_string(), "eth:ipv4:tcp");
        assert_eq!(ack.dns, None);
    }

    /// Tunnels are decoded (rule 3 now covers only what is left: CAPWAP and packets
    /// quoted in ICMP errors). Frame 42720 of the bench mix is TCP inside GTP-U inside
    /// UDP: the packet is the inner TCP flow, the GTP endpoints are kept apart.
    #[test]
    fn tunnels_in_the_mix_are_decoded() {
        let (gtp, _) = frame("bench_mixed_A.pcap", 42720);
        assert_eq!(
            gtp.layers.to_string(),
            "eth:vlan:vlan:ipv4:udp:gtp:ipv4:tcp"
        );
        assert_eq!(gtp.transport, Some(Transport::Tcp));
        assert!(gtp.outer_src.is_some() && gtp.outer_src != gtp.src_addr);
        assert!(!gtp.malformed);
        // IPv4 inside IPv6 (frame 26073): the inner IPv4 flow, the IPv6 ends apart.
        let (v4in6, _) = frame("bench_mixed_A.pcap", 26073);
        assert!(
            v4in6.layers.to_string().starts_with("eth:ipv6:ipv4"),
            "{}",
            v4in6.layers
        );
        assert!(matches!(v4in6.src_addr, Some(std::net::IpAddr::V4(_))));
        assert!(matches!(v4in6.outer_src, Some(std::net::IpAddr::V6(_))));
        assert!(!v4in6.malformed);
    }

    /// Rule 4: the UDP length field is honoured. `tcpdump__dns-zlip-1.pcap` sends a
    /// compression-pointer bomb to port 53, but its UDP length is 8: no payload, so no
    /// DNS (tshark agrees). The bytes after the UDP length are not payload.
    #[test]
    fn rule4_udp_length_honoured() {
        let (p, bytes) = frame("tcpdump__dns-zlip-1.pcap", 1);
        assert_eq!(p.layers.to_string(), "eth:ipv4:udp");
        assert_eq!(p.dst_port, Some(53));
        let udp_len = u16::from_be_bytes([bytes[38], bytes[39]]);
        assert_eq!(udp_len, 8);
        let (start, end) = p.payload_range.expect("range");
        assert_eq!(start, end, "empty payload");
        assert!(
            bytes.len() > end + 12,
            "bytes follow that would parse as DNS"
        );
        assert_eq!(p.dns, None);
        assert!(!p.malformed);
    }

    /// Rule 5: QUIC by heuristics (see `src/quic.rs`). Google QUIC Q050 with the IETF
    /// header is QUIC (as tshark says), older gQUIC is not (tshark: `gquic`); version
    /// negotiation counts on port 443 but not elsewhere (an LLMNR query with id 0xa000
    /// looks like one); short headers count on a flow seen with a long header.
    #[test]
    fn rule5_quic_heuristics() {
        let (q050, _) = frame("ndpi__gquic.pcap", 1);
        assert_eq!(q050.layers.to_string(), "eth:ipv4:udp:quic");

        let old = read_file(&pcaps_dir().join("ndpi__http_ipv6.pcap"));
        assert!(old.frames.iter().all(|p| !p.layers.contains(Layer::Quic)));
        assert!(
            old.frames
                .iter()
                .any(|p| p.ports().any(|port| port == 443) && p.transport == Some(Transport::Udp))
        );

        let vn = read_file(&pcaps_dir().join("tcpdump__quic_vn_null.pcap"));
        assert!(vn.frames.iter().all(|p| p.layers.contains(Layer::Quic)));

        let (llmnr, _) = frame("bench_mixed_A.pcap", 15393);
        assert_eq!(llmnr.dst_port, Some(5355));
        assert!(!llmnr.layers.contains(Layer::Quic));

        // suri__quic-ietf.pcap: the short-header packets count through their flow.
        let ietf = read_file(&pcaps_dir().join("suri__quic-ietf.pcap"));
        assert!(ietf.frames.iter().all(|p| p.layers.contains(Layer::Quic)));
        // And a fresh parser fed only a short-header packet does not call it QUIC.
        let (short, bytes) = frame("suri__quic-ietf.pcap", 11);
        assert!(short.layers.contains(Layer::Quic));
        let alone = Parser::new().parse(&bytes, 1, bytes.len() as u32);
        assert!(!alone.layers.contains(Layer::Quic));
    }
}

/// TLS SNI over TCP on real captures against tshark, live (tshark runs here): per
/// frame, the server name we read from a ClientHello is the one tshark shows on that
/// frame (tshark does not dissect a retransmitted segment again, where we read the
/// name in every copy: those frames are left out), and every name tshark shows on a
/// TCP frame we show too — except where its ClientHello spans segments (tshark
/// reassembles; we read the first segment: those frames are counted and must stay few).
#[test]
fn tcp_tls_sni_matches_tshark() {
    for file in [
        "bench_mixed_A.pcap",
        "ndpi__http_ipv6.pcap",
        "ndpi__long_tls_certificate.pcap",
        "ndpi__ocs_rawip.pcap",
        "ndpi__tls_alert.pcap",
    ] {
        let path = pcaps_dir().join(file);
        let out = match std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-Y", "tls.handshake.extensions_server_name and tcp"])
            .args(["-T", "fields", "-e", "frame.number", "-e"])
            .arg("tls.handshake.extensions_server_name")
            .output()
        {
            Ok(out) => out,
            Err(e) => return portwatch_testkit::skip(&format!("tshark: {e}")),
        };
        let theirs: BTreeSet<(usize, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(n, name)| (n.parse().unwrap(), name.to_owned()))
            .collect();
        let retransmitted: BTreeSet<usize> = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args([
                "-Y",
                "tcp.analysis.retransmission or tcp.analysis.spurious_retransmission",
            ])
            .args(["-T", "fields", "-e", "frame.number"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect()
            })
            .unwrap();
        assert!(!theirs.is_empty(), "{file}: tshark shows no SNI");
        let counts = read_file(&path);
        let ours: BTreeSet<(usize, String)> = counts
            .frames
            .iter()
            .enumerate()
            .filter(|(_, p)| p.transport == Some(portwatch_capture::Transport::Tcp))
            .filter_map(|(i, p)| Some((i + 1, p.server_name.clone()?)))
            .filter(|(n, _)| !retransmitted.contains(n))
            .collect();
        let wrong: Vec<_> = ours.difference(&theirs).collect();
        assert!(
            wrong.is_empty(),
            "{file}: names tshark does not show: {wrong:?}"
        );
        let missed = theirs.difference(&ours).count();
        assert!(
            missed * 20 <= theirs.len(),
            "{file}: {missed} of {} names missed",
            theirs.len()
        );
    }
}
