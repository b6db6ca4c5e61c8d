//! The canonical entry envelope: what a leaf of the Merkle tree commits to.
//!
//! An entry is not the raw record itself but a small envelope naming it: its ledger index, when it
//! was received, from which source and with which per-source sequence number, and the SHA-256 and
//! length of the payload (the raw record, stored beside the tree). Keeping the payload out of the
//! leaf keeps entry bundles small and lets a payload be erased under a signed redaction while every
//! proof still verifies.
//!
//! The encoding is canonical: one envelope has exactly one byte string, so decoders reject
//! non-minimal integers and trailing bytes instead of normalising them.

use std::fmt;

use crate::hash::Hash;

/// Version byte that starts every envelope of the current format.
pub const ENVELOPE_VERSION: u8 = 1;

/// Longest accepted source name, in bytes.
pub const MAX_SOURCE_LEN: usize = 64;

/// Largest payload the ledger stores, in bytes (1 GiB). Callers usually set a far lower limit.
pub const MAX_PAYLOAD_LEN: u64 = 1 << 30;

/// Longest possible encoded envelope: well under the 65,535 bytes an entry bundle allows.
pub const MAX_ENVELOPE_LEN: usize = 1 + 10 + 10 + 1 + MAX_SOURCE_LEN + 10 + 10 + Hash::LEN;

/// A validated source name: 1 to 64 bytes of `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter
/// or digit (e.g. `cloudtrail`, `github-audit`, `k8s.prod-eu`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceName(String);

impl SourceName {
    /// Checks `name` and wraps it.
    pub fn new(name: &str) -> Result<SourceName, EnvelopeError> {
        if is_valid_source(name.as_bytes()) {
            Ok(SourceName(name.to_owned()))
        } else {
            Err(EnvelopeError::BadSource(name.chars().take(80).collect()))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_valid_source(name: &[u8]) -> bool {
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b);
    match name.first() {
        Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit() => {
            name.len() <= MAX_SOURCE_LEN && name.iter().all(allowed)
        }
        _ => false,
    }
}

/// A decoded envelope that borrows its source name from the encoded bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Position of the entry in the ledger (0-based); equal to its leaf index.
    pub index: u64,
    /// When the ledger received the record, in milliseconds since the Unix epoch (UTC).
    pub received_at_ms: u64,
    /// The source the record came from (already validated when decoded).
    pub source: &'a str,
    /// 0-based sequence number of this entry among the entries of its source.
    pub seq: u64,
    /// Length of the payload in bytes.
    pub payload_len: u64,
    /// SHA-256 of the payload.
    pub payload_sha256: Hash,
}

/// Why bytes are not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The source name breaks the naming rule.
    #[error(
        "invalid source name {0:?}: use 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
    )]
    BadSource(String),
    /// The first byte is not a known envelope version.
    #[error("unknown envelope version {0}")]
    Version(u8),
    /// The bytes end before the envelope does.
    #[error("envelope is truncated")]
    Truncated,
    /// An integer is not in minimal LEB128 form, or overflows 64 bits.
    #[error("envelope field `{0}` is not a canonical integer")]
    BadInteger(&'static str),
    /// The payload length is above the ledger's limit.
    #[error("payload length {0} exceeds the ledger limit of {MAX_PAYLOAD_LEN} bytes")]
    PayloadTooLong(u64),
    /// Bytes follow the end of the envelope.
    #[error("{0} unexpected bytes after the envelope")]
    Trailing(usize),
}

impl Envelope<'_> {
    /// Appends the canonical encoding to `out`.
    ///
    /// Layout (all integers unsigned LEB128, minimal): `version (1 byte) | index | received_at_ms |
    /// source length (1 byte) | source | seq | payload_len | payload SHA-256 (32 bytes)`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(ENVELOPE_VERSION);
        put_uvarint(out, self.index);
        put_uvarint(out, self.received_at_ms);
        // Callers construct envelopes from a `SourceName`, which bounds the length to 64.
        out.push(u8::try_from(self.source.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.source.as_bytes());
        put_uvarint(out, self.seq);
        put_uvarint(out, self.payload_len);
        out.extend_from_slice(&self.payload_sha256.0);
    }

    /// Decodes one envelope occupying exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.byte()?;
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(version));
        }
        let index = r.uvarint("index")?;
        let received_at_ms = r.uvarint("received_at_ms")?;
        let source_len = usize::from(r.byte()?);
        let source = r.take(source_len)?;
        if !is_valid_source(source) {
            return Err(EnvelopeError::BadSource(
                String::from_utf8_lossy(source).into_owned(),
            ));
        }
        // `is_valid_source` admits ASCII only, so this cannot fail.
        let source = std::str::from_utf8(source)
            .map_err(|_| EnvelopeError::BadSource(String::from_utf8_lossy(source).into_owned()))?;
        let seq = r.uvarint("seq")?;
        let payload_len = r.uvarint("payload_len")?;
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(EnvelopeError::PayloadTooLong(payload_len));
        }
        let payload_sha256 =
            Hash::from_slice(r.take(Hash::LEN)?).ok_or(EnvelopeError::Truncated)?;
        let rest = bytes.len().saturating_sub(r.pos);
        if rest != 0 {
            return Err(EnvelopeError::Trailing(rest));
        }
        Ok(Envelope {
            index,
            received_at_ms,
            source,
            seq,
            payload_len,
            payload_sha256,
        })
    }
}

