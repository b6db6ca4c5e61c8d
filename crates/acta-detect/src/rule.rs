//! Sigma rules: parsing one YAML document into a [`Rule`], and evaluating
//! its detection against an [`Event`].

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::condition::{self, Condition};
use crate::event::{Event, scalar_text};
use crate::matcher::{self, Anchor, Ordering, Placement, ValueMatcher};
use crate::source;

/// Why a rule file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct RuleError {
    /// The rule file.
    pub path: PathBuf,
    /// The 1-based line the problem is on, when known.
    pub line: Option<usize>,
    /// What is wrong, for a person.
    pub reason: String,
}

/// The `logsource` of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    /// `product`, e.g. `aws`.
    pub product: Option<String>,
    /// `service`, e.g. `cloudtrail`.
    pub service: Option<String>,
    /// `category`, e.g. `database`.
    pub category: Option<String>,
}

/// A usable Sigma detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's `id`; when it has none, the file path (followed by
    /// `#N` for the N-th document of a file of several).
    pub id: String,
    /// The rule's `title`.
    pub title: String,
    /// The rule's `name`, by which correlation rules may refer to it.
    pub name: Option<String>,
    /// The rule's `level`, when given.
    pub level: Option<String>,
    /// The file the rule came from.
    pub path: PathBuf,
    /// The rule's `logsource`.
    pub logsource: LogSource,
    sources: Vec<&'static str>,
    selections: Vec<Selection>,
    condition: Condition,
    alerts: bool,
}

/// One named selection of a detection.
#[derive(Debug, Clone)]
enum Selection {
    /// Maps of field entries: any map whose entries all match.
    Fields(Vec<Vec<FieldEntry>>),
    /// Keywords searched in every string value of the event.
    Keywords {
        words: Vec<matcher::Pattern>,
        all: bool,
    },
}

/// `field|modifiers: values`.
#[derive(Debug, Clone)]
struct FieldEntry {
    field: String,
    /// Each value's alternatives (several when a modifier such as `windash`
    /// expands one value).
    values: Vec<Vec<ValueMatcher>>,
    all: bool,
}

impl FieldEntry {
    fn matches(&self, event: &Event) -> bool {
        let value = |alternatives: &Vec<ValueMatcher>| {
            alternatives.iter().any(|m| m.matches(event, &self.field))
        };
        if self.all {
            self.values.iter().all(value)
        } else {
            self.values.iter().any(value)
        }
    }
}

impl Selection {
    fn matches(&self, event: &Event) -> bool {
        match self {
            Selection::Fields(maps) => maps
                .iter()
                .any(|entries| entries.iter().all(|entry| entry.matches(event))),
            Selection::Keywords { words, all } => {
                let found =
                    |word: &matcher::Pattern| event.strings().iter().any(|s| word.is_match(s));
                if *all {
                    words.iter().all(found)
                } else {
                    words.iter().any(found)
                }
            }
        }
    }
}

impl Rule {
    /// Parses one rule from its YAML text (one document); `path` names it
    /// in errors. A correlation rule is an error here: correlations refer
    /// to other rules, so they are loaded into a [`crate::RuleSet`].
    pub fn parse(text: &str, path: &Path) -> Result<Rule, RuleError> {
        let doc = Document {
            path,
            text,
            first_line: 1,
            number: 1,
            several: false,
        };
        let map = doc.mapping()?;
        if map.contains_key("correlation") {
            return Err(doc.fail(
                doc.line_of("correlation:"),
                "a correlation rule refers to other rules: load it into a rule set".to_owned(),
            ));
        }
        Rule::from_document(&doc, &map)
    }

