//! Kubernetes audit events (`audit.k8s.io/v1`, and the older `v1beta1`).
//!
//! One audit `Event` — a line of the API server's log backend, a pretty-printed single event, an
//! item of a webhook backend `EventList`, or an EKS export of the audit log through CloudWatch
//! Logs — becomes one API Activity event. An `EventList` is split into its items
//! ([`Parser::split`]), each stored and normalised as a record of its own.
//!
//! The API server can log one request several times, once per stage, all with the same
//! `auditID`. Parsers are stateless, so the stages are collapsed by a fixed rule (see
//! [`stage_rule`] and `docs/events/k8s-audit.md`): the record that carries the request's outcome
//! is the event, the others are recognised as no event of their own.
//!
//! The record is deserialised into borrowed, typed structs; the request and response bodies
//! (`requestObject`, `responseObject`) are skipped, never copied: they stay in `raw_data`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use acta_event::{
    Account, ApiRequest, ApiResponse, Class, Cloud, Endpoint, Event, Group, HttpRequest, Product,
    Resource, Session, Severity, Status, Url, User, activity,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::jsonobj::Text;
use super::time::parse_rfc3339;
use super::{Format, Parsed, Parser, Probe, Record, Rejection, json};

/// The Kubernetes audit parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct K8sAudit;

type Str<'a> = Option<Text<'a>>;

/// An audit `Event`, and the wrapper fields of the shapes that carry one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw<'a> {
    #[serde(borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    api_version: Str<'a>,
    #[serde(borrow)]
    level: Str<'a>,
    #[serde(rename = "auditID", borrow)]
    audit_id: Str<'a>,
    #[serde(borrow)]
    stage: Str<'a>,
    #[serde(rename = "requestURI", borrow)]
    request_uri: Str<'a>,
    #[serde(borrow)]
    verb: Str<'a>,
    #[serde(borrow)]
    user: Option<UserInfo<'a>>,
    #[serde(borrow)]
    impersonated_user: Option<UserInfo<'a>>,
    #[serde(rename = "sourceIPs", borrow)]
    source_ips: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    user_agent: Str<'a>,
    #[serde(borrow)]
    object_ref: Option<ObjectRef<'a>>,
    #[serde(borrow)]
    response_status: Option<ResponseStatus<'a>>,
    #[serde(borrow)]
    request_received_timestamp: Str<'a>,
    #[serde(borrow)]
    stage_timestamp: Str<'a>,
    /// `v1beta1` and older: the time the event was logged.
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<ObjectMeta<'a>>,
    #[serde(borrow)]
    annotations: Option<BTreeMap<Text<'a>, Text<'a>>>,
    /// `EventList`.
    #[serde(borrow)]
    items: Option<&'a RawValue>,
    // CloudWatch Logs: a log event (`filter-log-events`, subscription `logEvents`) carries the
    // audit event as a string in `message`; Logs Insights results in `@message`.
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "@message", borrow)]
    at_message: Option<&'a RawValue>,
    #[serde(borrow)]
    log_stream_name: Option<&'a RawValue>,
    #[serde(rename = "@logStream", borrow)]
    at_log_stream: Option<&'a RawValue>,
    #[serde(rename = "@log", borrow)]
    at_log: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct UserInfo<'a> {
    #[serde(borrow)]
    username: Str<'a>,
    #[serde(borrow)]
    uid: Str<'a>,
    #[serde(borrow)]
    groups: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    extra: Option<BTreeMap<Text<'a>, Vec<Text<'a>>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef<'a> {
    #[serde(borrow)]
    resource: Str<'a>,
    #[serde(borrow)]
    subresource: Str<'a>,
    #[serde(borrow)]
    namespace: Str<'a>,
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    uid: Str<'a>,
    #[serde(borrow)]
    api_group: Str<'a>,
    #[serde(borrow)]
    api_version: Str<'a>,
}

#[derive(Deserialize)]
struct ResponseStatus<'a> {
    code: Option<i64>,
    #[serde(borrow)]
    status: Str<'a>,
    #[serde(borrow)]
    reason: Str<'a>,
    #[serde(borrow)]
    message: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectMeta<'a> {
    #[serde(borrow)]
    creation_timestamp: Str<'a>,
}

/// An `EventList`, for splitting.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    #[serde(borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    api_version: Str<'a>,
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
}

const API_GROUP: &str = "audit.k8s.io/";

impl Raw<'_> {
    /// Whether this is an audit event: an `audit.k8s.io` API version, or (for producers that
    /// drop `apiVersion`) the request fields only an audit event has together. A core `Event`
    /// (`v1`, `events.k8s.io`) is not one.
    fn is_event(&self) -> bool {
        match self.api_version.as_deref() {
            Some(v) => v.starts_with(API_GROUP) && self.kind.as_deref() != Some("EventList"),
            None => {
                matches!(self.kind.as_deref(), None | Some("Event"))
                    && self.audit_id.is_some()
                    && self.request_uri.is_some()
                    && self.verb.is_some()
            }
        }
    }

    fn is_list(&self) -> bool {
        self.kind.as_deref() == Some("EventList")
            && self
                .api_version
                .as_deref()
                .is_none_or(|v| v.starts_with(API_GROUP))
    }
}

