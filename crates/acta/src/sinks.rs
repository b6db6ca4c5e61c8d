//! Alert sinks: where acta delivers each alert besides its ledger.
//!
//! An alert is an OCSF Detection Finding (class 2004), serialised once; the sinks receive those
//! exact bytes. Four kinds of sink exist:
//!
//! - `webhook`: an HTTP POST of the finding (`Content-Type: application/json`), signed with
//!   `X-Acta-Signature: sha256=<hex HMAC-SHA256(secret, body)>` when a secret is configured, and
//!   carrying `X-Acta-Delivery: <finding uid>` so that receivers can drop repeated deliveries.
//! - `slack`: a Slack-compatible incoming webhook; the body is `{"text": "<one-line summary>"}`.
//! - `syslog`: RFC 5424 messages over UDP, TCP (octet-counted framing, RFC 6587) or a unix
//!   datagram socket such as `/dev/log`; the message text is the finding JSON.
//! - `file`: the findings as NDJSON, appended to a file (or written to standard output).
//!
//! Each sink has a bounded queue and a worker thread of its own, so [`Sinks::send`] never waits
//! for a slow or unreachable receiver: when a sink's queue is full, the alert is dropped for that
//! sink and counted. Nothing is lost for good that way — every alert is in the ledger regardless
//! of what its sinks did, and the reports say how many alerts each sink missed. Failed HTTP and
//! syslog deliveries are retried with exponential backoff; [`Sinks::finish`] waits for the
//! queues to drain up to a deadline and reports, per sink, what was delivered, failed after its
//! retries, dropped, and still pending when the deadline passed.
//!
//! Delivery means: for HTTP sinks, a 2xx answer (5xx, 408, 429, timeouts and connection errors
//! are retried, honouring `Retry-After` in seconds; other answers, redirects included, fail at
//! once); for syslog, the message handed to the socket (syslog has no acknowledgement); for a
//! file, the line written and flushed (a write error fails the alert, without retry). HTTP sinks
//! go through the proxy named by the first of `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY` that is
//! set (or its lower-case form), except for `NO_PROXY` hosts.
//!
//! Sink names in reports and errors never show secrets: a webhook shows its URL without
//! credentials, query or long path segments (which often are tokens); a Slack webhook's URL is
//! itself the secret, so only its scheme and host are shown.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use acta_ingest::formats::time::format_rfc3339;
use anyhow::{Context, Result, anyhow, bail};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use ureq::http::Uri;

/// Alerts a sink queues, by default, before it drops new ones.
pub const DEFAULT_QUEUE: usize = 10_000;
/// Attempts per alert, by default, for the sinks that retry (webhook, Slack, syslog).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
/// The first retry's delay, by default; each further retry doubles it.
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 500;
/// The longest delay between two attempts, by default.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 30_000;
/// Time allowed to open a connection, by default.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Time allowed for one whole attempt (connection, request and response), by default.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest syslog message, header included, by default: what common receivers accept.
pub const DEFAULT_SYSLOG_MAX_BYTES: usize = 8_192;

/// The largest queue a sink may be configured with.
const MAX_QUEUE: usize = 1_000_000;
/// The longest backoff or timeout that may be configured: an hour.
const MAX_WAIT_MS: u64 = 3_600_000;
/// RFC 5426: every receiver accepts messages of 480 bytes.
const MIN_SYSLOG_BYTES: usize = 480;
/// The largest UDP payload over IPv4.
const MAX_UDP_BYTES: usize = 65_507;
const MAX_SYSLOG_BYTES: usize = 1 << 20;
/// How much of an HTTP error response's body is kept for the report.
const ERROR_BODY_BYTES: u64 = 256;
/// Path segments at least this long are hidden in webhook names: they are often tokens.
const LONG_SEGMENT: usize = 16;
/// Slack shows a few thousand characters of a message at most; longer text is cut.
const SLACK_MAX_CHARS: usize = 3_000;

// ---------------------------------------------------------------------------------------------
// Alerts

/// One alert as the sinks see it: the serialised finding and the few fields that the text
/// sinks (Slack, syslog) show.
#[derive(Debug, Clone)]
pub struct Alert {
    /// `finding_info.uid`; webhooks send it as `X-Acta-Delivery`.
    pub uid: String,
    /// `finding_info.title`, the rule's title.
    pub title: String,
    /// OCSF severity name (`High`).
    pub severity: String,
    /// OCSF `severity_id` (0 unknown, 1 informational … 5 critical, 6 fatal, 99 other).
    pub severity_id: u8,
    /// `actor.user.name`, when known.
    pub actor: Option<String>,
    /// The finding's one-line `message`.
    pub message: String,
    /// The finding's `time` (when the alert was raised), epoch milliseconds.
    pub time_ms: i64,
    /// The finding as serialised: exactly what the ledger holds.
    pub json: Arc<str>,
}

/// Alerts read back from a serialised finding, as a receiver would (the tests' view).
#[cfg(test)]
mod from_finding {
    use super::*;

    #[derive(Deserialize)]
    struct FindingView {
        time: Option<i64>,
        severity_id: Option<u8>,
        severity: Option<String>,
        message: Option<String>,
        finding_info: Option<FindingInfoView>,
        actor: Option<ActorView>,
    }

    #[derive(Deserialize)]
    struct FindingInfoView {
        uid: String,
        title: Option<String>,
    }

    #[derive(Deserialize)]
    struct ActorView {
        user: Option<UserView>,
    }

    #[derive(Deserialize)]
    struct UserView {
        name: Option<String>,
    }

    impl Alert {
        /// The alert for a serialised Detection Finding; its `finding_info.uid` is required.
        pub fn from_finding(json: Arc<str>) -> Result<Alert> {
            let view: FindingView =
                serde_json::from_str(&json).context("the alert is not a valid finding")?;
            let info = view
                .finding_info
                .ok_or_else(|| anyhow!("the finding has no finding_info.uid"))?;
            let severity_id = view.severity_id.unwrap_or(0);
            Ok(Alert {
                uid: info.uid,
                title: info.title.unwrap_or_default(),
                severity: view.severity.unwrap_or_else(|| {
                    acta_event::Severity::from_id(severity_id).name().to_owned()
                }),
                severity_id,
                actor: view.actor.and_then(|a| a.user).and_then(|u| u.name),
                message: view.message.unwrap_or_default(),
                time_ms: view.time.unwrap_or(0),
                json,
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// One `[[sink]]` of the configuration, by its `type`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SinkConfig {
    Webhook(WebhookConfig),
    Slack(SlackConfig),
    Syslog(SyslogConfig),
    File(FileConfig),
}

/// `type = "webhook"`: the finding JSON, POSTed and optionally signed.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Name of the environment variable holding the signing secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret (trailing whitespace ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_queue")]
    pub queue: usize,
}

/// `type = "slack"`: a one-line summary to a Slack-compatible incoming webhook.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook's URL (a secret: reports show its scheme and host only).
    pub url: String,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_queue")]
    pub queue: usize,
}

/// `type = "syslog"`: RFC 5424 messages.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `udp://host:port`, `tcp://host:port` (port 514 when left out) or `unix:///dev/log`.
    pub address: String,
    /// Facility name (`authpriv`, `local0`…); `authpriv` by default.
    #[serde(default = "default_facility")]
    pub facility: String,
    /// APP-NAME; `acta` by default.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME; the machine's host name by default.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Largest message, header included (8 KiB by default; 480 to 65,507 bytes over UDP, up to
    /// 1 MiB otherwise); a finding that does not fit is sent shortened, with its uid, title,
    /// severity, actor and message.
    #[serde(default = "default_syslog_max_bytes")]
    pub max_message_bytes: usize,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_queue")]
    pub queue: usize,
}

/// `type = "file"`: NDJSON, one finding per line, flushed per alert.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// File appended to (created if missing); `-` is standard output.
    pub path: PathBuf,
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}
fn default_initial_backoff_ms() -> u64 {
    DEFAULT_INITIAL_BACKOFF_MS
}
fn default_max_backoff_ms() -> u64 {
    DEFAULT_MAX_BACKOFF_MS
}
fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_queue() -> usize {
    DEFAULT_QUEUE
}
fn default_facility() -> String {
    "authpriv".to_owned()
}
fn default_app_name() -> String {
    "acta".to_owned()
}
fn default_syslog_max_bytes() -> usize {
    DEFAULT_SYSLOG_MAX_BYTES
}

// The URLs may carry tokens: their Debug output shows what the reports show.
impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &shown_url(&self.url, true))
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff_ms", &self.initial_backoff_ms)
            .field("max_backoff_ms", &self.max_backoff_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("queue", &self.queue)
            .finish()
    }
}

impl fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackConfig")
            .field("url", &shown_url(&self.url, false))
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff_ms", &self.initial_backoff_ms)
            .field("max_backoff_ms", &self.max_backoff_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("queue", &self.queue)
            .finish()
    }
}

