//! Every record through every parser: the properties the fuzz targets check (`fuzz/src/lib.rs`,
//! compiled in here), on the sample records under `testdata/` and on mutations of them, so that
//! a plain `cargo test` covers what `scripts/fuzz` explores at length. Parsers land in the
//! registry and are covered here without any change to this file.
//!
//! The ignored test `write_fuzz_seeds` writes the fuzzers' seed corpus from the same samples
//! (`scripts/fuzz` runs it), so nothing of `testdata/` is copied into the repository.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;
#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod fuzz_props;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use acta_ingest::formats::{Choice, Format, InputNormaliser, Record};
use acta_ingest::framing::{Framer, FramerConfig, RecordBatch, open_input};
use common::{sample_files, testdata};
use fuzz_props::{RECEIVED_AT, check_record, check_record_all, frame, registry};
use proptest::prelude::*;
use serde_json::{Value, json};

/// One sample file: its decompressed bytes and its records (wrappers split), as acta frames them.
struct Sample {
    /// The directory it is in (its source).
    dir: PathBuf,
    bytes: Vec<u8>,
    records: Vec<Vec<u8>>,
}

fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let files = sample_files(&testdata());
        assert!(files.len() > 50, "samples missing under testdata/");
        files.into_iter().map(|p| read_sample(&p)).collect()
    })
}

fn read_sample(path: &Path) -> Sample {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut open_input(path).unwrap(), &mut bytes).unwrap();
    let registry = registry();
    let mut framer = Framer::new("sample", open_input(path).unwrap(), FramerConfig::default());
    let mut batch = RecordBatch::new();
    let norm = InputNormaliser::new(None);
    let mut records = Vec::new();
    loop {
        batch.clear();
        let more = framer.next_batch(&mut batch, 1 << 20).unwrap();
        for (rec, _) in batch.iter() {
            records.push(rec.to_vec());
            if let Some(parts) = norm.split(registry, rec) {
                records.extend(parts.into_iter().map(|r| rec[r].to_vec()));
            }
        }
        if !more {
            break;
        }
    }
    Sample {
        dir: path.parent().unwrap().to_owned(),
        bytes,
        records,
    }
}

fn all_records() -> &'static [Vec<u8>] {
    static RECORDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        samples()
            .iter()
            .flat_map(|s| s.records.iter().cloned())
            .collect()
    })
}

#[test]
fn sample_records_through_every_parser() {
    for s in samples() {
        for rec in &s.records {
            check_record_all(registry(), rec);
        }
    }
}

#[test]
fn sample_files_and_their_prefixes_frame_soundly() {
    for s in samples() {
        frame(&s.bytes);
        for cut in [
            1,
            2,
            3,
            7,
            100,
            s.bytes.len() / 2,
            s.bytes.len().saturating_sub(1),
        ] {
            frame(&s.bytes[..cut.min(s.bytes.len())]);
        }
    }
}

/// Values of the wrong type (and the right type with hostile content) for known fields.
fn replacements() -> Vec<Value> {
    let mut deep = json!(null);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    vec![
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5e308),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!("\u{0}\u{ffff}\u{1F600}"),
        json!("2024-13-45T99:99:99Z"),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"a": {"b": [null]}}),
        json!("é".repeat(5000)),
        deep,
    ]
}

/// JSON pointers to every value up to `depth` levels down (first element of arrays only).
fn pointers(v: &Value, prefix: &str, depth: usize, out: &mut Vec<String>) {
    if depth == 0 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, &p, depth - 1, out);
            }
        }
        Value::Array(a) => {
            if let Some(child) = a.first() {
                let p = format!("{prefix}/0");
                out.push(p.clone());
                pointers(child, &p, depth - 1, out);
            }
        }
        _ => {}
    }
}

