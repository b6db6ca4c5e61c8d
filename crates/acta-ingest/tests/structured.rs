//! JSON arrays, envelopes and concatenated values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use acta_ingest::framing::{Flag, FramerConfig, Shape};
use common::{frame, frame_consistently, stratus_files};
use serde_json::Value;

#[test]
fn stratus_arrays_are_split_byte_exactly() {
    let mut total = 0;
    let files = stratus_files();
    assert_eq!(files.len(), 35);
    for path in &files {
        let input = std::fs::read(path).unwrap();
        let expected: Vec<Value> = match serde_json::from_slice(&input).unwrap() {
            Value::Array(items) => items,
            other => panic!("{}: not an array: {other:?}", path.display()),
        };
        let out = frame(&input);
        assert_eq!(
            out.report.shape,
            Some(Shape::JsonArray),
            "{}",
            path.display()
        );
        assert_eq!(out.records.len(), expected.len(), "{}", path.display());
        assert!(out.error.is_none());
        assert_eq!(out.report.switched_to_lines, None);
        for (rec, value) in out.records.iter().zip(&expected) {
            assert_eq!(rec.flag, Flag::Json);
            // The record is exactly the element's text: it starts with `{`,
            // ends with `}`, and parses to the element.
            assert_eq!(rec.bytes.first(), Some(&b'{'));
            assert_eq!(rec.bytes.last(), Some(&b'}'));
            let parsed: Value = serde_json::from_slice(&rec.bytes).unwrap();
            assert_eq!(&parsed, value, "{} line {}", path.display(), rec.line);
            // And it sits in the file at its line.
            let at = input
                .windows(rec.bytes.len())
                .position(|w| w == rec.bytes.as_slice())
                .unwrap();
            let line = 1 + input[..at].iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(rec.line, line);
        }
        total += expected.len();
    }
    assert_eq!(total, 310);
}

#[test]
fn stratus_files_frame_the_same_in_every_shape() {
    for path in stratus_files().iter().take(5) {
        let input = std::fs::read(path).unwrap();
        let values: Vec<Value> = serde_json::from_slice(&input).unwrap();
        let compact: Vec<String> = values.iter().map(|v| v.to_string()).collect();

        // Chunked reads and tiny batches give the same records.
        let out = frame_consistently(&input, FramerConfig::default());
        assert_eq!(out.records.len(), values.len());

        let ndjson = compact.join("\n") + "\n";
        let envelope = format!("{{\"Records\":[{}]}}", compact.join(","));
        let pretty_envelope =
            serde_json::to_string_pretty(&serde_json::json!({ "Records": values })).unwrap();
        let concatenated = values
            .iter()
            .map(|v| serde_json::to_string_pretty(v).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        for (input, shape) in [
            (ndjson, Shape::Lines),
            (envelope, Shape::Envelope),
            (pretty_envelope, Shape::Envelope),
            (concatenated, Shape::Concatenated),
        ] {
            let out = frame_consistently(input.as_bytes(), FramerConfig::default());
            assert_eq!(out.report.shape, Some(shape));
            assert_eq!(out.records.len(), values.len(), "{shape:?}");
            for (rec, value) in out.records.iter().zip(&values) {
                assert_eq!(rec.flag, Flag::Json);
                assert_eq!(&serde_json::from_slice::<Value>(&rec.bytes).unwrap(), value);
            }
        }
    }
}

#[test]
fn single_line_envelope() {
    let input = br#"{"Records":[{"eventName":"A"},{"eventName":"B","x":[1,{"y":"]}"}]}]}"#;
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Envelope));
    assert_eq!(
        out.texts(),
        [
            r#"{"eventName":"A"}"#,
            r#"{"eventName":"B","x":[1,{"y":"]}"}]}"#
        ]
    );
    assert_eq!(out.flags(), [Flag::Json, Flag::Json]);
    assert_eq!(out.report.switched_to_lines, None);
}

