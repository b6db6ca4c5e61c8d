//! The writer: appends entries, commits them durably in groups, signs and publishes checkpoints,
//! and recovers after a crash.
//!
//! The order of operations is what makes the ledger safe:
//!
//! 1. `append` hashes each payload, builds its envelope and leaf, writes the payload to its
//!    payload segment and the envelope to the journal (both buffered), and writes every bundle and
//!    tile that fills (not synced).
//! 2. `commit` syncs the payload segment and the journal (two `fdatasync`s in parallel, one per
//!    group of any size), only then signs a checkpoint for the new size, and appends it to the
//!    checkpoint history and syncs that. An entry is acknowledged after `commit` returns, so every
//!    acknowledged entry is covered by a durable signed checkpoint.
//! 3. `publish` (at most once per interval, and on close) writes the partial tiles of the signed
//!    size, replaces `log/checkpoint`, and hands closed journal segments to the flusher, which
//!    syncs the file system and then deletes them.
//!
//! A signature is only ever made over entries already on disk, and recovery never discards a
//! synced entry, so the log can never sign two different roots for one size: re-signing a size
//! after a crash reproduces the very same note (Ed25519 is deterministic).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::ops::Range;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::envelope::{Envelope, MAX_PAYLOAD_LEN, SourceName};
use crate::frame::{self, Tail};
use crate::hash::{Hash, leaf_hash, mth, sha256};
use crate::history;
use crate::journal::SegmentHeader;
use crate::layout::{FORMAT_VERSION, FormatFile, Layout, PAYLOAD_SEGMENT_ENTRIES};
use crate::note::{LogKey, SignedCheckpoint};
use crate::proof::{self, ProofError, TileSource};
use crate::tile::{self, BundleEntries, TILE_WIDTH, TileId};
use crate::tree::{FullTile, TreeEdge};

mod recovery;
mod writers;

use recovery::Recovery;
use writers::{Flusher, JournalWriter, PayloadWriter, TileWriter, retire};
pub(crate) use writers::{drop_cached, payload_header};

/// Magic bytes of a payload segment.
pub const PAYLOAD_MAGIC: &[u8; 8] = b"acta-pay";

/// Payload segment format version.
pub const PAYLOAD_VERSION: u32 = 1;

/// Length of a payload segment header (fixed header, 8-byte first index, CRC).
pub const PAYLOAD_HEADER_LEN: u64 = (frame::FIXED_HEADER_LEN + 8 + 4) as u64;

/// Tunables of a ledger writer.
#[derive(Clone, Debug)]
pub struct LedgerOptions {
    /// Longest time a signed checkpoint waits before it is published to `log/checkpoint`.
    pub publish_interval: Duration,
    /// Entries after which the journal starts a new segment (at the next bundle boundary).
    pub journal_segment_entries: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            publish_interval: Duration::from_secs(1),
            journal_segment_entries: 16_384,
        }
    }
}

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A file operation failed.
    #[error("cannot {op} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another process holds the ledger.
    #[error(
        "the ledger at `{}` is in use by another acta process; stop it or use another --data-dir",
        .0.display()
    )]
    Locked(PathBuf),
    /// The key does not belong to this ledger.
    #[error("the ledger at `{}` belongs to log `{ledger}`, but the key given is for `{key}`", path.display())]
    WrongKey {
        /// Ledger directory.
        path: PathBuf,
        /// The ledger's origin.
        ledger: String,
        /// The key's name.
        key: String,
    },
    /// Stored files are damaged in a way that stops the ledger from opening.
    #[error("the ledger at `{}` is damaged: {detail}; run `acta verify` for a full report", path.display())]
    Damaged {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The stored entries do not reach, or do not match, the last signed checkpoint.
    #[error("the ledger at `{}` does not match its last signed checkpoint: {detail}; run `acta verify` for a full report", path.display())]
    Inconsistent {
        /// Ledger directory.
        path: PathBuf,
        /// What does not match.
        detail: String,
    },
    /// An earlier write failed; the writer stops accepting entries until reopened.
    #[error(
        "the ledger stopped accepting writes after an earlier failure ({0}); reopen it to recover"
    )]
    Poisoned(String),
    /// A payload exceeds the ledger's limit.
    #[error("a payload of {0} bytes exceeds the ledger limit of {MAX_PAYLOAD_LEN} bytes")]
    PayloadTooLarge(u64),
    /// A batch was built with spans outside its buffer.
    #[error("batch span {0:?} lies outside its {1}-byte buffer")]
    BadSpan(Range<usize>, usize),
    /// An index or size outside the tree.
    #[error("{0}")]
    OutOfRange(String),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LedgerError + 'a {
    move |source| LedgerError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Records of one source, appended together. Payloads are byte spans of one buffer, so that a
