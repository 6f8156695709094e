//! Ending a run: an error is printed as one line (`program: what: why`) and mapped to
//! an exit code. Codes both binaries share: 2 for a usage error (clap's own), 75
//! (EX_TEMPFAIL) when another instance holds the lock; everything else is the
//! program's own table.

/// Bad arguments, as clap exits for them.
pub const USAGE: i32 = 2;
/// Another instance holds the lock: try again later (sysexits' EX_TEMPFAIL).
pub const LOCKED: i32 = 75;

/// An error in what the user asked for that clap could not see (a bad BPF filter, an
/// unusable `--config` file): reported like clap's own, with exit code [`USAGE`].
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The exit code for an error: [`USAGE`] for a [`Usage`] error, [`LOCKED`] for a held
/// lock, anywhere in the chain; `runtime` (the program's code for "runtime error")
/// otherwise.
pub fn code_for(err: &anyhow::Error, runtime: i32) -> i32 {
    if err.chain().any(|e| e.downcast_ref::<Usage>().is_some()) {
        USAGE
    } else if is_locked(err) {
        LOCKED
    } else {
        runtime
    }
}

/// Whether another instance holding a lock is behind `err`.
pub fn is_locked(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<crate::Error>(),
            Some(crate::Error::Held { .. })
        )
    })
}

/// Runs a program's `run`, prints its error as one line on stderr prefixed with the
/// program's name, and exits with the code `code_of` gives the error (usually
/// [`code_for`] with the program's runtime-error code).
pub fn main(
    program: &str,
    run: impl FnOnce() -> anyhow::Result<i32>,
    code_of: impl FnOnce(&anyhow::Error) -> i32,
) -> ! {
    let code = match run() {
        Ok(code) => code,
        Err(err) => {
            crate::output::warn(program, &format!("{err:#}"));
            code_of(&err)
        }
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use anyhow::Context;

    use super::*;

    #[test]
    fn codes_follow_the_cause_anywhere_in_the_chain() {
        let usage = Err::<(), _>(Usage("bad filter".into())).context("live round");
        assert_eq!(code_for(&usage.unwrap_err(), 1), USAGE);
        let held = Err::<(), _>(crate::Error::Held {
            holder: "detector",
            path: PathBuf::from("/m"),
            pid: None,
        })
        .context("model /m");
        assert_eq!(code_for(&held.unwrap_err(), 3), LOCKED);
        let other = anyhow::anyhow!("disk full");
        assert_eq!(code_for(&other, 3), 3);
        assert_eq!(code_for(&other, 1), 1);
    }
}
