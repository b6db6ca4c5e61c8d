//! The files the writer keeps open: tile and bundle files, the journal segment and the payload
//! segment being written, and the background flusher that retires journal segments.

use super::*;

/// Writes tile and bundle files.
#[derive(Debug)]
pub(super) struct TileWriter {
    pub(super) log: PathBuf,
    pub(super) made_dirs: HashSet<PathBuf>,
    /// Tiles with published partial versions: `(is bundle, level, index)`.
    pub(super) partials: HashSet<(bool, u8, u64)>,
    pub(super) buf: Vec<u8>,
}

impl TileWriter {
    pub(super) fn new(layout: &Layout) -> TileWriter {
        TileWriter {
            log: layout.log_dir(),
            made_dirs: HashSet::new(),
            partials: HashSet::new(),
            buf: Vec::new(),
        }
    }

    pub(super) fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<(), LedgerError> {
        let path = self.log.join(rel);
        if let Some(parent) = path.parent()
            && !self.made_dirs.contains(parent)
        {
            fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            self.made_dirs.insert(parent.to_owned());
        }
        fs::write(&path, bytes).map_err(io_err("write", &path))
    }

    pub(super) fn write_full(
        &mut self,
        full: &FullTile<'_>,
        bundle: &[u8],
    ) -> Result<(), LedgerError> {
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

    pub(super) fn drop_partials(&mut self, id: &TileId, bundle: bool) -> Result<(), LedgerError> {
        if self.partials.remove(&(bundle, id.level, id.index)) {
            let dir = self.log.join(id.partial_dir(bundle));
            frame::absent_ok(fs::remove_dir_all(&dir)).map_err(io_err("remove", &dir))?;
        }
        Ok(())
    }

    pub(super) fn write_partial(
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

/// A file appended to through a buffer, which a roll replaces by a new one; the next sync
/// covers the replaced files too, and the directory when a file was created in it.
#[derive(Debug)]
pub(super) struct Appending {
    file: File,
    path: PathBuf,
    /// Bytes not yet written.
    pub(super) buf: Vec<u8>,
    /// Replaced files whose last writes still need a sync.
    to_sync: Vec<(File, PathBuf)>,
    dir: PathBuf,
    dir_dirty: bool,
}

impl Appending {
    fn new(file: File, path: PathBuf, dir: PathBuf, created: bool, capacity: usize) -> Appending {
        Appending {
            file,
            path,
            buf: Vec::with_capacity(capacity),
            to_sync: Vec::new(),
            dir,
            dir_dirty: created,
        }
    }

    /// Writes the buffer out (not synced).
    pub(super) fn flush(&mut self) -> Result<(), LedgerError> {
        if !self.buf.is_empty() {
            self.file
                .write_all(&self.buf)
                .map_err(io_err("append to", &self.path))?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes `bytes` straight to the file, after the buffer.
    fn write_through(&mut self, bytes: &[u8]) -> Result<(), LedgerError> {
        self.flush()?;
        self.file
            .write_all(bytes)
            .map_err(io_err("append to", &self.path))
    }

    /// Continues in a new file, created in the same directory; returns the old path.
    fn replace(&mut self, file: File, path: PathBuf) -> Result<PathBuf, LedgerError> {
        self.flush()?;
        let old = std::mem::replace(&mut self.file, file);
        let old_path = std::mem::replace(&mut self.path, path);
        self.to_sync.push((old, old_path.clone()));
        self.dir_dirty = true;
        Ok(old_path)
    }

    /// Syncs the replaced files (then `done` with each), the current one and the directory.
    fn sync(&mut self, done: impl Fn(&File)) -> Result<(), LedgerError> {
        for (f, p) in self.to_sync.drain(..) {
            f.sync_data().map_err(io_err("sync", &p))?;
            done(&f);
        }
        self.file.sync_data().map_err(io_err("sync", &self.path))?;
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }
}

/// The journal segment being written, and closed ones awaiting deletion.
#[derive(Debug)]
pub(super) struct JournalWriter {
    layout: Layout,
    /// The current segment; its buffer holds the frames of entries appended since the last commit.
    pub(super) out: Appending,
    base: u64,
    /// Closed segments `(base, end, path)`, synced, deletable once their bundles are durable.
    pub(super) closed: Vec<(u64, u64, PathBuf)>,
    spare_dirty: bool,
}

impl JournalWriter {
    /// Starts a new ledger's journal with the segment for `header`.
    pub(super) fn create(
        layout: &Layout,
        header: &SegmentHeader,
    ) -> Result<JournalWriter, LedgerError> {
        let path = layout.journal_segment(header.base);
        let file = create_with_header(&path, &header.encode())?;
        Ok(JournalWriter::resume(
            layout,
            file,
            path,
            header.base,
            Vec::new(),
            true,
        ))
    }

    /// Continues appending to an existing segment after recovery.
    pub(super) fn resume(
        layout: &Layout,
        file: File,
        path: PathBuf,
        base: u64,
        closed: Vec<(u64, u64, PathBuf)>,
        created: bool,
    ) -> JournalWriter {
        let out = Appending::new(file, path, layout.journal_dir(), created, 0);
        JournalWriter {
            layout: layout.clone(),
            out,
            base,
            closed,
            spare_dirty: false,
        }
    }

    /// Entries in the current segment when the ledger holds `size` entries.
    pub(super) fn entries(&self, size: u64) -> u64 {
        size - self.base
    }

    pub(super) fn roll(&mut self, header: SegmentHeader) -> Result<(), LedgerError> {
        self.out.flush()?;
        let path = self.layout.journal_segment(header.base);
        let file = match reuse_spare(&self.layout, &path, &header.encode())? {
            Some(f) => {
                self.spare_dirty = true;
                f
            }
            None => create_with_header(&path, &header.encode())?,
        };
        let old_path = self.out.replace(file, path)?;
        self.closed.push((self.base, header.base, old_path));
        self.base = header.base;
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<(), LedgerError> {
        self.out.flush()
    }

    pub(super) fn sync(&mut self) -> Result<(), LedgerError> {
        self.out.sync(|_| {})?;
        if self.spare_dirty {
            sync_dir(&self.layout.journal_spare_dir())?;
            self.spare_dirty = false;
        }
        Ok(())
    }
}

/// The payload segment being written.
#[derive(Debug)]
pub(super) struct PayloadWriter {
    layout: Layout,
    out: Appending,
    pub(super) segment: u64,
    /// Bytes of payload in the segment, buffered ones included.
    pub(super) len: u64,
    /// File offset below which cached pages were dropped.
    dropped: u64,
}

/// Payload bytes buffered before a write call.
pub(super) const PAYLOAD_BUF: usize = 4 << 20;

impl PayloadWriter {
    pub(super) fn open(
        layout: &Layout,
        segment: u64,
        len: u64,
    ) -> Result<PayloadWriter, LedgerError> {
        let path = layout.payload_segment(segment);
        let (file, created) = if len == 0 {
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
        let out = Appending::new(file, path, layout.payload_dir(), created, PAYLOAD_BUF);
        Ok(PayloadWriter {
            layout: layout.clone(),
            out,
            segment,
            len,
            dropped: 0,
        })
    }

    pub(super) fn roll(&mut self, segment: u64) -> Result<(), LedgerError> {
        self.out.flush()?;
        let path = self.layout.payload_segment(segment);
        let file = create_with_header(&path, &payload_header(segment))?;
        self.out.replace(file, path)?;
        self.segment = segment;
        self.len = 0;
        self.dropped = 0;
        Ok(())
    }

    pub(super) fn write(&mut self, payload: &[u8]) -> Result<(), LedgerError> {
        if payload.len() >= PAYLOAD_BUF {
            self.out.write_through(payload)?;
        } else {
            if self.out.buf.len() + payload.len() > PAYLOAD_BUF {
                self.out.flush()?;
            }
            self.out.buf.extend_from_slice(payload);
        }
        self.len += payload.len() as u64;
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<(), LedgerError> {
        self.out.flush()
    }

    pub(super) fn sync(&mut self) -> Result<(), LedgerError> {
        self.out.sync(|f| drop_cached(f, 0, None))?;
        // Synced payloads are written once and read again only by audits: drop their pages from
        // the cache (all whole pages; the last, partial one is still being appended to), so the
        // ledger streams through a small, warm set of pages instead of filling memory.
        let synced = (PAYLOAD_HEADER_LEN + self.len) / PAGE * PAGE;
        if synced > self.dropped {
            drop_cached(
                &self.out.file,
                self.dropped,
                std::num::NonZeroU64::new(synced - self.dropped),
            );
            self.dropped = synced;
        }
        Ok(())
    }
}

/// Page size for cache advice.
pub(super) const PAGE: u64 = 4096;

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
pub(super) const MAX_SPARE_SEGMENTS: usize = 4;

/// Retires closed journal segments (whose entries are durable in bundle files): keeps a few as
/// spares for reuse, removes the rest.
pub(super) fn retire(layout: &Layout, paths: &[PathBuf]) -> Result<(), LedgerError> {
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
pub(super) fn reuse_spare(
    layout: &Layout,
    path: &Path,
    header: &[u8],
) -> Result<Option<File>, LedgerError> {
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

pub(super) fn create_with_header(path: &Path, header: &[u8]) -> Result<File, LedgerError> {
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
pub(super) struct Flusher {
    pub(super) jobs: Option<mpsc::Sender<Vec<PathBuf>>>,
    /// Segments retired by a finished job; `None` when it failed, and the same segments are
    /// offered again at the next publish (close then syncs and retires them itself, reporting
    /// any error).
    pub(super) done: mpsc::Receiver<Option<Vec<PathBuf>>>,
    pub(super) busy: bool,
    pub(super) thread: Option<thread::JoinHandle<()>>,
}

impl Flusher {
    pub(super) fn start(layout: &Layout) -> Flusher {
        let (jobs, job_rx) = mpsc::channel::<Vec<PathBuf>>();
        let (done_tx, done) = mpsc::channel();
        let retire_layout = layout.clone();
        let thread_root = layout.root().to_owned();
        let thread = thread::Builder::new()
            .name("acta-ledger-flush".into())
            .spawn(move || {
                for paths in job_rx {
                    let r = syncfs(&thread_root).and_then(|()| retire(&retire_layout, &paths));
                    if done_tx.send(r.ok().map(|()| paths)).is_err() {
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
        }
    }

    pub(super) fn settle(
        &mut self,
        closed: &mut Vec<(u64, u64, PathBuf)>,
        result: Option<Vec<PathBuf>>,
    ) {
        self.busy = false;
        if let Some(removed) = result {
            closed.retain(|(_, _, p)| !removed.contains(p));
        }
    }

    /// Collects a finished job, and starts one for `closed` segments if idle.
    pub(super) fn offer(&mut self, closed: &mut Vec<(u64, u64, PathBuf)>) {
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
    pub(super) fn finish(&mut self, closed: &mut Vec<(u64, u64, PathBuf)>) {
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
