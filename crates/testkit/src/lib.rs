//! Helpers the binaries' end-to-end tests share: the shared captures, running a binary
//! on a database, queries on a database file, a tmpfs that fills up on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Held for reading by tests that take a lock in this process, for writing while one
/// starts a child.
///
/// A child starts with a copy of every descriptor of the test binary and closes them
/// (close-on-exec) only when it execs. A `flock` belongs to the open file, so for that
/// moment the child holds the lock of whatever another test thread has locked, and
/// that thread's next run after dropping it finds it "held" (seen once in CI: the
/// detector's minute loop told its model directory was held by a detector). Spawning
/// is brief; the in-process runs wait for it and it waits for them.
static SPAWNING: RwLock<()> = RwLock::new(());

/// Runs `f`, which takes and drops a lock in this process (the detector's `run_once`
/// locks its model directory), while no test of this binary starts a child.
pub fn locking<T>(f: impl FnOnce() -> T) -> T {
    let _no_spawn = SPAWNING.read().unwrap_or_else(|e| e.into_inner());
    f()
}

/// Starts `c` while no test of this binary is inside [`locking`]: how every helper
/// here starts a process, and how a test starts one it keeps running.
pub fn spawn(c: &mut Command) -> std::io::Result<Child> {
    let _alone = SPAWNING.write().unwrap_or_else(|e| e.into_inner());
    c.spawn()
}

/// [`Command::status`], started by [`spawn`].
pub fn status(c: &mut Command) -> std::io::Result<std::process::ExitStatus> {
    spawn(c)?.wait()
}

/// [`Command::output`], started by [`spawn`].
pub fn output(c: &mut Command) -> std::io::Result<Output> {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn(c)?.wait_with_output()
}

