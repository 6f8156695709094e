//! Sends UDP datagrams to a loopback port at a fixed rate, for the live-capture
//! benchmark (BENCHMARKS.md): `loopgen PPS SECONDS [PORT] [SIZE]`.
//! Prints how many datagrams it sent, so the stored count can be compared.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (pps, secs, port, size) = (arg(1, 100_000), arg(2, 10), arg(3, 9999), arg(4, 64));
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let payload = vec![0x5au8; size as usize];
    let total = pps * secs;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        // Keep to the schedule in 1 ms steps: send what is due, then wait.
        let due = ((start.elapsed().as_secs_f64() * pps as f64) as u64).min(total);
        while sent < due {
            // A full socket buffer on loopback is not expected; count only what went.
            if sock.send_to(&payload, ("127.0.0.1", port as u16)).is_ok() {
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    println!("{sent} datagrams in {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}
