//! acta's normalised event model.
//!
//! Every record acta stores becomes one [`Event`] named with OCSF 1.x field names (JSON, nested
//! objects), whatever its source: who ([`Actor`]), did what ([`Api`], `class_uid`/`activity_id`),
//! when (`time`), from where ([`Endpoint`], [`HttpRequest`]), on what ([`Resource`]), in which
//! account ([`Cloud`]), and whether it was allowed (`status_id`). Fields a source does not have
//! stay absent: `None` and empty collections are not serialised.
//!
//! The event is a *derived* view: the raw record is the evidence, kept byte for byte in the ledger
//! and echoed in [`Event::raw_data`]. How each source fills each field is documented in
//! `docs/events.md`.
//!
//! This crate does no IO.

use std::cell::Cell;

use serde::Serialize;
use serde_json::{Map, Value};

/// OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// An OCSF event class acta emits, with its category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// 0: a record no parser recognised; `raw_data` and the reason are all it has.
    Base,
    /// 3001: an account was created, changed, enabled, disabled or deleted.
    AccountChange,
    /// 3002: a logon, logoff or authentication attempt.
    Authentication,
    /// 3003: privileges or groups assigned to a session (sudo, su).
    AuthorizeSession,
    /// 3005: privileges granted to or revoked from a user.
    UserAccessManagement,
    /// 6003: a call to an API (cloud, git hosting, Kubernetes).
    ApiActivity,
    /// 6005: a read, write or query on a datastore (SQL).
    DatastoreActivity,
    /// 2004: a detection finding (acta's own alerts).
    DetectionFinding,
}

impl Class {
    pub fn uid(self) -> u32 {
        match self {
            Class::Base => 0,
            Class::AccountChange => 3001,
            Class::Authentication => 3002,
            Class::AuthorizeSession => 3003,
            Class::UserAccessManagement => 3005,
            Class::ApiActivity => 6003,
            Class::DatastoreActivity => 6005,
            Class::DetectionFinding => 2004,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Base => "Base Event",
            Class::AccountChange => "Account Change",
            Class::Authentication => "Authentication",
            Class::AuthorizeSession => "Authorize Session",
            Class::UserAccessManagement => "User Access Management",
            Class::ApiActivity => "API Activity",
            Class::DatastoreActivity => "Datastore Activity",
            Class::DetectionFinding => "Detection Finding",
        }
    }

    /// `(category_uid, category_name)`.
    pub fn category(self) -> (u32, &'static str) {
        match self {
            Class::Base => (0, "Uncategorized"),
            Class::DetectionFinding => (2, "Findings"),
            Class::AccountChange
            | Class::Authentication
            | Class::AuthorizeSession
            | Class::UserAccessManagement => (3, "Identity & Access Management"),
            Class::ApiActivity | Class::DatastoreActivity => (6, "Application Activity"),
        }
    }

    /// The caption of `activity_id` in this class (`Unknown`/`Other` for 0/99).
    pub fn activity_name(self, activity_id: u8) -> &'static str {
        let names: &[&str] = match self {
            Class::Base | Class::DetectionFinding => &["Unknown", "Create", "Update", "Close"],
            Class::AccountChange => &[
                "Unknown",
                "Create",
                "Enable",
                "Password Change",
                "Password Reset",
                "Disable",
                "Delete",
                "Attach Policy",
                "Detach Policy",
                "Lock",
                "MFA Factor Enable",
                "MFA Factor Disable",
            ],
            Class::Authentication => &[
                "Unknown",
                "Logon",
                "Logoff",
                "Authentication Ticket",
                "Service Ticket Request",
                "Service Ticket Renew",
                "Preauth",
            ],
            Class::AuthorizeSession => &["Unknown", "Assign Privileges", "Assign Groups"],
            Class::UserAccessManagement => &["Unknown", "Assign Privileges", "Revoke Privileges"],
            Class::ApiActivity => &["Unknown", "Create", "Read", "Update", "Delete"],
            Class::DatastoreActivity => &[
                "Unknown", "Read", "Update", "Connect", "Query", "Write", "Create", "Delete",
                "List", "Encrypt", "Decrypt",
            ],
        };
        if activity_id == 99 {
            return "Other";
        }
        names
            .get(usize::from(activity_id))
            .copied()
            .unwrap_or("Unknown")
    }
}

/// Activity ids shared by several classes.
pub mod activity {
    pub const UNKNOWN: u8 = 0;
    pub const OTHER: u8 = 99;
    /// API Activity.
    pub const CREATE: u8 = 1;
    pub const READ: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const DELETE: u8 = 4;
    /// Authentication.
    pub const LOGON: u8 = 1;
    pub const LOGOFF: u8 = 2;
}

