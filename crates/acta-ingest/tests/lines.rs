//! Line mode: NDJSON and text logs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use acta_ingest::framing::{Flag, FramerConfig, Shape};
use common::{frame, frame_consistently};

#[test]
fn ndjson_with_crlf_blank_lines_text_and_no_final_newline() {
    let input = b"{\"a\":1}\r\n\
                  \n\
                  \x20\t \r\n\
                  {\"b\":[1,2]}\n\
                  this is not json\n\
                  {\"c\":\"\xff\xfe\"}\n\
                  \x20 {\"d\":null}  \r\n\
                  {\"e\":true}";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Lines));
    assert_eq!(
        out.texts(),
        [
            "{\"a\":1}",
            "{\"b\":[1,2]}",
            "this is not json",
            "{\"c\":\"\u{fffd}\u{fffd}\"}",
            "  {\"d\":null}  ",
            "{\"e\":true}",
        ]
    );
    // Byte-exact, including invalid UTF-8.
    assert_eq!(out.records[3].bytes, b"{\"c\":\"\xff\xfe\"}");
    assert_eq!(
        out.flags(),
        [
            Flag::Json,
            Flag::Json,
            Flag::NotJson("not JSON"),
            Flag::NotJson("invalid UTF-8"),
            Flag::Json,
            Flag::Json,
        ]
    );
    assert_eq!(
        out.records.iter().map(|r| r.line).collect::<Vec<_>>(),
        [1, 4, 5, 6, 7, 8]
    );
    assert_eq!(out.report.blank_lines, 2);
    assert_eq!(out.report.flagged, 2);
    assert_eq!(out.report.bytes, input.len() as u64);
    assert!(!out.report.empty);
    assert!(out.error.is_none());
}

#[test]
fn text_logs_are_lines() {
    let input = b"Jan  1 00:00:01 host sshd[42]: Accepted publickey for alice\n\
                  Jan  1 00:00:02 host sudo: alice : TTY=pts/0 ; COMMAND=/bin/ls\n";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Lines));
    assert_eq!(out.records.len(), 2);
    assert!(out.records[0].text().ends_with("for alice"));
    assert!(out.flags().iter().all(|f| *f == Flag::NotJson("not JSON")));
}

#[test]
fn a_lone_cr_is_kept_and_only_the_one_before_newline_is_dropped() {
    let out = frame_consistently(b"a\rb\r\r\nc\r", FramerConfig::default());
    assert_eq!(out.texts(), ["a\rb\r", "c\r"]);
}

#[test]
fn leading_whitespace_of_the_first_line_is_kept_in_ndjson() {
    let input = b"\n  \n \t{\"a\":1} \n{\"b\":2}\n";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Lines));
    assert_eq!(out.texts(), [" \t{\"a\":1} ", "{\"b\":2}"]);
    assert_eq!(out.records[0].line, 3);
    assert_eq!(out.records[1].line, 4);
    assert_eq!(out.report.blank_lines, 2);
}

#[test]
fn ndjson_lines_that_are_not_objects_are_records() {
    let out = frame_consistently(b"{\"a\":1}\n[1,2]\n\"s\"\n42\n{\n", FramerConfig::default());
    assert_eq!(out.texts(), ["{\"a\":1}", "[1,2]", "\"s\"", "42", "{"]);
    assert_eq!(
        out.flags(),
        [
            Flag::Json,
            Flag::Json,
            Flag::Json,
            Flag::Json,
            Flag::NotJson("JSON ends early")
        ]
    );
}

#[test]
fn a_byte_order_mark_at_the_start_is_skipped() {
    let out = frame_consistently(
        b"\xEF\xBB\xBF{\"a\":1}\n{\"b\":2}\n",
        FramerConfig::default(),
    );
    assert_eq!(out.report.shape, Some(Shape::Lines));
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":2}"]);
    // A partial one is content.
    let out = frame_consistently(b"\xEF\xBBx\n", FramerConfig::default());
    assert_eq!(out.records[0].bytes, b"\xEF\xBBx");
    assert_eq!(out.records[0].flag, Flag::NotJson("invalid UTF-8"));
}

#[test]
fn empty_input() {
    let out = frame_consistently(b"", FramerConfig::default());
    assert!(out.records.is_empty());
    assert!(out.report.empty);
    assert_eq!(out.report.shape, None);
    assert_eq!(out.report.blank_lines, 0);
    assert!(out.error.is_none());
}

#[test]
fn whitespace_only_input() {
    let out = frame_consistently(b"  \n\t\r\n\n   ", FramerConfig::default());
    assert!(out.records.is_empty());
    assert!(out.report.empty);
    assert_eq!(out.report.shape, None);
    assert_eq!(out.report.blank_lines, 4);
    assert_eq!(out.report.bytes, 10);
    assert!(out.error.is_none());
}

#[test]
fn one_line_without_newline() {
    let out = frame(b"{\"a\":1}");
    assert_eq!(out.report.shape, Some(Shape::Lines));
    assert_eq!(out.texts(), ["{\"a\":1}"]);
    let out = frame(b"hello");
    assert_eq!(out.texts(), ["hello"]);
}

#[test]
fn deep_nesting_on_a_line_is_flagged_not_crashed() {
    let depth = 100_000;
    let mut line = "{\"a\":".repeat(depth);
    line.push('1');
    line.push_str(&"}".repeat(depth));
    let input = format!("{{\"ok\":1}}\n{line}\n{{\"ok\":2}}\n");
    let out = frame(input.as_bytes());
    assert_eq!(out.report.shape, Some(Shape::Lines));
    assert_eq!(out.records.len(), 3);
    assert_eq!(out.records[1].bytes, line.as_bytes());
    assert_eq!(
        out.records[1].flag,
        Flag::NotJson("nested deeper than 128 levels")
    );
    assert_eq!(out.records[2].flag, Flag::Json);

    // Unbalanced, only openings: an array whose first element never ends.
    let input = "[".repeat(depth) + "\n";
    let out = frame(input.as_bytes());
    assert_eq!(out.report.shape, Some(Shape::JsonArray));
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].bytes.len(), depth - 1);
    assert_eq!(
        out.records[0].flag,
        Flag::Malformed("JSON array ends unexpectedly")
    );
}

#[test]
fn batches_never_split_records_and_tiny_batches_match_huge_ones() {
    let mut input = Vec::new();
    for i in 0..500 {
        input.extend_from_slice(
            format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 37)).as_bytes(),
        );
    }
    let big = common::frame_reader(
        std::io::Cursor::new(&input),
        FramerConfig::default(),
        usize::MAX,
    );
    let tiny = common::frame_reader(std::io::Cursor::new(&input), FramerConfig::default(), 1);
    assert_eq!(big.records, tiny.records);
    assert_eq!(big.records.len(), 500);
    assert_eq!(big.calls, 1);
    // One record per call, plus the call that finds the end.
    assert!(tiny.calls >= 500, "{}", tiny.calls);
}
