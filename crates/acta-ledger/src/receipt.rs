//! Inclusion receipts in the C2SP tlog-proof text format (<https://c2sp.org/tlog-proof>).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the entry's canonical envelope>
//! index <entry index>
//! <base64 proof hash, one per line, leaf's sibling first>
//!
//! <the signed checkpoint, verbatim>
//! ```
//!
//! The `extra` line carries the envelope so that a third party can check the receipt alone:
//! hash the envelope as a leaf, walk the proof to the checkpoint's root, check the log's signature,
//! and, given the record, check its SHA-256 and length against the envelope.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::envelope::Envelope;
use crate::hash::{Hash, leaf_hash, sha256};
use crate::note::{SignedCheckpoint, VerifierKey};
use crate::proof::verify_inclusion;

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// An inclusion receipt for one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionReceipt {
    /// Entry index.
    pub index: u64,
    /// The entry's canonical envelope.
    pub envelope: Vec<u8>,
    /// Audit path, leaf's sibling first.
    pub proof: Vec<Hash>,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: String,
}

/// Why a receipt does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The text is not a tlog-proof.
    #[error("not a tlog-proof: {0}")]
    Malformed(String),
    /// The checkpoint's signature or format is bad.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::note::NoteError),
    /// The envelope in `extra` is invalid or names another index.
    #[error("entry envelope: {0}")]
    Envelope(String),
    /// The proof does not lead to the checkpoint's root.
    #[error(
        "the inclusion proof does not lead from entry {index} to the root of the {size}-entry checkpoint"
    )]
    Proof {
        /// Entry index.
        index: u64,
        /// Checkpoint size.
        size: u64,
    },
    /// The record given does not match the envelope.
    #[error("the record does not match the entry: {0}")]
    Record(String),
}

/// What a verified receipt establishes.
#[derive(Clone, Debug)]
pub struct VerifiedReceipt {
    /// Entry index.
    pub index: u64,
    /// Checkpoint size.
    pub tree_size: u64,
    /// Source of the entry.
    pub source: String,
    /// Per-source sequence number.
    pub seq: u64,
    /// When acta received it (ms since the epoch).
    pub received_at_ms: u64,
    /// SHA-256 of the record.
    pub payload_sha256: Hash,
    /// Record length.
    pub payload_len: u64,
    /// Whether a record was given and matched.
    pub record_checked: bool,
}

impl InclusionReceipt {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{HEADER}\nextra {}\nindex {}\n",
            BASE64.encode(&self.envelope),
            self.index
        );
        for h in &self.proof {
            out.push_str(&h.to_base64());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<InclusionReceipt, ReceiptError> {
        let bad = |m: &str| ReceiptError::Malformed(m.to_owned());
        if text.len() > 1 << 20 {
            return Err(bad("larger than 1 MiB"));
        }
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let mut envelope = Vec::new();
        if let Some(extra) = line.strip_prefix("extra ") {
            envelope = BASE64
                .decode(extra)
                .map_err(|_| bad("extra is not base64"))?;
            line = lines.next().ok_or_else(|| bad("no index line"))?;
        }
        let index_text = line
            .strip_prefix("index ")
            .ok_or_else(|| bad("no index line"))?;
        if index_text.len() > 1 && index_text.starts_with('0') {
            return Err(bad("index has leading zeroes"));
        }
        let index = index_text
            .parse()
            .map_err(|_| bad("index is not a number"))?;
        let proof = lines
            .map(|l| {
                Hash::from_base64(l).ok_or_else(|| bad("proof line is not base64 of 32 bytes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > 64 {
            return Err(bad("proof is longer than 64 hashes"));
        }
        Ok(InclusionReceipt {
            index,
            envelope,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Checks the receipt against the log's key, and `record` (the raw record) if given.
    pub fn verify(
        &self,
        key: &VerifierKey,
        record: Option<&[u8]>,
    ) -> Result<VerifiedReceipt, ReceiptError> {
        let cp = SignedCheckpoint::open(&self.checkpoint, key)?.checkpoint;
        let env =
            Envelope::decode(&self.envelope).map_err(|e| ReceiptError::Envelope(e.to_string()))?;
        if env.index != self.index {
            return Err(ReceiptError::Envelope(format!(
                "envelope is for entry {}, not {}",
                env.index, self.index
            )));
        }
        let leaf = leaf_hash(&self.envelope);
        if !verify_inclusion(self.index, cp.size, &leaf, &self.proof, &cp.root) {
            return Err(ReceiptError::Proof {
                index: self.index,
                size: cp.size,
            });
        }
        if let Some(r) = record {
            if r.len() as u64 != env.payload_len {
                return Err(ReceiptError::Record(format!(
                    "{} bytes, the entry has {}",
                    r.len(),
                    env.payload_len
                )));
            }
            if sha256(r) != env.payload_sha256 {
                return Err(ReceiptError::Record("SHA-256 differs".into()));
            }
        }
        Ok(VerifiedReceipt {
            index: self.index,
            tree_size: cp.size,
            source: env.source.to_owned(),
            seq: env.seq,
            received_at_ms: env.received_at_ms,
            payload_sha256: env.payload_sha256,
            payload_len: env.payload_len,
            record_checked: record.is_some(),
        })
    }
}
