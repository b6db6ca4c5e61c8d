//! Framing shared by the journal and the checkpoint history: versioned headers and
//! length-prefixed, CRC-checked records, so that a torn write at the end of a file is recognised
//! and cut off instead of misread.

use std::io;

/// Length of the fixed file header: 8-byte magic, `u32` version, `u32` header length.
pub const FIXED_HEADER_LEN: usize = 16;

/// Largest record accepted in a framed file (1 MiB): far above any envelope or checkpoint.
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// Writes a file header: magic, version, total header length, then `body`, then the CRC-32C of
/// everything before it.
pub fn header(magic: &[u8; 8], version: u32, body: &[u8]) -> Vec<u8> {
    let total = FIXED_HEADER_LEN + body.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Why a header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Wrong magic bytes: not this kind of file.
    #[error("not an acta {0} file (bad magic bytes)")]
    Magic(&'static str),
    /// A version this build does not know.
    #[error("{kind} file has format version {version}; this acta reads version {known}")]
    Version {
        /// File kind.
        kind: &'static str,
        /// Version found.
        version: u32,
        /// Version supported.
        known: u32,
    },
    /// Short or damaged header.
    #[error("{0} file header is truncated or damaged")]
    Damaged(&'static str),
}

/// Checks a header at the start of `bytes`; returns its body and the header's total length.
pub fn read_header<'a>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    kind: &'static str,
    version: u32,
) -> Result<(&'a [u8], usize), HeaderError> {
    let fixed = bytes
        .get(..FIXED_HEADER_LEN)
        .ok_or(HeaderError::Damaged(kind))?;
    let (m, rest) = fixed.split_at(8);
    if m != magic {
        return Err(HeaderError::Magic(kind));
    }
    let (v, len) = rest.split_at(4);
    let v = u32::from_be_bytes(v.try_into().map_err(|_| HeaderError::Damaged(kind))?);
    if v != version {
        return Err(HeaderError::Version {
            kind,
            version: v,
            known: version,
        });
    }
    let total = u32::from_be_bytes(len.try_into().map_err(|_| HeaderError::Damaged(kind))?);
    let total = usize::try_from(total).map_err(|_| HeaderError::Damaged(kind))?;
    if !(FIXED_HEADER_LEN + 4..=MAX_RECORD_LEN).contains(&total) {
        return Err(HeaderError::Damaged(kind));
    }
    let whole = bytes.get(..total).ok_or(HeaderError::Damaged(kind))?;
    let (covered, crc) = whole.split_at(total - 4);
    let crc = u32::from_be_bytes(crc.try_into().map_err(|_| HeaderError::Damaged(kind))?);
    if crc32c::crc32c(covered) != crc {
        return Err(HeaderError::Damaged(kind));
    }
    let body = covered
        .get(FIXED_HEADER_LEN..)
        .ok_or(HeaderError::Damaged(kind))?;
    Ok((body, total))
}

/// Appends a record: `u32` length, the bytes, CRC-32C of length and bytes.
pub fn push_record(out: &mut Vec<u8>, record: &[u8]) {
    let len = u32::try_from(record.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), record);
    out.extend_from_slice(&len);
    out.extend_from_slice(record);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Bytes a record of `len` bytes occupies.
pub fn record_size(len: usize) -> usize {
    len + 8
}

/// What follows a run of intact records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The file ends exactly after the last record.
    Clean,
    /// The last record is incomplete: a write was interrupted.
    Torn {
        /// Offset where the incomplete record starts.
        at: usize,
    },
    /// A complete-looking record fails its checksum or is implausibly long.
    Damaged {
        /// Offset of the damaged record.
        at: usize,
    },
}

/// Iterates over the records of `bytes` (after the header), stopping at the first problem, which
/// [`Records::tail`] then describes.
#[derive(Debug)]
pub struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    tail: Option<Tail>,
}

impl<'a> Records<'a> {
    /// Records in `bytes`, whose first record starts at offset `start`.
    pub fn new(bytes: &'a [u8], start: usize) -> Self {
        Records {
            bytes,
            pos: start,
            tail: None,
        }
    }

    /// Offset just past the last intact record returned so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Why iteration stopped; `None` while it has not.
    pub fn tail(&self) -> Option<Tail> {
        self.tail
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.tail.is_some() {
            return None;
        }
        let at = self.pos;
        let rest = self.bytes.get(at..).unwrap_or(&[]);
        if rest.is_empty() {
            self.tail = Some(Tail::Clean);
            return None;
        }
        let Some(len) = rest.first_chunk::<4>() else {
            self.tail = Some(Tail::Torn { at });
            return None;
        };
        let len = u32::from_be_bytes(*len);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_RECORD_LEN {
            self.tail = Some(Tail::Damaged { at });
            return None;
        }
        let Some(whole) = rest.get(..record_size(len)) else {
            self.tail = Some(Tail::Torn { at });
            return None;
        };
        let (head, crc) = whole.split_at(4 + len);
        let record = head.get(4..).unwrap_or(&[]);
        let crc = crc
            .first_chunk::<4>()
            .map(|c| u32::from_be_bytes(*c))
            .unwrap_or(0);
        if crc32c::crc32c(head) != crc {
            // A record cut short by a crash and followed by zeros or old bytes also fails here;
            // callers tell that apart by whether anything intact follows.
            self.tail = Some(Tail::Damaged { at });
            return None;
        }
        self.pos = at + record_size(len);
        Some(record)
    }
}

/// Maps "not found" to `None`: for files and directories that may legitimately be absent.
pub fn absent_ok<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a whole file, `None` when it does not exist.
pub fn read_optional(path: &std::path::Path) -> io::Result<Option<Vec<u8>>> {
    absent_ok(std::fs::read(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let h = header(b"acta-tst", 1, b"body");
        let (body, len) = read_header(&h, b"acta-tst", "test", 1).unwrap();
        assert_eq!((body, len), (&b"body"[..], h.len()));
        assert!(matches!(
            read_header(&h, b"acta-xxx", "test", 1),
            Err(HeaderError::Magic(_))
        ));
        assert!(matches!(
            read_header(&h, b"acta-tst", "test", 2),
            Err(HeaderError::Version { .. })
        ));
        for i in 0..h.len() {
            let mut bad = h.clone();
            bad[i] ^= 0x10;
            assert!(
                read_header(&bad, b"acta-tst", "test", 1).is_err(),
                "flip at {i}"
            );
        }
    }

    #[test]
    fn records_stop_at_torn_or_damaged_tail() {
        let mut b = Vec::new();
        push_record(&mut b, b"first");
        push_record(&mut b, b"second");
        let all: Vec<_> = Records::new(&b, 0).collect();
        assert_eq!(all, vec![&b"first"[..], &b"second"[..]]);
        let mut r = Records::new(&b[..b.len() - 2], 0);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.tail(), Some(Tail::Torn { at: 13 }));
        let mut bad = b.clone();
        bad[19] ^= 1;
        let mut r = Records::new(&bad, 0);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.tail(), Some(Tail::Damaged { at: 13 }));
    }
}
