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

use serde_json::Value;

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
    fields: HashMap<String, FieldValue>,
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
            .insert("message".to_owned(), FieldValue::Text(line.to_owned()));
        event.strings.push(line.to_owned());
        event
    }

    /// A raw record: JSON when it parses as JSON, else a text line.
    pub fn from_record(bytes: &[u8]) -> Event {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => Event::from_json(&value),
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
                self.fields.insert(prefix, FieldValue::List(texts));
            }
            Value::Null => {
                self.fields.insert(prefix, FieldValue::Null);
            }
            scalar => {
                if let Some(text) = scalar_text(scalar) {
                    self.fields.insert(prefix, FieldValue::Text(text));
                }
            }
        }
    }
}

fn scalar_text(value: &Value) -> Option<String> {
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