/// batch filled from an input file needs no allocation per record.
///
/// A batch hashes each payload as it is added, on the thread that builds it: the writer thread
/// then only frames, orders and syncs, and producers share the hashing. The hashes cannot
/// disagree with the payloads, since a batch can only be built through these functions.
#[derive(Clone, Debug)]
pub struct Batch {
    source: SourceName,
    received_at_ms: u64,
    data: Vec<u8>,
    spans: Vec<Range<usize>>,
    digests: Vec<Hash>,
}

impl Batch {
    /// An empty batch from `source`, received at `received_at_ms` (milliseconds since the epoch).
    pub fn new(source: SourceName, received_at_ms: u64) -> Batch {
        Batch {
            source,
            received_at_ms,
            data: Vec::new(),
            spans: Vec::new(),
            digests: Vec::new(),
        }
    }

    /// A batch whose payloads are `spans` of `data`.
    pub fn from_parts(
        source: SourceName,
        received_at_ms: u64,
        data: Vec<u8>,
        spans: Vec<Range<usize>>,
    ) -> Result<Batch, LedgerError> {
        let mut digests = Vec::with_capacity(spans.len());
        for s in &spans {
            let payload = data
                .get(s.clone())
                .ok_or_else(|| LedgerError::BadSpan(s.clone(), data.len()))?;
            if (payload.len() as u64) > MAX_PAYLOAD_LEN {
                return Err(LedgerError::PayloadTooLarge(payload.len() as u64));
            }
            digests.push(sha256(payload));
        }
        Ok(Batch {
            source,
            received_at_ms,
            data,
            spans,
            digests,
        })
    }

    /// Adds one payload.
    pub fn push(&mut self, payload: &[u8]) -> Result<(), LedgerError> {
        if (payload.len() as u64) > MAX_PAYLOAD_LEN {
            return Err(LedgerError::PayloadTooLarge(payload.len() as u64));
        }
        let start = self.data.len();
        self.data.extend_from_slice(payload);
        self.spans.push(start..self.data.len());
        self.digests.push(sha256(payload));
        Ok(())
    }

    /// Number of payloads.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the batch holds no payload.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Total payload bytes.
    pub fn payload_bytes(&self) -> u64 {
        self.spans.iter().map(|s| s.len() as u64).sum()
    }

    /// The source.
    pub fn source(&self) -> &SourceName {
        &self.source
    }

    /// The payloads, in order.
    pub fn payloads(&self) -> impl Iterator<Item = &[u8]> {
        self.spans
            .iter()
            .map(|s| self.data.get(s.clone()).unwrap_or(&[]))
    }
}

/// The result of a commit: everything up to `size` is durable and covered by `checkpoint`.
#[derive(Clone, Debug)]
pub struct Committed {
    /// Entries in the ledger.
    pub size: u64,
    /// The signed checkpoint for `size`.
    pub checkpoint: SignedCheckpoint,
}

/// A stored entry read back: its envelope bytes and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    /// Ledger index.
    pub index: u64,
    /// Canonical envelope (the leaf data).
    pub envelope: Vec<u8>,
    /// The payload, checked against the envelope's hash.
    pub payload: Vec<u8>,
}

