//! The investigation store: `<data-dir>/index/`.
//!
//! Derived data, rebuilt from the ledger whenever it lags (and from scratch by `acta reindex`):
//! the search index of every ledger entry (`index/search/`) and sealed Parquet segments holding
//! each entry's investigation fields and raw record (`index/segments/`). The index records in
//! each commit the ledger index up to which it is complete; segments are sealed when a writer
//! closes (and every million rows), and cover consecutive entries from 0. Whatever either lacks
//! is normalised again from the ledger when the store is opened, so a crash loses nothing the
//! ledger acknowledged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acta_event::Event;
use acta_index::segment::SegmentWriter;
use acta_index::{FullText, Index, Row, Writer};
use acta_ingest::formats::{Choice, Format, Record, Registry};
use acta_ledger::Envelope;
use acta_ledger::read::Entries;
use anyhow::{Context as _, Result, anyhow};
use indicatif::ProgressBar;

use crate::normalise::Done;

/// Memory the index writer may buffer before it flushes a segment.
const WRITER_HEAP: usize = 128 << 20;
/// Longest the newest entries wait before they are searchable during a long ingest.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Rows per sealed segment at most (a writer that closes seals a shorter one).
const SEGMENT_ROWS: usize = 1 << 20;

/// The investigation store of a data directory.
pub fn store_dir(root: &Path) -> PathBuf {
    root.join("index")
}

/// Where the search index lives in a data directory.
pub fn index_dir(root: &Path) -> PathBuf {
    store_dir(root).join("search")
}

/// Where the sealed segments live in a data directory.
pub fn segments_dir(root: &Path) -> PathBuf {
    store_dir(root).join("segments")
}

/// What the index needs of one stored record, prepared on the normaliser threads.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The row, its `index` not known yet (0).
    pub row: Row,
    /// Extra free text: the event's status detail and message.
    pub detail: String,
}

impl Prepared {
    /// The row of a record: from its event, or, for a record that is no event of its own, a
    /// base row (class 0) with the time of receipt.
    pub fn new(source: &str, event: Option<&Event>, received_at_ms: i64) -> Prepared {
        match event {
            Some(e) => {
                let mut detail = String::new();
                for d in [&e.status_detail, &e.message].into_iter().flatten() {
                    detail.push_str(d);
                    detail.push('\n');
                }
                Prepared {
                    row: Row::from_event(0, source, e),
                    detail,
                }
            }
            None => Prepared {
                row: Row {
                    time: received_at_ms,
                    source: source.to_owned(),
                    outcome: "unknown",
                    ..Row::default()
                },
                detail: String::new(),
            },
        }
    }
}

/// The store, open for writing.
pub struct Store {
    writer: Writer,
    segments: SegmentWriter,
    /// Ledger index after the last entry added to the index.
    next: u64,
    /// Ledger index up to which the last commit is complete.
    committed: u64,
    last_commit: Instant,
}

impl Store {
    /// Opens (or creates) the store of the data directory at `root`.
    pub fn open(root: &Path, full_text: Option<FullText>) -> Result<Store> {
        let dir = index_dir(root);
        let index = Index::open(&dir, full_text)
            .with_context(|| format!("cannot open the search index in `{}`", dir.display()))?;
        let writer = index.writer(WRITER_HEAP)?;
        let next = index.next()?;
        let seg_dir = segments_dir(root);
        let segments = SegmentWriter::new(&seg_dir)
            .with_context(|| format!("cannot open the segments in `{}`", seg_dir.display()))?;
        Ok(Store {
            writer,
            segments,
            next,
            committed: next,
            last_commit: Instant::now(),
        })
    }

    /// Adds the rows of a batch stored as ledger entries `first..`; commits when the last commit
    /// is older than a second, so that a long ingest is searchable as it goes.
    pub fn append(&mut self, first: u64, done: &Done) -> Result<()> {
        if first != self.next || self.segments.next().is_some_and(|n| n != first) {
            return Err(anyhow!(
                "investigation store out of step: has entries up to {}, given a batch from {first}",
                self.next
            ));
        }
        for (i, (p, span)) in done.rows.iter().zip(&done.spans).enumerate() {
            let mut row = p.row.clone();
            row.index = first + i as u64;
            let raw = done.data.get(span.clone()).unwrap_or_default();
            self.add(&row, &p.detail, done.received_at_ms, raw, true)?;
        }
        self.next = first + done.rows.len() as u64;
        if self.last_commit.elapsed() >= COMMIT_EVERY {
            self.commit()?;
        }
        Ok(())
    }

    /// Adds one row to the segments and, when `index`, to the search index.
    fn add(
        &mut self,
        row: &Row,
        detail: &str,
        received_at_ms: i64,
        raw: &[u8],
        index: bool,
    ) -> Result<()> {
        if index {
            self.writer.add(row, &[detail], raw)?;
        }
        if self.segments.next().is_none_or(|n| n == row.index) {
            self.segments.push(row, received_at_ms, raw)?;
            if self.segments.len() >= SEGMENT_ROWS {
                self.segments.seal()?;
            }
        }
        Ok(())
    }

    /// Makes every entry added so far durable and searchable.
    pub fn commit(&mut self) -> Result<()> {
        if self.committed != self.next {
            self.writer.commit(self.next)?;
            self.committed = self.next;
        }
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Commits, seals the rows not yet in a segment, and waits for background merges.
    pub fn close(mut self) -> Result<()> {
        self.commit()?;
        self.segments.seal()?;
        self.writer.finish()?;
        Ok(())
    }

    /// Normalises and indexes the ledger entries the store does not cover yet (after a crash, a
    /// removed index, or a ledger written by an older acta). Returns how many entries were read.
    pub fn catch_up(
        &mut self,
        ledger_dir: &Path,
        registry: &Registry,
        progress: &ProgressBar,
    ) -> Result<u64> {
        let entries = match Entries::open(ledger_dir) {
            Ok(e) => e,
            Err(_) if !ledger_dir.exists() => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let len = entries.len();
        // Segments cover entries from 0 on; a fresh segment directory starts there.
        let seg_next = self.segments.next().unwrap_or(0);
        let start = self.next.min(seg_next);
        if len <= self.next && len <= seg_next {
            return Ok(0);
        }
        progress.set_length(len - start);
        let mut done = 0u64;
        for entry in entries.starting_at(start) {
            let entry = entry?;
            if entry.index < start {
                continue;
            }
            let env = Envelope::decode(&entry.envelope)
                .map_err(|e| anyhow!("entry {}: {e}", entry.index))?;
            let choice = env
                .source
                .parse::<Format>()
                .map_or(Choice::Auto, Choice::Detected);
            let received_at_ms = i64::try_from(env.received_at_ms).unwrap_or(i64::MAX);
            let n = registry.normalise_lean(
                &Record {
                    bytes: &entry.payload,
                    received_at_ms,
                },
                choice,
            );
            let p = Prepared::new(env.source, n.event.as_deref(), received_at_ms);
            let mut row = p.row;
            row.index = entry.index;
            let to_index = entry.index >= self.next;
            self.add(&row, &p.detail, received_at_ms, &entry.payload, to_index)?;
            if to_index {
                self.next = entry.index + 1;
            }
            done += 1;
            progress.inc(1);
            if self.last_commit.elapsed() >= COMMIT_EVERY {
                self.commit()?;
            }
        }
        self.commit()?;
        Ok(done)
    }
}
