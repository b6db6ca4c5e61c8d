//! What one client may ask of `acta serve`: the `[limits]` of `acta.toml`.
//!
//! Every ingest route (`/api/v1/ingest` and the native receivers) passes its body through
//! [`Guard::admit`] (or its parts) once the token is known, in this order:
//!
//! 1. **rate**: a token bucket per token (`requests_per_second`, `burst`) → `429` with
//!    `Retry-After`;
//! 2. **content type**: JSON, NDJSON, text, `application/octet-stream`, gzip or none; anything
//!    else (a form, XML, multipart) → `415`; so is a `Content-Encoding` other than gzip;
//! 3. **size and time**: at most `max_body_bytes` (announced or actual) → `413`, received within
//!    `body_timeout` → `408`;
//! 4. **gzip** (declared, or recognised by its magic bytes): decompressed here, never more than
//!    `max_decompressed_bytes` → `413` — a few kilobytes of gzip cannot become gigabytes in
//!    memory, and a body is never half stored because its decompression ran over;
//! 5. **records**: framed and counted as the ingest pipeline will frame them, at most
//!    `max_records` → `413`.
//!
//! So a refused request stores nothing, and an accepted one reaches the ledger writer whole.
//! Headers are bounded by the connection loop ([`serve`]): a client that does not finish its
//! request headers within `header_timeout` (or leaves a connection idle that long) is
//! disconnected, so a slow client holds neither a connection nor a worker for long.
//!
//! Errors that axum produces itself (a malformed query string, a wrong method) are rewritten
//! into the JSON error shape by [`json_errors`], so every answer of the API is
//! `{"error": {"code", "message"}}`.

use std::collections::HashMap;
use std::io::Read as _;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acta_ingest::formats::{Format, InputNormaliser, Registry};
use acta_ingest::framing::{Framer, FramerConfig, QuotedNewlines, RecordBatch};
use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::config::Limits;
use super::{ApiError, MAX_BODY, bad_request, internal};
use crate::units;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Largest counting buffer kept for the next request: record bytes, and records.
const KEPT_COUNTING_BYTES: usize = 8 << 20;
const KEPT_COUNTING_RECORDS: usize = 64 << 10;
/// Decompressions and record counts that run at once.
const DECODING_AT_ONCE: usize = 2;

/// An API error, possibly with the seconds after which to retry.
pub(super) struct Refusal(ApiError, Option<u64>);

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal(e, None)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = self.0.into_response();
        if let Some(s) = self.1 {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
        }
        r
    }
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Refusal {
    Refusal(ApiError(status, code, message), None)
}

fn too_large(message: String) -> Refusal {
    refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
}

/// One token's bucket.
struct Bucket {
    /// Requests it may send now (fractional while refilling).
    tokens: f64,
    at: Instant,
}

/// The limits and their running state, shared by every request.
pub(super) struct Guard {
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Decompressions and record counts run on blocking threads, two at a time: their memory is
    /// bounded by the limits times two, whatever the number of clients.
    decoding: Arc<tokio::sync::Semaphore>,
    /// Buffers the record counts frame into, kept from one request to the next (one per
    /// decoding at once): a body's count then costs no fresh memory.
    counting: Arc<Mutex<Vec<RecordBatch>>>,
    registry: Arc<Registry>,
}

impl Guard {
    pub(super) fn new(limits: Limits) -> Guard {
        Guard {
            limits,
            buckets: Mutex::new(HashMap::new()),
            decoding: Arc::new(tokio::sync::Semaphore::new(DECODING_AT_ONCE)),
            counting: Arc::new(Mutex::new(Vec::new())),
            registry: Arc::new(Registry::standard()),
        }
    }

    /// The formats, for receivers that read a record before storing it.
    pub(super) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything between an authorized ingest request and the ledger writer: rate, content
    /// type, size, time, decompression, record count. The body to store.
    pub(super) async fn admit(
        &self,
        headers: &HeaderMap,
        body: Body,
        format: Option<Format>,
    ) -> Result<Vec<u8>, Refusal> {
        self.rate(headers)?;
        let gzip = content(headers)?;
        let raw = self.read(headers, body).await?;
        self.decode(raw, gzip, format).await
    }

