//! Linux access logs: sshd, sudo, su, login and PAM lines, read from syslog files and streams
//! (RFC 3164 and RFC 5424) and from the systemd journal (`journalctl -o json`).
//!
//! Two parsers share one interpreter: [`Syslog`] and [`Journald`] only read the envelope (time,
//! host, program, pid and message text) and hand it to [`interpret`], which knows the messages of
//! the programs acta cares about. A message from any other program (cron, the kernel…), or one
//! of those programs' messages that says nothing about access (`Server listening on …`), is still
//! a valid record of the format: it becomes an OCSF Base Event (`class_uid` 0) that keeps its
//! time, host and program, with the reason in `status_detail`, so it stays visible and
//! searchable. The mapping is documented in `docs/events/linux.md`.
//!
//! Messages are matched by hand-written prefix and suffix matching on their fixed wording; every
//! piece is optional and every lookup is bounded, so arbitrary bytes can never make a parser
//! panic.

use std::borrow::Cow;
use std::fmt;

use acta_event::{Class, Endpoint, Event, Product, Session, Severity, Status, User, activity};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use super::time::{parse_rfc3164, parse_rfc3339};
use super::{Format, Parsed, Parser, Probe, Record, Rejection, json};

/// `activity_id` 1 of Authorize Session.
const ASSIGN_PRIVILEGES: u8 = 1;

/// The envelope of one log record, whatever its format.
#[derive(Debug, Default)]
pub struct Envelope<'a> {
    /// Epoch milliseconds, when the record has a readable time.
    pub time: Option<i64>,
    /// The time as written.
    pub original_time: Option<Cow<'a, str>>,
    /// The host that logged the record.
    pub host: Option<Cow<'a, str>>,
    /// The program (syslog tag, `SYSLOG_IDENTIFIER`).
    pub program: Option<Cow<'a, str>>,
    pub pid: Option<Cow<'a, str>>,
    /// The message text.
    pub message: Cow<'a, str>,
}

/// RFC 3164 and RFC 5424 syslog lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Syslog;

/// `journalctl -o json` entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Journald;

// ---------------------------------------------------------------------------------------------
// Syslog envelope

/// How a syslog line starts.
enum Header<'a> {
    /// `<PRI>1 …`: RFC 5424, from the byte after `1 `.
    Rfc5424(&'a [u8]),
    /// RFC 3164 (`Mmm dd hh:mm:ss`, PRI optional) or the RFC 3339 stamp rsyslog writes in files
    /// (`2024-01-02T03:04:05.123456+00:00`), from the stamp on.
    Rfc3164(&'a [u8]),
}

/// Splits off `<PRI>` (1 to 3 digits) and says which syslog flavour the rest is in.
fn header(bytes: &[u8]) -> Option<Header<'_>> {
    let mut rest = bytes;
    if rest.first() == Some(&b'<') {
        let close = rest.iter().take(5).position(|&b| b == b'>')?;
        let digits = rest.get(1..close)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        rest = rest.get(close + 1..)?;
        if let Some(after) = rest.strip_prefix(b"1 ") {
            return Some(Header::Rfc5424(after));
        }
    }
    let month = rest.get(..4)?;
    let looks_3164 = month.get(3) == Some(&b' ')
        && month.first().is_some_and(u8::is_ascii_uppercase)
        && month
            .get(1..3)
            .is_some_and(|m| m.iter().all(u8::is_ascii_lowercase));
    let looks_iso = rest
        .get(..4)
        .is_some_and(|y| y.iter().all(u8::is_ascii_digit))
        && rest.get(4) == Some(&b'-')
        && rest.get(10) == Some(&b'T');
    (looks_3164 || looks_iso).then_some(Header::Rfc3164(rest))
}

/// Whether an RFC 3164 line's stamp is readable (any year: 2024 and 2025 are tried).
fn stamp_ok(rest: &[u8]) -> bool {
    const MID_2025: i64 = 1_748_736_000_000;
    if rest.first().is_some_and(u8::is_ascii_digit) {
        let stamp = rest.split(|&b| b == b' ').next().unwrap_or_default();
        std::str::from_utf8(stamp).is_ok_and(|s| parse_rfc3339(s).is_some())
    } else {
        parse_rfc3164(rest, MID_2025).is_some()
    }
}

/// The next space-separated token and what follows it (one space skipped).
fn token(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((t, rest)) => (t, rest),
        None => (s, ""),
    }
}

/// `prog[pid]:` or `prog:` as a tag token; `None` when the token is not a tag.
fn tag(t: &str) -> Option<(&str, Option<&str>)> {
    let t = t.strip_suffix(':')?;
    if let Some(open) = t.find('[') {
        let prog = t.get(..open)?;
        let pid = t.get(open + 1..)?.strip_suffix(']')?;
        return (!prog.is_empty()).then_some((prog, Some(pid)));
    }
    (!t.is_empty()).then_some((t, None))
}

/// Parses an RFC 3164 line (from the stamp on). `None` when the stamp is unreadable.
fn parse_3164<'a>(rest: &'a str, received_at_ms: i64) -> Option<Envelope<'a>> {
    let (time, stamp_len) = if rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (stamp, _) = token(rest);
        (parse_rfc3339(stamp)?, stamp.len())
    } else {
        parse_rfc3164(rest.as_bytes(), received_at_ms)?
    };
    let original_time = rest.get(..stamp_len)?;
    let after = rest.get(stamp_len..)?.strip_prefix(' ')?;
    let mut env = Envelope {
        time: Some(time),
        original_time: Some(Cow::Borrowed(original_time)),
        ..Envelope::default()
    };
    // Lines sent to /dev/log carry no host (`sshd[42]: …`); lines in files do (`host sshd[42]: …`).
    let (first, after_first) = token(after);
    let (prog_tok, msg) = if tag(first).is_some() {
        (first, after_first)
    } else {
        if !first.is_empty() {
            env.host = Some(Cow::Borrowed(first));
        }
        let (second, after_second) = token(after_first);
        if tag(second).is_some() {
            (second, after_second)
        } else {
            // No tag: the message is everything after the host.
            env.message = Cow::Borrowed(after_first);
            return Some(env);
        }
    };
    if let Some((prog, pid)) = tag(prog_tok) {
        env.program = Some(Cow::Borrowed(prog));
        env.pid = pid.map(Cow::Borrowed);
    }
    env.message = Cow::Borrowed(msg);
    Some(env)
}

