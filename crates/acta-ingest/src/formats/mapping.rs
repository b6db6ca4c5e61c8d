//! Generic JSON, mapped to the model by a declarative TOML mapping.
//!
//! For sources acta has no parser for (a Jenkins audit trail, an in-house service), a mapping
//! file names, for each model field, the dotted path of the source field that fills it:
//!
//! ```toml
//! name = "jenkins"                 # metadata.product.name
//! class = "api_activity"           # api_activity | authentication | account_change | …
//!
//! [match]                          # a record is this source when all of these keys exist
//! keys = ["userId", "eventType"]
//!
//! [fields]                         # model field = source path, or a list tried in order
//! time = "timestamp"
//! "actor.user.name" = ["userId", "user"]
//! "api.operation" = "eventType"
//! "src_endpoint.ip" = "remoteAddr"
//! "resources.name" = "projectName"
//!
//! [status]                         # optional: the outcome from a field's value
//! field = "result"
//! success = ["SUCCESS"]
//! failure = ["FAILURE", "ABORTED"]
//!
//! [unmapped]                       # optional: source fields copied under `unmapped`
//! keys = ["buildNumber", "cause"]
//! ```
//!
//! Several mappings can be loaded; a record goes to the first whose `match` holds. With
//! `--format json` and no mapping that matches, the built-in generic mapping reads the field
//! names most JSON logs use (`timestamp`/`time`/`@timestamp`, `user`/`actor`/`username`,
//! `action`/`event`/`operation`, `ip`/`src_ip`/`remote_addr`, …). The generic mapping never
//! claims a record by itself: auto-detection only uses mappings with a `match` section.

use std::collections::BTreeMap;

use acta_event::{Class, Cloud, Event, Product, Resource, Severity, Status, activity};
use serde::Deserialize;
use serde_json::Value;

use super::json::{is_ip, path, scalar_text};
use super::time::{epoch_to_ms, parse_rfc3339};
use super::{Format, Parsed, Parser, Probe, Record, Rejection};

/// One source field path, or several tried in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Paths {
    One(String),
    Many(Vec<String>),
}

impl Paths {
    fn iter(&self) -> impl Iterator<Item = &str> {
        let v: Vec<&str> = match self {
            Paths::One(p) => vec![p.as_str()],
            Paths::Many(ps) => ps.iter().map(String::as_str).collect(),
        };
        v.into_iter()
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Match {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRule {
    field: String,
    #[serde(default)]
    success: Vec<String>,
    #[serde(default)]
    failure: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Unmapped {
    #[serde(default)]
    keys: Vec<String>,
}

/// A mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    name: String,
    #[serde(default = "default_class")]
    class: String,
    #[serde(default, rename = "match")]
    matcher: Match,
    #[serde(default)]
    fields: BTreeMap<String, Paths>,
    status: Option<StatusRule>,
    #[serde(default)]
    unmapped: Unmapped,
}

fn default_class() -> String {
    "api_activity".into()
}

/// Model fields a mapping may fill.
const FIELDS: &[&str] = &[
    "time",
    "message",
    "status_code",
    "status_detail",
    "actor.user.name",
    "actor.user.uid",
    "actor.user.type",
    "actor.user.email_addr",
    "actor.user.account.uid",
    "actor.session.issuer",
    "actor.app_name",
    "src_endpoint.ip",
    "src_endpoint.hostname",
    "dst_endpoint.hostname",
    "http_request.user_agent",
    "http_request.http_method",
    "http_request.url.path",
    "api.operation",
    "api.service.name",
    "api.request.uid",
    "resources.uid",
    "resources.name",
    "resources.type",
    "cloud.provider",
    "cloud.region",
    "cloud.account.uid",
    "metadata.uid",
];

fn class_of(name: &str) -> Option<Class> {
    Some(match name {
        "api_activity" => Class::ApiActivity,
        "authentication" => Class::Authentication,
        "account_change" => Class::AccountChange,
        "authorize_session" => Class::AuthorizeSession,
        "user_access_management" => Class::UserAccessManagement,
        "datastore_activity" => Class::DatastoreActivity,
        _ => return None,
    })
}

impl Mapping {
    /// Parses and checks a mapping file's text.
    pub fn from_toml(text: &str) -> Result<Mapping, String> {
        let m: Mapping = toml::from_str(text).map_err(|e| e.to_string())?;
        if m.name.is_empty() {
            return Err("`name` must not be empty".into());
        }
        if class_of(&m.class).is_none() {
            return Err(format!(
                "unknown class `{}` (api_activity, authentication, account_change, \
                 authorize_session, user_access_management, datastore_activity)",
                m.class
            ));
        }
        if let Some(bad) = m.fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "unknown model field `{bad}` in [fields] (known: {})",
                FIELDS.join(", ")
            ));
        }
        Ok(m)
    }

