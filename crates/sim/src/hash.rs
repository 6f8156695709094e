//! The listening-port bucket hash that `backdoor-collide` aims at.
//!
//! The detector folds listening ports into a few buckets, so a new listener whose bucket
//! an existing one already fills changes that feature only a little: that is what makes
//! the event hard. The project contract fixes the hash as 64-bit FNV-1a over the port's
//! two big-endian bytes, modulo [`BUCKETS`]; the model crate uses the same function.

/// Number of listening-port buckets in the contract.
pub const BUCKETS: u64 = 64;

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The contract's bucket of a listening port: `fnv1a64(&port.to_be_bytes()) % 64`.
pub fn listen_bucket(port: u16) -> u64 {
    fnv1a64(&port.to_be_bytes()) % BUCKETS
}

/// A variant some model builds used: 16 buckets over `[tcp as u8, port_hi, port_lo]`.
/// `backdoor-collide` picks a port that collides under this one too when it can, so the
/// event stays hard whichever of the two the detector uses.
pub(crate) fn listen_bucket_proto16(tcp: bool, port: u16) -> u64 {
    let p = port.to_be_bytes();
    fnv1a64(&[u8::from(tcp), p[0], p[1]]) % 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_vectors() {
        // Reference values of the FNV-1a 64-bit test suite.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn buckets_in_range() {
        for p in [0u16, 22, 443, 65535] {
            assert!(listen_bucket(p) < BUCKETS);
            assert!(listen_bucket_proto16(true, p) < 16);
        }
    }
}
