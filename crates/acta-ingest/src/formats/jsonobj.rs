//! Borrowed JSON objects, for parsers of formats whose records are loosely typed JSON objects
//! (GitHub, GitLab).
//!
//! A record is split once into its top-level keys and their raw values ([`Obj`]); only the
//! values a parser maps are then read, each with the type it must have. A known field of the
//! wrong type is reported ([`Obj::str`] and friends return `Err` naming the field), so the parser
//! can reject the record as invalid instead of guessing. Strings without escapes are not copied.
//!
//! [`View`] lets the same detection rules run on the [`Probe`](super::Probe)'s parsed value (when
//! sniffing) and on an [`Obj`] (when parsing), so the two cannot disagree.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::time::{epoch_to_ms, parse_rfc3339};

/// An object key, borrowed from the record when it has no escapes.
#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl Borrow<str> for Key<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A string value, borrowed from the record when it has no escapes.
///
/// Typed records use `Option<Text>` rather than `Option<Cow<str>>`: serde borrows a `Cow` only
/// when it is the field's own type, and would copy every string inside an `Option` or a `Vec`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The JSON type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    Null,
    Bool,
    Number,
    String,
    Object,
    Array,
}

fn raw_kind(v: &RawValue) -> Kind {
    match v.get().as_bytes().first() {
        Some(b'"') => Kind::String,
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        Some(_) => Kind::Number,
        None => Kind::Missing,
    }
}

fn value_kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

/// Read access to a JSON object's keys, for detection rules.
pub trait View {
    /// The type of the value at `key` ([`Kind::Missing`] when absent).
    fn kind(&self, key: &str) -> Kind;
    /// The string at `key`, if it is a string.
    fn text(&self, key: &str) -> Option<Cow<'_, str>>;
    /// The object at `key`, if it is an object.
    fn child(&self, key: &str) -> Option<Box<dyn View + '_>>;

    /// How many keys the object has.
    fn key_count(&self) -> usize;
    /// The first element of the array at `key`, if it is an object.
    fn first_child(&self, key: &str) -> Option<Box<dyn View + '_>>;

    fn has(&self, key: &str) -> bool {
        self.kind(key) != Kind::Missing
    }

    fn is_object(&self, key: &str) -> bool {
        self.kind(key) == Kind::Object
    }

    fn is_string(&self, key: &str) -> bool {
        self.kind(key) == Kind::String
    }
}

impl View for Map<String, Value> {
    fn kind(&self, key: &str) -> Kind {
        self.get(key).map_or(Kind::Missing, value_kind)
    }

    fn text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key).and_then(Value::as_str).map(Cow::Borrowed)
    }

    fn child(&self, key: &str) -> Option<Box<dyn View + '_>> {
        self.get(key)
            .and_then(Value::as_object)
            .map(|m| Box::new(MapRef(m)) as Box<dyn View + '_>)
    }

    fn key_count(&self) -> usize {
        self.len()
    }

    fn first_child(&self, key: &str) -> Option<Box<dyn View + '_>> {
        self.get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_object)
            .map(|m| Box::new(MapRef(m)) as Box<dyn View + '_>)
    }
}

/// A borrowed view of a `serde_json::Map` (so [`View::child`] need not copy).
struct MapRef<'m>(&'m Map<String, Value>);

impl View for MapRef<'_> {
    fn kind(&self, key: &str) -> Kind {
        self.0.kind(key)
    }

    fn text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.0.text(key)
    }

    fn child(&self, key: &str) -> Option<Box<dyn View + '_>> {
        self.0.child(key)
    }

    fn key_count(&self) -> usize {
        self.0.len()
    }

    fn first_child(&self, key: &str) -> Option<Box<dyn View + '_>> {
        self.0.first_child(key)
    }
}

/// A JSON object split into its top-level keys and raw values.
#[derive(Debug, Default)]
pub struct Obj<'a> {
    fields: BTreeMap<Key<'a>, &'a RawValue>,
}

