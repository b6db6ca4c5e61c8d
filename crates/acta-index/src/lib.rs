//! acta's investigation store, derived from the ledger and rebuildable from it at any time.
//!
//! Every ledger entry becomes one [`Row`] of investigation fields. Rows are written in immutable
//! index parts (columns of dictionary ids, postings of identifiers; [`index`]) that answer
//! searches, timelines and counts; the raw records stay in the ledger, once. Parquet export files
//! ([`export`]) hold the fields and the raw record, for any analytics engine.

pub mod export;
pub mod index;
mod part;
pub mod row;

pub use index::{FullText, Hit, Index, IndexError, StatField, StatRow, TimeRange, WhoRow, Writer};
pub use row::{CompactString, Row};
