//! Directories root may write in. The collector runs as root and the detector rewrites
//! a model: a directory another user can write is one where that user can plant a
//! symlink or a hard link where root is about to create, open or lock a file, or swap a
//! planted model in. As OpenSSH does for `~/.ssh`, such a directory is refused with one
//! line naming it, rather than defended file by file.
//!
//! Trusted means: the directory itself is owned by the running user or root and is
//! writable by nobody else; every directory above it is owned by the running user or
//! root and is writable by others only with the sticky bit (as `/tmp` is: others may
//! add entries there but not rename or remove ours). Both the path as given and its
//! real path (symlinks resolved) are checked, so a symlink cannot lead through a
//! directory others control.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::Error;

/// Refuses `dir` (which must exist) unless it and every directory above it are
/// trusted, as the module explains.
pub fn check_dir(dir: &Path) -> Result<(), Error> {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(".", e))?
            .join(dir)
    };
    let real = fs::canonicalize(&abs).map_err(|e| Error::io(dir, e))?;
    check_one(dir, &real, true)?;
    for above in real.ancestors().skip(1) {
        check_one(above, above, false)?;
    }
    // The path as given: each directory a component is looked up in, with `..`
    // and symlinks as the kernel would follow them.
    let mut prefix = PathBuf::new();
    let comps: Vec<Component<'_>> = abs.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        prefix.push(c);
        check_one(&prefix, &prefix, false)?;
    }
    Ok(())
}

/// Checks one directory; `shown` is how the error names it.
fn check_one(shown: &Path, dir: &Path, last: bool) -> Result<(), Error> {
    let meta = fs::metadata(dir).map_err(|e| Error::io(shown, e))?;
    let untrusted = |why: String| Error::Untrusted {
        path: shown.to_path_buf(),
        why,
    };
    if !meta.is_dir() {
        return Err(untrusted("not a directory".into()));
    }
    let me = euid();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(untrusted(format!(
            "owned by uid {}, neither you (uid {me}) nor root",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && (last || !sticky) {
        let who = if mode & 0o002 != 0 {
            "other users"
        } else {
            "its group"
        };
        return Err(untrusted(format!("writable by {who} (mode {mode:04o})")));
    }
    Ok(())
}

pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path, m: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn a_private_directory_is_trusted_and_an_open_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("state");
        fs::create_dir(&d).unwrap();
        mode(&d, 0o755);
        check_dir(&d).unwrap();
        mode(&d, 0o775);
        let e = check_dir(&d).unwrap_err().to_string();
        assert!(e.contains("writable by its group (mode 0775)"), "{e}");
        // Sticky is no excuse for the directory the files are in.
        mode(&d, 0o1777);
        let e = check_dir(&d).unwrap_err().to_string();
        assert!(e.contains("writable by other users (mode 1777)"), "{e}");
        assert!(e.starts_with(&d.display().to_string()), "{e}");

        // Above it, a sticky world-writable directory (like /tmp) is fine; one without
        // the sticky bit is not.
        let inner = d.join("db");
        fs::create_dir(&inner).unwrap();
        check_dir(&inner).unwrap();
        mode(&d, 0o777);
        let e = check_dir(&inner).unwrap_err().to_string();
        assert!(e.starts_with(&d.display().to_string()), "{e}");
    }

    #[test]
    fn a_symlink_through_an_open_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let safe = tmp.path().join("safe");
        let open = tmp.path().join("open");
        fs::create_dir(&safe).unwrap();
        fs::create_dir(&open).unwrap();
        mode(&open, 0o777);
        std::os::unix::fs::symlink(&safe, open.join("link")).unwrap();
        // The real directory is fine, but whoever can write `open` can repoint the
        // link at any moment.
        check_dir(&safe).unwrap();
        let e = check_dir(&open.join("link")).unwrap_err().to_string();
        assert!(e.contains("writable by other users"), "{e}");
        // And `..` cannot lead around a check either.
        let dotted = open.join("..").join("safe");
        let e = check_dir(&dotted).unwrap_err().to_string();
        assert!(e.contains("writable by other users"), "{e}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        assert_eq!(
            euid(),
            0,
            "giving a directory away needs root (CI runs as root)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("theirs");
        fs::create_dir(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(65534), None).unwrap();
        let e = check_dir(&d).unwrap_err().to_string();
        assert!(e.contains("owned by uid 65534"), "{e}");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let e = check_dir(&tmp.path().join("nope")).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
