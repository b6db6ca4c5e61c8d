//! The ingest pipeline shared by `acta ingest` and `acta bench ingest`.
//!
//! Three stages overlap: the calling thread frames input into batches of about 4 MiB and fixes
//! each batch's parser choice; a pool of worker threads normalises batches (parsing is the most
//! expensive step); the ledger's writer thread hashes, writes and syncs them. Batches are handed
//! to the ledger in input order as their normalisation completes, and their events are written to
//! the event store once the ledger has acknowledged them. A batch counts as stored only when its
//! receipt arrives (after the sync). A dry run replaces the ledger with printing the events.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use acta_ingest::formats::{Choice, Format, InputNormaliser, Registry};
use acta_ingest::framing::{
    Flag, Framer, FramerConfig, QuotedNewlines, RecordBatch, open_bytes, open_input,
};
use acta_ledger::{Appender, Batch, SignedCheckpoint, SourceName, Ticket, now_ms};
use anyhow::{Result, anyhow};
use indicatif::ProgressBar;

use crate::detection::{self, Detector, Finding};
use crate::normalise::{Done, Job, Output, Pool};
use crate::sinks::{Alert, Sinks};
use crate::store::Store;
use acta_ingest::formats::finding::SOURCE as FINDING_SOURCE;

/// Batches handed to the ledger and not yet acknowledged, by default: enough that framing and
/// normalising go on while the ledger syncs earlier batches.
pub const IN_FLIGHT: usize = 6;

/// How to ingest.
pub struct Options {
    /// Source name for every entry; by default each input's detected format name.
    pub source: Option<SourceName>,
    /// `--format`: the parser for every input.
    pub format: Option<Format>,
    pub registry: Arc<Registry>,
    pub max_record_bytes: usize,
    /// Record bytes per batch.
    pub batch_bytes: usize,
    /// Batches submitted to the ledger but not yet acknowledged.
    pub in_flight: usize,
    /// Normaliser threads.
    pub threads: usize,
    /// Where to write one JSON line per acknowledged batch.
    pub receipts: Option<Box<dyn Write>>,
    pub progress: ProgressBar,
}

/// Where batches go once normalised.
pub enum Sink<'a> {
    /// Into the ledger, and into the investigation store once acknowledged; with detection,
    /// each acknowledged batch is evaluated and its alerts appended too.
    Ledger {
        appender: &'a Appender,
        store: Option<&'a mut Store>,
        detect: Option<Detect<'a>>,
    },
    /// Printed as NDJSON (with `raw_data`), nothing stored.
    Print(&'a mut dyn Write),
}

/// Detection on the ingest path.
pub struct Detect<'a> {
    pub detector: &'a mut Detector,
    /// Where alerts go once the ledger holds them.
    pub sinks: Option<&'a Sinks>,
    /// Also print one line per alert on standard error.
    pub print: bool,
}

/// What an ingest run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub inputs: usize,
    pub entries: u64,
    pub bytes: u64,
    /// Events printed (dry run).
    pub printed: u64,
    /// Stored records that were flagged (not normalised, or damaged framing), by reason.
    pub flagged: BTreeMap<String, u64>,
    /// Records recognised as no event of their own, by reason.
    pub not_events: BTreeMap<String, u64>,
    /// Records normalised, per format.
    pub formats: BTreeMap<Format, u64>,
    /// Records not stored (over the size limit), with one line each.
    pub rejected: Vec<String>,
    pub rejected_count: u64,
    /// Inputs that failed (not found, truncated…), one line each.
    pub failures: Vec<String>,
    /// Notes worth telling the user (empty inputs…).
    pub notes: Vec<String>,
    pub elapsed: Duration,
    pub checkpoint: Option<SignedCheckpoint>,
    /// Submit-to-acknowledgement time of each batch.
    pub ack_latencies: Vec<Duration>,
    /// Findings (alerts) appended to the ledger.
    pub findings: u64,
    /// The alerts appended, once the ledger holds them.
    pub raised: Vec<Raised>,
    /// Ledger indices of the first and last entry stored for the inputs (alerts raised by a
    /// batch are appended behind it, so with several batches they may lie in between).
    pub first_entry: Option<u64>,
    pub last_entry: Option<u64>,
}

