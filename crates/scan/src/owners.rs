//! Which process owns a socket: the inode → (pid, name) map built by walking
//! `ROOT/PID/fd/*` symlinks of the form `socket:[INODE]`, as ss and lsof do.
//!
//! The walk is the expensive part of a sample (~50 ms for 10,000 sockets over 100
//! processes, measured), so the map is cached and rebuilt only when a sample
//! holds an inode the last walk did not account for. Processes exit and fds close
//! during a walk, and a non-root user cannot read other users' fd directories: every
//! such failure just means "no owner visible", never an error.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;
use crate::socket::Socket;

/// A socket's owning process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// `ROOT/PID/comm`, escaped as every stored name is ([`portwatch_capture::escape`]).
    pub process: Arc<str>,
    /// `ROOT/PID/exe`, escaped likewise; `None` where the link cannot be read (a
    /// kernel thread, another user's process without privilege).
    pub exe: Option<Arc<str>>,
}

/// The cached map and what the last walk could not attribute.
#[derive(Debug)]
pub(crate) struct OwnerMap {
    root: PathBuf,
    map: HashMap<u64, Owner>,
    /// Inodes of the sample that triggered the last walk that no visible process
    /// held (another pid namespace, a permission-denied fd directory, a socket whose
    /// last fd just closed). Remembered so they do not trigger a walk every sample.
    ownerless: HashSet<u64>,
    refreshes: u64,
}

impl OwnerMap {
    pub(crate) fn new(root: PathBuf) -> Self {
        OwnerMap {
            root,
            map: HashMap::new(),
            ownerless: HashSet::new(),
            refreshes: 0,
        }
    }

    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes
    }

    pub(crate) fn refresh(&mut self) -> Result<(), Error> {
        self.map = walk(&self.root)?;
        self.ownerless.clear();
        self.refreshes += 1;
        Ok(())
    }

    /// Fills `pid` and `process` of every socket whose owner is visible, walking
    /// the process table first if a socket's inode is unknown.
    pub(crate) fn attribute(&mut self, sockets: &mut [Socket]) -> Result<(), Error> {
        let unknown = |s: &Socket| {
            s.inode != 0 && !self.map.contains_key(&s.inode) && !self.ownerless.contains(&s.inode)
        };
        let refreshed = sockets.iter().any(unknown);
        if refreshed {
            self.refresh()?;
        }
        for s in sockets.iter_mut() {
            if s.inode == 0 {
                continue;
            }
            match self.map.get(&s.inode) {
                Some(owner) => {
                    s.pid = Some(owner.pid);
                    s.process = Some(owner.process.clone());
                    s.exe = owner.exe.clone();
                }
                None if refreshed => {
                    self.ownerless.insert(s.inode);
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// Walks every `ROOT/PID/fd`. A socket shared by several processes (after fork) is
/// attributed to the lowest pid, usually the parent, so the answer is stable.
/// Only failing to list `ROOT` itself is an error.
pub(crate) fn walk(root: &std::path::Path) -> Result<HashMap<u64, Owner>, Error> {
    let entries = fs::read_dir(root).map_err(|source| Error::Read {
        path: root.to_path_buf(),
        source,
    })?;
    let mut map: HashMap<u64, Owner> = HashMap::new();
    let mut inodes = Vec::new();
    for entry in entries {
        // An entry that vanished while listing: the process exited.
        let Ok(entry) = entry else { continue };
        let Some(pid) = parse_pid(&entry.file_name()) else {
            continue;
        };
        let dir = entry.path();
        inodes.clear();
        socket_inodes(&dir.join("fd"), &mut inodes);
        if inodes.is_empty() {
            continue;
        }
        // The process may have exited since its fds were listed: then it no longer
        // owns anything, so skipping it is the truth.
        let Ok(comm) = fs::read(dir.join("comm")) else {
            continue;
        };
        let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
        let owner = Owner {
            pid,
            process: portwatch_capture::escape::escape(comm).into(),
            exe: fs::read_link(dir.join("exe"))
                .ok()
                .map(|p| portwatch_capture::escape::escape(p.as_os_str().as_bytes()).into()),
        };
        for &inode in &inodes {
            map.entry(inode)
                .and_modify(|o| {
                    if pid < o.pid {
                        *o = owner.clone();
                    }
                })
                .or_insert_with(|| owner.clone());
        }
    }
    Ok(map)
}

/// The socket inodes among a process's fds; nothing if the directory cannot be
/// read (process gone, or another user's as non-root).
fn socket_inodes(fd_dir: &std::path::Path, out: &mut Vec<u64>) {
    let Ok(fds) = fs::read_dir(fd_dir) else {
        return;
    };
    for fd in fds {
        let Ok(fd) = fd else { continue };
        // A closed fd (ENOENT) or one we may not follow (EACCES): not ours to know.
        let Ok(target) = fs::read_link(fd.path()) else {
            continue;
        };
        if let Some(inode) = parse_socket_link(target.as_os_str().as_bytes()) {
            out.push(inode);
        }
    }
}

fn parse_pid(name: &OsStr) -> Option<u32> {
    let name = name.as_bytes();
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// `socket:[12345]` → 12345; anything else (files, pipes, `anon_inode:…`) → None.
pub(crate) fn parse_socket_link(target: &[u8]) -> Option<u64> {
    let inode = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if inode.is_empty() || !inode.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(inode).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(b"socket:[]"), None);
        assert_eq!(parse_socket_link(b"socket:[12a]"), None);
        assert_eq!(parse_socket_link(b"pipe:[12345]"), None);
        assert_eq!(parse_socket_link(b"/dev/null"), None);
        assert_eq!(parse_socket_link(b"socket:[99999999999999999999999]"), None);
    }

    #[test]
    fn pids() {
        assert_eq!(parse_pid(OsStr::new("123")), Some(123));
        assert_eq!(parse_pid(OsStr::new("self")), None);
        assert_eq!(parse_pid(OsStr::new("")), None);
        assert_eq!(parse_pid(OsStr::new("+1")), None);
    }
}
