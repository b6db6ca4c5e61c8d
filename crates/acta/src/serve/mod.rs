//! `acta serve`: the HTTP face of a data directory.
//!
//! - `GET /healthz`: liveness and the ledger's size; no token.
//! - `GET /tlog/checkpoint` and `GET /tlog/tile/...`: the ledger's C2SP tlog-tiles read paths,
//!   for third-party verifiers and witnesses; no token, read-only, and only paths of the C2SP
//!   grammar (a tile path is parsed, then served from its canonical name: no other file of the
//!   data directory can be reached).
//! - `GET /api/v1/search` and `GET /api/v1/stats`: the query language of the command line; a
//!   bearer token whose role may read (`admin`, `auditor`).
//! - `POST /api/v1/ingest[?source=NAME&format=NAME]`: a batch of records (NDJSON, a JSON array, a
//!   CloudTrail or `EventList` envelope, gzip or not), stored through the same pipeline as
//!   `acta ingest`; answered once the batch is durable, with what was stored and flagged. A token
//!   whose role may write (`admin`, `ingest`). Bodies pass the `[limits]` of acta.toml
//!   ([`limits`]).
//! - `POST /api/v1/ingest/github`, `/gitlab`, `/kubernetes`: native receivers, each with its
//!   own check besides the token, configured in acta.toml ([`receivers`], [`config`]).
//! - `GET /api/v1/events/{index}`, `GET /api/v1/alerts`, `GET /api/v1/export`, `GET /api/v1/ledger`,
//!   `GET /api/v1/me`:
//!   see [`read`].
//! - `GET /api/v1/tokens`: the tokens (never their secrets); `admin` only.
//!
//! Every `/api` request carries a bearer token ([`crate::tokens`]); what it may do is decided by
//! the Cedar policies of the data directory ([`policy`]). Every read of the trail is itself
//! recorded in the ledger, under the source `acta-access`, before it is answered.
//!
//! The writer ([`writer`]) owns the ledger and the index writer for the server's lifetime and
//! stores jobs in the order they arrive, consecutive ones overlapping; the rows it indexes become
//! searchable within a second. On shutdown it closes the ledger, which writes a final checkpoint.
//!
//! Tokens are checked against `<data-dir>/tokens.json` ([`crate::tokens`]), reread when it
//! changes, so a revoked token stops working at the next request. Errors are JSON:
//! `{"error": {"code": "...", "message": "..."}}`.

mod config;
mod demo;
mod limits;
mod metrics;
mod policy;
mod read;
mod receivers;
mod tls;
mod writer;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use acta_index::{Index, StatField, TimeRange};
use acta_ledger::tile::TileId;
use anyhow::{Context as _, Result, anyhow};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path as UrlPath, Query as UrlQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::ServeArgs;
use crate::datadir::DataDir;
use crate::tokens::{Action, Role, Tokens, tokens_file};
use crate::units;
use acta_ingest::formats::access::SOURCE as ACCESS_SOURCE;
use acta_ingest::formats::finding::SOURCE as FINDING_SOURCE;
use acta_ingest::formats::{Format, Registry};
use acta_ledger::SourceName;
pub(crate) use policy::{Caller, DEFAULT_POLICIES, Policies, Resource, policies_file};
use writer::{IngestJob, Job, WriterSetup};

mod ui;

/// Most results one search returns.
const MAX_LIMIT: usize = 10_000;
/// Deepest result a search pages to (offset + limit).
const MAX_DEPTH: usize = 100_000;
/// Largest record (the largest request body is `max_body_bytes` of `[limits]` in acta.toml).
const MAX_BODY: usize = 64 << 20;
/// Ingest requests waiting for the writer thread at most; more are refused with 503.
const INGEST_QUEUE: usize = 16;
/// Access records waiting for the writer thread at most; more make reads wait for room.
const ACCESS_QUEUE: usize = 1024;

/// Modification time, inode and length of the token file when it was read.
type FileStamp = (SystemTime, u64, u64);

