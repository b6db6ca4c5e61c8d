//! AWS CloudTrail records.
//!
//! One CloudTrail record (an element of a `{"Records":[…]}` file, a CloudTrail Lake or
//! EventBridge NDJSON line, or a single event object) becomes one event. Digest files (the hourly
//! integrity chain CloudTrail writes beside the logs) are recognised and reported, not turned
//! into events. The field-by-field mapping is in `docs/events.md`.
//!
//! The record is deserialised into borrowed, typed structs: the fields acta maps are read once,
//! strings without escapes are not copied, and the free-form `requestParameters` object is only
//! split into raw values so that the few well-known resource keys can be read.

use std::borrow::Cow;
use std::collections::BTreeMap;

use acta_event::{
    Account, Class, Cloud, Event, Product, Resource, Session, Severity, Status, User, activity,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::jsonobj::Text;
use super::time::parse_rfc3339;
use super::{Format, Parsed, Parser, Probe, Record, Rejection, json};

/// The CloudTrail parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudTrail;

type Str<'a> = Option<Text<'a>>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw<'a> {
    #[serde(borrow)]
    event_version: Str<'a>,
    #[serde(borrow)]
    event_time: Str<'a>,
    #[serde(borrow)]
    event_source: Str<'a>,
    #[serde(borrow)]
    event_name: Str<'a>,
    #[serde(borrow)]
    aws_region: Str<'a>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip_address: Str<'a>,
    #[serde(borrow)]
    user_agent: Str<'a>,
    #[serde(borrow)]
    error_code: Str<'a>,
    #[serde(borrow)]
    error_message: Str<'a>,
    #[serde(rename = "requestID", borrow)]
    request_id: Str<'a>,
    #[serde(rename = "eventID", borrow)]
    event_id: Str<'a>,
    #[serde(borrow)]
    event_type: Str<'a>,
    #[serde(borrow)]
    api_version: Str<'a>,
    #[serde(borrow)]
    recipient_account_id: Str<'a>,
    #[serde(rename = "sharedEventID", borrow)]
    shared_event_id: Str<'a>,
    #[serde(borrow)]
    event_category: Str<'a>,
    #[serde(borrow)]
    vpc_endpoint_id: Str<'a>,
    read_only: Option<bool>,
    management_event: Option<bool>,
    #[serde(borrow)]
    user_identity: Option<Identity<'a>>,
    #[serde(borrow)]
    request_parameters: Option<&'a RawValue>,
    #[serde(borrow)]
    response_elements: Option<&'a RawValue>,
    #[serde(borrow)]
    additional_event_data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resources: Option<Vec<RawResource<'a>>>,
    // Digest files.
    #[serde(borrow)]
    digest_public_key_fingerprint: Str<'a>,
    #[serde(borrow)]
    digest_start_time: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(borrow)]
    r#type: Str<'a>,
    #[serde(borrow)]
    principal_id: Str<'a>,
    #[serde(borrow)]
    arn: Str<'a>,
    #[serde(borrow)]
    account_id: Str<'a>,
    #[serde(borrow)]
    access_key_id: Str<'a>,
    #[serde(borrow)]
    user_name: Str<'a>,
    #[serde(borrow)]
    invoked_by: Str<'a>,
    #[serde(borrow)]
    identity_provider: Str<'a>,
    #[serde(borrow)]
    credential_id: Str<'a>,
    #[serde(borrow)]
    session_context: Option<SessionContext<'a>>,
    #[serde(borrow)]
    on_behalf_of: Option<OnBehalfOf<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionContext<'a> {
    #[serde(borrow)]
    session_issuer: Option<Issuer<'a>>,
    #[serde(borrow)]
    attributes: Option<Attributes<'a>>,
    #[serde(borrow)]
    web_id_federation_data: Option<WebId<'a>>,
    #[serde(borrow)]
    source_identity: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Issuer<'a> {
    #[serde(borrow)]
    r#type: Str<'a>,
    #[serde(borrow)]
    arn: Str<'a>,
    #[serde(borrow)]
    user_name: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attributes<'a> {
    #[serde(borrow)]
    creation_date: Str<'a>,
    #[serde(borrow)]
    mfa_authenticated: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebId<'a> {
    #[serde(borrow)]
    federated_provider: Str<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnBehalfOf<'a> {
    #[serde(borrow)]
    user_id: Str<'a>,
    #[serde(borrow)]
    identity_store_arn: Str<'a>,
}

