//! Index parts: immutable files, each covering a run of consecutive ledger entries.
//!
//! A part holds, for its rows (one per ledger entry, in ledger order):
//!
//! - **columns**: time (epoch ms), `class_uid`, and the single-valued fields (source, outcome,
//!   actor, action, service, first resource, IP, account, region, status code), each as a
//!   dictionary of the distinct values and one dictionary id per row. Filters on these fields
//!   scan the ids; tables, counts and `who` read them.
//! - **postings**: the multi-valued identifier fields (every actor identifier, every resource
//!   identifier, the user agent, and in raw full-text mode the words of the record), each as a
//!   dictionary and, per value, the ascending rows holding it.
//!
//! Dictionaries are sorted by the lowercased value (then by the value as written), so a
//! case-insensitive lookup is a binary search and a prefix is one contiguous range. Values keep
//! their case for display.
//!
//! File layout, little-endian: the magic `ACTAPRT1`, a fixed header (first ledger index, row
//! count, earliest and latest time, section count), a table of sections (offset, length,
//! CRC-32C), then the sections. A reader loads a section only when a query needs it, checks its
//! CRC, and keeps it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::Row;
use crate::index::{IndexError, parse_ip};

/// Dictionary id of "no value" in a column.
pub(crate) const NONE: u32 = u32::MAX;
/// Longest value indexed, in bytes; longer values are cut on a character boundary.
pub(crate) const MAX_VALUE: usize = 4096;
/// Longest word indexed in raw full-text mode, in bytes.
const MAX_WORD: usize = 64;

const MAGIC: &[u8; 8] = b"ACTAPRT1";
/// Magic, first index, rows, time min, time max, section count.
const HEADER: usize = 8 + 8 + 4 + 8 + 8 + 4;
/// Offset, length, CRC of one section.
const ENTRY: usize = 8 + 8 + 4;

/// The single-valued fields, stored as columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Source,
    Outcome,
    Actor,
    Action,
    Service,
    Resource,
    Ip,
    Account,
    Region,
    StatusCode,
}

impl Col {
    pub(crate) const ALL: [Col; 10] = [
        Col::Source,
        Col::Outcome,
        Col::Actor,
        Col::Action,
        Col::Service,
        Col::Resource,
        Col::Ip,
        Col::Account,
        Col::Region,
        Col::StatusCode,
    ];
    fn slot(self) -> usize {
        self as usize
    }

    /// The postings field whose dictionary this column's ids refer to: the actor shown is one
    /// of the actor's identifiers, the resource shown the first resource identifier.
    fn via(self) -> Option<Multi> {
        match self {
            Col::Actor => Some(Multi::ActorId),
            Col::Resource => Some(Multi::ResourceId),
            _ => None,
        }
    }
}

/// The multi-valued fields, stored as postings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Multi {
    ActorId,
    ResourceId,
    UserAgent,
    Word,
}

impl Multi {
    pub(crate) const ALL: [Multi; 4] = [
        Multi::ActorId,
        Multi::ResourceId,
        Multi::UserAgent,
        Multi::Word,
    ];
    fn slot(self) -> usize {
        self as usize
    }
}

/// Section numbers: time, class, 4 per column (dictionary offsets, dictionary bytes, dictionary
/// lookup table, ids), 5 per postings field (the dictionary's three, posting offsets, rows), and
/// the parsed addresses of the IP dictionary.
const S_TIME: usize = 0;
const S_CLASS: usize = 1;
const S_COLS: usize = 2;
const COL_SECTIONS: usize = 4;
const S_MULTI: usize = S_COLS + COL_SECTIONS * Col::ALL.len();
const MULTI_SECTIONS: usize = 5;
const S_IPS: usize = S_MULTI + MULTI_SECTIONS * Multi::ALL.len();
const SECTIONS: usize = S_IPS + 1;