struct AppState {
    data: DataDir,
    registry: Arc<Registry>,
    log_dir: PathBuf,
    tokens_path: PathBuf,
    /// The tokens and the stamp of the file they were read from.
    tokens: Mutex<(Option<FileStamp>, Tokens)>,
    policies_path: PathBuf,
    /// The policies and the stamp of the file they were read from.
    policies: Mutex<(Option<FileStamp>, Arc<Policies>)>,
    index: Index,
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Ingest jobs queued and not yet taken by the writer.
    ingest_waiting: Arc<AtomicUsize>,
    /// False once the writer thread has stopped (it says why on standard error).
    writer_ok: Arc<std::sync::atomic::AtomicBool>,
    /// The `[limits]` of acta.toml and their state (rate buckets).
    limits: limits::Guard,
    /// The native receivers acta.toml turns on.
    receivers: receivers::Receivers,
    metrics: Arc<metrics::Metrics>,
    /// Delivery counts of the alert sinks, once the writer has started them.
    sinks: Arc<std::sync::OnceLock<crate::sinks::SinkMonitor>>,
    /// The sources of the index and the index size they were counted at.
    sources: Mutex<(Option<u64>, Vec<String>)>,
    /// Reads answered at once at most (each holds its answer until its record is durable).
    reads: tokio::sync::Semaphore,
    /// Exports streaming at once at most (each holds a blocking thread while its client reads).
    exports: Arc<tokio::sync::Semaphore>,
}

/// Reads of the trail answered at once at most; more wait their turn.
const CONCURRENT_READS: usize = 32;
/// Exports streaming at once at most; more are refused with 503 until one ends.
const CONCURRENT_EXPORTS: usize = 4;

/// What a read is recorded with besides the caller: where it came from and what it asked.
pub(crate) struct Seen {
    peer: Option<IpAddr>,
    method: String,
    path: String,
    user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Seen {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Seen, Self::Rejection> {
        Ok(Seen {
            peer: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().chars().take(256).collect(),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect()),
        })
    }
}

/// The sources a caller may read.
pub(crate) enum Scope {
    /// The whole trail.
    All,
    /// These sources only (never empty).
    Sources(Vec<String>),
}

impl Scope {
    /// `query`, narrowed to the sources of the scope.
    fn narrow(&self, query: acta_query::Query) -> acta_query::Query {
        use acta_query::{Expr, Field, Term, Value as QValue};
        let Scope::Sources(sources) = self else {
            return query;
        };
        let mut terms: Vec<Expr> = sources
            .iter()
            .map(|s| {
                Expr::Term(Term {
                    field: Field::Source,
                    value: QValue::Exact(s.clone()),
                    span: 0..0,
                })
            })
            .collect();
        let only = if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        };
        acta_query::Query {
            expr: Some(match query.expr {
                None => only,
                Some(Expr::And(mut all)) => {
                    all.push(only);
                    Expr::And(all)
                }
                Some(e) => Expr::And(vec![e, only]),
            }),
        }
    }

    /// Whether entries of `source` are in the scope.
    fn covers(&self, source: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Sources(s) => s.iter().any(|x| x == source),
        }
    }
}

/// An API error: status, machine code and message.
struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.1, "message": self.2}});
        let mut r = (self.0, axum::Json(body)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"acta\""),
            );
        }
        r
    }
}

/// A failure of the server itself: the detail (which may name files of the data directory) goes
/// to standard error, the client is told that it failed.
fn internal(e: impl std::fmt::Display) -> ApiError {
    eprintln!("acta: internal error: {e}");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the server failed to answer (the reason is on its standard error)".into(),
    )
}

/// The file's modification time, inode and length, to notice when it is replaced.
fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    // Saving replaces the file (a new inode), so a change within one clock tick is seen too.
    std::fs::metadata(path).ok().and_then(|m| {
        use std::os::unix::fs::MetadataExt as _;
        Some((m.modified().ok()?, m.ino(), m.len()))
    })
}

fn forbidden(message: String) -> ApiError {
    ApiError(StatusCode::FORBIDDEN, "forbidden", message)
}

impl AppState {
    /// The token the request carries, if it is valid (known, unexpired, unrevoked).
    fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let unauthorized = |m: &str| ApiError(StatusCode::UNAUTHORIZED, "unauthorized", m.into());
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("this route needs `Authorization: Bearer <token>`"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let now = acta_ledger::now_ms() as i64;
        let mut guard = self
            .tokens
            .lock()
            .map_err(|_| internal("token store poisoned"))?;
        let modified = stamp(&self.tokens_path);
        if modified != guard.0 {
            *guard = (modified, Tokens::load(&self.tokens_path).map_err(internal)?);
        }
        let record = guard
            .1
            .check(token, now)
            .map_err(|r| unauthorized(r.message()))?;
        Ok(Caller {
            id: record.id.clone(),
            name: record.name.clone(),
            role: record.role.name().to_owned(),
        })
    }

