//! Sigma correlation rules (specification v2): parsing one YAML document
//! holding a `correlation` section into a [`Correlation`].
//!
//! A correlation refers to detection rules (or other correlations) by `id`
//! or `name`; a [`crate::RuleSet`] resolves those references when it loads
//! a directory, and a [`crate::Correlator`] evaluates correlations over a
//! stream of events.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::rule::{Document, RuleError};

/// The four correlation types of the Sigma specification v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrelationType {
    /// `event_count`: how many events matched the referenced rules.
    EventCount,
    /// `value_count`: how many distinct values of a field those events hold.
    ValueCount,
    /// `temporal`: how many of the referenced rules matched, in any order.
    Temporal,
    /// `temporal_ordered`: all referenced rules matched, in the listed order.
    TemporalOrdered,
}

impl CorrelationType {
    /// The name the specification gives the type (`event_count`…).
    pub fn name(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
        }
    }

    fn parse(name: &str) -> Result<CorrelationType, String> {
        match name {
            "event_count" => Ok(CorrelationType::EventCount),
            "value_count" => Ok(CorrelationType::ValueCount),
            "temporal" => Ok(CorrelationType::Temporal),
            "temporal_ordered" => Ok(CorrelationType::TemporalOrdered),
            "value_sum"
            | "value_avg"
            | "value_percentile"
            | "value_median"
            | "temporal_extended"
            | "temporal_ordered_extended" => Err(format!(
                "correlation type `{name}` is not supported (the Sigma specification v2 defines event_count, value_count, temporal and temporal_ordered)"
            )),
            other => Err(format!(
                "unknown correlation type `{other}` (expected event_count, value_count, temporal or temporal_ordered)"
            )),
        }
    }
}

/// A correlation's `condition`: bounds on a count, all of which must hold
/// (`gt: 100` and `lte: 200` is the range 101 to 200).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountCondition {
    /// `gt`: the count must be greater.
    pub gt: Option<u64>,
    /// `gte`: the count must be greater or equal.
    pub gte: Option<u64>,
    /// `lt`: the count must be less.
    pub lt: Option<u64>,
    /// `lte`: the count must be less or equal.
    pub lte: Option<u64>,
    /// `eq`: the count must be equal.
    pub eq: Option<u64>,
}

impl CountCondition {
    /// Whether a count satisfies every bound.
    pub fn holds(&self, count: u64) -> bool {
        count >= self.least() && self.most().is_none_or(|most| count <= most)
    }

