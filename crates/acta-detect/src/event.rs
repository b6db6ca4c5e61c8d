//! Events as Sigma rules see them: the raw record, flattened into dotted
//! field paths.
//!
//! Sigma rules name the fields of the source as it wrote them, nested
//! objects joined by `.` (`userIdentity.arn`, `requestParameters.bucketName`).
//! An [`Event`] flattens a parsed record once so every rule looks fields up
//! by that path. Field names are case-sensitive. Scalars are kept as text
//! (numbers as JSON writes them, booleans as `true`/`false`), because Sigma
//! values compare as text; a list is kept as its scalar elements, matched
//! element-wise.

use std::collections::HashMap;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// The fields a set of rules reads: events are flattened for these alone.
#[derive(Debug, Clone, Default)]
pub struct FieldSet {
    /// Every field, as [`Event::from_record`] keeps.
    all: bool,
    /// Every dotted path read ([`READ`]), and every proper dotted prefix of
    /// one (`a` and `a.b` of `a.b.c`: [`ENTER`], the objects to look inside):
    /// one lookup per key of the record.
    paths: HashMap<Arc<str>, u8, foldhash::fast::RandomState>,
    /// How many paths are read.
    reads: usize,
    /// Keyword rules search every string value.
    strings: bool,
}

/// The path is a field read.
const READ: u8 = 1;
/// The path is an object holding fields read.
const ENTER: u8 = 2;

impl FieldSet {
    /// Every field and every string.
    pub fn all() -> FieldSet {
        FieldSet {
            all: true,
            strings: true,
            ..FieldSet::default()
        }
    }

    /// Adds a dotted field path.
    pub fn add(&mut self, path: &str) {
        let mut at = 0;
        while let Some(dot) = path.get(at..).and_then(|rest| rest.find('.')) {
            if let Some(prefix) = path.get(..at + dot) {
                *self.paths.entry(Arc::from(prefix)).or_default() |= ENTER;
            }
            at += dot + 1;
        }
        let kind = self.paths.entry(Arc::from(path)).or_default();
        if *kind & READ == 0 {
            self.reads += 1;
        }
        *kind |= READ;
    }

    /// Asks for every string value (keyword rules).
    pub fn add_strings(&mut self) {
        self.strings = true;
    }

    /// Everything `other` asks for too.
    pub fn extend(&mut self, other: &FieldSet) {
        self.all |= other.all;
        self.strings |= other.strings;
        for (path, kind) in &other.paths {
            let mine = self.paths.entry(path.clone()).or_default();
            if *mine & READ == 0 && kind & READ != 0 {
                self.reads += 1;
            }
            *mine |= kind;
        }
    }

    /// The set's own copy of a path read, shared by every event.
    fn key(&self, path: &str) -> Option<Arc<str>> {
        self.paths.get_key_value(path).map(|(k, _)| k.clone())
    }

    fn keeps(&self, path: &str) -> bool {
        self.all || self.paths.get(path).is_some_and(|k| k & READ != 0)
    }

    fn enters(&self, path: &str) -> bool {
        self.all || self.paths.contains_key(path)
    }
}

/// Flattens the JSON value at `path` into `event`.
struct Walk<'a> {
    event: &'a mut Event,
    set: &'a FieldSet,
    /// The value's dotted path (empty for the record itself, and for a key `""` at its top).
    path: &'a mut String,
    /// The value is the record itself.
    root: bool,
}

