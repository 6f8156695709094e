//! IP fragments put back together, within bounds: a datagram is held until its
//! fragments cover it from offset 0 to the last one's end, then parsed whole, on the
//! frame that completed it — as tshark shows it ("Reassembled in #N"); the frames
//! before carry only their IP layer. DNS answers larger than the path MTU (EDNS) come
//! this way. A flood of fragments that never complete cannot grow memory: at most
//! [`MAX_DATAGRAMS`] datagrams and [`MAX_BYTES`] held, each at most an IP datagram's
//! 65,535 bytes, none older than [`crate::hello::MAX_AGE_FRAMES`] frames.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::hello::expire;

/// Datagrams held at once (when full, the expired ones go first; a new one that still
/// does not fit is not held).
pub const MAX_DATAGRAMS: usize = 1024;
/// Bytes held over all datagrams.
pub const MAX_BYTES: usize = 4 << 20;
/// The most an IP datagram's payload can be.
const MAX_DATAGRAM: usize = 65_535;

/// (source, destination, identification, upper protocol), as RFC 791 and 8200 key a
/// datagram.
pub(crate) type FragKey = (IpAddr, IpAddr, u32, u8);

#[derive(Debug, Clone)]
struct Datagram {
    buf: Vec<u8>,
    /// Byte ranges received, unsorted.
    have: Vec<(usize, usize)>,
    /// The payload's length, known once the last fragment (no "more fragments") came.
    total: Option<usize>,
    born: u64,
}

impl Datagram {
    fn complete(&mut self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        self.have.sort_unstable();
        let mut reach = 0;
        for &(a, b) in &self.have {
            if a > reach {
                return false;
            }
            reach = reach.max(b);
        }
        reach >= total
    }
}

/// The datagrams being put back together.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fragments {
    held: HashMap<FragKey, Datagram>,
    bytes: usize,
    frames: u64,
}

impl Fragments {
    /// Counts one frame (the clock datagrams age by).
    pub(crate) fn tick(&mut self) {
        self.frames += 1;
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// One fragment: `data` at byte `offset` of the datagram's payload; `more` unless
    /// it is the last. The whole payload once this fragment completes it. A fragment
    /// past 65,535 bytes, or of a datagram that does not fit, is dropped.
    pub(crate) fn add(
        &mut self,
        key: FragKey,
        offset: usize,
        more: bool,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        let end = offset.checked_add(data.len())?;
        if end > MAX_DATAGRAM {
            return None;
        }
        if !self.held.contains_key(&key) {
            if self.held.len() >= MAX_DATAGRAMS || self.bytes + end > MAX_BYTES {
                self.expire();
                if self.held.len() >= MAX_DATAGRAMS || self.bytes + end > MAX_BYTES {
                    return None;
                }
            }
            self.held.insert(
                key,
                Datagram {
                    buf: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    born: self.frames,
                },
            );
        }
        let d = self.held.get_mut(&key)?;
        if end > d.buf.len() {
            let grow = end - d.buf.len();
            if self.bytes + grow > MAX_BYTES {
                let gone = self.held.remove(&key)?;
                self.bytes -= gone.buf.len();
                return None;
            }
            d.buf.resize(end, 0);
            self.bytes += grow;
        }
        d.buf[offset..end].copy_from_slice(data);
        d.have.push((offset, end));
        if !more {
            d.total = Some(end);
        }
        if !d.complete() {
            return None;
        }
        let mut done = self.held.remove(&key)?;
        self.bytes -= done.buf.len();
        done.buf.truncate(done.total.unwrap_or(0));
        Some(done.buf)
    }

    /// Drops datagrams past their age.
    fn expire(&mut self) {
        self.bytes -= expire(&mut self.held, self.frames, |d| (d.born, d.buf.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        (a, a, id, 17)
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram() {
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut f = Fragments::default();
        assert_eq!(f.add(key(1), 2400, false, &data[2400..]), None);
        assert_eq!(f.add(key(1), 0, true, &data[..1200]), None);
        // A duplicate changes nothing; the middle completes it.
        assert_eq!(f.add(key(1), 0, true, &data[..1200]), None);
        assert_eq!(
            f.add(key(1), 1200, true, &data[1200..2400]),
            Some(data.clone())
        );
        assert_eq!(f.bytes(), 0);
        // Another datagram with the same addresses but another id stays apart.
        assert_eq!(f.add(key(2), 0, true, &data[..8]), None);
        assert_eq!(f.add(key(3), 8, false, &data[8..16]), None);
        assert_eq!(f.bytes(), 24);
        // Past 65,535 bytes is no IP datagram.
        assert_eq!(f.add(key(4), 65_530, false, &data[..8]), None);
        assert_eq!(f.bytes(), 24);
    }

    #[test]
    fn a_flood_of_first_fragments_is_held_within_the_caps() {
        let chunk = vec![0u8; 1480];
        let mut f = Fragments::default();
        for id in 0..100_000u32 {
            f.tick();
            assert_eq!(f.add(key(id), 0, true, &chunk), None);
            assert!(f.bytes() <= MAX_BYTES && f.held.len() <= MAX_DATAGRAMS);
        }
        // Once they are old, a new datagram takes their place.
        for _ in 0..crate::hello::MAX_AGE_FRAMES {
            f.tick();
        }
        let big = vec![1u8; 60_000];
        assert_eq!(f.add(key(u32::MAX), 0, false, &big), Some(big.clone()));
        assert!(f.held.len() < MAX_DATAGRAMS);
    }
}
