//! TLS ClientHellos split over TCP segments or QUIC Initial packets, put back together
//! far enough to read the server name. A browser's post-quantum key share makes its
//! ClientHello about 1.8 KB, two segments or two Initials, and Chrome shuffles its
//! extensions: for a large share of today's connections the SNI is in the second
//! part. Only the start of a stream is held,
//! only while a ClientHello record is incomplete, and within bounds a flood of
//! half-open streams cannot push past: [`MAX_STREAMS`] streams, [`MAX_BYTES`] in all,
//! each at most one TLS record, and none older than [`MAX_AGE_FRAMES`] frames.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

/// Streams held at once. When full, streams past their age are dropped first; a new
/// one that still does not fit is not held (what is held stays: a flood can only keep
/// new streams from being reassembled, not grow memory).
pub const MAX_STREAMS: usize = 1024;
/// Bytes held over all streams.
pub const MAX_BYTES: usize = 4 << 20;
/// A ClientHello record is at most one TLS record: 5 bytes of header and 2^14 of body.
pub const MAX_HELLO: usize = 5 + (1 << 14);
/// Frames after which a stream still incomplete is given up (the rest was lost, or
/// never comes): a second at 65,000 packets/s, minutes on a quiet host.
pub const MAX_AGE_FRAMES: u64 = 65_536;

/// One direction of a TCP connection: (source, destination).
pub(crate) type StreamKey = ((IpAddr, u16), (IpAddr, u16));

#[derive(Debug, Clone)]
struct Held {
    /// The sequence number the next in-order segment starts at.
    next_seq: u32,
    /// Bytes of the whole record.
    need: usize,
    buf: Vec<u8>,
    /// Frame count when it started.
    born: u64,
}

/// The held stream starts, by stream: a TCP direction ([`StreamKey`]) or a QUIC
/// connection (its client's destination connection id).
#[derive(Debug, Clone)]
pub(crate) struct Hellos<K> {
    held: HashMap<K, Held>,
    bytes: usize,
    frames: u64,
}

impl<K> Default for Hellos<K> {
    fn default() -> Self {
        Hellos {
            held: HashMap::new(),
            bytes: 0,
            frames: 0,
        }
    }
}