/// An alert the ledger holds: its severity and how long it took.
#[derive(Debug, Clone)]
pub struct Raised {
    pub severity: String,
    /// Milliseconds from the event to the alert.
    pub from_event_ms: Option<i64>,
    /// Milliseconds from acta's receipt of the event to the alert.
    pub from_receipt_ms: Option<i64>,
}

impl Raised {
    pub fn of(alert: &crate::sinks::Alert) -> Raised {
        let finding: serde_json::Value =
            serde_json::from_str(&alert.json).unwrap_or(serde_json::Value::Null);
        let t = &finding["unmapped"]["acta"];
        let at = |k: &str| t[k].as_i64();
        let alerted = at("alert_time");
        Raised {
            severity: alert.severity.clone(),
            from_event_ms: alerted.zip(at("event_time")).map(|(a, e)| a - e),
            from_receipt_ms: alerted.zip(at("ingest_time")).map(|(a, r)| a - r),
        }
    }
}

/// A batch being normalised.
struct Normalising {
    rx: Receiver<Done>,
    source: SourceName,
    received_at: u64,
    input: usize,
    first_record: u64,
    bytes: u64,
}

/// A batch in the ledger's hands.
struct Pending {
    ticket: Ticket,
    submitted: Instant,
    done: Done,
    source: SourceName,
    input: usize,
    first_record: u64,
    bytes: u64,
    /// For a batch of findings: the alerts, for the sinks once the ledger holds them.
    alerts: Option<Vec<Alert>>,
}

/// Ingests every input. Problems with one input are recorded in the summary and the next input
/// is read; an error is returned only when the ledger (or the output) fails.
pub fn run(sink: Sink<'_>, inputs: &[PathBuf], opts: Options) -> Result<Summary> {
    let inputs = inputs.iter().cloned().map(Input::File).collect();
    run_inputs(sink, inputs, opts)
}

/// One input of [`run_inputs`].
pub enum Input {
    /// A file, or `-` for standard input.
    File(PathBuf),
    /// Records already in memory (an HTTP request body), named for messages.
    Bytes { name: String, data: Vec<u8> },
}

