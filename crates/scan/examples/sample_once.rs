//! Times the scanner's sample as the collector takes it: `SockDiag` with owners, warmed
//! up (its owner map built), then `N` samples; prints the sockets seen, the namespaces
//! read and the minimum and mean wall time. For `benches/netns.sh`, which runs it on a
//! host with many network namespaces beside `ss -tuanp` in each.
//! Usage: cargo run --release -p portwatch-scan --example sample_once [N] [--own-namespace-only]

use std::time::{Duration, Instant};

use portwatch_scan::{SockDiag, SocketSource};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(50)
        .max(1);
    let mut scan = if args.iter().any(|a| a == "--own-namespace-only") {
        SockDiag::new().own_namespace_only()
    } else {
        SockDiag::new()
    };
    let first = scan.sample()?;
    let mut times = Vec::with_capacity(n);
    let mut sockets = first.len();
    for _ in 0..n {
        let t = Instant::now();
        sockets = scan.sample()?.len();
        times.push(t.elapsed());
    }
    let min = times.iter().min().copied().unwrap_or_default();
    let mean = times.iter().sum::<Duration>() / n as u32;
    let owned = first.iter().filter(|s| s.pid.is_some()).count();
    println!(
        "{sockets} sockets ({owned} with an owner in the first sample), {} other namespaces: \
         min {:.2} ms, mean {:.2} ms over {n} samples",
        scan.other_namespaces(),
        min.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3
    );
    Ok(())
}
