//! Broken structure, oversize records and read errors: nothing is dropped
//! silently.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{self, BufReader, Cursor, Read};

use acta_ingest::framing::{Flag, FramerConfig, FramingError, Shape};
use common::{frame, frame_consistently, frame_reader, frame_with};

const ARRAY_EOF: &str = "JSON array ends unexpectedly";

#[test]
fn broken_array_keeps_the_tail_as_malformed_lines() {
    // EOF in the middle of element 3.
    let input = b"[\n  {\"n\": 1},\n  {\"n\": 2,\n   \"x\": [1,2]},\n  {\"n\": 3,\n   \"y\": \"abc\",\r\n\n   \"z\": {\"deep\": [";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::JsonArray));
    assert_eq!(out.report.switched_to_lines, Some((5, ARRAY_EOF)));
    assert_eq!(
        out.texts(),
        [
            "{\"n\": 1}",
            "{\"n\": 2,\n   \"x\": [1,2]}",
            "{\"n\": 3,",
            "   \"y\": \"abc\",",
            "   \"z\": {\"deep\": [",
        ]
    );
    assert_eq!(
        out.flags(),
        [
            Flag::Json,
            Flag::Json,
            Flag::Malformed(ARRAY_EOF),
            Flag::Malformed(ARRAY_EOF),
            Flag::Malformed(ARRAY_EOF),
        ]
    );
    assert_eq!(
        out.records.iter().map(|r| r.line).collect::<Vec<_>>(),
        [2, 3, 5, 6, 8]
    );
    assert_eq!(out.report.blank_lines, 1);
    assert_no_content_lost(input, &out);
}

/// Every line of the input with content outside array/envelope punctuation
/// shows up, whole or as the end of a record.
fn assert_no_content_lost(input: &[u8], out: &common::Outcome) {
    let text = String::from_utf8_lossy(input);
    let kept: String = out.texts().join("\n");
    for line in text.lines() {
        let content = line
            .trim()
            .trim_start_matches(['[', ','])
            .trim_end_matches(',')
            .trim();
        if !content.is_empty() {
            assert!(kept.contains(content), "lost {content:?} from {kept:?}");
        }
    }
}

#[test]
fn broken_arrays_of_every_kind() {
    let cases: &[(&[u8], &[&str], &str)] = &[
        (
            b"[{\"a\":1},{\"b\":2}",
            &["{\"a\":1}", "{\"b\":2}"],
            ARRAY_EOF,
        ),
        (b"[{\"a\":1},", &["{\"a\":1}"], ARRAY_EOF),
        (
            b"[{\"a\":1} x {\"b\":2}]\nmore\n",
            &["{\"a\":1}", "x {\"b\":2}]", "more"],
            "unexpected byte after an array element (expected ',' or ']')",
        ),
        (
            b"[{\"a\":1},]",
            &["{\"a\":1}", "]"],
            "unexpected ']' after ','",
        ),
        (
            b"[{\"a\":1},,{\"b\":2}]",
            &["{\"a\":1}", ",{\"b\":2}]"],
            "unexpected byte where an array element should start",
        ),
        (
            b"[{\"a\":1}]]\n",
            &["{\"a\":1}", "]"],
            "unexpected content after the JSON array",
        ),
        (
            b"[{\"a\":1}]\n{\"b\":2}\n",
            &["{\"a\":1}", "{\"b\":2}"],
            "unexpected content after the JSON array",
        ),
        (
            b"[{\"a\":}}]\n",
            &["{\"a\":}", "}]"],
            "unexpected byte after an array element (expected ',' or ']')",
        ),
    ];
    for (input, texts, reason) in cases {
        let out = frame_consistently(input, FramerConfig::default());
        assert_eq!(out.texts(), *texts, "{}", String::from_utf8_lossy(input));
        assert_eq!(out.report.switched_to_lines.map(|s| s.1), Some(*reason));
        for rec in &out.records[out.records.len() - out.report.flagged as usize..] {
            assert!(matches!(rec.flag, Flag::Malformed(_) | Flag::NotJson(_)));
        }
    }
}

