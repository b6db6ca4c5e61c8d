//! The writer of `acta serve`: the one owner of the ledger and the index writer.
//!
//! Jobs are stored in the order they reach it, through a pipeline of threads so that consecutive
//! requests overlap and both cores stay busy under load:
//!
//! 1. `acta-writer` frames each job's records into batches (the same framing and format detection
//!    as `acta ingest`) and hands them to a pool of normaliser threads that lives as long as the
//!    server;
//! 2. `acta-submit` takes the normalised batches in order and submits them to the ledger's group
//!    commit, without waiting for the previous ones to be durable;
//! 3. `acta-settle` waits for each batch's receipt (written, synced, under a signed checkpoint),
//!    runs detection on it and appends the findings it raises, and answers a job once all its
//!    batches (and their findings) are durable;
//! 4. `acta-index-feed` hands durable entries to the index in ledger order and commits it at least
//!    every second, so they become searchable.
//!
//! A failure of the ledger or the index stops the writer: the job it was storing and every one
//! queued behind it are answered with the error, and ingest is refused until a restart (which
//! recovers the ledger and indexes what the index lacks).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use acta_ingest::formats::access::SOURCE as ACCESS_SOURCE;
use acta_ingest::formats::{Format, Registry};
use acta_ledger::{Appender, AppenderOptions, Batch, SignedCheckpoint, SourceName, Ticket};
use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use super::metrics;
use crate::datadir::DataDir;
use crate::detection::{Detector, Finding};
use crate::normalise::{self, Done, Output, Pool};
use crate::pipeline::{
    self, FindingsBatch, FrameOptions, Framing, Input, InputReport, Raised, merge,
};
use crate::sinks::{SinkMonitor, Sinks};
use crate::store::Store;