/// `s` cut to at most [`MAX_VALUE`] bytes on a character boundary.
pub(crate) fn bounded(s: &str) -> &str {
    cut(s, MAX_VALUE)
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// The lowercased form dictionaries are sorted and looked up by.
/// Character by character, as the query language compares values (`str::to_lowercase` would
/// treat a word-final Σ differently).
pub(crate) fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
        std::borrow::Cow::Owned(s.chars().flat_map(char::to_lowercase).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// An IP address as a 128-bit number (IPv4 mapped into IPv6).
pub(crate) fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The hash dictionaries are looked up by on disk: CRC-32C of the lowercased value.
pub(crate) fn key_hash(s: &str) -> u32 {
    if !s.is_ascii() {
        return crc32c::crc32c(lower(s).as_bytes());
    }
    let mut crc = 0;
    let mut buf = [0u8; 64];
    for chunk in s.as_bytes().chunks(buf.len()) {
        let out = buf.get_mut(..chunk.len()).unwrap_or_default();
        for (o, b) in out.iter_mut().zip(chunk) {
            *o = b.to_ascii_lowercase();
        }
        crc = crc32c::crc32c_append(crc, out);
    }
    crc
}

/// Distinct values of one field in a part being built, ids in first-seen order; the values
/// live in one buffer.
#[derive(Default)]
struct Dict {
    bytes: Vec<u8>,
    /// End of each value in `bytes`.
    ends: Vec<u64>,
    table: hashbrown::HashTable<u32>,
    state: foldhash::fast::FixedState,
}

fn value_at<'a>(bytes: &'a [u8], ends: &[u64], id: u32) -> &'a [u8] {
    let i = id as usize;
    let start = match i.checked_sub(1) {
        Some(p) => ends.get(p).copied().unwrap_or(0),
        None => 0,
    };
    let end = ends.get(i).copied().unwrap_or(start);
    bytes.get(start as usize..end as usize).unwrap_or_default()
}

