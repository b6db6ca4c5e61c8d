//! `acta verify`.

use std::process::ExitCode;
use std::sync::Arc;

use acta_ledger::{VerifyOptions, lock_shared, verify};
use anyhow::Result;

use crate::cli::VerifyArgs;
use crate::datadir::DataDir;
use crate::units;

pub fn run(data: &DataDir, args: VerifyArgs) -> Result<ExitCode> {
    if !data.has_ledger() {
        eprintln!(
            "acta: no ledger in `{}`; pass --data-dir or set ACTA_DATA_DIR",
            data.root().display()
        );
        return Ok(ExitCode::from(super::EXIT_ERROR));
    }
    let pinned = args.key.is_some();
    let key = match data.verifier_key(args.key.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("acta: {e:#}");
            return Ok(ExitCode::from(super::EXIT_ERROR));
        }
    };
    // Hold a shared lock: a writer cannot start while the ledger is read, and a running one is
    // reported instead of producing a moving target.
    let _lock = match lock_shared(&data.ledger_dir()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("acta: {e}");
            return Ok(ExitCode::from(super::EXIT_ERROR));
        }
    };
    let mut opts = VerifyOptions::new(data.ledger_dir(), key);
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    let bar = super::progress_bar(
        None,
        args.quiet,
        "{spinner} verified {pos} of {len} entries {per_sec}",
    );
    let cb = bar.clone();
    opts.progress = Some(Arc::new(move |done, total| {
        cb.set_length(total);
        cb.set_position(done);
    }));
    let result = verify(&opts);
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            for n in &report.notes {
                eprintln!("acta: note: {n}");
            }
            if !pinned {
                eprintln!(
                    "acta: note: checked against the data directory's own key file; pass --key with the log's published key to pin it"
                );
            }
            let latest = report
                .latest
                .as_ref()
                .map(|c| {
                    format!(
                        "latest {} entries, root {}",
                        units::count(c.checkpoint.size),
                        c.checkpoint.root
                    )
                })
                .unwrap_or_else(|| "no checkpoint".into());
            println!(
                "ok: {} entries from {} source{}, {} payload bytes re-hashed, {} checkpoints checked ({latest}) in {} ({})",
                units::count(report.entries),
                report.sources.len(),
                if report.sources.len() == 1 { "" } else { "s" },
                units::bytes(report.payload_bytes),
                units::count(report.checkpoints),
                units::duration(report.elapsed),
                units::rate(report.entries, report.elapsed),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            Ok(ExitCode::from(super::EXIT_FAILED))
        }
    }
}
