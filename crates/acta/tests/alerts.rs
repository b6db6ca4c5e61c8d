//! Detection on the ingest path: alerts raised while `acta ingest` stores entries, appended to
//! the ledger as OCSF Detection Findings and searchable like any event.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{acta, testdata, text};
use serde_json::{Value, json};

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn ndjson(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The Stratus Red Team CloudTrail samples.
fn stratus() -> Vec<PathBuf> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(testdata("cloudtrail/stratus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    inputs.sort();
    inputs
}

fn rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/sigma")
}

/// The findings in the store: (kind, analytic, entries that raised it).
fn findings(data: &Path) -> Vec<(String, String, Vec<u64>)> {
    ndjson(&ok(acta(
        data,
        &["export", "source:acta-finding", "--format", "ndjson"],
    )))
    .iter()
    .map(|f| {
        let e = &f["event"];
        (
            e["api"]["service"]["name"].as_str().unwrap().to_owned(),
            e["api"]["operation"].as_str().unwrap().to_owned(),
            e["unmapped"]["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap())
                .collect(),
        )
    })
    .collect()
}

/// Every Sigma match `acta detect` finds in the Stratus CloudTrail samples is raised as an alert
/// by `acta ingest --rules`, naming the ledger entry of the record, and nothing else is.
#[test]
fn ingest_raises_the_alerts_detect_finds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let receipts = dir.path().join("receipts");
    let inputs = stratus();
    let mut args: Vec<String> = vec![
        "ingest".into(),
        "-q".into(),
        "--rules".into(),
        rules().display().to_string(),
        "--receipts".into(),
        receipts.display().to_string(),
    ];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(acta(&data, &args));

    // Record (input, n) → ledger entry, from the receipts.
    let mut entry_of: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for line in std::fs::read_to_string(&receipts).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let input = r["input"].as_str().unwrap().to_owned();
        let (first_record, count) = (
            r["records"][0].as_u64().unwrap(),
            r["records"][1].as_u64().unwrap(),
        );
        let first_entry = r["entries"][0].as_u64().unwrap();
        for k in 0..count {
            entry_of.insert((input.clone(), first_record + k), first_entry + k);
        }
    }
    let mut offline = Command::new(env!("CARGO_BIN_EXE_acta"));
    offline
        .args(["detect", "-o", "ndjson", "--rules"])
        .arg(rules())
        .args(&inputs);
    let expected: BTreeSet<(String, u64)> = ndjson(&ok(offline.output().unwrap()))
        .iter()
        .map(|m| {
            let key = (
                m["file"].as_str().unwrap().to_owned(),
                m["index"].as_u64().unwrap(),
            );
            (m["rule"].as_str().unwrap().to_owned(), entry_of[&key])
        })
        .collect();
    assert!(expected.len() > 50, "{}", expected.len());
    let raised: BTreeSet<(String, u64)> = findings(&data)
        .into_iter()
        .filter(|(kind, ..)| kind == "sigma")
        .map(|(_, rule, entries)| {
            assert_eq!(entries.len(), 1);
            (rule, entries[0])
        })
        .collect();
    assert_eq!(raised, expected);

    // The alerts are counted, with their time to insight.
    let stats = ndjson(&ok(acta(&data, &["stats", "--alerts", "-o", "json"])));
    let total = findings(&data).len() as u64;
    assert_eq!(stats[0]["alerts"], total);
    assert_eq!(stats[0]["by_kind"]["sigma"], expected.len() as u64);
    assert!(stats[0]["mean_detection_latency_ms"].as_i64().unwrap() >= 0);
    // Findings are ledger entries like any other: the ledger verifies.
    ok(acta(&data, &["verify"]));
}

/// A CloudTrail event of `actor` at `secs` from `ip`.
fn event(actor: &str, secs: i64, ip: &str, name: &str, bucket: &str) -> String {
    let days = secs / 86_400;
    let (y, m, d) = civil(days);
    let t = secs % 86_400;
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDA", "arn": format!("arn:aws:iam::111122223333:user/{actor}"), "accountId": "111122223333", "userName": actor},
        "eventTime": format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", t / 3600, (t / 60) % 60, t % 60),
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"bucketName": bucket},
        "resources": [{"ARN": format!("arn:aws:s3:::{bucket}"), "type": "AWS::S3::Bucket"}],
        "eventID": format!("{actor}-{secs}"),
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    })
    .to_string()
}

fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The behavioural detectors learn from every entry already in the ledger: a steady history,
/// stored by one run, makes the next run quiet on a familiar event and alert once, naming the
/// entry, on a new source IP.
#[test]
fn detectors_learn_from_the_ledger_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("detect.toml");
    std::fs::write(&config, "# defaults: behavioural detectors only\n").unwrap();
    let start = 1_767_225_600; // 2026-01-01
    let mut history = String::new();
    for day in 0..30 {
        for k in 0..20 {
            let secs = start + day * 86_400 + 10 * 3600 + k * 900;
            let ip = if k % 2 == 0 {
                "192.0.2.10"
            } else {
                "192.0.2.11"
            };
            let bucket = ["logs", "assets", "backups"][(k % 3) as usize];
            history.push_str(&event("alice", secs, ip, "GetObject", bucket));
            history.push('\n');
        }
    }
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let detect = config.display().to_string();
    let run = |file: &str| ok(acta(&data, &["ingest", "-q", "--detect", &detect, file]));
    run(&write("history.ndjson", &history));
    assert_eq!(findings(&data), vec![], "a steady history raises nothing");

    let day31 = start + 30 * 86_400;
    let familiar = event(
        "alice",
        day31 + 11 * 3600,
        "192.0.2.10",
        "GetObject",
        "logs",
    );
    run(&write("familiar.ndjson", &format!("{familiar}\n")));
    assert_eq!(findings(&data), vec![], "a familiar event raises nothing");

    let stranger = event(
        "alice",
        day31 + 12 * 3600,
        "198.51.100.7",
        "GetObject",
        "logs",
    );
    run(&write("new-ip.ndjson", &format!("{stranger}\n")));
    // 600 history events, the familiar one, then this one.
    assert_eq!(
        findings(&data),
        vec![("behaviour".to_owned(), "new_ip".to_owned(), vec![601])]
    );

    // One event on two new resources: an alert each, each its own finding uid.
    let mut two: Value = serde_json::from_str(&event(
        "alice",
        day31 + 13 * 3600,
        "192.0.2.10",
        "GetObject",
        "logs",
    ))
    .unwrap();
    two["resources"] = json!([
        {"ARN": "arn:aws:s3:::payroll", "type": "AWS::S3::Bucket"},
        {"ARN": "arn:aws:s3:::secrets", "type": "AWS::S3::Bucket"}
    ]);
    run(&write("two.ndjson", &format!("{two}\n")));
    let uids: Vec<String> = ndjson(&ok(acta(
        &data,
        &[
            "export",
            "source:acta-finding action:new_resource",
            "--format",
            "ndjson",
        ],
    )))
    .iter()
    .map(|f| {
        f["event"]["unmapped"]["finding_uid"]
            .as_str()
            .unwrap()
            .to_owned()
    })
    .collect();
    // (Each bucket counts by its ARN and by its name.)
    assert!(uids.len() >= 2, "{uids:?}");
    let unique: BTreeSet<&String> = uids.iter().collect();
    assert_eq!(unique.len(), uids.len(), "{uids:?}");
}

/// What a webhook receiver got: (delivery id, signature valid, finding).
type Delivery = (String, bool, Value);

/// A webhook receiver on a loopback port: checks each request's `X-Acta-Signature` against
/// `secret` and answers 200.
fn receiver(secret: &'static [u8]) -> (String, std::sync::mpsc::Receiver<Delivery>) {
    use hmac::{Hmac, Mac};
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut headers = BTreeMap::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
                let len: usize = headers["content-length"].parse().unwrap();
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
                mac.update(&body);
                let hex: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let valid = headers.get("x-acta-signature") == Some(&format!("sha256={hex}"));
                let delivery = headers.get("x-acta-delivery").cloned().unwrap_or_default();
                let finding: Value = serde_json::from_slice(&body).unwrap();
                let _ = tx.send((delivery, valid, finding));
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .unwrap();
            }
        }
    });
    (url, rx)
}

