//! `acta`: who did what, when, where, and whether it was allowed — with proof.
//!
//! The command line over acta's ledger: `ingest` stores access-log records as tamper-evident
//! entries, `verify` re-audits the whole ledger offline, `proof` issues and checks inclusion
//! receipts, `key` shows the log's public key, and `bench` measures all of it.

mod cli;
mod commands;
mod datadir;
mod detection;
mod normalise;
mod pipeline;
mod serve;
// Alert delivery; `ingest` (and later `serve`) hand their alerts to it.
mod sinks;
mod store;
mod synth;
mod tokens;
mod units;

use std::process::ExitCode;

use clap::Parser as _;

// Parsing and normalising allocate many small strings per event; mimalloc serves them markedly
// faster than the system allocator (see BENCHMARKS.md, `acta bench parse`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        // Output piped into a program that stopped reading (`| head`): nothing left to say.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("acta: {e:#}");
            ExitCode::from(commands::EXIT_ERROR)
        }
    }
}
