//! acta's tamper-evident ledger.
//!
//! Every record acta receives becomes one entry: a small canonical [`Envelope`] (index, receipt
//! time, source, per-source sequence number, payload SHA-256 and length) that is a leaf of an
//! RFC 6962 Merkle tree, plus the payload itself, byte for byte, stored beside the tree. The tree
//! is stored as a C2SP tlog-tiles directory (`log/`), so any tiled-log client can read it, and
//! its roots are signed as C2SP checkpoints with the log's Ed25519 key.
//!
//! The central types:
//! - [`Ledger`]: the writer. Appends [`Batch`]es, commits them with one sync per group, signs a
//!   checkpoint per commit, publishes tiles and `log/checkpoint`, and recovers after a crash.
//! - [`Appender`]: a writer thread in front of a [`Ledger`] that merges concurrent appends into
//!   group commits.
//! - [`verify()`]: the offline auditor: a pure function of the stored files and a public key.
//!
//! The byte-level format of every file is documented in this crate's `README.md`.

#![deny(clippy::indexing_slicing)]
#![warn(missing_docs)]

mod appender;
pub mod envelope;
pub mod frame;
pub mod hash;
mod history;
pub mod journal;
pub mod keys;
pub mod layout;
mod ledger;
pub mod note;
pub mod proof;
pub mod read;
pub mod receipt;
pub mod tile;
pub mod tree;
pub mod verify;

pub use appender::{Appender, AppenderOptions, Receipt, Ticket};
pub use envelope::{Envelope, SourceName};
pub use hash::Hash;
pub use ledger::{
    Batch, Committed, Ledger, LedgerError, LedgerOptions, StoredEntry, lock_shared, now_ms,
};
pub use note::{Checkpoint, LogKey, SignedCheckpoint, VerifierKey};
pub use verify::{VerifyFailure, VerifyOptions, VerifyReport, verify};
