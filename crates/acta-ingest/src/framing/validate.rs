//! Deciding a record's [`Flag`]: is it one JSON value that serde_json will
//! parse with its default settings?
//!
//! Validation goes through `serde::de::IgnoredAny`, which builds nothing. Two
//! gaps of that path are closed here so that `Flag::Json` keeps its promise to
//! the parsers downstream:
//!
//! - serde_json skips string contents without checking UTF-8 when ignoring
//!   them, so the whole record is checked with `std::str::from_utf8` first
//!   (a fast ASCII path; negligible next to parsing).
//! - serde_json ignores values with an explicit stack and no recursion
//!   limit, while deserializing into any real type stops at 128 levels. A
//!   record nested deeper would pass here and fail later, so depth is checked
//!   too: cheaply (counting `[` and `{` bytes) and, only for records
//!   with enough brackets to possibly be too deep, exactly.

use std::fmt::Write as _;

use memchr::{memchr_iter, memchr2};
use serde::de::IgnoredAny;

use super::Flag;

/// Deepest nesting serde_json accepts when deserializing real types: its
/// recursion budget is 128 and the 128th nested array or object exhausts it.
const MAX_DEPTH: u64 = 127;

pub(crate) const INVALID_UTF8: &str = "invalid UTF-8";
pub(crate) const TOO_DEEP: &str = "nested deeper than 128 levels";

/// Validates `bytes`; `scratch` is reused to read serde_json's error message
/// without allocating per flagged record.
pub(crate) fn validate(bytes: &[u8], scratch: &mut String) -> Flag {
    if std::str::from_utf8(bytes).is_err() {
        return Flag::NotJson(INVALID_UTF8);
    }
    match serde_json::from_slice::<IgnoredAny>(bytes) {
        Ok(_) if too_deep(bytes) => Flag::NotJson(TOO_DEEP),
        Ok(_) => Flag::Json,
        Err(e) => Flag::NotJson(reason(&e, bytes, scratch)),
    }
}

/// Whether a record that serde_json accepted nests deeper than [`MAX_DEPTH`].
fn too_deep(bytes: &[u8]) -> bool {
    // Every level needs its own opening bracket: few brackets, shallow record.
    // (memchr's single-byte count is vectorised at runtime; two of them beat
    // one two-byte search that stops at every hit.)
    let openings = memchr_iter(b'[', bytes).count() + memchr_iter(b'{', bytes).count();
    if (openings as u64) <= MAX_DEPTH {
        return false;
    }
    let mut depth = 0u64;
    let mut i = 0usize;
    loop {
        let Some(rest) = bytes.get(i..) else {
            return false;
        };
        let Some(j) = rest
            .iter()
            .position(|&b| matches!(b, b'"' | b'[' | b'{' | b']' | b'}'))
        else {
            return false;
        };
        i += j + 1;
        match rest.get(j) {
            Some(b'[' | b'{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            Some(b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {
                // A string: skip to its closing quote, stepping over escapes.
                loop {
                    let Some(j) = bytes.get(i..).and_then(|r| memchr2(b'"', b'\\', r)) else {
                        return false;
                    };
                    let escape = bytes.get(i + j) == Some(&b'\\');
                    i += j + if escape { 2 } else { 1 };
                    if !escape {
                        break;
                    }
                }
            }
        }
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
        assert_eq!(
            flag(br#"{"a":[1,]}"#),
            Flag::NotJson("a JSON value is missing")
        );
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

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let s = format!(r#"{{"a":"{}","b":"\"[[["}}"#, "[{".repeat(500));
        assert_eq!(flag(s.as_bytes()), Flag::Json);
    }
}
