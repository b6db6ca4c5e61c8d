//! Opening inputs: plain files, gzip (detected by content), multi-member and
//! truncated gzip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::path::Path;

use acta_ingest::framing::{Flag, FramerConfig, FramingError, Shape, open_input};
use flate2::Compression;
use flate2::write::GzEncoder;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn frame_path(path: &Path) -> common::Outcome {
    common::frame_reader(open_input(path).unwrap(), FramerConfig::default(), 1 << 16)
}

fn events(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            format!(
                "{{\"eventID\":\"{i}\",\"pad\":\"{}\"}}\n",
                "p".repeat(i % 50)
            )
        })
        .collect()
}

#[test]
fn plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    std::fs::write(&path, events(0..10)).unwrap();
    let out = frame_path(&path);
    assert_eq!(out.records.len(), 10);
    assert!(out.error.is_none());
}

#[test]
fn tiny_files() {
    let dir = tempfile::tempdir().unwrap();
    for content in [&b""[..], b"x", b"\x1f", b"\x1fx\n", b"[]"] {
        let path = dir.path().join("tiny");
        std::fs::write(&path, content).unwrap();
        let out = frame_path(&path);
        let reference = common::frame(content);
        assert_eq!(out.records, reference.records);
        assert_eq!(out.report, reference.report);
    }
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = events(0..1000);
    for name in ["events.json.gz", "events.json", "no-extension"] {
        let path = dir.path().join(name);
        std::fs::write(&path, gzip(text.as_bytes())).unwrap();
        let out = frame_path(&path);
        assert_eq!(out.records.len(), 1000, "{name}");
        assert_eq!(out.report.bytes, text.len() as u64);
        assert!(out.error.is_none());
        assert_eq!(out.records[999].text(), text.lines().last().unwrap());
    }
}

#[test]
fn gzip_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ct.json.gz");
    let inner: Vec<String> = (0..100)
        .map(|i| format!("{{\"eventID\":\"{i}\"}}"))
        .collect();
    let text = format!("{{\"Records\":[{}]}}", inner.join(","));
    std::fs::write(&path, gzip(text.as_bytes())).unwrap();
    let out = frame_path(&path);
    assert_eq!(out.report.shape, Some(Shape::Envelope));
    assert_eq!(out.texts(), inner);
}

#[test]
fn multi_member_gzip_is_read_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("multi.gz");
    let mut data = gzip(events(0..300).as_bytes());
    data.extend(gzip(events(300..700).as_bytes()));
    data.extend(gzip(events(700..701).as_bytes()));
    std::fs::write(&path, data).unwrap();
    let out = frame_path(&path);
    assert_eq!(out.records.len(), 701);
    assert!(out.error.is_none());
    for (i, rec) in out.records.iter().enumerate() {
        assert!(rec.text().starts_with(&format!("{{\"eventID\":\"{i}\"")));
        assert_eq!(rec.line, i as u64 + 1);
    }
}

#[test]
fn truncated_gzip_keeps_what_was_read_and_reports_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.json.gz");
    // Incompressible-ish content so that the cut lands mid-stream.
    let text: String = (0..5000)
        .map(|i| {
            format!(
                "{{\"eventID\":\"{i}\",\"h\":\"{:016x}\"}}\n",
                (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            )
        })
        .collect();
    let full = gzip(text.as_bytes());
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let out = frame_path(&path);
    let err = out.error.as_ref().expect("a truncated gzip is an error");
    let FramingError::Io { name, line, .. } = err else {
        panic!("{err:?}");
    };
    assert_eq!(name, "test-input");
    assert!(out.records.len() > 100, "{}", out.records.len());
    assert!(out.records.len() < 5000);
    // Every complete record is intact, in order; only the last may be cut.
    let (last, complete) = out.records.split_last().unwrap();
    for (i, rec) in complete.iter().enumerate() {
        assert_eq!(rec.flag, Flag::Json);
        assert_eq!(rec.text(), text.lines().nth(i).unwrap());
    }
    let expected = text.lines().nth(complete.len()).unwrap();
    if last.flag == Flag::Truncated {
        assert!(expected.starts_with(&last.text()));
        assert!(last.text().len() < expected.len());
    } else {
        assert_eq!(last.text(), expected);
    }
    assert_eq!(
        *line,
        out.records.len() as u64 + u64::from(last.flag != Flag::Truncated)
    );
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read `test-input` past line {line}: "))
    );
}

#[test]
fn missing_file_error_names_the_file() {
    let err = open_input(Path::new("/nonexistent/x.json")).err().unwrap();
    assert!(matches!(err, FramingError::Open { .. }));
    assert_eq!(
        err.to_string(),
        "cannot open `/nonexistent/x.json`: No such file or directory (os error 2)"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = open_input(dir.path()).err().unwrap();
    assert!(err.to_string().starts_with("cannot open `"), "{err}");
}
