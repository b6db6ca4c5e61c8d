//! Helpers shared by the framing and format tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};

use acta_ingest::framing::{Flag, Framer, FramerConfig, FramingError, FramingReport, RecordBatch};

/// One framed record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub bytes: Vec<u8>,
    pub line: u64,
    pub ordinal: u64,
    pub flag: Flag,
}

impl Rec {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub records: Vec<Rec>,
    pub report: FramingReport,
    pub error: Option<FramingError>,
    pub calls: usize,
}

impl Outcome {
    pub fn texts(&self) -> Vec<String> {
        self.records.iter().map(Rec::text).collect()
    }
    pub fn flags(&self) -> Vec<Flag> {
        self.records.iter().map(|r| r.flag).collect()
    }
}

/// Frames a whole reader, clearing the batch between calls like a real
/// caller, and checks the invariants every outcome must satisfy.
pub fn frame_reader<R: BufRead>(reader: R, config: FramerConfig, max_bytes: usize) -> Outcome {
    let mut framer = Framer::new("test-input", reader, config);
    let mut batch = RecordBatch::new();
    let mut records = Vec::new();
    let mut error = None;
    let mut calls = 0;
    loop {
        batch.clear();
        calls += 1;
        assert!(calls < 10_000_000, "framer does not make progress");
        let result = framer.next_batch(&mut batch, max_bytes);
        for (bytes, meta) in batch.iter() {
            assert_eq!(
                meta.ordinal,
                records.len() as u64,
                "ordinals are consecutive"
            );
            records.push(Rec {
                bytes: bytes.to_vec(),
                line: meta.line,
                ordinal: meta.ordinal,
                flag: meta.flag,
            });
        }
        match result {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                assert!(batch.is_empty(), "an error comes alone");
                error = Some(e);
                // After the error, the input is over.
                batch.clear();
                assert!(!framer.next_batch(&mut batch, max_bytes).unwrap());
                assert!(batch.is_empty());
                break;
            }
        }
    }
    let report = framer.report().clone();
    assert_eq!(report.records, records.len() as u64);
    assert_eq!(
        report.flagged,
        records.iter().filter(|r| r.flag.reason().is_some()).count() as u64
    );
    assert_eq!(
        report.record_bytes,
        records.iter().map(|r| r.bytes.len() as u64).sum::<u64>()
    );
    assert!(report.rejected.len() as u64 <= report.rejected_count);
    for r in &records {
        assert!(!r.bytes.is_empty(), "no empty record");
        assert!(
            r.bytes.len() <= config.max_record_bytes,
            "record over the limit"
        );
    }
    Outcome {
        records,
        report,
        error,
        calls,
    }
}

pub fn frame_with(input: &[u8], config: FramerConfig) -> Outcome {
    frame_reader(Cursor::new(input), config, 1 << 20)
}

pub fn frame(input: &[u8]) -> Outcome {
    frame_with(input, FramerConfig::default())
}

/// Frames `input` read `chunk` bytes at a time (every state must survive
/// any buffer boundary).
pub fn frame_chunked(
    input: &[u8],
    config: FramerConfig,
    chunk: usize,
    max_bytes: usize,
) -> Outcome {
    frame_reader(
        BufReader::with_capacity(chunk, Cursor::new(input)),
        config,
        max_bytes,
    )
}

/// Asserts that framing `input` gives the same records and report whatever
/// the read buffer and batch sizes, and returns the outcome.
pub fn frame_consistently(input: &[u8], config: FramerConfig) -> Outcome {
    let reference = frame_with(input, config);
    for (chunk, max_bytes) in [(1, 1), (2, 1 << 20), (3, 7), (7, 64), (64, 1), (4096, 100)] {
        let other = frame_chunked(input, config, chunk, max_bytes);
        assert_eq!(
            other.records, reference.records,
            "chunk {chunk}, max_bytes {max_bytes}"
        );
        assert_eq!(
            other.report, reference.report,
            "chunk {chunk}, max_bytes {max_bytes}"
        );
        assert_eq!(other.error.is_some(), reference.error.is_some());
    }
    reference
}

/// The stratus-red-team CloudTrail samples: the project's copy if present,
/// else the shared data set.
pub fn stratus_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        root.join("testdata/cloudtrail/stratus"),
        PathBuf::from("/work/shared/data/cloudtrail/stratus"),
    ];
    for dir in &candidates {
        if dir.is_dir() && std::fs::read_dir(dir).unwrap().next().is_some() {
            return dir.clone();
        }
    }
    panic!("no stratus samples in {candidates:?}");
}

pub fn stratus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(stratus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// The project's `testdata/` directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Every sample file under `dir`, sorted: everything but licences, docs, mappings and the
/// golden expectations.
pub fn sample_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            if p.is_dir() {
                if name != "expected" && name != "mappings" {
                    walk(&p, out);
                }
            } else if name != "LICENSE" && !name.ends_with(".md") && !name.ends_with(".toml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}
