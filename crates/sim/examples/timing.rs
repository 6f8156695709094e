//! Times `simulate` into a fresh database: `cargo run --release -p portwatch-sim
//! --example timing -- HOURS RATE [DB]` (DB defaults to a temporary file).

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hours: f64 = args.first().map_or(Ok(24.0), |s| s.parse())?;
    let rate: f64 = args.get(1).map_or(Ok(10.0), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let path = args
        .get(2)
        .map_or_else(|| dir.path().join("ports.db"), std::path::PathBuf::from);
    let mut conn = portwatch_store::Db::open(&path)?;
    let cfg = portwatch_sim::SimConfig {
        hours,
        rate,
        seed: 1,
        ..Default::default()
    };
    let t = Instant::now();
    let s = portwatch_sim::simulate(&mut conn, &cfg)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{hours} h at {rate} pps: {} rounds, {} packets in {secs:.2} s ({:.0} packets/s)",
        s.rounds,
        s.packets,
        s.packets as f64 / secs
    );
    Ok(())
}
