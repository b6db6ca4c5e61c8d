//! The search index: one Tantivy document per ledger entry.
//!
//! Keyword fields (actor identifiers, action, service, resources, source, outcome, account,
//! region, status code) are indexed whole and lowercased, so `actor:Alice` finds `alice` and
//! `action:delete*` finds `DeleteBucket`. The same fields are also kept as fast (columnar)
//! values in their original case, which is what result tables and counts read: a search never
//! opens a stored document. `time` (epoch milliseconds) and the ledger `index` are fast numeric
//! fields; `ip` is an address field, so a CIDR range is a range query.
//!
//! Free text matches an event when any of its keyword fields (or its user agent, or its IP)
//! equals the text, whole and ignoring case — this costs nothing more at ingest. With the index
//! setting [`FullText::Raw`], the words of the whole raw record are indexed as well (several
//! times the indexing cost), and free text also finds phrases anywhere in the record.
//!
//! The index is derived data. Each commit records, as its payload, the ledger index up to which
//! it is complete; after a crash, the entries from there on are indexed again from the ledger.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::{IpAddr, Ipv6Addr};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use acta_query::{Expr, Field as QField, Query, Value};
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::indexer::LogMergePolicy;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query as TQuery, RangeQuery,
    RegexQuery, TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, IpAddrOptions, NumericOptions, Schema,
    TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, RemoveLongFilter, TextAnalyzer, TokenStream};
use tantivy::{
    DocAddress, DocId, Order, ReloadPolicy, Score, SegmentOrdinal, SegmentReader, TantivyDocument,
    Term,
};

use crate::Row;

/// Tokenizer of the keyword fields: the whole value, lowercased.
const KEYWORD: &str = "acta_keyword";
/// Tokenizer of the free-text field: words, lowercased.
const WORDS: &str = "default";
/// Longest keyword indexed, in bytes (Tantivy's own limit is 64 KiB); longer values are cut.
const MAX_KEYWORD: usize = 4096;
/// Largest segment (in documents) that merges still combine with others.
const MAX_MERGED_DOCS: usize = 2_000_000;
/// File recording the index settings beside Tantivy's own files.
const SETTINGS: &str = "acta-index.toml";

/// What free text searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullText {
    /// Whole values of the event's fields: actor identifiers, action, service, resources,
    /// source, outcome, account, region, status code, user agent, IP. Costs nothing at ingest.
    #[default]
    Fields,
    /// The words of the whole raw record as well (several times the indexing cost).
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
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("search index `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The fields of the index schema.
#[derive(Debug, Clone)]
pub struct Fields {
    pub index: Field,
    pub time: Field,
    pub source: Field,
    pub class_uid: Field,
    pub outcome: Field,
    pub actor: Field,
    pub actor_id: Field,
    pub action: Field,
    pub service: Field,
    pub resource: Field,
    pub resource_id: Field,
    pub ip: Field,
    pub account: Field,
    pub region: Field,
    pub status_code: Field,
    pub user_agent: Field,
    pub text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let keyword_indexing = TextFieldIndexing::default()
        .set_tokenizer(KEYWORD)
        .set_index_option(IndexRecordOption::Basic);
    // Indexed (lowercased) and fast (as written): filters, tables and counts.
    let keyword = TextOptions::default()
        .set_indexing_options(keyword_indexing.clone())
        .set_fast("raw");
    // Indexed only: the many identifiers of an actor or a resource.
    let ids = TextOptions::default().set_indexing_options(keyword_indexing);
    // Fast only: shown, not searched on its own.
    let shown = TextOptions::default().set_fast("raw");
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(WORDS)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    // Columnar only: sorted and ranged over, never looked up by term (an inverted index of
    // near-unique times would cost more than everything else).
    let number = || NumericOptions::default() | FAST;
    let fields = Fields {
        index: b.add_u64_field("index", number()),
        time: b.add_i64_field("time", number()),
        source: b.add_text_field("source", keyword.clone()),
        class_uid: b.add_u64_field("class_uid", number()),
        outcome: b.add_text_field("outcome", keyword.clone()),
        actor: b.add_text_field("actor", shown.clone()),
        actor_id: b.add_text_field("actor_id", ids.clone()),
        action: b.add_text_field("action", keyword.clone()),
        service: b.add_text_field("service", keyword.clone()),
        resource: b.add_text_field("resource", shown),
        resource_id: b.add_text_field("resource_id", ids.clone()),
        ip: b.add_ip_addr_field("ip", IpAddrOptions::default() | INDEXED | FAST),
        account: b.add_text_field("account", keyword.clone()),
        region: b.add_text_field("region", keyword.clone()),
        status_code: b.add_text_field("status_code", keyword),
        user_agent: b.add_text_field("user_agent", ids),
        text: b.add_text_field("text", words),
    };
    (b.build(), fields)
}

fn register_tokenizers(index: &tantivy::Index) {
    index.tokenizers().register(
        KEYWORD,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_KEYWORD + 1))
            .filter(LowerCaser)
            .build(),
    );
}

