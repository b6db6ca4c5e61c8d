//! The investigation store: `<data-dir>/index/`.
//!
//! Derived data, rebuilt from the ledger whenever it lags (and from scratch by `acta reindex`):
//! the search index of every ledger entry (`index/search/`). The index records in each commit the
//! ledger index up to which it is complete; entries after that are normalised again from the
//! ledger when the store is opened, so a crash loses nothing that the ledger acknowledged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acta_event::Event;
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

/// Where the investigation store lives in a data directory.
pub fn index_dir(root: &Path) -> PathBuf {
    root.join("index").join("search")
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
    /// Ledger index after the last entry added.
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
        Ok(Store {
            writer,
            next,
            committed: next,
            last_commit: Instant::now(),
        })
    }

    /// Adds the rows of a batch stored as ledger entries `first..`; commits when the last commit
    /// is older than a second, so that a long ingest is searchable as it goes.
    pub fn append(&mut self, first: u64, done: &Done) -> Result<()> {
        if first != self.next {
            return Err(anyhow!(
                "search index out of step: has entries up to {}, given a batch from {first}",
                self.next
            ));
        }
        for (i, (p, span)) in done.rows.iter().zip(&done.spans).enumerate() {
            let mut row = p.row.clone();
            row.index = first + i as u64;
            let raw = done.data.get(span.clone()).unwrap_or_default();
            self.writer.add(&row, &[p.detail.as_str()], raw)?;
        }
        self.next = first + done.rows.len() as u64;
        if self.last_commit.elapsed() >= COMMIT_EVERY {
            self.commit()?;
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

    /// Commits and waits for background merges.
    pub fn close(mut self) -> Result<()> {
        self.commit()?;
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
        if len <= self.next {
            return Ok(0);
        }
        progress.set_length(len - self.next);
        let mut done = 0u64;
        for entry in entries.starting_at(self.next) {
            let entry = entry?;
            if entry.index < self.next {
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
            self.writer
                .add(&row, &[p.detail.as_str()], &entry.payload)?;
            self.next = entry.index + 1;
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
