//! The properties acta's fuzz targets check (see `README.md`).
//!
//! Each target is a few lines that hand the fuzzer's bytes to one function here. The same file is
//! compiled into `crates/acta-ingest/tests/every_parser.rs`, so a plain `cargo test` checks the
//! same properties on mutated sample records.
//!
//! A broken property panics, which is what libFuzzer reports as a crash.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::io::{BufReader, Cursor};
use std::str::FromStr;
use std::sync::OnceLock;

use acta_ingest::formats::{Choice, Format, Normalised, Note, Record, Registry};
use acta_ingest::framing::{Flag, Framer, FramerConfig, QuotedNewlines, RecordBatch, RecordMeta};
use serde_json::Value;

/// 2026-01-01T00:00:00Z: the time of receipt of every fuzzed record (the reference year for
/// timestamps that carry none).
pub const RECEIVED_AT: i64 = 1_767_225_600_000;

/// At most this many parts of a record that splits are normalised, to keep one run cheap.
const MAX_PARTS_CHECKED: usize = 64;

/// The standard registry, built once per process.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::standard)
}

// ---------------------------------------------------------------------------------------------
// Framing

/// One framed record, owned, with what framing said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Framed {
    bytes: Vec<u8>,
    line: u64,
    ordinal: u64,
    flag: Flag,
}

/// Frames `data` twice, under a record limit and read/batch sizes picked from the data itself,
/// and checks the framing properties: no panic, progress, every record's range inside its batch,
/// records non-empty and within the limit, consecutive ordinals, non-decreasing lines, records
/// that are the input's own bytes in order (so their count and total size are bounded by the
/// input's), `Flag::Json` exactly when serde_json reads the record, a report that adds up, and
/// the same records and report whatever the read and batch sizes.
pub fn frame(data: &[u8]) {
    let h = fnv(data);
    let max_record_bytes = [8, 64, 512, 4096][(h & 3) as usize];
    let quoted_newlines = [
        QuotedNewlines::Off,
        QuotedNewlines::Always,
        QuotedNewlines::PGAUDIT,
    ][((h >> 7) % 3) as usize];
    let config = FramerConfig {
        max_record_bytes,
        quoted_newlines,
        check_json: true,
    };
    let chunk = [1, 2, 3, 7, 64, 4096][((h >> 2) % 6) as usize];
    let max_bytes = [1, 7, 100, 1 << 20][((h >> 5) & 3) as usize];

    let whole = frame_reader(data, Cursor::new(data), config, 1 << 20);
    let chunked = frame_reader(
        data,
        BufReader::with_capacity(chunk, Cursor::new(data)),
        config,
        max_bytes,
    );
    assert!(
        whole.0 == chunked.0,
        "records differ with read size {chunk} and batch size {max_bytes}"
    );
    assert!(
        whole.1 == chunked.1,
        "reports differ with read size {chunk} and batch size {max_bytes}"
    );
}