/// `status_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Unknown,
    Success,
    /// Denied, or failed with an error.
    Failure,
    Other,
}

impl Status {
    pub fn id(self) -> u8 {
        match self {
            Status::Unknown => 0,
            Status::Success => 1,
            Status::Failure => 2,
            Status::Other => 99,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Unknown => "Unknown",
            Status::Success => "Success",
            Status::Failure => "Failure",
            Status::Other => "Other",
        }
    }
}

/// `severity_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Unknown,
    Informational,
    Low,
    Medium,
    High,
    Critical,
    Fatal,
}

impl Severity {
    /// The severity of an OCSF `severity_id` (unknown for any other number).
    pub fn from_id(id: u8) -> Severity {
        match id {
            1 => Severity::Informational,
            2 => Severity::Low,
            3 => Severity::Medium,
            4 => Severity::High,
            5 => Severity::Critical,
            6 => Severity::Fatal,
            _ => Severity::Unknown,
        }
    }

    pub fn id(self) -> u8 {
        match self {
            Severity::Unknown => 0,
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
            Severity::Fatal => 6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Unknown => "Unknown",
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
            Severity::Fatal => "Fatal",
        }
    }
}

/// One normalised event. Serialises to OCSF JSON; see the crate docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened, epoch milliseconds. For records no parser recognised, and records whose
    /// time cannot be read, the time acta received them.
    pub time: i64,
    pub class: Class,
    pub activity_id: u8,
    pub status: Status,
    /// The source's own result code (HTTP status, error code, SQLSTATE…).
    pub status_code: Option<String>,
    /// The source's error message or reason.
    pub status_detail: Option<String>,
    pub severity: Severity,
    /// A one-line human summary.
    pub message: Option<String>,
    pub actor: Actor,
    /// The user an action was performed on (the target), for account and access classes.
    pub user: Option<User>,
    pub src_endpoint: Option<Endpoint>,
    pub dst_endpoint: Option<Endpoint>,
    pub http_request: Option<HttpRequest>,
    pub api: Option<Api>,
    pub resources: Vec<Resource>,
    pub cloud: Option<Cloud>,
    pub database: Option<Database>,
    pub query_info: Option<QueryInfo>,
    pub metadata: Metadata,
    /// Source fields with no OCSF home that investigators still need.
    pub unmapped: Map<String, Value>,
    /// The original record, byte for byte when it is UTF-8 (invalid sequences are replaced by
    /// U+FFFD here; the ledger keeps the exact bytes). Not serialised when empty.
    pub raw_data: String,
}

impl Event {
    /// An event of `class` with nothing else known yet.
    pub fn new(class: Class, time: i64, raw_data: String) -> Event {
        Event {
            time,
            class,
            activity_id: activity::UNKNOWN,
            status: Status::Unknown,
            status_code: None,
            status_detail: None,
            severity: Severity::Informational,
            message: None,
            actor: Actor::default(),
            user: None,
            src_endpoint: None,
            dst_endpoint: None,
            http_request: None,
            api: None,
            resources: Vec::new(),
            cloud: None,
            database: None,
            query_info: None,
            metadata: Metadata {
                version: OCSF_VERSION,
                ..Metadata::default()
            },
            unmapped: Map::new(),
            raw_data,
        }
    }

    /// The event for a record no parser recognised: OCSF base event (`class_uid` 0), the time of
    /// receipt, the raw record, and why it was not recognised (`status_detail`).
    pub fn unrecognised(received_at_ms: i64, raw: &[u8], reason: impl Into<String>) -> Event {
        let mut e = Event::new(Class::Base, received_at_ms, lossy(raw));
        e.status = Status::Unknown;
        e.severity = Severity::Unknown;
        e.status_detail = Some(reason.into());
        e
    }

    /// `type_uid`: `class_uid * 100 + activity_id`.
    pub fn type_uid(&self) -> u64 {
        u64::from(self.class.uid()) * 100 + u64::from(self.activity_id)
    }

    /// Mutable access to the actor's user, created on first use.
    pub fn actor_user(&mut self) -> &mut User {
        self.actor.user.get_or_insert_with(User::default)
    }

    /// The actor's name for messages: `actor.user.name`, or `someone` when unknown.
    pub fn who(&self) -> &str {
        self.actor
            .user
            .as_ref()
            .and_then(|u| u.name.as_deref())
            .unwrap_or("someone")
    }

    /// Mutable access to the API object, created on first use.
    pub fn api_mut(&mut self) -> &mut Api {
        self.api.get_or_insert_with(Api::default)
    }

