//! Format parsers: one record in, one normalised [`Event`] out.
//!
//! Each source format lives in its own module behind the small [`Parser`] trait; the [`Registry`]
//! holds them all, detects which one a file or a record is in, and turns every record into
//! exactly one [`Normalised`] result: an event, a recognised non-event (a CloudTrail digest file,
//! a Kubernetes request stage that a later stage completes), or — when nothing recognises the
//! record or its known fields are unusable — an OCSF base event (`class_uid` 0) carrying the raw
//! record and the reason. Parsers never panic: they read untrusted bytes.
//!
//! # Detection
//!
//! The format of a file is decided on its first record ([`Registry::detect`]) and tried first on
//! every record of that file. A record the file's format does not recognise is detected on its
//! own, so mixed files work. `--format NAME` forces one parser for a whole input.

pub mod access;
pub mod cloudtrail;
pub mod finding;
pub mod github;
pub mod gitlab;
pub mod json;
pub mod jsonobj;
pub mod k8s;
pub mod linux;
pub mod mapping;
pub mod pgaudit;
pub mod time;

use std::fmt;
use std::str::FromStr;

use acta_event::Event;
use serde_json::Value;

/// The formats acta reads. Names are what `--format` takes and `acta formats` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Cloudtrail,
    GithubAudit,
    GithubWebhook,
    GitlabAudit,
    K8sAudit,
    Syslog,
    Journald,
    Pgaudit,
    Json,
    Finding,
    Access,
}