#[derive(Deserialize)]
struct RawResource<'a> {
    #[serde(rename = "ARN", borrow)]
    arn: Str<'a>,
    #[serde(rename = "accountId", borrow)]
    account_id: Str<'a>,
    #[serde(borrow)]
    r#type: Str<'a>,
}

/// `requestParameters` keys that name the resource acted on, and its type.
const PARAM_RESOURCES: &[(&str, &str)] = &[
    ("bucketName", "AWS::S3::Bucket"),
    ("roleName", "AWS::IAM::Role"),
    ("userName", "AWS::IAM::User"),
    ("groupName", "AWS::IAM::Group"),
    ("policyArn", "AWS::IAM::Policy"),
    ("instanceProfileName", "AWS::IAM::InstanceProfile"),
    ("functionName", "AWS::Lambda::Function"),
    ("layerName", "AWS::Lambda::LayerVersion"),
    ("trailName", "AWS::CloudTrail::Trail"),
    ("secretId", "AWS::SecretsManager::Secret"),
    ("keyId", "AWS::KMS::Key"),
    ("instanceId", "AWS::EC2::Instance"),
    ("snapshotId", "AWS::EC2::Snapshot"),
    ("imageId", "AWS::EC2::Image"),
    ("groupId", "AWS::EC2::SecurityGroup"),
    ("dBSnapshotIdentifier", "AWS::RDS::DBSnapshot"),
    ("dBInstanceIdentifier", "AWS::RDS::DBInstance"),
    ("logGroupName", "AWS::Logs::LogGroup"),
    ("hostedZoneId", "AWS::Route53::HostedZone"),
    ("detectorId", "AWS::GuardDuty::Detector"),
    ("modelId", "AWS::Bedrock::Model"),
    ("documentName", "AWS::SSM::Document"),
    ("target", "AWS::EC2::Instance"),
    ("trustAnchorId", "AWS::RolesAnywhere::TrustAnchor"),
];

impl Parser for CloudTrail {
    fn format(&self) -> Format {
        Format::Cloudtrail
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        probe.object().is_some_and(|o| {
            (o.contains_key("eventVersion")
                && (o.contains_key("eventName") || o.contains_key("eventSource")))
                || (o.contains_key("digestPublicKeyFingerprint")
                    && o.contains_key("digestStartTime"))
        })
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let raw: Raw<'_> = match json::from_record(record.bytes) {
            Ok(r) => r,
            Err(e) => {
                // Only a record that is CloudTrail by its keys is invalid; anything else is
                // somebody else's.
                return if self.sniff(&mut Probe::new(record.bytes)) {
                    Err(Rejection::invalid(format!("unusable record: {e}")))
                } else {
                    Err(Rejection::NotMine)
                };
            }
        };
        if raw.digest_public_key_fingerprint.is_some() && raw.digest_start_time.is_some() {
            return Ok(Parsed::NotAnEvent(
                "CloudTrail digest file (the log's integrity chain), not an event",
            ));
        }
        if raw.event_version.is_none() || (raw.event_name.is_none() && raw.event_source.is_none()) {
            return Err(Rejection::NotMine);
        }
        Ok(Parsed::Event(Box::new(map(raw, record))))
    }
}