/// A time field found: its key, its text, and its epoch milliseconds when readable.
pub type Stamp = (&'static str, String, Option<i64>);

/// Why a field could not be read: its name and the type it should have had.
pub fn wrong_type(key: &str, want: &str) -> String {
    format!("`{key}` is not {want}")
}

impl<'a> Obj<'a> {
    /// Splits `text` (one JSON object) into its keys; an error when it is not a JSON object.
    pub fn parse(text: &'a str) -> Result<Obj<'a>, serde_json::Error> {
        let fields = serde_json::from_str(text)?;
        Ok(Obj { fields })
    }

    pub fn raw(&self, key: &str) -> Option<&'a RawValue> {
        self.fields.get(key).copied()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(|k| &*k.0)
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// A string field: `Ok(None)` when absent, null or empty; `Err` for any other type.
    pub fn str(&self, key: &str) -> Result<Option<Cow<'a, str>>, String> {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        match raw_kind(v) {
            Kind::Null => Ok(None),
            Kind::String => {
                let t: Text<'a> =
                    serde_json::from_str(v.get()).map_err(|_| wrong_type(key, "a string"))?;
                Ok(Some(t.0).filter(|s| !s.is_empty()))
            }
            _ => Err(wrong_type(key, "a string")),
        }
    }

    /// A string, number or boolean field as text (ids are written either way): `Ok(None)` when
    /// absent, null or empty; `Err` for objects and arrays.
    pub fn scalar(&self, key: &str) -> Result<Option<Cow<'a, str>>, String> {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        match raw_kind(v) {
            Kind::String => self.str(key),
            Kind::Null => Ok(None),
            Kind::Number | Kind::Bool => Ok(Some(Cow::Borrowed(v.get()))),
            _ => Err(wrong_type(key, "a string or number")),
        }
    }

    /// A boolean field (also `"true"`/`"false"` strings): `Err` for other types.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        match v.get() {
            "true" | "\"true\"" => Ok(Some(true)),
            "false" | "\"false\"" => Ok(Some(false)),
            "null" => Ok(None),
            _ => Err(wrong_type(key, "a boolean")),
        }
    }

    /// An object field: `Ok(None)` when absent or null; `Err` for other types.
    pub fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, String> {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        match raw_kind(v) {
            Kind::Null => Ok(None),
            Kind::Object => Obj::parse(v.get())
                .map(Some)
                .map_err(|_| wrong_type(key, "an object")),
            _ => Err(wrong_type(key, "an object")),
        }
    }

    /// An array field's elements: `Ok(None)` when absent or null; `Err` for other types.
    pub fn array(&self, key: &str) -> Result<Option<Vec<&'a RawValue>>, String> {
        let Some(v) = self.raw(key) else {
            return Ok(None);
        };
        match raw_kind(v) {
            Kind::Null => Ok(None),
            Kind::Array => serde_json::from_str(v.get())
                .map(Some)
                .map_err(|_| wrong_type(key, "an array")),
            _ => Err(wrong_type(key, "an array")),
        }
    }

    /// A time field: epoch seconds/milliseconds (number or digits) or an ISO 8601 string.
    /// `Ok(None)` when absent; `Ok(Some((text, None)))` when present but unreadable.
    pub fn time(&self, key: &str) -> Result<Option<(String, Option<i64>)>, String> {
        let Some(text) = self.scalar(key)? else {
            return Ok(None);
        };
        let ms = if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            text.parse::<f64>().ok().and_then(epoch_to_ms)
        } else {
            parse_rfc3339(&text)
        };
        Ok(Some((text.into_owned(), ms)))
    }

    /// The event time: the first of `keys` that holds a readable time, as `(key, text, ms)`;
    /// when none is readable, the first present one with `ms` `None`; `Ok(None)` when none is
    /// present. `Err` when one of them is an object or array.
    pub fn first_time(&self, keys: &[&'static str]) -> Result<Option<Stamp>, String> {
        let mut unreadable = None;
        for key in keys {
            match self.time(key)? {
                Some((text, Some(ms))) => return Ok(Some((key, text, Some(ms)))),
                Some((text, None)) => {
                    unreadable.get_or_insert((*key, text, None));
                }
                None => {}
            }
        }
        Ok(unreadable)
    }

    /// The value at `key` as a `serde_json::Value` (for `unmapped`).
    pub fn value(&self, key: &str) -> Option<Value> {
        self.raw(key)
            .and_then(|v| serde_json::from_str::<Value>(v.get()).ok())
            .filter(|v| match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                _ => true,
            })
    }
}

impl View for Obj<'_> {
    fn kind(&self, key: &str) -> Kind {
        self.raw(key).map_or(Kind::Missing, raw_kind)
    }

    fn text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.str(key).ok().flatten()
    }

    fn child(&self, key: &str) -> Option<Box<dyn View + '_>> {
        self.obj(key)
            .ok()
            .flatten()
            .map(|o| Box::new(o) as Box<dyn View + '_>)
    }

    fn key_count(&self) -> usize {
        self.fields.len()
    }

    fn first_child(&self, key: &str) -> Option<Box<dyn View + '_>> {
        let first = *self.array(key).ok()??.first()?;
        (raw_kind(first) == Kind::Object)
            .then(|| Obj::parse(first.get()).ok())
            .flatten()
            .map(|o| Box::new(o) as Box<dyn View + '_>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_reads() {
        let o = Obj::parse(
            r#"{"s":"a\"b","n":12,"b":true,"o":{"x":"y"},"a":[1,2],"z":null,"e":"","t":1621305118553,"ts":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(o.str("s").unwrap().as_deref(), Some("a\"b"));
        assert!(o.str("n").is_err());
        assert_eq!(o.scalar("n").unwrap().as_deref(), Some("12"));
        assert_eq!(o.bool("b").unwrap(), Some(true));
        assert!(o.bool("s").is_err());
        assert_eq!(
            o.obj("o").unwrap().unwrap().str("x").unwrap().as_deref(),
            Some("y")
        );
        assert!(o.obj("a").is_err());
        assert_eq!(o.array("a").unwrap().unwrap().len(), 2);
        assert_eq!(o.str("z").unwrap(), None);
        assert_eq!(o.str("e").unwrap(), None);
        assert_eq!(o.str("missing").unwrap(), None);
        assert_eq!(o.time("t").unwrap().unwrap().1, Some(1_621_305_118_553));
        assert_eq!(o.time("ts").unwrap().unwrap().1, Some(1_704_067_200_000));
        assert_eq!(o.kind("o"), Kind::Object);
        assert!(o.child("o").unwrap().is_string("x"));
        let m: Map<String, Value> = serde_json::from_str(r#"{"o":{"x":"y"}}"#).unwrap();
        assert!(m.child("o").unwrap().is_string("x"));
        assert!(Obj::parse("[1]").is_err());
    }
}
