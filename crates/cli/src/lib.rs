//! # portwatch-cli
//!
//! The command-line plumbing both binaries share, so that `collector` and `detector`
//! behave alike where a user expects them to (as ripgrep's programs share `grep-cli`):
//!
//! - [`lock`]: one instance per database or model directory, a `flock` on the file or
//!   directory itself, whose holder's pid a second instance names;
//! - [`stop`]: SIGINT and SIGTERM as a flag the loops check;
//! - [`exit`]: running `main`, printing an error as one line and choosing the exit code
//!   (usage errors 2, a held lock 75, the program's own codes otherwise);
//! - [`dirs`]: private directories (0700) for the database and the model;
//! - [`trust`]: refusing a directory another user can write in or owns;
//! - [`output`]: writing to stdout where a closed pipe (`| head`) is not an error;
//! - [`docs`]: shell completions and man pages from the clap definitions;
//! - [`progress`]: progress bars on a terminal, hidden everywhere else.
//!
//! Each binary keeps its own table of exit codes: what 1 and 3 mean differs between
//! them, and `--help` prints the table.

pub mod dirs;
pub mod docs;
mod error;
pub mod exit;
pub mod lock;
pub mod output;
pub mod progress;
pub mod stop;
pub mod trust;

pub use error::Error;