/// Known fields of the wrong type, out-of-range numbers, hostile strings, deep nesting and
/// removed fields: in the first JSON record of sample files (two files per directory and format,
/// to keep the test fast; the fuzzers go further), through the parser that recognised the
/// original record (forced and detected), detection, and splitting.
#[test]
fn wrong_types_in_known_fields() {
    let registry = registry();
    let replacements = replacements();
    let mut per_group = std::collections::BTreeMap::new();
    let mut checked = 0usize;
    for s in samples() {
        let Some((rec, original)) = s.records.iter().find_map(|r| {
            serde_json::from_slice::<Value>(r)
                .ok()
                .filter(Value::is_object)
                .map(|v| (r, v))
        }) else {
            continue;
        };
        let record = Record {
            bytes: rec,
            received_at_ms: RECEIVED_AT,
        };
        let format = registry.normalise(&record, Choice::Auto).format;
        let taken = per_group.entry((s.dir.clone(), format)).or_insert(0);
        *taken += 1;
        if *taken > 2 {
            continue;
        }
        let mut ptrs = Vec::new();
        pointers(&original, "", 3, &mut ptrs);
        for (i, ptr) in ptrs.iter().enumerate() {
            // Two replacements per field, rotating, so every kind reaches every depth.
            let chosen = [i * 2, i * 2 + 1].map(|k| &replacements[k % replacements.len()]);
            let mut variants: Vec<Value> = chosen
                .into_iter()
                .map(|r| {
                    let mut v = original.clone();
                    *v.pointer_mut(ptr).unwrap() = r.clone();
                    v
                })
                .collect();
            // And the field removed.
            let (parent, key) = ptr.rsplit_once('/').unwrap();
            let mut v = original.clone();
            if let Some(Value::Object(m)) = v.pointer_mut(parent) {
                m.remove(&key.replace("~1", "/").replace("~0", "~"));
                variants.push(v);
            }
            for v in variants {
                let bytes = serde_json::to_vec(&v).unwrap();
                match format {
                    Some(f) => check_record(registry, f, &bytes),
                    None => check_record_all(registry, &bytes),
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} variants");
}

/// One byte-level edit of a record.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, &'static [u8]),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = prop::sample::select(vec![
        &b"{"[..],
        b"}",
        b"[",
        b"]",
        b"\"",
        b"\\",
        b",",
        b":",
        b"\n",
        b"\r\n",
        b"\xff",
        b"\xc3",
        b"null",
        b"-0",
        b"1e999",
        b"18446744073709551616",
        b"\"\\ud800\"",
        b"\"\\u0000\"",
        b"[[[[[[[[[[[[[[[[",
        b"{\"a\":",
        b"T",
        b"Z",
        b"+99:99",
        b"<13>",
        b"2026-02-30T25:61:61.9999999999Z",
        b"Jan 32 25:00:00 ",
        b" sshd[",
        b"]: ",
        b"AUDIT: SESSION,",
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), piece).prop_map(|(i, p)| Edit::Insert(i, p)),
        (any::<usize>(), 1usize..32).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *e {
            Edit::Flip(i, b) => {
                if len > 0 {
                    bytes[i % len] ^= b | 1;
                }
            }
            Edit::Insert(i, p) => {
                let i = at(i);
                bytes.splice(i..i, p.iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = at(i);
                bytes.drain(i..(i + n).min(len));
            }
            Edit::Truncate(i) => bytes.truncate(at(i)),
            Edit::Duplicate(i, n) => {
                let i = at(i);
                let copy = bytes[i..(i + n).min(len)].to_vec();
                bytes.splice(i..i, copy);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Sample records with a few byte-level edits: through every parser forced, detection and
    /// splitting.
    #[test]
    fn mutated_records_through_every_parser(
        i in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let records = all_records();
        let rec = apply(records[i.index(records.len())].clone(), &edits);
        check_record_all(registry(), &rec);
    }
}

/// Writes the fuzzers' seed corpus under `$ACTA_FUZZ_SEEDS`: `records/` holds up to 8 records of
/// every sample file (the per-format targets' seeds), `files/` the first 4 KiB of every sample
/// file cut at a line end (the framing target's seeds). Run by `scripts/fuzz`.
#[test]
#[ignore = "writes the fuzz seed corpus; run by scripts/fuzz"]
fn write_fuzz_seeds() {
    let Some(out) = std::env::var_os("ACTA_FUZZ_SEEDS") else {
        panic!("set ACTA_FUZZ_SEEDS to the seed directory");
    };
    let out = PathBuf::from(out);
    let write = |dir: &str, bytes: &[u8]| {
        let dir = out.join(dir);
        fs::create_dir_all(&dir).unwrap();
        let name = format!("{:016x}", fnv(bytes));
        fs::write(dir.join(name), bytes).unwrap();
    };
    let mut seen = BTreeSet::new();
    for s in samples() {
        for rec in s.records.iter().filter(|r| seen.insert(fnv(r))).take(8) {
            write("records", rec);
        }
        let head = &s.bytes[..s.bytes.len().min(4096)];
        let head = match head.iter().rposition(|&b| b == b'\n') {
            Some(nl) if head.len() < s.bytes.len() => &head[..=nl],
            _ => head,
        };
        write("files", head);
    }
    // A format's name alone, so targets of formats without samples yet start from something.
    for f in Format::ALL {
        write("records", f.name().as_bytes());
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A format added to `Format::ALL` gets its fuzz target: `fuzz/fuzz_targets/parse_<name>.rs`,
/// declared in `fuzz/Cargo.toml`, fuzzing that format.
#[test]
fn every_format_has_a_fuzz_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    for f in Format::ALL {
        let target = format!("parse_{}", f.name().replace('-', "_"));
        let path = fuzz.join(format!("fuzz_targets/{target}.rs"));
        let source = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (copy another parse_* target)", path.display()));
        assert!(
            source.contains(&format!("parse_as(\"{}\", data)", f.name())),
            "{} does not fuzz {f}",
            path.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml does not declare {target}"
        );
    }
}
