//! Crash safety: `acta ingest` is killed with SIGKILL at random moments; after each kill the
//! ledger is reopened (recovery), every entry the child had acknowledged must be present with its
//! exact record, and `acta verify` must pass.
//!
//! The child reports each acknowledged batch on standard output (`--receipts -`), flushed, so the
//! test knows exactly what was acknowledged before the kill. Set `ACTA_CRASH_KILLS` for more kills
//! and `ACTA_CRASH_SEED` to replay a run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acta_ledger::keys::KeyFiles;
use acta_ledger::read::Entries;
use acta_ledger::{Ledger, LedgerOptions};

const RECORDS: usize = 20_000;

fn record(n: usize) -> String {
    format!(
        "{{\"n\":{n},\"user\":\"u{}\",\"pad\":\"{}\"}}",
        n % 97,
        "x".repeat(n % 700)
    )
}

struct Run {
    /// `(first entry, first record, count)` of each acknowledged batch.
    acked: Vec<(u64, u64, u64)>,
    /// When each acknowledgement was read, from the start of the run.
    ack_times: Vec<Duration>,
    elapsed: Duration,
    code: Option<i32>,
}

fn ingest(data: &Path, input: &Path, kill_after: Option<Duration>) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_acta"))
        .arg("--data-dir")
        .arg(data)
        .args([
            "ingest",
            "--quiet",
            "--batch-size",
            "65536",
            "--receipts",
            "-",
        ])
        .arg(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut times = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // A line cut by the kill was never fully reported: ignore it.
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            acked.push((
                v["entries"][0].as_u64().unwrap(),
                v["records"][0].as_u64().unwrap(),
                v["entries"][1].as_u64().unwrap(),
            ));
            times.push(started.elapsed());
        }
        (acked, times)
    });
    if let Some(after) = kill_after {
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(after);
        let _ = child.kill(); // SIGKILL
    }
    let status = child.wait().unwrap();
    let (acked, ack_times) = reader.join().unwrap();
    Run {
        acked,
        ack_times,
        elapsed: started.elapsed(),
        code: status.code(),
    }
}

/// Reopens (recovering), then checks every acknowledged entry against its input record.
fn check(data: &Path, expected: &BTreeMap<u64, u64>, records: &[String], what: &str) -> u64 {
    let (key, _) = KeyFiles::in_dir(&data.join("keys"))
        .load_or_create()
        .unwrap();
    let ledger = Ledger::open(&data.join("ledger"), key, LedgerOptions::default())
        .unwrap_or_else(|e| panic!("{what}: reopening failed: {e}"));
    let size = ledger.size();
    ledger.close().unwrap();
    let mut entries = Entries::open(&data.join("ledger")).unwrap();
    let mut next = 0u64;
    for (&index, &rec) in expected {
        assert!(
            index < size,
            "{what}: acknowledged entry {index} lost (ledger holds {size})"
        );
        let e = loop {
            let e = entries.next().unwrap().unwrap();
            next += 1;
            if e.index == index {
                break e;
            }
        };
        assert_eq!(
            e.payload,
            records[rec as usize].as_bytes(),
            "{what}: entry {index}"
        );
    }
    let _ = next;
    let v = Command::new(env!("CARGO_BIN_EXE_acta"))
        .arg("--data-dir")
        .arg(data)
        .args(["verify", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        v.status.code(),
        Some(0),
        "{what}: verify failed: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    size
}

#[test]
fn kill_9_during_ingest_loses_no_acknowledged_entry() {
    let kills: u32 = std::env::var("ACTA_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("ACTA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash seed {seed} (ACTA_CRASH_SEED={seed} replays the timing choices)");
    let mut rng = seed | 1;
    let mut rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let d = tempfile::tempdir().unwrap();
    let records: Vec<String> = (0..RECORDS).map(record).collect();
    let input = d.path().join("input.ndjson");
    std::fs::write(
        &input,
        records.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();

    // One uninterrupted run measures when an ingest writes and acknowledges, so kills land
    // around that span (opening and closing the search index take time of their own).
    let calm = d.path().join("calm");
    let run = ingest(&calm, &input, None);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.acked.iter().map(|a| a.2).sum::<u64>(), RECORDS as u64);
    let first_ack = run.ack_times.first().copied().unwrap_or_default();
    let last_ack = run.ack_times.last().copied().unwrap_or(run.elapsed);
    let window_start = first_ack.mul_f64(0.5);
    let window = (last_ack - window_start).mul_f64(1.3);
    eprintln!(
        "calm run: {:?}, acknowledgements from {first_ack:?} to {last_ack:?} ({} batches)",
        run.elapsed,
        run.acked.len()
    );

    let mut killed_mid_run = 0;
    let mut killed_mid_write = 0;
    let mut data = d.path().join("data-0");
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for k in 0..kills {
        // A fresh directory now and then keeps each check quick while still covering ledgers
        // that hold many runs' worth of entries, several bundles and journal segments.
        if k % 12 == 0 {
            data = d.path().join(format!("data-{k}"));
            expected.clear();
        }
        let after = window_start + window.mul_f64((rand() % 1000) as f64 / 1000.0);
        let run = ingest(&data, &input, Some(after));
        if run.code.is_none() {
            killed_mid_run += 1;
            let acked: u64 = run.acked.iter().map(|a| a.2).sum();
            if acked > 0 && acked < RECORDS as u64 {
                killed_mid_write += 1;
            }
        }
        for (first, rec, count) in &run.acked {
            for j in 0..*count {
                expected.insert(first + j, rec + j);
            }
        }
        let what = format!(
            "kill {k} after {after:?} ({} batches acknowledged)",
            run.acked.len()
        );
        check(&data, &expected, &records, &what);
    }
    // Most kills must really have interrupted a running ingest, and many must have landed while
    // batches were being written and acknowledged, or the test proves little.
    eprintln!(
        "{killed_mid_run} of {kills} kills interrupted a run, {killed_mid_write} between acknowledgements"
    );
    assert!(
        killed_mid_run * 2 >= kills,
        "only {killed_mid_run} of {kills} kills interrupted a run"
    );
    assert!(
        killed_mid_write * 4 >= kills,
        "only {killed_mid_write} of {kills} kills landed between acknowledgements"
    );

    // The search index is derived: after the last kill, the next search indexes whatever the
    // ledger holds beyond it, and finds every entry exactly once.
    let size = Entries::open(&data.join("ledger")).unwrap().len();
    let o = Command::new(env!("CARGO_BIN_EXE_acta"))
        .arg("--data-dir")
        .arg(&data)
        .args(["search", "-o", "ndjson", "--limit", "1000000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut indices: Vec<u64> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..size).collect::<Vec<_>>());
}