#[test]
fn pretty_printed_envelope() {
    let input = b"{\n  \"Records\" : [\n    {\n      \"a\": 1\n    },\n    {\"b\": 2}\n  ]\n}\n";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Envelope));
    assert_eq!(out.texts(), ["{\n      \"a\": 1\n    }", "{\"b\": 2}"]);
    assert_eq!(out.records[0].line, 3);
    assert_eq!(out.records[1].line, 6);
}

#[test]
fn empty_envelope_and_concatenated_envelopes() {
    let out = frame_consistently(b"{\"Records\":[]}", FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Envelope));
    assert!(out.records.is_empty());
    assert!(!out.report.empty);

    let input = b"{\"Records\":[{\"a\":1}]}\n{\"Records\":[{\"b\":2},{\"c\":3}]}\n";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Envelope));
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
    assert_eq!(out.report.switched_to_lines, None);
}

#[test]
fn ndjson_mixing_envelope_lines_and_plain_events() {
    let input = b"{\"eventName\":\"A\"}\n\
                  {\"Records\":[{\"eventName\":\"B\"},{\"eventName\":\"C\"}]}\n\
                  {\"eventName\":\"D\"}\r\n\
                  \x20 {\"Records\": [ ]}  \n\
                  {\"Records\":[{\"eventName\":\"E\"}]}";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Lines));
    assert_eq!(
        out.texts(),
        [
            "{\"eventName\":\"A\"}",
            "{\"eventName\":\"B\"}",
            "{\"eventName\":\"C\"}",
            "{\"eventName\":\"D\"}",
            "{\"eventName\":\"E\"}",
        ]
    );
    assert!(out.flags().iter().all(|f| *f == Flag::Json));
    assert_eq!(
        out.records.iter().map(|r| r.line).collect::<Vec<_>>(),
        [1, 2, 2, 3, 5]
    );
    assert_eq!(out.report.broken_envelope_lines, 0);
}

#[test]
fn broken_envelope_lines_in_ndjson_stay_on_their_line() {
    let input = b"{\"a\":1}\n\
                  {\"Records\":[{\"b\":2},{\"c\":\n\
                  {\"d\":4}\n\
                  {\"Records\":[{\"e\":5}],\"more\":1}\n\
                  {\"f\":6}\n";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Lines));
    assert_eq!(
        out.texts(),
        [
            "{\"a\":1}",
            "{\"b\":2}",
            "{\"c\":",
            "{\"d\":4}",
            "{\"e\":5}",
            ",\"more\":1}",
            "{\"f\":6}"
        ]
    );
    assert_eq!(
        out.flags(),
        [
            Flag::Json,
            Flag::Json,
            Flag::Malformed("envelope line ends before the envelope closes"),
            Flag::Json,
            Flag::Json,
            Flag::Malformed("unexpected byte ',' after envelope array"),
            Flag::Json,
        ]
    );
    assert_eq!(out.records[5].line, 4);
    assert_eq!(out.report.broken_envelope_lines, 2);
    assert_eq!(out.report.switched_to_lines, None);
}

#[test]
fn envelope_with_extra_members_keeps_the_rest() {
    let input = b"{\"Records\":[{\"a\":1},{\"b\":2}],\n \"Next\": \"token\"\n}\n";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Envelope));
    let reason = "unexpected byte ',' after envelope array";
    assert_eq!(out.report.switched_to_lines, Some((1, reason)));
    assert_eq!(
        out.texts(),
        ["{\"a\":1}", "{\"b\":2}", ",", " \"Next\": \"token\"", "}"]
    );
    assert_eq!(out.records[2].flag, Flag::Malformed(reason));
    assert_eq!(out.records[4].line, 3);
}

#[test]
fn object_that_is_not_an_envelope_is_a_value() {
    // `Records` not first, or not an array: plain values.
    for input in [
        &b"{\"x\":1,\"Records\":[{\"a\":1}]}\n"[..],
        b"{\"Records\":5}\n",
        b"{\"Recordsx\":[1]}\n",
    ] {
        let out = frame_consistently(input, FramerConfig::default());
        assert_eq!(out.report.shape, Some(Shape::Lines));
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].bytes, input.strip_suffix(b"\n").unwrap());
    }
}