/// RFC 5424 nil value.
fn nil(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

/// Parses an RFC 5424 line after `<PRI>1 `: `TIMESTAMP HOST APP PROCID MSGID SD [MSG]`. Returns
/// the envelope, the MSGID and the structured data.
fn parse_5424(rest: &str) -> Option<(Envelope<'_>, Option<&str>, Option<&str>)> {
    let (stamp, rest) = token(rest);
    let (host, rest) = token(rest);
    let (app, rest) = token(rest);
    let (procid, rest) = token(rest);
    let (msgid, rest) = token(rest);
    let (sd, msg) = if rest.starts_with('[') {
        let end = sd_end(rest)?;
        (rest.get(..end)?, rest.get(end..)?)
    } else if let Some(after) = rest.strip_prefix('-') {
        ("-", after)
    } else {
        return None;
    };
    let msg = msg.strip_prefix(' ').unwrap_or(msg);
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    let time = match nil(stamp) {
        Some(s) => Some(parse_rfc3339(s)?),
        None => None,
    };
    Some((
        Envelope {
            time,
            original_time: nil(stamp).map(Cow::Borrowed),
            host: nil(host).map(Cow::Borrowed),
            program: nil(app).map(Cow::Borrowed),
            pid: nil(procid).map(Cow::Borrowed),
            message: Cow::Borrowed(msg),
        },
        nil(msgid),
        nil(sd),
    ))
}

/// The end of RFC 5424 structured data (`[id k="v"]…`): the index after its last `]`.
fn sd_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut in_quotes = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    Some(i)
}

impl Parser for Syslog {
    fn format(&self) -> Format {
        Format::Syslog
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        match header(probe.bytes) {
            Some(Header::Rfc5424(_)) => true,
            Some(Header::Rfc3164(rest)) => stamp_ok(rest),
            None => false,
        }
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let Some(head) = header(record.bytes) else {
            return Err(Rejection::NotMine);
        };
        let text = String::from_utf8_lossy(record.bytes);
        // The header is ASCII, so it sits at the same offset in the lossy text.
        let offset = record.bytes.len()
            - match head {
                Header::Rfc5424(rest) | Header::Rfc3164(rest) => rest.len(),
            };
        let rest = text.get(offset..).ok_or(Rejection::NotMine)?;
        let raw = text.to_string();
        let event = match head {
            Header::Rfc5424(_) => {
                let (env, msgid, sd) = parse_5424(rest).ok_or(Rejection::NotMine)?;
                let mut e = interpret(&env, Format::Syslog, record.received_at_ms, raw);
                if let Some(m) = msgid {
                    e.unmap("msgid", m);
                }
                if let Some(sd) = sd {
                    e.unmap("structured_data", sd);
                }
                e
            }
            Header::Rfc3164(_) => {
                let env = parse_3164(rest, record.received_at_ms).ok_or(Rejection::NotMine)?;
                interpret(&env, Format::Syslog, record.received_at_ms, raw)
            }
        };
        Ok(Parsed::Event(Box::new(event)))
    }
}

// ---------------------------------------------------------------------------------------------
// Journal envelope

/// A journal field as `journalctl -o json` writes it: a string; an array of byte values when the
/// value is not UTF-8; an array of those when the field occurs several times (the first is used);
/// `null` when it was too large to show.
#[derive(Debug)]
enum Text<'a> {
    Str(Cow<'a, str>),
    Bytes(Vec<u8>),
}

impl Text<'_> {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Text::Str(s) => Cow::Borrowed(s.as_ref()),
            Text::Bytes(b) => String::from_utf8_lossy(b),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of bytes")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text::Str(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text<'de>, E> {
                Ok(Text::Str(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text<'de>, E> {
                Ok(Text::Str(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
                let mut bytes = Vec::new();
                let mut first: Option<Text<'de>> = None;
                while let Some(v) = seq.next_element::<Value>()? {
                    match v {
                        Value::Number(n) => {
                            let b = n
                                .as_u64()
                                .and_then(|n| u8::try_from(n).ok())
                                .ok_or_else(|| de::Error::custom("byte value out of range"))?;
                            bytes.push(b);
                        }
                        Value::String(s) if first.is_none() => {
                            first = Some(Text::Str(Cow::Owned(s)));
                        }
                        Value::Array(a) if first.is_none() => {
                            let b = a
                                .iter()
                                .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                                .collect::<Option<Vec<u8>>>()
                                .ok_or_else(|| de::Error::custom("byte value out of range"))?;
                            first = Some(Text::Bytes(b));
                        }
                        Value::String(_) | Value::Array(_) => {}
                        _ => return Err(de::Error::custom("unexpected value in array")),
                    }
                }
                if !bytes.is_empty() && first.is_some() {
                    return Err(de::Error::custom("mixed bytes and values in array"));
                }
                Ok(first.unwrap_or(Text::Bytes(bytes)))
            }
        }
        d.deserialize_any(V)
    }
}

type Field<'a> = Option<Text<'a>>;

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(rename = "MESSAGE", borrow, default)]
    message: Field<'a>,
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow, default)]
    realtime: Field<'a>,
    #[serde(rename = "_SOURCE_REALTIME_TIMESTAMP", borrow, default)]
    source_realtime: Field<'a>,
    #[serde(rename = "__CURSOR", borrow, default)]
    cursor: Field<'a>,
    #[serde(rename = "_HOSTNAME", borrow, default)]
    hostname: Field<'a>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow, default)]
    identifier: Field<'a>,
    #[serde(rename = "_COMM", borrow, default)]
    comm: Field<'a>,
    #[serde(rename = "SYSLOG_PID", borrow, default)]
    syslog_pid: Field<'a>,
    #[serde(rename = "_PID", borrow, default)]
    pid: Field<'a>,
    #[serde(rename = "_SYSTEMD_UNIT", borrow, default)]
    unit: Field<'a>,
    #[serde(rename = "_UID", borrow, default)]
    uid: Field<'a>,
    #[serde(rename = "_BOOT_ID", borrow, default)]
    boot_id: Field<'a>,
}

fn field<'a>(f: &'a Field<'_>) -> Option<Cow<'a, str>> {
    f.as_ref().map(Text::text).filter(|s| !s.is_empty())
}

/// A journal timestamp: microseconds since the epoch, as a decimal string.
fn micros(f: &Field<'_>) -> Option<i64> {
    let us: i64 = field(f)?.trim().parse().ok()?;
    (us >= 0).then_some(us / 1000)
}

impl Journald {
    fn is_entry(o: &serde_json::Map<String, Value>) -> bool {
        o.contains_key("MESSAGE")
            && (o.contains_key("__REALTIME_TIMESTAMP")
                || o.contains_key("_HOSTNAME")
                || o.contains_key("__CURSOR"))
    }
}

impl Parser for Journald {
    fn format(&self) -> Format {
        Format::Journald
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        probe.object().is_some_and(Journald::is_entry)
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let entry: Entry<'_> = match json::from_record(record.bytes) {
            Ok(e) => e,
            Err(e) => {
                return if self.sniff(&mut Probe::new(record.bytes)) {
                    Err(Rejection::invalid(format!("unusable journal entry: {e}")))
                } else {
                    Err(Rejection::NotMine)
                };
            }
        };
        if entry.realtime.is_none() && entry.hostname.is_none() && entry.cursor.is_none() {
            return Err(Rejection::NotMine);
        }
        let Some(message) = entry.message.as_ref() else {
            // `MESSAGE` present but null: journalctl writes null for values it does not show.
            return if self.sniff(&mut Probe::new(record.bytes)) {
                Err(Rejection::invalid(
                    "MESSAGE is null (too large for journalctl to show)",
                ))
            } else {
                Err(Rejection::NotMine)
            };
        };
        let raw = json::utf8(record.bytes).map_err(Rejection::Invalid)?;
        let env = Envelope {
            time: micros(&entry.source_realtime).or_else(|| micros(&entry.realtime)),
            original_time: field(&entry.realtime),
            host: field(&entry.hostname),
            program: field(&entry.identifier).or_else(|| field(&entry.comm)),
            pid: field(&entry.syslog_pid).or_else(|| field(&entry.pid)),
            message: message.text(),
        };
        let mut e = interpret(
            &env,
            Format::Journald,
            record.received_at_ms,
            raw.to_owned(),
        );
        e.metadata.uid = field(&entry.cursor).map(Cow::into_owned);
        if let Some(u) = field(&entry.unit) {
            e.unmap("systemd_unit", u.into_owned());
        }
        if let Some(u) = field(&entry.uid) {
            e.unmap("logging_uid", u.into_owned());
        }
        if let Some(b) = field(&entry.boot_id) {
            e.unmap("boot_id", b.into_owned());
        }
        if matches!(message, Text::Bytes(_)) {
            e.unmap("message_encoding", "bytes (not UTF-8)");
        }
        Ok(Parsed::Event(Box::new(e)))
    }
}

