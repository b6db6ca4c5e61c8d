//! The search index: immutable parts of columns and postings, one row per ledger entry.
//!
//! Each part ([`crate::part`]) covers a run of consecutive ledger entries. Keyword fields are
//! matched whole and ignoring case, so `actor:Alice` finds `alice` and `action:delete*` finds
//! `DeleteBucket`: single-valued fields (source, outcome, action, service, account, region,
//! status code, IP) by scanning their dictionary ids, the many identifiers of an actor or a
//! resource (and the user agent) through postings. Results, counts and `who` read the columns;
//! a search never reads the ledger.
//!
//! Free text matches an event when any of its keyword fields (or its user agent, or its IP)
//! equals the text, whole and ignoring case — this costs nothing more at ingest. With the index
//! setting [`FullText::Raw`], the words of the whole raw record are indexed as well (several
//! times the indexing cost), and free text also finds records holding every word of a phrase.
//!
//! The index is derived data. Parts are written whole (temporary file, sync, rename) and cover
//! entries from 0 without gaps, so the index is complete up to the end of its last part; after a
//! crash, the entries from there on are indexed again from the ledger. A writer holds a lock
//! file; readers take no lock, and see the parts that existed when they opened or reloaded.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fs::{self, File};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use acta_query::{Expr, Field as QField, Query, Value, wildcard_match};

use crate::Row;
use crate::part::{self, Builder, Col, DictRef, Multi, NONE, Part, bounded, ip_bits, lower};

/// File recording the index settings beside the parts.
const SETTINGS: &str = "acta-index.toml";
/// Version of the part layout; an index of another version is rebuilt.
const FORMAT: u32 = 2;
/// Lock file held by the one writer.
const LOCK: &str = "writer.lock";
/// Most rows in one part written by ingest; a merge may combine small parts up to this.
const PART_ROWS: usize = 1 << 20;
/// A part under this many rows is small: runs of small parts are merged.
const SMALL_PART: u64 = 1 << 16;
/// Small parts at the end of the index that trigger a merge.
const MERGE_AT: usize = 8;

/// What free text searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullText {
    /// Whole values of the event's fields: actor identifiers, action, service, resources,
    /// source, outcome, account, region, status code, user agent, IP. Costs nothing at ingest.
    #[default]
    Fields,
    /// The words of the whole raw record as well (several times the indexing cost); a phrase
    /// matches the records holding all of its words.
    Raw,
    /// No free text: text terms match nothing.
    Off,
}

impl FullText {
    pub fn name(self) -> &'static str {
        match self {
            FullText::Fields => "fields",
            FullText::Raw => "raw",
            FullText::Off => "off",
        }
    }
}

impl std::str::FromStr for FullText {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fields" => Ok(FullText::Fields),
            "raw" => Ok(FullText::Raw),
            "off" => Ok(FullText::Off),
            other => Err(format!(
                "unknown full-text mode `{other}` (expected fields, raw or off)"
            )),
        }
    }
}

/// An index error.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Another acta holds the index writer (an ingest in progress).
    #[error("search index `{path}` is being written by another acta")]
    Busy { path: PathBuf },
    /// The index was built by an earlier version of acta, in another format.
    #[error(
        "search index `{path}` was built by an earlier version of acta; `acta reindex` rebuilds it"
    )]
    Outdated { path: PathBuf },
    #[error("search index `{path}`")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("search index `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Time bounds of a query, epoch milliseconds; `until` is exclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// One search result, read from the columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub index: u64,
    pub time: i64,
    pub source: String,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub outcome: String,
    pub ip: Option<IpAddr>,
    pub class_uid: u64,
    pub status_code: Option<String>,
}

/// Fields results can be counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatField {
    Actor,
    Action,
    Service,
    Source,
    Outcome,
    Account,
    Region,
    Resource,
    StatusCode,
}

impl StatField {
    pub const ALL: [StatField; 9] = [
        StatField::Actor,
        StatField::Action,
        StatField::Service,
        StatField::Source,
        StatField::Outcome,
        StatField::Account,
        StatField::Region,
        StatField::Resource,
        StatField::StatusCode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StatField::Actor => "actor",
            StatField::Action => "action",
            StatField::Service => "service",
            StatField::Source => "source",
            StatField::Outcome => "outcome",
            StatField::Account => "account",
            StatField::Region => "region",
            StatField::Resource => "resource",
            StatField::StatusCode => "status_code",
        }
    }

    fn col(self) -> Col {
        match self {
            StatField::Actor => Col::Actor,
            StatField::Action => Col::Action,
            StatField::Service => Col::Service,
            StatField::Source => Col::Source,
            StatField::Outcome => Col::Outcome,
            StatField::Account => Col::Account,
            StatField::Region => Col::Region,
            StatField::Resource => Col::Resource,
            StatField::StatusCode => Col::StatusCode,
        }
    }
}

