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
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use acta_event::Event;
use acta_index::segment::SegmentWriter;
use acta_index::{FullText, Index, Row, Writer};
use acta_ingest::formats::{Choice, Format, Normalised, Record, Registry};
use acta_ledger::Envelope;
use acta_ledger::read::Entries;
use anyhow::{Context as _, Result, anyhow};
use indicatif::ProgressBar;

use crate::normalise::Done;

/// Memory the index writer may buffer before it flushes a segment.
const WRITER_HEAP: usize = 64 << 20;
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

/// Rows on their way to the segment writer.
#[derive(Default)]
struct SegmentBatch {
    rows: Vec<Row>,
    received_at_ms: Vec<i64>,
    raw: Vec<u8>,
    ends: Vec<usize>,
}

/// Rows handed to the segment thread at a time.
const SEGMENT_BATCH: usize = 4096;

/// The thread encoding segments, off the ingest path: Parquet encoding and compression cost
/// about as much as the rest of indexing.
struct SegmentSink {
    tx: Option<SyncSender<SegmentBatch>>,
    handle: Option<JoinHandle<Result<()>>>,
    /// Ledger index the next row must have.
    next: u64,
    batch: SegmentBatch,
}

impl SegmentSink {
    fn start(mut writer: SegmentWriter) -> SegmentSink {
        let next = writer.next().unwrap_or(0);
        let (tx, rx): (SyncSender<SegmentBatch>, Receiver<SegmentBatch>) = sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("acta-segments".into())
            .spawn(move || -> Result<()> {
                for b in rx {
                    let mut start = 0;
                    for ((row, at), end) in b.rows.iter().zip(&b.received_at_ms).zip(&b.ends) {
                        writer.push(row, *at, b.raw.get(start..*end).unwrap_or_default())?;
                        start = *end;
                        if writer.len() >= SEGMENT_ROWS {
                            writer.seal()?;
                        }
                    }
                }
                writer.seal()?;
                Ok(())
            })
            .ok();
        SegmentSink {
            tx: Some(tx),
            handle,
            next,
            batch: SegmentBatch::default(),
        }
    }

    fn push(&mut self, row: Row, received_at_ms: i64, raw: &[u8]) -> Result<()> {
        if row.index != self.next {
            return Ok(());
        }
        self.next += 1;
        self.batch.rows.push(row);
        self.batch.received_at_ms.push(received_at_ms);
        self.batch.raw.extend_from_slice(raw);
        self.batch.ends.push(self.batch.raw.len());
        if self.batch.rows.len() >= SEGMENT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.rows.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if !sent {
            // The thread stopped on an error: report it.
            return self
                .finish()
                .and(Err(anyhow!("the segment writer stopped")));
        }
        Ok(())
    }

    /// Seals what is buffered and waits for the thread.
    fn finish(&mut self) -> Result<()> {
        if self.tx.is_some() && !self.batch.rows.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            if let Some(tx) = &self.tx {
                let _ = tx.send(batch);
            }
        }
        self.tx = None;
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| anyhow!("the segment writer thread panicked"))?
                .context("cannot write the sealed segments"),
            None => Ok(()),
        }
    }
}

/// A stored entry normalised again, as at ingest: its source names the format it was read as,
/// and its time of receipt is the event time of last resort.
pub struct Restored {
    pub source: String,
    pub received_at_ms: i64,
    pub normalised: Normalised,
}

/// Normalises ledger entry `index` again from its envelope and payload; `with_raw` keeps the
/// record in the event's `raw_data`.
pub fn renormalise(
    registry: &Registry,
    index: u64,
    envelope: &[u8],
    payload: &[u8],
    with_raw: bool,
) -> Result<Restored> {
    let env = Envelope::decode(envelope).map_err(|e| anyhow!("entry {index}: {e}"))?;
    let choice = env
        .source
        .parse::<Format>()
        .map_or(Choice::Auto, Choice::Detected);
    let received_at_ms = i64::try_from(env.received_at_ms).unwrap_or(i64::MAX);
    let record = Record {
        bytes: payload,
        received_at_ms,
    };
    let normalised = if with_raw {
        registry.normalise(&record, choice)
    } else {
        registry.normalise_lean(&record, choice)
    };
    Ok(Restored {
        source: env.source.to_owned(),
        received_at_ms,
        normalised,
    })
}

/// The index row of ledger entry `index`, normalised again from its envelope and payload (without
/// `raw_data`), and when acta received it.
pub fn restored_row(
    registry: &Registry,
    index: u64,
    envelope: &[u8],
    payload: &[u8],
) -> Result<(Prepared, i64)> {
    let r = renormalise(registry, index, envelope, payload, false)?;
    let mut p = Prepared::new(&r.source, r.normalised.event.as_deref(), r.received_at_ms);
    p.row.index = index;
    Ok((p, r.received_at_ms))
}

/// The store, open for writing.
pub struct Store {
    writer: Writer,
    segments: SegmentSink,
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
            segments: SegmentSink::start(segments),
            next,
            committed: next,
            last_commit: Instant::now(),
        })
    }

    /// Adds the rows of a batch stored as ledger entries `first..`; commits when the last commit
    /// is older than a second, so that a long ingest is searchable as it goes.
    pub fn append(&mut self, first: u64, done: &mut Done) -> Result<()> {
        if first != self.next || self.segments.next != first {
            return Err(anyhow!(
                "investigation store out of step: has entries up to {}, given a batch from {first}",
                self.next
            ));
        }
        let rows = std::mem::take(&mut done.rows);
        let count = rows.len() as u64;
        for (i, (p, span)) in rows.into_iter().zip(&done.spans).enumerate() {
            let mut row = p.row;
            row.index = first + i as u64;
            let raw = done.data.get(span.clone()).unwrap_or_default();
            self.add(row, &p.detail, done.received_at_ms, raw, true)?;
        }
        self.next = first + count;
        if self.last_commit.elapsed() >= COMMIT_EVERY {
            self.commit()?;
        }
        Ok(())
    }

    /// Adds one row to the search index (when `index`) and to the segments (when they lack it).
    fn add(
        &mut self,
        row: Row,
        detail: &str,
        received_at_ms: i64,
        raw: &[u8],
        index: bool,
    ) -> Result<()> {
        if index {
            self.writer.add(&row, &[detail], raw)?;
        }
        self.segments.push(row, received_at_ms, raw)
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

    /// Commits when entries were added since the last commit and that was a commit period ago
    /// (an input pausing between records still becomes searchable within the period).
    pub fn commit_if_due(&mut self) -> Result<()> {
        if self.committed != self.next && self.last_commit.elapsed() >= COMMIT_EVERY {
            self.commit()?;
        }
        Ok(())
    }

    /// Commits, seals the rows not yet in a segment, and waits for background merges.
    pub fn close(mut self) -> Result<()> {
        self.commit()?;
        self.segments.finish()?;
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
        let seg_next = self.segments.next;
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
            let (p, received_at_ms) =
                restored_row(registry, entry.index, &entry.envelope, &entry.payload)?;
            let to_index = entry.index >= self.next;
            self.add(p.row, &p.detail, received_at_ms, &entry.payload, to_index)?;
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
