//! Printing names that come from the network the way tshark 4.0 prints them, made
//! unambiguous.
//!
//! Stored names (DNS names, TLS SNI, process names, executables) are read by people in
//! `sqlite3` and cron mail, and compared against tshark's output in the tests, so they
//! follow tshark's convention (Wireshark's `format_text`) with two departures, both for
//! a reader's safety; [`as_tshark_prints`] undoes them for a comparison:
//!
//! * printable ASCII and valid, printable UTF-8 are copied as they are — including `.`
//!   and space — **but the backslash is doubled** (`\\`): tshark 4.0 prints it raw (the
//!   fuzz capture's frame 513 asks for `1.0.0.127.in-addr.arp\`), so a name that
//!   contains the four characters `\032` could not be told from one with byte 0x1a;
//! * **the controls that reorder displayed text** (U+061C, U+200E, U+200F,
//!   U+202A–U+202E, U+2066–U+2069; tshark prints them raw) as `\uXXXX`: a name with
//!   U+202E would otherwise show its tail reversed in a terminal (`exe.evil` looking
//!   like `live.exe`);
//! * the C escapes `\a \b \f \n \r \t \v` for those control bytes (frame 331 of the same
//!   capture prints byte 0x0d as `\r`);
//! * every other control byte (below 0x20, and DEL) as `\ooo` octal (`\000`, `\032`);
//! * each invalid UTF-8 sequence as one U+FFFD, the sequence's length taken from its
//!   lead byte as tshark's decoder does.

use std::fmt::Write as _;

/// Appends `bytes` to `out`, escaped as tshark prints them.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            push_char(out, char::from(b));
            i += 1;
            continue;
        }
        // Like tshark's decoder, the lead byte alone decides how many continuation bytes
        // follow; a sequence that is cut, overlong, a surrogate or out of range is one
        // U+FFFD for all the bytes it took (so `ED BF 64` is one mark and a `d`, where a
        // strict decoder would give two marks).
        let (need, init) = match b {
            0xc0..=0xdf => (1, u32::from(b & 0x1f)),
            0xe0..=0xef => (2, u32::from(b & 0x0f)),
            0xf0..=0xf7 => (3, u32::from(b & 0x07)),
            // The old 5- and 6-byte forms: never valid, but they take their
            // continuation bytes with them (iodine capture, frame 67: `FB BD` is one mark).
            0xf8..=0xfb => (4, 0),
            0xfc..=0xfd => (5, 0),
            _ => {
                out.push(char::REPLACEMENT_CHARACTER);
                i += 1;
                continue;
            }
        };
        let mut cp = init;
        let mut j = i + 1;
        while j < bytes.len() && j <= i + need && bytes[j] & 0xc0 == 0x80 {
            cp = (cp << 6) | u32::from(bytes[j] & 0x3f);
            j += 1;
        }
        let min = [0, 0x80, 0x800, 0x1_0000, u32::MAX, u32::MAX][need];
        match char::from_u32(cp) {
            Some(c) if j == i + need + 1 && cp >= min => push_char(out, c),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
        i = j;
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
        '\\' => out.push_str("\\\\"),
        c if c.is_control() || is_bidi(c) => {
            // C1 controls (U+0080..U+009F) as valid UTF-8: tshark prints them as \uXXXX;
            // the bidirectional controls likewise (tshark leaves those raw).
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
}

/// The characters that change the direction text is displayed in.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A stored name as tshark 4.0 prints the same bytes: the doubled backslash single
/// again and the bidirectional controls raw. For comparing with tshark's output; the
/// result is ambiguous, as tshark's is.
pub fn as_tshark_prints(stored: &str) -> String {
    let mut out = String::with_capacity(stored.len());
    let mut rest = stored;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("\\\\") {
            out.push('\\');
            rest = after;
            continue;
        }
        let bidi = tail
            .strip_prefix("\\u")
            .and_then(|h| h.get(..4))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .filter(|&c| is_bidi(c));
        match bidi {
            Some(c) => {
                out.push(c);
                rest = &tail[6..];
            }
            None => {
                out.push('\\');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
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
    fn backslash_is_doubled_and_bidi_controls_escaped() {
        assert_eq!(escape(b"arp\\"), "arp\\\\");
        // The four characters `\032` and the byte 0x1a are told apart.
        assert_eq!(escape(b"a\\032"), "a\\\\032");
        assert_eq!(escape(b"a\x1a"), "a\\032");
        assert_eq!(
            escape("evil\u{202e}exe.txt".as_bytes()),
            "evil\\u202eexe.txt"
        );
        assert_eq!(escape("\u{2066}x\u{2069}".as_bytes()), "\\u2066x\\u2069");
        // Other format characters (a zero-width joiner in an emoji) stay.
        assert_eq!(escape("a\u{200d}b".as_bytes()), "a\u{200d}b");
    }

    #[test]
    fn tshark_prints_what_the_departures_undo() {
        for (bytes, tshark) in [
            (&b"1.0.0.127.in-addr.arp\\"[..], "1.0.0.127.in-addr.arp\\"),
            (b"in-a\x1adr", "in-a\\032dr"),
            (b"a\\u202e", "a\\u202e"),
            ("x\u{202e}y".as_bytes(), "x\u{202e}y"),
            (b"\xc2\x85", "\\u0085"),
        ] {
            assert_eq!(as_tshark_prints(&escape(bytes)), tshark, "{bytes:?}");
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement_char() {
        assert_eq!(escape(b"aQd\x96"), "aQd\u{fffd}");
        assert_eq!(escape(b"\xff\xfe"), "\u{fffd}\u{fffd}");
        // A cut multi-byte sequence is one mark.
        assert_eq!(escape(b"a\xe2\x82b"), "a\u{fffd}b");
        // A surrogate lead with a bad continuation: one mark (iodine capture, frame 53).
        assert_eq!(escape(b"M\xed\xbfdn"), "M\u{fffd}dn");
        // A 5-byte lead takes its continuation bytes along (iodine, frame 67).
        assert_eq!(escape(b"n\xfb\xbdQ"), "n\u{fffd}Q");
        assert_eq!(escape(b"\xfd\xbf\xbf\xbf\xbf\xbf\xbf"), "\u{fffd}\u{fffd}");
        // Overlong encodings are invalid.
        assert_eq!(escape(b"\xc0\xaf"), "\u{fffd}");
        // Valid multi-byte UTF-8 is kept.
        assert_eq!(escape("bücher".as_bytes()), "bücher");
    }
}
