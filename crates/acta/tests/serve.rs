//! `acta serve` end to end: a server on a loopback port, real samples posted and searched back,
//! tokens of every role, the tlog read paths, and a clean shutdown with a final checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::serve::{ADMIN, Server};
use common::{acta, testdata, text};
use serde_json::{Value, json};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Status and JSON body (Null when the body is not JSON) of a GET.
fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, body) = get_bytes(base, path, token);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn get_bytes(base: &str, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = agent().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_vec().unwrap())
}

fn post(base: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut req = agent().post(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn create_token(data: &Path, role: &str) -> String {
    let o = acta(data, &["token", "create", "--role", role, "--name", role]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

fn token_id(token: &str) -> &str {
    &token[5..17]
}

/// The ledger indices of a search, from the API.
fn api_indices(base: &str, token: &str, q: &str) -> Vec<u64> {
    let (status, body) = get(
        base,
        &format!("/api/v1/search?limit=10000&q={}", urlencode(q)),
        Some(token),
    );
    assert_eq!(status, 200, "{body}");
    let mut v: Vec<u64> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    v.sort_unstable();
    assert_eq!(body["total"].as_u64().unwrap(), v.len() as u64);
    v
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn serve_stores_searches_and_guards_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let stratus = testdata("cloudtrail/stratus");
    let mut files: Vec<_> = std::fs::read_dir(&stratus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/sigma");
    let mut args = vec![
        "ingest".to_owned(),
        "-q".to_owned(),
        "--rules".to_owned(),
        rules.display().to_string(),
    ];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = acta(data, &args);
    assert!(o.status.success(), "{}", text(&o));
    // What the command line answers, before the server holds the ledger.
    let query = "action:Describe* OR outcome:failure";
    let o = acta(data, &["search", "-o", "ndjson", "--limit", "10000", query]);
    assert!(o.status.success(), "{}", text(&o));
    let mut cli: Vec<u64> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    cli.sort_unstable();
    assert!(!cli.is_empty());
    let auditor = create_token(data, "auditor");
    let ingest = create_token(data, "ingest");
    let reader = create_token(data, "auditor");

    let server = Server::start(data);
    let base = server.base.clone();
    // Tokens made while the server runs work at once; this one expires in a second.
    let o = acta(
        data,
        &["token", "create", "--role", "admin", "--expires", "1s"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let expired = String::from_utf8(o.stdout).unwrap().trim().to_owned();

    let (status, health) = get(&base, "/healthz", None);
    assert_eq!(status, 200);
    let stored = health["entries"].as_u64().unwrap();
    assert!(stored > 0);

    // Every /api route needs a token of a role that may do what it asks.
    let search = format!("/api/v1/search?q={}", urlencode(query));
    for (token, want) in [
        (None, 401),
        (Some("not-a-token"), 401),
        (
            Some("acta_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            401,
        ),
        (Some(ingest.as_str()), 403),
        (Some(auditor.as_str()), 200),
        (Some(ADMIN), 200),
    ] {
        let (status, body) = get(&base, &search, token);
        assert_eq!(status, want, "search with {token:?}: {body}");
        if want != 200 {
            assert!(body["error"]["message"].as_str().is_some(), "{body}");
        }
    }
    assert_eq!(
        api_indices(&base, &auditor, query),
        cli,
        "API and CLI agree"
    );

    // Counts through the API agree with what was stored (reads recorded since are left out).
    let (status, stats) = get(
        &base,
        "/api/v1/stats?by=source&q=NOT%20source%3Aacta-access",
        Some(&auditor),
    );
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["rows"][0]["source"], "cloudtrail");
    let counted: u64 = stats["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, stored, "{stats}");
    let (status, _) = get(&base, "/api/v1/stats?by=nonsense", Some(&auditor));
    assert_eq!(status, 400);
    let (status, deep) = get(
        &base,
        "/api/v1/search?offset=18446744073709551615",
        Some(&auditor),
    );
    assert_eq!(status, 400, "{deep}");
    // Without a token, a body is refused before it is read.
    // (The server may answer 401 and close while the client is still sending.)
    match agent()
        .post(format!("{base}/api/v1/ingest"))
        .send(&vec![b'{'; 8 << 20][..])
    {
        Ok(r) => assert_eq!(r.status().as_u16(), 401),
        Err(ureq::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
        Err(e) => panic!("{e}"),
    }
    assert_eq!(get(&base, "/healthz", None).0, 200);
    let (status, bad) = get(&base, "/api/v1/search?q=actor%3A%28", Some(&auditor));
    assert_eq!(status, 400);
    assert!(
        bad["error"]["message"].as_str().unwrap().contains('^'),
        "{bad}"
    );

    // A Kubernetes EventList posted by an ingest token is stored and becomes searchable.
    let falco = testdata("k8s-audit/falco");
    let mut items = Vec::new();
    for name in [
        "attach_pod.json",
        "create_cluster_role_pod_exec.json",
        "attach_cluster_admin_role.json",
    ] {
        items.push(
            serde_json::from_slice::<Value>(&std::fs::read(falco.join(name)).unwrap()).unwrap(),
        );
    }
    let list = serde_json::to_vec(
        &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}),
    )
    .unwrap();
    let (status, denied) = post(&base, "/api/v1/ingest", Some(&auditor), &list);
    assert_eq!(status, 403, "{denied}");
    let (status, empty) = post(&base, "/api/v1/ingest", Some(&ingest), b"");
    assert_eq!(status, 400, "{empty}");
    let (status, reserved) = post(
        &base,
        "/api/v1/ingest?source=acta-finding",
        Some(&ingest),
        &list,
    );
    assert_eq!(status, 400, "{reserved}");
    // Reads so far were recorded in the ledger: the batch goes after them.
    let (status, answer) = post(&base, "/api/v1/ingest", Some(&ingest), &list);
    assert_eq!(status, 200, "{answer}");
    assert!(answer["first"].as_u64().unwrap() > stored, "{answer}");
    let stored = answer["first"].as_u64().unwrap();
    assert_eq!(answer["stored"], 3, "{answer}");
    assert_eq!(answer["first"].as_u64().unwrap(), stored, "{answer}");
    assert_eq!(answer["last"].as_u64().unwrap(), stored + 2, "{answer}");
    assert_eq!(answer["checkpoint"]["size"].as_u64().unwrap(), stored + 3);
    assert_eq!(answer["normalised"]["k8s-audit"], 3, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (_keep, pause) = mpsc::channel::<()>();
    loop {
        let found = api_indices(&base, &auditor, "source:k8s-audit");
        if found == vec![stored, stored + 1, stored + 2] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "posted events not searchable: {found:?}"
        );
        let _ = pause.recv_timeout(Duration::from_millis(100));
    }

    // Tokens: admins list them (never the secret); others may not.
    let (status, tokens) = get(&base, "/api/v1/tokens", Some(ADMIN));
    assert_eq!(status, 200);
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 5, "{tokens}");
    assert!(!tokens.to_string().contains(&auditor[18..]));
    assert_eq!(get(&base, "/api/v1/tokens", Some(&auditor)).0, 403);
    // A revoked token stops working at once.
    let o = acta(data, &["token", "revoke", token_id(&auditor)]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(get(&base, &search, Some(&auditor)).0, 401);

    // The tlog read paths serve the ledger's own files, and nothing else.
    let log = data.join("ledger/log");
    let (status, checkpoint) = get_bytes(&base, "/tlog/checkpoint", None);
    assert_eq!(status, 200);
    assert_eq!(checkpoint, std::fs::read(log.join("checkpoint")).unwrap());
    let size = get(&base, "/healthz", None).1["entries"].as_u64().unwrap();
    let tile = if size >= 256 {
        "tile/0/000".to_owned()
    } else {
        format!("tile/0/000.p/{size}")
    };
    let (status, bytes) = get_bytes(&base, &format!("/tlog/{tile}"), None);
    assert_eq!(status, 200, "{tile}");
    assert_eq!(bytes, std::fs::read(log.join(&tile)).unwrap());
    assert_eq!(bytes.len() as u64, 32 * size.min(256));
    for bad in [
        "/tlog/tile/0/../../../tokens.json",
        "/tlog/tile/0/%2e%2e/%2e%2e/%2e%2e/tokens.json",
        "/tlog/tile/entries/000.p/0",
        "/tlog/../tokens.json",
        "/api/v1/nothing",
    ] {
        let (status, body) = get_bytes(&base, bad, Some(ADMIN));
        assert!(status == 404 || status == 400, "{bad}: {status}");
        assert!(!String::from_utf8_lossy(&body).contains("sha256"), "{bad}");
    }

    // Every /api route × every kind of caller.
    let (_keep, pause) = mpsc::channel::<()>();
    let _ = pause.recv_timeout(Duration::from_millis(1100));
    let record = br#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","userName":"matrix"}}"#;
    let callers: [(&str, Option<&str>); 6] = [
        ("no token", None),
        (
            "bad token",
            Some("acta_ffffffffffff_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        ("expired", Some(expired.as_str())),
        ("ingest", Some(ingest.as_str())),
        ("auditor", Some(reader.as_str())),
        ("admin", Some(ADMIN)),
    ];
    // Expected status per caller, in the order above.
    let routes: [(&str, &str, [u16; 6]); 15] = [
        (
            "GET",
            "/api/v1/search?q=outcome:failure",
            [401, 401, 401, 403, 200, 200],
        ),
        (
            "GET",
            "/api/v1/stats?by=action",
            [401, 401, 401, 403, 200, 200],
        ),
        (
            "POST",
            "/api/v1/ingest?source=matrix",
            [401, 401, 401, 200, 403, 200],
        ),
        ("GET", "/api/v1/events/0", [401, 401, 401, 403, 200, 200]),
        ("GET", "/api/v1/alerts", [401, 401, 401, 403, 200, 200]),
        (
            "GET",
            "/api/v1/export?q=outcome:failure",
            [401, 401, 401, 403, 200, 200],
        ),
        ("GET", "/api/v1/ledger", [401, 401, 401, 403, 200, 200]),
        ("GET", "/api/v1/me", [401, 401, 401, 200, 200, 200]),
        ("GET", "/api/v1/tokens", [401, 401, 401, 403, 403, 200]),
        (
            "GET",
            "/api/v1/openapi.json",
            [401, 401, 401, 200, 200, 200],
        ),
        ("GET", "/metrics", [401, 401, 401, 403, 200, 200]),
        // Receivers not configured: 404 for whoever may write, after the token.
        (
            "POST",
            "/api/v1/ingest/github",
            [401, 401, 401, 404, 403, 404],
        ),
        (
            "POST",
            "/api/v1/ingest/gitlab",
            [401, 401, 401, 404, 403, 404],
        ),
        (
            "POST",
            "/api/v1/ingest/kubernetes",
            [401, 401, 401, 404, 403, 404],
        ),
        // A malformed query string is answered only to a caller with a valid token.
        (
            "GET",
            "/api/v1/search?zzz=1",
            [401, 401, 401, 400, 400, 400],
        ),
    ];
    for (method, path, want) in routes {
        for ((who, token), want) in callers.iter().zip(want) {
            let (status, body) = if method == "GET" {
                get(&base, path, *token)
            } else {
                post(&base, path, *token, record)
            };
            assert_eq!(status, want, "{method} {path} as {who}: {body}");
        }
    }

    // Every read of the trail is in the ledger: the auditor's five reads above, by route.
    let reads = format!("source:acta-access AND actor:{}", token_id(&reader));
    let deadline = Instant::now() + Duration::from_secs(10);
    let by_route = loop {
        let (status, counts) = get(
            &base,
            &format!("/api/v1/stats?by=action&q={}", urlencode(&reads)),
            Some(ADMIN),
        );
        assert_eq!(status, 200, "{counts}");
        let rows: Vec<(String, u64)> = counts["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["action"].as_str().unwrap().to_owned(),
                    r["count"].as_u64().unwrap(),
                )
            })
            .collect();
        if rows.iter().map(|r| r.1).sum::<u64>() >= 5 || Instant::now() > deadline {
            break rows;
        }
        let _ = pause.recv_timeout(Duration::from_millis(100));
    };
    let mut by_route = by_route;
    by_route.sort();
    assert_eq!(
        by_route,
        [
            ("alerts", 1),
            ("event", 1),
            ("export", 1),
            ("search", 1),
            ("stats", 1),
        ]
        .map(|(r, n)| (r.to_owned(), n))
        .to_vec()
    );
    let (_, found) = get(
        &base,
        &format!("/api/v1/search?q={}", urlencode(&reads)),
        Some(ADMIN),
    );
    let one = found["events"][0]["index"].as_u64().unwrap();
    let (status, record) = get(&base, &format!("/api/v1/events/{one}"), Some(ADMIN));
    assert_eq!(status, 200, "{record}");
    let user = &record["event"]["actor"]["user"];
    assert_eq!(user["uid"], token_id(&reader), "{record}");
    assert_eq!(user["type"], "auditor", "{record}");
    assert_eq!(
        record["event"]["src_endpoint"]["ip"], "127.0.0.1",
        "{record}"
    );

    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    assert!(said.contains("final checkpoint"), "{said}");
    let o = acta(data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = acta(data, &["search", "-o", "ndjson", "source:k8s-audit"]);
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().count(), 3);
}

/// The event page gives what `acta show` gives, with a proof `acta proof --verify` accepts; the
/// alerts are those `acta stats --alerts` counts; a policy can limit a role to one source, and a
/// broken policy file leaves the previous policies in force.
#[test]
fn serve_events_alerts_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/sigma");
    let mut args = vec![
        "ingest".to_owned(),
        "-q".to_owned(),
        "--rules".to_owned(),
        rules.display().to_string(),
    ];
    let stratus = testdata("cloudtrail/stratus");
    let mut files: Vec<_> = std::fs::read_dir(&stratus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = acta(&data, &args);
    assert!(o.status.success(), "{}", text(&o));
    let falco = testdata("k8s-audit/falco");
    let o = acta(
        &data,
        &[
            "ingest",
            "-q",
            falco.join("attach_pod.json").to_str().unwrap(),
            falco
                .join("attach_cluster_admin_role.json")
                .to_str()
                .unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = acta(&data, &["stats", "--alerts", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let cli_alerts: Value = serde_json::from_slice(&o.stdout).unwrap();
    let alerts_total = cli_alerts["alerts"].as_u64().unwrap();
    assert!(alerts_total > 0, "{cli_alerts}");
    let o = acta(&data, &["show", "--json", "5"]);
    assert!(o.status.success(), "{}", text(&o));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();

    let server = Server::start(&data);
    let base = server.base.clone();

    // One event: what `acta show` gives, with a proof that checks offline.
    let (status, event) = get(&base, "/api/v1/events/5", Some(ADMIN));
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["event"], shown["event"]);
    assert_eq!(event["raw"], shown["raw"]);
    assert_eq!(event["source"], "cloudtrail");
    assert_eq!(event["verified"], true, "{event}");
    assert!(event["proof"]["tree_size"].as_u64().unwrap() > 5);
    assert!(!event["proof"]["hashes"].as_array().unwrap().is_empty());
    let receipt = dir.path().join("receipt.txt");
    std::fs::write(&receipt, event["receipt"].as_str().unwrap()).unwrap();
    let record = dir.path().join("record.json");
    std::fs::write(&record, event["raw"].as_str().unwrap()).unwrap();
    let o = acta(
        &data,
        &[
            "proof",
            "--verify",
            receipt.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).starts_with("ok: entry 5"), "{}", text(&o));
    assert_eq!(get(&base, "/api/v1/events/99999999", Some(ADMIN)).0, 404);
    assert_eq!(get(&base, "/api/v1/events/abc", Some(ADMIN)).0, 400);

    // The alerts: as many as the command line counts, each naming its rule and entries.
    let (status, alerts) = get(&base, "/api/v1/alerts?limit=1000", Some(ADMIN));
    assert_eq!(status, 200, "{alerts}");
    assert_eq!(alerts["total"].as_u64().unwrap(), alerts_total, "{alerts}");
    let listed = alerts["alerts"].as_array().unwrap();
    assert_eq!(listed.len() as u64, alerts_total);
    for a in listed {
        assert!(a["title"].as_str().is_some_and(|t| !t.is_empty()), "{a}");
        assert!(!a["entries"].as_array().unwrap().is_empty(), "{a}");
        assert!(a["mtti_event_ms"].as_i64().is_some(), "{a}");
    }
    let summary = &alerts["summary"];
    assert_eq!(summary["complete"], true);
    let by_severity: u64 = summary["by_severity"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_severity, alerts_total);
    assert_eq!(
        summary["mtti_event_ms"], cli_alerts["mean_time_to_insight_ms"],
        "{summary}"
    );
    let (_, page) = get(&base, "/api/v1/alerts?limit=2&offset=1", Some(ADMIN));
    assert_eq!(
        page["alerts"].as_array().unwrap().len(),
        2.min(alerts_total as usize - 1)
    );
    assert_eq!(page["alerts"][0]["index"], listed[1]["index"]);

    // The ledger's state agrees with its public checkpoint.
    let (status, ledger) = get(&base, "/api/v1/ledger", Some(ADMIN));
    assert_eq!(status, 200, "{ledger}");
    let (_, checkpoint) = get_bytes(&base, "/tlog/checkpoint", None);
    let checkpoint = String::from_utf8(checkpoint).unwrap();
    let lines: Vec<&str> = checkpoint.lines().collect();
    // The newest signed checkpoint; the published one follows it.
    assert_eq!(ledger["origin"], lines[0]);
    assert!(ledger["size"].as_u64().unwrap() >= lines[1].parse::<u64>().unwrap());
    let note = ledger["checkpoint"].as_str().unwrap();
    assert_eq!(note.lines().nth(1).unwrap(), ledger["size"].to_string());
    assert_eq!(
        note.lines().nth(2).unwrap(),
        ledger["root"].as_str().unwrap()
    );
    // Its root is the root the event's proof leads to, when the sizes agree.
    if ledger["size"] == event["proof"]["tree_size"] {
        assert_eq!(ledger["root"], event["proof"]["root"]);
    }

    // A role limited to one source by a policy sees that source only.
    let policies = data.join("policies.cedar");
    let mut text_now = std::fs::read_to_string(&policies).unwrap();
    text_now.push_str(
        "\n@id(\"k8s-reader\")\npermit (principal in Acta::Role::\"k8s-reader\", action == Acta::Action::\"read\", resource == Acta::Source::\"k8s-audit\");\n",
    );
    std::fs::write(&policies, &text_now).unwrap();
    let o = acta(
        &data,
        &["token", "create", "--role", "k8s-reader", "--name", "k8s"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    let k8s = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let (status, seen) = get(&base, "/api/v1/search?limit=1000", Some(&k8s));
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["total"], 2, "{seen}");
    // So does its export, even of a query that would widen it.
    let (status, exported) = get_bytes(
        &base,
        &format!(
            "/api/v1/export?q={}",
            urlencode("NOT source:k8s-audit OR *")
        ),
        Some(&k8s),
    );
    assert_eq!(status, 200);
    let exported: Vec<Value> = String::from_utf8(exported)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 2, "{exported:?}");
    assert!(
        exported.iter().all(|e| e["source"] == "k8s-audit"),
        "{exported:?}"
    );
    assert!(
        seen["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source"] == "k8s-audit")
    );
    let (_, counted) = get(&base, "/api/v1/stats?by=source", Some(&k8s));
    assert_eq!(counted["rows"].as_array().unwrap().len(), 1, "{counted}");
    for path in ["/api/v1/events/5", "/api/v1/alerts", "/api/v1/ledger"] {
        let (status, body) = get(&base, path, Some(&k8s));
        assert_eq!(status, 403, "{path}: {body}");
    }
    let k8s_entry = seen["events"][0]["index"].as_u64().unwrap();
    let (status, _) = get(&base, &format!("/api/v1/events/{k8s_entry}"), Some(&k8s));
    assert_eq!(status, 200);
    // No query widens the narrowing: OR, NOT and parentheses stay inside it.
    for (q, want) in [
        ("source:cloudtrail OR source:k8s-audit", 2),
        ("source:cloudtrail", 0),
        ("NOT source:k8s-audit", 0),
        ("(source:cloudtrail) OR (*)", 2),
        ("NOT (NOT source:cloudtrail)", 0),
    ] {
        let (status, found) = get(
            &base,
            &format!("/api/v1/search?limit=1000&q={}", urlencode(q)),
            Some(&k8s),
        );
        assert_eq!(status, 200, "{q}: {found}");
        assert_eq!(found["total"], want, "{q}: {found}");
        let (_, counted) = get(
            &base,
            &format!("/api/v1/stats?by=source&q={}", urlencode(q)),
            Some(&k8s),
        );
        assert!(
            counted["rows"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["source"] == "k8s-audit"),
            "{q}: {counted}"
        );
    }
    let (status, _) = get(
        &base,
        &format!("/api/v1/search?q={}", urlencode("x) OR (source:cloudtrail")),
        Some(&k8s),
    );
    assert_eq!(status, 400);
    // A role that may read the alerts too sees alerts only, whatever its query.
    let mut with_alerts = std::fs::read_to_string(&policies).unwrap();
    with_alerts.push_str(
        "\n@id(\"k8s-alerts\")\npermit (principal in Acta::Role::\"k8s-reader\", action == Acta::Action::\"read\", resource == Acta::Source::\"acta-finding\");\n",
    );
    std::fs::write(&policies, &with_alerts).unwrap();
    for q in [
        "",
        "* OR source:cloudtrail",
        "NOT source:acta-finding OR source:cloudtrail",
    ] {
        let (status, listed) = get(
            &base,
            &format!("/api/v1/alerts?limit=1000&q={}", urlencode(q)),
            Some(&k8s),
        );
        assert_eq!(status, 200, "{q}: {listed}");
        let total = listed["total"].as_u64().unwrap();
        assert!(total <= alerts_total, "{q}: {total}");
        assert!(
            listed["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["title"].is_string()),
            "{q}"
        );
    }
    assert_eq!(
        get(
            &base,
            "/api/v1/alerts?q=x%29%20OR%20%28source%3Acloudtrail",
            Some(&k8s)
        )
        .0,
        400
    );
    std::fs::write(&policies, &text_now).unwrap();
    // Refused reads are recorded too, as failures: the event and the alerts refused above.
    let (_keep, pause) = mpsc::channel::<()>();
    let _ = pause.recv_timeout(Duration::from_millis(1200));
    let (_, refused) = get(
        &base,
        &format!(
            "/api/v1/search?q={}",
            urlencode(&format!(
                "source:acta-access outcome:failure actor:{}",
                token_id(&k8s)
            ))
        ),
        Some(ADMIN),
    );
    let mut routes: Vec<&str> = refused["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    routes.sort_unstable();
    routes.dedup();
    assert_eq!(routes, ["alerts", "event"], "{refused}");
    // A forbid on one source narrows even a role that may read the whole trail, and a role
    // forbidden to write a source must name the source it writes.
    let mut forbids = text_now.clone();
    forbids.push_str(
        "\n@id(\"no-cloudtrail\")\nforbid (principal in Acta::Role::\"auditor\", action, resource == Acta::Source::\"cloudtrail\");\n\
         @id(\"ingest-no-cloudtrail\")\nforbid (principal in Acta::Role::\"ingest\", action == Acta::Action::\"write\", resource == Acta::Source::\"cloudtrail\");\n",
    );
    std::fs::write(&policies, &forbids).unwrap();
    let auditor = create_token(&data, "auditor");
    let ingest = create_token(&data, "ingest");
    let (_, all) = get(&base, "/api/v1/stats?by=source", Some(&auditor));
    let sources: Vec<&str> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert!(
        !sources.contains(&"cloudtrail") && sources.contains(&"k8s-audit"),
        "{all}"
    );
    assert_eq!(get(&base, "/api/v1/events/5", Some(&auditor)).0, 403);
    let record = br#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","userName":"forbid"}}"#;
    let (status, refused) = post(&base, "/api/v1/ingest", Some(&ingest), record);
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("?source=")
    );
    let (status, _) = post(
        &base,
        "/api/v1/ingest?source=cloudtrail",
        Some(&ingest),
        record,
    );
    assert_eq!(status, 403);
    let (status, stored) = post(
        &base,
        "/api/v1/ingest?source=s3-trail",
        Some(&ingest),
        record,
    );
    assert_eq!(status, 200, "{stored}");
    std::fs::write(&policies, &text_now).unwrap();
    // A broken file: the policies in force stay.
    std::fs::write(&policies, "permit (principal, action, resource").unwrap();
    assert_eq!(get(&base, "/api/v1/search", Some(&k8s)).0, 200);
    assert_eq!(get(&base, "/api/v1/search", Some(ADMIN)).0, 200);
    // Without the policy, the role may read nothing.
    let without = text_now.replace("@id(\"k8s-reader\")", "").replace(
        "permit (principal in Acta::Role::\"k8s-reader\", action == Acta::Action::\"read\", resource == Acta::Source::\"k8s-audit\");",
        "",
    );
    std::fs::write(&policies, without).unwrap();
    assert_eq!(get(&base, "/api/v1/search", Some(&k8s)).0, 403);

    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    assert!(
        said.contains("the previous policies stay in force"),
        "{said}"
    );
    let o = acta(&data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// A value of the Prometheus text: the sum over every sample of `name` whose labels contain
/// `labels`.
fn metric(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(labels))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// A server started on a new data directory, with detection configured in acta.toml, raises the
/// alerts `acta ingest --rules` raises for the same records, hands them to its sinks, and reports
/// it all in /metrics; the OpenAPI document names every route.
#[test]
fn serve_detects_and_reports_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/sigma");
    let alerts_file = dir.path().join("alerts.ndjson");
    let config = dir.path().join("acta.toml");
    std::fs::write(
        &config,
        format!(
            "[detect]\nrules = [{:?}]\n\n[[detect.sink]]\ntype = \"file\"\npath = {:?}\n",
            rules.display().to_string(),
            alerts_file.display().to_string()
        ),
    )
    .unwrap();
    let stratus = testdata("cloudtrail/stratus");
    let mut files: Vec<_> = std::fs::read_dir(&stratus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    // The same records through the command line, for the expected alerts.
    let offline = dir.path().join("offline");
    let mut args = vec![
        "ingest".to_owned(),
        "-q".to_owned(),
        "--rules".to_owned(),
        rules.display().to_string(),
    ];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = acta(&offline, &args);
    assert!(o.status.success(), "{}", text(&o));
    let o = acta(&offline, &["stats", "--alerts", "-o", "json"]);
    let expected: Value = serde_json::from_slice(&o.stdout).unwrap();
    let expected = expected["alerts"].as_u64().unwrap();
    assert!(expected > 0);

    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()], &[]);
    let base = server.base.clone();
    let (mut stored, mut raised) = (0, 0);
    for f in &files {
        let (status, answer) = post(
            &base,
            "/api/v1/ingest",
            Some(ADMIN),
            &std::fs::read(f).unwrap(),
        );
        assert_eq!(status, 200, "{}: {answer}", f.display());
        stored += answer["normalised"]["cloudtrail"].as_u64().unwrap_or(0);
        raised += answer["alerts"].as_u64().unwrap();
        // One batch: its entries, then the alerts it raised.
        let (first, last) = (
            answer["first"].as_u64().unwrap(),
            answer["last"].as_u64().unwrap(),
        );
        assert_eq!(last + 1 - first, answer["stored"].as_u64().unwrap());
        assert_eq!(
            answer["checkpoint"]["size"].as_u64().unwrap(),
            last + 1 + answer["alerts"].as_u64().unwrap(),
            "{answer}"
        );
    }
    if raised != expected {
        let (_, said) = server.stop();
        panic!("alerts raised by the server {raised}, by acta ingest {expected}: {said}");
    }
    // Searchable within about a second.
    let (_keep, pause) = mpsc::channel::<()>();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, alerts) = get(&base, "/api/v1/alerts", Some(ADMIN));
        assert_eq!(status, 200, "{alerts}");
        if alerts["total"].as_u64().unwrap() == raised {
            break;
        }
        assert!(Instant::now() < deadline, "{alerts}");
        let _ = pause.recv_timeout(Duration::from_millis(100));
    }

    // Metrics: a token that may read the trail.
    let auditor = create_token(&data, "auditor");
    let ingest = create_token(&data, "ingest");
    assert_eq!(get_bytes(&base, "/metrics", None).0, 401);
    assert_eq!(get_bytes(&base, "/metrics", Some(&ingest)).0, 403);
    let deadline = Instant::now() + Duration::from_secs(15);
    let (_keep, pause) = mpsc::channel::<()>();
    let exposed = loop {
        let (status, body) = get_bytes(&base, "/metrics", Some(&auditor));
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        // The file sink delivers in the background.
        if metric(&text, "acta_sink_delivered_total", "") == raised || Instant::now() > deadline {
            break text;
        }
        let _ = pause.recv_timeout(Duration::from_millis(100));
    };
    assert_eq!(
        metric(&exposed, "acta_alerts_total", ""),
        raised,
        "{exposed}"
    );
    assert_eq!(
        metric(&exposed, "acta_sink_delivered_total", ""),
        raised,
        "{exposed}"
    );
    assert_eq!(
        metric(&exposed, "acta_sink_failures_total", ""),
        0,
        "{exposed}"
    );
    assert_eq!(
        metric(
            &exposed,
            "acta_ingest_events_total",
            "format=\"cloudtrail\""
        ),
        stored,
        "{exposed}"
    );
    assert_eq!(
        metric(&exposed, "acta_ingest_requests_total", ""),
        files.len() as u64
    );
    assert_eq!(
        metric(&exposed, "acta_ingest_ack_seconds_count", ""),
        files.len() as u64
    );
    assert_eq!(
        metric(
            &exposed,
            "acta_http_requests_total",
            "route=\"/api/v1/ingest\",code=\"200\""
        ),
        files.len() as u64
    );
    // Every answered read of the alerts was recorded.
    let answered = metric(
        &exposed,
        "acta_http_requests_total",
        "route=\"/api/v1/alerts\",code=\"200\"",
    );
    assert!(answered >= 1);
    assert_eq!(
        metric(&exposed, "acta_reads_recorded_total", "route=\"alerts\""),
        answered
    );
    assert!(metric(&exposed, "acta_ledger_entries", "") >= stored + raised);
    assert_eq!(metric(&exposed, "acta_writer_up", ""), 1);
    assert_eq!(
        std::fs::read_to_string(&alerts_file)
            .unwrap()
            .lines()
            .count() as u64,
        raised
    );

    // The OpenAPI document: any valid token, and it names every route the server has.
    assert_eq!(get(&base, "/api/v1/openapi.json", None).0, 401);
    let (status, doc) = get(&base, "/api/v1/openapi.json", Some(&ingest));
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/healthz",
        "/metrics",
        "/tlog/checkpoint",
        "/tlog/tile/{path}",
        "/api/v1/openapi.json",
        "/api/v1/search",
        "/api/v1/stats",
        "/api/v1/events/{index}",
        "/api/v1/alerts",
        "/api/v1/export",
        "/api/v1/ledger",
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/ingest",
        "/api/v1/ingest/github",
        "/api/v1/ingest/gitlab",
        "/api/v1/ingest/kubernetes",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    let routes = text_routes(&exposed);
    assert!(routes.contains(&"/api/v1/ingest".to_owned()), "{routes:?}");

    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    assert!(said.contains("alert sink file"), "{said}");
    let o = acta(&data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Route patterns the metrics name.
fn text_routes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("acta_http_requests_total{route=\""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// With a certificate, the server speaks HTTPS only; a certificate that does not fit its key is
/// refused at start.
#[test]
fn serve_speaks_tls_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (./scripts/test installs it)");
    assert!(made.status.success(), "{}", text(&made));
    let server = Server::start_with(
        &data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let base = server.base.clone();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let pem = std::fs::read(&cert).unwrap();
    let root = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    root,
                ])))
                .build(),
        )
        .build()
        .into();
    let mut r = agent
        .get(format!("{base}/api/v1/me"))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let me: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
    assert_eq!(me["role"], "admin");
    // Without the certificate as a root, a client refuses the server; plain HTTP gets nowhere.
    assert!(agent_plain().get(format!("{base}/healthz")).call().is_err());
    let plain = base.replacen("https://", "http://", 1);
    assert!(
        agent_plain()
            .get(format!("{plain}/healthz"))
            .call()
            .is_err()
    );
    let (clean, said) = server.stop();
    assert!(clean, "{said}");

    // A key that is not the certificate's: refused at start, saying so.
    let other = dir.path().join("other.pem");
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let o = acta(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            other.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("do not make a server identity"),
        "{}",
        text(&o)
    );
}

fn agent_plain() -> ureq::Agent {
    agent()
}

/// `acta serve --demo` on a new data directory stores every bundled sample (their licences
/// beside them), raises alerts with the bundled rules, and serves them; started again, it serves
/// what is there without storing the samples twice.
#[test]
fn serve_demo_loads_the_samples_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--demo"], &[]);
    let base = server.base.clone();
    let (_keep, pause) = mpsc::channel::<()>();
    let deadline = Instant::now() + Duration::from_secs(20);
    let counts = loop {
        let (status, counts) = get(&base, "/api/v1/stats?by=source", Some(ADMIN));
        assert_eq!(status, 200, "{counts}");
        let total: u64 = counts["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count"].as_u64().unwrap())
            .sum();
        if total > 2_000 || Instant::now() > deadline {
            break counts;
        }
        let _ = pause.recv_timeout(Duration::from_millis(200));
    };
    let count = |source: &str| {
        counts["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source"] == source)
            .map_or(0, |r| r["count"].as_u64().unwrap())
    };
    // The bundled samples, source by source (testdata/README.md).
    assert_eq!(count("cloudtrail"), 310, "{counts}");
    for source in [
        "k8s-audit",
        "github-audit",
        "github-webhook",
        "gitlab-audit",
        "syslog",
        "journald",
        "pgaudit",
        "acta-finding",
    ] {
        assert!(count(source) > 0, "{source}: {counts}");
    }
    let (_, alerts) = get(&base, "/api/v1/alerts?limit=1", Some(ADMIN));
    assert_eq!(alerts["total"].as_u64().unwrap(), count("acta-finding"));
    for licence in [
        "demo/testdata/cloudtrail/stratus/LICENSE",
        "demo/testdata/k8s-audit/falco/LICENSE",
        "demo/rules/sigma/LICENSE",
    ] {
        assert!(data.join(licence).exists(), "{licence}");
    }
    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    let stored = count("cloudtrail");
    let server = Server::start_with(&data, &["--demo"], &[]);
    let (_, again) = get(
        &server.base,
        "/api/v1/stats?by=source&q=source%3Acloudtrail",
        Some(ADMIN),
    );
    assert_eq!(again["rows"][0]["count"].as_u64().unwrap(), stored);
    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    assert!(said.contains("final checkpoint"), "{said}");
    let o = acta(&data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Every sample of every source, posted file by file to `POST /api/v1/ingest`, is stored and
/// searched back as `acta ingest` of the same files stores it; after the server stops,
/// `acta verify` passes and the tlog read paths of a new server serve the checkpoint it checked.
#[test]
fn serve_ingests_every_source_as_the_command_line_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let offline = dir.path().join("offline");
    let mut files = Vec::new();
    let mut stack = vec![testdata("")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(testdata(""))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                // Golden outputs, acta's own findings and records needing a mapping are not input.
                if !["expected", "acta", "json"].contains(&rel.as_str()) {
                    stack.push(p);
                }
            } else if !rel.ends_with("LICENSE") && !rel.ends_with("README.md") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 50, "{}", files.len());
    let server = Server::start(&data);
    let base = server.base.clone();
    let mut stored = 0;
    for f in &files {
        let mut req = agent()
            .post(format!("{base}/api/v1/ingest"))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .header("Content-Type", "application/octet-stream");
        if f.extension().is_some_and(|e| e == "gz") {
            req = req.header("Content-Encoding", "gzip");
        }
        let mut resp = req.send(&std::fs::read(f).unwrap()[..]).unwrap();
        let status = resp.status().as_u16();
        let answer: Value =
            serde_json::from_slice(&resp.body_mut().read_to_vec().unwrap()).unwrap();
        assert_eq!(status, 200, "{}: {answer}", f.display());
        assert_eq!(answer["rejected"], 0, "{}: {answer}", f.display());
        stored += answer["stored"].as_u64().unwrap();
        // The command line stores the same file into another data directory.
        let o = acta(&offline, &["ingest", "-q", f.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = acta(&offline, &["stats", "--by", "source", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cli_rows = cli.as_array().or(cli["rows"].as_array()).unwrap().clone();
    let cli_total: u64 = cli_rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(stored, cli_total);
    let (_keep, pause) = mpsc::channel::<()>();
    let deadline = Instant::now() + Duration::from_secs(10);
    let api_rows = loop {
        let (_, counts) = get(
            &base,
            "/api/v1/stats?by=source&q=NOT%20source%3Aacta-access",
            Some(ADMIN),
        );
        let rows = counts["rows"].as_array().unwrap().clone();
        let total: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
        if total == stored || Instant::now() > deadline {
            break rows;
        }
        let _ = pause.recv_timeout(Duration::from_millis(100));
    };
    let by_source = |rows: &[Value]| {
        let mut v: Vec<(String, u64)> = rows
            .iter()
            .map(|r| {
                (
                    r["source"].as_str().unwrap().to_owned(),
                    r["count"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let api_sources = by_source(&api_rows);
    assert_eq!(api_sources, by_source(&cli_rows));
    for source in [
        "cloudtrail",
        "github-audit",
        "github-webhook",
        "gitlab-audit",
        "k8s-audit",
        "syslog",
        "journald",
        "pgaudit",
    ] {
        assert!(
            api_sources.iter().any(|(s, n)| s == source && *n > 0),
            "{source}"
        );
    }
    // Searches agree, hit for hit (records without a time of their own take their time of
    // receipt, so hits are compared by what they say).
    let said = |v: &Value| {
        ["source", "actor", "action", "resource", "outcome", "ip"]
            .map(|k| v[k].to_string())
            .join(" ")
    };
    for q in [
        "actor:christophe",
        "outcome:failure",
        "source:pgaudit action:SELECT",
        "source:syslog actor:root",
    ] {
        let o = acta(&offline, &["search", "-o", "ndjson", "--limit", "10000", q]);
        let mut cli_hits: Vec<String> = String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| said(&serde_json::from_str(l).unwrap()))
            .collect();
        let (_, api) = get(
            &base,
            &format!("/api/v1/search?limit=10000&q={}", urlencode(q)),
            Some(ADMIN),
        );
        let mut api_hits: Vec<String> =
            api["events"].as_array().unwrap().iter().map(said).collect();
        cli_hits.sort();
        api_hits.sort();
        assert!(!cli_hits.is_empty(), "{q}");
        assert_eq!(api_hits, cli_hits, "{q}");
    }
    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    let o = acta(&data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    // The read paths of a new server serve the checkpoint `acta verify` just checked.
    let verified = std::fs::read(data.join("ledger/log/checkpoint")).unwrap();
    let root = String::from_utf8_lossy(&verified)
        .lines()
        .nth(2)
        .unwrap()
        .to_owned();
    assert!(text(&o).contains(&format!("root {root}")), "{}", text(&o));
    let server = Server::start(&data);
    let (status, served) = get_bytes(&server.base, "/tlog/checkpoint", None);
    assert_eq!(status, 200);
    assert_eq!(served, verified);
    // An export through the API is the command line's, line for line, under the same checkpoint.
    let o = acta(&data, &["export", "--format", "ndjson", "outcome:failure"]);
    assert!(o.status.success(), "{}", text(&o));
    let cli = String::from_utf8(o.stdout).unwrap();
    assert!(cli.lines().count() > 1, "{cli}");
    let export = |limit: &str| {
        let mut r = agent()
            .get(format!(
                "{}/api/v1/export?q=outcome%3Afailure{limit}",
                server.base
            ))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let size = r.headers()["acta-checkpoint-size"]
            .to_str()
            .unwrap()
            .to_owned();
        (
            size,
            String::from_utf8(r.body_mut().read_to_vec().unwrap()).unwrap(),
        )
    };
    let (size, api) = export("");
    assert_eq!(api, cli);
    let size: u64 = size.parse().unwrap();
    let verified_size: u64 = String::from_utf8_lossy(&verified)
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(size >= verified_size, "{size} {verified_size}");
    let (_, first_two) = export("&limit=2");
    assert_eq!(
        first_two.lines().collect::<Vec<_>>(),
        cli.lines().take(2).collect::<Vec<_>>()
    );
    let (clean, said) = server.stop();
    assert!(clean, "{said}");
}

/// Reads of the trail are recorded, not detected on: with behavioural detectors that report from
/// the first day, a token reading with new user agents through new routes raises no alert —
/// while the server runs, nor after a restart, when the detectors learn from the ledger — though
/// the records it ingests do. Alerts are counted in /metrics once durable, before the request that
/// raised them is answered.
#[test]
fn reads_of_the_trail_are_not_detected_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("acta.toml");
    let mut toml = String::from("[detect]\nrules = []\n");
    for kind in ["new_ip", "new_user_agent", "new_api", "new_resource"] {
        toml.push_str(&format!("\n[detect.behaviour.{kind}]\nlearning_days = 0\n"));
    }
    std::fs::write(&config, toml).unwrap();
    let reads = |base: &str, round: &str| {
        let paths = [
            "/api/v1/search?q=action%3ADeleteTrail",
            "/api/v1/stats?by=action",
            "/api/v1/alerts",
            "/api/v1/events/0",
        ];
        for (n, path) in paths.iter().enumerate() {
            let mut r = agent()
                .get(format!("{base}{path}"))
                .header("Authorization", format!("Bearer {ADMIN}"))
                .header("User-Agent", format!("reader/{round}.{n}"))
                .call()
                .unwrap();
            let body = r.body_mut().read_to_vec().unwrap();
            let status = r.status().as_u16();
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        }
    };
    let alerts_counted = |base: &str| {
        let (status, body) = get_bytes(base, "/metrics", Some(ADMIN));
        assert_eq!(status, 200);
        metric(&String::from_utf8(body).unwrap(), "acta_alerts_total", "")
    };

    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()], &[]);
    let base = server.base.clone();
    let file =
        testdata("cloudtrail/stratus/aws.credential-access.ec2-steal-instance-credentials.json");
    let (status, answer) = post(
        &base,
        "/api/v1/ingest",
        Some(ADMIN),
        &std::fs::read(file).unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    let raised = answer["alerts"].as_u64().unwrap();
    assert!(raised > 0, "the ingested records raised no alert: {answer}");
    assert_eq!(alerts_counted(&base), raised);
    reads(&base, "1");
    reads(&base, "2");
    assert_eq!(alerts_counted(&base), raised);
    let (ok, said) = server.stop();
    assert!(ok, "{said}");

    // Restarted: the detectors learn from every entry stored, access records left out.
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()], &[]);
    let base = server.base.clone();
    reads(&base, "3");
    assert_eq!(alerts_counted(&base), 0);
    assert!(server.stop().0);
}