    /// The policies in force: reread when the file changes; a file that does not load leaves
    /// the previous policies in force (and says why on standard error).
    fn policies(&self) -> Result<Arc<Policies>, ApiError> {
        let mut guard = self
            .policies
            .lock()
            .map_err(|_| internal("policy store poisoned"))?;
        let modified = stamp(&self.policies_path);
        if modified != guard.0 {
            let loaded = std::fs::read_to_string(&self.policies_path)
                .map_err(anyhow::Error::from)
                .and_then(|t| Policies::parse(&t, &self.policies_path.display().to_string()));
            match loaded {
                Ok(p) => {
                    eprintln!(
                        "acta: policies reloaded from {}",
                        self.policies_path.display()
                    );
                    *guard = (modified, Arc::new(p));
                }
                Err(e) => {
                    eprintln!("acta: {e:#}\nacta: the previous policies stay in force");
                    guard.0 = modified;
                }
            }
        }
        Ok(Arc::clone(&guard.1))
    }

    /// The size of the published checkpoint (`log/checkpoint`, what `/tlog/checkpoint` serves)
    /// and how long ago it was written: one small file, never the ledger itself.
    fn published(&self) -> (Option<u64>, Option<std::time::Duration>) {
        let path = self.log_dir.join("checkpoint");
        let size = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.lines().nth(1).and_then(|l| l.parse::<u64>().ok()));
        let age = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        (size, age)
    }

    /// Whether the policies let `caller` do `action` on `resource`.
    fn allows(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        route: &str,
    ) -> Result<bool, ApiError> {
        self.policies()?
            .allows(caller, action, resource, route)
            .map_err(internal)
    }

    /// The caller, if its token is valid and the policies let it do `action` on `resource`.
    fn authorize(
        &self,
        headers: &HeaderMap,
        action: Action,
        resource: &Resource,
        route: &str,
    ) -> Result<Caller, ApiError> {
        let caller = self.caller(headers)?;
        if !self.allows(&caller, action, resource, route)? {
            return Err(forbidden(format!(
                "the policies do not let token {} (role `{}`) {} {}",
                caller.id,
                caller.role,
                action.name(),
                match resource {
                    Resource::Trail => "the trail".to_owned(),
                    Resource::Source(s) => format!("source `{s}`"),
                    Resource::Tokens => "tokens".to_owned(),
                }
            )));
        }
        Ok(caller)
    }

    /// The sources of the index, kept until the index grows.
    fn known_sources(&self) -> Result<Vec<String>, ApiError> {
        self.index.reload().map_err(internal)?;
        let size = self.index.len();
        let mut cache = self
            .sources
            .lock()
            .map_err(|_| internal("source cache poisoned"))?;
        if cache.0 != Some(size) {
            let rows = self
                .index
                .stats(
                    &acta_query::Query { expr: None },
                    TimeRange::default(),
                    &[StatField::Source],
                    None,
                )
                .map_err(internal)?;
            let sources = rows
                .into_iter()
                .filter_map(|r| r.values.into_iter().next().flatten())
                .collect();
            *cache = (Some(size), sources);
        }
        Ok(cache.1.clone())
    }

    /// The sources `caller` may read. The whole trail when the policies let it read the trail
    /// and each source of the index; otherwise the sources they let it read one by one (a
    /// `forbid` on one source narrows even a caller who may read the trail). A caller who may
    /// read none is refused, and the refusal recorded.
    async fn read_scope(
        self: &Arc<Self>,
        caller: &Caller,
        seen: &Seen,
        route: &'static str,
    ) -> Result<Scope, ApiError> {
        let st = Arc::clone(self);
        let who = caller.clone();
        let scope = tokio::task::spawn_blocking(move || {
            let trail = st.allows(&who, Action::Read, &Resource::Trail, route)?;
            let sources = st.known_sources()?;
            let total = sources.len();
            let mut allowed = Vec::with_capacity(total);
            for source in sources {
                if st.allows(&who, Action::Read, &Resource::Source(source.clone()), route)? {
                    allowed.push(source);
                }
            }
            Ok::<_, ApiError>(if trail && allowed.len() == total {
                Some(Scope::All)
            } else if allowed.is_empty() {
                None
            } else {
                Some(Scope::Sources(allowed))
            })
        })
        .await
        .map_err(internal)??;
        match scope {
            Some(scope) => Ok(scope),
            None => Err(self
                .refuse_read(
                    caller,
                    seen,
                    route,
                    json!({}),
                    format!(
                        "the policies do not let token {} (role `{}`) read the trail or any of its sources",
                        caller.id, caller.role
                    ),
                )
                .await),
        }
    }

    /// Records a refused read (status Failure) and gives the 403 to answer with.
    async fn refuse_read(
        &self,
        caller: &Caller,
        seen: &Seen,
        route: &str,
        params: Value,
        message: String,
    ) -> ApiError {
        if let Err(e) = self
            .record(caller, seen, route, params, 0, Some(&message))
            .await
        {
            return e;
        }
        forbidden(message)
    }

    /// Whether the policies let `caller` write records whose source is only known once they
    /// are read: it must be allowed the trail and every source a format stores under.
    fn may_write_any_source(&self, caller: &Caller, route: &str) -> Result<bool, ApiError> {
        if !self.allows(caller, Action::Write, &Resource::Trail, route)? {
            return Ok(false);
        }
        for name in Format::ALL
            .iter()
            .filter(|f| !f.is_acta_own())
            .map(|f| f.name())
            .chain(["raw"])
        {
            if !self.allows(
                caller,
                Action::Write,
                &Resource::Source(name.to_owned()),
                route,
            )? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Records a read of the trail in the ledger (source `acta-access`) and waits until it is
    /// durable: no read is answered unrecorded.
    async fn record_read(
        &self,
        caller: &Caller,
        seen: &Seen,
        route: &str,
        params: Value,
        results: u64,
    ) -> Result<(), ApiError> {
        self.record(caller, seen, route, params, results, None)
            .await
    }

    /// Appends an access record — of a read answered, or refused (`refused` says why) — and
    /// waits until it is durable.
    async fn record(
        &self,
        caller: &Caller,
        seen: &Seen,
        route: &str,
        params: Value,
        results: u64,
        refused: Option<&str>,
    ) -> Result<(), ApiError> {
        let now = acta_ledger::now_ms() as i64;
        let asked = params
            .get("q")
            .and_then(Value::as_str)
            .filter(|q| !q.is_empty())
            .map(|q| format!("{route}: {}", q.chars().take(200).collect::<String>()))
            .unwrap_or_else(|| route.to_owned());
        let record = json!({
            "class_uid": 6003,
            "class_name": "API Activity",
            "category_uid": 6,
            "category_name": "Application Activity",
            "activity_id": 2,
            "activity_name": "Read",
            "type_uid": 600302,
            "time": now,
            "status_id": if refused.is_some() { 2 } else { 1 },
            "status": if refused.is_some() { "Failure" } else { "Success" },
            "status_detail": refused,
            "message": asked,
            "actor": {"user": {"uid": caller.id, "name": caller.name, "type": caller.role}},
            "api": {"operation": route, "service": {"name": "acta"}},
            "http_request": {
                "http_method": seen.method,
                "url": {"path": seen.path},
                "user_agent": seen.user_agent,
            },
            "src_endpoint": {"ip": seen.peer.map(|p| p.to_string())},
            "metadata": {
                "version": "1.3.0",
                "product": {"name": "acta", "vendor_name": "acta", "version": env!("CARGO_PKG_VERSION")},
            },
            "unmapped": {"acta": {"params": params, "results": results}},
        });
        let (reply, done) = tokio::sync::oneshot::channel();
        let mut job = Job::Access {
            record: record.to_string().into_bytes(),
            reply,
        };
        // The queue is shared with ingest, whose share is bounded apart: a full queue means
        // a thousand reads waiting, so this one waits for room rather than go unrecorded.
        loop {
            match self.jobs.try_send(job) {
                Ok(()) => break,
                Err(std::sync::mpsc::TrySendError::Full(j)) => {
                    job = j;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    return Err(unavailable(
                        "the ledger writer has stopped: reads cannot be recorded",
                    ));
                }
            }
        }
        match done.await {
            Ok(Ok(())) => {
                if refused.is_none() {
                    self.metrics.read_recorded(route);
                }
                Ok(())
            }
            Ok(Err(e)) => Err(internal(format!("the read could not be recorded: {e}"))),
            Err(_) => Err(unavailable(
                "the ledger writer has stopped: reads cannot be recorded",
            )),
        }
    }
}

fn unavailable(message: &str) -> ApiError {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        message.into(),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    #[serde(default)]
    q: String,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    by: String,
    interval: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

/// Rows one count answers by default, and at most.
const STATS_ROWS: usize = 1_000;
const MAX_STATS_ROWS: usize = 100_000;

fn bad_request(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The query and time range of a request.
fn asked(
    q: &str,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(acta_query::Query, TimeRange), ApiError> {
    let query = acta_query::parse(q).map_err(|e| bad_request(e.render(q)))?;
    let now = acta_ledger::now_ms() as i64;
    let time = |s: Option<&str>, what: &str| {
        s.map(|s| acta_query::parse_time(s, now).map_err(|e| bad_request(format!("{what}: {e}"))))
            .transpose()
    };
    let range = TimeRange {
        since: time(since, "since")?,
        until: time(until, "until")?,
    };
    Ok((query, range))
}

async fn search(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    seen: Seen,
    params: Result<UrlQuery<SearchParams>, QueryRejection>,
) -> Result<axum::Json<Value>, limits::Refusal> {
    // The token first: nothing about the request is answered to a caller without one.
    let caller = st.caller(&headers)?;
    st.limits.rate(&headers)?;
    let UrlQuery(p) = params.map_err(|e| bad_request(e.body_text()))?;
    let _turn = st.reads.acquire().await.map_err(internal)?;
    let scope = st.read_scope(&caller, &seen, "search").await?;
    let (query, range) = asked(&p.q, p.since.as_deref(), p.until.as_deref())?;
    let query = scope.narrow(query);
    let limit = p.limit.unwrap_or(100).min(MAX_LIMIT);
    if p.offset.saturating_add(limit) > MAX_DEPTH {
        return Err(bad_request(format!(
            "offset + limit may be at most {MAX_DEPTH}: narrow the query or the time range"
        ))
        .into());
    }
    let st2 = Arc::clone(&st);
    let offset = p.offset;
    let (answer, total) = tokio::task::spawn_blocking(move || {
        st2.index.reload()?;
        let (total, hits) = st2.index.page(&query, range, limit, offset)?;
        Ok::<_, acta_index::IndexError>((
            json!({
                "total": total,
                "offset": offset,
                "events": hits.iter().map(crate::commands::hit_json).collect::<Vec<_>>(),
            }),
            total,
        ))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let params =
        json!({"q": p.q, "since": p.since, "until": p.until, "limit": limit, "offset": offset});
    st.record_read(&caller, &seen, "search", params, total)
        .await?;
    Ok(axum::Json(answer))
}

async fn stats(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    seen: Seen,
    params: Result<UrlQuery<StatsParams>, QueryRejection>,
) -> Result<axum::Json<Value>, limits::Refusal> {
    // The token first: nothing about the request is answered to a caller without one.
    let caller = st.caller(&headers)?;
    st.limits.rate(&headers)?;
    let UrlQuery(p) = params.map_err(|e| bad_request(e.body_text()))?;
    let _turn = st.reads.acquire().await.map_err(internal)?;
    let scope = st.read_scope(&caller, &seen, "stats").await?;
    let (query, range) = asked(&p.q, p.since.as_deref(), p.until.as_deref())?;
    let query = scope.narrow(query);
    let by: Vec<StatField> =
        p.by.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<StatField>()
                    .map_err(|e| bad_request(format!("by: {e}")))
            })
            .collect::<Result<_, _>>()?;
    let interval = p
        .interval
        .as_deref()
        .map(|i| crate::commands::parse_interval(i).map_err(|e| bad_request(format!("{e:#}"))))
        .transpose()?;
    if by.is_empty() && interval.is_none() {
        return Err(bad_request("`by` needs at least one field, or give `interval`".into()).into());
    }
    let limit = p.limit.unwrap_or(STATS_ROWS).min(MAX_STATS_ROWS);
    let st2 = Arc::clone(&st);
    let answer = tokio::task::spawn_blocking(move || {
        st2.index.reload()?;
        let mut rows = st2.index.stats(&query, range, &by, interval)?;
        let groups = rows.len();
        rows.truncate(limit);
        let names: Vec<&str> = by.iter().map(|f| f.name()).collect();
        Ok::<_, acta_index::IndexError>(json!({
            "by": names,
            "groups": groups,
            "rows": rows.iter().map(|r| {
                let mut o = serde_json::Map::new();
                if let Some(b) = r.bucket {
                    o.insert("bucket".into(), json!(units::timestamp(b)));
                }
                for (n, v) in names.iter().zip(&r.values) {
                    o.insert((*n).to_owned(), json!(v));
                }
                o.insert("count".into(), json!(r.count));
                Value::Object(o)
            }).collect::<Vec<_>>(),
        }))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let rows = answer["rows"].as_array().map_or(0, Vec::len) as u64;
    let params = json!({"q": p.q, "by": p.by, "interval": p.interval, "since": p.since, "until": p.until, "limit": limit});
    st.record_read(&caller, &seen, "stats", params, rows)
        .await?;
    Ok(axum::Json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestParams {
    source: Option<String>,
    format: Option<String>,
}

async fn ingest(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<UrlQuery<IngestParams>, QueryRejection>,
    request: axum::extract::Request,
) -> Result<axum::Json<Value>, limits::Refusal> {
    // The token is checked before a byte of the body is read: no one without one can make the
    // server buffer a body.
    let caller = st.caller(&headers)?;
    let UrlQuery(p) = params.map_err(|e| bad_request(e.body_text()))?;
    // A named source is asked about; without one, the records' source is only known once they
    // are read, so the caller must be allowed every source a format stores under.
    let allowed = match p.source.as_deref() {
        Some(s) => st.allows(
            &caller,
            Action::Write,
            &Resource::Source(s.to_owned()),
            "ingest",
        )?,
        None => st.may_write_any_source(&caller, "ingest")?,
    };
    if !allowed {
        return Err(forbidden(format!(
            "the policies do not let token {} (role `{}`) write {}",
            caller.id,
            caller.role,
            match p.source.as_deref() {
                Some(s) => format!("source `{s}`"),
                None => "records of any source: name the source with `?source=`".to_owned(),
            }
        ))
        .into());
    }
    let source = p
        .source
        .as_deref()
        .map(SourceName::new)
        .transpose()
        .map_err(|e| bad_request(format!("source: {e}")))?;
    let format = p
        .format
        .as_deref()
        .map(str::parse::<Format>)
        .transpose()
        .map_err(|e| bad_request(format!("format: {e}")))?;
    if p.source.as_deref().is_some_and(Format::is_reserved_source)
        || format.is_some_and(Format::is_acta_own)
    {
        return Err(bad_request(format!(
            "`{FINDING_SOURCE}` and `{ACCESS_SOURCE}` are reserved for the records acta writes itself"
        ))
        .into());
    }
    let body = st
        .limits
        .admit(&headers, request.into_body(), format)
        .await?;
    if body.is_empty() {
        return Err(bad_request("the request body is empty: send records".into()).into());
    }
    receivers::submit(&st, source, format, body)
        .await
        .map(axum::Json)
}

async fn list_tokens(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, ApiError> {
    st.authorize(&headers, Action::Manage, &Resource::Tokens, "tokens")?;
    let guard = st
        .tokens
        .lock()
        .map_err(|_| internal("token store poisoned"))?;
    let list: Vec<Value> = guard
        .1
        .records()
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "name": t.name,
                "role": t.role.name(),
                "created": units::timestamp(t.created_ms),
                "expires": t.expires_ms.map(units::timestamp),
                "revoked": t.revoked_ms.map(units::timestamp),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "tokens": list })))
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let (size, _) = st.published();
    if !st.writer_ok.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "writer stopped", "entries": size})),
        )
            .into_response();
    }
    axum::Json(json!({"status": "ok", "entries": size})).into_response()
}

