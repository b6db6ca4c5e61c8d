//! Parallel normalisation of framed batches.
//!
//! Parsing and normalising costs several times what framing and hashing do, so batches are
//! normalised on a pool of worker threads while the calling thread frames the next ones. A batch's
//! parser choice is fixed before it is sent ([`InputNormaliser::prepare`]), which makes every
//! record's result independent of the others: results come back per batch, and the caller
//! consumes them in submission order.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use acta_detect::RuleSet;
use acta_event::Event;
use acta_ingest::formats::{Choice, Format, Record, Registry};
use anyhow::{Result, anyhow};

use crate::store::Prepared;

/// A framed batch to normalise: records are `spans` of `data`.
pub struct Job {
    pub data: Vec<u8>,
    pub spans: Vec<Range<usize>>,
    pub choice: Choice,
    pub received_at_ms: i64,
    /// Source name the batch is stored under.
    pub source: String,
    /// What to make of each record: serialised events for printing (with `raw_data`), or rows
    /// for the investigation store.
    pub output: Output,
    /// Sigma rules to evaluate on each record's raw fields, when detection is on.
    pub rules: Option<Arc<RuleSet>>,
}

/// The Sigma rules one record matched.
pub struct Matched {
    /// The record's position in its batch.
    pub record: usize,
    /// The matching rules, as positions in [`RuleSet::rules`].
    pub rules: Vec<usize>,
    /// The record's fields as the rules read them, kept when a correlation may need them.
    pub event: Option<acta_detect::Event>,
}

/// What a batch is normalised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Events as JSON, with `raw_data`, one for every record (dry runs).
    Print,
    /// Index rows (ingest into the ledger and the investigation store).
    Rows,
    /// Nothing but the counts of formats and reasons (ingest into the ledger alone).
    Count,
}

/// A normalised batch: the job's data back, and per record its event as JSON ([`Output::Print`])
/// or its index row ([`Output::Rows`]).
pub struct Done {
    pub data: Vec<u8>,
    pub spans: Vec<Range<usize>>,
    /// Events back to back, each a JSON object.
    pub json: Vec<u8>,
    /// Per record, the range of its event in `json`.
    pub events: Vec<Option<Range<usize>>>,
    /// Per record, its row.
    pub rows: Vec<Prepared>,
    /// When the batch was received (epoch ms).
    pub received_at_ms: i64,
    /// Records stored but not normalised (base events), by reason.
    pub flagged: BTreeMap<String, u64>,
    /// Records recognised as no event of their own, by reason.
    pub not_events: BTreeMap<String, u64>,
    /// Records normalised per format.
    pub formats: BTreeMap<Format, u64>,
    /// The records that matched Sigma rules, in record order.
    pub matched: Vec<Matched>,
}

type Work = (Job, Sender<Done>);

/// Worker threads normalising batches.
pub struct Pool {
    tx: Option<Sender<Work>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn start(registry: Arc<Registry>, threads: usize) -> Pool {
        let (tx, rx) = mpsc::channel::<Work>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads.max(1))
            .map(|_| {
                let rx = rx.clone();
                let registry = registry.clone();
                std::thread::spawn(move || {
                    loop {
                        let next = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok((job, reply)) = next else { return };
                        // The receiver may have gone (the caller failed): nothing to do then.
                        let _ = reply.send(normalise(&registry, job));
                    }
                })
            })
            .collect();
        Pool {
            tx: Some(tx),
            workers,
        }
    }

    /// Queues a batch; its result arrives on the returned receiver.
    pub fn submit(&self, job: Job) -> Result<Receiver<Done>> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| anyhow!("normaliser pool is closed"))?
            .send((job, reply))
            .map_err(|_| anyhow!("normaliser threads have stopped"))?;
        Ok(rx)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Normalises one batch (also used directly, without a pool).
