//! Writing results to stdout.

use std::io::Write;

/// Writes `text` to stdout and flushes; a closed pipe (`detector report | head`) is not
/// an error: the reader has what it wanted.
pub fn emit(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}