/// Appends `value` as unsigned LEB128.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A cursor over bytes for the small binary headers of the ledger's files.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn byte(&mut self) -> Result<u8, EnvelopeError> {
        let b = *self.bytes.get(self.pos).ok_or(EnvelopeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        let end = self.pos.checked_add(n).ok_or(EnvelopeError::Truncated)?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(EnvelopeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u64_be(&mut self) -> Result<u64, EnvelopeError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(
            b.try_into().map_err(|_| EnvelopeError::Truncated)?,
        ))
    }

    /// Reads a minimal unsigned LEB128 integer of at most 64 bits.
    pub(crate) fn uvarint(&mut self, field: &'static str) -> Result<u64, EnvelopeError> {
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 0x01 {
                return Err(EnvelopeError::BadInteger(field));
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                // A final zero byte after others is a non-minimal encoding.
                if b == 0 && i > 0 {
                    return Err(EnvelopeError::BadInteger(field));
                }
                return Ok(value);
            }
        }
        Err(EnvelopeError::BadInteger(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    fn sample(source: &str) -> Envelope<'_> {
        Envelope {
            index: 1_234_567,
            received_at_ms: 1_763_725_000_123,
            source,
            seq: 99_999,
            payload_len: 1_024,
            payload_sha256: sha256(b"payload"),
        }
    }

    #[test]
    fn round_trip_and_size() {
        let env = sample("cloudtrail");
        let mut buf = Vec::new();
        env.encode(&mut buf);
        assert_eq!(buf.len(), 1 + 3 + 6 + 1 + 10 + 3 + 2 + 32);
        assert!(buf.len() <= MAX_ENVELOPE_LEN);
        assert_eq!(Envelope::decode(&buf), Ok(env));
    }

    #[test]
    fn extremes_round_trip() {
        let name = "a".repeat(MAX_SOURCE_LEN);
        let env = Envelope {
            index: u64::MAX,
            received_at_ms: u64::MAX,
            source: &name,
            seq: u64::MAX,
            payload_len: MAX_PAYLOAD_LEN,
            payload_sha256: sha256(b""),
        };
        let mut buf = Vec::new();
        env.encode(&mut buf);
        assert!(buf.len() <= MAX_ENVELOPE_LEN);
        assert_eq!(Envelope::decode(&buf), Ok(env));
    }

    #[test]
    fn rejects_non_canonical_forms() {
        let mut buf = Vec::new();
        sample("k8s").encode(&mut buf);
        // Trailing byte.
        let mut t = buf.clone();
        t.push(0);
        assert_eq!(Envelope::decode(&t), Err(EnvelopeError::Trailing(1)));
        // Truncation at every length.
        for n in 0..buf.len() {
            assert!(Envelope::decode(&buf[..n]).is_err(), "prefix {n} accepted");
        }
        // Non-minimal varint for index 0: 0x80 0x00.
        let mut nm = vec![ENVELOPE_VERSION, 0x80, 0x00];
        nm.extend_from_slice(&buf[2..]);
        assert!(matches!(
            Envelope::decode(&nm),
            Err(EnvelopeError::BadInteger("index"))
        ));
        // Unknown version.
        let mut v = buf.clone();
        v[0] = 2;
        assert_eq!(Envelope::decode(&v), Err(EnvelopeError::Version(2)));
    }

    #[test]
    fn source_names() {
        for ok in ["cloudtrail", "github-audit", "k8s.prod_eu", "0day"] {
            assert!(SourceName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "CloudTrail", "-x", "a b", "é", &"a".repeat(65)] {
            assert!(SourceName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn varint_overflow_rejected() {
        let mut r = Reader {
            bytes: &[0xff; 10],
            pos: 0,
        };
        assert!(r.uvarint("x").is_err());
        let mut r = Reader {
            bytes: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            pos: 0,
        };
        assert!(r.uvarint("x").is_err());
        let mut r = Reader {
            bytes: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            pos: 0,
        };
        assert_eq!(r.uvarint("x"), Ok(u64::MAX));
    }
}
