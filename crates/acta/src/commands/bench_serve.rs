//! `acta bench serve`: HTTP ingest under load, from a process of its own.
//!
//! The load generator posts NDJSON batches of generated CloudTrail-shaped events (about 1 KB each,
//! [`crate::synth`]) to `POST /api/v1/ingest` over several keep-alive HTTP/1.1 connections. By
//! default it starts `acta serve` itself (this same binary, a fresh data directory under the data
//! directory, a loopback port), so that server and load generator are two processes; `--url` and
//! `--token` aim it at a server already running instead.
//!
//! 1. Full speed: every connection posts its next batch as soon as the previous one is answered,
//!    until `--events` are acknowledged; sustained events/s is acknowledged events over the wall
//!    time of the whole phase.
//! 2. Paced: batches offered at `--rate` events/s (by default half the rate of phase 1), spread
//!    evenly over the connections; each batch's acknowledgement latency runs from the moment it
//!    was due to the server's 200 answer, which comes once the batch is durable. A batch sent late
//!    (its connection still waiting on the previous answer) counts its wait as latency.
//! 3. Check: the ledger ranges of all answers are disjoint and lie within the growth of the
//!    ledger (`/healthz`), which grew by exactly the events acknowledged; the search index counts
//!    exactly as many events of the run's source (`/api/v1/stats`, when the token may read).

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use super::EXIT_FAILED;
use super::bench::percentile;
use crate::datadir::DataDir;
use crate::synth::Synth;
use crate::tokens::{Role, Tokens};
use crate::units;
use acta_ledger::{Appender, AppenderOptions};

/// Measure `acta serve` under load, from a process of its own: sustained HTTP ingest in
/// events/s, then acknowledgement latency at half that rate; checks that the ledger holds exactly
/// the events acknowledged.
///
/// The load generator posts NDJSON batches of generated ~1 KB CloudTrail-shaped events to
/// `POST /api/v1/ingest` over `--connections` keep-alive HTTP/1.1 connections. By default it
/// starts `acta serve` itself (this binary, a fresh data directory `<data-dir>/bench-serve-<pid>`,
/// a loopback port) and stops it at the end; `--url` and `--token` aim it at a running server.
///
/// Phase 1 posts `--events` as fast as the server answers: sustained events/s counts the events
/// acknowledged (stored, synced, under a signed checkpoint) over the phase's wall time. Phase 2
/// offers batches evenly spaced at `--rate` events/s (by default half the rate of phase 1) for
/// `--paced-seconds`; a batch's acknowledgement latency runs from the moment it was due to the
/// server's answer. Then it checks that the ledger grew by exactly the events acknowledged, in the
/// ranges the answers gave, and that the search index counts them all (with a token that may
/// read). The started server's peak resident memory (VmHWM) and CPU time are reported too.
///
/// Exits 1 when the check fails.
#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// Base URL of a running `acta serve` to load (e.g. `http://127.0.0.1:8080`). Without it, a
    /// fresh `acta serve` is started on a loopback port over a new data directory
    /// `<data-dir>/bench-serve-<pid>`, and stopped (and the directory removed) at the end.
    #[arg(long, value_name = "URL", requires = "token")]
    pub url: Option<String>,
    /// Token for `--url`: one that may write; an `admin` token also lets the index count be
    /// checked.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Events to post at full speed (rounded up to whole batches).
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Events per request.
    #[arg(long, default_value_t = 2_000)]
    pub batch: usize,
    /// Keep-alive connections posting at once.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Events per second offered in the paced phase; by default half the full-speed rate. 0
    /// skips the phase.
    #[arg(long, value_name = "EVENTS_PER_S")]
    pub rate: Option<f64>,
    /// Length of the paced phase, in seconds.
    #[arg(long, default_value_t = 20.0)]
    pub paced_seconds: f64,
    /// Distinct events generated before the clock starts; request bodies cycle through them, so
    /// that generating events costs the load generator nothing while it measures.
    #[arg(long, default_value_t = 100_000)]
    pub distinct: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `table` for reading, `json` for scripts.
    #[arg(short, long, value_enum, default_value_t = BenchServeForm::Table)]
    pub output: BenchServeForm,
    /// Keep the started server's data directory (its path is printed) instead of removing it.
    #[arg(long, conflicts_with = "url")]
    pub keep: bool,
}

