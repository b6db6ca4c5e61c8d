//! PostgreSQL logs: pgaudit `AUDIT:` records, and the connection and authentication lines
//! PostgreSQL itself writes, in its three log outputs.
//!
//! - **stderr** (and files written from it): `<log_line_prefix><SEVERITY>:  <message>`. The
//!   prefix is configurable; time, pid, user, database, client and application are read from it
//!   where it has them: Debian's `%m [%p] %q%u@%d `, RDS' `%t:%r:%u@%d:[%p]:`, `key=value` styles
//!   (`user=%u,db=%d,app=%a,client=%h`), a syslog header. A multi-line message continues on
//!   lines that PostgreSQL starts with a tab; the tab is removed again. psql's client-side form
//!   (`NOTICE:  AUDIT: …`, no prefix) is read too.
//! - **csvlog**: one CSV record per log message (22 to 26 columns by version).
//! - **jsonlog** (PostgreSQL 15+): one JSON object a line.
//!
//! A pgaudit record (`AUDIT: TYPE,STATEMENT_ID,SUBSTATEMENT_ID,CLASS,COMMAND,OBJECT_TYPE,
//! OBJECT_NAME,STATEMENT,PARAMETER[,ROWS]`, itself CSV) becomes a Datastore Activity event, or
//! for the ROLE class an Account Change (`CREATE/ALTER/DROP ROLE`) or User Access Management
//! (`GRANT`/`REVOKE`) event. `log_connections`/`log_disconnections` lines and failed logins
//! become Authentication events; `permission denied` errors become failed Datastore Activity.
//! Other PostgreSQL messages are recognised and reported as no access event. The mapping is
//! documented in `docs/events/pgaudit.md`.
//!
//! Statements that span lines need the framer's [`QuotedNewlines::PGAUDIT`] mode (stderr) or
//! [`QuotedNewlines::Always`] (csvlog) to arrive as one record; a record cut inside its
//! statement is still mapped, with the statement it has and a note.
//!
//! [`QuotedNewlines::PGAUDIT`]: crate::framing::QuotedNewlines::PGAUDIT
//! [`QuotedNewlines::Always`]: crate::framing::QuotedNewlines::Always

use std::borrow::Cow;

use acta_event::{
    Class, Database, Endpoint, Event, Product, QueryInfo, Resource, Session, Severity, Status,
    User, activity,
};
use serde::Deserialize;

use super::time::{parse_rfc3164, parse_rfc3339};
use super::{Format, Parsed, Parser, Probe, Record, Rejection, json};

/// The PostgreSQL / pgaudit parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pgaudit;

const MARKER: &str = "AUDIT: ";

/// Severity words PostgreSQL writes before `:  `, primary messages first.
const SEVERITIES: &[&str] = &[
    "LOG",
    "NOTICE",
    "WARNING",
    "ERROR",
    "FATAL",
    "PANIC",
    "INFO",
    "DEBUG",
    "DEBUG1",
    "DEBUG2",
    "DEBUG3",
    "DEBUG4",
    "DEBUG5",
    "DETAIL",
    "HINT",
    "QUERY",
    "CONTEXT",
    "LOCATION",
    "STATEMENT",
];

/// Secondary lines: part of the message before them.
const SECONDARY: &[&str] = &[
    "DETAIL",
    "HINT",
    "QUERY",
    "CONTEXT",
    "LOCATION",
    "STATEMENT",
];

/// Most fields a csvlog record has (PostgreSQL 14+: 26).
const CSV_MAX_FIELDS: usize = 32;
/// Fields of a pgaudit record: nine, and ROWS with `pgaudit.log_rows`.
const AUDIT_MAX_FIELDS: usize = 10;

/// Which of PostgreSQL's outputs a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Stderr,
    Csv,
    Json,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Stderr => "stderr",
            Form::Csv => "csvlog",
            Form::Json => "jsonlog",
        }
    }
}

type Str<'a> = Option<Cow<'a, str>>;

/// One PostgreSQL log message, whatever the output it came from.
#[derive(Debug, Default)]
struct Entry<'a> {
    form: Option<Form>,
    /// Epoch milliseconds, when readable.
    time: Option<i64>,
    time_text: Str<'a>,
    user: Str<'a>,
    database: Str<'a>,
    pid: Str<'a>,
    host: Str<'a>,
    port: Option<u16>,
    session: Str<'a>,
    session_start: Option<i64>,
    app: Str<'a>,
    backend: Str<'a>,
    command_tag: Str<'a>,
    severity: Cow<'a, str>,
    sql_state: Str<'a>,
    message: Cow<'a, str>,
    detail: Str<'a>,
    query: Str<'a>,
    /// A stderr line with a log_line_prefix (not psql's client-side output).
    prefixed: bool,
    /// The record ends inside a quoted field (cut at a line break).
    cut: bool,
}

impl Parser for Pgaudit {
    fn format(&self) -> Format {
        Format::Pgaudit
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        let b = probe.bytes;
        if b.trim_ascii_start().first() == Some(&b'{') {
            return probe.object().is_some_and(|o| {
                o.contains_key("error_severity")
                    && o.contains_key("message")
                    && o.contains_key("timestamp")
            });
        }
        if looks_csv(b) {
            return true;
        }
        // stderr: a severity word followed by `:  `.
        let Some(head) = b.get(..b.len().min(4096)) else {
            return false;
        };
        let text = String::from_utf8_lossy(head);
        stderr_entry(&text, 0).is_ok_and(|e| e.prefixed || e.message.starts_with(MARKER))
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let bytes = record.bytes;
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                return if self.sniff(&mut Probe::new(bytes)) {
                    Err(Rejection::Invalid(
                        json::utf8(bytes).err().unwrap_or_default(),
                    ))
                } else {
                    Err(Rejection::NotMine)
                };
            }
        };
        let entry = if text.trim_start().starts_with('{') {
            json_entry(text)?
        } else if looks_csv(bytes) {
            csv_entry(text)?
        } else {
            stderr_entry(text, record.received_at_ms)?
        };
        map(entry, text, record)
    }
}

// ---- the three outputs -------------------------------------------------------------------

#[derive(Deserialize)]
struct JsonLog<'a> {
    #[serde(borrow)]
    timestamp: Str<'a>,
    #[serde(borrow)]
    user: Str<'a>,
    #[serde(borrow)]
    dbname: Str<'a>,
    pid: Option<i64>,
    #[serde(borrow)]
    remote_host: Str<'a>,
    remote_port: Option<i64>,
    #[serde(borrow)]
    session_id: Str<'a>,
    #[serde(borrow)]
    session_start: Str<'a>,
    #[serde(borrow)]
    ps: Str<'a>,
    #[serde(borrow)]
    error_severity: Str<'a>,
    #[serde(borrow)]
    state_code: Str<'a>,
    #[serde(borrow)]
    message: Str<'a>,
    #[serde(borrow)]
    detail: Str<'a>,
    #[serde(borrow)]
    statement: Str<'a>,
    #[serde(borrow)]
    application_name: Str<'a>,
    #[serde(borrow)]
    backend_type: Str<'a>,
}

fn json_entry(text: &str) -> Result<Entry<'_>, Rejection> {
    let raw: JsonLog<'_> = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            return if Pgaudit.sniff(&mut Probe::new(text.as_bytes())) {
                Err(Rejection::invalid(format!("unusable jsonlog record: {e}")))
            } else {
                Err(Rejection::NotMine)
            };
        }
    };
    let (Some(severity), Some(message), Some(timestamp)) =
        (raw.error_severity, raw.message, raw.timestamp)
    else {
        return Err(Rejection::NotMine);
    };
    Ok(Entry {
        form: Some(Form::Json),
        time: pg_time(&timestamp),
        time_text: Some(timestamp),
        user: nonempty(raw.user),
        database: nonempty(raw.dbname),
        pid: raw.pid.map(|p| Cow::Owned(p.to_string())),
        host: nonempty(raw.remote_host),
        port: raw.remote_port.and_then(|p| u16::try_from(p).ok()),
        session: nonempty(raw.session_id),
        session_start: raw.session_start.as_deref().and_then(pg_time),
        app: nonempty(raw.application_name),
        backend: nonempty(raw.backend_type),
        command_tag: nonempty(raw.ps),
        severity,
        sql_state: nonempty(raw.state_code),
        message,
        detail: nonempty(raw.detail),
        query: nonempty(raw.statement),
        prefixed: true,
        cut: false,
    })
}