    /// The least count that can satisfy the condition (at least 1: a
    /// correlation is about events that happened).
    pub fn least(&self) -> u64 {
        [
            self.gt.map(|n| n.saturating_add(1)),
            self.gte,
            self.eq,
            Some(1),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(1)
    }

    /// The greatest count that can satisfy the condition, when it has an
    /// upper bound (`lt`, `lte` or `eq`). `Some(0)` for `lt: 0`, which
    /// nothing satisfies.
    pub fn most(&self) -> Option<u64> {
        [self.lt.map(|n| n.saturating_sub(1)), self.lte, self.eq]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether some count satisfies the condition.
    fn satisfiable(&self) -> bool {
        self.most().is_none_or(|most| most >= self.least())
    }
}

/// A usable Sigma correlation rule.
#[derive(Debug, Clone)]
pub struct Correlation {
    /// The correlation's `id` (the file path, with `#N` for the N-th
    /// document of a file of several, when it has none).
    pub id: String,
    /// The correlation's `title`.
    pub title: String,
    /// The correlation's `name`, by which other correlations may refer to it.
    pub name: Option<String>,
    /// The correlation's `level`, when given.
    pub level: Option<String>,
    /// The file the correlation came from.
    pub path: PathBuf,
    /// The file line its document starts on.
    pub line: usize,
    /// The correlation type.
    pub kind: CorrelationType,
    /// The referenced rules and correlations: as written in the file
    /// (`id` or `name`) until a [`crate::RuleSet`] resolves them, their
    /// ids after.
    pub rules: Vec<String>,
    /// The `group-by` fields (or aliases): events are correlated only with
    /// events holding the same values there.
    pub group_by: Vec<String>,
    /// The `timespan`, in milliseconds.
    pub timespan_ms: i64,
    /// The bounds on the count.
    pub condition: CountCondition,
    /// The field whose distinct values a `value_count` correlation counts.
    pub field: Option<String>,
    /// `generate`: whether the referenced rules still alert on their own.
    pub generate: bool,
    /// `aliases`: for each alias used in `group-by`, the field it stands for
    /// in the events of each referenced rule (keyed like `rules`).
    pub aliases: Vec<(String, Vec<(String, String)>)>,
    /// The file line of each entry of `rules`, for errors found when the
    /// references are resolved.
    pub(crate) rule_lines: Vec<Option<usize>>,
    alerts: bool,
}

/// The keys a `correlation` section may hold.
const KEYS: &[&str] = &[
    "type",
    "rules",
    "group-by",
    "timespan",
    "condition",
    "aliases",
    "generate",
];

impl Correlation {
    /// Parses the correlation of one parsed document.
    pub(crate) fn from_document(
        doc: &Document<'_>,
        map: &Map<String, Value>,
    ) -> Result<Correlation, RuleError> {
        let fail = |needle: &str, reason: String| {
            doc.fail(
                doc.line_of(needle).or_else(|| doc.line_of("correlation:")),
                reason,
            )
        };
        if map.contains_key("detection") {
            return Err(fail(
                "correlation:",
                "a document holds either a `detection` or a `correlation`, not both".to_owned(),
            ));
        }
        let Some(Value::Object(section)) = map.get("correlation") else {
            return Err(fail(
                "correlation:",
                "`correlation` must be a mapping".to_owned(),
            ));
        };
        if let Some(key) = section.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(fail(
                &format!("{key}:"),
                format!("unknown key `{key}` in `correlation`"),
            ));
        }
        let kind = match section.get("type") {
            Some(Value::String(name)) => {
                CorrelationType::parse(name).map_err(|reason| fail("type:", reason))?
            }
            Some(_) => return Err(fail("type:", "`type` must be a string".to_owned())),
            None => {
                return Err(fail(
                    "correlation:",
                    "no correlation `type` (event_count, value_count, temporal or temporal_ordered)"
                        .to_owned(),
                ));
            }
        };
        let rules = strings(section.get("rules"))
            .filter(|rules| !rules.is_empty())
            .ok_or_else(|| {
                fail(
                    "rules:",
                    "`rules` must name one or more rules (a string or a list of strings)"
                        .to_owned(),
                )
            })?;
        let rules_lines = rules
            .iter()
            .map(|rule| doc.line_after("rules:", rule))
            .collect();
        let group_by = match section.get("group-by") {
            None => Vec::new(),
            some => strings(some).ok_or_else(|| {
                fail(
                    "group-by:",
                    "`group-by` must be a field or a list of fields".to_owned(),
                )
            })?,
        };
        let timespan_ms = match section.get("timespan") {
            Some(Value::String(text)) => {
                parse_timespan(text).map_err(|reason| fail("timespan:", reason))?
            }
            Some(other) => {
                return Err(fail(
                    "timespan:",
                    format!(
                        "bad timespan `{}`: a number and a unit, s, m, h or d (`10m`)",
                        other
                    ),
                ));
            }
            None => {
                return Err(fail(
                    "correlation:",
                    "no `timespan` (a number and a unit, s, m, h or d: `10m`)".to_owned(),
                ));
            }
        };
        let (condition, field) = parse_condition(kind, section.get("condition"), rules.len())
            .map_err(|reason| fail("condition:", reason))?;
        if kind == CorrelationType::Temporal {
            for (i, rule) in rules.iter().enumerate() {
                if rules.get(..i).is_some_and(|before| before.contains(rule)) {
                    return Err(doc.fail(
                        doc.line_after("rules:", rule),
                        format!("rule `{rule}` is listed twice"),
                    ));
                }
            }
            if rules.len() > 64 {
                return Err(fail(
                    "rules:",
                    "a temporal correlation takes at most 64 rules".to_owned(),
                ));
            }
        }
        let aliases = match section.get("aliases") {
            None => Vec::new(),
            Some(Value::Object(aliases)) => aliases
                .iter()
                .map(|(alias, mapping)| {
                    let Value::Object(mapping) = mapping else {
                        return Err(fail(
                            &format!("{alias}:"),
                            format!("alias `{alias}` must map rule names to fields"),
                        ));
                    };
                    let fields = mapping
                        .iter()
                        .map(|(rule, field)| match field {
                            Value::String(field) => Ok((rule.clone(), field.clone())),
                            _ => Err(fail(
                                &format!("{rule}:"),
                                format!("alias `{alias}`: the field for `{rule}` must be a string"),
                            )),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    for (rule, _) in &fields {
                        if !rules.contains(rule) {
                            return Err(doc.fail(
                                doc.line_after("aliases:", &format!("{rule}:")),
                                format!(
                                    "alias `{alias}` names rule `{rule}`, which `rules` does not list"
                                ),
                            ));
                        }
                    }
                    if !group_by.contains(alias) {
                        return Err(fail(
                            &format!("{alias}:"),
                            format!("alias `{alias}` is not used in `group-by`"),
                        ));
                    }
                    for rule in &rules {
                        if !fields.iter().any(|(r, _)| r == rule) {
                            return Err(fail(
                                &format!("{alias}:"),
                                format!("alias `{alias}` gives no field for rule `{rule}`"),
                            ));
                        }
                    }
                    Ok((alias.clone(), fields))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(fail(
                    "aliases:",
                    "`aliases` must be a mapping".to_owned(),
                ));
            }
        };
        let generate = match section.get("generate").or_else(|| map.get("generate")) {
            None => false,
            Some(Value::Bool(generate)) => *generate,
            Some(_) => {
                return Err(fail(
                    "generate:",
                    "`generate` must be true or false".to_owned(),
                ));
            }
        };
        Ok(Correlation {
            id: doc.id(map),
            title: map
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            name: map.get("name").and_then(Value::as_str).map(str::to_owned),
            level: map.get("level").and_then(Value::as_str).map(str::to_owned),
            path: doc.path.to_owned(),
            line: doc.first_line,
            kind,
            rules,
            group_by,
            timespan_ms,
            condition,
            field,
            generate,
            aliases,
            rule_lines: rules_lines,
            alerts: true,
        })
    }

    /// Whether a hit of this correlation is an alert of its own: every
    /// correlation alerts, except one that another correlation refers to
    /// (without `generate: true`), which only feeds that one.
    pub fn alerts(&self) -> bool {
        self.alerts
    }

    pub(crate) fn set_alerts(&mut self, alerts: bool) {
        self.alerts = alerts;
    }

    /// The field to read a `group-by` entry from in the events of the
    /// `position`-th referenced rule: the alias's field for that rule, or
    /// the entry itself.
    pub fn group_field<'a>(&'a self, entry: &'a str, position: usize) -> &'a str {
        let Some(rule) = self.rules.get(position) else {
            return entry;
        };
        self.aliases
            .iter()
            .find(|(alias, _)| alias == entry)
            .and_then(|(_, fields)| fields.iter().find(|(r, _)| r == rule))
            .map_or(entry, |(_, field)| field.as_str())
    }
}

/// A string, or a list of strings.
fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(one) => Some(vec![one.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// `timespan`: a positive number and a unit, `s`, `m`, `h` or `d`.
fn parse_timespan(text: &str) -> Result<i64, String> {
    let bad = || format!("bad timespan `{text}`: a number and a unit, s, m, h or d (`10m`)");
    let unit = text.chars().last().ok_or_else(bad)?;
    let number = text.strip_suffix(unit).ok_or_else(bad)?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let count: i64 = number.parse().map_err(|_| bad())?;
    let unit_ms: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(bad()),
    };
    if count == 0 {
        return Err(format!(
            "bad timespan `{text}`: it must be longer than zero"
        ));
    }
    count
        .checked_mul(unit_ms)
        .filter(|ms| *ms <= 10 * 365 * 86_400_000)
        .ok_or_else(|| format!("bad timespan `{text}`: longer than ten years"))
}

fn parse_condition(
    kind: CorrelationType,
    value: Option<&Value>,
    rules: usize,
) -> Result<(CountCondition, Option<String>), String> {
    let temporal = matches!(
        kind,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    let all_rules = u64::try_from(rules).unwrap_or(u64::MAX);
    let map = match value {
        None if temporal => {
            return Ok((
                CountCondition {
                    gte: Some(all_rules),
                    ..CountCondition::default()
                },
                None,
            ));
        }
        None => {
            return Err(format!(
                "no `condition`: an {} correlation needs one (`gte: 10`)",
                kind.name()
            ));
        }
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err("`condition` must be a mapping (`gte: 10`)".to_owned());
        }
    };
    let mut condition = CountCondition::default();
    let mut field = None;
    for (key, value) in map {
        let slot = match key.as_str() {
            "gt" => &mut condition.gt,
            "gte" => &mut condition.gte,
            "lt" => &mut condition.lt,
            "lte" => &mut condition.lte,
            "eq" => &mut condition.eq,
            "field" => {
                match value {
                    Value::String(name) if !name.is_empty() => field = Some(name.clone()),
                    _ => return Err("`field` must be a field name".to_owned()),
                }
                continue;
            }
            other => {
                return Err(format!(
                    "unknown condition `{other}` (expected gt, gte, lt, lte, eq, and field for value_count)"
                ));
            }
        };
        let count = value
            .as_u64()
            .ok_or_else(|| format!("`{key}` must be a whole number, not `{value}`"))?;
        *slot = Some(count);
    }
    if condition == CountCondition::default() {
        return Err("the condition needs one of gt, gte, lt, lte or eq".to_owned());
    }
    match (kind, &field) {
        (CorrelationType::ValueCount, None) => {
            return Err(
                "a value_count correlation needs the `field` whose distinct values it counts"
                    .to_owned(),
            );
        }
        (CorrelationType::ValueCount, Some(_)) => {}
        (_, Some(_)) => {
            return Err(format!(
                "`field` is only for value_count, not {}",
                kind.name()
            ));
        }
        (_, None) => {}
    }
    if !condition.satisfiable() {
        return Err("no count satisfies this condition".to_owned());
    }
    if temporal && condition.least() > all_rules {
        return Err(format!(
            "the condition asks for more than the {rules} rules listed to match"
        ));
    }
    if kind == CorrelationType::TemporalOrdered
        && (condition.least() != all_rules || condition.most().is_some_and(|m| m < all_rules))
    {
        return Err(
            "a temporal_ordered correlation matches when all its rules match in order: its condition, when given, must be `gte` the number of rules"
                .to_owned(),
        );
    }
    Ok((condition, field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("10m"), Ok(600_000));
        assert_eq!(parse_timespan("1d"), Ok(86_400_000));
        assert_eq!(parse_timespan("90s"), Ok(90_000));
        assert_eq!(parse_timespan("2h"), Ok(7_200_000));
        for bad in [
            "",
            "m",
            "10",
            "10M",
            "1w",
            "-1m",
            "0m",
            "1.5h",
            "10 m",
            "99999999999d",
        ] {
            assert!(parse_timespan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conditions() {
        let c = CountCondition {
            gt: Some(100),
            lte: Some(200),
            ..CountCondition::default()
        };
        assert!(!c.holds(100) && c.holds(101) && c.holds(200) && !c.holds(201));
        assert_eq!((c.least(), c.most()), (101, Some(200)));
        let c = CountCondition {
            lt: Some(3),
            ..CountCondition::default()
        };
        assert!(c.holds(1) && c.holds(2) && !c.holds(3));
        let c = CountCondition {
            lt: Some(0),
            ..CountCondition::default()
        };
        assert!(!c.satisfiable());
        let c = CountCondition {
            gt: Some(5),
            lt: Some(6),
            ..CountCondition::default()
        };
        assert!(!c.satisfiable());
    }
}