/// How `acta bench serve` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchServeForm {
    Table,
    Json,
}

/// The longest the load generator waits for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest the index may take to count every acknowledged event (it commits every second).
const INDEX_WAIT: Duration = Duration::from_secs(20);

/// `acta bench serve`.
pub fn run(data: &DataDir, args: BenchServeArgs) -> Result<ExitCode> {
    if args.batch == 0 || args.connections == 0 {
        bail!("--batch and --connections must be at least 1");
    }
    let load = fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let bodies = Arc::new(bodies(args.seed, args.distinct, args.batch));
    let body_bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let mean_event = body_bytes / (bodies.len() * args.batch).max(1) as u64;
    if args.output == BenchServeForm::Table {
        println!(
            "acta bench serve: {} NDJSON batches of {} CloudTrail-shaped events ({} mean), {} connections, {cores} cores, load average {load}",
            units::count(bodies.len() as u64),
            units::count(args.batch as u64),
            units::bytes(mean_event),
            args.connections,
        );
        println!(
            "  generated       {} distinct events ({}) in {}",
            units::count((bodies.len() * args.batch) as u64),
            units::bytes(body_bytes),
            units::duration(t.elapsed()),
        );
    }

    let (server, token) = match &args.url {
        Some(_) => (
            None,
            args.token
                .clone()
                .ok_or_else(|| anyhow!("--url needs --token"))?,
        ),
        None => {
            let (token, _) = Tokens::default().create(
                Role::admin(),
                "bench",
                None,
                acta_ledger::now_ms() as i64,
            )?;
            let dir = data
                .root()
                .join(format!("bench-serve-{}", std::process::id()));
            (Some(Spawned::start(&dir, &token)?), token)
        }
    };
    let base = match (&server, &args.url) {
        (Some(s), _) => s.base.clone(),
        (None, Some(url)) => url.trim_end_matches('/').to_owned(),
        (None, None) => bail!("no server to load"),
    };
    let result = measure(
        &args,
        &base,
        &token,
        server.as_ref().map(|s| s.pid),
        &bodies,
    );
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(s) = server {
                let (_, said) = s.stop(args.keep);
                eprintln!("{said}");
            }
            return Err(e);
        }
    };
    if let Some(s) = server {
        report.server_pid = Some(s.pid);
        let (size, said) = s.stop(args.keep);
        report.final_size = Some(size.unwrap_or(0));
        if size.is_none_or(|n| n < report.ledger_before + report.acknowledged()) {
            eprintln!("{said}");
        }
    }
    report.conditions =
        json!({"cores": cores, "load_average": load, "mean_event_bytes": mean_event});
    report.print(&args, &base);
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// Request bodies: `distinct` generated events (at least one batch), `batch` events a body.
fn bodies(seed: u64, distinct: u64, batch: usize) -> Vec<Vec<u8>> {
    let count = distinct.max(1).div_ceil(batch as u64);
    let total = count * batch as u64;
    let mut synth = Synth::new(seed, total);
    let mut out = Vec::with_capacity(count as usize);
    let mut i = 0u64;
    for _ in 0..count {
        let mut body = Vec::with_capacity(batch * 1200);
        for _ in 0..batch {
            synth.event(i, &mut body);
            body.push(b'\n');
            i += 1;
        }
        out.push(body);
    }
    out
}

/// `acta serve` started by the benchmark.
struct Spawned {
    child: Child,
    pid: u32,
    base: String,
    dir: PathBuf,
    /// Standard error of the server, line by line.
    lines: Receiver<String>,
}

