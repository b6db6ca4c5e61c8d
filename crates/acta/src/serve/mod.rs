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
//! - `GET /api/v1/tokens`: the tokens (never their secrets); `admin` only.
//!
//! One thread owns the ledger and the index writer for the server's lifetime and stores requests
//! one after another; the rows it indexes become searchable within a second. On shutdown it
//! closes the ledger, which writes a final checkpoint.
//!
//! Tokens are checked against `<data-dir>/tokens.json` ([`crate::tokens`]), reread when it
//! changes, so a revoked token stops working at the next request. Errors are JSON:
//! `{"error": {"code": "...", "message": "..."}}`.

mod config;
mod limits;
mod receivers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use acta_index::{Index, StatField, TimeRange};
use acta_ledger::tile::TileId;
use anyhow::{Context as _, Result, anyhow};
use axum::Router;
use axum::extract::{Path as UrlPath, Query as UrlQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::ServeArgs;
use crate::datadir::DataDir;
use crate::pipeline::{self, Input, Options, Sink};
use crate::store::Store;
use crate::tokens::{Action, Role, Tokens, tokens_file};
use crate::units;
use acta_ingest::formats::finding::SOURCE as FINDING_SOURCE;
use acta_ingest::formats::{Format, Registry};
use acta_ledger::{Appender, AppenderOptions, SourceName};

/// Most results one search returns.
const MAX_LIMIT: usize = 10_000;
/// Deepest result a search pages to (offset + limit).
const MAX_DEPTH: usize = 100_000;
/// Largest record (the largest request body is `max_body_bytes` of `[limits]` in acta.toml).
const MAX_BODY: usize = 64 << 20;
/// Ingest requests waiting for the writer thread at most; more are refused with 503.
const INGEST_QUEUE: usize = 16;

/// One ingest request, for the writer thread.
struct IngestJob {
    source: Option<SourceName>,
    format: Option<Format>,
    body: Vec<u8>,
    reply: tokio::sync::oneshot::Sender<Result<Value, String>>,
}

/// Modification time, inode and length of the token file when it was read.
type FileStamp = (SystemTime, u64, u64);

struct AppState {
    log_dir: PathBuf,
    tokens_path: PathBuf,
    /// The tokens and the modification time of the file they were read from.
    tokens: Mutex<(Option<FileStamp>, Tokens)>,
    index: Index,
    ingest: std::sync::mpsc::SyncSender<IngestJob>,
    /// False once the writer thread has stopped (it says why on standard error).
    writer_ok: Arc<std::sync::atomic::AtomicBool>,
    /// The `[limits]` of acta.toml and their state (rate buckets).
    limits: limits::Guard,
    /// The native receivers acta.toml turns on.
    receivers: receivers::Receivers,
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

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

impl AppState {
    /// The role of the request's bearer token, if it may do `action`.
    fn authorize(&self, headers: &HeaderMap, action: Action) -> Result<Role, ApiError> {
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
        // Saving replaces the file (a new inode), so a change within one clock tick is seen too.
        let modified = std::fs::metadata(&self.tokens_path).ok().and_then(|m| {
            use std::os::unix::fs::MetadataExt as _;
            Some((m.modified().ok()?, m.ino(), m.len()))
        });
        if modified != guard.0 {
            *guard = (modified, Tokens::load(&self.tokens_path).map_err(internal)?);
        }
        let record = guard
            .1
            .check(token, now)
            .map_err(|r| unauthorized(r.message()))?;
        if !record.role.allows(action) {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "a token of role `{}` may not {} (token {})",
                    record.role.name(),
                    match action {
                        Action::Read => "read the trail",
                        Action::Write => "write the trail",
                        Action::Manage => "manage tokens",
                    },
                    record.id
                ),
            ));
        }
        Ok(record.role)
    }
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
    by: String,
    interval: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

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
    UrlQuery(p): UrlQuery<SearchParams>,
) -> Result<axum::Json<Value>, ApiError> {
    st.authorize(&headers, Action::Read)?;
    let (query, range) = asked(&p.q, p.since.as_deref(), p.until.as_deref())?;
    let limit = p.limit.unwrap_or(100).min(MAX_LIMIT);
    if p.offset.saturating_add(limit) > MAX_DEPTH {
        return Err(bad_request(format!(
            "offset + limit may be at most {MAX_DEPTH}: narrow the query or the time range"
        )));
    }
    let st2 = Arc::clone(&st);
    tokio::task::spawn_blocking(move || {
        st2.index.reload()?;
        let (total, hits) = st2.index.page(&query, range, limit, p.offset)?;
        Ok::<_, acta_index::IndexError>(json!({
            "total": total,
            "offset": p.offset,
            "events": hits.iter().map(crate::commands::hit_json).collect::<Vec<_>>(),
        }))
    })
    .await
    .map_err(internal)?
    .map(axum::Json)
    .map_err(internal)
}