impl std::str::FromStr for StatField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StatField::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = StatField::ALL.iter().map(|f| f.name()).collect();
                format!("cannot count by `{s}`; fields: {}", names.join(", "))
            })
    }
}

/// A count of matching events for one combination of values (and time bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    /// Values of the `--by` fields, in their order (`None`: the event has no such value).
    pub values: Vec<Option<String>>,
    /// Start of the time bucket (epoch ms), when counting by interval.
    pub bucket: Option<i64>,
    pub count: u64,
}

/// What `who` reports for each actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoRow {
    pub actor: Option<String>,
    pub count: u64,
    pub first: i64,
    pub last: i64,
    /// Events per source.
    pub sources: BTreeMap<String, u64>,
    /// Events per action.
    pub actions: BTreeMap<String, u64>,
    /// Failed or denied events.
    pub failures: u64,
}

/// Reads an address as sources write it, leading zeros in IPv4 quads included.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let mut octets = [0u8; 4];
    let mut n = 0;
    for part in s.split('.') {
        let slot = octets.get_mut(n)?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
        n += 1;
    }
    (n == 4).then(|| IpAddr::from(octets))
}

/// The search index of one data directory.
pub struct Index {
    dir: PathBuf,
    full_text: FullText,
    parts: Mutex<Arc<Vec<Arc<Part>>>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dir", &self.dir)
            .field("full_text", &self.full_text)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How a query field is stored.
#[derive(Clone, Copy)]
enum Target {
    Col(Col),
    Multi(Multi),
}

/// A set of rows of one part.
#[derive(Debug, Clone)]
struct Bits {
    words: Vec<u64>,
    n: usize,
}

impl Bits {
    fn none(n: usize) -> Bits {
        Bits {
            words: vec![0; n.div_ceil(64)],
            n,
        }
    }

    fn all(n: usize) -> Bits {
        let mut b = Bits {
            words: vec![u64::MAX; n.div_ceil(64)],
            n,
        };
        b.trim();
        b
    }

    /// Clears the bits past the last row.
    fn trim(&mut self) {
        let rem = self.n % 64;
        if rem != 0
            && let Some(w) = self.words.last_mut()
        {
            *w &= (1u64 << rem) - 1;
        }
    }

    fn set(&mut self, row: u32) {
        let r = row as usize;
        if r < self.n
            && let Some(w) = self.words.get_mut(r / 64)
        {
            *w |= 1 << (r % 64);
        }
    }

    fn and(&mut self, o: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a &= b;
        }
    }

    fn or(&mut self, o: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a |= b;
        }
    }

    fn and_not(&mut self, o: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a &= !b;
        }
    }

    fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// The rows in the set, ascending.
    fn rows(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some((i as u32) * 64 + bit)
            })
        })
    }
}

/// Rows of column `c` whose value id is in `ids` (a sorted range or list).
fn col_rows(part: &Part, c: Col, ids: &[u32]) -> Result<Bits, IndexError> {
    let n = part.rows as usize;
    let mut bits = Bits::none(n);
    if ids.is_empty() {
        return Ok(bits);
    }
    let col = part.col_ids(c)?;
    let col = col.get(..n).unwrap_or(col);
    if let [one] = ids {
        for (chunk, w) in col.chunks(64).zip(bits.words.iter_mut()) {
            let mut word = 0u64;
            for (i, &id) in chunk.iter().enumerate() {
                word |= u64::from(id == *one) << i;
            }
            *w = word;
        }
    } else {
        let len = part.col_dict(c)?.len();
        let mut wanted = vec![false; len];
        for &id in ids {
            if let Some(w) = wanted.get_mut(id as usize) {
                *w = true;
            }
        }
        for (chunk, w) in col.chunks(64).zip(bits.words.iter_mut()) {
            let mut word = 0u64;
            for (i, &id) in chunk.iter().enumerate() {
                word |= u64::from(wanted.get(id as usize).copied().unwrap_or(false)) << i;
            }
            *w = word;
        }
    }
    Ok(bits)
}

