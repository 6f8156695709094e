//! SNI from a client's QUIC Initial packet.
//!
//! Initial packets are encrypted, but with keys anyone can derive from the packet's
//! destination connection id and a per-version salt (RFC 9001 §5.2, RFC 9369 §3.3.1 for
//! v2): HKDF-SHA256, then AES-128 header protection and AES-128-GCM. ring provides all
//! three. The decrypted payload's CRYPTO frames carry the TLS ClientHello, whose
//! `server_name` extension is read by [`crate::tls`]; Google QUIC over the same header
//! (Q050, T050, T051) has salts of its own, CRYPTO frames of type 0x08, and in Q050 a
//! CHLO message whose `SNI` tag names the server. A ClientHello split over several
//! Initial packets (a post-quantum key share makes it about 1.8 KB) is held by its
//! destination connection id until the packet that completes it ([`crate::hello`]'s
//! bounds), which gives the name. Anything that
//! does not decrypt (server Initials, whose keys derive from a connection id we may not
//! have seen; damaged packets) simply gives no name.

use ring::{aead, hkdf};

use crate::escape::escape;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
/// Drafts 29 to 32.
const SALT_DRAFT29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
/// Drafts 23 to 28.
const SALT_DRAFT23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];

/// Google QUIC over the IETF invariant header (Chromium's quic_versions.cc): Q050 with
/// its own crypto handshake, T050 and T051 with TLS. Their CRYPTO frames have type 0x08.
const SALT_Q050: [u8; 20] = [
    0x50, 0x45, 0x74, 0xef, 0xd0, 0x66, 0xfe, 0x2f, 0x9d, 0x94, 0x5c, 0xfc, 0xdb, 0xd3, 0xa7, 0xf0,
    0xd3, 0xb5, 0x6b, 0x45,
];
const SALT_T050: [u8; 20] = [
    0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43, 0xa2, 0x36, 0x7c,
    0x60, 0x48, 0x83, 0x10,
];
const SALT_T051: [u8; 20] = [
    0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f, 0xc8, 0xcc,
    0xda, 0x6e, 0x03, 0x3d,
];
const Q050: u32 = u32::from_be_bytes(*b"Q050");
const T050: u32 = u32::from_be_bytes(*b"T050");
const T051: u32 = u32::from_be_bytes(*b"T051");

/// At most this many CRYPTO frames are put back together (Chrome scatters its
/// ClientHello over a dozen or so, between PING and PADDING frames).
const MAX_FRAGMENTS: usize = 32;

/// Reusable buffers, so decrypting does not allocate per packet, and the CRYPTO
/// streams of ClientHellos still incomplete, by destination connection id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    packet: Vec<u8>,
    crypto: Vec<u8>,
    pub(crate) held: crate::hello::Hellos<Vec<u8>>,
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// TLS 1.3 HKDF-Expand-Label with an empty context.
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    let n = 1usize << (first >> 6);
    let bytes = b.get(*at..*at + n)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    *at += n;
    Some(v)
}

fn varint_usize(b: &[u8], at: &mut usize) -> Option<usize> {
    usize::try_from(varint(b, at)?).ok()
}