    /// One request of the token in `headers` (already authorized) against its bucket.
    pub(super) fn rate(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let rate = self.limits.requests_per_second;
        if rate <= 0.0 {
            return Ok(());
        }
        let Some(id) = token_id(headers) else {
            return Ok(());
        };
        let burst = f64::from(self.limits.burst);
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| internal("rate limiter poisoned"))?;
        let b = buckets.entry(id.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - b.tokens) / rate).ceil();
        Err(Refusal(
            ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "token {id} sent more than {rate} requests per second (burst {}); \
                     retry after the time in Retry-After",
                    self.limits.burst
                ),
            ),
            // INVARIANT: rate > 0 and 0 <= 1 - tokens <= 1: `wait` is finite, at most 1 / rate.
            Some(wait as u64),
        ))
    }

    /// The body, whole: at most `max_body_bytes`, within `body_timeout`.
    pub(super) async fn read(&self, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Refusal> {
        let max = self.limits.max_body_bytes.get();
        let over = || {
            too_large(format!(
                "the body is larger than this server accepts ({}, `max_body_bytes` of [limits]): \
                 send smaller batches",
                units::bytes(max)
            ))
        };
        let announced = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > max) {
            return Err(over());
        }
        let timeout = self.limits.body_timeout.get();
        let read = async {
            let mut body = pin!(body);
            // What the client announced, up to 8 MiB up front; the rest as it comes.
            let mut out = Vec::with_capacity(announced.unwrap_or(0).min(8 << 20) as usize);
            while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
                let frame =
                    frame.map_err(|e| bad_request(format!("the body could not be read: {e}")))?;
                if let Ok(data) = frame.into_data() {
                    if (out.len() + data.len()) as u64 > max {
                        return Err(over());
                    }
                    out.extend_from_slice(&data);
                }
            }
            Ok(out)
        };
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            refuse(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the body did not arrive within {} (`body_timeout` of [limits])",
                    units::duration(timeout)
                ),
            )
        })?
    }

    /// The body to store: decompressed if it is gzip (`declared` by `Content-Encoding`, or by
    /// its magic bytes), and within `max_records`.
    pub(super) async fn decode(
        &self,
        raw: Vec<u8>,
        declared: bool,
        format: Option<Format>,
    ) -> Result<Vec<u8>, Refusal> {
        let gzip = raw.starts_with(&GZIP_MAGIC);
        if declared && !gzip {
            return Err(
                bad_request("`Content-Encoding: gzip`, but the body is not gzip".into()).into(),
            );
        }
        let max_records = self.limits.max_records;
        // Every record takes at least one byte and one separator: a short body cannot hold
        // too many.
        if !gzip && (raw.len() as u64).div_ceil(2) <= max_records {
            return Ok(raw);
        }
        let max_bytes = self.limits.max_decompressed_bytes.get();
        let registry = Arc::clone(&self.registry);
        let _permit = self
            .decoding
            .acquire()
            .await
            .map_err(|_| internal("the decoder pool is closed"))?;
        let counting = Arc::clone(&self.counting);
        tokio::task::spawn_blocking(move || {
            let data = if gzip { gunzip(&raw, max_bytes)? } else { raw };
            let mut batch = counting
                .lock()
                .ok()
                .and_then(|mut b| b.pop())
                .unwrap_or_default();
            let n = count_records(&registry, &data, format, max_records, &mut batch);
            // A body of one huge record, or of very many tiny ones, leaves a huge buffer: that
            // one is not kept; nor more buffers than counts run at once.
            if batch.data.capacity() <= KEPT_COUNTING_BYTES
                && batch.records.capacity() <= KEPT_COUNTING_RECORDS
                && let Ok(mut kept) = counting.lock()
                && kept.len() < DECODING_AT_ONCE
            {
                kept.push(batch);
            }
            if n > max_records {
                return Err(too_large(format!(
                    "the request holds more than {} records (`max_records` of [limits]): \
                     send smaller batches",
                    units::count(max_records)
                )));
            }
            Ok(data)
        })
        .await
        .map_err(internal)?
    }
}

/// The id of the bearer token of a request (`acta_<id>_<secret>`), for its rate bucket. Called
/// once the token is authorized, so the id is the token's own.
fn token_id(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    let (id, _) = token.strip_prefix("acta_")?.split_once('_')?;
    Some(id)
}

