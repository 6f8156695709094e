//! Network namespaces: which exist on the host (found through `/proc/PID/ns/net`, one
//! representative process each), a netlink socket inside each (made on a short-lived
//! helper thread that enters the namespace with `setns`, so the scanner's own thread
//! never changes namespace), and the container a process runs in, named from its
//! cgroup (Docker, containerd/Kubernetes, Podman) without asking any daemon.
//!
//! A container's services listen in its own namespace: without this, they do not exist
//! for a scanner that reads only the tables of its own.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The network namespace (nsfs inode) of process `pid` under `root` ("self" works).
pub fn netns_of(root: &Path, pid: &str) -> Option<u64> {
    fs::metadata(root.join(pid).join("ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Every network namespace some process under `root` is in, with the lowest pid in
/// it (the one whose `ns/net` is entered to read it, and whose cgroup names its
/// container).
pub fn namespaces(root: &Path) -> BTreeMap<u64, u32> {
    NamespaceCache::default().scan(root)
}

/// [`namespaces`] for a scanner that asks every few seconds: a process's namespace is
/// looked up when the process is new, and every process's again every
/// [`NamespaceCache::FULL_EVERY`] scans (a process can move with `setns`, a pid can be
/// reused), so a sample costs a directory listing, not a `stat` per process.
#[derive(Debug, Default)]
pub struct NamespaceCache {
    by_pid: HashMap<u32, u64>,
    scans: u64,
}

impl NamespaceCache {
    /// Scans between full lookups: a minute at the default 5 s sample interval.
    pub const FULL_EVERY: u64 = 12;

    pub fn scan(&mut self, root: &Path) -> BTreeMap<u64, u32> {
        let full = self.scans.is_multiple_of(Self::FULL_EVERY);
        self.scans += 1;
        let mut out = BTreeMap::new();
        let Ok(dir) = fs::read_dir(root) else {
            self.by_pid.clear();
            return out;
        };
        let mut seen = HashMap::with_capacity(self.by_pid.len());
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let ns = match self.by_pid.get(&pid) {
                Some(&ns) if !full => Some(ns),
                _ => netns_of(root, &pid.to_string()),
            };
            if let Some(ns) = ns {
                seen.insert(pid, ns);
                let first = out.entry(ns).or_insert(pid);
                *first = (*first).min(pid);
            }
        }
        self.by_pid = seen;
        out
    }
}

/// Runs `make` inside the network namespace of `/proc/PID/ns/net` (`ns_path`) on a
/// helper thread and returns what it made: a socket made there stays bound to that
/// namespace wherever it is used. Needs CAP_SYS_ADMIN (root).
pub fn inside<T: Send + 'static>(
    ns_path: &Path,
    make: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    // Opened by the caller's thread: the path is checked before any thread starts, and
    // a process that exits meanwhile gives a clean ENOENT.
    let ns: OwnedFd = fs::File::open(ns_path)?.into();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            // SAFETY: setns(2) on a descriptor we own, for this thread only (the
            // thread ends right after, so it never runs anything else in there).
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            make()
        })?
        .join()
        .map_err(|_| io::Error::other("netns helper thread panicked"))?
}

/// Where container runtimes keep the state that names a container, read without a
/// call to any daemon (a daemon's socket is not something a root process should talk
/// to on a local user's say-so, and it may be down).
#[derive(Clone, Debug)]
pub struct Runtimes {
    /// Docker's root: `containers/ID/config.v2.json` has `"Name":"/web"`.
    pub docker: PathBuf,
    /// Podman's (root) storage: `overlay-containers/containers.json` lists each
    /// container's `id` and `names`.
    pub podman: PathBuf,
    /// The kubelet's `/var/log/containers`: a link `POD_NAMESPACE_CONTAINER-ID.log` for
    /// every container of a pod on the node (containerd or CRI-O).
    pub kube_logs: PathBuf,
}

impl Default for Runtimes {
    fn default() -> Self {
        Runtimes {
            docker: PathBuf::from("/var/lib/docker"),
            podman: PathBuf::from("/var/lib/containers/storage"),
            kube_logs: PathBuf::from("/var/log/containers"),
        }
    }
}

/// Largest runtime state file read for a name (Podman's list of every container).
const MAX_STATE_FILE: u64 = 16 << 20;