/// The escaped SNI of the client Initial packet at the start of `p` (a UDP payload).
pub(crate) fn initial_sni(p: &[u8], scratch: &mut Scratch) -> Option<String> {
    let first = *p.first()?;
    if first & 0xc0 != 0xc0 {
        return None;
    }
    let version = u32::from_be_bytes(p.get(1..5)?.try_into().ok()?);
    let (salt, v2) = match version {
        1 | 0xff00_0021 | 0xff00_0022 => (&SALT_V1, false),
        0x6b33_43cf => (&SALT_V2, true),
        0xff00_001d..=0xff00_0020 => (&SALT_DRAFT29, false),
        // Facebook mvfst 0xfaceb002 follows draft 27.
        0xff00_0017..=0xff00_001c | 0xface_b002 => (&SALT_DRAFT23, false),
        Q050 => (&SALT_Q050, false),
        T050 => (&SALT_T050, false),
        T051 => (&SALT_T051, false),
        _ => return None,
    };
    let google = matches!(version, Q050 | T050 | T051);
    // Packet type: Initial is 0 in v1 and the drafts, 1 in v2.
    if (first >> 4) & 0x03 != u8::from(v2) {
        return None;
    }
    let mut at = 5;
    let dcid_len = usize::from(*p.get(at)?);
    if dcid_len > 20 {
        return None;
    }
    let dcid = p.get(at + 1..at + 1 + dcid_len)?;
    at += 1 + dcid_len;
    at += 1 + usize::from(*p.get(at)?); // source connection id
    let token_len = varint_usize(p, &mut at)?;
    at = at.checked_add(token_len)?;
    let length = varint_usize(p, &mut at)?;
    let pn_offset = at;
    let end = pn_offset.checked_add(length)?;
    if end > p.len() || length < 20 {
        return None;
    }
    let sample = p.get(pn_offset + 4..pn_offset + 20)?;

    let (k, iv, hp) = (
        if v2 { &b"quicv2 key"[..] } else { b"quic key" },
        if v2 { &b"quicv2 iv"[..] } else { b"quic iv" },
        if v2 { &b"quicv2 hp"[..] } else { b"quic hp" },
    );
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, b"client in", &mut client)?;
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &client);
    let (mut key, mut nonce, mut hp_key) = ([0u8; 16], [0u8; 12], [0u8; 16]);
    expand_label(&client, k, &mut key)?;
    expand_label(&client, iv, &mut nonce)?;
    expand_label(&client, hp, &mut hp_key)?;

    let mask = aead::quic::HeaderProtectionKey::new(&aead::quic::AES_128, &hp_key)
        .ok()?
        .new_mask(sample)
        .ok()?;
    let buf = &mut scratch.packet;
    buf.clear();
    buf.extend_from_slice(&p[..end]);
    buf[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(buf[0] & 0x03) + 1;
    let mut pn = 0u64;
    for i in 0..pn_len {
        buf[pn_offset + i] ^= mask[1 + i];
        pn = (pn << 8) | u64::from(buf[pn_offset + i]);
    }
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let (header, payload) = buf.split_at_mut(pn_offset + pn_len);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key).ok()?);
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&header[..]),
            payload,
        )
        .ok()?;
    let out = &mut scratch.crypto;
    out.clear();
    if !scratch.held.is_empty()
        && let Some(before) = scratch.held.take(&dcid.to_vec())
    {
        *out = before;
    }
    let hello = crypto_stream(plain, out, google, version == Q050)?;
    if version == Q050 {
        // Google's own handshake: one CHLO message, whole in the first packet.
        return chlo_sni(hello).map(escape);
    }
    // Handshake message: type 1 (ClientHello), 3-byte length, body.
    if *hello.first()? != 1 {
        return None;
    }
    let sni = crate::tls::sni_from_client_hello_body(hello.get(4..)?).map(escape);
    let need = 4
        + (usize::from(*hello.get(1)?) << 16 | usize::from(*hello.get(2)?) << 8)
        + usize::from(*hello.get(3)?);
    if sni.is_none() && hello.len() < need {
        // The rest comes in the connection's next Initial.
        scratch.held.start(dcid.to_vec(), 0, hello, need);
    }
    sni
}

/// The server name (`SNI\0` tag) of a Google QUIC CHLO: its tag, the count of entries
/// (u16, little-endian) and 2 bytes of padding, then each entry's tag and the end
/// offset of its value (u32, little-endian), then the values one after another.
fn chlo_sni(m: &[u8]) -> Option<&[u8]> {
    if m.get(..4)? != b"CHLO" {
        return None;
    }
    let n = usize::from(u16::from_le_bytes(m.get(4..6)?.try_into().ok()?));
    let values = 8 + 8 * n;
    let mut start = 0usize;
    for i in 0..n {
        let e = m.get(8 + 8 * i..16 + 8 * i)?;
        let end = usize::try_from(u32::from_le_bytes(e[4..8].try_into().ok()?)).ok()?;
        if &e[..4] == b"SNI\0" {
            return m.get(values.checked_add(start)?..values.checked_add(end)?);
        }
        start = end;
    }
    None
}

