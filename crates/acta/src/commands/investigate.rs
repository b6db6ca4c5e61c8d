//! `acta search`, `timeline`, `who`, `stats`, `show`, `export` and `reindex`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use acta_index::export::ExportWriter;
use acta_index::{Hit, Index, StatField, TimeRange};
use acta_ingest::formats::Registry;
use acta_ingest::formats::finding::SOURCE as FINDING_SOURCE;
use acta_ledger::read::{Entries, TreeReader};
use acta_query::Query;
use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::cli::{
    Bounds, ExportArgs, ExportFormat, Form, ReindexArgs, SearchArgs, ShowArgs, StatsArgs,
    TimelineArgs, WhoArgs,
};
use crate::datadir::DataDir;
use crate::store::{Store, index_dir, renormalise, store_dir};
use crate::units;

/// The query and time range of a command, checked.
struct Asked {
    query: Query,
    range: TimeRange,
}

fn asked(text: &str, inv: &Bounds) -> Result<Asked> {
    let mut text = text.to_owned();
    if let Some(path) = &inv.query_file {
        let from_file = if path.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("cannot read the query from standard input")?;
            s
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the query file `{}`", path.display()))?
        };
        text = match (text.trim().is_empty(), from_file.trim().is_empty()) {
            (_, true) => text,
            (true, false) => from_file,
            (false, false) => format!("({text}) ({from_file})"),
        };
    }
    let text = text.as_str();
    let query = acta_query::parse(text).map_err(|e| anyhow!("{}", e.render(text)))?;
    let now = acta_ledger::now_ms() as i64;
    let since = inv
        .since
        .as_deref()
        .map(|s| acta_query::parse_time(s, now).map_err(|e| anyhow!("--since: {e}")))
        .transpose()?;
    let until = inv
        .until
        .as_deref()
        .map(|s| acta_query::parse_time(s, now).map_err(|e| anyhow!("--until: {e}")))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        bail!(
            "--since ({}) is not before --until ({})",
            units::timestamp(s),
            units::timestamp(u)
        );
    }
    Ok(Asked {
        query,
        range: TimeRange { since, until },
    })
}

/// Opens the index for reading, indexing first any ledger entries it lacks.
pub(crate) fn open(data: &DataDir) -> Result<Index> {
    if !data.has_ledger() {
        bail!(
            "no ledger in `{}`; ingest something first, or pass --data-dir / set ACTA_DATA_DIR",
            data.root().display()
        );
    }
    let stored = Entries::open(&data.ledger_dir())?.len();
    let dir = index_dir(data.root());
    let behind = match Index::open(&dir, None) {
        Ok(index) => index.next()? < stored,
        Err(_) => true,
    };
    if behind {
        // Index what the ledger holds beyond the index, unless another acta is writing it (an
        // ingest in progress): then answer from what it has committed so far.
        match Store::open(data.root(), None) {
            Ok(mut store) => {
                let caught = store.catch_up(
                    &data.ledger_dir(),
                    &Registry::standard(),
                    &super::progress_bar(None, false, "{spinner} indexing {pos}/{len} entries"),
                )?;
                if caught > 0 {
                    eprintln!(
                        "acta: indexed {} entries missing from the search index",
                        units::count(caught)
                    );
                }
                store.close()?;
            }
            Err(e) if is_lock_busy(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let index = Index::open(&dir, None)?;
    index.reload()?;
    let covered = index.next()?;
    if covered < stored {
        eprintln!(
            "acta: the search index covers entries 0 to {} of {}; another acta is indexing the rest",
            covered.saturating_sub(1),
            stored
        );
    }
    Ok(index)
}

/// Whether `e` is the index refusing a second writer.
fn is_lock_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<acta_index::IndexError>(),
            Some(acta_index::IndexError::Busy { .. })
        )
    })
}

pub(crate) fn hit_json(h: &Hit) -> Value {
    json!({
        "index": h.index,
        "time": units::timestamp(h.time),
        "time_ms": h.time,
        "source": h.source,
        "actor": h.actor,
        "action": h.action,
        "resource": h.resource,
        "outcome": h.outcome,
        "ip": h.ip.map(|i| i.to_string()),
        "status_code": h.status_code,
        "class_uid": h.class_uid,
    })
}

