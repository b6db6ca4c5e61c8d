//! `acta rules test`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use acta_detect::RuleSet;
use anyhow::{Context as _, Result};

use super::EXIT_FAILED;

pub fn test(dir: &Path) -> Result<ExitCode> {
    let loaded = RuleSet::load_dir(dir)
        .with_context(|| format!("cannot read the rules directory `{}`", dir.display()))?;
    for error in &loaded.errors {
        println!("unusable: {error}");
    }
    let rules = loaded.rules.rules();
    let mut per_source: BTreeMap<&str, usize> = BTreeMap::new();
    let mut no_source = 0;
    for rule in rules {
        if rule.sources().is_empty() {
            no_source += 1;
        }
        for source in rule.sources() {
            *per_source.entry(source).or_default() += 1;
        }
    }
    let sources: Vec<String> = per_source
        .iter()
        .map(|(source, n)| format!("{source} {n}"))
        .collect();
    let correlations = loaded.rules.correlations().len();
    println!(
        "{} rules usable{}, {} unusable; per acta source: {}; {no_source} for log sources acta does not read yet",
        rules.len(),
        if correlations == 0 {
            String::new()
        } else {
            format!(" and {correlations} correlations")
        },
        loaded.errors.len(),
        if sources.is_empty() {
            "none".to_owned()
        } else {
            sources.join(", ")
        },
    );
    Ok(if loaded.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
