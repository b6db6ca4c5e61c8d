//! Offline verification: a full re-audit of a ledger directory, needing only the files and the
//! log's public key.
//!
//! Every entry is decoded and its payload re-hashed; every leaf is recomputed and compared with
//! the stored tiles; the whole tree is rebuilt and compared, at every size a checkpoint was signed
//! for, with that checkpoint's root; every checkpoint's signature is checked; and each source's
//! sequence numbers must run 0, 1, 2, … without gaps. Verification reports the *first* problem in
//! entry order, naming the entry and the file.
//!
//! Payload segments are checked in parallel (one worker per segment at a time); a single thread
//! folds the resulting leaves into the tree in order, which costs about one node hash per entry.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::frame::{self, Tail};
use crate::hash::{Hash, empty_root, leaf_hash, sha256};
use crate::history;
use crate::layout::{FORMAT_VERSION, FormatFile, Layout, PAYLOAD_SEGMENT_ENTRIES};
use crate::note::{SignedCheckpoint, VerifierKey};
use crate::read::{INTERRUPTED, JournalView, SegmentWalk, StorageError, relative};
use crate::tile::{self, TILE_WIDTH, TileId};
use crate::tree::TreeEdge;

/// What to verify and how.
#[derive(Clone)]
pub struct VerifyOptions {
    /// The ledger directory.
    pub dir: PathBuf,
    /// The log's public key. Pass a key obtained independently of the directory (e.g. published
    /// by the operator) for verification that does not trust the directory's own key file.
    pub key: VerifierKey,
    /// Worker threads for payload hashing (at least 1).
    pub threads: usize,
    /// Called with (entries verified, total entries) as verification proceeds.
    pub progress: Option<Arc<dyn Fn(u64, u64) + Send + Sync>>,
}

impl fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("dir", &self.dir)
            .field("key", &self.key)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl VerifyOptions {
    /// Options with one worker per available core.
    pub fn new(dir: impl Into<PathBuf>, key: VerifierKey) -> VerifyOptions {
        let threads = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        VerifyOptions {
            dir: dir.into(),
            key,
            threads,
            progress: None,
        }
    }
}