/// The reference captures with tshark's counts: `$PORTWATCH_PCAPS`, else the
/// captures' directory beside the checkout. Missing is a failure: CI has them.
pub fn pcaps_dir() -> PathBuf {
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

/// `bin --db DB`, with the environment variables that would choose other files
/// removed.
pub fn command(bin: &str, db: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--db").arg(db);
    c.env_remove("PORTWATCH_DB")
        .env_remove("PORTWATCH_MODEL_DIR");
    c
}

pub fn run(mut c: Command) -> Output {
    output(&mut c).expect("binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn query_i64(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of every row `sql` returns, as text: what a failing assertion shows.
pub fn query_strings(db: &Path, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Waits (up to 20 s) until `sql` counts at least one row in `db`: how a test knows a
/// collector has opened its round and committed a first sample.
pub fn wait_for(db: &Path, sql: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let n = rusqlite::Connection::open(db)
            .and_then(|conn| conn.query_row(sql, [], |r| r.get::<_, i64>(0)));
        if matches!(n, Ok(n) if n > 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {sql}");
}

/// A small tmpfs mounted for one test (a full disk on demand), unmounted when dropped.
/// Mounting needs root, which CI has.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = status(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(dir),
        )
        .unwrap();
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Tmpfs(dir.to_path_buf())
    }

    /// Grows or shrinks it (never below what it holds).
    pub fn resize(&self, size: &str) {
        let ok = status(
            Command::new("mount")
                .args(["-o", &format!("remount,size={size}")])
                .arg(&self.0),
        )
        .unwrap();
        assert!(ok.success(), "remount {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = status(Command::new("umount").arg(&self.0));
    }
}

/// The unprivileged user the hostile-user tests plant files as.
pub const NOBODY: u32 = 65534;

/// Runs `argv` as `nobody` (setpriv drops uid, gid and groups): the planting step of a
/// test where another local user prepares a trap for root. Fails the test if it fails.
pub fn as_nobody(argv: &[&str]) {
    let out = output(
        Command::new("setpriv")
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "--",
            ])
            .args(argv),
    )
    .expect("setpriv runs");
    assert!(
        out.status.success(),
        "as nobody: {argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory anyone may write in, like `/tmp` (mode 1777), under `tmp` (opened to
/// others so that they can reach it).
pub fn world_writable_dir(tmp: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ww = tmp.join("ww");
    std::fs::create_dir(&ww).unwrap();
    std::fs::set_permissions(&ww, std::fs::Permissions::from_mode(0o1777)).unwrap();
    ww
}

/// The variable that lets a test whose precondition is missing here (root, CAP_NET_RAW,
/// tshark, setpriv able to run the test binary as nobody) pass as skipped. Unset, as in
/// CI, a missing precondition fails the test: a skip CI cannot see is a test that can
/// pass without testing.
pub const ALLOW_SKIP: &str = "PORTWATCH_TEST_ALLOW_SKIP";

/// Fails with `reason`, or only says it when [`ALLOW_SKIP`] is `1`.
pub fn skip(reason: &str) {
    if std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1") {
        eprintln!("skipped ({ALLOW_SKIP}=1): {reason}");
    } else {
        panic!("{reason} (set {ALLOW_SKIP}=1 to skip this test instead)");
    }
}

/// What a test re-run as another user prints once its body has passed: the parent
/// checks for it, since a child that ran no test (a renamed one) also exits 0.
pub const CHILD_RAN: &str = "portwatch-test-child-ran";

/// Re-runs the current test binary's test `name` as `nobody` (no groups, no inherited
/// capabilities) with `env` set, and fails unless the child ran it to the end (its
/// body prints [`CHILD_RAN`]). Being unable to re-run is a failure too, unless skips
/// are allowed.
pub fn rerun_as_nobody(name: &str, env: (&str, &str)) {
    let out = output(
        Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(std::env::current_exe().expect("test binary"))
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(env.0, env.1),
    );
    let out = match out {
        Ok(out) => out,
        Err(e) => return skip(&format!("setpriv cannot run: {e}")),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() == Some(101) {
        panic!("the run as nobody failed:\n{said}");
    }
    if !out.status.success() {
        // E.g. a checkout directory nobody may enter.
        return skip(&format!(
            "could not run the test binary as nobody ({}): {said}",
            out.status
        ));
    }
    assert!(
        said.contains(CHILD_RAN),
        "the run as nobody did not run {name}:\n{said}"
    );
}

/// Runs the shell command `cmd` on a pseudo-terminal (util-linux `script`), as a person
/// at a terminal would: what it drew there (stdout and stderr together) comes back as
/// the output's stdout.
pub fn on_terminal(cmd: &str) -> Output {
    output(Command::new("script").args(["-qec", cmd, "/dev/null"])).expect("script (util-linux)")
}

/// Sends SIGTERM to `child` (through kill(1), as an operator or systemd would).
pub fn sigterm(child: &std::process::Child) {
    let out =
        output(Command::new("kill").args(["-TERM", &child.id().to_string()])).expect("kill runs");
    assert!(out.status.success(), "kill -TERM {}", child.id());
}

/// A network namespace the test creates (`ip netns add`, or `unshare --net`), with a
/// Python process inside that listens on 127.0.0.1:`port` and holds one connection to
/// itself; both removed on drop. `None` when not root (only root enters namespaces):
/// the caller says so and checks nothing.
pub struct Netns {
    /// The `ip netns` name; empty for an unshared namespace, which has none.
    pub name: String,
    tag: String,
    /// The process inside (it listens and holds both ends).
    pub pid: u32,
    /// The namespace's nsfs inode, as `rounds_ports.netns` stores it.
    pub inode: u64,
    child: std::process::Child,
}

impl Netns {
    pub fn with_listener(tag: &str, port: u16) -> Option<Netns> {
        Self::start(tag, port, None)
    }

    /// The same in a namespace made by `unshare --net`, as container runtimes make
    /// theirs: no name under `/run/netns`, found only through its process's
    /// `/proc/PID/ns/net`, and gone with the process.
    pub fn unshared_with_listener(port: u16) -> Option<Netns> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: making a network namespace needs root");
            return None;
        }
        let script = listener_script("127.0.0.1", port);
        let child = spawn(
            Command::new("unshare")
                .args([
                    "--net",
                    "sh",
                    "-c",
                    "ip link set lo up && exec python3 -c \"$0\"",
                ])
                .arg(&script)
                .stdout(Stdio::piped()),
        )
        .expect("unshare");
        let (child, inode) = ready(child, |pid| format!("/proc/{pid}/ns/net"));
        Some(Netns {
            name: String::new(),
            tag: String::new(),
            pid: child.id(),
            inode,
            child,
        })
    }

    /// The same, with a veth link to the host: `10.231.NET.1/30` on the host's end
    /// (named `pw{tag}h`), `10.231.NET.2/30` inside, and the listener on every address
    /// of the namespace — a container on a bridge, as the host sees it.
    pub fn with_veth_listener(tag: &str, port: u16, net: u8) -> Option<Netns> {
        Self::start(tag, port, Some(net))
    }

    /// The host end of the veth link.
    pub fn host_link(&self) -> String {
        format!("pw{}h", self.tag)
    }

    fn start(tag: &str, port: u16, veth: Option<u8>) -> Option<Netns> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: entering a network namespace needs root");
            return None;
        }
        let name = format!("pw{tag}{}", std::process::id());
        let ip = |args: &[&str]| {
            let st = status(Command::new("ip").args(args)).expect("ip");
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let mut bind = "127.0.0.1";
        if let Some(net) = veth {
            let (host, inside) = (format!("pw{tag}h"), format!("pw{tag}n"));
            let _ = status(Command::new("ip").args(["link", "del", &host]));
            ip(&[
                "link", "add", &host, "type", "veth", "peer", "name", &inside,
            ]);
            ip(&["link", "set", &inside, "netns", &name]);
            ip(&["addr", "add", &format!("10.231.{net}.1/30"), "dev", &host]);
            ip(&["link", "set", &host, "up"]);
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("10.231.{net}.2/30"),
                "dev",
                &inside,
            ]);
            ip(&["-n", &name, "link", "set", &inside, "up"]);
            bind = "0.0.0.0";
        }
        let script = listener_script(bind, port);
        let child = spawn(
            Command::new("ip")
                .args(["netns", "exec", &name, "python3", "-c", &script])
                .stdout(Stdio::piped()),
        )
        .expect("ip netns exec");
        let (child, inode) = ready(child, |_| format!("/run/netns/{name}"));
        Some(Netns {
            name,
            tag: tag.to_string(),
            pid: child.id(),
            inode,
            child,
        })
    }
}

/// Python that listens on `bind`:`port`, connects to itself, says `ready` and waits.
fn listener_script(bind: &str, port: u16) -> String {
    format!(
        "import socket, time\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{bind}', {port})); s.listen()\n\
         c = socket.create_connection(('127.0.0.1', {port})); a, _ = s.accept()\n\
         print('ready', flush=True); time.sleep(120)\n"
    )
}

/// Waits for the listener's `ready` line; returns it with the inode of the namespace
/// file `ns_file(pid)` names.
fn ready(
    mut child: std::process::Child,
    ns_file: impl Fn(u32) -> String,
) -> (std::process::Child, u64) {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::MetadataExt;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");
    let file = ns_file(child.id());
    let inode = std::fs::metadata(&file).expect(&file).ino();
    (child, inode)
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.name.is_empty() {
            let _ = status(Command::new("ip").args(["netns", "del", &self.name]));
        }
    }
}