fn frame_reader<R: std::io::BufRead>(
    input: &[u8],
    reader: R,
    config: FramerConfig,
    max_bytes: usize,
) -> (Vec<Framed>, acta_ingest::framing::FramingReport) {
    let mut framer = Framer::new("fuzz", reader, config);
    let mut batch = RecordBatch::new();
    let mut records: Vec<Framed> = Vec::new();
    let mut calls = 0usize;
    let lines = memchr::memchr_iter(b'\n', input).count() as u64 + 1;
    // Where the next record must start looking for itself in the input.
    let mut cursor = 0usize;
    loop {
        batch.clear();
        calls += 1;
        // Every call but the last delivers at least one record.
        assert!(calls <= records.len() + 2, "framer makes no progress");
        let more = framer
            .next_batch(&mut batch, max_bytes)
            .expect("reading from memory cannot fail");
        for meta in &batch.records {
            let RecordMeta {
                range,
                line,
                ordinal,
                flag,
            } = meta.clone();
            assert!(
                range.start <= range.end && range.end <= batch.data.len(),
                "record range {range:?} outside the batch ({} bytes)",
                batch.data.len()
            );
            let bytes = &batch.data[range];
            assert!(!bytes.is_empty(), "empty record");
            assert!(
                bytes.len() <= config.max_record_bytes,
                "record of {} bytes over the limit {}",
                bytes.len(),
                config.max_record_bytes
            );
            assert_eq!(ordinal, records.len() as u64, "ordinals are consecutive");
            let prev_line = records.last().map_or(1, |r| r.line);
            assert!(
                (prev_line..=lines).contains(&line),
                "line {line} not in {prev_line}..={lines}"
            );
            // The record is the input's own bytes, after the previous record.
            let at = memchr::memmem::find(&input[cursor..], bytes).unwrap_or_else(|| {
                panic!("record {ordinal} is not in the input after the previous record")
            });
            cursor += at + bytes.len();
            check_flag(bytes, flag);
            records.push(Framed {
                bytes: bytes.to_vec(),
                line,
                ordinal,
                flag,
            });
        }
        if !more {
            break;
        }
    }
    let report = framer.report().clone();
    let record_bytes: u64 = records.iter().map(|r| r.bytes.len() as u64).sum();
    assert_eq!(report.records, records.len() as u64);
    assert_eq!(report.record_bytes, record_bytes);
    assert_eq!(
        report.flagged,
        records.iter().filter(|r| r.flag != Flag::Json).count() as u64
    );
    assert!(report.rejected.len() as u64 <= report.rejected_count);
    if report.rejected.len() as u64 == report.rejected_count {
        let rejected: u64 = report.rejected.iter().map(|r| r.bytes).sum();
        assert!(
            record_bytes + rejected <= input.len() as u64,
            "records ({record_bytes} bytes) and rejected ({rejected} bytes) exceed the input ({} bytes)",
            input.len()
        );
    }
    (records, report)
}

/// `Flag::Json` is a promise to the parsers: serde_json reads the record into a value; and a
/// record flagged as not JSON is one it does not read.
fn check_flag(bytes: &[u8], flag: Flag) {
    let read = serde_json::from_slice::<Value>(bytes);
    match flag {
        Flag::Json => {
            if let Err(e) = read {
                panic!("flagged JSON but serde_json rejects it: {e}");
            }
        }
        Flag::NotJson(why) => assert!(
            read.is_err(),
            "flagged not JSON ({why}) but serde_json reads it"
        ),
        Flag::Malformed(_) | Flag::Truncated => {}
        Flag::Unchecked => panic!("flagged unchecked although validation is on"),
    }
}

/// FNV-1a: picks framing knobs from the input without taking bytes away from it.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// The per-format target: `data` as one record, through the parser for `format_name` (forced,
/// and as the input's detected format), through detection alone, and through splitting.
/// `format_name` must be a name from `Format::ALL`; a parser not registered yet is fine (forcing
/// it then falls back to detection), and the same target covers it once it is.
pub fn parse_as(format_name: &str, data: &[u8]) {
    let format = Format::from_str(format_name).unwrap_or_else(|e| panic!("{e}"));
    check_record(registry(), format, data);
}

/// One record through every format forced, and through detection.
pub fn check_record_all(registry: &Registry, bytes: &[u8]) {
    for format in Format::ALL {
        let n = normalise(registry, bytes, Choice::Forced(format));
        check_forced(registry, format, &n);
    }
    normalise(registry, bytes, Choice::Auto);
    check_split(registry, bytes, None);
}

