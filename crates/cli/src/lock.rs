//! One instance at a time: an exclusive lock on a file, taken without waiting.
//!
//! The lock is the kernel's (`flock` through std's `File::try_lock`), so it vanishes
//! with the process however it dies; the file only carries the holder's pid for the
//! message another instance prints. The collector locks `<database>.lock` (one writer
//! keeps each round's packets a contiguous rowid range); the detector locks
//! `detector.lock` in its model directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock on `path` (created 0600 if missing) at once, or fails with
    /// [`Error::Held`] naming the `holder` kind and its pid. The path is made absolute
    /// and free of symlinks first, so that two names of one file share one lock.
    pub fn acquire(path: &Path, holder: &'static str) -> Result<Lock, Error> {
        let path = real_path(path);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                return Err(Error::Held {
                    holder,
                    path,
                    pid: s.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // Best effort: the pid is only for the other process's message.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Lock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<file>.lock`, named from the file's real path so that two names for one file (a
/// symlink, `./x.db` and `/abs/x.db`) share one lock.
pub fn beside(file: &Path) -> PathBuf {
    let mut p = real_path(file).into_os_string();
    p.push(".lock");
    PathBuf::from(p)
}

/// `path` canonicalised; when it does not exist yet, its directory canonicalised and
/// the file name kept.
fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        match (std::fs::canonicalize(dir), path.file_name()) {
            (Ok(dir), Some(name)) => dir.join(name),
            _ => path.to_path_buf(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_names_for_one_database_share_one_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("p.db");
        std::fs::write(&db, b"").unwrap();
        let link = tmp.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let dotted = tmp.path().join("./sub/../p.db");
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        assert_eq!(beside(&link), beside(&db));
        assert_eq!(beside(&dotted), beside(&db));
        let held = Lock::acquire(&beside(&db), "collector").unwrap();
        match Lock::acquire(&beside(&link), "collector") {
            Err(Error::Held { pid, holder, .. }) => {
                assert_eq!(pid, Some(std::process::id()), "the holder's pid is named");
                assert_eq!(holder, "collector");
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(held);
        assert!(Lock::acquire(&beside(&link), "collector").is_ok());
    }

    #[test]
    fn a_lock_in_a_directory_is_taken_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("detector.lock");
        let held = Lock::acquire(&path, "detector").unwrap();
        assert_eq!(held.path(), std::fs::canonicalize(&path).unwrap());
        let err = Lock::acquire(&path, "detector").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("another detector (pid "), "{msg}");
        assert!(msg.contains("detector.lock"), "{msg}");
    }
}
