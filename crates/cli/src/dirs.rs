//! Private directories: what portwatch stores (DNS names, TLS server names, process
//! names) is private, so the directories it creates are 0700; and a directory it uses
//! must be one no other user can write in ([`crate::trust`]).

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use crate::Error;

/// The directory of the database or the model, ready to use: created 0700 if missing,
/// then refused unless trusted ([`crate::trust::check_dir`]). An empty path is the
/// current directory (a database named without one).
pub fn prepare(dir: &Path) -> Result<(), Error> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    create_private_dir(dir)?;
    crate::trust::check_dir(dir)
}

/// Creates `dir` and its missing parents with mode 0700 (existing ones are left alone).
pub fn create_private_dir(dir: &Path) -> Result<(), Error> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn new_directories_are_private_and_existing_ones_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        create_private_dir(&deep).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            let mode = fs::metadata(tmp.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{d}");
        }
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&open).unwrap();
        let mode = fs::metadata(&open).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }
}