/// Work for the writer, stored in the order it arrives.
pub(super) enum Job {
    Ingest(IngestJob),
    /// One access record (`acta-access`), answered once durable.
    Access {
        record: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Make everything stored so far searchable, and say when it is.
    Commit(tokio::sync::oneshot::Sender<()>),
}

/// One ingest request: records stored through the framing and normalising of `acta ingest`.
pub(super) struct IngestJob {
    pub source: Option<SourceName>,
    pub format: Option<Format>,
    pub body: Vec<u8>,
    pub reply: tokio::sync::oneshot::Sender<Result<Value, String>>,
}

/// What the writer is given besides its jobs.
pub(super) struct WriterSetup {
    pub data: DataDir,
    /// Ingest jobs queued and not yet taken; the writer counts down the ones it takes.
    pub ingest_waiting: Arc<AtomicUsize>,
    /// Detection on ingested records (`[detect]` of acta.toml).
    pub detect: Option<crate::detection::Config>,
    pub metrics: Arc<metrics::Metrics>,
    /// Where the alert sinks' delivery counts are published for `/metrics`.
    pub sinks: Arc<OnceLock<SinkMonitor>>,
}

/// Longest wait for alert sinks to deliver what is queued when the server stops.
const SINK_DEADLINE: Duration = Duration::from_secs(10);

/// Largest record (the largest request body is `max_body_bytes` of `[limits]` in acta.toml).
const MAX_RECORD: usize = super::MAX_BODY;

/// Durable batches that may wait for the index: room for its commits (every second) to pass
/// without holding up answers. A batch waiting holds its rows (about 1,000 of them), not its
/// records, unless the index reads raw words.
const INDEX_QUEUE: usize = 32;

/// Record bytes per batch: a request is split so that every normaliser thread has a share of it,
/// in batches of 256 KiB (or the whole of a smaller request) to 2 MiB, which bounds what the
/// pipeline holds.
fn batch_bytes(body: usize, threads: usize) -> usize {
    (body / threads.max(1) + 1).clamp((body + 1).min(256 << 10), 2 << 20)
}

/// Where a job's answer goes.
enum Reply {
    Ingest(tokio::sync::oneshot::Sender<Result<Value, String>>),
    Access(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// The end of a job, after its batches.
struct Ending {
    /// What framing the job's records found; an error stops the writer.
    report: Result<InputReport, String>,
    reply: Reply,
}

/// From the framing thread to the submitting thread, in order.
enum ToSubmit {
    /// A batch being normalised.
    Batch {
        done: Receiver<Done>,
        source: SourceName,
        received_at: u64,
    },
    End(Ending),
    Commit(tokio::sync::oneshot::Sender<()>),
}

/// From the submitting thread to the settling thread, in order.
enum ToSettle {
    Batch {
        ticket: Result<Ticket, String>,
        done: Done,
        source: SourceName,
    },
    End(Ending),
    Commit(tokio::sync::oneshot::Sender<()>),
}

/// From the settling thread to the index feeder: durable entries (not necessarily in ledger
/// order: findings are appended behind batches already in the ledger's hands), and commits.
enum ToIndex {
    Entries { first: u64, done: Box<Done> },
    Commit(tokio::sync::oneshot::Sender<()>),
}

/// The writer thread: opens the ledger and the index, says whether it could on `ready`, then
/// stores jobs until the queue closes. `ok` is cleared when it stops.
pub(super) fn writer(
    setup: WriterSetup,
    jobs: Receiver<Job>,
    ready: SyncSender<Result<(), String>>,
    ok: Arc<AtomicBool>,
) -> Result<()> {
    let result = write_jobs(setup, jobs, ready, &ok);
    ok.store(false, Ordering::Relaxed);
    if let Err(e) = &result {
        eprintln!("acta: the ledger writer stopped: {e:#}; ingest is refused until a restart");
    }
    result
}

/// What settling needs for detection: the detector and the sinks alerts go to.
struct Detection {
    detector: Detector,
    sinks: Option<Sinks>,
}

fn write_jobs(
    setup: WriterSetup,
    jobs: Receiver<Job>,
    ready: SyncSender<Result<(), String>>,
    ok: &AtomicBool,
) -> Result<()> {
    let WriterSetup {
        data,
        ingest_waiting,
        detect,
        metrics,
        sinks: monitor,
    } = setup;
    let registry = Arc::new(Registry::standard());
    let opened = (|| {
        // Detection's rules and sinks are checked before the server answers anything.
        let mut detection = match &detect {
            Some(config) => Some(Detection {
                detector: Detector::new(config)?,
                sinks: if config.sink.is_empty() {
                    None
                } else {
                    let sinks = Sinks::start(&config.sink)?;
                    let _ = monitor.set(sinks.monitor());
                    Some(sinks)
                },
            }),
            None => None,
        };
        let ledger = data.open_ledger()?;
        let mut store = Store::open(data.root(), None)?;
        let appender = Appender::start(ledger, AppenderOptions::default())?;
        // Entries stored since the index was last brought up to date.
        store.catch_up(
            &data.ledger_dir(),
            &registry,
            &indicatif::ProgressBar::hidden(),
        )?;
        // The behavioural detectors learn from every entry already stored.
        if let Some(d) = detection.as_mut() {
            let learned = d.detector.replay(
                &data.ledger_dir(),
                &registry,
                &indicatif::ProgressBar::hidden(),
            )?;
            eprintln!("acta: detection on; detectors learned from {learned} stored entries");
        }
        Ok::<_, anyhow::Error>((store, appender, detection))
    })();
    let (store, appender, mut detection) = match opened {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return Err(e);
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let keep_records = store.needs_records();
    let rules = detection.as_ref().map(|d| d.detector.rules());
    // Enough batches queued that every normaliser stays busy while the oldest goes to the
    // ledger; as many awaiting their receipt as `acta ingest` keeps.
    let (to_submit, submits) = sync_channel::<ToSubmit>(threads + 1);
    let (to_settle, settles) = sync_channel::<ToSettle>(pipeline::IN_FLIGHT);
    let (to_index, indexes) = sync_channel::<ToIndex>(INDEX_QUEUE);
    let (framed, submitted, settled, indexed) = std::thread::scope(|s| {
        let appender = &appender;
        let settling = Settling {
            appender,
            registry: &registry,
            detection: detection.as_mut(),
            metrics: &metrics,
            to_index,
        };
        let named = |name: &str| std::thread::Builder::new().name(name.into());
        let submit = named("acta-submit").spawn_scoped(s, move || {
            submit(appender, keep_records, submits, to_settle, ok)
        });
        let settle = named("acta-settle").spawn_scoped(s, move || settling.run(settles, ok));
        let index = named("acta-index-feed").spawn_scoped(s, move || index(store, indexes, ok));
        let framed = if submit.is_ok() && settle.is_ok() && index.is_ok() {
            let framing = Framer {
                registry: &registry,
                threads,
                rules,
                ingest_waiting: &ingest_waiting,
            };
            framing.run(jobs, to_submit, ok)
        } else {
            drop(to_submit);
            Err(anyhow!("cannot start the writer's threads"))
        };
        let join = |h: std::io::Result<std::thread::ScopedJoinHandle<'_, Result<()>>>| {
            h.map_err(|e| anyhow!("cannot start a writer thread: {e}"))?
                .join()
                .map_err(|_| anyhow!("a writer thread panicked"))?
        };
        (framed, join(submit), join(settle), join(index))
    });
    let closed = appender.close();
    if let Some(sinks) = detection.and_then(|d| d.sinks) {
        for report in sinks.finish(SINK_DEADLINE) {
            eprintln!("acta: alert sink {report}");
        }
    }
    framed?;
    submitted?;
    settled?;
    indexed?;
    closed?;
    Ok(())
}

/// The first stage: frames jobs into batches for the normaliser pool, in order.
struct Framer<'a> {
    registry: &'a Arc<Registry>,
    threads: usize,
    /// The Sigma rules the normalisers evaluate on each ingested record, with detection on.
    rules: Option<Arc<acta_detect::RuleSet>>,
    ingest_waiting: &'a AtomicUsize,
}

impl Framer<'_> {
    fn run(
        self,
        jobs: Receiver<Job>,
        to_submit: SyncSender<ToSubmit>,
        ok: &AtomicBool,
    ) -> Result<()> {
        let pool = Pool::start(self.registry.clone(), self.threads);
        let stopped = || anyhow!("the ledger writer has stopped");
        for job in jobs {
            if !ok.load(Ordering::Relaxed) {
                // A later stage failed; dropping the job answers it with that.
                break;
            }
            let (opts, input, reply) = match job {
                Job::Commit(reply) => {
                    to_submit
                        .send(ToSubmit::Commit(reply))
                        .map_err(|_| stopped())?;
                    continue;
                }
                Job::Ingest(job) => {
                    self.ingest_waiting.fetch_sub(1, Ordering::AcqRel);
                    let opts = FrameOptions {
                        source: job.source,
                        format: job.format,
                        registry: self.registry.clone(),
                        max_record_bytes: MAX_RECORD,
                        batch_bytes: batch_bytes(job.body.len(), self.threads),
                    };
                    let input = Input::Bytes {
                        name: "request".into(),
                        data: job.body,
                    };
                    (opts, input, Reply::Ingest(job.reply))
                }
                // Reads of the trail are recorded, not detected on.
                Job::Access { record, reply } => {
                    let opts = FrameOptions {
                        source: SourceName::new(ACCESS_SOURCE).ok(),
                        format: Some(Format::Access),
                        registry: self.registry.clone(),
                        max_record_bytes: MAX_RECORD,
                        batch_bytes: record.len() + 1,
                    };
                    let input = Input::Bytes {
                        name: "access record".into(),
                        data: record,
                    };
                    (opts, input, Reply::Access(reply))
                }
            };
            let report = pipeline::frame_input(input, "request", &opts, &mut |framed| {
                // A body in memory never pauses.
                let Framing::Batch(f) = framed else {
                    return Ok(());
                };
                if !ok.load(Ordering::Relaxed) {
                    return Err(stopped());
                }
                let done = pool.submit(normalise::Job {
                    data: f.data,
                    spans: f.spans,
                    choice: f.choice,
                    received_at_ms: i64::try_from(f.received_at).unwrap_or(i64::MAX),
                    source: f.source.as_str().to_owned(),
                    output: Output::Rows,
                    // Records acta writes itself (reads of the trail) are not detected on.
                    rules: self
                        .rules
                        .clone()
                        .filter(|_| !Format::is_reserved_source(f.source.as_str())),
                })?;
                to_submit
                    .send(ToSubmit::Batch {
                        done,
                        source: f.source,
                        received_at: f.received_at,
                    })
                    .map_err(|_| stopped())
            });
            let ending = Ending {
                report: report.map_err(|e| format!("{e:#}")),
                reply,
            };
            to_submit
                .send(ToSubmit::End(ending))
                .map_err(|_| stopped())?;
        }
        Ok(())
    }
}

/// The second stage: submits normalised batches to the ledger in order, without waiting for
/// their receipts.
fn submit(
    appender: &Appender,
    keep_records: bool,
    batches: Receiver<ToSubmit>,
    to_settle: SyncSender<ToSettle>,
    ok: &AtomicBool,
) -> Result<()> {
    for msg in batches {
        let next = match msg {
            ToSubmit::End(e) => ToSettle::End(e),
            ToSubmit::Commit(reply) => ToSettle::Commit(reply),
            ToSubmit::Batch {
                done,
                source,
                received_at,
            } => {
                let mut done = done
                    .recv()
                    .map_err(|_| anyhow!("a normaliser thread stopped unexpectedly"))?;
                // When the index reads the words of raw records, the records stay with the batch
                // for it.
                let (data, spans) = if keep_records {
                    (done.data.clone(), done.spans.clone())
                } else {
                    (
                        std::mem::take(&mut done.data),
                        std::mem::take(&mut done.spans),
                    )
                };
                // Once a later stage has failed, nothing more is stored: the jobs queued behind the
                // failure are answered with it, and none of their records may be durable.
                let ticket = if ok.load(Ordering::Relaxed) {
                    Batch::from_parts(source.clone(), received_at, data, spans)
                        .map_err(|e| e.to_string())
                        .and_then(|b| appender.submit(b).map_err(|e| e.to_string()))
                } else {
                    Err("the ledger writer has stopped".into())
                };
                ToSettle::Batch {
                    ticket,
                    done,
                    source,
                }
            }
        };
        if to_settle.send(next).is_err() {
            // The settling thread stopped and said why.
            break;
        }
    }
    Ok(())
}

/// What the batches of one job stored so far.
#[derive(Default)]
struct Stored {
    entries: u64,
    first: Option<u64>,
    last: Option<u64>,
    checkpoint: Option<SignedCheckpoint>,
    flagged: BTreeMap<String, u64>,
    not_events: BTreeMap<String, u64>,
    formats: BTreeMap<Format, u64>,
    /// Findings appended for the job's records.
    alerts: u64,
}

impl Stored {
    /// Keeps the newest checkpoint seen: a batch's findings may be covered by a later checkpoint
    /// than the job's next batch.
    fn saw(&mut self, checkpoint: SignedCheckpoint) {
        if self
            .checkpoint
            .as_ref()
            .is_none_or(|c| c.checkpoint.size < checkpoint.checkpoint.size)
        {
            self.checkpoint = Some(checkpoint);
        }
    }

