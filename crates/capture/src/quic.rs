//! QUIC recognition on UDP, without decrypting anything.
//!
//! The rule (README rule 5 — heuristics), tuned so that it matches what tshark 4.0
//! calls `quic` on the shared captures:
//! * a **long header** (first bit set, fixed bit 0x40 set, destination connection id
//!   length ≤ 20) with a version tshark's QUIC dissector knows — 1, 2 (`0x6b3343cf`),
//!   IETF drafts `0xff000000`–`0xff000022`, Facebook mvfst `0xfaceb0xx`, reserved
//!   "greasing" versions `0x?a?a?a?a` — or Google QUIC
//!   with the IETF header and version `Q05x`/`T05x`: QUIC on any port; its flow (both
//!   directions) is remembered;
//! * version negotiation (version 0): QUIC only on UDP port 443 or on a remembered flow (see [`LongHeader::Weak`]);
//! * any other packet (short headers carry no version) on a remembered flow: QUIC;
//! * Google QUIC `Q046` and the older "public header" format are not QUIC: tshark's
//!   `quic` filter does not match them either (it calls them `gquic`).

/// What a UDP payload's first bytes say about QUIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LongHeader {
    /// A long header with a version tshark's QUIC dissector recognises anywhere.
    Known,
    /// Version negotiation (version 0): QUIC only on
    /// UDP port 443 or on a flow already seen as QUIC (tshark's heuristic does not take
    /// them; its port-443 registration and its flow tracking do). Alone they are too
    /// weak: an LLMNR query with id 0xa000 looks like version negotiation.
    Weak,
}

/// Classifies `p` (a UDP payload) as a QUIC long-header packet, or `None`.
pub(crate) fn long_header(p: &[u8]) -> Option<LongHeader> {
    let [first, v0, v1, v2, v3, ..] = *p else {
        return None;
    };
    if first & 0x80 == 0 {
        return None;
    }
    let version = u32::from_be_bytes([v0, v1, v2, v3]);
    // IETF QUIC connection ids are at most 20 bytes (RFC 9000 §17.2); the length byte
    // follows the version. Random bytes rarely pass this and the fixed bit together.
    let dcid_ok = p.get(5).is_none_or(|&n| n <= 20);
    let fixed = first & 0x40 != 0;
    let ietf = match version {
        0 => return dcid_ok.then_some(LongHeader::Weak),
        // v1, v2, IETF drafts 0–34, Facebook's mvfst versions.
        1 | 0x6b33_43cf | 0xff00_0000..=0xff00_0022 | 0xface_b000..=0xface_b0ff => true,
        // Reserved versions that force version negotiation ("greasing", RFC 9000 §15;
        // bench capture frame 45453: 0xbabababa to port 4433).
        v if v & 0x0f0f_0f0f == 0x0a0a_0a0a => true,
        _ => false,
    };
    if ietf {
        return (fixed && dcid_ok).then_some(LongHeader::Known);
    }
    // Google QUIC with the IETF invariant header: Q050 and the TLS-based T050/T051
    // go to tshark's QUIC dissector; Q046 and older go to its `gquic` one.
    let gquic_ietf = matches!(v0, b'Q' | b'T') && v1 == b'0' && (b'5'..=b'9').contains(&v2);
    (gquic_ietf && v3.is_ascii_digit()).then_some(LongHeader::Known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        use LongHeader::*;
        assert_eq!(long_header(&[0xc0, 0, 0, 0, 1, 8]), Some(Known));
        assert_eq!(long_header(&[0xd0, 0x6b, 0x33, 0x43, 0xcf]), Some(Known));
        assert_eq!(long_header(&[0xc3, 0xff, 0, 0, 0x1d]), Some(Known));
        assert_eq!(long_header(&[0xc3, 0xfa, 0xce, 0xb0, 0x02, 8]), Some(Known));
        assert_eq!(long_header(&[0xc3, b'Q', b'0', b'5', b'0']), Some(Known));
        assert_eq!(long_header(&[0x80, 0, 0, 0, 0]), Some(Weak));
        assert_eq!(long_header(&[0xc0, 0x1a, 0x2a, 0x3a, 0x4a]), Some(Known));
        // gQUIC Q046 is tshark's `gquic`, not `quic`.
        assert_eq!(long_header(&[0xc3, b'Q', b'0', b'4', b'6']), None);
        // No fixed bit on v1, short header, unknown version, too short.
        assert_eq!(long_header(&[0x80, 0, 0, 0, 1]), None);
        assert_eq!(long_header(&[0x40, 0, 0, 0, 1]), None);
        assert_eq!(long_header(&[0xc0, 0x12, 0x34, 0x56, 0x78]), None);
        assert_eq!(long_header(&[0xc0, 0, 0, 0]), None);
        // A draft number past 34 (bench capture, frame 15870: 0xff0000a0).
        assert_eq!(long_header(&[0xff, 0xff, 0, 0, 0xa0, 0]), None);
        // Filler bytes 0xaa look like a greasing version, but lack the fixed bit
        // (fuzz capture, frame 140), and their "connection id length" is 170.
        assert_eq!(long_header(&[0xaa; 16]), None);
        assert_eq!(long_header(&[0xc0, 0, 0, 0, 1, 21]), None);
    }
}
