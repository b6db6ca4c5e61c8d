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

    /// Search the stored events: newest first, as a table or for scripts.
    ///
    /// QUERY is acta's query language (docs/query.md): field terms such as `actor:alice`,
    /// `action:Delete*`, `resource:my-bucket`, `source:cloudtrail`, `ip:10.0.0.0/8`,
    /// `outcome:failure`, free text such as `"AccessDenied"`, combined with AND, OR, NOT and
    /// parentheses. No query lists everything.
    Search(SearchArgs),

    /// Everything an actor did, oldest first, with the source systems side by side.
    Timeline(TimelineArgs),

    /// Who touched a resource: one row per actor, with counts, sources and actions.
    Who(WhoArgs),

    /// Count events by field (actor, action, service, source, outcome, account, region,
    /// resource, status_code) and by time bucket.
    Stats(StatsArgs),

    /// One stored entry: its normalised event, the raw record, and its inclusion proof, checked.
    Show(ShowArgs),

    /// Export the events matching a query as NDJSON, CSV or Parquet, stating the checkpoint
    /// they were taken against.
    Export(ExportArgs),

    /// Rebuild the search index from the ledger.
    Reindex(ReindexArgs),

    /// Show the log's signing key (made on first use).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },

    /// Evaluate Sigma rules over files, storing nothing: one line per (rule, record) match, then
    /// one per correlation hit.
    ///
    /// Records are framed as `acta ingest` frames them (lines, JSON arrays, `{"Records":[…]}`,
    /// Kubernetes `EventList`s); each file's acta source is its detected format (`--source`
    /// overrides), and a rule applies to the sources its `logsource` names. `index` is the
    /// 0-based number of the record within its file.
    Detect(DetectArgs),

    /// Work with Sigma detection rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },

    /// Serve the data directory over HTTP: the search API (bearer tokens, see `acta token`),
    /// health, and the ledger's C2SP tlog-tiles read paths for third-party verifiers.
    ///
    /// On first start with no admin token, takes `ACTA_ADMIN_TOKEN` or creates one and prints it
    /// once. Stops on Ctrl-C or SIGTERM.
    Serve(ServeArgs),

    /// Manage the API tokens of `acta serve` (stored hashed in `<data-dir>/tokens.json`).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
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

    /// Store in the ledger only, leaving the search index and segments behind: for bulk loads
    /// at the ledger's full speed. The next command that searches (or `acta reindex`) indexes
    /// what is missing.
    #[arg(long, conflicts_with = "dry_run")]
    pub no_index: bool,
    /// Detect as entries are stored: Sigma rules (and correlations) in DIR, repeatable, plus the
    /// behavioural detectors. Alerts are appended to the ledger as OCSF Detection Findings
    /// (source `acta-finding`) and printed on standard error.
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    pub rules: Vec<PathBuf>,
    /// Detection configuration (TOML): `rules = [DIR…]`, `[behaviour…]` thresholds and learning
    /// periods, and `[[sink]]` destinations for alerts (webhook, slack, syslog, file). See
    /// docs/detect.md.
    #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
    pub detect: Option<PathBuf>,

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
pub enum RulesCommand {
    /// Load every Sigma rule (`*.yml`, `*.yaml`) under DIR and report each one that cannot be
    /// used, with its file, line and reason; then count the usable rules per acta source.
    ///
    /// Exits 0 when every rule is usable, 1 when some are not.
    Test {
        /// The directory of rules, read recursively.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print the verifier key (signed-note form) that auditors use with `acta verify --key`.
    Show,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port, printed on start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Server configuration (TOML): native receivers and their secrets, request limits. See
    /// docs/serve.md. Default: `<data-dir>/acta.toml` if present.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Serve HTTPS: the certificate chain (PEM, leaf first). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1). Needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Load the real samples acta ships (CloudTrail, Kubernetes, GitHub, GitLab, Linux,
    /// PostgreSQL; with their licences, under `<data-dir>/demo/`) into an empty data directory,
    /// with detection on by the bundled Sigma rules, and serve them.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (the only time it is shown).
    Create {
        /// Built in: `admin` (read, write, manage tokens), `auditor` (read) or `ingest`
        /// (write); any other role means what `<data-dir>/policies.cedar` grants it.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// A name to recognise the token by.
        #[arg(long, value_name = "NAME", default_value = "")]
        name: String,
        /// Lifetime, e.g. `90d`, `12h`; default: no expiry.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List the tokens: id, name, role, creation, expiry, status (never the secret).
    List,
    /// Revoke a token by id; `acta serve` refuses it from its next request on.
    Revoke {
        /// The token's id (the 12 hex digits after `acta_`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Measure ingest throughput, acknowledgement latency, memory, verify throughput and storage
    /// overhead on generated ~1 KB CloudTrail-shaped events.
    Ingest(BenchIngestArgs),
    /// Measure parse + normalise throughput on one core, per input format: generated
    /// CloudTrail-shaped events, and each FILE given (its records repeated in memory). Three
    /// passes: into the event model, the same serialised to JSON, and for index rows alone (what
    /// ingest does: no `unmapped` fields).
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
    /// Measure the investigation questions (actor timeline, who touched a resource, free text,
    /// counts by action) on the data directory's existing index, with questions sampled from
    /// the data.
    Query {
        /// Timed runs of each kind of question (after one warm-up pass).
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// Write the sampled questions (and acta's p95s) as JSON, for comparing another engine.
        #[arg(long, value_name = "FILE")]
        questions: Option<PathBuf>,
    },
    /// Measure Sigma evaluation on one core: generated CloudTrail-shaped events, each flattened
    /// once and tested against the rules of its source (and, for the worst case, against every
    /// rule whatever its log source).
    Sigma {
        /// The rules directory.
        #[arg(long, default_value = "rules/sigma")]
        rules: PathBuf,
        /// Generated CloudTrail events to evaluate.
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        /// Minimum time spent on each pass, in seconds.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    Serve(crate::commands::BenchServeArgs),
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
    /// Store without indexing, as `acta ingest --no-index`.
    #[arg(long)]
    pub no_index: bool,
    /// Detect while ingesting, as `acta ingest --rules DIR` (Sigma rules and correlations of
    /// DIR, plus the behavioural detectors); repeatable.
    #[arg(long, value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Detect while ingesting with this configuration, as `acta ingest --detect FILE` (sinks
    /// excepted: alerts go to the ledger only).
    #[arg(long, value_name = "FILE")]
    pub detect: Option<PathBuf>,
}

/// Output of the investigation commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Form {
    /// Aligned columns for reading.
    Table,
    /// One JSON array.
    Json,
    /// One JSON object a line.
    Ndjson,
    /// Comma-separated values with a header line.
    Csv,
}

/// The query source and time bounds shared by the investigation commands.
#[derive(Debug, Args)]
pub struct Bounds {
    /// Only events at or after this time: a duration back from now (`30d`, `12h`, `90m`) or a
    /// timestamp (`2026-11-01`, `2026-11-01T00:00:00Z`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only events before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Read (more of) the query from FILE (`-` for standard input), for queries too long for a
    /// command line, such as lists of thousands of indicators; combined with QUERY by AND.
    #[arg(long, value_name = "FILE")]
    pub query_file: Option<PathBuf>,
}

/// Options shared by the investigation commands that print results.
#[derive(Debug, Args)]
pub struct Investigate {
    #[command(flatten)]
    pub bounds: Bounds,

    /// Rows shown at most.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub limit: usize,

    /// Output form.
    #[arg(short, long, value_enum, default_value_t = Form::Table)]
    pub output: Form,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query (several words are joined with spaces).
    #[arg(value_name = "QUERY")]
    pub query: Vec<String>,

    /// Skip this many matching events (the next page).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: usize,

    #[command(flatten)]
    pub inv: Investigate,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The actor: a name, ARN, uid or email (matched whole, case-insensitively; `*` wildcards
    /// are not expanded here, use `acta search actor:…`).
    #[arg(long, value_name = "ACTOR")]
    pub actor: String,

    /// A further query to narrow the events.
    #[arg(value_name = "QUERY")]
    pub query: Vec<String>,

    #[command(flatten)]
    pub inv: Investigate,
}

#[derive(Debug, Args)]
pub struct WhoArgs {
    /// The resource: a uid, ARN or name (matched whole, case-insensitively).
    #[arg(long, value_name = "RESOURCE")]
    pub resource: String,

    /// A further query to narrow the events.
    #[arg(value_name = "QUERY")]
    pub query: Vec<String>,

    #[command(flatten)]
    pub inv: Investigate,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Report on alerts instead: how many were raised in the period (by kind, severity and
    /// rule or detector) and the mean time to insight, from the first event that raised each
    /// alert, and from its receipt, to the alert. The query narrows the alerts counted.
    #[arg(long)]
    pub alerts: bool,

    /// Fields to count by, comma-separated (e.g. `actor,action`).
    #[arg(long, default_value = "", value_name = "FIELD[,FIELD]")]
    pub by: String,

    /// Also count by time bucket of this length (`1h`, `15m`, `1d`).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,

    /// The query selecting the events counted.
    #[arg(value_name = "QUERY")]
    pub query: Vec<String>,

    #[command(flatten)]
    pub inv: Investigate,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Ledger index of the entry.
    pub index: u64,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Export file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One line per event: `{"index","source","event"}`, the full normalised event with `raw_data`.
    Ndjson,
    /// The investigation fields, one row per event.
    Csv,
    /// The investigation fields and the raw record, one row per event.
    Parquet,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The query selecting the events exported (none: everything).
    #[arg(value_name = "QUERY")]
    pub query: Vec<String>,

    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
    pub format: ExportFormat,

    /// Output file (required for parquet; default standard output). The signed checkpoint the
    /// export was taken against is written beside it as FILE.checkpoint.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub bounds: Bounds,
}

#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// What free text searches: `fields` (the event's strings; default), `raw` (the whole raw
    /// record too; several times slower to index) or `off`. Default: keep the current setting.
    #[arg(long, value_name = "MODE")]
    pub full_text: Option<String>,

    /// Do not show a progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Directory of Sigma rules and correlations, read recursively (e.g. `rules/sigma`);
    /// repeatable, the directories loaded as one set.
    #[arg(long, value_name = "DIR", required = true)]
    pub rules: Vec<PathBuf>,

    /// The acta source of every file (`cloudtrail`, `k8s-audit`, `syslog`…), instead of each
    /// file's detected format.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,

    /// Files to evaluate (`-` for standard input).
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,

    /// Output form: `ndjson` (one `{"rule","title","level","file","index"}` a match; a correlation
    /// hit adds `"correlation": true`, `type`, `group`, `count`, `start`, `end`, and the `file` and
    /// `indexes` of its records, with `files` when they span several) or `table`.
    #[arg(short, long, value_enum, default_value_t = DetectForm::Table)]
    pub output: DetectForm,
}

/// How `acta detect` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DetectForm {
    Table,
    Ndjson,
}