/// Cuts `s` to at most [`MAX_KEYWORD`] bytes on a character boundary.
fn bounded(s: &str) -> &str {
    if s.len() <= MAX_KEYWORD {
        return s;
    }
    let mut end = MAX_KEYWORD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// The address of `ip` as Tantivy stores it (IPv4 mapped into IPv6).
fn ipv6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
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
    index: tantivy::Index,
    fields: Fields,
    full_text: FullText,
    reader: tantivy::IndexReader,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dir", &self.dir)
            .field("full_text", &self.full_text)
            .finish_non_exhaustive()
    }
}

/// Time bounds of a query, epoch milliseconds; `until` is exclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// One search result, read from the fast fields.
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

    fn column(self) -> &'static str {
        self.name()
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

impl Index {
    /// Opens the index under `dir`, creating it (with `full_text` for free text) when absent.
    /// An existing index keeps the free-text setting it was built with.
    pub fn open(dir: &Path, full_text: Option<FullText>) -> Result<Index, IndexError> {
        let io = |source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let settings = dir.join(SETTINGS);
        let (schema, fields) = schema();
        let exists = dir.join("meta.json").exists();
        let full_text = if exists {
            read_settings(&settings)?
        } else {
            let ft = full_text.unwrap_or_default();
            write_settings(&settings, ft)?;
            ft
        };
        let index = if exists {
            let index = tantivy::Index::open_in_dir(dir)?;
            if index.schema() != schema {
                return Err(IndexError::Invalid {
                    path: dir.to_path_buf(),
                    message: "built by another version of acta; rebuild it with `acta reindex`"
                        .into(),
                });
            }
            index
        } else {
            tantivy::Index::create_in_dir(dir, schema)?
        };
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Index {
            dir: dir.to_path_buf(),
            index,
            fields,
            full_text,
            reader,
        })
    }

    pub fn full_text(&self) -> FullText {
        self.full_text
    }

    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The ledger index up to which the last commit is complete.
    pub fn next(&self) -> Result<u64, IndexError> {
        let metas = self.index.load_metas()?;
        Ok(metas
            .payload
            .as_deref()
            .and_then(|p| p.strip_prefix("next "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0))
    }

    /// A writer adding documents; `heap_bytes` bounds the memory it buffers before flushing.
    pub fn writer(&self, heap_bytes: usize) -> Result<Writer, IndexError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(2);
        let writer = self
            .index
            .writer_with_num_threads(threads, heap_bytes.max((threads * 16) << 20))?;
        // Merged segments stay at a few million documents: merging ever larger ones during a
        // long ingest costs memory that grows with the index, for no gain in query time.
        let mut merges = LogMergePolicy::default();
        merges.set_max_docs_before_merge(MAX_MERGED_DOCS);
        writer.set_merge_policy(Box::new(merges));
        Ok(Writer {
            writer,
            fields: self.fields.clone(),
            full_text: self.full_text,
            text: String::new(),
        })
    }

    /// Makes the last commit visible to searches.
    pub fn reload(&self) -> Result<(), IndexError> {
        self.reader.reload()?;
        Ok(())
    }

    /// Number of indexed events.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Tantivy query for `query` within `range`.
    pub fn query(&self, query: &Query, range: TimeRange) -> Box<dyn TQuery> {
        let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
        if let Some(e) = &query.expr {
            clauses.push((Occur::Must, self.expr(e)));
        }
        if range.since.is_some() || range.until.is_some() {
            let lower = range.since.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_i64(self.fields.time, t))
            });
            let upper = range.until.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_i64(self.fields.time, t))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        match clauses.len() {
            0 => Box::new(AllQuery),
            _ => Box::new(BooleanQuery::new(clauses)),
        }
    }

    fn expr(&self, e: &Expr) -> Box<dyn TQuery> {
        match e {
            Expr::And(parts) => Box::new(BooleanQuery::new(
                parts.iter().map(|p| self.clause(p, Occur::Must)).collect(),
            )),
            Expr::Or(parts) => Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|p| self.clause(p, Occur::Should))
                    .collect(),
            )),
            Expr::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery) as Box<dyn TQuery>),
                (Occur::MustNot, self.expr(inner)),
            ])),
            Expr::Term(t) => self.term(t.field, &t.value),
        }
    }

    /// `e` as a clause of a boolean query; a negation inside a conjunction becomes MustNot.
    fn clause(&self, e: &Expr, occur: Occur) -> (Occur, Box<dyn TQuery>) {
        match (e, occur) {
            (Expr::Not(inner), Occur::Must) => (Occur::MustNot, self.expr(inner)),
            _ => (occur, self.expr(e)),
        }
    }

    fn keyword_field(&self, field: QField) -> Option<Field> {
        let f = &self.fields;
        Some(match field {
            QField::Actor => f.actor_id,
            QField::Action => f.action,
            QField::Resource => f.resource_id,
            QField::Source => f.source,
            QField::Account => f.account,
            QField::Region => f.region,
            QField::Service => f.service,
            QField::Outcome => f.outcome,
            QField::Ip | QField::Text => return None,
        })
    }

    fn term(&self, field: QField, value: &Value) -> Box<dyn TQuery> {
        match (field, value) {
            (QField::Ip, Value::Ip(ip)) => Box::new(TermQuery::new(
                Term::from_field_ip_addr(self.fields.ip, ipv6(*ip)),
                IndexRecordOption::Basic,
            )),
            (QField::Ip, Value::Cidr(net, prefix)) => {
                let (lo, hi) = cidr_bounds(*net, *prefix);
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_ip_addr(self.fields.ip, lo)),
                    Bound::Included(Term::from_field_ip_addr(self.fields.ip, hi)),
                ))
            }
            (QField::Outcome, Value::Outcome(o)) => self.keyword(self.fields.outcome, o.name()),
            (QField::Text, value) => self.free_text(value),
            (f, Value::Exact(v)) => match self.keyword_field(f) {
                Some(field) => self.keyword(field, v),
                None => Box::new(EmptyQuery),
            },
            (f, Value::Wildcard(p)) => match self.keyword_field(f) {
                Some(field) => self.wildcard(field, p),
                None => Box::new(EmptyQuery),
            },
            _ => Box::new(EmptyQuery),
        }
    }

    fn keyword(&self, field: Field, value: &str) -> Box<dyn TQuery> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, &bounded(value).to_lowercase()),
            IndexRecordOption::Basic,
        ))
    }

    fn wildcard(&self, field: Field, pattern: &str) -> Box<dyn TQuery> {
        let mut re = String::with_capacity(pattern.len() * 2);
        for c in pattern.to_lowercase().chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c if c.is_alphanumeric() || c == ' ' => re.push(c),
                c => {
                    re.push('\\');
                    re.push(c);
                }
            }
        }
        match RegexQuery::from_pattern(&re, field) {
            Ok(q) => Box::new(q),
            Err(_) => Box::new(EmptyQuery),
        }
    }

    /// The keyword fields free text looks in.
    fn text_fields(&self) -> [Field; 11] {
        let f = &self.fields;
        [
            f.actor_id,
            f.action,
            f.service,
            f.resource_id,
            f.source,
            f.outcome,
            f.account,
            f.region,
            f.status_code,
            f.user_agent,
            f.text,
        ]
    }

    /// Free text: a whole value of any keyword field, or (raw mode) words of the raw record.
    fn free_text(&self, value: &Value) -> Box<dyn TQuery> {
        if self.full_text == FullText::Off {
            return Box::new(EmptyQuery);
        }
        let mut any: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
        for field in self.text_fields() {
            if field == self.fields.text {
                continue;
            }
            let q = match value {
                Value::Exact(v) => self.keyword(field, v),
                Value::Wildcard(p) => self.wildcard(field, p),
                _ => continue,
            };
            any.push((Occur::Should, q));
        }
        if let Value::Exact(v) = value
            && let Some(ip) = parse_ip(v)
        {
            any.push((
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_ip_addr(self.fields.ip, ipv6(ip)),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if self.full_text == FullText::Raw {
            any.push((
                Occur::Should,
                match value {
                    Value::Exact(v) => self.words(v),
                    Value::Wildcard(p) => self.wildcard(self.fields.text, p),
                    _ => Box::new(EmptyQuery),
                },
            ));
        }
        Box::new(BooleanQuery::new(any))
    }

    /// The words of `text` next to each other in that order, in the raw record.
    fn words(&self, text: &str) -> Box<dyn TQuery> {
        let mut analyzer = match self.index.tokenizers().get(WORDS) {
            Some(a) => a,
            None => return Box::new(EmptyQuery),
        };
        let mut terms = Vec::new();
        let mut stream = analyzer.token_stream(text);
        while let Some(token) = stream.next() {
            terms.push((
                token.position,
                Term::from_field_text(self.fields.text, &token.text),
            ));
        }
        match terms.len() {
            0 => Box::new(EmptyQuery),
            1 => match terms.pop() {
                Some((_, t)) => Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                None => Box::new(EmptyQuery),
            },
            _ => Box::new(PhraseQuery::new_with_offset(terms)),
        }
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
        let q = self.query(query, range);
        self.top(&*q, limit, offset, Order::Desc)
    }

    /// Matching events in the given time order.
    pub fn top(
        &self,
        q: &dyn TQuery,
        limit: usize,
        offset: usize,
        order: Order,
    ) -> Result<Vec<Hit>, IndexError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let collector = TopDocs::with_limit(limit).and_offset(offset).order_by((
            (
                tantivy::collector::sort_key::SortByStaticFastValue::<i64>::for_field("time"),
                order,
            ),
            (
                tantivy::collector::sort_key::SortByStaticFastValue::<u64>::for_field("index"),
                order,
            ),
        ));
        let docs = searcher.search(q, &collector)?;
        let mut readers: HashMap<SegmentOrdinal, HitReader> = HashMap::new();
        let mut hits = Vec::with_capacity(docs.len());
        for (_, addr) in docs {
            let reader = match readers.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(HitReader::new(searcher.segment_reader(addr.segment_ord))?)
                }
            };
            hits.push(reader.hit(addr)?);
        }
        Ok(hits)
    }

    /// How many events match.
    pub fn count(&self, query: &Query, range: TimeRange) -> Result<u64, IndexError> {
        let q = self.query(query, range);
        Ok(self.reader.searcher().search(&*q, &Count)? as u64)
    }

    /// The ledger indices of every matching event, in increasing order.
    pub fn indices(&self, query: &Query, range: TimeRange) -> Result<Vec<u64>, IndexError> {
        let q = self.query(query, range);
        let mut all = self.reader.searcher().search(&*q, &IndexCollector)?;
        all.sort_unstable();
        Ok(all)
    }

    /// Counts of matching events by the values of `by` (and by time bucket of `interval_ms`).
    /// Multi-valued fields count once per value. Sorted by count, largest first.
    pub fn stats(
        &self,
        query: &Query,
        range: TimeRange,
        by: &[StatField],
        interval_ms: Option<i64>,
    ) -> Result<Vec<StatRow>, IndexError> {
        let q = self.query(query, range);
        let collector = StatsCollector {
            by: by.to_vec(),
            interval: interval_ms.filter(|i| *i > 0),
        };
        let counts = self.reader.searcher().search(&*q, &collector)?;
        let mut rows: Vec<StatRow> = counts
            .into_iter()
            .map(|((values, bucket), count)| StatRow {
                values,
                bucket,
                count,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.bucket.cmp(&b.bucket))
                .then_with(|| a.values.cmp(&b.values))
        });
        if interval_ms.is_some() {
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
        let q = self.query(query, range);
        let mut rows: Vec<WhoRow> = self
            .reader
            .searcher()
            .search(&*q, &WhoCollector)?
            .into_values()
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.actor.cmp(&b.actor)));
        Ok(rows)
    }

    /// Deletes every document (before a rebuild).
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

