//! Golden tests: every sample under `testdata/` is framed and normalised, and the result is
//! compared with the reviewed expectation under `testdata/expected/` (the same relative path plus
//! `.ndjson`, `raw_data` left out). Each input record yields exactly one line: the event, or
//! `{"not_an_event": reason}` for a record that is recognised but is no event of its own.
//!
//! After a deliberate mapping change: `ACTA_BLESS=1 cargo test -p acta-ingest --test golden`,
//! then review the diff.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::fs;
use std::path::Path;

use acta_ingest::formats::{InputNormaliser, Record, Registry};
use acta_ingest::framing::{Framer, FramerConfig, QuotedNewlines, RecordBatch, open_input};
use common::{sample_files, testdata};
use serde_json::{Value, json};

/// 2026-01-01T00:00:00Z: the "time of receipt" of every golden record.
const RECEIVED_AT: i64 = 1_767_225_600_000;

/// The golden lines of one sample file.
pub fn normalise_file(path: &Path) -> Vec<String> {
    // The mappings shipped with acta take part, as `acta ingest --mapping` would use them.
    let mappings_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mappings");
    let mut mappings = Vec::new();
    for e in fs::read_dir(&mappings_dir).unwrap() {
        let text = fs::read_to_string(e.unwrap().path()).unwrap();
        mappings.push(acta_ingest::formats::mapping::Mapping::from_toml(&text).unwrap());
    }
    let registry = Registry::with_mappings(mappings);
    // Framed as `acta ingest` frames it.
    let quoted_newlines = QuotedNewlines::for_path(path);
    let mut framer = Framer::new(
        path.display().to_string(),
        open_input(path).unwrap(),
        FramerConfig {
            quoted_newlines,
            ..FramerConfig::default()
        },
    );
    let mut batch = RecordBatch::new();
    let mut norm = InputNormaliser::new(None);
    let mut lines = Vec::new();
    loop {
        batch.clear();
        let more = framer.next_batch(&mut batch, 1 << 20).unwrap();
        let mut records: Vec<&[u8]> = Vec::new();
        for (bytes, _) in batch.iter() {
            match norm.split(&registry, bytes) {
                Some(parts) => records.extend(parts.into_iter().map(|r| &bytes[r])),
                None => records.push(bytes),
            }
        }
        for bytes in records {
            let n = norm.normalise(
                &registry,
                &Record {
                    bytes,
                    received_at_ms: RECEIVED_AT,
                },
            );
            let line = match n.event {
                Some(e) => {
                    let mut v: Value = serde_json::from_str(&e.to_json()).unwrap();
                    let raw = v.as_object_mut().unwrap().remove("raw_data").unwrap();
                    assert_eq!(
                        raw.as_str().unwrap(),
                        String::from_utf8_lossy(bytes),
                        "{}: raw_data must be the record",
                        path.display()
                    );
                    v
                }
                None => json!({ "not_an_event": n.note.map(|n| n.summary_reason()) }),
            };
            lines.push(serde_json::to_string(&line).unwrap());
        }
        if !more {
            break;
        }
    }
    lines
}

#[test]
fn every_sample_matches_its_reviewed_normalisation() {
    let root = testdata();
    let files = sample_files(&root);
    assert!(files.len() > 50, "samples missing under {}", root.display());
    let bless = std::env::var_os("ACTA_BLESS").is_some();
    let mut failures = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap();
        let expected_path = root
            .join("expected")
            .join(format!("{}.ndjson", rel.display()));
        let got = normalise_file(path);
        let text = got.iter().map(|l| format!("{l}\n")).collect::<String>();
        if bless {
            fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
            fs::write(&expected_path, &text).unwrap();
            continue;
        }
        // Records compare as JSON values: the order of object members depends on serde_json's
        // features, which the workspace's other crates may change (`preserve_order`).
        let same = |a: &str, b: &str| {
            serde_json::from_str::<Value>(a).ok() == serde_json::from_str::<Value>(b).ok()
        };
        match fs::read_to_string(&expected_path) {
            Ok(want)
                if want.lines().count() == got.len()
                    && want.lines().zip(text.lines()).all(|(a, b)| same(a, b)) => {}
            Ok(want) => {
                let first = want
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| !same(a, b))
                    .unwrap_or(want.lines().count().min(got.len()));
                failures.push(format!(
                    "{}: differs from {} at record {first} (expected {} lines, got {})",
                    rel.display(),
                    expected_path.display(),
                    want.lines().count(),
                    got.len()
                ));
            }
            Err(e) => failures.push(format!(
                "{}: no expectation at {} ({e}); bless with ACTA_BLESS=1 and review",
                rel.display(),
                expected_path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
