//! `acta ingest`.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;

use acta_ledger::{Appender, AppenderOptions, SourceName};
use anyhow::{Context as _, Result};

use crate::cli::IngestArgs;
use crate::datadir::DataDir;
use crate::pipeline::{self, Options};
use crate::units;

pub fn run(data: &DataDir, args: IngestArgs) -> Result<ExitCode> {
    let source = SourceName::new(&args.source)?;
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
    let ledger = data.open_ledger()?;
    let appender = Appender::start(ledger, AppenderOptions::default())?;
    let opts = Options {
        source,
        max_record_bytes: usize::try_from(args.max_record_size).unwrap_or(64 << 20),
        batch_bytes: usize::try_from(args.batch_size).unwrap_or(4 << 20),
        in_flight: 4,
        receipts,
        progress: progress.clone(),
    };
    let result = pipeline::run(&appender, &args.inputs, opts);
    // Close (final checkpoint) even when the pipeline failed, so acknowledged work is published.
    let closed = appender.close();
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
    let flagged: u64 = summary.flagged.values().sum();
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
    if flagged > 0 {
        let reasons: Vec<String> = summary
            .flagged
            .iter()
            .map(|(r, n)| format!("{} {r}", units::count(*n)))
            .collect();
        line.push_str(&format!("; flagged: {}", reasons.join(", ")));
    }
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
    let failed =
        !summary.failures.is_empty() || summary.rejected_count > 0 || close_error.is_some();
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