fn cidr_bounds(net: IpAddr, prefix: u8) -> (Ipv6Addr, Ipv6Addr) {
    let (base, bits) = match net {
        IpAddr::V4(v4) => (
            u128::from(v4.to_ipv6_mapped()),
            96 + u32::from(prefix.min(32)),
        ),
        IpAddr::V6(v6) => (u128::from(v6), u32::from(prefix.min(128))),
    };
    let host_mask = u128::MAX.checked_shr(bits).unwrap_or(0);
    (
        Ipv6Addr::from(base & !host_mask),
        Ipv6Addr::from(base | host_mask),
    )
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
            "# What free text searches (fields, raw or off); change it with `acta reindex --full-text`.\nfull_text = \"{}\"\n",
            ft.name()
        ),
    )
    .map_err(|source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Adds documents to the index.
pub struct Writer {
    writer: tantivy::IndexWriter,
    fields: Fields,
    full_text: FullText,
    text: String,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Adds the event of `row`; `detail` is extra free text (status detail, message, user
    /// agent), `raw` the record (indexed as free text only in [`FullText::Raw`] mode).
    pub fn add(&mut self, row: &Row, detail: &[&str], raw: &[u8]) -> Result<(), IndexError> {
        let f = &self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_u64(f.index, row.index);
        doc.add_i64(f.time, row.time);
        doc.add_text(f.source, bounded(&row.source));
        doc.add_u64(f.class_uid, u64::from(row.class_uid));
        doc.add_text(f.outcome, row.outcome);
        if let Some(a) = &row.actor {
            doc.add_text(f.actor, bounded(a));
        }
        for id in &row.actor_ids {
            doc.add_text(f.actor_id, bounded(id));
        }
        let single = [
            (f.action, &row.action),
            (f.service, &row.service),
            (f.account, &row.account),
            (f.region, &row.region),
            (f.status_code, &row.status_code),
        ];
        for (field, value) in single {
            if let Some(v) = value {
                doc.add_text(field, bounded(v));
            }
        }
        if let Some(r) = row.resource() {
            doc.add_text(f.resource, bounded(r));
        }
        for r in &row.resources {
            doc.add_text(f.resource_id, bounded(r));
        }
        if let Some(ip) = row.ip.as_deref().and_then(parse_ip) {
            doc.add_ip_addr(f.ip, ipv6(ip));
        }
        if let Some(ua) = &row.user_agent {
            doc.add_text(f.user_agent, bounded(ua));
        }
        if self.full_text == FullText::Raw {
            self.text.clear();
            for d in detail {
                self.text.push_str(d);
                self.text.push('\n');
            }
            self.text.push_str(&String::from_utf8_lossy(raw));
            doc.add_text(f.text, &self.text);
        }
        self.writer.add_document(doc)?;
        Ok(())
    }

    /// Makes everything added so far durable and searchable (after [`Index::reload`]),
    /// recording that the index is complete up to ledger index `next`.
    pub fn commit(&mut self, next: u64) -> Result<(), IndexError> {
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&format!("next {next}"));
        prepared.commit()?;
        Ok(())
    }

    /// Waits for merges to finish and releases the index.
    pub fn finish(self) -> Result<(), IndexError> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}

/// Fast-field readers of one segment, for building [`Hit`]s.
struct HitReader {
    index: tantivy::columnar::Column<u64>,
    time: tantivy::columnar::Column<i64>,
    class_uid: tantivy::columnar::Column<u64>,
    ip: Option<tantivy::columnar::Column<Ipv6Addr>>,
    source: Option<StrColumn>,
    actor: Option<StrColumn>,
    action: Option<StrColumn>,
    resource: Option<StrColumn>,
    outcome: Option<StrColumn>,
    status_code: Option<StrColumn>,
}

impl HitReader {
    fn new(seg: &SegmentReader) -> Result<HitReader, IndexError> {
        let ff = seg.fast_fields();
        Ok(HitReader {
            index: ff.u64("index")?,
            time: ff.i64("time")?,
            class_uid: ff.u64("class_uid")?,
            ip: ff.ip_addr("ip").ok(),
            source: ff.str("source")?,
            actor: ff.str("actor")?,
            action: ff.str("action")?,
            resource: ff.str("resource")?,
            outcome: ff.str("outcome")?,
            status_code: ff.str("status_code")?,
        })
    }

    fn hit(&self, addr: DocAddress) -> Result<Hit, IndexError> {
        let d = addr.doc_id;
        let ip = self
            .ip
            .as_ref()
            .and_then(|c| c.first(d))
            .map(|v6| match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            });
        Ok(Hit {
            index: self.index.first(d).unwrap_or_default(),
            time: self.time.first(d).unwrap_or_default(),
            source: str_value(&self.source, d)?.unwrap_or_default(),
            actor: str_value(&self.actor, d)?,
            action: str_value(&self.action, d)?,
            resource: str_value(&self.resource, d)?,
            outcome: str_value(&self.outcome, d)?.unwrap_or_default(),
            ip,
            class_uid: self.class_uid.first(d).unwrap_or_default(),
            status_code: str_value(&self.status_code, d)?,
        })
    }
}