impl SinkConfig {
    /// The sink's name in reports and errors, without secrets.
    pub fn name(&self) -> String {
        match self {
            SinkConfig::Webhook(c) => format!("webhook {}", shown_url(&c.url, true)),
            SinkConfig::Slack(c) => format!("slack {}", shown_url(&c.url, false)),
            SinkConfig::Syslog(c) => format!("syslog {}", c.address),
            SinkConfig::File(c) if c.path.as_os_str() == "-" => "file stdout".to_owned(),
            SinkConfig::File(c) => format!("file {}", c.path.display()),
        }
    }

    /// Checks the configuration and prepares the sink (nothing is sent, no host is contacted).
    fn build(&self) -> Result<Built> {
        match self {
            SinkConfig::Webhook(c) => {
                let uri = http_uri(&c.url)?;
                let secret = webhook_secret(c)?;
                let policy =
                    RetryPolicy::new(c.max_attempts, c.initial_backoff_ms, c.max_backoff_ms)?;
                let timeouts = Timeouts::new(c.connect_timeout_ms, c.timeout_ms)?;
                Ok(Built {
                    transport: Box::new(Http::new(
                        uri,
                        HttpKind::Webhook { key: secret },
                        timeouts,
                    )),
                    policy,
                    queue: queue_size(c.queue)?,
                })
            }
            SinkConfig::Slack(c) => {
                let uri = http_uri(&c.url)?;
                let policy =
                    RetryPolicy::new(c.max_attempts, c.initial_backoff_ms, c.max_backoff_ms)?;
                let timeouts = Timeouts::new(c.connect_timeout_ms, c.timeout_ms)?;
                Ok(Built {
                    transport: Box::new(Http::new(uri, HttpKind::Slack, timeouts)),
                    policy,
                    queue: queue_size(c.queue)?,
                })
            }
            SinkConfig::Syslog(c) => {
                let policy =
                    RetryPolicy::new(c.max_attempts, c.initial_backoff_ms, c.max_backoff_ms)?;
                let timeouts = Timeouts::new(c.connect_timeout_ms, c.timeout_ms)?;
                Ok(Built {
                    transport: Box::new(Syslog::new(c, timeouts)?),
                    policy,
                    queue: queue_size(c.queue)?,
                })
            }
            SinkConfig::File(c) => Ok(Built {
                transport: Box::new(FileSink::open(&c.path)?),
                policy: RetryPolicy::once(),
                queue: queue_size(c.queue)?,
            }),
        }
    }
}

fn queue_size(n: usize) -> Result<usize> {
    if n == 0 || n > MAX_QUEUE {
        bail!("queue must be between 1 and {MAX_QUEUE}, not {n}");
    }
    Ok(n)
}

/// An `http://` or `https://` URL with a host.
fn http_uri(url: &str) -> Result<Uri> {
    let uri: Uri = url.parse().map_err(|_| anyhow!("url is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => bail!("url scheme must be http or https, not {other}"),
        None => bail!("url must start with http:// or https://"),
    }
    if uri.host().is_none_or(str::is_empty) {
        bail!("url has no host");
    }
    Ok(uri)
}

/// What a report shows of a URL: scheme, host and port, and for webhooks the path with long
/// segments hidden. Credentials and the query never appear.
fn shown_url(url: &str, with_path: bool) -> String {
    let Ok(uri) = url.parse::<Uri>() else {
        return "(invalid url)".to_owned();
    };
    let mut shown = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("?"),
        uri.host().unwrap_or("?")
    );
    if let Some(port) = uri.port_u16() {
        shown.push_str(&format!(":{port}"));
    }
    if with_path {
        for segment in uri.path().split('/').skip(1) {
            shown.push('/');
            if segment.len() >= LONG_SEGMENT {
                shown.push('…');
            } else {
                shown.push_str(segment);
            }
        }
    }
    shown
}

/// The webhook's signing key, if a secret is configured.
fn webhook_secret(c: &WebhookConfig) -> Result<Option<Hmac<Sha256>>> {
    let secret = match (&c.secret_env, &c.secret_file) {
        (Some(_), Some(_)) => bail!("set secret_env or secret_file, not both"),
        (None, None) => return Ok(None),
        (Some(var), None) => match std::env::var(var) {
            Ok(value) => value.into_bytes(),
            Err(std::env::VarError::NotPresent) => {
                bail!("secret_env {var}: the environment variable is not set")
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("secret_env {var}: the environment variable is not valid UTF-8")
            }
        },
        (None, Some(path)) => {
            let mut bytes = std::fs::read(path)
                .with_context(|| format!("cannot read secret_file {}", path.display()))?;
            let kept = bytes
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .map_or(0, |i| i + 1);
            bytes.truncate(kept);
            bytes
        }
    };
    if secret.is_empty() {
        bail!("the webhook secret is empty");
    }
    hmac_sha256(&secret)
        .map(Some)
        .ok_or_else(|| anyhow!("the webhook secret cannot key HMAC-SHA256"))
}

/// HMAC-SHA256 keyed with `secret`.
fn hmac_sha256(secret: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length: this never fails.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`: the `X-Acta-Signature` of a body, with
/// `key` the keyed HMAC.
fn signature(key: &Hmac<Sha256>, body: &[u8]) -> String {
    let mut mac = key.clone();
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut header = String::with_capacity(7 + tag.len() * 2);
    header.push_str("sha256=");
    for b in tag {
        header.push(hex_digit(b >> 4));
        header.push(hex_digit(b & 0xf));
    }
    header
}

/// Whether `header` (an `X-Acta-Signature` value) is the signature of `body` under `secret`.
/// The comparison takes the same time wherever the signatures differ. (What a receiver runs; the
/// tests check every signature sent with it.)
#[cfg(test)]
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let (Some(tag), Some(mut mac)) = (decode_hex(hex), hmac_sha256(secret)) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

fn hex_digit(nibble: u8) -> char {
    char::from(
        b"0123456789abcdef"
            .get(usize::from(nibble))
            .copied()
            .unwrap_or(b'0'),
    )
}

#[cfg(test)]
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running sinks

/// The delivery counts of a set of sinks, readable from any thread ([`Sinks::monitor`]).
#[derive(Debug, Clone, Default)]
pub struct SinkMonitor(Vec<(String, Arc<Stats>)>);

impl SinkMonitor {
    /// What each sink has done so far.
    pub fn reports(&self) -> Vec<SinkReport> {
        self.0.iter().map(|(name, s)| s.report(name)).collect()
    }
}

/// The running sinks: one bounded queue and one worker thread each.
#[derive(Debug)]
pub struct Sinks {
    sinks: Vec<Handle>,
    control: Arc<Control>,
    /// Worker ends, by index; in a mutex so that `Sinks` can be shared between threads.
    done: Mutex<Receiver<usize>>,
}

#[derive(Debug)]
struct Handle {
    name: String,
    queue: SyncSender<Arc<Alert>>,
    stats: Arc<Stats>,
}

/// What one sink did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkReport {
    /// `webhook http://127.0.0.1:9000/hook`, `slack https://hooks.slack.com`… (no secrets).
    pub name: String,
    /// Alerts the receiver accepted.
    pub delivered: u64,
    /// Alerts given up on: a permanent error, or every attempt failed.
    pub failed: u64,
    /// Alerts not queued because the sink's queue was full.
    pub dropped: u64,
    /// Alerts still queued or being retried (when the report was taken, or at the deadline).
    pub pending: u64,
    /// The latest error, if any.
    pub last_error: Option<String>,
}

