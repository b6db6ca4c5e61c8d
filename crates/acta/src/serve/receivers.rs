//! Native receivers: endpoints that GitHub, GitLab and the Kubernetes API server post to
//! directly, each configured in `acta.toml` (`[receivers.*]`, see [`super::config`]).
//!
//! - `POST /api/v1/ingest/github`: one webhook delivery. Its `X-Hub-Signature-256` (HMAC-SHA256
//!   of the exact body with the configured secret) is checked in constant time before anything is
//!   stored. The body is stored as GitHub sent it, byte for byte, under the source
//!   `github-webhook`: the `github-webhook` parser reads the event name from the payload's keys
//!   (`docs/events/github.md`), so a delivery normalises exactly as the same payload read from a
//!   file, and `acta reindex` gives the same event from the ledger alone. `X-GitHub-Event` and
//!   `X-GitHub-Delivery` are answered back, and a payload whose keys read as another event than
//!   the header names is reported in the answer's `problems`. A `ping` (sent when a webhook is
//!   created) is answered without being stored: it records no access.
//! - `POST /api/v1/ingest/gitlab`: one streaming audit event; `X-Gitlab-Event-Streaming-Token`
//!   must equal the configured token (compared in constant time). Stored under `gitlab-audit`.
//! - `POST /api/v1/ingest/kubernetes`: the audit webhook backend's `EventList`, one entry per
//!   event, under `k8s-audit`.
//!
//! Each also needs a token whose role may write, as `/api/v1/ingest`. GitHub cannot send an
//! `Authorization` header of its own choosing, but it sends the credentials of a payload URL
//! (`https://acta:<token>@host/api/v1/ingest/github`) as HTTP Basic authentication: the GitHub
//! receiver takes the token from the password of Basic credentials too. The source names are
//! those `acta ingest` gives the same records, so searches and Sigma rules (whose log sources
//! name acta sources) see them alike; `source = "…"` in a receiver's section changes it.
//!
//! Bodies pass the same limits as every ingest route ([`super::limits`]) and are stored by the
//! one ledger writer, answered once durable, as `/api/v1/ingest` answers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use acta_ingest::formats::{Format, Parsed, Record};
use acta_ledger::SourceName;
use anyhow::{Result, anyhow};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::config::{Config, Secret};
use super::limits::Refusal;
use super::{ApiError, AppState, INGEST_QUEUE, IngestJob, Job, Resource, bad_request, internal};
use crate::tokens::Action;

/// The receivers turned on by the configuration.
pub(super) struct Receivers {
    github: Option<Shared>,
    gitlab: Option<Shared>,
    kubernetes: Option<SourceName>,
}

/// A receiver checked with a shared secret.
struct Shared {
    secret: Secret,
    source: SourceName,
}

fn source(given: Option<&str>, default: Format) -> Result<SourceName> {
    SourceName::new(given.unwrap_or(default.name())).map_err(|e| anyhow!("{e}"))
}

impl Receivers {
    /// The source each receiver stores under (its default when it is off), which the policies
    /// are asked about.
    pub(super) fn github_source(&self) -> Resource {
        Resource::Source(self.github.as_ref().map_or_else(
            || Format::GithubWebhook.name().to_owned(),
            |h| h.source.as_str().to_owned(),
        ))
    }

    pub(super) fn gitlab_source(&self) -> Resource {
        Resource::Source(self.gitlab.as_ref().map_or_else(
            || Format::GitlabAudit.name().to_owned(),
            |h| h.source.as_str().to_owned(),
        ))
    }

    pub(super) fn kubernetes_source(&self) -> Resource {
        Resource::Source(self.kubernetes.as_ref().map_or_else(
            || Format::K8sAudit.name().to_owned(),
            |s| s.as_str().to_owned(),
        ))
    }

