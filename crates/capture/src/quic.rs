//! QUIC recognition on UDP, without decrypting anything.
//!
//! The rule (README rule 5 — heuristics; it matches what tshark 4.0 calls `quic` on the
//! shared captures):
//! * a **long header** (first bit set) with a version tshark's QUIC dissector knows:
//!   1, 2 (`0x6b3343cf`), IETF drafts (`0xff0000xx`), version negotiation (0),
//!   a reserved "greasing" version (`0x?a?a?a?a`, RFC 9000 §15) or Google QUIC with the
//!   IETF invariant header (`Q046`, `Q050`: `'Q' '0' d d`) — marks the packet QUIC and
//!   remembers its flow (both directions);
//! * a **short header** packet (or any packet) on a remembered flow is QUIC too: it
//!   carries no version, so only the flow tells;
//! * older Google QUIC with the "public header" (flags byte, 8-byte connection id, then
//!   `Q0xx`) is not QUIC here, as tshark's `quic` filter does not match it either (it
//!   calls it `gquic`; see `ndpi__http_ipv6.pcap`).

/// Whether `p` (a UDP payload) is a QUIC long-header packet of a known version.
pub(crate) fn is_long_header(p: &[u8]) -> bool {
    let [first, v0, v1, v2, v3, ..] = *p else {
        return false;
    };
    if first & 0x80 == 0 {
        return false;
    }
    let version = u32::from_be_bytes([v0, v1, v2, v3]);
    match version {
        // Version negotiation: the rest of the first byte is arbitrary.
        0 => true,
        1 | 0x6b33_43cf => first & 0x40 != 0,
        v if v & 0xffff_ff00 == 0xff00_0000 => first & 0x40 != 0,
        v if v & 0x0f0f_0f0f == 0x0a0a_0a0a => true,
        _ => v0 == b'Q' && v1 == b'0' && v2.is_ascii_digit() && v3.is_ascii_digit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(is_long_header(&[0xc0, 0, 0, 0, 1, 8]));
        assert!(is_long_header(&[0xd0, 0x6b, 0x33, 0x43, 0xcf]));
        assert!(is_long_header(&[0xc3, 0xff, 0, 0, 0x1d]));
        assert!(is_long_header(&[0x80, 0, 0, 0, 0]));
        assert!(is_long_header(&[0xc0, 0x1a, 0x2a, 0x3a, 0x4a]));
        assert!(is_long_header(&[0xc3, b'Q', b'0', b'5', b'0']));
        // No fixed bit on v1, short header, unknown version, too short.
        assert!(!is_long_header(&[0x80, 0, 0, 0, 1]));
        assert!(!is_long_header(&[0x40, 0, 0, 0, 1]));
        assert!(!is_long_header(&[0xc0, 0x12, 0x34, 0x56, 0x78]));
        assert!(!is_long_header(&[0xc0, 0, 0, 0]));
    }
}
