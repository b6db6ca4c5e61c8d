//! `acta detect`: Sigma rules over files, nothing stored.
//!
//! Detection rules print a line per matching record as records are read.
//! Correlation rules are evaluated once every file is read: the records
//! that matched a rule some correlation refers to, with the time their
//! source gives them (as `acta ingest` normalises it), are fed to a
//! correlator in time order (records of equal time in file order), so the
//! hits do not depend on the order the files are named in. A record whose
//! time cannot be read takes no part in correlations.

use std::collections::HashSet;
use std::io::Write as _;
use std::process::ExitCode;

use acta_detect::{Event, Hit, RuleSet};
use acta_ingest::formats::time::format_rfc3339;
use acta_ingest::formats::{InputNormaliser, Record, Registry};
use acta_ingest::framing::{Framer, FramerConfig, QuotedNewlines, RecordBatch, open_input};
use acta_ledger::now_ms;
use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::cli::{DetectArgs, DetectForm};

/// A record kept for the correlation pass.
struct Correlated {
    time: i64,
    file: usize,
    index: u64,
    rules: Vec<String>,
    event: Event,
}

pub fn run(args: DetectArgs) -> Result<ExitCode> {
    let loaded = RuleSet::load_dirs(&args.rules).context("cannot read the rules")?;
    for error in &loaded.errors {
        eprintln!("acta: unusable rule: {error}");
    }
    let rules = loaded.rules;
    let registry = Registry::standard();
    // The rules whose matches correlations need.
    let correlated: HashSet<&str> = rules
        .correlations()
        .iter()
        .flat_map(|c| c.rules.iter().map(String::as_str))
        .collect();
    let mut kept: Vec<Correlated> = Vec::new();
    let mut untimed = 0u64;
    let received_at_ms = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let mut out = std::io::stdout().lock();
    let mut matches = 0u64;
    let mut records = 0u64;
    let mut failed = false;
    if args.output == DetectForm::Table {
        writeln!(out, "{:<40}  {:>6}  {:<8}  RULE", "FILE", "INDEX", "LEVEL")?;
    }
    for (file, path) in args.inputs.iter().enumerate() {
        let name = path.display().to_string();
        let reader = match open_input(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("acta: {name}: {e}");
                failed = true;
                continue;
            }
        };
        let config = FramerConfig {
            quoted_newlines: QuotedNewlines::for_path(path),
            check_json: false,
            ..FramerConfig::default()
        };
        let mut framer = Framer::new(name.clone(), reader, config);
        let mut input = InputNormaliser::new(None);
        let mut index = 0u64;
        loop {
            let mut batch = RecordBatch::new();
            let more = framer.next_batch(&mut batch, 4 << 20);
            let mut spans = Vec::new();
            for (bytes, meta) in batch.iter() {
                match input.split(&registry, bytes) {
                    Some(parts) => spans.extend(
                        parts
                            .into_iter()
                            .map(|r| meta.range.start + r.start..meta.range.start + r.end),
                    ),
                    None => spans.push(meta.range.clone()),
                }
            }
            input.prepare(
                &registry,
                spans
                    .iter()
                    .map(|s| batch.data.get(s.clone()).unwrap_or_default()),
            );
            let source = args
                .source
                .clone()
                .or_else(|| input.format().map(|f| f.name().to_owned()))
                .unwrap_or_default();
            for span in &spans {
                let record = batch.data.get(span.clone()).unwrap_or_default();
                let event = rules.event_for(&source, record);
                let mut feeds = Vec::new();
                for rule in rules.matches_all(&source, &event) {
                    if correlated.contains(rule.id.as_str()) {
                        feeds.push(rule.id.clone());
                    }
                    if !rule.alerts() {
                        continue;
                    }
                    matches += 1;
                    match args.output {
                        DetectForm::Ndjson => writeln!(
                            out,
                            "{}",
                            json!({
                                "rule": rule.id,
                                "title": rule.title,
                                "level": rule.level,
                                "file": name,
                                "index": index,
                                "source": source,
                            })
                        )?,
                        DetectForm::Table => writeln!(
                            out,
                            "{:<40}  {:>6}  {:<8}  {}",
                            name,
                            index,
                            rule.level.as_deref().unwrap_or("-"),
                            rule.title
                        )?,
                    }
                }
                if !feeds.is_empty() {
                    let normalised = registry.normalise(
                        &Record {
                            bytes: record,
                            received_at_ms,
                        },
                        input.choice(),
                    );
                    match normalised.event {
                        Some(e) if e.metadata.original_time.is_some() => kept.push(Correlated {
                            time: e.time,
                            file,
                            index,
                            rules: feeds,
                            event,
                        }),
                        _ => untimed += 1,
                    }
                }
                index += 1;
            }
            records += spans.len() as u64;
            match more {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    eprintln!("acta: {name}: {e}");
                    failed = true;
                    break;
                }
            }
        }
    }
    let hits = correlate(&rules, &mut kept);
    for hit in &hits {
        let events: Vec<(usize, u64)> = hit
            .references
            .iter()
            .filter_map(|r| usize::try_from(*r).ok())
            .filter_map(|r| kept.get(r))
            .map(|c| (c.file, c.index))
            .collect();
        let files: Vec<String> = events
            .iter()
            .map(|(f, _)| {
                args.inputs
                    .get(*f)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        let first_file = files.first().cloned().unwrap_or_default();
        let first_index = events.first().map_or(0, |(_, i)| *i);
        match args.output {
            DetectForm::Ndjson => {
                let group: serde_json::Map<String, Value> = hit
                    .group
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
                    .collect();
                let mut line = json!({
                    "rule": hit.id,
                    "title": hit.title,
                    "level": hit.level,
                    "correlation": true,
                    "type": hit.kind.name(),
                    "group": group,
                    "count": hit.count,
                    "start": format_rfc3339(hit.start_ms),
                    "end": format_rfc3339(hit.end_ms),
                    "file": first_file,
                    "indexes": events.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
                });
                if files.iter().any(|f| *f != first_file)
                    && let Value::Object(map) = &mut line
                {
                    map.insert("files".to_owned(), json!(files));
                }
                writeln!(out, "{line}")?;
            }
            DetectForm::Table => {
                let group: Vec<String> = hit
                    .group
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("(none)")))
                    .collect();
                writeln!(
                    out,
                    "{:<40}  {:>6}  {:<8}  {} (correlation: {} {} from {} to {}{})",
                    first_file,
                    first_index,
                    hit.level.as_deref().unwrap_or("-"),
                    hit.title,
                    hit.kind.name(),
                    hit.count,
                    format_rfc3339(hit.start_ms),
                    format_rfc3339(hit.end_ms),
                    if group.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", group.join(" "))
                    }
                )?;
            }
        }
    }
    out.flush()?;
    eprintln!(
        "{matches} match{} of {} rules over {records} records in {} file{}",
        if matches == 1 { "" } else { "es" },
        rules.rules().len(),
        args.inputs.len(),
        if args.inputs.len() == 1 { "" } else { "s" }
    );
    if !rules.correlations().is_empty() {
        eprintln!(
            "{} correlation hit{} of {} correlations over {} records",
            hits.len(),
            if hits.len() == 1 { "" } else { "s" },
            rules.correlations().len(),
            kept.len()
        );
    }
    if untimed > 0 {
        eprintln!(
            "acta: {untimed} record{} matched rules that correlations use but carry no time of their own: left out of correlations",
            if untimed == 1 { "" } else { "s" }
        );
    }
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Feeds the kept records to a correlator in time order (stable: equal
/// times in file order); each hit's references index `kept`, which ends
/// sorted.
fn correlate(rules: &RuleSet, kept: &mut [Correlated]) -> Vec<Hit> {
    if rules.correlations().is_empty() {
        return Vec::new();
    }
    kept.sort_by_key(|c| c.time);
    let mut correlator = rules.correlator();
    let mut hits = Vec::new();
    for (i, c) in kept.iter().enumerate() {
        let ids: Vec<&str> = c.rules.iter().map(String::as_str).collect();
        hits.extend(correlator.observe(&ids, c.time, &c.event, i as u64));
    }
    hits.extend(correlator.finish());
    hits
}
