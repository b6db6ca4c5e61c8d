//! One module per subcommand.

mod bench;
mod bench_query;
mod bench_serve;
mod detect;
mod ingest;
mod investigate;
mod key;
mod proof;
mod rules;
mod token;
mod verify;

pub(crate) use bench_serve::BenchServeArgs;
pub(crate) use investigate::{
    entry_view, export_entries, export_plan, hit_json, open as open_index, parse_interval,
};

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{BenchCommand, Cli, Command, KeyCommand, RulesCommand, TokenCommand};
use crate::datadir::DataDir;

/// Exit status when a check fails (verification, receipt).
pub const EXIT_FAILED: u8 = 1;
/// Exit status when a command cannot run (bad usage, missing ledger or key).
pub const EXIT_ERROR: u8 = 2;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let data = DataDir::new(&cli.data_dir);
    match cli.command {
        Command::Ingest(args) => ingest::run(&data, args),
        Command::Formats => ingest::formats(),
        Command::Verify(args) => verify::run(&data, args),
        Command::Proof(args) => proof::run(&data, args),
        Command::Search(args) => investigate::search(&data, args),
        Command::Timeline(args) => investigate::timeline(&data, args),
        Command::Who(args) => investigate::who(&data, args),
        Command::Stats(args) => investigate::stats(&data, args),
        Command::Show(args) => investigate::show(&data, args),
        Command::Export(args) => investigate::export(&data, args),
        Command::Reindex(args) => investigate::reindex(&data, args),
        Command::Key {
            command: KeyCommand::Show,
        } => key::show(&data),
        Command::Detect(args) => detect::run(args),
        Command::Serve(args) => crate::serve::run(&data, args),
        Command::Token { command } => match command {
            TokenCommand::Create {
                role,
                name,
                expires,
            } => token::create(&data, &role, &name, expires.as_deref()),
            TokenCommand::List => token::list(&data),
            TokenCommand::Revoke { id } => token::revoke(&data, &id),
        },
        Command::Rules {
            command: RulesCommand::Test { dir },
        } => rules::test(&dir),
        Command::Bench {
            command: BenchCommand::Ingest(args),
        } => bench::ingest(&data, args),
        Command::Bench {
            command: BenchCommand::Serve(args),
        } => bench_serve::run(&data, args),
        Command::Bench {
            command: BenchCommand::Query { runs, questions },
        } => bench_query::run(&data, runs, questions),
        Command::Bench {
            command:
                BenchCommand::Parse {
                    events,
                    seconds,
                    inputs,
                },
        } => bench::parse(events, seconds, &inputs),
        Command::Bench {
            command:
                BenchCommand::Sigma {
                    rules,
                    events,
                    seconds,
                },
        } => bench::sigma(&rules, events, seconds),
        Command::Bench {
            command:
                BenchCommand::Generate {
                    events,
                    seed,
                    output,
                },
        } => bench::generate(events, seed, &output),
    }
}

/// A progress bar on standard error when it is a terminal and not silenced.
pub fn progress_bar(total: Option<u64>, quiet: bool, template: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
