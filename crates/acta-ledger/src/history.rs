//! The checkpoint history: every checkpoint the log signed, in signing order, so that
//! verification can check each of them against the tree.

use crate::frame::{self, HeaderError, Records, Tail};

/// Magic bytes of the checkpoint history file.
pub const MAGIC: &[u8; 8] = b"acta-ckp";

/// History file format version.
pub const VERSION: u32 = 1;

/// The file header (no body).
pub fn header() -> Vec<u8> {
    frame::header(MAGIC, VERSION, &[])
}

/// Encodes one history record: signing time, then the signed note.
pub fn push(out: &mut Vec<u8>, signed_at_ms: u64, note: &str) {
    let mut rec = Vec::with_capacity(8 + note.len());
    rec.extend_from_slice(&signed_at_ms.to_be_bytes());
    rec.extend_from_slice(note.as_bytes());
    frame::push_record(out, &rec);
}

/// Appends one record for `note` (signed now) to the open history file and syncs it: once this
/// returns, the checkpoint survives a crash.
pub fn append(file: &mut std::fs::File, note: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut rec = Vec::with_capacity(note.len() + 16);
    push(&mut rec, crate::ledger::now_ms(), note);
    file.write_all(&rec)?;
    file.sync_data()
}

/// One record of the history, as stored (the note is not yet verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the record in the file.
    pub offset: usize,
    /// When it was signed, in milliseconds since the Unix epoch (informational, not signed).
    pub signed_at_ms: u64,
    /// The signed note, or `None` when it is not UTF-8.
    pub note: Option<String>,
}

/// The parsed history file.
#[derive(Debug)]
pub struct History {
    /// Intact records, in order.
    pub records: Vec<Record>,
    /// What follows the last intact record.
    pub tail: Tail,
    /// Length of the file up to the end of the last intact record.
    pub intact_len: usize,
}

/// Parses a history file.
pub fn parse(bytes: &[u8]) -> Result<History, HeaderError> {
    let (_, start) = frame::read_header(bytes, MAGIC, "checkpoint history", VERSION)?;
    let mut iter = Records::new(bytes, start);
    let mut records = Vec::new();
    let mut offset = start;
    while let Some(rec) = iter.next() {
        let (time, note) = rec.split_at(8.min(rec.len()));
        let signed_at_ms = <[u8; 8]>::try_from(time)
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        records.push(Record {
            offset,
            signed_at_ms,
            note: std::str::from_utf8(note).ok().map(str::to_owned),
        });
        offset = iter.position();
    }
    Ok(History {
        records,
        tail: iter.tail().unwrap_or(Tail::Clean),
        intact_len: iter.position(),
    })
}