/// Whether a record starts like a csvlog record: a PostgreSQL timestamp, then a comma.
fn looks_csv(b: &[u8]) -> bool {
    let Some(comma) = b.iter().take(64).position(|&c| c == b',') else {
        return false;
    };
    b.get(..comma)
        .and_then(|t| std::str::from_utf8(t).ok())
        .is_some_and(|t| date_time_at(t.as_bytes(), 0) && pg_time_shape(t))
}

fn csv_entry(text: &str) -> Result<Entry<'_>, Rejection> {
    let (fields, cut) = split_csv(text, CSV_MAX_FIELDS);
    let f = |i: usize| -> Str<'_> { fields.get(i).cloned().filter(|s| !s.is_empty()) };
    let severity = f(11).unwrap_or_default();
    if fields.len() < 14 || !SEVERITIES.contains(&severity.as_ref()) {
        return Err(Rejection::NotMine);
    }
    let (host, port) = match f(4) {
        Some(from) => split_host_port(from),
        None => (None, None),
    };
    let time_text = f(0);
    Ok(Entry {
        form: Some(Form::Csv),
        time: time_text.as_deref().and_then(pg_time),
        time_text,
        user: f(1),
        database: f(2),
        pid: f(3),
        host,
        port,
        session: f(5),
        session_start: f(8).as_deref().and_then(pg_time),
        command_tag: f(7),
        severity,
        sql_state: f(12),
        message: f(13).unwrap_or_default(),
        detail: f(14),
        query: f(19),
        app: f(22),
        backend: f(23),
        prefixed: true,
        cut,
    })
}

/// `host:port` as csvlog writes `connection_from` (`[local]` for a Unix socket).
fn split_host_port(from: Cow<'_, str>) -> (Str<'_>, Option<u16>) {
    if let Some((h, p)) = from.rsplit_once(':')
        && let Ok(port) = p.parse::<u16>()
        && !h.is_empty()
    {
        return (Some(Cow::Owned(h.to_owned())), Some(port));
    }
    (Some(from), None)
}

fn stderr_entry(text: &str, received_at_ms: i64) -> Result<Entry<'_>, Rejection> {
    let Some((start, sev, msg)) = severity_at(text) else {
        return Err(Rejection::NotMine);
    };
    let prefix = text.get(..start).unwrap_or_default();
    let raw_message = text.get(msg..).unwrap_or_default();
    let mut e = Entry {
        form: Some(Form::Stderr),
        severity: Cow::Borrowed(sev),
        message: untab(raw_message),
        ..Entry::default()
    };
    read_prefix(prefix, received_at_ms, &mut e);
    Ok(e)
}

/// The first `SEVERITY:  ` in a stderr line: (start of the word, the word, start of the
/// message).
fn severity_at(text: &str) -> Option<(usize, &'static str, usize)> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(b.get(from..)?, b":  ") {
        let colon = from + i;
        let word_start = b
            .get(..colon)?
            .iter()
            .rposition(|c| !c.is_ascii_alphanumeric())
            .map_or(0, |p| p + 1);
        let word = text.get(word_start..colon)?;
        if let Some(sev) = SEVERITIES.iter().find(|s| **s == word) {
            return Some((word_start, sev, colon + 3));
        }
        from = colon + 1;
        if from > 4096 {
            return None;
        }
    }
    None
}

/// A stderr message with the tab PostgreSQL puts after each of its newlines removed (only
/// when every newline has one: otherwise the text was not written that way).
fn untab(msg: &str) -> Cow<'_, str> {
    if !msg.contains('\n') {
        return Cow::Borrowed(msg);
    }
    let all_tabbed = msg
        .match_indices('\n')
        .all(|(i, _)| msg.as_bytes().get(i + 1) == Some(&b'\t'));
    if all_tabbed {
        Cow::Owned(msg.replace("\n\t", "\n"))
    } else {
        Cow::Borrowed(msg)
    }
}

/// Reads what a log_line_prefix holds: time, pid, `user@db`, `key=value` pairs, `host(port)`.
fn read_prefix<'a>(prefix: &'a str, received_at_ms: i64, e: &mut Entry<'a>) {
    let b = prefix.as_bytes();
    // Time: `%m`/`%t` anywhere (after a syslog header, say), else a syslog stamp, else `%n`.
    if let Some(i) = (0..b.len()).find(|&i| date_time_at(b, i)) {
        let t = time_token(prefix.get(i..).unwrap_or_default());
        e.time = pg_time(t);
        e.time_text = Some(Cow::Borrowed(t));
    } else if let Some((ms, n)) = parse_rfc3164(b, received_at_ms) {
        e.time = Some(ms);
        e.time_text = prefix.get(..n).map(Cow::Borrowed);
    } else {
        let digits = b
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == b'.')
            .count();
        if digits >= 10 {
            let t = prefix.get(..digits).unwrap_or_default();
            e.time = t.parse::<f64>().ok().and_then(super::time::epoch_to_ms);
            e.time_text = Some(Cow::Borrowed(t));
        }
    }
    for token in prefix.split(|c: char| c.is_whitespace() || c == ',') {
        if let Some((k, v)) = token.split_once('=') {
            let v = v.trim_end_matches([':', ';']);
            if v.is_empty() || v == "[unknown]" {
                continue;
            }
            match k.to_ascii_lowercase().as_str() {
                "user" | "usr" | "u" | "username" | "user_name" => e.user = Some(Cow::Borrowed(v)),
                "db" | "database" | "dbname" | "d" => e.database = Some(Cow::Borrowed(v)),
                "app" | "application" | "application_name" | "appname" | "a" => {
                    e.app = Some(Cow::Borrowed(v));
                }
                "client" | "host" | "remote" | "rhost" | "h" | "client_addr" | "remote_host"
                | "r" => {
                    let (h, p) = host_paren_port(v);
                    e.host = Some(Cow::Borrowed(h));
                    e.port = e.port.or(p);
                }
                "pid" | "p" => e.pid = Some(Cow::Borrowed(v)),
                "session" | "sess" | "session_id" | "c" => e.session = Some(Cow::Borrowed(v)),
                _ => {}
            }
        }
    }
    // `user@db`: a run around `@` between separators, split at its last `@`.
    let is_sep = |c: char| c.is_whitespace() || c == ':' || c == ',';
    for run in prefix.split(is_sep) {
        if run.contains('=') {
            continue;
        }
        if let Some((u, d)) = run.rsplit_once('@') {
            if e.user.is_none() && !u.is_empty() && u != "[unknown]" {
                e.user = Some(Cow::Borrowed(u));
            }
            if e.database.is_none() && !d.is_empty() && d != "[unknown]" {
                e.database = Some(Cow::Borrowed(d));
            }
            break;
        }
    }
    // pid: the first `[digits]`.
    if e.pid.is_none() {
        let mut rest = prefix;
        while let Some(open) = rest.find('[') {
            let after = rest.get(open + 1..).unwrap_or_default();
            let Some(close) = after.find(']') else { break };
            let inner = after.get(..close).unwrap_or_default();
            if !inner.is_empty() && inner.bytes().all(|c| c.is_ascii_digit()) {
                e.pid = Some(Cow::Borrowed(inner));
                break;
            }
            rest = after.get(close + 1..).unwrap_or_default();
        }
    }
    // `%r`: `host(port)`, or `[local]`.
    if e.host.is_none() {
        if prefix.contains("[local]") {
            e.host = Some(Cow::Borrowed("[local]"));
        } else if let Some(open) = prefix.find('(') {
            let before = prefix.get(..open).unwrap_or_default();
            let from = before
                .rfind(|c: char| c.is_whitespace() || c == '@' || c == ',' || c == '[')
                .map_or(0, |i| i + 1);
            let to = prefix
                .get(open..)
                .and_then(|r| r.find(')'))
                .map_or(prefix.len(), |i| open + i + 1);
            let (h, p) = host_paren_port(prefix.get(from..to).unwrap_or_default());
            // Colons separate RDS prefix fields: the host is the longest address after one.
            if let Some(host) = ip_suffix(h) {
                e.host = Some(Cow::Borrowed(host));
                e.port = e.port.or(p);
            }
        }
    }
    e.prefixed =
        e.time_text.is_some() || e.pid.is_some() || e.user.is_some() || e.database.is_some();
}