/// Whether a JSON object is an audit event by its keys (see [`Raw::is_event`]).
fn object_is_event(o: &Map<String, Value>) -> bool {
    let s = |k: &str| o.get(k).and_then(Value::as_str);
    match s("apiVersion") {
        Some(v) => v.starts_with(API_GROUP),
        None => {
            (s("kind") == Some("EventList") && o.contains_key("items"))
                || (matches!(o.get("kind"), None | Some(Value::String(_)))
                    && s("kind").is_none_or(|k| k == "Event")
                    && o.contains_key("auditID")
                    && o.contains_key("requestURI")
                    && o.contains_key("verb"))
        }
    }
}

/// Whether a CloudWatch `message`/`@message` value holds an audit event.
fn wrapped_is_event(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            s.trim_start().starts_with('{') && s.contains(API_GROUP) && s.contains("auditID")
        }
        Value::Object(o) => object_is_event(o),
        _ => false,
    }
}

impl Parser for K8sAudit {
    fn format(&self) -> Format {
        Format::K8sAudit
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        probe.object().is_some_and(|o| {
            object_is_event(o)
                || o.get("message").is_some_and(wrapped_is_event)
                || o.get("@message").is_some_and(wrapped_is_event)
        })
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let raw: Raw<'_> = match json::from_record(record.bytes) {
            Ok(r) => r,
            Err(e) => return Err(self.unusable(record.bytes, &e)),
        };
        if raw.is_list() {
            return list_record(&raw);
        }
        if raw.is_event() {
            let raw_text = json::utf8(record.bytes).map_err(Rejection::Invalid)?;
            return Ok(collapse(&raw).map_or_else(
                || Parsed::Event(Box::new(map(&raw, raw_text, record, None))),
                Parsed::NotAnEvent,
            ));
        }
        // CloudWatch Logs wrappers.
        let Some(inner) = raw.at_message.or(raw.message) else {
            return Err(Rejection::NotMine);
        };
        let text: Cow<'_, str> = if inner.get().starts_with('"') {
            match serde_json::from_str::<Cow<'_, str>>(inner.get()) {
                Ok(s) => s,
                Err(_) => return Err(Rejection::NotMine),
            }
        } else if inner.get().starts_with('{') {
            Cow::Borrowed(inner.get())
        } else {
            return Err(Rejection::NotMine);
        };
        if !text.trim_start().starts_with('{') {
            return Err(Rejection::NotMine);
        }
        let event: Raw<'_> = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(e) => return Err(self.unusable(text.as_bytes(), &e)),
        };
        if event.is_list() {
            return list_record(&event);
        }
        if !event.is_event() {
            return Err(Rejection::NotMine);
        }
        let raw_text = json::utf8(record.bytes).map_err(Rejection::Invalid)?;
        let wrapper = Wrapper {
            log_stream: raw
                .at_log_stream
                .or(raw.log_stream_name)
                .and_then(raw_string),
            log: raw.at_log.and_then(raw_string),
        };
        Ok(collapse(&event).map_or_else(
            || Parsed::Event(Box::new(map(&event, raw_text, record, Some(wrapper)))),
            Parsed::NotAnEvent,
        ))
    }

    fn split(&self, bytes: &[u8]) -> Option<Vec<Range<usize>>> {
        // Cheap refusal for the records of every other format.
        memchr::memmem::find(bytes, b"EventList")?;
        let list: List<'_> = json::from_record(bytes).ok()?;
        if list.kind.as_deref() != Some("EventList")
            || list
                .api_version
                .as_deref()
                .is_some_and(|v| !v.starts_with(API_GROUP))
            || list.items.is_empty()
        {
            return None;
        }
        let base = bytes.as_ptr() as usize;
        list.items
            .iter()
            .map(|item| {
                let text = item.get().as_bytes();
                let start = (text.as_ptr() as usize).checked_sub(base)?;
                let range = start..start.checked_add(text.len())?;
                (bytes.get(range.clone())? == text).then_some(range)
            })
            .collect()
    }
}

impl K8sAudit {
    /// The rejection for a record serde could not read: invalid when its identifying keys say
    /// it is an audit event (a known field of the wrong type), somebody else's otherwise.
    fn unusable(&self, bytes: &[u8], e: &serde_json::Error) -> Rejection {
        if head_is_event(bytes) {
            Rejection::invalid(format!("unusable record: {e}"))
        } else {
            Rejection::NotMine
        }
    }
}

/// The identifying keys of an audit event, each kept raw so that a wrong type or deep nesting
/// elsewhere cannot hide them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    #[serde(borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    api_version: Option<&'a RawValue>,
    #[serde(rename = "auditID", borrow)]
    audit_id: Option<&'a RawValue>,
    #[serde(rename = "requestURI", borrow)]
    request_uri: Option<&'a RawValue>,
    #[serde(borrow)]
    verb: Option<&'a RawValue>,
}