fn str_value(col: &Option<StrColumn>, doc: DocId) -> Result<Option<String>, IndexError> {
    let Some(col) = col else { return Ok(None) };
    let Some(ord) = col.ords().first(doc) else {
        return Ok(None);
    };
    let mut s = String::new();
    col.ord_to_str(ord, &mut s)
        .map_err(|e| IndexError::Tantivy(e.into()))?;
    Ok(Some(s))
}

/// Collects the ledger index of every matching document.
struct IndexCollector;

struct IndexSegment {
    index: tantivy::columnar::Column<u64>,
    out: Vec<u64>,
}

impl Collector for IndexCollector {
    type Fruit = Vec<u64>;
    type Child = IndexSegment;

    fn for_segment(&self, _: SegmentOrdinal, seg: &SegmentReader) -> tantivy::Result<IndexSegment> {
        Ok(IndexSegment {
            index: seg.fast_fields().u64("index")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for IndexSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(i) = self.index.first(doc) {
            self.out.push(i);
        }
    }

    fn harvest(self) -> Vec<u64> {
        self.out
    }
}

type StatKey = (Vec<Option<String>>, Option<i64>);

/// Counts matching documents by term ordinals per segment, then by strings across segments.
struct StatsCollector {
    by: Vec<StatField>,
    interval: Option<i64>,
}

struct StatsSegment {
    columns: Vec<Option<StrColumn>>,
    time: tantivy::columnar::Column<i64>,
    interval: Option<i64>,
    counts: HashMap<(Vec<Option<u64>>, Option<i64>), u64>,
    key: Vec<Vec<Option<u64>>>,
    /// Counts by term ordinal (the last slot: no value), when counting by one field and no
    /// interval — the common case, kept off the hash map.
    dense: Option<Vec<u64>>,
}

impl Collector for StatsCollector {
    type Fruit = HashMap<StatKey, u64>;
    type Child = StatsSegment;

    fn for_segment(&self, _: SegmentOrdinal, seg: &SegmentReader) -> tantivy::Result<StatsSegment> {
        let ff = seg.fast_fields();
        let columns = self
            .by
            .iter()
            .map(|f| ff.str(f.column()))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let dense = match (columns.as_slice(), self.interval) {
            ([col], None) => {
                let terms = col.as_ref().map_or(0, |c| c.num_terms());
                Some(vec![0u64; terms + 1])
            }
            _ => None,
        };
        Ok(StatsSegment {
            columns,
            time: ff.i64("time")?,
            interval: self.interval,
            counts: HashMap::new(),
            key: Vec::new(),
            dense,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<HashMap<StatKey, u64>>,
    ) -> tantivy::Result<HashMap<StatKey, u64>> {
        let mut all = HashMap::new();
        for f in fruits {
            for (k, v) in f {
                *all.entry(k).or_insert(0) += v;
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for StatsSegment {
    type Fruit = HashMap<StatKey, u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(dense) = self.dense.as_mut() {
            let none = dense.len() - 1;
            let mut any = false;
            if let Some(Some(col)) = self.columns.first() {
                for ord in col.term_ords(doc) {
                    any = true;
                    if let Some(slot) = usize::try_from(ord).ok().and_then(|o| dense.get_mut(o)) {
                        *slot += 1;
                    }
                }
            }
            if !any && let Some(slot) = dense.get_mut(none) {
                *slot += 1;
            }
            return;
        }
        let bucket = self.interval.map(|i| {
            let t = self.time.first(doc).unwrap_or_default();
            t.div_euclid(i) * i
        });
        // The cross product of every field's values (one `None` for a field without value).
        self.key.clear();
        self.key.push(Vec::with_capacity(self.columns.len()));
        for col in &self.columns {
            let ords: Vec<Option<u64>> = match col {
                Some(c) => {
                    let v: Vec<Option<u64>> = c.term_ords(doc).map(Some).collect();
                    if v.is_empty() { vec![None] } else { v }
                }
                None => vec![None],
            };
            if ords.len() == 1 {
                let o = ords.first().copied().flatten();
                for k in &mut self.key {
                    k.push(o);
                }
            } else {
                let prev = std::mem::take(&mut self.key);
                for k in prev {
                    for o in &ords {
                        let mut k2 = k.clone();
                        k2.push(*o);
                        self.key.push(k2);
                    }
                }
            }
        }
        for k in self.key.drain(..) {
            *self.counts.entry((k, bucket)).or_insert(0) += 1;
        }
    }

    fn harvest(mut self) -> HashMap<StatKey, u64> {
        if let Some(dense) = self.dense.take() {
            let none = dense.len() - 1;
            for (ord, count) in dense.into_iter().enumerate().filter(|(_, c)| *c > 0) {
                let key = if ord == none { None } else { Some(ord as u64) };
                *self.counts.entry((vec![key], None)).or_insert(0) += count;
            }
        }
        let mut out: HashMap<StatKey, u64> = HashMap::with_capacity(self.counts.len());
        let mut s = String::new();
        for ((ords, bucket), count) in self.counts {
            let values = ords
                .iter()
                .zip(&self.columns)
                .map(|(o, col)| {
                    let (Some(o), Some(col)) = (o, col) else {
                        return None;
                    };
                    s.clear();
                    match col.ord_to_str(*o, &mut s) {
                        Ok(true) => Some(s.clone()),
                        _ => None,
                    }
                })
                .collect();
            *out.entry((values, bucket)).or_insert(0) += count;
        }
        out
    }
}

/// Groups matching documents by actor.
struct WhoCollector;

struct WhoSegment {
    time: tantivy::columnar::Column<i64>,
    actor: Option<StrColumn>,
    source: Option<StrColumn>,
    action: Option<StrColumn>,
    outcome: Option<StrColumn>,
    failure_ord: Option<u64>,
    rows: HashMap<Option<u64>, WhoOrds>,
}

#[derive(Default)]
struct WhoOrds {
    count: u64,
    first: i64,
    last: i64,
    sources: HashMap<Option<u64>, u64>,
    actions: HashMap<Option<u64>, u64>,
    failures: u64,
}

impl Collector for WhoCollector {
    type Fruit = HashMap<Option<String>, WhoRow>;
    type Child = WhoSegment;

    fn for_segment(&self, _: SegmentOrdinal, seg: &SegmentReader) -> tantivy::Result<WhoSegment> {
        let ff = seg.fast_fields();
        let outcome = ff.str("outcome")?;
        let failure_ord = match &outcome {
            Some(c) => c.dictionary().term_ord("failure")?,
            None => None,
        };
        Ok(WhoSegment {
            time: ff.i64("time")?,
            actor: ff.str("actor")?,
            source: ff.str("source")?,
            action: ff.str("action")?,
            outcome,
            failure_ord,
            rows: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<HashMap<Option<String>, WhoRow>>,
    ) -> tantivy::Result<HashMap<Option<String>, WhoRow>> {
        let mut all: HashMap<Option<String>, WhoRow> = HashMap::new();
        for f in fruits {
            for (actor, row) in f {
                match all.entry(actor) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(row);
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        let a = o.get_mut();
                        a.count += row.count;
                        a.first = a.first.min(row.first);
                        a.last = a.last.max(row.last);
                        a.failures += row.failures;
                        for (k, v) in row.sources {
                            *a.sources.entry(k).or_insert(0) += v;
                        }
                        for (k, v) in row.actions {
                            *a.actions.entry(k).or_insert(0) += v;
                        }
                    }
                }
            }
        }
        Ok(all)
    }
}

fn first_ord(col: &Option<StrColumn>, doc: DocId) -> Option<u64> {
    col.as_ref().and_then(|c| c.ords().first(doc))
}

impl SegmentCollector for WhoSegment {
    type Fruit = HashMap<Option<String>, WhoRow>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let t = self.time.first(doc).unwrap_or_default();
        let failed =
            self.failure_ord.is_some() && first_ord(&self.outcome, doc) == self.failure_ord;
        let source = first_ord(&self.source, doc);
        let action = first_ord(&self.action, doc);
        let row = self
            .rows
            .entry(first_ord(&self.actor, doc))
            .or_insert_with(|| WhoOrds {
                first: t,
                last: t,
                ..WhoOrds::default()
            });
        row.count += 1;
        row.first = row.first.min(t);
        row.last = row.last.max(t);
        row.failures += u64::from(failed);
        *row.sources.entry(source).or_insert(0) += 1;
        *row.actions.entry(action).or_insert(0) += 1;
    }

    fn harvest(self) -> HashMap<Option<String>, WhoRow> {
        let name = |col: &Option<StrColumn>, ord: Option<u64>| -> Option<String> {
            let (Some(col), Some(ord)) = (col, ord) else {
                return None;
            };
            let mut s = String::new();
            matches!(col.ord_to_str(ord, &mut s), Ok(true)).then_some(s)
        };
        let mut out = HashMap::with_capacity(self.rows.len());
        for (actor, r) in self.rows {
            let mut sources = BTreeMap::new();
            for (o, c) in r.sources {
                *sources
                    .entry(name(&self.source, o).unwrap_or_default())
                    .or_insert(0) += c;
            }
            let mut actions = BTreeMap::new();
            for (o, c) in r.actions {
                *actions
                    .entry(name(&self.action, o).unwrap_or_default())
                    .or_insert(0) += c;
            }
            let actor = name(&self.actor, actor);
            out.insert(
                actor.clone(),
                WhoRow {
                    actor,
                    count: r.count,
                    first: r.first,
                    last: r.last,
                    sources,
                    actions,
                    failures: r.failures,
                },
            );
        }
        out
    }
}
