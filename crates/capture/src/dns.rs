//! DNS message summary: the QR bit, the first question name and the answer names.
//!
//! simple-dns parses the message first (a maintained crate over hand-written code where one fits).
//! It is strict — it refuses forward compression pointers, reserved header bits, labels
//! over 63 bytes and anything truncated — while tshark, the oracle the tests compare
//! with, reads what it can. So when simple-dns refuses a message, a small bounds-checked
//! reader (modelled on Wireshark's `get_dns_name`) recovers the header and the names, and
//! the message counts as DNS but malformed.

use crate::escape::escape_into;
use crate::packet::DnsKind;

/// Wireshark's name buffer: a name of 254 bytes or more (dots included) is printed as
/// `<Name too long>`.
const MAX_NAME_LEN: usize = 255;
/// Header length.
const HEADER_LEN: usize = 12;

/// What one DNS message gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsInfo {
    pub kind: DnsKind,
    pub qry_name: Option<String>,
    pub qry_name_more: Option<String>,
    pub resp_name: Option<String>,
    pub malformed: bool,
}

/// Summarises the DNS message `msg` (starting at the DNS header). `None` when there is
/// not even the flags byte holding the QR bit.
pub(crate) fn parse(msg: &[u8]) -> Option<DnsInfo> {
    let flags = *msg.get(2)?;
    let kind = if flags & 0x80 != 0 {
        DnsKind::Response
    } else {
        DnsKind::Query
    };
    let mut info = DnsInfo {
        kind,
        qry_name: None,
        qry_name_more: None,
        resp_name: None,
        malformed: false,
    };
    if msg.len() < HEADER_LEN {
        info.malformed = true;
        return Some(info);
    }
    match simple_dns::Packet::parse(msg) {
        Ok(p) => {
            for (i, q) in p.questions.iter().enumerate() {
                let name = labels_to_string(q.qname.as_bytes());
                push_name(&mut info, i, name);
            }
            if !p.answers.is_empty() {
                let mut s = String::new();
                for (i, rr) in p.answers.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&labels_to_string(rr.name.as_bytes()));
                }
                info.resp_name = Some(s);
            }
        }
        Err(_) => {
            info.malformed = true;
            fallback(msg, &mut info);
        }
    }
    Some(info)
}

/// Records the `i`-th question name: the first in `qry_name`, later ones in
/// `qry_name_more`.
fn push_name(info: &mut DnsInfo, i: usize, name: String) {
    if i == 0 {
        info.qry_name = Some(name);
    } else if let Some(more) = &mut info.qry_name_more {
        more.push(',');
        more.push_str(&name);
    } else {
        info.qry_name_more = Some(name);
    }
}

/// Joins raw labels with dots and escapes the result; the empty name is `<Root>`.
fn labels_to_string<'a>(labels: impl Iterator<Item = &'a [u8]>) -> String {
    let mut raw: Vec<u8> = Vec::with_capacity(64);
    for (i, l) in labels.enumerate() {
        if i > 0 {
            raw.push(b'.');
        }
        raw.extend_from_slice(l);
    }
    finish_name(&raw)
}

