//! `acta detect`: Sigma rules over files, nothing stored.

use std::io::Write as _;
use std::process::ExitCode;

use acta_detect::RuleSet;
use acta_ingest::formats::{InputNormaliser, Registry};
use acta_ingest::framing::{Framer, FramerConfig, QuotedNewlines, RecordBatch, open_input};
use anyhow::{Context as _, Result};
use serde_json::json;

use crate::cli::{DetectArgs, DetectForm};

pub fn run(args: DetectArgs) -> Result<ExitCode> {
    let loaded = RuleSet::load_dir(&args.rules)
        .with_context(|| format!("cannot read the rules directory `{}`", args.rules.display()))?;
    for error in &loaded.errors {
        eprintln!("acta: unusable rule: {error}");
    }
    let rules = loaded.rules;
    let registry = Registry::standard();
    let mut out = std::io::stdout().lock();
    let mut matches = 0u64;
    let mut records = 0u64;
    let mut failed = false;
    if args.output == DetectForm::Table {
        writeln!(out, "{:<40}  {:>6}  {:<8}  RULE", "FILE", "INDEX", "LEVEL")?;
    }
    for path in &args.inputs {
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
                for rule in rules.matches_record(&source, record) {
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
    out.flush()?;
    eprintln!(
        "{matches} match{} of {} rules over {records} records in {} file{}",
        if matches == 1 { "" } else { "es" },
        rules.rules().len(),
        args.inputs.len(),
        if args.inputs.len() == 1 { "" } else { "s" }
    );
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