impl<K: Hash + Eq> Hellos<K> {
    /// Counts one frame (the clock streams age by).
    pub(crate) fn tick(&mut self) {
        self.frames += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(crate) fn streams(&self) -> usize {
        self.held.len()
    }

    /// Holds the first segment of a ClientHello record of `need` bytes (header
    /// included), of which `first` arrived with sequence number `seq`.
    pub(crate) fn start(&mut self, key: K, seq: u32, first: &[u8], need: usize) {
        let need = need.min(MAX_HELLO);
        if first.len() >= need {
            return;
        }
        if let Some(old) = self.held.remove(&key) {
            // A new ClientHello on the same stream (a retransmission of its first
            // segment, or a reused port): start over.
            self.bytes -= old.buf.capacity();
        }
        if self.held.len() >= MAX_STREAMS || self.bytes + need > MAX_BYTES {
            self.expire();
            if self.held.len() >= MAX_STREAMS || self.bytes + need > MAX_BYTES {
                return;
            }
        }
        let mut buf = Vec::with_capacity(need);
        buf.extend_from_slice(first);
        self.bytes += buf.capacity();
        self.held.insert(
            key,
            Held {
                next_seq: seq.wrapping_add(first.len() as u32),
                need,
                buf,
                born: self.frames,
            },
        );
    }

    /// A later segment of `key`'s stream: the whole record once this one completes it.
    /// A retransmission of bytes already held is ignored; a gap (a segment lost, or
    /// out of order) gives the stream up.
    pub(crate) fn extend(&mut self, key: &K, seq: u32, data: &[u8]) -> Option<Vec<u8>> {
        let h = self.held.get_mut(key)?;
        if data.is_empty() || seq != h.next_seq {
            // Serial-number arithmetic: before the expected byte is old data.
            if data.is_empty() || (h.next_seq.wrapping_sub(seq) as i32) > 0 {
                return None;
            }
            let gone = self.held.remove(key)?;
            self.bytes -= gone.buf.capacity();
            return None;
        }
        let take = data.len().min(h.need - h.buf.len());
        h.buf.extend_from_slice(&data[..take]);
        h.next_seq = seq.wrapping_add(data.len() as u32);
        if h.buf.len() < h.need {
            return None;
        }
        let done = self.held.remove(key)?;
        self.bytes -= done.buf.capacity();
        Some(done.buf)
    }

    /// Takes what is held for `key` (a QUIC connection's CRYPTO stream so far, to merge
    /// the next Initial's frames onto).
    #[cfg(feature = "quic-sni")]
    pub(crate) fn take(&mut self, key: &K) -> Option<Vec<u8>> {
        let h = self.held.remove(key)?;
        self.bytes -= h.buf.capacity();
        Some(h.buf)
    }

    /// Drops streams past their age.
    fn expire(&mut self) {
        self.bytes -= expire(&mut self.held, self.frames, |h| (h.born, h.buf.capacity()));
    }
}

/// Drops from `held` what is [`MAX_AGE_FRAMES`] old at frame `now` (`of` gives an
/// entry's birth frame and bytes); returns the bytes freed. Shared by the stream starts
/// here and the IP fragments ([`crate::fragments`]).
pub(crate) fn expire<K, V>(
    held: &mut HashMap<K, V>,
    now: u64,
    of: impl Fn(&V) -> (u64, usize),
) -> usize {
    let mut freed = 0;
    held.retain(|_, v| {
        let (born, bytes) = of(v);
        let keep = now - born < MAX_AGE_FRAMES;
        if !keep {
            freed += bytes;
        }
        keep
    });
    freed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(port: u16) -> StreamKey {
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        ((a, port), (b, 443))
    }

    #[test]
    fn in_order_segments_complete_the_record_and_retransmits_are_ignored() {
        let mut h = Hellos::default();
        let record: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
        h.start(key(1), 1000, &record[..1448], record.len());
        assert_eq!(h.streams(), 1);
        assert_eq!(
            h.extend(&key(1), 1000, &record[..1448]),
            None,
            "retransmitted"
        );
        assert_eq!(h.streams(), 1);
        let whole = h.extend(&key(1), 2448, &record[1448..]).unwrap();
        assert_eq!(whole, record);
        assert_eq!((h.streams(), h.bytes()), (0, 0));
        // A gap gives the stream up.
        h.start(key(2), u32::MAX - 10, &record[..1000], record.len());
        assert_eq!(h.extend(&key(2), 5000, &record[1000..]), None);
        assert_eq!((h.streams(), h.bytes()), (0, 0));
        // Sequence numbers wrap.
        h.start(key(3), u32::MAX - 10, &record[..1000], record.len());
        assert_eq!(
            h.extend(&key(3), (u32::MAX - 10).wrapping_add(1000), &record[1000..]),
            Some(record.clone())
        );
    }

    #[test]
    fn a_flood_of_half_open_streams_is_held_within_the_caps() {
        let mut h = Hellos::default();
        let first = vec![0u8; 1448];
        for i in 0..200_000u32 {
            h.tick();
            let k = ((IpAddr::V4(Ipv4Addr::from(i)), 40_000), (key(0).1));
            h.start(k, i, &first, MAX_HELLO);
            assert!(h.streams() <= MAX_STREAMS && h.bytes() <= MAX_BYTES);
        }
        // Old streams make room for new ones once they are past their age.
        assert!(h.streams() > 0);
        let before = h.streams();
        for _ in 0..MAX_AGE_FRAMES {
            h.tick();
        }
        // A stream that does not fit beside them makes the old ones go.
        h.start(key(9), 1, &first, MAX_HELLO);
        assert_eq!(h.streams(), 1, "{before} expired streams were dropped");
        let rest = vec![0; MAX_HELLO - first.len()];
        assert_eq!(
            h.extend(&key(9), 1449, &rest).map(|b| b.len()),
            Some(MAX_HELLO)
        );
        assert_eq!(h.bytes(), 0);
    }
}
