//! GitHub: the organisation/enterprise audit log (`github-audit`) and webhook payloads
//! (`github-webhook`).
//!
//! **Audit log.** One audit-log entry (an element of a REST API page — the framer splits the
//! array — or a line of a streamed/exported NDJSON file) becomes one event. Its `action`
//! (`repo.destroy`, `org.add_member`, `git.clone`…) is the operation; membership and role changes
//! are User Access Management, changes to user accounts Account Change, sign-ins Authentication,
//! everything else API Activity.
//!
//! **Webhooks.** One webhook delivery body becomes one event. The event name travels in the
//! `X-GitHub-Event` header, which files do not keep, so it is inferred from the payload's keys
//! (a `workflow_run` object means `workflow_run`, a `pusher` means `push`…; see
//! [`infer_event`]).
//!
//! The field-by-field mapping, and the reasons behind the choices, are in `docs/events/github.md`.
//! Records are split once into their top-level keys ([`Obj`]); only mapped fields are read, and a
//! mapped field of the wrong type makes the record invalid rather than half-read.

use std::borrow::Cow;

use acta_event::{Class, Cloud, Event, Org, Product, Resource, Severity, Status, User, activity};

use super::jsonobj::{Obj, View};
use super::{Format, Parsed, Parser, Probe, Record, Rejection};

/// The GitHub audit-log parser (`github-audit`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GithubAudit;

/// The GitHub webhook-payload parser (`github-webhook`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GithubWebhook;

// ---------------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------------

/// Keys only GitHub audit-log entries have beside `action`; one of them must be present.
const AUDIT_KEYS: &[&str] = &[
    "actor",
    "actor_id",
    "actor_ip",
    "actor_location",
    "_document_id",
    "@timestamp",
    "at_sign_timestamp",
    "org",
    "org_id",
    "business",
    "business_id",
    "operation_type",
    "programmatic_access_type",
    "hashed_token",
    "token_id",
    "repo",
    "repo_id",
    "repository",
];

/// An audit-log action name: `category.verb` (or a bare `verb`) in lower-case ASCII words.
fn is_action_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('.')
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Whether an object is a GitHub audit-log entry: an `action` name and at least one other
/// audit-log key, and none of the marks of other sources' records that also carry an `action`
/// (webhook payloads, with `sender` and a `repository` object; Rails request logs, with
/// `controller`/`method`; Kubernetes objects).
pub(super) fn audit_shape(v: &dyn View) -> bool {
    let Some(action) = v.text("action") else {
        return false;
    };
    is_action_name(&action)
        && !v.has("sender")
        && !v.is_object("repository")
        && !v.has("controller")
        && !v.has("method")
        && !v.has("apiVersion")
        && AUDIT_KEYS.iter().any(|k| v.has(k))
}

/// Whether an object is a GitHub webhook payload: a `repository` object with a `full_name`, a
/// `sender` or `organization` object with a `login`, or an unambiguous event object; never an
/// audit-log entry (whose actions have dots) nor a GitLab webhook (`object_kind`).
pub(super) fn webhook_shape(v: &dyn View) -> bool {
    if v.has("object_kind") || v.text("action").is_some_and(|a| a.contains('.')) {
        return false;
    }
    let has_login = |k: &str| v.child(k).is_some_and(|c| c.is_string("login"));
    v.child("repository")
        .is_some_and(|r| r.is_string("full_name"))
        || has_login("sender")
        || has_login("organization")
        || v.is_object("workflow_run")
        || v.is_object("workflow_job")
}

