//! The investigation store: `<data-dir>/index/`.
//!
//! Derived data, rebuilt from the ledger whenever it lags (and from scratch by `acta reindex`):
//! the search index of every ledger entry (`index/search/`), immutable parts covering
//! consecutive entries from 0. A commit writes the entries added since the last one as a part;
//! the raw records are not copied, the ledger keeps them. Whatever the index lacks is normalised
//! again from the ledger when the store is opened, so a crash loses nothing the ledger
//! acknowledged.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use acta_event::Event;
use acta_index::{FullText, Index, IndexError, Row, Writer};
use acta_ingest::formats::{Choice, Format, Normalised, Record, Registry};
use acta_ledger::Envelope;
use acta_ledger::read::Entries;
use anyhow::{Context as _, Result, anyhow};
use indicatif::ProgressBar;

use crate::normalise::Done;

/// Longest the newest entries wait before they are searchable during a long ingest.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// The investigation store of a data directory.
pub fn store_dir(root: &Path) -> PathBuf {
    root.join("index")
}

/// Where the search index lives in a data directory.
pub fn index_dir(root: &Path) -> PathBuf {
    store_dir(root).join("search")
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
                    source: source.into(),
                    outcome: "unknown",
                    ..Row::default()
                },
                detail: String::new(),
            },
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
/// `raw_data` or `unmapped`, which rows do not read), and when acta received it.
pub fn restored_row(
    registry: &Registry,
    index: u64,
    envelope: &[u8],
    payload: &[u8],
) -> Result<(Prepared, i64)> {
    let r =
        acta_event::without_unmapped(|| renormalise(registry, index, envelope, payload, false))?;
    let mut p = Prepared::new(&r.source, r.normalised.event.as_deref(), r.received_at_ms);
    p.row.index = index;
    Ok((p, r.received_at_ms))
}

/// Work for the indexing thread.
enum ToIndex {
    /// Rows of consecutive ledger entries, and (raw full-text mode) their records.
    Rows {
        rows: Vec<Prepared>,
        raw: Option<Vec<Vec<u8>>>,
    },
    /// Write what is buffered as a part; answer when done, if asked.
    Commit(Option<SyncSender<()>>),
}

/// Batches queued for the indexing thread at most.
const QUEUE: usize = 4;
/// Rows sent at a time while catching up from the ledger.
const CATCH_UP_BATCH: usize = 4096;

/// The store, open for writing. Rows are indexed on a thread of their own, so that building
/// and writing parts overlaps the ingest pipeline.
pub struct Store {
    tx: Option<SyncSender<ToIndex>>,
    handle: Option<JoinHandle<Result<()>>>,
    raw: bool,
    /// Ledger index after the last entry handed to the index.
    next: u64,
    /// Ledger index up to which the last commit was asked for.
    committed: u64,
    last_commit: Instant,
}