fn own(s: &Str<'_>) -> Option<String> {
    s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn map(raw: Raw<'_>, record: &Record<'_>) -> Event {
    let time = raw.event_time.as_deref().and_then(parse_rfc3339);
    let login = raw.event_type.as_deref() == Some("AwsConsoleSignIn");
    let class = if login {
        Class::Authentication
    } else {
        Class::ApiActivity
    };
    // `raw_data` is filled by the registry when wanted.
    let mut e = Event::new(class, time.unwrap_or(record.received_at_ms), String::new());
    e.metadata.original_time = own(&raw.event_time);
    if time.is_none() {
        e.unmap(
            "acta_time_note",
            "eventTime missing or unreadable; time of receipt used",
        );
    }
    let name = raw.event_name.as_deref().unwrap_or_default();
    e.activity_id = if login {
        match name {
            "ConsoleLogin" | "CheckMfa" => activity::LOGON,
            "ExitRole" | "SwitchRole" => activity::OTHER,
            _ => activity::OTHER,
        }
    } else {
        api_activity(name, raw.read_only)
    };
    e.severity = Severity::Informational;

    // Outcome: an error code is a failure; console sign-ins put theirs in responseElements.
    let console_result = raw
        .response_elements
        .filter(|_| login)
        .and_then(|r| {
            serde_json::from_str::<BTreeMap<Cow<'_, str>, serde_json::Value>>(r.get()).ok()
        })
        .and_then(|m| {
            m.get("ConsoleLogin")
                .and_then(|v| v.as_str().map(str::to_owned))
        });
    if let Some(code) = own(&raw.error_code) {
        e.status = Status::Failure;
        e.status_code = Some(code.clone());
        e.status_detail = own(&raw.error_message);
        let resp = e.api_mut().response.get_or_insert_with(Default::default);
        resp.error = Some(code);
        resp.error_message = own(&raw.error_message);
    } else if console_result.as_deref() == Some("Failure") {
        e.status = Status::Failure;
        e.status_detail = own(&raw.error_message);
    } else {
        e.status = Status::Success;
    }

    let api = e.api_mut();
    api.operation = own(&raw.event_name);
    if let Some(s) = own(&raw.event_source) {
        api.set_service(s);
    }
    api.version = own(&raw.api_version);
    if let Some(id) = own(&raw.request_id) {
        api.request = Some(acta_event::ApiRequest { uid: Some(id) });
    }

    if let Some(id) = &raw.user_identity {
        actor(&mut e, id);
    }
    if let Some(ip) = own(&raw.source_ip_address) {
        let ep = e.src_endpoint.get_or_insert_with(Default::default);
        if json::is_ip(&ip) {
            ep.ip = Some(ip);
        } else {
            // `cloudtrail.amazonaws.com`, `AWS Internal`: a service, not an address.
            ep.domain = Some(ip);
        }
    }
    if let Some(ua) = own(&raw.user_agent) {
        e.set_user_agent(ua);
    }

    let account = own(&raw.recipient_account_id)
        .or_else(|| raw.user_identity.as_ref().and_then(|i| own(&i.account_id)));
    e.cloud = Some(Cloud {
        provider: "AWS".into(),
        region: own(&raw.aws_region),
        account: account.map(|uid| Account {
            uid: Some(uid),
            name: None,
        }),
        org: None,
    });

    resources(&mut e, &raw);

    e.metadata.uid = own(&raw.event_id);
    e.metadata.product = Some(Product::new("CloudTrail", "AWS"));
    e.metadata.event_code = own(&raw.event_type);
    e.metadata.correlation_uid = own(&raw.shared_event_id);
    if let Some(c) = own(&raw.event_category) {
        e.unmap("eventCategory", c);
    }
    if let Some(v) = raw.read_only {
        e.unmap("readOnly", v);
    }
    if let Some(v) = raw.management_event {
        e.unmap("managementEvent", v);
    }
    if let Some(v) = own(&raw.vpc_endpoint_id) {
        e.unmap("vpcEndpointId", v);
    }
    if let Some(r) = console_result {
        e.unmap("consoleLogin", r);
    }
    if login
        && let Some(a) = raw.additional_event_data
        && let Ok(m) = serde_json::from_str::<BTreeMap<Cow<'_, str>, serde_json::Value>>(a.get())
        && let Some(mfa) = m.get("MFAUsed").and_then(|v| v.as_str())
    {
        e.unmap("mfaUsed", mfa);
    }
    e.message = Some(message(&e));
    e
}

/// OCSF API activity from the operation name: reads, creates, deletes, and updates for the rest
/// of the mutating verbs.
fn api_activity(name: &str, read_only: Option<bool>) -> u8 {
    const READ: &[&str] = &[
        "Get", "Describe", "List", "Head", "Lookup", "Search", "Scan", "Query", "View", "BatchGet",
        "Check", "Validate", "Download", "Decrypt", "Select", "Test", "Estimate", "Preview",
    ];
    const CREATE: &[&str] = &[
        "Create", "Run", "Allocate", "Import", "Register", "Issue", "Generate", "Copy", "Add",
        "Launch", "Upload", "Request", "Publish", "Send", "Invoke", "Assume",
    ];
    const DELETE: &[&str] = &[
        "Delete",
        "Remove",
        "Terminate",
        "Deregister",
        "Release",
        "Purge",
        "Destroy",
        "Leave",
    ];
    const UPDATE: &[&str] = &[
        "Put",
        "Update",
        "Modify",
        "Set",
        "Attach",
        "Detach",
        "Associate",
        "Disassociate",
        "Enable",
        "Disable",
        "Stop",
        "Start",
        "Reboot",
        "Authorize",
        "Revoke",
        "Tag",
        "Untag",
        "Change",
        "Reset",
        "Replace",
        "Restore",
        "Apply",
        "Cancel",
        "Accept",
        "Reject",
        "Rotate",
        "Share",
        "Unshare",
    ];
    let starts = |set: &[&str]| {
        set.iter().any(|p| {
            name.strip_prefix(p).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase())
            })
        })
    };
    if read_only == Some(true) || starts(READ) {
        activity::READ
    } else if starts(DELETE) {
        activity::DELETE
    } else if starts(CREATE) {
        activity::CREATE
    } else if starts(UPDATE) {
        activity::UPDATE
    } else {
        activity::OTHER
    }
}

