//! `acta proof`.

use std::io::Read as _;
use std::process::ExitCode;

use acta_ledger::read::TreeReader;
use acta_ledger::receipt::InclusionReceipt;
use anyhow::{Context as _, Result, bail};

use crate::cli::ProofArgs;
use crate::datadir::DataDir;

pub fn run(data: &DataDir, args: ProofArgs) -> Result<ExitCode> {
    if let Some(path) = &args.verify {
        return check(data, &args, path);
    }
    let Some(index) = args.index else {
        bail!("give an entry index, or --verify FILE")
    };
    if !data.has_ledger() {
        bail!(
            "no ledger in `{}`; pass --data-dir or set ACTA_DATA_DIR",
            data.root().display()
        );
    }
    // Read-only: proofs come from the stored files, so they can be made while acta writes.
    let tree = TreeReader::open(&data.ledger_dir())?;
    let Some((checkpoint, note)) = tree.latest_checkpoint()? else {
        bail!("the ledger has no signed checkpoint yet");
    };
    let size = checkpoint.size;
    if index >= size {
        bail!(
            "entry {index} does not exist: the latest checkpoint covers {size} entries (0 to {})",
            size.saturating_sub(1)
        );
    }
    let envelope = tree.envelope(index)?;
    let proof = acta_ledger::proof::inclusion_proof(&tree, index, size).map_err(|e| match e {
        acta_ledger::proof::ProofError::Source(e) => anyhow::anyhow!(e),
        other => anyhow::anyhow!(other.to_string()),
    })?;
    let receipt = InclusionReceipt {
        index,
        envelope,
        proof,
        checkpoint: note,
    };
    print!("{}", receipt.to_text());
    Ok(ExitCode::SUCCESS)
}

fn check(data: &DataDir, args: &ProofArgs, path: &std::path::Path) -> Result<ExitCode> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the receipt from standard input")?;
        s
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the receipt `{}`", path.display()))?
    };
    let key = data.verifier_key(args.key.as_deref())?;
    let record = match &args.record {
        Some(p) => Some(
            std::fs::read(p)
                .with_context(|| format!("cannot read the record `{}`", p.display()))?,
        ),
        None => None,
    };
    let receipt = match InclusionReceipt::parse(&text) {
        Ok(r) => r,
        Err(e) => {
            println!("FAILED: {e}");
            return Ok(ExitCode::from(super::EXIT_FAILED));
        }
    };
    match receipt.verify(&key, record.as_deref()) {
        Ok(v) => {
            println!(
                "ok: entry {} (source {}, seq {}, {} bytes, SHA-256 {}) is in the {}-entry tree signed by {}{}",
                v.index,
                v.source,
                v.seq,
                v.payload_len,
                v.payload_sha256.to_hex(),
                v.tree_size,
                key.name(),
                if v.record_checked {
                    "; the record matches"
                } else {
                    ""
                },
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(super::EXIT_FAILED))
        }
    }
}
