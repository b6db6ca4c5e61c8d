//! Investigation on real data: every sample in `testdata/` is ingested once, then searches,
//! counts and exports are checked against truths computed here, independently, from the raw
//! files — equal, not approximately.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{acta, text};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

fn ok(o: Output) -> Output {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    o
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Every sample file holding records (licences, READMEs and expected outputs left out).
fn samples() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                if name != "expected" {
                    walk(&p, out);
                }
            } else if !name.starts_with("LICENSE") && !name.ends_with(".md") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&testdata(), &mut out);
    out
}

/// One data directory with every sample ingested, shared by the tests of this file.
fn data() -> &'static Path {
    static DATA: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DATA
        .get_or_init(|| {
            let d = tempfile::tempdir().unwrap();
            let data = d.path().join("data");
            let files = samples();
            let mut args = vec!["ingest".to_owned(), "--quiet".to_owned()];
            args.extend(files.iter().map(|p| p.to_string_lossy().to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(acta(&data, &args));
            (d, data)
        })
        .1
}

fn ndjson(o: &Output) -> Vec<Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every event matching `query`, as search rows.
fn search(query: &str) -> Vec<Value> {
    ndjson(&ok(acta(
        data(),
        &["search", query, "-o", "ndjson", "--limit", "1000000"],
    )))
}

/// The raw records of every event matching `query`, through the export.
fn exported_raw(query: &str) -> Vec<Value> {
    ndjson(&ok(acta(data(), &["export", query, "--format", "ndjson"])))
        .into_iter()
        .map(|l| serde_json::from_str(l["event"]["raw_data"].as_str().unwrap()).unwrap())
        .collect()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Every CloudTrail record of the samples, read directly.
fn cloudtrail_records() -> Vec<Value> {
    let mut out = Vec::new();
    for p in samples() {
        if !p.to_string_lossy().contains("/cloudtrail/") {
            continue;
        }
        match serde_json::from_slice::<Value>(&fs::read(&p).unwrap()).unwrap() {
            Value::Array(a) => out.extend(a),
            Value::Object(mut o) => match o.remove("Records") {
                Some(Value::Array(a)) => out.extend(a),
                _ => out.push(Value::Object(o)),
            },
            _ => panic!("{}", p.display()),
        }
    }
    out
}

#[test]
fn cloudtrail_events_per_principal_arn() {
    let records = cloudtrail_records();
    assert!(records.len() > 300);
    let mut truth: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        let id = &r["userIdentity"];
        let mut arns = BTreeSet::new();
        for a in [&id["arn"], &id["sessionContext"]["sessionIssuer"]["arn"]] {
            if let Some(a) = a.as_str().filter(|a| !a.is_empty()) {
                arns.insert(a.to_lowercase());
            }
        }
        for a in arns {
            *truth.entry(a).or_default() += 1;
        }
    }
    assert!(truth.len() >= 5, "{truth:?}");
    for (arn, n) in &truth {
        let hits = search(&format!("actor:{} source:cloudtrail", quote(arn)));
        assert_eq!(hits.len(), *n, "events of {arn}");
    }
    // And by action, over all of CloudTrail, in one count.
    let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
    for r in &records {
        *by_action
            .entry(r["eventName"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let o = ok(acta(
        data(),
        &[
            "stats",
            "--by",
            "action",
            "source:cloudtrail",
            "-o",
            "ndjson",
            "--limit",
            "100000",
        ],
    ));
    let counted: BTreeMap<String, u64> = ndjson(&o)
        .into_iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, by_action);
    // Failed calls: an errorCode is a failure.
    let failed = records
        .iter()
        .filter(|r| r["errorCode"].as_str().is_some_and(|c| !c.is_empty()))
        .count();
    assert_eq!(search("source:cloudtrail outcome:failure").len(), failed);
    // Free text finds the error code.
    let denied = records
        .iter()
        .filter(|r| r["errorCode"].as_str() == Some("AccessDenied"))
        .count();
    assert!(denied > 0);
    assert_eq!(search("source:cloudtrail \"AccessDenied\"").len(), denied);
}

/// Kubernetes audit records, from every sample file (lines, arrays and `EventList`s).
fn k8s_records() -> Vec<Value> {
    let mut out = Vec::new();
    for p in samples() {
        if !p.to_string_lossy().contains("/k8s-audit/") {
            continue;
        }
        let bytes = fs::read(&p).unwrap();
        let values: Vec<Value> = match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => vec![v],
            Err(_) => bytes
                .split(|&b| b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect(),
        };
        for v in values {
            match v {
                Value::Array(a) => out.extend(a),
                Value::Object(ref o) if o.get("kind") == Some(&Value::from("EventList")) => {
                    out.extend(o["items"].as_array().unwrap().iter().cloned());
                }
                other => out.push(other),
            }
        }
    }
    out
}

#[test]
fn kubernetes_requests_on_each_resource() {
    let records = k8s_records();
    // One event per request (docs/events/k8s-audit.md): the first stage and the end of an
    // upgraded connection are not events of their own.
    let is_event = |r: &Value| {
        let code = r["responseStatus"]["code"].as_i64();
        !matches!(
            (r["stage"].as_str(), code),
            (Some("RequestReceived"), _)
                | (Some("ResponseStarted"), Some(_) | None)
                | (Some("ResponseComplete"), Some(101))
        ) || (r["stage"].as_str() == Some("ResponseStarted") && code == Some(101))
    };
    let mut truth: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records.iter().filter(|r| is_event(r)) {
        if let Some(name) = r["objectRef"]["name"].as_str() {
            truth
                .entry(name.to_owned())
                .or_default()
                .push(r["auditID"].as_str().unwrap().to_owned());
        }
    }
    assert!(truth.len() >= 10, "{}", truth.len());
    for (name, mut ids) in truth {
        ids.sort();
        let mut got: Vec<String> =
            exported_raw(&format!("resource:{} source:k8s-audit", quote(&name)))
                .iter()
                .map(|r| r["auditID"].as_str().unwrap().to_owned())
                .collect();
        got.sort();
        assert_eq!(got, ids, "requests on {name}");
        // `who` names the same users.
        let o = ok(acta(
            data(),
            &[
                "who",
                "--resource",
                &name,
                "source:k8s-audit",
                "-o",
                "ndjson",
            ],
        ));
        let events: u64 = ndjson(&o)
            .iter()
            .map(|r| r["events"].as_u64().unwrap())
            .sum();
        assert_eq!(events, ids.len() as u64, "who --resource {name}");
    }
}

#[test]
fn github_events_per_actor() {
    let text = fs::read_to_string(testdata().join("github/github-audit.ndjson")).unwrap();
    let mut truth: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(a) = v["actor"].as_str().filter(|a| !a.is_empty()) {
            *truth.entry(a.to_lowercase()).or_default() += 1;
        }
    }
    assert!(truth.len() >= 3);
    for (actor, n) in truth {
        let hits = search(&format!("actor:{} source:github-audit", quote(&actor)));
        assert_eq!(hits.len(), n, "events of {actor}");
        assert!(hits.iter().all(|h| h["source"] == "github-audit"));
    }
}

/// Failed authentication of the account `user`, read from a syslog or journal message: sshd's
/// failed passwords and keys and unknown users, PAM's authentication failures, and a password
/// that could not be read.
fn failed_login_of(message: &str, user: &str) -> bool {
    message.contains(&format!("Failed password for {user} from"))
        || message.contains(&format!("Failed password for invalid user {user} from"))
        || message.contains(&format!("Failed publickey for {user} from"))
        || message.contains(&format!("Invalid user {user} from"))
        || message.contains(&format!("could not identify password for [{user}]"))
        || (message.contains("authentication failure;")
            && message
                .split_whitespace()
                .any(|w| w == format!("user={user}")))
}

#[test]
fn failed_logins_of_a_user() {
    let mut messages = Vec::new();
    for name in ["auth.log", "devlog.log", "rfc5424.log"] {
        let text = fs::read_to_string(testdata().join("linux").join(name)).unwrap();
        messages.extend(text.lines().map(str::to_owned));
    }
    let journal = fs::read_to_string(testdata().join("linux/journal.ndjson")).unwrap();
    for line in journal.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        messages.push(v["MESSAGE"].as_str().unwrap_or_default().to_owned());
    }
    for user in ["root", "acta-no-such-user", "nobody"] {
        let truth = messages.iter().filter(|m| failed_login_of(m, user)).count();
        assert!(truth > 0, "{user}");
        // Authentication events (class 3002) that failed.
        let hits: Vec<Value> = search(&format!("actor:{} outcome:failure", quote(user)))
            .into_iter()
            .filter(|h| h["class_uid"] == 3002)
            .collect();
        assert_eq!(hits.len(), truth, "failed logins of {user}: {hits:#?}");
    }
}

#[test]
fn search_pages_newest_first_and_time_bounds_cut() {
    let all = search("");
    let ledger_len = all.len();
    assert!(ledger_len > 1000);
    let times: Vec<i64> = all.iter().map(|h| h["time_ms"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // Pages follow each other without gaps or repeats.
    let page = |offset: usize| {
        ndjson(&ok(acta(
            data(),
            &[
                "search",
                "",
                "-o",
                "ndjson",
                "--limit",
                "100",
                "--offset",
                &offset.to_string(),
            ],
        )))
    };
    let mut paged = page(0);
    paged.extend(page(100));
    assert_eq!(paged[..], all[..200]);
    // Every index appears once.
    let indices: BTreeSet<u64> = all.iter().map(|h| h["index"].as_u64().unwrap()).collect();
    assert_eq!(indices.len(), ledger_len);
    assert_eq!(*indices.last().unwrap(), ledger_len as u64 - 1);
    // Time bounds: [since, until).
    let t = times[times.len() / 2];
    let since = fmt_ms(t);
    let after = ndjson(&ok(acta(
        data(),
        &[
            "search", "", "--since", &since, "-o", "ndjson", "--limit", "1000000",
        ],
    )));
    assert_eq!(
        after.len(),
        times.iter().filter(|x| **x >= t / 1000 * 1000).count()
    );
    let before = ndjson(&ok(acta(
        data(),
        &[
            "search", "", "--until", &since, "-o", "ndjson", "--limit", "1000000",
        ],
    )));
    assert_eq!(before.len() + after.len(), ledger_len);
}

/// RFC 3339, whole seconds (the CLI's own format is tested in its unit tests).
fn fmt_ms(ms: i64) -> String {
    let o = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}", ms / 1000),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

#[test]
fn reindexing_from_the_ledger_gives_the_same_answers() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let files: Vec<String> = samples()
        .iter()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    // Ingested in two runs, so the index is built incrementally.
    let (a, b) = files.split_at(files.len() / 2);
    for part in [a, b] {
        let mut args = vec!["ingest", "--quiet"];
        args.extend(part.iter().map(String::as_str));
        ok(acta(&data, &args));
    }
    let questions: [&[&str]; 5] = [
        &["search", "", "-o", "ndjson", "--limit", "1000000"],
        &[
            "search",
            "outcome:failure OR action:Delete*",
            "-o",
            "ndjson",
            "--limit",
            "1000000",
        ],
        &[
            "stats",
            "--by",
            "source,outcome",
            "-o",
            "ndjson",
            "--limit",
            "100000",
        ],
        &[
            "stats",
            "--by",
            "actor",
            "--interval",
            "1d",
            "-o",
            "ndjson",
            "--limit",
            "100000",
        ],
        &["who", "--resource", "foo", "-o", "ndjson"],
    ];
    let answers = |data: &Path| -> Vec<Vec<u8>> {
        questions.iter().map(|q| ok(acta(data, q)).stdout).collect()
    };
    let before = answers(&data);
    let o = ok(acta(&data, &["reindex", "--quiet"]));
    assert!(text(&o).contains("indexed"), "{}", text(&o));
    assert_eq!(answers(&data), before);
    // A removed index is rebuilt on the next use.
    fs::remove_dir_all(data.join("index")).unwrap();
    assert_eq!(answers(&data), before);
}

#[test]
fn empty_store_bad_queries_and_huge_queries_give_clear_answers() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("none");
    let o = acta(&empty, &["search", "actor:alice"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no ledger"), "{}", text(&o));

    // A malformed query points at the offending position.
    let o = acta(data(), &["search", "actor:alice AND (action:Get*"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("actor:alice AND (action:Get*"), "{t}");
    assert!(t.contains('^'), "{t}");
    let o = acta(data(), &["search", "colour:red"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("colour"), "{}", text(&o));

    // No data in the range: an empty answer, not an error.
    let o = ok(acta(
        data(),
        &[
            "search",
            "",
            "--since",
            "1990-01-01",
            "--until",
            "1990-01-02",
        ],
    ));
    assert!(text(&o).contains("no events"), "{}", text(&o));
    let o = ok(acta(
        data(),
        &[
            "stats",
            "--by",
            "action",
            "--until",
            "1971-01-01",
            "-o",
            "json",
        ],
    ));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");

    // 10,000 terms.
    let q: Vec<String> = (0..10_000).map(|i| format!("actor:user{i}")).collect();
    let q = q.join(" OR ") + " OR actor:root";
    let file = d.path().join("query.txt");
    fs::write(&file, &q).unwrap();
    let started = Instant::now();
    let o = ok(acta(
        data(),
        &[
            "search",
            "--query-file",
            file.to_str().unwrap(),
            "-o",
            "ndjson",
            "--limit",
            "100000",
        ],
    ));
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(ndjson(&o).len(), search("actor:root").len());
}

#[test]
fn show_gives_the_event_the_raw_record_and_a_verified_proof() {
    let hits = search("source:cloudtrail");
    let h = &hits[hits.len() / 2];
    let index = h["index"].as_u64().unwrap().to_string();
    let o = ok(acta(data(), &["show", &index, "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true, "{v:#}");
    let raw: Value = serde_json::from_str(v["raw"].as_str().unwrap()).unwrap();
    assert_eq!(v["event"]["api"]["operation"], raw["eventName"]);
    assert_eq!(h["action"], raw["eventName"]);
    assert!(v["receipt"].as_str().unwrap().contains("— "), "{v:#}");
    // An entry past the end is a clear error.
    let o = acta(data(), &["show", "99999999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("does not exist"), "{}", text(&o));
}

/// The Python with DuckDB: `ACTA_TEST_PYTHON` (set by ./scripts/test), else `python3`.
fn duckdb(script: &str, args: &[&str]) -> Value {
    let python = std::env::var("ACTA_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let o = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{python}`: {e}; ./scripts/test installs a Python with duckdb and points ACTA_TEST_PYTHON at it"));
    assert!(
        o.status.success(),
        "{python}: {}\n./scripts/test installs duckdb and pyarrow (ACTA_TEST_PYTHON)",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn an_exported_parquet_file_gives_duckdb_the_counts_of_acta_stats() {
    let d = tempfile::tempdir().unwrap();
    for query in ["", "source:cloudtrail outcome:failure", "source:k8s-audit"] {
        let file = d.path().join("export.parquet");
        let o = ok(acta(
            data(),
            &[
                "export",
                query,
                "--format",
                "parquet",
                "-o",
                file.to_str().unwrap(),
            ],
        ));
        assert!(text(&o).contains("against checkpoint"), "{}", text(&o));
        let checkpoint = fs::read_to_string(d.path().join("export.parquet.checkpoint")).unwrap();
        let got = duckdb(
            r#"
import duckdb, json, sys
import pyarrow.parquet as pq
con = duckdb.connect()
src = "read_parquet('" + sys.argv[1].replace("'", "''") + "')"
rows = con.execute(f"SELECT coalesce(action, ''), count(*) FROM {src} GROUP BY 1").fetchall()
by_source = con.execute(f"SELECT source, count(*) FROM {src} GROUP BY 1").fetchall()
meta = {k.decode(): v.decode() for k, v in pq.read_metadata(sys.argv[1]).metadata.items()}
print(json.dumps({"by_action": dict(rows), "by_source": dict(by_source), "meta": meta}))
"#,
            &[file.to_str().unwrap()],
        );
        for (field, key) in [("action", "by_action"), ("source", "by_source")] {
            let stats = ok(acta(
                data(),
                &[
                    "stats", "--by", field, query, "-o", "ndjson", "--limit", "1000000",
                ],
            ));
            let expected: BTreeMap<String, u64> = ndjson(&stats)
                .into_iter()
                .map(|r| {
                    (
                        r[field].as_str().unwrap_or_default().to_owned(),
                        r["count"].as_u64().unwrap(),
                    )
                })
                .collect();
            let engine: BTreeMap<String, u64> = got[key]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            assert!(!expected.is_empty());
            assert_eq!(engine, expected, "{field} of `{query}`");
        }
        // The file states the checkpoint it was taken against, as the file beside it does.
        assert_eq!(got["meta"]["acta.checkpoint"], checkpoint.as_str());
        assert_eq!(got["meta"]["acta.query"], query);
    }
}

#[test]
fn a_ledger_only_ingest_is_indexed_by_the_next_search() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let file = testdata().join("github/github-audit.ndjson");
    let o = ok(acta(
        &data,
        &["ingest", "--quiet", "--no-index", file.to_str().unwrap()],
    ));
    assert!(!data.join("index").exists(), "{}", text(&o));
    let records = fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let o = ok(acta(&data, &["search", "-o", "ndjson", "--limit", "1000"]));
    assert_eq!(ndjson(&o).len(), records);
    assert!(
        text(&o).contains(&format!("indexed {records} entries")),
        "{}",
        text(&o)
    );
}
