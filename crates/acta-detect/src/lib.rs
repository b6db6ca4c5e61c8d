//! acta's detection side: Sigma rules evaluated against the raw records of
//! each source.
//!
//! A [`RuleSet`] loads Sigma rules (specification v2) from a directory,
//! keeping every rule it can use and reporting every one it cannot, with the
//! file, line and reason ([`RuleError`]); bad YAML never panics. Rules match
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
//!   configuration acta does not have); correlation rules are rejected for
//!   now.
//! - `re` uses the `regex` crate: no look-around or back-references. A rule
//!   using them is reported unusable rather than matched differently.
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
pub mod event;
pub mod matcher;
pub mod rule;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use event::Event;
pub use rule::{LogSource, Rule, RuleError};

/// A set of usable rules, indexed by acta source.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_source: HashMap<&'static str, Vec<usize>>,
}

/// What loading a directory of rules found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The usable rules.
    pub rules: RuleSet,
    /// Every rule file that could not be used, with the reason.
    pub errors: Vec<RuleError>,
}

impl RuleSet {
    /// A rule set of these rules.
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let mut by_source: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            for source in rule.sources() {
                by_source.entry(source).or_default().push(i);
            }
        }
        RuleSet { rules, by_source }
    }

    /// Loads every `*.yml` and `*.yaml` file under `dir`, recursively, in
    /// path order. A file that cannot be read or used is reported in
    /// [`Loaded::errors`]; only an unreadable `dir` itself is an error.
    pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
        let mut files = Vec::new();
        collect_rule_files(dir, &mut files)?;
        files.sort();
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for path in files {
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| RuleError {
                    path: path.clone(),
                    line: None,
                    reason: format!("cannot read: {e}"),
                })
                .and_then(|text| Rule::parse(&text, &path));
            match parsed {
                Ok(rule) => rules.push(rule),
                Err(error) => errors.push(error),
            }
        }
        Ok(Loaded {
            rules: RuleSet::new(rules),
            errors,
        })
    }

    /// All the rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules for an acta source that match the event.
    pub fn matches<'a, 'e>(
        &'a self,
        source: &str,
        event: &'e Event,
    ) -> impl Iterator<Item = &'a Rule> + use<'a, 'e> {
        self.by_source
            .get(source)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|i| self.rules.get(*i))
            .filter(move |rule| rule.matches(event))
    }

    /// The rules for an acta source that match a raw record (JSON, or a
    /// text line).
    pub fn matches_record(&self, source: &str, record: &[u8]) -> Vec<&Rule> {
        let event = Event::from_record(record);
        self.matches(source, &event).collect()
    }
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