/// The tamper-evident ledger, open for writing.
pub struct Ledger {
    layout: Layout,
    key: LogKey,
    options: LedgerOptions,
    _lock: File,
    tree: TreeEdge,
    /// Encoded entries of the unfinished bundle.
    bundle: Vec<u8>,
    /// Next sequence number of every source.
    sources: BTreeMap<String, u64>,
    tiles: TileWriter,
    journal: JournalWriter,
    payload: PayloadWriter,
    history: File,
    signed: SignedCheckpoint,
    published: u64,
    last_publish: Instant,
    flusher: Flusher,
    scratch: Vec<u8>,
    poisoned: Option<String>,
    /// Entries made durable by the last commit.
    synced_size: u64,
    /// Commits that synced new entries (for tests and statistics).
    commits: u64,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.layout.root())
            .field("origin", &self.key.name())
            .field("size", &self.tree.size())
            .field("signed", &self.signed.checkpoint.size)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Ledger {
    /// Opens the ledger at `dir`, creating it if absent, and recovers from any interrupted write.
    /// `key` signs checkpoints; a ledger only opens with the key it was created with.
    pub fn open(dir: &Path, key: LogKey, options: LedgerOptions) -> Result<Ledger, LedgerError> {
        let layout = Layout::new(dir);
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let lock = lock(&layout)?;
        let created = ensure_format(&layout, &key)?;
        Recovery::run(layout, key, options, lock, created)
    }

    /// Entries in the ledger (committed or not).
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.key.name()
    }

    /// The directory the ledger lives in.
    pub fn dir(&self) -> &Path {
        self.layout.root()
    }

    /// Number of commits that made new entries durable since the ledger was opened: each costs
    /// one round of syncs, whatever the number of entries it covers.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// The latest signed checkpoint.
    pub fn checkpoint(&self) -> &SignedCheckpoint {
        &self.signed
    }

    /// Root hash of the tree at its current size.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    fn check_poisoned(&self) -> Result<(), LedgerError> {
        match &self.poisoned {
            Some(why) => Err(LedgerError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn poison<T>(&mut self, r: Result<T, LedgerError>) -> Result<T, LedgerError> {
        if let Err(e) = &r {
            self.poisoned.get_or_insert_with(|| e.to_string());
        }
        r
    }

    /// Appends a batch; returns the indices it received. The entries are durable, and may be
    /// acknowledged, only once [`Ledger::commit`] returns.
    pub fn append(&mut self, batch: &Batch) -> Result<Range<u64>, LedgerError> {
        self.check_poisoned()?;
        let first = self.size();
        let r = self.append_inner(batch);
        self.poison(r)?;
        Ok(first..self.size())
    }

    fn append_inner(&mut self, batch: &Batch) -> Result<(), LedgerError> {
        let source = batch.source.as_str();
        for (payload, digest) in batch.payloads().zip(&batch.digests) {
            let index = self.tree.size();
            if index.is_multiple_of(PAYLOAD_SEGMENT_ENTRIES)
                && self.payload.segment != index / PAYLOAD_SEGMENT_ENTRIES
            {
                self.payload.roll(index / PAYLOAD_SEGMENT_ENTRIES)?;
            }
            if index.is_multiple_of(TILE_WIDTH)
                && self.journal.entries(index) >= self.options.journal_segment_entries
            {
                let header = SegmentHeader {
                    base: index,
                    payload_offset: self.payload.len,
                    sources: self.sources.clone(),
                };
                self.journal.roll(header)?;
            }
            let seq = self.sources.entry(source.to_owned()).or_insert(0);
            let envelope = Envelope {
                index,
                received_at_ms: batch.received_at_ms,
                source,
                seq: *seq,
                payload_len: payload.len() as u64,
                payload_sha256: *digest,
            };
            *seq += 1;
            self.scratch.clear();
            envelope.encode(&mut self.scratch);
            let leaf = leaf_hash(&self.scratch);
            frame::push_record(&mut self.journal.out.buf, &self.scratch);
            tile::push_bundle_entry(&mut self.bundle, &self.scratch);
            self.payload.write(payload)?;
            let Ledger {
                tree,
                tiles,
                bundle,
                ..
            } = self;
            tree.push(leaf, &mut |full| tiles.write_full(&full, bundle))?;
            if self.tree.size().is_multiple_of(TILE_WIDTH) {
                self.bundle.clear();
            }
        }
        Ok(())
    }

    /// Makes every appended entry durable and signs a checkpoint covering them.
    pub fn commit(&mut self) -> Result<Committed, LedgerError> {
        self.check_poisoned()?;
        if self.tree.size() > self.synced_size {
            let r = self.sync_appended();
            self.poison(r)?;
            self.synced_size = self.tree.size();
            self.commits += 1;
        }
        if self.tree.size() > self.signed.checkpoint.size {
            self.signed = SignedCheckpoint::sign(&self.key, self.tree.size(), self.tree.root());
            // The checkpoint is durable before the commit returns, so every acknowledged entry
            // is covered by a checkpoint that recovery will find.
            let path = self.layout.history_file();
            let r = history::append(&mut self.history, &self.signed.note)
                .map_err(io_err("append to", &path));
            self.poison(r)?;
        }
        Ok(Committed {
            size: self.signed.checkpoint.size,
            checkpoint: self.signed.clone(),
        })
    }

    fn sync_appended(&mut self) -> Result<(), LedgerError> {
        let Ledger {
            payload, journal, ..
        } = self;
        payload.flush()?;
        journal.flush()?;
        // The two syncs are independent: run them at once so a commit costs one sync latency.
        thread::scope(|s| {
            let p = s.spawn(|| payload.sync());
            let j = journal.sync();
            let p = p.join().unwrap_or_else(|_| {
                Err(LedgerError::Poisoned(
                    "the payload sync thread panicked".into(),
                ))
            });
            j.and(p)
        })
    }

    /// Whether a publish is due: a newer checkpoint waits and the publish interval has passed.
    pub fn publish_due(&self) -> bool {
        self.tree.size() > self.published
            && self.last_publish.elapsed() >= self.options.publish_interval
    }

    /// Time until a pending publish is due, or `None` when nothing waits to be published.
    pub fn publish_wait(&self) -> Option<Duration> {
        (self.tree.size() > self.published).then(|| {
            self.options
                .publish_interval
                .saturating_sub(self.last_publish.elapsed())
        })
    }

    /// Commits if needed, then publishes the latest checkpoint: partial tiles for its size, then
    /// `log/checkpoint`. Also lets the flusher retire journal segments that are no longer needed.
    pub fn publish(&mut self) -> Result<(), LedgerError> {
        if self.tree.size() > self.signed.checkpoint.size {
            self.commit()?;
        }
        self.check_poisoned()?;
        let r = self.publish_inner();
        self.poison(r)
    }

    fn publish_inner(&mut self) -> Result<(), LedgerError> {
        let size = self.signed.checkpoint.size;
        if size != self.published {
            for t in tile::partial_tiles(size) {
                let mut bytes = Vec::with_capacity(usize::from(t.width) * Hash::LEN);
                tile::encode_hashes(self.tree.partial(t.level), &mut bytes);
                self.tiles.write_partial(&t, false, &bytes)?;
                if t.level == 0 {
                    self.tiles.write_partial(&t, true, &self.bundle)?;
                }
            }
            let path = self.layout.checkpoint_file();
            write_replace(&path, self.signed.note.as_bytes())?;
            self.published = size;
        }
        self.last_publish = Instant::now();
        self.flusher.offer(&mut self.journal.closed);
        Ok(())
    }

    /// Publishes if due; returns whether it did.
    pub fn maybe_publish(&mut self) -> Result<bool, LedgerError> {
        if self.publish_due() {
            self.publish()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Commits, publishes and makes every file durable, so the journal shrinks to the unfinished
    /// bundle. Returns the final checkpoint.
    pub fn close(mut self) -> Result<SignedCheckpoint, LedgerError> {
        self.publish()?;
        self.flusher.finish(&mut self.journal.closed);
        let root = self.layout.root().to_owned();
        syncfs(&root)?;
        let closed: Vec<PathBuf> = self.journal.closed.drain(..).map(|(_, _, p)| p).collect();
        retire(&self.layout, &closed)?;
        Ok(self.signed.clone())
    }

    /// Inclusion proof of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(size)?;
        proof::inclusion_proof(self, index, size).map_err(proof_err)
    }

    /// Consistency proof between the trees of `old` and `new` entries.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(new)?;
        proof::consistency_proof(self, old, new).map_err(proof_err)
    }

    /// Root hash of the tree of `size` entries (any size up to the current one).
    pub fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        self.check_size(size)?;
        proof::root_at(self, size).map_err(proof_err)
    }

    fn check_size(&self, size: u64) -> Result<(), LedgerError> {
        if size > self.size() {
            return Err(LedgerError::OutOfRange(format!(
                "tree size {size} is beyond the ledger's {} entries",
                self.size()
            )));
        }
        Ok(())
    }

    /// The encoded entries of bundle `n` (full from its file, or the unfinished one in memory).
    fn bundle_bytes(&self, n: u64) -> Result<Vec<u8>, LedgerError> {
        if n < self.size() / TILE_WIDTH {
            let path = self.layout.bundle(&TileId::full(0, n));
            fs::read(&path).map_err(io_err("read", &path))
        } else {
            Ok(self.bundle.clone())
        }
    }

    /// Reads entry `index` back: envelope and payload, with the payload checked against the
    /// envelope's hash.
    pub fn entry(&self, index: u64) -> Result<StoredEntry, LedgerError> {
        if index >= self.size() {
            return Err(LedgerError::OutOfRange(format!(
                "entry {index} does not exist; the ledger holds {} entries",
                self.size()
            )));
        }
        let segment = index / PAYLOAD_SEGMENT_ENTRIES;
        let mut offset: u64 = 0;
        let mut found = None;
        let first_bundle = segment * PAYLOAD_SEGMENT_ENTRIES / TILE_WIDTH;
        for n in first_bundle..=index / TILE_WIDTH {
            let bytes = self.bundle_bytes(n)?;
            let path = self.layout.bundle(&TileId::full(0, n));
            for (k, e) in BundleEntries::new(&bytes).enumerate() {
                let i = n * TILE_WIDTH + k as u64;
                let env_bytes = e.map_err(|at| {
                    damaged(&path, format!("entry at byte {at} runs past the end"))
                })?;
                let env = Envelope::decode(env_bytes)
                    .map_err(|e| damaged(&path, format!("entry {i}: {e}")))?;
                if i == index {
                    found = Some((env_bytes.to_vec(), env.payload_len, env.payload_sha256));
                    break;
                }
                offset += env.payload_len;
            }
        }
        let Some((envelope, len, digest)) = found else {
            return Err(damaged(
                &self.layout.bundle(&TileId::full(0, index / TILE_WIDTH)),
                format!("entry {index} is missing"),
            ));
        };
        let path = self.layout.payload_segment(segment);
        let file = File::open(&path).map_err(io_err("open", &path))?;
        let mut payload = vec![0u8; usize::try_from(len).unwrap_or(0)];
        file.read_exact_at(&mut payload, PAYLOAD_HEADER_LEN + offset)
            .map_err(io_err("read", &path))?;
        if sha256(&payload) != digest {
            return Err(damaged(
                &path,
                format!("payload of entry {index} does not match its hash"),
            ));
        }
        Ok(StoredEntry {
            index,
            envelope,
            payload,
        })
    }
}

