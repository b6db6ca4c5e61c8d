//! GitLab (`gitlab-audit`): audit events and Rails request logs.
//!
//! Three shapes are read, each record becoming one event:
//!
//! - **Audit events** as the audit-events REST API returns them (`id`, `author_id`, `entity_id`,
//!   `entity_type`, `details{…}`, `created_at`) and as audit-event streaming delivers them (the
//!   same plus `event_type`, `author_name`, `entity_path`, `target_*`, `ip_address`).
//! - **Fragments** of an audit event that hold only its `details` (or `detail`) object with a
//!   `custom_message`: recognised, since `custom_message` inside `details` is GitLab's own
//!   vocabulary, but with no time, actor or entity of their own.
//! - **Request logs** (`production_json.log`, `api_json.log`: `method`, `path`, `controller`,
//!   `status`, `remote_ip`, `username`/`meta.user`, `params` as `[{key, value}]`…), each request
//!   an API Activity.
//!
//! The field-by-field mapping is in `docs/events/gitlab.md`.

use std::borrow::Cow;

use acta_event::{
    ApiResponse, Class, Cloud, Event, HttpRequest, Org, Product, Resource, Severity, Status, Url,
    User, activity,
};

use super::github::{keep, set_time, verb_activity};
use super::jsonobj::{Obj, View};
use super::{Format, Parsed, Parser, Probe, Record, Rejection};

/// The GitLab parser (`gitlab-audit`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GitlabAudit;

type Res<T> = Result<T, String>;

fn own(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// Which GitLab shape an object is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Audit,
    Fragment,
    Request,
}

fn shape(v: &dyn View) -> Option<Shape> {
    let details = v.child("details");
    // API and streaming audit events.
    if v.is_string("entity_type")
        && (v.has("author_id") || v.has("author_name"))
        && (details.is_some() || v.has("entity_id") || v.has("entity_path"))
    {
        return Some(Shape::Audit);
    }
    if details.is_some()
        && (v.is_string("event_type") || v.is_string("event_name"))
        && (v.has("entity_path") || v.has("author_id") || v.has("target_type"))
    {
        return Some(Shape::Audit);
    }
    // A bare `details` object holding a custom message.
    if v.key_count() == 1
        && v.child("details")
            .or_else(|| v.child("detail"))
            .is_some_and(|d| d.has("custom_message"))
    {
        return Some(Shape::Fragment);
    }
    // Rails request logs.
    if v.text("path").is_some_and(|p| p.starts_with('/'))
        && (v.is_string("controller")
            || v.is_string("meta.caller_id")
            || v.first_child("params")
                .is_some_and(|p| p.has("key") && p.has("value")))
    {
        return Some(Shape::Request);
    }
    None
}

impl Parser for GitlabAudit {
    fn format(&self) -> Format {
        Format::GitlabAudit
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        probe.object().is_some_and(|o| shape(o).is_some())
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let Ok(text) = std::str::from_utf8(record.bytes) else {
            return Err(Rejection::NotMine);
        };
        let Ok(o) = Obj::parse(text) else {
            return Err(Rejection::NotMine);
        };
        let Some(kind) = shape(&o) else {
            return Err(Rejection::NotMine);
        };
        let e = match kind {
            Shape::Audit | Shape::Fragment => map_audit(&o, text, record),
            Shape::Request => map_request(&o, text, record),
        };
        e.map(|e| Parsed::Event(Box::new(e)))
            .map_err(Rejection::Invalid)
    }
}

fn product() -> Product {
    Product::new("GitLab", "GitLab")
}

fn cloud(root_namespace: Option<String>) -> Cloud {
    Cloud {
        provider: "GitLab".into(),
        org: root_namespace.map(|n| Org {
            uid: None,
            name: Some(n),
        }),
        ..Cloud::default()
    }
}