// ---------------------------------------------------------------------------------------------
// The shared interpreter

/// What a message says, before it is put into an event.
#[derive(Debug, Default)]
struct Meaning<'m> {
    class: Option<Class>,
    activity: u8,
    status: Option<Status>,
    detail: Option<Cow<'m, str>>,
    status_code: Option<&'m str>,
    operation: Cow<'m, str>,
    /// The acting user.
    actor: Option<&'m str>,
    actor_uid: Option<&'m str>,
    /// The user acted on (the target of sudo and su).
    target: Option<&'m str>,
    target_uid: Option<&'m str>,
    src: Option<&'m str>,
    port: Option<u16>,
    terminal: Option<&'m str>,
    session_uid: Option<&'m str>,
    key_type: Option<&'m str>,
    fingerprint: Option<&'m str>,
    auth_method: Option<&'m str>,
    command: Option<&'m str>,
    cwd: Option<&'m str>,
    pam_service: Option<&'m str>,
}

impl<'m> Meaning<'m> {
    fn new(class: Class, activity: u8, status: Status, op: impl Into<Cow<'m, str>>) -> Self {
        Meaning {
            class: Some(class),
            activity,
            status: Some(status),
            operation: op.into(),
            ..Meaning::default()
        }
    }

    fn logon(status: Status, op: impl Into<Cow<'m, str>>) -> Self {
        Meaning::new(Class::Authentication, activity::LOGON, status, op)
    }

    fn logoff(status: Status, op: impl Into<Cow<'m, str>>) -> Self {
        Meaning::new(Class::Authentication, activity::LOGOFF, status, op)
    }

    fn detail(mut self, d: impl Into<Cow<'m, str>>) -> Self {
        self.detail = Some(d.into());
        self
    }

    fn peer_at(mut self, src: Option<Peer<'m>>) -> Self {
        if let Some((ip, port)) = src {
            self.src = Some(ip);
            self.port = port;
        }
        self
    }
}

/// Turns one record's envelope into its event. Every record yields an event: messages with no
/// access meaning become a Base Event with the reason in `status_detail`.
pub fn interpret(env: &Envelope<'_>, format: Format, received_at_ms: i64, raw: String) -> Event {
    let program = env.program.as_deref().unwrap_or_default();
    let message = env.message.trim_end_matches(['\n', '\r', '\0']);
    let meaning = understand(program, message.trim_start());
    let class = meaning
        .as_ref()
        .and_then(|m| m.class)
        .unwrap_or(Class::Base);
    let mut e = Event::new(class, env.time.unwrap_or(received_at_ms), raw);
    e.metadata.original_time = env.original_time.as_deref().map(str::to_owned);
    if env.time.is_none() {
        e.unmap(
            "acta_time_note",
            "time missing or unreadable; time of receipt used",
        );
    }
    if !message.is_empty() {
        e.message = Some(message.to_owned());
    }
    if let Some(h) = env.host.as_deref() {
        e.dst_endpoint = Some(Endpoint {
            hostname: Some(h.to_owned()),
            ..Endpoint::default()
        });
    }
    if !program.is_empty() {
        e.metadata.product = Some(Product {
            name: program.to_owned(),
            vendor_name: None,
        });
        e.api_mut().set_service(program);
    }
    if let Some(pid) = env.pid.as_deref() {
        match pid.parse::<u64>() {
            Ok(n) => e.unmap("pid", n),
            Err(_) => e.unmap("pid", pid),
        }
    }
    let Some(m) = meaning else {
        e.severity = Severity::Informational;
        e.status_detail = Some(if program.is_empty() {
            format!("{format} record without a program name is not an access event")
        } else {
            format!("{format} message from `{program}` is not an access event")
        });
        return e;
    };
    e.activity_id = m.activity;
    e.status = m.status.unwrap_or(Status::Unknown);
    e.status_detail = m.detail.map(Cow::into_owned);
    e.status_code = m.status_code.map(str::to_owned);
    e.api_mut().operation = Some(m.operation.into_owned());
    if m.actor.is_some() || m.actor_uid.is_some() {
        let u = e.actor_user();
        u.name = m.actor.map(str::to_owned);
        u.uid = m.actor_uid.map(str::to_owned);
        u.credential_uid = m.fingerprint.map(str::to_owned);
    } else if let Some(fp) = m.fingerprint {
        e.actor_user().credential_uid = Some(fp.to_owned());
    }
    if m.target.is_some() || m.target_uid.is_some() {
        e.user = Some(User {
            name: m.target.map(str::to_owned),
            uid: m.target_uid.map(str::to_owned),
            ..User::default()
        });
    }
    if m.terminal.is_some() || m.session_uid.is_some() {
        e.actor.session = Some(Session {
            uid: m.session_uid.map(str::to_owned),
            terminal: m.terminal.map(str::to_owned),
            ..Session::default()
        });
    }
    if let Some(src) = m.src {
        let ep = e.src_endpoint.get_or_insert_with(Endpoint::default);
        if json::is_ip(src) {
            ep.ip = Some(src.to_owned());
        } else {
            ep.hostname = Some(src.to_owned());
        }
        ep.port = m.port;
    }
    for (k, v) in [
        ("auth_method", m.auth_method),
        ("key_type", m.key_type),
        ("command", m.command),
        ("cwd", m.cwd),
        ("pam_service", m.pam_service),
    ] {
        if let Some(v) = v {
            e.unmap(k, v);
        }
    }
    e
}

/// The meaning of a message of `program`, or `None` when it has no access meaning.
fn understand<'m>(program: &str, msg: &'m str) -> Option<Meaning<'m>> {
    if let Some(m) = pam(msg) {
        return Some(m);
    }
    match program {
        "sshd" | "sshd-session" | "sshd-auth" => sshd(msg),
        "sudo" => sudo(msg),
        "su" => su(msg),
        "systemd-logind" => logind(msg),
        "login" => login(msg),
        _ => None,
    }
}

/// A peer address and port.
type Peer<'m> = (&'m str, Option<u16>);

