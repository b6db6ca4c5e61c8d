//! Framing throughput on CloudTrail-shaped NDJSON (~1 KB lines), in memory.
//!
//! `cargo run --release -p acta-ingest --example frame_bench [records]`
//!
//! Prints, for the same input:
//! - the full framer (line splitting, copy into batches, JSON validation);
//! - the framer with validation off (`FramerConfig::check_json`), as the
//!   ingest pipeline runs it; the difference is what validation costs;
//! - a bare `memchr` line split copying into a buffer: the floor for framing
//!   without validation.

use std::error::Error;
use std::io::Cursor;
use std::time::{Duration, Instant};

use acta_ingest::framing::{Framer, FramerConfig, RecordBatch, Shape};

fn event(i: u64) -> String {
    let account = 100_000_000_000 + i % 977;
    let names = [
        "GetObject",
        "AssumeRole",
        "DescribeInstances",
        "PutBucketPolicy",
        "ConsoleLogin",
    ];
    let name = names[(i % names.len() as u64) as usize];
    format!(
        concat!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROA{i:016X}:session-{i}","#,
            r#""arn":"arn:aws:sts::{account}:assumed-role/Admin/session-{i}","accountId":"{account}","accessKeyId":"ASIA{i:016X}","#,
            r#""sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{i:016X}","arn":"arn:aws:iam::{account}:role/Admin","#,
            r#""accountId":"{account}","userName":"Admin"}}}}}},"#,
            r#""eventTime":"2024-08-02T09:{m:02}:{s:02}Z","eventSource":"s3.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","#,
            r#""sourceIPAddress":"203.0.113.{ip}","userAgent":"aws-cli/2.15.0","#,
            r#""requestParameters":{{"bucketName":"logs-{account}","key":"2024/08/02/file-{i}.json.gz"}},"#,
            r#""responseElements":null,"requestID":"{i:016X}","#,
            r#""eventID":"4723aee9-d1e5-4e32-b48c-{i:012x}","readOnly":true,"resources":[{{"type":"AWS::S3::Object","#,
            r#""ARN":"arn:aws:s3:::logs-{account}/file-{i}.json.gz"}}],"eventType":"AwsApiCall","managementEvent":false,"#,
            r#""recipientAccountId":"{account}","eventCategory":"Data","tlsDetails":{{"tlsVersion":"TLSv1.3"}}}}"#,
        ),
        i = i,
        account = account,
        name = name,
        m = (i / 60) % 60,
        s = i % 60,
        ip = i % 250,
    )
}

fn rate(label: &str, records: usize, bytes: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{label:<34} {:>9.0} records/s {:>8.1} MB/s  ({:.3} s)",
        records as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs
    );
}

/// Keeps the fastest of several timings.
#[derive(Default)]
struct Best(Option<Duration>);

impl Best {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let r = f();
        let elapsed = start.elapsed();
        self.0 = Some(self.0.map_or(elapsed, |b| b.min(elapsed)));
        r
    }

    fn get(&self) -> Duration {
        self.0.unwrap_or_default()
    }
}

/// Frames `input` completely; returns the number of records.
fn frame_all(input: &[u8], check_json: bool) -> Result<(usize, Option<Shape>), Box<dyn Error>> {
    let config = FramerConfig {
        check_json,
        ..FramerConfig::default()
    };
    let mut framer = Framer::new("bench", Cursor::new(input), config);
    let mut batch = RecordBatch::new();
    let mut n = 0;
    loop {
        batch.clear();
        let more = framer.next_batch(&mut batch, 4 << 20)?;
        n += batch.len();
        if !more {
            break;
        }
    }
    if framer.report().flagged != 0 {
        return Err("unexpected flagged records".into());
    }
    Ok((n, framer.report().shape))
}

fn main() -> Result<(), Box<dyn Error>> {
    let count: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 500_000,
    };
    let rounds = 5;
    let records: Vec<String> = (0..count as u64).map(event).collect();
    let mut input = Vec::new();
    for rec in &records {
        input.extend_from_slice(rec.as_bytes());
        input.push(b'\n');
    }
    println!(
        "{count} records, {:.1} MB, {:.0} bytes/record on average; best of {rounds} runs",
        input.len() as f64 / 1e6,
        input.len() as f64 / count as f64
    );

    // The same events as one single-line envelope (a CloudTrail S3 file):
    // the structural scanner instead of memchr finds the boundaries.
    let mut envelope = b"{\"Records\":[".to_vec();
    envelope.extend_from_slice(records.join(",").as_bytes());
    envelope.extend_from_slice(b"]}");

    // Interleaved rounds, so that every variant sees the same machine load.
    let (mut framer, mut unchecked, mut floor, mut scanned, mut scanned_unchecked) = (
        Best::default(),
        Best::default(),
        Best::default(),
        Best::default(),
        Best::default(),
    );
    for _ in 0..rounds {
        if framer.time(|| frame_all(&input, true))? != (count, Some(Shape::Lines)) {
            return Err("NDJSON framing went wrong".into());
        }
        if unchecked.time(|| frame_all(&input, false))? != (count, Some(Shape::Lines)) {
            return Err("NDJSON framing went wrong".into());
        }
        let lines = floor.time(|| {
            let mut out = Vec::with_capacity(5 << 20);
            let mut lines = 0;
            let mut rest = &input[..];
            while let Some(i) = memchr::memchr(b'\n', rest) {
                if out.len() > 4 << 20 {
                    out.clear();
                }
                out.extend_from_slice(&rest[..i]);
                lines += 1;
                rest = &rest[i + 1..];
            }
            lines
        });
        if lines != count {
            return Err("split went wrong".into());
        }
        if scanned.time(|| frame_all(&envelope, true))? != (count, Some(Shape::Envelope)) {
            return Err("envelope framing went wrong".into());
        }
        if scanned_unchecked.time(|| frame_all(&envelope, false))? != (count, Some(Shape::Envelope))
        {
            return Err("envelope framing went wrong".into());
        }
    }
    let (framer, unchecked, floor, scanned, scanned_unchecked) = (
        framer.get(),
        unchecked.get(),
        floor.get(),
        scanned.get(),
        scanned_unchecked.get(),
    );
    let validation = framer.saturating_sub(unchecked);

    rate(
        "NDJSON: framer (split+copy+validate)",
        count,
        input.len(),
        framer,
    );
    rate(
        "NDJSON: framer, validation off",
        count,
        input.len(),
        unchecked,
    );
    rate("memchr split + copy alone", count, input.len(), floor);
    println!(
        "validation is {:.0}% of the NDJSON framer's time",
        100.0 * validation.as_secs_f64() / framer.as_secs_f64()
    );
    rate("envelope line: framer", count, envelope.len(), scanned);
    rate(
        "envelope line: framer, validation off",
        count,
        envelope.len(),
        scanned_unchecked,
    );
    Ok(())
}