    /// Parses the detection rule of one parsed document.
    pub(crate) fn from_document(
        doc: &Document<'_>,
        doc_map: &Map<String, Value>,
    ) -> Result<Rule, RuleError> {
        let fail = |line: Option<usize>, reason: String| doc.fail(line, reason);
        let line_of = |needle: &str| doc.line_of(needle);
        let id = doc.id(doc_map);
        let title = doc_map
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let name = doc_map
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let level = doc_map
            .get("level")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let logsource = match doc_map.get("logsource") {
            Some(Value::Object(map)) => LogSource {
                product: text_field(map, "product"),
                service: text_field(map, "service"),
                category: text_field(map, "category"),
            },
            _ => {
                return Err(fail(
                    line_of("logsource:"),
                    "no `logsource` mapping".to_owned(),
                ));
            }
        };
        let Some(Value::Object(detection)) = doc_map.get("detection") else {
            return Err(fail(
                line_of("detection:"),
                "no `detection` mapping".to_owned(),
            ));
        };
        let mut names = Vec::new();
        let mut selections = Vec::new();
        for (name, body) in detection {
            if name == "condition" || name == "timeframe" {
                continue;
            }
            let selection = parse_selection(body).map_err(|reason| {
                fail(
                    line_of(&format!("{name}:")),
                    format!("selection `{name}`: {reason}"),
                )
            })?;
            names.push(name.clone());
            selections.push(selection);
        }
        let condition_line = line_of("condition:");
        let condition = match detection.get("condition") {
            Some(Value::String(text)) => condition::parse(text, &names),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => condition::parse(text, &names),
                    _ => Err("each condition must be a string".to_owned()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Condition::Any),
            _ => Err("no `condition` string".to_owned()),
        }
        .map_err(|reason| fail(condition_line, reason))?;
        let sources = source::acta_sources(&logsource);
        Ok(Rule {
            id,
            title,
            name,
            level,
            path: doc.path.to_owned(),
            logsource,
            sources,
            selections,
            condition,
            alerts: true,
        })
    }

    /// Whether a match of this rule is an alert of its own. A rule that a
    /// correlation refers to only feeds that correlation, unless one of the
    /// correlations referring to it says `generate: true` (Sigma
    /// specification v2); every other rule alerts.
    pub fn alerts(&self) -> bool {
        self.alerts
    }

    pub(crate) fn set_alerts(&mut self, alerts: bool) {
        self.alerts = alerts;
    }

    /// The acta sources (e.g. `cloudtrail`) whose records this rule applies
    /// to, from its `logsource`; empty when acta has no such source.
    pub fn sources(&self) -> &[&'static str] {
        &self.sources
    }

    /// Whether the rule's detection matches the event (regardless of its
    /// log source).
    pub fn matches(&self, event: &Event) -> bool {
        let selections = &self.selections;
        self.condition.eval(&mut |i| {
            selections
                .get(i)
                .is_some_and(|selection| selection.matches(event))
        })
    }
}

fn text_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The first line of `text` that contains `needle`, 1-based.
pub(crate) fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|i| i + 1)
}

/// The line a YAML error message names (`line N`), when it names one.
fn yaml_error_line(message: &str) -> Option<usize> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("line ")?;
    let digits: String = lower
        .get(at + 5..)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// One YAML document of a rule file: a file may hold several, separated
/// by `---` lines (Sigma correlations are often written with the rules they
/// correlate).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Document<'a> {
    /// The file.
    pub path: &'a Path,
    /// The document's text; its lines are the file's from `first_line` on.
    pub text: &'a str,
    /// The file line the document's text starts on, 1-based.
    pub first_line: usize,
    /// The document's position among the file's documents, 1-based.
    pub number: usize,
    /// Whether the file holds more than one document.
    pub several: bool,
}

impl Document<'_> {
    /// An error in this document.
    pub fn fail(&self, line: Option<usize>, reason: String) -> RuleError {
        RuleError {
            path: self.path.to_owned(),
            line,
            reason,
        }
    }

    /// The file line of the first line of the document containing `needle`.
    pub fn line_of(&self, needle: &str) -> Option<usize> {
        line_of(self.text, needle).map(|l| l + self.first_line - 1)
    }

    /// The file line of the first line containing `needle` after the first
    /// line containing `after` (or anywhere, when `after` is absent).
    pub fn line_after(&self, after: &str, needle: &str) -> Option<usize> {
        let start = line_of(self.text, after).unwrap_or(1);
        self.text
            .lines()
            .enumerate()
            .skip(start - 1)
            .find(|(_, line)| line.contains(needle))
            .map(|(i, _)| i + self.first_line)
    }

    /// The document as a YAML mapping.
    pub fn mapping(&self) -> Result<Map<String, Value>, RuleError> {
        let doc: Value = serde_saphyr::from_str(self.text).map_err(|e| {
            self.fail(
                yaml_error_line(&e.to_string()).map(|l| l + self.first_line - 1),
                format!("invalid YAML: {e}"),
            )
        })?;
        match doc {
            Value::Object(map) => Ok(map),
            _ => Err(self.fail(
                Some(self.first_line),
                "a rule must be a YAML mapping".to_owned(),
            )),
        }
    }

    /// The document's `id`, or the file path (with `#N` in a file of
    /// several documents) when it has none.
    pub fn id(&self, map: &Map<String, Value>) -> String {
        match map.get("id") {
            Some(Value::String(id)) => id.clone(),
            _ if self.several => format!("{}#{}", self.path.display(), self.number),
            _ => self.path.display().to_string(),
        }
    }
}

