//! acta's own access records: every read of the trail through `acta serve` (a search, a count, an
//! event, the alerts) is appended to the ledger under the source `acta-access` as an OCSF API
//! Activity (class 6003) record, read back here so that "who searched what" is searched, counted
//! and exported like every other event.
//!
//! Like findings, access records are never detected by content: only entries stored under
//! `acta-access`, which no input may take, are read with this parser. The event's actor is the
//! token (`uid` its id, `name` its name, `type` its role), `api.operation` the route (`search`,
//! `stats`, `event`, `alerts`), `api.service.name` `acta`, `http_request` the method and path,
//! `src_endpoint.ip` the caller's address, and `message` what was asked. The request's parameters
//! and how many results it returned stay in `unmapped`.

use std::borrow::Cow;

use acta_event::{
    Actor, Api, Class, Endpoint, Event, HttpRequest, Service, Status, Url, User, activity,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::json::from_record;
use super::{Format, Parsed, Parser, Probe, Record, Rejection};

/// The format name, and the ledger source acta stores its access records under.
pub const SOURCE: &str = "acta-access";

/// Access records written by `acta serve`.
#[derive(Debug, Default)]
pub struct Access;

#[derive(Deserialize)]
struct Raw<'a> {
    class_uid: u32,
    time: i64,
    #[serde(default)]
    status_id: u8,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    actor: RawActor<'a>,
    #[serde(borrow)]
    api: RawApi<'a>,
    #[serde(borrow, default)]
    http_request: Option<RawHttp<'a>>,
    #[serde(borrow, default)]
    src_endpoint: Option<RawEndpoint<'a>>,
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(default)]
    unmapped: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawActor<'a> {
    #[serde(borrow)]
    user: RawUser<'a>,
}

#[derive(Deserialize)]
struct RawUser<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    r#type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawApi<'a> {
    #[serde(borrow)]
    operation: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawHttp<'a> {
    #[serde(borrow, default)]
    http_method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<RawUrl<'a>>,
}

#[derive(Deserialize)]
struct RawUrl<'a> {
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawEndpoint<'a> {
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow)]
    product: Product<'a>,
}

#[derive(Deserialize)]
struct Product<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

impl Parser for Access {
    fn format(&self) -> Format {
        Format::Access
    }

    /// Never by content: only entries acta itself stored under `acta-access` are read as access
    /// records.
    fn sniff(&self, _probe: &mut Probe<'_>) -> bool {
        false
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        if !record.bytes.trim_ascii_start().starts_with(b"{") {
            return Err(Rejection::NotMine);
        }
        let raw: Raw<'_> = from_record(record.bytes).map_err(|_| Rejection::NotMine)?;
        if raw.class_uid != 6003 || raw.metadata.product.name != "acta" {
            return Err(Rejection::NotMine);
        }
        let mut event = Event::new(Class::ApiActivity, raw.time, String::new());
        event.activity_id = activity::READ;
        event.status = match raw.status_id {
            1 => Status::Success,
            2 => Status::Failure,
            _ => Status::Unknown,
        };
        event.message = raw.message.map(Cow::into_owned);
        event.actor = Actor {
            user: Some(User {
                name: raw.actor.user.name.map(Cow::into_owned),
                uid: raw.actor.user.uid.map(Cow::into_owned),
                r#type: raw.actor.user.r#type.map(Cow::into_owned),
                ..User::default()
            }),
            ..Actor::default()
        };
        event.src_endpoint = raw.src_endpoint.and_then(|e| e.ip).map(|ip| Endpoint {
            ip: Some(ip.into_owned()),
            ..Endpoint::default()
        });
        event.http_request = raw.http_request.map(|h| HttpRequest {
            user_agent: h.user_agent.map(Cow::into_owned),
            http_method: h.http_method.map(Cow::into_owned),
            url: h.url.map(|u| Url {
                path: u.path.map(Cow::into_owned),
                url_string: None,
            }),
        });
        event.api = Some(Api {
            operation: Some(raw.api.operation.into_owned()),
            service: Some(Service {
                name: Some("acta".to_owned()),
            }),
            ..Api::default()
        });
        if let Some(Value::Object(acta)) = raw.unmapped.and_then(|mut u| u.remove("acta")) {
            for (k, v) in acta {
                event.unmapped.insert(k, v);
            }
        }
        Ok(Parsed::Event(Box::new(event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &str = r#"{"class_uid":6003,"class_name":"API Activity","category_uid":6,"activity_id":2,"type_uid":600302,"time":1763740000123,"status_id":1,"status":"Success","message":"search: actor:alice","actor":{"user":{"uid":"0123456789ab","name":"incident desk","type":"auditor"}},"api":{"operation":"search","service":{"name":"acta"}},"http_request":{"http_method":"GET","url":{"path":"/api/v1/search"},"user_agent":"curl/8"},"src_endpoint":{"ip":"127.0.0.1"},"metadata":{"version":"1.3.0","product":{"name":"acta","vendor_name":"acta"}},"unmapped":{"acta":{"params":{"q":"actor:alice"},"results":3}}}"#;

    fn parse(text: &str) -> Result<Parsed, Rejection> {
        Access.parse(&Record {
            bytes: text.as_bytes(),
            received_at_ms: 0,
        })
    }

    #[test]
    fn reads_an_access_record() {
        let Ok(Parsed::Event(event)) = parse(ACCESS) else {
            panic!("not read");
        };
        assert_eq!(event.class, Class::ApiActivity);
        assert_eq!(event.activity_id, activity::READ);
        assert_eq!(event.status, Status::Success);
        assert_eq!(event.time, 1_763_740_000_123);
        let user = event.actor.user.as_ref().unwrap();
        assert_eq!(user.uid.as_deref(), Some("0123456789ab"));
        assert_eq!(user.name.as_deref(), Some("incident desk"));
        assert_eq!(user.r#type.as_deref(), Some("auditor"));
        assert_eq!(
            event.api.as_ref().unwrap().operation.as_deref(),
            Some("search")
        );
        assert_eq!(
            event.src_endpoint.as_ref().unwrap().ip.as_deref(),
            Some("127.0.0.1")
        );
        let http = event.http_request.as_ref().unwrap();
        assert_eq!(
            http.url.as_ref().unwrap().path.as_deref(),
            Some("/api/v1/search")
        );
        assert_eq!(event.unmapped["results"], serde_json::json!(3));
        assert_eq!(event.unmapped["params"]["q"], "actor:alice");
        assert!(!Access.sniff(&mut Probe::new(ACCESS.as_bytes())));
    }

    #[test]
    fn other_records_are_not_mine() {
        let other_product = ACCESS.replace(r#""name":"acta","vendor"#, r#""name":"x","vendor"#);
        for text in [
            "{}",
            "not json",
            r#"{"class_uid":2004}"#,
            other_product.as_str(),
            r#"{"class_uid":6003,"time":"x"}"#,
        ] {
            assert!(matches!(parse(text), Err(Rejection::NotMine)), "{text}");
        }
    }
}