fn index_thread(mut writer: Writer, rx: Receiver<ToIndex>) -> Result<()> {
    for msg in rx {
        match msg {
            ToIndex::Rows { rows, raw } => {
                for (i, p) in rows.iter().enumerate() {
                    let record = raw
                        .as_ref()
                        .and_then(|r| r.get(i))
                        .map_or(&[][..], Vec::as_slice);
                    writer.add(&p.row, &[&p.detail], record)?;
                }
            }
            ToIndex::Commit(reply) => {
                writer.commit()?;
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
        }
    }
    writer.commit()?;
    Ok(())
}

impl Store {
    /// Opens (or creates) the store of the data directory at `root`. An index built by an
    /// earlier version of acta is removed, to be rebuilt from the ledger.
    pub fn open(root: &Path, full_text: Option<FullText>) -> Result<Store> {
        let dir = index_dir(root);
        let index = match Index::open(&dir, full_text) {
            Err(IndexError::Outdated { .. }) => {
                eprintln!(
                    "acta: the search index was built by an earlier version of acta; rebuilding it from the ledger"
                );
                Index::clear(&dir)?;
                Index::open(&dir, full_text)
            }
            other => other,
        }
        .with_context(|| format!("cannot open the search index in `{}`", dir.display()))?;
        // Sealed Parquet segments of earlier versions: the ledger holds the raw records.
        let old_segments = store_dir(root).join("segments");
        if old_segments.exists() {
            std::fs::remove_dir_all(&old_segments)
                .with_context(|| format!("cannot remove `{}`", old_segments.display()))?;
        }
        let writer = index.writer()?;
        let next = writer.next();
        let (tx, rx) = sync_channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("acta-index".into())
            .spawn(move || index_thread(writer, rx))
            .context("cannot start the indexing thread")?;
        Ok(Store {
            tx: Some(tx),
            handle: Some(handle),
            raw: index.full_text() == FullText::Raw,
            next,
            committed: next,
            last_commit: Instant::now(),
        })
    }

    /// The ledger index of the next entry [`Store::append`] takes.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Whether [`Store::append`] reads the batch's records (raw full-text mode) besides its rows.
    pub fn needs_records(&self) -> bool {
        self.raw
    }

    /// Hands `msg` to the indexing thread; if it has stopped, reports why.
    fn send(&mut self, msg: ToIndex) -> Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if !sent {
            self.stop()?;
            return Err(anyhow!("the indexing thread stopped"));
        }
        Ok(())
    }

    /// Closes the queue and waits for the indexing thread.
    fn stop(&mut self) -> Result<()> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| anyhow!("the indexing thread panicked"))?
                .context("cannot write the search index"),
            None => Ok(()),
        }
    }

    /// Adds the rows of a batch stored as ledger entries `first..`; commits when the last commit
    /// is older than a second, so that a long ingest is searchable as it goes.
    pub fn append(&mut self, first: u64, done: &mut Done) -> Result<()> {
        if first != self.next {
            return Err(anyhow!(
                "investigation store out of step: has entries up to {}, given a batch from {first}",
                self.next
            ));
        }
        let mut rows = std::mem::take(&mut done.rows);
        for (i, p) in rows.iter_mut().enumerate() {
            p.row.index = first + i as u64;
        }
        let count = rows.len() as u64;
        let raw = self.raw.then(|| {
            done.spans
                .iter()
                .map(|span| done.data.get(span.clone()).unwrap_or_default().to_vec())
                .collect()
        });
        self.send(ToIndex::Rows { rows, raw })?;
        self.next = first + count;
        self.commit_if_due()
    }

    /// Makes every entry added so far durable and searchable, and waits until it is.
    pub fn commit(&mut self) -> Result<()> {
        let (reply, done) = sync_channel(1);
        self.send(ToIndex::Commit(Some(reply)))?;
        if done.recv().is_err() {
            self.stop()?;
            return Err(anyhow!("the indexing thread stopped"));
        }
        self.committed = self.next;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Asks for a commit when entries were added since the last one and that was a commit period
    /// ago (an input pausing between records still becomes searchable within the period).
    pub fn commit_if_due(&mut self) -> Result<()> {
        if self.committed != self.next && self.last_commit.elapsed() >= COMMIT_EVERY {
            self.send(ToIndex::Commit(None))?;
            self.committed = self.next;
            self.last_commit = Instant::now();
        }
        Ok(())
    }

    /// Commits what is buffered and waits for the indexing thread.
    pub fn close(mut self) -> Result<()> {
        self.stop()
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
        let start = self.next;
        if len <= start {
            return Ok(0);
        }
        progress.set_length(len - start);
        let mut done = 0u64;
        let mut rows = Vec::with_capacity(CATCH_UP_BATCH);
        let mut raw = Vec::new();
        for entry in entries.starting_at(start) {
            let entry = entry?;
            if entry.index < start {
                continue;
            }
            let (p, _) = restored_row(registry, entry.index, &entry.envelope, &entry.payload)?;
            rows.push(p);
            if self.raw {
                raw.push(entry.payload);
            }
            done += 1;
            progress.inc(1);
            if rows.len() == CATCH_UP_BATCH {
                let raw = self.raw.then(|| std::mem::take(&mut raw));
                self.send(ToIndex::Rows {
                    rows: std::mem::replace(&mut rows, Vec::with_capacity(CATCH_UP_BATCH)),
                    raw,
                })?;
                self.next = entry.index + 1;
                self.commit_if_due()?;
            }
        }
        if !rows.is_empty() {
            self.next += rows.len() as u64;
            let raw = self.raw.then_some(raw);
            self.send(ToIndex::Rows { rows, raw })?;
        }
        self.commit()?;
        Ok(done)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
