//! The normalised-event store: `<data-dir>/events/`.
//!
//! Derived data, rebuilt from the ledger whenever it lags: `events.ndjson` holds one line per
//! ledger entry that has an event, `{"index":N,"source":"…","event":{…}}` (the event without
//! `raw_data`; the ledger holds the exact bytes at index N), in ledger order. `STATE` records how
//! far the file is complete (`next <index>` and `bytes <length>`); it is replaced atomically after
//! each batch, so after a crash the file is cut back to the recorded length and the entries from
//! `next` on are normalised again from the ledger.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek as _, Write};
use std::path::{Path, PathBuf};

use acta_ingest::formats::{Choice, Format, Record, Registry};
use acta_ledger::Envelope;
use acta_ledger::read::Entries;
use anyhow::{Context as _, Result, anyhow};

use crate::normalise::Done;

pub struct EventStore {
    dir: PathBuf,
    file: BufWriter<File>,
    /// Ledger index after the last entry covered.
    next: u64,
    /// Length of the complete part of the file.
    bytes: u64,
}

impl EventStore {
    /// Opens (or creates) the store under `root`, cutting off anything written after the last
    /// recorded state.
    pub fn open(root: &Path) -> Result<EventStore> {
        let dir = root.join("events");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        let path = dir.join("events.ndjson");
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let len = file.metadata()?.len();
        let (mut next, mut bytes) = read_state(&dir).unwrap_or((0, 0));
        if bytes > len {
            // The state outlived the data it describes (a crash before the data reached the
            // disk): rebuild everything.
            next = 0;
            bytes = 0;
        }
        file.set_len(bytes)
            .with_context(|| format!("cannot cut `{}` back", path.display()))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.seek(std::io::SeekFrom::Start(bytes))?;
        Ok(EventStore {
            dir,
            file,
            next,
            bytes,
        })
    }

    /// Appends the events of a batch stored as ledger entries `first..`.
    pub fn append(&mut self, first: u64, source: &str, done: &Done) -> Result<()> {
        for (i, ev) in done.events.iter().enumerate() {
            let Some(range) = ev else { continue };
            let json = done.json.get(range.clone()).unwrap_or_default();
            self.line(first + i as u64, source, json)?;
        }
        self.next = self.next.max(first + done.events.len() as u64);
        Ok(())
    }

    fn line(&mut self, index: u64, source: &str, json: &[u8]) -> Result<()> {
        let head = format!("{{\"index\":{index},\"source\":\"{source}\",\"event\":");
        self.file.write_all(head.as_bytes())?;
        self.file.write_all(json)?;
        self.file.write_all(b"}\n")?;
        self.bytes += head.len() as u64 + json.len() as u64 + 2;
        Ok(())
    }

    /// Makes what was appended durable enough to be found again: flushes and records the state.
    pub fn commit(&mut self) -> Result<()> {
        self.file.flush()?;
        let tmp = self.dir.join("STATE.tmp");
        fs::write(&tmp, format!("next {}\nbytes {}\n", self.next, self.bytes))?;
        fs::rename(&tmp, self.dir.join("STATE"))?;
        Ok(())
    }

    /// Normalises the ledger entries the store does not cover yet (after a crash, or a ledger
    /// written by an older acta). Returns how many entries were read.
    pub fn catch_up(&mut self, ledger_dir: &Path, registry: &Registry) -> Result<u64> {
        let entries = Entries::open(ledger_dir)?;
        if entries.len() <= self.next {
            return Ok(0);
        }
        let mut done = 0u64;
        let mut json = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.index < self.next {
                continue;
            }
            let env = Envelope::decode(&entry.envelope)
                .map_err(|e| anyhow!("entry {}: {e}", entry.index))?;
            let choice = env
                .source
                .parse::<Format>()
                .map_or(Choice::Auto, Choice::Detected);
            let n = registry.normalise_lean(
                &Record {
                    bytes: &entry.payload,
                    received_at_ms: i64::try_from(env.received_at_ms).unwrap_or(i64::MAX),
                },
                choice,
            );
            if let Some(e) = n.event {
                json.clear();
                e.write_json(&mut json)?;
                let source = env.source.to_owned();
                self.line(entry.index, &source, &json)?;
            }
            self.next = entry.index + 1;
            done += 1;
        }
        self.commit()?;
        Ok(done)
    }
}

fn read_state(dir: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(dir.join("STATE")).ok()?;
    let mut next = None;
    let mut bytes = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("next", v)) => next = v.parse().ok(),
            Some(("bytes", v)) => bytes = v.parse().ok(),
            _ => {}
        }
    }
    Some((next?, bytes?))
}
