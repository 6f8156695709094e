//! Where the database and the model live, and with which permissions.
//!
//! Cron runs jobs with `$HOME` as the working directory, so a relative default would
//! scatter databases; the defaults are therefore absolute: `/var/lib/portwatch` for root
//! and the XDG state directory for others. Captured traffic (DNS names, SNI, process
//! names) is private, hence 0700 directories and a 0600 database.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// The database path: `--db`, else `$PORTWATCH_DB`, else the per-user default.
pub fn resolve_db(cli: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(p) = cli {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("PORTWATCH_DB").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    default_db(
        is_root(),
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// The default database path for a user, as a pure function of its inputs.
pub fn default_db(
    root: bool,
    xdg_state_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<PathBuf, Error> {
    if root {
        return Ok(PathBuf::from("/var/lib/portwatch/ports.db"));
    }
    // XDG says a relative XDG_STATE_HOME is invalid and must be ignored.
    let state = match xdg_state_home.filter(|p| p.is_absolute()) {
        Some(p) => p,
        None => home.ok_or(Error::NoHome)?.join(".local/state"),
    };
    Ok(state.join("portwatch/ports.db"))
}

/// The model directory: `--model-dir`, else `$PORTWATCH_MODEL_DIR`, else `model/` beside
/// the database.
pub fn model_dir(cli: Option<&Path>, db: &Path) -> PathBuf {
    if let Some(p) = cli {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("PORTWATCH_MODEL_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    db.parent()
        .map(|d| d.join("model"))
        .unwrap_or_else(|| PathBuf::from("model"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Prepares the database file before SQLite opens it: a new file created 0600
/// (exclusively: a link planted at the name fails the creation), and an existing file
/// checked and tightened to 0600 through a descriptor opened without following links
/// (the sqlite3 CLI creates 0644). A symlink, anything but a regular file, or a file
/// owned by someone but the running user or root is refused: root would otherwise
/// chmod, or turn into a database, whatever the link points at. Its directory is the
/// caller's to check: the binaries create it private (0700) and refuse one others can
/// write in, through `portwatch-cli`.
pub(crate) fn prepare_db_file(db: &Path) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io {
        path: db.to_path_buf(),
        source,
    };
    let refuse = |why: String| Error::Refused {
        path: db.to_path_buf(),
        why,
    };
    match fs::symlink_metadata(db) {
        Ok(meta) => {
            if meta.file_type().is_symlink() {
                return Err(refuse("is a symbolic link".into()));
            }
            if !meta.is_file() {
                return Err(refuse("not a regular file".into()));
            }
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if meta.uid() != me && meta.uid() != 0 {
                return Err(refuse(format!("owned by uid {}", meta.uid())));
            }
            if meta.uid() == me && meta.permissions().mode() & 0o077 != 0 {
                let f = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(db)
                    .map_err(io)?;
                f.set_permissions(fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(db)
            .map(drop)
            .or_else(|e| {
                // Lost a race with another process creating it: fine.
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(io(e))
                }
            }),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design() {
        assert_eq!(
            default_db(true, None, Some("/root".into())).unwrap(),
            PathBuf::from("/var/lib/portwatch/ports.db")
        );
        assert_eq!(
            default_db(false, None, Some("/home/a".into())).unwrap(),
            PathBuf::from("/home/a/.local/state/portwatch/ports.db")
        );
        assert_eq!(
            default_db(false, Some("/x/state".into()), Some("/home/a".into())).unwrap(),
            PathBuf::from("/x/state/portwatch/ports.db")
        );
        // A relative XDG_STATE_HOME is ignored, as the XDG spec requires.
        assert_eq!(
            default_db(false, Some("rel".into()), Some("/home/a".into())).unwrap(),
            PathBuf::from("/home/a/.local/state/portwatch/ports.db")
        );
        assert!(matches!(default_db(false, None, None), Err(Error::NoHome)));
    }

    #[test]
    fn model_dir_sits_beside_the_db() {
        // Only meaningful when the variable is unset in the test environment.
        if std::env::var_os("PORTWATCH_MODEL_DIR").is_none() {
            assert_eq!(
                model_dir(None, Path::new("/var/lib/portwatch/ports.db")),
                PathBuf::from("/var/lib/portwatch/model")
            );
        }
        assert_eq!(
            model_dir(Some(Path::new("/m")), Path::new("/d/p.db")),
            PathBuf::from("/m")
        );
    }

    #[test]
    fn new_files_are_private_and_existing_files_tightened() {
        // The directories' modes are tested where they are made (portwatch-cli's dirs).
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("ports.db");
        prepare_db_file(&db).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600);
        assert!(
            prepare_db_file(&tmp.path().join("missing/ports.db")).is_err(),
            "the directory is the caller's to create"
        );

        let loose = tmp.path().join("loose.db");
        fs::write(&loose, b"").unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
        prepare_db_file(&loose).unwrap();
        assert_eq!(mode(&loose), 0o600);
    }

    #[test]
    fn links_devices_and_other_users_files_are_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let link = tmp.path().join("p.db");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = prepare_db_file(&link).unwrap_err().to_string();
        assert!(
            e.ends_with("p.db: is a symbolic link; refusing to open it"),
            "{e}"
        );
        assert_eq!(mode(&victim), 0o644, "not chmodded through the link");
        let e = prepare_db_file(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::os::unix::fs::chown(&victim, Some(65534), None).unwrap();
        let e = prepare_db_file(&victim).unwrap_err().to_string();
        assert!(e.contains("owned by uid 65534"), "{e}");
        assert_eq!(mode(&victim), 0o644);
    }
}