/// `IP port N` (or just `IP`), as sshd writes a peer.
fn peer(s: &str) -> Option<Peer<'_>> {
    let s = s.trim();
    match s.split_once(" port ") {
        Some((ip, port)) => {
            let port = port.split(' ').next()?.parse().ok();
            (!ip.is_empty() && !ip.contains(' ')).then_some((ip, port))
        }
        None => (!s.is_empty() && !s.contains(' ')).then_some((s, None)),
    }
}

/// `user X`, `invalid user X`, `authenticating user X` or nothing, before a peer.
fn who(s: &str) -> (Option<&str>, bool) {
    if let Some(u) = s.strip_prefix("invalid user ") {
        (Some(u), true)
    } else if let Some(u) = s
        .strip_prefix("authenticating user ")
        .or_else(|| s.strip_prefix("user "))
    {
        (Some(u), false)
    } else {
        (None, false)
    }
}

/// `[who ]IP port N[ [preauth]]`: the user part and the peer.
fn who_at_peer(s: &str) -> Option<(Option<&str>, bool, Peer<'_>)> {
    let s = s.strip_suffix(" [preauth]").unwrap_or(s).trim_end();
    let (head, port) = match s.rsplit_once(" port ") {
        Some((h, p)) => (h, p.parse::<u16>().ok()),
        None => (s, None),
    };
    let (user_part, ip) = match head.rsplit_once(' ') {
        Some((u, ip)) => (Some(u), ip),
        None => (None, head),
    };
    if ip.is_empty() {
        return None;
    }
    let (user, invalid) = user_part.map_or((None, false), who);
    if user_part.is_some() && user.is_none() {
        return None;
    }
    Some((user, invalid, (ip, port)))
}

/// `ssh2: ED25519 SHA256:…` after a peer: the key type and fingerprint.
fn key_info(s: &str) -> (Option<&str>, Option<&str>) {
    let Some((_, key)) = s.split_once(": ") else {
        return (None, None);
    };
    let mut it = key.split(' ');
    let kt = it.next().filter(|s| !s.is_empty());
    let fp = it.next().filter(|s| !s.is_empty());
    (kt, fp)
}

fn method_op(prefix: &str, method: &str) -> String {
    let m: String = method
        .chars()
        .take_while(|&c| c != '/')
        .map(|c| if c == '-' { '_' } else { c })
        .collect();
    format!("sshd.{prefix}_{m}")
}

fn sshd(msg: &str) -> Option<Meaning<'_>> {
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    let msg = msg.strip_prefix("fatal: ").unwrap_or(msg);
    // Accepted/Failed METHOD for [invalid user ]USER from IP port N ssh2[: KEYTYPE FP]
    for (prefix, status) in [("Accepted ", Status::Success), ("Failed ", Status::Failure)] {
        if let Some(rest) = msg.strip_prefix(prefix)
            && let Some((method, rest)) = rest.split_once(" for ")
            && !method.contains(' ')
            && let Some((user, from)) = rest.rsplit_once(" from ")
        {
            let (user, invalid) = match user.strip_prefix("invalid user ") {
                Some(u) => (u, true),
                None => (user, false),
            };
            let (kt, fp) = key_info(from);
            let word = if status == Status::Success {
                "accepted"
            } else {
                "failed"
            };
            let mut m = Meaning::logon(status, method_op(word, method)).peer_at(peer(from));
            m.actor = Some(user);
            m.auth_method = Some(method);
            m.key_type = kt;
            m.fingerprint = fp;
            if invalid {
                m = m.detail("invalid user");
            }
            return Some(m);
        }
    }
    if let Some(rest) = msg.strip_prefix("Invalid user ")
        && let Some((user, from)) = rest.rsplit_once(" from ")
    {
        let mut m = Meaning::logon(Status::Failure, "sshd.invalid_user")
            .detail("invalid user")
            .peer_at(peer(from));
        m.actor = Some(user).filter(|u| !u.is_empty());
        return Some(m);
    }
    if let Some(rest) = msg.strip_prefix("User ")
        && let Some((user, rest)) = rest.split_once(" from ")
        && let Some((host, why)) = rest.split_once(" not allowed because ")
    {
        let mut m = Meaning::logon(Status::Failure, "sshd.user_not_allowed")
            .detail(format!("not allowed because {why}"))
            .peer_at(peer(host));
        m.actor = Some(user);
        return Some(m);
    }
    if let Some(rest) = msg.strip_prefix("maximum authentication attempts exceeded for ")
        && let Some((user, from)) = rest.rsplit_once(" from ")
    {
        let (user, invalid) = match user.strip_prefix("invalid user ") {
            Some(u) => (u, true),
            None => (user, false),
        };
        let detail = if invalid {
            "maximum authentication attempts exceeded; invalid user"
        } else {
            "maximum authentication attempts exceeded"
        };
        let mut m = Meaning::logon(Status::Failure, "sshd.max_auth_attempts")
            .detail(detail)
            .peer_at(peer(from));
        m.actor = Some(user);
        return Some(m);
    }
    if let Some(rest) = msg.strip_prefix("PAM: Authentication failure for ")
        && let Some((user, from)) = rest.rsplit_once(" from ")
    {
        let user = user
            .strip_prefix("illegal user ")
            .or_else(|| user.strip_prefix("invalid user "))
            .unwrap_or(user);
        let mut m = Meaning::logon(Status::Failure, "sshd.pam_auth_failure")
            .detail("PAM authentication failure")
            .peer_at(peer(from));
        m.actor = Some(user);
        return Some(m);
    }
    if let Some(rest) = msg.strip_prefix("PAM ")
        && let Some((_, kv)) = rest.split_once(" more authentication failures;")
    {
        let mut m = Meaning::logon(Status::Failure, "sshd.pam_more_failures").detail(format!(
            "PAM {}",
            rest.split(';').next().unwrap_or_default()
        ));
        m.actor = pam_kv(kv, "user");
        m.src = pam_kv(kv, "rhost");
        return Some(m);
    }
    for (prefix, op) in [
        ("Connection closed by ", "sshd.connection_closed"),
        ("Connection reset by ", "sshd.connection_reset"),
        ("Disconnected from ", "sshd.disconnected"),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix)
            && let Some((user, invalid, src)) = who_at_peer(rest)
        {
            // Before authentication completed there was no session: the outcome of the attempt
            // is told by the `Accepted`/`Failed` lines, so the closing itself is not counted as
            // one more failure.
            let m = if rest.ends_with("[preauth]") {
                let detail = if invalid {
                    "closed before authentication completed; invalid user"
                } else {
                    "closed before authentication completed"
                };
                Meaning::logoff(Status::Unknown, format!("{op}_preauth")).detail(detail)
            } else {
                Meaning::logoff(Status::Success, op)
            };
            let mut m = m.peer_at(Some(src));
            m.actor = user;
            return Some(m);
        }
    }
    // `Disconnecting invalid user admin 10.0.0.1 port 40500: Too many authentication failures [preauth]`
    if let Some(rest) = msg.strip_prefix("Disconnecting ")
        && let Some((who_peer, why)) = rest.split_once(": ")
        && let Some((user, _, src)) = who_at_peer(who_peer)
    {
        let why = why.strip_suffix(" [preauth]").unwrap_or(why);
        let mut m = if rest.ends_with("[preauth]") {
            Meaning::logoff(Status::Unknown, "sshd.disconnecting_preauth")
        } else {
            Meaning::logoff(Status::Success, "sshd.disconnecting")
        }
        .detail(why)
        .peer_at(Some(src));
        m.actor = user;
        return Some(m);
    }
    if let Some(rest) = msg.strip_prefix("Received disconnect from ") {
        // `IP port N:CODE: TEXT[ [preauth]]`; before OpenSSH 7.5 `IP: CODE: TEXT`.
        let rest = rest.strip_suffix(" [preauth]").unwrap_or(rest);
        let (peer_part, reason) = match rest.split_once(" port ") {
            Some((ip, after)) => {
                let (port, reason) = after.split_once(':').unwrap_or((after, ""));
                (Some((ip, port.parse::<u16>().ok())), reason)
            }
            None => match rest.split_once(": ") {
                Some((ip, reason)) => (Some((ip, None)), reason),
                None => (None, ""),
            },
        };
        let (code, text) = reason.trim_start().split_once(": ").unwrap_or((reason, ""));
        let mut m = Meaning::logoff(Status::Success, "sshd.received_disconnect").peer_at(peer_part);
        if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) {
            m.status_code = Some(code);
        }
        if !text.is_empty() {
            m = m.detail(text);
        }
        return Some(m);
    }
    None
}