impl Walk<'_> {
    /// A non-object record is the field `message`.
    fn keep(self, value: FieldValue) {
        let path = if self.root {
            "message"
        } else {
            self.path.as_str()
        };
        if self.set.keeps(path) {
            let key = self.set.key(path).unwrap_or_else(|| Arc::from(path));
            self.event.fields.insert(key, value);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.keep(FieldValue::Text(v.to_string()));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.keep(FieldValue::Text(Number::from(v).to_string()));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.keep(FieldValue::Text(Number::from(v).to_string()));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        if let Some(n) = Number::from_f64(v) {
            self.keep(FieldValue::Text(n.to_string()));
        }
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        if self.set.strings {
            self.event.strings.push(v.to_owned());
        }
        self.keep(FieldValue::Text(v.to_owned()));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.keep(FieldValue::Null);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut texts = Vec::new();
        while let Some(text) = seq.next_element_seed(Element {
            strings: self.set.strings.then_some(&mut self.event.strings),
        })? {
            texts.extend(text);
        }
        self.keep(FieldValue::List(texts));
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let parent = self.path.len();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if parent > 0 {
                self.path.push('.');
            }
            self.path.push_str(&key.0);
            if self.set.enters(self.path) {
                map.next_value_seed(Walk {
                    event: &mut *self.event,
                    set: self.set,
                    path: &mut *self.path,
                    root: false,
                })?;
            } else if self.set.strings {
                map.next_value_seed(Element {
                    strings: Some(&mut self.event.strings),
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            self.path.truncate(parent);
        }
        Ok(())
    }
}

/// An object key, borrowed from the record when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A list element, or a value no rule reads: its text when it is a scalar,
/// and its strings (at any depth) when keyword rules need them.
struct Element<'a> {
    strings: Option<&'a mut Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = Option<String>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Option<String>, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Option<String>, E> {
        Ok(Some(Number::from(v).to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Option<String>, E> {
        Ok(Some(Number::from(v).to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Option<String>, E> {
        Ok(Number::from_f64(v).map(|n| n.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Option<String>, E> {
        if let Some(strings) = self.strings {
            strings.push(v.to_owned());
        }
        Ok(Some(v.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Option<String>, A::Error> {
        while seq
            .next_element_seed(Element {
                strings: self.strings.as_deref_mut(),
            })?
            .is_some()
        {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Option<String>, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Element {
                strings: self.strings.as_deref_mut(),
            })?;
        }
        Ok(None)
    }
}

/// The value of one flattened field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// JSON `null`.
    Null,
    /// A string, number or boolean, as text.
    Text(String),
    /// A list: its scalar elements as text (nested objects and lists inside
    /// it are not values of this field).
    List(Vec<String>),
}

impl FieldValue {
    /// The values a matcher is tried against: one for a scalar, each element
    /// for a list, none for `null`.
    pub fn texts(&self) -> &[String] {
        match self {
            FieldValue::Null => &[],
            FieldValue::Text(text) => std::slice::from_ref(text),
            FieldValue::List(items) => items,
        }
    }
}

/// A record flattened for rule evaluation.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// Keyed with foldhash: seeded per process (keys may come from the record), and several
    /// times faster than SipHash on short paths.
    fields: HashMap<Arc<str>, FieldValue, foldhash::fast::RandomState>,
    strings: Vec<String>,
}

impl Event {
    /// Flattens a parsed record. A record that is not an object (a bare
    /// string or number) becomes an event of one field, `message`.
    pub fn from_json(record: &Value) -> Event {
        let mut event = Event::default();
        match record {
            Value::Object(_) => event.flatten(record, String::new()),
            other => event.flatten(other, "message".to_owned()),
        }
        collect_strings(record, &mut event.strings);
        event
    }

    /// A text line that is not JSON: an event of one field, `message`.
    pub fn from_text(line: &str) -> Event {
        let mut event = Event::default();
        event
            .fields
            .insert(Arc::from("message"), FieldValue::Text(line.to_owned()));
        event.strings.push(line.to_owned());
        event
    }

    /// A raw record: JSON when it parses as JSON, else a text line.
    pub fn from_record(bytes: &[u8]) -> Event {
        Event::from_record_fields(bytes, &FieldSet::all())
    }

    /// A raw record with only the fields of `fields` (and every string value
    /// only when `fields` asks for them): what the rules of one source read,
    /// flattened straight from the JSON text, the rest skipped unparsed. The
    /// fields kept are exactly those [`Event::from_record`] gives.
    pub fn from_record_fields(bytes: &[u8], fields: &FieldSet) -> Event {
        let mut event = Event::default();
        event
            .fields
            .reserve(if fields.all { 32 } else { fields.reads });
        let mut path = String::new();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let walked = serde::de::DeserializeSeed::deserialize(
            Walk {
                event: &mut event,
                set: fields,
                path: &mut path,
                root: true,
            },
            &mut de,
        )
        .and_then(|()| de.end());
        match walked {
            Ok(()) => event,
            Err(_) => {
                let text = String::from_utf8_lossy(bytes);
                Event::from_text(text.trim_end_matches(['\n', '\r']))
            }
        }
    }

    /// The value at a dotted path, if the record has that field.
    pub fn field(&self, path: &str) -> Option<&FieldValue> {
        self.fields.get(path)
    }

    /// Every string value of the record, at any depth (keyword rules search
    /// these).
    pub fn strings(&self) -> &[String] {
        &self.strings
    }

    fn flatten(&mut self, value: &Value, prefix: String) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    self.flatten(item, path);
                }
            }
            Value::Array(items) => {
                let texts = items.iter().filter_map(scalar_text).collect();
                self.fields
                    .insert(Arc::from(prefix), FieldValue::List(texts));
            }
            Value::Null => {
                self.fields.insert(Arc::from(prefix), FieldValue::Null);
            }
            scalar => {
                if let Some(text) = scalar_text(scalar) {
                    self.fields
                        .insert(Arc::from(prefix), FieldValue::Text(text));
                }
            }
        }
    }
}

/// A JSON scalar as Sigma compares it: strings as they are, numbers and booleans as JSON writes
/// them; `None` for `null`, lists and objects.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| collect_strings(item, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_nested_objects_and_lists() {
        let event = Event::from_json(&json!({
            "userIdentity": {"arn": "arn:aws:iam::1:user/a", "n": 3},
            "tags": ["x", 1, true, {"k": "v"}],
            "gone": null,
        }));
        assert_eq!(
            event.field("userIdentity.arn"),
            Some(&FieldValue::Text("arn:aws:iam::1:user/a".into()))
        );
        assert_eq!(
            event.field("userIdentity.n"),
            Some(&FieldValue::Text("3".into()))
        );
        assert_eq!(
            event.field("tags"),
            Some(&FieldValue::List(vec![
                "x".into(),
                "1".into(),
                "true".into()
            ]))
        );
        assert_eq!(event.field("gone"), Some(&FieldValue::Null));
        assert_eq!(event.field("userIdentity"), None);
        assert_eq!(event.strings().len(), 3);
    }

    #[test]
    fn reading_some_fields_gives_what_reading_all_gives() {
        let records = [
            r#"{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","n":3,"f":1.5e3},"tags":["x",1,true,{"k":"v"},[2]],"gone":null,"annotations":{"authorization.k8s.io/decision":"allow"},"e":"\u00e9\n"}"#,
            r#"["a",{"b":1}]"#,
            r#""just text""#,
            r#"{"a":{"b":{"c":-7}},"a.b":{"c":8}}"#,
            r#"{"message":"curl evil","":"x"}"#,
        ];
        for record in records {
            let full = Event::from_json(&serde_json::from_str::<Value>(record).unwrap());
            assert_eq!(Event::from_record(record.as_bytes()).fields, full.fields);
            let mut strings = Event::from_record(record.as_bytes()).strings;
            let mut expected = full.strings.clone();
            strings.sort();
            expected.sort();
            assert_eq!(strings, expected, "{record}");
            for (path, value) in &full.fields {
                let mut set = FieldSet::default();
                set.add(path);
                let some = Event::from_record_fields(record.as_bytes(), &set);
                assert_eq!(some.field(path), Some(value), "{record}: {path}");
                assert!(some.strings.is_empty());
                assert!(
                    some.fields.len() <= 2,
                    "{record}: {path}: {:?}",
                    some.fields
                );
            }
            let none = Event::from_record_fields(record.as_bytes(), &FieldSet::default());
            assert!(none.fields.is_empty() && none.strings.is_empty());
        }
        // Not JSON, or JSON followed by more: a text line.
        for text in ["{\"a\":1} trailing", "{\"a\":"] {
            let event = Event::from_record(text.as_bytes());
            assert_eq!(event.field("message"), Some(&FieldValue::Text(text.into())));
        }
    }

    #[test]
    fn text_lines_become_message() {
        let event = Event::from_record(b"Jan  1 sshd[1]: Accepted publickey\n");
        assert_eq!(
            event.field("message"),
            Some(&FieldValue::Text(
                "Jan  1 sshd[1]: Accepted publickey".into()
            ))
        );
    }
}