/// Whether a record serde could not read as an event is one by its identifying keys (the rule
/// of [`Raw::is_event`]).
fn head_is_event(bytes: &[u8]) -> bool {
    let Ok(h) = json::from_record::<Head<'_>>(bytes) else {
        return false;
    };
    let text =
        |v: Option<&RawValue>| v.and_then(|v| serde_json::from_str::<Cow<'_, str>>(v.get()).ok());
    match (h.api_version, text(h.api_version)) {
        (_, Some(v)) => v.starts_with(API_GROUP),
        (Some(_), None) => false,
        (None, None) => {
            text(h.kind).is_none_or(|k| k == "Event")
                && (h.kind.is_none() || text(h.kind).is_some())
                && h.audit_id.is_some()
                && h.request_uri.is_some()
                && h.verb.is_some()
        }
    }
}

/// An `EventList` that reached the parser unsplit: an empty one is no event; a non-empty one
/// must be split into its items ([`Parser::split`]) rather than lose them.
fn list_record(raw: &Raw<'_>) -> Result<Parsed, Rejection> {
    let empty = raw.items.is_none_or(|i| {
        serde_json::from_str::<Vec<&RawValue>>(i.get()).is_ok_and(|v| v.is_empty())
    });
    if empty {
        Ok(Parsed::NotAnEvent("empty EventList"))
    } else {
        Err(Rejection::invalid(
            "an EventList must be split into its items, each an event",
        ))
    }
}

/// A JSON string value, unescaped.
fn raw_string(v: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(v.get())
        .ok()
        .filter(|s| !s.is_empty())
}

/// Where a CloudWatch Logs record came from.
struct Wrapper {
    log_stream: Option<String>,
    /// Logs Insights `@log`: `account:log-group`.
    log: Option<String>,
}

const RECEIVED: &str = "RequestReceived stage: the request's ResponseComplete (or Panic) record carries its outcome and is the event";
const STARTED: &str = "ResponseStarted stage of a long-running request (watch, log, proxy): its ResponseComplete record is the event";
const UPGRADE_DONE: &str = "ResponseComplete of an upgraded connection (exec, attach, port-forward): the session's ResponseStarted record is the event";

/// Stage collapsing: `None` when the record is the request's event, or why it is not.
///
/// - `ResponseComplete`, `Panic`, an unknown stage or none at all: the event.
/// - `RequestReceived`: not an event; the later stage of the same request carries its outcome.
/// - `ResponseStarted` with code 101 (a connection upgraded for exec, attach or port-forward):
///   the event, because it is the moment the session is granted and begins, delivered as it
///   happens; the session's `ResponseComplete` (also code 101, written when it ends) is then
///   not an event.
/// - any other `ResponseStarted` (watch, log, proxy streams): not an event; `ResponseComplete`
///   follows.
pub fn stage_rule(stage: Option<&str>, code: Option<i64>) -> Option<&'static str> {
    match (stage, code) {
        (Some("RequestReceived"), _) => Some(RECEIVED),
        (Some("ResponseStarted"), Some(101)) => None,
        (Some("ResponseStarted"), _) => Some(STARTED),
        (Some("ResponseComplete"), Some(101)) => Some(UPGRADE_DONE),
        _ => None,
    }
}

fn collapse(raw: &Raw<'_>) -> Option<&'static str> {
    stage_rule(
        raw.stage.as_deref(),
        raw.response_status.as_ref().and_then(|s| s.code),
    )
}

fn own(s: &Str<'_>) -> Option<String> {
    s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The kind of identity a Kubernetes username names, and its OCSF `type_id`.
pub fn user_type(username: &str) -> (&'static str, u8) {
    if username.starts_with("system:serviceaccount:") {
        ("ServiceAccount", 3)
    } else if username.starts_with("system:node:") {
        ("Node", 3)
    } else if username == "system:anonymous" {
        ("Anonymous", 99)
    } else if username.starts_with("system:") {
        ("System", 3)
    } else {
        ("User", 1)
    }
}

fn user(u: &UserInfo<'_>) -> User {
    let name = own(&u.username);
    let kind = name.as_deref().map(user_type);
    let extra = |k: &str| {
        u.extra
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(|v| v.first())
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
    };
    User {
        uid: own(&u.uid),
        r#type: kind.map(|k| k.0.to_owned()),
        type_id: kind.map(|k| k.1),
        // A service account token's id (Kubernetes 1.29+), or the IAM access key EKS records.
        credential_uid: extra("authentication.kubernetes.io/credential-id")
            .or_else(|| extra("accessKeyId")),
        groups: u
            .groups
            .iter()
            .flatten()
            .filter(|g| !g.is_empty())
            .map(|g| Group {
                name: g.to_string(),
            })
            .collect(),
        name,
        ..User::default()
    }
}

/// HTTP method of a request by its verb (resource verbs, and the lower-case methods that
/// non-resource requests log as their verb).
fn http_method(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "get" | "list" | "watch" => "GET",
        "create" | "post" => "POST",
        "update" | "put" => "PUT",
        "patch" => "PATCH",
        "delete" | "deletecollection" => "DELETE",
        "head" => "HEAD",
        "options" => "OPTIONS",
        _ => return None,
    })
}

