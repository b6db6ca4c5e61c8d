//! Reading stored entries back in order, without a writer: for verification, for rebuilding
//! derived data (indexes), and for export.
//!
//! Entries of full bundles come from the entry bundle files, the unfinished bundle's from the
//! journal; payloads are read sequentially from their segment. [`SegmentWalk`] walks the entries of
//! one payload segment and reports storage problems with the entry and file they concern;
//! [`Entries`] chains the walks over the whole ledger.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::envelope::Envelope;
use crate::frame::{self, Tail};
use crate::hash::Hash;
use crate::journal::SegmentHeader;
use crate::layout::{Layout, PAYLOAD_SEGMENT_ENTRIES};
use crate::ledger::{PAYLOAD_HEADER_LEN, StoredEntry, payload_header};
use crate::tile::{TILE_WIDTH, TileId};

/// A stored file that cannot be read as the format says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError {
    /// The entry concerned, when there is one.
    pub index: Option<u64>,
    /// The file at fault, relative to the ledger directory.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "entry {i}")?,
            None => f.write_str("ledger")?,
        }
        write!(f, " ({}): {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for StorageError {}

pub(crate) fn problem(
    index: Option<u64>,
    path: impl Into<PathBuf>,
    problem: impl Into<String>,
) -> StorageError {
    StorageError {
        index,
        path: path.into(),
        problem: problem.into(),
    }
}

/// Appended to problems that a crash of the writer also leaves behind.
pub(crate) const INTERRUPTED: &str =
    " (if the ledger's writer was interrupted, opening the ledger for writing recovers it)";

/// The journal's entries: where it starts, where it ends, and the envelopes it holds.
#[derive(Debug)]
pub(crate) struct JournalView {
    pub(crate) base: u64,
    pub(crate) end: u64,
    pub(crate) first_path: PathBuf,
    /// Envelope bytes of entries `base..end`.
    envelopes: Vec<Vec<u8>>,
    /// `(base, file)` of each segment, relative to the ledger directory.
    paths: Vec<(u64, PathBuf)>,
    /// The header of each segment, in order: the state it claims at its base.
    pub(crate) headers: Vec<SegmentHeader>,
    /// Files in the journal directory that are not journal segments.
    pub(crate) strays: Vec<PathBuf>,
}

impl JournalView {
    /// Reads every journal segment; they must chain without gaps and end cleanly.
    pub(crate) fn read(layout: &Layout) -> Result<JournalView, StorageError> {
        let (segments, strays) = layout
            .list_journal()
            .map_err(|e| problem(None, "journal", format!("cannot list: {e}")))?;
        let Some((first_base, first)) = segments.first() else {
            return Err(problem(
                None,
                "journal",
                "no journal segment: the ledger's most recent entries are missing",
            ));
        };
        let rel = |p: &Path| PathBuf::from("journal").join(p.file_name().unwrap_or_default());
        let mut view = JournalView {
            base: *first_base,
            end: *first_base,
            first_path: rel(first),
            envelopes: Vec::new(),
            paths: Vec::new(),
            headers: Vec::new(),
            strays,
        };
        for (base, path) in &segments {
            let bytes = fs::read(path)
                .map_err(|e| problem(Some(*base), rel(path), format!("cannot read: {e}")))?;
            let (header, start) = SegmentHeader::decode(&bytes)
                .map_err(|e| problem(Some(*base), rel(path), e.to_string()))?;
            if header.base != *base || !base.is_multiple_of(TILE_WIDTH) {
                return Err(problem(
                    Some(*base),
                    rel(path),
                    format!("segment header names base {}", header.base),
                ));
            }
            if header.base != view.end {
                return Err(problem(
                    Some(view.end.min(header.base)),
                    rel(path),
                    format!(
                        "segment starts at entry {}, but the journal before it ends at entry {}",
                        header.base, view.end
                    ),
                ));
            }
            view.paths.push((*base, rel(path)));
            view.headers.push(header);
            let mut records = frame::Records::new(&bytes, start);
            for r in records.by_ref() {
                view.envelopes.push(r.to_vec());
                view.end = view.end.checked_add(1).ok_or_else(|| {
                    problem(
                        None,
                        rel(path),
                        "journal runs past the largest possible index",
                    )
                })?;
            }
            match records.tail() {
                Some(Tail::Clean) | None => {}
                Some(Tail::Torn { at }) => {
                    return Err(problem(
                        Some(view.end),
                        rel(path),
                        format!(
                            "the journal ends inside the record at byte {at}: it was truncated{INTERRUPTED}"
                        ),
                    ));
                }
                Some(Tail::Damaged { at }) => {
                    return Err(problem(
                        Some(view.end),
                        rel(path),
                        format!("the journal record at byte {at} is damaged{INTERRUPTED}"),
                    ));
                }
            }
        }
        Ok(view)
    }

    /// The header of the segment starting at entry `index`, if one does.
    pub(crate) fn header_at(&self, index: u64) -> Option<&SegmentHeader> {
        // Segments start at bundle boundaries: most entries need no search.
        if !index.is_multiple_of(TILE_WIDTH) {
            return None;
        }
        self.headers.iter().find(|h| h.base == index)
    }

    /// The journal's envelope of entry `index`, if it holds one.
    pub(crate) fn get(&self, index: u64) -> Option<&[u8]> {
        let i = usize::try_from(index.checked_sub(self.base)?).ok()?;
        self.envelopes.get(i).map(Vec::as_slice)
    }

    /// The segment file holding entry `index` (relative path).
    pub(crate) fn path_of(&self, index: u64) -> PathBuf {
        self.paths
            .iter()
            .rev()
            .find(|(b, _)| *b <= index)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| self.first_path.clone())
    }
}

