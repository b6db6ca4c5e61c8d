//! acta's own alerts: OCSF Detection Findings (class 2004) that acta appends to its ledger under
//! the source `acta-finding`, read back into the model so that they are searched, counted and
//! exported like every other event.
//!
//! A finding has `class_uid` 2004 and `metadata.product.name` `acta`; it is never detected by
//! content (user input cannot pass as acta's alerts): only entries stored under `acta-finding`,
//! which `acta ingest` reserves, are read with this parser. It becomes an
//! event of class Detection Finding: its `time` is when the alert was raised, `api.operation` the
//! rule id or detector that raised it, `api.service.name` the kind of analytic (`sigma`,
//! `sigma-correlation`, `behaviour`), the actor the actor of the events that raised it, and
//! `message` the finding's title. The ledger entries that raised it stay in `unmapped.entries`.

use std::borrow::Cow;

use acta_event::{Actor, Api, Class, Endpoint, Event, Service, Severity, User, activity};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::json::from_record;
use super::{Format, Parsed, Parser, Probe, Record, Rejection};

/// The format name, and the ledger source acta stores its findings under.
pub const SOURCE: &str = "acta-finding";

/// Detection findings written by acta.
#[derive(Debug, Default)]
pub struct Finding;

#[derive(Deserialize)]
struct Raw<'a> {
    class_uid: u32,
    time: i64,
    #[serde(default)]
    severity_id: u8,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    finding_info: Info<'a>,
    #[serde(borrow, default)]
    actor: Option<RawActor<'a>>,
    #[serde(borrow, default)]
    src_endpoint: Option<RawEndpoint<'a>>,
    #[serde(borrow)]
    metadata: Meta<'a>,
    #[serde(default)]
    unmapped: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct Info<'a> {
    #[serde(borrow)]
    uid: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow, default)]
    analytic: Option<Analytic<'a>>,
    #[serde(borrow, default)]
    types: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Analytic<'a> {
    #[serde(borrow, default)]
    uid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawActor<'a> {
    #[serde(borrow, default)]
    user: Option<RawUser<'a>>,
}

#[derive(Deserialize)]
struct RawUser<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uid: Option<Cow<'a, str>>,
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

impl Parser for Finding {
    fn format(&self) -> Format {
        Format::Finding
    }

    /// Never by content: a record that merely looks like a finding is not trusted as one. Only
    /// entries acta itself stored under the source `acta-finding` (a source name no input may
    /// take) are read as findings.
    fn sniff(&self, _probe: &mut Probe<'_>) -> bool {
        false
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        if !record.bytes.trim_ascii_start().starts_with(b"{") {
            return Err(Rejection::NotMine);
        }
        let raw: Raw<'_> = from_record(record.bytes).map_err(|_| Rejection::NotMine)?;
        if raw.class_uid != 2004 || raw.metadata.product.name != "acta" {
            return Err(Rejection::NotMine);
        }
        let mut event = Event::new(Class::DetectionFinding, raw.time, String::new());
        event.activity_id = activity::CREATE;
        event.severity = Severity::from_id(raw.severity_id);
        event.message = Some(match &raw.message {
            Some(m) if !m.is_empty() => format!("{}: {m}", raw.finding_info.title),
            _ => raw.finding_info.title.clone().into_owned(),
        });
        if let Some(user) = raw.actor.and_then(|a| a.user) {
            event.actor = Actor {
                user: Some(User {
                    name: user.name.map(Cow::into_owned),
                    uid: user.uid.map(Cow::into_owned),
                    ..User::default()
                }),
                ..Actor::default()
            };
        }
        event.src_endpoint = raw.src_endpoint.and_then(|e| e.ip).map(|ip| Endpoint {
            ip: Some(ip.into_owned()),
            ..Endpoint::default()
        });
        event.api = Some(Api {
            operation: raw
                .finding_info
                .analytic
                .and_then(|a| a.uid)
                .map(Cow::into_owned),
            service: raw.finding_info.types.first().map(|t| Service {
                name: Some(t.clone().into_owned()),
            }),
            ..Api::default()
        });
        event.unmapped.insert(
            "finding_uid".to_owned(),
            Value::String(raw.finding_info.uid.into_owned()),
        );
        if let Some(entries) = raw
            .unmapped
            .as_ref()
            .and_then(|u| u.get("acta"))
            .and_then(|a| a.get("entries"))
        {
            event.unmapped.insert("entries".to_owned(), entries.clone());
        }
        Ok(Parsed::Event(Box::new(event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINDING: &str = r#"{"class_uid":2004,"category_uid":2,"activity_id":1,"time":1763740000123,"severity_id":4,"message":"StopLogging by alice","finding_info":{"uid":"f-1","title":"AWS CloudTrail Important Change","analytic":{"uid":"4db60cc0-36fb-42b7-9b58-a5b53019fb74","name":"AWS CloudTrail Important Change","type_id":1,"type":"Rule"},"types":["sigma"],"related_events":[{"uid":"42"}]},"actor":{"user":{"name":"alice","uid":"arn:aws:iam::1:user/alice"}},"src_endpoint":{"ip":"203.0.113.9"},"metadata":{"version":"1.3.0","product":{"name":"acta","vendor_name":"acta"}},"unmapped":{"acta":{"entries":[42]}}}"#;

    fn parse(text: &str) -> Result<Parsed, Rejection> {
        Finding.parse(&Record {
            bytes: text.as_bytes(),
            received_at_ms: 0,
        })
    }

    #[test]
    fn reads_a_finding() {
        let Ok(Parsed::Event(event)) = parse(FINDING) else {
            panic!("not read");
        };
        assert_eq!(event.class, Class::DetectionFinding);
        assert_eq!(event.time, 1_763_740_000_123);
        assert_eq!(event.severity, Severity::High);
        let api = event.api.as_ref().unwrap();
        assert_eq!(
            api.operation.as_deref(),
            Some("4db60cc0-36fb-42b7-9b58-a5b53019fb74")
        );
        assert_eq!(
            api.service.as_ref().and_then(|s| s.name.as_deref()),
            Some("sigma")
        );
        assert_eq!(
            event.actor.user.as_ref().and_then(|u| u.name.as_deref()),
            Some("alice")
        );
        assert_eq!(
            event.message.as_deref(),
            Some("AWS CloudTrail Important Change: StopLogging by alice")
        );
        assert_eq!(event.unmapped["entries"], serde_json::json!([42]));
        assert!(!Finding.sniff(&mut Probe::new(FINDING.as_bytes())));
    }

    #[test]
    fn other_records_are_not_mine() {
        let other_product = FINDING.replace(r#""name":"acta","vendor"#, r#""name":"x","vendor"#);
        for text in [
            "{}",
            "not json",
            r#"{"class_uid":6003}"#,
            other_product.as_str(),
            r#"{"class_uid":2004,"time":"x"}"#,
        ] {
            assert!(matches!(parse(text), Err(Rejection::NotMine)), "{text}");
            assert!(!Finding.sniff(&mut Probe::new(text.as_bytes())), "{text}");
        }
    }
}
