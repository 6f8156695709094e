//! One collector per database: an exclusive lock on `<db>.lock`.
//!
//! The lock is the kernel's (`flock` through std's `File::try_lock`), so it vanishes
//! with the process however it dies; the file only carries the holder's pid for the
//! message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Someone else holds it.
    Held {
        path: PathBuf,
        pid: Option<u32>,
    },
    Other(anyhow::Error),
}

/// `<db>.lock`, named from the database's real path so that two names for one file
/// (a symlink, `./x.db` and `/abs/x.db`) share one lock.
pub fn lock_path(db: &Path) -> PathBuf {
    let real = std::fs::canonicalize(db).unwrap_or_else(|_| {
        // Not created yet: resolve the directory, keep the file name.
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        match (std::fs::canonicalize(dir), db.file_name()) {
            (Ok(dir), Some(name)) => dir.join(name),
            _ => db.to_path_buf(),
        }
    });
    let mut p = real.into_os_string();
    p.push(".lock");
    PathBuf::from(p)
}

impl Lock {
    /// Opens the database for appending rounds. Holding the lock proves no other
    /// collector is running, so rounds still marked `running` are leftovers of one that
    /// died; they are closed as `failed` here.
    pub fn open_db(&self, db: &Path) -> anyhow::Result<rusqlite::Connection> {
        let conn =
            portwatch_store::open(db).with_context(|| format!("cannot open {}", db.display()))?;
        portwatch_store::write::fail_stale_rounds(&conn)
            .map_err(portwatch_store::Error::from)
            .with_context(|| format!("cannot update {}", db.display()))?;
        Ok(conn)
    }
}

/// Takes the lock for `db` without waiting.
pub fn acquire(db: &Path) -> Result<Lock, LockError> {
    let path = lock_path(db);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))
        .map_err(LockError::Other)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut s = String::new();
            let _ = file.read_to_string(&mut s);
            return Err(LockError::Held {
                path,
                pid: s.trim().parse().ok(),
            });
        }
        Err(TryLockError::Error(e)) => {
            return Err(LockError::Other(
                anyhow::Error::new(e).context(format!("cannot lock {}", path.display())),
            ));
        }
    }
    // Best effort: the pid is only for the other process's message.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(Lock { _file: file })
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { path, pid } => {
                write!(f, "another collector")?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid})")?;
                }
                write!(f, " holds {}; exiting", path.display())
            }
            LockError::Other(e) => write!(f, "{e:#}"),
        }
    }
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
        assert_eq!(lock_path(&link), lock_path(&db));
        assert_eq!(lock_path(&dotted), lock_path(&db));
        let held = acquire(&db).unwrap();
        assert!(matches!(acquire(&link), Err(LockError::Held { .. })));
        drop(held);
        assert!(acquire(&link).is_ok());
    }
}