/// [`run`] over files or bytes in memory.
pub fn run_inputs(sink: Sink<'_>, inputs: Vec<Input>, mut opts: Options) -> Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary {
        inputs: inputs.len(),
        ..Summary::default()
    };
    let names: Vec<String> = inputs
        .iter()
        .map(|i| match i {
            Input::File(p) => display_name(p),
            Input::Bytes { name, .. } => name.clone(),
        })
        .collect();
    let pool = Pool::start(opts.registry.clone(), opts.threads);
    let rules = match &sink {
        Sink::Ledger {
            detect: Some(d), ..
        } => Some(d.detector.rules()),
        _ => None,
    };
    let (freed, to_free) = std::sync::mpsc::channel::<Done>();
    let freeing = std::thread::Builder::new()
        .name("acta-free".into())
        .spawn(move || to_free.into_iter().for_each(drop))
        .ok();
    let mut stages = Stages {
        sink,
        normalising: VecDeque::new(),
        pending: VecDeque::new(),
        freed: freeing.is_some().then_some(freed),
    };
    let framing = FrameOptions {
        source: opts.source.clone(),
        format: opts.format,
        registry: opts.registry.clone(),
        max_record_bytes: opts.max_record_bytes,
        batch_bytes: opts.batch_bytes,
    };
    for (n, input) in inputs.into_iter().enumerate() {
        let name = names.get(n).cloned().unwrap_or_default();
        let report = frame_input(input, &name, &framing, &mut |framed| {
            let f = match framed {
                Framing::Batch(f) => f,
                // The input paused (a stream on standard input): store, index and check
                // everything read so far now rather than when a batch fills.
                Framing::Paused => return stages.flush(&names, &mut summary, &mut opts),
            };
            let rx = pool.submit(Job {
                data: f.data,
                spans: f.spans,
                choice: f.choice,
                received_at_ms: i64::try_from(f.received_at).unwrap_or(i64::MAX),
                source: f.source.as_str().to_owned(),
                output: match &stages.sink {
                    Sink::Print(_) => Output::Print,
                    Sink::Ledger {
                        store: None,
                        detect: None,
                        ..
                    } => Output::Count,
                    Sink::Ledger { .. } => Output::Rows,
                },
                rules: rules.clone(),
            })?;
            stages.normalising.push_back(Normalising {
                rx,
                source: f.source,
                received_at: f.received_at,
                input: n,
                first_record: f.first_record,
                bytes: f.bytes,
            });
            // Enough batches queued that every worker stays busy while this thread waits on
            // the ledger: move the oldest on.
            while stages.normalising.len() > opts.threads + 1 {
                stages.advance(&names, &mut summary, &mut opts)?;
            }
            Ok(())
        })?;
        summary.absorb(report);
    }
    stages.flush(&names, &mut summary, &mut opts)?;
    // Correlation windows still open close with the stream.
    let mut last = Vec::new();
    if let Sink::Ledger {
        detect: Some(d), ..
    } = &mut stages.sink
    {
        d.detector.finish_stream(&mut last);
    }
    if !last.is_empty() {
        stages.append_findings(last, &opts.registry)?;
        stages.flush(&names, &mut summary, &mut opts)?;
    }
    if let Sink::Print(out) = &mut stages.sink {
        out.flush()?;
    }
    stages.freed = None;
    if let Some(freeing) = freeing {
        let _ = freeing.join();
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// How inputs are framed into batches: the part of [`Options`] framing reads.
#[derive(Clone)]
pub struct FrameOptions {
    pub source: Option<SourceName>,
    pub format: Option<Format>,
    pub registry: Arc<Registry>,
    pub max_record_bytes: usize,
    /// Record bytes per batch.
    pub batch_bytes: usize,
}

/// A batch of records framed from an input, its parser choice fixed: ready to normalise.
pub struct Framed {
    pub data: Vec<u8>,
    /// The records, as ranges of `data` (the events a wrapper record holds, split).
    pub spans: Vec<Range<usize>>,
    pub choice: Choice,
    /// Source name the batch is stored under.
    pub source: SourceName,
    /// Position of the batch's first record in its input.
    pub first_record: u64,
    /// Record bytes.
    pub bytes: u64,
    /// When the batch was framed (epoch ms): its entries' reception time.
    pub received_at: u64,
}

/// What [`frame_input`] hands its caller, in input order.
pub enum Framing {
    Batch(Framed),
    /// The input paused (a stream waiting for more): what was framed so far should be stored now.
    Paused,
}

/// What framing one input found besides its batches.
#[derive(Debug, Default)]
pub struct InputReport {
    /// Records with damaged framing, by reason.
    pub flagged: BTreeMap<String, u64>,
    /// Records not stored (over the size limit), one line each.
    pub rejected: Vec<String>,
    pub rejected_count: u64,
    /// The input failed (not found, truncated…), one line each.
    pub failures: Vec<String>,
    /// Notes worth telling the user (an empty input…).
    pub notes: Vec<String>,
}

impl Summary {
    /// Adds what framing an input found.
    pub fn absorb(&mut self, report: InputReport) {
        merge(&mut self.flagged, &report.flagged);
        self.rejected_count += report.rejected_count;
        self.rejected.extend(report.rejected);
        self.failures.extend(report.failures);
        self.notes.extend(report.notes);
    }
}

/// Frames one input into batches of about `opts.batch_bytes`, fixing each batch's parser choice
/// and source name, and hands each to `each` in input order. Problems with the input are in the
/// report; an error is returned only when `each` fails (or a detected format has no valid source
/// name).
pub fn frame_input(
    input: Input,
    name: &str,
    opts: &FrameOptions,
    each: &mut dyn FnMut(Framing) -> Result<()>,
) -> Result<InputReport> {
    let mut report = InputReport::default();
    let (opened, quoted_newlines) = match input {
        Input::File(path) => (
            open_input(&path).map_err(|e| e.to_string()),
            QuotedNewlines::for_path(&path),
        ),
        Input::Bytes { data, .. } => {
            // No file name to go by: a PostgreSQL csvlog body is known by its first line.
            let quoted = QuotedNewlines::for_bytes(&data);
            (open_bytes(data).map_err(|e| format!("{name}: {e}")), quoted)
        }
    };
    let reader = match opened {
        Ok(r) => r,
        Err(e) => {
            report.failures.push(e);
            return Ok(report);
        }
    };
    let config = FramerConfig {
        max_record_bytes: opts.max_record_bytes,
        // The parsers read every record and judge it; validating here as well would cost the
        // framing thread a second JSON parse per record.
        check_json: false,
        // pgaudit statements and csvlog records may span lines inside quotes.
        quoted_newlines,
    };
    let mut framer = Framer::new(name.to_owned(), reader, config);
    let mut input = InputNormaliser::new(opts.format);
    let mut source: Option<SourceName> = opts.source.clone();
    let mut ordinal = 0u64;
    loop {
        // A fresh buffer per batch (the batch moves on), sized so it never regrows.
        let mut records = RecordBatch {
            data: Vec::with_capacity(opts.batch_bytes + (64 << 10)),
            records: Vec::with_capacity(opts.batch_bytes / 256),
        };
        let more = framer.next_batch(&mut records, opts.batch_bytes);
        let framed = !records.is_empty();
        if framed {
            let mut spans = Vec::with_capacity(records.len());
            for (bytes, meta) in records.iter() {
                if let Some(reason) = framing_flag(meta.flag) {
                    *report.flagged.entry(reason).or_insert(0) += 1;
                }
                match input.split(&opts.registry, bytes) {
                    Some(parts) => spans.extend(
                        parts
                            .into_iter()
                            .map(|r| meta.range.start + r.start..meta.range.start + r.end),
                    ),
                    None => spans.push(meta.range.clone()),
                }
            }
            let data = std::mem::take(&mut records.data);
            let choice = input.prepare(
                &opts.registry,
                spans
                    .iter()
                    .map(|s| data.get(s.clone()).unwrap_or_default()),
            );
            let source = match &source {
                Some(s) => s.clone(),
                None => {
                    let s = SourceName::new(input.format().map_or("raw", Format::name))?;
                    source = Some(s.clone());
                    s
                }
            };
            let count = spans.len() as u64;
            let bytes = spans.iter().map(|s| s.len() as u64).sum();
            each(Framing::Batch(Framed {
                data,
                spans,
                choice,
                source,
                first_record: ordinal,
                bytes,
                received_at: now_ms(),
            }))?;
            ordinal += count;
        }
        match more {
            Ok(true) if !framed => each(Framing::Paused)?,
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                report.failures.push(e.to_string());
                break;
            }
        }
    }
    let framing = framer.report();
    report.rejected_count += framing.rejected_count;
    for r in &framing.rejected {
        report
            .rejected
            .push(format!("{name}:{}: {}", r.line, r.reason));
    }
    if framing.empty {
        report
            .notes
            .push(format!("{name}: empty, nothing to store"));
    }
    if let Some((line, why)) = &framing.switched_to_lines {
        report.notes.push(format!(
            "{name}:{line}: {why}; the rest was stored line by line and flagged"
        ));
    }
    Ok(report)
}