/// `10.0.0.1(5432)` → (`10.0.0.1`, 5432); anything else as it is.
fn host_paren_port(s: &str) -> (&str, Option<u16>) {
    if let Some(open) = s.find('(')
        && let Some(port) = s.get(open + 1..).and_then(|r| r.strip_suffix(')'))
    {
        return (s.get(..open).unwrap_or_default(), port.parse().ok());
    }
    (s, None)
}

/// The longest suffix of `s` after a `:` (or all of it) that is an IP address.
fn ip_suffix(s: &str) -> Option<&str> {
    if json::is_ip(s) {
        return Some(s);
    }
    s.match_indices(':')
        .map(|(i, _)| s.get(i + 1..).unwrap_or_default())
        .find(|t| json::is_ip(t))
}

// ---- time ------------------------------------------------------------------------------

/// `YYYY-MM-DD HH:MM:SS` at `b[i..]`.
fn date_time_at(b: &[u8], i: usize) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-dd dd:dd:dd";
    let Some(s) = b.get(i..i + SHAPE.len()) else {
        return false;
    };
    s.iter().zip(SHAPE).all(|(c, p)| match p {
        b'd' => c.is_ascii_digit(),
        _ => c == p,
    })
}

/// Whether `t` is exactly one PostgreSQL timestamp (`%m`/`%t`), zone included.
fn pg_time_shape(t: &str) -> bool {
    time_token(t).len() == t.len()
}

/// The timestamp at the start of `s`: date, time, fraction, and a zone word if one follows.
fn time_token(s: &str) -> &str {
    let b = s.as_bytes();
    let mut end = 19.min(b.len());
    if b.get(end) == Some(&b'.') {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    if b.get(end) == Some(&b' ') {
        let rest = b.get(end + 1..).unwrap_or_default();
        let zone = match rest.first() {
            Some(b'+' | b'-') => {
                1 + rest
                    .iter()
                    .skip(1)
                    .take_while(|c| c.is_ascii_digit() || **c == b':')
                    .count()
            }
            _ => {
                // An abbreviation, known or not: capitals, not a `USER@db` field.
                let n = rest.iter().take_while(|c| c.is_ascii_uppercase()).count();
                if n <= 6 && rest.get(n) != Some(&b'@') {
                    n
                } else {
                    0
                }
            }
        };
        let word = s.get(end + 1..end + 1 + zone).unwrap_or_default();
        let word = word.trim_end_matches(':');
        if !word.is_empty() {
            end += 1 + word.len();
        }
    }
    s.get(..end).unwrap_or(s)
}

/// A PostgreSQL timestamp (`2024-05-01 10:00:00.123 UTC`, `… +02`, `… CEST`) in epoch ms.
fn pg_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (dt, zone) = match s.get(19..) {
        Some(rest) => {
            let frac = rest
                .bytes()
                .take_while(|c| *c == b'.' || c.is_ascii_digit())
                .count();
            let cut = 19 + frac;
            (s.get(..cut)?, s.get(cut..)?.trim())
        }
        None => return None,
    };
    let base = parse_rfc3339(&format!("{dt}Z"))?;
    let offset = if zone.is_empty() {
        0
    } else {
        zone_offset_min(zone)?
    };
    Some(base - offset * 60_000)
}

/// Minutes east of UTC for the zone names PostgreSQL writes: numeric offsets (`+02`, `-0530`,
/// `+05:30`) and common abbreviations.
fn zone_offset_min(z: &str) -> Option<i64> {
    if let Some(sign @ (b'+' | b'-')) = z.as_bytes().first().copied() {
        let digits: String = z.get(1..)?.chars().filter(|c| *c != ':').collect();
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let (h, m) = match digits.len() {
            1 | 2 => (digits.parse::<i64>().ok()?, 0),
            3 => (
                digits.get(..1)?.parse().ok()?,
                digits.get(1..)?.parse().ok()?,
            ),
            _ => (
                digits.get(..2)?.parse().ok()?,
                digits.get(2..)?.parse().ok()?,
            ),
        };
        let v = h * 60 + m;
        return Some(if sign == b'-' { -v } else { v });
    }
    const ZONES: &[(&str, i64)] = &[
        ("UTC", 0),
        ("GMT", 0),
        ("Z", 0),
        ("UCT", 0),
        ("WET", 0),
        ("WEST", 60),
        ("BST", 60),
        ("CET", 60),
        ("CEST", 120),
        ("MET", 60),
        ("MEST", 120),
        ("EET", 120),
        ("EEST", 180),
        ("MSK", 180),
        ("IST", 330),
        ("SGT", 480),
        ("HKT", 480),
        ("AWST", 480),
        ("JST", 540),
        ("KST", 540),
        ("ACST", 570),
        ("AEST", 600),
        ("AEDT", 660),
        ("NZST", 720),
        ("NZDT", 780),
        ("AST", -240),
        ("ADT", -180),
        ("EST", -300),
        ("EDT", -240),
        ("CST", -360),
        ("CDT", -300),
        ("MST", -420),
        ("MDT", -360),
        ("PST", -480),
        ("PDT", -420),
        ("AKST", -540),
        ("AKDT", -480),
        ("HST", -600),
    ];
    ZONES.iter().find(|(n, _)| *n == z).map(|(_, o)| *o)
}

// ---- CSV ---------------------------------------------------------------------------------

/// Splits one CSV record into at most `max` fields (the rest is ignored). Quoted fields are
/// unquoted (`""` → `"`); text after a closing quote is kept as it is. Returns whether the
/// record ends inside a quoted field.
fn split_csv(s: &str, max: usize) -> (Vec<Cow<'_, str>>, bool) {
    let b = s.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        if fields.len() == max {
            return (fields, false);
        }
        if b.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let mut owned: Option<String> = None;
            let mut closed = false;
            while let Some(off) = b.get(j..).and_then(|r| memchr::memchr(b'"', r)) {
                let q = j + off;
                if b.get(q + 1) == Some(&b'"') {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(s.get(j..=q).unwrap_or_default());
                    j = q + 2;
                } else {
                    if let Some(o) = owned.as_mut() {
                        o.push_str(s.get(j..q).unwrap_or_default());
                    }
                    j = q + 1;
                    closed = true;
                    break;
                }
            }
            if !closed {
                let tail = s.get(j..).unwrap_or_default();
                let v = match owned {
                    Some(mut o) => {
                        o.push_str(tail);
                        Cow::Owned(o)
                    }
                    None => Cow::Borrowed(s.get(start..).unwrap_or_default()),
                };
                fields.push(v);
                return (fields, true);
            }
            let mut v = match owned {
                Some(o) => Cow::Owned(o),
                None => Cow::Borrowed(s.get(start..j - 1).unwrap_or_default()),
            };
            // Stray text after the closing quote belongs to the field.
            let end = b
                .get(j..)
                .and_then(|r| memchr::memchr(b',', r))
                .map_or(b.len(), |k| j + k);
            if end > j {
                v.to_mut().push_str(s.get(j..end).unwrap_or_default());
            }
            fields.push(v);
            if end >= b.len() {
                return (fields, false);
            }
            i = end + 1;
        } else {
            let end = b
                .get(i..)
                .and_then(|r| memchr::memchr(b',', r))
                .map_or(b.len(), |k| i + k);
            fields.push(Cow::Borrowed(s.get(i..end).unwrap_or_default()));
            if end >= b.len() {
                return (fields, false);
            }
            i = end + 1;
        }
    }
}

// ---- mapping -----------------------------------------------------------------------------

/// A parsed pgaudit record.
struct Audit<'a> {
    audit_type: Cow<'a, str>,
    statement_id: Cow<'a, str>,
    substatement_id: Cow<'a, str>,
    class: Cow<'a, str>,
    command: Cow<'a, str>,
    object_type: Cow<'a, str>,
    object_name: Cow<'a, str>,
    statement: Option<Cow<'a, str>>,
    parameter: Option<Cow<'a, str>>,
    rows: Option<Cow<'a, str>>,
    cut: bool,
}