/// One entry as walked: its bytes, where they came from, and what the tile says of it.
#[derive(Debug)]
pub(crate) struct Step<'a> {
    pub(crate) index: u64,
    pub(crate) envelope_bytes: &'a [u8],
    pub(crate) envelope: Envelope<'a>,
    pub(crate) payload: &'a [u8],
    /// Byte position of the payload in its segment file.
    pub(crate) payload_at: u64,
    /// The bundle (or journal) file the envelope came from, relative.
    pub(crate) from: &'a Path,
    /// The stored level-0 hash of the entry and its tile file, for full bundles.
    pub(crate) stored_leaf: Option<(Option<&'a [u8]>, &'a Path)>,
}

/// Walks the entries of one payload segment in order.
#[derive(Debug)]
pub(crate) struct SegmentWalk {
    layout: Layout,
    journal: Arc<JournalView>,
    next: u64,
    end: u64,
    full_bundles: u64,
    payloads: ChunkReader,
    payload_rel: PathBuf,
    offset: u64,
    bundle: Option<Vec<u8>>,
    bundle_pos: usize,
    from: PathBuf,
    tile: Option<(Vec<u8>, PathBuf)>,
}

impl SegmentWalk {
    /// Walks the entries of payload segment `segment` in a ledger of `size` entries.
    pub(crate) fn open(
        layout: &Layout,
        journal: Arc<JournalView>,
        segment: u64,
        size: u64,
    ) -> Result<SegmentWalk, StorageError> {
        let first = segment * PAYLOAD_SEGMENT_ENTRIES;
        let path = layout.payload_segment(segment);
        let payload_rel = relative(layout, &path);
        let file = File::open(&path).map_err(|e| {
            problem(
                Some(first),
                &payload_rel,
                format!("cannot open the payload segment: {e}"),
            )
        })?;
        let mut payloads = ChunkReader::new(file);
        let head = payloads.take(PAYLOAD_HEADER_LEN as usize).map_err(|e| {
            problem(
                Some(first),
                &payload_rel,
                format!("cannot read the header: {e}"),
            )
        })?;
        if head != Some(&payload_header(segment)[..]) {
            return Err(problem(
                Some(first),
                &payload_rel,
                "payload segment header is damaged or names another segment",
            ));
        }
        Ok(SegmentWalk {
            layout: layout.clone(),
            journal,
            next: first,
            end: (first + PAYLOAD_SEGMENT_ENTRIES).min(size),
            full_bundles: size / TILE_WIDTH,
            payloads,
            payload_rel,
            offset: PAYLOAD_HEADER_LEN,
            bundle: None,
            bundle_pos: 0,
            from: PathBuf::new(),
            tile: None,
        })
    }

