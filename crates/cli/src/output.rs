//! Writing results to stdout, and messages to stderr as one safe line.

use std::io::Write;

/// Prints `program: message` on stderr as one line whatever the message holds: a file
/// name or an error with a newline or a terminal escape in it (a file named
/// `x\n\x1b[2J`) is shown escaped as stored names are, so it can neither forge a
/// second line in cron mail nor drive the terminal.
pub fn warn(program: &str, message: &str) {
    eprintln!(
        "{program}: {}",
        portwatch_capture::escape::escape(message.as_bytes())
    );
}

/// Writes `text` to stdout and flushes; a closed pipe (`detector report | head`) is not
/// an error: the reader has what it wanted.
pub fn emit(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_stays_one_line_and_inert() {
        let shown = portwatch_capture::escape::escape("x\n\u{1b}[2J.pcap: gone".as_bytes());
        assert_eq!(shown, "x\\n\\033[2J.pcap: gone");
    }
}
