//! One instance at a time: an exclusive lock taken without waiting, on the thing itself
//! rather than on a name beside it.
//!
//! The collector locks the database file (one writer keeps each round's packets a
//! contiguous rowid range), so a hard link or a symlink to the same database is the
//! same lock; the detector locks its model directory. The lock is the kernel's
//! (`flock`, through std's `File::try_lock`), so it vanishes with the process however
//! it dies, and there is no lock file for another user to plant a link at. The
//! holder's pid, for the message a second instance prints, is read from `/proc/locks`.
//!
//! SQLite locks the database with POSIX record locks, which the kernel drops when the
//! process closes *any* descriptor of the file, and `flock` locks are independent of
//! them (on local file systems; SQLite's WAL mode needs one anyway). So a [`Lock`] on
//! the database must outlive every connection to it in the process: the binaries take
//! it first and drop it last.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::trust::euid;

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Locks the database file at `path`, creating it empty (0600) if it is missing,
    /// or fails with [`Error::Held`] naming the `holder` kind and its pid. A symlink
    /// at `path`, anything but a regular file, or another user's file is refused
    /// ([`Error::Refused`]) before anything is written.
    pub fn database(path: &Path, holder: &'static str) -> Result<Lock, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| refused_or_io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(refused(path, "not a regular file".into()));
        }
        if meta.uid() != euid() && meta.uid() != 0 {
            return Err(refused(path, format!("owned by uid {}", meta.uid())));
        }
        take(file, path, holder)
    }

    /// Locks the directory `path` itself (it must exist and not be a symlink).
    pub fn directory(path: &Path, holder: &'static str) -> Result<Lock, Error> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| refused_or_io(path, e))?;
        take(file, path, holder)
    }

    /// What is locked.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn take(file: File, path: &Path, holder: &'static str) -> Result<Lock, Error> {
    match file.try_lock() {
        Ok(()) => Ok(Lock {
            _file: file,
            path: path.to_path_buf(),
        }),
        Err(TryLockError::WouldBlock) => Err(Error::Held {
            holder,
            path: path.to_path_buf(),
            pid: holder_pid(&file),
        }),
        Err(TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

fn refused(path: &Path, why: String) -> Error {
    Error::Refused {
        path: path.to_path_buf(),
        why,
    }
}

/// `O_NOFOLLOW` on a symlink fails with ELOOP ("too many levels of symbolic links")
/// or, with `O_DIRECTORY`, ENOTDIR, which would puzzle anyone reading it: say what the
/// path is instead.
fn refused_or_io(path: &Path, e: std::io::Error) -> Error {
    if !matches!(
        e.raw_os_error(),
        Some(libc::ELOOP | libc::ENOTDIR | libc::EISDIR)
    ) {
        return Error::io(path, e);
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => refused(path, "is a symbolic link".into()),
        Ok(m) if m.is_dir() => refused(path, "is a directory".into()),
        Ok(_) => refused(path, "not a directory".into()),
        Err(_) => Error::io(path, e),
    }
}

/// The pid holding a `flock` on `file`, from `/proc/locks` (`1: FLOCK ADVISORY WRITE
/// PID MAJOR:MINOR:INODE 0 EOF`); None when it cannot be told.
///
/// `/proc/locks` is a seq_file, consistent only within one `read`: a lock listed
/// before ours that is released between two reads shifts our line into the part
/// already read, and it is missed (seen once in CI, with other tests taking and
/// dropping locks; `read_to_end` reads 8 KiB at a time). So it is read with one
/// large buffer, and again if the line is not there; the pid is only for the message.
fn holder_pid(file: &File) -> Option<u32> {
    use std::io::Read;
    let meta = file.metadata().ok()?;
    let mut buf = vec![0u8; 1 << 20];
    (0..3).find_map(|_| {
        let mut locks = File::open("/proc/locks").ok()?;
        let mut len = 0;
        while len < buf.len() {
            match locks.read(&mut buf[len..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
        }
        let text = String::from_utf8_lossy(buf.get(..len)?);
        flock_holder(&text, meta.dev(), meta.ino())
    })
}

fn flock_holder(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let want = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Waiters are listed as `1: -> FLOCK …`: not holders.
        if f.get(1) != Some(&"FLOCK") || f.get(5) != Some(&want.as_str()) {
            return None;
        }
        f.get(4)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_of_one_database_is_one_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("p.db");
        let held = Lock::database(&db, "collector").unwrap();
        assert!(db.is_file(), "created");
        let hard = tmp.path().join("hard.db");
        std::fs::hard_link(&db, &hard).unwrap();
        let dotted = tmp.path().join("sub/../p.db");
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        for name in [&db, &hard, &dotted] {
            match Lock::database(name, "collector") {
                Err(Error::Held { pid, holder, .. }) => {
                    assert_eq!(pid, Some(std::process::id()), "the holder's pid is named");
                    assert_eq!(holder, "collector");
                }
                other => panic!("{}: expected Held, got {other:?}", name.display()),
            }
        }
        drop(held);
        assert!(Lock::database(&hard, "collector").is_ok());
    }

    #[test]
    fn a_symlink_or_a_directory_is_not_a_database() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = tmp.path().join("p.db");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = Lock::database(&link, "collector").unwrap_err().to_string();
        assert!(
            e.ends_with("p.db: is a symbolic link; refusing to open it"),
            "{e}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let e = Lock::database(tmp.path(), "collector")
            .unwrap_err()
            .to_string();
        assert!(e.contains("refusing"), "{e}");
    }

    #[test]
    fn a_directory_is_locked_once() {
        let tmp = tempfile::tempdir().unwrap();
        let held = Lock::directory(tmp.path(), "detector").unwrap();
        assert_eq!(held.path(), tmp.path());
        let msg = Lock::directory(tmp.path(), "detector")
            .unwrap_err()
            .to_string();
        let want = format!("another detector (pid {}) holds ", std::process::id());
        assert!(msg.starts_with(&want), "{msg}");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        let e = Lock::directory(&link, "detector").unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
    }

    #[test]
    fn proc_locks_lines() {
        let dev = libc::makedev(0xfd, 1);
        let text = "1: POSIX  ADVISORY  WRITE 10 fd:01:77 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 4242 fd:01:77 0 EOF\n\
                    2: -> FLOCK  ADVISORY  WRITE 99 fd:01:77 0 EOF\n";
        assert_eq!(flock_holder(text, dev, 77), Some(4242));
        assert_eq!(flock_holder(text, dev, 78), None);
    }
}