    /// Loads the bundle (or journal tail) entry `self.next` starts, checking the previous one.
    fn enter_bundle(&mut self) -> Result<(), StorageError> {
        let n = self.next / TILE_WIDTH;
        let first = n * TILE_WIDTH;
        if n < self.full_bundles {
            let id = TileId::full(0, n);
            let bpath = self.layout.bundle(&id);
            let tpath = self.layout.hash_tile(&id);
            self.from = relative(&self.layout, &bpath);
            let bundle = fs::read(&bpath).map_err(|e| {
                problem(
                    Some(first),
                    &self.from,
                    format!("cannot read the entry bundle: {e}"),
                )
            })?;
            let trel = relative(&self.layout, &tpath);
            let tile = fs::read(&tpath).map_err(|e| {
                problem(
                    Some(first),
                    &trel,
                    format!("cannot read the hash tile: {e}"),
                )
            })?;
            self.bundle = Some(bundle);
            self.bundle_pos = 0;
            self.tile = Some((tile, trel));
        } else {
            self.bundle = None;
            self.tile = None;
            self.from = self.journal.path_of(first);
        }
        Ok(())
    }

    /// Checks what the finished bundle left: no extra entries, a tile of the full length.
    fn leave_bundle(&self) -> Result<(), StorageError> {
        let last = self.next.saturating_sub(1);
        if let Some(b) = &self.bundle
            && self.bundle_pos < b.len()
        {
            return Err(problem(
                Some(last),
                &self.from,
                "the bundle holds more than 256 entries",
            ));
        }
        if let Some((tile, trel)) = &self.tile
            && tile.len() != TILE_WIDTH as usize * Hash::LEN
        {
            return Err(problem(
                Some(last - last % TILE_WIDTH),
                trel,
                format!("the tile is {} bytes long; 8,192 were expected", tile.len()),
            ));
        }
        Ok(())
    }

