//! The ingest pipeline shared by `acta ingest` and `acta bench ingest`.
//!
//! The calling thread frames input into batches of about 4 MiB and submits them to the ledger's
//! writer thread, keeping a few in flight, so framing and hashing/writing run on two cores. A
//! batch counts as stored only when its receipt arrives (after the sync).

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acta_ingest::framing::{Flag, Framer, FramerConfig, RecordBatch, open_input};
use acta_ledger::{Appender, Batch, SignedCheckpoint, SourceName, Ticket, now_ms};
use anyhow::Result;
use indicatif::ProgressBar;

/// How to ingest.
pub struct Options {
    pub source: SourceName,
    pub max_record_bytes: usize,
    /// Record bytes per batch.
    pub batch_bytes: usize,
    /// Batches submitted but not yet acknowledged.
    pub in_flight: usize,
    /// Where to write one JSON line per acknowledged batch.
    pub receipts: Option<Box<dyn Write>>,
    pub progress: ProgressBar,
}

/// What an ingest run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub inputs: usize,
    pub entries: u64,
    pub bytes: u64,
    /// Stored records that were flagged, by reason.
    pub flagged: BTreeMap<String, u64>,
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
}

struct Pending {
    ticket: Ticket,
    submitted: Instant,
    input: usize,
    first_record: u64,
    records: u64,
    bytes: u64,
}

/// Ingests every input into the ledger behind `appender`. Problems with one input are recorded
/// in the summary and the next input is read; an error is returned only when the ledger fails.
pub fn run(appender: &Appender, inputs: &[PathBuf], mut opts: Options) -> Result<Summary> {
    let started = Instant::now();
    let mut summary = Summary {
        inputs: inputs.len(),
        ..Summary::default()
    };
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let names: Vec<String> = inputs.iter().map(|p| display_name(p)).collect();
    let config = FramerConfig {
        max_record_bytes: opts.max_record_bytes,
        ..FramerConfig::default()
    };
    for (n, path) in inputs.iter().enumerate() {
        let name = names.get(n).cloned().unwrap_or_default();
        let reader = match open_input(path) {
            Ok(r) => r,
            Err(e) => {
                summary.failures.push(e.to_string());
                continue;
            }
        };
        let mut framer = Framer::new(name.clone(), reader, config);
        let mut ordinal = 0u64;
        loop {
            // A fresh buffer per batch (the batch moves to the writer), sized so it never regrows.
            let mut records = RecordBatch {
                data: Vec::with_capacity(opts.batch_bytes + (64 << 10)),
                records: Vec::with_capacity(opts.batch_bytes / 256),
            };
            let more = framer.next_batch(&mut records, opts.batch_bytes);
            if !records.is_empty() {
                let count = records.len() as u64;
                let mut spans = Vec::with_capacity(records.len());
                for (_, meta) in records.iter() {
                    spans.push(meta.range.clone());
                    if let Some(reason) = flag_reason(meta.flag) {
                        *summary.flagged.entry(reason).or_insert(0) += 1;
                    }
                }
                let bytes = records.bytes() as u64;
                let batch = Batch::from_parts(
                    opts.source.clone(),
                    now_ms(),
                    std::mem::take(&mut records.data),
                    spans,
                )?;
                if pending.len() >= opts.in_flight {
                    settle(&mut pending, &names, &mut summary, &mut opts)?;
                }
                let ticket = appender.submit(batch)?;
                pending.push_back(Pending {
                    ticket,
                    submitted: Instant::now(),
                    input: n,
                    first_record: ordinal,
                    records: count,
                    bytes,
                });
                ordinal += count;
            }
            match more {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    summary.failures.push(e.to_string());
                    break;
                }
            }
        }
        let report = framer.report();
        summary.rejected_count += report.rejected_count;
        for r in &report.rejected {
            summary
                .rejected
                .push(format!("{name}:{}: {}", r.line, r.reason));
        }
        if report.empty {
            summary
                .notes
                .push(format!("{name}: empty, nothing to store"));
        }
        if let Some((line, why)) = report.switched_to_lines {
            summary.notes.push(format!(
                "{name}:{line}: {why}; the rest was stored line by line and flagged"
            ));
        }
    }
    while !pending.is_empty() {
        settle(&mut pending, &names, &mut summary, &mut opts)?;
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Waits for the oldest batch in flight and records it.
fn settle(
    pending: &mut VecDeque<Pending>,
    names: &[String],
    summary: &mut Summary,
    opts: &mut Options,
) -> Result<()> {
    let Some(p) = pending.pop_front() else {
        return Ok(());
    };
    let receipt = p.ticket.wait()?;
    summary.ack_latencies.push(
        receipt
            .acknowledged_at
            .saturating_duration_since(p.submitted),
    );
    summary.entries += receipt.count;
    summary.bytes += p.bytes;
    opts.progress.inc(p.bytes);
    if let Some(w) = opts.receipts.as_mut() {
        let line = serde_json::json!({
            "input": names.get(p.input),
            "records": [p.first_record, p.records],
            "entries": [receipt.first, receipt.count],
            "checkpoint": receipt.checkpoint.checkpoint.size,
        });
        writeln!(w, "{line}")?;
        w.flush()?;
    }
    summary.checkpoint = Some(receipt.checkpoint);
    Ok(())
}

fn flag_reason(flag: Flag) -> Option<String> {
    match flag {
        Flag::Json => None,
        Flag::NotJson(r) => Some(format!("not JSON ({r})")),
        Flag::Malformed(r) => Some(format!("malformed ({r})")),
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
