//! The write-ahead journal: what makes an append durable with one `fdatasync`.
//!
//! Entry bundles are written as whole files once they hold 256 entries, and those files are made
//! durable in bulk, later (`syncfs`). Until then the envelopes of recent entries live in the
//! journal, which is synced at every group commit. A journal segment starts at a bundle boundary
//! and records the state needed to replay it: where its first payload lies and the next sequence
//! number of every source. Once everything a closed segment covers is durable in bundle and tile
//! files, the segment is deleted.

use std::collections::BTreeMap;

use crate::envelope::{EnvelopeError, Reader, put_uvarint};
use crate::frame::{self, HeaderError};

/// Magic bytes of a journal segment.
pub const MAGIC: &[u8; 8] = b"acta-jnl";

/// Journal segment format version.
pub const VERSION: u32 = 1;

/// The state a journal segment starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Ledger index of the segment's first entry (a multiple of 256).
    pub base: u64,
    /// Offset, within its payload segment, of the first entry's payload.
    pub payload_offset: u64,
    /// Next sequence number of every source, as of `base`.
    pub sources: BTreeMap<String, u64>,
}

impl SegmentHeader {
    /// Encodes the header, framed with magic, version and CRC.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.base.to_be_bytes());
        body.extend_from_slice(&self.payload_offset.to_be_bytes());
        put_uvarint(&mut body, self.sources.len() as u64);
        for (name, next) in &self.sources {
            body.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            body.extend_from_slice(name.as_bytes());
            put_uvarint(&mut body, *next);
        }
        frame::header(MAGIC, VERSION, &body)
    }

    /// Decodes a header from the start of a segment; returns it and the offset of the first record.
    pub fn decode(bytes: &[u8]) -> Result<(SegmentHeader, usize), JournalError> {
        let (body, len) = frame::read_header(bytes, MAGIC, "journal", VERSION)?;
        let mut r = Reader {
            bytes: body,
            pos: 0,
        };
        let base = r.u64_be()?;
        let payload_offset = r.u64_be()?;
        let count = r.uvarint("source count")?;
        let mut sources = BTreeMap::new();
        for _ in 0..count {
            let n = usize::from(r.byte()?);
            let name = std::str::from_utf8(r.take(n)?)
                .map_err(|_| JournalError::Header("source name is not UTF-8"))?;
            let next = r.uvarint("next sequence number")?;
            sources.insert(name.to_owned(), next);
        }
        if r.pos != body.len() {
            return Err(JournalError::Header(
                "unexpected bytes at the end of the header",
            ));
        }
        Ok((
            SegmentHeader {
                base,
                payload_offset,
                sources,
            },
            len,
        ))
    }
}

/// Why a journal segment cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The framed header is damaged or of another version.
    #[error(transparent)]
    Frame(#[from] HeaderError),
    /// The header's fields are malformed.
    #[error("journal header: {0}")]
    Header(&'static str),
    /// A field failed to decode.
    #[error("journal header: {0}")]
    Field(#[from] EnvelopeError),
}