fn audit(payload: &str) -> Result<Audit<'_>, String> {
    let (mut fields, cut) = split_csv(payload, AUDIT_MAX_FIELDS);
    if fields.len() < 8 {
        return Err(format!(
            "AUDIT record has {} fields, expected at least 8",
            fields.len()
        ));
    }
    let mut take = |i: usize| fields.get_mut(i).map(std::mem::take);
    let audit_type = take(0).unwrap_or_default();
    if audit_type != "SESSION" && audit_type != "OBJECT" {
        return Err(format!(
            "AUDIT type `{}` is neither SESSION nor OBJECT",
            clip(&audit_type)
        ));
    }
    let statement_id = take(1).unwrap_or_default();
    let substatement_id = take(2).unwrap_or_default();
    for id in [&statement_id, &substatement_id] {
        if id.is_empty() || !id.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("AUDIT statement id `{}` is not a number", clip(id)));
        }
    }
    let class = take(3).unwrap_or_default();
    let command = take(4).unwrap_or_default();
    if class.is_empty() || command.is_empty() {
        return Err("AUDIT record without class or command".into());
    }
    Ok(Audit {
        audit_type,
        statement_id,
        substatement_id,
        class,
        command,
        object_type: take(5).unwrap_or_default(),
        object_name: take(6).unwrap_or_default(),
        statement: take(7),
        parameter: take(8),
        rows: take(9),
        cut,
    })
}

/// At most 40 characters of `s`, for error messages.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

fn nonempty(s: Str<'_>) -> Str<'_> {
    s.filter(|v| !v.is_empty())
}

fn own(s: &Str<'_>) -> Option<String> {
    s.as_deref().filter(|v| !v.is_empty()).map(str::to_owned)
}

fn map(entry: Entry<'_>, raw: &str, record: &Record<'_>) -> Result<Parsed, Rejection> {
    let message = entry.message.as_ref();
    let severity = entry.severity.as_ref();
    if let Some(payload) = message.strip_prefix(MARKER) {
        let a = audit(payload).map_err(Rejection::Invalid)?;
        return Ok(Parsed::Event(Box::new(audit_event(
            &entry, &a, raw, record,
        ))));
    }
    // psql's client-side output of anything but AUDIT records is not a log.
    if entry.form == Some(Form::Stderr) && !entry.prefixed {
        return Err(Rejection::NotMine);
    }
    if SECONDARY.contains(&severity) {
        return Ok(Parsed::NotAnEvent(
            "PostgreSQL message detail (belongs to the message before it)",
        ));
    }
    if let Some(e) = connection_event(&entry, raw, record) {
        return Ok(Parsed::Event(Box::new(e)));
    }
    if severity == "ERROR"
        && let Some(what) = message.strip_prefix("permission denied for ")
    {
        return Ok(Parsed::Event(Box::new(denied_event(
            &entry, what, raw, record,
        ))));
    }
    Ok(Parsed::NotAnEvent(
        "PostgreSQL log message that is no access event (not pgaudit, not a connection)",
    ))
}

/// The fields every event from a PostgreSQL message shares.
fn base(entry: &Entry<'_>, class: Class, raw: &str, record: &Record<'_>) -> Event {
    let mut e = Event::new(
        class,
        entry.time.unwrap_or(record.received_at_ms),
        raw.to_owned(),
    );
    e.severity = Severity::Informational;
    e.metadata.original_time = own(&entry.time_text);
    if entry.time.is_none() {
        e.unmap(
            "acta_time_note",
            if entry.time_text.is_some() {
                "log time unreadable (unknown zone?); time of receipt used"
            } else {
                "no log time in the record (log_line_prefix without %m/%t?); time of receipt used"
            },
        );
    }
    if let Some(u) = own(&entry.user) {
        e.actor_user().name = Some(u);
    }
    if entry.session.is_some() || entry.session_start.is_some() {
        e.actor.session = Some(Session {
            uid: own(&entry.session),
            created_time: entry.session_start,
            ..Session::default()
        });
    }
    e.actor.app_name = own(&entry.app);
    if let Some(h) = own(&entry.host) {
        let ep = e.src_endpoint.get_or_insert_with(Endpoint::default);
        if json::is_ip(&h) {
            ep.ip = Some(h);
        } else if h == "[local]" {
            e.unmap("client", "local socket");
        } else {
            ep.hostname = Some(h);
        }
    }
    if let Some(p) = entry.port {
        e.src_endpoint.get_or_insert_with(Endpoint::default).port = Some(p);
    }
    if entry.database.is_some() {
        e.database = Some(Database {
            name: own(&entry.database),
            r#type: Some("PostgreSQL".into()),
        });
    }
    e.api_mut().set_service("postgresql");
    e.metadata.product = Some(Product::new("PostgreSQL", "PostgreSQL"));
    if let Some(form) = entry.form {
        let name = if form == Form::Stderr && !entry.prefixed {
            "client"
        } else {
            form.name()
        };
        e.unmap("log_output", name);
    }
    e.unmap("log_severity", entry.severity.as_ref());
    if let Some(p) = own(&entry.pid) {
        e.unmap("pid", p);
    }
    if let Some(b) = own(&entry.backend) {
        e.unmap("backend_type", b);
    }
    if entry.cut {
        e.unmap(
            "acta_cut_note",
            "record ends inside a quoted field (cut at a line break): later fields missing",
        );
    }
    e
}

fn audit_event(entry: &Entry<'_>, a: &Audit<'_>, raw: &str, record: &Record<'_>) -> Event {
    let command = a.command.as_ref();
    let statement = a
        .statement
        .as_deref()
        .filter(|s| !s.is_empty() && !matches!(*s, "<previously logged>" | "<not logged>"));
    let (class, activity_id) = audit_class(&a.class, command, statement);
    let mut e = base(entry, class, raw, record);
    e.activity_id = activity_id;
    e.status = Status::Success;
    e.api_mut().operation = Some(command.to_owned());
    e.metadata.event_code = Some(a.class.to_string());
    if let Some(s) = statement {
        e.query_info = Some(QueryInfo {
            query_string: Some(s.to_owned()),
        });
    }
    if !a.object_name.is_empty() {
        e.resources
            .push(object_resource(&a.object_type, &a.object_name));
    } else if let Some(s) = statement
        && matches!(command, "GRANT" | "REVOKE")
        && let Some(target) = grant_object(s)
    {
        let kind = if a.object_type.is_empty() {
            "OBJECT"
        } else {
            a.object_type.as_ref()
        };
        e.resources.push(object_resource(kind, &target));
    }
    if matches!(class, Class::AccountChange | Class::UserAccessManagement)
        && let Some(s) = statement
        && let Some(role) = role_target(command, s)
    {
        e.user = Some(User {
            name: Some(role),
            ..User::default()
        });
    }
    let session = entry
        .session
        .as_deref()
        .map(str::to_owned)
        .or_else(|| entry.pid.as_deref().map(|p| format!("pid-{p}")));
    if let Some(s) = session {
        e.metadata.correlation_uid = Some(format!("{s}/{}", a.statement_id));
    }
    e.unmap("audit_type", a.audit_type.as_ref());
    e.unmap("audit_class", a.class.as_ref());
    e.unmap("statement_id", a.statement_id.as_ref());
    e.unmap("substatement_id", a.substatement_id.as_ref());
    if let Some(p) = a.parameter.as_deref().filter(|p| !p.is_empty()) {
        e.unmap("parameter", p);
    }
    if let Some(r) = a.rows.as_deref().filter(|r| !r.is_empty()) {
        e.unmap("rows", r);
    }
    if a.statement.as_deref() == Some("<previously logged>") {
        e.unmap(
            "statement_note",
            "statement logged with an earlier record of the same statement id",
        );
    }
    if a.cut {
        e.unmap(
            "acta_cut_note",
            "AUDIT record ends inside a quoted field (cut at a line break): statement truncated",
        );
    }
    e.message = Some(audit_message(&e, command, &a.object_name));
    e
}

fn audit_message(e: &Event, command: &str, object: &str) -> String {
    let who = e.who();
    let mut m = format!("{who} ran {command}");
    if !object.is_empty() {
        m.push_str(" on ");
        m.push_str(object);
    } else if let Some(r) = e.resources.first().and_then(|r| r.uid.as_deref()) {
        m.push_str(" on ");
        m.push_str(r);
    }
    if let Some(u) = e.user.as_ref().and_then(|u| u.name.as_deref()) {
        m.push_str(" for role ");
        m.push_str(u);
    }
    if let Some(db) = e.database.as_ref().and_then(|d| d.name.as_deref()) {
        m.push_str(" in ");
        m.push_str(db);
    }
    m
}

/// The OCSF class and activity of a pgaudit record: see `docs/events/pgaudit.md`.
fn audit_class(class: &str, command: &str, statement: Option<&str>) -> (Class, u8) {
    // Datastore Activity ids.
    const READ: u8 = 1;
    const UPDATE: u8 = 2;
    const WRITE: u8 = 5;
    const CREATE: u8 = 6;
    const DELETE: u8 = 7;
    let first = command.split(' ').next().unwrap_or_default();
    match class {
        "READ" => (Class::DatastoreActivity, READ),
        "WRITE" => (
            Class::DatastoreActivity,
            match first {
                "UPDATE" => UPDATE,
                "DELETE" | "TRUNCATE" => DELETE,
                _ => WRITE,
            },
        ),
        "DDL" => (
            Class::DatastoreActivity,
            match first {
                "CREATE" | "SELECT" => CREATE,
                "DROP" => DELETE,
                "ALTER" | "COMMENT" | "SECURITY" | "REFRESH" | "CLUSTER" | "IMPORT" => UPDATE,
                _ => activity::OTHER,
            },
        ),
        "ROLE" => match command {
            "GRANT" | "GRANT ROLE" => (Class::UserAccessManagement, 1),
            "REVOKE" | "REVOKE ROLE" => (Class::UserAccessManagement, 2),
            "CREATE ROLE" => (Class::AccountChange, 1),
            "DROP ROLE" => (Class::AccountChange, 6),
            "ALTER ROLE" => {
                let s = statement.unwrap_or_default().to_ascii_uppercase();
                let words: Vec<&str> = s
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .collect();
                let activity_id = if words.contains(&"PASSWORD") {
                    3
                } else if words.contains(&"NOLOGIN") {
                    5
                } else if words.contains(&"LOGIN") {
                    2
                } else {
                    activity::OTHER
                };
                (Class::AccountChange, activity_id)
            }
            _ => (Class::UserAccessManagement, activity::OTHER),
        },
        _ => (Class::DatastoreActivity, activity::OTHER),
    }
}

/// pgaudit's OBJECT_TYPE/OBJECT_NAME as a resource: `schema.name` split into namespace and
/// name (double-quoted identifiers unquoted); the full name as written is the uid.
fn object_resource(kind: &str, full: &str) -> Resource {
    let (ns, name) = match split_qualified(full) {
        Some((ns, name)) => (Some(unquote_ident(ns)), unquote_ident(name)),
        None => (None, unquote_ident(full)),
    };
    Resource {
        uid: Some(full.to_owned()),
        name: Some(name),
        r#type: Some(kind.to_owned()),
        namespace: ns,
        ..Resource::default()
    }
}

/// `schema.rest` at the first dot outside double quotes and parentheses.
fn split_qualified(s: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    let mut depth = 0u32;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            '.' if !quoted && depth == 0 => {
                return Some((s.get(..i)?, s.get(i + 1..)?));
            }
            _ => {}
        }
    }
    None
}