    /// The built-in mapping for `--format json` without a matching mapping.
    pub fn generic() -> Mapping {
        let p = |v: &[&str]| Paths::Many(v.iter().map(|s| (*s).to_owned()).collect());
        let fields = BTreeMap::from([
            (
                "time".to_owned(),
                p(&[
                    "@timestamp",
                    "timestamp",
                    "time",
                    "ts",
                    "date",
                    "created_at",
                ]),
            ),
            (
                "actor.user.name".to_owned(),
                p(&[
                    "user.name",
                    "username",
                    "user_name",
                    "user",
                    "actor",
                    "userId",
                ]),
            ),
            (
                "actor.user.uid".to_owned(),
                p(&["user.id", "user_id", "actor_id"]),
            ),
            (
                "api.operation".to_owned(),
                p(&[
                    "action",
                    "event",
                    "operation",
                    "eventType",
                    "event_type",
                    "method",
                ]),
            ),
            (
                "src_endpoint.ip".to_owned(),
                p(&[
                    "ip",
                    "src_ip",
                    "source_ip",
                    "client_ip",
                    "remote_addr",
                    "remoteAddr",
                ]),
            ),
            (
                "http_request.user_agent".to_owned(),
                p(&["user_agent", "userAgent", "ua"]),
            ),
            (
                "resources.name".to_owned(),
                p(&["resource", "target", "object", "path", "uri"]),
            ),
            ("message".to_owned(), p(&["message", "msg"])),
            ("metadata.uid".to_owned(), p(&["id", "event_id", "uuid"])),
        ]);
        Mapping {
            name: "json".into(),
            class: default_class(),
            matcher: Match::default(),
            fields,
            status: Some(StatusRule {
                field: "outcome".into(),
                success: vec!["success".into(), "SUCCESS".into(), "allow".into()],
                failure: vec![
                    "failure".into(),
                    "FAILURE".into(),
                    "deny".into(),
                    "denied".into(),
                ],
            }),
            unmapped: Unmapped::default(),
        }
    }

    fn matches(&self, v: &Value) -> bool {
        !self.matcher.keys.is_empty() && self.matcher.keys.iter().all(|k| path(v, k).is_some())
    }

    fn get(&self, v: &Value, field: &str) -> Option<String> {
        self.fields
            .get(field)?
            .iter()
            .find_map(|p| path(v, p).and_then(scalar_text))
    }

