//! acta's investigation store, derived from the ledger and rebuildable from it at any time.
//!
//! Every ledger entry becomes one [`Row`] of investigation fields. Rows go to two places:
//! sealed Parquet segments (the normalised fields and the raw record, readable by any analytics
//! engine) and a Tantivy index (keyword fields, time and ledger index as fast fields) that
//! answers searches, timelines and counts.

pub mod index;
pub mod row;
pub mod segment;

pub use index::{FullText, Hit, Index, IndexError, StatField, StatRow, TimeRange, WhoRow, Writer};
pub use row::Row;
