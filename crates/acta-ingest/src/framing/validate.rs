//! Deciding a record's [`Flag`]: is it one JSON value that serde_json will
//! parse with its default settings?
//!
//! Validation deserializes into [`Checked`], which builds nothing but reads
//! every value the way deserializing a real type does: strings are decoded
//! (so an unpaired UTF-16 surrogate escape such as `"\ud800"` is refused),
//! numbers are converted (so `1e400`, beyond `f64`, is refused), and nesting
//! is bounded by serde_json's recursion limit of 128 levels. A record flagged
//! [`Flag::Json`] is therefore one that reads into a `serde_json::Value`.
//! (`serde::de::IgnoredAny` skips string and number contents and has no depth
//! limit: it would let all three through.)

use std::fmt::{self, Write as _};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::Flag;

pub(crate) const INVALID_UTF8: &str = "invalid UTF-8";
pub(crate) const TOO_DEEP: &str = "nested deeper than 128 levels";

/// Validates `bytes`; `scratch` is reused to read serde_json's error message
/// without allocating per flagged record.
pub(crate) fn validate(bytes: &[u8], scratch: &mut String) -> Flag {
    // One UTF-8 check up front lets serde_json skip its check per string.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Flag::NotJson(INVALID_UTF8);
    };
    match serde_json::from_str::<Checked>(text) {
        Ok(_) => Flag::Json,
        Err(e) => Flag::NotJson(reason(&e, bytes, scratch)),
    }
}

/// Any JSON value, read in full and kept nowhere.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// Maps serde_json's error to a short static reason. serde_json exposes its
/// error kinds only through the message text, hence the prefix matching.
fn reason(e: &serde_json::Error, bytes: &[u8], scratch: &mut String) -> &'static str {
    // Text (a log line, a header) rather than broken JSON: it does not even
    // start like a structured JSON value.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9')) {
        return "not JSON";
    }
    if e.is_eof() {
        return "JSON ends early";
    }
    scratch.clear();
    // Writing to a String cannot fail.
    let _ = write!(scratch, "{e}");
    let msg = scratch.as_str();
    const TABLE: &[(&str, &str)] = &[
        ("recursion limit exceeded", TOO_DEEP),
        (
            "trailing characters",
            "trailing characters after the JSON value",
        ),
        ("expected value", "a JSON value is missing"),
        ("expected ident", "invalid JSON literal"),
        (
            "control character",
            "control character inside a JSON string",
        ),
        ("invalid escape", "invalid escape in a JSON string"),
        ("invalid unicode code point", "invalid unicode escape"),
        ("lone leading surrogate", "invalid unicode escape"),
        ("unexpected end of hex escape", "invalid unicode escape"),
        ("invalid number", "invalid JSON number"),
        ("number out of range", "JSON number out of range"),
        ("trailing comma", "trailing comma"),
        ("key must be a string", "object key is not a string"),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| msg.starts_with(prefix))
        .map_or("invalid JSON syntax", |&(_, reason)| reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(bytes: &[u8]) -> Flag {
        validate(bytes, &mut String::new())
    }

    #[test]
    fn flags() {
        assert_eq!(flag(br#"{"a":[1,2,{"b":null}]}"#), Flag::Json);
        assert_eq!(flag(b" 12 "), Flag::Json);
        assert_eq!(
            flag(b"Jan  1 00:00:00 host sshd[1]: hi"),
            Flag::NotJson("not JSON")
        );
        assert_eq!(flag(br#"{"a":1"#), Flag::NotJson("JSON ends early"));
        assert_eq!(
            flag(br#"{"a":1} x"#),
            Flag::NotJson("trailing characters after the JSON value")
        );
        assert_eq!(flag(b"{\"a\":\"\xff\"}"), Flag::NotJson(INVALID_UTF8));
        assert_eq!(flag(br#"{"a":[1,]}"#), Flag::NotJson("trailing comma"));
        assert_eq!(flag(br#"{"a":}"#), Flag::NotJson("a JSON value is missing"));
        assert_eq!(flag(b"  nope"), Flag::NotJson("not JSON"));
        assert_eq!(flag(b"tr"), Flag::NotJson("not JSON"));
        assert_eq!(flag(b"failed password for root"), Flag::NotJson("not JSON"));
        assert_eq!(
            flag(b"12 monkeys"),
            Flag::NotJson("trailing characters after the JSON value")
        );
        assert_eq!(flag(b"[nul]"), Flag::NotJson("invalid JSON literal"));
        assert_eq!(
            flag(br#"{"a":"\q"}"#),
            Flag::NotJson("invalid escape in a JSON string")
        );
        assert_eq!(flag(b""), Flag::NotJson("not JSON"));
    }

    /// The depth limit agrees with deserializing into `serde_json::Value`.
    #[test]
    fn depth_limit_matches_serde_json() {
        for depth in 120..135usize {
            for (open, close, leaf) in [
                ("[", "]", ""),
                ("{\"a\":", "}", "1"),
                ("[{\"a\":", "}]", "1"),
            ] {
                let mut s = open.repeat(depth);
                s.push_str(leaf);
                s.push_str(&close.repeat(depth));
                let expected = serde_json::from_str::<serde_json::Value>(&s).is_ok();
                let got = flag(s.as_bytes());
                assert_eq!(got == Flag::Json, expected, "depth {depth} {open}: {got:?}");
                if !expected {
                    assert_eq!(got, Flag::NotJson(TOO_DEEP));
                }
            }
        }
    }

    /// What `serde_json::Value` refuses is not flagged as JSON, and what it reads is.
    #[test]
    fn agrees_with_reading_a_value() {
        let cases: &[&[u8]] = &[
            b"[1e400]",
            b"[-1e400]",
            b"1e308",
            b"[1.7976931348623157e308]",
            b"[123456789012345678901234567890]",
            br#""\ud800""#,
            br#"{"a":"x\udc00y"}"#,
            br#"{"\ud800":1}"#,
            br#""\ud83d\ude00""#,
            br#""\u00e9\n""#,
            br#"{"a":1,"a":2}"#,
            br#""\ud800\u0041""#,
        ];
        for bytes in cases {
            let value = serde_json::from_slice::<serde_json::Value>(bytes).is_ok();
            assert_eq!(
                flag(bytes) == Flag::Json,
                value,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(flag(b"[1e400]"), Flag::NotJson("JSON number out of range"));
        assert_eq!(
            flag(br#""\ud800""#),
            Flag::NotJson("invalid unicode escape")
        );
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let s = format!(r#"{{"a":"{}","b":"\"[[["}}"#, "[{".repeat(500));
        assert_eq!(flag(s.as_bytes()), Flag::Json);
    }
}
