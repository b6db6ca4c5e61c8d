//! Small helpers for reading loosely typed JSON records.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Deserialises a whole record. The record is checked as UTF-8 once, up front, which costs far
/// less than serde_json's check of every string read from bytes (a fifth of a CloudTrail parse);
/// a record that is not UTF-8 is read from bytes so the error names the bad string.
pub fn from_record<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// The value at a dotted path of object keys (`"user.name"`). Keys containing dots cannot be
/// addressed this way; use [`at`] with explicit segments for those.
pub fn path<'v>(v: &'v Value, dotted: &str) -> Option<&'v Value> {
    dotted.split('.').try_fold(v, |v, k| v.as_object()?.get(k))
}

/// The value at a sequence of object keys.
pub fn at<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().try_fold(v, |v, k| v.as_object()?.get(*k))
}

/// A non-empty string at `key` of an object.
pub fn str_of<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A string, or a number or boolean written as one, at `key`; `None` for other types.
pub fn text_of(m: &Map<String, Value>, key: &str) -> Option<String> {
    scalar_text(m.get(key)?)
}

/// A scalar as text: strings as they are, numbers and booleans in JSON form.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether `s` is an IPv4 or IPv6 address. Dotted quads with leading zeros (`10.0.016.1`, as some
/// logs and anonymisers write them) count as addresses too.
pub fn is_ip(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let mut parts = 0;
    for p in s.split('.') {
        parts += 1;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        if p.parse::<u16>().map_or(true, |n| n > 255) {
            return false;
        }
    }
    parts == 4
}

/// `String::from_utf8` that reports the first bad byte's offset in its error.
pub fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))
}