#[test]
fn broken_envelope_and_concatenated_values() {
    let out = frame_consistently(b"{\"Records\":[{\"a\":1},{\"b\":", FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Envelope));
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":"]);
    assert_eq!(
        out.records[1].flag,
        Flag::Malformed("envelope ends unexpectedly")
    );

    let out = frame_consistently(b"{\"Records\":[{\"a\":1}]", FramerConfig::default());
    assert_eq!(out.texts(), ["{\"a\":1}"]);
    assert_eq!(
        out.report.switched_to_lines,
        Some((1, "envelope ends unexpectedly"))
    );

    let out = frame_consistently(
        b"{\"Records\":[{\"a\":1}]}\n{\"Rec\": 1}\n",
        FramerConfig::default(),
    );
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"Rec\": 1}"]);
    assert_eq!(
        out.report.switched_to_lines,
        Some((2, "unexpected content after the envelope"))
    );

    let out = frame_consistently(b"{\n \"a\": 1\n}\n{\n \"b\": ", FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Concatenated));
    assert_eq!(out.texts(), ["{\n \"a\": 1\n}", "{", " \"b\": "]);
    assert_eq!(
        out.records[1].flag,
        Flag::Malformed("JSON value ends unexpectedly")
    );

    let out = frame_consistently(b"{\n \"a\": 1\n},\n{\"b\":2}\n", FramerConfig::default());
    assert_eq!(out.texts(), ["{\n \"a\": 1\n}", ",", "{\"b\":2}"]);
    assert_eq!(
        out.report.switched_to_lines,
        Some((3, "unexpected byte between JSON values"))
    );

    // An unterminated first value: it never was a line.
    let out = frame_consistently(b"{\"a\":1\n", FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Concatenated));
    assert_eq!(out.texts(), ["{\"a\":1"]);
}

#[test]
fn oversize_line_between_good_lines_is_rejected() {
    let config = FramerConfig {
        max_record_bytes: 1024,
        ..FramerConfig::default()
    };
    let long = "x".repeat(10 << 20);
    let input = format!("{{\"a\":1}}\n{{\"long\":\"{long}\"}}\n{{\"b\":2}}\n");
    let out = frame_with(input.as_bytes(), config);
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":2}"]);
    assert_eq!(out.records[1].line, 3);
    assert_eq!(out.report.rejected_count, 1);
    let rejected = &out.report.rejected[0];
    assert_eq!(rejected.line, 2);
    assert_eq!(rejected.bytes, long.len() as u64 + 11);
    assert_eq!(
        rejected.reason,
        format!(
            "record of {} bytes exceeds the limit of 1024 bytes",
            long.len() + 11
        )
    );
    // Same with small reads.
    let out2 = common::frame_chunked(input.as_bytes(), config, 4096, 1);
    assert_eq!(out2.records, out.records);
    assert_eq!(out2.report, out.report);
}

#[test]
fn record_size_limit_is_exact() {
    let config = FramerConfig {
        max_record_bytes: 8,
        ..FramerConfig::default()
    };
    let out = frame_consistently(b"12345678\n123456789\n12345678\r\n1234567\r8\r\n", config);
    assert_eq!(out.texts(), ["12345678", "12345678"]);
    assert_eq!(out.report.rejected_count, 2);
    assert_eq!(
        out.report
            .rejected
            .iter()
            .map(|r| (r.line, r.bytes))
            .collect::<Vec<_>>(),
        [(2, 9), (4, 9)]
    );
    let out = frame_consistently(b"[\"123456\",\"1234567\",[1,2,3]]", config);
    assert_eq!(out.texts(), ["\"123456\"", "[1,2,3]"]);
    assert_eq!(out.report.rejected[0].bytes, 9);
    let out = frame_consistently(b"{\"Records\":[[1, 2, 3, 4],1]}", config);
    assert_eq!(out.texts(), ["1"]);
    assert_eq!(out.report.rejected[0].bytes, 12);
}

/// The rejected list is capped, the count is not.
#[test]
fn many_rejections_are_counted() {
    let config = FramerConfig {
        max_record_bytes: 2,
        ..FramerConfig::default()
    };
    let input = "abc\n".repeat(250) + "ok\n";
    let out = frame_with(input.as_bytes(), config);
    assert_eq!(out.texts(), ["ok"]);
    assert_eq!(out.report.rejected_count, 250);
    assert_eq!(out.report.rejected.len(), 100);
}