fn actor(e: &mut Event, id: &Identity<'_>) {
    let kind = id.r#type.as_deref().unwrap_or_default();
    let arn = own(&id.arn);
    let issuer = id
        .session_context
        .as_ref()
        .and_then(|s| s.session_issuer.as_ref());
    // The name an investigator knows the principal by.
    let name = match kind {
        "Root" => own(&id.user_name).or_else(|| Some("root".into())),
        "AssumedRole" | "FederatedUser" => arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .map(str::to_owned)
            .or_else(|| own(&id.user_name)),
        "AWSService" => own(&id.invoked_by),
        "IdentityCenterUser" => {
            own(&id.user_name).or_else(|| id.on_behalf_of.as_ref().and_then(|o| own(&o.user_id)))
        }
        _ => own(&id.user_name),
    }
    .or_else(|| own(&id.principal_id));
    let user = User {
        name,
        uid: arn.or_else(|| own(&id.principal_id)),
        r#type: own(&id.r#type),
        type_id: Some(match kind {
            "Root" => 2,
            "AWSService" => 3,
            "" => 0,
            "IAMUser" | "AssumedRole" | "FederatedUser" | "IdentityCenterUser" | "SAMLUser"
            | "WebIdentityUser" => 1,
            _ => 99,
        }),
        credential_uid: own(&id.access_key_id).or_else(|| own(&id.credential_id)),
        account: own(&id.account_id).map(|uid| Account {
            uid: Some(uid),
            name: None,
        }),
        ..User::default()
    };
    e.actor.user = Some(user);
    e.actor.invoked_by = own(&id.invoked_by);
    let attrs = id
        .session_context
        .as_ref()
        .and_then(|s| s.attributes.as_ref());
    let web = id
        .session_context
        .as_ref()
        .and_then(|s| s.web_id_federation_data.as_ref())
        .and_then(|w| own(&w.federated_provider));
    let issuer_arn = issuer
        .and_then(|i| own(&i.arn))
        .or(web)
        .or_else(|| own(&id.identity_provider));
    if issuer_arn.is_some() || attrs.is_some() {
        e.actor.session = Some(Session {
            uid: None,
            issuer: issuer_arn,
            created_time: attrs
                .and_then(|a| a.creation_date.as_deref())
                .and_then(parse_rfc3339),
            is_mfa: attrs.and_then(|a| a.mfa_authenticated.as_deref()) == Some("true"),
            terminal: None,
        });
    }
    if let Some(i) = issuer {
        if let Some(n) = own(&i.user_name) {
            e.unmap("sessionIssuerUserName", n);
        }
        if let Some(t) = own(&i.r#type) {
            e.unmap("sessionIssuerType", t);
        }
    }
    if let Some(s) = id
        .session_context
        .as_ref()
        .and_then(|s| own(&s.source_identity))
    {
        e.unmap("sourceIdentity", s);
    }
    if let Some(o) = &id.on_behalf_of
        && let Some(store) = own(&o.identity_store_arn)
    {
        e.unmap("identityStoreArn", store);
    }
}

