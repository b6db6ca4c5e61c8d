//! `acta ingest` and `acta formats`.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;

use acta_ingest::formats::access::SOURCE as ACCESS_SOURCE;
use acta_ingest::formats::finding::SOURCE as FINDING_SOURCE;
use acta_ingest::formats::mapping::Mapping;
use acta_ingest::formats::{Format, Registry};
use acta_ledger::{Appender, AppenderOptions, SourceName};
use anyhow::{Context as _, Result};

use crate::cli::{IngestArgs, OutputForm};
use crate::datadir::DataDir;
use crate::detection::{Config, Detector};
use crate::pipeline::{self, Options, Sink, Summary};
use crate::sinks::Sinks;
use crate::store::Store;
use crate::units;

/// `acta formats`.
pub fn formats() -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for f in Format::ALL {
        writeln!(out, "{:<15} {}", f.name(), f.description())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// How long, after the last batch, alerts may still take to reach their sinks.
const SINK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn run(data: &DataDir, args: IngestArgs) -> Result<ExitCode> {
    let source = args.source.as_deref().map(SourceName::new).transpose()?;
    let format = args
        .format
        .as_deref()
        .map(str::parse::<Format>)
        .transpose()?;
    // acta's own alerts and access records are stored under these sources; no input may pass
    // as them.
    if args
        .source
        .as_deref()
        .is_some_and(Format::is_reserved_source)
        || format.is_some_and(Format::is_acta_own)
    {
        anyhow::bail!(
            "`{FINDING_SOURCE}` and `{ACCESS_SOURCE}` are reserved for the records acta writes itself; choose another source or format"
        );
    }
    let mut mappings = Vec::new();
    for path in &args.mapping {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the mapping `{}`", path.display()))?;
        mappings.push(
            Mapping::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("mapping `{}`: {e}", path.display()))?,
        );
    }
    let registry = Arc::new(Registry::with_mappings(mappings));
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| usize::try_from(t).unwrap_or(1),
    );
    let receipts: Option<Box<dyn Write>> = match &args.receipts {
        Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::stdout())),
        Some(p) => Some(Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open the receipts file `{}`", p.display()))?,
        )),
        None => None,
    };
    // Plain files give a byte total for the progress bar; stdin and gzip do not.
    let total: Option<u64> = args
        .inputs
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        })
        .sum();
    let progress = super::progress_bar(
        total,
        args.quiet,
        "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} eta {eta}",
    );
    let opts = Options {
        source,
        format,
        registry: registry.clone(),
        max_record_bytes: usize::try_from(args.max_record_size).unwrap_or(64 << 20),
        batch_bytes: usize::try_from(args.batch_size).unwrap_or(4 << 20),
        in_flight: pipeline::IN_FLIGHT,
        threads,
        receipts,
        progress: progress.clone(),
    };
    if args.dry_run {
        return dry_run(&args, opts, &progress);
    }
    // Detection's configuration, rules and sinks are checked before anything is stored.
    let mut detector = None;
    let mut sinks = None;
    if args.detect.is_some() || !args.rules.is_empty() {
        let mut config = match &args.detect {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        config.rules.extend(args.rules.iter().cloned());
        detector = Some(Detector::new(&config)?);
        if !config.sink.is_empty() {
            sinks = Some(Sinks::start(&config.sink)?);
        }
    }
    let ledger = data.open_ledger()?;
    let mut store = if args.no_index {
        None
    } else {
        Some(Store::open(data.root(), None)?)
    };
    let appender = Appender::start(ledger, AppenderOptions::default())?;
    // Entries the index lacks (a crash after the ledger acknowledged a batch, a removed index)
    // are indexed first.
    if let Some(store) = store.as_mut() {
        let caught_up = store.catch_up(
            &data.ledger_dir(),
            &registry,
            &super::progress_bar(
                None,
                args.quiet,
                "{spinner} indexing earlier entries {pos}/{len}",
            ),
        )?;
        if caught_up > 0 {
            eprintln!(
                "acta: indexed {} earlier entries missing from the search index",
                units::count(caught_up)
            );
        }
    }
    // The behavioural detectors learn from every entry already stored.
    if let Some(d) = detector.as_mut() {
        let replayed = d.replay(
            &data.ledger_dir(),
            &registry,
            &super::progress_bar(
                None,
                args.quiet,
                "{spinner} learning from earlier entries {pos}/{len}",
            ),
        )?;
        if replayed > 0 && !args.quiet {
            eprintln!(
                "acta: detectors learned from {} earlier entries",
                units::count(replayed)
            );
        }
    }
    let sink = Sink::Ledger {
        appender: &appender,
        store: store.as_mut(),
        detect: detector.as_mut().map(|detector| pipeline::Detect {
            detector,
            sinks: sinks.as_ref(),
            print: !args.quiet,
        }),
    };
    let result = pipeline::run(sink, &args.inputs, opts);
    let sink_reports = sinks.map(|s| s.finish(SINK_DEADLINE));
    // Close (final checkpoint) even when the pipeline failed, so acknowledged work is published.
    let closed = appender.close();
    // Everything acknowledged is searchable when ingest returns.
    let indexed = store.map_or(Ok(()), Store::close);
    progress.finish_and_clear();
    let summary = result?;
    // The final checkpoint from closing; if closing failed, the last one a receipt carried
    // (everything summarised was acknowledged under it).
    let close_error = closed.as_ref().err().map(ToString::to_string);
    let checkpoint = closed
        .ok()
        .or_else(|| summary.checkpoint.clone())
        .map(|c| {
            format!(
                "checkpoint {} ({})",
                units::count(c.checkpoint.size),
                c.checkpoint.root
            )
        })
        .unwrap_or_else(|| "no checkpoint".into());

    for line in summary
        .failures
        .iter()
        .chain(&summary.rejected)
        .chain(&summary.notes)
    {
        eprintln!("acta: {line}");
    }
    if summary.rejected_count > summary.rejected.len() as u64 {
        eprintln!(
            "acta: … and {} more records over the size limit",
            summary.rejected_count - summary.rejected.len() as u64
        );
    }
    report_counts(&summary);
    if let Some(d) = &detector {
        let c = &d.counts;
        let alerts = c.alerts();
        let mut line = format!(
            "detection: {} alert{} ({} Sigma, {} correlation, {} behaviour) over {} entries",
            units::count(alerts),
            if alerts == 1 { "" } else { "s" },
            units::count(c.sigma),
            units::count(c.correlations),
            units::count(c.anomalies),
            units::count(c.evaluated),
        );
        if alerts > 0 {
            let n = i128::from(alerts);
            line.push_str(&format!(
                "; mean time from receipt to alert {} ms",
                c.detection_ms / n
            ));
        }
        eprintln!("acta: {line}");
    }
    for r in sink_reports.iter().flatten() {
        if r.failed > 0 || r.dropped > 0 || r.pending > 0 || !args.quiet {
            eprintln!("acta: alert sink {r}");
        }
    }
    let mut line = format!(
        "stored {} entr{} ({}) from {} input{} in {} ({}); {checkpoint}",
        units::count(summary.entries),
        if summary.entries == 1 { "y" } else { "ies" },
        units::bytes(summary.bytes),
        summary.inputs,
        if summary.inputs == 1 { "" } else { "s" },
        units::duration(summary.elapsed),
        units::rate(summary.entries, summary.elapsed),
    );
    line.push_str(&formats_line(&summary));
    if summary.rejected_count > 0 {
        line.push_str(&format!(
            "; not stored: {} over the size limit",
            units::count(summary.rejected_count)
        ));
    }
    println!("{line}");
    if let Some(e) = &close_error {
        eprintln!(
            "acta: the entries above are stored, but the ledger could not be closed cleanly: {e}"
        );
    }
    let index_error = indexed.err();
    if let Some(e) = &index_error {
        eprintln!(
            "acta: the entries above are stored, but the search index could not be completed ({e:#}); the next ingest or `acta reindex` completes it"
        );
    }
    let failed = !summary.failures.is_empty()
        || summary.rejected_count > 0
        || close_error.is_some()
        || index_error.is_some();
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--dry-run`: normalise and print, store nothing.
fn dry_run(
    args: &IngestArgs,
    opts: Options,
    progress: &indicatif::ProgressBar,
) -> Result<ExitCode> {
    let stdout = std::io::stdout().lock();
    let mut out: Box<dyn Write> = match args.output {
        OutputForm::Ndjson => Box::new(BufWriter::with_capacity(1 << 20, stdout)),
        OutputForm::Summary => Box::new(std::io::sink()),
    };
    let summary = pipeline::run(Sink::Print(&mut *out), &args.inputs, opts);
    progress.finish_and_clear();
    let summary = summary?;
    drop(out);
    for line in summary
        .failures
        .iter()
        .chain(&summary.rejected)
        .chain(&summary.notes)
    {
        eprintln!("acta: {line}");
    }
    report_counts(&summary);
    eprintln!(
        "dry run: {} record{} read, {} event{} ({}), nothing stored{}",
        units::count(summary.entries),
        if summary.entries == 1 { "" } else { "s" },
        units::count(summary.printed),
        if summary.printed == 1 { "" } else { "s" },
        units::duration(summary.elapsed),
        formats_line(&summary),
    );
    let failed = !summary.failures.is_empty() || summary.rejected_count > 0;
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Records not normalised and records that are no events, one line per reason, on stderr.
fn report_counts(summary: &Summary) {
    for (reason, n) in &summary.flagged {
        eprintln!("acta: flagged {} (stored raw): {reason}", units::count(*n));
    }
    for (reason, n) in &summary.not_events {
        eprintln!("acta: {} not events: {reason}", units::count(*n));
    }
}

/// `; cloudtrail 300, k8s-audit 12; flagged 3` for the summary line.
fn formats_line(summary: &Summary) -> String {
    let mut s = String::new();
    if !summary.formats.is_empty() {
        let parts: Vec<String> = summary
            .formats
            .iter()
            .map(|(f, n)| format!("{f} {}", units::count(*n)))
            .collect();
        s.push_str(&format!("; normalised: {}", parts.join(", ")));
    }
    let flagged: u64 = summary.flagged.values().sum();
    if flagged > 0 {
        s.push_str(&format!("; flagged: {}", units::count(flagged)));
    }
    s
}