fn proof_err(e: ProofError<LedgerError>) -> LedgerError {
    match e {
        ProofError::Source(e) => e,
        other => LedgerError::OutOfRange(other.to_string()),
    }
}

fn damaged(path: &Path, detail: String) -> LedgerError {
    LedgerError::Damaged {
        path: path.to_owned(),
        detail,
    }
}

impl TileSource for Ledger {
    type Error = LedgerError;

    fn tile(
        &self,
        level: u8,
        index: u64,
        size: u64,
    ) -> Result<std::borrow::Cow<'_, [Hash]>, LedgerError> {
        let width = tile::width_at(level, index, size);
        let full_now = tile::full_tiles(level, self.size());
        if index < full_now {
            let path = self.layout.hash_tile(&TileId::full(level, index));
            let hashes = tile::read_full(&path).map_err(|e| damaged(&path, e))?;
            Ok(std::borrow::Cow::Owned(
                hashes.into_iter().take(width).collect(),
            ))
        } else if index == full_now {
            let partial = self.tree.partial(level);
            Ok(std::borrow::Cow::Borrowed(
                partial.get(..width).unwrap_or(partial),
            ))
        } else {
            Ok(std::borrow::Cow::Borrowed(&[]))
        }
    }
}

/// Takes the ledger's exclusive lock.
fn lock(layout: &Layout) -> Result<File, LedgerError> {
    let path = layout.lock_file();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| LedgerError::Locked(layout.root().to_owned()))?;
    Ok(file)
}

