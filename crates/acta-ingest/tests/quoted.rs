//! Line mode with quoted newlines: CSV records and pgaudit statements that
//! span lines are one record each.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use acta_ingest::framing::{Flag, FramerConfig, QuotedNewlines, Shape};
use common::frame_consistently;
use proptest::prelude::*;

fn config(q: QuotedNewlines) -> FramerConfig {
    FramerConfig {
        quoted_newlines: q,
        ..FramerConfig::default()
    }
}

const STDERR: &[u8] = b"2024-05-01 10:00:00.001 UTC [42] alice@app LOG:  AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,public.t,\"CREATE TABLE t\n\t(\n\t\tid int, \"\"q\"\" text\n\t)\",<not logged>\n\
2024-05-01 10:00:00.002 UTC [42] alice@app LOG:  statement: select '\"'\n\
2024-05-01 10:00:00.003 UTC [42] alice@app LOG:  AUDIT: SESSION,2,1,READ,SELECT,,,select 1,<not logged>\n";

#[test]
fn pgaudit_statements_spanning_lines_are_one_record() {
    let out = frame_consistently(STDERR, config(QuotedNewlines::PGAUDIT));
    assert_eq!(out.report.shape, Some(Shape::Lines));
    let texts = out.texts();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(texts[0].ends_with("\t)\",<not logged>"), "{}", texts[0]);
    assert_eq!(texts[0].matches('\n').count(), 3);
    // An unbalanced quote in a line without the marker joins nothing.
    assert!(texts[1].ends_with("select '\"'"));
    assert!(texts[2].ends_with("select 1,<not logged>"));
    assert_eq!(
        out.records.iter().map(|r| r.line).collect::<Vec<_>>(),
        [1, 5, 6]
    );
    assert_eq!(out.report.quoted_newlines, 3);
    assert_eq!(out.report.bytes, STDERR.len() as u64);

    // Off (the default): one record per line, as before.
    let out = frame_consistently(STDERR, FramerConfig::default());
    assert_eq!(out.records.len(), 6);
    assert_eq!(out.report.quoted_newlines, 0);
}

#[test]
fn csv_records_with_quoted_newlines_and_crlf() {
    let input = b"a,\"x\r\ny\",b\r\nc,\"\",\"\"\"\"\r\n\"open\n\n\"\"\",\n{\"j\":\"\\\"\"}\nlast,\"never closed\nstill";
    let out = frame_consistently(input, config(QuotedNewlines::Always));
    assert_eq!(
        out.texts(),
        [
            "a,\"x\r\ny\",b",
            "c,\"\",\"\"\"\"",
            "\"open\n\n\"\"\",",
            "{\"j\":\"\\\"\"}",
            "last,\"never closed\nstill",
        ]
    );
    assert_eq!(
        out.records.iter().map(|r| r.line).collect::<Vec<_>>(),
        [1, 3, 4, 7, 8]
    );
    assert_eq!(out.records[3].flag, Flag::Json);
    assert_eq!(out.report.quoted_newlines, 4);
    // The marker mode needs the marker.
    let out = frame_consistently(input, config(QuotedNewlines::PGAUDIT));
    assert_eq!(out.records.len(), 8);
    assert_eq!(out.report.blank_lines, 1);
}

#[test]
fn a_joined_record_over_the_limit_is_kept_line_by_line() {
    let input = b"AUDIT: \"one\ntwo\nthree\nfour\"\nnext\n";
    let small = FramerConfig {
        max_record_bytes: 16,
        quoted_newlines: QuotedNewlines::PGAUDIT,
        ..FramerConfig::default()
    };
    let out = frame_consistently(input, small);
    assert_eq!(
        out.texts(),
        ["AUDIT: \"one", "two", "three", "four\"", "next"]
    );
    assert_eq!(out.report.quoted_splits, 1);
    assert_eq!(out.report.quoted_newlines, 0);
    assert_eq!(out.report.rejected_count, 0);
    // With room, it is one record.
    let out = frame_consistently(input, config(QuotedNewlines::PGAUDIT));
    assert_eq!(out.texts(), ["AUDIT: \"one\ntwo\nthree\nfour\"", "next"]);
    // A split record's lines may still be over the limit on their own.
    let input = b"AUDIT: \"a\nbbbbbbbbbbbbbbbbbbbbbbbbb\nc\"\nd\n";
    let out = frame_consistently(input, small);
    assert_eq!(out.texts(), ["AUDIT: \"a", "c\"", "d"]);
    assert_eq!(out.report.rejected_count, 1);
    assert_eq!(out.report.rejected[0].line, 2);
}

/// Lines over a small alphabet rich in quotes and the marker.
fn quoted_text() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(&b"\""[..]),
        Just(&b"\"\""[..]),
        Just(&b"\n"[..]),
        Just(&b","[..]),
        Just(&b"x"[..]),
        Just(&b"AUDIT: "[..]),
        Just(&b"AUD"[..]),
        Just(&b"IT: "[..]),
    ];
    prop::collection::vec(pieces, 0..80).prop_map(|v| v.concat())
}

fn quotes(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'"').count()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_in_any_mode(
        input in prop::collection::vec(any::<u8>(), 0..1500),
        max in 1usize..64,
    ) {
        for q in [QuotedNewlines::Always, QuotedNewlines::PGAUDIT] {
            let out = frame_consistently(&input, config(q));
            prop_assert_eq!(out.report.bytes, input.len() as u64);
            let out = frame_consistently(&input, FramerConfig { max_record_bytes: max, quoted_newlines: q, ..FramerConfig::default() });
            prop_assert_eq!(out.report.bytes, input.len() as u64);
        }
    }

    #[test]
    fn every_byte_is_in_a_record_and_joins_follow_the_quotes(input in quoted_text(), marker in any::<bool>()) {
        let q = if marker { QuotedNewlines::PGAUDIT } else { QuotedNewlines::Always };
        let out = frame_consistently(&input, config(q));
        // Records are the input in order; only newlines lie between them.
        let mut pos = 0;
        let n = out.records.len();
        for (k, r) in out.records.iter().enumerate() {
            while input.get(pos) == Some(&b'\n') {
                pos += 1;
            }
            prop_assert_eq!(&input[pos..pos + r.bytes.len()], &r.bytes[..]);
            let line = 1 + input[..pos].iter().filter(|&&b| b == b'\n').count() as u64;
            prop_assert_eq!(r.line, line);
            // A newline is inside a record only within an open quote (after the marker).
            for (i, _) in r.bytes.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                prop_assert!(!quotes(&r.bytes[..i]).is_multiple_of(2));
                if marker {
                    prop_assert!(contains(&r.bytes[..i], b"AUDIT: "));
                }
            }
            // A record ends at a newline only with its quotes closed (or without the marker).
            if k + 1 < n {
                prop_assert!(
                    quotes(&r.bytes).is_multiple_of(2) || (marker && !contains(&r.bytes, b"AUDIT: "))
                );
            }
            pos += r.bytes.len();
        }
        prop_assert!(input[pos..].iter().all(|&b| b == b'\n'));
        prop_assert_eq!(out.report.rejected_count, 0);
    }
}