/// Rows holding any of the values `ids` of `m`.
fn multi_rows(part: &Part, m: Multi, ids: &[u32]) -> Result<Bits, IndexError> {
    let mut bits = Bits::none(part.rows as usize);
    for &id in ids {
        for &r in part.postings(m, id)? {
            bits.set(r);
        }
    }
    Ok(bits)
}

/// Ids of the dictionary values equal to `value`, ignoring case.
fn equal_ids(dict: DictRef<'_>, value: &str) -> Vec<u32> {
    dict.equal(&lower(bounded(value)))
}

/// Ids of the dictionary values matching the wildcard `pattern`.
fn wildcard_ids(dict: DictRef<'_>, pattern: &str) -> Vec<u32> {
    let pattern = pattern.to_lowercase();
    let prefix: String = pattern
        .chars()
        .take_while(|c| *c != '*' && *c != '?')
        .collect();
    (0..dict.len() as u32)
        .filter(|&id| {
            dict.get(id)
                .is_some_and(|v| lower(v).starts_with(&prefix) && wildcard_match(&pattern, v))
        })
        .collect()
}

fn target_rows(part: &Part, t: Target, value: &Value) -> Result<Bits, IndexError> {
    let dict = match t {
        Target::Col(c) => part.col_dict(c)?,
        Target::Multi(m) => part.multi_dict(m)?,
    };
    let ids = match value {
        Value::Exact(v) => equal_ids(dict, v),
        Value::Wildcard(p) => wildcard_ids(dict, p),
        _ => Vec::new(),
    };
    match t {
        Target::Col(c) => col_rows(part, c, &ids),
        Target::Multi(m) => multi_rows(part, m, &ids),
    }
}

/// Rows whose IP lies in `lo..=hi`.
fn ip_rows(part: &Part, lo: u128, hi: u128) -> Result<Bits, IndexError> {
    let ids: Vec<u32> = part
        .ips()?
        .iter()
        .enumerate()
        .filter(|(_, ip)| ip.is_some_and(|ip| (lo..=hi).contains(&ip)))
        .map(|(i, _)| i as u32)
        .collect();
    col_rows(part, Col::Ip, &ids)
}