#[test]
fn json_array_of_mixed_values() {
    let input = b" [ {\"a\":[1,2]} , \"s,]\" ,-1.5e3,true,null,[[]] ]\n";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::JsonArray));
    assert_eq!(
        out.texts(),
        ["{\"a\":[1,2]}", "\"s,]\"", "-1.5e3", "true", "null", "[[]]"]
    );
    assert!(out.flags().iter().all(|f| *f == Flag::Json));
    let out = frame_consistently(b"[]", FramerConfig::default());
    assert!(out.records.is_empty());
    assert_eq!(out.report.switched_to_lines, None);
    let out = frame_consistently(b"[1][2,3]", FramerConfig::default());
    assert_eq!(out.texts(), ["1", "2", "3"]);
}

#[test]
fn concatenated_pretty_values() {
    let input = b"{\n  \"a\": 1\n}\n{\n  \"b\": [2]\n}{\"c\":3} [4]\n\n";
    let out = frame_consistently(input, FramerConfig::default());
    assert_eq!(out.report.shape, Some(Shape::Concatenated));
    assert_eq!(
        out.texts(),
        ["{\n  \"a\": 1\n}", "{\n  \"b\": [2]\n}", "{\"c\":3}", "[4]"]
    );
    assert_eq!(
        out.records.iter().map(|r| r.line).collect::<Vec<_>>(),
        [1, 4, 6, 6]
    );
    assert!(out.flags().iter().all(|f| *f == Flag::Json));
}

#[test]
fn several_values_on_the_first_line_are_concatenated() {
    let out = frame_consistently(
        b"  {\"a\":1} {\"b\":2}\n{\"c\":3}\n",
        FramerConfig::default(),
    );
    assert_eq!(out.report.shape, Some(Shape::Concatenated));
    assert_eq!(out.texts(), ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
}

#[test]
fn deep_nesting_in_an_array_is_flagged_not_crashed() {
    let depth = 100_000;
    let input = "[".repeat(depth) + &"]".repeat(depth);
    let out = frame(input.as_bytes());
    assert_eq!(out.report.shape, Some(Shape::JsonArray));
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].bytes.len(), 2 * (depth - 1));
    assert_eq!(
        out.records[0].flag,
        Flag::NotJson("nested deeper than 128 levels")
    );
    // Shallow enough: fine.
    let input = format!("[{}{}]", "[".repeat(126), "]".repeat(126));
    assert_eq!(frame(input.as_bytes()).records[0].flag, Flag::Json);
}

/// With validation off, records are cut exactly as with it on; intact records are `Unchecked`
/// instead of `Json`/`NotJson`, and damage is still flagged.
#[test]
fn unchecked_records_are_cut_the_same_and_damage_is_still_flagged() {
    let inputs: [&[u8]; 3] = [
        b"{\"a\":1}\nnot json\n[1e400]\n{\"b\":\"\\ud800\"}\n",
        b"[{\"a\":1},{\"b\":2},{\"c\":",
        b"{\"Records\":[{\"a\":1},{\"b\":[2]}]}",
    ];
    for input in inputs {
        let checked = frame_consistently(input, FramerConfig::default());
        let unchecked = frame_consistently(
            input,
            FramerConfig {
                check_json: false,
                ..FramerConfig::default()
            },
        );
        assert_eq!(checked.texts(), unchecked.texts());
        for (c, u) in checked.flags().into_iter().zip(unchecked.flags()) {
            match c {
                Flag::Json | Flag::NotJson(_) => assert_eq!(u, Flag::Unchecked),
                damage => assert_eq!(u, damage),
            }
        }
        assert!(unchecked.report.flagged <= checked.report.flagged);
    }
}