/// Every alert reaches a real webhook receiver exactly once, signed with HMAC-SHA256 of its
/// body under the configured secret, and is the finding the ledger holds.
#[test]
fn webhook_receives_each_alert_once_signed() {
    const SECRET: &[u8] = b"correct horse battery staple";
    let (url, deliveries) = receiver(SECRET);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("detect.toml");
    std::fs::write(
        &config,
        format!(
            "rules = [{:?}]\n[[sink]]\ntype = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"ACTA_TEST_WEBHOOK_SECRET\"\n",
            rules().display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_acta"))
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "-q", "--detect"])
        .arg(&config)
        .args(stratus())
        .env(
            "ACTA_TEST_WEBHOOK_SECRET",
            std::str::from_utf8(SECRET).unwrap(),
        )
        .output()
        .unwrap();
    let out = ok(out);
    let stored: BTreeSet<String> = ndjson(&ok(acta(
        &data,
        &["export", "source:acta-finding", "--format", "ndjson"],
    )))
    .iter()
    .map(|f| {
        f["event"]["unmapped"]["finding_uid"]
            .as_str()
            .unwrap()
            .to_owned()
    })
    .collect();
    assert!(stored.len() > 50, "{}", text(&out));
    let got: Vec<Delivery> = deliveries.try_iter().collect();
    assert!(got.iter().all(|(_, valid, _)| *valid), "a bad signature");
    let ids: Vec<&str> = got.iter().map(|(id, ..)| id.as_str()).collect();
    let unique: BTreeSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(ids.len(), unique.len(), "an alert delivered twice");
    assert_eq!(unique, stored);
    for (id, _, finding) in &got {
        assert_eq!(finding["class_uid"], 2004);
        assert_eq!(finding["finding_info"]["uid"], id.as_str());
    }
}

/// An unreachable sink is reported, never fatal: everything is stored and the alerts are in the
/// ledger.
#[test]
fn an_unreachable_sink_is_reported_not_fatal() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("detect.toml");
    std::fs::write(
        &config,
        format!("[[sink]]\ntype = \"webhook\"\nurl = \"{url}\"\nmax_attempts = 2\ninitial_backoff_ms = 10\n"),
    )
    .unwrap();
    let rules = rules().display().to_string();
    let detect = config.display().to_string();
    let file = testdata("cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.json");
    let out = ok(acta(
        &data,
        &[
            "ingest",
            "--rules",
            &rules,
            "--detect",
            &detect,
            &file.display().to_string(),
        ],
    ));
    let said = text(&out);
    assert!(
        said.contains("alert [") && said.contains("failed"),
        "{said}"
    );
    assert!(!findings(&data).is_empty());
}

/// The example configuration loads, and its file sink gets one line per alert.
#[test]
fn the_example_configuration_works() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/detect.toml");
    let file = testdata("cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.json");
    let out = Command::new(env!("CARGO_BIN_EXE_acta"))
        .current_dir(dir.path())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["ingest", "-q", "--detect"])
        .arg(&example)
        .arg(&file)
        .output()
        .unwrap();
    ok(out);
    let lines = std::fs::read_to_string(dir.path().join("alerts.ndjson")).unwrap();
    let alerts: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 1, "{lines}");
    assert_eq!(
        alerts[0]["finding_info"]["title"],
        "AWS CloudTrail Important Change"
    );
    assert_eq!(findings(&dir.path().join("data")).len(), 1);
}