/// Splits a rule file into its YAML documents: `---` lines (and `...`
/// lines) separate them; documents holding only blank lines, comments or
/// directives are left out. Each document knows the file line it starts
/// on, so errors name the file's lines.
pub(crate) fn documents<'a>(text: &'a str, path: &'a Path) -> Vec<Document<'a>> {
    // (start, end) byte ranges of the documents, separators excluded.
    let mut ranges = Vec::new();
    let mut start = 0usize;
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        if is_separator(line) {
            ranges.push((start, offset));
            start = offset + line.len();
        }
        offset += line.len();
    }
    ranges.push((start, text.len()));
    let mut docs = Vec::new();
    for (start, end) in ranges {
        let Some(body) = text.get(start..end) else {
            continue;
        };
        let has_content = body.lines().any(|line| {
            let trimmed = line.trim();
            !(trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('%'))
        });
        if has_content {
            let first_line = text
                .get(..start)
                .map_or(0, |before| before.matches('\n').count())
                + 1;
            docs.push((first_line, body));
        }
    }
    let several = docs.len() > 1;
    docs.into_iter()
        .enumerate()
        .map(|(i, (first_line, body))| Document {
            path,
            text: body,
            first_line,
            number: i + 1,
            several,
        })
        .collect()
}

/// Whether a line is a YAML document marker (`---` or `...` alone, or
/// followed by a comment).
fn is_separator(line: &str) -> bool {
    ["---", "..."].iter().any(|marker| {
        line.strip_prefix(marker).is_some_and(|rest| {
            let rest = rest.trim_end_matches(['\n', '\r']);
            let after = rest.trim_start();
            rest.is_empty()
                || (rest.starts_with([' ', '\t']) && (after.is_empty() || after.starts_with('#')))
        })
    })
}

fn parse_selection(body: &Value) -> Result<Selection, String> {
    match body {
        Value::Object(map) => parse_map(map),
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let maps = items
                .iter()
                .filter_map(Value::as_object)
                .map(|map| match parse_map(map)? {
                    Selection::Fields(mut maps) if maps.len() == 1 => {
                        Ok(maps.pop().unwrap_or_default())
                    }
                    _ => Err("a list of maps cannot hold keywords".to_owned()),
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Selection::Fields(maps))
        }
        Value::Array(items) if !items.is_empty() => keywords(items, false),
        Value::String(_) | Value::Number(_) => keywords(std::slice::from_ref(body), false),
        _ => Err("must be a map of fields, a list of maps, or keywords".to_owned()),
    }
}