fn resources(e: &mut Event, raw: &Raw<'_>) {
    for r in raw.resources.iter().flatten() {
        let arn = own(&r.arn);
        e.resources.push(Resource {
            name: arn.as_deref().map(short_name),
            uid: arn,
            r#type: own(&r.r#type),
            owner: own(&r.account_id).map(|uid| User {
                account: Some(Account {
                    uid: Some(uid),
                    name: None,
                }),
                ..User::default()
            }),
            ..Resource::default()
        });
    }
    let Some(params) = raw.request_parameters else {
        return;
    };
    let Ok(map) = serde_json::from_str::<BTreeMap<Cow<'_, str>, &RawValue>>(params.get()) else {
        return;
    };
    for (key, kind) in PARAM_RESOURCES {
        let Some(v) = map.get(*key) else { continue };
        let Ok(value) = serde_json::from_str::<Cow<'_, str>>(v.get()) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        push_unique(e, kind, &value);
    }
    // EC2 lists: {"instancesSet":{"items":[{"instanceId":…}]}}.
    if let Some(v) = map.get("instancesSet")
        && let Ok(set) = serde_json::from_str::<serde_json::Value>(v.get())
        && let Some(items) = set.get("items").and_then(|i| i.as_array())
    {
        for id in items
            .iter()
            .filter_map(|i| i.get("instanceId").and_then(|v| v.as_str()))
        {
            push_unique(e, "AWS::EC2::Instance", id);
        }
    }
    // SSM parameters and the like: a plain `name` only means something per service.
    if let Some(v) = map.get("name")
        && let Ok(name) = serde_json::from_str::<Cow<'_, str>>(v.get())
    {
        let kind = match raw.event_source.as_deref() {
            Some("ssm.amazonaws.com") => Some("AWS::SSM::Parameter"),
            Some("cloudtrail.amazonaws.com") => Some("AWS::CloudTrail::Trail"),
            Some("secretsmanager.amazonaws.com") => Some("AWS::SecretsManager::Secret"),
            _ => None,
        };
        if let Some(kind) = kind {
            push_unique(e, kind, &name);
        }
    }
}