impl Dict {
    fn id(&mut self, s: &str) -> u32 {
        use std::hash::BuildHasher as _;
        let Dict {
            bytes,
            ends,
            table,
            state,
        } = self;
        let hash = state.hash_one(s.as_bytes());
        let entry = table.entry(
            hash,
            |&id| value_at(bytes, ends, id) == s.as_bytes(),
            |&id| state.hash_one(value_at(bytes, ends, id)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => *e.get(),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let id = ends.len() as u32;
                bytes.extend_from_slice(s.as_bytes());
                ends.push(bytes.len() as u64);
                v.insert(id);
                id
            }
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The dictionary as stored: value offsets, value bytes, and the lookup table.
    fn sections(self) -> [Vec<u8>; 3] {
        let mut offsets = Vec::with_capacity((self.ends.len() + 1) * 8);
        offsets.extend_from_slice(&0u64.to_le_bytes());
        for e in &self.ends {
            offsets.extend_from_slice(&e.to_le_bytes());
        }
        let len = self.ends.len();
        let cap = (len + len / 4 + 1).next_power_of_two().max(2);
        let mask = cap - 1;
        let mut slots = vec![EMPTY; cap];
        for id in 0..self.ends.len() as u32 {
            let v = std::str::from_utf8(value_at(&self.bytes, &self.ends, id)).unwrap_or_default();
            let mut i = key_hash(v) as usize & mask;
            while let Some(slot) = slots.get_mut(i) {
                if *slot == EMPTY {
                    *slot = id;
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        [offsets, self.bytes, u32_section(&slots)]
    }
}

/// An empty slot of a dictionary's lookup table.
const EMPTY: u32 = u32::MAX;

#[derive(Default)]
struct ColBuild {
    dict: Dict,
    ids: Vec<u32>,
}

#[derive(Default)]
struct MultiBuild {
    dict: Dict,
    /// (first-seen value id, row), rows ascending.
    pairs: Vec<(u32, u32)>,
}

/// A part being built in memory, row by row.
pub(crate) struct Builder {
    first: u64,
    time: Vec<i64>,
    class_uid: Vec<u32>,
    cols: Vec<ColBuild>,
    multis: Vec<MultiBuild>,
    words: Vec<u32>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("first", &self.first)
            .field("rows", &self.time.len())
            .finish_non_exhaustive()
    }
}

impl Builder {
    pub(crate) fn new(first: u64) -> Builder {
        Builder {
            first,
            time: Vec::new(),
            class_uid: Vec::new(),
            cols: Col::ALL.iter().map(|_| ColBuild::default()).collect(),
            multis: Multi::ALL.iter().map(|_| MultiBuild::default()).collect(),
            words: Vec::new(),
        }
    }

    /// An empty builder for the part after this one, sized like this one (a part's
    /// dictionaries grow to about the size of the last part's: sizing them up front saves
    /// rehashing every value as they grow).
    pub(crate) fn successor(&self) -> Builder {
        let n = self.time.len();
        let dict = |d: &Dict| Dict {
            bytes: Vec::with_capacity(d.bytes.len()),
            ends: Vec::with_capacity(d.ends.len()),
            table: hashbrown::HashTable::with_capacity(d.ends.len()),
            state: d.state.clone(),
        };
        Builder {
            first: self.next(),
            time: Vec::with_capacity(n),
            class_uid: Vec::with_capacity(n),
            cols: self
                .cols
                .iter()
                .map(|c| ColBuild {
                    dict: dict(&c.dict),
                    ids: Vec::with_capacity(n),
                })
                .collect(),
            multis: self
                .multis
                .iter()
                .map(|m| MultiBuild {
                    dict: dict(&m.dict),
                    pairs: Vec::with_capacity(m.pairs.len()),
                })
                .collect(),
            words: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.time.len()
    }

    /// Ledger index the next row must have.
    pub(crate) fn next(&self) -> u64 {
        self.first + self.time.len() as u64
    }

    fn col(&mut self, c: Col, v: Option<&str>) {
        let dict = match c.via() {
            Some(m) => self.multis.get_mut(m.slot()).map(|b| &mut b.dict),
            None => self.cols.get_mut(c.slot()).map(|b| &mut b.dict),
        };
        let id = match (v, dict) {
            (Some(v), Some(dict)) => dict.id(bounded(v)),
            _ => NONE,
        };
        if let Some(b) = self.cols.get_mut(c.slot()) {
            b.ids.push(id);
        }
    }

    fn multi(&mut self, m: Multi, v: &str, row: u32) {
        if let Some(b) = self.multis.get_mut(m.slot()) {
            let id = b.dict.id(bounded(v));
            b.pairs.push((id, row));
        }
    }

    /// Adds the row of the next ledger entry; `text` (raw full-text mode) is indexed word by
    /// word.
    pub(crate) fn push(&mut self, row: &Row, text: Option<&[&[u8]]>) {
        let r = self.time.len() as u32;
        self.time.push(row.time);
        self.class_uid.push(row.class_uid);
        self.col(Col::Source, Some(&row.source));
        self.col(Col::Outcome, Some(row.outcome));
        self.col(Col::Action, row.action.as_deref());
        self.col(Col::Service, row.service.as_deref());
        self.col(Col::Ip, row.ip.as_deref());
        self.col(Col::Account, row.account.as_deref());
        self.col(Col::Region, row.region.as_deref());
        self.col(Col::StatusCode, row.status_code.as_deref());
        for id in &row.actor_ids {
            self.multi(Multi::ActorId, id, r);
        }
        for res in &row.resources {
            self.multi(Multi::ResourceId, res, r);
        }
        // Found again while the identifiers just added are in cache.
        self.col(Col::Actor, row.actor.as_deref());
        self.col(Col::Resource, row.resource());
        if let Some(ua) = &row.user_agent {
            self.multi(Multi::UserAgent, ua, r);
        }
        if let Some(parts) = text {
            self.push_words(parts, r);
        }
    }

    fn push_words(&mut self, parts: &[&[u8]], r: u32) {
        let mut ids = std::mem::take(&mut self.words);
        ids.clear();
        if let Some(b) = self.multis.get_mut(Multi::Word.slot()) {
            for part in parts {
                for w in words(&String::from_utf8_lossy(part)) {
                    ids.push(b.dict.id(&w));
                }
            }
            ids.sort_unstable();
            ids.dedup();
            b.pairs.extend(ids.iter().map(|&id| (id, r)));
        }
        self.words = ids;
    }

    /// The part as stored.
    pub(crate) fn seal(self) -> Sealed {
        let n = self.time.len();
        let mut sections: Vec<Vec<u8>> = Vec::with_capacity(SECTIONS);
        let mut time = Vec::with_capacity(n * 8);
        for t in &self.time {
            time.extend_from_slice(&t.to_le_bytes());
        }
        sections.push(time);
        sections.push(u32_section(&self.class_uid));
        let mut ips = Vec::new();
        for (c, col) in Col::ALL.iter().zip(self.cols) {
            if *c == Col::Ip {
                for id in 0..col.dict.len() as u32 {
                    let v = value_at(&col.dict.bytes, &col.dict.ends, id);
                    match std::str::from_utf8(v).ok().and_then(parse_ip) {
                        Some(ip) => {
                            ips.push(1u8);
                            ips.extend_from_slice(&ip_bits(ip).to_le_bytes());
                        }
                        None => ips.extend_from_slice(&[0u8; 17]),
                    }
                }
            }
            sections.extend(col.dict.sections());
            sections.push(u32_section(&col.ids));
        }
        for m in self.multis {
            let len = m.dict.len();
            let mut offsets = vec![0u32; len + 1];
            for (id, _) in &m.pairs {
                if let Some(c) = offsets.get_mut(*id as usize + 1) {
                    *c += 1;
                }
            }
            for i in 1..offsets.len() {
                let prev = offsets.get(i - 1).copied().unwrap_or(0);
                if let Some(o) = offsets.get_mut(i) {
                    *o += prev;
                }
            }
            let mut cursor = offsets.clone();
            let mut rows = vec![0u32; m.pairs.len()];
            for (id, row) in m.pairs {
                if let Some(c) = cursor.get_mut(id as usize) {
                    if let Some(slot) = rows.get_mut(*c as usize) {
                        *slot = row;
                    }
                    *c += 1;
                }
            }
            sections.extend(m.dict.sections());
            sections.push(u32_section(&offsets));
            sections.push(u32_section(&rows));
        }
        sections.push(ips);
        let (tmin, tmax) = self
            .time
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        Sealed {
            first: self.first,
            rows: n as u32,
            time_min: tmin,
            time_max: tmax,
            sections,
        }
    }
}

/// The words of `text`: runs of letters and digits, lowercased, at most [`MAX_WORD`] bytes.
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= MAX_WORD)
        .map(str::to_lowercase)
}

/// A part sealed in memory, ready to be written.
#[derive(Debug)]
pub(crate) struct Sealed {
    first: u64,
    rows: u32,
    time_min: i64,
    time_max: i64,
    sections: Vec<Vec<u8>>,
}

fn u32_section(v: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The file name of the part covering `first..=last`.
pub(crate) fn file_name(first: u64, last: u64) -> String {
    format!("part-{first:020}-{last:020}.acta")
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("part-")?.strip_suffix(".acta")?;
    let (a, b) = rest.split_once('-')?;
    if a.len() != 20 || b.len() != 20 {
        return None;
    }
    let (first, last) = (a.parse().ok()?, b.parse().ok()?);
    (first <= last).then_some((first, last))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Sealed {
    /// Writes the part into `dir` (through a temporary file, synced, then renamed) and returns
    /// its path.
    pub(crate) fn write(&self, dir: &Path) -> Result<PathBuf, IndexError> {
        let sections = &self.sections;
        let mut head = Vec::with_capacity(HEADER + ENTRY * sections.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&self.first.to_le_bytes());
        head.extend_from_slice(&self.rows.to_le_bytes());
        head.extend_from_slice(&self.time_min.to_le_bytes());
        head.extend_from_slice(&self.time_max.to_le_bytes());
        head.extend_from_slice(&(sections.len() as u32).to_le_bytes());
        let mut offset = (HEADER + ENTRY * sections.len()) as u64;
        for s in sections {
            head.extend_from_slice(&offset.to_le_bytes());
            head.extend_from_slice(&(s.len() as u64).to_le_bytes());
            head.extend_from_slice(&crc32c::crc32c(s).to_le_bytes());
            offset += s.len() as u64;
        }
        let last = self.first + u64::from(self.rows).saturating_sub(1);
        let path = dir.join(file_name(self.first, last));
        let tmp = dir.join(format!("{}.tmp", file_name(self.first, last)));
        let mut f = File::create(&tmp).map_err(io_error(&tmp))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, &mut f);
        w.write_all(&head).map_err(io_error(&tmp))?;
        for s in sections {
            w.write_all(s).map_err(io_error(&tmp))?;
        }
        w.flush().map_err(io_error(&tmp))?;
        drop(w);
        f.sync_data().map_err(io_error(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_error(&path))?;
        sync_dir(dir)?;
        Ok(path)
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), IndexError> {
    File::open(dir)
        .and_then(|d| d.sync_data())
        .map_err(io_error(dir))
}

/// A part file on disk, named for the entries it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) path: PathBuf,
    pub(crate) first: u64,
    pub(crate) last: u64,
}

/// The parts of `dir` that cover consecutive entries from 0, and every other part file or
/// leftover there (stale parts a merge replaced, temporary files, parts after a gap).
pub(crate) fn list(dir: &Path) -> Result<(Vec<Listed>, Vec<PathBuf>), IndexError> {
    let mut found = Vec::new();
    let mut other = Vec::new();
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((found, other)),
        Err(e) => return Err(io_error(dir)(e)),
    };
    for entry in read {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match parse_name(&name) {
            Some((first, last)) => found.push(Listed {
                path: entry.path(),
                first,
                last,
            }),
            None if name.starts_with("part-") => other.push(entry.path()),
            None => {}
        }
    }
    // The longest part first among those starting at the same entry.
    found.sort_by(|a, b| a.first.cmp(&b.first).then(b.last.cmp(&a.last)));
    let mut chain: Vec<Listed> = Vec::new();
    let mut next = 0u64;
    for p in found {
        if p.first == next {
            next = p.last + 1;
            chain.push(p);
        } else {
            other.push(p.path);
        }
    }
    Ok((chain, other))
}

/// One part open for reading; sections are read on first use and kept.
#[derive(Debug)]
pub(crate) struct Part {
    path: PathBuf,
    file: File,
    pub(crate) first: u64,
    pub(crate) rows: u32,
    pub(crate) time_min: i64,
    pub(crate) time_max: i64,
    table: Vec<(u64, u64, u32)>,
    bytes: Vec<OnceLock<Vec<u8>>>,
    u32s: Vec<OnceLock<Vec<u32>>>,
    u64s: Vec<OnceLock<Vec<u64>>>,
    time: OnceLock<Vec<i64>>,
}

/// One dictionary: values in first-seen order, and a table finding them by lowercased value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DictRef<'a> {
    offsets: &'a [u64],
    bytes: &'a [u8],
    table: &'a [u32],
}

impl<'a> DictRef<'a> {
    pub(crate) fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub(crate) fn get(&self, id: u32) -> Option<&'a str> {
        let i = id as usize;
        let (a, b) = (*self.offsets.get(i)?, *self.offsets.get(i + 1)?);
        let s = self
            .bytes
            .get(usize::try_from(a).ok()?..usize::try_from(b).ok()?)?;
        std::str::from_utf8(s).ok()
    }

    /// Ids of the values whose lowercased form is `key` (lowercased), ascending.
    pub(crate) fn equal(&self, key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let cap = self.table.len();
        if !cap.is_power_of_two() {
            return out;
        }
        let mask = cap - 1;
        let mut i = key_hash(key) as usize & mask;
        for _ in 0..cap {
            match self.table.get(i).copied() {
                None | Some(EMPTY) => break,
                Some(id) => {
                    if self.get(id).is_some_and(|v| *lower(v) == *key) {
                        out.push(id);
                    }
                }
            }
            i = (i + 1) & mask;
        }
        out.sort_unstable();
        out
    }
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Part {
    pub(crate) fn open(path: &Path) -> Result<Part, IndexError> {
        let damaged = |message: &str| IndexError::Invalid {
            path: path.to_path_buf(),
            message: format!("{message}; `acta reindex` rebuilds the index"),
        };
        let file = File::open(path).map_err(io_error(path))?;
        let mut head = [0u8; HEADER];
        file.read_exact_at(&mut head, 0)
            .map_err(|_| damaged("shorter than its header"))?;
        if head.get(..8) != Some(MAGIC.as_slice()) {
            return Err(damaged("not an acta index part"));
        }
        let first = le_u64(&head, 8).unwrap_or(0);
        let rows = le_u32(&head, 16).unwrap_or(0);
        let time_min = le_u64(&head, 20).unwrap_or(0) as i64;
        let time_max = le_u64(&head, 28).unwrap_or(0) as i64;
        let count = le_u32(&head, 36).unwrap_or(0) as usize;
        if count != SECTIONS {
            return Err(damaged("written by another version of acta"));
        }
        let mut raw = vec![0u8; count * ENTRY];
        file.read_exact_at(&mut raw, HEADER as u64)
            .map_err(|_| damaged("its section table is cut short"))?;
        let len = file.metadata().map_err(io_error(path))?.len();
        let mut table = Vec::with_capacity(count);
        for i in 0..count {
            let at = i * ENTRY;
            let (off, n) = (
                le_u64(&raw, at).unwrap_or(0),
                le_u64(&raw, at + 8).unwrap_or(0),
            );
            if off.checked_add(n).is_none_or(|end| end > len) {
                return Err(damaged("a section lies beyond the end of the file"));
            }
            table.push((off, n, le_u32(&raw, at + 16).unwrap_or(0)));
        }
        Ok(Part {
            path: path.to_path_buf(),
            file,
            first,
            rows,
            time_min,
            time_max,
            table,
            bytes: (0..count).map(|_| OnceLock::new()).collect(),
            u32s: (0..count).map(|_| OnceLock::new()).collect(),
            u64s: (0..count).map(|_| OnceLock::new()).collect(),
            time: OnceLock::new(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self, s: usize) -> Result<Vec<u8>, IndexError> {
        let damaged = |message: String| IndexError::Invalid {
            path: self.path.clone(),
            message: format!("{message}; `acta reindex` rebuilds the index"),
        };
        let &(off, n, crc) = self
            .table
            .get(s)
            .ok_or_else(|| damaged(format!("no section {s}")))?;
        let n = usize::try_from(n).map_err(|_| damaged(format!("section {s} is too large")))?;
        let mut buf = vec![0u8; n];
        self.file
            .read_exact_at(&mut buf, off)
            .map_err(io_error(&self.path))?;
        if crc32c::crc32c(&buf) != crc {
            return Err(damaged(format!("section {s} fails its checksum")));
        }
        Ok(buf)
    }

    /// Section `s`, read and decoded into `slot` on first use, then kept.
    fn cached<'a, T>(
        &self,
        slot: Option<&'a OnceLock<T>>,
        s: usize,
        decode: impl FnOnce(Vec<u8>) -> T,
    ) -> Result<&'a T, IndexError> {
        let slot = slot.ok_or_else(|| IndexError::Invalid {
            path: self.path.clone(),
            message: format!("no section {s}"),
        })?;
        if let Some(v) = slot.get() {
            return Ok(v);
        }
        let v = decode(self.read(s)?);
        Ok(slot.get_or_init(|| v))
    }

    fn bytes(&self, s: usize) -> Result<&[u8], IndexError> {
        self.cached(self.bytes.get(s), s, |raw| raw)
            .map(Vec::as_slice)
    }

    fn u32s(&self, s: usize) -> Result<&[u32], IndexError> {
        self.cached(self.u32s.get(s), s, |raw| {
            raw.chunks_exact(4)
                .filter_map(|c| c.try_into().ok().map(u32::from_le_bytes))
                .collect()
        })
        .map(Vec::as_slice)
    }

    fn u64s(&self, s: usize) -> Result<&[u64], IndexError> {
        self.cached(self.u64s.get(s), s, |raw| {
            raw.chunks_exact(8)
                .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
                .collect()
        })
        .map(Vec::as_slice)
    }

    /// Event times, one per row.
    pub(crate) fn time(&self) -> Result<&[i64], IndexError> {
        self.cached(Some(&self.time), S_TIME, |raw| {
            raw.chunks_exact(8)
                .filter_map(|c| c.try_into().ok().map(i64::from_le_bytes))
                .collect()
        })
        .map(Vec::as_slice)
    }

    pub(crate) fn class_uid(&self) -> Result<&[u32], IndexError> {
        self.u32s(S_CLASS)
    }

    fn dict(&self, offsets: usize) -> Result<DictRef<'_>, IndexError> {
        Ok(DictRef {
            offsets: self.u64s(offsets)?,
            bytes: self.bytes(offsets + 1)?,
            table: self.u32s(offsets + 2)?,
        })
    }

    pub(crate) fn col_dict(&self, c: Col) -> Result<DictRef<'_>, IndexError> {
        if let Some(m) = c.via() {
            return self.multi_dict(m);
        }
        self.dict(S_COLS + COL_SECTIONS * c.slot())
    }

    pub(crate) fn col_ids(&self, c: Col) -> Result<&[u32], IndexError> {
        self.u32s(S_COLS + COL_SECTIONS * c.slot() + 3)
    }

    pub(crate) fn multi_dict(&self, m: Multi) -> Result<DictRef<'_>, IndexError> {
        self.dict(S_MULTI + MULTI_SECTIONS * m.slot())
    }

    /// The rows holding value `id` of `m`, ascending.
    pub(crate) fn postings(&self, m: Multi, id: u32) -> Result<&[u32], IndexError> {
        let offsets = self.u32s(S_MULTI + MULTI_SECTIONS * m.slot() + 3)?;
        let rows = self.u32s(S_MULTI + MULTI_SECTIONS * m.slot() + 4)?;
        let a = offsets.get(id as usize).copied().unwrap_or(0) as usize;
        let b = offsets.get(id as usize + 1).copied().unwrap_or(0) as usize;
        Ok(rows.get(a..b).unwrap_or_default())
    }

    /// The parsed address of each value of the IP dictionary (`None`: not an address).
    pub(crate) fn ips(&self) -> Result<Vec<Option<u128>>, IndexError> {
        let raw = self.bytes(S_IPS)?;
        Ok(raw
            .chunks_exact(17)
            .map(|c| {
                (c.first() == Some(&1))
                    .then(|| c.get(1..17).and_then(|b| b.try_into().ok()))
                    .flatten()
                    .map(u128::from_le_bytes)
            })
            .collect())
    }

    /// The value of column `c` at `row`.
    pub(crate) fn value(&self, c: Col, row: u32) -> Result<Option<&str>, IndexError> {
        let id = self.col_ids(c)?.get(row as usize).copied().unwrap_or(NONE);
        if id == NONE {
            return Ok(None);
        }
        Ok(self.col_dict(c)?.get(id))
    }

    /// Feeds every row of this part to `b`, which must be at this part's first entry.
    pub(crate) fn copy_into(&self, b: &mut Builder) -> Result<(), IndexError> {
        let base = b.len() as u32;
        let n = self.rows as usize;
        b.time.extend(
            self.time()?
                .iter()
                .copied()
                .chain(std::iter::repeat(0))
                .take(n),
        );
        b.class_uid.extend(
            self.class_uid()?
                .iter()
                .copied()
                .chain(std::iter::repeat(0))
                .take(n),
        );
        for c in Col::ALL {
            let dict = self.col_dict(c)?;
            let target_dict = match c.via() {
                Some(m) => b.multis.get_mut(m.slot()).map(|t| &mut t.dict),
                None => b.cols.get_mut(c.slot()).map(|t| &mut t.dict),
            };
            let Some(target_dict) = target_dict else {
                continue;
            };
            let remap: Vec<u32> = (0..dict.len() as u32)
                .map(|id| target_dict.id(dict.get(id).unwrap_or_default()))
                .collect();
            let Some(target) = b.cols.get_mut(c.slot()) else {
                continue;
            };
            let ids = self.col_ids(c)?;
            target.ids.extend(
                ids.iter()
                    .map(|&id| remap.get(id as usize).copied().unwrap_or(NONE))
                    .chain(std::iter::repeat(NONE))
                    .take(n),
            );
        }
        for m in Multi::ALL {
            let dict = self.multi_dict(m)?;
            for id in 0..dict.len() as u32 {
                let rows = self.postings(m, id)?;
                let Some(target) = b.multis.get_mut(m.slot()) else {
                    continue;
                };
                let new = target.dict.id(dict.get(id).unwrap_or_default());
                target.pairs.extend(
                    rows.iter()
                        .filter(|&&r| (r as usize) < n)
                        .map(|&r| (new, base + r)),
                );
            }
        }
        Ok(())
    }
}

/// Merges consecutive parts into one part covering them all.
pub(crate) fn merge(parts: &[Part]) -> Result<Option<Sealed>, IndexError> {
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    let mut b = Builder::new(first.first);
    for p in parts {
        if p.first != b.next() {
            return Err(IndexError::Invalid {
                path: p.path.clone(),
                message: format!("expected a part starting at entry {}", b.next()),
            });
        }
        p.copy_into(&mut b)?;
    }
    // The pairs of one value come part by part, rows ascending in each: sealing keeps that order.
    Ok(Some(b.seal()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u64, actor: &str, res: &[&str], ip: &str) -> Row {
        Row {
            index: i,
            time: 1_000 + i as i64,
            source: "cloudtrail".into(),
            class_uid: 6003,
            outcome: if i.is_multiple_of(3) {
                "failure"
            } else {
                "success"
            },
            actor: Some(actor.into()),
            actor_ids: vec![actor.into(), format!("arn:aws:iam::1:user/{actor}").into()],
            action: Some(format!("Get{}", i % 4).into()),
            resources: res.iter().map(|&s| s.into()).collect(),
            ip: Some(ip.into()),
            ..Row::default()
        }
    }

    #[test]
    fn a_written_part_reads_back_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let mut parts = Vec::new();
        for (first, actors) in [(0u64, ["Alice", "bob"]), (4, ["carol", "ALICE"])] {
            let mut b = Builder::new(first);
            for i in first..first + 4 {
                let a = actors[(i % 2) as usize];
                b.push(&row(i, a, &["r1", &format!("x{i}")], "10.0.0.1"), None);
            }
            let path = b.seal().write(dir.path()).unwrap();
            parts.push(Part::open(&path).unwrap());
        }
        let p = &parts[0];
        assert_eq!((p.first, p.rows), (0, 4));
        let d = p.multi_dict(Multi::ActorId).unwrap();
        let alice = d.equal("alice");
        assert_eq!(alice.len(), 1);
        assert_eq!(p.postings(Multi::ActorId, alice[0]).unwrap(), &[0, 2]);
        assert_eq!(p.value(Col::Actor, 1).unwrap(), Some("bob"));
        let merged = merge(&parts).unwrap().unwrap();
        let path = merged.write(dir.path()).unwrap();
        let m = Part::open(&path).unwrap();
        assert_eq!((m.first, m.rows), (0, 8));
        let d = m.multi_dict(Multi::ActorId).unwrap();
        // "Alice" and "ALICE" are two values with one lowercased key.
        let alice = d.equal("alice");
        assert_eq!(alice.len(), 2);
        let mut rows: Vec<u32> = alice
            .into_iter()
            .flat_map(|id| m.postings(Multi::ActorId, id).unwrap().to_vec())
            .collect();
        rows.sort();
        assert_eq!(rows, vec![0, 2, 5, 7]);
        let r1 = d.len();
        assert!(r1 > 0);
        let res = m.multi_dict(Multi::ResourceId).unwrap();
        let r1 = res.equal("r1");
        assert_eq!(m.postings(Multi::ResourceId, r1[0]).unwrap().len(), 8);
        assert_eq!(res.len(), 9);
        assert!(res.equal("R1").is_empty(), "keys are given lowercased");
        assert_eq!(m.time().unwrap()[7], 1_007);
        let (chain, other) = list(dir.path()).unwrap();
        assert_eq!(chain.len(), 1, "the merged part covers both");
        assert_eq!(other.len(), 2, "the two merged parts are left to remove");
    }

    #[test]
    fn lookups_ignore_case_as_the_query_language_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Builder::new(0);
        b.push(&row(0, "ΟΔΟΣ", &["Ärger"], "1.2.3.4"), None);
        let p = Part::open(&b.seal().write(dir.path()).unwrap()).unwrap();
        let d = p.multi_dict(Multi::ActorId).unwrap();
        // What acta-query's matcher calls equal: each character lowercased on its own.
        assert_eq!(d.equal("οδοσ").len(), 1);
        assert!(acta_query::Value::Exact("οδοσ".into()).matches("ΟΔΟΣ"));
        let r = p.multi_dict(Multi::ResourceId).unwrap();
        assert_eq!(r.equal("ärger").len(), 1);
    }

    #[test]
    fn a_damaged_part_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Builder::new(0);
        b.push(&row(0, "alice", &["r"], "1.2.3.4"), None);
        let path = b.seal().write(dir.path()).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        let p = Part::open(&path).unwrap();
        assert!(
            p.ips().is_err(),
            "the last section (addresses) fails its checksum"
        );
        assert!(p.time().is_ok());
        fs::write(&path, &bytes[..20]).unwrap();
        assert!(Part::open(&path).is_err());
    }
}
