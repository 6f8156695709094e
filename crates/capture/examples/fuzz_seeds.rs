//! Writes seed inputs for the fuzz targets (`fuzz/`) from real captures: every frame
//! (its link type's index in `fuzz::LINKTYPES` first), the UDP/53 payloads (DNS), the
//! TCP/443 and UDP/443 payloads (TLS, QUIC), and the small capture files themselves.
//! Distinct inputs only, at most `PER_FILE` frames of each kind per capture.
//! `cargo run -p portwatch-capture --example fuzz_seeds -- ../shared/pcaps fuzz/seeds`

use std::collections::HashSet;
use std::path::Path;

use portwatch_capture::fuzz::LINKTYPES;
use portwatch_capture::{FileSource, PacketSource, Parser, Transport};

const PER_FILE: usize = 200;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to] = args.as_slice() else {
        eprintln!("usage: fuzz_seeds PCAP_DIR OUT_DIR");
        std::process::exit(2);
    };
    let mut seen = HashSet::new();
    let mut write = |kind: &str, bytes: &[u8]| -> std::io::Result<()> {
        if bytes.is_empty() || !seen.insert((kind.to_owned(), bytes.to_vec())) {
            return Ok(());
        }
        let dir = Path::new(to).join(kind);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{:05}", seen.len())), bytes)
    };
    let mut files: Vec<_> = std::fs::read_dir(from)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path)?;
        if bytes.len() <= 64 * 1024 {
            write("file", &bytes)?;
        }
        let Ok(mut src) = FileSource::open(&path) else {
            continue;
        };
        let lt = src.linktype();
        let Some(pick) = LINKTYPES.iter().position(|&l| l == lt) else {
            continue;
        };
        let mut parser = Parser::new();
        let mut counts = [0usize; 4];
        while let Ok(Some(f)) = src.next() {
            let p = parser.parse(f.data, lt, f.wire_len);
            let payload = p.payload_range.map(|(a, b)| &f.data[a..b]);
            let kind = match (p.transport, p.src_port, p.dst_port, payload) {
                (Some(Transport::Udp), Some(53), _, Some(pl))
                | (Some(Transport::Udp), _, Some(53), Some(pl)) => Some((1, "dns", pl)),
                (Some(Transport::Tcp), _, Some(443), Some(pl)) if pl.first() == Some(&0x16) => {
                    Some((2, "tls", pl))
                }
                (Some(Transport::Udp), _, Some(443), Some(pl)) => Some((3, "quic", pl)),
                _ => None,
            };
            if let Some((i, kind, pl)) = kind
                && counts[i] < PER_FILE
            {
                counts[i] += 1;
                write(kind, pl)?;
            }
            if counts[0] < PER_FILE {
                counts[0] += 1;
                let mut seed = vec![pick as u8];
                seed.extend_from_slice(f.data);
                write("frame", &seed)?;
            }
        }
    }
    Ok(())
}
