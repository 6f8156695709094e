//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and for the test that replays
//! their committed corpus in CI (`tests/fuzz_corpus.rs`): one function per target, so
//! that what is fuzzed and what CI replays cannot drift apart.
//!
//! Each entry parses hostile bytes and then checks what must hold for any input, not
//! only that nothing panicked: stored names are escaped (no control character, no
//! bidirectional control left), the payload range lies inside the frame, and ports
//! exist only with a transport.

use crate::packet::Packet;
use crate::parse::Parser;

/// The link types the parser knows, chosen by a frame target's first byte.
pub const LINKTYPES: [i32; 10] = [1, 113, 276, 0, 108, 101, 12, 228, 229, 147];

/// A raw frame: the first byte picks the link type from [`LINKTYPES`], the rest is
/// the frame as libpcap would deliver it.
pub fn frame(data: &[u8]) {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let linktype = LINKTYPES[usize::from(pick) % LINKTYPES.len()];
    check(
        &Parser::new().parse(frame, linktype, wire_len(frame)),
        frame,
    );
}

/// `data` as the payload of a UDP datagram to port 53 (a DNS message).
pub fn dns(data: &[u8]) {
    transport_payload(data, 17, 53);
}

/// `data` as the start of a TCP stream to port 443 (a TLS ClientHello).
pub fn tls(data: &[u8]) {
    transport_payload(data, 6, 443);
}

/// `data` as a UDP datagram to port 443 (a QUIC Initial, whose SNI is decrypted).
pub fn quic(data: &[u8]) {
    transport_payload(data, 17, 443);
}

/// `data` as a capture file (pcap or pcapng, told by its magic), read to its end
/// through the same source `--read` uses, every frame parsed.
#[cfg(feature = "pcap")]
pub fn file(data: &[u8]) {
    use std::io::Write;

    use crate::source::{FileSource, PacketSource};
    // An anonymous in-memory file, opened by libpcap through its /proc/self/fd name.
    // SAFETY: memfd_create with a valid NUL-terminated name; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"portwatch-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return;
    }
    // SAFETY: fd is a new descriptor this function owns.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    if f.write_all(data).is_err() {
        return;
    }
    let Ok(mut src) = FileSource::open(format!("/proc/self/fd/{fd}")) else {
        return;
    };
    let linktype = src.linktype();
    let mut parser = Parser::new();
    // A file ends (or fails) after at most one frame per 16 bytes of it.
    for _ in 0..=data.len() / 16 {
        match src.next() {
            Ok(Some(fr)) => check(&parser.parse(fr.data, linktype, fr.wire_len), fr.data),
            Ok(None) => {}
            Err(_) => break,
        }
    }
    drop(f);
}

/// Ethernet + IPv4 + UDP or TCP headers around `payload`, to `port`.
fn transport_payload(payload: &[u8], proto: u8, port: u16) {
    let mut f = Vec::with_capacity(64 + payload.len());
    f.extend_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]);
    let l4 = if proto == 6 { 20 } else { 8 };
    let total = u16::try_from(20 + l4 + payload.len()).unwrap_or(u16::MAX);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    if proto == 6 {
        // seq, ack, data offset 5, flags PSH|ACK, window, checksum, urgent.
        f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        let len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
        f.extend_from_slice(&len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    check(&Parser::new().parse(&f, 1, wire_len(&f)), &f);
}

fn wire_len(frame: &[u8]) -> u32 {
    u32::try_from(frame.len()).unwrap_or(u32::MAX)
}

/// What holds for any parsed frame.
fn check(p: &Packet, frame: &[u8]) {
    for name in [&p.qry_name, &p.qry_name_more, &p.resp_name, &p.server_name]
        .into_iter()
        .flatten()
    {
        assert!(
            !name
                .chars()
                .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}')),
            "unescaped name {name:?}"
        );
    }
    if let Some((start, end)) = p.payload_range {
        assert!(start <= end && end <= frame.len(), "payload {start}..{end}");
    }
    if p.src_port.is_some() || p.dst_port.is_some() {
        assert!(p.transport.is_some(), "ports without a transport");
    }
}