/// One record through `format` (forced and detected), detection alone, and splitting.
pub fn check_record(registry: &Registry, format: Format, bytes: &[u8]) {
    let forced = normalise(registry, bytes, Choice::Forced(format));
    check_forced(registry, format, &forced);
    let detected = normalise(registry, bytes, Choice::Detected(format));
    if forced.format == Some(format)
        || matches!(forced.note, Some(Note::Invalid(f, _)) if f == format)
    {
        // The input's own format is tried first either way: same outcome.
        assert_eq!(
            forced.event, detected.event,
            "forced and detected {format} differ"
        );
        assert_eq!(
            forced.note, detected.note,
            "forced and detected {format} differ"
        );
    }
    normalise(registry, bytes, Choice::Auto);
    check_split(registry, bytes, Some(format));
    check_split(registry, bytes, None);
}

fn check_forced(registry: &Registry, format: Format, n: &Normalised) {
    if registry.get(format).is_some() {
        assert!(
            n.format.is_none_or(|f| f == format),
            "forced {format}, got {:?}",
            n.format
        );
        if let Some(Note::Invalid(f, _)) = &n.note {
            assert_eq!(*f, format, "forced {format}, judged invalid by {f}");
        }
    }
}

/// A record that splits: parts inside it, in order, not overlapping, each normalised.
fn check_split(registry: &Registry, bytes: &[u8], format: Option<Format>) {
    let Some(parts) = registry.split(bytes, format) else {
        return;
    };
    let mut end = 0;
    for r in &parts {
        assert!(
            end <= r.start && r.start <= r.end && r.end <= bytes.len(),
            "split part {r:?} out of order or outside the record ({} bytes)",
            bytes.len()
        );
        end = r.end;
    }
    for r in parts.into_iter().take(MAX_PARTS_CHECKED) {
        let part = &bytes[r];
        normalise(registry, part, Choice::Auto);
        if let Some(f) = format {
            normalise(registry, part, Choice::Detected(f));
        }
    }
}

/// Normalises one record and checks the result: an event, or a recognised non-event (then and
/// only then no event); a base event (`class_uid` 0) for invalid and unrecognised records; the
/// event serialises to JSON that reads back, with `type_uid = class_uid * 100 + activity_id`
/// and `raw_data` the record (lossy UTF-8).
pub fn normalise(registry: &Registry, bytes: &[u8], choice: Choice) -> Normalised {
    let record = Record {
        bytes,
        received_at_ms: RECEIVED_AT,
    };
    let n = registry.normalise(&record, choice);
    if let Some(f) = n.format {
        assert!(
            registry.get(f).is_some(),
            "{f} produced it but is not registered"
        );
    }
    match (&n.event, &n.note) {
        (None, Some(Note::NotAnEvent(f, _))) => {
            assert_eq!(n.format, Some(*f), "a non-event names its format");
        }
        (None, note) => panic!("no event and no non-event note ({note:?}) for {choice:?}"),
        (Some(_), Some(Note::NotAnEvent(..))) => panic!("an event and a non-event note"),
        (Some(e), Some(Note::Invalid(..) | Note::Unrecognised(_))) => {
            assert!(n.format.is_none(), "a base event names no format");
            assert_eq!(
                e.class.uid(),
                0,
                "invalid or unrecognised gives a base event"
            );
        }
        (Some(_), None) => assert!(n.format.is_some(), "an event names its format"),
    }
    if let Some(e) = &n.event {
        let lossy = String::from_utf8_lossy(bytes);
        assert!(e.raw_data == lossy, "raw_data is not the record");
        let mut json = Vec::new();
        e.write_json(&mut json)
            .unwrap_or_else(|err| panic!("event does not serialise: {err}"));
        let v: Value = serde_json::from_slice(&json)
            .unwrap_or_else(|err| panic!("event JSON does not read back: {err}"));
        let num = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("event JSON has no numeric {k}"))
        };
        assert_eq!(
            num("type_uid"),
            num("class_uid") * 100 + num("activity_id"),
            "type_uid = class_uid * 100 + activity_id"
        );
        // An empty `raw_data` is left out of the JSON.
        assert!(
            v.get("raw_data").and_then(Value::as_str).unwrap_or("") == lossy,
            "raw_data does not read back as the record"
        );
    }
    n
}