    /// The next entry, or `None` at the end of the segment's range.
    pub(crate) fn next(&mut self) -> Option<Result<Step<'_>, StorageError>> {
        if self.next >= self.end {
            return None;
        }
        Some(self.step())
    }

    fn step(&mut self) -> Result<Step<'_>, StorageError> {
        let index = self.next;
        let k = index % TILE_WIDTH;
        if k == 0 || self.from.as_os_str().is_empty() {
            if k == 0 && !self.from.as_os_str().is_empty() {
                self.leave_bundle()?;
            }
            self.enter_bundle()?;
        }
        let (start, len) = match &self.bundle {
            Some(b) => {
                let at = self.bundle_pos;
                let len = b
                    .get(at..)
                    .and_then(|r| r.first_chunk::<2>())
                    .map(|l| usize::from(u16::from_be_bytes(*l)));
                match len {
                    Some(len) if b.len() >= at + 2 + len => (at + 2, len),
                    Some(_) => {
                        return Err(problem(
                            Some(index),
                            &self.from,
                            format!(
                                "entry {k} of the bundle (byte {at}) runs past the end of the file"
                            ),
                        ));
                    }
                    None if at >= b.len() => {
                        return Err(problem(
                            Some(index),
                            &self.from,
                            format!("the bundle ends after {k} entries; 256 were expected"),
                        ));
                    }
                    None => {
                        return Err(problem(
                            Some(index),
                            &self.from,
                            format!(
                                "entry {k} of the bundle (byte {at}) runs past the end of the file"
                            ),
                        ));
                    }
                }
            }
            None => (0, 0),
        };
        let envelope_bytes: &[u8] = match &self.bundle {
            Some(b) => {
                self.bundle_pos = start + len;
                b.get(start..start + len).unwrap_or(&[])
            }
            None => self.journal.get(index).ok_or_else(|| {
                problem(Some(index), &self.from, "entry missing from the journal")
            })?,
        };
        let envelope = Envelope::decode(envelope_bytes).map_err(|e| {
            problem(
                Some(index),
                &self.from,
                format!("the envelope does not decode: {e}"),
            )
        })?;
        let len = usize::try_from(envelope.payload_len).unwrap_or(usize::MAX);
        let payload_at = self.offset;
        // Recovery starts from a journal segment's header: its payload offset must be where the
        // payloads really put that entry.
        if let Some(h) = self.journal.header_at(index)
            && h.payload_offset != payload_at - PAYLOAD_HEADER_LEN
        {
            return Err(problem(
                Some(index),
                self.journal.path_of(index),
                format!(
                    "the segment header puts this entry's payload at offset {}, the payloads at {}",
                    h.payload_offset,
                    payload_at - PAYLOAD_HEADER_LEN
                ),
            ));
        }
        let short = || {
            problem(
                Some(index),
                &self.payload_rel,
                format!(
                    "the payload segment ends before this entry's {len}-byte payload at byte {payload_at}"
                ),
            )
        };
        let payload = match self.payloads.take(len) {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => return Err(short()),
        };
        self.offset += envelope.payload_len;
        self.next += 1;
        let stored_leaf = self.tile.as_ref().map(|(t, p)| {
            let at = usize::try_from(k).unwrap_or(0) * Hash::LEN;
            (t.get(at..at + Hash::LEN), p.as_path())
        });
        Ok(Step {
            index,
            envelope_bytes,
            envelope,
            payload,
            payload_at,
            from: &self.from,
            stored_leaf,
        })
    }

    /// Checks the end of the walk: the last bundle is whole and no bytes follow the last payload.
    pub(crate) fn finish(mut self) -> Result<(), StorageError> {
        if !self.from.as_os_str().is_empty() && self.next.is_multiple_of(TILE_WIDTH) {
            self.leave_bundle()?;
        }
        let trailing = self.payloads.rest().unwrap_or(0);
        if trailing > 0 {
            // The bytes would belong to the entry after the last one stored here.
            let last = self.end.saturating_sub(1);
            return Err(problem(
                Some(self.end),
                &self.payload_rel,
                format!(
                    "{trailing} unexpected bytes follow the payload of entry {last}{INTERRUPTED}"
                ),
            ));
        }
        Ok(())
    }
}

/// Reads a file front to back in large chunks and lends out slices of its buffer, so each byte
/// is copied once (kernel to buffer) however small the pieces are.
///
/// An audit reads each byte once: the reader asks for read-ahead, and drops from the page cache
/// what it has copied, so that streaming gigabytes neither evicts everything else nor pays for
/// fresh memory at every chunk.
#[derive(Debug)]
struct ChunkReader {
    file: File,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes read from the file so far.
    read: u64,
    /// Length of the file when opened.
    len: u64,
}

impl ChunkReader {
    const CHUNK: usize = 4 << 20;

    fn new(file: File) -> ChunkReader {
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        ChunkReader {
            file,
            buf: vec![0; Self::CHUNK],
            start: 0,
            end: 0,
            read: 0,
            len,
        }
    }

