//! acta's input side: reading access-log files and streams.
//!
//! [`framing`] turns any supported input (NDJSON, JSON arrays, CloudTrail
//! envelopes, pretty-printed JSON, text logs; plain or gzip) into a stream of
//! records: the exact bytes of each event, flagged with what framing could
//! tell about them, with nothing dropped silently. Format parsers build on
//! those records.
#![deny(clippy::indexing_slicing)]

pub mod formats;
pub mod framing;