    fn map(&self, v: &Value, raw: &str, record: &Record<'_>) -> Event {
        let class = class_of(&self.class).unwrap_or(Class::ApiActivity);
        let time_text = self
            .fields
            .get("time")
            .and_then(|ps| ps.iter().find_map(|p| path(v, p)));
        let time = time_text.and_then(|t| match t {
            Value::String(s) => {
                parse_rfc3339(s).or_else(|| s.parse::<f64>().ok().and_then(epoch_to_ms))
            }
            Value::Number(n) => n.as_f64().and_then(epoch_to_ms),
            _ => None,
        });
        let mut e = Event::new(class, time.unwrap_or(record.received_at_ms), raw.to_owned());
        e.metadata.original_time = time_text.and_then(scalar_text);
        if time.is_none() {
            e.unmap(
                "acta_time_note",
                "no readable time field; time of receipt used",
            );
        }
        e.severity = Severity::Informational;
        e.message = self.get(v, "message");
        e.status_code = self.get(v, "status_code");
        e.status_detail = self.get(v, "status_detail");
        if let Some(rule) = &self.status
            && let Some(val) = path(v, &rule.field).and_then(scalar_text)
        {
            e.status = if rule.success.contains(&val) {
                Status::Success
            } else if rule.failure.contains(&val) {
                Status::Failure
            } else {
                Status::Other
            };
            e.status_code.get_or_insert(val);
        }
        let user_fields = [
            "actor.user.name",
            "actor.user.uid",
            "actor.user.type",
            "actor.user.email_addr",
            "actor.user.account.uid",
        ];
        if user_fields.iter().any(|f| self.get(v, f).is_some()) {
            let u = e.actor_user();
            u.name = self.get(v, "actor.user.name");
            u.uid = self.get(v, "actor.user.uid");
            u.r#type = self.get(v, "actor.user.type");
            u.email_addr = self.get(v, "actor.user.email_addr");
            u.account = self
                .get(v, "actor.user.account.uid")
                .map(|uid| acta_event::Account {
                    uid: Some(uid),
                    name: None,
                });
        }
        if let Some(issuer) = self.get(v, "actor.session.issuer") {
            e.actor.session = Some(acta_event::Session {
                issuer: Some(issuer),
                ..Default::default()
            });
        }
        e.actor.app_name = self.get(v, "actor.app_name");
        if let Some(ip) = self.get(v, "src_endpoint.ip") {
            let ep = e.src_endpoint.get_or_insert_with(Default::default);
            if is_ip(&ip) {
                ep.ip = Some(ip);
            } else {
                ep.hostname = Some(ip);
            }
        }
        if let Some(h) = self.get(v, "src_endpoint.hostname") {
            e.src_endpoint.get_or_insert_with(Default::default).hostname = Some(h);
        }
        if let Some(h) = self.get(v, "dst_endpoint.hostname") {
            e.dst_endpoint.get_or_insert_with(Default::default).hostname = Some(h);
        }
        if let Some(ua) = self.get(v, "http_request.user_agent") {
            e.set_user_agent(ua);
        }
        if let Some(m) = self.get(v, "http_request.http_method") {
            e.http_request
                .get_or_insert_with(Default::default)
                .http_method = Some(m);
        }
        if let Some(p) = self.get(v, "http_request.url.path") {
            e.http_request.get_or_insert_with(Default::default).url = Some(acta_event::Url {
                path: Some(p),
                url_string: None,
            });
        }
        let op = self.get(v, "api.operation");
        let svc = self.get(v, "api.service.name");
        let req = self.get(v, "api.request.uid");
        if op.is_some() || svc.is_some() || req.is_some() {
            let api = e.api_mut();
            api.operation = op;
            if let Some(s) = svc {
                api.set_service(s);
            }
            api.request = req.map(|uid| acta_event::ApiRequest { uid: Some(uid) });
        }
        e.activity_id = activity::OTHER;
        let res = Resource {
            uid: self.get(v, "resources.uid"),
            name: self.get(v, "resources.name"),
            r#type: self.get(v, "resources.type"),
            ..Resource::default()
        };
        if res.uid.is_some() || res.name.is_some() {
            e.resources.push(res);
        }
        if let Some(provider) = self.get(v, "cloud.provider") {
            e.cloud = Some(Cloud {
                provider,
                region: self.get(v, "cloud.region"),
                account: self
                    .get(v, "cloud.account.uid")
                    .map(|uid| acta_event::Account {
                        uid: Some(uid),
                        name: None,
                    }),
                org: None,
            });
        }
        e.metadata.uid = self.get(v, "metadata.uid");
        e.metadata.product = Some(Product {
            name: self.name.clone(),
            vendor_name: None,
        });
        for k in &self.unmapped.keys {
            if let Some(val) = path(v, k) {
                e.unmap(k, val.clone());
            }
        }
        e
    }
}

/// The `json` format: configured mappings, and the generic one when forced.
#[derive(Debug, Clone)]
pub struct JsonMapped {
    mappings: Vec<Mapping>,
    generic: Mapping,
}

impl JsonMapped {
    pub fn new(mappings: Vec<Mapping>) -> JsonMapped {
        JsonMapped {
            mappings,
            generic: Mapping::generic(),
        }
    }
}