/// A line far larger than memory would allow if it were buffered, produced
/// lazily. 2 GiB in release builds; 256 MiB in debug builds to keep the test
/// quick (the code path is the same; memory use does not depend on it).
#[test]
fn huge_line_is_streamed_past() {
    let size: u64 = if cfg!(debug_assertions) {
        256 << 20
    } else {
        2 << 30
    };
    let config = FramerConfig {
        max_record_bytes: 1024,
        ..FramerConfig::default()
    };
    let reader = Cursor::new(&b"{\"a\":1}\n"[..])
        .chain(io::repeat(b'a').take(size))
        .chain(Cursor::new(&b"\n{\"b\":2}\n"[..]));
    let out = frame_reader(BufReader::with_capacity(1 << 20, reader), config, 1 << 20);
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":2}"]);
    assert_eq!(out.records[1].line, 3);
    assert_eq!(out.report.rejected.len(), 1);
    assert_eq!(out.report.rejected[0].line, 2);
    assert_eq!(out.report.rejected[0].bytes, size);
    assert_eq!(out.report.bytes, size + 17);
}

/// The same for an element of a single-line envelope.
#[test]
fn huge_envelope_element_is_streamed_past() {
    let size: u64 = if cfg!(debug_assertions) {
        64 << 20
    } else {
        1 << 30
    };
    let config = FramerConfig {
        max_record_bytes: 1024,
        ..FramerConfig::default()
    };
    let reader = Cursor::new(&b"{\"Records\":[{\"a\":1},\"x"[..])
        .chain(io::repeat(b'a').take(size))
        .chain(Cursor::new(&b"\",{\"b\":2}]}"[..]));
    let out = frame_reader(BufReader::with_capacity(1 << 20, reader), config, 1 << 20);
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":2}"]);
    assert_eq!(out.report.rejected[0].bytes, size + 3);
    assert_eq!(out.report.switched_to_lines, None);
}

/// A reader that fails after `ok` bytes.
struct FailAfter {
    data: Cursor<Vec<u8>>,
    ok: usize,
}

impl Read for FailAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = self.data.position() as usize;
        if pos >= self.ok {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.ok - pos);
        self.data.read(&mut buf[..n])
    }
}

fn frame_failing(input: &[u8], ok: usize) -> common::Outcome {
    let reader = FailAfter {
        data: Cursor::new(input.to_vec()),
        ok,
    };
    frame_reader(
        BufReader::with_capacity(16, reader),
        FramerConfig::default(),
        1 << 20,
    )
}

#[test]
fn read_error_delivers_records_then_the_truncated_one_then_the_error() {
    let input = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
    let out = frame_failing(input, 20);
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":2}", "{\"c\""]);
    assert_eq!(out.records[2].flag, Flag::Truncated);
    let err = out.error.unwrap();
    assert!(matches!(&err, FramingError::Io { name, line: 3, .. } if name == "test-input"));
    assert_eq!(
        err.to_string(),
        "cannot read `test-input` past line 3: disk on fire; the records before it were kept, \
         the rest of this input is skipped (is the file truncated or corrupt?)"
    );

    // In an array element.
    let input = b"[{\"a\":1},{\"b\":2},{\"c\":3}]";
    let out = frame_failing(input, 21);
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":2}", "{\"c\""]);
    assert_eq!(out.flags()[2], Flag::Truncated);
    assert!(out.error.is_some());

    // Before anything: just the error.
    let out = frame_failing(input, 0);
    assert!(out.records.is_empty());
    assert!(matches!(out.error, Some(FramingError::Io { line: 1, .. })));

    // Between records: nothing truncated.
    let out = frame_failing(b"{\"a\":1}\n{\"b\":2}\n", 8);
    assert_eq!(out.texts(), ["{\"a\":1}"]);
    assert!(out.error.is_some());
}

#[test]
fn a_broken_envelope_line_is_counted_even_with_nothing_left_of_it() {
    let out = frame(b"{\"a\":1}\nnope\n{\"Records\":[{\"b\":2},\n");
    assert_eq!(out.texts(), ["{\"a\":1}", "nope", "{\"b\":2}"]);
    assert_eq!(out.report.flagged, 1);
    assert_eq!(out.report.broken_envelope_lines, 1);
}
