//! acta's detection side: Sigma rules evaluated against the raw records of
//! each source.
//!
//! A [`RuleSet`] loads Sigma rules (specification v2) from a directory,
//! keeping every rule it can use and reporting every one it cannot, with the
//! file, line and reason ([`RuleError`]); bad YAML never panics. A file may
//! hold several YAML documents (`---`): detection rules and the correlation
//! rules over them ([`Correlation`], see below). Rules match
//! the fields of the raw record as the source wrote them, as Sigma rules are
//! written: an [`Event`] flattens a JSON record into dotted paths
//! (`userIdentity.arn`), and a text line becomes an event of one field,
//! `message`. A rule applies to the acta sources its `logsource` names
//! ([`source`]).
//!
//! Beside the rules, [`behaviour`] learns each actor's habits from the
//! events in ledger order (source IPs, user agents, resources, APIs, hours,
//! the rate of privileged or destructive actions) and reports departures
//! from them as anomalies; its state is rebuilt by replaying the ledger.
//!
//! # Semantics
//!
//! - Values compare case-insensitively unless `cased`; field names are
//!   case-sensitive. `*` matches any run of characters, `?` one character,
//!   `\*`, `\?` and `\\` the characters themselves.
//! - A list in the event is matched element-wise: the field matches when
//!   any element does.
//! - A field the event lacks matches nothing, except `null` and
//!   `exists: false`; so `not` of a selection on a missing field is true.
//! - Keyword selections (a list of strings) match when a keyword occurs,
//!   case-insensitively, in any string value of the event, at any depth.
//! - Modifiers: `contains`, `startswith`, `endswith`, `all`, `cased`, `re`
//!   with `i`/`m`/`s`, `cidr`, `fieldref`, `exists`, `lt`/`lte`/`gt`/`gte`
//!   (numeric), `base64`, `base64offset`, `windash`. `wide`/`utf16*` and
//!   `expand` are rejected (they need an encoding or placeholder
//!   configuration acta does not have).
//! - `re` uses the `regex` crate: no look-around or back-references. A rule
//!   using them is reported unusable rather than matched differently.
//!
//! # Correlations
//!
//! Correlation rules (Sigma specification v2: `event_count`, `value_count`,
//! `temporal`, `temporal_ordered`, with `group-by`, `timespan`, a
//! `condition` of `gt`/`gte`/`lt`/`lte`/`eq`, `aliases`, `generate`) refer to
//! detection rules, or to other correlations, by `id` or `name`; loading
//! resolves the references (a `name` is looked up in the correlation's own
//! file first) and reports a correlation whose references are unknown,
//! ambiguous, unusable or cyclic. As the specification has it, a rule that a
//! correlation refers to only feeds that correlation unless `generate: true`
//! ([`Rule::alerts`]): [`RuleSet::matches`] leaves it out,
//! [`RuleSet::matches_all`] does not.
//!
//! A [`Correlator`] evaluates the correlations over a stream, fed in order
//! with each event's matching rules, time and a reference of the caller's;
//! [`RuleSet::detect`] does both steps for one event. Windows slide, one
//! burst gives one hit, conditions with an upper bound are decided when the
//! window closes, late events are counted within the timespan, and memory
//! is bounded: the [`correlator`] module says how.
//!
//! # Why our own engine
//!
//! `rsigma-parser`/`rsigma-eval` 0.23 (MIT; 0.26 needs rustc 1.96) was the
//! alternative. The engine proper is small (conditions, selections, a dozen
//! modifiers), while conformance is judged against pySigma's SQLite backend,
//! whose observable behaviour (dotted flattening, case folding, how a
//! missing field behaves under `not`) we want to control line by line and
//! explain here rather than patch around in a dependency's evaluator. So
//! acta writes the engine and depends only on maintained, general crates:
//! `serde-saphyr` (pure-Rust, panic-free YAML; `serde_yaml` is unmaintained)
//! for rule files and `regex` for `re` and wildcard values.

#![deny(clippy::indexing_slicing)]

pub mod behaviour;
pub mod condition;
pub mod correlation;
pub mod correlator;
pub mod event;
pub mod matcher;
pub mod rule;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use correlation::{Correlation, CorrelationType, CountCondition};
pub use correlator::{Correlator, CorrelatorStats, Hit, Limits, MAX_REFERENCES};
pub use event::{Event, FieldSet};
pub use rule::{LogSource, Rule, RuleError};

/// A set of usable rules, indexed by acta source, and the correlations
/// over them.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_source: HashMap<&'static str, Vec<usize>>,
    /// Per source, the fields its rules read.
    fields: HashMap<&'static str, FieldSet>,
    /// Per source, its rules indexed by their guards.
    guarded: HashMap<&'static str, Guarded>,
    correlations: Vec<Correlation>,
}