struct Stages<'a> {
    sink: Sink<'a>,
    normalising: VecDeque<Normalising>,
    pending: VecDeque<Pending>,
    /// Batches done with, freed on a thread of their own: a batch's rows are tens of thousands
    /// of small allocations, time the framing thread is better spent on.
    freed: Option<std::sync::mpsc::Sender<Done>>,
}

impl Stages<'_> {
    /// Takes the oldest normalised batch to the ledger (or prints it).
    fn advance(
        &mut self,
        names: &[String],
        summary: &mut Summary,
        opts: &mut Options,
    ) -> Result<()> {
        let Some(n) = self.normalising.pop_front() else {
            return Ok(());
        };
        let mut done =
            n.rx.recv()
                .map_err(|_| anyhow!("a normaliser thread stopped unexpectedly"))?;
        merge(&mut summary.flagged, &done.flagged);
        merge(&mut summary.not_events, &done.not_events);
        for (f, c) in &done.formats {
            *summary.formats.entry(*f).or_insert(0) += c;
        }
        match &mut self.sink {
            Sink::Print(out) => {
                for ev in done.events.iter().flatten() {
                    out.write_all(done.json.get(ev.clone()).unwrap_or_default())?;
                    out.write_all(b"\n")?;
                    summary.printed += 1;
                }
                summary.entries += done.spans.len() as u64;
                summary.bytes += n.bytes;
                opts.progress.inc(n.bytes);
                Ok(())
            }
            Sink::Ledger {
                appender, store, ..
            } => {
                let appender: &Appender = appender;
                // When the store indexes the words of raw records, the records stay with the
                // batch too: the store reads them once the ledger has acknowledged them.
                let (data, spans) = if store.as_ref().is_some_and(|s| s.needs_records()) {
                    (done.data.clone(), done.spans.clone())
                } else {
                    (
                        std::mem::take(&mut done.data),
                        std::mem::take(&mut done.spans),
                    )
                };
                let batch = Batch::from_parts(n.source.clone(), n.received_at, data, spans)?;
                // A loop: settling a batch may queue its findings behind it.
                while self.pending.len() >= opts.in_flight {
                    self.settle(names, summary, opts)?;
                }
                let ticket = appender.submit(batch)?;
                self.pending.push_back(Pending {
                    ticket,
                    submitted: Instant::now(),
                    done,
                    source: n.source,
                    input: n.input,
                    first_record: n.first_record,
                    bytes: n.bytes,
                    alerts: None,
                });
                Ok(())
            }
        }
    }

    /// Waits for the oldest batch in the ledger's hands and records it.
    fn settle(
        &mut self,
        names: &[String],
        summary: &mut Summary,
        opts: &mut Options,
    ) -> Result<()> {
        let Some(mut p) = self.pending.pop_front() else {
            return Ok(());
        };
        let receipt = p.ticket.wait()?;
        let mut findings = Vec::new();
        if let Sink::Ledger { store, detect, .. } = &mut self.sink {
            if let Some(d) = detect.as_mut()
                && p.alerts.is_none()
            {
                d.detector
                    .observe_batch(receipt.first, p.source.as_str(), &p.done, &mut findings);
            }
            if let Some(store) = store.as_mut() {
                store.append(receipt.first, &mut p.done)?;
            }
            if let (Some(alerts), Some(d)) = (p.alerts.take(), detect.as_ref()) {
                summary.findings += receipt.count;
                for (k, alert) in alerts.into_iter().enumerate() {
                    summary.raised.push(Raised::of(&alert));
                    if d.print {
                        let line = alert_line(&alert, receipt.first + k as u64);
                        opts.progress.suspend(|| eprintln!("{line}"));
                    }
                    if let Some(sinks) = d.sinks {
                        sinks.send(alert);
                    }
                }
                summary.checkpoint = Some(receipt.checkpoint);
                return Ok(());
            }
        }
        if !findings.is_empty() {
            self.append_findings(findings, &opts.registry)?;
        }
        summary.ack_latencies.push(
            receipt
                .acknowledged_at
                .saturating_duration_since(p.submitted),
        );
        summary.entries += receipt.count;
        if receipt.count > 0 {
            summary.first_entry.get_or_insert(receipt.first);
            summary.last_entry = Some(receipt.first + receipt.count - 1);
        }
        summary.bytes += p.bytes;
        opts.progress.inc(p.bytes);
        if let Some(w) = opts.receipts.as_mut() {
            let line = serde_json::json!({
                "input": names.get(p.input),
                "records": [p.first_record, receipt.count],
                "entries": [receipt.first, receipt.count],
                "checkpoint": receipt.checkpoint.checkpoint.size,
            });
            writeln!(w, "{line}")?;
            w.flush()?;
        }
        summary.checkpoint = Some(receipt.checkpoint);
        if let Some(freed) = &self.freed {
            // When the thread is gone the batch is simply freed here.
            let _ = freed.send(p.done);
        }
        Ok(())
    }
}