fn unquote_ident(s: &str) -> String {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() => inner.replace("\"\"", "\""),
        _ => s.to_owned(),
    }
}

/// The index of the quote closing the one at `open` (SQL doubling `""`/`''` escapes it), or
/// `b.len()` when the text ends first.
fn closing_quote(b: &[u8], open: usize) -> usize {
    let q = b.get(open).copied().unwrap_or(b'"');
    let mut j = open + 1;
    while let Some(&d) = b.get(j) {
        if d == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j;
        }
        j += 1;
    }
    j
}

/// SQL words, double-quoted identifiers and single punctuation, enough to find role and object
/// names in role statements. String literals and comments are skipped.
fn sql_tokens(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if out.len() > 256 {
            break;
        }
        match c {
            b'"' => {
                let j = closing_quote(b, i);
                out.push(s.get(i..(j + 1).min(b.len())).unwrap_or_default());
                i = j + 1;
            }
            b'\'' => i = closing_quote(b, i) + 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = memchr::memchr(b'\n', b.get(i..).unwrap_or_default())
                    .map_or(b.len(), |k| i + k);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = memchr::memmem::find(b.get(i + 2..).unwrap_or_default(), b"*/")
                    .map_or(b.len(), |k| i + 2 + k + 2);
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                let j = b
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .position(|&d| {
                        !(d.is_ascii_alphanumeric() || d == b'_' || d == b'$' || d >= 0x80)
                    })
                    .map_or(b.len(), |k| i + k);
                out.push(s.get(i..j).unwrap_or_default());
                i = j;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                out.push(s.get(i..i + 1).unwrap_or_default());
                i += 1;
            }
        }
    }
    out
}

fn is_kw(t: &str, kw: &str) -> bool {
    t.eq_ignore_ascii_case(kw)
}

/// The role a role statement acts on: the first name after `CREATE/ALTER/DROP ROLE|USER|GROUP
/// [IF EXISTS]`, or the first grantee after the last `TO` (GRANT) or `FROM` (REVOKE).
fn role_target(command: &str, statement: &str) -> Option<String> {
    let t = sql_tokens(statement);
    let name = match command {
        "CREATE ROLE" | "ALTER ROLE" | "DROP ROLE" => {
            let k = t
                .iter()
                .position(|w| is_kw(w, "ROLE") || is_kw(w, "USER") || is_kw(w, "GROUP"))?;
            let mut rest = t.get(k + 1..)?.iter();
            let mut n = rest.next()?;
            if is_kw(n, "IF") {
                rest.next();
                n = rest.next()?;
            }
            *n
        }
        "GRANT" | "GRANT ROLE" | "REVOKE" | "REVOKE ROLE" => {
            let kw = if command.starts_with("GRANT") {
                "TO"
            } else {
                "FROM"
            };
            let k = t.iter().rposition(|w| is_kw(w, kw))?;
            let mut rest = t.get(k + 1..)?.iter();
            let mut n = rest.next()?;
            if is_kw(n, "GROUP") {
                n = rest.next()?;
            }
            *n
        }
        _ => return None,
    };
    if name.len() == 1 && !name.as_bytes().first()?.is_ascii_alphanumeric() {
        return None;
    }
    Some(unquote_ident(name))
}

/// The object of `GRANT … ON [kind] name …` (pgaudit gives no OBJECT_NAME for grants).
fn grant_object(statement: &str) -> Option<String> {
    const KINDS: &[&str] = &[
        "TABLE",
        "SEQUENCE",
        "SCHEMA",
        "DATABASE",
        "FUNCTION",
        "PROCEDURE",
        "ROUTINE",
        "LANGUAGE",
        "TABLESPACE",
        "TYPE",
        "DOMAIN",
        "FOREIGN",
        "LARGE",
        "PARAMETER",
    ];
    let t = sql_tokens(statement);
    let on = t.iter().position(|w| is_kw(w, "ON"))?;
    let mut i = on + 1;
    if t.get(i).is_some_and(|w| is_kw(w, "ALL")) {
        // ALL TABLES IN SCHEMA s
        let schema = t.iter().skip(i).position(|w| is_kw(w, "SCHEMA"))?;
        return t.get(i + schema + 1).map(|s| unquote_ident(s));
    }
    while t.get(i).is_some_and(|w| {
        KINDS.iter().any(|k| is_kw(w, k))
            || is_kw(w, "DATA")
            || is_kw(w, "WRAPPER")
            || is_kw(w, "SERVER")
            || is_kw(w, "OBJECT")
    }) {
        i += 1;
    }
    let mut name = String::new();
    while let Some(w) = t.get(i) {
        if is_kw(w, "TO") || is_kw(w, "FROM") || *w == "," || *w == "(" || *w == ";" {
            break;
        }
        name.push_str(w);
        i += 1;
    }
    (!name.is_empty()).then_some(name)
}

