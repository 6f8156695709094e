//! Printing names that come from the network the way tshark 4.0 prints them.
//!
//! Stored names (DNS names, TLS SNI, process names) are compared against tshark's output
//! in the tests and read by people in `sqlite3`, so they use tshark's convention rather
//! than one of our own. The expected files under `shared/pcaps/expected/` show it
//! (Wireshark's `format_text`):
//!
//! * printable ASCII and valid, printable UTF-8 are copied as they are — including `.`,
//!   space and `\` (tshark 4.0 does *not* escape the backslash: the fuzz capture's frame
//!   513 asks for `1.0.0.127.in-addr.arp\`, and tshark prints exactly that);
//! * the C escapes `\a \b \f \n \r \t \v` for those control bytes (frame 331 of the same
//!   capture prints byte 0x0d as `\r`);
//! * every other control byte (below 0x20, and DEL) as `\ooo` octal (`\000`, `\032`);
//! * each byte that is not part of valid UTF-8 as U+FFFD.

use std::fmt::Write as _;

/// Appends `bytes` to `out`, escaped as tshark prints them.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(out, c);
        }
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// `bytes` escaped as tshark prints them, as a new string.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if c.is_ascii_control() => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\{:03o}", c as u32);
        }
        c if c.is_control() => {
            // C1 controls (U+0080..U+009F) as valid UTF-8: tshark prints them as \uXXXX.
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_is_unchanged() {
        assert_eq!(escape(b"www.example.com"), "www.example.com");
        assert_eq!(escape(b"a b-c_d"), "a b-c_d");
    }

    #[test]
    fn control_bytes_are_octal() {
        assert_eq!(escape(b"in-a\x1adr"), "in-a\\032dr");
        assert_eq!(escape(b"%s\x00"), "%s\\000");
        assert_eq!(escape(b"\x12"), "\\022");
        assert_eq!(escape(b"\x7f"), "\\177");
    }

    #[test]
    fn c_escapes_for_common_controls() {
        assert_eq!(escape(b"s\rp"), "s\\rp");
        assert_eq!(escape(b"\t\n\x07\x08\x0c\x0b"), "\\t\\n\\a\\b\\f\\v");
    }

    #[test]
    fn backslash_is_kept_as_tshark_does() {
        assert_eq!(escape(b"arp\\"), "arp\\");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_char() {
        assert_eq!(escape(b"aQd\x96"), "aQd\u{fffd}");
        assert_eq!(escape(b"\xff\xfe"), "\u{fffd}\u{fffd}");
        // Valid multi-byte UTF-8 is kept.
        assert_eq!(escape("bücher".as_bytes()), "bücher");
    }
}