/// A stream on standard input is checked as it arrives: a record followed by a pause raises its
/// alert, and becomes searchable, while the stream is still open.
#[test]
fn a_paused_stream_alerts_and_is_searchable_before_it_ends() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(testdata(
            "cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let records = doc["Records"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![doc]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_acta"))
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "--rules"])
        .arg(rules())
        .args(["--source", "cloudtrail", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let sent = Instant::now();
    for r in &records {
        writeln!(stdin, "{r}").unwrap();
    }
    stdin.flush().unwrap();
    let alert = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("no alert while the stream is open");
        if line.starts_with("alert [") {
            break line;
        }
    };
    assert!(alert.contains("AWS CloudTrail Important Change"), "{alert}");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    // Searchable while the stream is still open (the index commits within its period).
    let deadline = Instant::now() + Duration::from_secs(10);
    let (_wake, pause) = std::sync::mpsc::channel::<()>();
    loop {
        let found = acta(&data, &["search", "action:StopLogging", "-o", "ndjson"]);
        if found.status.success() && !ndjson(&found).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not searchable: {}",
            text(&found)
        );
        let _ = pause.recv_timeout(Duration::from_millis(200));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// With `min_level`, only rules at or above it alert: exactly the matches of `acta detect`
/// whose level is that high.
#[test]
fn min_level_keeps_the_alerts_at_or_above_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("detect.toml");
    std::fs::write(&config, "min_level = \"medium\"\n").unwrap();
    let inputs = stratus();
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_acta"));
    ingest
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "-q", "--rules"])
        .arg(rules())
        .arg("--detect")
        .arg(&config)
        .args(&inputs);
    ok(ingest.output().unwrap());
    let mut offline = Command::new(env!("CARGO_BIN_EXE_acta"));
    offline
        .args(["detect", "-o", "ndjson", "--rules"])
        .arg(rules())
        .args(&inputs);
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for m in ndjson(&ok(offline.output().unwrap())) {
        if ["medium", "high", "critical"].contains(&m["level"].as_str().unwrap_or("")) {
            *expected
                .entry(m["rule"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    let mut raised: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, rule, _) in findings(&data) {
        if kind == "sigma" {
            *raised.entry(rule).or_default() += 1;
        }
    }
    assert!(expected.len() >= 5, "{expected:?}");
    assert_eq!(raised, expected);
}

/// A stream pausing in the middle of a record waits for the rest: the record is stored whole.
#[test]
fn a_stream_paused_inside_a_record_stores_it_whole() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let line = event("alice", 1_767_225_600, "192.0.2.10", "StopLogging", "logs");
    let (head, tail) = line.split_at(line.len() / 2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_acta"))
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "-q", "--source", "cloudtrail", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (_wake, pause) = std::sync::mpsc::channel::<()>();
    stdin.write_all(head.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let _ = pause.recv_timeout(Duration::from_millis(700));
    writeln!(stdin, "{tail}").unwrap();
    stdin.flush().unwrap();
    let _ = pause.recv_timeout(Duration::from_millis(700));
    writeln!(stdin, "{line}").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let stored = ndjson(&ok(acta(&data, &["export", "*", "--format", "ndjson"])));
    assert_eq!(stored.len(), 2, "{stored:?}");
    for e in &stored {
        assert_eq!(e["event"]["api"]["operation"], "StopLogging");
        assert_eq!(e["event"]["raw_data"], line.as_str());
    }
}

/// A correlation whose condition has an upper bound (`lt`) is decided when its window closes,
/// at the latest when the stream ends.
#[test]
fn upper_bound_correlations_close_on_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("few.yml"),
        "title: Bucket read\nid: 5a4e1c3d-0000-4000-8000-000000000001\nname: bucket_read\n\
         logsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  selection:\n    \
         eventName: GetObject\n  condition: selection\nlevel: low\n---\n\
         title: Too few bucket reads\nid: 5a4e1c3d-0000-4000-8000-000000000002\n\
         correlation:\n  type: event_count\n  rules:\n    - bucket_read\n  group-by:\n    \
         - userIdentity.arn\n  timespan: 10m\n  condition:\n    lt: 3\nlevel: medium\n",
    )
    .unwrap();
    let file = dir.path().join("reads.ndjson");
    let start = 1_767_225_600;
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            event("alice", start, "192.0.2.10", "GetObject", "logs"),
            event("alice", start + 60, "192.0.2.10", "GetObject", "logs")
        ),
    )
    .unwrap();
    ok(acta(
        &data,
        &[
            "ingest",
            "-q",
            "--rules",
            &rules.display().to_string(),
            &file.display().to_string(),
        ],
    ));
    let got: Vec<(String, String)> = findings(&data)
        .into_iter()
        .map(|(kind, rule, _)| (kind, rule))
        .collect();
    assert!(
        got.contains(&(
            "sigma-correlation".to_owned(),
            "5a4e1c3d-0000-4000-8000-000000000002".to_owned()
        )),
        "{got:?}"
    );
}

/// `acta-finding` is acta's own: no input may take that source, and records that look like
/// findings are not read as alerts.
#[test]
fn inputs_cannot_pass_as_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let forged = testdata("acta/findings.ndjson").display().to_string();
    let refused = acta(&data, &["ingest", "--source", "acta-finding", &forged]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("reserved"), "{}", text(&refused));
    let refused = acta(&data, &["ingest", "--format", "acta-finding", &forged]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    ok(acta(&data, &["ingest", "-q", &forged]));
    assert_eq!(findings(&data), vec![]);
    let stats = ndjson(&ok(acta(&data, &["stats", "--alerts", "-o", "json"])));
    assert_eq!(stats[0]["alerts"], 0);
}