impl Spawned {
    /// Starts `acta serve` on a loopback port over a new data directory `dir` whose admin token
    /// is `token`.
    fn start(dir: &Path, token: &str) -> Result<Spawned> {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("cannot empty `{}`", dir.display()))?;
        }
        // An empty ledger with its first checkpoint: what `acta serve` needs to start.
        let data = DataDir::new(dir);
        Appender::start(data.open_ledger()?, AppenderOptions::default())?.close()?;
        let exe = std::env::current_exe().context("cannot find the acta executable")?;
        let mut child = Command::new(exe)
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("ACTA_ADMIN_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start `acta serve`")?;
        let pid = child.id();
        let (tx, lines) = std::sync::mpsc::channel();
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut said = String::new();
        let base = loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("acta: listening on ") {
                        break addr.trim().to_owned();
                    }
                    said.push_str(&line);
                    said.push('\n');
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("`acta serve` did not start:\n{said}");
                }
            }
        };
        Ok(Spawned {
            child,
            pid,
            base,
            dir: dir.to_owned(),
            lines,
        })
    }

    /// Stops the server with SIGTERM (a final checkpoint, as in production), removes its data
    /// directory unless `keep`; returns the size of the ledger's final checkpoint and what the
    /// server printed meanwhile.
    fn stop(mut self, keep: bool) -> (Option<u64>, String) {
        let termed = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut said = String::new();
        loop {
            if !termed || Instant::now() >= deadline {
                let _ = self.child.kill();
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    said.push_str(&line);
                    said.push('\n');
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        while let Ok(line) = self.lines.try_recv() {
            said.push_str(&line);
            said.push('\n');
        }
        let size = fs::read_to_string(self.dir.join("ledger/log/checkpoint"))
            .ok()
            .and_then(|t| t.lines().nth(1).and_then(|l| l.parse::<u64>().ok()));
        if keep {
            eprintln!("kept the server's data directory `{}`", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
        (size, said)
    }
}

/// The CPU time of the server (when its pid is known) and of this process at the start of a phase.
struct CpuMark {
    server: Option<u32>,
    server0: Option<Duration>,
    client0: Option<Duration>,
}

impl CpuMark {
    fn now(server: Option<u32>) -> CpuMark {
        CpuMark {
            server,
            server0: server.and_then(|p| cpu_time(Some(p))),
            client0: cpu_time(None),
        }
    }

    /// The server's CPU time since the mark.
    fn server_since(&self) -> Option<Duration> {
        self.server
            .and_then(|p| cpu_time(Some(p)))
            .zip(self.server0)
            .map(|(b, a)| b.saturating_sub(a))
    }

    /// This process's CPU time since the mark.
    fn client_since(&self) -> Option<Duration> {
        cpu_time(None)
            .zip(self.client0)
            .map(|(b, a)| b.saturating_sub(a))
    }
}

/// User + system CPU time of a process so far.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let stat = fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Linux reports these in USER_HZ, 100 a second on every architecture it runs on.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Peak resident memory (VmHWM) of a process, in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One connection to the server.
struct Client {
    agent: ureq::Agent,
    ingest: String,
    auth: String,
}

impl Client {
    fn new(base: &str, token: &str, source: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(ANSWER_TIMEOUT))
            .max_idle_connections_per_host(1)
            .build()
            .into();
        Client {
            agent,
            ingest: format!("{base}/api/v1/ingest?source={source}"),
            auth: format!("Bearer {token}"),
        }
    }

    /// Status and JSON answer of a GET of `url`.
    fn get(&self, url: &str) -> Result<(u16, Value)> {
        let mut resp = self
            .agent
            .get(url)
            .header("Authorization", &self.auth)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec()?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// Posts one batch; its status and JSON answer.
    fn post(&self, body: &[u8]) -> Result<(u16, Value)> {
        let mut resp = self
            .agent
            .post(&self.ingest)
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/x-ndjson")
            .send(body)
            .context("POST /api/v1/ingest")?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec()?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// One acknowledged batch.
struct Ack {
    latency: Duration,
    stored: u64,
    /// Ledger indices of its first and last entry.
    range: Option<(u64, u64)>,
}

/// What one phase measured.
#[derive(Default)]
struct Phase {
    acks: Vec<Ack>,
    elapsed: Duration,
    /// Requests answered 503 (the server's queue full) and sent again.
    busy: u64,
    /// Paced requests sent more than a millisecond after they were due.
    late: u64,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

impl Phase {
    fn stored(&self) -> u64 {
        self.acks.iter().map(|a| a.stored).sum()
    }

    fn latencies(&self) -> Vec<Duration> {
        let mut l: Vec<Duration> = self.acks.iter().map(|a| a.latency).collect();
        l.sort();
        l
    }

    fn latency_json(&self) -> Value {
        let l = self.latencies();
        let ms = |p: f64| percentile(&l, p).as_secs_f64() * 1000.0;
        json!({"p50": ms(50.0), "p90": ms(90.0), "p99": ms(99.0), "max": ms(100.0)})
    }

    fn rate(&self) -> f64 {
        self.stored() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Posts `body` until it is stored: a 503 (queue full) is retried. The acknowledgement's latency
/// runs from `since`.
fn post_until_stored(
    client: &Client,
    body: &[u8],
    since: Instant,
    busy: &AtomicU64,
    pause: &Receiver<()>,
) -> Result<Ack> {
    loop {
        let (status, answer) = client.post(body)?;
        if status == 503 {
            busy.fetch_add(1, Ordering::Relaxed);
            // A short pause before retrying; the channel never delivers.
            let _ = pause.recv_timeout(Duration::from_millis(2));
            continue;
        }
        if status != 200 {
            bail!("the server answered {status}: {answer}");
        }
        let latency = since.elapsed();
        let stored = answer
            .get("stored")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("an ingest answer without `stored`: {answer}"))?;
        let first = answer.get("first").and_then(Value::as_u64);
        let last = answer.get("last").and_then(Value::as_u64);
        return Ok(Ack {
            latency,
            stored,
            range: first.zip(last),
        });
    }
}

/// What one load thread does: given its number, its client, the flag that stops every thread
/// and a channel to pause on, the acknowledgements it received.
type PerConnection<'a> =
    dyn Fn(usize, &Client, &AtomicBool, &Receiver<()>) -> Result<Vec<Ack>> + Sync + 'a;

/// Runs `per_connection` on `connections` threads, each with its own client; collects their
/// acknowledgements. The first error stops every thread.
fn on_connections(
    connections: usize,
    make: &dyn Fn() -> Client,
    per_connection: &PerConnection<'_>,
) -> Result<(Vec<Ack>, Duration)> {
    let stop = AtomicBool::new(false);
    let clients: Vec<Client> = (0..connections).map(|_| make()).collect();
    let started = Instant::now();
    let results: Vec<Result<Vec<Ack>>> = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(c, client)| {
                let stop = &stop;
                s.spawn(move || {
                    let (_never, pause) = std::sync::mpsc::channel();
                    let r = per_connection(c, client, stop, &pause);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a load thread panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut acks = Vec::new();
    for r in results {
        acks.extend(r?);
    }
    Ok((acks, elapsed))
}

/// Phase 1: every connection posts as fast as it is answered, `requests` batches in all.
fn full_speed(
    make: &dyn Fn() -> Client,
    bodies: &[Vec<u8>],
    requests: u64,
    connections: usize,
    server: Option<u32>,
) -> Result<Phase> {
    let next = AtomicU64::new(0);
    let busy = AtomicU64::new(0);
    let cpu = CpuMark::now(server);
    let (acks, elapsed) = on_connections(connections, make, &|_, client, stop, pause| {
        let mut acks = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= requests {
                break;
            }
            let body = bodies
                .get((k % bodies.len().max(1) as u64) as usize)
                .ok_or_else(|| anyhow!("no request body"))?;
            acks.push(post_until_stored(
                client,
                body,
                Instant::now(),
                &busy,
                pause,
            )?);
        }
        Ok(acks)
    })?;
    Ok(Phase {
        acks,
        elapsed,
        busy: busy.load(Ordering::Relaxed),
        late: 0,
        server_cpu: cpu.server_since(),
        client_cpu: cpu.client_since(),
    })
}

/// Phase 2: batches due at `rate` events/s for `seconds`, request `k` on connection
/// `k % connections`; each latency runs from when its batch was due.
fn paced(
    make: &dyn Fn() -> Client,
    bodies: &[Vec<u8>],
    batch: usize,
    rate: f64,
    seconds: f64,
    connections: usize,
    server: Option<u32>,
) -> Result<Phase> {
    let per_second = rate / batch as f64;
    let requests = ((per_second * seconds).ceil() as u64).max(connections as u64);
    let interval = Duration::from_secs_f64(1.0 / per_second.max(1e-6));
    let busy = AtomicU64::new(0);
    let late = AtomicU64::new(0);
    let cpu = CpuMark::now(server);
    let start = Instant::now() + Duration::from_millis(50);
    let (acks, elapsed) = on_connections(connections, make, &|c, client, stop, pause| {
        let mut acks = Vec::new();
        let mut k = c as u64;
        while k < requests && !stop.load(Ordering::Relaxed) {
            let due = start + interval.mul_f64(k as f64);
            let now = Instant::now();
            if due > now {
                let _ = pause.recv_timeout(due - now);
            } else if now - due > Duration::from_millis(1) {
                late.fetch_add(1, Ordering::Relaxed);
            }
            let body = bodies
                .get((k % bodies.len().max(1) as u64) as usize)
                .ok_or_else(|| anyhow!("no request body"))?;
            acks.push(post_until_stored(client, body, due, &busy, pause)?);
            k += connections as u64;
        }
        Ok(acks)
    })?;
    Ok(Phase {
        acks,
        elapsed: elapsed.saturating_sub(Duration::from_millis(50)),
        busy: busy.load(Ordering::Relaxed),
        late: late.load(Ordering::Relaxed),
        server_cpu: cpu.server_since(),
        client_cpu: cpu.client_since(),
    })
}

/// Everything measured.
struct Report {
    batch: usize,
    connections: usize,
    full: Phase,
    paced: Option<(f64, Phase)>,
    ledger_before: u64,
    ledger_after: u64,
    /// Acknowledged ranges disjoint and within the ledger's growth.
    ranges_ok: bool,
    /// Events of the run's source the index counts (None: the token may not read).
    indexed: Option<u64>,
    server_pid: Option<u32>,
    peak_rss: Option<u64>,
    /// Entries in the started server's final checkpoint, written when it stopped.
    final_size: Option<u64>,
    conditions: Value,
}

impl Report {
    fn acknowledged(&self) -> u64 {
        self.full.stored() + self.paced.as_ref().map_or(0, |p| p.1.stored())
    }

    /// Every acknowledged event is in the ledger: the acknowledged ranges are disjoint and within
    /// its growth, it grew by at least that much (the server also records each read of the trail
    /// — the index counts this bench makes — as an entry of its own), and the index counts
    /// exactly the run's events under the run's own source.
    fn ok(&self) -> bool {
        let expected = self.ledger_before + self.acknowledged();
        self.ranges_ok
            && self.ledger_after >= expected
            && self.final_size.is_none_or(|n| n >= expected)
            && self.indexed.is_none_or(|n| n == self.acknowledged())
    }

    fn print(&self, args: &BenchServeArgs, base: &str) {
        let full = &self.full;
        let per_event =
            |cpu: Option<Duration>, n: u64| cpu.map(|c| c.as_secs_f64() * 1e6 / n.max(1) as f64);
        if args.output == BenchServeForm::Json {
            let phase = |p: &Phase| {
                json!({
                    "events": p.stored(),
                    "requests": p.acks.len(),
                    "seconds": p.elapsed.as_secs_f64(),
                    "events_per_s": p.rate(),
                    "busy_retries": p.busy,
                    "late_sends": p.late,
                    "ack_latency_ms": p.latency_json(),
                    "server_cpu_us_per_event": per_event(p.server_cpu, p.stored()),
                    "client_cpu_us_per_event": per_event(p.client_cpu, p.stored()),
                })
            };
            let out = json!({
                "server": base,
                "started": args.url.is_none(),
                "batch": self.batch,
                "connections": self.connections,
                "conditions": self.conditions,
                "full_speed": phase(full),
                "paced": self.paced.as_ref().map(|(rate, p)| {
                    let mut v = phase(p);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("offered_events_per_s".into(), json!(rate));
                    }
                    v
                }),
                "server_peak_rss_bytes": self.peak_rss,
                "ledger": {
                    "before": self.ledger_before,
                    "after": self.ledger_after,
                    "acknowledged": self.acknowledged(),
                    "ranges_ok": self.ranges_ok,
                    "final_checkpoint": self.final_size,
                    "indexed": self.indexed,
                    "ok": self.ok(),
                },
            });
            println!("{out}");
            return;
        }
        let lat = |p: &Phase| {
            let l = p.latencies();
            format!(
                "p50 {}  p90 {}  p99 {}  max {}",
                units::duration(percentile(&l, 50.0)),
                units::duration(percentile(&l, 90.0)),
                units::duration(percentile(&l, 99.0)),
                units::duration(percentile(&l, 100.0)),
            )
        };
        let cpu = |p: &Phase| match (
            per_event(p.server_cpu, p.stored()),
            per_event(p.client_cpu, p.stored()),
        ) {
            (Some(s), Some(c)) => {
                format!("; CPU per event: server {s:.1} µs, load generator {c:.1} µs")
            }
            (None, Some(c)) => format!("; CPU per event: load generator {c:.1} µs"),
            _ => String::new(),
        };
        println!(
            "  server          {base} ({})",
            if args.url.is_some() {
                "given".to_owned()
            } else {
                format!("started, pid {}", self.server_pid.unwrap_or(0))
            }
        );
        println!(
            "  full speed      {} events in {} requests in {} = {} events/s, {}/s of NDJSON ({} answered 503 and resent){}",
            units::count(full.stored()),
            units::count(full.acks.len() as u64),
            units::duration(full.elapsed),
            units::count(full.rate() as u64),
            units::bytes(
                (full.rate() * self.conditions["mean_event_bytes"].as_f64().unwrap_or(0.0)) as u64
            ),
            units::count(full.busy),
            cpu(full),
        );
        println!("  ack latency     at full speed: {}", lat(full));
        if let Some((rate, p)) = &self.paced {
            println!(
                "  paced           {} events/s offered, {} achieved: {} requests in {} ({} sent late, {} answered 503){}",
                units::count(*rate as u64),
                units::count(p.rate() as u64),
                units::count(p.acks.len() as u64),
                units::duration(p.elapsed),
                units::count(p.late),
                units::count(p.busy),
                cpu(p),
            );
            println!("  ack latency     paced: {}", lat(p));
        }
        if let Some(rss) = self.peak_rss {
            println!(
                "  server memory   {} peak resident (VmHWM)",
                units::bytes(rss)
            );
        }
        println!(
            "  ledger          {} entries before, {} after{}: {} acknowledged (the rest: reads recorded) — {}",
            units::count(self.ledger_before),
            units::count(self.ledger_after),
            self.final_size
                .map(|n| format!(", {} in the final checkpoint", units::count(n)))
                .unwrap_or_default(),
            units::count(self.acknowledged()),
            if self.ok() {
                "every acknowledged event is in the ledger".to_owned()
            } else if !self.ranges_ok {
                "MISMATCH: acknowledged ranges overlap or lie outside the ledger's growth"
                    .to_owned()
            } else {
                "MISMATCH".to_owned()
            }
        );
        match self.indexed {
            Some(n) => println!(
                "  index           {} events of the run's source counted by /api/v1/stats{}",
                units::count(n),
                if n == self.acknowledged() {
                    ""
                } else {
                    " — MISMATCH"
                }
            ),
            None => println!("  index           not checked (the token may not read)"),
        }
    }
}

/// The ledger's size, from `/healthz` (its latest published checkpoint), once it is at least
/// `expected` or `INDEX_WAIT` has passed: checkpoints are published about once a second.
fn ledger_size(client: &Client, base: &str, expected: u64) -> Result<u64> {
    let deadline = Instant::now() + INDEX_WAIT;
    let (_never, pause) = std::sync::mpsc::channel::<()>();
    loop {
        let (status, v) = client.get(&format!("{base}/healthz"))?;
        if status != 200 {
            bail!("/healthz answered {status}: {v}");
        }
        let size = v.get("entries").and_then(Value::as_u64).unwrap_or(0);
        if size >= expected || Instant::now() >= deadline {
            return Ok(size);
        }
        let _ = pause.recv_timeout(Duration::from_millis(100));
    }
}

/// Events of `source` the index counts, once it counts `expected` or `INDEX_WAIT` has passed;
/// None when the token may not read.
fn indexed(client: &Client, base: &str, source: &str, expected: u64) -> Result<Option<u64>> {
    let url = format!("{base}/api/v1/stats?by=source&q=source:{source}");
    let deadline = Instant::now() + INDEX_WAIT;
    let (_never, pause) = std::sync::mpsc::channel::<()>();
    loop {
        let (status, v) = client.get(&url)?;
        if status == 403 {
            return Ok(None);
        }
        if status != 200 {
            bail!("/api/v1/stats answered {status}: {v}");
        }
        let n: u64 = v
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.get("count").and_then(Value::as_u64))
                    .sum()
            })
            .unwrap_or(0);
        if n == expected || Instant::now() >= deadline {
            return Ok(Some(n));
        }
        let _ = pause.recv_timeout(Duration::from_millis(200));
    }
}

/// Whether the acknowledged ranges are disjoint and lie within `before..after`.
fn ranges_ok(acks: &[&Ack], before: u64, after: u64) -> bool {
    let mut ranges: Vec<(u64, u64)> = acks.iter().filter_map(|a| a.range).collect();
    ranges.sort_unstable();
    let counts_match = acks.iter().all(|a| {
        a.range
            .map_or(a.stored == 0, |(f, l)| l + 1 - f == a.stored)
    });
    let mut next = before;
    for (first, last) in ranges {
        if first < next || last < first || last >= after {
            return false;
        }
        next = last + 1;
    }
    counts_match
}

fn measure(
    args: &BenchServeArgs,
    base: &str,
    token: &str,
    server: Option<u32>,
    bodies: &Arc<Vec<Vec<u8>>>,
) -> Result<Report> {
    // A source name of this run alone, so the index count is this run's.
    let source = format!(
        "bench-{}-{}",
        std::process::id(),
        acta_ledger::now_ms() / 1000
    );
    let make = || Client::new(base, token, &source);
    let probe = make();
    // The token first, with an empty body: a server refuses a body it will not read by closing
    // the connection, which a client still sending it may see as a broken pipe, not as the
    // answer.
    let (status, answer) = probe.post(b"")?;
    match status {
        // Accepted, and the empty body refused.
        400 => {}
        401 | 403 => bail!("the server refused the token ({status}): {answer}"),
        _ => bail!("POST /api/v1/ingest with an empty body answered {status}: {answer}"),
    }
    let ledger_before = ledger_size(&probe, base, 0)?;
    let requests = args.events.div_ceil(args.batch as u64).max(1);
    let progress = |what: &str| {
        if args.output == BenchServeForm::Table {
            eprintln!("  … {what}");
        }
    };
    progress("full speed");
    let full = full_speed(&make, bodies, requests, args.connections, server)?;
    let rate = args.rate.unwrap_or(full.rate() / 2.0);
    let paced = if rate > 0.0 && args.paced_seconds > 0.0 {
        progress(&format!("paced at {} events/s", units::count(rate as u64)));
        Some((
            rate,
            paced(
                &make,
                bodies,
                args.batch,
                rate,
                args.paced_seconds,
                args.connections,
                server,
            )?,
        ))
    } else {
        None
    };
    let peak_rss = server.and_then(peak_rss);
    let all: Vec<&Ack> = full
        .acks
        .iter()
        .chain(paced.iter().flat_map(|p| p.1.acks.iter()))
        .collect();
    let acknowledged: u64 = all.iter().map(|a| a.stored).sum();
    let ledger_after = ledger_size(&probe, base, ledger_before + acknowledged)?;
    let ranges_ok = ranges_ok(&all, ledger_before, ledger_after);
    let indexed = indexed(&probe, base, &source, acknowledged)?;
    Ok(Report {
        batch: args.batch,
        connections: args.connections,
        full,
        paced,
        ledger_before,
        ledger_after,
        ranges_ok,
        indexed,
        server_pid: None,
        peak_rss,
        final_size: None,
        conditions: Value::Null,
    })
}
