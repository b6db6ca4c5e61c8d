//! Conformance with the reference Sigma oracle (pySigma and its SQLite
//! backend, `tests/sigma-oracle/sigma_oracle.py`): for every rule under
//! `rules/sigma` and every test-data file of its log source, the set of
//! (rule id, file, index) matches must be the oracle's.
//!
//! The oracle runs under `ACTA_SIGMA_PYTHON` (default `python3`), which
//! `./scripts/test` points at a virtualenv with pySigma installed.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use acta_detect::{Event, RuleSet};
use serde_json::Value;

/// Rules whose verdicts deliberately differ from the oracle's, with why.
const DELIBERATE: &[(&str, &str)] = &[];

/// Each group: the acta sources it stands for, and its files under testdata.
fn groups(testdata: &Path) -> Vec<(&'static [&'static str], Vec<PathBuf>)> {
    let files = |dir: &str, keep: fn(&Path) -> bool| {
        let mut out = Vec::new();
        walk(&testdata.join(dir), &mut out);
        out.retain(|p| keep(p) && p.file_name().is_some_and(|n| n != "LICENSE"));
        out.sort();
        out
    };
    vec![
        (&["cloudtrail"][..], files("cloudtrail/stratus", |_| true)),
        (&["k8s-audit"][..], files("k8s-audit", |_| true)),
        (&["github-audit"][..], files("github", |_| true)),
        (&["gitlab-audit"][..], files("gitlab", |_| true)),
        (&["syslog", "journald"][..], files("linux", |_| true)),
        (&["pgaudit"][..], files("pgaudit", |_| true)),
    ]
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Events of a file, as the oracle reads them: one JSON document (an array,
/// or an object with a `Records` or `items` array, or one object), else one
/// event a non-blank line (JSON, or `{"message": line}`).
fn load_events(path: &Path) -> Vec<Event> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    if let Ok(doc) = serde_json::from_str::<Value>(&text) {
        match doc {
            Value::Array(items) => return items.iter().map(Event::from_json).collect(),
            Value::Object(ref map) => {
                for key in ["Records", "items"] {
                    if let Some(Value::Array(items)) = map.get(key) {
                        return items.iter().map(Event::from_json).collect();
                    }
                }
                return vec![Event::from_json(&doc)];
            }
            _ => {}
        }
    }
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(value) => Event::from_json(&value),
            Err(_) => Event::from_text(line),
        })
        .collect()
}

type Match = (String, String, usize);

#[test]
fn matches_equal_the_oracle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let testdata = root.join("testdata");
    let loaded = RuleSet::load_dir(&root.join("rules/sigma")).unwrap();
    for error in &loaded.errors {
        eprintln!("unusable: {error}");
    }
    let rel = |p: &Path| p.strip_prefix(&testdata).unwrap().display().to_string();
    let python = std::env::var("ACTA_SIGMA_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigma-oracle/sigma_oracle.py");

    let mut ours: BTreeSet<Match> = BTreeSet::new();
    let mut theirs: BTreeSet<Match> = BTreeSet::new();
    let mut compared_rules = 0;
    for (sources, files) in groups(&testdata) {
        let rules: Vec<_> = loaded
            .rules
            .rules()
            .iter()
            .filter(|r| r.sources().iter().any(|s| sources.contains(s)))
            .collect();
        // The oracle also gets the unusable files of this log source, so a
        // rule we reject but pySigma matches shows up as a difference.
        let mut rule_files: Vec<PathBuf> = rules.iter().map(|r| r.path.clone()).collect();
        for error in &loaded.errors {
            let text = std::fs::read_to_string(&error.path).unwrap_or_default();
            if sources.iter().any(|s| mentions_source(&text, s)) {
                rule_files.push(error.path.clone());
            }
        }
        if rule_files.is_empty() || files.is_empty() {
            continue;
        }
        compared_rules += rule_files.len();
        for file in &files {
            for (index, event) in load_events(file).iter().enumerate() {
                for rule in rules.iter().filter(|r| r.matches(event)) {
                    ours.insert((rule.id.clone(), rel(file), index));
                }
            }
        }
        let output = Command::new(&python)
            .arg(&oracle)
            .args(&rule_files)
            .arg("--")
            .args(&files)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run ./scripts/test, which installs pySigma and sets ACTA_SIGMA_PYTHON"));
        assert!(
            output.status.success(),
            "the Sigma oracle failed (is pySigma installed? run ./scripts/test, which installs it and sets ACTA_SIGMA_PYTHON):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let hit: Value = serde_json::from_str(line).unwrap();
            theirs.insert((
                hit["rule"].as_str().unwrap().to_owned(),
                rel(Path::new(hit["file"].as_str().unwrap())),
                usize::try_from(hit["index"].as_u64().unwrap()).unwrap(),
            ));
        }
    }
    let deliberate = |m: &&Match| DELIBERATE.iter().any(|(id, _)| *id == m.0);
    let only_ours: Vec<_> = ours
        .difference(&theirs)
        .filter(|m| !deliberate(m))
        .collect();
    let only_theirs: Vec<_> = theirs
        .difference(&ours)
        .filter(|m| !deliberate(m))
        .collect();
    for m in &only_ours {
        eprintln!("only acta:   {} {} #{}", m.0, m.1, m.2);
    }
    for m in &only_theirs {
        eprintln!("only oracle: {} {} #{}", m.0, m.1, m.2);
    }
    eprintln!(
        "{} rules loaded, {} unusable, {compared_rules} compared; {} matches agree, {} only acta, {} only oracle",
        loaded.rules.rules().len(),
        loaded.errors.len(),
        ours.intersection(&theirs).count(),
        only_ours.len(),
        only_theirs.len()
    );
    assert!(
        theirs.len() > 100,
        "the oracle found almost nothing: {}",
        theirs.len()
    );
    assert!(only_ours.is_empty() && only_theirs.is_empty());
}

/// Whether an unusable rule's text names this acta source's log source.
/// Trying only the rules whose guard an event satisfies finds exactly the
/// rules that match when every rule of the source is tried, on every
/// test-data event of every source.
#[test]
fn guarded_rules_find_what_trying_every_rule_finds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let testdata = root.join("testdata");
    let loaded = RuleSet::load_dir(&root.join("rules/sigma")).unwrap();
    let set = &loaded.rules;
    let guarded = set.rules().iter().filter(|r| r.guard().is_some()).count();
    assert!(guarded > 50, "only {guarded} rules have a guard");
    let mut checked = 0;
    let mut matched = 0;
    for (sources, files) in groups(&testdata) {
        for file in files {
            for event in load_events(&file) {
                for source in sources {
                    let fast: Vec<&str> = set
                        .matches_all(source, &event)
                        .map(|r| r.id.as_str())
                        .collect();
                    let slow: Vec<&str> = set
                        .rules()
                        .iter()
                        .filter(|r| r.sources().contains(source) && r.matches(&event))
                        .map(|r| r.id.as_str())
                        .collect();
                    assert_eq!(fast, slow, "{}", file.display());
                    checked += 1;
                    matched += slow.len();
                }
            }
        }
    }
    assert!(
        checked > 1000 && matched > 100,
        "{checked} events, {matched} matches"
    );
}

fn mentions_source(text: &str, source: &str) -> bool {
    let product = match source {
        "cloudtrail" => "product: aws",
        "k8s-audit" => "product: kubernetes",
        "github-audit" => "product: github",
        "gitlab-audit" => "product: gitlab",
        "syslog" | "journald" => "product: linux",
        "pgaudit" => "category: database",
        _ => return false,
    };
    text.contains(product)
}