/// OCSF API activity of a verb.
pub fn verb_activity(verb: &str) -> u8 {
    match verb {
        "create" | "post" => activity::CREATE,
        "get" | "list" | "watch" | "head" | "options" => activity::READ,
        "update" | "patch" | "put" => activity::UPDATE,
        "delete" | "deletecollection" => activity::DELETE,
        _ => activity::OTHER,
    }
}

fn map(raw: &Raw<'_>, raw_text: &str, record: &Record<'_>, wrapper: Option<Wrapper>) -> Event {
    // When the request was made: constant across its stages, and for a long-running request
    // (watch, exec) the start, not the end.
    let legacy_ts = raw.timestamp.and_then(raw_string);
    let created = raw
        .metadata
        .as_ref()
        .and_then(|m| own(&m.creation_timestamp));
    let candidates = [
        own(&raw.request_received_timestamp),
        own(&raw.stage_timestamp),
        legacy_ts,
        created,
    ];
    let chosen = candidates
        .iter()
        .flatten()
        .find_map(|s| parse_rfc3339(s).map(|t| (t, s.clone())));
    let mut e = Event::new(
        Class::ApiActivity,
        chosen.as_ref().map_or(record.received_at_ms, |c| c.0),
        raw_text.to_owned(),
    );
    match chosen {
        Some((_, s)) => e.metadata.original_time = Some(s),
        None => e.unmap(
            "acta_time_note",
            "requestReceivedTimestamp, stageTimestamp and timestamp missing or unreadable; time of receipt used",
        ),
    }
    let verb = raw.verb.as_deref().unwrap_or_default();
    e.activity_id = verb_activity(verb);
    e.severity = Severity::Informational;

    let annotation = |k: &str| {
        raw.annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string())
    };
    let decision = annotation("authorization.k8s.io/decision");
    let authz_reason = annotation("authorization.k8s.io/reason");

    // Outcome.
    let rs = raw.response_status.as_ref();
    let code = rs.and_then(|s| s.code);
    e.status = match (code, raw.stage.as_deref()) {
        (_, Some("Panic")) => Status::Failure,
        (Some(c), _) if (100..400).contains(&c) => Status::Success,
        (Some(_), _) => Status::Failure,
        (None, _) if decision.as_deref() == Some("forbid") => Status::Failure,
        (None, _) if rs.and_then(|s| s.status.as_deref()) == Some("Failure") => Status::Failure,
        (None, _) => Status::Unknown,
    };
    e.status_code = code.map(|c| c.to_string());
    e.status_detail = rs
        .and_then(|s| own(&s.message).or_else(|| own(&s.reason)))
        .or_else(|| authz_reason.clone());
    if let Some(rs) = rs
        && (code.is_some() || rs.reason.is_some() || rs.message.is_some())
    {
        e.api_mut().response = Some(ApiResponse {
            code,
            error: own(&rs.reason),
            error_message: own(&rs.message),
        });
    }

    // What.
    let oref = raw.object_ref.as_ref();
    let api = e.api_mut();
    api.operation = own(&raw.verb);
    if let Some(o) = oref {
        if o.resource.is_some() {
            api.set_service(own(&o.api_group).unwrap_or_else(|| "core".to_owned()));
        }
        api.version = own(&o.api_version);
    }
    if let Some(id) = own(&raw.audit_id) {
        api.request = Some(ApiRequest { uid: Some(id) });
    }
    if let Some(o) = oref
        && let Some(resource) = own(&o.resource)
    {
        let r#type = match own(&o.subresource) {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource,
        };
        e.resources.push(Resource {
            uid: own(&o.uid),
            name: own(&o.name),
            r#type: Some(r#type),
            namespace: own(&o.namespace),
            ..Resource::default()
        });
    }

    // Who.
    if let Some(u) = &raw.user {
        e.actor.user = Some(user(u));
        // EKS: the IAM role an assumed-role session came from.
        let issuer = u
            .extra
            .as_ref()
            .and_then(|m| m.get("canonicalArn"))
            .and_then(|v| v.first())
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string());
        if issuer.is_some() {
            e.actor.session = Some(Session {
                issuer,
                ..Session::default()
            });
        }
        if let Some(extra) = &u.extra
            && !extra.is_empty()
        {
            let m: Map<String, Value> = extra
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Value::Array(v.iter().map(|s| Value::from(&**s)).collect()),
                    )
                })
                .collect();
            e.unmap("userExtra", m);
        }
    }
    // The identity the request acted as: the actor needed `impersonate` on it, and
    // authorisation was decided for it.
    if let Some(u) = &raw.impersonated_user {
        e.user = Some(user(u));
    }

    // From where, with what.
    let mut ips = raw
        .source_ips
        .iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string());
    if let Some(first) = ips.next() {
        e.src_endpoint = Some(Endpoint {
            ip: Some(first),
            intermediate_ips: ips.collect(),
            ..Endpoint::default()
        });
    }
    let method = http_method(verb);
    let path = own(&raw.request_uri);
    let ua = own(&raw.user_agent);
    if method.is_some() || path.is_some() || ua.is_some() {
        e.http_request = Some(HttpRequest {
            user_agent: ua,
            http_method: method.map(str::to_owned),
            url: path.map(|p| Url {
                path: Some(p),
                url_string: None,
            }),
        });
    }

    // About the record.
    e.metadata.uid = own(&raw.audit_id);
    e.metadata.correlation_uid = own(&raw.audit_id);
    e.metadata.event_code = own(&raw.stage);
    e.metadata.product = Some(Product::new("Kubernetes", "Kubernetes"));
    if let Some(v) = own(&raw.level) {
        e.unmap("level", v);
    }
    if let Some(v) = own(&raw.api_version) {
        e.unmap("apiVersion", v);
    }
    if let Some(a) = &raw.annotations
        && !a.is_empty()
    {
        let m: Map<String, Value> = a
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(&**v)))
            .collect();
        e.unmap("annotations", m);
    }
    if let Some(t) = own(&raw.stage_timestamp)
        && e.metadata.original_time.as_deref() != Some(t.as_str())
    {
        e.unmap("stageTimestamp", t);
    }
    if let Some(w) = wrapper {
        // `@log` is `account-id:log-group` (`/aws/eks/<cluster>/cluster`).
        let account = w
            .log
            .as_deref()
            .and_then(|l| l.split_once(':'))
            .map(|(a, _)| a.to_owned())
            .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
        e.cloud = Some(Cloud {
            provider: "AWS".into(),
            account: account.map(|uid| Account {
                uid: Some(uid),
                name: None,
            }),
            ..Cloud::default()
        });
        if let Some(s) = w.log_stream {
            e.unmap("logStream", s);
        }
        if let Some(l) = w.log {
            e.unmap("log", l);
        }
    }
    e.message = Some(message(&e, verb));
    e
}

