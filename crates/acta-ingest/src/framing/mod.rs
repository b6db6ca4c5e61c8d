//! Framing: cutting an input byte stream into records, without interpreting
//! them.
//!
//! Access logs arrive in a few physical shapes (NDJSON, a JSON array, a
//! CloudTrail `{"Records":[...]}` envelope, pretty-printed objects one after
//! another) and parsers should not care which. Framing turns every shape into
//! the same thing: a sequence of records, each the exact bytes of one event as
//! they appear in the input. Keeping the bytes untouched (no re-serialisation)
//! means what acta stores and hashes later is what the source wrote.
//!
//! # Detecting the shape
//!
//! The shape is detected per input from its first bytes, skipping leading
//! whitespace (and a UTF-8 byte order mark at the very start):
//!
//! - `[`: a **JSON array**; each top-level element is a record.
//! - `{` followed by `"Records"`, `:` and `[` (whitespace allowed between
//!   them): an **envelope**; each element of that array is a record. Several
//!   envelopes one after another (concatenated CloudTrail files) are accepted.
//! - another `{`: if the first line alone holds one complete value, the input
//!   is **NDJSON** ([`Shape::Lines`]); otherwise (a value spread over several
//!   lines, or several values on the first line) it is a sequence of
//!   **concatenated values**, each a record.
//! - anything else: **lines**, one record per line (text logs included).
//!   Optionally ([`QuotedNewlines`]), a newline inside a double-quoted
//!   field does not end the record, for CSV and for text logs that embed
//!   multi-line CSV records (pgaudit).
//!
//! Deciding on "first line is one complete value" needs no look-ahead buffer:
//! the first value is scanned as a record either way, and the verdict only
//! changes whether its line's surrounding whitespace belongs to it.
//!
//! In line mode, a line starting (after spaces) with an envelope start is
//! split into its elements, streaming, so a CloudTrail file stored as one
//! 100 MB line costs one element of memory, not one line. Such an envelope
//! must end on its line: a line is the unit of damage in NDJSON, and letting
//! a truncated envelope swallow the following lines would turn one bad line
//! into many.
//!
//! # Why a structural scanner, not a JSON parser
//!
//! Element boundaries are found by a scanner that tracks only depth, strings
//! and escapes (see `scan.rs`). It never recurses and never buffers more than
//! the record being cut, so memory is bounded by `max_record_bytes` plus the
//! reader's buffer whatever the input size or nesting. Each record is then
//! validated on its own by serde_json, only to set its [`Flag`]: a record that
//! is not valid JSON is still a record, because dropping it would hide
//! exactly the input acta is meant to account for. A caller whose next step
//! parses every record anyway (acta's ingest pipeline) turns validation off
//! with [`FramerConfig::check_json`] and gets [`Flag::Unchecked`] instead.
//!
//! # Nothing is dropped silently
//!
//! Every byte of content ends up in a record, in [`FramingReport::rejected`]
//! (records over the size limit, skipped without being buffered), or is
//! structure (brackets, commas, the envelope wrapper). When the structure of
//! an array, envelope or value sequence breaks, the framer stops trusting it:
//! the bytes of the broken element and everything after are emitted as line
//! records flagged [`Flag::Malformed`], and the switch is reported once. An
//! I/O error ends the input with the partial record flagged
//! [`Flag::Truncated`] before the error itself is returned.
//!
//! # Batches
//!
//! Records are appended to a caller-owned [`RecordBatch`]: one byte buffer and
//! one metadata vector reused from batch to batch, so the hot path allocates
//! nothing per record and bytes are copied once, from the reader's buffer to
//! the batch.

mod framer;
mod input;
mod scan;
mod validate;

use std::io;
use std::ops::Range;
use std::path::PathBuf;

pub use framer::Framer;
pub use input::{open_bytes, open_input};

/// Reading limits and options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerConfig {
    /// Largest record kept; larger ones are skipped and reported as
    /// [`Rejected`].
    pub max_record_bytes: usize,
    /// In line mode, whether a newline inside a double-quoted field ends
    /// the record (see [`QuotedNewlines`]).
    pub quoted_newlines: QuotedNewlines,
    /// Whether each record is validated as JSON to set its [`Flag`]. When
    /// off, records framing found intact are flagged [`Flag::Unchecked`] and
    /// cost nothing beyond being cut.
    pub check_json: bool,
}

impl FramerConfig {
    /// 64 MiB: far above any real event, low enough that a runaway line
    /// cannot exhaust memory.
    pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 << 20;
}

impl Default for FramerConfig {
    fn default() -> Self {
        Self {
            max_record_bytes: Self::DEFAULT_MAX_RECORD_BYTES,
            quoted_newlines: QuotedNewlines::Off,
            check_json: true,
        }
    }
}