impl Parser for JsonMapped {
    fn format(&self) -> Format {
        Format::Json
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        let Some(obj) = probe.object() else {
            return false;
        };
        let v = Value::Object(obj.clone());
        self.mappings.iter().any(|m| m.matches(&v))
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let v: Value = match super::json::from_record(record.bytes) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Err(Rejection::NotMine),
            Err(_) => return Err(Rejection::NotMine),
        };
        let raw = std::str::from_utf8(record.bytes).map_err(|_| Rejection::NotMine)?;
        let mapping = self
            .mappings
            .iter()
            .find(|m| m.matches(&v))
            .unwrap_or(&self.generic);
        Ok(Parsed::Event(Box::new(mapping.map(&v, raw, record))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JENKINS: &str = r#"
name = "jenkins"
[match]
keys = ["userId", "eventType"]
[fields]
time = "timestamp"
"actor.user.name" = "userId"
"api.operation" = "eventType"
"src_endpoint.ip" = ["remoteAddr", "ip"]
"resources.name" = "projectName"
"resources.type" = "itemType"
[status]
field = "result"
success = ["SUCCESS"]
failure = ["FAILURE"]
[unmapped]
keys = ["buildNumber"]
"#;

    fn event(p: &JsonMapped, s: &str) -> Value {
        let r = Record {
            bytes: s.as_bytes(),
            received_at_ms: 9,
        };
        match p.parse(&r).unwrap() {
            Parsed::Event(e) => serde_json::from_str(&e.to_json()).unwrap(),
            Parsed::NotAnEvent(w) => panic!("{w}"),
        }
    }

    #[test]
    fn a_mapping_fills_the_model_and_detects_its_records() {
        let p = JsonMapped::new(vec![Mapping::from_toml(JENKINS).unwrap()]);
        let rec = r#"{"timestamp":"2024-05-01T10:00:00Z","userId":"admin","eventType":"BuildStart","remoteAddr":"10.1.2.3","projectName":"deploy-prod","itemType":"job","result":"FAILURE","buildNumber":42}"#;
        assert!(p.sniff(&mut Probe::new(rec.as_bytes())));
        assert!(!p.sniff(&mut Probe::new(br#"{"userId":"x"}"#)));
        let v = event(&p, rec);
        assert_eq!(v["time"], 1_714_557_600_000_i64);
        assert_eq!(v["actor"]["user"]["name"], "admin");
        assert_eq!(v["api"]["operation"], "BuildStart");
        assert_eq!(v["src_endpoint"]["ip"], "10.1.2.3");
        assert_eq!(v["resources"][0]["name"], "deploy-prod");
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["unmapped"]["buildNumber"], 42);
        assert_eq!(v["metadata"]["product"]["name"], "jenkins");
    }

    #[test]
    fn generic_mapping_reads_common_names_without_claiming_records() {
        let p = JsonMapped::new(Vec::new());
        let rec = r#"{"@timestamp":1714557600,"user":"bob","action":"login","ip":"::1"}"#;
        assert!(!p.sniff(&mut Probe::new(rec.as_bytes())));
        let v = event(&p, rec);
        assert_eq!(v["time"], 1_714_557_600_000_i64);
        assert_eq!(v["actor"]["user"]["name"], "bob");
        assert_eq!(v["api"]["operation"], "login");
        assert_eq!(v["src_endpoint"]["ip"], "::1");
        let v = event(&p, r#"{"nothing":"known"}"#);
        assert_eq!(v["time"], 9);
        assert_eq!(
            v["unmapped"]["acta_time_note"],
            "no readable time field; time of receipt used"
        );
    }

    #[test]
    fn bad_mappings_are_refused_with_the_reason() {
        let e = Mapping::from_toml("name = \"x\"\n[fields]\n\"actor.nme\" = \"u\"\n").unwrap_err();
        assert!(e.contains("unknown model field `actor.nme`"), "{e}");
        let e = Mapping::from_toml("name = \"x\"\nclass = \"nope\"\n").unwrap_err();
        assert!(e.contains("unknown class"), "{e}");
        assert!(Mapping::from_toml("name = ").is_err());
    }
}