fn message(e: &Event, verb: &str) -> String {
    let who = e.who();
    let mut s = who.to_owned();
    if let Some(as_user) = e.user.as_ref().and_then(|u| u.name.as_deref()) {
        s.push_str(" (as ");
        s.push_str(as_user);
        s.push(')');
    }
    s.push(' ');
    s.push_str(if verb.is_empty() { "?" } else { verb });
    match e.resources.first() {
        Some(r) => {
            s.push(' ');
            s.push_str(r.r#type.as_deref().unwrap_or("?"));
            if let Some(n) = &r.name {
                s.push(' ');
                s.push_str(n);
            }
            if let Some(ns) = &r.namespace {
                s.push_str(" in ");
                s.push_str(ns);
            }
        }
        None => {
            if let Some(p) = e
                .http_request
                .as_ref()
                .and_then(|h| h.url.as_ref())
                .and_then(|u| u.path.as_deref())
            {
                s.push(' ');
                s.push_str(p);
            }
        }
    }
    if let Some(code) = &e.status_code
        && e.status == Status::Failure
    {
        s.push_str(": ");
        s.push_str(code);
        if let Some(r) = e
            .api
            .as_ref()
            .and_then(|a| a.response.as_ref())
            .and_then(|r| r.error.as_deref())
        {
            s.push(' ');
            s.push_str(r);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(s: &str) -> Record<'_> {
        Record {
            bytes: s.as_bytes(),
            received_at_ms: 7,
        }
    }

    fn parse(s: &str) -> Value {
        match K8sAudit.parse(&rec(s)).unwrap() {
            Parsed::Event(e) => serde_json::from_str(&e.to_json()).unwrap(),
            Parsed::NotAnEvent(why) => panic!("{why}"),
        }
    }

    const FORBIDDEN: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-403","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/prod/secrets/db","verb":"get","user":{"username":"system:serviceaccount:ci:deployer","uid":"u-1","groups":["system:serviceaccounts","system:serviceaccounts:ci","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=abc"],"authentication.kubernetes.io/pod-name":["runner-1"]}},"sourceIPs":["10.0.0.9","10.0.0.1"],"userAgent":"kubectl/v1.30.0","objectRef":{"resource":"secrets","namespace":"prod","name":"db","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","message":"secrets \"db\" is forbidden: User \"system:serviceaccount:ci:deployer\" cannot get resource \"secrets\" in API group \"\" in the namespace \"prod\"","reason":"Forbidden","details":{"name":"db","kind":"secrets"},"code":403},"requestReceivedTimestamp":"2024-05-01T10:00:00.123456Z","stageTimestamp":"2024-05-01T10:00:00.130000Z","annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}"#;

    #[test]
    fn forbidden_service_account_read() {
        let v = parse(FORBIDDEN);
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["activity_id"], activity::READ);
        assert_eq!(v["time"], 1_714_557_600_123_i64);
        assert_eq!(
            v["metadata"]["original_time"],
            "2024-05-01T10:00:00.123456Z"
        );
        assert_eq!(
            v["unmapped"]["stageTimestamp"],
            "2024-05-01T10:00:00.130000Z"
        );
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["status_code"], "403");
        assert!(
            v["status_detail"]
                .as_str()
                .unwrap()
                .starts_with("secrets \"db\" is forbidden")
        );
        assert_eq!(v["api"]["response"]["error"], "Forbidden");
        assert_eq!(v["api"]["operation"], "get");
        assert_eq!(v["api"]["service"]["name"], "core");
        assert_eq!(v["api"]["version"], "v1");
        assert_eq!(v["api"]["request"]["uid"], "a-403");
        let u = &v["actor"]["user"];
        assert_eq!(u["name"], "system:serviceaccount:ci:deployer");
        assert_eq!(u["type"], "ServiceAccount");
        assert_eq!(u["uid"], "u-1");
        assert_eq!(u["credential_uid"], "JTI=abc");
        assert_eq!(u["groups"][1]["name"], "system:serviceaccounts:ci");
        assert_eq!(v["src_endpoint"]["ip"], "10.0.0.9");
        assert_eq!(v["src_endpoint"]["intermediate_ips"][0], "10.0.0.1");
        assert_eq!(v["http_request"]["http_method"], "GET");
        assert_eq!(
            v["http_request"]["url"]["path"],
            "/api/v1/namespaces/prod/secrets/db"
        );
        assert_eq!(v["http_request"]["user_agent"], "kubectl/v1.30.0");
        assert_eq!(v["resources"][0]["type"], "secrets");
        assert_eq!(v["resources"][0]["name"], "db");
        assert_eq!(v["resources"][0]["namespace"], "prod");
        assert_eq!(v["metadata"]["uid"], "a-403");
        assert_eq!(v["metadata"]["event_code"], "ResponseComplete");
        assert_eq!(v["metadata"]["product"]["name"], "Kubernetes");
        assert_eq!(
            v["unmapped"]["annotations"]["authorization.k8s.io/decision"],
            "forbid"
        );
        assert_eq!(v["unmapped"]["level"], "Metadata");
        assert_eq!(
            v["unmapped"]["userExtra"]["authentication.kubernetes.io/pod-name"][0],
            "runner-1"
        );
        assert_eq!(
            v["message"],
            "system:serviceaccount:ci:deployer get secrets db in prod: 403 Forbidden"
        );
    }

    #[test]
    fn impersonation_keeps_the_authenticated_user_as_actor() {
        let v = parse(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","timestamp":"2017-09-11T19:55:05Z","auditID":"i-1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"system:admin","groups":["system:masters","system:authenticated"]},"impersonatedUser":{"username":"bob","groups":["system:authenticated"]},"sourceIPs":["::1"],"objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200}}"#,
        );
        assert_eq!(v["actor"]["user"]["name"], "system:admin");
        assert_eq!(v["actor"]["user"]["type"], "System");
        assert_eq!(v["user"]["name"], "bob");
        assert_eq!(v["user"]["type"], "User");
        assert_eq!(v["status_id"], 1);
        // v1beta1-era `timestamp` is the time when nothing better is given.
        assert_eq!(v["time"], 1_505_159_705_000_i64);
        assert_eq!(v["message"], "system:admin (as bob) list pods in default");
    }

    #[test]
    fn allowed_with_rbac_reason_and_eks_identity() {
        let v = parse(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"e-1","stage":"ResponseComplete","requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings","verb":"create","user":{"username":"arn:aws:sts::111122223333:assumed-role/Admin/alice","uid":"aws-iam-authenticator:111122223333:AROAX","groups":["system:authenticated"],"extra":{"accessKeyId":["ASIAX"],"arn":["arn:aws:sts::111122223333:assumed-role/Admin/alice"],"canonicalArn":["arn:aws:iam::111122223333:role/Admin"],"sessionName":["alice"]}},"sourceIPs":["203.0.113.7"],"objectRef":{"resource":"clusterrolebindings","name":"pwn","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2024-05-01T10:00:00Z","stageTimestamp":"2024-05-01T10:00:00Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"admins\" of ClusterRole \"cluster-admin\" to Group \"admins\""}}"#,
        );
        assert_eq!(v["activity_id"], activity::CREATE);
        assert_eq!(v["status_id"], 1);
        assert!(
            v["status_detail"]
                .as_str()
                .unwrap()
                .starts_with("RBAC: allowed by")
        );
        assert_eq!(v["api"]["service"]["name"], "rbac.authorization.k8s.io");
        assert_eq!(v["http_request"]["http_method"], "POST");
        assert_eq!(v["actor"]["user"]["credential_uid"], "ASIAX");
        assert_eq!(
            v["actor"]["session"]["issuer"],
            "arn:aws:iam::111122223333:role/Admin"
        );
        assert!(v["unmapped"].get("stageTimestamp").is_none());
    }

    #[test]
    fn user_types() {
        assert_eq!(user_type("system:serviceaccount:a:b").0, "ServiceAccount");
        assert_eq!(user_type("system:node:ip-10-0-0-1").0, "Node");
        assert_eq!(user_type("system:anonymous").0, "Anonymous");
        assert_eq!(user_type("system:kube-controller-manager").0, "System");
        assert_eq!(user_type("alice@example.com").0, "User");
        assert_eq!(verb_activity("deletecollection"), activity::DELETE);
        assert_eq!(verb_activity("patch"), activity::UPDATE);
        assert_eq!(verb_activity("watch"), activity::READ);
        assert_eq!(verb_activity("impersonate"), activity::OTHER);
    }

    fn staged(stage: &str, code: u16) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"s","stage":"{stage}","requestURI":"/api/v1/namespaces/d/pods/p/exec?command=sh","verb":"create","user":{{"username":"alice"}},"objectRef":{{"resource":"pods","subresource":"exec","namespace":"d","name":"p"}},"responseStatus":{{"code":{code}}},"requestReceivedTimestamp":"2024-01-01T00:00:00Z"}}"#
        )
    }

    fn outcome(s: &str) -> Result<&'static str, Value> {
        match K8sAudit.parse(&rec(s)).unwrap() {
            Parsed::Event(e) => Err(serde_json::from_str(&e.to_json()).unwrap()),
            Parsed::NotAnEvent(why) => Ok(why),
        }
    }

    #[test]
    fn stages_collapse_to_one_event_per_request() {
        // A plain request: RequestReceived then ResponseComplete.
        assert_eq!(outcome(&staged("RequestReceived", 200)), Ok(RECEIVED));
        let v = outcome(&staged("ResponseComplete", 200)).unwrap_err();
        assert_eq!(v["metadata"]["event_code"], "ResponseComplete");
        // A watch: ResponseStarted then ResponseComplete.
        assert_eq!(outcome(&staged("ResponseStarted", 200)), Ok(STARTED));
        // An exec session: ResponseStarted (101) is the event, its end is not.
        let v = outcome(&staged("ResponseStarted", 101)).unwrap_err();
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["resources"][0]["type"], "pods/exec");
        assert_eq!(outcome(&staged("ResponseComplete", 101)), Ok(UPGRADE_DONE));
        // A denied exec: both stages say 403; the complete one is the event.
        assert_eq!(outcome(&staged("ResponseStarted", 403)), Ok(STARTED));
        assert_eq!(
            outcome(&staged("ResponseComplete", 403)).unwrap_err()["status_id"],
            2
        );
        // Panic is always an event, and a failure.
        let v = outcome(&staged("Panic", 500)).unwrap_err();
        assert_eq!(v["status_id"], 2);
        // No stage (or one acta does not know): kept.
        let none = staged("X", 200).replace(r#""stage":"X","#, "");
        assert!(outcome(&none).is_err());
        assert!(outcome(&staged("SomeFutureStage", 200)).is_err());
    }

    #[test]
    fn event_list_splits_into_items() {
        // Items of a webhook EventList carry no `kind`/`apiVersion` of their own.
        let a = r#"{"level":"Metadata","auditID":"1","stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"a"}}"#;
        let b = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"2","stage":"ResponseComplete","requestURI":"/apis","verb":"get","user":{"username":"b\u00e9"}}"#;
        let list = format!(
            "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[\n  {a} ,{b}]}}"
        );
        let parts = K8sAudit.split(list.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&list[parts[0].clone()], a);
        assert_eq!(&list[parts[1].clone()], b);
        assert_eq!(
            parse(&list[parts[1].clone()])["actor"]["user"]["name"],
            "bé"
        );
        assert_eq!(parse(&list[parts[0].clone()])["actor"]["user"]["name"], "a");
        assert!(K8sAudit.sniff(&mut Probe::new(list[parts[0].clone()].as_bytes())));
        // The same list through the registry.
        let reg = super::super::Registry::standard();
        assert_eq!(reg.split(list.as_bytes(), None).unwrap().len(), 2);
        // Not lists: single events, other formats, an empty list, a core list.
        assert!(K8sAudit.split(a.as_bytes()).is_none());
        assert!(
            K8sAudit
                .split(br#"{"eventVersion":"1.08","eventName":"EventList"}"#)
                .is_none()
        );
        let empty = r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}"#;
        assert!(K8sAudit.split(empty.as_bytes()).is_none());
        assert!(matches!(
            K8sAudit.parse(&rec(empty)),
            Ok(Parsed::NotAnEvent("empty EventList"))
        ));
        assert!(
            K8sAudit
                .split(br#"{"kind":"EventList","apiVersion":"v1","items":[{}]}"#)
                .is_none()
        );
        // An unsplit non-empty list is not silently dropped.
        assert!(matches!(
            K8sAudit.parse(&rec(&list)),
            Err(Rejection::Invalid(_))
        ));
    }

    #[test]
    fn cloudwatch_shapes() {
        let inner = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"cw","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/secrets","verb":"list","user":{"username":"alice"},"sourceIPs":["1.2.3.4"],"objectRef":{"resource":"secrets","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2024-01-01T00:00:00Z"}"#;
        let escaped = serde_json::to_string(inner).unwrap();
        // filter-log-events / subscription log event.
        let cw = format!(
            r#"{{"logStreamName":"kube-apiserver-audit-abc","timestamp":1704067200000,"message":{escaped},"ingestionTime":1704067201000,"eventId":"1"}}"#
        );
        let v = parse(&cw);
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["unmapped"]["logStream"], "kube-apiserver-audit-abc");
        assert_eq!(v["cloud"]["provider"], "AWS");
        assert_eq!(v["resources"][0]["namespace"], "kube-system");
        // Logs Insights: @message as a string, or already an object.
        let li = format!(
            r#"{{"@timestamp":"2024-01-01 00:00:00.000","@message":{escaped},"@logStream":"kube-apiserver-audit-abc","@log":"111122223333:/aws/eks/prod/cluster"}}"#
        );
        let v = parse(&li);
        assert_eq!(v["cloud"]["account"]["uid"], "111122223333");
        assert_eq!(v["unmapped"]["log"], "111122223333:/aws/eks/prod/cluster");
        let obj = format!(r#"{{"@timestamp":"2024-01-01 00:00:00.000","@message":{inner}}}"#);
        assert_eq!(parse(&obj)["api"]["operation"], "list");
        let mut probe = Probe::new(obj.as_bytes());
        assert!(K8sAudit.sniff(&mut probe));
        let mut probe = Probe::new(cw.as_bytes());
        assert!(K8sAudit.sniff(&mut probe));
        // Someone else's CloudWatch messages.
        let other = r#"{"timestamp":1,"message":"{\"eventVersion\":\"1.08\",\"eventName\":\"GetObject\"}"}"#;
        assert_eq!(K8sAudit.parse(&rec(other)).unwrap_err(), Rejection::NotMine);
        let text = r#"{"timestamp":1,"message":"I0101 kube-apiserver started"}"#;
        assert_eq!(K8sAudit.parse(&rec(text)).unwrap_err(), Rejection::NotMine);
        // A wrapped audit event with a wrong type is invalid.
        let bad = r#"{"@message":{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":["get"]}}"#;
        assert!(matches!(
            K8sAudit.parse(&rec(bad)),
            Err(Rejection::Invalid(_))
        ));
    }

    #[test]
    fn hostile_and_foreign_input() {
        let invalid = [
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":5}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","user":"alice"}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","sourceIPs":"1.2.3.4"}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","responseStatus":{"code":"403"}}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","annotations":{"a":1}}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","objectRef":[]}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","user":{"extra":{"a":"b"}}}"#,
        ];
        for s in invalid {
            assert!(
                matches!(K8sAudit.parse(&rec(s)), Err(Rejection::Invalid(_))),
                "{s}"
            );
        }
        let foreign = [
            r#"{"kind": 0}"#,
            r#"{"kind":"Event","apiVersion":"v1","involvedObject":{"kind":"Pod"},"reason":"Killing","message":"Stopping container"}"#,
            r#"{"kind":"Event","apiVersion":"events.k8s.io/v1","reason":"Scheduled","note":"x"}"#,
            r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"eks.amazonaws.com","eventName":"CreateCluster","userIdentity":{"type":"IAMUser"},"requestID":"r"}"#,
            r#"{"action":"org.update_member","actor":"octocat","created_at":1,"org":"acme","user":"bob","_document_id":"x"}"#,
            r#"{"zen":"Keep it simple.","hook_id":1,"hook":{"type":"Organization","events":["*"]}}"#,
            r#"[{"kind":"Event"}]"#,
            r#"{"items":[{"id":1}],"total":1}"#,
            r#"{"events":[{"logStreamName":"s","timestamp":1,"message":"hello"}],"searchedLogStreams":[]}"#,
            "not json at all",
            "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\"",
        ];
        for s in foreign {
            let got = K8sAudit.parse(&rec(s));
            let sniffed = K8sAudit.sniff(&mut Probe::new(s.as_bytes()));
            assert!(!sniffed || matches!(got, Err(Rejection::Invalid(_))), "{s}");
            if !s.contains("audit.k8s.io") {
                assert!(!sniffed, "{s}");
                assert_eq!(got.unwrap_err(), Rejection::NotMine, "{s}");
            }
        }
        // Deep nesting and invalid UTF-8 do not panic.
        let deep = format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","requestObject":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        // Bodies acta skips may nest deeply; known fields may not.
        assert!(matches!(K8sAudit.parse(&rec(&deep)), Ok(Parsed::Event(_))));
        let deep_known = deep.replace("requestObject", "objectRef");
        assert!(matches!(
            K8sAudit.parse(&rec(&deep_known)),
            Err(Rejection::Invalid(_))
        ));
        let bytes = b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"verb\":\"get\xff\"}";
        let r = Record {
            bytes,
            received_at_ms: 0,
        };
        assert!(K8sAudit.parse(&r).is_err());
        // A huge field is fine.
        let big = format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"big","verb":"get","requestURI":"/{}"}}"#,
            "a".repeat(10 << 20)
        );
        assert!(K8sAudit.parse(&rec(&big)).is_ok());
    }

    #[test]
    fn missing_times_fall_back_to_receipt() {
        let v = parse(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"t","verb":"get","requestURI":"/version","requestReceivedTimestamp":"yesterday"}"#,
        );
        assert_eq!(v["time"], 7);
        assert!(v["unmapped"]["acta_time_note"].is_string());
        assert!(v.get("resources").is_none());
        assert!(v["api"].get("service").is_none());
        assert_eq!(v["message"], "someone get /version");
        assert_eq!(v["status_id"], 0);
    }
}
