//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// acta — access auditing with a tamper-evident trail.
///
/// acta stores every access-log record it is given (CloudTrail, GitHub, GitLab, Kubernetes audit,
/// sshd/sudo, pgaudit, any JSON) byte for byte in an append-only ledger: an RFC 6962 Merkle tree
/// in the C2SP tlog-tiles layout, with Ed25519-signed checkpoints. Anyone holding the log's public
/// key can re-audit the whole ledger offline with `acta verify`.
#[derive(Debug, Parser)]
#[command(name = "acta", version, max_term_width = 100)]
pub struct Cli {
    /// Directory holding acta's data (ledger and keys); created on first write.
    #[arg(
        long,
        global = true,
        env = "ACTA_DATA_DIR",
        default_value = "./acta-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store records from files or standard input in the ledger, and their normalised events.
    ///
    /// Each record becomes one entry, kept byte for byte: each line of NDJSON or text, each
    /// element of a JSON array, each event of a CloudTrail `{"Records":[…]}` file or a Kubernetes
    /// `EventList`. Gzip input is read transparently. The format of each input is detected (see
    /// `acta formats`) and each record is normalised into an OCSF event, kept in the data
    /// directory's event store. Records no parser understands are stored all the same, and counted
    /// per reason. Entries are acknowledged only once they are on disk and covered by a signed
    /// checkpoint.
    ///
    /// `--dry-run -o ndjson` prints the normalised events instead (one JSON object a line, in input
    /// order) and stores nothing.
    Ingest(IngestArgs),

    /// List the input formats acta reads (the names `--format` takes).
    Formats,

    /// Re-audit the whole ledger offline: every entry, payload, tile and checkpoint.
    ///
    /// Exits 0 with a one-line summary when the ledger is intact, 1 naming the first bad entry
    /// and what is wrong, 2 when it cannot run (no ledger, no key).
    Verify(VerifyArgs),

    /// Print an inclusion receipt for an entry, or check one.
    ///
    /// The receipt (C2SP tlog-proof text) holds the entry's envelope, the Merkle inclusion proof
    /// and the signed checkpoint: a third party checks it with the log's public key alone.
    Proof(ProofArgs),

    /// Show the log's signing key (made on first use).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },

    /// Measure acta on generated CloudTrail-shaped events.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files to read (`-` for standard input); `.gz` content is detected and decompressed.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Source name recorded with each entry (a-z, 0-9, '.', '_', '-'). Default: the input's
    /// detected format (`cloudtrail`, `k8s-audit`…), or `raw` when none is recognised.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,

    /// Read every input as this format instead of detecting it (`acta formats` lists them).
    #[arg(long, value_name = "NAME")]
    pub format: Option<String>,

    /// A TOML mapping for JSON records of another source (see docs/events/json.md); repeatable.
    /// Records matching a mapping are read as format `json` with it.
    #[arg(long, value_name = "FILE")]
    pub mapping: Vec<PathBuf>,

    /// Normalise and print, store nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: output form. `ndjson` prints one event a line; `summary` only the counts.
    #[arg(short, long, value_enum, default_value_t = OutputForm::Ndjson, requires = "dry_run")]
    pub output: OutputForm,

    /// Threads normalising records (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: Option<u64>,

    /// Largest record stored, in bytes (at most 1 GiB); longer records are reported and skipped.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_record_size: u64,

    /// Record bytes per batch: each batch is acknowledged (and reported with --receipts) as a
    /// whole; smaller batches give finer receipts, larger ones more throughput.
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub batch_size: u64,

    /// Append one JSON line per acknowledged batch to FILE: which input records were stored as
    /// which entries, and the checkpoint covering them (for resuming after an interruption).
    #[arg(long, value_name = "FILE")]
    pub receipts: Option<PathBuf>,

    /// Do not show a progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// How `--dry-run` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputForm {
    Ndjson,
    Summary,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The log's verifier key (`<name>+<id>+<key>`), or a file holding it. Defaults to the data
    /// directory's own `keys/log.pub`; pass the key you obtained independently to pin it.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<String>,

    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Do not show a progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["index", "verify"]))]
pub struct ProofArgs {
    /// Index of the entry to prove (0-based).
    pub index: Option<u64>,

    /// Check the receipt in FILE (`-` for standard input) instead of making one.
    #[arg(long, value_name = "FILE", conflicts_with = "index")]
    pub verify: Option<PathBuf>,

    /// With --verify: the log's verifier key or a file holding it (default: the data directory's).
    #[arg(long, value_name = "PUBKEY", requires = "verify")]
    pub key: Option<String>,

    /// With --verify: the original record, to check that the receipt is for exactly these bytes.
    #[arg(long, value_name = "FILE", requires = "verify")]
    pub record: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print the verifier key (signed-note form) that auditors use with `acta verify --key`.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Measure ingest throughput, acknowledgement latency, memory, verify throughput and storage
    /// overhead on generated ~1 KB CloudTrail-shaped events.
    Ingest(BenchIngestArgs),
    /// Measure parse + normalise throughput on one core, per input format: generated
    /// CloudTrail-shaped events, and each FILE given (its records repeated in memory).
    Parse {
        /// Generated CloudTrail events to parse.
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        /// Minimum time spent on each input, in seconds.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Real samples to measure too (each file a group, format detected).
        #[arg(value_name = "FILE")]
        inputs: Vec<PathBuf>,
    },
    /// Write generated CloudTrail-shaped events as NDJSON (for timing `acta ingest` itself).
    Generate {
        /// Number of events.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (`-` for standard output).
        #[arg(short, long, default_value = "-")]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Number of events.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also measure acknowledgement latency at this fraction of the measured peak rate.
    #[arg(long, default_value_t = 0.5)]
    pub paced_fraction: f64,
    /// Keep the generated input and ledger (in the data directory's `bench/`) instead of removing them.
    #[arg(long)]
    pub keep: bool,
}
