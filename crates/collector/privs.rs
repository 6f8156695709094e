//! `--user NAME`: give up root once the capture handle and the database are open, as
//! tcpdump's `-Z` does, so a parser bug cannot be exploited with root's rights.

use std::ffi::CString;

use anyhow::{Context, bail};

pub fn drop_to(user: &str) -> anyhow::Result<()> {
    let name = CString::new(user).context("user name contains a NUL byte")?;
    // SAFETY: getpwnam returns a pointer to static storage or NULL; it is read at once,
    // on this thread, before any other call that could overwrite it.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            bail!("no such user {user:?}");
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    // SAFETY: plain system calls with valid arguments; errors are checked. Order
    // matters: groups and gid while still root, uid last.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 {
            return Err(std::io::Error::last_os_error()).context("initgroups");
        }
        if libc::setgid(gid) != 0 {
            return Err(std::io::Error::last_os_error()).context("setgid");
        }
        if libc::setuid(uid) != 0 {
            return Err(std::io::Error::last_os_error()).context("setuid");
        }
    }
    Ok(())
}
