//! One scanner sample with 10,000 loopback TCP sockets held by 100 processes — the
//! design's target is ≤ 20 ms with pid attribution (owner map cached).
//!
//! The benchmark re-executes itself 100 times as holder processes (environment
//! variable `PORTWATCH_BENCH_HOLDER`): each opens a listener on 127.0.0.1 and 50
//! connected pairs through it (100 ESTABLISHED sockets + 1 LISTEN), says `ready`, and
//! holds them until its stdin closes. So the owner walk really crosses ~100
//! processes, as on a busy host. Results: BENCH.md.

// A benchmark stops at the first thing that goes wrong; it has no one to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::hint::black_box;

use criterion::Criterion;
use portwatch_scan::{BindProbe, ProcNet, SockDiag, SocketSource};

const HOLDER: &str = "PORTWATCH_BENCH_HOLDER";
const PROCESSES: usize = 100;
const PAIRS_PER_PROCESS: usize = 50;

fn holder() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut held = Vec::with_capacity(2 * PAIRS_PER_PROCESS);
    for _ in 0..PAIRS_PER_PROCESS {
        held.push(TcpStream::connect(addr)?);
        held.push(listener.accept()?.0);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    // Hold everything until the parent closes our stdin.
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    drop(held);
    Ok(())
}

/// Raises the soft fd limit to the hard one: 100 processes × 101 sockets fit in the
/// default 1024 per process, but a single-process variant would not.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

struct Fleet(Vec<Child>);

impl Fleet {
    fn spawn() -> Fleet {
        let exe = std::env::current_exe().expect("own executable");
        let mut children = Vec::new();
        for _ in 0..PROCESSES {
            let mut child = Command::new(&exe)
                .env(HOLDER, "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn holder");
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().expect("piped stdout"))
                .read_line(&mut line)
                .expect("holder ready");
            assert_eq!(line.trim(), "ready", "holder failed to open its sockets");
            children.push(child);
        }
        Fleet(children)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.0 {
            drop(child.stdin.take());
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// This process's user + system CPU time, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass; all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Minimum wall time and mean CPU time per call over `n` calls: on a 2-core machine
/// shared with other builds, criterion's wall-clock mean includes time spent waiting
/// for a core; these two figures do not (much).
fn quick(name: &str, n: u32, mut f: impl FnMut()) {
    let mut min = Duration::MAX;
    let cpu0 = cpu_seconds();
    for _ in 0..n {
        let t = std::time::Instant::now();
        f();
        min = min.min(t.elapsed());
    }
    let cpu = (cpu_seconds() - cpu0) / f64::from(n);
    eprintln!(
        "quick {name}: min wall {:.2} ms, mean CPU {:.2} ms over {n} calls",
        min.as_secs_f64() * 1e3,
        cpu * 1e3
    );
}

fn quick_figures() {
    let mut diag = SockDiag::new();
    diag.sample().expect("sample");
    assert!(
        diag.file_fallbacks().is_empty(),
        "netlink could not dump {:?}",
        diag.file_fallbacks()
    );
    quick("sockdiag_sample_cached_owners", 100, || {
        black_box(diag.sample().expect("sample"));
    });
    let mut diag_tables = SockDiag::new().without_owners();
    quick("sockdiag_tables_only", 100, || {
        black_box(diag_tables.read_tables().expect("tables"));
    });
    let mut cached = ProcNet::new();
    cached.sample().expect("sample");
    quick("procnet_sample_cached_owners", 100, || {
        black_box(cached.sample().expect("sample"));
    });
    let mut tables = ProcNet::new().without_owners();
    quick("procnet_tables_only", 100, || {
        black_box(tables.read_tables().expect("tables"));
    });
    let mut walker = ProcNet::new();
    quick("owner_walk_uncached", 30, || {
        walker.refresh_owners().expect("walk")
    });
    // What a user would run for the same answer, on the same sockets: `ss`, a child
    // process each time (so only its wall time is ours to see).
    for args in [&["-tuan"][..], &["-tuanp"][..]] {
        let ss = || Command::new("ss").args(args).stdout(Stdio::null()).status();
        if !ss().is_ok_and(|s| s.success()) {
            eprintln!("quick ss {}: ss not found or failed", args.join(" "));
            continue;
        }
        let n = 20;
        let (mut min, mut sum) = (Duration::MAX, Duration::ZERO);
        for _ in 0..n {
            let t = std::time::Instant::now();
            black_box(ss().expect("ss"));
            min = min.min(t.elapsed());
            sum += t.elapsed();
        }
        eprintln!(
            "quick ss {}: min wall {:.2} ms, mean wall {:.2} ms over {n} runs",
            args.join(" "),
            min.as_secs_f64() * 1e3,
            sum.as_secs_f64() * 1e3 / f64::from(n)
        );
    }
}

fn bench_sample(c: &mut Criterion) {
    let mut warm = ProcNet::new();
    let sample = warm.sample().expect("sample");
    let ours = sample
        .iter()
        .filter(|s| s.pid.is_some() && s.local_addr.is_loopback())
        .count();
    eprintln!(
        "sample: {} sockets, {} loopback ones with an owner, {} owner walk(s)",
        sample.len(),
        ours,
        warm.owner_refreshes()
    );
    assert!(ours >= PROCESSES * (2 * PAIRS_PER_PROCESS + 1));

    let mut g = c.benchmark_group("scan_10k_sockets_100_processes");
    g.measurement_time(Duration::from_secs(10));
    let mut diag = SockDiag::new();
    diag.sample().expect("sample");
    g.bench_function("sockdiag_sample_cached_owners", |b| {
        b.iter(|| black_box(diag.sample().expect("sample")))
    });
    assert_eq!(
        diag.owner_refreshes(),
        1,
        "the cached sample walked /proc again"
    );
    // Beside it, the same without the other network namespaces: what finding them
    // (one stat of /proc/PID/ns/net per process) and reading theirs costs.
    let mut own = SockDiag::new().own_namespace_only();
    own.sample().expect("sample");
    g.bench_function("sockdiag_sample_own_namespace_only", |b| {
        b.iter(|| black_box(own.sample().expect("sample")))
    });
    g.bench_function("procnet_sample_cached_owners", |b| {
        b.iter(|| black_box(warm.sample().expect("sample")))
    });
    let refreshes = warm.owner_refreshes();
    let mut tables = ProcNet::new().without_owners();
    g.bench_function("procnet_tables_only", |b| {
        b.iter(|| black_box(tables.read_tables().expect("tables")))
    });
    let mut walker = ProcNet::new();
    g.bench_function("owner_walk_uncached", |b| {
        b.iter(|| walker.refresh_owners().expect("walk"))
    });
    g.finish();
    eprintln!(
        "owner walks during the cached-sample benchmark: {}",
        warm.owner_refreshes() - refreshes
    );
}

fn bench_bind(c: &mut Criterion) {
    let mut g = c.benchmark_group("bind_probe");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let mut probe = BindProbe::new();
    g.bench_function("ports_1_65535_tcp_udp_v4_v6", |b| {
        b.iter(|| black_box(probe.sample().expect("probe")))
    });
    g.finish();
}

fn main() {
    if std::env::var_os(HOLDER).is_some() {
        if let Err(e) = holder() {
            eprintln!("holder: {e}");
            std::process::exit(1);
        }
        return;
    }
    raise_nofile();
    let fleet = Fleet::spawn();
    quick_figures();
    let mut c = Criterion::default().configure_from_args();
    bench_sample(&mut c);
    bench_bind(&mut c);
    c.final_summary();
    drop(fleet);
}
