//! Normalisation through the `acta` command: dry runs print one event per record, ingest keeps
//! the raw record in the ledger and makes its event searchable, hostile input loses nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{acta, testdata, text};

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Records in a file, counted without acta: elements of a top-level array, else non-blank lines.
fn record_count(path: &Path) -> usize {
    let bytes = fs::read(path).unwrap();
    if let Ok(Value::Array(a)) = serde_json::from_slice::<Value>(&bytes) {
        return a.len();
    }
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count()
}

#[test]
fn dry_run_prints_one_event_per_record_in_input_order_and_stores_nothing() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let inputs = [
        testdata("cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.json"),
        testdata("k8s-audit/audit2rbac/demo.log"),
        testdata("github/github-audit.ndjson"),
        testdata("cloudtrail/stratus/aws.persistence.iam-create-admin-user.json"),
    ];
    let mut args = vec!["ingest", "--dry-run", "-o", "ndjson", "--quiet"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let o = acta(&data, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let events = lines(&o);
    let expected: usize = inputs.iter().map(|p| record_count(p)).sum();
    assert_eq!(events.len(), expected, "{}", text(&o));
    // Input order: the first file's records come first, with their raw bytes.
    let first: Value =
        serde_json::from_slice::<Vec<Value>>(&fs::read(&inputs[0]).unwrap()).unwrap()[0].clone();
    assert_eq!(events[0]["api"]["operation"], first["eventName"]);
    let raw: Value = serde_json::from_str(events[0]["raw_data"].as_str().unwrap()).unwrap();
    assert_eq!(raw, first);
    let last = events.last().unwrap();
    assert_eq!(last["metadata"]["log_name"], "cloudtrail");
    assert_eq!(last["class_uid"], 6003);
    for e in &events {
        assert!(e["time"].as_i64().unwrap() > 0);
        assert_eq!(
            e["type_uid"].as_u64().unwrap(),
            e["class_uid"].as_u64().unwrap() * 100 + e["activity_id"].as_u64().unwrap()
        );
    }
    assert!(
        !data.exists(),
        "a dry run must not create the data directory"
    );
}

#[test]
fn format_can_be_forced_and_unknown_names_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let file = testdata("cloudtrail/stratus/aws.defense-evasion.cloudtrail-stop.json");
    let o = acta(
        d.path(),
        &[
            "ingest",
            "--dry-run",
            "--quiet",
            "--format",
            "pgaudit",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let events = lines(&o);
    assert_eq!(events.len(), record_count(&file));
    for e in &events {
        assert_eq!(e["class_uid"], 0, "forced format must not fall back: {e}");
        assert!(
            e["status_detail"]
                .as_str()
                .unwrap()
                .contains("not a pgaudit record"),
            "{e}"
        );
    }
    let o = acta(
        d.path(),
        &[
            "ingest",
            "--dry-run",
            "--format",
            "nope",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown format `nope`"), "{}", text(&o));
    let o = acta(d.path(), &["formats"]);
    let listed = String::from_utf8(o.stdout).unwrap();
    for name in [
        "cloudtrail",
        "github-audit",
        "github-webhook",
        "gitlab-audit",
        "k8s-audit",
        "syslog",
        "journald",
        "pgaudit",
        "json",
    ] {
        assert!(
            listed.lines().any(|l| l.starts_with(name)),
            "{name} in {listed}"
        );
    }
}

#[test]
fn ingest_stores_raw_entries_and_normalised_events_by_ledger_index() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let file = testdata("cloudtrail/stratus/aws.persistence.iam-create-admin-user.json");
    let o = acta(&data, &["ingest", "--quiet", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let records: Vec<Value> = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    let exported = acta(&data, &["export", "--format", "ndjson"]);
    assert_eq!(exported.status.code(), Some(0), "{}", text(&exported));
    let stored = lines(&exported);
    assert_eq!(stored.len(), records.len());
    let payloads: Vec<Vec<u8>> = acta_ledger::read::Entries::open(&data.join("ledger"))
        .unwrap()
        .map(|e| e.unwrap().payload)
        .collect();
    for (i, line) in stored.iter().enumerate() {
        assert_eq!(line["index"], i as u64);
        assert_eq!(line["source"], "cloudtrail");
        let raw: Value = serde_json::from_slice(&payloads[i]).unwrap();
        assert_eq!(raw, records[i], "ledger keeps the record");
        assert_eq!(line["event"]["api"]["operation"], raw["eventName"]);
        assert_eq!(line["event"]["metadata"]["uid"], raw["eventID"]);
        let echoed: Value =
            serde_json::from_str(line["event"]["raw_data"].as_str().unwrap()).unwrap();
        assert_eq!(echoed, raw);
    }

    // The search index is derived: remove it and the next ingest rebuilds it from the ledger.
    fs::remove_dir_all(data.join("index")).unwrap();
    let o = acta(&data, &["ingest", "--quiet", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("indexed {} earlier entries", records.len())),
        "{}",
        text(&o)
    );
    let o = acta(&data, &["search", "-o", "ndjson", "--limit", "1000"]);
    let mut indices: Vec<u64> = lines(&o)
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    indices.sort();
    assert_eq!(indices, (0..2 * records.len() as u64).collect::<Vec<_>>());
}

#[test]
fn hostile_input_never_panics_and_every_bad_record_is_kept_raw_and_reported() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let path = d.path().join("hostile.ndjson");
    let mut f = fs::File::create(&path).unwrap();
    let good = r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","userName":"alice","arn":"arn:aws:iam::1:user/alice"}}"#;
    let mut records: Vec<Vec<u8>> = vec![
        good.as_bytes().to_vec(),
        // Wrong types in known fields.
        br#"{"eventVersion":"1.08","eventName":5,"eventSource":["s3"],"userIdentity":"alice"}"#
            .to_vec(),
        br#"{"eventVersion":"1.08","eventName":"X","eventTime":12,"userIdentity":{"type":7}}"#
            .to_vec(),
        // Missing fields.
        br#"{"eventVersion":"1.08","eventName":"OnlyAName"}"#.to_vec(),
        // A 10 MB field.
        format!(
            r#"{{"eventVersion":"1.08","eventName":"Big","eventSource":"s3.amazonaws.com","userAgent":"{}"}}"#,
            "x".repeat(10 << 20)
        )
        .into_bytes(),
        // 10,000-deep nesting.
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        format!(
            r#"{{"eventVersion":"1.08","eventName":"Deep","requestParameters":{}1{}}}"#,
            r#"{"a":"#.repeat(10_000),
            "}".repeat(10_000)
        )
        .into_bytes(),
        // Invalid UTF-8, inside and outside JSON strings.
        b"\xff\xfe\xfd not utf-8".to_vec(),
        b"{\"eventVersion\":\"1.08\",\"eventName\":\"\xc3\x28\"}".to_vec(),
        // Other formats mixed in.
        br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get"}"#.to_vec(),
        b"Nov 21 12:00:01 host sshd[42]: Accepted publickey for alice from 10.0.0.1 port 50000 ssh2"
            .to_vec(),
        b"2024-01-01 00:00:00.000 UTC [1] alice@db LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<not logged>".to_vec(),
        br#"{"totally":"unknown"}"#.to_vec(),
        b"[1, 2".to_vec(),
    ];
    records.push(good.as_bytes().to_vec());
    for r in &records {
        f.write_all(r).unwrap();
        f.write_all(b"\n").unwrap();
    }
    drop(f);

    let o = acta(
        &data,
        &["ingest", "--dry-run", "--quiet", path.to_str().unwrap()],
    );
    let out = text(&o);
    assert!(!out.contains("panicked"), "{out}");
    assert_eq!(o.status.code(), Some(0), "{out}");
    let events = lines(&o);
    assert_eq!(events.len(), records.len(), "one line per record");
    assert_eq!(events[0]["actor"]["user"]["name"], "alice");
    assert_eq!(events[0]["class_uid"], 6003);
    assert_eq!(events.last().unwrap()["class_uid"], 6003);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["raw_data"].as_str().unwrap(),
            String::from_utf8_lossy(&records[i]),
            "record {i} raw"
        );
        if e["class_uid"] == 0 {
            assert!(
                e["status_detail"].as_str().is_some_and(|s| !s.is_empty()),
                "record {i} needs a reason: {e}"
            );
        }
    }
    // Wrong types are reported as unusable CloudTrail, not silently mapped.
    assert_eq!(events[1]["class_uid"], 0);
    assert!(
        events[1]["status_detail"]
            .as_str()
            .unwrap()
            .starts_with("cloudtrail:"),
        "{}",
        events[1]
    );

    // Stored for real: every record is an entry, byte for byte, and the summary counts the
    // records that were not normalised, per reason.
    let o = acta(&data, &["ingest", "--quiet", path.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("flagged"), "{out}");
    assert!(out.contains("cloudtrail: unusable record"), "{out}");
    let payloads: Vec<Vec<u8>> = acta_ledger::read::Entries::open(&data.join("ledger"))
        .unwrap()
        .map(|e| e.unwrap().payload)
        .collect();
    assert_eq!(payloads, records);
    let v = acta(&data, &["verify", "-q"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
}
