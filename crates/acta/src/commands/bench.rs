//! `acta bench`: throughput, acknowledgement latency, memory, verify speed and storage overhead,
//! measured on generated CloudTrail-shaped events through the same code paths as the commands.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use acta_ledger::{Appender, AppenderOptions, Batch, SourceName, VerifyOptions, now_ms, verify};
use anyhow::{Context as _, Result};
use indicatif::ProgressBar;

use crate::cli::BenchIngestArgs;
use crate::datadir::DataDir;
use crate::pipeline::{self, Options};
use crate::store::Store;
use crate::synth::Synth;
use crate::units;
use acta_ingest::formats::{Format, Registry};

/// `acta bench generate`.
pub fn generate(events: u64, seed: u64, output: &Path) -> Result<ExitCode> {
    let sink: Box<dyn Write> = if output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            File::create(output)
                .with_context(|| format!("cannot create `{}`", output.display()))?,
        )
    };
    write_events(events, seed, sink)?;
    Ok(ExitCode::SUCCESS)
}

/// `acta bench parse`: parse + normalise + serialise, one thread, per input.
pub fn parse(events: u64, seconds: f64, inputs: &[PathBuf]) -> Result<ExitCode> {
    use acta_ingest::formats::{InputNormaliser, Record};
    use acta_ingest::framing::{Framer, FramerConfig, RecordBatch, open_input};

    let registry = Registry::standard();
    let mut groups: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    let mut synth = Synth::new(1, events);
    let generated: Vec<Vec<u8>> = (0..events)
        .map(|i| {
            let mut buf = Vec::with_capacity(2048);
            synth.event(i, &mut buf);
            buf
        })
        .collect();
    groups.push(("generated CloudTrail".into(), generated));
    for path in inputs {
        let mut framer = Framer::new(
            path.display().to_string(),
            open_input(path)?,
            FramerConfig {
                quoted_newlines: acta_ingest::framing::QuotedNewlines::for_path(path),
                ..FramerConfig::default()
            },
        );
        let mut batch = RecordBatch::new();
        let mut records = Vec::new();
        loop {
            batch.clear();
            let more = framer.next_batch(&mut batch, 1 << 20)?;
            records.extend(batch.iter().map(|(b, _)| b.to_vec()));
            if !more {
                break;
            }
        }
        groups.push((path.display().to_string(), records));
    }
    println!(
        "acta bench parse: parse + normalise, and + serialise to JSON (without raw_data, as the event store keeps it), and for index rows alone (without unmapped, as ingest normalises), one thread"
    );
    for (name, records) in &groups {
        if records.is_empty() {
            continue;
        }
        let mut input = InputNormaliser::new(None);
        let choice = input.prepare(&registry, records.iter().map(Vec::as_slice));
        let bytes: usize = records.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(1 << 20);
        // Three passes: parse + normalise into the event model; the same plus serialising each
        // event to JSON, as the event store does; and normalising for index rows alone, as ingest
        // and the server do.
        let mut rates = [0f64; 3];
        let mut recognised = 0u64;
        let mut total = 0u64;
        let mut passes = 0u64;
        for (pass, rate) in rates.iter_mut().enumerate() {
            let mut done = 0u64;
            let started = Instant::now();
            while started.elapsed().as_secs_f64() < seconds / 3.0 {
                for r in records {
                    let record = Record {
                        bytes: r,
                        received_at_ms: 0,
                    };
                    let n = if pass == 2 {
                        registry.normalise_row(&record, choice)
                    } else {
                        registry.normalise_lean(&record, choice)
                    };
                    if pass == 1
                        && let Some(e) = &n.event
                    {
                        out.clear();
                        e.write_json(&mut out)?;
                    }
                    recognised += u64::from(n.format.is_some());
                    total += 1;
                    done += 1;
                }
            }
            *rate = done as f64 / started.elapsed().as_secs_f64();
            passes = passes.max(done / records.len() as u64);
        }
        println!(
            "  {:<58} {:>9} events/s ({}/s), {:>9} events/s with JSON out, {:>9} events/s for rows  ({} records × {passes}, {} mean, format {}, {:.0}% recognised)",
            name,
            units::count(rates[0] as u64),
            units::bytes((rates[0] * bytes as f64 / records.len() as f64) as u64),
            units::count(rates[1] as u64),
            units::count(rates[2] as u64),
            records.len(),
            units::bytes((bytes / records.len()) as u64),
            input.format().map_or("none", |f| f.name()),
            100.0 * recognised as f64 / total.max(1) as f64,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn write_events(events: u64, seed: u64, sink: Box<dyn Write>) -> Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut synth = Synth::new(seed, events);
    let mut buf = Vec::with_capacity(2048);
    let mut bytes = 0u64;
    for i in 0..events {
        buf.clear();
        synth.event(i, &mut buf);
        buf.push(b'\n');
        bytes += buf.len() as u64;
        out.write_all(&buf)?;
    }
    out.flush()?;
    Ok(bytes)
}

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak-memory mark so that each phase is measured on its own.
fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

/// Bytes stored under `dir`, by top-level part: (apparent length, allocated blocks).
fn disk_usage(dir: &Path) -> Vec<(String, u64, u64)> {
    fn walk(p: &Path, acc: &mut (u64, u64)) {
        let Ok(meta) = fs::symlink_metadata(p) else {
            return;
        };
        if meta.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), acc);
                }
            }
        } else {
            acc.0 += meta.len();
            acc.1 += meta.blocks() * 512;
        }
    }
    let parts = [
        ("hash tiles", "log/tile/0"),
        ("entry bundles", "log/tile/entries"),
        ("payload segments", "payload"),
        ("journal", "journal"),
        ("checkpoint history", "checkpoints"),
    ];
    let mut out = Vec::new();
    for (label, rel) in parts {
        let mut acc = (0, 0);
        walk(&dir.join(rel), &mut acc);
        out.push((label.to_owned(), acc.0, acc.1));
    }
    // Higher tile levels.
    let mut acc = (0, 0);
    if let Ok(rd) = fs::read_dir(dir.join("log/tile")) {
        for e in rd.flatten() {
            let name = e.file_name();
            if name != "0" && name != "entries" {
                walk(&e.path(), &mut acc);
            }
        }
    }
    out.push(("upper tile levels".into(), acc.0, acc.1));
    out
}