/// `KEY=value ; ` fields of a sudo line.
const SUDO_KEYS: &[&str] = &[
    "TTY=", "PWD=", "USER=", "GROUP=", "TSID=", "ENV=", "CHROOT=", "CWD=", "COMMAND=",
];

fn sudo(msg: &str) -> Option<Meaning<'_>> {
    // `    alice : [REASON ; ]TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id`
    let (user, rest) = msg.split_once(" : ")?;
    let user = user.trim();
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    // COMMAND is last and may itself contain ` ; `.
    let (fields, command) = match rest.find("COMMAND=") {
        Some(i) => (rest.get(..i)?, rest.get(i + "COMMAND=".len()..)),
        None => (rest, None),
    };
    let mut reasons: Vec<&str> = Vec::new();
    let mut m = Meaning::new(
        Class::AuthorizeSession,
        ASSIGN_PRIVILEGES,
        Status::Success,
        "sudo.command",
    );
    let mut keyed = false;
    for part in fields.split(" ; ").map(str::trim).filter(|p| !p.is_empty()) {
        let part = part.trim_end_matches(';').trim();
        if let Some(v) = part.strip_prefix("TTY=") {
            keyed = true;
            m.terminal = Some(v).filter(|t| *t != "unknown");
        } else if let Some(v) = part.strip_prefix("PWD=") {
            keyed = true;
            m.cwd = Some(v);
        } else if let Some(v) = part.strip_prefix("USER=") {
            keyed = true;
            m.target = Some(v);
        } else if SUDO_KEYS.iter().any(|k| part.starts_with(k)) {
            keyed = true;
        } else {
            reasons.push(part);
        }
    }
    if !keyed && command.is_none() {
        return None;
    }
    m.actor = Some(user);
    m.command = command.map(str::trim).filter(|c| !c.is_empty());
    if let Some(reason) = reasons.first().copied() {
        m.status = Some(Status::Failure);
        m.operation = Cow::Borrowed(if reason.contains("NOT in sudoers") {
            "sudo.not_in_sudoers"
        } else if reason.contains("incorrect password") {
            "sudo.incorrect_password"
        } else if reason.contains("not allowed") {
            "sudo.command_not_allowed"
        } else if reason.contains("password is required") {
            "sudo.password_required"
        } else {
            "sudo.denied"
        });
        m.detail = Some(Cow::Borrowed(reason));
    }
    Some(m)
}

fn su(msg: &str) -> Option<Meaning<'_>> {
    // `(to root) alice on pts/0`, `FAILED SU (to root) alice on pts/0`
    let (status, rest) = match msg.strip_prefix("FAILED SU ") {
        Some(r) => (Status::Failure, r),
        None => (Status::Success, msg),
    };
    if let Some(rest) = rest.strip_prefix("(to ")
        && let Some((target, rest)) = rest.split_once(") ")
    {
        let (actor, tty) = rest.split_once(" on ").unwrap_or((rest, "none"));
        let op = if status == Status::Success {
            "su.switch_user"
        } else {
            "su.failed"
        };
        let mut m = Meaning::new(Class::AuthorizeSession, ASSIGN_PRIVILEGES, status, op);
        m.actor = Some(actor);
        m.target = Some(target);
        m.terminal = Some(tty).filter(|t| *t != "none" && !t.is_empty());
        if status == Status::Failure {
            m = m.detail("su failed");
        }
        return Some(m);
    }
    // Older su: `Successful su for root by alice`, `FAILED su for root by alice`.
    for (prefix, status, op) in [
        ("Successful su for ", Status::Success, "su.switch_user"),
        ("FAILED su for ", Status::Failure, "su.failed"),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix)
            && let Some((target, actor)) = rest.split_once(" by ")
        {
            let mut m = Meaning::new(Class::AuthorizeSession, ASSIGN_PRIVILEGES, status, op);
            m.actor = Some(actor);
            m.target = Some(target);
            return Some(m);
        }
    }
    None
}

fn logind(msg: &str) -> Option<Meaning<'_>> {
    if let Some(rest) = msg.strip_prefix("New session ")
        && let Some((id, user)) = rest.split_once(" of user ")
    {
        let mut m = Meaning::logon(Status::Success, "session.new");
        m.session_uid = Some(id);
        m.actor = Some(user.trim_end_matches('.'));
        return Some(m);
    }
    if let Some(rest) = msg.strip_prefix("Session ")
        && let Some((id, _)) = rest.split_once(" logged out.")
    {
        let mut m = Meaning::logoff(Status::Success, "session.logged_out");
        m.session_uid = Some(id);
        return Some(m);
    }
    if let Some(rest) = msg.strip_prefix("Removed session ") {
        let mut m = Meaning::logoff(Status::Success, "session.removed");
        m.session_uid = Some(rest.trim_end_matches('.'));
        return Some(m);
    }
    None
}

fn login(msg: &str) -> Option<Meaning<'_>> {
    // `FAILED LOGIN 1 FROM tty1 FOR alice, Authentication failure`
    if let Some(rest) = msg.strip_prefix("FAILED LOGIN ")
        && let Some((_, rest)) = rest.split_once(" FROM ")
        && let Some((from, rest)) = rest.split_once(" FOR ")
    {
        let (user, why) = rest.split_once(", ").unwrap_or((rest, "login failed"));
        let mut m = Meaning::logon(Status::Failure, "login.failed").detail(why);
        m.actor = Some(user);
        if from.starts_with("tty") || from.starts_with("pts/") || from.starts_with("/dev/") {
            m.terminal = Some(from);
        } else {
            m.src = Some(from);
        }
        return Some(m);
    }
    // `ROOT LOGIN  on '/dev/tty1'`
    if let Some(rest) = msg.strip_prefix("ROOT LOGIN ") {
        let mut m = Meaning::logon(Status::Success, "login.root");
        m.actor = Some("root");
        let tty = rest.trim().strip_prefix("on ").unwrap_or(rest).trim();
        m.terminal = Some(tty.trim_matches('\'')).filter(|t| !t.is_empty());
        return Some(m);
    }
    None
}