/// Line records whose fields may hold newlines: CSV, and text logs that
/// embed a CSV record (pgaudit's `AUDIT:` lines).
///
/// When enabled, a line record goes on past a newline while a double-quoted
/// field is open. Quotes are counted from the start of the record (a doubled
/// `""` inside a field counts twice, so it never changes the state); a
/// record starting with `{` or `[` (NDJSON, where `\"` escapes would be
/// miscounted) always ends at its newline. The joined record keeps every
/// byte, embedded newlines included.
///
/// Damage stays local: a stray quote joins lines only until the next quote
/// closes it, and a joined record that would exceed
/// [`FramerConfig::max_record_bytes`] is not joined after all: its lines
/// become records of their own (counted in
/// [`FramingReport::quoted_splits`]), so nothing is rejected that plain line
/// mode would have kept. An open quote at the end of input ends the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QuotedNewlines {
    /// Every newline ends a line record.
    #[default]
    Off,
    /// In every record: for CSV files (PostgreSQL csvlog).
    Always,
    /// Only in records that contain this marker before the newline, so that
    /// unrelated lines with unbalanced quotes are never joined.
    WithMarker(&'static [u8]),
}

impl QuotedNewlines {
    /// pgaudit records in PostgreSQL stderr logs and psql output: a
    /// statement spanning lines is one quoted field after `AUDIT: `.
    pub const PGAUDIT: QuotedNewlines = QuotedNewlines::WithMarker(b"AUDIT: ");

    /// The mode `acta ingest` uses for an input: [`QuotedNewlines::Always`] for CSV files
    /// (`.csv`, `.csv.gz`: PostgreSQL csvlog), [`QuotedNewlines::PGAUDIT`] for everything else
    /// (it only ever joins lines after an `AUDIT: ` marker with an open quote, and never JSON
    /// lines).
    pub fn for_path(path: &std::path::Path) -> QuotedNewlines {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.ends_with(".csv") || name.ends_with(".csv.gz") {
            QuotedNewlines::Always
        } else {
            QuotedNewlines::PGAUDIT
        }
    }

    /// The mode for an input known by its first bytes only (an HTTP request body, already
    /// decompressed): [`QuotedNewlines::Always`] when its first line is a PostgreSQL csvlog
    /// record (a `YYYY-MM-DD HH:MM:SS[.fff] ZONE,` timestamp, then at least 20 more fields),
    /// [`QuotedNewlines::PGAUDIT`] otherwise.
    pub fn for_bytes(head: &[u8]) -> QuotedNewlines {
        let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
        if is_csvlog_line(line) {
            QuotedNewlines::Always
        } else {
            QuotedNewlines::PGAUDIT
        }
    }
}

/// Whether `line` starts as a PostgreSQL csvlog record does.
fn is_csvlog_line(line: &[u8]) -> bool {
    // `2026-11-21 14:08:18.829 UTC,`
    let shape = b"dddd-dd-dd dd:dd:dd";
    let Some(stamp) = line.get(..shape.len()) else {
        return false;
    };
    let fits = stamp.iter().zip(shape).all(|(b, s)| match s {
        b'd' => b.is_ascii_digit(),
        other => b == other,
    });
    if !fits {
        return false;
    }
    let rest = line.get(shape.len()..).unwrap_or_default();
    let Some(comma) = rest.iter().position(|&b| b == b',') else {
        return false;
    };
    // Fractional seconds, then a space and a zone name or offset.
    let zone = rest.get(..comma).unwrap_or_default();
    let zone_ok = zone.len() <= 16
        && zone
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b' ' | b'+' | b'-' | b':'))
        && zone.contains(&b' ');
    zone_ok && memchr::memchr_iter(b',', line).count() >= 21
}

#[cfg(test)]
mod quoted_tests {
    use super::*;

    #[test]
    fn csvlog_bodies_are_recognised_by_their_first_line() {
        let csv = br#"2026-11-21 14:08:18.829 UTC,,,14604,,6b01a5d2.390c,1,,2026-11-21 14:08:18 UTC,,0,LOG,00000,"starting",,,,,,,,,"","postmaster",,0
"#;
        assert_eq!(QuotedNewlines::for_bytes(csv), QuotedNewlines::Always);
        for other in [
            &b"2026-11-21 14:08:18.829 UTC [14604] LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,\"select 1\",<none>\n"[..],
            b"{\"eventTime\":\"2026-11-21 14:08:18\"}\n",
            b"Nov 21 14:08:18 host sshd[1]: Accepted publickey for root\n",
            b"",
        ] {
            assert_eq!(QuotedNewlines::for_bytes(other), QuotedNewlines::PGAUDIT);
        }
    }
}