impl Format {
    pub const ALL: [Format; 11] = [
        Format::Cloudtrail,
        Format::GithubAudit,
        Format::GithubWebhook,
        Format::GitlabAudit,
        Format::K8sAudit,
        Format::Syslog,
        Format::Journald,
        Format::Pgaudit,
        Format::Json,
        Format::Finding,
        Format::Access,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Cloudtrail => "cloudtrail",
            Format::GithubAudit => "github-audit",
            Format::GithubWebhook => "github-webhook",
            Format::GitlabAudit => "gitlab-audit",
            Format::K8sAudit => "k8s-audit",
            Format::Syslog => "syslog",
            Format::Journald => "journald",
            Format::Pgaudit => "pgaudit",
            Format::Json => "json",
            Format::Finding => finding::SOURCE,
            Format::Access => access::SOURCE,
        }
    }

    /// Whether records of this format are written by acta itself (its alerts and its access
    /// records): no input may pass as them, so their formats and source names are reserved.
    pub fn is_acta_own(self) -> bool {
        matches!(self, Format::Finding | Format::Access)
    }

    /// Whether `source` is a ledger source only acta itself writes to.
    pub fn is_reserved_source(source: &str) -> bool {
        source == finding::SOURCE || source == access::SOURCE
    }

    /// One line for `acta formats`.
    pub fn description(self) -> &'static str {
        match self {
            Format::Cloudtrail => {
                "AWS CloudTrail: {\"Records\":[…]} files, NDJSON (Lake, EventBridge), single events; digest files recognised"
            }
            Format::GithubAudit => {
                "GitHub organisation/enterprise audit log: REST JSON pages and streaming NDJSON"
            }
            Format::GithubWebhook => {
                "GitHub webhook payloads: workflow_run, workflow_job, push, deployment, member, repository, …"
            }
            Format::GitlabAudit => {
                "GitLab audit events (API JSON, streaming) and Rails request logs (production_json, api_json)"
            }
            Format::K8sAudit => {
                "Kubernetes audit (audit.k8s.io/v1): Event lines, EventList, EKS exports"
            }
            Format::Syslog => "sshd, sudo, su and PAM session lines in RFC 3164 or RFC 5424 syslog",
            Format::Journald => "sshd, sudo, su and PAM session records from `journalctl -o json`",
            Format::Pgaudit => "PostgreSQL pgaudit AUDIT records in stderr, csvlog and jsonlog",
            Format::Json => "any JSON, mapped to the model by a declarative TOML mapping",
            Format::Finding => "acta's own alerts: OCSF Detection Findings (class 2004)",
            Format::Access => {
                "acta's own access records: every read of the trail through `acta serve` (class 6003)"
            }
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}` (known: {names})", names = Format::ALL.map(Format::name).join(", "))]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// One record to parse.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record's exact bytes.
    pub bytes: &'a [u8],
    /// When acta received it, epoch milliseconds: the event time of last resort, and the
    /// reference year for timestamps that carry none (RFC 3164).
    pub received_at_ms: i64,
}

/// What a parser made of a record.
#[derive(Debug)]
pub enum Parsed {
    /// One event.
    Event(Box<Event>),
    /// Recognised, but not an event of its own; the reason says what it is (stored raw all the
    /// same).
    NotAnEvent(&'static str),
}

/// Why a parser gave a record back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The record is not in this parser's format.
    NotMine,
    /// The record is in this format but unusable (a known field of the wrong type, a missing
    /// required field); the reason names it.
    Invalid(String),
}

impl Rejection {
    pub fn invalid(reason: impl Into<String>) -> Rejection {
        Rejection::Invalid(reason.into())
    }
}

/// A record's JSON value, parsed at most once and shared by every parser's detection.
#[derive(Debug)]
pub struct Probe<'a> {
    pub bytes: &'a [u8],
    json: Option<Option<Value>>,
}

impl<'a> Probe<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, json: None }
    }

    /// The record as JSON, when it is a JSON object (parsed on first call).
    pub fn object(&mut self) -> Option<&serde_json::Map<String, Value>> {
        self.json
            .get_or_insert_with(|| {
                let trimmed = self.bytes.trim_ascii_start();
                if trimmed.first() == Some(&b'{') {
                    serde_json::from_slice(self.bytes).ok()
                } else {
                    None
                }
            })
            .as_ref()
            .and_then(Value::as_object)
    }
}

/// A source format's parser.
pub trait Parser: Send + Sync + fmt::Debug {
    fn format(&self) -> Format;

    /// Whether a record looks like this format. Cheap checks on the bytes, or on the JSON
    /// object's keys and a few values; never a full parse.
    fn sniff(&self, probe: &mut Probe<'_>) -> bool;

    /// Parses and normalises one record. A record that is not in this format (by the same checks
    /// as [`Parser::sniff`]) is [`Rejection::NotMine`], so that detection can go on; only a
    /// record that is in this format but unusable is [`Rejection::Invalid`].
    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection>;

    /// For a record that wraps several events of this format (a Kubernetes `EventList`): the
    /// byte ranges of the events within it, each then stored and normalised as a record of its
    /// own. `None` (the default) for a record that is one event.
    fn split(&self, _bytes: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
        None
    }
}

/// Why a record gave no event of its own, or a base event instead of a mapped one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Recognised as `format`, but not an event (see [`Parsed::NotAnEvent`]).
    NotAnEvent(Format, &'static str),
    /// In `format` but unusable; stored raw, normalised as a base event.
    Invalid(Format, String),
    /// No parser recognised it; stored raw, normalised as a base event.
    Unrecognised(String),
}

impl Note {
    /// The summary line a count of such records goes under.
    pub fn summary_reason(&self) -> String {
        match self {
            Note::NotAnEvent(f, why) => format!("{f}: {why}"),
            Note::Invalid(f, why) => format!("{f}: {why}"),
            Note::Unrecognised(why) => why.clone(),
        }
    }

    /// Whether the record counts as flagged (stored but not normalised).
    pub fn is_flag(&self) -> bool {
        !matches!(self, Note::NotAnEvent(..))
    }
}

/// The result of normalising one record.
#[derive(Debug)]
pub struct Normalised {
    /// The event, absent only for [`Note::NotAnEvent`].
    pub event: Option<Box<Event>>,
    /// The format that produced the event, if any did.
    pub format: Option<Format>,
    pub note: Option<Note>,
}

/// How the registry picks a parser for an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// `--format`: only this parser.
    Forced(Format),
    /// Detected for the input: tried first, detection per record after.
    Detected(Format),
    /// Nothing detected yet: detection per record.
    Auto,
}

/// All parsers, and detection among them.
#[derive(Debug)]
pub struct Registry {
    parsers: Vec<Box<dyn Parser>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::standard()
    }
}

impl Registry {
    /// The built-in parsers, in detection order (most specific first; the generic JSON mapping,
    /// which takes any JSON object, is only used when forced or configured).
    pub fn standard() -> Registry {
        Registry {
            parsers: vec![
                Box::new(finding::Finding),
                Box::new(access::Access),
                Box::new(cloudtrail::CloudTrail),
                Box::new(k8s::K8sAudit),
                Box::new(linux::Journald),
                // Before syslog: pgaudit lines forwarded through syslog carry both headers.
                Box::new(pgaudit::Pgaudit),
                Box::new(linux::Syslog),
                Box::new(github::GithubAudit),
                Box::new(github::GithubWebhook),
                Box::new(gitlab::GitlabAudit),
                // Only with mappings (`--mapping`) does the JSON format claim records by itself;
                // kept last so that every specific parser is tried first.
                Box::new(mapping::JsonMapped::new(Vec::new())),
            ],
        }
    }

    /// The built-in parsers plus JSON mappings (`--mapping`), which then take part in
    /// detection.
    pub fn with_mappings(mappings: Vec<mapping::Mapping>) -> Registry {
        let mut r = Registry::standard();
        r.register(Box::new(mapping::JsonMapped::new(mappings)));
        r
    }

    /// Adds (or replaces) a parser; replaced parsers keep their place in detection order.
    pub fn register(&mut self, parser: Box<dyn Parser>) {
        let f = parser.format();
        match self.parsers.iter_mut().find(|p| p.format() == f) {
            Some(slot) => *slot = parser,
            None => self.parsers.push(parser),
        }
    }

    pub fn get(&self, format: Format) -> Option<&dyn Parser> {
        self.parsers
            .iter()
            .find(|p| p.format() == format)
            .map(|p| &**p)
    }

    /// The format of a record, by sniffing.
    pub fn detect(&self, bytes: &[u8]) -> Option<Format> {
        let mut probe = Probe::new(bytes);
        self.parsers
            .iter()
            .find(|p| p.sniff(&mut probe))
            .map(|p| p.format())
    }

    /// The events wrapped in a record, if a parser (the input's format first) says it is a
    /// wrapper of several; see [`Parser::split`].
    pub fn split(
        &self,
        bytes: &[u8],
        format: Option<Format>,
    ) -> Option<Vec<std::ops::Range<usize>>> {
        if let Some(p) = format.and_then(|f| self.get(f))
            && let Some(r) = p.split(bytes)
        {
            return Some(r);
        }
        self.parsers.iter().find_map(|p| p.split(bytes))
    }

    /// Normalises one record; the event's `raw_data` is the record.
    pub fn normalise(&self, record: &Record<'_>, choice: Choice) -> Normalised {
        let mut n = self.normalise_lean(record, choice);
        if let Some(e) = n.event.as_mut() {
            e.raw_data = acta_event::lossy(record.bytes);
        }
        n
    }

    /// Normalises one record for its index row alone: `raw_data` stays empty and nothing is put
    /// under `unmapped` (see [`acta_event::without_unmapped`]); every other field is as
    /// [`Registry::normalise_lean`] makes it.
    pub fn normalise_row(&self, record: &Record<'_>, choice: Choice) -> Normalised {
        acta_event::without_unmapped(|| self.normalise_lean(record, choice))
    }

    /// Normalises one record, leaving `raw_data` empty: for stores that keep the record's bytes
    /// elsewhere (the ledger), which spares a copy and its escaping.
    pub fn normalise_lean(&self, record: &Record<'_>, choice: Choice) -> Normalised {
        let first = match choice {
            Choice::Forced(f) | Choice::Detected(f) => self.get(f),
            Choice::Auto => None,
        };
        if let (Choice::Forced(f), None) = (choice, first) {
            return unrecognised(
                record,
                format!("not a {f} record (no {f} parser is available)"),
            );
        }
        if let Some(p) = first {
            match p.parse(record) {
                Ok(parsed) => return done(p.format(), parsed),
                Err(Rejection::Invalid(why)) => return invalid(record, p.format(), why),
                Err(Rejection::NotMine) => {
                    if let Choice::Forced(f) = choice {
                        return unrecognised(record, format!("not a {f} record"));
                    }
                }
            }
        }
        let mut probe = Probe::new(record.bytes);
        for p in &self.parsers {
            if Some(p.format()) == first.map(|f| f.format()) || !p.sniff(&mut probe) {
                continue;
            }
            match p.parse(record) {
                Ok(parsed) => return done(p.format(), parsed),
                Err(Rejection::Invalid(why)) => return invalid(record, p.format(), why),
                Err(Rejection::NotMine) => {}
            }
        }
        let why = if probe.object().is_some() {
            "no parser recognised this JSON object"
        } else if record.bytes.trim_ascii_start().first() == Some(&b'{') {
            "not valid JSON and no parser recognised it"
        } else {
            "no parser recognised this record"
        };
        unrecognised(record, why.to_owned())
    }
}

/// Normalises the records of one input in order: the input's format is detected on its first
/// record that a parser sniffs as its own (unless forced), and tried first from then on.
///
/// The choice for a batch of records can be fixed up front with [`InputNormaliser::prepare`]:
/// normalising the batch with that choice, in any order or in parallel, gives the same events
/// as normalising its records one by one.
#[derive(Debug, Clone)]
pub struct InputNormaliser {
    choice: Choice,
}

impl InputNormaliser {
    /// `forced`: the `--format` given for this input, if any.
    pub fn new(forced: Option<Format>) -> Self {
        Self {
            choice: forced.map_or(Choice::Auto, Choice::Forced),
        }
    }

    /// The input's format: forced, or detected so far.
    pub fn format(&self) -> Option<Format> {
        match self.choice {
            Choice::Forced(f) | Choice::Detected(f) => Some(f),
            Choice::Auto => None,
        }
    }

    /// The current choice.
    pub fn choice(&self) -> Choice {
        self.choice
    }

    /// Looks at a record for detection (a no-op once the format is known).
    pub fn observe(&mut self, registry: &Registry, bytes: &[u8]) {
        if self.choice == Choice::Auto
            && let Some(f) = registry.detect(bytes)
        {
            self.choice = Choice::Detected(f);
        }
    }

    /// Detects the format from a batch of records (if not known yet) and returns the choice to
    /// normalise the whole batch with.
    pub fn prepare<'a>(
        &mut self,
        registry: &Registry,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Choice {
        for r in records {
            if self.choice != Choice::Auto {
                break;
            }
            self.observe(registry, r);
        }
        self.choice
    }

    /// The events wrapped in a record (see [`Parser::split`]).
    pub fn split(&self, registry: &Registry, bytes: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
        match self.choice {
            Choice::Forced(f) => registry.get(f).and_then(|p| p.split(bytes)),
            Choice::Detected(f) => registry.split(bytes, Some(f)),
            Choice::Auto => registry.split(bytes, None),
        }
    }

    /// Normalises the next record of the input.
    pub fn normalise(&mut self, registry: &Registry, record: &Record<'_>) -> Normalised {
        self.observe(registry, record.bytes);
        registry.normalise(record, self.choice)
    }
}

fn done(format: Format, parsed: Parsed) -> Normalised {
    match parsed {
        Parsed::Event(mut e) => {
            e.metadata
                .log_name
                .get_or_insert_with(|| format.name().to_owned());
            Normalised {
                event: Some(e),
                format: Some(format),
                note: None,
            }
        }
        Parsed::NotAnEvent(why) => Normalised {
            event: None,
            format: Some(format),
            note: Some(Note::NotAnEvent(format, why)),
        },
    }
}

fn invalid(record: &Record<'_>, format: Format, why: String) -> Normalised {
    let mut e = Event::unrecognised(record.received_at_ms, b"", format!("{format}: {why}"));
    e.metadata.log_name = Some(format.name().to_owned());
    Normalised {
        event: Some(Box::new(e)),
        format: None,
        note: Some(Note::Invalid(format, why)),
    }
}

fn unrecognised(record: &Record<'_>, why: String) -> Normalised {
    let e = Event::unrecognised(record.received_at_ms, b"", why.clone());
    Normalised {
        event: Some(Box::new(e)),
        format: None,
        note: Some(Note::Unrecognised(why)),
    }
}
