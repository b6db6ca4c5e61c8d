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
    history_buf: Vec<u8>,
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
            frame::push_record(&mut self.journal.buf, &self.scratch);
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
            history::push(&mut self.history_buf, now_ms(), &self.signed.note);
            // The checkpoint is durable before the commit returns, so every acknowledged entry
            // is covered by a checkpoint that recovery will find.
            let path = self.layout.history_file();
            let r = self
                .history
                .write_all(&self.history_buf)
                .and_then(|()| self.history.sync_data())
                .map_err(io_err("append to", &path));
            self.history_buf.clear();
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

    /// Checks every version of the current partial tiles and bundle after a crash: each must
    /// be a prefix of what the entries give (a published one may have been cut short by power
    /// loss). Wrong ones are rewritten, ones wider than the stored entries removed.
    fn repair_partials(&mut self) -> Result<(), LedgerError> {
        let size = self.tree.size();
        let mut bundle_ends = Vec::new();
        let mut end = 0usize;
        for e in BundleEntries::new(&self.bundle).flatten() {
            end += 2 + e.len();
            bundle_ends.push(end);
        }
        for t in tile::partial_tiles(size) {
            let mut hashes = Vec::new();
            tile::encode_hashes(self.tree.partial(t.level), &mut hashes);
            for is_bundle in [false, true] {
                if is_bundle && t.level > 0 {
                    continue;
                }
                self.tiles.partials.insert((is_bundle, t.level, t.index));
                let dir = self.layout.log_dir().join(t.partial_dir(is_bundle));
                let Some(listing) =
                    frame::absent_ok(fs::read_dir(&dir)).map_err(io_err("list", &dir))?
                else {
                    continue;
                };
                for entry in listing.flatten() {
                    let Some(w) = entry
                        .file_name()
                        .to_str()
                        .and_then(|n| n.parse::<u16>().ok())
                    else {
                        continue;
                    };
                    let path = entry.path();
                    let want = if is_bundle {
                        bundle_ends
                            .get(usize::from(w).wrapping_sub(1))
                            .and_then(|e| self.bundle.get(..*e))
                    } else {
                        hashes.get(..usize::from(w) * Hash::LEN)
                    };
                    match want.filter(|_| w > 0 && w <= t.width) {
                        Some(want) => {
                            if fs::read(&path).map_err(io_err("read", &path))? != want {
                                write_replace(&path, want)?;
                            }
                        }
                        None => fs::remove_file(&path).map_err(io_err("remove", &path))?,
                    }
                }
            }
        }
        Ok(())
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
        let span = TILE_WIDTH.checked_pow(u32::from(level)).unwrap_or(u64::MAX);
        let at_size = (size / span)
            .saturating_sub(index * TILE_WIDTH)
            .min(TILE_WIDTH);
        let width = usize::try_from(at_size).unwrap_or(0);
        let full_now = self.size() / span / TILE_WIDTH;
        if index < full_now {
            let path = self.layout.hash_tile(&TileId::full(level, index));
            let bytes = fs::read(&path).map_err(io_err("read", &path))?;
            let hashes = tile::decode_hashes(&bytes)
                .filter(|h| h.len() == TILE_WIDTH as usize)
                .ok_or_else(|| damaged(&path, "tile is not 256 hashes long".into()))?;
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

/// Writes tile and bundle files.
#[derive(Debug)]
struct TileWriter {
    log: PathBuf,
    made_dirs: HashSet<PathBuf>,
    /// Tiles with published partial versions: `(is bundle, level, index)`.
    partials: HashSet<(bool, u8, u64)>,
    buf: Vec<u8>,
}

impl TileWriter {
    fn new(layout: &Layout) -> TileWriter {
        TileWriter {
            log: layout.log_dir(),
            made_dirs: HashSet::new(),
            partials: HashSet::new(),
            buf: Vec::new(),
        }
    }

    fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<(), LedgerError> {
        let path = self.log.join(rel);
        if let Some(parent) = path.parent()
            && !self.made_dirs.contains(parent)
        {
            fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            self.made_dirs.insert(parent.to_owned());
        }
        fs::write(&path, bytes).map_err(io_err("write", &path))
    }

    fn write_full(&mut self, full: &FullTile<'_>, bundle: &[u8]) -> Result<(), LedgerError> {
        let id = TileId::full(full.level, full.index);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        tile::encode_hashes(full.hashes, &mut buf);
        let r = self.write(&id.hash_path(), &buf);
        self.buf = buf;
        r?;
        self.drop_partials(&id, false)?;
        if full.level == 0 {
            self.write(&id.bundle_path(), bundle)?;
            self.drop_partials(&id, true)?;
        }
        Ok(())
    }

    fn drop_partials(&mut self, id: &TileId, bundle: bool) -> Result<(), LedgerError> {
        if self.partials.remove(&(bundle, id.level, id.index)) {
            let dir = self.log.join(id.partial_dir(bundle));
            frame::absent_ok(fs::remove_dir_all(&dir)).map_err(io_err("remove", &dir))?;
        }
        Ok(())
    }

    fn write_partial(
        &mut self,
        id: &TileId,
        bundle: bool,
        bytes: &[u8],
    ) -> Result<(), LedgerError> {
        let rel = if bundle {
            id.bundle_path()
        } else {
            id.hash_path()
        };
        self.partials.insert((bundle, id.level, id.index));
        let path = self.log.join(&rel);
        // A partial tile is immutable once served; it is only rewritten when its bytes are not
        // what they must be (a write cut short by power loss), and then atomically.
        match frame::read_optional(&path).map_err(io_err("read", &path))? {
            Some(existing) if existing == bytes => return Ok(()),
            Some(_) => return write_replace(&path, bytes),
            None => {}
        }
        self.write(&rel, bytes)
    }
}

/// The journal segment being written, and closed ones awaiting deletion.
#[derive(Debug)]
struct JournalWriter {
    layout: Layout,
    file: File,
    path: PathBuf,
    base: u64,
    /// Frames not yet written.
    buf: Vec<u8>,
    /// Rolled segments whose last frames still need a sync.
    to_sync: Vec<(File, PathBuf)>,
    /// Closed segments `(base, end, path)`, synced, deletable once their bundles are durable.
    closed: Vec<(u64, u64, PathBuf)>,
    dir_dirty: bool,
    spare_dirty: bool,
}

impl JournalWriter {
    fn create(layout: &Layout, header: &SegmentHeader) -> Result<JournalWriter, LedgerError> {
        let path = layout.journal_segment(header.base);
        let file = create_with_header(&path, &header.encode())?;
        Ok(JournalWriter {
            layout: layout.clone(),
            file,
            path,
            base: header.base,
            buf: Vec::new(),
            to_sync: Vec::new(),
            closed: Vec::new(),
            dir_dirty: true,
            spare_dirty: false,
        })
    }

    /// Entries in the current segment when the ledger holds `size` entries.
    fn entries(&self, size: u64) -> u64 {
        size - self.base
    }

    fn roll(&mut self, header: SegmentHeader) -> Result<(), LedgerError> {
        self.flush()?;
        let path = self.layout.journal_segment(header.base);
        let file = match reuse_spare(&self.layout, &path, &header.encode())? {
            Some(f) => {
                self.spare_dirty = true;
                f
            }
            None => create_with_header(&path, &header.encode())?,
        };
        let old_file = std::mem::replace(&mut self.file, file);
        let old_path = std::mem::replace(&mut self.path, path);
        self.closed.push((self.base, header.base, old_path.clone()));
        self.to_sync.push((old_file, old_path));
        self.base = header.base;
        self.dir_dirty = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LedgerError> {
        if !self.buf.is_empty() {
            self.file
                .write_all(&self.buf)
                .map_err(io_err("append to", &self.path))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LedgerError> {
        for (f, p) in self.to_sync.drain(..) {
            f.sync_data().map_err(io_err("sync", &p))?;
        }
        self.file.sync_data().map_err(io_err("sync", &self.path))?;
        if self.dir_dirty {
            sync_dir(&self.layout.journal_dir())?;
            self.dir_dirty = false;
        }
        if self.spare_dirty {
            sync_dir(&self.layout.journal_spare_dir())?;
            self.spare_dirty = false;
        }
        Ok(())
    }
}

/// The payload segment being written.
#[derive(Debug)]
struct PayloadWriter {
    layout: Layout,
    file: File,
    path: PathBuf,
    segment: u64,
    /// Bytes of payload in the segment, buffered ones included.
    len: u64,
    buf: Vec<u8>,
    to_sync: Vec<(File, PathBuf)>,
    dir_dirty: bool,
    /// File offset below which cached pages were dropped.
    dropped: u64,
}

/// Payload bytes buffered before a write call.
const PAYLOAD_BUF: usize = 4 << 20;

impl PayloadWriter {
    fn open(layout: &Layout, segment: u64, len: u64) -> Result<PayloadWriter, LedgerError> {
        let path = layout.payload_segment(segment);
        let (file, dir_dirty) = if len == 0 {
            (create_with_header(&path, &payload_header(segment))?, true)
        } else {
            let mut f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err("open", &path))?;
            f.set_len(PAYLOAD_HEADER_LEN + len)
                .map_err(io_err("truncate", &path))?;
            f.seek(SeekFrom::End(0)).map_err(io_err("seek in", &path))?;
            (f, false)
        };
        Ok(PayloadWriter {
            layout: layout.clone(),
            file,
            path,
            segment,
            len,
            buf: Vec::with_capacity(PAYLOAD_BUF),
            to_sync: Vec::new(),
            dir_dirty,
            dropped: 0,
        })
    }

    fn roll(&mut self, segment: u64) -> Result<(), LedgerError> {
        self.flush()?;
        let path = self.layout.payload_segment(segment);
        let file = create_with_header(&path, &payload_header(segment))?;
        let old = std::mem::replace(&mut self.file, file);
        let old_path = std::mem::replace(&mut self.path, path);
        self.to_sync.push((old, old_path));
        self.segment = segment;
        self.len = 0;
        self.dropped = 0;
        self.dir_dirty = true;
        Ok(())
    }

    fn write(&mut self, payload: &[u8]) -> Result<(), LedgerError> {
        if self.buf.len() + payload.len() > PAYLOAD_BUF {
            self.flush()?;
        }
        if payload.len() >= PAYLOAD_BUF {
            self.file
                .write_all(payload)
                .map_err(io_err("append to", &self.path))?;
        } else {
            self.buf.extend_from_slice(payload);
        }
        self.len += payload.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LedgerError> {
        if !self.buf.is_empty() {
            self.file
                .write_all(&self.buf)
                .map_err(io_err("append to", &self.path))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LedgerError> {
        for (f, p) in self.to_sync.drain(..) {
            f.sync_data().map_err(io_err("sync", &p))?;
            drop_cached(&f, 0, None);
        }
        self.file.sync_data().map_err(io_err("sync", &self.path))?;
        if self.dir_dirty {
            sync_dir(&self.layout.payload_dir())?;
            self.dir_dirty = false;
        }
        // Synced payloads are written once and read again only by audits: drop their pages from
        // the cache (all whole pages; the last, partial one is still being appended to), so the
        // ledger streams through a small, warm set of pages instead of filling memory.
        let synced = (PAYLOAD_HEADER_LEN + self.len) / PAGE * PAGE;
        if synced > self.dropped {
            drop_cached(
                &self.file,
                self.dropped,
                std::num::NonZeroU64::new(synced - self.dropped),
            );
            self.dropped = synced;
        }
        Ok(())
    }
}

/// Page size for cache advice.
const PAGE: u64 = 4096;

/// Tells the kernel that a file range will not be read soon. Advice only: failure changes nothing
/// but memory use, so it is ignored.
pub(crate) fn drop_cached(file: &File, offset: u64, len: Option<std::num::NonZeroU64>) {
    let _ = rustix::fs::fadvise(file, offset, len, rustix::fs::Advice::DontNeed);
}

/// Header of payload segment `segment`.
pub(crate) fn payload_header(segment: u64) -> Vec<u8> {
    frame::header(
        PAYLOAD_MAGIC,
        PAYLOAD_VERSION,
        &(segment * PAYLOAD_SEGMENT_ENTRIES).to_be_bytes(),
    )
}

/// Journal segment files kept for reuse.
const MAX_SPARE_SEGMENTS: usize = 4;

/// Retires closed journal segments (whose entries are durable in bundle files): keeps a few as
/// spares for reuse, removes the rest.
fn retire(layout: &Layout, paths: &[PathBuf]) -> Result<(), LedgerError> {
    let spare_dir = layout.journal_spare_dir();
    fs::create_dir_all(&spare_dir).map_err(io_err("create directory", &spare_dir))?;
    let mut spares = fs::read_dir(&spare_dir)
        .map_err(io_err("list", &spare_dir))?
        .count();
    // A path already gone was retired by an earlier attempt that failed part-way.
    for p in paths {
        match p.file_name() {
            Some(name) if spares < MAX_SPARE_SEGMENTS => {
                let to = spare_dir.join(name);
                if frame::absent_ok(fs::rename(p, &to))
                    .map_err(io_err("retire", p))?
                    .is_some()
                {
                    spares += 1;
                }
            }
            _ => {
                frame::absent_ok(fs::remove_file(p)).map_err(io_err("remove", p))?;
            }
        }
    }
    sync_dir(&layout.journal_dir())?;
    sync_dir(&spare_dir)
}

/// Turns a spare journal segment into the segment at `path`: truncated, new header written, then
/// renamed into place. A crash in between leaves either a spare or a newest segment whose header
/// names another base, which recovery treats as never started.
fn reuse_spare(layout: &Layout, path: &Path, header: &[u8]) -> Result<Option<File>, LedgerError> {
    let spare_dir = layout.journal_spare_dir();
    let spare = frame::absent_ok(fs::read_dir(&spare_dir))
        .map_err(io_err("list", &spare_dir))?
        .and_then(|mut rd| rd.find_map(|e| e.ok()))
        .map(|e| e.path());
    let Some(spare) = spare else { return Ok(None) };
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&spare)
        .map_err(io_err("open", &spare))?;
    f.write_all(header).map_err(io_err("write", &spare))?;
    fs::rename(&spare, path).map_err(io_err("rename into place", path))?;
    Ok(Some(f))
}

fn create_with_header(path: &Path, header: &[u8]) -> Result<File, LedgerError> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(io_err("create", path))?;
    f.write_all(header).map_err(io_err("write", path))?;
    Ok(f)
}

/// Background thread that makes bundle and tile files durable (one `syncfs`) and then deletes the
/// journal segments they make redundant, so the writer never waits for it.
#[derive(Debug)]
struct Flusher {
    jobs: Option<mpsc::Sender<Vec<PathBuf>>>,
    done: mpsc::Receiver<Result<Vec<PathBuf>, String>>,
    busy: bool,
    thread: Option<thread::JoinHandle<()>>,
    /// Last failure, kept for reporting; flushing is retried at the next publish.
    last_error: Option<String>,
}

impl Flusher {
    fn start(layout: &Layout) -> Flusher {
        let (jobs, job_rx) = mpsc::channel::<Vec<PathBuf>>();
        let (done_tx, done) = mpsc::channel();
        let retire_layout = layout.clone();
        let thread_root = layout.root().to_owned();
        let thread = thread::Builder::new()
            .name("acta-ledger-flush".into())
            .spawn(move || {
                for paths in job_rx {
                    let r = syncfs(&thread_root).and_then(|()| retire(&retire_layout, &paths));
                    if done_tx
                        .send(r.map(|()| paths).map_err(|e| e.to_string()))
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .ok();
        Flusher {
            jobs: Some(jobs),
            done,
            busy: false,
            thread,
            last_error: None,
        }
    }

    fn settle(
        &mut self,
        closed: &mut Vec<(u64, u64, PathBuf)>,
        result: Result<Vec<PathBuf>, String>,
    ) {
        self.busy = false;
        match result {
            Ok(removed) => closed.retain(|(_, _, p)| !removed.contains(p)),
            Err(e) => self.last_error = Some(e),
        }
    }

    /// Collects a finished job, and starts one for `closed` segments if idle.
    fn offer(&mut self, closed: &mut Vec<(u64, u64, PathBuf)>) {
        while let Ok(r) = self.done.try_recv() {
            self.settle(closed, r);
        }
        if self.busy || closed.is_empty() || self.thread.is_none() {
            return;
        }
        let paths = closed.iter().map(|(_, _, p)| p.clone()).collect();
        if let Some(jobs) = &self.jobs
            && jobs.send(paths).is_ok()
        {
            self.busy = true;
        }
    }

    /// Waits for the running job and stops the thread.
    fn finish(&mut self, closed: &mut Vec<(u64, u64, PathBuf)>) {
        self.jobs = None;
        if self.busy
            && let Ok(r) = self.done.recv()
        {
            self.settle(closed, r);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opening an existing ledger: replays the journal, cuts torn tails, rewrites derived files.
struct Recovery {
    layout: Layout,
}

impl Recovery {
    fn run(
        layout: Layout,
        key: LogKey,
        options: LedgerOptions,
        lock: File,
        created: bool,
    ) -> Result<Ledger, LedgerError> {
        let rec = Recovery { layout };
        let layout = rec.layout.clone();
        let (history_file, mut signed_history) = rec.open_history(&key)?;
        let (segments, _) = layout
            .list_journal()
            .map_err(io_err("list", &layout.journal_dir()))?;
        if segments.is_empty() {
            let has_entries = signed_history
                .as_ref()
                .is_some_and(|s| s.checkpoint.size > 0)
                || layout.bundle(&TileId::full(0, 0)).exists()
                || layout.payload_segment(0).exists();
            if has_entries && !created {
                return Err(damaged(
                    &layout.journal_dir(),
                    "the journal is missing".into(),
                ));
            }
            let header = SegmentHeader {
                base: 0,
                payload_offset: 0,
                sources: BTreeMap::new(),
            };
            JournalWriter::create(&layout, &header)?;
            sync_dir(&layout.journal_dir())?;
            return Recovery::run_segments(
                rec,
                key,
                options,
                lock,
                history_file,
                signed_history.take(),
                vec![(0, layout.journal_segment(0))],
            );
        }
        Recovery::run_segments(
            rec,
            key,
            options,
            lock,
            history_file,
            signed_history.take(),
            segments,
        )
    }

    /// Opens the checkpoint history, cutting a torn last record; returns it and its last
    /// checkpoint (or the newer published one, if the history lost it in a crash).
    fn open_history(&self, key: &LogKey) -> Result<(File, Option<SignedCheckpoint>), LedgerError> {
        let path = self.layout.history_file();
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        let parsed = history::parse(&bytes).map_err(|e| damaged(&path, e.to_string()))?;
        match parsed.tail {
            Tail::Clean => {}
            Tail::Torn { .. } => {}
            Tail::Damaged { at } => {
                // A record that is complete but fails its checksum is a torn write only if it is
                // the last thing in the file; anything after it means real damage.
                let len = bytes
                    .get(at..at + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(|b| u32::from_be_bytes(b) as usize)
                    .unwrap_or(0);
                if at + frame::record_size(len) != bytes.len() {
                    return Err(damaged(&path, format!("record at byte {at} is damaged")));
                }
            }
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        if parsed.intact_len != bytes.len() {
            file.set_len(parsed.intact_len as u64)
                .map_err(io_err("truncate", &path))?;
        }
        let mut last = None;
        if let Some(rec) = parsed.records.last() {
            let note = rec.note.as_deref().unwrap_or("");
            let cp = SignedCheckpoint::open(note, key.verifier()).map_err(|e| {
                damaged(
                    &path,
                    format!(
                        "last checkpoint (record at byte {}) does not verify: {e}",
                        rec.offset
                    ),
                )
            })?;
            last = Some(cp);
        }
        // The published checkpoint may be newer than the history if a crash lost the history's
        // unsynced tail; it was signed over durable entries, so it is kept.
        let cp_path = self.layout.checkpoint_file();
        if let Some(bytes) = frame::read_optional(&cp_path).map_err(io_err("read", &cp_path))? {
            let published = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|n| SignedCheckpoint::open(n, key.verifier()).ok());
            if let Some(p) = published
                && last
                    .as_ref()
                    .is_none_or(|l| p.checkpoint.size > l.checkpoint.size)
            {
                let mut buf = Vec::new();
                history::push(&mut buf, now_ms(), &p.note);
                file.write_all(&buf).map_err(io_err("append to", &path))?;
                file.sync_data().map_err(io_err("sync", &path))?;
                last = Some(p);
            }
        }
        Ok((file, last))
    }

    #[allow(clippy::too_many_arguments)]
    fn run_segments(
        rec: Recovery,
        key: LogKey,
        options: LedgerOptions,
        lock: File,
        history_file: File,
        last_signed: Option<SignedCheckpoint>,
        segments: Vec<(u64, PathBuf)>,
    ) -> Result<Ledger, LedgerError> {
        let layout = rec.layout;
        let signed_size = last_signed.as_ref().map_or(0, |s| s.checkpoint.size);
        let mut parsed = Vec::with_capacity(segments.len());
        // A segment whose header is unreadable or names another base was started by a group
        // that never committed (a roll writes the header unsynced; a recycled spare still carries
        // its old one): it and every later segment hold no acknowledged entry and are cut like a
        // torn tail. Below the last signed checkpoint the same sight is damage, and nothing is
        // touched.
        let mut unborn: Vec<PathBuf> = Vec::new();
        for (k, (base, path)) in segments.iter().enumerate() {
            if !unborn.is_empty() {
                unborn.push(path.clone());
                continue;
            }
            let bytes = fs::read(path).map_err(io_err("read", path))?;
            match SegmentHeader::decode(&bytes) {
                Ok((header, start)) if header.base == *base => {
                    parsed.push((path.clone(), header, bytes, start));
                }
                _ if *base >= signed_size && (k > 0 || *base == 0) => unborn.push(path.clone()),
                Ok((header, _)) => {
                    return Err(damaged(
                        path,
                        format!("segment header says base {}", header.base),
                    ));
                }
                Err(e) => return Err(damaged(path, e.to_string())),
            }
        }
        if parsed.is_empty() && !unborn.is_empty() {
            // The ledger's first segment never got its header and nothing was ever signed
            // beyond the empty tree, so nothing was ever acknowledged.
            let header = SegmentHeader {
                base: 0,
                payload_offset: 0,
                sources: BTreeMap::new(),
            };
            let path = layout.journal_segment(0);
            let bytes = header.encode();
            fs::write(&path, &bytes).map_err(io_err("write", &path))?;
            unborn.retain(|p| *p != path);
            parsed.push((path, header, bytes.clone(), bytes.len()));
        }
        let Some((_, first, _, _)) = parsed.first() else {
            return Err(damaged(
                &layout.journal_dir(),
                "the journal is missing".into(),
            ));
        };
        let base = first.base;
        if base % TILE_WIDTH != 0 {
            return Err(damaged(
                &layout.journal_segment(base),
                "journal base is not a bundle boundary".into(),
            ));
        }
        let tree = restore_edge(&layout, base)?;
        let mut sources = first.sources.clone();
        let mut payload = PayloadReplay::open(&layout, base, first.payload_offset)?;
        let mut tiles = TileWriter::new(&layout);
        let mut bundle = Vec::new();
        let mut tree = tree;
        let mut last_segment = 0usize;
        let mut cut: Option<(usize, usize)> = None; // (segment number, byte offset) to truncate at
        for (k, (_, header, bytes, start)) in parsed.iter().enumerate() {
            if header.base != tree.size() {
                cut = Some((k, 0));
                break;
            }
            last_segment = k;
            let mut records = frame::Records::new(bytes, *start);
            let mut at = *start;
            let mut intact = true;
            while let Some(env_bytes) = records.next() {
                if !replay_entry(
                    env_bytes,
                    &mut tree,
                    &mut sources,
                    &mut payload,
                    &mut tiles,
                    &mut bundle,
                )? {
                    intact = false;
                    break;
                }
                at = records.position();
            }
            if !intact || !matches!(records.tail(), Some(Tail::Clean) | None) {
                cut = Some((k, at));
                break;
            }
        }
        // Entries below the last signed checkpoint were acknowledged: a cut there would lose
        // them, so the ledger refuses to open instead of truncating evidence.
        let size = tree.size();
        if let Some(cp) = &last_signed
            && cp.checkpoint.size > size
        {
            return Err(LedgerError::Inconsistent {
                path: layout.root().to_owned(),
                detail: format!(
                    "checkpoint for {} entries was signed, but only the first {size} entries can be read back",
                    cp.checkpoint.size
                ),
            });
        }
        // Cut the journal after the last intact entry, and drop any later segment: what follows
        // was never acknowledged.
        if let Some((k, at)) = cut {
            for (i, (path, _, bytes, start)) in parsed.iter().enumerate() {
                if i < k {
                    continue;
                }
                if i == k && at >= *start {
                    if at != bytes.len() {
                        let f = OpenOptions::new()
                            .write(true)
                            .open(path)
                            .map_err(io_err("open", path))?;
                        f.set_len(at as u64).map_err(io_err("truncate", path))?;
                        f.sync_data().map_err(io_err("sync", path))?;
                    }
                    last_segment = i;
                } else {
                    fs::remove_file(path).map_err(io_err("remove", path))?;
                }
            }
            sync_dir(&layout.journal_dir())?;
        }
        if !unborn.is_empty() {
            for path in &unborn {
                fs::remove_file(path).map_err(io_err("remove", path))?;
            }
            sync_dir(&layout.journal_dir())?;
        }
        payload.finish(&layout)?;
        remove_beyond(&layout, size)?;
        if size % TILE_WIDTH == 0 {
            bundle.clear();
        }

        // The stored tree must reach and match the last signed checkpoint.
        let (last_path, last_header, _, _) = parsed
            .get(last_segment)
            .ok_or_else(|| damaged(&layout.journal_dir(), "the journal is missing".into()))?;
        let mut closed = Vec::new();
        for w in parsed.windows(2).take(last_segment) {
            if let [(p, h, _, _), (_, next, _, _)] = w {
                closed.push((h.base, next.base, p.clone()));
            }
        }
        let journal_file = OpenOptions::new()
            .append(true)
            .open(last_path)
            .map_err(io_err("open", last_path))?;
        let journal = JournalWriter {
            layout: layout.clone(),
            file: journal_file,
            path: last_path.clone(),
            base: last_header.base,
            buf: Vec::new(),
            to_sync: Vec::new(),
            closed,
            dir_dirty: false,
            spare_dirty: false,
        };
        let payload = PayloadWriter::open(&layout, payload.segment, payload.offset)?;
        let mut history_file = history_file;
        let signed = match last_signed {
            Some(s) => s,
            None => {
                // A new ledger: its first checkpoint is the empty tree.
                let s = SignedCheckpoint::sign(&key, 0, crate::hash::empty_root());
                let mut buf = Vec::new();
                history::push(&mut buf, now_ms(), &s.note);
                let hp = layout.history_file();
                history_file
                    .write_all(&buf)
                    .map_err(io_err("append to", &hp))?;
                history_file.sync_data().map_err(io_err("sync", &hp))?;
                s
            }
        };
        let mut ledger = Ledger {
            flusher: Flusher::start(&layout),
            layout,
            key,
            options,
            _lock: lock,
            tree,
            bundle,
            sources,
            tiles,
            journal,
            payload,
            history: history_file,
            history_buf: Vec::new(),
            signed: signed.clone(),
            published: u64::MAX,
            last_publish: Instant::now(),
            scratch: Vec::new(),
            poisoned: None,
            synced_size: signed.checkpoint.size,
            commits: 0,
        };
        let cp = &signed.checkpoint;
        let root = ledger.root_at(cp.size)?;
        if root != cp.root {
            return Err(LedgerError::Inconsistent {
                path: ledger.layout.root().to_owned(),
                detail: format!(
                    "the root of the first {} entries is {root}, but the signed checkpoint says {}",
                    cp.size, cp.root
                ),
            });
        }
        // The published checkpoint must agree with the tree too: a validly signed, different
        // root for a size means someone holding the key forked the log. Republishing over it
        // would hide the evidence, so the ledger refuses to open.
        let cp_path = ledger.layout.checkpoint_file();
        let published = frame::read_optional(&cp_path)
            .map_err(io_err("read", &cp_path))?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|n| SignedCheckpoint::open(&n, ledger.key.verifier()).ok());
        if let Some(p) = published
            && p.checkpoint.size <= ledger.size()
        {
            let root = ledger.root_at(p.checkpoint.size)?;
            if root != p.checkpoint.root {
                return Err(LedgerError::Inconsistent {
                    path: cp_path,
                    detail: format!(
                        "the published checkpoint signs root {} for {} entries, but they hash to {root}: the log was forked",
                        p.checkpoint.root, p.checkpoint.size
                    ),
                });
            }
        }
        ledger.repair_partials()?;
        // Entries replayed beyond the last checkpoint may exist only in the page cache (the
        // writer was killed before its sync), spread over several journal and payload files:
        // make them all durable before a checkpoint covers them.
        if ledger.size() > signed_size {
            syncfs(ledger.layout.root())?;
            ledger.synced_size = ledger.size();
        }
        // Sign for entries that were durable but not yet checkpointed, then republish.
        ledger.commit()?;
        ledger.published = u64::MAX;
        ledger.publish()?;
        Ok(ledger)
    }
}

/// Replays one journal entry; returns `false` where the journal must be cut (a torn or
/// inconsistent entry, or its payload missing).
fn replay_entry(
    env_bytes: &[u8],
    tree: &mut TreeEdge,
    sources: &mut BTreeMap<String, u64>,
    payload: &mut PayloadReplay,
    tiles: &mut TileWriter,
    bundle: &mut Vec<u8>,
) -> Result<bool, LedgerError> {
    let Ok(env) = Envelope::decode(env_bytes) else {
        return Ok(false);
    };
    let index = tree.size();
    let next_seq = sources.get(env.source).copied().unwrap_or(0);
    if env.index != index || env.seq != next_seq {
        return Ok(false);
    }
    if index.is_multiple_of(PAYLOAD_SEGMENT_ENTRIES)
        && payload.segment != index / PAYLOAD_SEGMENT_ENTRIES
    {
        payload.next_segment(index / PAYLOAD_SEGMENT_ENTRIES)?;
    }
    if !payload.check(env.payload_len, &env.payload_sha256)? {
        return Ok(false);
    }
    sources.insert(env.source.to_owned(), next_seq + 1);
    tile::push_bundle_entry(bundle, env_bytes);
    tree.push(leaf_hash(env_bytes), &mut |full| {
        tiles.write_full(&full, bundle)
    })?;
    if tree.size().is_multiple_of(TILE_WIDTH) {
        bundle.clear();
    }
    Ok(true)
}

/// Reads payloads back during recovery to check them against the journal.
struct PayloadReplay {
    layout: Layout,
    segment: u64,
    offset: u64,
    file: Option<File>,
    /// Bytes of payload data in the open segment file.
    file_len: u64,
    buf: Vec<u8>,
}

impl PayloadReplay {
    fn open(layout: &Layout, base: u64, offset: u64) -> Result<PayloadReplay, LedgerError> {
        let mut p = PayloadReplay {
            layout: layout.clone(),
            segment: base / PAYLOAD_SEGMENT_ENTRIES,
            offset,
            file: None,
            file_len: 0,
            buf: Vec::new(),
        };
        p.open_file()?;
        Ok(p)
    }

    fn open_file(&mut self) -> Result<(), LedgerError> {
        let path = self.layout.payload_segment(self.segment);
        match File::open(&path) {
            Ok(mut f) => {
                let mut head = vec![0u8; PAYLOAD_HEADER_LEN as usize];
                let ok = f.read_exact(&mut head).is_ok() && head == payload_header(self.segment);
                let len = f.metadata().map_err(io_err("inspect", &path))?.len();
                if !ok {
                    // A segment created by an interrupted roll may lack its header; it then
                    // holds no acknowledged payload and is rewritten.
                    if self.offset > 0 {
                        return Err(damaged(&path, "payload segment header is damaged".into()));
                    }
                    self.file = None;
                    self.file_len = 0;
                    return Ok(());
                }
                self.file_len = len.saturating_sub(PAYLOAD_HEADER_LEN);
                self.file = Some(f);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.offset > 0 {
                    return Err(damaged(&path, "payload segment is missing".into()));
                }
                self.file = None;
                self.file_len = 0;
            }
            Err(e) => {
                return Err(LedgerError::Io {
                    op: "open",
                    path,
                    source: e,
                });
            }
        }
        Ok(())
    }

    fn next_segment(&mut self, segment: u64) -> Result<(), LedgerError> {
        self.segment = segment;
        self.offset = 0;
        self.open_file()
    }

    fn check(&mut self, len: u64, digest: &Hash) -> Result<bool, LedgerError> {
        let Some(f) = &self.file else {
            return Ok(false);
        };
        // The offset comes from a journal header, the length from an envelope: neither is
        // trusted to stay in range.
        if self
            .offset
            .checked_add(len)
            .is_none_or(|end| end > self.file_len)
        {
            return Ok(false);
        }
        self.buf.resize(usize::try_from(len).unwrap_or(0), 0);
        let path = self.layout.payload_segment(self.segment);
        f.read_exact_at(&mut self.buf, PAYLOAD_HEADER_LEN + self.offset)
            .map_err(io_err("read", &path))?;
        if sha256(&self.buf) != *digest {
            return Ok(false);
        }
        self.offset += len;
        Ok(true)
    }

    /// Cuts the open segment after the last replayed payload and removes later segments.
    fn finish(&mut self, layout: &Layout) -> Result<(), LedgerError> {
        let path = layout.payload_segment(self.segment);
        if self.file.is_some() && self.file_len != self.offset {
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err("open", &path))?;
            f.set_len(PAYLOAD_HEADER_LEN + self.offset)
                .map_err(io_err("truncate", &path))?;
            f.sync_data().map_err(io_err("sync", &path))?;
        }
        let mut s = self.segment + 1;
        loop {
            let p = layout.payload_segment(s);
            if frame::absent_ok(fs::remove_file(&p))
                .map_err(io_err("remove", &p))?
                .is_none()
            {
                break;
            }
            s += 1;
        }
        Ok(())
    }
}

/// Rebuilds the tree edge at `base` (a multiple of 256) from full tiles on disk.
fn restore_edge(layout: &Layout, base: u64) -> Result<TreeEdge, LedgerError> {
    let mut levels = vec![Vec::new()];
    let mut span: u64 = TILE_WIDTH; // leaves per hash at level 1
    let mut level: u8 = 1;
    while base / span > 0 {
        let width = (base / span) % TILE_WIDTH;
        let first = base / span / TILE_WIDTH * TILE_WIDTH; // first tile index at level - 1
        let mut hashes = Vec::with_capacity(width as usize);
        for j in 0..width {
            let id = TileId::full(level - 1, first + j);
            let path = layout.hash_tile(&id);
            let bytes = fs::read(&path).map_err(io_err("read", &path))?;
            let tile = tile::decode_hashes(&bytes)
                .filter(|h| h.len() == TILE_WIDTH as usize)
                .ok_or_else(|| damaged(&path, "tile is not 256 hashes long".into()))?;
            hashes.push(mth(&tile));
        }
        levels.push(hashes);
        match span.checked_mul(TILE_WIDTH) {
            Some(s) => span = s,
            None => break,
        }
        level += 1;
    }
    TreeEdge::from_levels(levels)
        .ok_or_else(|| damaged(layout.root(), "cannot rebuild the tree edge".into()))
}

/// Removes full tiles and bundles beyond `size`, left by a write the crash interrupted.
fn remove_beyond(layout: &Layout, size: u64) -> Result<(), LedgerError> {
    let mut span: u64 = TILE_WIDTH;
    for level in 0u8..8 {
        let mut n = size / span;
        loop {
            let id = TileId::full(level, n);
            let mut any = false;
            let mut paths = vec![layout.hash_tile(&id)];
            if level == 0 {
                paths.push(layout.bundle(&id));
            }
            for p in paths {
                any |= frame::absent_ok(fs::remove_file(&p))
                    .map_err(io_err("remove", &p))?
                    .is_some();
            }
            if !any {
                break;
            }
            n += 1;
        }
        match span.checked_mul(TILE_WIDTH) {
            Some(s) => span = s,
            None => break,
        }
    }
    Ok(())
}