/// The webhook event a payload belongs to, from its keys: the name GitHub sends in
/// `X-GitHub-Event`. `None` when the keys do not tell.
pub(super) fn infer_event(v: &dyn View) -> Option<&'static str> {
    let obj = |k: &str| v.is_object(k);
    let action = v.text("action");
    let action = action.as_deref();
    // Objects that name their event.
    for (key, event) in [
        ("workflow_run", "workflow_run"),
        ("workflow_job", "workflow_job"),
        ("deployment_status", "deployment_status"),
        ("check_run", "check_run"),
        ("check_suite", "check_suite"),
        ("repository_ruleset", "repository_ruleset"),
        (
            "personal_access_token_request",
            "personal_access_token_request",
        ),
        ("repository_advisory", "repository_advisory"),
        ("security_advisory", "security_advisory"),
        ("registry_package", "registry_package"),
        ("package", "package"),
        ("release", "release"),
        ("forkee", "fork"),
        ("merge_group", "merge_group"),
        ("blocked_user", "org_block"),
        ("sponsorship", "sponsorship"),
        ("marketplace_purchase", "marketplace_purchase"),
        ("projects_v2_item", "projects_v2_item"),
        ("projects_v2", "projects_v2"),
        ("project_card", "project_card"),
        ("project_column", "project_column"),
        ("milestone", "milestone"),
        ("label", "label"),
    ] {
        if obj(key) {
            return Some(event);
        }
    }
    if obj("deployment") {
        return Some(if v.has("deployment_callback_url") {
            "deployment_protection_rule"
        } else {
            "deployment"
        });
    }
    if let Some(alert) = v.child("alert") {
        return if alert.has("secret_type") {
            Some(if obj("location") {
                "secret_scanning_alert_location"
            } else {
                "secret_scanning_alert"
            })
        } else if alert.has("security_advisory") || alert.has("dependency") {
            Some("dependabot_alert")
        } else if alert.has("tool") || alert.has("most_recent_instance") {
            Some("code_scanning_alert")
        } else if alert.has("affected_package_name") || alert.has("ghsa_id") {
            Some("repository_vulnerability_alert")
        } else {
            None
        };
    }
    if obj("pull_request") {
        return Some(if obj("review") {
            "pull_request_review"
        } else if obj("thread") {
            "pull_request_review_thread"
        } else if obj("comment") {
            "pull_request_review_comment"
        } else {
            "pull_request"
        });
    }
    if obj("issue") {
        return Some(if obj("comment") {
            "issue_comment"
        } else {
            "issues"
        });
    }
    if obj("discussion") {
        return Some(if obj("comment") {
            "discussion_comment"
        } else {
            "discussion"
        });
    }
    if obj("comment") {
        return Some("commit_comment");
    }
    if v.kind("pages") == super::jsonobj::Kind::Array {
        return Some("gollum");
    }
    if obj("rule") && action.is_some() {
        return Some("branch_protection_rule");
    }
    if obj("member") {
        return Some(if obj("team") { "membership" } else { "member" });
    }
    if obj("membership") || obj("invitation") {
        return Some("organization");
    }
    if obj("team") {
        return Some(if action.is_some() { "team" } else { "team_add" });
    }
    if v.is_string("workflow") && v.has("inputs") {
        return Some("workflow_dispatch");
    }
    if v.is_string("ref") && v.is_string("ref_type") {
        return Some(if v.has("master_branch") || v.has("description") {
            "create"
        } else {
            "delete"
        });
    }
    if obj("pusher") || v.has("commits") || obj("head_commit") || v.is_string("ref") {
        return Some("push");
    }
    if v.is_string("sha") && v.is_string("state") && v.has("context") {
        return Some("status");
    }
    if v.has("zen") && v.has("hook_id") {
        return Some("ping");
    }
    if obj("hook") && v.has("hook_id") {
        return Some("meta");
    }
    if obj("key") && action.is_some() {
        return Some("deploy_key");
    }
    if obj("installation") && (v.has("repositories_added") || v.has("repositories_removed")) {
        return Some("installation_repositories");
    }
    if v.has("starred_at") {
        return Some("star");
    }
    let repo = obj("repository");
    match action {
        Some(
            "created" | "deleted" | "archived" | "unarchived" | "edited" | "renamed"
            | "transferred" | "publicized" | "privatized",
        ) if repo => Some("repository"),
        Some("started") if repo => Some("watch"),
        Some("deleted" | "renamed" | "member_added" | "member_removed" | "member_invited")
            if obj("organization") =>
        {
            Some("organization")
        }
        Some("created" | "deleted" | "suspend" | "unsuspend" | "new_permissions_accepted")
            if obj("installation") && (v.has("repositories") || v.has("requester")) =>
        {
            Some("installation")
        }
        None if repo && !v.has("ref") => Some("public"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

type Res<T> = Result<T, String>;

fn own(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// Sets `time` from the first readable of `keys`, or the time of receipt with a note saying so.
pub(super) fn set_time(
    e: &mut Event,
    o: &Obj<'_>,
    keys: &[&'static str],
    record: &Record<'_>,
) -> Res<()> {
    match o.first_time(keys)? {
        Some((_, text, Some(ms))) => {
            e.time = ms;
            e.metadata.original_time = Some(text);
        }
        Some((key, text, None)) => {
            e.time = record.received_at_ms;
            e.unmap(
                "acta_time_note",
                format!("`{key}` unreadable; time of receipt used"),
            );
            e.metadata.original_time = Some(text);
        }
        None => {
            e.time = record.received_at_ms;
            e.unmap(
                "acta_time_note",
                "no event time in the record; time of receipt used",
            );
        }
    }
    Ok(())
}

/// Copies each present, non-empty key of `o` under `unmapped`, under the same name.
pub(super) fn keep(e: &mut Event, o: &Obj<'_>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = o.value(k) {
            e.unmap(k, v);
        }
    }
}

fn product() -> Product {
    Product::new("GitHub", "GitHub")
}

/// A GitHub account as an OCSF user: bots (`…[bot]` logins, `actor_is_bot`, `type: Bot`) are
/// `Bot` (type_id 99 Other), organisations `Organization` (99), the rest `User` (1).
fn github_user(login: Option<String>, uid: Option<String>, kind: Option<&str>, bot: bool) -> User {
    let bot = bot || kind == Some("Bot") || login.as_deref().is_some_and(|l| l.ends_with("[bot]"));
    let (r#type, type_id) = if bot {
        ("Bot", 99)
    } else if kind == Some("Organization") {
        ("Organization", 99)
    } else {
        ("User", 1)
    };
    User {
        name: login,
        uid: uid.filter(|u| u != "0"),
        r#type: Some(r#type.to_owned()),
        type_id: Some(type_id),
        ..User::default()
    }
}

fn repo_resource(full_name: String, uid: Option<String>) -> Resource {
    let namespace = full_name.split_once('/').map(|(o, _)| o.to_owned());
    Resource {
        uid,
        namespace,
        ..Resource::named("repository", full_name)
    }
}

fn resource(kind: &str, name: Option<String>, uid: Option<String>) -> Option<Resource> {
    (name.is_some() || uid.is_some()).then(|| Resource {
        uid,
        name,
        r#type: Some(kind.to_owned()),
        ..Resource::default()
    })
}

/// A git ref as a resource: `refs/tags/x` is a `tag`, anything else a `branch`.
fn ref_resource(r: &str, ref_type: Option<&str>) -> Resource {
    let (kind, name) = if let Some(t) = r.strip_prefix("refs/tags/") {
        ("tag", t)
    } else if let Some(b) = r.strip_prefix("refs/heads/") {
        ("branch", b)
    } else {
        (ref_type.unwrap_or("branch"), r)
    };
    Resource::named(kind, name)
}

fn on_what(e: &Event) -> String {
    e.resources
        .first()
        .and_then(|r| r.name.as_deref().or(r.uid.as_deref()))
        .map(|n| format!(" on {n}"))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

impl Parser for GithubAudit {
    fn format(&self) -> Format {
        Format::GithubAudit
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        probe.object().is_some_and(|o| audit_shape(o))
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let Ok(text) = std::str::from_utf8(record.bytes) else {
            return Err(Rejection::NotMine);
        };
        let Ok(o) = Obj::parse(text) else {
            return Err(Rejection::NotMine);
        };
        if !audit_shape(&o) {
            return Err(Rejection::NotMine);
        }
        map_audit(&o, text, record)
            .map(|e| Parsed::Event(Box::new(e)))
            .map_err(Rejection::Invalid)
    }
}

/// What an audit action is, in OCSF terms.
struct Kind {
    class: Class,
    activity: u8,
    failed: bool,
}

/// Lower-case words of a verb, for matching (`update_saml_provider_settings` → update, saml…).
fn words(verb: &str) -> impl Iterator<Item = &str> {
    verb.split('_').filter(|w| !w.is_empty())
}

/// API activity from a verb's words: the first word that names a kind of change decides.
pub(super) fn verb_activity(verb: &str) -> u8 {
    const CREATE: &[&str] = &[
        "create",
        "created",
        "add",
        "added",
        "invite",
        "invited",
        "install",
        "installed",
        "generate",
        "generated",
        "import",
        "imported",
        "register",
        "registered",
        "new",
        "fork",
        "forked",
        "copy",
        "requested",
        "opened",
        "submitted",
        "published",
        "queued",
    ];
    const DELETE: &[&str] = &[
        "destroy",
        "destroyed",
        "delete",
        "deleted",
        "remove",
        "removed",
        "revoke",
        "revoked",
        "uninstall",
        "uninstalled",
        "deregister",
        "unregister",
    ];
    const READ: &[&str] = &[
        "clone",
        "fetch",
        "download",
        "downloaded",
        "view",
        "viewed",
        "read",
        "list",
        "search",
        "get",
        "export",
    ];
    const UPDATE: &[&str] = &[
        "update",
        "updated",
        "enable",
        "enabled",
        "disable",
        "disabled",
        "modify",
        "change",
        "changed",
        "rename",
        "renamed",
        "archive",
        "archived",
        "unarchive",
        "unarchived",
        "transfer",
        "transferred",
        "set",
        "push",
        "edit",
        "edited",
        "move",
        "access",
        "override",
        "rotate",
        "reset",
        "approve",
        "approved",
        "reject",
        "rejected",
        "dismiss",
        "dismissed",
        "reopen",
        "reopened",
        "resolve",
        "resolved",
        "complete",
        "completed",
        "close",
        "closed",
        "start",
        "started",
        "cancel",
        "cancelled",
        "rerun",
        "suspend",
        "unsuspend",
        "promote",
        "demote",
        "accept",
        "decline",
        "lock",
        "unlock",
        "block",
        "unblock",
        "restore",
        "toggle",
        "unpublish",
        "privatized",
        "publicized",
        "progress",
        "synchronize",
        "labeled",
        "unlabeled",
        "assigned",
        "unassigned",
        "fixed",
    ];
    for w in words(verb) {
        if DELETE.contains(&w) {
            return activity::DELETE;
        }
        if CREATE.contains(&w) {
            return activity::CREATE;
        }
        if READ.contains(&w) {
            return activity::READ;
        }
        if UPDATE.contains(&w) {
            return activity::UPDATE;
        }
    }
    activity::OTHER
}

/// OCSF class and activity of an audit action. See `docs/events/github.md`.
fn audit_kind(action: &str, operation_type: Option<&str>) -> Kind {
    let (category, verb) = match action.split_once('.') {
        Some((c, _)) => (c, action.rsplit('.').next().unwrap_or(action)),
        None => ("", action),
    };
    let failed = words(verb).any(|w| matches!(w, "failed" | "failure" | "denied"))
        || verb.starts_with("rejected_");
    let kind = |class, activity| Kind {
        class,
        activity,
        failed,
    };
    match (category, verb) {
        ("user", "login") => return kind(Class::Authentication, activity::LOGON),
        ("user", "failed_login") => return kind(Class::Authentication, activity::LOGON),
        ("user", "logout") => return kind(Class::Authentication, activity::LOGOFF),
        _ => {}
    }
    match verb {
        "add_member"
        | "add_user"
        | "add_admin"
        | "add_outside_collaborator"
        | "add_billing_manager"
        | "add_maintainer"
        | "promote_maintainer"
        | "add_moderator" => {
            return kind(Class::UserAccessManagement, 1);
        }
        "remove_member"
        | "remove_user"
        | "remove_admin"
        | "remove_outside_collaborator"
        | "remove_billing_manager"
        | "remove_maintainer"
        | "demote_maintainer"
        | "remove_moderator" => return kind(Class::UserAccessManagement, 2),
        "update_member" | "update_user" | "update_outside_collaborator" => {
            return kind(Class::UserAccessManagement, activity::OTHER);
        }
        _ => {}
    }
    match category {
        "user" => {
            let a = match verb {
                "create" => 1,
                "unsuspend" | "enable" => 2,
                "change_password" => 3,
                "forgot_password" | "reset_password" => 4,
                "suspend" | "disable" => 5,
                "destroy" | "delete" => 6,
                _ => activity::OTHER,
            };
            return kind(Class::AccountChange, a);
        }
        "two_factor_authentication" => {
            let a = match verb {
                "enabled" | "enable" => 10,
                "disabled" | "disable" => 11,
                _ => activity::OTHER,
            };
            return kind(Class::AccountChange, a);
        }
        _ => {}
    }
    let a = match operation_type {
        Some("create") => activity::CREATE,
        Some("modify" | "transfer") => activity::UPDATE,
        Some("remove") => activity::DELETE,
        Some("access") => activity::READ,
        _ => verb_activity(verb),
    };
    kind(Class::ApiActivity, a)
}

/// Audit-log keys copied under `unmapped` when present.
const AUDIT_KEEP: &[&str] = &[
    "business",
    "business_id",
    "visibility",
    "repository_public",
    "public_repo",
    "token_scopes",
    "programmatic_access_type",
    "external_identity_nameid",
    "external_identity_username",
    "transport_protocol_name",
    "protocol_name",
    "conclusion",
    "event",
    "head_branch",
    "head_sha",
    "run_number",
    "run_attempt",
    "started_at",
    "completed_at",
    "oauth_application_id",
    "permission",
    "old_permission",
    "ruleset_name",
    "ruleset_enforcement",
    "ruleset_old_enforcement",
    "ruleset_source_type",
    "ghsa_id",
    "config",
    "reason",
    "explanation",
    "request_id",
];

fn map_audit(o: &Obj<'_>, raw: &str, record: &Record<'_>) -> Res<Event> {
    let action = o.str("action")?.unwrap_or_default();
    let operation_type = o.str("operation_type")?;
    let kind = audit_kind(&action, operation_type.as_deref());
    let mut e = Event::new(kind.class, record.received_at_ms, raw.to_owned());
    set_time(
        &mut e,
        o,
        &[
            "@timestamp",
            "created_at",
            "at_sign_timestamp",
            "p_event_time",
        ],
        record,
    )?;
    e.activity_id = kind.activity;
    e.severity = Severity::Informational;
    e.status = if kind.failed {
        Status::Failure
    } else {
        Status::Success
    };

    // Who.
    let actor = own(o.str("actor")?);
    let actor_id = own(o.scalar("actor_id")?);
    let bot = o.bool("actor_is_bot")?.unwrap_or(false);
    if actor.is_some() || actor_id.is_some() {
        let mut u = github_user(actor, actor_id, None, bot);
        u.credential_uid = own(o.scalar("token_id")?).or(own(o.str("hashed_token")?));
        e.actor.user = Some(u);
    }
    if o.scalar("token_id")?.is_some()
        && let Some(h) = o.str("hashed_token")?
    {
        e.unmap("hashed_token", h.into_owned());
    }
    e.actor.app_name = own(o.str("integration")?).or(own(o.str("oauth_application_name")?));
    if let Some(ip) = o.str("actor_ip")? {
        e.set_src_ip(ip.into_owned());
    }
    if let Some(ua) = o.str("user_agent")? {
        e.set_user_agent(ua.into_owned());
    }
    if let Some(loc) = o.obj("actor_location")?
        && let Some(cc) = loc.str("country_code")?
    {
        e.unmap("actor_country_code", cc.into_owned());
    }

    // What.
    let api = e.api_mut();
    api.operation = Some(action.clone().into_owned());
    if let Some((category, _)) = action.split_once('.') {
        api.set_service(category);
    }
    if let Some(op) = &operation_type {
        e.unmap("operation_type", op.clone().into_owned());
    }

    // On what.
    let target = own(o.str("user")?);
    let target_id = own(o.scalar("user_id")?).filter(|u| u != "0");
    if target.is_some() || target_id.is_some() {
        let u = User {
            name: target,
            uid: target_id,
            ..User::default()
        };
        if kind.class == Class::ApiActivity {
            e.resources.push(Resource {
                r#type: Some("user".into()),
                name: u.name,
                uid: u.uid,
                ..Resource::default()
            });
        } else {
            e.user = Some(u);
        }
    }
    let repo = match o.str("repo")? {
        Some(r) => Some(r),
        None => o.str("repository")?,
    };
    if let Some(r) = repo {
        e.resources
            .push(repo_resource(r.into_owned(), own(o.scalar("repo_id")?)));
    }
    if let Some(b) = o.str("branch")? {
        e.resources.push(ref_resource(&b, None));
    }
    let data = o.obj("data").ok().flatten();
    let team = match o.str("team")? {
        Some(t) => Some(t),
        None => data.as_ref().and_then(|d| d.str("team").ok().flatten()),
    };
    if let Some(t) = team {
        e.resources.push(Resource::named("team", t.into_owned()));
    }
    let category = action.split_once('.').map_or("", |(c, _)| c);
    if category == "workflows" {
        e.resources.extend(resource(
            "workflow_run",
            own(o.str("name")?),
            own(o.scalar("workflow_run_id")?),
        ));
        e.resources
            .extend(resource("workflow", None, own(o.scalar("workflow_id")?)));
    }
    if category.starts_with("integration") || category.starts_with("oauth_application") {
        e.resources
            .extend(resource("integration", own(o.str("name")?), None));
    }
    let hook = match o.scalar("hook_id")? {
        Some(h) => Some(h),
        None => data
            .as_ref()
            .and_then(|d| d.scalar("hook_id").ok().flatten()),
    };
    e.resources.extend(resource("hook", None, own(hook)));
    e.resources.extend(resource(
        "repository_ruleset",
        own(o.str("ruleset_name")?),
        own(o.scalar("ruleset_id")?),
    ));
    if category.ends_with("alert") {
        let number = match o.scalar("alert_number")? {
            Some(n) => Some(n),
            None => o.scalar("number")?,
        };
        e.resources.extend(resource(category, None, own(number)));
    }
    let org = own(o.str("org")?);
    let org_id = own(o.scalar("org_id")?);
    let business = own(o.str("business")?);
    if e.resources.is_empty() {
        if let Some(name) = &org {
            e.resources
                .push(Resource::named("organization", name.clone()));
        } else if let Some(name) = &business {
            e.resources
                .push(Resource::named("enterprise", name.clone()));
        }
    }

    // Where.
    e.cloud = Some(Cloud {
        provider: "GitHub".into(),
        org: (org.is_some() || org_id.is_some()).then_some(Org {
            uid: org_id,
            name: org,
        }),
        ..Cloud::default()
    });
    e.metadata.uid = own(o.scalar("_document_id")?);
    e.metadata.product = Some(product());
    keep(&mut e, o, AUDIT_KEEP);
    if kind.failed {
        e.status_detail = Some(format!("{action}: the action failed or was refused"));
    }
    let conclusion = o
        .str("conclusion")?
        .map(|c| format!(" (workflow concluded {c})"))
        .unwrap_or_default();
    e.message = Some(format!("{}: {action}{}{conclusion}", e.who(), on_what(&e)));
    Ok(e)
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

impl Parser for GithubWebhook {
    fn format(&self) -> Format {
        Format::GithubWebhook
    }

    fn sniff(&self, probe: &mut Probe<'_>) -> bool {
        probe.object().is_some_and(|o| webhook_shape(o))
    }

    fn parse(&self, record: &Record<'_>) -> Result<Parsed, Rejection> {
        let Ok(text) = std::str::from_utf8(record.bytes) else {
            return Err(Rejection::NotMine);
        };
        let Ok(o) = Obj::parse(text) else {
            return Err(Rejection::NotMine);
        };
        if !webhook_shape(&o) {
            return Err(Rejection::NotMine);
        }
        map_webhook(&o, text, record)
            .map(|e| Parsed::Event(Box::new(e)))
            .map_err(Rejection::Invalid)
    }
}

/// Per event: the payload object the event is about (its resource type in acta), and whether
/// its author is the actor when the payload has no `sender` (for actions that create it).
fn primary(event: &str) -> Option<(&'static str, &'static str)> {
    Some(match event {
        "workflow_run" => ("workflow_run", "workflow_run"),
        "workflow_job" => ("workflow_job", "workflow_job"),
        "deployment" | "deployment_protection_rule" => ("deployment", "deployment"),
        "deployment_status" => ("deployment_status", "deployment_status"),
        "check_run" => ("check_run", "check_run"),
        "check_suite" => ("check_suite", "check_suite"),
        "pull_request" => ("pull_request", "pull_request"),
        "pull_request_review" => ("review", "pull_request_review"),
        "pull_request_review_comment"
        | "issue_comment"
        | "commit_comment"
        | "discussion_comment" => ("comment", "comment"),
        "pull_request_review_thread" => ("thread", "pull_request_review_thread"),
        "issues" => ("issue", "issue"),
        "discussion" => ("discussion", "discussion"),
        "release" => ("release", "release"),
        "secret_scanning_alert"
        | "secret_scanning_alert_location"
        | "dependabot_alert"
        | "code_scanning_alert"
        | "repository_vulnerability_alert" => ("alert", "alert"),
        "branch_protection_rule" => ("rule", "branch_protection_rule"),
        "repository_ruleset" => ("repository_ruleset", "repository_ruleset"),
        "team" | "team_add" | "membership" => ("team", "team"),
        "package" => ("package", "package"),
        "registry_package" => ("registry_package", "package"),
        "security_advisory" => ("security_advisory", "security_advisory"),
        "repository_advisory" => ("repository_advisory", "repository_advisory"),
        "personal_access_token_request" => (
            "personal_access_token_request",
            "personal_access_token_request",
        ),
        "label" => ("label", "label"),
        "milestone" => ("milestone", "milestone"),
        "deploy_key" => ("key", "deploy_key"),
        "fork" => ("forkee", "repository"),
        "merge_group" => ("merge_group", "merge_group"),
        "sponsorship" => ("sponsorship", "sponsorship"),
        "projects_v2" => ("projects_v2", "project"),
        "projects_v2_item" => ("projects_v2_item", "project_item"),
        "project_card" => ("project_card", "project_card"),
        "project_column" => ("project_column", "project_column"),
        _ => return None,
    })
}

/// Time keys of the primary object, most telling first: when it last changed, then when it
/// finished, was submitted, started or was created.
const OBJECT_TIMES: &[&str] = &[
    "updated_at",
    "completed_at",
    "submitted_at",
    "published_at",
    "started_at",
    "run_started_at",
    "created_at",
];

/// Webhook-payload keys copied under `unmapped` when present.
const WEBHOOK_PRIMARY_KEEP: &[&str] = &[
    "status",
    "conclusion",
    "event",
    "head_branch",
    "head_sha",
    "run_id",
    "run_attempt",
    "run_number",
    "runner_name",
    "runner_group_name",
    "environment",
    "state",
    "html_url",
    "secret_type",
    "severity",
    "dismissed_reason",
    "resolution",
    "role",
    "permission",
    "privacy",
];

fn map_webhook(o: &Obj<'_>, raw: &str, record: &Record<'_>) -> Res<Event> {
    let event = infer_event(o);
    let action = own(o.str("action")?);
    let operation = match (event, action.as_deref()) {
        (Some(ev), Some(a)) if a != ev => format!("{ev}.{a}"),
        (Some(ev), _) => ev.to_owned(),
        (None, Some(a)) => a.to_owned(),
        (None, None) => "unknown".to_owned(),
    };
    let ev = event.unwrap_or_default();

    // Class and activity.
    let (class, activity_id) = match (ev, action.as_deref()) {
        ("member" | "membership", Some(a)) => (
            Class::UserAccessManagement,
            match a {
                "added" => 1,
                "removed" => 2,
                _ => activity::OTHER,
            },
        ),
        ("organization", Some("member_added")) => (Class::UserAccessManagement, 1),
        ("organization", Some("member_removed")) => (Class::UserAccessManagement, 2),
        ("push", _) => (Class::ApiActivity, activity::UPDATE),
        ("create" | "fork", _) => (Class::ApiActivity, activity::CREATE),
        ("delete", _) => (Class::ApiActivity, activity::DELETE),
        ("public", _) => (Class::ApiActivity, activity::UPDATE),
        (_, Some(a)) => (Class::ApiActivity, verb_activity(a)),
        (_, None) => (Class::ApiActivity, activity::OTHER),
    };
    let mut e = Event::new(class, record.received_at_ms, raw.to_owned());
    e.activity_id = activity_id;
    e.status = Status::Success;
    e.severity = Severity::Informational;

    let prim = primary(ev);
    let prim_obj = match prim {
        Some((key, _)) => o.obj(key)?,
        None => None,
    };

    // When.
    let pages = if ev == "gollum" {
        o.array("pages")?
    } else {
        None
    };
    match (&prim_obj, ev) {
        (Some(p), _) => set_time(&mut e, p, OBJECT_TIMES, record)?,
        (None, "push") => {
            let repo = o.obj("repository")?.unwrap_or_default();
            if repo.time("pushed_at")?.is_some_and(|(_, ms)| ms.is_some()) {
                set_time(&mut e, &repo, &["pushed_at"], record)?;
            } else {
                let head = o.obj("head_commit")?.unwrap_or_default();
                set_time(&mut e, &head, &["timestamp"], record)?;
            }
        }
        (None, "repository" | "public") => match o.obj("repository")? {
            Some(r) => set_time(
                &mut e,
                &r,
                &["updated_at", "pushed_at", "created_at"],
                record,
            )?,
            None => set_time(&mut e, &Obj::default(), &[], record)?,
        },
        _ => set_time(&mut e, &Obj::default(), &[], record)?,
    }

    // Who: the sender; without one, the pusher of a push, or the author of what was just
    // created.
    if let Some(s) = o.obj("sender")? {
        let login = own(s.str("login")?);
        let id = own(s.scalar("id")?);
        if login.is_some() || id.is_some() {
            e.actor.user = Some(github_user(login, id, s.str("type")?.as_deref(), false));
        }
    } else if ev == "push" {
        if let Some(p) = o.obj("pusher")? {
            let mut u = github_user(own(p.str("name")?), None, None, false);
            u.email_addr = own(p.str("email")?);
            if u.name.is_some() {
                e.actor.user = Some(u);
                e.unmap("acta_actor_source", "pusher");
            }
        }
    } else if let Some(p) = &prim_obj
        && let Some(a) = match p.obj("triggering_actor")? {
            Some(a) => Some(a),
            None => p.obj("actor")?,
        }
        && let Some(login) = own(a.str("login")?)
    {
        let id = own(a.scalar("id")?);
        e.actor.user = Some(github_user(
            Some(login),
            id,
            a.str("type")?.as_deref(),
            false,
        ));
        e.unmap(
            "acta_actor_source",
            format!("{}.triggering_actor", prim.map_or("", |p| p.0)),
        );
    } else if let Some(p) = &prim_obj
        && matches!(
            action.as_deref(),
            Some("created" | "opened" | "submitted" | "requested")
        )
        && let Some(u) = p.obj("user")?
        && let Some(login) = own(u.str("login")?)
    {
        let id = own(u.scalar("id")?);
        e.actor.user = Some(github_user(
            Some(login),
            id,
            u.str("type")?.as_deref(),
            false,
        ));
        e.unmap(
            "acta_actor_source",
            format!("{}.user", prim.map_or("", |p| p.0)),
        );
    }

    // On what.
    let repo = o.obj("repository")?;
    if let Some(r) = &repo {
        let full = own(r.str("full_name")?).or(own(r.str("name")?));
        if let Some(full) = full {
            e.resources.push(repo_resource(full, own(r.scalar("id")?)));
        }
        if let Some(v) = r.value("visibility") {
            e.unmap("repository_visibility", v);
        } else if let Some(p) = r.bool("private")? {
            e.unmap(
                "repository_visibility",
                if p { "private" } else { "public" },
            );
        }
    }
    if let (Some((_, kind)), Some(p)) = (prim, &prim_obj) {
        let name = match kind {
            "branch_protection_rule"
            | "workflow_run"
            | "workflow_job"
            | "check_run"
            | "label"
            | "package" => own(p.str("name")?),
            "release" => own(p.str("tag_name")?),
            "pull_request" | "issue" | "discussion" => own(p.str("title")?),
            "deployment" => own(p.str("environment")?),
            "team" => own(p.str("slug")?).or(own(p.str("name")?)),
            "alert" => own(p.str("secret_type")?).or(own(p.str("affected_package_name")?)),
            "deploy_key" => own(p.str("title")?),
            "milestone" => own(p.str("title")?),
            _ => None,
        };
        let uid = match kind {
            "pull_request" | "issue" | "alert" | "discussion" | "milestone" => {
                own(p.scalar("number")?).or(own(p.scalar("id")?))
            }
            _ => own(p.scalar("id")?),
        };
        let kind = if kind == "alert" { ev } else { kind };
        e.resources.extend(resource(kind, name, uid));
        keep(&mut e, p, WEBHOOK_PRIMARY_KEEP);
    }
    // The pull request or issue a comment, review or thread belongs to.
    if matches!(
        ev,
        "issue_comment"
            | "pull_request_review"
            | "pull_request_review_comment"
            | "pull_request_review_thread"
    ) {
        for (key, kind) in [("pull_request", "pull_request"), ("issue", "issue")] {
            if let Some(p) = o.obj(key)? {
                e.resources.extend(resource(
                    kind,
                    own(p.str("title")?),
                    own(p.scalar("number")?).or(own(p.scalar("id")?)),
                ));
            }
        }
    }
    if ev == "deployment_status"
        && let Some(d) = o.obj("deployment")?
    {
        e.resources.extend(resource(
            "deployment",
            own(d.str("environment")?),
            own(d.scalar("id")?),
        ));
    }
    if ev == "membership" {
        keep(&mut e, o, &["scope"]);
    }
    if let Some(r) = o.str("ref")? {
        let ref_type = o.str("ref_type")?;
        e.resources.push(ref_resource(&r, ref_type.as_deref()));
    }
    if ev == "push" {
        keep(
            &mut e,
            o,
            &["before", "after", "forced", "created", "deleted"],
        );
        if let Some(commits) = o.array("commits")? {
            e.unmap("commit_count", commits.len());
        }
        if let Some(h) = o.obj("head_commit")?
            && let Some(id) = h.str("id")?
        {
            e.unmap("head_commit_id", id.into_owned());
        }
    }
    if let Some(pages) = pages {
        for p in pages {
            if let Ok(page) = Obj::parse(p.get())
                && let Ok(Some(name)) = page.str("page_name")
            {
                e.resources
                    .push(Resource::named("wiki_page", name.into_owned()));
                if e.activity_id == activity::OTHER
                    && let Ok(Some(a)) = page.str("action")
                {
                    e.activity_id = verb_activity(&a);
                }
            }
        }
    }
    // The account acted on, for membership events.
    let member = match ev {
        "member" | "membership" => o.obj("member")?,
        "organization" => match o.obj("membership")? {
            Some(m) => m.obj("user")?,
            None => None,
        },
        _ => None,
    };
    if let Some(m) = member {
        let u = github_user(
            own(m.str("login")?),
            own(m.scalar("id")?),
            m.str("type")?.as_deref(),
            false,
        );
        if class == Class::ApiActivity {
            e.resources.extend(resource("user", u.name, u.uid));
        } else {
            e.user = Some(u);
        }
    }
    if ev == "organization"
        && let Some(m) = o.obj("membership")?
    {
        keep(&mut e, &m, &["role", "state"]);
    }
    if let Some(v) = o.value("changes") {
        e.unmap("changes", v);
    }

    // Where.
    let org = o.obj("organization")?;
    let (org_name, org_id) = match &org {
        Some(org) => (own(org.str("login")?), own(org.scalar("id")?)),
        None => match repo.as_ref().map(|r| r.obj("owner")).transpose()?.flatten() {
            Some(owner) if owner.str("type")?.as_deref() == Some("Organization") => {
                (own(owner.str("login")?), own(owner.scalar("id")?))
            }
            _ => (None, None),
        },
    };
    if org.is_none() && ev == "organization" {
        e.resources
            .extend(resource("organization", org_name.clone(), None));
    }
    e.cloud = Some(Cloud {
        provider: "GitHub".into(),
        org: (org_name.is_some() || org_id.is_some()).then_some(Org {
            uid: org_id,
            name: org_name,
        }),
        ..Cloud::default()
    });
    if let Some(ent) = o.obj("enterprise")?
        && let Some(slug) = own(ent.str("slug")?).or(own(ent.str("name")?))
    {
        e.unmap("enterprise", slug);
    }
    if let Some(inst) = o.obj("installation")?
        && let Some(id) = own(inst.scalar("id")?)
    {
        e.actor
            .app_name
            .get_or_insert_with(|| format!("installation {id}"));
    }

    let api = e.api_mut();
    api.operation = Some(operation.clone());
    if let Some(ev) = event {
        api.set_service(ev);
    }
    e.metadata.event_code = event.map(str::to_owned);
    if event.is_none() {
        e.unmap(
            "acta_event_note",
            "webhook event name not inferable from the payload's keys",
        );
    }
    e.metadata.product = Some(product());
    e.message = Some(format!("{}: {operation}{}", e.who(), on_what(&e)));
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn run(p: &dyn Parser, s: &str) -> Result<Value, Rejection> {
        let r = Record {
            bytes: s.as_bytes(),
            received_at_ms: 7,
        };
        match p.parse(&r)? {
            Parsed::Event(e) => Ok(serde_json::from_str(&e.to_json()).unwrap()),
            Parsed::NotAnEvent(why) => panic!("{why}"),
        }
    }

    fn audit(s: &str) -> Value {
        run(&GithubAudit, s).unwrap()
    }

    fn hook(s: &str) -> Value {
        run(&GithubWebhook, s).unwrap()
    }

    #[test]
    fn audit_repo_destroy_with_token() {
        let v = audit(
            r#"{"@timestamp":1700000000123,"_document_id":"doc-1","action":"repo.destroy","actor":"alice","actor_id":1234,"actor_ip":"203.0.113.9","actor_location":{"country_code":"DE"},"user_agent":"curl/8.4","org":"acme","org_id":99,"business":"acme-ent","repo":"acme/secrets","repo_id":555,"visibility":"private","operation_type":"remove","programmatic_access_type":"Fine-grained personal access token","token_id":321,"hashed_token":"abc=","token_scopes":"repo,admin:org","created_at":1700000000123}"#,
        );
        assert_eq!(v["time"], 1_700_000_000_123_i64);
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["activity_id"], 4);
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["actor"]["user"]["uid"], "1234");
        assert_eq!(v["actor"]["user"]["type"], "User");
        assert_eq!(v["actor"]["user"]["credential_uid"], "321");
        assert_eq!(v["src_endpoint"]["ip"], "203.0.113.9");
        assert_eq!(v["http_request"]["user_agent"], "curl/8.4");
        assert_eq!(v["api"]["operation"], "repo.destroy");
        assert_eq!(v["api"]["service"]["name"], "repo");
        assert_eq!(v["resources"][0]["type"], "repository");
        assert_eq!(v["resources"][0]["name"], "acme/secrets");
        assert_eq!(v["resources"][0]["uid"], "555");
        assert_eq!(v["resources"][0]["namespace"], "acme");
        assert_eq!(v["cloud"]["provider"], "GitHub");
        assert_eq!(v["cloud"]["org"]["name"], "acme");
        assert_eq!(v["cloud"]["org"]["uid"], "99");
        assert_eq!(v["metadata"]["uid"], "doc-1");
        assert_eq!(v["metadata"]["product"]["name"], "GitHub");
        assert_eq!(v["unmapped"]["business"], "acme-ent");
        assert_eq!(v["unmapped"]["actor_country_code"], "DE");
        assert_eq!(v["unmapped"]["hashed_token"], "abc=");
        assert_eq!(v["unmapped"]["token_scopes"], "repo,admin:org");
        assert!(v["unmapped"].get("acta_time_note").is_none());
    }

    #[test]
    fn audit_membership_and_logins() {
        let v = audit(
            r#"{"@timestamp":1700000000000,"action":"org.add_member","actor":"owner","org":"acme","user":"bob","user_id":77,"operation_type":"modify"}"#,
        );
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["activity_id"], 1);
        assert_eq!(v["user"]["name"], "bob");
        assert_eq!(v["user"]["uid"], "77");
        let v = audit(
            r#"{"@timestamp":1700000000000,"action":"team.remove_member","actor":"owner","org":"acme","team":"acme/admins","user":"bob"}"#,
        );
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["activity_id"], 2);
        assert_eq!(v["resources"][0]["type"], "team");
        let v = audit(
            r#"{"created_at":"2023-01-31 18:58:27.638","action":"user.failed_login","actor":"mallory","actor_ip":"198.51.100.1"}"#,
        );
        assert_eq!(v["class_uid"], 3002);
        assert_eq!(v["activity_id"], 1);
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["time"], 1_675_191_507_638_i64);
        let v = audit(
            r#"{"created_at":1,"action":"two_factor_authentication.disabled","actor":"bob","user":"bob"}"#,
        );
        assert_eq!(v["class_uid"], 3001);
        assert_eq!(v["activity_id"], 11);
        let v = audit(
            r#"{"created_at":1,"action":"protected_branch.rejected_ref_update","actor":"bob","repo":"a/b","branch":"refs/heads/main"}"#,
        );
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["resources"][1]["type"], "branch");
        assert_eq!(v["resources"][1]["name"], "main");
    }

    #[test]
    fn audit_bot_and_failed_workflow() {
        let v = audit(
            r#"{"_document_id":"w1","action":"workflows.completed_workflow_run","actor":"dependabot[bot]","actor_id":"49699333","created_at":"2023-01-31 18:58:27.638","conclusion":"failure","name":"CI","operation_type":"modify","org":"acme","repo":"acme/app","workflow_id":44,"workflow_run_id":55,"head_branch":"main"}"#,
        );
        assert_eq!(v["actor"]["user"]["type"], "Bot");
        assert_eq!(v["actor"]["user"]["type_id"], 99);
        assert_eq!(v["activity_id"], 3);
        // A failed workflow run is the run's outcome, not a refused action.
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["unmapped"]["conclusion"], "failure");
        assert_eq!(v["resources"][1]["type"], "workflow_run");
        assert_eq!(v["resources"][1]["uid"], "55");
        assert_eq!(v["resources"][1]["name"], "CI");
        assert!(v["message"].as_str().unwrap().contains("concluded failure"));
        let v = audit(r#"{"action":"git.clone","actor":"x","actor_is_bot":true,"repo":"a/b"}"#);
        assert_eq!(v["actor"]["user"]["type"], "Bot");
        assert_eq!(v["activity_id"], 2);
    }

    #[test]
    fn audit_time_fallback_is_noted() {
        let v = audit(r#"{"action":"repo.update","actor":"dev","repo":"o/r"}"#);
        assert_eq!(v["time"], 7);
        assert!(v["unmapped"]["acta_time_note"].is_string());
        let v = audit(
            r#"{"action":"repo.update","actor":"dev","repo":"o/r","created_at":"2024-12-17 00:00:00000000"}"#,
        );
        assert_eq!(v["time"], 7);
        assert_eq!(v["metadata"]["original_time"], "2024-12-17 00:00:00000000");
    }

    #[test]
    fn audit_hostile_and_foreign() {
        for bad in [
            r#"{"action":"repo.destroy","actor":5}"#,
            r#"{"action":"repo.destroy","actor":"a","actor_location":"DE"}"#,
            r#"{"action":"repo.destroy","actor":"a","created_at":{"x":1}}"#,
            r#"{"action":"repo.destroy","actor":"a","repo":["x"]}"#,
        ] {
            assert!(
                matches!(run(&GithubAudit, bad), Err(Rejection::Invalid(_))),
                "{bad}"
            );
        }
        for foreign in [
            r#"{"action":"repo.destroy"}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get"}"#,
            r#"{"MESSAGE":"x","__REALTIME_TIMESTAMP":"1"}"#,
            r#"{"timestamp":"2024-01-01","error_severity":"LOG","message":"AUDIT: x"}"#,
            r#"{"method":"GET","path":"/","controller":"A","action":"index","status":200}"#,
            r#"{"action":"opened","repository":{"full_name":"a/b"},"sender":{"login":"x"}}"#,
            r#"{"action":"Some Thing","actor":"x"}"#,
            "not json",
            "[1,2]",
            "{\"action\":\"repo.destroy\",\"actor\":\"\u{ff}\"",
        ] {
            assert_eq!(
                run(&GithubAudit, foreign).unwrap_err(),
                Rejection::NotMine,
                "{foreign}"
            );
        }
        let deep = format!(
            r#"{{"action":"repo.destroy","actor":"a","data":{}{}}}"#,
            "[".repeat(1_000_000),
            "]".repeat(1_000_000)
        );
        // Free-form `data` nested past any sane depth: read or refused, never a crash.
        let _ = run(&GithubAudit, &deep);
        let deep_actor = format!(
            r#"{{"action":"repo.destroy","actor":{}{}}}"#,
            "{\"a\":".repeat(100_000),
            "}".repeat(100_000)
        );
        assert!(run(&GithubAudit, &deep_actor).is_err());
        let bytes = b"{\"action\":\"repo.destroy\",\"actor\":\"\xff\"}";
        let r = Record {
            bytes,
            received_at_ms: 0,
        };
        assert!(GithubAudit.parse(&r).is_err());
    }

    #[test]
    fn registry_detection_keeps_formats_apart() {
        use super::super::Registry;
        let reg = Registry::standard();
        let cases = [
            (
                r#"{"action":"repo.destroy","actor":"a","repo":"o/r"}"#,
                Some(Format::GithubAudit),
            ),
            (
                r#"{"action":"org.add_member","actor":"a","org":"o","user":"b","created_at":1}"#,
                Some(Format::GithubAudit),
            ),
            (
                r#"{"action":"completed","workflow_job":{"id":1},"repository":{"full_name":"o/r"},"sender":{"login":"x"}}"#,
                Some(Format::GithubWebhook),
            ),
            (
                r#"{"ref":"refs/heads/main","pusher":{"name":"x"},"repository":{"full_name":"o/r"}}"#,
                Some(Format::GithubWebhook),
            ),
            (
                r#"{"id":1,"author_id":1,"entity_id":6,"entity_type":"Project","details":{"custom_message":"x"},"created_at":"2024-01-01T00:00:00Z"}"#,
                Some(Format::GitlabAudit),
            ),
            (
                r#"{"method":"GET","path":"/a","controller":"C","action":"index","status":200}"#,
                Some(Format::GitlabAudit),
            ),
            (
                r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"1","stage":"ResponseComplete","verb":"get","user":{"username":"a"},"sourceIPs":["1.2.3.4"],"objectRef":{"resource":"pods"}}"#,
                None,
            ),
            (
                r#"{"MESSAGE":"Accepted publickey for a","__REALTIME_TIMESTAMP":"1700000000000000","_COMM":"sshd","action":"x"}"#,
                None,
            ),
            (
                r#"{"timestamp":"2024-01-01 00:00:00.000 UTC","user":"postgres","error_severity":"LOG","message":"AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<none>"}"#,
                None,
            ),
            (r#"{"action":"login","user":"a","level":"info"}"#, None),
            (r#"{"repository":"o/r","event":"x"}"#, None),
        ];
        for (line, want) in cases {
            let got = reg.detect(line.as_bytes());
            match want {
                Some(_) => assert_eq!(got, want, "{line}"),
                // Other formats' records (or none): never claimed by the GitHub/GitLab parsers.
                None => assert!(
                    !matches!(
                        got,
                        Some(Format::GithubAudit | Format::GithubWebhook | Format::GitlabAudit)
                    ),
                    "{line}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn webhook_workflow_run_failure() {
        let v = hook(
            r#"{"action":"completed","workflow_run":{"id":30433642,"name":"Build","head_branch":"main","head_sha":"acb5","event":"push","status":"completed","conclusion":"failure","created_at":"2020-01-22T19:33:08Z","updated_at":"2020-01-22T19:33:10Z","run_attempt":1},"repository":{"id":186853002,"full_name":"Codertocat/Hello-World","private":false,"owner":{"login":"Codertocat","id":21031067,"type":"User"}},"sender":{"login":"Codertocat","id":21031067,"type":"User"}}"#,
        );
        assert_eq!(v["metadata"]["event_code"], "workflow_run");
        assert_eq!(v["api"]["operation"], "workflow_run.completed");
        assert_eq!(v["time"], 1_579_721_590_000_i64);
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["unmapped"]["conclusion"], "failure");
        assert_eq!(v["actor"]["user"]["name"], "Codertocat");
        assert_eq!(v["actor"]["user"]["uid"], "21031067");
        assert_eq!(v["resources"][0]["name"], "Codertocat/Hello-World");
        assert_eq!(v["resources"][1]["type"], "workflow_run");
        assert_eq!(v["resources"][1]["uid"], "30433642");
        assert_eq!(v["unmapped"]["repository_visibility"], "public");
        assert!(v["cloud"].get("org").is_none());
        let v = hook(
            r#"{"action":"requested","workflow_run":{"id":1,"triggering_actor":{"login":"dependabot[bot]","id":49699333,"type":"Bot"}},"repository":{"full_name":"a/b"}}"#,
        );
        assert_eq!(v["actor"]["user"]["name"], "dependabot[bot]");
        assert_eq!(v["actor"]["user"]["type"], "Bot");
    }

    #[test]
    fn webhook_push_by_bot() {
        let v = hook(
            r#"{"ref":"refs/heads/main","before":"0000","after":"abcd","repository":{"id":1,"full_name":"acme/app","pushed_at":1579721590,"owner":{"login":"acme","id":9,"type":"Organization"}},"pusher":{"name":"renovate[bot]","email":"bot@example.com"},"sender":{"login":"renovate[bot]","id":29139614,"type":"Bot"},"commits":[{"id":"abcd","timestamp":"2020-01-22T19:33:05Z"}],"head_commit":{"id":"abcd","timestamp":"2020-01-22T19:33:05Z"}}"#,
        );
        assert_eq!(v["metadata"]["event_code"], "push");
        assert_eq!(v["api"]["operation"], "push");
        assert_eq!(v["time"], 1_579_721_590_000_i64);
        assert_eq!(v["actor"]["user"]["type"], "Bot");
        assert_eq!(v["resources"][1]["type"], "branch");
        assert_eq!(v["resources"][1]["name"], "main");
        assert_eq!(v["cloud"]["org"]["name"], "acme");
        assert_eq!(v["unmapped"]["commit_count"], 1);
    }

    #[test]
    fn webhook_member_and_org() {
        let v = hook(
            r#"{"action":"added","member":{"login":"octocat","id":583231,"type":"User"},"changes":{"permission":{"to":"admin"}},"repository":{"id":1,"full_name":"acme/app"},"organization":{"login":"acme","id":9},"sender":{"login":"owner","id":2,"type":"User"}}"#,
        );
        assert_eq!(v["metadata"]["event_code"], "member");
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["activity_id"], 1);
        assert_eq!(v["user"]["name"], "octocat");
        assert_eq!(v["unmapped"]["changes"]["permission"]["to"], "admin");
        assert_eq!(
            v["unmapped"]["acta_time_note"],
            "no event time in the record; time of receipt used"
        );
        let v = hook(
            r#"{"action":"member_removed","membership":{"role":"member","state":"active","user":{"login":"bob","id":5}},"organization":{"login":"acme","id":9},"sender":{"login":"owner","id":2}}"#,
        );
        assert_eq!(v["metadata"]["event_code"], "organization");
        assert_eq!(v["class_uid"], 3005);
        assert_eq!(v["activity_id"], 2);
        assert_eq!(v["user"]["name"], "bob");
        let v = hook(
            r#"{"action":"created","alert":{"number":3,"secret_type":"github_personal_access_token","created_at":"2024-01-01T00:00:00Z"},"repository":{"full_name":"acme/app"},"sender":{"login":"github"}}"#,
        );
        assert_eq!(v["metadata"]["event_code"], "secret_scanning_alert");
        assert_eq!(v["resources"][1]["type"], "secret_scanning_alert");
        assert_eq!(v["resources"][1]["uid"], "3");
        let v = hook(
            r#"{"action":"created","deployment_status":{"id":1,"state":"failure","updated_at":"2024-01-01T00:00:00Z"},"deployment":{"id":7,"environment":"production"},"repository":{"full_name":"acme/app"},"sender":{"login":"ci[bot]","type":"Bot"}}"#,
        );
        assert_eq!(v["metadata"]["event_code"], "deployment_status");
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["unmapped"]["state"], "failure");
        assert_eq!(v["resources"][2]["name"], "production");
    }

    #[test]
    fn webhook_events_inferred() {
        let cases = [
            (
                r#"{"ref":"v1","ref_type":"tag","master_branch":"main","repository":{"full_name":"a/b"}}"#,
                "create",
            ),
            (
                r#"{"ref":"v1","ref_type":"tag","pusher_type":"user","repository":{"full_name":"a/b"}}"#,
                "delete",
            ),
            (
                r#"{"repository":{"full_name":"a/b"},"sender":{"login":"x"}}"#,
                "public",
            ),
            (
                r#"{"action":"archived","repository":{"full_name":"a/b"},"sender":{"login":"x"}}"#,
                "repository",
            ),
            (
                r#"{"action":"deleted","rule":{"name":"main"},"repository":{"full_name":"a/b"}}"#,
                "branch_protection_rule",
            ),
            (
                r#"{"action":"created","team":{"slug":"t"},"organization":{"login":"o"}}"#,
                "team",
            ),
            (
                r#"{"action":"added","scope":"team","member":{"login":"m"},"team":{"slug":"t"},"organization":{"login":"o"}}"#,
                "membership",
            ),
            (
                r#"{"action":"opened","pull_request":{"number":1},"repository":{"full_name":"a/b"}}"#,
                "pull_request",
            ),
            (
                r#"{"action":"created","comment":{"id":1},"issue":{"number":1},"repository":{"full_name":"a/b"}}"#,
                "issue_comment",
            ),
            (
                r#"{"action":"dismissed","alert":{"number":1,"security_advisory":{},"dependency":{}},"repository":{"full_name":"a/b"}}"#,
                "dependabot_alert",
            ),
            (
                r#"{"action":"create","alert":{"affected_package_name":"x","ghsa_id":"G"},"repository":{"full_name":"a/b"}}"#,
                "repository_vulnerability_alert",
            ),
        ];
        for (payload, event) in cases {
            let v = hook(payload);
            assert_eq!(v["metadata"]["event_code"], event, "{payload}");
        }
        let v = hook(r#"{"action":"opened","repository":{"full_name":"a/b"}}"#);
        assert!(v["metadata"].get("event_code").is_none());
        assert_eq!(v["api"]["operation"], "opened");
        assert!(v["unmapped"]["acta_event_note"].is_string());
    }

    #[test]
    fn webhook_hostile_and_foreign() {
        for bad in [
            r#"{"action":"completed","workflow_run":{"id":1,"updated_at":[1]},"repository":{"full_name":"a/b"}}"#,
            r#"{"action":"added","repository":{"full_name":"a/b"},"sender":"x"}"#,
            r#"{"action":5,"repository":{"full_name":"a/b"}}"#,
            r#"{"ref":7,"pusher":{"name":"x"},"repository":{"full_name":"a/b"}}"#,
        ] {
            assert!(
                matches!(run(&GithubWebhook, bad), Err(Rejection::Invalid(_))),
                "{bad}"
            );
        }
        for foreign in [
            r#"{"action":"repo.destroy","actor":"a","repo":"a/b"}"#,
            r#"{"object_kind":"push","project":{"path_with_namespace":"a/b"},"repository":{"full_name":"a/b"}}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1"}"#,
            r#"{"repository":"a/b"}"#,
            r#"{"hello":"world"}"#,
        ] {
            assert_eq!(
                run(&GithubWebhook, foreign).unwrap_err(),
                Rejection::NotMine,
                "{foreign}"
            );
        }
    }
}