/// Reads every file under `dir` so that it sits in the page cache.
fn warm_cache(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            warm_cache(&p);
        } else if let Ok(mut f) = File::open(&p) {
            let _ = std::io::copy(&mut f, &mut std::io::sink());
        }
    }
}

/// `acta bench ingest`.
pub fn ingest(data: &DataDir, args: BenchIngestArgs) -> Result<ExitCode> {
    let work = data.root().join(format!("bench-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("cannot create `{}`", work.display()))?;
    let result = run_bench(&work, &args);
    if !args.keep {
        let _ = fs::remove_dir_all(&work);
    } else {
        eprintln!("kept input and ledger in `{}`", work.display());
    }
    result
}

fn run_bench(work: &Path, args: &BenchIngestArgs) -> Result<ExitCode> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "acta bench ingest: {} generated CloudTrail-shaped events, {cores} cores",
        units::count(args.events)
    );

    // 1. Input.
    let input = work.join("events.ndjson");
    let t = Instant::now();
    let input_bytes = write_events(args.events, args.seed, Box::new(File::create(&input)?))?;
    // Written back before the clock starts, so the disk is not still busy with the input while
    // the ledger syncs.
    File::open(&input)?.sync_data()?;
    println!(
        "  input           {} NDJSON ({} mean per event), generated in {}",
        units::bytes(input_bytes),
        units::bytes(input_bytes / args.events.max(1)),
        units::duration(t.elapsed())
    );

    // 2. Ingest through the same pipeline as `acta ingest`, with fsync.
    reset_peak_rss();
    let data = DataDir::new(&work.join("data"));
    let ledger = data.open_ledger()?;
    let appender = Appender::start(ledger, AppenderOptions::default())?;
    let mut store = if args.no_index {
        None
    } else {
        Some(Store::open(data.root(), None)?)
    };
    let mut detector = if args.rules.is_empty() && args.detect.is_none() {
        None
    } else {
        let mut config = match &args.detect {
            Some(path) => crate::detection::Config::load(path)?,
            None => crate::detection::Config::default(),
        };
        config.rules.extend(args.rules.iter().cloned());
        Some(crate::detection::Detector::new(&config)?)
    };
    let opts = Options {
        source: Some(SourceName::new("cloudtrail")?),
        format: Some(Format::Cloudtrail),
        registry: Arc::new(Registry::standard()),
        max_record_bytes: 64 << 20,
        batch_bytes: 4 << 20,
        in_flight: pipeline::IN_FLIGHT,
        threads: cores,
        receipts: None,
        progress: ProgressBar::hidden(),
    };
    let started = Instant::now();
    let sink = pipeline::Sink::Ledger {
        detect: detector.as_mut().map(|detector| pipeline::Detect {
            detector,
            sinks: None,
            print: false,
        }),
        appender: &appender,
        store: store.as_mut(),
    };
    let summary = pipeline::run(sink, std::slice::from_ref(&input), opts)?;
    let checkpoint = appender.close()?;
    if let Some(store) = store {
        store.close()?;
    }
    if let Some(d) = &detector {
        let c = &d.counts;
        println!(
            "  detection       {} entries evaluated, {} alerts ({} Sigma, {} correlation, {} behaviour) appended as {} findings",
            units::count(c.evaluated),
            units::count(c.alerts()),
            units::count(c.sigma),
            units::count(c.correlations),
            units::count(c.anomalies),
            units::count(summary.findings),
        );
    }
    let total = started.elapsed();
    let ingest_rss = peak_rss();
    let rate = summary.entries as f64 / total.as_secs_f64();
    let mut lat = summary.ack_latencies.clone();
    lat.sort();
    println!(
        "  ingest          {} entries in {} = {} entries/s, {}/s of records (fsync per group commit, final checkpoint and sync included)",
        units::count(summary.entries),
        units::duration(total),
        units::count(rate as u64),
        units::bytes((summary.bytes as f64 / total.as_secs_f64()) as u64),
    );
    println!(
        "  ack latency     4 MiB batches at full speed: p50 {}  p99 {}  max {}",
        units::duration(percentile(&lat, 50.0)),
        units::duration(percentile(&lat, 99.0)),
        units::duration(percentile(&lat, 100.0)),
    );
    if let Some(rss) = ingest_rss {
        println!(
            "  peak memory     {} resident during ingest",
            units::bytes(rss)
        );
    }

    // 3. Storage beyond the payloads.
    let usage = disk_usage(&data.ledger_dir());
    let payload = summary.bytes;
    let (apparent, allocated): (u64, u64) =
        usage.iter().fold((0, 0), |a, u| (a.0 + u.1, a.1 + u.2));
    let n = summary.entries.max(1);
    println!(
        "  storage         {} apparent, {} allocated for {} of payload: {:.1} bytes per entry beyond the payload (allocated: {:.1})",
        units::bytes(apparent),
        units::bytes(allocated),
        units::bytes(payload),
        (apparent.saturating_sub(payload)) as f64 / n as f64,
        (allocated.saturating_sub(payload)) as f64 / n as f64,
    );
    for (label, a, b) in &usage {
        println!(
            "                    {label:<20} {:>12} apparent {:>12} allocated",
            units::bytes(*a),
            units::bytes(*b)
        );
    }

    // 4. Verify: first from disk (ingest leaves payloads out of the page cache), then again with
    // everything cached, which shows the CPU cost alone.
    let key = data.keys().load_verifier()?;
    for pass in ["from disk", "cached"] {
        if pass == "cached" {
            // Verification drops what it reads from the cache; read everything in first.
            warm_cache(&data.ledger_dir());
        }
        reset_peak_rss();
        let vopts = VerifyOptions::new(data.ledger_dir(), key.clone());
        let threads = vopts.threads;
        let report = verify(&vopts).map_err(|f| anyhow::anyhow!("verification failed: {f}"))?;
        let vrate = report.entries as f64 / report.elapsed.as_secs_f64();
        println!(
            "  verify {pass:<9} {} entries in {} = {} entries/s on {threads} threads ({} per core), {} checkpoints, {} resident",
            units::count(report.entries),
            units::duration(report.elapsed),
            units::count(vrate as u64),
            units::count((vrate / threads as f64) as u64),
            units::count(report.checkpoints),
            peak_rss().map(units::bytes).unwrap_or_default(),
        );
    }
    println!(
        "  checkpoint      {} entries, root {}",
        units::count(checkpoint.checkpoint.size),
        checkpoint.checkpoint.root
    );

    // 5. Acknowledgement latency at a fraction of the peak rate.
    if args.paced_fraction > 0.0 {
        let target = rate * args.paced_fraction;
        let lat = paced(work, &input, target)?;
        println!(
            "  paced ack       {} entries/s offered in 100-entry batches from 4 threads: p50 {}  p99 {}  max {} ({} batches)",
            units::count(target as u64),
            units::duration(percentile(&lat, 50.0)),
            units::duration(percentile(&lat, 99.0)),
            units::duration(percentile(&lat, 100.0)),
            units::count(lat.len() as u64),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Offers `rate` entries per second for about five seconds, in batches of 100 from four threads,
/// and returns each batch's acknowledgement latency, sorted.
fn paced(work: &Path, input: &PathBuf, rate: f64) -> Result<Vec<Duration>> {
    const BATCH: usize = 100;
    const THREADS: usize = 4;
    let records: Vec<Vec<u8>> =
        std::io::BufRead::lines(std::io::BufReader::new(File::open(input)?))
            .take(10_000)
            .map(|l| l.map(String::into_bytes))
            .collect::<Result<_, _>>()?;
    let records = Arc::new(records);
    let data = DataDir::new(&work.join("paced"));
    let appender = Arc::new(Appender::start(
        data.open_ledger()?,
        AppenderOptions::default(),
    )?);
    let source = SourceName::new("cloudtrail")?;
    let per_thread = rate / THREADS as f64 / BATCH as f64; // batches per second per thread
    let interval = Duration::from_secs_f64(1.0 / per_thread.max(1.0));
    let batches = ((per_thread * 5.0) as usize).max(10);
    let failed = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let (appender, records, source, failed) = (
            appender.clone(),
            records.clone(),
            source.clone(),
            failed.clone(),
        );
        handles.push(std::thread::spawn(move || -> Vec<Duration> {
            let mut lat = Vec::with_capacity(batches);
            let start = Instant::now() + interval.mul_f64(t as f64 / THREADS as f64);
            for b in 0..batches {
                let due = start + interval * b as u32;
                let now = Instant::now();
                if due > now {
                    // Pacing a load generator is the one place a sleep is the point.
                    #[allow(clippy::disallowed_methods)]
                    std::thread::sleep(due - now);
                }
                let mut batch = Batch::new(source.clone(), now_ms());
                for k in 0..BATCH {
                    let r = records
                        .get((b * BATCH + k + t * 997) % records.len().max(1))
                        .map(Vec::as_slice)
                        .unwrap_or(b"{}");
                    if batch.push(r).is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                }
                let sent = Instant::now();
                match appender.append(batch) {
                    Ok(r) => lat.push(r.acknowledged_at.saturating_duration_since(sent)),
                    Err(_) => failed.store(true, Ordering::Relaxed),
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().unwrap_or_default());
    }
    if let Ok(a) = Arc::try_unwrap(appender) {
        a.close()?;
    }
    anyhow::ensure!(!failed.load(Ordering::Relaxed), "paced appends failed");
    all.sort();
    Ok(all)
}

/// `acta bench sigma`: Sigma evaluation throughput on one thread.
pub fn sigma(rules: &Path, events: u64, seconds: f64) -> Result<ExitCode> {
    use acta_detect::{Event, RuleSet};

    let loaded = RuleSet::load_dir(rules)
        .with_context(|| format!("cannot read the rules directory `{}`", rules.display()))?;
    let set = loaded.rules;
    let cloudtrail = set
        .rules()
        .iter()
        .filter(|r| r.sources().contains(&"cloudtrail"))
        .count();
    let mut synth = Synth::new(1, events);
    let records: Vec<Vec<u8>> = (0..events)
        .map(|i| {
            let mut buf = Vec::with_capacity(2048);
            synth.event(i, &mut buf);
            buf
        })
        .collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    println!(
        "acta bench sigma: {} rules loaded from {} ({} unusable), {cloudtrail} for cloudtrail; {} generated events, {} mean; one thread",
        set.rules().len(),
        rules.display(),
        loaded.errors.len(),
        records.len(),
        units::bytes(bytes as u64 / records.len().max(1) as u64),
    );
    if records.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let timed = |label: &str, each: &dyn Fn(&[u8]) -> usize| {
        let mut done = 0u64;
        let mut matched = 0u64;
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < seconds {
            for r in &records {
                matched += each(r) as u64;
                done += 1;
            }
        }
        let rate = done as f64 / started.elapsed().as_secs_f64();
        println!(
            "  {label:<58} {:>9} events/s  ({} matches per 1,000 events)",
            units::count(rate as u64),
            matched * 1000 / done.max(1)
        );
    };
    timed("flatten the record only", &|r| {
        usize::from(Event::from_record(r).field("eventName").is_some())
    });
    timed("flatten the fields cloudtrail rules read", &|r| {
        usize::from(set.event_for("cloudtrail", r).field("eventName").is_some())
    });
    timed("flatten + the rules of its source (cloudtrail)", &|r| {
        set.matches_record("cloudtrail", r).len()
    });
    timed("flatten + every rule, whatever its log source", &|r| {
        let event = Event::from_record(r);
        set.rules()
            .iter()
            .filter(|rule| rule.matches(&event))
            .count()
    });
    Ok(ExitCode::SUCCESS)
}