/// What loading a directory of rules found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The usable rules and correlations.
    pub rules: RuleSet,
    /// Every rule or correlation that could not be used, with the reason.
    pub errors: Vec<RuleError>,
}

/// What one rule matching an event gives: the rules that alert on it, and
/// the correlations it completed.
#[derive(Debug, Default)]
pub struct Detection<'a> {
    /// The rules that match the event and alert on their own
    /// ([`Rule::alerts`]).
    pub rules: Vec<&'a Rule>,
    /// The correlation hits the event raised.
    pub correlations: Vec<Hit>,
}

impl RuleSet {
    /// A rule set of these rules, with no correlations.
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let mut by_source: HashMap<&'static str, Vec<usize>> = HashMap::new();
        let mut fields: HashMap<&'static str, FieldSet> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            for source in rule.sources() {
                by_source.entry(source).or_default().push(i);
                rule.read_fields(fields.entry(source).or_default());
            }
        }
        let guarded = by_source
            .iter()
            .map(|(source, indexes)| (*source, Guarded::new(&rules, indexes)))
            .collect();
        RuleSet {
            rules,
            by_source,
            fields,
            guarded,
            correlations: Vec::new(),
        }
    }

    /// Loads every `*.yml` and `*.yaml` file under `dir`, recursively, in
    /// path order (see [`RuleSet::from_texts`]). A file that cannot be read
    /// or used is reported in [`Loaded::errors`]; only an unreadable `dir`
    /// itself is an error.
    pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
        RuleSet::load_dirs(std::slice::from_ref(&dir))
    }

    /// Loads the rules of several directories as one set (correlations in
    /// one may refer to rules in another); see [`RuleSet::load_dir`]. An
    /// unreadable directory is an error naming it.
    pub fn load_dirs(dirs: &[impl AsRef<Path>]) -> std::io::Result<Loaded> {
        let mut files = Vec::new();
        for dir in dirs {
            let dir = dir.as_ref();
            collect_rule_files(dir, &mut files)
                .map_err(|e| std::io::Error::new(e.kind(), format!("`{}`: {e}", dir.display())))?;
        }
        // Directories given twice, or one inside another, load each file once.
        for file in &mut files {
            if let Ok(canonical) = std::fs::canonicalize(&*file) {
                *file = canonical;
            }
        }
        files.sort();
        files.dedup();
        let mut texts = Vec::new();
        let mut unreadable = Vec::new();
        for path in files {
            match std::fs::read_to_string(&path) {
                Ok(text) => texts.push((path, text)),
                Err(e) => unreadable.push(RuleError {
                    path,
                    line: None,
                    reason: format!("cannot read: {e}"),
                }),
            }
        }
        let mut loaded = RuleSet::from_texts(texts.iter().map(|(p, t)| (p.as_path(), t.as_str())));
        loaded.errors.extend(unreadable);
        loaded
            .errors
            .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        Ok(loaded)
    }

    /// Loads rule files given as (path, text). A file may hold several YAML
    /// documents (`---`): detection rules, and correlation rules that refer
    /// to rules of any of the files by `id` or `name` (a `name` is looked up
    /// in the correlation's own file first). A correlation is unusable when
    /// a rule it refers to is unknown, ambiguous or unusable, or when
    /// correlations refer to each other in a cycle.
    pub fn from_texts<'a>(files: impl IntoIterator<Item = (&'a Path, &'a str)>) -> Loaded {
        let mut rules = Vec::new();
        let mut correlations = Vec::new();
        let mut errors = Vec::new();
        // The id and name of each unusable document, to say why a
        // correlation referring to it is unusable too.
        let mut unusable: Vec<(Option<String>, Option<String>)> = Vec::new();
        for (path, text) in files {
            let docs = rule::documents(text, path);
            if docs.is_empty() {
                errors.push(RuleError {
                    path: path.to_owned(),
                    line: None,
                    reason: "no rule in this file".to_owned(),
                });
            }
            for doc in docs {
                let map = match doc.mapping() {
                    Ok(map) => map,
                    Err(error) => {
                        errors.push(error);
                        continue;
                    }
                };
                let parsed = if map.contains_key("correlation") {
                    Correlation::from_document(&doc, &map).map(|c| correlations.push(c))
                } else {
                    Rule::from_document(&doc, &map).map(|r| rules.push(r))
                };
                if let Err(error) = parsed {
                    let text = |key: &str| map.get(key).and_then(|v| v.as_str()).map(str::to_owned);
                    unusable.push((text("id"), text("name")));
                    errors.push(error);
                }
            }
        }
        let correlations = resolve(&mut rules, correlations, &unusable, &mut errors);
        let set = RuleSet::assemble(rules, correlations);
        Loaded { rules: set, errors }
    }

    /// A rule set of rules and the correlations over them.
    fn assemble(rules: Vec<Rule>, correlations: Vec<Correlation>) -> RuleSet {
        let mut set = RuleSet::new(rules);
        // Correlations read their group-by fields (or what their aliases stand for) and
        // `value_count`'s field from the events of every source.
        for fields in set.fields.values_mut() {
            for correlation in &correlations {
                for path in correlation.group_by.iter().chain(&correlation.field) {
                    fields.add(path);
                }
                for (_, per_rule) in &correlation.aliases {
                    for (_, path) in per_rule {
                        fields.add(path);
                    }
                }
            }
        }
        set.correlations = correlations;
        set
    }

    /// This set without the rules `drop` names, except those a correlation
    /// refers to (e.g. the rules below an alerting level, which then need
    /// not be evaluated at all).
    pub fn without(&self, drop: impl Fn(&Rule) -> bool) -> RuleSet {
        let referenced = |rule: &Rule| self.correlations.iter().any(|c| c.rules.contains(&rule.id));
        let rules = self
            .rules
            .iter()
            .filter(|rule| !drop(rule) || referenced(rule))
            .cloned()
            .collect();
        RuleSet::assemble(rules, self.correlations.clone())
    }

    /// All the detection rules, including those that only feed
    /// correlations.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// All the correlations, each after the correlations it refers to.
    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    /// The rules for an acta source that match the event and alert on
    /// their own ([`Rule::alerts`]): without the rules that only feed
    /// correlations.
    pub fn matches<'a, 'e>(
        &'a self,
        source: &str,
        event: &'e Event,
    ) -> impl Iterator<Item = &'a Rule> + use<'a, 'e> {
        self.matches_all(source, event).filter(|rule| rule.alerts())
    }

    /// Every rule for an acta source that matches the event, including
    /// those that only feed correlations.
    pub fn matches_all<'a, 'e>(
        &'a self,
        source: &str,
        event: &'e Event,
    ) -> impl Iterator<Item = &'a Rule> + use<'a, 'e> {
        self.matching(source, event)
            .filter_map(|i| self.rules.get(i))
    }

    /// The positions (in [`RuleSet::rules`]) of every rule for an acta source
    /// that matches the event, including those that only feed correlations.
    pub fn matching<'a, 'e>(
        &'a self,
        source: &str,
        event: &'e Event,
    ) -> impl Iterator<Item = usize> + use<'a, 'e> {
        let candidates = self
            .guarded
            .get(source)
            .map(|g| g.candidates(event))
            .unwrap_or_default();
        candidates
            .into_iter()
            .filter(move |i| self.rules.get(*i).is_some_and(|rule| rule.matches(event)))
    }

    /// Whether any rule applies to records of an acta source.
    pub fn has_rules_for(&self, source: &str) -> bool {
        self.by_source.contains_key(source)
    }

    /// A raw record (JSON, or a text line) flattened for the rules of an
    /// acta source: only the fields they read are kept.
    pub fn event_for(&self, source: &str, record: &[u8]) -> Event {
        match self.fields.get(source) {
            Some(fields) => Event::from_record_fields(record, fields),
            None => Event::from_record_fields(record, &FieldSet::default()),
        }
    }

    /// The rules for an acta source that match a raw record (JSON, or a
    /// text line) and alert on their own.
    pub fn matches_record(&self, source: &str, record: &[u8]) -> Vec<&Rule> {
        if !self.has_rules_for(source) {
            return Vec::new();
        }
        let event = self.event_for(source, record);
        self.matches(source, &event).collect()
    }

    /// A correlator for this set's correlations, with the default limits.
    pub fn correlator(&self) -> Correlator {
        Correlator::new(&self.correlations, Limits::default())
    }

    /// Evaluates one event of a stream: the rules that match it and alert
    /// on their own, and the correlation hits it raises (the correlator is
    /// fed every matching rule). Call it for each event in order, with the
    /// event's time (epoch milliseconds) and a reference of the caller's
    /// (a ledger index), which hits report.
    pub fn detect(
        &self,
        correlator: &mut Correlator,
        source: &str,
        event: &Event,
        time_ms: i64,
        reference: u64,
    ) -> Detection<'_> {
        let mut rules = Vec::new();
        let mut ids: Vec<&str> = Vec::new();
        for rule in self.matches_all(source, event) {
            if rule.alerts() {
                rules.push(rule);
            }
            ids.push(&rule.id);
        }
        let correlations = correlator.observe(&ids, time_ms, event, reference);
        Detection {
            rules,
            correlations,
        }
    }
}

