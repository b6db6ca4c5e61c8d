//! `acta bench query`: latency of the investigation questions on an existing data directory.
//!
//! The questions are sampled from the data itself, across the whole range of activity: actors
//! and resources are taken at evenly spaced ranks of their event counts (the busiest, the
//! median, the rarest), free-text words from the status codes, actions and actor names present.
//! Each question is asked once to warm the caches, then `runs` times; p50, p95 and the maximum
//! are reported. The sampled questions are written as JSON so that another engine can be asked
//! the same (scripts/bench-duckdb.py).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use acta_index::{Index, StatField, TimeRange};
use acta_query::Query;
use anyhow::{Result, anyhow, bail};
use serde_json::json;

use super::bench::percentile;
use super::investigate::quoted;
use crate::datadir::DataDir;
use crate::store::index_dir;
use crate::units;

const DAY_MS: i64 = 86_400_000;

fn parse(q: &str) -> Result<Query> {
    acta_query::parse(q).map_err(|e| anyhow!("{}", e.render(q)))
}

/// Values of `field` at `n` evenly spaced ranks of their counts.
fn sample(index: &Index, field: StatField, n: usize) -> Result<Vec<String>> {
    let rows = index.stats(&Query { expr: None }, TimeRange::default(), &[field], None)?;
    let values: Vec<String> = rows
        .into_iter()
        .filter_map(|r| r.values.into_iter().next().flatten())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let n = n.min(values.len());
    let last = values.len() - 1;
    Ok((0..n)
        .filter_map(|i| values.get(if n == 1 { 0 } else { i * last / (n - 1) }))
        .cloned()
        .collect())
}

struct Timings {
    name: &'static str,
    goal: &'static str,
    all: Vec<Duration>,
}

impl Timings {
    fn report(&mut self) {
        self.all.sort();
        let p = |q: f64| percentile(&self.all, q * 100.0);
        println!(
            "  {:<34} p50 {:>9}  p95 {:>9}  max {:>9}  ({} runs; goal {})",
            self.name,
            units::duration(p(0.5)),
            units::duration(p(0.95)),
            units::duration(p(1.0)),
            self.all.len(),
            self.goal
        );
    }
}

fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed(), v))
}

pub fn run(data: &DataDir, runs: usize, queries_out: Option<PathBuf>) -> Result<ExitCode> {
    let dir = index_dir(data.root());
    if !dir.join("acta-index.toml").exists() {
        bail!(
            "no search index in `{}`: ingest first (e.g. `acta bench generate --events 10000000 | acta ingest -`)",
            data.root().display()
        );
    }
    let index = Index::open(&dir, None)?;
    index.reload()?;
    let all = Query { expr: None };
    let newest = index.search(&all, TimeRange::default(), 1, 0)?;
    let Some(latest) = newest.first().map(|h| h.time) else {
        bail!("the index is empty");
    };
    let month = TimeRange {
        since: Some(latest - 30 * DAY_MS),
        until: None,
    };
    println!(
        "acta bench query: {} events indexed; questions over the 30 days before {}",
        units::count(index.len()),
        units::timestamp(latest)
    );
    let t = Instant::now();
    let actors = sample(&index, StatField::Actor, 50)?;
    let resources = sample(&index, StatField::Resource, 50)?;
    let mut words = sample(&index, StatField::StatusCode, 10)?;
    words.extend(sample(&index, StatField::Action, 10)?);
    words.extend(actors.iter().take(5).cloned());
    println!(
        "  sampled {} actors, {} resources, {} free-text words in {}",
        actors.len(),
        resources.len(),
        words.len(),
        units::duration(t.elapsed())
    );
    if actors.is_empty() || resources.is_empty() || words.is_empty() {
        bail!("not enough distinct values to sample questions from");
    }

    let mut timeline = Timings {
        name: "actor timeline, 30 days, newest 100",
        goal: "p95 ≤ 50 ms",
        all: Vec::new(),
    };
    let mut who = Timings {
        name: "who touched resource",
        goal: "p95 ≤ 50 ms",
        all: Vec::new(),
    };
    let mut text = Timings {
        name: "free text, newest 100",
        goal: "p95 ≤ 500 ms",
        all: Vec::new(),
    };
    let mut stats = Timings {
        name: "stats by action, 30 days",
        goal: "≤ 500 ms",
        all: Vec::new(),
    };
    let mut matched = [0u64; 4];
    for round in 0..=runs {
        let warm = round == 0;
        for (i, actor) in actors.iter().enumerate() {
            if !warm && i != round % actors.len() {
                continue;
            }
            let q = parse(&format!("actor:{}", quoted(actor)))?;
            let (d, hits) = time(|| Ok(index.search(&q, month, 100, 0)?))?;
            if !warm {
                timeline.all.push(d);
                matched[0] += hits.len() as u64;
            }
        }
        for (i, r) in resources.iter().enumerate() {
            if !warm && i != round % resources.len() {
                continue;
            }
            let q = parse(&format!("resource:{}", quoted(r)))?;
            let (d, rows) = time(|| Ok(index.who(&q, TimeRange::default())?))?;
            if !warm {
                who.all.push(d);
                matched[1] += rows.len() as u64;
            }
        }
        for (i, w) in words.iter().enumerate() {
            if !warm && i != round % words.len() {
                continue;
            }
            let q = parse(&quoted(w))?;
            let (d, hits) = time(|| Ok(index.search(&q, TimeRange::default(), 100, 0)?))?;
            if !warm {
                text.all.push(d);
                matched[2] += hits.len() as u64;
            }
        }
        let (d, rows) = time(|| Ok(index.stats(&all, month, &[StatField::Action], None)?))?;
        if !warm {
            stats.all.push(d);
            matched[3] += rows.len() as u64;
        }
    }
    for t in [&mut timeline, &mut who, &mut text, &mut stats] {
        t.report();
    }
    println!(
        "  (mean results: {:.1} timeline rows, {:.1} actors per resource, {:.1} text hits, {:.0} actions)",
        matched[0] as f64 / runs.max(1) as f64,
        matched[1] as f64 / runs.max(1) as f64,
        matched[2] as f64 / runs.max(1) as f64,
        matched[3] as f64 / runs.max(1) as f64
    );
    if let Some(path) = queries_out {
        let v = json!({
            "latest_ms": latest,
            "since_ms": latest - 30 * DAY_MS,
            "actors": actors,
            "resources": resources,
            "words": words,
            "runs": runs,
            "acta": {
                "timeline_p95_ms": p95_ms(&timeline),
                "who_p95_ms": p95_ms(&who),
                "text_p95_ms": p95_ms(&text),
                "stats_p95_ms": p95_ms(&stats),
            },
        });
        std::fs::write(&path, serde_json::to_string_pretty(&v)?)?;
        println!("  questions written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The 95th percentile of `t`'s sorted timings, in milliseconds.
fn p95_ms(t: &Timings) -> f64 {
    percentile(&t.all, 95.0).as_secs_f64() * 1000.0
}