impl Stages<'_> {
    /// Takes every batch through to the ledger and the store (committed when due).
    fn flush(&mut self, names: &[String], summary: &mut Summary, opts: &mut Options) -> Result<()> {
        while !self.normalising.is_empty() {
            self.advance(names, summary, opts)?;
        }
        while !self.pending.is_empty() {
            self.settle(names, summary, opts)?;
        }
        if let Sink::Ledger {
            store: Some(store), ..
        } = &mut self.sink
        {
            store.commit_if_due()?;
        }
        Ok(())
    }

    /// Appends the findings of an acknowledged batch to the ledger, after the batches already in
    /// its hands; they reach the store and the sinks when acknowledged in turn.
    fn append_findings(&mut self, findings: Vec<Finding>, registry: &Registry) -> Result<()> {
        let Sink::Ledger {
            appender, store, ..
        } = &self.sink
        else {
            return Ok(());
        };
        // Rows only for an investigation store to index.
        let f = FindingsBatch::new(findings, registry, store.is_some())?;
        let ticket = appender.submit(f.batch)?;
        self.pending.push_back(Pending {
            ticket,
            submitted: Instant::now(),
            done: f.done,
            source: f.source,
            input: usize::MAX,
            first_record: 0,
            bytes: 0,
            alerts: Some(f.alerts),
        });
        Ok(())
    }
}