/// The detected shape of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One record per line (NDJSON or text).
    Lines,
    /// A top-level JSON array; one record per element.
    JsonArray,
    /// `{"Records":[...]}`; one record per element of `Records`.
    Envelope,
    /// JSON values one after another; one record per value.
    Concatenated,
}

/// What framing learned about a record's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// One valid JSON value.
    Json,
    /// Not valid JSON (text log lines land here); the reason says why.
    NotJson(&'static str),
    /// Part of the input after its structure broke, kept line by line; the
    /// reason says what broke.
    Malformed(&'static str),
    /// Cut short by an I/O error.
    Truncated,
    /// Cut intact, content not checked ([`FramerConfig::check_json`] off).
    Unchecked,
}

impl Flag {
    /// Why the record is not plain JSON, if it is not.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Flag::Json | Flag::Unchecked => None,
            Flag::NotJson(r) | Flag::Malformed(r) => Some(r),
            Flag::Truncated => Some("cut short by a read error"),
        }
    }
}

/// Where a record is and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// The record's bytes within [`RecordBatch::data`].
    pub range: Range<usize>,
    /// 1-based line of the input where the record starts.
    pub line: u64,
    /// 0-based number of the record within its input (emitted records only).
    pub ordinal: u64,
    pub flag: Flag,
}

/// Records framed from one input, reusable across calls.
///
/// `data` holds the record bytes back to back; it may also hold a few bytes
/// that belong to no record (the line separators of a malformed tail), so
/// always go through `records[i].range`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordBatch {
    pub data: Vec<u8>,
    pub records: Vec<RecordMeta>,
}

impl RecordBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the batch, keeping its allocations for the next fill.
    pub fn clear(&mut self) {
        self.data.clear();
        self.records.clear();
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The `i`-th record's bytes and metadata.
    pub fn get(&self, i: usize) -> Option<(&[u8], &RecordMeta)> {
        let meta = self.records.get(i)?;
        Some((self.data.get(meta.range.clone()).unwrap_or_default(), meta))
    }

    /// Records in order, with their bytes.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &RecordMeta)> + '_ {
        self.records
            .iter()
            .map(|meta| (self.data.get(meta.range.clone()).unwrap_or_default(), meta))
    }

    /// Total bytes of all records.
    pub fn bytes(&self) -> usize {
        self.records.iter().map(|m| m.range.len()).sum()
    }
}

/// A record skipped for exceeding [`FramerConfig::max_record_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line where the record starts.
    pub line: u64,
    /// Its size (so far, if the input ended inside it).
    pub bytes: u64,
    pub reason: String,
}

/// What framing one input did, for the end-of-input summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FramingReport {
    /// Detected shape; `None` until detected (and for empty inputs).
    pub shape: Option<Shape>,
    /// Records emitted.
    pub records: u64,
    /// Input bytes consumed (after decompression).
    pub bytes: u64,
    /// Bytes of the records emitted.
    pub record_bytes: u64,
    /// Whitespace-only lines skipped in line mode.
    pub blank_lines: u64,
    /// Records emitted with a flag that has a [reason](Flag::reason): neither
    /// [`Flag::Json`] nor [`Flag::Unchecked`].
    pub flagged: u64,
    /// The first [`FramingReport::MAX_REJECTED_KEPT`] rejected records.
    pub rejected: Vec<Rejected>,
    /// All rejected records, including those not kept in `rejected`.
    pub rejected_count: u64,
    /// Where the input's structure broke (1-based line of the first byte kept
    /// as a malformed line) and why. From there on every line is a record
    /// flagged [`Flag::Malformed`].
    pub switched_to_lines: Option<(u64, &'static str)>,
    /// NDJSON lines holding an envelope that broke before closing; the rest
    /// of each such line is kept as a [`Flag::Malformed`] record and framing
    /// resumes with the next line.
    pub broken_envelope_lines: u64,
    /// The input holds no content: no bytes, or only whitespace.
    pub empty: bool,
    /// Newlines inside quoted fields that did not end a record (see
    /// [`QuotedNewlines`]).
    pub quoted_newlines: u64,
    /// Records with quoted newlines kept line by line instead, because joined
    /// they would exceed the size limit.
    pub quoted_splits: u64,
}

impl FramingReport {
    /// How many [`Rejected`] entries are kept; `rejected_count` has the total.
    pub const MAX_REJECTED_KEPT: usize = 100;
}

/// Why an input could not be (fully) read.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// The input could not be opened (or its first bytes read).
    #[error("cannot open `{}`: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    /// Reading failed part-way. Records before `line` were delivered; the rest
    /// of the input is lost.
    #[error(
        "cannot read `{name}` past line {line}: {source}; the records before it were kept, \
         the rest of this input is skipped (is the file truncated or corrupt?)"
    )]
    Io {
        name: String,
        line: u64,
        source: io::Error,
    },
}