/// A ledger that verified.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// Entries verified.
    pub entries: u64,
    /// Payload bytes re-hashed.
    pub payload_bytes: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// Entries per source.
    pub sources: BTreeMap<String, u64>,
    /// The largest signed checkpoint.
    pub latest: Option<SignedCheckpoint>,
    /// Observations that are not failures (e.g. the remains of an interrupted write).
    pub notes: Vec<String>,
    /// Time taken.
    pub elapsed: Duration,
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyFailure {
    /// First entry that is bad or cannot be vouched for, when the problem concerns entries.
    pub index: Option<u64>,
    /// Last entry of the range, when the problem can only be narrowed to a range.
    pub last: Option<u64>,
    /// The file at fault, relative to the ledger directory.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, self.last) {
            (Some(i), Some(l)) if l > i => write!(f, "entries {i}–{l}")?,
            (Some(i), _) => write!(f, "entry {i}")?,
            (None, _) => f.write_str("ledger")?,
        }
        write!(f, " ({}): {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for VerifyFailure {}

impl From<StorageError> for VerifyFailure {
    fn from(e: StorageError) -> VerifyFailure {
        VerifyFailure {
            index: e.index,
            last: None,
            path: e.path,
            problem: e.problem,
        }
    }
}

fn fail(index: Option<u64>, path: impl Into<PathBuf>, problem: impl Into<String>) -> VerifyFailure {
    VerifyFailure {
        index,
        last: None,
        path: path.into(),
        problem: problem.into(),
    }
}

/// A checkpoint to check against the tree.
#[derive(Clone, Debug)]
struct Expected {
    size: u64,
    root: Hash,
    label: String,
}

/// Verifies the ledger in `opts.dir`; see the module documentation.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport, VerifyFailure> {
    let started = Instant::now();
    let layout = Layout::new(&opts.dir);
    let rel = |p: &Path| p.strip_prefix(layout.root()).unwrap_or(p).to_owned();
    let mut notes = Vec::new();

    // The directory's format and identity.
    let format_path = layout.format_file();
    let format = fs::read(&format_path)
        .map_err(|e| fail(None, rel(&format_path), format!("cannot read: {e}")))
        .and_then(|b| {
            FormatFile::parse(&String::from_utf8_lossy(&b))
                .ok_or_else(|| fail(None, rel(&format_path), "not a ledger FORMAT file"))
        })?;
    if format.version != FORMAT_VERSION {
        return Err(fail(
            None,
            rel(&format_path),
            format!(
                "format version {} is not supported (this acta reads {FORMAT_VERSION})",
                format.version
            ),
        ));
    }
    if format.origin != opts.key.name() {
        return Err(fail(
            None,
            rel(&format_path),
            format!(
                "the ledger is log `{}`, but the key is for `{}`",
                format.origin,
                opts.key.name()
            ),
        ));
    }

    let (expected, latest) = read_checkpoints(&layout, &opts.key, &mut notes)?;
    let journal = JournalView::read(&layout)?;
    for stray in &journal.strays {
        notes.push(format!(
            "journal: ignored unexpected file `{}`",
            stray.display()
        ));
    }
    let size = journal.end;
    let full_bundles = size / TILE_WIDTH;
    if journal.base > full_bundles * TILE_WIDTH {
        return Err(fail(
            Some(full_bundles * TILE_WIDTH),
            rel(&journal.first_path),
            "the journal starts after the unfinished bundle",
        ));
    }

    // Check entries segment by segment in parallel, fold leaves in order.
    let segments = size.div_ceil(PAYLOAD_SEGMENT_ENTRIES);
    let journal = Arc::new(journal);
    let next = Arc::new(AtomicU64::new(0));
    let threads = opts.threads.clamp(1, 64);
    let (tx, rx) = mpsc::sync_channel::<(u64, Chunk)>(threads);
    let mut workers = Vec::new();
    for _ in 0..threads.min(usize::try_from(segments).unwrap_or(1).max(1)) {
        let (tx, next, journal, layout) =
            (tx.clone(), next.clone(), journal.clone(), layout.clone());
        workers.push(thread::spawn(move || {
            loop {
                let s = next.fetch_add(1, Ordering::Relaxed);
                if s >= segments {
                    break;
                }
                let chunk = check_segment(&layout, s, size, &journal);
                if tx.send((s, chunk)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);

    let mut fold = Fold {
        layout: &layout,
        journal: &journal,
        edge: TreeEdge::new(),
        next_seq: HashMap::new(),
        expected: &expected,
        next_cp: 0,
        last_good: 0,
        checked: 0,
    };
    fold.check_checkpoints(&rel)?;
    let mut pending: BTreeMap<u64, Chunk> = BTreeMap::new();
    let mut want = 0u64;
    let mut payload_bytes = 0u64;
    let result = (|| -> Result<(), VerifyFailure> {
        for (s, chunk) in rx.iter() {
            pending.insert(s, chunk);
            while let Some(chunk) = pending.remove(&want) {
                payload_bytes += chunk.payload_bytes;
                fold.chunk(&chunk, &rel)?;
                if let Some(p) = &opts.progress {
                    p(fold.edge.size(), size);
                }
                want += 1;
            }
        }
        Ok(())
    })();
    drop(rx);
    for w in workers {
        let _ = w.join();
    }
    result?;
    if fold.edge.size() != size {
        return Err(fail(
            Some(fold.edge.size()),
            rel(layout.root()),
            "verification stopped early",
        ));
    }
    let signed = expected.last().map_or(0, |c| c.size);
    if signed < size {
        return Err(VerifyFailure {
            index: Some(signed),
            last: Some(size - 1),
            path: rel(&layout.history_file()),
            problem: format!(
                "the last {} entries are covered by no signed checkpoint: they were never acknowledged, or were added without the log's key{INTERRUPTED}",
                size - signed
            ),
        });
    }
    if let Some(cp) = expected.iter().find(|c| c.size > size) {
        return Err(VerifyFailure {
            index: Some(size),
            last: Some(cp.size - 1),
            path: rel(&layout.history_file()),
            problem: format!(
                "{} covers {} entries, but only {size} are stored: the entries after them are missing",
                cp.label, cp.size
            ),
        });
    }
    check_partials(&layout, &fold.edge, &journal, &mut notes, &rel)?;

    let mut sources = BTreeMap::new();
    for (name, n) in fold.next_seq {
        sources.insert(name, n);
    }
    Ok(VerifyReport {
        entries: size,
        payload_bytes,
        checkpoints: fold.checked,
        sources,
        latest,
        notes,
        elapsed: started.elapsed(),
    })
}

/// Reads and checks every stored checkpoint; returns them sorted by size, and the largest.
fn read_checkpoints(
    layout: &Layout,
    key: &VerifierKey,
    notes: &mut Vec<String>,
) -> Result<(Vec<Expected>, Option<SignedCheckpoint>), VerifyFailure> {
    let path = layout.history_file();
    let relp = PathBuf::from("checkpoints");
    let bytes = fs::read(&path).map_err(|e| fail(None, &relp, format!("cannot read: {e}")))?;
    let hist = history::parse(&bytes).map_err(|e| fail(None, &relp, e.to_string()))?;
    match hist.tail {
        Tail::Clean => {}
        Tail::Torn { at } => {
            return Err(fail(
                None,
                &relp,
                format!(
                    "the file ends inside the record at byte {at}: it was truncated{INTERRUPTED}"
                ),
            ));
        }
        Tail::Damaged { at } => {
            return Err(fail(
                None,
                &relp,
                format!("the record at byte {at} is damaged (checksum mismatch){INTERRUPTED}"),
            ));
        }
    }
    let mut expected: Vec<Expected> = Vec::new();
    let mut latest: Option<SignedCheckpoint> = None;
    let mut by_size: HashMap<u64, Hash> = HashMap::new();
    let mut check = |note: &str,
                     label: String,
                     file: &Path,
                     expected: &mut Vec<Expected>|
     -> Result<(), VerifyFailure> {
        let cp = SignedCheckpoint::open(note, key)
            .map_err(|e| fail(None, file, format!("{label}: {e}")))?;
        let (size, root) = (cp.checkpoint.size, cp.checkpoint.root);
        match by_size.get(&size) {
            Some(r) if *r != root => {
                return Err(fail(
                    Some(size.saturating_sub(1)),
                    file,
                    format!(
                        "{label} signs a different root for size {size} than an earlier checkpoint: the log forked"
                    ),
                ));
            }
            Some(_) => return Ok(()),
            None => {}
        }
        by_size.insert(size, root);
        expected.push(Expected { size, root, label });
        if latest.as_ref().is_none_or(|l| size > l.checkpoint.size) {
            latest = Some(cp);
        }
        Ok(())
    };
    let mut previous = 0u64;
    for (n, rec) in hist.records.iter().enumerate() {
        let label = format!("checkpoint record {} (byte {})", n + 1, rec.offset);
        let note = rec
            .note
            .as_deref()
            .ok_or_else(|| fail(None, &relp, format!("{label}: not UTF-8")))?;
        check(note, label.clone(), &relp, &mut expected)?;
        let size = expected.last().map(|e| e.size).unwrap_or(0);
        if size < previous {
            return Err(fail(
                None,
                &relp,
                format!(
                    "{label} has size {size}, smaller than the checkpoint before it ({previous})"
                ),
            ));
        }
        previous = previous.max(size);
    }
    let in_history: std::collections::HashSet<u64> = expected.iter().map(|e| e.size).collect();
    let cp_path = layout.checkpoint_file();
    match frame::read_optional(&cp_path) {
        Ok(Some(b)) => {
            let note =
                String::from_utf8(b).map_err(|_| fail(None, "log/checkpoint", "not UTF-8"))?;
            check(
                &note,
                "published checkpoint log/checkpoint".into(),
                Path::new("log/checkpoint"),
                &mut expected,
            )?;
            // Every checkpoint is recorded in the history before it is published, so one
            // missing there means the history lost records.
            let published = SignedCheckpoint::open(&note, key)
                .map(|c| c.checkpoint.size)
                .unwrap_or(0);
            if !in_history.contains(&published) {
                return Err(fail(
                    None,
                    &relp,
                    format!(
                        "the published checkpoint for {published} entries is missing from the history: records were removed"
                    ),
                ));
            }
        }
        Ok(None) => notes.push("log/checkpoint is absent (nothing published yet)".into()),
        Err(e) => return Err(fail(None, "log/checkpoint", format!("cannot read: {e}"))),
    }
    expected.sort_by_key(|e| e.size);
    Ok((expected, latest))
}

/// What a worker found in one payload segment's range of entries.
#[derive(Debug, Default)]
struct Chunk {
    first: u64,
    leaves: Vec<Hash>,
    /// `(index into names, seq)` per entry.
    seqs: Vec<(u32, u64)>,
    names: Vec<String>,
    payload_bytes: u64,
    error: Option<VerifyFailure>,
}

/// Checks entries `s × 65,536 ..` (up to `size`) and their payloads.
fn check_segment(layout: &Layout, s: u64, size: u64, journal: &Arc<JournalView>) -> Chunk {
    let mut chunk = Chunk {
        first: s * PAYLOAD_SEGMENT_ENTRIES,
        ..Chunk::default()
    };
    if let Err(e) = check_segment_inner(layout, s, size, journal, &mut chunk) {
        chunk.error = Some(e);
    }
    chunk
}

fn check_segment_inner(
    layout: &Layout,
    s: u64,
    size: u64,
    journal: &Arc<JournalView>,
    chunk: &mut Chunk,
) -> Result<(), VerifyFailure> {
    let mut walk = SegmentWalk::open(layout, journal.clone(), s, size)?;
    let mut names: HashMap<String, u32> = HashMap::new();
    // Entries of one source come in runs: compare with the previous source before hashing a key.
    let mut last: Option<(String, u32)> = None;
    while let Some(step) = walk.next() {
        let st = step?;
        let index = st.index;
        if st.stored_leaf.is_some()
            && let Some(j) = journal.get(index)
            && j != st.envelope_bytes
        {
            return Err(fail(
                Some(index),
                journal.path_of(index),
                format!(
                    "the journal's copy differs from the entry in {}",
                    st.from.display()
                ),
            ));
        }
        if st.envelope.index != index {
            return Err(fail(
                Some(index),
                st.from,
                format!(
                    "the entry at position {index} is entry {}: entries are missing, duplicated or out of order",
                    st.envelope.index
                ),
            ));
        }
        if sha256(st.payload) != st.envelope.payload_sha256 {
            return Err(fail(
                Some(index),
                relative(layout, &layout.payload_segment(s)),
                format!(
                    "the payload at byte {} does not match the SHA-256 in the entry's envelope",
                    st.payload_at
                ),
            ));
        }
        let leaf = leaf_hash(st.envelope_bytes);
        if let Some((stored, tile)) = st.stored_leaf
            && stored != Some(&leaf.0[..])
        {
            return Err(fail(
                Some(index),
                tile,
                format!(
                    "hash {} of the tile does not match the entry's leaf hash",
                    index % TILE_WIDTH
                ),
            ));
        }
        let source = st.envelope.source;
        let id = match last.as_ref().filter(|(n, _)| n == source) {
            Some((_, id)) => *id,
            None => match names.get(source) {
                Some(id) => *id,
                None => {
                    let id = u32::try_from(chunk.names.len()).unwrap_or(u32::MAX);
                    names.insert(source.to_owned(), id);
                    chunk.names.push(source.to_owned());
                    id
                }
            },
        };
        if last.as_ref().is_none_or(|(_, l)| *l != id) {
            last = Some((source.to_owned(), id));
        }
        chunk.payload_bytes += st.envelope.payload_len;
        chunk.leaves.push(leaf);
        chunk.seqs.push((id, st.envelope.seq));
    }
    walk.finish()?;
    Ok(())
}

/// Folds leaves into the tree in order and checks what needs the whole tree.
struct Fold<'a> {
    layout: &'a Layout,
    journal: &'a JournalView,
    edge: TreeEdge,
    next_seq: HashMap<String, u64>,
    expected: &'a [Expected],
    next_cp: usize,
    /// Largest size whose root matched a checkpoint.
    last_good: u64,
    checked: u64,
}

impl Fold<'_> {
    fn check_checkpoints(&mut self, rel: &dyn Fn(&Path) -> PathBuf) -> Result<(), VerifyFailure> {
        while let Some(cp) = self
            .expected
            .get(self.next_cp)
            .filter(|c| c.size == self.edge.size())
        {
            let root = if cp.size == 0 {
                empty_root()
            } else {
                self.edge.root()
            };
            if root != cp.root {
                return Err(VerifyFailure {
                    index: Some(self.last_good),
                    last: Some(cp.size.saturating_sub(1)),
                    path: rel(&self.layout.history_file()),
                    problem: format!(
                        "the first {} entries do not hash to the root signed in {}; an entry in this range was altered and the tree recomputed without the log's key (the first {} entries match earlier checkpoints)",
                        cp.size, cp.label, self.last_good
                    ),
                });
            }
            self.last_good = cp.size;
            self.checked += 1;
            self.next_cp += 1;
        }
        Ok(())
    }

    fn chunk(
        &mut self,
        chunk: &Chunk,
        rel: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<(), VerifyFailure> {
        // Resolve the chunk's source names to the fold's counters once, not once per entry.
        let mut counters: Vec<u64> = chunk
            .names
            .iter()
            .map(|n| self.next_seq.get(n).copied().unwrap_or(0))
            .collect();
        let result = self.fold_entries(chunk, &mut counters, rel);
        for (name, next) in chunk.names.iter().zip(counters) {
            self.next_seq.insert(name.clone(), next);
        }
        result?;
        if let Some(e) = &chunk.error {
            return Err(e.clone());
        }
        Ok(())
    }

    /// Recovery restarts each source's sequence from a journal segment's header: the counts it
    /// claims at its base must be those the entries before it give.
    fn check_journal_sources(
        &self,
        index: u64,
        claimed: &BTreeMap<String, u64>,
        chunk: &Chunk,
        counters: &[u64],
    ) -> Result<(), VerifyFailure> {
        let mut actual: BTreeMap<&str, u64> = self
            .next_seq
            .iter()
            .map(|(n, c)| (n.as_str(), *c))
            .collect();
        for (n, c) in chunk.names.iter().zip(counters) {
            actual.insert(n.as_str(), *c);
        }
        actual.retain(|_, c| *c > 0);
        let claimed: BTreeMap<&str, u64> = claimed
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(n, c)| (n.as_str(), *c))
            .collect();
        if actual != claimed {
            return Err(fail(
                Some(index),
                self.journal.path_of(index),
                format!(
                    "the segment header gives the sources' counts at entry {index} as {claimed:?}, the entries before it give {actual:?}"
                ),
            ));
        }
        Ok(())
    }

    fn fold_entries(
        &mut self,
        chunk: &Chunk,
        counters: &mut [u64],
        rel: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<(), VerifyFailure> {
        let layout = self.layout;
        for (j, (leaf, (name, seq))) in chunk.leaves.iter().zip(&chunk.seqs).enumerate() {
            let index = chunk.first + j as u64;
            if let Some(header) = self.journal.header_at(index) {
                self.check_journal_sources(index, &header.sources, chunk, counters)?;
            }
            let Some(next) = counters.get_mut(*name as usize) else {
                continue;
            };
            if *seq != *next {
                let source = chunk
                    .names
                    .get(*name as usize)
                    .map(String::as_str)
                    .unwrap_or("");
                let bundle = layout.bundle(&TileId::full(0, index / TILE_WIDTH));
                return Err(fail(
                    Some(index),
                    rel(&bundle),
                    format!(
                        "source `{source}` has sequence number {seq} where {} was expected: an entry of this source is missing, duplicated or out of order",
                        *next
                    ),
                ));
            }
            *next += 1;
            let mut tile_error = None;
            self.edge
                .push::<()>(*leaf, &mut |full| {
                    if full.level == 0 {
                        return Ok(());
                    }
                    let id = TileId::full(full.level, full.index);
                    let path = layout.hash_tile(&id);
                    let mut want = Vec::new();
                    tile::encode_hashes(full.hashes, &mut want);
                    let stored = fs::read(&path);
                    let span = tile::span(full.level);
                    let first = full.index * TILE_WIDTH * span;
                    match stored {
                        Ok(b) if b == want => {}
                        Ok(b) => {
                            let k = first_difference(&b, &want, Hash::LEN) as u64;
                            tile_error = Some(VerifyFailure {
                                index: Some(first + k * span),
                                last: Some(first + (k + 1) * span - 1),
                                path: rel(&path),
                                problem: format!(
                                    "hash {k} of the tile does not match the entries it covers"
                                ),
                            });
                        }
                        Err(e) => {
                            tile_error = Some(fail(
                                Some(first),
                                rel(&path),
                                format!("cannot read the hash tile: {e}"),
                            ));
                        }
                    }
                    Ok(())
                })
                .ok();
            if let Some(e) = tile_error {
                return Err(e);
            }
            self.check_checkpoints(rel)?;
        }
        Ok(())
    }
}

/// Index of the first `unit`-sized chunk in which `a` and `b` differ (or where the shorter ends).
fn first_difference(a: &[u8], b: &[u8], unit: usize) -> usize {
    a.chunks(unit)
        .zip(b.chunks(unit))
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()) / unit)
}

/// Checks the partial tiles and bundles: every version in the directories of the ledger's current
/// partial tiles must be a prefix of what the entries give, and the published checkpoint's own
/// version must be there.
fn check_partials(
    layout: &Layout,
    edge: &TreeEdge,
    journal: &JournalView,
    notes: &mut Vec<String>,
    rel: &dyn Fn(&Path) -> PathBuf,
) -> Result<(), VerifyFailure> {
    let size = edge.size();
    let published = frame::read_optional(&layout.checkpoint_file())
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|n| n.split_once("\n\n").map(|(t, _)| format!("{t}\n")))
        .and_then(|t| crate::note::Checkpoint::parse(&t).ok());
    let published_here = published.as_ref().is_some_and(|p| p.size == size);
    if let Some(p) = &published
        && p.size != size
    {
        notes.push(format!(
            "log/checkpoint is for {} entries, the ledger holds {size}; its partial tiles are not required",
            p.size
        ));
    }
    for t in tile::partial_tiles(size) {
        let span = tile::span(t.level);
        let first = size - size % (span * TILE_WIDTH);
        let mut hashes = Vec::new();
        tile::encode_hashes(edge.partial(t.level), &mut hashes);
        let mut bundle = Vec::new();
        let mut ends = Vec::new();
        if t.level == 0 {
            for i in first..size {
                if let Some(e) = journal.get(i) {
                    tile::push_bundle_entry(&mut bundle, e);
                    ends.push(bundle.len());
                }
            }
        }
        for is_bundle in [false, true] {
            if is_bundle && t.level > 0 {
                continue;
            }
            let path_of = |w: u16| {
                let id = TileId { width: w, ..t };
                if is_bundle {
                    layout.bundle(&id)
                } else {
                    layout.hash_tile(&id)
                }
            };
            let dir = layout.log_dir().join(t.partial_dir(is_bundle));
            let mut widths: Vec<u16> = match fs::read_dir(&dir) {
                Ok(rd) => rd
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                    .collect(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(fail(Some(first), rel(&dir), format!("cannot list: {e}"))),
            };
            widths.sort_unstable();
            if published_here && !widths.contains(&t.width) {
                return Err(fail(
                    Some(first),
                    rel(&path_of(t.width)),
                    "the partial tile of the published checkpoint is missing",
                ));
            }
            for w in widths {
                let path = path_of(w);
                let stored = fs::read(&path)
                    .map_err(|e| fail(Some(first), rel(&path), format!("cannot read: {e}")))?;
                if w > t.width || w == 0 {
                    return Err(fail(
                        Some(first + u64::from(t.width) * span),
                        rel(&path),
                        format!(
                            "a partial tile of width {w} exists, but the entries give {}",
                            t.width
                        ),
                    ));
                }
                let want = if is_bundle {
                    let len = ends.get(usize::from(w) - 1).copied().unwrap_or(0);
                    bundle.get(..len)
                } else {
                    hashes.get(..usize::from(w) * Hash::LEN)
                }
                .unwrap_or(&[]);
                if stored == want {
                    continue;
                }
                if is_bundle {
                    // Name the entry holding the first byte that differs.
                    let at = first_difference(&stored, want, 1);
                    let k = ends
                        .iter()
                        .position(|end| *end > at)
                        .unwrap_or(usize::from(w) - 1);
                    return Err(fail(
                        Some(first + k as u64),
                        rel(&path),
                        "the partial entry bundle does not match the entries",
                    ));
                }
                let k = first_difference(&stored, want, Hash::LEN) as u64;
                return Err(VerifyFailure {
                    index: Some(first + k * span),
                    last: Some((first + (k + 1) * span).min(size) - 1),
                    path: rel(&path),
                    problem: format!(
                        "hash {k} of the partial tile does not match the entries it covers"
                    ),
                });
            }
        }
    }
    Ok(())
}