/// Connection, disconnection and login failure lines (`log_connections`,
/// `log_disconnections`): Authentication events.
fn connection_event(entry: &Entry<'_>, raw: &str, record: &Record<'_>) -> Option<Event> {
    let m = entry.message.as_ref();
    let sev = entry.severity.as_ref();
    let (activity_id, status, code, kv) = if let Some(rest) = m
        .strip_prefix("connection authorized: ")
        .or_else(|| m.strip_prefix("replication connection authorized: "))
    {
        (
            activity::LOGON,
            Status::Success,
            "connection authorized",
            rest,
        )
    } else if let Some(rest) = m.strip_prefix("connection authenticated: ") {
        (
            activity::OTHER,
            Status::Success,
            "connection authenticated",
            rest,
        )
    } else if let Some(rest) = m.strip_prefix("connection received: ") {
        (
            activity::OTHER,
            Status::Unknown,
            "connection received",
            rest,
        )
    } else if let Some(rest) = m.strip_prefix("disconnection: ") {
        (activity::LOGOFF, Status::Success, "disconnection", rest)
    } else if sev == "FATAL" && is_login_failure(m) {
        (activity::LOGON, Status::Failure, "login failed", "")
    } else {
        return None;
    };
    let mut e = base(entry, Class::Authentication, raw, record);
    e.activity_id = activity_id;
    e.status = status;
    e.metadata.event_code = Some(code.to_owned());
    e.api_mut().operation = Some(code.to_owned());
    let mut user = None;
    if let Some(t) = kv.strip_prefix("session time: ") {
        e.unmap("session_time", t.split(' ').next().unwrap_or_default());
    }
    for (k, v) in pairs(kv) {
        match k {
            "user" => user = Some(v.to_owned()),
            "database" => {
                let db = e.database.get_or_insert_with(Database::default);
                db.name.get_or_insert_with(|| v.to_owned());
                db.r#type = Some("PostgreSQL".into());
            }
            "application_name" => {
                e.actor.app_name.get_or_insert_with(|| v.to_owned());
            }
            "host" => {
                let ep = e.src_endpoint.get_or_insert_with(Endpoint::default);
                if json::is_ip(v) {
                    ep.ip.get_or_insert_with(|| v.to_owned());
                } else if v == "[local]" {
                    e.unmap("client", "local socket");
                } else {
                    ep.hostname.get_or_insert_with(|| v.to_owned());
                }
            }
            "port" => {
                if let Ok(p) = v.parse::<u16>() {
                    e.src_endpoint.get_or_insert_with(Endpoint::default).port = Some(p);
                }
            }
            "identity" => user = user.or_else(|| Some(v.trim_matches('"').to_owned())),
            "method" => e.unmap("auth_method", v),
            _ => {}
        }
    }
    if status == Status::Failure {
        e.status_detail = Some(m.to_owned());
        e.status_code = own(&entry.sql_state);
        user = user
            .or_else(|| quoted_after(m, "user \""))
            .or_else(|| quoted_after(m, "role \""));
        if let Some(db) = quoted_after(m, "database \"") {
            let d = e.database.get_or_insert_with(Database::default);
            d.name.get_or_insert(db);
            d.r#type = Some("PostgreSQL".into());
        }
        if let Some(h) = quoted_after(m, "host \"") {
            let ep = e.src_endpoint.get_or_insert_with(Endpoint::default);
            if json::is_ip(&h) {
                ep.ip.get_or_insert(h);
            }
        }
        if let Some(d) = own(&entry.detail) {
            e.unmap("detail", d);
        }
        e.severity = Severity::Low;
    }
    let name = user.or_else(|| own(&entry.user));
    if let Some(n) = name {
        e.actor_user().name = Some(n.clone());
        e.user = Some(User {
            name: Some(n),
            ..User::default()
        });
    }
    let who = e
        .user
        .as_ref()
        .and_then(|u| u.name.as_deref())
        .unwrap_or("someone");
    let from = e
        .src_endpoint
        .as_ref()
        .and_then(|s| s.ip.as_deref().or(s.hostname.as_deref()))
        .map(|h| format!(" from {h}"))
        .unwrap_or_default();
    e.message = Some(match (activity_id, status) {
        (_, Status::Failure) => format!("{who} failed to log in{from}: {m}"),
        (activity::LOGON, _) => format!("{who} logged in{from}"),
        (activity::LOGOFF, _) => format!("{who} disconnected{from}"),
        _ => format!("{code}{from}"),
    });
    Some(e)
}

fn is_login_failure(m: &str) -> bool {
    m.contains("authentication failed for user \"")
        || m.starts_with("no pg_hba.conf entry for ")
        || m.starts_with("pg_hba.conf rejects connection")
        || (m.starts_with("role \"") && m.ends_with("\" does not exist"))
        || (m.starts_with("role \"") && m.ends_with("\" is not permitted to log in"))
        || (m.starts_with("database \"") && m.ends_with("\" does not exist"))
}

/// `key=value` words of a connection message (values end at a space).
fn pairs(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split(' ').filter_map(|w| w.split_once('='))
}

