//! The investigation fields of one stored event, flattened from the normalised [`Event`].
//!
//! A [`Row`] is what the index and Parquet exports hold per ledger entry: the fields queries
//! filter, group and display by, each as one value or a short list. How each is taken from the
//! event is documented on the field; `docs/investigate.md` lists them for users.

use acta_event::{Event, Status};
pub use compact_str::CompactString;

/// One ledger entry's investigation fields. Strings are [`CompactString`]s: most values
/// (names, actions, regions, addresses) fit in the 24 bytes of the struct itself, which spares
/// a heap allocation per field on the ingest path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Ledger index of the entry.
    pub index: u64,
    /// Event time, epoch milliseconds (`time`).
    pub time: i64,
    /// Ledger source name the entry was stored under.
    pub source: CompactString,
    /// `class_uid`.
    pub class_uid: u32,
    /// `activity_id`.
    pub activity_id: u8,
    /// `success`, `failure`, `unknown` or `other` (from `status_id`).
    pub outcome: &'static str,
    /// `severity_id`.
    pub severity_id: u8,
    /// The actor as shown: `actor.user.name`, else `actor.user.uid`, else `actor.app_name`,
    /// else `actor.invoked_by`.
    pub actor: Option<CompactString>,
    /// Every identifier of the actor that `actor:` matches: user name, uid (ARN), email,
    /// credential id, the session issuer, `invoked_by`, `app_name`.
    pub actor_ids: Vec<CompactString>,
    /// `api.operation`: the source's own operation name.
    pub action: Option<CompactString>,
    /// `api.service.name`.
    pub service: Option<CompactString>,
    /// `resources[].uid` and `resources[].name`, and the namespaced name (`ns/name`) when a
    /// resource has a namespace, without duplicates, in event order.
    pub resources: Vec<CompactString>,
    /// `src_endpoint.ip`, as written by the source.
    pub ip: Option<CompactString>,
    /// `cloud.account.uid`, else `actor.user.account.uid`.
    pub account: Option<CompactString>,
    /// `cloud.region`.
    pub region: Option<CompactString>,
    /// `http_request.user_agent`.
    pub user_agent: Option<CompactString>,
    /// `status_code` (e.g. `AccessDenied`), when the source gives one.
    pub status_code: Option<CompactString>,
}

/// The query-language word for a status.
pub fn outcome(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::Failure => "failure",
        Status::Unknown => "unknown",
        Status::Other => "other",
    }
}

impl Row {
    /// The row of `event`, stored at ledger `index` under `source`.
    pub fn from_event(index: u64, source: &str, event: &Event) -> Row {
        let user = event.actor.user.as_ref();
        let mut actor_ids: Vec<CompactString> = Vec::new();
        let push = |v: Option<&str>, into: &mut Vec<CompactString>| {
            if let Some(v) = v.filter(|v| !v.is_empty())
                && !into.iter().any(|x| x == v)
            {
                into.push(CompactString::from(v));
            }
        };
        if let Some(u) = user {
            push(u.name.as_deref(), &mut actor_ids);
            push(u.uid.as_deref(), &mut actor_ids);
            push(u.email_addr.as_deref(), &mut actor_ids);
            push(u.credential_uid.as_deref(), &mut actor_ids);
        }
        push(
            event
                .actor
                .session
                .as_ref()
                .and_then(|s| s.issuer.as_deref()),
            &mut actor_ids,
        );
        push(event.actor.invoked_by.as_deref(), &mut actor_ids);
        push(event.actor.app_name.as_deref(), &mut actor_ids);
        let actor = user
            .and_then(|u| u.name.as_deref().or(u.uid.as_deref()))
            .or(event.actor.app_name.as_deref())
            .or(event.actor.invoked_by.as_deref())
            .filter(|a| !a.is_empty())
            .map(CompactString::from);

        let mut resources = Vec::new();
        for r in &event.resources {
            push(r.uid.as_deref(), &mut resources);
            push(r.name.as_deref(), &mut resources);
            if let (Some(ns), Some(name)) = (&r.namespace, &r.name) {
                push(Some(&format!("{ns}/{name}")), &mut resources);
            }
        }
        let api = event.api.as_ref();
        let cloud = event.cloud.as_ref();
        let compact = |v: Option<&String>| v.map(|v| CompactString::from(v.as_str()));
        Row {
            index,
            time: event.time,
            source: CompactString::from(source),
            class_uid: event.class.uid(),
            activity_id: event.activity_id,
            outcome: outcome(event.status),
            severity_id: event.severity.id(),
            actor,
            actor_ids,
            action: compact(api.and_then(|a| a.operation.as_ref())),
            service: compact(
                api.and_then(|a| a.service.as_ref())
                    .and_then(|s| s.name.as_ref()),
            ),
            resources,
            ip: compact(event.src_endpoint.as_ref().and_then(|e| e.ip.as_ref())),
            account: compact(
                cloud
                    .and_then(|c| c.account.as_ref())
                    .and_then(|a| a.uid.as_ref())
                    .or_else(|| {
                        user.and_then(|u| u.account.as_ref())
                            .and_then(|a| a.uid.as_ref())
                    }),
            ),
            region: compact(cloud.and_then(|c| c.region.as_ref())),
            user_agent: compact(
                event
                    .http_request
                    .as_ref()
                    .and_then(|h| h.user_agent.as_ref()),
            ),
            status_code: compact(event.status_code.as_ref()),
        }
    }

    /// The first resource, for display.
    pub fn resource(&self) -> Option<&str> {
        self.resources.first().map(CompactString::as_str)
    }
}