    /// Sets `src_endpoint.ip` (and creates the endpoint).
    pub fn set_src_ip(&mut self, ip: impl Into<String>) {
        self.src_endpoint.get_or_insert_with(Endpoint::default).ip = Some(ip.into());
    }

    /// Sets `http_request.user_agent`.
    pub fn set_user_agent(&mut self, ua: impl Into<String>) {
        self.http_request
            .get_or_insert_with(HttpRequest::default)
            .user_agent = Some(ua.into());
    }

    /// Adds a field under `unmapped`, unless this thread is inside [`without_unmapped`].
    pub fn unmap(&mut self, key: &str, value: impl Into<Value>) {
        if KEEP_UNMAPPED.get() {
            self.unmapped.insert(key.to_owned(), value.into());
        }
    }

    /// The event as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Writes the event as JSON into `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

thread_local! {
    /// Whether [`Event::unmap`] keeps what it is given on this thread.
    static KEEP_UNMAPPED: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with [`Event::unmap`] discarding what it is given on this thread, for callers that
/// read only the mapped fields of the events `f` builds (index rows, counts). Building the
/// `unmapped` object is about a seventh of the cost of normalising a CloudTrail record. The
/// previous setting is restored when `f` returns or unwinds.
pub fn without_unmapped<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            KEEP_UNMAPPED.set(self.0);
        }
    }
    let _restore = Restore(KEEP_UNMAPPED.replace(false));
    f()
}

/// `String::from_utf8_lossy`, owned.
pub fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Who acted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Actor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// A service acting on someone's behalf (CloudTrail `invokedBy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    /// The application the actor used (GitHub App, OAuth app, programmatic client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
}

impl Actor {
    pub fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.session.is_none()
            && self.invoked_by.is_none()
            && self.app_name.is_none()
    }
}

/// A user, role, service account or bot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct User {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A stable identifier (ARN, numeric id, Kubernetes uid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The source's own kind of identity (`IAMUser`, `AssumedRole`, `ServiceAccount`, `Bot`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// OCSF `type_id`: 1 User, 2 Admin, 3 System, 99 Other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<Org>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Account {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Org {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
}

/// The actor's session.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Session {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Who issued the session's credentials (the role an assumed-role session came from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Epoch milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    #[serde(skip_serializing_if = "is_false")]
    pub is_mfa: bool,
    /// The terminal of an interactive session (`pts/0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal: Option<String>,
}

/// A network endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// A domain name the source gives instead of an address (e.g. `cloudtrail.amazonaws.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Further addresses (the proxy chain of a Kubernetes request).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intermediate_ips: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HttpRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Url {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_string: Option<String>,
}

/// The operation called.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Api {
    /// The source's own operation name (CloudTrail `eventName`, Kubernetes `verb`, GitHub
    /// `action`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<ApiRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ApiResponse>,
}

impl Api {
    /// Sets `api.service.name`.
    pub fn set_service(&mut self, name: impl Into<String>) {
        self.service = Some(Service {
            name: Some(name.into()),
        });
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Service {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApiRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApiResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Something acted on.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The source's resource type (`AWS::S3::Bucket`, `pods`, `repo`, `TABLE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// The resource's namespace, project or schema, where the source scopes names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl Resource {
    /// A resource with a type and a name.
    pub fn named(r#type: impl Into<String>, name: impl Into<String>) -> Resource {
        Resource {
            r#type: Some(r#type.into()),
            name: Some(name.into()),
            ..Resource::default()
        }
    }
}

/// Where, for cloud sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cloud {
    /// `AWS`, `GCP`, `Azure`, `GitHub`, `GitLab`.
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<Org>,
}

/// A database, for datastore activity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Database {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `PostgreSQL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueryInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_string: Option<String>,
}

/// About the record itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metadata {
    /// OCSF schema version.
    pub version: &'static str,
    /// The source's own event id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The system that produced the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    /// The source log (acta format name: `cloudtrail`, `k8s-audit`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_name: Option<String>,
    /// The source's time, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_time: Option<String>,
    /// The source's event type (`AwsApiCall`, Kubernetes stage, webhook event name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_code: Option<String>,
    /// Ties related records together (a Kubernetes `auditID`, a pgaudit statement id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_uid: Option<String>,
}

/// The system a record came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Product {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_name: Option<String>,
}

impl Product {
    pub fn new(name: &str, vendor: &str) -> Product {
        Product {
            name: name.to_owned(),
            vendor_name: Some(vendor.to_owned()),
        }
    }
}