impl Index {
    /// Opens the index under `dir`, creating it (with `full_text` for free text) when absent.
    /// An existing index keeps the free-text setting it was built with.
    pub fn open(dir: &Path, full_text: Option<FullText>) -> Result<Index, IndexError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let settings = dir.join(SETTINGS);
        if dir.join("meta.json").exists() {
            return Err(IndexError::Outdated {
                path: dir.to_path_buf(),
            });
        }
        let full_text = if settings.exists() {
            let text = fs::read_to_string(&settings).map_err(io_err(&settings))?;
            if !text
                .lines()
                .any(|l| l.trim() == format!("format = {FORMAT}"))
            {
                return Err(IndexError::Outdated {
                    path: dir.to_path_buf(),
                });
            }
            read_settings(&settings)?
        } else {
            let ft = full_text.unwrap_or_default();
            write_settings(&settings, ft)?;
            ft
        };
        let index = Index {
            dir: dir.to_path_buf(),
            full_text,
            parts: Mutex::new(Arc::new(Vec::new())),
        };
        index.reload()?;
        Ok(index)
    }

    pub fn full_text(&self) -> FullText {
        self.full_text
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Part>>> {
        match self.parts.lock() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The ledger index up to which the index is complete (as of the last reload).
    pub fn next(&self) -> Result<u64, IndexError> {
        Ok(self
            .snapshot()
            .last()
            .map_or(0, |p| p.first + u64::from(p.rows)))
    }

    /// The writer of this index; fails with [`IndexError::Busy`] while another holds it.
    pub fn writer(&self) -> Result<Writer, IndexError> {
        let path = self.dir.join(LOCK);
        let lock = File::create(&path).map_err(io_err(&path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| IndexError::Busy {
                path: self.dir.clone(),
            },
        )?;
        // Leftovers of an interrupted write or merge.
        let (chain, other) = part::list(&self.dir)?;
        for p in &other {
            fs::remove_file(p).map_err(io_err(p))?;
        }
        let next = chain.last().map_or(0, |p| p.last + 1);
        Ok(Writer {
            dir: self.dir.clone(),
            full_text: self.full_text,
            builder: Builder::new(next),
            _lock: lock,
        })
    }

    /// Makes the parts written since opening (or the last reload) visible to searches.
    pub fn reload(&self) -> Result<(), IndexError> {
        let old = self.snapshot();
        let mut attempt = 0;
        let parts = loop {
            let (chain, _) = part::list(&self.dir)?;
            let opened: Result<Vec<Arc<Part>>, IndexError> = chain
                .iter()
                .map(|l| match old.iter().find(|p| p.path() == l.path) {
                    Some(p) => Ok(Arc::clone(p)),
                    None => {
                        let p = Part::open(&l.path)?;
                        // The header must say what the name says.
                        if p.first != l.first || u64::from(p.rows) != l.last - l.first + 1 {
                            return Err(IndexError::Invalid {
                                path: l.path.clone(),
                                message: "its header disagrees with its name; `acta reindex` rebuilds the index".into(),
                            });
                        }
                        Ok(Arc::new(p))
                    }
                })
                .collect();
            match opened {
                // A merge replaced a part between listing and opening: list again.
                Err(IndexError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempt < 5 =>
                {
                    attempt += 1;
                }
                other => break other?,
            }
        };
        match self.parts.lock() {
            Ok(mut p) => *p = Arc::new(parts),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(parts),
        }
        Ok(())
    }

    /// Number of indexed events.
    pub fn len(&self) -> u64 {
        self.snapshot().iter().map(|p| u64::from(p.rows)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with each part holding matches and the matching rows, in ledger order.
    fn each_part<'p>(
        &self,
        parts: &'p [Arc<Part>],
        query: &Query,
        range: TimeRange,
        mut f: impl FnMut(usize, &'p Part, &Bits) -> Result<(), IndexError>,
    ) -> Result<(), IndexError> {
        let lo = range.since.unwrap_or(i64::MIN);
        let hi = range.until.unwrap_or(i64::MAX);
        for (p, part) in parts.iter().enumerate() {
            if part.rows == 0 || part.time_max < lo || part.time_min >= hi {
                continue;
            }
            let n = part.rows as usize;
            let mut bits = match &query.expr {
                Some(e) => self.eval(part, e)?,
                None => Bits::all(n),
            };
            if bits.is_empty() {
                continue;
            }
            if part.time_min < lo || part.time_max >= hi {
                let time = part.time()?;
                let mut kept = Bits::none(n);
                for r in bits.rows() {
                    if time.get(r as usize).is_some_and(|t| (lo..hi).contains(t)) {
                        kept.set(r);
                    }
                }
                bits = kept;
            }
            if !bits.is_empty() {
                f(p, part, &bits)?;
            }
        }
        Ok(())
    }

    fn eval(&self, part: &Part, e: &Expr) -> Result<Bits, IndexError> {
        let n = part.rows as usize;
        Ok(match e {
            Expr::And(ops) => {
                let mut acc: Option<Bits> = None;
                for op in ops.iter().filter(|o| !matches!(o, Expr::Not(_))) {
                    let b = self.eval(part, op)?;
                    match acc.as_mut() {
                        Some(a) => a.and(&b),
                        None => acc = Some(b),
                    }
                    if acc.as_ref().is_some_and(Bits::is_empty) {
                        return Ok(Bits::none(n));
                    }
                }
                let mut acc = acc.unwrap_or_else(|| Bits::all(n));
                for op in ops {
                    if let Expr::Not(inner) = op {
                        acc.and_not(&self.eval(part, inner)?);
                    }
                }
                acc
            }
            Expr::Or(ops) => {
                let mut acc = Bits::none(n);
                for op in ops {
                    acc.or(&self.eval(part, op)?);
                }
                acc
            }
            Expr::Not(inner) => {
                let mut all = Bits::all(n);
                all.and_not(&self.eval(part, inner)?);
                all
            }
            Expr::Term(t) => self.term(part, t.field, &t.value)?,
        })
    }

    fn term(&self, part: &Part, field: QField, value: &Value) -> Result<Bits, IndexError> {
        let n = part.rows as usize;
        let target = match field {
            QField::Actor => Target::Multi(Multi::ActorId),
            QField::Resource => Target::Multi(Multi::ResourceId),
            QField::Action => Target::Col(Col::Action),
            QField::Source => Target::Col(Col::Source),
            QField::Account => Target::Col(Col::Account),
            QField::Region => Target::Col(Col::Region),
            QField::Service => Target::Col(Col::Service),
            QField::Outcome => Target::Col(Col::Outcome),
            QField::Text => return self.free_text(part, value),
            QField::Ip => {
                return match value {
                    Value::Ip(ip) => {
                        let b = ip_bits(*ip);
                        ip_rows(part, b, b)
                    }
                    Value::Cidr(net, prefix) => {
                        let (lo, hi) = cidr_bounds(*net, *prefix);
                        ip_rows(part, lo, hi)
                    }
                    _ => Ok(Bits::none(n)),
                };
            }
        };
        match value {
            Value::Outcome(o) => target_rows(part, target, &Value::Exact(o.name().to_owned())),
            Value::Exact(_) | Value::Wildcard(_) => target_rows(part, target, value),
            _ => Ok(Bits::none(n)),
        }
    }

    /// Free text: a whole value of any keyword field, or (raw mode) words of the raw record.
    fn free_text(&self, part: &Part, value: &Value) -> Result<Bits, IndexError> {
        let n = part.rows as usize;
        let mut acc = Bits::none(n);
        if self.full_text == FullText::Off || !matches!(value, Value::Exact(_) | Value::Wildcard(_))
        {
            return Ok(acc);
        }
        let targets = [
            Target::Multi(Multi::ActorId),
            Target::Col(Col::Action),
            Target::Col(Col::Service),
            Target::Multi(Multi::ResourceId),
            Target::Col(Col::Source),
            Target::Col(Col::Outcome),
            Target::Col(Col::Account),
            Target::Col(Col::Region),
            Target::Col(Col::StatusCode),
            Target::Multi(Multi::UserAgent),
        ];
        for t in targets {
            acc.or(&target_rows(part, t, value)?);
        }
        if let Value::Exact(v) = value
            && let Some(ip) = parse_ip(v)
        {
            let b = ip_bits(ip);
            acc.or(&ip_rows(part, b, b)?);
        }
        if self.full_text == FullText::Raw {
            match value {
                Value::Exact(v) => {
                    let mut all: Option<Bits> = None;
                    for w in part::words(v) {
                        let b = target_rows(part, Target::Multi(Multi::Word), &Value::Exact(w))?;
                        match all.as_mut() {
                            Some(a) => a.and(&b),
                            None => all = Some(b),
                        }
                    }
                    if let Some(all) = all {
                        acc.or(&all);
                    }
                }
                Value::Wildcard(_) => {
                    acc.or(&target_rows(part, Target::Multi(Multi::Word), value)?);
                }
                _ => {}
            }
        }
        Ok(acc)
    }

    /// The newest matching events first (ties: the later ledger entry first), after skipping
    /// `offset`.
    pub fn search(
        &self,
        query: &Query,
        range: TimeRange,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        self.page(query, range, limit, offset).map(|(_, hits)| hits)
    }

    /// How many events match, and a page of them as [`Index::search`] gives it, both from the
    /// same parts (a reload in between cannot make them disagree).
    pub fn page(
        &self,
        query: &Query,
        range: TimeRange,
        limit: usize,
        offset: usize,
    ) -> Result<(u64, Vec<Hit>), IndexError> {
        let keep = if limit == 0 {
            0
        } else {
            limit.saturating_add(offset)
        };
        let parts = self.snapshot();
        let mut total = 0u64;
        // The `keep` largest (time, index) keys, smallest on top.
        let mut heap: BinaryHeap<std::cmp::Reverse<(i64, u64, usize, u32)>> = BinaryHeap::new();
        self.each_part(&parts, query, range, |p, part, bits| {
            total += bits.count();
            if keep == 0 {
                return Ok(());
            }
            let time = part.time()?;
            for r in bits.rows() {
                let key = (
                    time.get(r as usize).copied().unwrap_or_default(),
                    part.first + u64::from(r),
                    p,
                    r,
                );
                if heap.len() < keep {
                    heap.push(std::cmp::Reverse(key));
                } else if heap.peek().is_some_and(|m| key > m.0) {
                    heap.pop();
                    heap.push(std::cmp::Reverse(key));
                }
            }
            Ok(())
        })?;
        let mut top: Vec<(i64, u64, usize, u32)> = heap.into_iter().map(|r| r.0).collect();
        top.sort_unstable_by(|a, b| b.cmp(a));
        let hits = top
            .into_iter()
            .skip(offset)
            .take(limit)
            .filter_map(|(_, _, p, r)| parts.get(p).map(|part| hit(part, r)))
            .collect::<Result<Vec<Hit>, IndexError>>()?;
        Ok((total, hits))
    }

    /// How many events match.
    pub fn count(&self, query: &Query, range: TimeRange) -> Result<u64, IndexError> {
        let mut n = 0;
        self.each_part(&self.snapshot(), query, range, |_, _, bits| {
            n += bits.count();
            Ok(())
        })?;
        Ok(n)
    }

    /// The ledger indices of every matching event, in increasing order.
    pub fn indices(&self, query: &Query, range: TimeRange) -> Result<Vec<u64>, IndexError> {
        let mut all = Vec::new();
        self.each_part(&self.snapshot(), query, range, |_, part, bits| {
            all.extend(bits.rows().map(|r| part.first + u64::from(r)));
            Ok(())
        })?;
        Ok(all)
    }

    /// Counts of matching events by the values of `by` (and by time bucket of `interval_ms`).
    /// Sorted by count, largest first (by bucket first, when counting by interval).
    pub fn stats(
        &self,
        query: &Query,
        range: TimeRange,
        by: &[StatField],
        interval_ms: Option<i64>,
    ) -> Result<Vec<StatRow>, IndexError> {
        let interval = interval_ms.filter(|i| *i > 0);
        let parts = self.snapshot();
        // Values borrowed from the parts' dictionaries while counting; owned once, at the end.
        let mut all: HashMap<(Vec<Option<&str>>, Option<i64>), u64> = HashMap::new();
        let mut single: HashMap<Option<&str>, u64> = HashMap::new();
        self.each_part(&parts, query, range, |_, part, bits| {
            let cols = by
                .iter()
                .map(|f| Ok((part.col_ids(f.col())?, part.col_dict(f.col())?)))
                .collect::<Result<Vec<_>, IndexError>>()?;
            let name = |c: usize, id: u32| cols.get(c).and_then(|(_, d)| d.get(id));
            if let ([(ids, dict)], None) = (cols.as_slice(), interval) {
                // One field, no interval: counts by dictionary id (the last slot: no value).
                let none = dict.len();
                let mut dense = vec![0u64; none + 1];
                for r in bits.rows() {
                    let id = ids.get(r as usize).copied().unwrap_or(NONE);
                    let slot = if id == NONE { none } else { id as usize };
                    if let Some(c) = dense.get_mut(slot) {
                        *c += 1;
                    }
                }
                for (id, count) in dense.into_iter().enumerate().filter(|(_, c)| *c > 0) {
                    let value = if id == none { None } else { name(0, id as u32) };
                    *single.entry(value).or_insert(0) += count;
                }
                return Ok(());
            }
            let time = part.time()?;
            let mut counts: HashMap<Vec<u32>, u64> = HashMap::new();
            let mut key: Vec<u32> = Vec::with_capacity(cols.len() + 2);
            for r in bits.rows() {
                key.clear();
                key.extend(
                    cols.iter()
                        .map(|(ids, _)| ids.get(r as usize).copied().unwrap_or(NONE)),
                );
                if let Some(i) = interval {
                    let t = time.get(r as usize).copied().unwrap_or_default();
                    let b = t.div_euclid(i) * i;
                    key.push((b >> 32) as u32);
                    key.push(b as u32);
                }
                match counts.get_mut(key.as_slice()) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert(key.clone(), 1);
                    }
                }
            }
            for (k, count) in counts {
                let values = (0..cols.len())
                    .map(|c| match k.get(c).copied() {
                        Some(NONE) | None => None,
                        Some(id) => name(c, id),
                    })
                    .collect();
                let bucket = interval.map(|_| {
                    let hi = k.get(cols.len()).copied().unwrap_or(0);
                    let lo = k.get(cols.len() + 1).copied().unwrap_or(0);
                    ((u64::from(hi) << 32) | u64::from(lo)) as i64
                });
                *all.entry((values, bucket)).or_insert(0) += count;
            }
            Ok(())
        })?;
        let owned = |v: Option<&str>| v.map(str::to_owned);
        let mut rows: Vec<StatRow> = all
            .into_iter()
            .map(|((values, bucket), count)| StatRow {
                values: values.into_iter().map(owned).collect(),
                bucket,
                count,
            })
            .chain(single.into_iter().map(|(value, count)| StatRow {
                values: vec![owned(value)],
                bucket: None,
                count,
            }))
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.bucket.cmp(&b.bucket))
                .then_with(|| a.values.cmp(&b.values))
        });
        if interval.is_some() {
            rows.sort_by(|a, b| {
                a.bucket
                    .cmp(&b.bucket)
                    .then_with(|| b.count.cmp(&a.count))
                    .then_with(|| a.values.cmp(&b.values))
            });
        }
        Ok(rows)
    }

    /// Who did what on the matching events: one row per actor, most events first.
    pub fn who(&self, query: &Query, range: TimeRange) -> Result<Vec<WhoRow>, IndexError> {
        #[derive(Default)]
        struct Acc {
            count: u64,
            first: i64,
            last: i64,
            failures: u64,
            sources: HashMap<u32, u64>,
            actions: HashMap<u32, u64>,
        }
        let mut all: HashMap<Option<String>, WhoRow> = HashMap::new();
        self.each_part(&self.snapshot(), query, range, |_, part, bits| {
            let time = part.time()?;
            let actor = part.col_ids(Col::Actor)?;
            let source = part.col_ids(Col::Source)?;
            let action = part.col_ids(Col::Action)?;
            let outcome = part.col_ids(Col::Outcome)?;
            let failure = equal_ids(part.col_dict(Col::Outcome)?, "failure");
            let mut accs: HashMap<u32, Acc> = HashMap::new();
            for r in bits.rows() {
                let i = r as usize;
                let t = time.get(i).copied().unwrap_or_default();
                let a = accs
                    .entry(actor.get(i).copied().unwrap_or(NONE))
                    .or_insert_with(|| Acc {
                        first: t,
                        last: t,
                        ..Acc::default()
                    });
                a.count += 1;
                a.first = a.first.min(t);
                a.last = a.last.max(t);
                a.failures += u64::from(outcome.get(i).is_some_and(|o| failure.contains(o)));
                *a.sources
                    .entry(source.get(i).copied().unwrap_or(NONE))
                    .or_insert(0) += 1;
                *a.actions
                    .entry(action.get(i).copied().unwrap_or(NONE))
                    .or_insert(0) += 1;
            }
            let (actors, sources, actions) = (
                part.col_dict(Col::Actor)?,
                part.col_dict(Col::Source)?,
                part.col_dict(Col::Action)?,
            );
            let name = |d: &DictRef<'_>, id: u32| -> Option<String> {
                (id != NONE).then(|| d.get(id)).flatten().map(str::to_owned)
            };
            for (id, acc) in accs {
                let actor = name(&actors, id);
                let row = all.entry(actor.clone()).or_insert_with(|| WhoRow {
                    actor,
                    count: 0,
                    first: acc.first,
                    last: acc.last,
                    sources: BTreeMap::new(),
                    actions: BTreeMap::new(),
                    failures: 0,
                });
                row.count += acc.count;
                row.first = row.first.min(acc.first);
                row.last = row.last.max(acc.last);
                row.failures += acc.failures;
                for (s, c) in acc.sources {
                    *row.sources
                        .entry(name(&sources, s).unwrap_or_default())
                        .or_insert(0) += c;
                }
                for (s, c) in acc.actions {
                    *row.actions
                        .entry(name(&actions, s).unwrap_or_default())
                        .or_insert(0) += c;
                }
            }
            Ok(())
        })?;
        let mut rows: Vec<WhoRow> = all.into_values().collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.actor.cmp(&b.actor)));
        Ok(rows)
    }

    /// Deletes the index (before a rebuild).
    pub fn clear(dir: &Path) -> Result<(), IndexError> {
        match fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IndexError::Io {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The search result of `row` in `part`.
fn hit(part: &Part, row: u32) -> Result<Hit, IndexError> {
    let i = row as usize;
    let owned = |c: Col| -> Result<Option<String>, IndexError> {
        Ok(part.value(c, row)?.map(str::to_owned))
    };
    Ok(Hit {
        index: part.first + u64::from(row),
        time: part.time()?.get(i).copied().unwrap_or_default(),
        source: owned(Col::Source)?.unwrap_or_default(),
        actor: owned(Col::Actor)?,
        action: owned(Col::Action)?,
        resource: owned(Col::Resource)?,
        outcome: owned(Col::Outcome)?.unwrap_or_default(),
        ip: part
            .value(Col::Ip, row)?
            .and_then(parse_ip)
            .map(|ip| ip.to_canonical()),
        class_uid: u64::from(part.class_uid()?.get(i).copied().unwrap_or_default()),
        status_code: owned(Col::StatusCode)?,
    })
}

/// The lowest and highest address of a network, as 128-bit numbers (IPv4 mapped into IPv6).
fn cidr_bounds(net: IpAddr, prefix: u8) -> (u128, u128) {
    let (base, bits) = match net {
        IpAddr::V4(v4) => (
            u128::from(v4.to_ipv6_mapped()),
            96 + u32::from(prefix.min(32)),
        ),
        IpAddr::V6(v6) => (u128::from(v6), u32::from(prefix.min(128))),
    };
    let host_mask = u128::MAX.checked_shr(bits).unwrap_or(0);
    (base & !host_mask, base | host_mask)
}

fn read_settings(path: &Path) -> Result<FullText, IndexError> {
    let text = fs::read_to_string(path).map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .find_map(|l| l.strip_prefix("full_text = "))
        .map(|v| v.trim().trim_matches('"'))
        .ok_or_else(|| "no full_text setting".to_owned())
        .and_then(str::parse)
        .map_err(|message| IndexError::Invalid {
            path: path.to_path_buf(),
            message,
        })
}

fn write_settings(path: &Path, ft: FullText) -> Result<(), IndexError> {
    fs::write(
        path,
        format!(
            "# What free text searches (fields, raw or off); change it with `acta reindex --full-text`.\nfull_text = \"{}\"\n# Layout of the index parts.\nformat = {FORMAT}\n",
            ft.name()
        ),
    )
    .map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Adds rows to the index: they are buffered in memory and written as a part at each commit.
pub struct Writer {
    dir: PathBuf,
    full_text: FullText,
    builder: Builder,
    _lock: File,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("dir", &self.dir)
            .field("builder", &self.builder)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// The ledger index the next row must have.
    pub fn next(&self) -> u64 {
        self.builder.next()
    }

    /// Adds the event of `row`, which must be the next ledger entry; `detail` (status detail,
    /// message) and `raw` (the record) are indexed as words only in [`FullText::Raw`] mode.
    pub fn add(&mut self, row: &Row, detail: &[&str], raw: &[u8]) -> Result<(), IndexError> {
        if row.index != self.builder.next() {
            return Err(IndexError::Invalid {
                path: self.dir.clone(),
                message: format!(
                    "expects ledger entry {} next, was given {}",
                    self.builder.next(),
                    row.index
                ),
            });
        }
        if self.full_text == FullText::Raw {
            let mut text: Vec<&[u8]> = detail.iter().map(|d| d.as_bytes()).collect();
            text.push(raw);
            self.builder.push(row, Some(&text));
        } else {
            self.builder.push(row, None);
        }
        if self.builder.len() >= PART_ROWS {
            self.write_part()?;
        }
        Ok(())
    }

    /// Writes the buffered rows as a part: durable and searchable (after [`Index::reload`]).
    pub fn commit(&mut self) -> Result<(), IndexError> {
        if self.builder.len() > 0 {
            self.write_part()?;
            self.merge_small()?;
        }
        Ok(())
    }

    fn write_part(&mut self) -> Result<(), IndexError> {
        let next = self.builder.successor();
        let builder = std::mem::replace(&mut self.builder, next);
        builder.seal().write(&self.dir)?;
        Ok(())
    }

    /// Merges the small parts at the end of the index into one, once there are several.
    fn merge_small(&mut self) -> Result<(), IndexError> {
        let (chain, _) = part::list(&self.dir)?;
        let small = chain
            .iter()
            .rev()
            .take_while(|p| p.last - p.first + 1 < SMALL_PART)
            .count();
        if small < MERGE_AT {
            return Ok(());
        }
        let tail = chain.get(chain.len() - small..).unwrap_or_default();
        let parts = tail
            .iter()
            .map(|l| Part::open(&l.path))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(merged) = part::merge(&parts)? {
            let path = merged.write(&self.dir)?;
            for l in tail {
                if l.path != path {
                    fs::remove_file(&l.path).map_err(io_err(&l.path))?;
                }
            }
            part::sync_dir(&self.dir)?;
        }
        Ok(())
    }
}
