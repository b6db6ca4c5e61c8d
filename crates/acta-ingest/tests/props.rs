//! Property tests: no input panics or depends on read/batch sizes, and valid
//! JSON in every shape comes back exactly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use acta_ingest::framing::{Flag, FramerConfig, Shape};
use common::frame_consistently;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        "[\\[\\]{}\",:\\\\ \n\r\t]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object_sized(size: std::ops::Range<usize>) -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,6}", json_value(), size)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn json_object() -> impl Strategy<Value = Value> {
    json_object_sized(0..6)
}

/// What serde_json reads back from `v`'s text (floats may not round-trip
/// exactly without serde_json's `float_roundtrip` feature).
fn reparsed(values: &[Value]) -> Vec<Value> {
    values
        .iter()
        .map(|v| serde_json::from_str(&v.to_string()).unwrap())
        .collect()
}

/// Bytes that exercise the structural paths: brackets, quotes, escapes,
/// newlines, the envelope key, invalid UTF-8.
fn structural_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(&b"{"[..]),
        Just(&b"}"[..]),
        Just(&b"["[..]),
        Just(&b"]"[..]),
        Just(&b"\""[..]),
        Just(&b"\\"[..]),
        Just(&b","[..]),
        Just(&b":"[..]),
        Just(&b" "[..]),
        Just(&b"\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\"Records\""[..]),
        Just(&b"{\"Records\":["[..]),
        Just(&b"1"[..]),
        Just(&b"true"[..]),
        Just(&b"x"[..]),
        Just(&b"\xff"[..]),
        Just(&b"\xEF\xBB\xBF"[..]),
        Just(&b"{\"a\":1}"[..]),
    ];
    prop::collection::vec(pieces, 0..60).prop_map(|v| v.concat())
}

fn values_of(out: &common::Outcome) -> Vec<Value> {
    out.records
        .iter()
        .map(|r| {
            assert_eq!(r.flag, Flag::Json);
            serde_json::from_slice(&r.bytes).unwrap()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..2000)) {
        let out = frame_consistently(&input, FramerConfig::default());
        prop_assert_eq!(out.report.bytes, input.len() as u64);
        prop_assert!(out.error.is_none());
    }

    #[test]
    fn structural_garbage_never_panics(input in structural_bytes(), max in 1usize..64) {
        let out = frame_consistently(&input, FramerConfig::default());
        prop_assert_eq!(out.report.bytes, input.len() as u64);
        // And under a tiny size limit.
        let out = frame_consistently(&input, FramerConfig { max_record_bytes: max, ..FramerConfig::default() });
        prop_assert_eq!(out.report.bytes, input.len() as u64);
    }

    #[test]
    fn ndjson_objects_come_back_exactly(objects in prop::collection::vec(json_object(), 0..12), crlf in any::<bool>()) {
        let lines: Vec<String> = objects.iter().map(|v| v.to_string()).collect();
        let sep = if crlf { "\r\n" } else { "\n" };
        let input = lines.iter().map(|l| format!("{l}{sep}")).collect::<String>();
        let out = frame_consistently(input.as_bytes(), FramerConfig::default());
        prop_assert_eq!(out.texts(), lines);
        prop_assert!(out.records.iter().all(|r| r.flag == Flag::Json));
        if !objects.is_empty() {
            prop_assert_eq!(out.report.shape, Some(Shape::Lines));
        }
    }

    #[test]
    fn array_and_envelope_elements_come_back_exactly(objects in prop::collection::vec(json_object(), 0..12)) {
        let compact: Vec<String> = objects.iter().map(|v| v.to_string()).collect();
        let array = Value::Array(objects.clone());

        let out = frame_consistently(array.to_string().as_bytes(), FramerConfig::default());
        prop_assert_eq!(out.report.shape, Some(Shape::JsonArray));
        prop_assert_eq!(&out.texts(), &compact);

        let envelope = format!("{{\"Records\":{array}}}");
        let out = frame_consistently(envelope.as_bytes(), FramerConfig::default());
        prop_assert_eq!(out.report.shape, Some(Shape::Envelope));
        prop_assert_eq!(&out.texts(), &compact);

        let pretty = serde_json::to_string_pretty(&array).unwrap();
        let out = frame_consistently(pretty.as_bytes(), FramerConfig::default());
        prop_assert_eq!(values_of(&out), reparsed(&objects));

        let pretty = serde_json::to_string_pretty(&serde_json::json!({ "Records": array })).unwrap();
        let out = frame_consistently(pretty.as_bytes(), FramerConfig::default());
        prop_assert_eq!(out.report.shape, Some(Shape::Envelope));
        prop_assert_eq!(values_of(&out), reparsed(&objects));
        prop_assert_eq!(out.report.switched_to_lines, None);
    }

    #[test]
    fn concatenated_pretty_objects_come_back(
        first in json_object_sized(1..6),
        rest in prop::collection::vec(json_object(), 0..8),
        sep in prop_oneof![Just(""), Just("\n"), Just(" \r\n\n\t")],
    ) {
        // A non-empty object pretty-printed spans lines, so the input is
        // not NDJSON; the others may be `{}` or on one line, no matter.
        let objects: Vec<Value> = std::iter::once(first).chain(rest).collect();
        let pretty: Vec<String> = objects.iter().map(|v| serde_json::to_string_pretty(v).unwrap()).collect();
        let input = pretty.join(sep);
        let out = frame_consistently(input.as_bytes(), FramerConfig::default());
        prop_assert_eq!(out.report.shape, Some(Shape::Concatenated));
        prop_assert_eq!(out.texts(), pretty);
    }
}