// Hand-written so the derived OCSF captions (`class_name`, `type_uid`…) are emitted beside the
// ids they describe, and absent objects are skipped.
impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (category_uid, category_name) = self.class.category();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("time", &self.time)?;
        m.serialize_entry("class_uid", &self.class.uid())?;
        m.serialize_entry("class_name", self.class.name())?;
        m.serialize_entry("category_uid", &category_uid)?;
        m.serialize_entry("category_name", category_name)?;
        m.serialize_entry("activity_id", &self.activity_id)?;
        m.serialize_entry("activity_name", self.class.activity_name(self.activity_id))?;
        m.serialize_entry("type_uid", &self.type_uid())?;
        m.serialize_entry("status_id", &self.status.id())?;
        m.serialize_entry("status", self.status.name())?;
        if let Some(v) = &self.status_code {
            m.serialize_entry("status_code", v)?;
        }
        if let Some(v) = &self.status_detail {
            m.serialize_entry("status_detail", v)?;
        }
        m.serialize_entry("severity_id", &self.severity.id())?;
        m.serialize_entry("severity", self.severity.name())?;
        if let Some(v) = &self.message {
            m.serialize_entry("message", v)?;
        }
        if !self.actor.is_empty() {
            m.serialize_entry("actor", &self.actor)?;
        }
        if let Some(v) = &self.user {
            m.serialize_entry("user", v)?;
        }
        if let Some(v) = &self.src_endpoint {
            m.serialize_entry("src_endpoint", v)?;
        }
        if let Some(v) = &self.dst_endpoint {
            m.serialize_entry("dst_endpoint", v)?;
        }
        if let Some(v) = &self.http_request {
            m.serialize_entry("http_request", v)?;
        }
        if let Some(v) = &self.api {
            m.serialize_entry("api", v)?;
        }
        if !self.resources.is_empty() {
            m.serialize_entry("resources", &self.resources)?;
        }
        if let Some(v) = &self.cloud {
            m.serialize_entry("cloud", v)?;
        }
        if let Some(v) = &self.database {
            m.serialize_entry("database", v)?;
        }
        if let Some(v) = &self.query_info {
            m.serialize_entry("query_info", v)?;
        }
        m.serialize_entry("metadata", &self.metadata)?;
        if !self.unmapped.is_empty() {
            m.serialize_entry("unmapped", &self.unmapped)?;
        }
        // Left out when cleared: stores that keep the raw record elsewhere (the ledger) drop it.
        if !self.raw_data.is_empty() {
            m.serialize_entry("raw_data", &self.raw_data)?;
        }
        m.end()
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new(Class::Base, 0, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_unmapped_discards_and_restores() {
        let mut e = Event::new(Class::ApiActivity, 0, String::new());
        let inner = without_unmapped(|| {
            let mut inner = Event::new(Class::ApiActivity, 0, String::new());
            inner.unmap("a", 1);
            // Nested scopes restore what the outer one set.
            without_unmapped(|| inner.unmap("b", 2));
            inner.unmap("c", 3);
            inner
        });
        assert!(inner.unmapped.is_empty());
        e.unmap("kept", true);
        assert_eq!(e.unmapped.get("kept"), Some(&Value::Bool(true)));
        // A panic inside the scope restores the setting too.
        let caught = std::panic::catch_unwind(|| without_unmapped(|| panic!("inside")));
        assert!(caught.is_err());
        e.unmap("after", 1);
        assert_eq!(e.unmapped.len(), 2);
    }

    #[test]
    fn serialises_ocsf_names_and_skips_absent_objects() {
        let mut e = Event::new(Class::ApiActivity, 1_700_000_000_123, "{}".into());
        e.activity_id = activity::DELETE;
        e.status = Status::Failure;
        e.actor_user().name = Some("alice".into());
        e.api_mut().operation = Some("DeleteBucket".into());
        e.api_mut().set_service("s3.amazonaws.com");
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["type_uid"], 600304);
        assert_eq!(v["activity_name"], "Delete");
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["api"]["service"]["name"], "s3.amazonaws.com");
        assert!(v.get("src_endpoint").is_none());
        assert!(v.get("unmapped").is_none());
        assert_eq!(v["raw_data"], "{}");
    }

    #[test]
    fn unrecognised_records_are_base_events_with_a_reason() {
        let e = Event::unrecognised(5, b"\xffhello", "no parser recognised it");
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["class_uid"], 0);
        assert_eq!(v["type_uid"], 0);
        assert_eq!(v["time"], 5);
        assert_eq!(v["status_detail"], "no parser recognised it");
        assert_eq!(v["raw_data"], "\u{fffd}hello");
    }
}
