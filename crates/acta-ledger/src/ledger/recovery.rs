//! Opening a ledger: replaying the journal after an interrupted write, cutting what was never
//! acknowledged, refusing what contradicts a signed checkpoint, and rebuilding derived files.

use super::writers::*;
use super::*;

impl Ledger {
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
}

/// Opening an existing ledger: replays the journal, cuts torn tails, rewrites derived files.
pub(super) struct Recovery {
    layout: Layout,
}

impl Recovery {
    pub(super) fn run(
        layout: Layout,
        key: LogKey,
        options: LedgerOptions,
        lock: File,
        created: bool,
    ) -> Result<Ledger, LedgerError> {
        let rec = Recovery { layout };
        let layout = rec.layout.clone();
        let (history_file, signed_history) = rec.open_history(&key)?;
        let (mut segments, _) = layout
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
            segments.push((0, layout.journal_segment(0)));
        }
        Recovery::run_segments(
            rec,
            key,
            options,
            lock,
            history_file,
            signed_history,
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
                history::append(&mut file, &p.note).map_err(io_err("append to", &path))?;
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
        let journal = JournalWriter::resume(
            &layout,
            journal_file,
            last_path.clone(),
            last_header.base,
            closed,
            false,
        );
        let payload = PayloadWriter::open(&layout, payload.segment, payload.offset)?;
        let mut history_file = history_file;
        let signed = match last_signed {
            Some(s) => s,
            None => {
                // A new ledger: its first checkpoint is the empty tree.
                let s = SignedCheckpoint::sign(&key, 0, crate::hash::empty_root());
                let hp = layout.history_file();
                history::append(&mut history_file, &s.note).map_err(io_err("append to", &hp))?;
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
pub(super) fn replay_entry(
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
pub(super) struct PayloadReplay {
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
pub(super) fn restore_edge(layout: &Layout, base: u64) -> Result<TreeEdge, LedgerError> {
    let mut levels = vec![Vec::new()];
    let mut span: u64 = TILE_WIDTH; // leaves per hash at level 1
    let mut level: u8 = 1;
    while base / span > 0 {
        let width = (base / span) % TILE_WIDTH;
        let first = base / span / TILE_WIDTH * TILE_WIDTH; // first tile index at level - 1
        let mut hashes = Vec::with_capacity(width as usize);
        for j in 0..width {
            let path = layout.hash_tile(&TileId::full(level - 1, first + j));
            let tile = tile::read_full(&path).map_err(|e| damaged(&path, e))?;
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
pub(super) fn remove_beyond(layout: &Layout, size: u64) -> Result<(), LedgerError> {
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