const HIT_COLUMNS: [&str; 8] = [
    "time", "source", "actor", "action", "resource", "outcome", "ip", "index",
];

fn hit_cells(h: &Hit) -> Vec<String> {
    vec![
        units::timestamp(h.time),
        h.source.clone(),
        h.actor.clone().unwrap_or_default(),
        h.action.clone().unwrap_or_default(),
        h.resource.clone().unwrap_or_default(),
        h.outcome.clone(),
        h.ip.map(|i| i.to_string()).unwrap_or_default(),
        h.index.to_string(),
    ]
}

fn print_hits(hits: &[Hit], form: Form, out: &mut dyn Write) -> Result<()> {
    match form {
        Form::Json => {
            let all: Vec<Value> = hits.iter().map(hit_json).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
        }
        Form::Ndjson => {
            for h in hits {
                writeln!(out, "{}", hit_json(h))?;
            }
        }
        Form::Csv => {
            write_csv(out, &HIT_COLUMNS)?;
            for h in hits {
                write_csv(out, &hit_cells(h))?;
            }
        }
        Form::Table => {
            let rows: Vec<Vec<String>> = hits.iter().map(hit_cells).collect();
            write_table(out, &HIT_COLUMNS, &rows)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `acta search`.
pub fn search(data: &DataDir, args: SearchArgs) -> Result<ExitCode> {
    let a = asked(&args.query.join(" "), &args.inv.bounds)?;
    let index = open(data)?;
    let (total, hits) = index.page(&a.query, a.range, args.inv.limit, args.offset)?;
    let mut out = std::io::stdout().lock();
    print_hits(&hits, args.inv.output, &mut out)?;
    if args.inv.output == Form::Table {
        let shown = if hits.is_empty() {
            "no events".to_owned()
        } else {
            format!(
                "events {}–{}",
                units::count(args.offset as u64 + 1),
                units::count(args.offset as u64 + hits.len() as u64)
            )
        };
        eprintln!(
            "{shown} of {} matching, newest first{}",
            units::count(total),
            if (args.offset + hits.len()) < total as usize {
                format!("; next page: --offset {}", args.offset + hits.len())
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `v` as a quoted query value (the query language's `\"` and `\\` escapes).
pub(super) fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `acta timeline --actor X`.
pub fn timeline(data: &DataDir, args: TimelineArgs) -> Result<ExitCode> {
    let mut text = format!("actor:{}", quoted(&args.actor));
    if !args.query.is_empty() {
        text = format!("{text} ({})", args.query.join(" "));
    }
    let a = asked(&text, &args.inv.bounds)?;
    let index = open(data)?;
    let total = index.count(&a.query, a.range)?;
    // The latest events of the period, shown oldest first.
    let mut hits = index.search(&a.query, a.range, args.inv.limit, 0)?;
    hits.reverse();
    let by_source = index.stats(&a.query, a.range, &[StatField::Source], None)?;
    let mut out = std::io::stdout().lock();
    if args.inv.output == Form::Table {
        let sources: Vec<String> = by_source
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.values.first().cloned().flatten().unwrap_or_default(),
                    units::count(r.count)
                )
            })
            .collect();
        writeln!(
            out,
            "{}: {} events from {} source{}{}{}",
            args.actor,
            units::count(total),
            by_source.len(),
            if by_source.len() == 1 { "" } else { "s" },
            if sources.is_empty() { "" } else { " — " },
            sources.join(", ")
        )?;
    }
    print_hits(&hits, args.inv.output, &mut out)?;
    if args.inv.output == Form::Table && (hits.len() as u64) < total {
        eprintln!(
            "the latest {} of {} events shown, oldest first; --limit shows more, --since/--until narrow the period",
            units::count(hits.len() as u64),
            units::count(total)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `acta who --resource Y`.
pub fn who(data: &DataDir, args: WhoArgs) -> Result<ExitCode> {
    let mut text = format!("resource:{}", quoted(&args.resource));
    if !args.query.is_empty() {
        text = format!("{text} ({})", args.query.join(" "));
    }
    let a = asked(&text, &args.inv.bounds)?;
    let index = open(data)?;
    let rows = index.who(&a.query, a.range)?;
    let mut out = std::io::stdout().lock();
    let top = |m: &std::collections::BTreeMap<String, u64>| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = m.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let value = |r: &acta_index::WhoRow| {
        json!({
            "actor": r.actor,
            "events": r.count,
            "failures": r.failures,
            "first": units::timestamp(r.first),
            "last": units::timestamp(r.last),
            "sources": r.sources,
            "actions": r.actions,
        })
    };
    let shown: Vec<&acta_index::WhoRow> = rows.iter().take(args.inv.limit).collect();
    match args.inv.output {
        Form::Json => {
            let all: Vec<Value> = shown.iter().map(|r| value(r)).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
        }
        Form::Ndjson => {
            for r in &shown {
                writeln!(out, "{}", value(r))?;
            }
        }
        form => {
            let columns = [
                "actor", "events", "failed", "first", "last", "sources", "actions",
            ];
            let cells: Vec<Vec<String>> = shown
                .iter()
                .map(|r| {
                    let list = |v: Vec<(String, u64)>| {
                        let n = v.len();
                        let mut s: Vec<String> = v
                            .into_iter()
                            .take(3)
                            .map(|(k, c)| {
                                format!("{} {c}", if k.is_empty() { "(none)" } else { &k })
                            })
                            .collect();
                        if n > 3 {
                            s.push(format!("+{} more", n - 3));
                        }
                        s.join(", ")
                    };
                    vec![
                        r.actor.clone().unwrap_or_else(|| "(none)".into()),
                        r.count.to_string(),
                        r.failures.to_string(),
                        units::timestamp(r.first),
                        units::timestamp(r.last),
                        list(top(&r.sources)),
                        list(top(&r.actions)),
                    ]
                })
                .collect();
            if form == Form::Csv {
                write_csv(&mut out, &columns)?;
                for c in &cells {
                    write_csv(&mut out, c)?;
                }
            } else {
                write_table(&mut out, &columns, &cells)?;
                eprintln!(
                    "{} actor{} touched {}{}",
                    units::count(rows.len() as u64),
                    if rows.len() == 1 { "" } else { "s" },
                    args.resource,
                    if rows.len() > shown.len() {
                        format!(" ({} shown; --limit shows more)", shown.len())
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `acta stats --by FIELD[,FIELD] [--interval 1h]`.
pub fn stats(data: &DataDir, args: StatsArgs) -> Result<ExitCode> {
    if args.alerts {
        return alert_stats(data, &args);
    }
    let by: Vec<StatField> = args
        .by
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<StatField>()
                .map_err(|e| anyhow!("--by: {e}"))
        })
        .collect::<Result<_>>()?;
    if by.is_empty() && args.interval.is_none() {
        bail!("--by needs at least one field, or give --interval");
    }
    let interval = args.interval.as_deref().map(parse_interval).transpose()?;
    let a = asked(&args.query.join(" "), &args.inv.bounds)?;
    let index = open(data)?;
    let rows = index.stats(&a.query, a.range, &by, interval)?;
    let total: u64 = index.count(&a.query, a.range)?;
    let mut columns: Vec<&str> = Vec::new();
    if interval.is_some() {
        columns.push("bucket");
    }
    columns.extend(by.iter().map(|f| f.name()));
    columns.push("count");
    let shown: Vec<&acta_index::StatRow> = rows.iter().take(args.inv.limit).collect();
    let mut out = std::io::stdout().lock();
    let cells = |r: &acta_index::StatRow| -> Vec<String> {
        let mut c = Vec::new();
        if let Some(b) = r.bucket {
            c.push(units::timestamp(b));
        }
        c.extend(r.values.iter().map(|v| v.clone().unwrap_or_default()));
        c.push(r.count.to_string());
        c
    };
    match args.inv.output {
        Form::Json | Form::Ndjson => {
            let values: Vec<Value> = shown
                .iter()
                .map(|r| {
                    let mut m = serde_json::Map::new();
                    if let Some(b) = r.bucket {
                        m.insert("bucket".into(), units::timestamp(b).into());
                    }
                    for (f, v) in by.iter().zip(&r.values) {
                        m.insert(f.name().into(), v.clone().into());
                    }
                    m.insert("count".into(), r.count.into());
                    Value::Object(m)
                })
                .collect();
            if args.inv.output == Form::Json {
                writeln!(out, "{}", serde_json::to_string_pretty(&values)?)?;
            } else {
                for v in values {
                    writeln!(out, "{v}")?;
                }
            }
        }
        Form::Csv => {
            write_csv(&mut out, &columns)?;
            for r in &shown {
                write_csv(&mut out, &cells(r))?;
            }
        }
        Form::Table => {
            let rows_cells: Vec<Vec<String>> = shown.iter().map(|r| cells(r)).collect();
            write_table(&mut out, &columns, &rows_cells)?;
            eprintln!(
                "{} events matching, {} group{}{}",
                units::count(total),
                units::count(rows.len() as u64),
                if rows.len() == 1 { "" } else { "s" },
                if rows.len() > shown.len() {
                    format!(" ({} shown; --limit shows more)", shown.len())
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `1h`, `15m`, `1d`, `30s`, `1w` in milliseconds.
pub(crate) fn parse_interval(s: &str) -> Result<i64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow!("--interval `{s}`: expected a number and a unit, e.g. 1h"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => bail!("--interval `{s}`: unit must be s, m, h, d or w"),
    };
    if n <= 0 {
        bail!("--interval `{s}` must be positive");
    }
    n.checked_mul(unit_ms)
        .ok_or_else(|| anyhow!("--interval `{s}` is too long"))
}

/// One stored entry, read back from the ledger and normalised again.
pub(crate) struct Entry {
    index: u64,
    source: String,
    received_at_ms: i64,
    raw: Vec<u8>,
    event: Option<acta_event::Event>,
    note: Option<String>,
}

impl Entry {
    /// The entry as a line of `acta export --format ndjson`: index, source and normalised event.
    pub(crate) fn export_line(&self) -> Value {
        let event = self
            .event
            .as_ref()
            .map(|ev| serde_json::from_str::<Value>(&ev.to_json()).unwrap_or(Value::Null));
        json!({"index": self.index, "source": self.source, "event": event})
    }
}

/// What an export of a query covers: the entries it finds under the latest signed checkpoint, in
/// ledger order, at most `limit` of them.
pub(crate) struct ExportPlan {
    pub wanted: Vec<u64>,
    pub checkpoint: acta_ledger::Checkpoint,
    /// The checkpoint's signed note.
    pub note: String,
}

pub(crate) fn export_plan(
    data: &DataDir,
    index: &Index,
    query: &acta_query::Query,
    range: TimeRange,
    limit: usize,
) -> Result<ExportPlan> {
    let tree = TreeReader::open(&data.ledger_dir())?;
    let Some((checkpoint, note)) = tree.latest_checkpoint()? else {
        bail!("the ledger has no signed checkpoint yet");
    };
    let mut wanted = index.indices(query, range)?;
    wanted.retain(|i| *i < checkpoint.size);
    wanted.truncate(limit);
    Ok(ExportPlan {
        wanted,
        checkpoint,
        note,
    })
}

/// Hands the entries `wanted` (ascending ledger indices), normalised again, to `each` in order,
/// until it returns `false`.
pub(crate) fn export_entries(
    data: &DataDir,
    registry: &Registry,
    wanted: &[u64],
    each: &mut dyn FnMut(Entry) -> Result<bool>,
) -> Result<()> {
    let Some(first) = wanted.first() else {
        return Ok(());
    };
    let wanted_set: BTreeSet<u64> = wanted.iter().copied().collect();
    let mut left = wanted.len();
    for e in Entries::open(&data.ledger_dir())?.starting_at(*first) {
        let e = e?;
        if !wanted_set.contains(&e.index) {
            continue;
        }
        let entry = normalise_entry(registry, e.index, &e.envelope, e.payload)?;
        left -= 1;
        if !each(entry)? || left == 0 {
            break;
        }
    }
    Ok(())
}

fn normalise_entry(
    registry: &Registry,
    index: u64,
    envelope: &[u8],
    raw: Vec<u8>,
) -> Result<Entry> {
    let r = renormalise(registry, index, envelope, &raw, true)?;
    Ok(Entry {
        index,
        source: r.source,
        received_at_ms: r.received_at_ms,
        event: r.normalised.event.map(|e| *e),
        note: r.normalised.note.map(|n| n.summary_reason()),
        raw,
    })
}

/// One ledger entry with everything `acta show` and the API's event page give: the normalised
/// event, the raw record, and its inclusion proof checked against the verifier key.
pub(crate) struct EntryView {
    entry: Entry,
    event_json: Option<Value>,
    receipt: acta_ledger::receipt::InclusionReceipt,
    tree_size: u64,
    root: acta_ledger::Hash,
    verified: Option<Result<(), String>>,
    status: String,
}

impl EntryView {
    /// Whether the proof and the record were checked and hold.
    pub(crate) fn failed(&self) -> bool {
        matches!(self.verified, Some(Err(_)))
    }

    /// The JSON form (`acta show --json`, `GET /api/v1/events/{index}`).
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "index": self.entry.index,
            "source": self.entry.source,
            "received_at": units::timestamp(self.entry.received_at_ms),
            "event": self.event_json,
            "note": self.entry.note,
            "raw": String::from_utf8_lossy(&self.entry.raw),
            "receipt": self.receipt.to_text(),
            // Hashes in base64, as the checkpoint and the receipt write them.
            "proof": {
                "tree_size": self.tree_size,
                "root": self.root.to_string(),
                "leaf_hash": acta_ledger::hash::leaf_hash(&self.receipt.envelope).to_string(),
                "hashes": self.receipt.proof.iter().map(ToString::to_string).collect::<Vec<_>>(),
            },
            "verified": matches!(self.verified, Some(Ok(()))),
            "verification": self.status,
        })
    }
}

/// Entry `index` of the ledger with its proof to the latest checkpoint; `None` when the latest
/// checkpoint does not cover it. Read-only: it can run while acta writes.
pub(crate) fn entry_view(
    data: &DataDir,
    registry: &Registry,
    index: u64,
) -> Result<Option<EntryView>> {
    let tree = TreeReader::open(&data.ledger_dir())?;
    let Some((checkpoint, note)) = tree.latest_checkpoint()? else {
        return Ok(None);
    };
    if index >= checkpoint.size {
        return Ok(None);
    }
    let envelope = tree.envelope(index)?;
    let raw = Entries::open(&data.ledger_dir())?
        .starting_at(index)
        .find_map(|e| match e {
            Ok(e) if e.index == index => Some(Ok(e.payload)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .ok_or_else(|| anyhow!("entry {index} is missing from the ledger files"))??;
    let entry = normalise_entry(registry, index, &envelope, raw)?;
    let proof = acta_ledger::proof::inclusion_proof(&tree, index, checkpoint.size).map_err(
        |e| match e {
            acta_ledger::proof::ProofError::Source(e) => anyhow!(e),
            other => anyhow!(other.to_string()),
        },
    )?;
    let receipt = acta_ledger::receipt::InclusionReceipt {
        index,
        envelope,
        proof,
        checkpoint: note,
    };
    let key = data.verifier_key(None).ok();
    let verified = key.as_ref().map(|k| {
        receipt
            .verify(k, Some(&entry.raw))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut event_json = entry
        .event
        .as_ref()
        .map(|e| serde_json::from_str::<Value>(&e.to_json()).unwrap_or(Value::Null));
    if let Some(Value::Object(m)) = event_json.as_mut() {
        m.remove("raw_data");
    }
    let status = match (&verified, &key) {
        (Some(Ok(())), Some(k)) => format!(
            "verified: in the {}-entry tree signed by {}, and the record matches",
            checkpoint.size,
            k.name()
        ),
        (Some(Err(e)), _) => format!("NOT VERIFIED: {e}"),
        _ => "not checked: no verifier key in the data directory".into(),
    };
    Ok(Some(EntryView {
        entry,
        event_json,
        receipt,
        tree_size: checkpoint.size,
        root: checkpoint.root,
        verified,
        status,
    }))
}

/// `acta show INDEX`.
pub fn show(data: &DataDir, args: ShowArgs) -> Result<ExitCode> {
    if !data.has_ledger() {
        bail!("no ledger in `{}`", data.root().display());
    }
    let Some(view) = entry_view(data, &Registry::standard(), args.index)? else {
        let size = TreeReader::open(&data.ledger_dir())?
            .latest_checkpoint()?
            .map_or(0, |(c, _)| c.size);
        bail!(
            "entry {} does not exist: the latest checkpoint covers {size} entries (0 to {})",
            args.index,
            size.saturating_sub(1)
        );
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&view.to_json())?)?;
    } else {
        let entry = &view.entry;
        writeln!(
            out,
            "entry {} · source {} · received {}",
            entry.index,
            entry.source,
            units::timestamp(entry.received_at_ms)
        )?;
        writeln!(out, "\n── normalised event")?;
        match &view.event_json {
            Some(v) => writeln!(out, "{}", serde_json::to_string_pretty(v)?)?,
            None => writeln!(
                out,
                "(none: {})",
                entry.note.as_deref().unwrap_or("not an event")
            )?,
        }
        writeln!(out, "\n── raw record ({} bytes)", entry.raw.len())?;
        writeln!(out, "{}", String::from_utf8_lossy(&entry.raw))?;
        writeln!(out, "\n── inclusion proof ({})", view.status)?;
        write!(out, "{}", view.receipt.to_text())?;
    }
    Ok(if view.failed() {
        ExitCode::from(super::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `acta export QUERY --format ndjson|csv|parquet`.
pub fn export(data: &DataDir, args: ExportArgs) -> Result<ExitCode> {
    let text = args.query.join(" ");
    let a = asked(&text, &args.bounds)?;
    let index = open(data)?;
    let ExportPlan {
        wanted,
        checkpoint,
        note,
    } = export_plan(data, &index, &a.query, a.range, usize::MAX)?;
    // Parquet: the investigation fields, the time of receipt and the raw record of each entry.
    let mut parquet = match args.format {
        ExportFormat::Parquet => {
            let Some(path) = &args.output else {
                bail!("--format parquet needs an output file: -o FILE")
            };
            let metadata = vec![
                (
                    "acta.checkpoint.size".to_owned(),
                    checkpoint.size.to_string(),
                ),
                (
                    "acta.checkpoint.root".to_owned(),
                    checkpoint.root.to_string(),
                ),
                ("acta.checkpoint".to_owned(), note.clone()),
                ("acta.query".to_owned(), text),
            ];
            Some(ExportWriter::create(path, &metadata)?)
        }
        _ => None,
    };
    let registry = Registry::standard();
    let mut out: Box<dyn Write> = match &args.output {
        _ if parquet.is_some() => Box::new(std::io::sink()),
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create `{}`", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut exported = 0u64;
    if args.format == ExportFormat::Csv {
        write_csv(&mut out, &EXPORT_COLUMNS)?;
    }
    // `wanted` lies under the checkpoint (`export_plan`).
    export_entries(data, &registry, &wanted, &mut |entry| {
        if let Some(w) = parquet.as_mut() {
            let mut row = crate::store::Prepared::new(
                &entry.source,
                entry.event.as_ref(),
                entry.received_at_ms,
            )
            .row;
            row.index = entry.index;
            w.push(&row, entry.received_at_ms, &entry.raw)?;
        } else if args.format == ExportFormat::Ndjson {
            writeln!(out, "{}", entry.export_line())?;
        } else {
            let row = crate::store::Prepared::new(
                &entry.source,
                entry.event.as_ref(),
                entry.received_at_ms,
            )
            .row;
            write_csv(
                &mut out,
                &[
                    entry.index.to_string().as_str(),
                    &units::timestamp(row.time),
                    &row.source,
                    row.actor.as_deref().unwrap_or_default(),
                    row.action.as_deref().unwrap_or_default(),
                    row.service.as_deref().unwrap_or_default(),
                    row.resource().unwrap_or_default(),
                    row.outcome,
                    row.ip.as_deref().unwrap_or_default(),
                    row.account.as_deref().unwrap_or_default(),
                    row.region.as_deref().unwrap_or_default(),
                ],
            )?;
        }
        exported += 1;
        Ok(true)
    })?;
    out.flush()?;
    if let Some(w) = parquet {
        w.finish()?;
    }
    finish_export(&args, exported, &checkpoint, note)
}

/// Writes the checkpoint beside the export and says what was exported.
fn finish_export(
    args: &ExportArgs,
    exported: u64,
    checkpoint: &acta_ledger::Checkpoint,
    note: String,
) -> Result<ExitCode> {
    if let Some(p) = &args.output {
        let side = p.with_extension(
            p.extension()
                .map(|e| format!("{}.checkpoint", e.to_string_lossy()))
                .unwrap_or_else(|| "checkpoint".into()),
        );
        std::fs::write(&side, note.as_bytes())
            .with_context(|| format!("cannot write `{}`", side.display()))?;
        eprintln!(
            "exported {} events to {} against checkpoint {} ({}), saved beside it as {}",
            units::count(exported),
            p.display(),
            units::count(checkpoint.size),
            checkpoint.root,
            side.display()
        );
    } else {
        eprintln!(
            "exported {} events against checkpoint {} ({})",
            units::count(exported),
            units::count(checkpoint.size),
            checkpoint.root
        );
    }
    Ok(ExitCode::SUCCESS)
}

const EXPORT_COLUMNS: [&str; 11] = [
    "index", "time", "source", "actor", "action", "service", "resource", "outcome", "ip",
    "account", "region",
];

/// `acta reindex`.
pub fn reindex(data: &DataDir, args: ReindexArgs) -> Result<ExitCode> {
    if !data.has_ledger() {
        bail!("no ledger in `{}`", data.root().display());
    }
    let dir = index_dir(data.root());
    let full_text = match args.full_text.as_deref() {
        Some(s) => Some(s.parse().map_err(|e: String| anyhow!("--full-text: {e}"))?),
        None => Index::open(&dir, None).ok().map(|i| i.full_text()),
    };
    Index::clear(&store_dir(data.root()))?;
    let started = std::time::Instant::now();
    let mut store = Store::open(data.root(), full_text)?;
    let n = store.catch_up(
        &data.ledger_dir(),
        &Registry::standard(),
        &super::progress_bar(
            None,
            args.quiet,
            "{spinner} reindexing {pos}/{len} entries [{bar:30}] {per_sec} eta {eta}",
        ),
    )?;
    store.close()?;
    println!(
        "indexed {} entries in {} ({})",
        units::count(n),
        units::duration(started.elapsed()),
        units::rate(n, started.elapsed())
    );
    Ok(ExitCode::SUCCESS)
}

fn write_csv<S: AsRef<str>>(out: &mut dyn Write, cells: &[S]) -> Result<()> {
    let line: Vec<String> = cells
        .iter()
        .map(|c| {
            let c = c.as_ref();
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.to_owned()
            }
        })
        .collect();
    writeln!(out, "{}", line.join(","))?;
    Ok(())
}

/// Longest cell shown in a terminal table, in characters.
const MAX_CELL: usize = 60;

fn write_table(out: &mut dyn Write, columns: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let cut = |s: &str| -> String {
        let one_line: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if one_line.chars().count() > MAX_CELL {
            let mut t: String = one_line.chars().take(MAX_CELL - 1).collect();
            t.push('…');
            t
        } else {
            one_line
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(w.saturating_sub(c.chars().count()) + 2));
            }
        }
        s.trim_end().to_owned()
    };
    writeln!(
        out,
        "{}",
        line(columns.iter().map(|c| c.to_uppercase()).collect())
    )?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    // Before any summary on standard error.
    out.flush()?;
    Ok(())
}

/// `acta stats --alerts`: alerts raised in the period and the mean time to insight.
fn alert_stats(data: &DataDir, args: &StatsArgs) -> Result<ExitCode> {
    let mut text = format!("source:{FINDING_SOURCE}");
    let asked_text = args.query.join(" ");
    if !asked_text.trim().is_empty() {
        text = format!("{text} AND ({asked_text})");
    }
    let a = asked(&text, &args.inv.bounds)?;
    let index = open(data)?;
    let wanted = index.indices(&a.query, a.range)?;
    let wanted_set: BTreeSet<u64> = wanted.iter().copied().collect();
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_severity: BTreeMap<(u8, String), u64> = BTreeMap::new();
    let mut by_analytic: BTreeMap<(String, String), u64> = BTreeMap::new();
    let (mut insight, mut detection, mut timed) = (0i128, 0i128, 0i128);
    if let Some(first) = wanted.first() {
        for e in Entries::open(&data.ledger_dir())?.starting_at(*first) {
            let e = e?;
            if e.index > *wanted.last().unwrap_or(&0) {
                break;
            }
            if !wanted_set.contains(&e.index) {
                continue;
            }
            let Ok(f) = serde_json::from_slice::<Value>(&e.payload) else {
                continue;
            };
            let info = &f["finding_info"];
            let kind = info["types"][0].as_str().unwrap_or("unknown").to_owned();
            *by_kind.entry(kind).or_default() += 1;
            let sev = f["severity_id"].as_u64().unwrap_or(0);
            let sev_name = f["severity"].as_str().unwrap_or("Unknown").to_owned();
            *by_severity
                .entry((u8::try_from(sev).unwrap_or(0), sev_name))
                .or_default() += 1;
            let analytic = (
                info["analytic"]["uid"].as_str().unwrap_or("").to_owned(),
                info["title"].as_str().unwrap_or("").to_owned(),
            );
            *by_analytic.entry(analytic).or_default() += 1;
            let t = &f["unmapped"]["acta"];
            if let (Some(ev), Some(ing), Some(al)) = (
                t["event_time"].as_i64(),
                t["ingest_time"].as_i64(),
                t["alert_time"].as_i64(),
            ) {
                insight += i128::from(al) - i128::from(ev);
                detection += i128::from(al) - i128::from(ing);
                timed += 1;
            }
        }
    }
    let total: u64 = by_kind.values().sum();
    let mean = |sum: i128| (timed > 0).then(|| i64::try_from(sum / timed).unwrap_or(i64::MAX));
    let mut analytics: Vec<_> = by_analytic.into_iter().collect();
    analytics.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    analytics.truncate(args.inv.limit);
    let mut out = std::io::stdout().lock();
    match args.inv.output {
        Form::Table => {
            writeln!(out, "alerts: {}", units::count(total))?;
            let kinds: Vec<String> = by_kind
                .iter()
                .map(|(k, n)| format!("{k} {}", units::count(*n)))
                .collect();
            if !kinds.is_empty() {
                writeln!(out, "by kind: {}", kinds.join(", "))?;
                let sevs: Vec<String> = by_severity
                    .iter()
                    .rev()
                    .map(|((_, s), n)| format!("{s} {}", units::count(*n)))
                    .collect();
                writeln!(out, "by severity: {}", sevs.join(", "))?;
            }
            if let (Some(i), Some(d)) = (mean(insight), mean(detection)) {
                writeln!(
                    out,
                    "mean time to insight: {} from the event, {} from its receipt by acta",
                    human_ms(i),
                    human_ms(d)
                )?;
            }
            if !analytics.is_empty() {
                writeln!(out, "\n{:>7}  {:<38}  TITLE", "ALERTS", "RULE OR DETECTOR")?;
                for ((uid, title), n) in &analytics {
                    writeln!(out, "{:>7}  {uid:<38}  {title}", units::count(*n))?;
                }
            }
        }
        _ => {
            let v = json!({
                "alerts": total,
                "by_kind": by_kind,
                "by_severity": by_severity.iter().map(|((_, s), n)| (s.clone(), *n)).collect::<BTreeMap<_, _>>(),
                "mean_time_to_insight_ms": mean(insight),
                "mean_detection_latency_ms": mean(detection),
                "analytics": analytics.iter().map(|((uid, title), n)| json!({"uid": uid, "title": title, "alerts": n})).collect::<Vec<_>>(),
            });
            writeln!(out, "{v}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A duration in milliseconds, for people.
fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    match ms.unsigned_abs() {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}