/// The container process `pid` runs in, from `root/PID/cgroup`: `docker:ID`,
/// `containerd:ID` (Kubernetes pods through containerd or CRI-O), `podman:ID`, with
/// the 12-character short id as `docker ps` prints it, and `/NAME` after it when the
/// runtime's state on disk names it ([`Runtimes`]; a pod's container as
/// `NAMESPACE/POD/CONTAINER`). `None` for a process outside any container.
pub fn container_of(root: &Path, pid: u32, runtimes: &Runtimes) -> Option<String> {
    let text = fs::read_to_string(root.join(pid.to_string()).join("cgroup")).ok()?;
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2)?;
        if let Some((runtime, id)) = container_in_cgroup(path) {
            let short = &id[..12];
            let name = match runtime {
                "docker" => docker_name(&runtimes.docker, id),
                "podman" => podman_name(&runtimes.podman, id),
                _ => kube_name(&runtimes.kube_logs, id),
            }
            .filter(|n| !n.is_empty() && n.len() <= 253 && n.bytes().all(|b| b.is_ascii_graphic()));
            return Some(match name {
                Some(n) => format!("{runtime}:{short}/{n}"),
                None => format!("{runtime}:{short}"),
            });
        }
    }
    None
}

/// A runtime's state file, if it is a regular file of a sane size (not a FIFO a local
/// user could make a reader hang on, not a gigabyte).
fn read_state(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_STATE_FILE {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_STATE_FILE).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The runtime and the 64-hex-digit container id in a cgroup path: a systemd scope
/// (`docker-ID.scope`, `cri-containerd-ID.scope`, `crio-ID.scope`, `libpod-ID.scope`)
/// or cgroup v1's `/docker/ID`. The last component naming one wins.
fn container_in_cgroup(path: &str) -> Option<(&'static str, &str)> {
    const SCOPES: [(&str, &str); 4] = [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "containerd"),
        ("libpod-", "podman"),
    ];
    let is_id = |id: &str| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let mut found = None;
    let mut previous = "";
    for part in path.split('/') {
        let scoped = SCOPES.iter().find_map(|(prefix, runtime)| {
            let rest = part.strip_prefix(prefix)?;
            Some((*runtime, rest.strip_suffix(".scope").unwrap_or(rest)))
        });
        let candidate = scoped.or((previous == "docker").then_some(("docker", part)));
        if let Some((runtime, id)) = candidate
            && is_id(id)
        {
            found = Some((runtime, id));
        }
        previous = part;
    }
    found
}

/// A Docker container's name from its state on disk (`"Name":"/web"` in
/// `containers/ID/config.v2.json`), without the leading `/`.
fn docker_name(docker_root: &Path, id: &str) -> Option<String> {
    let text = read_state(
        &docker_root
            .join("containers")
            .join(id)
            .join("config.v2.json"),
    )?;
    let name = quoted_after(&text, "\"Name\":\"")?;
    Some(name.strip_prefix('/').unwrap_or(name).to_string())
}

/// A Podman container's first name, from the entry with its `"id"` in
/// `overlay-containers/containers.json` (its `"names":["web"]`, before the next entry).
fn podman_name(podman_root: &Path, id: &str) -> Option<String> {
    let text = read_state(&podman_root.join("overlay-containers/containers.json"))?;
    let entry = &text[text.find(&format!("\"id\":\"{id}\""))?..];
    let entry = match entry[1..].find("\"id\":\"") {
        Some(end) => &entry[..=end],
        None => entry,
    };
    quoted_after(entry, "\"names\":[\"").map(str::to_string)
}

/// A pod's container, as `NAMESPACE/POD/CONTAINER`, from the kubelet's log link
/// `POD_NAMESPACE_CONTAINER-ID.log` (none of the three may hold `_`).
fn kube_name(kube_logs: &Path, id: &str) -> Option<String> {
    let suffix = format!("-{id}.log");
    fs::read_dir(kube_logs).ok()?.flatten().find_map(|e| {
        let file = e.file_name();
        let stem = file.to_str()?.strip_suffix(&suffix)?;
        let mut parts = stem.splitn(3, '_');
        let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
        Some(format!("{namespace}/{pod}/{container}"))
    })
}

