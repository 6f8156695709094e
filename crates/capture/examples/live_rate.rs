//! Live capture under load on loopback: sends UDP datagrams at a fixed rate from a
//! second thread while capturing and parsing them, then prints libpcap's counters.
//! `cargo run --release -p portwatch-capture --example live_rate -- [PPS] [SECONDS]`
//! (needs CAP_NET_RAW).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use portwatch_capture::{LiveConfig, LiveSource, PacketSource, Parser};

fn main() {
    let mut args = std::env::args().skip(1);
    let pps: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let Ok(rx) = UdpSocket::bind("127.0.0.1:0") else {
        eprintln!("cannot bind a UDP socket");
        std::process::exit(1);
    };
    let port = rx.local_addr().map(|a| a.port()).unwrap_or_default();
    let config = LiveConfig {
        interface: Some("lo".into()),
        filter: Some(format!("udp and dst port {port}")),
        ..LiveConfig::default()
    };
    let mut src = match LiveSource::open(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let total = pps * secs;
    let sender = std::thread::spawn(move || {
        let Ok(tx) = UdpSocket::bind("127.0.0.1:0") else {
            return 0u64;
        };
        let start = Instant::now();
        let mut sent = 0u64;
        let payload = [0x5a; 64];
        while sent < total {
            // Send in small bursts, paced to the target rate.
            let due = start.elapsed().as_secs_f64() * pps as f64;
            while (sent as f64) < due && sent < total {
                if tx.send_to(&payload, ("127.0.0.1", port)).is_ok() {
                    sent += 1;
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        sent
    });
    let lt = src.linktype();
    let mut parser = Parser::new();
    let mut got = 0u64;
    let deadline = Instant::now() + Duration::from_secs(secs + 2);
    let mut drain = [0u8; 128];
    let _ = rx.set_nonblocking(true);
    while got < total && Instant::now() < deadline {
        while rx.recv(&mut drain).is_ok() {}
        if let Ok(Some(f)) = src.next() {
            let p = parser.parse(f.data, lt, f.wire_len);
            got += u64::from(p.dst_port == Some(port));
        }
    }
    let sent = sender.join().unwrap_or_default();
    let stats = src.stats().unwrap_or_default();
    println!(
        "sent {sent}, captured and parsed {got}, libpcap received {} dropped {} if_dropped {} \
         (buffer {} MiB)",
        stats.received,
        stats.dropped,
        stats.if_dropped,
        config.buffer_size >> 20
    );
}