/// One source's rules, indexed by their guards ([`Rule::guard`]): an event
/// is tried only against the rules whose guard its fields satisfy, and the
/// rules without one.
#[derive(Debug, Clone, Default)]
struct Guarded {
    unguarded: Vec<usize>,
    /// Per guarded field: the rules by lowercase value, and all of them.
    fields: Vec<GuardedField>,
}

/// A guarded field: its path, its rules by lowercase value, and all of them.
type GuardedField = (String, HashMap<Vec<u8>, Vec<usize>>, Vec<usize>);

impl Guarded {
    fn new(rules: &[Rule], indexes: &[usize]) -> Guarded {
        let mut g = Guarded::default();
        for &i in indexes {
            let Some(guard) = rules.get(i).and_then(Rule::guard) else {
                g.unguarded.push(i);
                continue;
            };
            let at = match g.fields.iter().position(|(f, ..)| *f == guard.field) {
                Some(at) => at,
                None => {
                    g.fields
                        .push((guard.field.clone(), HashMap::new(), Vec::new()));
                    g.fields.len() - 1
                }
            };
            if let Some((_, by_value, all)) = g.fields.get_mut(at) {
                for value in guard.values {
                    by_value.entry(value).or_default().push(i);
                }
                all.push(i);
            }
        }
        g
    }

