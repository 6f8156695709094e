//! Stable hashes: the same input hashes the same in every process and on every run, so
//! listening-port buckets mean the same in training and detection, and addresses can be
//! kept as `u64` instead of strings.

use std::net::IpAddr;

use crate::spec::N_BUCKETS;

/// 64-bit FNV-1a: a stable hash (std's hasher is randomly keyed per process).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The bucket of a listening port: FNV-1a over its two big-endian bytes, modulo
/// [`N_BUCKETS`], whatever the protocol. `collector simulate` aims its hard backdoor at
/// this function, so it is the one definition both use.
pub fn listen_bucket(port: u16) -> usize {
    (fnv1a(&port.to_be_bytes()) % N_BUCKETS as u64) as usize
}

/// Hash of the network a remote address belongs to: its /24 (IPv4) or /48 (IPv6), the
/// unit a flood from one provider's block arrives in. A string that is not an address
/// hashes as itself, so it still counts as one network.
pub(crate) fn net_of(addr: &str) -> u64 {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            let o = a.octets();
            fnv1a(&[4, o[0], o[1], o[2]])
        }
        Ok(IpAddr::V6(a)) => {
            let o = a.octets();
            fnv1a(&[6, o[0], o[1], o[2], o[3], o[4], o[5]])
        }
        Err(_) => fnv1a(addr.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert!(listen_bucket(22) < N_BUCKETS);
        // The contract `collector simulate` aims at: FNV-1a of the big-endian port.
        assert_eq!(listen_bucket(443), (fnv1a(&[1, 187]) % 64) as usize);
    }

    #[test]
    fn networks_are_the_24_or_48() {
        assert_eq!(net_of("192.0.2.1"), net_of("192.0.2.200"));
        assert_ne!(net_of("192.0.2.1"), net_of("192.0.3.1"));
        assert_eq!(net_of("2001:db8:1::5"), net_of("2001:db8:1:ffff::1"));
        assert_ne!(net_of("2001:db8:1::5"), net_of("2001:db8:2::5"));
        assert_eq!(net_of("not-an-addr"), fnv1a(b"not-an-addr"));
    }
}