    /// The next `n` bytes, or `None` when the file ends first.
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        if self.end - self.start < n {
            // A length read from a damaged envelope must not size a buffer beyond the file.
            let available = (self.end - self.start) as u64 + self.len.saturating_sub(self.read);
            if n as u64 > available {
                return Ok(None);
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            while self.end < n {
                let Some(free) = self.buf.get_mut(self.end..) else {
                    break;
                };
                let got = self.file.read(free)?;
                if got == 0 {
                    return Ok(None);
                }
                crate::ledger::drop_cached(&self.file, self.read, NonZeroU64::new(got as u64));
                self.read += got as u64;
                self.end += got;
            }
        }
        let slice = self.buf.get(self.start..self.start + n);
        self.start += n;
        Ok(slice)
    }

    /// Bytes left unread, consuming them.
    fn rest(&mut self) -> io::Result<u64> {
        let buffered = (self.end - self.start) as u64;
        self.start = self.end;
        Ok(buffered + io::copy(&mut self.file, &mut io::sink())?)
    }
}

pub(crate) fn relative(layout: &Layout, p: &Path) -> PathBuf {
    p.strip_prefix(layout.root()).unwrap_or(p).to_owned()
}

/// Every stored entry of a ledger directory, in order, read without a writer, one at a time.
///
/// Storage problems (missing or short files) end the iteration with an error naming the entry
/// and file; content is not checked against hashes here (that is [`crate::verify()`]'s job).
#[derive(Debug)]
pub struct Entries {
    layout: Layout,
    journal: Arc<JournalView>,
    size: u64,
    segment: u64,
    walk: Option<SegmentWalk>,
    failed: bool,
}

impl Entries {
    /// Opens the ledger at `dir` for reading.
    pub fn open(dir: &Path) -> Result<Entries, StorageError> {
        let layout = Layout::new(dir);
        let journal = Arc::new(JournalView::read(&layout)?);
        let size = journal.end;
        Ok(Entries {
            layout,
            journal,
            size,
            segment: 0,
            walk: None,
            failed: false,
        })
    }

    /// Starts the iteration at the payload segment holding entry `start`: entries before
    /// `start` in that segment are still yielded (callers skip them by index), but earlier
    /// segments are not read.
    pub fn starting_at(mut self, start: u64) -> Entries {
        self.segment = start / PAYLOAD_SEGMENT_ENTRIES;
        self.walk = None;
        self
    }

    /// Number of entries stored.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the ledger holds no entry.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn advance(&mut self) -> Result<Option<StoredEntry>, StorageError> {
        loop {
            if self.walk.is_none() {
                if self.segment * PAYLOAD_SEGMENT_ENTRIES >= self.size {
                    return Ok(None);
                }
                let walk =
                    SegmentWalk::open(&self.layout, self.journal.clone(), self.segment, self.size)?;
                self.walk = Some(walk);
                self.segment += 1;
            }
            let Some(walk) = self.walk.as_mut() else {
                continue;
            };
            if let Some(step) = walk.next() {
                let s = step?;
                return Ok(Some(StoredEntry {
                    index: s.index,
                    envelope: s.envelope_bytes.to_vec(),
                    payload: s.payload.to_vec(),
                }));
            }
            if let Some(done) = self.walk.take() {
                done.finish()?;
            }
        }
    }
}