fn static_file(path: PathBuf, content_type: &'static str) -> Result<Response, ApiError> {
    match std::fs::read(&path) {
        Ok(bytes) => Ok((
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such file in the log".into(),
        )),
        Err(e) => Err(internal(e)),
    }
}

async fn checkpoint(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    static_file(st.log_dir.join("checkpoint"), "text/plain; charset=utf-8")
}

async fn tile(
    State(st): State<Arc<AppState>>,
    UrlPath(rest): UrlPath<String>,
) -> Result<Response, ApiError> {
    let path = format!("tile/{rest}");
    let (id, bundle) = TileId::parse_path(&path).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            "not a tile path of C2SP tlog-tiles (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])"
                .into(),
        )
    })?;
    // Served from the canonical name, never from the request's text.
    let canonical = if bundle {
        id.bundle_path()
    } else {
        id.hash_path()
    };
    static_file(st.log_dir.join(canonical), "application/octet-stream")
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not_found", "no such route".into())
}

/// The OpenAPI document of the API.
const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`: any valid token.
async fn openapi(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    st.caller(&headers)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response())
}

/// `GET /metrics`: a token that may read the trail.
async fn metrics_text(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    st.authorize(&headers, Action::Read, &Resource::Trail, "metrics")?;
    let (ledger_entries, checkpoint_age) = st.published();
    let sinks = st
        .sinks
        .get()
        .map(|m| {
            m.reports()
                .into_iter()
                .map(|r| metrics::SinkFigures {
                    name: r.name,
                    delivered: r.delivered,
                    failed: r.failed,
                    dropped: r.dropped,
                })
                .collect()
        })
        .unwrap_or_default();
    let text = st.metrics.render(&metrics::Gauges {
        ledger_entries,
        checkpoint_age,
        writer_up: st.writer_ok.load(std::sync::atomic::Ordering::Relaxed),
        sinks,
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Counts every answer by route pattern and status.
async fn count_request(
    State(st): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    st.metrics.request(&route, response.status().as_u16());
    response
}

/// The routes of the server.
fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/tlog/checkpoint", get(checkpoint))
        .route("/tlog/tile/{*rest}", get(tile))
        .route("/api/v1/search", get(search))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/ingest", axum::routing::post(ingest))
        .route(
            "/api/v1/ingest/github",
            axum::routing::post(receivers::github),
        )
        .route(
            "/api/v1/ingest/gitlab",
            axum::routing::post(receivers::gitlab),
        )
        .route(
            "/api/v1/ingest/kubernetes",
            axum::routing::post(receivers::kubernetes),
        )
        .route("/api/v1/events/{index}", get(read::event))
        .route("/api/v1/alerts", get(read::alerts))
        .route("/api/v1/export", get(read::export))
        .route("/api/v1/ledger", get(read::ledger))
        .route("/api/v1/me", get(read::me))
        .route("/api/v1/tokens", get(list_tokens))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics_text))
        .merge(ui::routes())
        .fallback(not_found)
        .layer(axum::middleware::map_response(limits::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            count_request,
        ))
        .with_state(state)
}

/// `acta serve`.
pub fn run(data: &DataDir, args: ServeArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(data.root())
        .with_context(|| format!("cannot create `{}`", data.root().display()))?;
    // The demo's files (and an acta.toml turning detection on) before the configuration is read.
    let demo = if args.demo {
        Some(demo::prepare(data.root())?)
    } else {
        None
    };
    let ledger_empty =
        !data.has_ledger() || acta_ledger::read::Entries::open(&data.ledger_dir())?.is_empty();
    let mut config = config::Config::load(args.config.as_deref(), data.root())?;
    let acceptor = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let receivers = receivers::Receivers::new(&config)?;
    let tokens_path = tokens_file(data.root());
    let mut tokens = Tokens::load(&tokens_path)?;
    let now = acta_ledger::now_ms() as i64;
    if !tokens.has_admin(now) {
        match std::env::var("ACTA_ADMIN_TOKEN") {
            Ok(t) if !t.is_empty() => {
                let r = tokens.adopt(&t, Role::admin(), "ACTA_ADMIN_TOKEN", None, now)?;
                eprintln!("acta: admin token {} taken from ACTA_ADMIN_TOKEN", r.id);
            }
            _ => {
                let (token, r) = tokens.create(Role::admin(), "first admin", None, now)?;
                eprintln!(
                    "acta: created admin token {} — shown once, keep it:\n{token}",
                    r.id
                );
            }
        }
        tokens.save(&tokens_path)?;
    }
    let (policies, policies_path) = Policies::load_or_create(data.root())?;
    for t in tokens.records() {
        if t.revoked_ms.is_none() && !policies.mentions_role(t.role.name()) {
            eprintln!(
                "acta: token {} has role `{}`, which no policy in {} names: it may do nothing",
                t.id,
                t.role.name(),
                policies_path.display()
            );
        }
    }
    let (jobs, queue) = std::sync::mpsc::sync_channel(INGEST_QUEUE + ACCESS_QUEUE);
    let ingest_waiting = Arc::new(AtomicUsize::new(0));
    let waiting = Arc::clone(&ingest_waiting);
    let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
    let metrics = Arc::new(metrics::Metrics::default());
    let sinks = Arc::new(std::sync::OnceLock::new());
    let setup = WriterSetup {
        data: DataDir::new(data.root()),
        ingest_waiting: waiting,
        detect: config.detect.take(),
        metrics: Arc::clone(&metrics),
        sinks: Arc::clone(&sinks),
    };
    let writer_ok = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ok = Arc::clone(&writer_ok);
    let writer_thread = std::thread::Builder::new()
        .name("acta-writer".into())
        .spawn(move || writer::writer(setup, queue, ready_tx, ok))
        .context("cannot start the ledger writer")?;
    ready
        .recv()
        .map_err(|_| anyhow!("the ledger writer stopped"))?
        .map_err(|e| anyhow!("{e}"))?;
    if let Some(demo) = &demo {
        if ledger_empty {
            load_demo(demo, &jobs, &ingest_waiting)?;
        } else {
            eprintln!(
                "acta: demo: the data directory already holds entries; serving them as they are"
            );
        }
    }
    // The writer has created the ledger and the index if the data directory was new.
    let index = crate::commands::open_index(data)?;
    let state = Arc::new(AppState {
        data: DataDir::new(data.root()),
        registry: Arc::new(Registry::standard()),
        log_dir: data.ledger_dir().join("log"),
        tokens: Mutex::new((None, tokens)),
        tokens_path,
        policies: Mutex::new((stamp(&policies_path), Arc::new(policies))),
        policies_path,
        index,
        jobs,
        ingest_waiting,
        writer_ok,
        limits: limits::Guard::new(config.limits.clone()),
        receivers,
        metrics,
        sinks,
        sources: Mutex::new((None, Vec::new())),
        reads: tokio::sync::Semaphore::new(CONCURRENT_READS),
        exports: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_EXPORTS)),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr: SocketAddr = listener.local_addr()?;
        if let Some(path) = &config.path {
            eprintln!("acta: configuration from {}", path.display());
        }
        for route in state.receivers.enabled() {
            eprintln!("acta: receiver on POST {route}");
        }
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        eprintln!("acta: listening on {scheme}://{addr}");
        let header_timeout = config.limits.header_timeout.get();
        limits::serve(
            listener,
            router(state),
            header_timeout,
            acceptor,
            shutdown(),
        )
        .await;
        Ok::<_, anyhow::Error>(())
    })?;
    drop(runtime);
    // The state (and with it the job queue) is gone: the writer closes the ledger.
    writer_thread
        .join()
        .map_err(|_| anyhow!("the ledger writer panicked"))??;
    eprintln!("acta: stopped; final checkpoint written");
    Ok(ExitCode::SUCCESS)
}

/// Stores the demo's samples through the writer, one request per file, as clients would.
fn load_demo(
    demo: &demo::Demo,
    jobs: &std::sync::mpsc::SyncSender<Job>,
    ingest_waiting: &AtomicUsize,
) -> Result<()> {
    let (mut stored, mut alerts) = (0u64, 0u64);
    for path in &demo.samples {
        let body =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        ingest_waiting.fetch_add(1, Ordering::AcqRel);
        jobs.send(Job::Ingest(IngestJob {
            source: None,
            format: None,
            body,
            reply,
        }))
        .map_err(|_| anyhow!("the ledger writer stopped"))?;
        let answer = answer
            .blocking_recv()
            .map_err(|_| anyhow!("the ledger writer stopped"))?
            .map_err(|e| anyhow!("demo sample `{}`: {e}", path.display()))?;
        stored += answer["stored"].as_u64().unwrap_or(0);
        alerts += answer["alerts"].as_u64().unwrap_or(0);
    }
    // Searchable before the first request.
    let (reply, committed) = tokio::sync::oneshot::channel();
    jobs.send(Job::Commit(reply))
        .map_err(|_| anyhow!("the ledger writer stopped"))?;
    committed
        .blocking_recv()
        .map_err(|_| anyhow!("the ledger writer stopped"))?;
    eprintln!(
        "acta: demo: stored {stored} entries from {} sample files, {alerts} alerts raised; samples and licences in {}",
        demo.samples.len(),
        demo.dir.display()
    );
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acta_query::{Expr, Field, Value as QValue};

    fn sources(expr: &Expr) -> Vec<String> {
        match expr {
            Expr::Term(t) if t.field == Field::Source => match &t.value {
                QValue::Exact(s) => vec![s.clone()],
                _ => vec![],
            },
            Expr::Or(all) => all.iter().flat_map(sources).collect(),
            _ => vec![],
        }
    }

    /// Narrowing makes the sources one more operand of a top-level AND, whatever the query:
    /// nothing the caller writes can be an alternative to it.
    #[test]
    fn narrowing_is_an_operand_of_a_top_level_and() {
        let scope = Scope::Sources(vec!["k8s-audit".into(), "github-audit".into()]);
        for q in [
            "",
            "source:cloudtrail OR source:k8s-audit",
            "NOT source:k8s-audit",
            "actor:alice AND action:Get*",
            "(a OR b) AND NOT (c OR d)",
        ] {
            let narrowed = scope.narrow(acta_query::parse(q).unwrap());
            let expr = narrowed.expr.unwrap();
            let only = match &expr {
                Expr::And(all) => all.last().unwrap().clone(),
                other => {
                    assert!(q.is_empty(), "{q}: {other:?}");
                    other.clone()
                }
            };
            assert_eq!(sources(&only), ["k8s-audit", "github-audit"], "{q}");
            if let Expr::And(all) = &expr {
                // The caller's query is whole among the other operands.
                let asked = acta_query::parse(q).unwrap().expr.unwrap();
                let rest: Vec<Expr> = all[..all.len() - 1].to_vec();
                match asked {
                    Expr::And(parts) => assert_eq!(rest, parts, "{q}"),
                    one => assert_eq!(rest, vec![one], "{q}"),
                }
            }
        }
        assert!(
            Scope::All
                .narrow(acta_query::parse("x").unwrap())
                .expr
                .is_some()
        );
        assert!(scope.covers("k8s-audit") && !scope.covers("cloudtrail"));
    }
}