async fn stats(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    UrlQuery(p): UrlQuery<StatsParams>,
) -> Result<axum::Json<Value>, ApiError> {
    st.authorize(&headers, Action::Read)?;
    let (query, range) = asked(&p.q, p.since.as_deref(), p.until.as_deref())?;
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
        return Err(bad_request(
            "`by` needs at least one field, or give `interval`".into(),
        ));
    }
    let st2 = Arc::clone(&st);
    tokio::task::spawn_blocking(move || {
        st2.index.reload()?;
        let rows = st2.index.stats(&query, range, &by, interval)?;
        let names: Vec<&str> = by.iter().map(|f| f.name()).collect();
        Ok::<_, acta_index::IndexError>(json!({
            "by": names,
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
    .map(axum::Json)
    .map_err(internal)
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
    UrlQuery(p): UrlQuery<IngestParams>,
    request: axum::extract::Request,
) -> Result<axum::Json<Value>, limits::Refusal> {
    // The token is checked before a byte of the body is read: no one without one can make the
    // server buffer a body.
    st.authorize(&headers, Action::Write)?;
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
    if p.source.as_deref() == Some(FINDING_SOURCE) || format == Some(Format::Finding) {
        return Err(bad_request(format!(
            "`{FINDING_SOURCE}` is reserved for the alerts acta raises itself"
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
    st.authorize(&headers, Action::Manage)?;
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

/// The writer thread: owns the ledger and the index writer, stores requests in order.
fn writer(
    data: DataDir,
    jobs: std::sync::mpsc::Receiver<IngestJob>,
    ready: std::sync::mpsc::SyncSender<Result<(), String>>,
    ok: Arc<std::sync::atomic::AtomicBool>,
) -> Result<()> {
    let result = write_jobs(&data, jobs, ready);
    ok.store(false, std::sync::atomic::Ordering::Relaxed);
    if let Err(e) = &result {
        eprintln!("acta: the ledger writer stopped: {e:#}; ingest is refused until a restart");
    }
    result
}

fn write_jobs(
    data: &DataDir,
    jobs: std::sync::mpsc::Receiver<IngestJob>,
    ready: std::sync::mpsc::SyncSender<Result<(), String>>,
) -> Result<()> {
    let registry = Arc::new(Registry::standard());
    let opened = data.open_ledger().and_then(|ledger| {
        let mut store = Store::open(data.root(), None)?;
        let appender = Appender::start(ledger, AppenderOptions::default())?;
        // Entries stored since the index was last brought up to date.
        store.catch_up(
            &data.ledger_dir(),
            &registry,
            &indicatif::ProgressBar::hidden(),
        )?;
        Ok((store, appender))
    });
    let (mut store, appender) = match opened {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return Err(e);
        }
    };
    loop {
        let job = match jobs.recv_timeout(std::time::Duration::from_millis(500)) {
            Ok(job) => job,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                store.commit_if_due()?;
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let opts = Options {
            source: job.source,
            format: job.format,
            registry: registry.clone(),
            max_record_bytes: MAX_BODY,
            batch_bytes: 4 << 20,
            in_flight: pipeline::IN_FLIGHT,
            threads: 2,
            receipts: None,
            progress: indicatif::ProgressBar::hidden(),
        };
        let sink = Sink::Ledger {
            appender: &appender,
            store: Some(&mut store),
            detect: None,
        };
        let input = Input::Bytes {
            name: "request".into(),
            data: job.body,
        };
        let answer = pipeline::run_inputs(sink, vec![input], opts)
            .map(|s| {
                let size = s.checkpoint.as_ref().map_or(0, |c| c.checkpoint.size);
                json!({
                    "stored": s.entries,
                    "first": (s.entries > 0).then(|| size - s.entries),
                    "last": (s.entries > 0).then(|| size - 1),
                    "checkpoint": s.checkpoint.as_ref().map(|c| json!({
                        "size": c.checkpoint.size,
                        "root": c.checkpoint.root.to_string(),
                    })),
                    "normalised": s.formats.iter().map(|(f, n)| (f.name().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
                    "flagged": s.flagged,
                    "not_events": s.not_events,
                    "rejected": s.rejected_count,
                    "problems": s.failures.iter().chain(&s.rejected).collect::<Vec<_>>(),
                })
            })
            .map_err(|e| format!("{e:#}"));
        if let Err(e) = &answer {
            // The ledger or the index failed: nothing more is stored until a restart, which
            // recovers the ledger and indexes what it lacks.
            let _ = job.reply.send(Err(e.clone()));
            appender.close()?;
            store.close()?;
            anyhow::bail!("{e}");
        }
        let _ = job.reply.send(answer);
        store.commit_if_due()?;
    }
    appender.close()?;
    store.close()?;
    Ok(())
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    // The size line of the latest checkpoint (origin, size, root hash, signatures): one small
    // file, never the ledger itself.
    let size = std::fs::read_to_string(st.log_dir.join("checkpoint"))
        .ok()
        .and_then(|t| t.lines().nth(1).and_then(|l| l.parse::<u64>().ok()));
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
        .route("/api/v1/tokens", get(list_tokens))
        .fallback(not_found)
        .layer(axum::middleware::map_response(limits::json_errors))
        .with_state(state)
}

/// `acta serve`.
pub fn run(data: &DataDir, args: ServeArgs) -> Result<ExitCode> {
    if !data.has_ledger() {
        anyhow::bail!(
            "no ledger in `{}`; ingest something first, or pass --data-dir / set ACTA_DATA_DIR",
            data.root().display()
        );
    }
    let config = config::Config::load(args.config.as_deref(), data.root())?;
    let receivers = receivers::Receivers::new(&config)?;
    let tokens_path = tokens_file(data.root());
    let mut tokens = Tokens::load(&tokens_path)?;
    let now = acta_ledger::now_ms() as i64;
    if !tokens.has_admin(now) {
        match std::env::var("ACTA_ADMIN_TOKEN") {
            Ok(t) if !t.is_empty() => {
                let r = tokens.adopt(&t, Role::Admin, "ACTA_ADMIN_TOKEN", None, now)?;
                eprintln!("acta: admin token {} taken from ACTA_ADMIN_TOKEN", r.id);
            }
            _ => {
                let (token, r) = tokens.create(Role::Admin, "first admin", None, now)?;
                eprintln!(
                    "acta: created admin token {} — shown once, keep it:\n{token}",
                    r.id
                );
            }
        }
        tokens.save(&tokens_path)?;
    }
    let index = crate::commands::open_index(data)?;
    let (jobs, queue) = std::sync::mpsc::sync_channel(INGEST_QUEUE);
    let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
    let writer_data = DataDir::new(data.root());
    let writer_ok = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ok = Arc::clone(&writer_ok);
    let writer_thread = std::thread::Builder::new()
        .name("acta-writer".into())
        .spawn(move || writer(writer_data, queue, ready_tx, ok))
        .context("cannot start the ledger writer")?;
    ready
        .recv()
        .map_err(|_| anyhow!("the ledger writer stopped"))?
        .map_err(|e| anyhow!("{e}"))?;
    let state = Arc::new(AppState {
        log_dir: data.ledger_dir().join("log"),
        tokens: Mutex::new((None, tokens)),
        tokens_path,
        index,
        ingest: jobs,
        writer_ok,
        limits: limits::Guard::new(config.limits.clone()),
        receivers,
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
        eprintln!("acta: listening on http://{addr}");
        let header_timeout = config.limits.header_timeout.get();
        limits::serve(listener, router(state), header_timeout, shutdown()).await;
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