    pub(super) fn new(config: &Config) -> Result<Receivers> {
        let r = &config.receivers;
        let shared = |secret: Option<&Secret>, given: Option<&str>, format: Format| {
            secret
                .map(|s| {
                    Ok::<_, anyhow::Error>(Shared {
                        secret: s.clone(),
                        source: source(given, format)?,
                    })
                })
                .transpose()
        };
        Ok(Receivers {
            github: match &r.github {
                Some(g) if g.enabled => {
                    shared(g.secret(), g.source.as_deref(), Format::GithubWebhook)?
                }
                _ => None,
            },
            gitlab: match &r.gitlab {
                Some(g) if g.enabled => {
                    shared(g.token(), g.source.as_deref(), Format::GitlabAudit)?
                }
                _ => None,
            },
            kubernetes: match &r.kubernetes {
                Some(k) if k.enabled => Some(source(k.source.as_deref(), Format::K8sAudit)?),
                _ => None,
            },
        })
    }

    /// The routes of the receivers that are on, for the start message.
    pub(super) fn enabled(&self) -> Vec<&'static str> {
        [
            (self.github.is_some(), "/api/v1/ingest/github"),
            (self.gitlab.is_some(), "/api/v1/ingest/gitlab"),
            (self.kubernetes.is_some(), "/api/v1/ingest/kubernetes"),
        ]
        .into_iter()
        .filter_map(|(on, route)| on.then_some(route))
        .collect()
    }
}

fn not_configured(what: &str, section: &str, keys: &str) -> Refusal {
    ApiError(
        StatusCode::NOT_FOUND,
        "not_configured",
        format!(
            "the {what} receiver is not configured on this server: add `{section}` with {keys} \
             to acta.toml and restart (docs/serve.md)"
        ),
    )
    .into()
}

fn bad_signature(message: String) -> Refusal {
    ApiError(StatusCode::UNAUTHORIZED, "bad_signature", message).into()
}

/// A header's value as text for an answer: printable, at most 200 characters.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    Some(v.chars().filter(|c| !c.is_control()).take(200).collect())
}

/// `headers` with HTTP Basic credentials turned into the bearer token they carry as password
/// (what GitHub sends for a payload URL with credentials).
fn basic_as_bearer(headers: &HeaderMap) -> HeaderMap {
    let password = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|d| d.split_once(':').map(|(_, p)| p.to_owned()));
    let mut h = headers.clone();
    if let Some(value) = password.and_then(|p| HeaderValue::try_from(format!("Bearer {p}")).ok()) {
        h.insert(header::AUTHORIZATION, value);
    }
    h
}