pub fn normalise(registry: &Registry, job: Job) -> Done {
    let print = job.output == Output::Print;
    let mut json = Vec::with_capacity(if print { job.data.len() * 2 } else { 0 });
    let mut events = Vec::with_capacity(if print { job.spans.len() } else { 0 });
    let mut rows = Vec::with_capacity(if job.output == Output::Rows {
        job.spans.len()
    } else {
        0
    });
    let mut flagged = BTreeMap::new();
    let mut not_events = BTreeMap::new();
    let mut formats = BTreeMap::new();
    let mut matched = Vec::new();
    let rules = job
        .rules
        .as_deref()
        .filter(|rules| rules.has_rules_for(&job.source));
    let correlating = rules.is_some_and(|r| !r.correlations().is_empty());
    for (i, span) in job.spans.iter().enumerate() {
        let bytes = job.data.get(span.clone()).unwrap_or_default();
        if let Some(rules) = rules {
            let event = rules.event_for(&job.source, bytes);
            let hits: Vec<usize> = rules.matching(&job.source, &event).collect();
            if !hits.is_empty() {
                matched.push(Matched {
                    record: i,
                    rules: hits,
                    event: correlating.then_some(event),
                });
            }
        }
        let record = Record {
            bytes,
            received_at_ms: job.received_at_ms,
        };
        let n = if print {
            registry.normalise(&record, job.choice)
        } else {
            // Rows and counts read no `unmapped` field.
            registry.normalise_row(&record, job.choice)
        };
        if let Some(note) = &n.note {
            let map = if note.is_flag() {
                &mut flagged
            } else {
                &mut not_events
            };
            *map.entry(note.summary_reason()).or_insert(0) += 1;
        }
        if let Some(f) = n.format {
            *formats.entry(f).or_insert(0) += 1;
        }
        if !print {
            if job.output == Output::Rows {
                rows.push(Prepared::new(
                    &job.source,
                    n.event.as_deref(),
                    job.received_at_ms,
                ));
            }
            continue;
        }
        // A dry run prints one line for every record: a record that is no event of its own shows
        // as a base event saying what it is.
        let event = match (n.event, &n.note) {
            (None, Some(note)) => {
                let mut e = Event::unrecognised(job.received_at_ms, bytes, note.summary_reason());
                e.metadata.log_name = n.format.map(|f| f.name().to_owned());
                Some(Box::new(e))
            }
            (e, _) => e,
        };
        events.push(event.map(|e| {
            let start = json.len();
            // Serialising an event into a Vec cannot fail: every map key is a string.
            let _ = e.write_json(&mut json);
            start..json.len()
        }));
    }
    Done {
        data: job.data,
        spans: job.spans,
        json,
        events,
        rows,
        received_at_ms: job.received_at_ms,
        flagged,
        not_events,
        formats,
        matched,
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use acta_ingest::formats::Record;

    use super::*;
    use crate::pipeline::{FrameOptions, Framing, Input, frame_input};

    fn samples(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("testdata is readable")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                samples(&p, out);
            } else if p
                .extension()
                .is_some_and(|e| ["json", "ndjson", "log", "csv"].iter().any(|x| e == *x))
            {
                out.push(p);
            }
        }
    }

    /// Index rows built without `unmapped` (what the server and `acta ingest` store) are the rows
    /// of the full events, record for record, over every real sample the project ships.
    #[test]
    fn rows_without_unmapped_equal_rows_of_full_events() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
        let mut files = Vec::new();
        for source in [
            "cloudtrail",
            "github",
            "gitlab",
            "k8s-audit",
            "linux",
            "pgaudit",
        ] {
            samples(&root.join(source), &mut files);
        }
        assert!(files.len() > 50, "samples found: {}", files.len());
        let registry = Arc::new(Registry::standard());
        let (mut records, mut with_unmapped) = (0u64, 0u64);
        for file in &files {
            let opts = FrameOptions {
                source: None,
                format: None,
                registry: registry.clone(),
                max_record_bytes: 1 << 20,
                batch_bytes: 1 << 20,
            };
            let mut each = |f: Framing| {
                let Framing::Batch(b) = f else { return Ok(()) };
                for span in &b.spans {
                    let record = Record {
                        bytes: &b.data[span.clone()],
                        received_at_ms: 1_763_740_000_000,
                    };
                    let full = registry.normalise_lean(&record, b.choice);
                    let lean = registry.normalise_row(&record, b.choice);
                    let source = b.source.as_str();
                    let (f, l) = (full.event.as_deref(), lean.event.as_deref());
                    let (pf, pl) = (
                        Prepared::new(source, f, record.received_at_ms),
                        Prepared::new(source, l, record.received_at_ms),
                    );
                    assert_eq!(pf.row, pl.row, "{}", file.display());
                    assert_eq!(pf.detail, pl.detail, "{}", file.display());
                    assert_eq!(full.format, lean.format);
                    assert_eq!(
                        full.note.as_ref().map(|n| n.summary_reason()),
                        lean.note.as_ref().map(|n| n.summary_reason()),
                        "{}",
                        file.display()
                    );
                    if let (Some(f), Some(l)) = (f, l) {
                        assert!(l.unmapped.is_empty(), "{}", file.display());
                        with_unmapped += u64::from(!f.unmapped.is_empty());
                        let mut f = f.clone();
                        f.unmapped.clear();
                        assert_eq!(f.to_json(), l.to_json(), "{}", file.display());
                    }
                    records += 1;
                }
                Ok(())
            };
            let report = frame_input(Input::File(file.clone()), "sample", &opts, &mut each)
                .expect("framing a sample");
            assert!(report.failures.is_empty(), "{:?}", report.failures);
        }
        // The comparison covered real records, most of which have unmapped fields.
        assert!(records > 500, "records compared: {records}");
        assert!(with_unmapped * 2 > records, "{with_unmapped} of {records}");
    }
}