/// Findings made ready for the ledger, as one batch under the source `acta-finding`.
pub struct FindingsBatch {
    pub batch: Batch,
    pub source: SourceName,
    /// The same records, with their rows for the investigation store (when asked for).
    pub done: Done,
    /// The alerts, for the sinks once the ledger holds the batch.
    pub alerts: Vec<Alert>,
}

impl FindingsBatch {
    pub fn new(findings: Vec<Finding>, registry: &Registry, rows: bool) -> Result<FindingsBatch> {
        let received_at = now_ms();
        let received_at_ms = i64::try_from(received_at).unwrap_or(i64::MAX);
        let mut data = Vec::new();
        let mut spans = Vec::with_capacity(findings.len());
        for f in &findings {
            let start = data.len();
            data.extend_from_slice(f.json.as_bytes());
            spans.push(start..data.len());
        }
        let source = SourceName::new(FINDING_SOURCE)?;
        let rows = if rows {
            detection::finding_rows(registry, &findings, received_at_ms)
        } else {
            Vec::new()
        };
        let batch = Batch::from_parts(source.clone(), received_at, data.clone(), spans.clone())?;
        Ok(FindingsBatch {
            batch,
            source,
            done: Done {
                data,
                spans,
                json: Vec::new(),
                events: Vec::new(),
                rows,
                received_at_ms,
                flagged: BTreeMap::new(),
                not_events: BTreeMap::new(),
                formats: BTreeMap::new(),
                matched: Vec::new(),
            },
            alerts: findings.into_iter().filter_map(|f| f.alert).collect(),
        })
    }
}

/// The line an alert is told on standard error, `index` being its finding's ledger index.
pub fn alert_line(alert: &Alert, index: u64) -> String {
    format!(
        "alert [{}] {} — {} (finding {index})",
        alert.severity, alert.title, alert.message
    )
}

/// Adds counts by reason to `into`.
pub(crate) fn merge(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

/// Framing damage worth counting on its own. Text records (not JSON) are normal for text formats;
/// whether they were understood is the parsers' verdict, counted separately.
fn framing_flag(flag: Flag) -> Option<String> {
    match flag {
        Flag::Json | Flag::NotJson(_) | Flag::Unchecked => None,
        Flag::Malformed(r) => Some(format!("malformed input ({r})")),
        Flag::Truncated => Some("truncated by an input error".into()),
    }
}

fn display_name(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "<stdin>".into()
    } else {
        p.display().to_string()
    }
}