/// `POST /api/v1/ingest/github`.
pub(super) async fn github(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<axum::Json<Value>, Refusal> {
    let headers = basic_as_bearer(&headers);
    st.authorize(
        &headers,
        Action::Write,
        &st.receivers.github_source(),
        "ingest-github",
    )?;
    let Some(hook) = &st.receivers.github else {
        return Err(not_configured(
            "GitHub",
            "[receivers.github]",
            "`secret_env`, `secret_file` or `secret` (the webhook's secret)",
        ));
    };
    st.limits.rate(&headers)?;
    let signature = headers
        .get("x-hub-signature-256")
        .ok_or_else(|| {
            bad_signature(
                "no X-Hub-Signature-256 header: give the webhook a secret in GitHub, the one \
                 acta.toml names"
                    .into(),
            )
        })?
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("sha256="))
        .and_then(unhex)
        .ok_or_else(|| {
            bad_signature("X-Hub-Signature-256 must be `sha256=` and 64 hex digits".into())
        })?;
    let gzip = super::limits::content(&headers)?;
    let raw = st.limits.read(&headers, request.into_body()).await?;
    let mut mac = Hmac::<Sha256>::new_from_slice(hook.secret.expose())
        .map_err(|_| internal("the webhook secret cannot key HMAC-SHA256"))?;
    mac.update(&raw);
    mac.verify_slice(&signature).map_err(|_| {
        bad_signature(
            "X-Hub-Signature-256 does not match the body: the delivery was not signed with the \
             configured secret, or was altered"
                .into(),
        )
    })?;
    let event = header_text(&headers, "x-github-event");
    let delivery = header_text(&headers, "x-github-delivery");
    if event.as_deref() == Some("ping") {
        return Ok(axum::Json(json!({
            "stored": 0,
            "github": {"event": "ping", "delivery": delivery},
            "message": "pong: the signature checks out; deliveries of other events are stored",
        })));
    }
    let body = st
        .limits
        .decode(raw, gzip, Some(Format::GithubWebhook))
        .await?;
    if body.is_empty() {
        return Err(bad_request("the request body is empty: send a webhook payload".into()).into());
    }
    // The event the stored payload will be read as (the parser infers it from the keys).
    let read_as = st
        .limits
        .registry()
        .get(Format::GithubWebhook)
        .and_then(|p| {
            p.parse(&Record {
                bytes: &body,
                received_at_ms: 0,
            })
            .ok()
        })
        .and_then(|parsed| match parsed {
            Parsed::Event(e) => e.metadata.event_code,
            Parsed::NotAnEvent(_) => None,
        });
    let mut answer = submit(
        &st,
        Some(hook.source.clone()),
        Some(Format::GithubWebhook),
        body,
    )
    .await?;
    if let Some(ev) = &event
        && read_as.as_deref() != Some(ev.as_str())
        && let Some(problems) = answer.get_mut("problems").and_then(Value::as_array_mut)
    {
        problems.push(json!(format!(
            "X-GitHub-Event is `{ev}` but the payload reads as {}: stored as sent, normalised \
             from the payload",
            read_as
                .as_deref()
                .map_or("no known event".to_owned(), |r| format!("`{r}`"))
        )));
    }
    if let Some(o) = answer.as_object_mut() {
        o.insert(
            "github".into(),
            json!({"event": event, "delivery": delivery, "read_as": read_as}),
        );
    }
    Ok(axum::Json(answer))
}