impl fmt::Display for SinkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} delivered, {} failed, {} dropped, {} pending",
            self.name, self.delivered, self.failed, self.dropped, self.pending
        )?;
        if let Some(error) = &self.last_error {
            write!(f, " (last error: {error})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    fn set_error(&self, error: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    fn report(&self, name: &str) -> SinkReport {
        let delivered = self.delivered.load(Ordering::Acquire);
        let failed = self.failed.load(Ordering::Acquire);
        let accepted = self.accepted.load(Ordering::Acquire);
        SinkReport {
            name: name.to_owned(),
            delivered,
            failed,
            dropped: self.dropped.load(Ordering::Acquire),
            pending: accepted.saturating_sub(delivered + failed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

/// The deadline shared with the workers, set by [`Sinks::finish`].
#[derive(Debug, Default)]
struct Control {
    deadline: Mutex<Option<Instant>>,
    wake: Condvar,
}

impl Control {
    fn set_deadline(&self, at: Instant) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
        self.wake.notify_all();
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expired(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Time left before the deadline, if one is set.
    fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Waits `wait`; false (at once) when the deadline passes before the wait would end.
    fn sleep(&self, wait: Duration) -> bool {
        let end = later(wait);
        let mut deadline = self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if deadline.is_some_and(|d| end > d) {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            deadline = match self.wake.wait_timeout(deadline, end - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// `wait` from now (or a century, for longer waits).
fn later(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Tells [`Sinks::finish`] that a worker has ended, however it ends.
struct DoneGuard {
    done: Sender<usize>,
    index: usize,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        // `finish` may have stopped waiting already.
        let _ = self.done.send(self.index);
    }
}

struct Built {
    transport: Box<dyn Transport>,
    policy: RetryPolicy,
    queue: usize,
}

impl Sinks {
    /// Checks every sink's configuration and starts one worker per sink. A bad configuration
    /// (URL scheme, missing secret, unwritable file…) is an error naming the sink; a receiver
    /// that cannot be reached is not: its alerts fail and are reported.
    pub fn start(configs: &[SinkConfig]) -> Result<Sinks> {
        let mut built = Vec::with_capacity(configs.len());
        for (i, config) in configs.iter().enumerate() {
            let name = config.name();
            let sink = config
                .build()
                .with_context(|| format!("sink {} ({name})", i + 1))?;
            built.push((name, sink));
        }
        let control = Arc::new(Control::default());
        let (done_tx, done) = mpsc::channel();
        let mut sinks = Vec::with_capacity(built.len());
        for (index, (name, sink)) in built.into_iter().enumerate() {
            let (queue, rx) = mpsc::sync_channel(sink.queue);
            let stats = Arc::new(Stats::default());
            let worker = Worker {
                transport: sink.transport,
                policy: sink.policy,
                stats: Arc::clone(&stats),
                control: Arc::clone(&control),
            };
            let guard = DoneGuard {
                done: done_tx.clone(),
                index,
            };
            thread::Builder::new()
                .name(format!("acta-sink-{}", index + 1))
                .spawn(move || worker.run(&rx, guard))
                .with_context(|| format!("sink {} ({name}): cannot start its thread", index + 1))?;
            sinks.push(Handle { name, queue, stats });
        }
        Ok(Sinks {
            sinks,
            control,
            done: Mutex::new(done),
        })
    }

    /// Queues the alert for every sink, without waiting: a sink whose queue is full drops it
    /// (and counts it). The ledger holds every alert regardless.
    pub fn send(&self, alert: Alert) {
        if self.sinks.is_empty() {
            return;
        }
        let alert = Arc::new(alert);
        for sink in &self.sinks {
            let counter = match sink.queue.try_send(Arc::clone(&alert)) {
                Ok(()) => &sink.stats.accepted,
                Err(_) => &sink.stats.dropped,
            };
            counter.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The sinks' delivery counts, for another thread to report while they run.
    pub fn monitor(&self) -> SinkMonitor {
        SinkMonitor(
            self.sinks
                .iter()
                .map(|s| (s.name.clone(), Arc::clone(&s.stats)))
                .collect(),
        )
    }

    /// Stops taking alerts, lets the sinks deliver what they hold until `deadline` has passed,
    /// and reports. Alerts not delivered by then are reported as pending; a worker still busy
    /// (in a request, which is cut short at the deadline) is left to end on its own.
    pub fn finish(self, deadline: Duration) -> Vec<SinkReport> {
        let until = later(deadline);
        self.control.set_deadline(until);
        let Sinks {
            sinks,
            control: _,
            done,
        } = self;
        let done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
        let mut running = sinks.len();
        // Closing the queues: each worker ends once its queue is empty.
        let named: Vec<(String, Arc<Stats>)> =
            sinks.into_iter().map(|s| (s.name, s.stats)).collect();
        while running > 0 {
            let left = until.saturating_duration_since(Instant::now());
            match done.recv_timeout(left) {
                Ok(_) => running -= 1,
                Err(_) => break,
            }
        }
        named
            .iter()
            .map(|(name, stats)| stats.report(name))
            .collect()
    }
}

struct Worker {
    transport: Box<dyn Transport>,
    policy: RetryPolicy,
    stats: Arc<Stats>,
    control: Arc<Control>,
}

impl Worker {
    fn run(mut self, queue: &Receiver<Arc<Alert>>, _done: DoneGuard) {
        let mut jitter = Jitter::new();
        while let Ok(alert) = queue.recv() {
            match self.deliver(&alert, &mut jitter) {
                Outcome::Delivered => {
                    self.stats.delivered.fetch_add(1, Ordering::AcqRel);
                }
                Outcome::Failed(error) => {
                    self.stats.set_error(error);
                    self.stats.failed.fetch_add(1, Ordering::AcqRel);
                }
                // The deadline has passed: what is left stays pending.
                Outcome::Abandoned => break,
            }
        }
    }

    fn deliver(&mut self, alert: &Alert, jitter: &mut Jitter) -> Outcome {
        let mut backoff = self.policy.initial_backoff;
        let mut attempt = 1;
        loop {
            if self.control.expired() {
                return Outcome::Abandoned;
            }
            match self.transport.attempt(alert, self.control.remaining()) {
                Attempt::Done => return Outcome::Delivered,
                Attempt::Fail(error) => return Outcome::Failed(error),
                Attempt::Retry { error, after } => {
                    if attempt >= self.policy.max_attempts {
                        let tries = if attempt == 1 { "attempt" } else { "attempts" };
                        return Outcome::Failed(format!("{error} ({attempt} {tries})"));
                    }
                    self.stats.set_error(error);
                    let wait = match after {
                        Some(after) => after.min(self.policy.max_backoff),
                        None => jitter.spread(backoff),
                    };
                    backoff = backoff.saturating_mul(2).min(self.policy.max_backoff);
                    if !self.control.sleep(wait) {
                        return Outcome::Abandoned;
                    }
                    attempt += 1;
                }
            }
        }
    }
}

enum Outcome {
    Delivered,
    Failed(String),
    Abandoned,
}

/// The result of one delivery attempt.
enum Attempt {
    Done,
    /// A transient error: try again, after `after` when the receiver said so.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// A permanent error: give up on this alert.
    Fail(String),
}

/// One way of delivering an alert.
trait Transport: Send {
    /// Tries once; `budget` is the time left before the deadline, if one is set.
    fn attempt(&mut self, alert: &Alert, budget: Option<Duration>) -> Attempt;
}

#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl RetryPolicy {
    fn new(max_attempts: u32, initial_ms: u64, max_ms: u64) -> Result<RetryPolicy> {
        if max_attempts == 0 {
            bail!("max_attempts must be at least 1");
        }
        if max_ms > MAX_WAIT_MS {
            bail!("max_backoff_ms must be at most {MAX_WAIT_MS}");
        }
        if initial_ms > max_ms {
            bail!("initial_backoff_ms ({initial_ms}) is larger than max_backoff_ms ({max_ms})");
        }
        Ok(RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
        })
    }

    fn once() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    connect: Duration,
    total: Duration,
}

impl Timeouts {
    fn new(connect_ms: u64, total_ms: u64) -> Result<Timeouts> {
        if connect_ms == 0 || total_ms == 0 {
            bail!("connect_timeout_ms and timeout_ms must be at least 1");
        }
        if connect_ms > MAX_WAIT_MS || total_ms > MAX_WAIT_MS {
            bail!("connect_timeout_ms and timeout_ms must be at most {MAX_WAIT_MS}");
        }
        Ok(Timeouts {
            connect: Duration::from_millis(connect_ms),
            total: Duration::from_millis(total_ms),
        })
    }

    /// The time one attempt may take: the configured time, or less near the deadline.
    fn limit(&self, budget: Option<Duration>) -> Duration {
        budget.map_or(self.total, |b| {
            b.min(self.total).max(Duration::from_millis(1))
        })
    }
}

/// Spreads retry delays so that sinks failing together do not retry together: a delay `d`
/// becomes a random delay between `d/2` and `d`.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        // A fresh `RandomState` is randomly keyed: a seed without a random-number crate.
        Jitter(RandomState::new().hash_one(0x5eed_u64) | 1)
    }

    fn spread(&mut self, delay: Duration) -> Duration {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let half = delay / 2;
        let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.0 % span.saturating_add(1))
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP: webhook and Slack

enum HttpKind {
    /// `key`: HMAC-SHA256 keyed with the secret, when one is configured.
    Webhook {
        key: Option<Hmac<Sha256>>,
    },
    Slack,
}

struct Http {
    agent: ureq::Agent,
    uri: Uri,
    kind: HttpKind,
    timeouts: Timeouts,
}

impl Http {
    fn new(uri: Uri, kind: HttpKind, timeouts: Timeouts) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirected POST is not followed: the signature was made for this receiver.
            .max_redirects(0)
            .timeout_connect(Some(timeouts.connect))
            .timeout_global(Some(timeouts.total))
            .user_agent(concat!("acta/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http {
            agent,
            uri,
            kind,
            timeouts,
        }
    }

    /// An error text without the URL (which may hold a token).
    fn clean(&self, error: &ureq::Error) -> String {
        let text = error.to_string();
        let url = self.uri.to_string();
        let shown = shown_url(&url, matches!(self.kind, HttpKind::Webhook { .. }));
        text.replace(&url, &shown)
    }
}

impl Transport for Http {
    fn attempt(&mut self, alert: &Alert, budget: Option<Duration>) -> Attempt {
        let request = self
            .agent
            .post(&self.uri)
            .config()
            .timeout_global(Some(self.timeouts.limit(budget)))
            .build()
            .header("Content-Type", "application/json");
        let result = match &self.kind {
            HttpKind::Webhook { key } => {
                let body = alert.json.as_bytes();
                let mut request = request.header("X-Acta-Delivery", alert.uid.as_str());
                if let Some(key) = key {
                    request = request.header("X-Acta-Signature", signature(key, body));
                }
                request.send(body)
            }
            HttpKind::Slack => request.send(slack_body(alert).as_bytes()),
        };
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let mut body = Vec::new();
                let read = response
                    .body_mut()
                    .as_reader()
                    .take(ERROR_BODY_BYTES)
                    .read_to_end(&mut body);
                if (200..300).contains(&status) {
                    return Attempt::Done;
                }
                let mut error = format!("HTTP {status}");
                if read.is_ok() {
                    let text = String::from_utf8_lossy(&body);
                    let text = one_line(text.trim());
                    if !text.is_empty() {
                        error.push_str(": ");
                        error.push_str(&text);
                    }
                }
                if status == 408 || status == 429 || status >= 500 {
                    Attempt::Retry {
                        error,
                        after: retry_after,
                    }
                } else {
                    Attempt::Fail(error)
                }
            }
            Err(e) => {
                let error = self.clean(&e);
                match e {
                    ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::HostNotFound
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::Protocol(_) => Attempt::Retry { error, after: None },
                    _ => Attempt::Fail(error),
                }
            }
        }
    }
}

/// The Slack message: `{"text": ":rotating_light: [High] <title> — <actor> — <message>"}`.
fn slack_body(alert: &Alert) -> String {
    serde_json::json!({ "text": slack_text(alert) }).to_string()
}

fn slack_text(alert: &Alert) -> String {
    let mut text = format!(":rotating_light: [{}] {}", alert.severity, alert.title);
    if let Some(actor) = &alert.actor {
        text.push_str(" — ");
        text.push_str(actor);
    }
    if !alert.message.is_empty() {
        text.push_str(" — ");
        text.push_str(&alert.message);
    }
    let mut text = one_line(&text);
    if let Some((cut, _)) = text.char_indices().nth(SLACK_MAX_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    // Slack's markup: these three characters are control characters in message text.
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The text on one line: line breaks and other control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Syslog

enum Target {
    Udp(String),
    Tcp(String),
    #[cfg(unix)]
    Unix(PathBuf),
}

enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixDatagram),
}

/// The RFC 5424 header fields fixed for a sink.
#[derive(Debug, Clone)]
struct SyslogHeader {
    facility: u8,
    hostname: String,
    app_name: String,
    procid: String,
}

struct Syslog {
    target: Target,
    connection: Option<Connection>,
    header: SyslogHeader,
    max_bytes: usize,
    timeouts: Timeouts,
}

/// Facility names and numbers (RFC 5424 §6.2.1, with the names of syslog(3)).
const FACILITIES: [(&str, u8); 24] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("alert", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Syslog severity for an OCSF `severity_id`: informational → info, low → notice, medium →
/// warning, high → err, critical → crit, fatal → alert; unknown and other → notice.
fn syslog_severity(severity_id: u8) -> u8 {
    match severity_id {
        1 => 6,
        3 => 4,
        4 => 3,
        5 => 2,
        6 => 1,
        _ => 5,
    }
}

/// A header field: printable ASCII without spaces, of bounded length.
fn header_field(what: &str, value: &str, max: usize) -> Result<String> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| (33..=126).contains(&b)) {
        bail!("{what} must be 1 to {max} printable ASCII characters without spaces: {value:?}");
    }
    Ok(value.to_owned())
}

/// The machine's host name for the HOSTNAME field, or the nil value `-`.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|name| header_field("hostname", name.trim(), 255).ok())
        .unwrap_or_else(|| "-".to_owned())
}

/// `host:port`, with port 514 when none is given; IPv6 addresses in brackets.
fn host_port(rest: &str) -> Result<String> {
    if rest.is_empty() || rest.contains('/') {
        bail!("address must be udp://host:port or tcp://host:port");
    }
    if let Some(v6) = rest.strip_prefix('[') {
        return match v6.split_once(']') {
            Some((_, "")) => Ok(format!("{rest}:514")),
            Some((_, port)) if port.strip_prefix(':').is_some_and(valid_port) => {
                Ok(rest.to_owned())
            }
            _ => bail!("address has an invalid port: {rest}"),
        };
    }
    match rest.split_once(':') {
        None => Ok(format!("{rest}:514")),
        Some((host, port)) if !host.is_empty() && valid_port(port) => Ok(rest.to_owned()),
        Some((_, port)) if port.contains(':') => {
            bail!("put IPv6 addresses in brackets: [{rest}]:514")
        }
        Some(_) => bail!("address has an invalid host or port: {rest}"),
    }
}

fn valid_port(port: &str) -> bool {
    port.parse::<u16>().is_ok_and(|p| p != 0)
}

impl Syslog {
    fn new(c: &SyslogConfig, timeouts: Timeouts) -> Result<Syslog> {
        let target = if let Some(rest) = c.address.strip_prefix("udp://") {
            Target::Udp(host_port(rest)?)
        } else if let Some(rest) = c.address.strip_prefix("tcp://") {
            Target::Tcp(host_port(rest)?)
        } else if let Some(path) = c.address.strip_prefix("unix://") {
            unix_target(path)?
        } else {
            bail!("address must start with udp://, tcp:// or unix://");
        };
        let facility = FACILITIES
            .iter()
            .find(|(name, _)| *name == c.facility)
            .map(|(_, n)| *n)
            .ok_or_else(|| {
                anyhow!(
                    "unknown facility {:?}; one of kern, user, mail, daemon, auth, syslog, lpr, \
                     news, uucp, cron, authpriv, ftp, ntp, audit, alert, clock, local0…local7",
                    c.facility
                )
            })?;
        let hostname = match &c.hostname {
            Some(name) => header_field("hostname", name, 255)?,
            None => local_hostname(),
        };
        let app_name = header_field("app_name", &c.app_name, 48)?;
        let max = if matches!(target, Target::Udp(_)) {
            MAX_UDP_BYTES
        } else {
            MAX_SYSLOG_BYTES
        };
        if !(MIN_SYSLOG_BYTES..=max).contains(&c.max_message_bytes) {
            bail!(
                "max_message_bytes must be between {MIN_SYSLOG_BYTES} and {max}, not {}",
                c.max_message_bytes
            );
        }
        Ok(Syslog {
            target,
            connection: None,
            header: SyslogHeader {
                facility,
                hostname,
                app_name,
                procid: std::process::id().to_string(),
            },
            max_bytes: c.max_message_bytes,
            timeouts,
        })
    }

    fn connect(&self) -> io::Result<Connection> {
        match &self.target {
            Target::Udp(address) => {
                let mut last = None;
                for addr in address.to_socket_addrs()? {
                    let local = if addr.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    match UdpSocket::bind(local).and_then(|s| s.connect(addr).map(|()| s)) {
                        Ok(socket) => return Ok(Connection::Udp(socket)),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| no_address(address)))
            }
            Target::Tcp(address) => {
                let mut last = None;
                for addr in address.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, self.timeouts.connect) {
                        Ok(stream) => {
                            stream.set_write_timeout(Some(self.timeouts.total))?;
                            stream.set_nodelay(true)?;
                            return Ok(Connection::Tcp(stream));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| no_address(address)))
            }
            #[cfg(unix)]
            Target::Unix(path) => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(path)?;
                socket.set_write_timeout(Some(self.timeouts.total))?;
                Ok(Connection::Unix(socket))
            }
        }
    }
}

#[cfg(unix)]
fn unix_target(path: &str) -> Result<Target> {
    if !path.starts_with('/') {
        bail!("a unix:// address needs an absolute path: unix:///dev/log");
    }
    Ok(Target::Unix(PathBuf::from(path)))
}

#[cfg(not(unix))]
fn unix_target(_path: &str) -> Result<Target> {
    bail!("unix:// addresses exist only on unix systems")
}

fn no_address(address: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{address} resolves to no address"),
    )
}

impl Transport for Syslog {
    fn attempt(&mut self, alert: &Alert, _budget: Option<Duration>) -> Attempt {
        let message = syslog_message(alert, &self.header, self.max_bytes);
        let connection = match self.connection.take() {
            Some(c) => c,
            None => match self.connect() {
                Ok(c) => c,
                Err(e) => {
                    return Attempt::Retry {
                        error: format!("cannot connect: {e}"),
                        after: None,
                    };
                }
            },
        };
        let sent = match &connection {
            Connection::Udp(socket) => socket.send(&message).map(drop),
            Connection::Tcp(stream) => {
                // RFC 6587 octet counting: `LENGTH SP MESSAGE`.
                let mut framed = format!("{} ", message.len()).into_bytes();
                framed.extend_from_slice(&message);
                let mut stream = stream;
                stream.write_all(&framed)
            }
            #[cfg(unix)]
            Connection::Unix(socket) => socket.send(&message).map(drop),
        };
        match sent {
            Ok(()) => {
                self.connection = Some(connection);
                Attempt::Done
            }
            // The connection is dropped and opened anew on the next attempt.
            Err(e) => Attempt::Retry {
                error: format!("cannot send: {e}"),
                after: None,
            },
        }
    }
}

/// The RFC 5424 message for an alert:
///
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID FINDING - MSG`
///
/// PRI combines the facility with the severity mapped from OCSF; TIMESTAMP is the finding's
/// `time` (UTC, milliseconds); there is no structured data (`-`); MSG is the finding JSON,
/// without a byte-order mark (MSG-ANY). When the whole message would exceed `max_bytes`, MSG
/// is a shortened finding instead — class, time, severity, message, `finding_info.uid` and
/// `title`, actor, and `unmapped.acta.truncated: true` — with the message and title cut as
/// needed; the full finding stays in the ledger under its uid.
fn syslog_message(alert: &Alert, header: &SyslogHeader, max_bytes: usize) -> Vec<u8> {
    let pri = u16::from(header.facility) * 8 + u16::from(syslog_severity(alert.severity_id));
    // RFC 5424 timestamps have four-digit years.
    let timestamp = if (0..253_402_300_800_000).contains(&alert.time_ms) {
        format_rfc3339(alert.time_ms)
    } else {
        "-".to_owned()
    };
    let head = format!(
        "<{pri}>1 {timestamp} {} {} {} FINDING - ",
        header.hostname, header.app_name, header.procid
    );
    let json = if alert.json.contains(['\n', '\r']) {
        // Whitespace between JSON tokens; a line break cannot occur inside a JSON string.
        alert.json.replace(['\n', '\r'], " ")
    } else {
        alert.json.to_string()
    };
    let room = max_bytes.saturating_sub(head.len());
    let msg = if json.len() <= room {
        json
    } else {
        short_finding(alert, room)
    };
    let mut message = head.into_bytes();
    message.extend_from_slice(msg.as_bytes());
    message.truncate(max_bytes);
    message
}

/// The shortened finding, within `room` bytes if at all possible.
fn short_finding(alert: &Alert, room: usize) -> String {
    let mut message = alert.message.clone();
    let mut title = alert.title.clone();
    let mut short = String::new();
    for _ in 0..4 {
        let mut value = serde_json::json!({
            "class_uid": 2004,
            "class_name": "Detection Finding",
            "time": alert.time_ms,
            "severity_id": alert.severity_id,
            "severity": alert.severity,
            "message": message,
            "finding_info": { "uid": alert.uid, "title": title },
            "unmapped": { "acta": { "truncated": true } },
        });
        if let (Some(actor), Some(object)) = (&alert.actor, value.as_object_mut()) {
            object.insert(
                "actor".to_owned(),
                serde_json::json!({ "user": { "name": actor } }),
            );
        }
        short = value.to_string();
        let Some(over) = short.len().checked_sub(room).filter(|&o| o > 0) else {
            return short;
        };
        // Each byte removed from a string removes at least one byte of its JSON form.
        let cut = if message.is_empty() {
            &mut title
        } else {
            &mut message
        };
        let keep = cut.len().saturating_sub(over + '…'.len_utf8());
        cut_to(cut, keep);
        cut.push('…');
    }
    // Still too long (a huge uid): cut at a character boundary.
    cut_to(&mut short, room);
    short
}

/// Truncates to at most `len` bytes, at a character boundary.
fn cut_to(text: &mut String, len: usize) {
    let mut len = len.min(text.len());
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    text.truncate(len);
}

// ---------------------------------------------------------------------------------------------
// File

enum FileSink {
    Stdout,
    File(File),
}

impl FileSink {
    fn open(path: &Path) -> Result<FileSink> {
        if path.as_os_str() == "-" {
            return Ok(FileSink::Stdout);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {} for appending", path.display()))?;
        Ok(FileSink::File(file))
    }
}

impl Transport for FileSink {
    fn attempt(&mut self, alert: &Alert, _budget: Option<Duration>) -> Attempt {
        let mut line = if alert.json.contains(['\n', '\r']) {
            alert.json.replace(['\n', '\r'], " ")
        } else {
            alert.json.to_string()
        };
        line.push('\n');
        // One write per line: appends from several writers do not interleave within a line.
        let written = match self {
            FileSink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            FileSink::File(file) => file.write_all(line.as_bytes()).and_then(|()| file.flush()),
        };
        match written {
            Ok(()) => Attempt::Done,
            Err(e) => Attempt::Fail(format!("cannot write: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sinks of a detection configuration (`[[sink]]` tables).
    fn parse_toml(text: &str) -> Result<Vec<SinkConfig>> {
        let config: crate::detection::Config = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        Ok(config.sink)
    }
    use std::io::{BufRead, BufReader};
    use std::net::{SocketAddr, TcpListener};

    const FINDING: &str = r#"{"class_uid":2004,"class_name":"Detection Finding","category_uid":2,"activity_id":1,"type_uid":200401,"time":1763740000123,"start_time":1763739990000,"end_time":1763739990000,"severity_id":4,"severity":"High","status_id":1,"is_alert":true,"message":"AWS CloudTrail logging stopped by alice","finding_info":{"uid":"f-000000000000002a-1","title":"AWS CloudTrail Important Change","analytic":{"uid":"4db60cc0-36fb-42b7-9b58-a5b53019fb74","name":"AWS CloudTrail Important Change","type_id":1,"type":"Rule"},"types":["sigma"],"related_events":[{"uid":"42"}]},"actor":{"user":{"name":"alice"}},"metadata":{"version":"1.3.0","product":{"name":"acta","vendor_name":"acta"}},"unmapped":{"acta":{"entries":[42],"event_time":1763739990000,"ingest_time":1763740000100,"alert_time":1763740000123}}}"#;

    fn alert() -> Alert {
        Alert::from_finding(Arc::from(FINDING)).unwrap()
    }

    /// The example finding with another uid.
    fn alert_numbered(n: usize) -> Alert {
        let json = FINDING.replace("f-000000000000002a-1", &format!("f-000000000000002a-{n}"));
        Alert::from_finding(Arc::from(json)).unwrap()
    }

    fn config(toml: &str) -> SinkConfig {
        let mut sinks = parse_toml(toml).unwrap();
        assert_eq!(sinks.len(), 1);
        sinks.pop().unwrap()
    }

    /// One request as the test server received it.
    #[derive(Debug, Clone)]
    struct Request {
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Request {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A small HTTP/1.1 server on 127.0.0.1: `respond(n)` gives the status and extra headers of
    /// the n-th request (from 0); each connection serves one request.
    struct Server {
        addr: SocketAddr,
        requests: Arc<Mutex<Vec<Request>>>,
    }

    impl Server {
        fn start(respond: impl Fn(usize) -> (u16, &'static str) + Send + 'static) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&requests);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let Some(request) = read_request(&stream) else {
                        continue;
                    };
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(request);
                        seen.len() - 1
                    };
                    let (status, extra) = respond(n);
                    let response = format!(
                        "HTTP/1.1 {status} Test\r\nContent-Length: 4\r\nConnection: close\r\n{extra}\r\nbody"
                    );
                    let _ = (&stream).write_all(response.as_bytes());
                }
            });
            Server { addr, requests }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn requests(&self) -> Vec<Request> {
            self.requests.lock().unwrap().clone()
        }
    }

    fn read_request(stream: &TcpStream) -> Option<Request> {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let path = line.split(' ').nth(1)?.to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some(Request {
            path,
            headers,
            body,
        })
    }

    fn secret_file(dir: &tempfile::TempDir, secret: &str) -> PathBuf {
        let path = dir.path().join("secret");
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        path
    }

    #[test]
    fn alert_from_finding() {
        let alert = alert();
        assert_eq!(alert.uid, "f-000000000000002a-1");
        assert_eq!(alert.title, "AWS CloudTrail Important Change");
        assert_eq!(alert.severity, "High");
        assert_eq!(alert.severity_id, 4);
        assert_eq!(alert.actor.as_deref(), Some("alice"));
        assert_eq!(alert.message, "AWS CloudTrail logging stopped by alice");
        assert_eq!(alert.time_ms, 1_763_740_000_123);
        assert_eq!(&*alert.json, FINDING);

        let minimal =
            Alert::from_finding(Arc::from(r#"{"severity_id":5,"finding_info":{"uid":"u"}}"#))
                .unwrap();
        assert_eq!(minimal.severity, "Critical");
        assert_eq!(minimal.actor, None);
        assert!(Alert::from_finding(Arc::from(r#"{"class_uid":2004}"#)).is_err());
        assert!(Alert::from_finding(Arc::from("not json")).is_err());
    }

    #[test]
    fn signatures() {
        // RFC 4231, test case 2.
        let body = b"what do ya want for nothing?";
        let good = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(signature(&hmac_sha256(b"Jefe").unwrap(), body), good);
        assert!(verify_signature(b"Jefe", body, good));
        assert!(verify_signature(
            b"Jefe",
            body,
            &good.to_uppercase().replace("SHA256", "sha256")
        ));
        assert!(!verify_signature(
            b"Jefe",
            b"what do ya want for nothing!",
            good
        ));
        assert!(!verify_signature(b"jefe", body, good));
        assert!(!verify_signature(
            b"Jefe",
            body,
            good.trim_start_matches("sha256=")
        ));
        assert!(!verify_signature(b"Jefe", body, &good[..good.len() - 2]));
        assert!(!verify_signature(b"Jefe", body, "sha256=zz"));
        assert!(!verify_signature(b"Jefe", body, "sha256="));
    }

    #[test]
    fn webhook_delivers_each_alert_once_signed() {
        let server = Server::start(|_| (200, ""));
        let dir = tempfile::tempdir().unwrap();
        let secret = secret_file(&dir, "s3cret");
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{}\"\nsecret_file = \"{}\"\n",
            server.url("/hook"),
            secret.display()
        ))])
        .unwrap();
        for n in 0..3 {
            sinks.send(alert_numbered(n));
        }
        let reports = sinks.finish(Duration::from_secs(10));
        assert_eq!(
            reports,
            vec![SinkReport {
                name: format!("webhook {}", server.url("/hook")),
                delivered: 3,
                failed: 0,
                dropped: 0,
                pending: 0,
                last_error: None,
            }]
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        for (n, request) in requests.iter().enumerate() {
            assert_eq!(request.path, "/hook");
            let expected = FINDING.replace("002a-1", &format!("002a-{n}"));
            assert_eq!(request.body, expected.as_bytes());
            assert_eq!(request.header("content-type"), Some("application/json"));
            assert_eq!(
                request.header("user-agent"),
                Some(concat!("acta/", env!("CARGO_PKG_VERSION")))
            );
            assert_eq!(
                request.header("x-acta-delivery"),
                Some(format!("f-000000000000002a-{n}").as_str())
            );
            let signature = request.header("x-acta-signature").unwrap();
            assert!(verify_signature(b"s3cret", &request.body, signature));
            let mut tampered = request.body.clone();
            tampered[10] ^= 1;
            assert!(!verify_signature(b"s3cret", &tampered, signature));
        }
    }

    #[test]
    fn webhook_secret_from_environment_and_none() {
        // PATH is set wherever tests run; the test cannot set variables of its own.
        let path = std::env::var("PATH").unwrap();
        let server = Server::start(|_| (204, ""));
        let signed = config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{}\"\nsecret_env = \"PATH\"\n",
            server.url("/signed")
        ));
        let unsigned = config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{}\"\n",
            server.url("/unsigned")
        ));
        let sinks = Sinks::start(&[signed, unsigned]).unwrap();
        sinks.send(alert());
        let reports = sinks.finish(Duration::from_secs(10));
        assert!(reports.iter().all(|r| r.delivered == 1), "{reports:?}");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        for request in requests {
            match request.path.as_str() {
                "/signed" => assert!(verify_signature(
                    path.as_bytes(),
                    &request.body,
                    request.header("x-acta-signature").unwrap()
                )),
                _ => assert_eq!(request.header("x-acta-signature"), None),
            }
            assert_eq!(
                request.header("x-acta-delivery"),
                Some("f-000000000000002a-1")
            );
        }
    }

    #[test]
    fn webhook_retries_transient_errors() {
        // 503, then 429 (with Retry-After), then accepted.
        let server = Server::start(|n| match n {
            0 => (503, ""),
            1 => (429, "Retry-After: 0\r\n"),
            _ => (200, ""),
        });
        let dir = tempfile::tempdir().unwrap();
        let secret = secret_file(&dir, "k");
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{}\"\nsecret_file = \"{}\"\n\
             initial_backoff_ms = 10\nmax_backoff_ms = 40\n",
            server.url("/"),
            secret.display()
        ))])
        .unwrap();
        sinks.send(alert());
        let report = sinks.finish(Duration::from_secs(10)).remove(0);
        assert_eq!((report.delivered, report.failed, report.pending), (1, 0, 0));
        assert_eq!(report.last_error.as_deref(), Some("HTTP 429: body"));
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        for request in &requests {
            assert_eq!(
                request.header("x-acta-delivery"),
                Some("f-000000000000002a-1")
            );
            assert_eq!(request.body, FINDING.as_bytes());
            assert_eq!(
                request.header("x-acta-signature"),
                requests[0].header("x-acta-signature")
            );
        }
    }

    #[test]
    fn webhook_client_errors_are_not_retried() {
        let server = Server::start(|_| (400, ""));
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{}\"\ninitial_backoff_ms = 1\n",
            server.url("/")
        ))])
        .unwrap();
        sinks.send(alert());
        let report = sinks.finish(Duration::from_secs(10)).remove(0);
        assert_eq!((report.delivered, report.failed, report.pending), (0, 1, 0));
        assert_eq!(report.last_error.as_deref(), Some("HTTP 400: body"));
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn webhook_gives_up_after_max_attempts() {
        let server = Server::start(|_| (500, ""));
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{}\"\nmax_attempts = 3\n\
             initial_backoff_ms = 1\nmax_backoff_ms = 2\n",
            server.url("/")
        ))])
        .unwrap();
        sinks.send(alert());
        let report = sinks.finish(Duration::from_secs(10)).remove(0);
        assert_eq!((report.delivered, report.failed), (0, 1));
        assert_eq!(
            report.last_error.as_deref(),
            Some("HTTP 500: body (3 attempts)")
        );
        assert_eq!(server.requests().len(), 3);
    }

    /// A port nothing listens on.
    fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn unreachable_sink_never_blocks_and_finish_keeps_its_deadline() {
        let url = format!("http://127.0.0.1:{}/hook", closed_port());
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{url}\"\ninitial_backoff_ms = 1000\n"
        ))])
        .unwrap();
        let alerts: Vec<Alert> = (0..1000).map(alert_numbered).collect();
        let start = Instant::now();
        for alert in alerts {
            sinks.send(alert);
        }
        let sending = start.elapsed();
        assert!(sending < Duration::from_millis(10), "{sending:?}");

        // Once the first attempt has failed, the worker waits in its backoff.
        let start = Instant::now();
        while sinks.monitor().reports()[0].last_error.is_none() {
            assert!(start.elapsed() < Duration::from_secs(5));
            thread::yield_now();
        }
        let during = sinks.monitor().reports().remove(0);
        assert_eq!(during.delivered + during.failed + during.pending, 1000);

        let start = Instant::now();
        let report = sinks.finish(Duration::from_millis(200)).remove(0);
        let finishing = start.elapsed();
        assert!(finishing < Duration::from_millis(700), "{finishing:?}");
        assert_eq!(report.name, format!("webhook {url}"));
        assert_eq!((report.delivered, report.dropped), (0, 0));
        assert_eq!(report.failed + report.pending, 1000);
        assert!(report.pending > 0);
        let error = report.last_error.unwrap();
        assert!(error.contains("refused"), "{error}");
    }

    #[test]
    fn finish_cuts_a_hanging_request_short() {
        // Accepts connections and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (accepted, connected) = mpsc::channel();
        thread::spawn(move || {
            let mut open = Vec::new();
            for stream in listener.incoming() {
                open.push(stream);
                let _ = accepted.send(());
            }
        });
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{url}\"\n"
        ))])
        .unwrap();
        sinks.send(alert());
        connected.recv_timeout(Duration::from_secs(5)).unwrap();
        let start = Instant::now();
        let report = sinks.finish(Duration::from_millis(300)).remove(0);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(report.delivered, 0);
        assert_eq!(report.failed + report.pending, 1);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let url = format!("http://127.0.0.1:{}/", closed_port());
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{url}\"\nqueue = 10\ninitial_backoff_ms = 1000\n"
        ))])
        .unwrap();
        for n in 0..100 {
            sinks.send(alert_numbered(n));
        }
        let report = sinks.finish(Duration::from_millis(100)).remove(0);
        // The worker may have taken one alert off the queue before it filled.
        assert!(report.dropped >= 89, "{report:?}");
        assert_eq!(
            report.delivered + report.failed + report.pending + report.dropped,
            100
        );
        assert!(
            report
                .to_string()
                .contains(&format!("{} dropped", report.dropped))
        );
    }

    #[test]
    fn slack_posts_a_one_line_summary() {
        let server = Server::start(|_| (200, ""));
        let url = server.url("/services/T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX");
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"slack\"\nurl = \"{url}\"\n"
        ))])
        .unwrap();
        let mut tricky = alert();
        tricky.message = "a <b> & c\nd".to_owned();
        tricky.actor = None;
        sinks.send(alert());
        sinks.send(tricky);
        let reports = sinks.finish(Duration::from_secs(10));
        assert_eq!(reports[0].name, format!("slack http://{}", server.addr));
        assert_eq!(reports[0].delivered, 2);
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        let texts: Vec<serde_json::Value> = requests
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(
            texts[0],
            serde_json::json!({"text": ":rotating_light: [High] AWS CloudTrail Important Change — alice — AWS CloudTrail logging stopped by alice"})
        );
        assert_eq!(
            texts[1],
            serde_json::json!({"text": ":rotating_light: [High] AWS CloudTrail Important Change — a &lt;b&gt; &amp; c d"})
        );
        assert_eq!(requests[0].header("content-type"), Some("application/json"));
        assert_eq!(requests[0].header("x-acta-signature"), None);
    }

    /// The fields of an RFC 5424 message: PRI, version, timestamp, hostname, app, procid,
    /// msgid, structured data, message.
    fn parse_rfc5424(message: &str) -> (u16, [&str; 7], &str) {
        let rest = message.strip_prefix('<').unwrap();
        let (pri, rest) = rest.split_once('>').unwrap();
        let mut fields = rest.splitn(8, ' ');
        let header: [&str; 7] = std::array::from_fn(|_| fields.next().unwrap());
        (pri.parse().unwrap(), header, fields.next().unwrap())
    }

    #[test]
    fn syslog_over_udp() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let address = format!("udp://{}", receiver.local_addr().unwrap());
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"syslog\"\naddress = \"{address}\"\nhostname = \"box1\"\n"
        ))])
        .unwrap();
        sinks.send(alert());
        let mut buf = vec![0; 70_000];
        let n = receiver.recv(&mut buf).unwrap();
        let message = std::str::from_utf8(&buf[..n]).unwrap();
        let (pri, header, msg) = parse_rfc5424(message);
        // authpriv (10) × 8 + err (3, for High).
        assert_eq!(pri, 83);
        assert_eq!(
            header,
            [
                "1",
                "2025-11-21T15:46:40.123Z",
                "box1",
                "acta",
                &std::process::id().to_string(),
                "FINDING",
                "-"
            ]
        );
        assert_eq!(msg, FINDING);
        let reports = sinks.finish(Duration::from_secs(5));
        assert_eq!(reports[0].name, format!("syslog {address}"));
        assert_eq!(reports[0].delivered, 1);
    }

    #[test]
    fn syslog_over_tcp_is_octet_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("tcp://{}", listener.local_addr().unwrap());
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"syslog\"\naddress = \"{address}\"\nfacility = \"local3\"\n\
             app_name = \"acta-test\"\n"
        ))])
        .unwrap();
        sinks.send(alert_numbered(1));
        sinks.send(alert_numbered(2));
        let reports = sinks.finish(Duration::from_secs(5));
        assert_eq!(reports[0].delivered, 2, "{reports:?}");
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        for n in 1..=2 {
            let mut length = Vec::new();
            reader.read_until(b' ', &mut length).unwrap();
            let length: usize = std::str::from_utf8(&length)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let mut message = vec![0; length];
            reader.read_exact(&mut message).unwrap();
            let message = String::from_utf8(message).unwrap();
            let (pri, header, msg) = parse_rfc5424(&message);
            assert_eq!(pri, 19 * 8 + 3);
            assert_eq!(header[0], "1");
            assert_eq!(header[3], "acta-test");
            assert_eq!(msg, FINDING.replace("002a-1", &format!("002a-{n}")));
        }
    }

    #[test]
    fn syslog_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = UnixDatagram::bind(&path).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"syslog\"\naddress = \"unix://{}\"\n",
            path.display()
        ))])
        .unwrap();
        sinks.send(alert());
        let mut buf = vec![0; 70_000];
        let n = receiver.recv(&mut buf).unwrap();
        let (pri, header, msg) = parse_rfc5424(std::str::from_utf8(&buf[..n]).unwrap());
        assert_eq!((pri, header[0], header[3], msg), (83, "1", "acta", FINDING));
        assert_eq!(sinks.finish(Duration::from_secs(5))[0].delivered, 1);
    }

    #[test]
    fn syslog_unreachable_is_reported() {
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"syslog\"\naddress = \"tcp://127.0.0.1:{}\"\nmax_attempts = 2\n\
             initial_backoff_ms = 1\n",
            closed_port()
        ))])
        .unwrap();
        sinks.send(alert());
        let report = sinks.finish(Duration::from_secs(5)).remove(0);
        assert_eq!((report.delivered, report.failed), (0, 1));
        let error = report.last_error.unwrap();
        assert!(
            error.starts_with("cannot connect") && error.ends_with("(2 attempts)"),
            "{error}"
        );
    }

    #[test]
    fn syslog_severities_and_large_findings() {
        let header = SyslogHeader {
            facility: 16,
            hostname: "h".to_owned(),
            app_name: "acta".to_owned(),
            procid: "7".to_owned(),
        };
        let mut alert = alert();
        for (id, severity) in [
            (0, 5),
            (1, 6),
            (2, 5),
            (3, 4),
            (4, 3),
            (5, 2),
            (6, 1),
            (99, 5),
        ] {
            alert.severity_id = id;
            let message = syslog_message(&alert, &header, 8192);
            let (pri, _, _) = parse_rfc5424(std::str::from_utf8(&message).unwrap());
            assert_eq!(pri, 16 * 8 + severity);
        }

        // A finding larger than the limit becomes a shortened, still valid, finding.
        let mut big = alert.clone();
        big.message = "é".repeat(5_000);
        big.json =
            Arc::from(FINDING.replace("AWS CloudTrail logging stopped by alice", &big.message));
        for max in [600, 2_000, 8_192] {
            let message = syslog_message(&big, &header, max);
            assert!(message.len() <= max, "{} > {max}", message.len());
            let (_, header, msg) = parse_rfc5424(std::str::from_utf8(&message).unwrap());
            assert_eq!(header[0], "1");
            let short: serde_json::Value = serde_json::from_str(msg).unwrap();
            assert_eq!(short["finding_info"]["uid"], "f-000000000000002a-1");
            assert_eq!(short["actor"]["user"]["name"], "alice");
            assert_eq!(short["unmapped"]["acta"]["truncated"], true);
            assert!(short["message"].as_str().unwrap().ends_with('…'));
        }
        // What fits is sent whole.
        let message = syslog_message(&alert, &header, 8_192);
        assert!(String::from_utf8(message).unwrap().ends_with(FINDING));
        // A finding with line breaks stays on one line.
        let mut pretty = alert;
        pretty.json = Arc::from("{\n  \"a\": 1\n}");
        let message = syslog_message(&pretty, &header, 8_192);
        assert!(
            String::from_utf8(message)
                .unwrap()
                .ends_with("{   \"a\": 1 }")
        );
    }

    #[test]
    fn file_sink_appends_ndjson() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.ndjson");
        std::fs::write(&path, "earlier\n").unwrap();
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"file\"\npath = \"{}\"\n",
            path.display()
        ))])
        .unwrap();
        sinks.send(alert_numbered(1));
        sinks.send(alert_numbered(2));
        let reports = sinks.finish(Duration::from_secs(5));
        assert_eq!(reports[0].name, format!("file {}", path.display()));
        assert_eq!(reports[0].delivered, 2);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "earlier");
        for (n, line) in lines[1..].iter().enumerate() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                value["finding_info"]["uid"],
                format!("f-000000000000002a-{}", n + 1)
            );
        }

        let stdout = Sinks::start(&[config("[[sink]]\ntype = \"file\"\npath = \"-\"\n")]).unwrap();
        assert_eq!(stdout.monitor().reports()[0].name, "file stdout");
        assert_eq!(stdout.finish(Duration::from_secs(1))[0].delivered, 0);
    }

    #[test]
    fn configuration_and_defaults() {
        let sinks = parse_toml(
            r#"
            [[sink]]
            type = "webhook"
            url = "https://siem.example.com/acta"
            secret_env = "ACTA_WEBHOOK_SECRET"

            [[sink]]
            type = "slack"
            url = "https://hooks.slack.com/services/T0/B0/XXXXXXXXXXXXXXXXXXXXXXXX"
            max_attempts = 3

            [[sink]]
            type = "syslog"
            address = "udp://127.0.0.1:514"

            [[sink]]
            type = "file"
            path = "/var/log/acta/alerts.ndjson"
            "#,
        )
        .unwrap();
        assert_eq!(sinks.len(), 4);
        let SinkConfig::Webhook(webhook) = &sinks[0] else {
            panic!("{:?}", sinks[0])
        };
        assert_eq!(webhook.secret_env.as_deref(), Some("ACTA_WEBHOOK_SECRET"));
        assert_eq!(
            (
                webhook.max_attempts,
                webhook.initial_backoff_ms,
                webhook.max_backoff_ms,
                webhook.connect_timeout_ms,
                webhook.timeout_ms,
                webhook.queue
            ),
            (6, 500, 30_000, 5_000, 10_000, 10_000)
        );
        let SinkConfig::Slack(slack) = &sinks[1] else {
            panic!("{:?}", sinks[1])
        };
        assert_eq!(slack.max_attempts, 3);
        let SinkConfig::Syslog(syslog) = &sinks[2] else {
            panic!("{:?}", sinks[2])
        };
        assert_eq!(
            (
                syslog.facility.as_str(),
                syslog.app_name.as_str(),
                syslog.max_message_bytes
            ),
            ("authpriv", "acta", 8192)
        );
        assert_eq!(syslog.hostname, None);
        let names: Vec<String> = sinks.iter().map(SinkConfig::name).collect();
        assert_eq!(
            names,
            [
                "webhook https://siem.example.com/acta",
                "slack https://hooks.slack.com",
                "syslog udp://127.0.0.1:514",
                "file /var/log/acta/alerts.ndjson"
            ]
        );
        assert!(!format!("{sinks:?}").contains("XXXX"));
        assert!(parse_toml("").unwrap().is_empty());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("detect.toml");
        std::fs::write(&file, "[[sink]]\ntype = \"file\"\npath = \"-\"\n").unwrap();
        assert_eq!(crate::detection::Config::load(&file).unwrap().sink.len(), 1);
        let missing = dir.path().join("missing.toml");
        let error = format!(
            "{:#}",
            crate::detection::Config::load(&missing).unwrap_err()
        );
        assert!(error.contains("cannot read"), "{error}");
    }

    #[test]
    fn names_hide_secrets() {
        let webhook = config(
            "[[sink]]\ntype = \"webhook\"\n\
             url = \"https://user:pass@hooks.example.com:8443/in/0123456789abcdef0123/x?token=abc\"\n",
        );
        assert_eq!(
            webhook.name(),
            "webhook https://hooks.example.com:8443/in/…/x"
        );
        let debug = format!("{webhook:?}");
        assert!(!debug.contains("pass") && !debug.contains("abc") && !debug.contains("0123"));
        let slack = config(
            "[[sink]]\ntype = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/secret\"\n",
        );
        assert_eq!(slack.name(), "slack https://hooks.slack.com");
        assert!(!format!("{slack:?}").contains("secret"));
    }

    fn parse_error(toml: &str) -> String {
        format!("{:#}", parse_toml(toml).unwrap_err())
    }

    fn start_error(toml: &str) -> String {
        let configs = parse_toml(toml).unwrap();
        format!("{:#}", Sinks::start(&configs).unwrap_err())
    }

    #[test]
    fn configuration_errors() {
        let e = parse_error("[[sink]]\ntype = \"pager\"\n");
        assert!(e.contains("unknown variant `pager`"), "{e}");
        let e = parse_error("[[sink]]\ntype = \"webhook\"\nurl = \"http://x/\"\nsecret = \"s\"\n");
        assert!(e.contains("unknown field `secret`"), "{e}");
        let e = parse_error("[[sink]]\nurl = \"http://x/\"\n");
        assert!(e.contains("type"), "{e}");
        let e = parse_error("[[sinks]]\ntype = \"file\"\npath = \"-\"\n");
        assert!(e.contains("unknown field `sinks`"), "{e}");

        let e = start_error(
            "[[sink]]\ntype = \"file\"\npath = \"-\"\n\n\
             [[sink]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n\
             secret_env = \"ACTA_TEST_NEVER_SET_7F3A\"\n",
        );
        assert_eq!(
            e,
            "sink 2 (webhook http://127.0.0.1:9/hook): secret_env ACTA_TEST_NEVER_SET_7F3A: \
             the environment variable is not set"
        );
        let e = start_error("[[sink]]\ntype = \"webhook\"\nurl = \"ftp://example.com/x\"\n");
        assert!(
            e.contains("sink 1") && e.contains("scheme must be http or https"),
            "{e}"
        );
        let e = start_error("[[sink]]\ntype = \"slack\"\nurl = \"hooks.slack.com/x\"\n");
        assert!(e.contains("sink 1 (slack"), "{e}");
        let e = start_error(
            "[[sink]]\ntype = \"webhook\"\nurl = \"http://x/\"\nsecret_file = \"/nonexistent/acta-secret\"\n",
        );
        assert!(
            e.contains("cannot read secret_file /nonexistent/acta-secret"),
            "{e}"
        );
        let e = start_error(
            "[[sink]]\ntype = \"webhook\"\nurl = \"http://x/\"\nsecret_env = \"PATH\"\n\
             secret_file = \"/x\"\n",
        );
        assert!(e.contains("not both"), "{e}");
        let e =
            start_error("[[sink]]\ntype = \"webhook\"\nurl = \"http://x/\"\nmax_attempts = 0\n");
        assert!(e.contains("max_attempts"), "{e}");
        let e = start_error("[[sink]]\ntype = \"webhook\"\nurl = \"http://x/\"\nqueue = 0\n");
        assert!(e.contains("queue"), "{e}");
        let e = start_error("[[sink]]\ntype = \"syslog\"\naddress = \"127.0.0.1:514\"\n");
        assert!(e.contains("udp://, tcp:// or unix://"), "{e}");
        let e = start_error("[[sink]]\ntype = \"syslog\"\naddress = \"udp://::1:514\"\n");
        assert!(e.contains("brackets"), "{e}");
        let e = start_error("[[sink]]\ntype = \"syslog\"\naddress = \"udp://h:99999\"\n");
        assert!(e.contains("invalid host or port"), "{e}");
        let e = start_error("[[sink]]\ntype = \"syslog\"\naddress = \"unix://dev/log\"\n");
        assert!(e.contains("absolute path"), "{e}");
        let e = start_error(
            "[[sink]]\ntype = \"syslog\"\naddress = \"udp://h\"\nfacility = \"local9\"\n",
        );
        assert!(e.contains("unknown facility \"local9\""), "{e}");
        let e = start_error(
            "[[sink]]\ntype = \"syslog\"\naddress = \"udp://h\"\nmax_message_bytes = 100000\n",
        );
        assert!(e.contains("max_message_bytes"), "{e}");
        let e =
            start_error("[[sink]]\ntype = \"syslog\"\naddress = \"udp://h\"\nhostname = \"a b\"\n");
        assert!(e.contains("hostname"), "{e}");
        let e = start_error("[[sink]]\ntype = \"file\"\npath = \"/nonexistent/dir/alerts\"\n");
        assert!(
            e.contains("sink 1 (file /nonexistent/dir/alerts): cannot open"),
            "{e}"
        );
    }

    #[test]
    fn syslog_addresses() {
        assert_eq!(host_port("example.com").unwrap(), "example.com:514");
        assert_eq!(host_port("example.com:6514").unwrap(), "example.com:6514");
        assert_eq!(host_port("[::1]").unwrap(), "[::1]:514");
        assert_eq!(host_port("[::1]:1514").unwrap(), "[::1]:1514");
        assert!(host_port("[::1]:x").is_err());
        assert!(host_port(":514").is_err());
        assert!(host_port("").is_err());
    }

    #[test]
    fn report_display_and_no_sinks() {
        let report = SinkReport {
            name: "file stdout".to_owned(),
            delivered: 3,
            failed: 1,
            dropped: 2,
            pending: 0,
            last_error: Some("cannot write: disk full".to_owned()),
        };
        assert_eq!(
            report.to_string(),
            "file stdout: 3 delivered, 1 failed, 2 dropped, 0 pending \
             (last error: cannot write: disk full)"
        );
        let none = Sinks::start(&[]).unwrap();
        none.send(alert());
        assert!(none.monitor().reports().is_empty());
        assert!(none.finish(Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn https_failure_is_reported() {
        // A plain HTTP server cannot complete a TLS handshake.
        let server = Server::start(|_| (200, ""));
        let url = format!("https://{}/hook", server.addr);
        let sinks = Sinks::start(&[config(&format!(
            "[[sink]]\ntype = \"webhook\"\nurl = \"{url}\"\nmax_attempts = 1\n"
        ))])
        .unwrap();
        sinks.send(alert());
        let report = sinks.finish(Duration::from_secs(10)).remove(0);
        assert_eq!((report.delivered, report.failed), (0, 1), "{report:?}");
        assert!(report.last_error.is_some());
        // What reached the server was a TLS handshake, not a request.
        assert!(server.requests().is_empty());
    }

    #[test]
    fn sinks_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Sinks>();
    }

    #[test]
    fn jitter_stays_between_half_and_whole() {
        let mut jitter = Jitter::new();
        for _ in 0..1000 {
            let d = jitter.spread(Duration::from_millis(500));
            assert!(d >= Duration::from_millis(250) && d <= Duration::from_millis(500));
        }
        assert_eq!(jitter.spread(Duration::ZERO), Duration::ZERO);
    }
}