    /// The rules worth trying on `event`, in rule order.
    fn candidates(&self, event: &Event) -> Vec<usize> {
        let mut out = self.unguarded.clone();
        let mut key = Vec::new();
        for (field, by_value, all) in &self.fields {
            let Some(value) = event.field(field) else {
                continue;
            };
            for text in value.texts() {
                if !text.is_ascii() {
                    // Unicode case folding may map it onto an ASCII literal: try them all.
                    out.extend_from_slice(all);
                    continue;
                }
                key.clear();
                key.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
                if let Some(rules) = by_value.get(key.as_slice()) {
                    out.extend_from_slice(rules);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// What a correlation reference resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Rule(usize),
    Correlation(usize),
}

/// Resolves the references of the correlations to ids, orders the usable
/// correlations so that each comes after those it refers to, reports the
/// unusable ones, and marks which rules and correlations alert on their
/// own.
fn resolve(
    rules: &mut [Rule],
    mut correlations: Vec<Correlation>,
    unusable: &[(Option<String>, Option<String>)],
    errors: &mut Vec<RuleError>,
) -> Vec<Correlation> {
    let mut by_id: HashMap<&str, Vec<(Target, &Path)>> = HashMap::new();
    let mut by_name: HashMap<&str, Vec<(Target, &Path)>> = HashMap::new();
    let documents = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (Target::Rule(i), &r.id, &r.name, &r.path))
        .chain(
            correlations
                .iter()
                .enumerate()
                .map(|(i, c)| (Target::Correlation(i), &c.id, &c.name, &c.path)),
        );
    for (target, id, name, path) in documents {
        by_id.entry(id).or_default().push((target, path));
        if let Some(name) = name {
            by_name.entry(name).or_default().push((target, path));
        }
    }
    // Each correlation's targets, or why it is unusable.
    let mut targets: Vec<Result<Vec<Target>, RuleError>> = Vec::new();
    for c in &correlations {
        let fail = |position: usize, reason: String| RuleError {
            path: c.path.clone(),
            line: c
                .rule_lines
                .get(position)
                .copied()
                .flatten()
                .or(Some(c.line)),
            reason,
        };
        let mut found = Ok(Vec::new());
        for (position, reference) in c.rules.iter().enumerate() {
            let candidates = by_id
                .get(reference.as_str())
                .or_else(|| by_name.get(reference.as_str()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let here: Vec<_> = candidates.iter().filter(|(_, p)| *p == c.path).collect();
            let pick = match (here.as_slice(), candidates) {
                ([one], _) => Some(one.0),
                ([], [one]) => Some(one.0),
                _ => None,
            };
            let chosen = match pick {
                Some(target) => Ok(target),
                None if candidates.is_empty() => Err(
                    if unusable.iter().any(|(id, name)| {
                        id.as_deref() == Some(reference) || name.as_deref() == Some(reference)
                    }) {
                        format!("refers to `{reference}`, which is unusable")
                    } else {
                        format!(
                            "unknown rule `{reference}`: no rule or correlation has this id or name"
                        )
                    },
                ),
                None => Err(format!(
                    "`{reference}` is ambiguous: several rules have this id or name"
                )),
            };
            match (chosen, &mut found) {
                (Ok(target), Ok(list)) => list.push(target),
                (Err(reason), _) => {
                    found = Err(fail(position, reason));
                    break;
                }
                (Ok(_), Err(_)) => {}
            }
        }
        targets.push(found);
    }
    // A correlation referring to an unusable one is unusable; what is left
    // is ordered (each after those it refers to), and a cycle is unusable.
    let n = correlations.len();
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    loop {
        let mut progress = false;
        for i in 0..n {
            let Some(Ok(refs)) = targets.get(i) else {
                continue;
            };
            if placed.get(i).copied().unwrap_or(true) {
                continue;
            }
            let mut ready = true;
            let mut broken = None;
            for target in refs {
                if let Target::Correlation(j) = *target {
                    match targets.get(j) {
                        Some(Err(_)) => broken = Some(j),
                        _ if !placed.get(j).copied().unwrap_or(false) => ready = false,
                        _ => {}
                    }
                }
            }
            if let Some(j) = broken {
                let (Some(c), Some(other)) = (correlations.get(i), correlations.get(j)) else {
                    continue;
                };
                let position = refs
                    .iter()
                    .position(|t| *t == Target::Correlation(j))
                    .unwrap_or(0);
                let error = RuleError {
                    path: c.path.clone(),
                    line: c
                        .rule_lines
                        .get(position)
                        .copied()
                        .flatten()
                        .or(Some(c.line)),
                    reason: format!("refers to correlation `{}`, which is unusable", other.id),
                };
                if let Some(slot) = targets.get_mut(i) {
                    *slot = Err(error);
                }
                progress = true;
            } else if ready {
                if let Some(slot) = placed.get_mut(i) {
                    *slot = true;
                }
                order.push(i);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    for i in 0..n {
        if matches!(targets.get(i), Some(Ok(_)))
            && !placed.get(i).copied().unwrap_or(false)
            && let Some(c) = correlations.get(i)
        {
            let error = RuleError {
                path: c.path.clone(),
                line: Some(c.line),
                reason: "correlations refer to each other in a cycle".to_owned(),
            };
            if let Some(slot) = targets.get_mut(i) {
                *slot = Err(error);
            }
        }
    }
    // Ids instead of references, and which rules alert on their own.
    let mut rule_feeds = vec![(false, false); rules.len()];
    let mut corr_feeds = vec![(false, false); n];
    for &i in &order {
        let (Some(Ok(refs)), Some(c)) = (targets.get(i), correlations.get(i)) else {
            continue;
        };
        for target in refs {
            let slot = match *target {
                Target::Rule(j) => rule_feeds.get_mut(j),
                Target::Correlation(j) => corr_feeds.get_mut(j),
            };
            if let Some((referenced, generated)) = slot {
                *referenced = true;
                *generated |= c.generate;
            }
        }
    }
    for (rule, (referenced, generated)) in rules.iter_mut().zip(&rule_feeds) {
        rule.set_alerts(!referenced || *generated);
    }
    let ids: Vec<String> = correlations.iter().map(|c| c.id.clone()).collect();
    let mut usable: Vec<Option<Correlation>> = Vec::with_capacity(n);
    for (i, mut c) in correlations.drain(..).enumerate() {
        match targets.get(i) {
            Some(Ok(refs)) if placed.get(i).copied().unwrap_or(false) => {
                let resolved: Vec<String> = refs
                    .iter()
                    .map(|t| match *t {
                        Target::Rule(j) => rules.get(j).map(|r| r.id.clone()).unwrap_or_default(),
                        Target::Correlation(j) => ids.get(j).cloned().unwrap_or_default(),
                    })
                    .collect();
                for (_, fields) in &mut c.aliases {
                    for (key, _) in fields.iter_mut() {
                        if let Some(p) = c.rules.iter().position(|r| r == key)
                            && let Some(id) = resolved.get(p)
                        {
                            *key = id.clone();
                        }
                    }
                }
                c.rules = resolved;
                let (referenced, generated) = corr_feeds.get(i).copied().unwrap_or_default();
                c.set_alerts(!referenced || generated);
                usable.push(Some(c));
            }
            Some(Err(error)) => {
                errors.push(error.clone());
                usable.push(None);
            }
            _ => usable.push(None),
        }
    }
    order
        .iter()
        .filter_map(|&i| usable.get_mut(i).and_then(Option::take))
        .collect()
}
fn collect_rule_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rule_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            out.push(path);
        }
    }
    Ok(())
}