/// Puts the CRYPTO frames of a decrypted payload back in order after what `out` holds
/// of the stream already (the earlier Initials'), and returns the stream's contiguous
/// prefix from offset 0. `google`: Google QUIC, whose CRYPTO frames are type 0x08;
/// `chlo`: Q050, whose packet may hold a whole CHLO further down the stream (read from
/// the packet's lowest offset when nothing earlier is held).
fn crypto_stream<'a>(
    plain: &[u8],
    out: &'a mut Vec<u8>,
    google: bool,
    chlo: bool,
) -> Option<&'a [u8]> {
    let mut frags = [(0usize, 0usize, 0usize); MAX_FRAGMENTS]; // (offset, start, len)
    let mut n = 0;
    let mut at = 0;
    while at < plain.len() && n < MAX_FRAGMENTS {
        match varint(plain, &mut at)? {
            0x00 | 0x01 => {} // PADDING, PING
            ty @ (0x02 | 0x03) => {
                // ACK: largest, delay, range count, first range, ranges, [ECN counts].
                varint(plain, &mut at)?;
                varint(plain, &mut at)?;
                let ranges = varint(plain, &mut at)?;
                varint(plain, &mut at)?;
                for _ in 0..ranges {
                    varint(plain, &mut at)?;
                    varint(plain, &mut at)?;
                }
                if ty == 0x03 {
                    for _ in 0..3 {
                        varint(plain, &mut at)?;
                    }
                }
            }
            // CRYPTO; Google QUIC's is type 0x08 (IETF's STREAM, never in an Initial).
            ty if ty == 0x06 || (google && ty == 0x08) => {
                let offset = varint_usize(plain, &mut at)?;
                let len = varint_usize(plain, &mut at)?;
                plain.get(at..at.checked_add(len)?)?;
                frags[n] = (offset, at, len);
                n += 1;
                at += len;
            }
            ty @ (0x1c | 0x1d) => {
                varint(plain, &mut at)?;
                if ty == 0x1c {
                    varint(plain, &mut at)?;
                }
                let len = varint_usize(plain, &mut at)?;
                at = at.checked_add(len)?;
            }
            _ => break,
        }
    }
    let frags = &mut frags[..n];
    frags.sort_unstable_by_key(|f| f.0);
    // Q050 sends each CHLO whole, the one after a rejection further down the stream:
    // without the stream's start, read from the packet's first frame on.
    let base = match frags.first() {
        Some(&(first, _, _)) if chlo && out.is_empty() => first,
        _ => 0,
    };
    for &(offset, start, len) in frags.iter() {
        let offset = offset - base;
        if offset > out.len() {
            break;
        }
        let skip = out.len() - offset;
        if skip < len {
            out.extend_from_slice(&plain[start + skip..start + len]);
        }
    }
    (!out.is_empty()).then_some(&out[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9001 Appendix A.2: the client Initial (first 7 frames of its payload) for
    /// DCID 0x8394c8f03e515708 carries a ClientHello for "example.com".
    #[test]
    fn rfc9001_key_derivation() {
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, &SALT_V1).extract(&dcid);
        let mut client = [0u8; 32];
        expand_label(&initial, b"client in", &mut client).unwrap();
        let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &client);
        let mut key = [0u8; 16];
        let mut iv = [0u8; 12];
        let mut hp = [0u8; 16];
        expand_label(&client, b"quic key", &mut key).unwrap();
        expand_label(&client, b"quic iv", &mut iv).unwrap();
        expand_label(&client, b"quic hp", &mut hp).unwrap();
        assert_eq!(
            key,
            [
                0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46, 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1,
                0xa2, 0x2d
            ]
        );
        assert_eq!(
            iv,
            [
                0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c
            ]
        );
        assert_eq!(
            hp,
            [
                0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10, 0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad,
                0xed, 0xd2
            ]
        );
    }

    #[test]
    fn a_chlo_names_its_server_by_the_sni_tag() {
        // Two entries: PAD (3 bytes), SNI (11 bytes).
        let mut m = b"CHLO\x02\x00\x00\x00PAD\x00\x03\x00\x00\x00SNI\x00\x0e\x00\x00\x00".to_vec();
        m.extend_from_slice(b"---example.com");
        assert_eq!(chlo_sni(&m), Some(&b"example.com"[..]));
        for cut in 0..m.len() {
            assert_eq!(chlo_sni(&m[..cut]), None, "cut at {cut}");
        }
        // An end offset past the message, or no SNI tag: nothing.
        let mut bad = m.clone();
        bad[20] = 0xff;
        assert_eq!(chlo_sni(&bad), None);
        let mut untagged = m.clone();
        untagged[16..20].copy_from_slice(b"XXX\x00");
        assert_eq!(chlo_sni(&untagged), None);
    }

    #[test]
    fn varints() {
        let mut at = 0;
        assert_eq!(varint(&[0x25], &mut at), Some(37));
        let mut at = 0;
        assert_eq!(varint(&[0x7b, 0xbd], &mut at), Some(15293));
        let mut at = 0;
        assert_eq!(
            varint(&[0x9d, 0x7f, 0x3e, 0x7d], &mut at),
            Some(494_878_333)
        );
        let mut at = 0;
        assert_eq!(varint(&[0x9d, 0x7f], &mut at), None);
    }

    #[test]
    fn crypto_frames_are_reordered() {
        // CRYPTO(offset 3, "def"), PING, CRYPTO(offset 0, "abc"), PADDING.
        let plain = [
            6, 3, 3, b'd', b'e', b'f', 1, 6, 0, 3, b'a', b'b', b'c', 0, 0,
        ];
        let mut out = Vec::new();
        assert_eq!(
            crypto_stream(&plain, &mut out, false, false),
            Some(&b"abcdef"[..])
        );
        // A gap stops the stream.
        let plain = [6, 4, 2, b'e', b'f', 6, 0, 3, b'a', b'b', b'c'];
        out.clear();
        assert_eq!(
            crypto_stream(&plain, &mut out, false, false),
            Some(&b"abc"[..])
        );
        // What an earlier Initial gave is continued.
        let plain = [6, 3, 3, b'd', b'e', b'f'];
        assert_eq!(
            crypto_stream(&plain, &mut out, false, false),
            Some(&b"abcdef"[..])
        );
    }

    /// A QUIC variable-length integer of two bytes.
    fn varint2(v: usize) -> [u8; 2] {
        (0x4000 | v as u16).to_be_bytes()
    }

    fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
        [&[6u8][..], &varint2(offset), &varint2(data.len()), data].concat()
    }

    /// A version 1 client Initial for `dcid` carrying `frames` (padded to 1,200 bytes
    /// as a client pads it), encrypted and header-protected as a client does it.
    fn seal_initial(dcid: &[u8], pn: u16, frames: &[u8]) -> Vec<u8> {
        let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, &SALT_V1).extract(dcid);
        let mut client = [0u8; 32];
        expand_label(&initial, b"client in", &mut client).unwrap();
        let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &client);
        let (mut key, mut nonce, mut hp) = ([0u8; 16], [0u8; 12], [0u8; 16]);
        expand_label(&client, b"quic key", &mut key).unwrap();
        expand_label(&client, b"quic iv", &mut nonce).unwrap();
        expand_label(&client, b"quic hp", &mut hp).unwrap();
        let mut payload = frames.to_vec();
        payload.resize(payload.len().max(1150), 0);
        let mut pkt = vec![0xc1, 0, 0, 0, 1, dcid.len() as u8];
        pkt.extend_from_slice(dcid);
        pkt.extend_from_slice(&[0, 0]); // no source connection id, no token
        pkt.extend_from_slice(&varint2(2 + payload.len() + 16));
        let pn_offset = pkt.len();
        pkt.extend_from_slice(&pn.to_be_bytes());
        for (i, b) in u64::from(pn).to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= b;
        }
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key).unwrap());
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&pkt[..]),
            &mut payload,
        )
        .unwrap();
        pkt.extend_from_slice(&payload);
        let mask = aead::quic::HeaderProtectionKey::new(&aead::quic::AES_128, &hp)
            .unwrap()
            .new_mask(&pkt[pn_offset + 4..pn_offset + 20])
            .unwrap();
        pkt[0] ^= mask[0] & 0x0f;
        for i in 0..2 {
            pkt[pn_offset + i] ^= mask[1 + i];
        }
        pkt
    }

    /// A 1.8 KB ClientHello (post-quantum key share and padding before the server
    /// name) over two Initials, the first with its CRYPTO frames out of order, as
    /// Chrome sends it: the name comes with the second.
    #[test]
    fn a_client_hello_over_two_initials_gives_its_server_name() {
        let record = crate::tls::build_client_hello_with(b"pq.example", &[(51, 1216), (21, 420)]);
        let hs = &record[5..]; // CRYPTO carries the handshake without the record header
        assert!(hs.len() > 1700);
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let first = [
            crypto_frame(500, &hs[500..1000]),
            vec![1], // PING
            crypto_frame(0, &hs[..500]),
        ]
        .concat();
        let second = crypto_frame(1000, &hs[1000..]);
        let (one, two) = (
            seal_initial(&dcid, 0, &first),
            seal_initial(&dcid, 1, &second),
        );
        let mut s = Scratch::default();
        assert_eq!(initial_sni(&one, &mut s), None);
        assert!(s.held.bytes() >= 1000);
        assert_eq!(initial_sni(&two, &mut s).as_deref(), Some("pq.example"));
        assert_eq!(s.held.bytes(), 0, "released once whole");
        // The second alone starts no stream: nothing from offset 0, nothing held.
        let mut s = Scratch::default();
        assert_eq!(initial_sni(&two, &mut s), None);
        assert_eq!(s.held.bytes(), 0);
        // Another connection's Initial does not continue this one.
        let mut s = Scratch::default();
        assert_eq!(initial_sni(&one, &mut s), None);
        let other = seal_initial(&[9; 8], 1, &second);
        assert_eq!(initial_sni(&other, &mut s), None);
        assert_eq!(initial_sni(&two, &mut s).as_deref(), Some("pq.example"));
    }

    #[test]
    fn garbage_and_prefixes_do_not_panic() {
        let mut s = Scratch::default();
        let mut p = vec![
            0xc3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x40, 0x50,
        ];
        p.extend_from_slice(&[0x55; 80]);
        for n in 0..p.len() {
            assert_eq!(initial_sni(&p[..n], &mut s), None);
        }
        assert_eq!(initial_sni(&p, &mut s), None, "does not decrypt");
    }
}