/// Whether the request's content type and encoding may be ingested; `true` when the body is
/// declared gzip.
pub(super) fn content(headers: &HeaderMap) -> Result<bool, Refusal> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let media = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let accepted = matches!(
            media.as_str(),
            "application/json"
                | "application/x-ndjson"
                | "application/ndjson"
                | "application/jsonl"
                | "application/x-jsonlines"
                | "application/json-seq"
                | "application/octet-stream"
                | "application/gzip"
                | "application/x-gzip"
        ) || media.starts_with("text/")
            || (media.starts_with("application/") && media.ends_with("+json"));
        if !accepted {
            let hint = if media == "application/x-www-form-urlencoded" {
                " (a GitHub webhook must be set to content type `application/json`)"
            } else {
                ""
            };
            return Err(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "content type `{}` is not accepted: send JSON, NDJSON, text or \
                     application/octet-stream, gzip or not{hint}",
                    printable(&media, 100)
                ),
            ));
        }
    }
    let mut gzip = false;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        for coding in value.to_str().unwrap_or("?").split(',') {
            match coding.trim().to_ascii_lowercase().as_str() {
                "" | "identity" => {}
                "gzip" | "x-gzip" if !gzip => gzip = true,
                other => {
                    return Err(refuse(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        format!(
                            "content encoding `{}` is not accepted: send the body plain or gzip",
                            printable(other, 100)
                        ),
                    ));
                }
            }
        }
    }
    Ok(gzip)
}

/// Text from a client (or about its request), stripped of control characters and cut to `max`
/// characters, for a message.
fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Decompresses gzip (every member), refusing to produce more than `max` bytes.
fn gunzip(raw: &[u8], max: u64) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| bad_request(format!("the gzip body is damaged: {e}")))?;
    if out.len() as u64 > max {
        return Err(too_large(format!(
            "the gzip body decompresses to more than {} (`max_decompressed_bytes` of [limits])",
            units::bytes(max)
        )));
    }
    if out.starts_with(&GZIP_MAGIC) {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the gzip body holds gzip again: compress once".into(),
        ));
    }
    Ok(out)
}

/// Records in `data` as the ingest pipeline frames and splits them (arrays, envelopes,
/// `EventList`s), counting no further than one past `max`.
fn count_records(
    registry: &Registry,
    data: &[u8],
    format: Option<Format>,
    max: u64,
    batch: &mut RecordBatch,
) -> u64 {
    let config = FramerConfig {
        max_record_bytes: MAX_BODY,
        check_json: false,
        quoted_newlines: QuotedNewlines::PGAUDIT,
    };
    let mut framer = Framer::new("request", data, config);
    let mut input = InputNormaliser::new(format);
    let mut n = 0u64;
    loop {
        batch.clear();
        let more = framer.next_batch(batch, 4 << 20).unwrap_or(false);
        let mut firsts = Vec::new();
        for (bytes, _) in batch.iter() {
            n += input
                .split(registry, bytes)
                .map_or(1, |parts| parts.len() as u64);
            if firsts.len() < 16 {
                firsts.push(bytes);
            }
        }
        // The pipeline detects the input's format on its first batch; splitting depends on it.
        input.prepare(registry, firsts);
        if n > max || !more {
            return n;
        }
    }
}

/// Rewrites the errors axum answers by itself (a query string that does not parse, a wrong
/// method, a body that is not what an extractor wanted) into the API's JSON error shape.
pub(super) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        printable(&text, 500)
    };
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let body =
        serde_json::to_vec(&serde_json::json!({"error": {"code": code, "message": message}}))
            .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// Longest wait, once shutdown is asked for, for requests under way to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then lets the requests under way finish
/// (for [`SHUTDOWN_GRACE`] at most).
///
/// Each connection is HTTP/1 with a header timeout: a client must finish a request's headers
/// within `header_timeout` of starting it — or of the previous answer on a kept-alive
/// connection — or it is disconnected. With `tls`, each connection first completes a TLS
/// handshake, within the same timeout.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (closing, closed) = tokio::sync::watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, or a connection reset before it was accepted: the
                // listener itself is fine.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Handlers see the peer's address (access records name it).
        let service = hyper_util::service::TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let closed = closed.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, service, header_timeout, closed).await,
                Some(acceptor) => {
                    // A client that never finishes its handshake is dropped like a slow one.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
                    {
                        connection(stream, service, header_timeout, closed).await;
                    }
                }
            }
        });
    }
    drop(listener);
    drop(closed);
    let _ = closing.send(());
    // Every connection holds a receiver until it is done.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, closing.closed()).await;
}