/// Takes a shared lock on the ledger at `dir` for reading it whole (verification): no writer can
/// start meanwhile. Returns `None` when the directory has no lock file (e.g. a copy).
pub fn lock_shared(dir: &Path) -> Result<Option<File>, LedgerError> {
    let layout = Layout::new(dir);
    let path = layout.lock_file();
    let Some(file) = frame::absent_ok(File::open(&path)).map_err(io_err("open", &path))? else {
        return Ok(None);
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared)
        .map_err(|_| LedgerError::Locked(layout.root().to_owned()))?;
    Ok(Some(file))
}

/// Checks the `FORMAT` file, or creates a new ledger; returns whether it was created.
fn ensure_format(layout: &Layout, key: &LogKey) -> Result<bool, LedgerError> {
    let path = layout.format_file();
    match frame::read_optional(&path).map_err(io_err("read", &path))? {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let format = FormatFile::parse(&text)
                .ok_or_else(|| damaged(&path, "FORMAT file is unreadable".into()))?;
            if format.version != FORMAT_VERSION {
                return Err(damaged(
                    &path,
                    format!(
                        "format version {} is not supported by this acta (it reads version {FORMAT_VERSION})",
                        format.version
                    ),
                ));
            }
            if format.origin != key.name() {
                return Err(LedgerError::WrongKey {
                    path: layout.root().to_owned(),
                    ledger: format.origin,
                    key: key.name().to_owned(),
                });
            }
            Ok(false)
        }
        None => {
            // FORMAT is written last when a ledger is created: without it, an earlier creation
            // was interrupted, unless checkpoints were signed (then the file was lost).
            let history = layout.history_file();
            if let Some(bytes) = frame::read_optional(&history).map_err(io_err("read", &history))?
                && history::parse(&bytes).is_ok_and(|h| !h.records.is_empty())
            {
                return Err(damaged(
                    &path,
                    "FORMAT file is missing but checkpoints were signed".into(),
                ));
            }
            for d in [
                layout.log_dir().join("tile"),
                layout.journal_dir(),
                layout.payload_dir(),
            ] {
                fs::create_dir_all(&d).map_err(io_err("create directory", &d))?;
            }
            write_replace(&history, &history::header())?;
            let format = FormatFile {
                version: FORMAT_VERSION,
                origin: key.name().to_owned(),
            };
            write_replace(&path, format.to_text().as_bytes())?;
            for d in [layout.root(), &layout.log_dir()] {
                sync_dir(d)?;
            }
            Ok(true)
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file, synced, renamed over `path`.
pub(crate) fn write_replace(path: &Path, bytes: &[u8]) -> Result<(), LedgerError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_data().map_err(io_err("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename into place", path))
}

/// Syncs a directory, making the names in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    File::open(dir)
        .and_then(|d| d.sync_data())
        .map_err(io_err("sync directory", dir))
}

/// Syncs the whole file system holding `dir`: one call makes thousands of tile files durable.
fn syncfs(dir: &Path) -> Result<(), LedgerError> {
    let d = File::open(dir).map_err(io_err("open", dir))?;
    rustix::fs::syncfs(&d).map_err(|e| LedgerError::Io {
        op: "sync the file system of",
        path: dir.to_owned(),
        source: e.into(),
    })
}