    /// The answer to an ingest request, once every batch of it is durable.
    fn answer(mut self, report: InputReport) -> Value {
        merge(&mut self.flagged, &report.flagged);
        json!({
            "stored": self.entries,
            "first": self.first,
            "last": self.last,
            "checkpoint": self.checkpoint.as_ref().map(|c| json!({
                "size": c.checkpoint.size,
                "root": c.checkpoint.root.to_string(),
            })),
            "normalised": self
                .formats
                .iter()
                .map(|(f, n)| (f.name().to_owned(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
            "flagged": self.flagged,
            "not_events": self.not_events,
            "rejected": report.rejected_count,
            "problems": report.failures.iter().chain(&report.rejected).collect::<Vec<_>>(),
            "alerts": self.alerts,
        })
    }
}

/// The third stage: receipts, detection and answers.
struct Settling<'a> {
    appender: &'a Appender,
    registry: &'a Registry,
    detection: Option<&'a mut Detection>,
    metrics: &'a metrics::Metrics,
    to_index: SyncSender<ToIndex>,
}

impl Settling<'_> {
    /// Waits for each batch's receipt, answers each job once all its batches are durable, and
    /// passes the entries on to be indexed.
    fn run(mut self, batches: Receiver<ToSettle>, ok: &AtomicBool) -> Result<()> {
        let mut stored = Stored::default();
        let failure = loop {
            let Ok(msg) = batches.recv() else {
                return Ok(());
            };
            let settled = match msg {
                ToSettle::Batch {
                    ticket,
                    done,
                    source,
                } => self.batch(ticket, done, &source, &mut stored),
                ToSettle::End(ending) => self.end(ending, std::mem::take(&mut stored)),
                ToSettle::Commit(reply) => self
                    .to_index
                    .send(ToIndex::Commit(reply))
                    .map_err(|_| index_stopped()),
            };
            if let Err(e) = settled {
                break e;
            }
        };
        // The ledger or the index failed: nothing more is stored. The job being stored and every
        // one queued behind it are answered with the failure.
        ok.store(false, Ordering::Relaxed);
        for msg in batches {
            if let ToSettle::End(Ending { reply, .. }) = msg {
                answer(reply, Err(failure.clone()));
            }
        }
        Err(anyhow!("{failure}"))
    }

    fn batch(
        &mut self,
        ticket: Result<Ticket, String>,
        done: Done,
        source: &SourceName,
        stored: &mut Stored,
    ) -> Result<(), String> {
        let receipt = ticket.and_then(|t| t.wait().map_err(|e| e.to_string()))?;
        if receipt.count > 0 {
            stored.first.get_or_insert(receipt.first);
            stored.last = Some(receipt.first + receipt.count - 1);
        }
        stored.entries += receipt.count;
        stored.saw(receipt.checkpoint);
        merge(&mut stored.flagged, &done.flagged);
        merge(&mut stored.not_events, &done.not_events);
        for (f, c) in &done.formats {
            *stored.formats.entry(*f).or_insert(0) += c;
        }
        let mut findings = Vec::new();
        // The detector passes over the records acta writes itself.
        if let Some(d) = self.detection.as_mut() {
            d.detector
                .observe_batch(receipt.first, source.as_str(), &done, &mut findings);
        }
        self.to_index
            .send(ToIndex::Entries {
                first: receipt.first,
                done: Box::new(done),
            })
            .map_err(|_| index_stopped())?;
        self.raise(findings, stored)
    }

    /// Appends findings behind the batches already in the ledger's hands and waits until they are
    /// durable; then their alerts go to standard error, the sinks and the metrics.
    fn raise(&mut self, findings: Vec<Finding>, stored: &mut Stored) -> Result<(), String> {
        if findings.is_empty() {
            return Ok(());
        }
        let f = FindingsBatch::new(findings, self.registry, true).map_err(|e| format!("{e:#}"))?;
        let receipt = self
            .appender
            .submit(f.batch)
            .and_then(Ticket::wait)
            .map_err(|e| e.to_string())?;
        stored.alerts += receipt.count;
        stored.saw(receipt.checkpoint);
        self.to_index
            .send(ToIndex::Entries {
                first: receipt.first,
                done: Box::new(f.done),
            })
            .map_err(|_| index_stopped())?;
        for (k, alert) in f.alerts.into_iter().enumerate() {
            let raised = Raised::of(&alert);
            self.metrics.alert(
                &raised.severity,
                raised.from_event_ms,
                raised.from_receipt_ms,
            );
            eprintln!("{}", pipeline::alert_line(&alert, receipt.first + k as u64));
            if let Some(sinks) = self.detection.as_ref().and_then(|d| d.sinks.as_ref()) {
                sinks.send(alert);
            }
        }
        Ok(())
    }

    /// Answers a job whose batches are all durable. An ingest request's correlation windows
    /// still open close with it, as they close at the end of `acta ingest`.
    fn end(&mut self, ending: Ending, mut stored: Stored) -> Result<(), String> {
        let Ending { report, reply } = ending;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                answer(reply, Err(e.clone()));
                return Err(e);
            }
        };
        match reply {
            Reply::Access(reply) => {
                let _ = reply.send(if stored.entries == 1 {
                    Ok(())
                } else {
                    Err(format!(
                        "the access record was not stored: {}",
                        report
                            .failures
                            .iter()
                            .chain(&report.rejected)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("; ")
                    ))
                });
            }
            Reply::Ingest(reply) => {
                let mut last = Vec::new();
                if let Some(d) = self.detection.as_mut() {
                    d.detector.finish_stream(&mut last);
                }
                if let Err(e) = self.raise(last, &mut stored) {
                    let _ = reply.send(Err(e.clone()));
                    return Err(e);
                }
                let _ = reply.send(Ok(stored.answer(report)));
            }
        }
        Ok(())
    }
}