/// The top-level group of a full path (`group/sub/project` → `group`).
fn root_of(path: &str) -> Option<String> {
    path.split('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Audit events
// ---------------------------------------------------------------------------------------------

/// A string field at the top level, else in `details` (streaming events repeat several there).
fn either<'a>(o: &Obj<'a>, d: &Obj<'a>, key: &str) -> Res<Option<Cow<'a, str>>> {
    match o.scalar(key)? {
        Some(v) => Ok(Some(v)),
        None => d.scalar(key),
    }
}

struct Kind {
    class: Class,
    activity: u8,
    failed: bool,
}

/// OCSF class and activity from the event name and the classic `details` keys. See
/// `docs/events/gitlab.md`.
fn audit_kind(event: Option<&str>, d: &Obj<'_>, message: Option<&str>) -> Res<Kind> {
    let k = |class, activity, failed| Kind {
        class,
        activity,
        failed,
    };
    let name = event.unwrap_or_default();
    let has = |w: &str| name.split('_').any(|x| x == w);
    // Sign-ins.
    if d.has("failed_login")
        || name.contains("login_failed")
        || name.contains("failed_login")
        || name.contains("authentication_failed")
    {
        return Ok(k(Class::Authentication, activity::LOGON, true));
    }
    if d.has("with")
        || name.starts_with("user_authenticated")
        || name.starts_with("authenticated_with")
        || name == "user_logged_in"
    {
        return Ok(k(Class::Authentication, activity::LOGON, false));
    }
    // Membership: access granted, revoked or changed.
    let add = d.str("add").ok().flatten();
    let remove = d.str("remove").ok().flatten();
    let change = d.str("change").ok().flatten();
    if add.as_deref() == Some("user_access") || name == "member_created" {
        return Ok(k(Class::UserAccessManagement, 1, false));
    }
    if remove.as_deref() == Some("user_access") || name == "member_destroyed" {
        return Ok(k(Class::UserAccessManagement, 2, false));
    }
    if change
        .as_deref()
        .is_some_and(|c| c.contains("access level") || c.contains("access_level"))
        || name == "member_updated"
    {
        return Ok(k(Class::UserAccessManagement, activity::OTHER, false));
    }
    // Accounts.
    if message == Some("Ask for password reset") {
        return Ok(k(Class::AccountChange, 4, false));
    }
    if name.starts_with("user_") {
        let a = if has("created") {
            1
        } else if has("destroyed") || has("deleted") {
            6
        } else if name.contains("access_locked") {
            9
        } else if has("blocked") || has("banned") || has("deactivated") || has("disabled") {
            if has("unblocked") { 2 } else { 5 }
        } else if has("unblocked") || has("unbanned") || has("activated") || has("enabled") {
            2
        } else if has("password") && has("reset") {
            4
        } else if has("password") {
            3
        } else {
            activity::OTHER
        };
        let a = if name.contains("two_factor") || name.contains("otp") {
            if has("disabled") {
                11
            } else if has("enabled") {
                10
            } else {
                a
            }
        } else {
            a
        };
        return Ok(k(Class::AccountChange, a, false));
    }
    let a = if add.is_some() {
        activity::CREATE
    } else if remove.is_some() {
        activity::DELETE
    } else if change.is_some() {
        activity::UPDATE
    } else if !name.is_empty() {
        verb_activity(name)
    } else {
        activity::OTHER
    };
    Ok(k(Class::ApiActivity, a, false))
}

fn map_audit(o: &Obj<'_>, raw: &str, record: &Record<'_>) -> Res<Event> {
    let details = match o.obj("details")? {
        Some(d) => d,
        None => o.obj("detail")?.unwrap_or_default(),
    };
    let d = &details;
    let custom = match d.raw("custom_message") {
        Some(v) if v.get().starts_with('{') => None,
        _ => d.scalar("custom_message")?,
    };
    let event_name = match o.str("event_name")? {
        Some(n) => Some(n),
        None => match o.str("event_type")? {
            Some(n) => Some(n),
            None => d.str("event_name")?,
        },
    };
    let kind = audit_kind(event_name.as_deref(), d, custom.as_deref())?;
    let mut e = Event::new(kind.class, record.received_at_ms, raw.to_owned());
    set_time(&mut e, o, &["created_at"], record)?;
    e.activity_id = kind.activity;
    e.severity = Severity::Informational;
    e.status = if kind.failed {
        Status::Failure
    } else {
        Status::Success
    };

    // What.
    let operation = event_name.as_deref().map(str::to_owned).or_else(|| {
        let word = |k: &str| d.str(k).ok().flatten().map(|v| format!("{k} {v}"));
        word("add")
            .or_else(|| word("remove"))
            .or_else(|| word("change"))
            .or_else(|| d.has("failed_login").then(|| "failed_login".to_owned()))
            .or_else(|| d.has("with").then(|| "authenticated".to_owned()))
            .or_else(|| custom.as_deref().map(str::to_owned))
    });
    let entity_type = own(o.str("entity_type")?);
    let api = e.api_mut();
    api.operation = operation.clone();
    if let Some(t) = &entity_type {
        api.set_service(t.clone());
    }
    e.metadata.event_code = own(event_name.clone());

    // Who.
    let author = own(either(o, d, "author_name")?);
    let author_id = own(o.scalar("author_id")?);
    if author.is_some() || author_id.is_some() {
        let class = own(d.str("author_class")?);
        let type_id = match class.as_deref() {
            Some("User") | None => 1,
            Some(_) => 99,
        };
        e.actor.user = Some(User {
            name: author,
            uid: author_id,
            email_addr: own(d.str("author_email")?),
            r#type: Some(class.unwrap_or_else(|| "User".into())),
            type_id: Some(type_id),
            ..User::default()
        });
    }
    if let Some(ip) = either(o, d, "ip_address")? {
        e.set_src_ip(ip.into_owned());
    }

    // On what.
    let entity_path = own(either(o, d, "entity_path")?);
    let entity_id = own(o.scalar("entity_id")?);
    if entity_type.is_some() || entity_id.is_some() || entity_path.is_some() {
        e.resources.push(Resource {
            uid: entity_id.clone(),
            name: entity_path.clone(),
            r#type: entity_type.clone(),
            ..Resource::default()
        });
    }
    let target_type = own(either(o, d, "target_type")?);
    let target_id = own(either(o, d, "target_id")?);
    let target_details = own(either(o, d, "target_details")?);
    let same_as_entity =
        target_id.is_some() && target_type == entity_type && target_id == entity_id;
    if (target_id.is_some() || target_details.is_some()) && !same_as_entity {
        let is_user = target_type.as_deref() == Some("User")
            || (target_type.is_none() && kind.class != Class::ApiActivity);
        if is_user && kind.class != Class::ApiActivity {
            e.user = Some(User {
                name: target_details,
                uid: target_id,
                ..User::default()
            });
        } else {
            e.resources.push(Resource {
                uid: target_id,
                name: target_details,
                r#type: Some(target_type.unwrap_or_else(|| "target".into())),
                ..Resource::default()
            });
        }
    }

    // Where.
    e.cloud = Some(cloud(entity_path.as_deref().and_then(root_of)));
    e.metadata.uid = own(o.scalar("id")?);
    e.metadata.product = Some(product());
    if let Some(v) = o.value("details").or_else(|| o.value("detail")) {
        e.unmap("details", v);
    }
    if o.raw("created_at").is_none() && o.len() == 1 {
        e.unmap(
            "acta_note",
            "details only: no time, author or entity in the record",
        );
    }
    if kind.failed {
        e.status_detail = custom.as_deref().map(str::to_owned);
    }
    let who = e.who();
    let on = entity_path
        .as_deref()
        .map(|p| format!(" on {p}"))
        .unwrap_or_default();
    e.message = Some(match (&custom, &operation) {
        (Some(c), _) => format!("{who}: {c}{on}"),
        (None, Some(op)) => format!("{who}: {op}{on}"),
        (None, None) => format!("{who}: audit event{on}"),
    });
    Ok(e)
}

// ---------------------------------------------------------------------------------------------
// Request logs
// ---------------------------------------------------------------------------------------------

/// Request-log keys copied under `unmapped` when present.
const REQUEST_KEEP: &[&str] = &[
    "params",
    "format",
    "route",
    "duration_s",
    "meta.feature_category",
    "meta.client_id",
    "meta.auth_fail_reason",
    "meta.auth_fail_token_id",
    "meta.auth_fail_requested_scopes",
    "token_type",
    "token_id",
];

fn map_request(o: &Obj<'_>, raw: &str, record: &Record<'_>) -> Res<Event> {
    let method = own(o.str("method")?).map(|m| m.to_ascii_uppercase());
    let path = own(o.str("path")?);
    let status = o.scalar("status")?;
    let code = match &status {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| super::jsonobj::wrong_type("status", "an HTTP status"))?,
        ),
        None => None,
    };
    let activity_id = match method.as_deref() {
        Some("GET" | "HEAD") => activity::READ,
        Some("POST") => activity::CREATE,
        Some("PUT" | "PATCH") => activity::UPDATE,
        Some("DELETE") => activity::DELETE,
        Some(_) => activity::OTHER,
        None => activity::UNKNOWN,
    };
    let mut e = Event::new(Class::ApiActivity, record.received_at_ms, raw.to_owned());
    set_time(&mut e, o, &["time"], record)?;
    e.activity_id = activity_id;
    e.severity = Severity::Informational;
    e.status = match code {
        Some(c) if c >= 400 => Status::Failure,
        Some(_) => Status::Success,
        None => Status::Unknown,
    };
    e.status_code = status.as_deref().map(str::to_owned);

    let controller = own(o.str("controller")?);
    let action = own(o.str("action")?);
    let caller = own(o.str("meta.caller_id")?);
    let route = own(o.str("route")?);
    let operation = caller
        .or_else(|| match (&controller, &action) {
            (Some(c), Some(a)) => Some(format!("{c}#{a}")),
            (Some(c), None) => Some(c.clone()),
            _ => None,
        })
        .or_else(|| {
            let p = route.as_ref().or(path.as_ref())?;
            Some(match &method {
                Some(m) => format!("{m} {p}"),
                None => p.clone(),
            })
        });
    let api = e.api_mut();
    api.operation = operation.clone();
    if let Some(c) = &controller {
        api.set_service(c.clone());
    }
    if let Some(c) = code {
        let exception = own(o.str("exception.class")?);
        let message = own(o.str("exception.message")?);
        api.response = Some(ApiResponse {
            code: Some(c),
            error: exception,
            error_message: message.clone(),
        });
        e.status_detail = message;
    }
    e.http_request = Some(HttpRequest {
        user_agent: own(o.str("ua")?),
        http_method: method,
        url: path.map(|p| Url {
            path: Some(p),
            url_string: None,
        }),
    });

    let user = match o.str("username")? {
        Some(u) => Some(u),
        None => o.str("meta.user")?,
    };
    let user_id = own(o.scalar("user_id")?);
    if user.is_some() || user_id.is_some() {
        e.actor.user = Some(User {
            name: own(user),
            uid: user_id,
            r#type: Some("User".into()),
            type_id: Some(1),
            ..User::default()
        });
    }
    let ip = match o.str("remote_ip")? {
        Some(ip) => Some(ip),
        None => o.str("meta.remote_ip")?,
    };
    if let Some(ip) = ip {
        e.set_src_ip(ip.into_owned());
    }
    let project = own(o.str("meta.project")?);
    let root = own(o.str("meta.root_namespace")?);
    if let Some(p) = &project {
        let mut r = Resource::named("Project", p.clone());
        r.namespace = root.clone();
        e.resources.push(r);
    }
    e.cloud = Some(cloud(root.or_else(|| project.as_deref().and_then(root_of))));
    e.metadata.correlation_uid = own(o.str("correlation_id")?);
    e.metadata.event_code = Some("request".into());
    e.metadata.product = Some(product());
    keep(&mut e, o, REQUEST_KEEP);
    let who = e.who();
    let what = operation.unwrap_or_else(|| "request".into());
    e.message = Some(match &status {
        Some(s) => format!("{who}: {what} → {s}"),
        None => format!("{who}: {what}"),
    });
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn run(s: &str) -> Result<Value, Rejection> {
        let r = Record {
            bytes: s.as_bytes(),
            received_at_ms: 7,
        };
        match GitlabAudit.parse(&r)? {
            Parsed::Event(e) => Ok(serde_json::from_str(&e.to_json()).unwrap()),
            Parsed::NotAnEvent(why) => panic!("{why}"),
        }
    }

    #[test]
    fn api_member_access_change() {
        let v = run(
            r#"{"id":5,"author_id":1,"entity_id":6,"entity_type":"Project","details":{"change":"access level","from":"Guest","to":"Maintainer","author_name":"Administrator","author_email":"admin@example.com","target_id":12,"target_type":"User","target_details":"bob","ip_address":"192.0.2.4","entity_path":"acme/flight"},"created_at":"2024-05-02T10:11:12.345Z"}"#,
        )
        .unwrap();
        assert_eq!(v["time"], 1_714_644_672_345_i64);
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["activity_id"], 99);
        assert_eq!(v["actor"]["user"]["name"], "Administrator");
        assert_eq!(v["actor"]["user"]["uid"], "1");
        assert_eq!(v["actor"]["user"]["email_addr"], "admin@example.com");
        assert_eq!(v["user"]["name"], "bob");
        assert_eq!(v["user"]["uid"], "12");
        assert_eq!(v["src_endpoint"]["ip"], "192.0.2.4");
        assert_eq!(v["api"]["operation"], "change access level");
        assert_eq!(v["resources"][0]["type"], "Project");
        assert_eq!(v["resources"][0]["name"], "acme/flight");
        assert_eq!(v["cloud"]["provider"], "GitLab");
        assert_eq!(v["cloud"]["org"]["name"], "acme");
        assert_eq!(v["metadata"]["uid"], "5");
        assert_eq!(v["unmapped"]["details"]["to"], "Maintainer");
    }

    #[test]
    fn streaming_git_operation_and_failed_login() {
        let v = run(
            r#"{"id":"1653461355","author_id":1,"entity_id":6,"entity_type":"Project","details":{"author_name":"Administrator","target_id":6,"target_type":"Project","target_details":"Flight","custom_message":{"protocol":"ssh","action":"git-upload-pack"},"ip_address":"127.0.0.1","entity_path":"flightjs/Flight"},"ip_address":"127.0.0.1","author_name":"Administrator","entity_path":"flightjs/Flight","target_details":"Flight","created_at":"2022-05-25T06:49:15.213Z","target_type":"Project","target_id":6,"event_type":"repository_git_operation"}"#,
        )
        .unwrap();
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["api"]["operation"], "repository_git_operation");
        assert_eq!(v["metadata"]["event_code"], "repository_git_operation");
        assert_eq!(v["resources"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["unmapped"]["details"]["custom_message"]["action"],
            "git-upload-pack"
        );
        let v = run(
            r#"{"id":9,"author_id":-1,"entity_id":-1,"entity_type":"User","details":{"failed_login":"STANDARD","author_name":"mallory","target_details":"mallory","ip_address":"198.51.100.7","entity_path":"mallory","custom_message":"STANDARD login failed","author_class":"Gitlab::Audit::UnauthenticatedAuthor"},"created_at":"2024-01-01T00:00:00Z","event_name":"login_failed_with_standard_authentication"}"#,
        )
        .unwrap();
        assert_eq!(v["class_uid"], 3002);
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["status_detail"], "STANDARD login failed");
        assert_eq!(
            v["actor"]["user"]["type"],
            "Gitlab::Audit::UnauthenticatedAuthor"
        );
        assert_eq!(v["actor"]["user"]["type_id"], 99);
    }

    #[test]
    fn fragments_and_bots() {
        let v = run(r#"{"detail": {"custom_message": "hello world"}}"#).unwrap();
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["time"], 7);
        assert_eq!(v["api"]["operation"], "hello world");
        assert!(v["unmapped"]["acta_time_note"].is_string());
        let v = run(
            r#"{"detail": {"custom_message": "Ask for password reset", "target_details": "example@test.com"}}"#,
        )
        .unwrap();
        assert_eq!(v["class_uid"], 3001);
        assert_eq!(v["activity_id"], 4);
        assert_eq!(v["user"]["name"], "example@test.com");
        let v = run(
            r#"{"id":3,"author_id":99,"author_name":"project_7_bot_abc","entity_id":7,"entity_type":"Project","entity_path":"acme/app","details":{"author_class":"Gitlab::Audit::ProjectAccessTokenAuthor","add":"user_access","as":"Developer","target_id":99,"target_type":"User","target_details":"project_7_bot_abc"},"created_at":"2024-01-01T00:00:00Z","event_type":"member_created"}"#,
        )
        .unwrap();
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["activity_id"], 1);
        assert_eq!(v["actor"]["user"]["type_id"], 99);
    }

    #[test]
    fn request_log() {
        let v = run(
            r#"{"method":"POST","path":"/users/password","format":"html","controller":"PasswordsController","action":"create","status":302,"time":"2024-01-11T10:00:00.123Z","params":[{"key":"user","value":{"email":["a@x.com","b@y.com"]}}],"remote_ip":"203.0.113.5","user_id":4,"username":"alice","ua":"Mozilla/5.0","correlation_id":"01H","meta.caller_id":"PasswordsController#create","meta.project":"acme/app","meta.root_namespace":"acme"}"#,
        )
        .unwrap();
        assert_eq!(v["time"], 1_704_967_200_123_i64);
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["activity_id"], 1);
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["status_code"], "302");
        assert_eq!(v["api"]["operation"], "PasswordsController#create");
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["src_endpoint"]["ip"], "203.0.113.5");
        assert_eq!(v["http_request"]["http_method"], "POST");
        assert_eq!(v["http_request"]["url"]["path"], "/users/password");
        assert_eq!(v["metadata"]["correlation_uid"], "01H");
        assert_eq!(v["cloud"]["org"]["name"], "acme");
        assert_eq!(v["unmapped"]["params"][0]["value"]["email"][1], "b@y.com");
        let v = run(
            r#"{"method":"GET","path":"/admin","controller":"Admin::DashboardController","action":"index","status":403,"time":"2024-01-11T10:00:00Z","username":"eve"}"#,
        )
        .unwrap();
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["activity_id"], 2);
    }

    #[test]
    fn hostile_and_foreign() {
        for bad in [
            r#"{"id":1,"author_id":1,"entity_type":"Project","entity_id":1,"details":{"author_name":["x"]}}"#,
            r#"{"id":1,"author_id":{},"entity_type":"Project","entity_id":1,"details":{}}"#,
            r#"{"id":1,"author_id":1,"entity_type":"Project","entity_id":1,"details":{},"created_at":[1]}"#,
            r#"{"path":"/x","controller":"A","status":"teapot"}"#,
            r#"{"path":"/x","controller":"A","username":5}"#,
        ] {
            assert!(matches!(run(bad), Err(Rejection::Invalid(_))), "{bad}");
        }
        for foreign in [
            r#"{"details":{"x":1}}"#,
            r#"{"detail":{"custom_message":"x"},"other":1}"#,
            r#"{"path":"/x"}"#,
            r#"{"path":"x","controller":"A"}"#,
            r#"{"action":"repo.destroy","actor":"a"}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"}"#,
            r#"{"MESSAGE":"x","__REALTIME_TIMESTAMP":"1"}"#,
            r#"{"timestamp":"t","error_severity":"LOG","message":"m"}"#,
            "[]",
            "nope",
        ] {
            assert_eq!(run(foreign).unwrap_err(), Rejection::NotMine, "{foreign}");
        }
    }
}