/// The JSON string that follows `key` in `text` (up to its closing quote).
fn quoted_after<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let rest = &text[text.find(key)? + key.len()..];
    Some(&rest[..rest.find('"')?])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

    #[test]
    fn cgroup_paths_of_each_runtime_name_the_container() {
        for (path, runtime) in [
            (format!("/system.slice/docker-{ID}.scope"), "docker"),
            (format!("/docker/{ID}"), "docker"),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope"
                ),
                "containerd",
            ),
            (
                format!("/kubepods/besteffort/pod1/crio-{ID}.scope"),
                "containerd",
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman",
            ),
        ] {
            assert_eq!(container_in_cgroup(&path), Some((runtime, ID)), "{path}");
        }
        for path in [
            "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/docker.service",
            "/docker/notanid",
            "/",
        ] {
            assert_eq!(container_in_cgroup(path), None, "{path}");
        }
    }

    /// A fake `/proc` and Docker state: the process in the container is named with
    /// its short id and name, the one outside is in none.
    #[test]
    fn a_fake_cgroup_tree_names_a_container() {
        let tmp = tempfile::tempdir().unwrap();
        let proc = tmp.path().join("proc");
        let docker = tmp.path().join("docker");
        fs::create_dir_all(proc.join("4242")).unwrap();
        fs::create_dir_all(proc.join("1")).unwrap();
        fs::write(
            proc.join("4242/cgroup"),
            format!("0::/system.slice/docker-{ID}.scope\n"),
        )
        .unwrap();
        fs::write(proc.join("1/cgroup"), "0::/init.scope\n").unwrap();
        let runtimes = Runtimes {
            docker: docker.clone(),
            podman: tmp.path().join("podman"),
            kube_logs: tmp.path().join("kube"),
        };
        assert_eq!(
            container_of(&proc, 4242, &runtimes).as_deref(),
            Some("docker:3f4e1c2a9b8d")
        );
        fs::create_dir_all(docker.join("containers").join(ID)).unwrap();
        fs::write(
            docker.join("containers").join(ID).join("config.v2.json"),
            r#"{"ID":"x","Name":"/web-1","State":{}}"#,
        )
        .unwrap();
        assert_eq!(
            container_of(&proc, 4242, &runtimes).as_deref(),
            Some("docker:3f4e1c2a9b8d/web-1")
        );
        assert_eq!(container_of(&proc, 1, &runtimes), None);
        assert_eq!(container_of(&proc, 999, &runtimes), None, "no such process");

        // Podman: the entry with the id, not the one before or after it.
        const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000000";
        fs::create_dir_all(proc.join("77")).unwrap();
        fs::write(
            proc.join("77/cgroup"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
        )
        .unwrap();
        assert_eq!(
            container_of(&proc, 77, &runtimes).as_deref(),
            Some("podman:3f4e1c2a9b8d")
        );
        let list = runtimes.podman.join("overlay-containers");
        fs::create_dir_all(&list).unwrap();
        fs::write(
            list.join("containers.json"),
            format!(
                r#"[{{"id":"{OTHER}","names":["db"],"image":"x"}},{{"id":"{ID}","names":["cache","alias"],"image":"y"}},{{"id":"1","names":["z"]}}]"#
            ),
        )
        .unwrap();
        assert_eq!(
            container_of(&proc, 77, &runtimes).as_deref(),
            Some("podman:3f4e1c2a9b8d/cache")
        );

        // A pod's container through containerd, named from the kubelet's log link.
        fs::create_dir_all(proc.join("88")).unwrap();
        fs::write(
            proc.join("88/cgroup"),
            format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope\n"),
        )
        .unwrap();
        assert_eq!(
            container_of(&proc, 88, &runtimes).as_deref(),
            Some("containerd:3f4e1c2a9b8d")
        );
        fs::create_dir_all(&runtimes.kube_logs).unwrap();
        for f in [
            format!("web-7d9f_shop_nginx-{OTHER}.log"),
            format!("web-7d9f_shop_php-fpm-{ID}.log"),
        ] {
            fs::write(runtimes.kube_logs.join(f), "").unwrap();
        }
        assert_eq!(
            container_of(&proc, 88, &runtimes).as_deref(),
            Some("containerd:3f4e1c2a9b8d/shop/web-7d9f/php-fpm")
        );
        // A name that is not printable is left out, the id stays.
        fs::write(
            list.join("containers.json"),
            format!(r#"[{{"id":"{ID}","names":["evil name"]}}]"#).replace("\\u0007", "\u{7}"),
        )
        .unwrap();
        assert_eq!(
            container_of(&proc, 77, &runtimes).as_deref(),
            Some("podman:3f4e1c2a9b8d")
        );
    }

    #[test]
    fn this_process_has_a_namespace_and_is_found_in_the_list() {
        let root = Path::new("/proc");
        let own = netns_of(root, "self").expect("own netns");
        let all = namespaces(root);
        assert!(all.contains_key(&own), "{all:?}");
    }
}