fn finish_name(raw: &[u8]) -> String {
    if raw.is_empty() {
        return "<Root>".to_owned();
    }
    if raw.len() >= MAX_NAME_LEN - 1 {
        return "<Name too long>".to_owned();
    }
    let mut s = String::with_capacity(raw.len());
    escape_into(&mut s, raw);
    s
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Label bytes all the names of one message may make the reader visit. A name may
/// follow 255 pointers (as Wireshark does), each through up to the whole message, and
/// a message may hold thousands of names: a hostile 64 KB message would cost their
/// product (fuzzing found frames taking seconds). Past this budget the remaining names
/// are not read; real messages use a few kilobytes of it.
const NAMES_BUDGET: usize = 1 << 20;

/// Reads the question and answer names by hand when simple-dns refused the message.
fn fallback(msg: &[u8], info: &mut DnsInfo) {
    let (Some(qd), Some(an)) = (be16(msg, 4), be16(msg, 6)) else {
        return;
    };
    let mut budget = NAMES_BUDGET;
    let mut off = HEADER_LEN;
    for i in 0..qd {
        let Some((name, end)) = read_name(msg, off, &mut budget) else {
            return;
        };
        // QTYPE + QCLASS: tshark reads them before it adds the name, so a question cut
        // inside them yields no name.
        off = end + 4;
        if off > msg.len() {
            return;
        }
        push_name(info, usize::from(i), name);
    }
    let mut names = String::new();
    for i in 0..an {
        let Some((name, end)) = read_name(msg, off, &mut budget) else {
            break;
        };
        if i > 0 {
            names.push(',');
        }
        names.push_str(&name);
        // TYPE, CLASS, TTL, RDLENGTH, then RDATA.
        let Some(rdlen) = be16(msg, end + 8) else {
            break;
        };
        off = end + 10 + usize::from(rdlen);
        if off > msg.len() {
            break;
        }
    }
    if !names.is_empty() {
        info.resp_name = Some(names);
    }
}

/// Shortest encoded name tshark accepts apart from the root (Wireshark's
/// `MIN_DNAME_LEN`).
const MIN_DNAME_LEN: usize = 2;

/// Reads the (possibly compressed) name at `start` the way Wireshark's
/// `expand_dns_name` + `get_dns_name` do, so the printed names match tshark's:
/// pointers may go forward; after 255 pointers the name is
/// `<Name contains a pointer that loops>`; a name that does not fit in 255 bytes is
/// `<Name too long>`; an unknown extended label type gives `<Unknown extended label>`;
/// the empty name is `<Root>`. Returns the printed name and the offset just after the
/// name where it started, or `None` where tshark throws (runs past the captured bytes,
/// the reserved 0x80 label type, a too-short encoding) or where `budget` (label bytes
/// left for this message's names) runs out, adding no name.
pub(crate) fn read_name(msg: &[u8], start: usize, budget: &mut usize) -> Option<(String, usize)> {
    let mut raw: Vec<u8> = Vec::with_capacity(64);
    // Room left in Wireshark's 255-byte buffer (one byte is kept for the terminator).
    let mut room: usize = MAX_NAME_LEN;
    let mut off = start;
    // Bytes the name takes at `start`: fixed at the first pointer.
    let mut len: Option<usize> = None;
    let mut pointers = 0usize;
    loop {
        let c = *msg.get(off)?;
        off += 1;
        if c == 0 {
            break;
        }
        match c & 0xc0 {
            0x00 => {
                if raw.is_empty() {
                    room = room.saturating_sub(1);
                } else if room > 0 {
                    raw.push(b'.');
                    room -= 1;
                }
                let n = usize::from(c);
                *budget = budget.checked_sub(1 + n)?;
                let label = msg.get(off..off + n)?;
                let keep = n.min(room);
                raw.extend_from_slice(&label[..keep]);
                room -= keep;
                off += n;
            }
            0x40 if c & 0x3f == 0x01 => {
                // Bitstring label (RFC 2673), printed as \[x<hex>/<bits>].
                let bits = *msg.get(off)?;
                off += 1;
                let n = (usize::from(bits).max(1) - 1) / 8 + 1;
                let bytes = msg.get(off..off + n)?;
                off += n;
                let mut text = String::from("\\[x");
                for b in bytes {
                    text.push_str(&format!("{b:02x}"));
                }
                text.push_str(&format!("/{bits}]"));
                let keep = text.len().min(room);
                raw.extend_from_slice(&text.as_bytes()[..keep]);
                room -= keep;
            }
            0x40 => {
                let used = off.checked_sub(start).filter(|&u| u >= 1)?;
                if used < MIN_DNAME_LEN {
                    return None;
                }
                return Some(("<Unknown extended label>".to_owned(), start + used));
            }
            0x80 => return None,
            _ => {
                let lo = *msg.get(off)?;
                off += 1;
                pointers += 1;
                let used = *len.get_or_insert_with(|| off.saturating_sub(start));
                let target = (usize::from(c & 0x3f) << 8) | usize::from(lo);
                // Wireshark's test for a trivial loop, and its bound on pointer chains.
                if target == off + 2 || pointers > MAX_NAME_LEN {
                    return Some((
                        "<Name contains a pointer that loops>".to_owned(),
                        start + used,
                    ));
                }
                off = target;
            }
        }
    }
    let used = match len {
        Some(u) => u,
        None => off.checked_sub(start)?,
    };
    if room == 0 {
        return Some(("<Name too long>".to_owned(), start + used));
    }
    if raw.is_empty() && used <= MIN_DNAME_LEN {
        return Some(("<Root>".to_owned(), start + used));
    }
    if used < MIN_DNAME_LEN || raw.is_empty() {
        return None;
    }
    let mut s = String::with_capacity(raw.len());
    escape_into(&mut s, &raw);
    Some((s, start + used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m
    }

    /// Found by fuzzing the file target: names that chase a pointer loop through a
    /// long run of labels, thousands of them. The message's names share one budget of
    /// label bytes, so the work is bounded whatever the message says.
    #[test]
    fn pointer_chases_are_bounded_per_name_and_per_message() {
        // The question's name: 6,000 one-byte labels (pointers reach only the first
        // 16 KiB) ending in a pointer back to their start.
        let labels_at = HEADER_LEN;
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1];
        // Far more answers than the message holds: simple-dns refuses it, and the
        // names are read by hand, as tshark reads them.
        m.extend_from_slice(&u16::MAX.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        for _ in 0..6000 {
            m.extend_from_slice(b"\x01a");
        }
        m.extend_from_slice(&[0xc0 | (labels_at >> 8) as u8, labels_at as u8]);
        m.extend_from_slice(&[0, 1, 0, 1]);
        // 4,000 answers whose names all point into that chain.
        let answers = 4000;
        for _ in 0..answers {
            m.extend_from_slice(&[0xc0 | (labels_at >> 8) as u8, labels_at as u8]);
            m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 0]);
        }
        let i = parse(&m).unwrap();
        // The question's name chases 255 pointers through 12 KB each (3 MB): past the
        // budget, so no name, where tshark would say the name loops; and no answer
        // name either: the budget is spent.
        assert_eq!(i.qry_name, None);
        assert_eq!(i.resp_name, None);
        // A message of ordinary size is read whole.
        let small = [
            &[0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0][..],
            b"\x03www\x07example\x03com\x00\x00\x01\x00\x01",
        ]
        .concat();
        assert_eq!(
            parse(&small).unwrap().qry_name.as_deref(),
            Some("www.example.com")
        );
    }

    #[test]
    fn simple_query() {
        let m = query(b"\x03www\x07example\x03com\x00");
        let i = parse(&m).unwrap();
        assert_eq!(i.kind, DnsKind::Query);
        assert_eq!(i.qry_name.as_deref(), Some("www.example.com"));
        assert!(!i.malformed);
    }

    #[test]
    fn root_name() {
        let i = parse(&query(b"\x00")).unwrap();
        assert_eq!(i.qry_name.as_deref(), Some("<Root>"));
    }

    #[test]
    fn response_with_compressed_answers() {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\x02bc\x00\x00\x01\x00\x01");
        for ip in [[1, 2, 3, 4], [5, 6, 7, 8]] {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            m.extend_from_slice(&ip);
        }
        let i = parse(&m).unwrap();
        assert_eq!(i.kind, DnsKind::Response);
        assert_eq!(i.qry_name.as_deref(), Some("a.bc"));
        assert_eq!(i.resp_name.as_deref(), Some("a.bc,a.bc"));
        assert!(!i.malformed);
    }

    #[test]
    fn pointer_loop_terminates() {
        // The question name is a pointer to itself.
        let m = query(b"\xc0\x0c");
        let i = parse(&m).unwrap();
        assert!(i.malformed);
        assert_eq!(
            i.qry_name.as_deref(),
            Some("<Name contains a pointer that loops>")
        );
        // Two pointers pointing at each other, after a label.
        let mut m = vec![0, 0, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\xc0\x10\x01b\xc0\x0c\x00\x01\x00\x01");
        let i = parse(&m).unwrap();
        assert!(i.qry_name.unwrap().starts_with("<Name"));
    }

    #[test]
    fn forward_pointer_is_followed() {
        // Question name points forward to a name stored after the question.
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 18, 0, 1, 0, 1]);
        m.extend_from_slice(b"\x03fwd\x03net\x00");
        let i = parse(&m).unwrap();
        assert_eq!(i.qry_name.as_deref(), Some("fwd.net"));
        assert!(i.malformed);
    }

    #[test]
    fn truncated_name_gives_no_name_but_counts() {
        let m = query(b"\x03www\x07exa");
        let cut = &m[..m.len() - 4];
        let i = parse(cut).unwrap();
        assert_eq!(i.kind, DnsKind::Query);
        assert_eq!(i.qry_name, None);
        assert!(i.malformed);
    }

    #[test]
    fn short_messages() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[1, 2]), None);
        let i = parse(&[1, 2, 0x80]).unwrap();
        assert_eq!(i.kind, DnsKind::Response);
        assert!(i.malformed);
    }

    #[test]
    fn every_prefix_is_safe() {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
        for n in 0..=m.len() {
            let _ = parse(&m[..n]);
        }
    }

    #[test]
    fn too_long_name() {
        // 5 labels of 63: 319 bytes with the dots.
        let mut n = Vec::new();
        for _ in 0..5 {
            n.push(63);
            n.extend_from_slice(&[b'a'; 63]);
        }
        n.push(0);
        let i = parse(&query(&n)).unwrap();
        assert_eq!(i.qry_name.as_deref(), Some("<Name too long>"));
        assert!(i.malformed);
    }

    #[test]
    fn escapes_names() {
        let i = parse(&query(b"\x04a\x1ab\\\x00")).unwrap();
        assert_eq!(i.qry_name.as_deref(), Some("a\\032b\\\\"));
    }

    #[test]
    fn extended_label() {
        let i = parse(&query(b"\x01a\x42\x00")).unwrap();
        assert_eq!(i.qry_name.as_deref(), Some("<Unknown extended label>"));
        // As the first byte, the encoding is too short for tshark: no name.
        assert_eq!(parse(&query(b"\x42\x00")).unwrap().qry_name, None);
        // The reserved 0x80 type: no name either.
        assert_eq!(parse(&query(b"\x01a\x80\x00")).unwrap().qry_name, None);
    }
}