/// The text between `lead` and the next `"` in `m`.
fn quoted_after(m: &str, lead: &str) -> Option<String> {
    let start = m.find(lead)? + lead.len();
    let rest = m.get(start..)?;
    let end = rest.find('"')?;
    rest.get(..end).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `ERROR:  permission denied for table x`: an access refused.
fn denied_event(entry: &Entry<'_>, what: &str, raw: &str, record: &Record<'_>) -> Event {
    let mut e = base(entry, Class::DatastoreActivity, raw, record);
    e.activity_id = activity::UNKNOWN;
    e.status = Status::Failure;
    e.severity = Severity::Low;
    e.status_code = own(&entry.sql_state).or_else(|| Some("42501".into()));
    e.status_detail = Some(entry.message.to_string());
    e.metadata.event_code = Some("permission denied".into());
    if let Some(tag) = own(&entry.command_tag).filter(|t| t != "idle" && t != "authentication") {
        e.api_mut().operation = Some(tag);
    }
    if let Some((kind, name)) = what.split_once(' ') {
        e.resources
            .push(object_resource(&kind.to_ascii_uppercase(), name.trim()));
    }
    if let Some(q) = own(&entry.query) {
        e.query_info = Some(QueryInfo {
            query_string: Some(q),
        });
    }
    let who = e.who();
    e.message = Some(format!(
        "{who} was denied access: permission denied for {what}"
    ));
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const T0: i64 = 1_714_557_600_000; // 2024-05-01T10:00:00Z

    fn parse(s: &str) -> Result<Parsed, Rejection> {
        Pgaudit.parse(&Record {
            bytes: s.as_bytes(),
            received_at_ms: 7,
        })
    }

    fn event(s: &str) -> Value {
        match parse(s) {
            Ok(Parsed::Event(e)) => serde_json::from_str(&e.to_json()).unwrap(),
            other => panic!("not an event: {other:?} for {s}"),
        }
    }

    fn str_at<'v>(v: &'v Value, path: &str) -> &'v str {
        path.split('.')
            .try_fold(v, |v, k| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    #[test]
    fn debian_stderr_audit_line() {
        let v = event(
            "2024-05-01 10:00:00.123 UTC [4242] alice@shop LOG:  AUDIT: SESSION,7,1,READ,SELECT,TABLE,public.accounts,\"select id, name from accounts\",<not logged>",
        );
        assert_eq!(v["time"], T0 + 123);
        assert_eq!(v["class_uid"], 6005);
        assert_eq!(v["activity_name"], "Read");
        assert_eq!(v["status"], "Success");
        assert_eq!(str_at(&v, "actor.user.name"), "alice");
        assert_eq!(str_at(&v, "database.name"), "shop");
        assert_eq!(str_at(&v, "database.type"), "PostgreSQL");
        assert_eq!(str_at(&v, "api.operation"), "SELECT");
        assert_eq!(str_at(&v, "api.service.name"), "postgresql");
        assert_eq!(
            str_at(&v, "query_info.query_string"),
            "select id, name from accounts"
        );
        assert_eq!(v["resources"][0]["name"], "accounts");
        assert_eq!(v["resources"][0]["namespace"], "public");
        assert_eq!(v["resources"][0]["type"], "TABLE");
        assert_eq!(str_at(&v, "metadata.correlation_uid"), "pid-4242/7");
        assert_eq!(
            str_at(&v, "metadata.original_time"),
            "2024-05-01 10:00:00.123 UTC"
        );
        assert_eq!(v["unmapped"]["pid"], "4242");
        assert_eq!(v["unmapped"]["audit_type"], "SESSION");
        assert_eq!(v["unmapped"]["parameter"], "<not logged>");
    }

    #[test]
    fn multi_line_statement_in_stderr_loses_postgres_tabs() {
        let v = event(
            "2024-05-01 10:00:00.000 UTC [1] bob@db LOG:  AUDIT: SESSION,2,1,DDL,CREATE TABLE,TABLE,public.\"Odd.Name\",\"CREATE TABLE \"\"Odd.Name\"\"\n\t(\n\t\tid int\n\t)\",<not logged>",
        );
        assert_eq!(
            str_at(&v, "query_info.query_string"),
            "CREATE TABLE \"Odd.Name\"\n(\n\tid int\n)"
        );
        assert_eq!(v["activity_name"], "Create");
        assert_eq!(v["resources"][0]["name"], "Odd.Name");
        assert_eq!(v["resources"][0]["namespace"], "public");
        assert_eq!(v["resources"][0]["uid"], "public.\"Odd.Name\"");
    }

    #[test]
    fn rds_and_key_value_prefixes() {
        let v = event(
            "2024-05-01 12:00:00 CEST:10.1.2.3(52344):carol@prod:[777]:LOG:  AUDIT: OBJECT,3,1,WRITE,UPDATE,TABLE,public.t,update t set a = 1,<none>",
        );
        assert_eq!(v["time"], T0);
        assert_eq!(str_at(&v, "actor.user.name"), "carol");
        assert_eq!(str_at(&v, "database.name"), "prod");
        assert_eq!(str_at(&v, "src_endpoint.ip"), "10.1.2.3");
        assert_eq!(v["src_endpoint"]["port"], 52344);
        assert_eq!(v["unmapped"]["pid"], "777");
        assert_eq!(v["activity_name"], "Update");
        assert_eq!(v["unmapped"]["audit_type"], "OBJECT");

        let v = event(
            "2024-05-01 10:00:00 UTC [99]: [3-1] user=dave,db=app,app=psql,client=2001:db8::5 LOG:  AUDIT: SESSION,1,1,WRITE,DELETE,,,delete from t,<not logged>",
        );
        assert_eq!(str_at(&v, "actor.user.name"), "dave");
        assert_eq!(str_at(&v, "database.name"), "app");
        assert_eq!(str_at(&v, "actor.app_name"), "psql");
        assert_eq!(str_at(&v, "src_endpoint.ip"), "2001:db8::5");
        assert_eq!(v["unmapped"]["pid"], "99");
        assert_eq!(v["activity_name"], "Delete");

        // A syslog header before the prefix.
        let v = event(
            "May  1 10:00:00 db1 postgres[55]: [4-1] 2024-05-01 10:00:00.5 +02:00 [55] erin@x LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<not logged>",
        );
        assert_eq!(v["time"], T0 + 500 - 2 * 3_600_000);
        assert_eq!(str_at(&v, "actor.user.name"), "erin");
    }

    #[test]
    fn client_side_notice_and_other_client_lines() {
        let v = event(
            "NOTICE:  AUDIT: SESSION,3,1,MISC,SET,,,SET pgaudit.log_level = 'notice',<not logged>",
        );
        assert_eq!(v["time"], 7);
        assert!(v["unmapped"]["acta_time_note"].is_string());
        assert_eq!(v["unmapped"]["log_output"], "client");
        assert_eq!(v["activity_id"], 99);
        // psql output that is not an AUDIT record is somebody else's.
        assert_eq!(
            parse("ERROR:  permission denied for table t").unwrap_err(),
            Rejection::NotMine
        );
        assert_eq!(parse("SELECT 1;").unwrap_err(), Rejection::NotMine);
        assert_eq!(parse("\tid INT").unwrap_err(), Rejection::NotMine);
    }

    #[test]
    fn role_statements() {
        let line = |class: &str, cmd: &str, stmt: &str| {
            event(&format!(
                "2024-05-01 10:00:00 UTC [1] admin@db LOG:  AUDIT: SESSION,1,1,{class},{cmd},,,{stmt},<not logged>"
            ))
        };
        let v = line(
            "ROLE",
            "CREATE ROLE",
            "CREATE USER \"Eve\" PASSWORD <REDACTED>",
        );
        assert_eq!(v["class_uid"], 3001);
        assert_eq!(v["activity_name"], "Create");
        assert_eq!(str_at(&v, "user.name"), "Eve");
        assert_eq!(str_at(&v, "actor.user.name"), "admin");
        let v = line("ROLE", "ALTER ROLE", "ALTER ROLE eve PASSWORD <REDACTED>");
        assert_eq!(v["activity_name"], "Password Change");
        let v = line("ROLE", "ALTER ROLE", "ALTER ROLE eve NOLOGIN");
        assert_eq!(v["activity_name"], "Disable");
        let v = line("ROLE", "DROP ROLE", "DROP ROLE IF EXISTS eve");
        assert_eq!(v["activity_name"], "Delete");
        assert_eq!(str_at(&v, "user.name"), "eve");
        let v = line(
            "ROLE",
            "GRANT",
            "\"GRANT SELECT, UPDATE ON TABLE public.t TO eve, bob\"",
        );
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["activity_name"], "Assign Privileges");
        assert_eq!(str_at(&v, "user.name"), "eve");
        assert_eq!(v["resources"][0]["uid"], "public.t");
        let v = line("ROLE", "REVOKE ROLE", "REVOKE admins FROM GROUP eve");
        assert_eq!(v["activity_name"], "Revoke Privileges");
        assert_eq!(str_at(&v, "user.name"), "eve");
        let v = line(
            "ROLE",
            "GRANT",
            "GRANT USAGE ON SCHEMA s TO -- comment\n eve",
        );
        assert_eq!(str_at(&v, "user.name"), "eve");
        let v = line("FUNCTION", "DO", "\"DO $$ BEGIN PERFORM 1; END $$\"");
        assert_eq!(v["class_uid"], 6005);
        assert_eq!(v["activity_id"], 99);
    }

    const CSV_AUDIT: &str = "2024-05-01 10:00:00.250 UTC,\"alice\",\"shop\",4242,\"10.0.0.9:51000\",6631f1a0.1092,8,\"SELECT\",2024-05-01 09:59:00 UTC,3/7,0,LOG,00000,\"AUDIT: SESSION,6,1,READ,SELECT,TABLE,public.accounts,\"\"SELECT id,\n       name\n  FROM accounts\"\",<not logged>\",,,,,,,,,\"psql\",\"client backend\",,0";

    #[test]
    fn csvlog_audit_record_with_quoted_newlines() {
        let v = event(CSV_AUDIT);
        assert_eq!(v["time"], T0 + 250);
        assert_eq!(str_at(&v, "actor.user.name"), "alice");
        assert_eq!(str_at(&v, "database.name"), "shop");
        assert_eq!(str_at(&v, "src_endpoint.ip"), "10.0.0.9");
        assert_eq!(v["src_endpoint"]["port"], 51000);
        assert_eq!(str_at(&v, "actor.session.uid"), "6631f1a0.1092");
        assert_eq!(v["actor"]["session"]["created_time"], T0 - 60_000);
        assert_eq!(str_at(&v, "actor.app_name"), "psql");
        assert_eq!(
            str_at(&v, "query_info.query_string"),
            "SELECT id,\n       name\n  FROM accounts"
        );
        assert_eq!(str_at(&v, "metadata.correlation_uid"), "6631f1a0.1092/6");
        assert_eq!(v["unmapped"]["log_output"], "csvlog");
        assert_eq!(v["unmapped"]["backend_type"], "client backend");
        // Cut at the first newline (framing without quoted newlines): still mapped, noted.
        let cut = CSV_AUDIT.split('\n').next().unwrap();
        let v = event(cut);
        assert_eq!(str_at(&v, "api.operation"), "SELECT");
        assert_eq!(str_at(&v, "query_info.query_string"), "SELECT id,");
        assert!(v["unmapped"]["acta_cut_note"].is_string());
    }

    #[test]
    fn csvlog_connections_and_failures() {
        let v = event(
            "2024-05-01 10:00:00.000 UTC,\"alice\",\"shop\",11490,\"127.0.0.1:59680\",6b01a592.2ce2,2,\"authentication\",2024-05-01 10:00:00 UTC,3/10,0,FATAL,28P01,\"password authentication failed for user \"\"alice\"\"\",\"Connection matched pg_hba.conf line 91: \"\"host all all 127.0.0.1/32 scram-sha-256\"\"\",,,,,,,,\"\",\"client backend\",,0",
        );
        assert_eq!(v["class_uid"], 3002);
        assert_eq!(v["activity_name"], "Logon");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["status_code"], "28P01");
        assert_eq!(str_at(&v, "user.name"), "alice");
        assert_eq!(str_at(&v, "src_endpoint.ip"), "127.0.0.1");
        assert!(str_at(&v, "unmapped.detail").contains("pg_hba.conf"));
        let v = event(
            "2024-05-01 10:00:00.000 UTC,\"alice\",\"shop\",1,\"[local]\",6b.1,9,\"idle\",2024-05-01 10:00:00 UTC,,0,LOG,00000,\"disconnection: session time: 0:00:00.115 user=alice database=shop host=[local]\",,,,,,,,,\"psql\",\"client backend\",,0",
        );
        assert_eq!(v["activity_name"], "Logoff");
        assert_eq!(v["unmapped"]["client"], "local socket");
        assert_eq!(v["unmapped"]["session_time"], "0:00:00.115");
        // A server message that is no access event.
        assert!(matches!(
            parse(
                "2024-05-01 10:00:00.000 UTC,,,1,,6b.1,1,,2024-05-01 10:00:00 UTC,,0,LOG,00000,\"checkpoint starting: time\",,,,,,,,,\"\",\"checkpointer\",,0"
            ),
            Ok(Parsed::NotAnEvent(_))
        ));
    }

    #[test]
    fn jsonlog_records() {
        let v = event(
            r#"{"timestamp":"2024-05-01 10:00:00.001 UTC","user":"alice","dbname":"shop","pid":11475,"remote_host":"127.0.0.1","remote_port":59664,"session_id":"6b01a592.2cd3","line_num":4,"ps":"SELECT","session_start":"2024-05-01 10:00:00 UTC","vxid":"3/9","txid":0,"error_severity":"LOG","message":"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.accounts,\"select *\nfrom accounts\",<not logged>","application_name":"psql","backend_type":"client backend","query_id":0}"#,
        );
        assert_eq!(v["time"], T0 + 1);
        assert_eq!(str_at(&v, "actor.user.name"), "alice");
        assert_eq!(str_at(&v, "src_endpoint.ip"), "127.0.0.1");
        assert_eq!(v["src_endpoint"]["port"], 59664);
        assert_eq!(
            str_at(&v, "query_info.query_string"),
            "select *\nfrom accounts"
        );
        assert_eq!(v["unmapped"]["pid"], "11475");
        let v = event(
            r#"{"timestamp":"2024-05-01 10:00:00.001 UTC","user":"alice","dbname":"shop","pid":1,"error_severity":"ERROR","state_code":"42501","message":"permission denied for table secrets","statement":"select * from secrets","ps":"SELECT"}"#,
        );
        assert_eq!(v["class_uid"], 6005);
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["status_code"], "42501");
        assert_eq!(str_at(&v, "api.operation"), "SELECT");
        assert_eq!(v["resources"][0]["name"], "secrets");
        assert_eq!(
            str_at(&v, "query_info.query_string"),
            "select * from secrets"
        );
        // Not jsonlog, and jsonlog with a wrong type.
        assert_eq!(
            parse(r#"{"kind":"Event"}"#).unwrap_err(),
            Rejection::NotMine
        );
        assert!(matches!(
            parse(r#"{"timestamp":"x","error_severity":"LOG","message":"m","pid":"nope"}"#),
            Err(Rejection::Invalid(_))
        ));
    }

    #[test]
    fn hostile_input_never_panics() {
        let prefix = "2024-05-01 10:00:00 UTC [1] a@b LOG:  ";
        for garbage in [
            "AUDIT: ",
            "AUDIT: ,,,,,,,,",
            "AUDIT: SESSION",
            "AUDIT: SESSION,x,1,READ,SELECT,,,s,p",
            "AUDIT: BOGUS,1,1,READ,SELECT,,,s,p",
            "AUDIT: SESSION,1,1,,,,,s,p",
            "AUDIT: \"\"\"\"\"",
            "AUDIT: SESSION,1,1,READ,SELECT,,,\"never closed",
            "AUDIT: SESSION,1,1,READ,SELECT,,,\"a\"junk\"b\",p,1,2,3,4,5,6,7,8,9",
        ] {
            let r = parse(&format!("{prefix}{garbage}"));
            assert!(
                matches!(r, Ok(Parsed::Event(_)) | Err(Rejection::Invalid(_))),
                "{garbage}: {r:?}"
            );
        }
        assert!(matches!(
            parse(&format!("{prefix}AUDIT: garbage")),
            Err(Rejection::Invalid(_))
        ));
        // 10 MB statement, quoted and full of commas, quotes and newlines.
        let big = "x,\"\"y\n".repeat((10 << 20) / 7);
        let v = event(&format!(
            "{prefix}AUDIT: SESSION,1,1,READ,SELECT,,,\"{big}\",<not logged>"
        ));
        assert_eq!(
            str_at(&v, "query_info.query_string").len(),
            big.len() - big.matches("\"\"").count()
        );
        // 10 MB of commas as a csvlog record: fields are capped.
        let commas = format!("2024-05-01 10:00:00 UTC{}", ",".repeat(10 << 20));
        let _ = parse(&commas);
        // Invalid UTF-8.
        let mut bad = format!("{prefix}AUDIT: SESSION,1,1,READ,SELECT,,,").into_bytes();
        bad.extend_from_slice(b"\xff\xfe,<none>");
        let r = Pgaudit.parse(&Record {
            bytes: &bad,
            received_at_ms: 0,
        });
        assert!(matches!(r, Err(Rejection::Invalid(_))), "{r:?}");
        let r = Pgaudit.parse(&Record {
            bytes: b"\xff\xfe hello",
            received_at_ms: 0,
        });
        assert_eq!(r.unwrap_err(), Rejection::NotMine);
        // Arbitrary short inputs.
        for s in [
            "",
            " ",
            "{",
            "LOG:  ",
            ":  ",
            "2024-05-01 10:00:00 UTC,",
            "[1] LOG:  x",
            "a@b LOG:  x",
        ] {
            let _ = parse(s);
        }
    }

    #[test]
    fn times_and_zones() {
        assert_eq!(pg_time("2024-05-01 10:00:00 UTC"), Some(T0));
        assert_eq!(pg_time("2024-05-01 10:00:00.5 GMT"), Some(T0 + 500));
        assert_eq!(pg_time("2024-05-01 06:00:00 EDT"), Some(T0));
        assert_eq!(pg_time("2024-05-01 15:30:00 +0530"), Some(T0));
        assert_eq!(pg_time("2024-05-01 15:30:00 +05:30"), Some(T0));
        assert_eq!(pg_time("2024-05-01 08:00:00 -02"), Some(T0));
        assert_eq!(pg_time("2024-05-01 10:00:00"), Some(T0));
        assert_eq!(pg_time("2024-05-01 10:00:00 XYZT"), None);
        assert_eq!(pg_time("2024-13-01 10:00:00 UTC"), None);
        // Epoch prefix (%n).
        let v =
            event("1714557600.250 [5] a@b LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>");
        assert_eq!(v["time"], T0 + 250);
        // Unknown zone: time of receipt, noted.
        let v = event(
            "2024-05-01 10:00:00 XYZT [5] a@b LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>",
        );
        assert_eq!(v["time"], 7);
    }

    #[test]
    fn csv_splitting() {
        let (f, cut) = split_csv("a,\"b,\"\"c\"\"\",,\"d\ne\"", 10);
        assert_eq!(f, ["a", "b,\"c\"", "", "d\ne"]);
        assert!(!cut);
        let (f, cut) = split_csv("a,\"open", 10);
        assert_eq!(f, ["a", "open"]);
        assert!(cut);
        let (f, _) = split_csv("1,2,3,4", 2);
        assert_eq!(f, ["1", "2"]);
    }

    #[test]
    fn sniffing() {
        let sniff = |s: &str| Pgaudit.sniff(&mut Probe::new(s.as_bytes()));
        assert!(sniff(
            "NOTICE:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>"
        ));
        assert!(sniff(
            "2024-05-01 10:00:00.1 UTC [1] LOG:  checkpoint starting: time"
        ));
        assert!(sniff(CSV_AUDIT));
        assert!(sniff(
            r#"{"timestamp":"2024-05-01 10:00:00 UTC","error_severity":"LOG","message":"x"}"#
        ));
        assert!(!sniff("ERROR:  relation \"x\" does not exist"));
        assert!(!sniff(
            "Jan  1 00:00:00 host sshd[1]: Accepted publickey for alice"
        ));
        assert!(!sniff(r#"{"eventVersion":"1.08"}"#));
    }
}