/// Services whose PAM sessions are opened for another user by the invoking one.
const SWITCHING_SERVICES: &[&str] = &[
    "su",
    "su-l",
    "sudo",
    "sudo-i",
    "runuser",
    "runuser-l",
    "pkexec",
];

/// `NAME(uid=N)` or `(uid=N)`.
fn name_uid(s: &str) -> (Option<&str>, Option<&str>) {
    let s = s.trim();
    match s.split_once("(uid=") {
        Some((name, uid)) => (
            Some(name).filter(|n| !n.is_empty()),
            uid.strip_suffix(')').filter(|u| !u.is_empty()),
        ),
        None => (Some(s).filter(|n| !n.is_empty()), None),
    }
}

/// `key=value` pairs of a PAM failure line (`logname= uid=0 euid=0 tty=ssh ruser= rhost=… user=…`).
fn pam_kv<'m>(s: &'m str, key: &str) -> Option<&'m str> {
    s.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

/// PAM module lines, from any program: `pam_unix(sshd:session): session opened for user …`.
fn pam(msg: &str) -> Option<Meaning<'_>> {
    if !msg.starts_with("pam_") {
        return None;
    }
    let (module_service, rest) = msg.split_once("): ")?;
    let (_module, service) = module_service.split_once('(')?;
    let (service, kind) = service.split_once(':').unwrap_or((service, ""));
    let service_op = |what: &str| format!("session.{what}");
    if kind == "session" {
        for (prefix, open) in [
            ("session opened for user ", true),
            ("session closed for user ", false),
        ] {
            let Some(rest) = rest.strip_prefix(prefix) else {
                continue;
            };
            let (user, by) = match rest.split_once(" by ") {
                Some((u, b)) => (u, Some(b)),
                None => (rest, None),
            };
            let (user_name, user_uid) = name_uid(user);
            let (by_name, by_uid) = by.map_or((None, None), name_uid);
            let by_name = by_name.filter(|n| *n != "LOGIN");
            let mut m = if open {
                Meaning::logon(Status::Success, service_op("open"))
            } else {
                Meaning::logoff(Status::Success, service_op("close"))
            };
            m.pam_service = Some(service);
            if by_name.is_some() || SWITCHING_SERVICES.contains(&service) {
                m.actor = by_name;
                m.actor_uid = by_uid;
                m.target = user_name;
                m.target_uid = user_uid;
            } else {
                m.actor = user_name;
                m.actor_uid = user_uid;
            }
            return Some(m);
        }
        return None;
    }
    if kind == "auth" {
        if let Some(kv) = rest.strip_prefix("authentication failure;") {
            let mut m = Meaning::logon(Status::Failure, "pam.auth_failure")
                .detail("authentication failure");
            m.pam_service = Some(service);
            m.actor = pam_kv(kv, "user");
            m.src = pam_kv(kv, "rhost");
            m.terminal = pam_kv(kv, "tty").filter(|t| *t != "ssh");
            return Some(m);
        }
        if let Some(rest) = rest.strip_prefix("auth could not identify password for [") {
            let mut m =
                Meaning::logon(Status::Failure, "pam.no_password").detail("no password given");
            m.pam_service = Some(service);
            m.actor = rest.strip_suffix(']');
            return Some(m);
        }
        if rest.starts_with("check pass; user unknown") {
            let mut m = Meaning::logon(Status::Failure, "pam.user_unknown").detail("user unknown");
            m.pam_service = Some(service);
            return Some(m);
        }
        return None;
    }
    // `PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=… user=root`
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVED: i64 = 1_767_225_600_000; // 2026-01-01

    fn syslog(line: &str) -> Value {
        let r = Record {
            bytes: line.as_bytes(),
            received_at_ms: RECEIVED,
        };
        match Syslog.parse(&r) {
            Ok(Parsed::Event(e)) => serde_json::from_str(&e.to_json()).unwrap(),
            other => panic!("{line}: {other:?}"),
        }
    }

    fn journal(json: &str) -> Result<Value, Rejection> {
        let r = Record {
            bytes: json.as_bytes(),
            received_at_ms: RECEIVED,
        };
        Journald.parse(&r).map(|p| match p {
            Parsed::Event(e) => serde_json::from_str(&e.to_json()).unwrap(),
            Parsed::NotAnEvent(w) => panic!("{w}"),
        })
    }

    #[test]
    fn rfc3164_file_line_with_host() {
        let v = syslog(
            "Mar  7 10:15:01 web1 sshd[1234]: Accepted publickey for alice from 192.0.2.10 port 51234 ssh2: RSA SHA256:abcDEF",
        );
        assert_eq!(v["class_uid"], 3002);
        assert_eq!(v["activity_id"], 1);
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["actor"]["user"]["credential_uid"], "SHA256:abcDEF");
        assert_eq!(v["src_endpoint"]["ip"], "192.0.2.10");
        assert_eq!(v["src_endpoint"]["port"], 51234);
        assert_eq!(v["dst_endpoint"]["hostname"], "web1");
        assert_eq!(v["api"]["operation"], "sshd.accepted_publickey");
        assert_eq!(v["api"]["service"]["name"], "sshd");
        assert_eq!(v["unmapped"]["pid"], 1234);
        assert_eq!(v["unmapped"]["key_type"], "RSA");
        assert_eq!(v["time"], parse_rfc3339("2025-03-07T10:15:01Z").unwrap());
        assert_eq!(v["metadata"]["original_time"], "Mar  7 10:15:01");
    }

    #[test]
    fn rfc3164_datagram_without_host_and_with_pri() {
        let v = syslog(
            "<38>Nov 21 13:59:05 sshd[20745]: Invalid user nosuchuser from 127.0.0.1 port 37054",
        );
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["status_detail"], "invalid user");
        assert_eq!(v["actor"]["user"]["name"], "nosuchuser");
        assert_eq!(v["api"]["operation"], "sshd.invalid_user");
        assert!(v.get("dst_endpoint").is_none());
    }

    #[test]
    fn rfc5424_line() {
        let v = syslog(
            "<86>1 2024-01-02T03:04:05.123Z db1 sudo 77 - [meta sequenceId=\"1\"] alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u",
        );
        assert_eq!(v["time"], 1_704_164_645_123_i64);
        assert_eq!(v["class_uid"], 3003);
        assert_eq!(v["activity_name"], "Assign Privileges");
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["actor"]["session"]["terminal"], "pts/0");
        assert_eq!(v["user"]["name"], "root");
        assert_eq!(v["unmapped"]["command"], "/usr/bin/id -u");
        assert_eq!(v["unmapped"]["cwd"], "/home/alice");
        assert_eq!(v["unmapped"]["structured_data"], "[meta sequenceId=\"1\"]");
        let nil = syslog("<13>1 - - - - - -");
        assert_eq!(nil["class_uid"], 0);
        assert_eq!(nil["time"], RECEIVED);
    }

    #[test]
    fn rsyslog_high_precision_stamp() {
        let v =
            syslog("2024-05-01T12:00:00.123456+02:00 h su[9]: FAILED SU (to root) bob on pts/1");
        assert_eq!(
            v["time"],
            parse_rfc3339("2024-05-01T10:00:00.123Z").unwrap()
        );
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["api"]["operation"], "su.failed");
        assert_eq!(v["actor"]["user"]["name"], "bob");
        assert_eq!(v["user"]["name"], "root");
    }

    #[test]
    fn sshd_messages() {
        let cases: &[(&str, &str, u8, u8, Option<&str>)] = &[
            (
                "Failed password for invalid user admin from 203.0.113.5 port 4242 ssh2",
                "sshd.failed_password",
                1,
                2,
                Some("admin"),
            ),
            (
                "Failed password for root from 203.0.113.5 port 4242 ssh2",
                "sshd.failed_password",
                1,
                2,
                Some("root"),
            ),
            (
                "Failed none for invalid user x from 203.0.113.5 port 1 ssh2",
                "sshd.failed_none",
                1,
                2,
                Some("x"),
            ),
            (
                "Accepted keyboard-interactive/pam for bob from 2001:db8::1 port 22 ssh2",
                "sshd.accepted_keyboard_interactive",
                1,
                1,
                Some("bob"),
            ),
            (
                "Connection closed by authenticating user root 10.0.0.1 port 5 [preauth]",
                "sshd.connection_closed_preauth",
                2,
                0,
                Some("root"),
            ),
            (
                "Connection closed by invalid user foo bar 10.0.0.1 port 5 [preauth]",
                "sshd.connection_closed_preauth",
                2,
                0,
                Some("foo bar"),
            ),
            (
                "Connection closed by 10.0.0.1 port 5 [preauth]",
                "sshd.connection_closed_preauth",
                2,
                0,
                None,
            ),
            (
                "Disconnected from user root 127.0.0.1 port 37024",
                "sshd.disconnected",
                2,
                1,
                Some("root"),
            ),
            (
                "Received disconnect from 127.0.0.1 port 37024:11: disconnected by user",
                "sshd.received_disconnect",
                2,
                1,
                None,
            ),
            (
                "Disconnecting invalid user admin 10.0.0.1 port 40500: Too many authentication failures [preauth]",
                "sshd.disconnecting_preauth",
                2,
                0,
                Some("admin"),
            ),
            (
                "error: maximum authentication attempts exceeded for invalid user a from 10.0.0.9 port 7 ssh2 [preauth]",
                "sshd.max_auth_attempts",
                1,
                2,
                Some("a"),
            ),
            (
                "PAM: Authentication failure for illegal user b from 10.0.0.9",
                "sshd.pam_auth_failure",
                1,
                2,
                Some("b"),
            ),
            (
                "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.9  user=root",
                "sshd.pam_more_failures",
                1,
                2,
                Some("root"),
            ),
            (
                "User c from 10.0.0.9 not allowed because not listed in AllowUsers",
                "sshd.user_not_allowed",
                1,
                2,
                Some("c"),
            ),
            (
                "pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)",
                "session.open",
                1,
                1,
                Some("root"),
            ),
            (
                "pam_unix(sshd:session): session closed for user root",
                "session.close",
                2,
                1,
                Some("root"),
            ),
            (
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=127.0.0.1  user=root",
                "pam.auth_failure",
                1,
                2,
                Some("root"),
            ),
        ];
        for (msg, op, act, status, actor) in cases {
            let v = syslog(&format!("Jan  2 03:04:05 h sshd[1]: {msg}"));
            assert_eq!(v["api"]["operation"], *op, "{msg}");
            assert_eq!(v["class_uid"], 3002, "{msg}");
            assert_eq!(v["activity_id"], *act, "{msg}");
            assert_eq!(v["status_id"], *status, "{msg}");
            assert_eq!(v["actor"]["user"]["name"].as_str(), *actor, "{msg}");
        }
        let v = syslog(
            "Jan  2 03:04:05 h sshd[1]: Received disconnect from 127.0.0.1 port 37024:11: bye [preauth]",
        );
        assert_eq!(v["status_code"], "11");
        assert_eq!(v["status_detail"], "bye");
        assert_eq!(v["src_endpoint"]["port"], 37024);
        let v = syslog(
            "Jan  2 03:04:05 h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=127.0.0.1  user=root",
        );
        assert_eq!(v["src_endpoint"]["ip"], "127.0.0.1");
        assert!(v["actor"].get("session").is_none());
    }

    #[test]
    fn sudo_and_su() {
        let v = syslog(
            "Jan  2 03:04:05 h sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/sh -c 'a ; b'",
        );
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["api"]["operation"], "sudo.incorrect_password");
        assert_eq!(v["status_detail"], "3 incorrect password attempts");
        assert_eq!(v["unmapped"]["command"], "/bin/sh -c 'a ; b'");
        let v = syslog(
            "Jan  2 03:04:05 h sudo:   nobody : user NOT in sudoers ; PWD=/ ; USER=root ; COMMAND=/usr/bin/true",
        );
        assert_eq!(v["api"]["operation"], "sudo.not_in_sudoers");
        assert_eq!(v["actor"]["user"]["name"], "nobody");
        let v = syslog(
            "Jan  2 03:04:05 h sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        );
        assert_eq!(v["api"]["operation"], "session.open");
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["actor"]["user"]["uid"], "1000");
        assert_eq!(v["user"]["name"], "root");
        let v = syslog(
            "Jan  2 03:04:05 h sudo: pam_unix(sudo:session): session opened for user nobody(uid=65534) by (uid=0)",
        );
        assert_eq!(v["actor"]["user"]["uid"], "0");
        assert_eq!(v["user"]["name"], "nobody");
        let v = syslog("Jan  2 03:04:05 h su[2]: (to root) alice on pts/0");
        assert_eq!(v["class_uid"], 3003);
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["actor"]["session"]["terminal"], "pts/0");
        let v = syslog(
            "Jan  2 03:04:05 h su[2]: pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=root",
        );
        assert_eq!(v["api"]["operation"], "pam.auth_failure");
        assert_eq!(v["actor"]["user"]["name"], "root");
        assert_eq!(v["actor"]["session"]["terminal"], "/dev/pts/0");
        assert!(v.get("src_endpoint").is_none());
    }

    #[test]
    fn logind_and_login() {
        let v = syslog("Jan  2 03:04:05 h systemd-logind[400]: New session 3 of user alice.");
        assert_eq!(v["api"]["operation"], "session.new");
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["actor"]["session"]["uid"], "3");
        let v = syslog(
            "Jan  2 03:04:05 h login[5]: pam_unix(login:session): session opened for user alice(uid=1000) by LOGIN(uid=0)",
        );
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert!(v.get("user").is_none());
        let v = syslog(
            "Jan  2 03:04:05 h login[5]: FAILED LOGIN 1 FROM tty1 FOR alice, Authentication failure",
        );
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["actor"]["user"]["name"], "alice");
    }

    #[test]
    fn other_programs_are_base_events_with_a_reason() {
        let v = syslog("Jan  2 03:04:05 h CRON[7]: (root) CMD (run-parts /etc/cron.hourly)");
        assert_eq!(v["class_uid"], 0);
        assert_eq!(
            v["status_detail"],
            "syslog message from `CRON` is not an access event"
        );
        assert_eq!(v["api"]["service"]["name"], "CRON");
        assert_eq!(v["dst_endpoint"]["hostname"], "h");
        let v = syslog("Jan  2 03:04:05 h last message repeated 3 times");
        assert_eq!(v["class_uid"], 0);
        let v = syslog("<38>Nov 21 13:59:00 sshd[20603]: Server listening on 127.0.0.1 port 2299.");
        assert_eq!(v["class_uid"], 0);
        assert_eq!(
            v["status_detail"],
            "syslog message from `sshd` is not an access event"
        );
    }

    #[test]
    fn not_syslog_is_not_mine() {
        for line in [
            "",
            "hello world",
            "{\"a\":1}",
            "The quick brown fox",
            "2024-01-02 03:04:05.123 UTC [42] LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<not logged>",
            "<999999>",
            "<12>Foo 1 00:00:00 x",
        ] {
            let r = Record {
                bytes: line.as_bytes(),
                received_at_ms: RECEIVED,
            };
            assert!(
                matches!(Syslog.parse(&r), Err(Rejection::NotMine)),
                "{line}"
            );
            assert!(!Syslog.sniff(&mut Probe::new(line.as_bytes())), "{line}");
        }
    }

    #[test]
    fn never_panics_on_prefixes_of_real_lines() {
        let lines = [
            "<86>1 2024-01-02T03:04:05.123Z db1 sudo 77 - [a b=\"\\]\"][c] alice : TTY=pts/0 ; COMMAND=x",
            "Nov 21 13:59:08 h sshd[20745]: Failed password for invalid user nosuchuser from 127.0.0.1 port 37054 ssh2",
            "Nov 21 13:59:08 h sshd[1]: Received disconnect from 2001:db8::1 port 22:11: x [preauth]",
            "Nov 21 13:59:08 h sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
            "Nov 21 13:59:08 h su: FAILED SU (to root) x on pts/0",
            "Nov 21 13:59:08 h login: FAILED LOGIN 1 FROM tty1 FOR alice, Authentication failure",
        ];
        for line in lines {
            for cut in 0..=line.len() {
                let Some(prefix) = line.get(..cut) else {
                    continue;
                };
                let r = Record {
                    bytes: prefix.as_bytes(),
                    received_at_ms: RECEIVED,
                };
                let _ = Syslog.parse(&r);
            }
        }
        let bad =
            b"Jan  2 03:04:05 h sshd[1]: Accepted password for \xff\xfe from 1.2.3.4 port 1 ssh2";
        let r = Record {
            bytes: bad,
            received_at_ms: RECEIVED,
        };
        assert!(matches!(Syslog.parse(&r), Ok(Parsed::Event(_))));
    }

    #[test]
    fn journal_entries() {
        let v = journal(r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1704164645123456","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"sshd","_COMM":"sshd","_PID":"812","MESSAGE":"Accepted password for alice from 192.0.2.4 port 50000 ssh2","_SYSTEMD_UNIT":"ssh.service"}"#).unwrap();
        assert_eq!(v["time"], 1_704_164_645_123_i64);
        assert_eq!(v["api"]["operation"], "sshd.accepted_password");
        assert_eq!(v["metadata"]["uid"], "s=1;i=2");
        assert_eq!(v["unmapped"]["systemd_unit"], "ssh.service");
        assert_eq!(v["unmapped"]["pid"], 812);
        assert_eq!(v["metadata"]["log_name"], serde_json::Value::Null); // set by the registry
        // MESSAGE as bytes (not UTF-8).
        let bytes: Vec<String> = b"Invalid user \xffx from 10.0.0.1 port 2"
            .iter()
            .map(u8::to_string)
            .collect();
        let v = journal(&format!(
            r#"{{"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"sshd","MESSAGE":[{}]}}"#,
            bytes.join(",")
        ))
        .unwrap();
        assert_eq!(v["api"]["operation"], "sshd.invalid_user");
        assert_eq!(v["actor"]["user"]["name"], "\u{fffd}x");
        assert_eq!(v["unmapped"]["message_encoding"], "bytes (not UTF-8)");
        // Other programs.
        let v = journal(
            r#"{"__CURSOR":"c","MESSAGE":"Started Daily apt.","SYSLOG_IDENTIFIER":"systemd"}"#,
        )
        .unwrap();
        assert_eq!(v["class_uid"], 0);
        assert_eq!(
            v["status_detail"],
            "journald message from `systemd` is not an access event"
        );
        assert_eq!(v["time"], RECEIVED);
        // Wrong types, nulls and foreign objects.
        assert!(matches!(
            journal(r#"{"__CURSOR":"c","MESSAGE":{"a":1}}"#),
            Err(Rejection::Invalid(_))
        ));
        assert!(matches!(
            journal(r#"{"__CURSOR":"c","MESSAGE":null}"#),
            Err(Rejection::Invalid(_))
        ));
        assert!(matches!(
            journal(r#"{"__CURSOR":"c","MESSAGE":[300]}"#),
            Err(Rejection::Invalid(_))
        ));
        assert!(matches!(
            journal(r#"{"MESSAGE":"x"}"#),
            Err(Rejection::NotMine)
        ));
        assert!(matches!(
            journal(r#"{"eventVersion":"1"}"#),
            Err(Rejection::NotMine)
        ));
        assert!(matches!(journal("not json"), Err(Rejection::NotMine)));
        let deep = format!(
            r#"{{"__CURSOR":"c","MESSAGE":{}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        // Beyond serde_json's depth limit: not readable as JSON at all, so not claimed.
        assert!(journal(&deep).is_err());
        // A repeated field: the first value.
        let v = journal(r#"{"__CURSOR":"c","MESSAGE":["New session 4 of user bob.","x"],"SYSLOG_IDENTIFIER":"systemd-logind"}"#).unwrap();
        assert_eq!(v["actor"]["user"]["name"], "bob");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_messages_never_panic(
            prog in "(sshd|sudo|su|login|systemd-logind|cron)",
            msg in "((Accepted|Failed|Invalid|Connection closed by|Received disconnect from|Disconnecting|PAM|pam_unix\\(su:(auth|session)\\):|\\(to|FAILED|New session|[a-z]+ :) ?)?[ -~]{0,60}",
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let mut line = format!("<38>Jan  2 03:04:05 h {prog}[1]: {msg}").into_bytes();
            line.extend_from_slice(&tail);
            let r = Record { bytes: &line, received_at_ms: RECEIVED };
            proptest::prop_assert!(matches!(Syslog.parse(&r), Ok(Parsed::Event(_))));
            let entry = serde_json::json!({"__CURSOR": "c", "SYSLOG_IDENTIFIER": prog, "MESSAGE": msg});
            let bytes = entry.to_string();
            let r = Record { bytes: bytes.as_bytes(), received_at_ms: RECEIVED };
            proptest::prop_assert!(matches!(Journald.parse(&r), Ok(Parsed::Event(_))));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let r = Record { bytes: &bytes, received_at_ms: RECEIVED };
            let _ = Syslog.parse(&r);
            let _ = Journald.parse(&r);
        }
    }
}