fn index_stopped() -> String {
    "the index writer stopped".into()
}

fn answer(reply: Reply, failure: Result<(), String>) {
    match reply {
        Reply::Ingest(r) => {
            let _ = r.send(failure.map(|()| Value::Null));
        }
        Reply::Access(r) => {
            let _ = r.send(failure);
        }
    }
}

/// The last stage: hands durable entries to the index in ledger order (findings may arrive ahead
/// of batches the ledger stored before them, and wait for those); commits at least every second
/// while entries arrive, and on demand once everything before the demand is in.
fn index(mut store: Store, entries: Receiver<ToIndex>, ok: &AtomicBool) -> Result<()> {
    let mut early: BTreeMap<u64, Box<Done>> = BTreeMap::new();
    // Commits asked for, each with the ledger index the entries handed over before it reach.
    let mut commits: Vec<(u64, tokio::sync::oneshot::Sender<()>)> = Vec::new();
    let result = (|| loop {
        match entries.recv_timeout(Duration::from_millis(500)) {
            Ok(ToIndex::Entries { first, mut done }) => {
                if first < store.next() {
                    return Err(anyhow!(
                        "the index is out of step: it has entries up to {}, given entries from {first} again",
                        store.next()
                    ));
                }
                if first > store.next() {
                    early.insert(first, done);
                    continue;
                }
                store.append(first, &mut done)?;
                while let Some(mut done) = early.remove(&store.next()) {
                    store.append(store.next(), &mut done)?;
                }
            }
            Ok(ToIndex::Commit(reply)) => {
                let reach = early
                    .iter()
                    .next_back()
                    .map_or(store.next(), |(first, d)| first + d.rows.len() as u64);
                commits.push((reach, reply));
            }
            Err(RecvTimeoutError::Timeout) => store.commit_if_due()?,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        if commits.iter().any(|(reach, _)| *reach <= store.next()) {
            store.commit()?;
            let next = store.next();
            let (answered, waiting) = commits
                .drain(..)
                .partition::<Vec<_>, _>(|(reach, _)| *reach <= next);
            commits = waiting;
            for (_, reply) in answered {
                // A closed receiver is a caller that stopped waiting.
                let _ = reply.send(());
            }
        }
    })();
    if result.is_err() {
        // Stop taking requests at once; the entries already queued are durable in the ledger and
        // are indexed at the next start.
        ok.store(false, Ordering::Relaxed);
    }
    let closed = store.close();
    result.and(closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_shared_among_the_normaliser_threads() {
        // 2.2 MB over two threads: two batches of half each.
        assert_eq!(batch_bytes(2_200_000, 2), 1_100_001);
        // Small requests: one batch, no larger than the request.
        assert_eq!(batch_bytes(100_000, 2), 100_001);
        assert_eq!(batch_bytes(400_000, 2), 256 << 10);
        // Large ones: batches of at most 2 MiB.
        assert_eq!(batch_bytes(64 << 20, 2), 2 << 20);
    }
}
