//! `--user NAME`: give up root once the capture handle and the database are open, as
//! tcpdump's `-Z` does, so a parser bug cannot be exploited with root's rights: the
//! user's uid, gid and groups, an empty capability bounding set (nothing can be
//! regained, not even through a file-capability binary) and `no_new_privs` (no setuid
//! program can raise it again).

use std::ffi::CString;

use anyhow::{Context, bail};

/// The user to become, looked up before the round starts so that a mistyped name
/// writes nothing.
pub struct Ids {
    name: CString,
    uid: libc::uid_t,
    gid: libc::gid_t,
}

pub fn resolve(user: &str) -> anyhow::Result<Ids> {
    let name = CString::new(user).context("user name contains a NUL byte")?;
    // SAFETY: getpwnam returns a pointer to static storage or NULL; it is read at once,
    // on this thread, before any other call that could overwrite it.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            bail!("no such user {user:?} (--user)");
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    Ok(Ids { name, uid, gid })
}

pub fn drop_to(ids: &Ids) -> anyhow::Result<()> {
    // SAFETY: plain system calls with valid arguments; errors are checked. Order
    // matters: the bounding set needs CAP_SETPCAP, groups and gid need root, uid last.
    unsafe {
        // Every capability the kernel knows, until it says there are no more.
        for cap in 0.. {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINVAL) && cap > 0 {
                    break;
                }
                return Err(e).context("dropping the capability bounding set");
            }
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error()).context("no_new_privs");
        }
        if libc::initgroups(ids.name.as_ptr(), ids.gid) != 0 {
            return Err(std::io::Error::last_os_error()).context("initgroups");
        }
        if libc::setgid(ids.gid) != 0 {
            return Err(std::io::Error::last_os_error()).context("setgid");
        }
        if libc::setuid(ids.uid) != 0 {
            return Err(std::io::Error::last_os_error()).context("setuid");
        }
    }
    Ok(())
}
