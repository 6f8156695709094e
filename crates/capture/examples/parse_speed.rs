//! Parser throughput on a capture held in memory (no libpcap in the timed loop):
//! `cargo run --release -p portwatch-capture --example parse_speed -- FILE [ROUNDS]`.

use std::time::Instant;

use portwatch_capture::{Error, FileSource, PacketSource, Parser};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: parse_speed FILE [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let mut src = match FileSource::open(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let lt = src.linktype();
    let mut frames = Vec::new();
    loop {
        match src.next() {
            Ok(Some(f)) => frames.push((f.data.to_vec(), f.wire_len)),
            Ok(None) => {}
            Err(Error::Eof) => break,
            Err(e) => {
                eprintln!("{e}");
                break;
            }
        }
    }
    let mut parser = Parser::new();
    let mut dns = 0usize;
    let start = Instant::now();
    for _ in 0..rounds {
        for (data, len) in &frames {
            let p = parser.parse(data, lt, *len);
            dns += usize::from(p.dns.is_some());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = frames.len() * rounds;
    println!(
        "{n} frames in {secs:.3} s: {:.2} M frames/s ({dns} DNS)",
        n as f64 / secs / 1e6
    );
}
