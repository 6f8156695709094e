//! Prints one line per frame of a capture file as the parser sees it, for comparing with
//! `tshark -r FILE -T fields ...` by hand:
//! `cargo run -p portwatch-capture --example dump -- FILE`.

use portwatch_capture::{Error, FileSource, PacketSource, Parser};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump FILE");
        std::process::exit(2);
    };
    let mut src = match FileSource::open(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let lt = src.linktype();
    let mut parser = Parser::new();
    let mut n = 0u64;
    loop {
        match src.next() {
            Ok(Some(f)) => {
                n += 1;
                let p = parser.parse(f.data, lt, f.wire_len);
                println!(
                    "{n}\t{}\t{}\t{:?}\t{:?}\t{:?}\t{:?}\t{}\t{}\t{}\t{}",
                    p.layers,
                    f.wire_len,
                    p.src_port,
                    p.dst_port,
                    p.dns,
                    p.tcp_flags,
                    p.qry_name.as_deref().unwrap_or("-"),
                    p.resp_name.as_deref().unwrap_or("-"),
                    p.server_name.as_deref().unwrap_or("-"),
                    if p.malformed { "MALFORMED" } else { "" },
                );
            }
            Ok(None) => continue,
            Err(Error::Eof) => break,
            Err(e) => {
                eprintln!("{e}");
                break;
            }
        }
    }
}