fn push_unique(e: &mut Event, kind: &str, value: &str) {
    let is_arn = value.starts_with("arn:");
    let dup = e.resources.iter().any(|r| {
        r.uid.as_deref() == Some(value)
            || (r.r#type.as_deref() == Some(kind) && r.name.as_deref() == Some(value))
    });
    if dup {
        return;
    }
    e.resources.push(Resource {
        uid: is_arn.then(|| value.to_owned()),
        name: Some(if is_arn {
            short_name(value)
        } else {
            value.to_owned()
        }),
        r#type: Some(kind.to_owned()),
        ..Resource::default()
    });
}

/// The last path segment of an ARN (`arn:aws:iam::1:role/x/y` → `y`).
fn short_name(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    resource
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(resource)
        .to_owned()
}

fn message(e: &Event) -> String {
    let who = e.who();
    let op = e
        .api
        .as_ref()
        .and_then(|a| a.operation.as_deref())
        .unwrap_or("?");
    let svc = e
        .api
        .as_ref()
        .and_then(|a| a.service.as_ref())
        .and_then(|s| s.name.as_deref())
        .unwrap_or("?");
    match &e.status_code {
        Some(code) => format!("{who} called {op} on {svc}: {code}"),
        None => format!("{who} called {op} on {svc}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(s: &str) -> Value {
        let r = Record {
            bytes: s.as_bytes(),
            received_at_ms: 7,
        };
        match CloudTrail.parse(&r).unwrap() {
            Parsed::Event(e) => serde_json::from_str(&e.to_json()).unwrap(),
            Parsed::NotAnEvent(why) => panic!("{why}"),
        }
    }

    #[test]
    fn assumed_role_failure() {
        let v = parse(
            r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::111:assumed-role/Admin/alice","accountId":"111","accessKeyId":"ASIA1","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111:role/Admin","userName":"Admin"},"attributes":{"creationDate":"2024-01-01T00:00:00Z","mfaAuthenticated":"true"}}},"eventTime":"2024-01-01T00:00:01Z","eventSource":"s3.amazonaws.com","eventName":"DeleteBucket","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","userAgent":"aws-cli","errorCode":"AccessDenied","errorMessage":"nope","requestParameters":{"bucketName":"b1"},"eventID":"e1","recipientAccountId":"111","eventType":"AwsApiCall"}"#,
        );
        assert_eq!(v["time"], 1_704_067_201_000_i64);
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["activity_id"], 4);
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["status_code"], "AccessDenied");
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(
            v["actor"]["session"]["issuer"],
            "arn:aws:iam::111:role/Admin"
        );
        assert_eq!(v["actor"]["session"]["is_mfa"], true);
        assert_eq!(v["src_endpoint"]["ip"], "1.2.3.4");
        assert_eq!(v["resources"][0]["name"], "b1");
        assert_eq!(v["resources"][0]["type"], "AWS::S3::Bucket");
        assert_eq!(v["cloud"]["account"]["uid"], "111");
    }

    #[test]
    fn digest_is_not_an_event_and_strangers_are_not_mine() {
        let d = br#"{"awsAccountId":"1","digestStartTime":"x","digestEndTime":"y","digestPublicKeyFingerprint":"f"}"#;
        let r = Record {
            bytes: d,
            received_at_ms: 0,
        };
        assert!(matches!(CloudTrail.parse(&r), Ok(Parsed::NotAnEvent(_))));
        let r = Record {
            bytes: br#"{"kind":"Event"}"#,
            received_at_ms: 0,
        };
        assert_eq!(CloudTrail.parse(&r).unwrap_err(), Rejection::NotMine);
        let r = Record {
            bytes: br#"{"eventVersion":"1.08","eventName":5}"#,
            received_at_ms: 0,
        };
        assert!(matches!(CloudTrail.parse(&r), Err(Rejection::Invalid(_))));
    }

    #[test]
    fn activities() {
        assert_eq!(api_activity("DescribeInstances", None), activity::READ);
        assert_eq!(api_activity("DeleteTrail", None), activity::DELETE);
        assert_eq!(api_activity("CreateUser", None), activity::CREATE);
        assert_eq!(api_activity("StopLogging", None), activity::UPDATE);
        assert_eq!(api_activity("Getaway", None), activity::OTHER);
        assert_eq!(api_activity("ConsoleLogin", None), activity::OTHER);
    }
}
