//! 64-bit hashes of values, and hash maps keyed by them.
//!
//! The detectors remember values (IPs, user agents, resources, APIs) and
//! actors by a 64-bit hash rather than by the string: eight bytes a value,
//! one hash per value per event. Two values with the same hash are one
//! value to the detectors. For values that are not chosen to collide, the
//! chance that a new value is taken for one of an actor's `n` known values
//! is `n / 2⁶⁴` (about 5·10⁻¹⁶ for 10,000 values), and the chance that two
//! of a million actors share a history about 3·10⁻⁸. The hash is not
//! cryptographic: someone who can choose a value freely (a user agent) and
//! knows an actor's known values could craft a collision, and so have one
//! new value pass unreported; the event itself is still stored, searchable
//! and matched by rules.
//!
//! The hash is fixed (no random seed), so replaying the ledger rebuilds the
//! same state and reports the same anomalies.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
const FINAL: u64 = 0xa409_3822_299f_31d0;

/// The 64-bit product of a and b folded: the high half xor the low half.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The hash of a string.
pub(crate) fn hash_str(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let (words, tail) = bytes.as_chunks::<8>();
    let mut h = SEED ^ (bytes.len() as u64).wrapping_mul(MUL);
    for word in words {
        h = fold(h ^ u64::from_le_bytes(*word), MUL).rotate_left(23);
    }
    if !tail.is_empty() {
        let mut last = [0u8; 8];
        for (to, from) in last.iter_mut().zip(tail) {
            *to = *from;
        }
        h = fold(h ^ u64::from_le_bytes(last), MUL).rotate_left(23);
    }
    fold(h ^ FINAL, MUL ^ FINAL)
}

/// The hash of a pair of hashes (a service and an action).
pub(crate) fn hash_pair(a: u64, b: u64) -> u64 {
    fold(a ^ SEED, b ^ FINAL) ^ b
}

/// The hash of a source IP. An IPv6 address counts by its /64 network:
/// hosts change the rest daily (privacy addresses, RFC 8981), so a new one
/// within a known network is not news. An IPv4-mapped IPv6 address is its
/// IPv4 address.
pub(crate) fn hash_ip(ip: &str) -> u64 {
    if ip.contains(':')
        && let Ok(v6) = ip.parse::<std::net::Ipv6Addr>()
    {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return hash_str(&v4.to_string());
        }
        let network = (u128::from(v6) >> 64) as u64;
        return hash_pair(FINAL, network);
    }
    hash_str(ip)
}

/// A hasher for keys that already are hashes: it passes them through.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = fold(self.0 ^ u64::from(*b), MUL);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of hashes.
pub(crate) type HashedSet = HashSet<u64, BuildHasherDefault<PassThrough>>;

/// A map keyed by hashes.
pub(crate) type HashedMap<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_short_values_hash_apart() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000u32 {
            assert!(seen.insert(hash_str(&format!(
                "10.{}.{}.{}",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            ))));
        }
        for s in [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
        ] {
            assert!(seen.insert(hash_str(s)), "{s:?}");
        }
        assert_ne!(hash_pair(1, 2), hash_pair(2, 1));
        assert_eq!(
            hash_ip("2001:db8:1:2:aaaa::1"),
            hash_ip("2001:0db8:0001:0002:bbbb:cccc:dddd:eeee")
        );
        assert_ne!(hash_ip("2001:db8:1:2::1"), hash_ip("2001:db8:1:3::1"));
        assert_eq!(hash_ip("::ffff:192.0.2.1"), hash_ip("192.0.2.1"));
        assert_eq!(hash_ip("192.0.2.1"), hash_str("192.0.2.1"));
        assert_eq!(hash_ip("not:an:ip"), hash_str("not:an:ip"));
    }
}