/// One HTTP/1 connection, closed gracefully when `closed` changes.
async fn connection<S, T>(
    stream: S,
    service: T,
    header_timeout: Duration,
    mut closed: tokio::sync::watch::Receiver<()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
        > + Send
        + 'static,
    T::Future: Send + 'static,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let mut conn = pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = closed.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn guard(limits: Limits) -> Guard {
        Guard::new(limits)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn records_are_counted_as_the_pipeline_frames_them() {
        let r = Registry::standard();
        let ndjson = b"{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}\n";
        assert_eq!(
            count_records(&r, ndjson, None, 100, &mut RecordBatch::new()),
            3
        );
        assert_eq!(
            count_records(&r, b"[1,2,3,4]", None, 100, &mut RecordBatch::new()),
            4
        );
        let list = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/","verb":"get","user":{"username":"u"}},{"level":"Metadata","auditID":"b","stage":"ResponseComplete","requestURI":"/","verb":"get","user":{"username":"u"}}]}"#;
        assert_eq!(
            count_records(
                &r,
                list,
                Some(Format::K8sAudit),
                100,
                &mut RecordBatch::new()
            ),
            2
        );
        // Blank lines are no records: a body holds at most one record per two bytes.
        assert_eq!(
            count_records(&r, b"\n\n\n\n a\n\r\n", None, 100, &mut RecordBatch::new()),
            1
        );
        // Counting stops at the end of the batch (4 MiB) that passes the limit.
        let many = "{}\n".repeat(3_000_000);
        let n = count_records(&r, many.as_bytes(), None, 10, &mut RecordBatch::new());
        assert!((11..3_000_000).contains(&n), "{n}");
        assert_eq!(
            count_records(
                &r,
                many.as_bytes(),
                None,
                3_000_000,
                &mut RecordBatch::new()
            ),
            3_000_000
        );
    }

    #[test]
    fn content_types_and_encodings() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/x-ndjson",
            "text/plain",
            "application/octet-stream",
            "application/vnd.github+json",
        ] {
            assert!(content(&headers(&[("content-type", ok)])).is_ok(), "{ok}");
        }
        assert!(!content(&HeaderMap::new()).ok().unwrap());
        for bad in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "image/png",
        ] {
            let r = content(&headers(&[("content-type", bad)])).err().unwrap();
            assert_eq!(r.0.0, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad}");
        }
        assert!(
            content(&headers(&[("content-encoding", "gzip")]))
                .ok()
                .unwrap()
        );
        let r = content(&headers(&[("content-encoding", "br")]))
            .err()
            .unwrap();
        assert_eq!(r.0.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let r = content(&headers(&[("content-encoding", "gzip, gzip")]))
            .err()
            .unwrap();
        assert_eq!(r.0.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn gzip_is_bounded() {
        let big = vec![b'{'; 10 << 20];
        let bomb = gzip(&big);
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let r = gunzip(&bomb, 1 << 20).err().unwrap();
        assert_eq!(r.0.0, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(gunzip(&gzip(b"{}\n"), 100).ok().unwrap(), b"{}\n");
        let r = gunzip(&gzip(&gzip(b"{}")), 1000).err().unwrap();
        assert_eq!(r.0.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let r = gunzip(&[0x1f, 0x8b, 8, 0, 1, 2, 3], 1000).err().unwrap();
        assert_eq!(r.0.0, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn buckets_refill_at_the_rate() {
        let g = guard(Limits {
            requests_per_second: 1.0,
            burst: 2,
            ..Limits::default()
        });
        let a = headers(&[(
            "authorization",
            "Bearer acta_0123456789ab_secretsecretsecret",
        )]);
        let b = headers(&[(
            "authorization",
            "Bearer acta_ba9876543210_secretsecretsecret",
        )]);
        assert!(g.rate(&a).is_ok());
        assert!(g.rate(&a).is_ok());
        let r = g.rate(&a).err().unwrap();
        assert_eq!(r.0.0, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.1, Some(1));
        // Another token has its own bucket.
        assert!(g.rate(&b).is_ok());
        let unlimited = guard(Limits {
            requests_per_second: 0.0,
            ..Limits::default()
        });
        for _ in 0..10_000 {
            assert!(unlimited.rate(&a).is_ok());
        }
    }
}