impl Iterator for Entries {
    type Item = Result<StoredEntry, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.advance() {
            Ok(e) => e.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// A read-only view of a ledger's tree for proofs: full tiles from their files, the unfinished
/// right edge recomputed from the stored entries. Needs no writer and no lock, so proofs can be
/// made while the ledger is being written (entries covered by a checkpoint never change).
#[derive(Debug)]
pub struct TreeReader {
    layout: Layout,
    journal: JournalView,
    size: u64,
}

impl TreeReader {
    /// Opens the ledger at `dir` for reading its tree.
    pub fn open(dir: &Path) -> Result<TreeReader, StorageError> {
        let layout = Layout::new(dir);
        let journal = JournalView::read(&layout)?;
        let size = journal.end;
        Ok(TreeReader {
            layout,
            journal,
            size,
        })
    }

    /// Number of entries stored.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The canonical envelope of entry `index`.
    pub fn envelope(&self, index: u64) -> Result<Vec<u8>, StorageError> {
        if index >= self.size {
            return Err(problem(
                Some(index),
                "journal",
                format!("the ledger holds {} entries", self.size),
            ));
        }
        if let Some(e) = self.journal.get(index) {
            return Ok(e.to_vec());
        }
        let id = TileId::full(0, index / TILE_WIDTH);
        let path = self.layout.bundle(&id);
        let rel = relative(&self.layout, &path);
        let bytes =
            fs::read(&path).map_err(|e| problem(Some(index), &rel, format!("cannot read: {e}")))?;
        crate::tile::BundleEntries::new(&bytes)
            .nth(usize::try_from(index % TILE_WIDTH).unwrap_or(0))
            .and_then(Result::ok)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| problem(Some(index), rel, "the entry is missing from its bundle"))
    }

    /// The newest signed checkpoint stored (history or published), as its signed note, among
    /// those not beyond the stored entries. The signature is not checked here: whoever verifies
    /// a proof checks it with the log's key.
    pub fn latest_checkpoint(
        &self,
    ) -> Result<Option<(crate::note::Checkpoint, String)>, StorageError> {
        let mut notes = Vec::new();
        let hpath = self.layout.history_file();
        if let Some(bytes) = frame::read_optional(&hpath)
            .map_err(|e| problem(None, "checkpoints", format!("cannot read: {e}")))?
        {
            let h = crate::history::parse(&bytes)
                .map_err(|e| problem(None, "checkpoints", e.to_string()))?;
            notes.extend(h.records.into_iter().rev().take(1).filter_map(|r| r.note));
        }
        let cpath = self.layout.checkpoint_file();
        if let Some(b) = frame::read_optional(&cpath)
            .map_err(|e| problem(None, "log/checkpoint", format!("cannot read: {e}")))?
        {
            notes.extend(String::from_utf8(b).ok());
        }
        let mut best: Option<(crate::note::Checkpoint, String)> = None;
        for note in notes {
            let Some((text, _)) = note.split_once("\n\n") else {
                continue;
            };
            let Ok(cp) = crate::note::Checkpoint::parse(&format!("{text}\n")) else {
                continue;
            };
            if cp.size <= self.size && best.as_ref().is_none_or(|(b, _)| cp.size > b.size) {
                best = Some((cp, note));
            }
        }
        Ok(best)
    }

    /// Leaf hashes of bundle `n` (entries `n × 256 …`, up to `width` of them).
    fn leaves(&self, n: u64, width: usize) -> Result<Vec<Hash>, StorageError> {
        (0..width as u64)
            .map(|k| {
                self.envelope(n * TILE_WIDTH + k)
                    .map(|e| crate::hash::leaf_hash(&e))
            })
            .collect()
    }
}

impl crate::proof::TileSource for TreeReader {
    type Error = StorageError;

    fn tile(
        &self,
        level: u8,
        index: u64,
        size: u64,
    ) -> Result<std::borrow::Cow<'_, [Hash]>, StorageError> {
        let width = crate::tile::width_at(level, index, size);
        if index < crate::tile::full_tiles(level, self.size) {
            let path = self.layout.hash_tile(&TileId::full(level, index));
            let hashes = crate::tile::read_full(&path)
                .map_err(|e| problem(None, relative(&self.layout, &path), e))?;
            return Ok(std::borrow::Cow::Owned(
                hashes.into_iter().take(width).collect(),
            ));
        }
        // The unfinished tile: from the entries at level 0, from full tiles below otherwise.
        if level == 0 {
            return self.leaves(index, width).map(std::borrow::Cow::Owned);
        }
        let mut out = Vec::with_capacity(width);
        for j in 0..width as u64 {
            let below = self.tile(level - 1, index * TILE_WIDTH + j, size)?;
            out.push(crate::hash::mth(&below));
        }
        Ok(std::borrow::Cow::Owned(out))
    }
}