/// `POST /api/v1/ingest/gitlab`.
pub(super) async fn gitlab(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<axum::Json<Value>, Refusal> {
    st.authorize(
        &headers,
        Action::Write,
        &st.receivers.gitlab_source(),
        "ingest-gitlab",
    )?;
    let Some(stream) = &st.receivers.gitlab else {
        return Err(not_configured(
            "GitLab",
            "[receivers.gitlab]",
            "`token_env`, `token_file` or `token` (the streaming destination's verification \
             token)",
        ));
    };
    let presented = headers
        .get("x-gitlab-event-streaming-token")
        .ok_or_else(|| {
            bad_signature(
                "no X-Gitlab-Event-Streaming-Token header: is this a GitLab audit event \
                 streaming destination?"
                    .into(),
            )
        })?;
    // Digests of equal length, compared without an early exit: neither the token's length nor
    // its first differing byte shows in the time taken.
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(stream.secret.expose());
    if a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        != 0
    {
        return Err(bad_signature(
            "X-Gitlab-Event-Streaming-Token does not match the configured token".into(),
        ));
    }
    let body = st
        .limits
        .admit(&headers, request.into_body(), Some(Format::GitlabAudit))
        .await?;
    if body.is_empty() {
        return Err(bad_request("the request body is empty: send an audit event".into()).into());
    }
    let mut answer = submit(
        &st,
        Some(stream.source.clone()),
        Some(Format::GitlabAudit),
        body,
    )
    .await?;
    if let Some(o) = answer.as_object_mut() {
        o.insert(
            "gitlab".into(),
            json!({"event_type": header_text(&headers, "x-gitlab-audit-event-type")}),
        );
    }
    Ok(axum::Json(answer))
}

/// `POST /api/v1/ingest/kubernetes`.
pub(super) async fn kubernetes(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<axum::Json<Value>, Refusal> {
    st.authorize(
        &headers,
        Action::Write,
        &st.receivers.kubernetes_source(),
        "ingest-kubernetes",
    )?;
    let Some(source) = &st.receivers.kubernetes else {
        return Err(not_configured(
            "Kubernetes",
            "[receivers.kubernetes]",
            "nothing else (or `source`)",
        ));
    };
    let body = st
        .limits
        .admit(&headers, request.into_body(), Some(Format::K8sAudit))
        .await?;
    if body.is_empty() {
        return Err(bad_request("the request body is empty: send an EventList".into()).into());
    }
    submit(&st, Some(source.clone()), Some(Format::K8sAudit), body)
        .await
        .map(axum::Json)
}

/// Hands a body to the ledger writer and waits until it is durable; the writer's answer. Without
/// a source or format, they are detected as `acta ingest` detects them.
pub(super) async fn submit(
    st: &AppState,
    source: Option<SourceName>,
    format: Option<Format>,
    body: Vec<u8>,
) -> Result<Value, Refusal> {
    let stopped = || {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "writer_stopped",
            "the ledger writer has stopped (the reason is on the server's standard error); \
             nothing more is stored until a restart"
                .into(),
        )
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let started = std::time::Instant::now();
    let bytes = body.len() as u64;
    let job = IngestJob {
        source,
        format,
        body,
        reply,
    };
    let busy = || {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many ingest requests waiting; retry shortly".into(),
        )
    };
    // Ingest's share of the writer's queue is bounded apart from the reads' records.
    if st.ingest_waiting.fetch_add(1, Ordering::AcqRel) >= INGEST_QUEUE {
        st.ingest_waiting.fetch_sub(1, Ordering::AcqRel);
        return Err(busy().into());
    }
    st.jobs.try_send(Job::Ingest(job)).map_err(|e| {
        st.ingest_waiting.fetch_sub(1, Ordering::AcqRel);
        match e {
            std::sync::mpsc::TrySendError::Full(_) => busy(),
            std::sync::mpsc::TrySendError::Disconnected(_) => stopped(),
        }
    })?;
    match answer.await {
        Ok(Ok(v)) => {
            if let Some(formats) = v["normalised"].as_object() {
                st.metrics.ingested(
                    formats,
                    bytes,
                    v["rejected"].as_u64().unwrap_or(0),
                    started.elapsed(),
                );
            }
            Ok(v)
        }
        // The writer prints why it failed; the client is told that it did, not where.
        Ok(Err(_)) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the ledger writer failed while storing this request (the reason is on the \
             server's standard error); nothing of it was acknowledged"
                .into(),
        )
        .into()),
        Err(_) => Err(stopped().into()),
    }
}

/// 32 bytes from 64 hex digits.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_signatures() {
        let hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let bytes = unhex(hex).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(bytes[0], 0x75);
        assert_eq!(bytes[31], 0x17);
        assert!(unhex(&hex[..62]).is_none());
        assert!(unhex(&hex.replace('7', "g")).is_none());
    }

    #[test]
    fn github_documents_signature() {
        // The example of GitHub's "Validating webhook deliveries": secret "It's a Secret to
        // Everybody", payload "Hello, World!".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"It's a Secret to Everybody").unwrap();
        mac.update(b"Hello, World!");
        let want =
            unhex("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17").unwrap();
        assert!(mac.verify_slice(&want).is_ok());
    }

    #[test]
    fn basic_credentials_carry_the_token() {
        let mut h = HeaderMap::new();
        let creds = base64::engine::general_purpose::STANDARD.encode("acta:acta_0123_abc");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::try_from(format!("Basic {creds}")).unwrap(),
        );
        let b = basic_as_bearer(&h);
        assert_eq!(b[header::AUTHORIZATION], "Bearer acta_0123_abc");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_as_bearer(&h)[header::AUTHORIZATION], "Bearer x");
    }
}