fn keywords(items: &[Value], all: bool) -> Result<Selection, String> {
    let words = items
        .iter()
        .map(|item| {
            let text = scalar_text(item).ok_or("keywords must be strings or numbers")?;
            matcher::compile_pattern(&text, Anchor::Contains, false)
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Selection::Keywords { words, all })
}

fn parse_map(map: &Map<String, Value>) -> Result<Selection, String> {
    if map.is_empty() {
        return Err("empty map".to_owned());
    }
    let mut entries = Vec::new();
    for (key, value) in map {
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default();
        let modifiers: Vec<&str> = parts.collect();
        if field.is_empty() {
            if map.len() != 1 || modifiers.iter().any(|m| *m != "all") {
                return Err(format!("`{key}`: keywords take only the `all` modifier"));
            }
            let items = match value {
                Value::Array(items) => items.as_slice(),
                other => std::slice::from_ref(other),
            };
            return keywords(items, !modifiers.is_empty());
        }
        entries.push(parse_entry(field, &modifiers, value).map_err(|e| format!("`{key}`: {e}"))?);
    }
    Ok(Selection::Fields(vec![entries]))
}

/// The modifiers of one field entry.
#[derive(Debug, Default)]
struct Modifiers {
    anchor: Option<Anchor>,
    all: bool,
    cased: bool,
    re: bool,
    re_i: bool,
    re_m: bool,
    re_s: bool,
    cidr: bool,
    fieldref: bool,
    exists: bool,
    ordering: Option<Ordering>,
    base64: bool,
    base64offset: bool,
    windash: bool,
}

fn parse_modifiers(names: &[&str]) -> Result<Modifiers, String> {
    let mut m = Modifiers::default();
    for name in names {
        let mut anchor = |a: Anchor| {
            if m.anchor.replace(a).is_some() {
                Err("more than one of contains/startswith/endswith".to_owned())
            } else {
                Ok(())
            }
        };
        match *name {
            "contains" => anchor(Anchor::Contains)?,
            "startswith" => anchor(Anchor::Start)?,
            "endswith" => anchor(Anchor::End)?,
            "all" => m.all = true,
            "cased" => m.cased = true,
            "re" => m.re = true,
            "i" | "ignorecase" => m.re_i = true,
            "m" | "multiline" => m.re_m = true,
            "s" | "dotall" => m.re_s = true,
            "cidr" => m.cidr = true,
            "fieldref" => m.fieldref = true,
            "exists" => m.exists = true,
            "lt" => m.ordering = Some(Ordering::Less),
            "lte" => m.ordering = Some(Ordering::LessOrEqual),
            "gt" => m.ordering = Some(Ordering::Greater),
            "gte" => m.ordering = Some(Ordering::GreaterOrEqual),
            "base64" => m.base64 = true,
            "base64offset" => m.base64offset = true,
            "windash" => m.windash = true,
            "wide" | "utf16" | "utf16le" | "utf16be" | "expand" => {
                return Err(format!("modifier `{name}` is not supported"));
            }
            other => return Err(format!("unknown modifier `{other}`")),
        }
    }
    if (m.re_i || m.re_m || m.re_s) && !m.re {
        return Err("regular-expression flags need `re`".to_owned());
    }
    let kinds = [m.re, m.cidr, m.fieldref, m.exists, m.ordering.is_some()];
    if kinds.iter().filter(|k| **k).count() > 1 {
        return Err("incompatible modifiers".to_owned());
    }
    if m.base64offset && m.anchor != Some(Anchor::Contains) {
        return Err("`base64offset` needs `contains`".to_owned());
    }
    Ok(m)
}

fn parse_entry(field: &str, names: &[&str], value: &Value) -> Result<FieldEntry, String> {
    let m = parse_modifiers(names)?;
    let items = match value {
        Value::Array(items) if items.is_empty() => return Err("empty list of values".to_owned()),
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    let values = items
        .iter()
        .map(|item| value_matchers(&m, item))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(FieldEntry {
        field: field.to_owned(),
        values,
        all: m.all,
    })
}

fn value_matchers(m: &Modifiers, value: &Value) -> Result<Vec<ValueMatcher>, String> {
    if m.exists {
        return match value {
            Value::Bool(wanted) => Ok(vec![ValueMatcher::Exists(*wanted)]),
            _ => Err("`exists` takes true or false".to_owned()),
        };
    }
    if value.is_null() {
        return if names_value_modifier(m) {
            Err("null takes no modifier".to_owned())
        } else {
            Ok(vec![ValueMatcher::Null])
        };
    }
    let text = scalar_text(value).ok_or("values must be strings, numbers or booleans")?;
    if m.re {
        return Ok(vec![ValueMatcher::Regex(matcher::compile_regex(
            &text, m.re_i, m.re_m, m.re_s,
        )?)]);
    }
    if m.cidr {
        let (network, prefix) = matcher::parse_cidr(&text)?;
        return Ok(vec![ValueMatcher::Cidr(network, prefix)]);
    }
    if let Some(ordering) = m.ordering {
        let bound = text
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{text}` is not a number"))?;
        return Ok(vec![ValueMatcher::Number(ordering, bound)]);
    }
    let anchor = m.anchor.unwrap_or(Anchor::Whole);
    if m.fieldref {
        let placement = match anchor {
            Anchor::Whole => Placement::Whole,
            Anchor::Contains => Placement::Contains,
            Anchor::Start => Placement::Start,
            Anchor::End => Placement::End,
        };
        return Ok(vec![ValueMatcher::FieldRef {
            field: text,
            placement,
            cased: m.cased,
        }]);
    }
    let mut variants = if m.windash {
        matcher::windash(&text)
    } else {
        vec![text]
    };
    if m.base64 {
        variants = variants.iter().map(|v| matcher::base64(v)).collect();
    } else if m.base64offset {
        variants = variants
            .iter()
            .flat_map(|v| matcher::base64_offsets(v))
            .collect();
    }
    variants
        .iter()
        .map(|v| matcher::compile_pattern(v, anchor, m.cased).map(ValueMatcher::Pattern))
        .collect()
}

fn names_value_modifier(m: &Modifiers) -> bool {
    m.anchor.is_some() || m.re || m.cidr || m.fieldref || m.ordering.is_some() || m.base64
}

impl Rule {
    /// Adds the fields this rule reads to `set` (every string value too
    /// when it has keyword selections).
    pub fn read_fields(&self, set: &mut crate::event::FieldSet) {
        for selection in &self.selections {
            match selection {
                Selection::Fields(maps) => {
                    for entry in maps.iter().flatten() {
                        set.add(&entry.field);
                        for matcher in entry.values.iter().flatten() {
                            if let ValueMatcher::FieldRef { field, .. } = matcher {
                                set.add(field);
                            }
                        }
                    }
                }
                Selection::Keywords { .. } => set.add_strings(),
            }
        }
    }
}

/// A field a rule needs, with the values it must have: the rule can match
/// an event only when one of the field's (ASCII) values equals one of
/// these, ignoring ASCII case. Rule sets index rules by it, so that most
/// rules are not evaluated at all on events they cannot match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// The field's dotted path.
    pub field: String,
    /// The values, lowercase ASCII.
    pub values: Vec<Vec<u8>>,
}

impl Rule {
    /// The rule's guard, when its condition needs one field to equal one
    /// of a set of literal values (e.g. `eventName: [DeleteTrail, StopLogging]`
    /// in a selection the condition cannot do without). A field named
    /// `eventName` is preferred, then the fewest values.
    pub fn guard(&self) -> Option<Guard> {
        guard_of(&self.condition, &self.selections)
    }
}

fn guard_of(condition: &Condition, selections: &[Selection]) -> Option<Guard> {
    match condition {
        Condition::Selection(i) => selections.get(*i).and_then(selection_guard),
        Condition::All(items) => items
            .iter()
            .filter_map(|c| guard_of(c, selections))
            .min_by_key(|g| (g.field != "eventName", g.values.len())),
        Condition::Any(items) => {
            let mut guards = items.iter().map(|c| guard_of(c, selections));
            let mut union = guards.next()??;
            for g in guards {
                let g = g?;
                if g.field != union.field {
                    return None;
                }
                union.values.extend(g.values);
            }
            union.values.sort();
            union.values.dedup();
            Some(union)
        }
        Condition::Not(_) => None,
    }
}

fn selection_guard(selection: &Selection) -> Option<Guard> {
    let Selection::Fields(maps) = selection else {
        return None;
    };
    // Each map (one of which must match) must name the same guarded field.
    let mut union: Option<Guard> = None;
    for entries in maps {
        let best = entries
            .iter()
            .filter_map(entry_guard)
            .min_by_key(|g| (g.field != "eventName", g.values.len()));
        let g = best?;
        match &mut union {
            None => union = Some(g),
            Some(u) if u.field == g.field => u.values.extend(g.values),
            Some(_) => return None,
        }
    }
    let mut union = union?;
    union.values.sort();
    union.values.dedup();
    Some(union)
}

/// An entry whose every alternative is a whole, uncased ASCII literal.
fn entry_guard(entry: &FieldEntry) -> Option<Guard> {
    if entry.all || entry.values.is_empty() {
        return None;
    }
    let mut values = Vec::new();
    for alternatives in &entry.values {
        for m in alternatives {
            let ValueMatcher::Pattern(p) = m else {
                return None;
            };
            values.push(p.whole_literal()?.to_ascii_lowercase());
        }
    }
    Some(Guard {
        field: entry.field.clone(),
        values,
    })
}
