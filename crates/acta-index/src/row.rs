//! The investigation fields of one stored event, flattened from the normalised [`Event`].
//!
//! A [`Row`] is what the index and Parquet exports hold per ledger entry: the fields queries
//! filter, group and display by, each as one value or a short list. How each is taken from the
//! event is documented on the field; `docs/investigate.md` lists them for users.

use acta_event::{Event, Status};

/// One ledger entry's investigation fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Ledger index of the entry.
    pub index: u64,
    /// Event time, epoch milliseconds (`time`).
    pub time: i64,
    /// Ledger source name the entry was stored under.
    pub source: String,
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
    pub actor: Option<String>,
    /// Every identifier of the actor that `actor:` matches: user name, uid (ARN), email,
    /// credential id, the session issuer, `invoked_by`, `app_name`.
    pub actor_ids: Vec<String>,
    /// `api.operation`: the source's own operation name.
    pub action: Option<String>,
    /// `api.service.name`.
    pub service: Option<String>,
    /// `resources[].uid` and `resources[].name`, and the namespaced name (`ns/name`) when a
    /// resource has a namespace, without duplicates, in event order.
    pub resources: Vec<String>,
    /// `src_endpoint.ip`, as written by the source.
    pub ip: Option<String>,
    /// `cloud.account.uid`, else `actor.user.account.uid`.
    pub account: Option<String>,
    /// `cloud.region`.
    pub region: Option<String>,
    /// `http_request.user_agent`.
    pub user_agent: Option<String>,
    /// `status_code` (e.g. `AccessDenied`), when the source gives one.
    pub status_code: Option<String>,
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
        let mut actor_ids = Vec::new();
        let push = |v: Option<&String>, into: &mut Vec<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty())
                && !into.contains(v)
            {
                into.push(v.clone());
            }
        };
        if let Some(u) = user {
            push(u.name.as_ref(), &mut actor_ids);
            push(u.uid.as_ref(), &mut actor_ids);
            push(u.email_addr.as_ref(), &mut actor_ids);
            push(u.credential_uid.as_ref(), &mut actor_ids);
        }
        push(
            event.actor.session.as_ref().and_then(|s| s.issuer.as_ref()),
            &mut actor_ids,
        );
        push(event.actor.invoked_by.as_ref(), &mut actor_ids);
        push(event.actor.app_name.as_ref(), &mut actor_ids);
        let actor = user
            .and_then(|u| u.name.clone().or_else(|| u.uid.clone()))
            .or_else(|| event.actor.app_name.clone())
            .or_else(|| event.actor.invoked_by.clone())
            .filter(|a| !a.is_empty());

        let mut resources = Vec::new();
        for r in &event.resources {
            push(r.uid.as_ref(), &mut resources);
            push(r.name.as_ref(), &mut resources);
            if let (Some(ns), Some(name)) = (&r.namespace, &r.name) {
                push(Some(&format!("{ns}/{name}")), &mut resources);
            }
        }
        let api = event.api.as_ref();
        let cloud = event.cloud.as_ref();
        Row {
            index,
            time: event.time,
            source: source.to_owned(),
            class_uid: event.class.uid(),
            activity_id: event.activity_id,
            outcome: outcome(event.status),
            severity_id: event.severity.id(),
            actor,
            actor_ids,
            action: api.and_then(|a| a.operation.clone()),
            service: api
                .and_then(|a| a.service.as_ref())
                .and_then(|s| s.name.clone()),
            resources,
            ip: event.src_endpoint.as_ref().and_then(|e| e.ip.clone()),
            account: cloud
                .and_then(|c| c.account.as_ref())
                .and_then(|a| a.uid.clone())
                .or_else(|| {
                    user.and_then(|u| u.account.as_ref())
                        .and_then(|a| a.uid.clone())
                }),
            region: cloud.and_then(|c| c.region.clone()),
            user_agent: event
                .http_request
                .as_ref()
                .and_then(|h| h.user_agent.clone()),
            status_code: event.status_code.clone(),
        }
    }

    /// The first resource, for display.
    pub fn resource(&self) -> Option<&str> {
        self.resources.first().map(String::as_str)
    }
}
