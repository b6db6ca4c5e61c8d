//! `acta serve`'s native receivers and request limits, end to end: the real samples of GitHub,
//! GitLab and Kubernetes posted to their endpoints as those systems send them, searched back and
//! compared with what `acta ingest` makes of the same bytes; then hostile requests (oversized,
//! gzip bombs, malformed, wrong types, slow clients, path traversal, floods), each answered with
//! a clear JSON error while everything acknowledged stays stored and verifiable.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::serve::Server;
use common::{acta, testdata, text};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITLAB_TOKEN: &str = "gl-stream-3f0a9c1d7e55b2a4";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Status, JSON body (Null when not JSON) and headers of a POST.
fn post(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value, Vec<(String, String)>) {
    let mut req = agent().post(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let hs = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp.body_mut().read_to_vec().unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        hs,
    )
}

fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = agent().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// One request written as given on a fresh connection; the status and body of the answer.
fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer and close before reading all of it.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn create_token(data: &Path, role: &str, name: &str) -> String {
    let o = acta(data, &["token", "create", "--role", role, "--name", name]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={sig}")
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

/// The hits of a search through the API, in ledger order, once `want` of them are indexed.
fn api_hits(base: &str, token: &str, q: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let (_keep, pause) = mpsc::channel::<()>();
    loop {
        let (status, body) = get(
            base,
            &format!("/api/v1/search?limit=10000&q={}", urlencode(q)),
            Some(token),
        );
        assert_eq!(status, 200, "{body}");
        let mut hits = body["events"].as_array().unwrap().clone();
        if hits.len() >= want || Instant::now() > deadline {
            hits.sort_by_key(|h| h["index"].as_u64().unwrap());
            return hits;
        }
        let _ = pause.recv_timeout(Duration::from_millis(100));
    }
}

/// The CLI's hits for a query, in ledger order.
fn cli_hits(data: &Path, q: &str) -> Vec<Value> {
    let o = acta(data, &["search", "-o", "ndjson", "--limit", "10000", q]);
    assert!(o.status.success(), "{}", text(&o));
    let mut hits: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    hits.sort_by_key(|h| h["index"].as_u64().unwrap());
    hits
}

/// What a hit says about the event, without where it sits in the ledger or when it was received.
fn content_of(hits: &[Value], receipt_time: &[bool]) -> Vec<Value> {
    hits.iter()
        .zip(receipt_time)
        .map(|(h, by_receipt)| {
            let mut h = h.clone();
            let o = h.as_object_mut().unwrap();
            o.remove("index");
            if *by_receipt {
                o.remove("time");
                o.remove("time_ms");
            }
            h
        })
        .collect()
}

/// `acta export` of a query: the full normalised events with their raw records, in ledger order.
fn export(data: &Path, q: &str) -> Vec<Value> {
    let o = acta(data, &["export", q]);
    assert!(o.status.success(), "{}", text(&o));
    let mut rows: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|r| r["index"].as_u64().unwrap());
    rows
}

/// An exported event without the time it was received (events with no time of their own take
/// it as theirs).
fn event_content(row: &Value) -> Value {
    let mut e = row["event"].clone();
    if e["unmapped"].get("acta_time_note").is_some() {
        e.as_object_mut().unwrap().remove("time");
    }
    e
}

/// Every Kubernetes audit event of `testdata/k8s-audit`, as compact JSON.
fn k8s_events() -> (Vec<Value>, Vec<Value>) {
    let mut falco = Vec::new();
    let dir = testdata("k8s-audit/falco");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    for p in names {
        let text = std::fs::read_to_string(&p).unwrap();
        let values: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(v) => vec![v],
            Err(_) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        };
        falco.extend(values.into_iter().filter(|v| v["kind"] == "Event"));
    }
    let mut other = Vec::new();
    for f in [
        "rbac-tool/testdata-01.json",
        "rbac-tool/testdata-02.json",
        "audit2rbac/demo.log",
    ] {
        for l in std::fs::read_to_string(testdata(&format!("k8s-audit/{f}")))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            other.push(serde_json::from_str(l).unwrap());
        }
    }
    (falco, other)
}

/// An `EventList` as the API server's webhook backend posts it (items without kind/apiVersion).
fn event_list(items: &[Value]) -> Vec<u8> {
    let items: Vec<Value> = items
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let o = e.as_object_mut().unwrap();
            o.remove("kind");
            o.remove("apiVersion");
            e
        })
        .collect();
    serde_json::to_vec(&json!({
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": items,
    }))
    .unwrap()
}

fn lines(rel: &str) -> Vec<Vec<u8>> {
    std::fs::read(testdata(rel))
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A data directory with a ledger (the server serves an existing one) and `config` as acta.toml.
fn data_dir(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let first = testdata("cloudtrail/stratus/aws.credential-access.ec2-get-password-data.json");
    let o = acta(dir.path(), &["ingest", "-q", first.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let path = dir.path().join("acta.toml");
    std::fs::write(&path, config).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

#[test]
fn receivers_store_what_each_source_sends() {
    let dir = data_dir(
        r#"
[receivers.github]
secret_file = "github-webhook-secret"

[receivers.gitlab]
token_env = "ACTA_TEST_GITLAB_TOKEN"

[receivers.kubernetes]
"#,
    );
    let data = dir.path();
    std::fs::write(
        data.join("github-webhook-secret"),
        format!("{GITHUB_SECRET}\n"),
    )
    .unwrap();
    let ingest = create_token(data, "ingest", "receivers");
    let auditor = create_token(data, "auditor", "reader");
    let server = Server::start_with(data, &[], &[("ACTA_TEST_GITLAB_TOKEN", GITLAB_TOKEN)]);
    let base = server.base.clone();
    for route in ["github", "gitlab", "kubernetes"] {
        assert!(
            server
                .started
                .contains(&format!("receiver on POST /api/v1/ingest/{route}")),
            "{}",
            server.started
        );
    }
    let (_, health) = get(&base, "/healthz", None);
    let before = health["entries"].as_u64().unwrap();
    let auth = bearer(&ingest);

    // GitHub: a ping is answered, not stored.
    let ping = br#"{"zen":"Design for failure.","hook_id":4242,"hook":{"type":"Repository","id":4242,"events":["push"]},"sender":{"login":"octocat","id":1}}"#;
    let sig = sign(GITHUB_SECRET, ping);
    let (status, answer, _) = post(
        &base,
        "/api/v1/ingest/github",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "ping"),
            ("X-GitHub-Delivery", "ping-1"),
            ("X-Hub-Signature-256", &sig),
        ],
        ping,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], 0, "{answer}");

    // Every real webhook payload, signed as GitHub signs it, with the event name GitHub would
    // send beside it (the golden normalisation of the sample says which).
    let hooks = lines("github/github-webhook.ndjson");
    let expected: Vec<Value> = lines("expected/github/github-webhook.ndjson.ndjson")
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(hooks.len(), expected.len());
    let mut posted_hooks: Vec<Vec<u8>> = Vec::new();
    for (i, (body, want)) in hooks.iter().zip(&expected).enumerate() {
        let sig = sign(GITHUB_SECRET, body);
        let delivery = format!("0000{i:04}-cc78-11e3-81ab-4c9367dc0958");
        let event = want["metadata"]["event_code"].as_str();
        // The first delivery authenticates as GitHub does for a payload URL with credentials.
        let basic = format!(
            "Basic {}",
            base64_encode(format!("acta:{ingest}").as_bytes())
        );
        let mut headers = vec![
            (
                "Authorization",
                if i == 0 {
                    basic.as_str()
                } else {
                    auth.as_str()
                },
            ),
            ("Content-Type", "application/json"),
            ("User-Agent", "GitHub-Hookshot/044aadd"),
            ("X-GitHub-Delivery", delivery.as_str()),
            ("X-Hub-Signature-256", sig.as_str()),
        ];
        if let Some(e) = event {
            headers.push(("X-GitHub-Event", e));
        }
        let (status, answer, _) = post(&base, "/api/v1/ingest/github", &headers, body);
        assert_eq!(status, 200, "delivery {i}: {answer}");
        assert_eq!(answer["stored"], 1, "{answer}");
        assert_eq!(answer["normalised"]["github-webhook"], 1, "{answer}");
        assert_eq!(answer["github"]["delivery"], delivery.as_str());
        assert_eq!(answer["github"]["read_as"].as_str(), event, "{answer}");
        assert_eq!(answer["problems"], json!([]), "{answer}");
        posted_hooks.push(body.clone());
    }
    // A header naming another event than the payload's keys: stored as sent, and said so.
    let push_at = expected
        .iter()
        .position(|e| e["metadata"]["event_code"] == "push")
        .unwrap();
    let body = &hooks[push_at];
    let sig = sign(GITHUB_SECRET, body);
    let (status, answer, _) = post(
        &base,
        "/api/v1/ingest/github",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "issues"),
            ("X-Hub-Signature-256", &sig),
        ],
        body,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["problems"][0]
            .as_str()
            .unwrap()
            .contains("X-GitHub-Event is `issues` but the payload reads as `push`"),
        "{answer}"
    );
    posted_hooks.push(body.clone());

    // Refused deliveries: each a 401 (403 for a token that may not write) with a JSON reason;
    // nothing stored.
    let auditor_auth = bearer(&auditor);
    let body = &hooks[1];
    let good = sign(GITHUB_SECRET, body);
    let wrong_secret = sign("not the secret", body);
    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    for (what, token, sig, payload, want, code) in [
        (
            "wrong secret",
            Some(auth.as_str()),
            Some(wrong_secret.as_str()),
            body.as_slice(),
            401,
            "bad_signature",
        ),
        (
            "altered body",
            Some(auth.as_str()),
            Some(good.as_str()),
            tampered.as_slice(),
            401,
            "bad_signature",
        ),
        (
            "no signature",
            Some(auth.as_str()),
            None,
            body.as_slice(),
            401,
            "bad_signature",
        ),
        (
            "SHA-1 signature",
            Some(auth.as_str()),
            Some("sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"),
            body.as_slice(),
            401,
            "bad_signature",
        ),
        (
            "no token",
            None,
            Some(good.as_str()),
            body.as_slice(),
            401,
            "unauthorized",
        ),
        (
            "read-only token",
            Some(auditor_auth.as_str()),
            Some(good.as_str()),
            body.as_slice(),
            403,
            "forbidden",
        ),
    ] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(t) = token {
            headers.push(("Authorization", t));
        }
        if let Some(s) = sig {
            headers.push(("X-Hub-Signature-256", s));
        }
        let (status, answer, _) = post(&base, "/api/v1/ingest/github", &headers, payload);
        assert_eq!(status, want, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        assert!(answer["error"]["message"].as_str().is_some(), "{answer}");
    }
    // A webhook sending forms instead of JSON is told what to change.
    let (status, answer, _) = post(
        &base,
        "/api/v1/ingest/github",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Hub-Signature-256", &good),
        ],
        body,
    );
    assert_eq!(status, 415, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );

    // GitLab: each streamed audit event with the destination's token.
    let gitlab = lines("gitlab/gitlab-audit.ndjson");
    for (i, event) in gitlab.iter().enumerate() {
        let (status, answer, _) = post(
            &base,
            "/api/v1/ingest/gitlab",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("X-Gitlab-Event-Streaming-Token", GITLAB_TOKEN),
                ("X-Gitlab-Audit-Event-Type", "audit_operation"),
            ],
            event,
        );
        assert_eq!(status, 200, "gitlab {i}: {answer}");
        assert_eq!(answer["stored"], 1, "{answer}");
        assert_eq!(answer["normalised"]["gitlab-audit"], 1, "{answer}");
        assert_eq!(answer["gitlab"]["event_type"], "audit_operation");
    }
    for (what, headers) in [
        (
            "wrong token",
            vec![
                ("Authorization", auth.as_str()),
                (
                    "X-Gitlab-Event-Streaming-Token",
                    "gl-stream-3f0a9c1d7e55b2a5",
                ),
            ],
        ),
        ("no token", vec![("Authorization", auth.as_str())]),
    ] {
        let (status, answer, _) = post(&base, "/api/v1/ingest/gitlab", &headers, &gitlab[0]);
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_signature", "{answer}");
    }

    // Kubernetes: the webhook backend's batches, one entry per event.
    let (falco, other) = k8s_events();
    assert!(falco.len() > 40 && other.len() > 40);
    let lists = [event_list(&falco), event_list(&other)];
    for (list, items) in lists.iter().zip([falco.len(), other.len()]) {
        let (status, answer, _) = post(
            &base,
            "/api/v1/ingest/kubernetes",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            list,
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["stored"], items, "{answer}");
        assert_eq!(answer["normalised"]["k8s-audit"], items, "{answer}");
        assert_eq!(
            answer["last"].as_u64().unwrap() - answer["first"].as_u64().unwrap() + 1,
            items as u64
        );
    }

    // Searched back through the API: exactly what was posted.
    let hooks_hits = api_hits(&base, &auditor, "source:github-webhook", posted_hooks.len());
    let gitlab_hits = api_hits(&base, &auditor, "source:gitlab-audit", gitlab.len());
    let k8s_hits = api_hits(
        &base,
        &auditor,
        "source:k8s-audit",
        falco.len() + other.len(),
    );
    assert_eq!(hooks_hits.len(), posted_hooks.len());
    assert_eq!(gitlab_hits.len(), gitlab.len());
    assert_eq!(k8s_hits.len(), falco.len() + other.len());
    let pushes = expected
        .iter()
        .filter(|e| e["api"]["operation"] == "push")
        .count();
    assert_eq!(
        api_hits(&base, &auditor, "source:github-webhook action:push", 0).len(),
        pushes + 1
    );
    let anonymous = api_hits(
        &base,
        &auditor,
        "source:k8s-audit actor:\"system:anonymous\"",
        1,
    );
    assert!(
        anonymous
            .iter()
            .any(|h| h["action"] == "create" && h["resource"] == "foo"),
        "{anonymous:?}"
    );
    let resets = api_hits(
        &base,
        &auditor,
        "source:gitlab-audit \"ask for password reset\"",
        2,
    );
    assert_eq!(resets.len(), 2, "{resets:?}");

    let started = server.started.clone();
    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    for secret in [GITHUB_SECRET, GITLAB_TOKEN] {
        assert!(!said.contains(secret) && !started.contains(secret));
    }
    let o = acta(data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    // Every delivery is one entry; the reads of the trail above were recorded besides them.
    let o = acta(
        data,
        &[
            "search",
            "-o",
            "ndjson",
            "--limit",
            "100000",
            "NOT source:acta-access",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().lines().count() as u64,
        before + (posted_hooks.len() + gitlab.len() + falco.len() + other.len()) as u64
    );

    // The same bytes through `acta ingest` into another data directory normalise the same.
    let reference = tempfile::tempdir().unwrap();
    let refdata = reference.path();
    let write = |name: &str, records: &[Vec<u8>]| {
        let path = refdata.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        for r in records {
            f.write_all(r).unwrap();
            f.write_all(b"\n").unwrap();
        }
        path
    };
    let hooks_file = write("hooks.ndjson", &posted_hooks);
    let gitlab_file = write("gitlab.ndjson", &gitlab);
    let lists_file = write("lists.json", &lists);
    for (file, format) in [
        (&hooks_file, "github-webhook"),
        (&gitlab_file, "gitlab-audit"),
        (&lists_file, "k8s-audit"),
    ] {
        let o = acta(
            refdata,
            &[
                "ingest",
                "-q",
                "--format",
                format,
                "--source",
                format,
                file.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    for (source, api) in [
        ("github-webhook", &hooks_hits),
        ("gitlab-audit", &gitlab_hits),
        ("k8s-audit", &k8s_hits),
    ] {
        let q = format!("source:{source}");
        let served = export(data, &q);
        let local = export(refdata, &q);
        assert_eq!(served.len(), local.len(), "{source}");
        for (s, l) in served.iter().zip(&local) {
            assert_eq!(s["event"]["raw_data"], l["event"]["raw_data"], "{source}");
            assert_eq!(event_content(s), event_content(l), "{source}");
        }
        // What the API answered is what the command line answers on the reference.
        let by_receipt: Vec<bool> = served
            .iter()
            .map(|r| r["event"]["unmapped"].get("acta_time_note").is_some())
            .collect();
        assert_eq!(
            content_of(api, &by_receipt),
            content_of(&cli_hits(refdata, &q), &by_receipt),
            "{source}"
        );
    }
    // GitHub's bytes are stored exactly as signed.
    let served = export(data, "source:github-webhook");
    for (row, body) in served.iter().zip(&posted_hooks) {
        assert_eq!(row["event"]["raw_data"].as_str().unwrap().as_bytes(), body);
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn hostile_requests_get_clear_errors_and_lose_nothing() {
    let dir = data_dir(
        r#"
[limits]
max_body_bytes = "256KiB"
max_decompressed_bytes = "1MiB"
max_records = 1000
requests_per_second = 2
burst = 30
header_timeout = "2s"
body_timeout = "3s"
"#,
    );
    let data = dir.path();
    let ingest = create_token(data, "ingest", "shipper");
    let flood = create_token(data, "ingest", "flood");
    let auditor = create_token(data, "auditor", "reader");
    let server = Server::start_with(data, &[], &[]);
    let base = server.base.clone();
    let addr = server.addr.clone();
    let auth = bearer(&ingest);
    let ndjson = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-ndjson"),
    ];
    let (_, health) = get(&base, "/healthz", None);
    let mut stored = health["entries"].as_u64().unwrap();

    // Acknowledged first: real Kubernetes audit lines, gzip-compressed as shippers send them.
    let demo = std::fs::read(testdata("k8s-audit/audit2rbac/demo.log")).unwrap();
    let demo_lines = demo
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    let (status, answer, _) = post(
        &base,
        "/api/v1/ingest",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&demo),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], demo_lines, "{answer}");
    stored += demo_lines as u64;

    // Malformed JSON among good records: every record is stored, the answer says which were not
    // understood.
    let ct = lines("cloudtrail/stratus/aws.credential-access.ec2-get-password-data.json");
    let good: Value = serde_json::from_slice(&ct.concat()).unwrap();
    let record = serde_json::to_string(&good[0]).unwrap();
    let mixed =
        format!("{record}\n{{\"eventVersion\": \"1.08\", \"eventName\": \n[1, 2\n{record}\n");
    let (status, answer, _) = post(&base, "/api/v1/ingest", &ndjson, mixed.as_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], 4, "{answer}");
    assert_eq!(answer["normalised"]["cloudtrail"], 2, "{answer}");
    assert_eq!(
        answer["flagged"],
        json!({
            "not valid JSON and no parser recognised it": 1,
            "no parser recognised this record": 1,
        }),
        "{answer}"
    );
    stored += 4;

    // Refused outright, each with a JSON error naming the limit; nothing of them is stored.
    let bomb = gzip(&"{}\n".repeat(4 << 20).into_bytes());
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let nested = gzip(&gzip(b"{}\n"));
    let many = "{\"n\":1}\n".repeat(1001);
    let array = format!("[{}]", vec!["{}"; 1001].join(","));
    for (what, headers, body, want, code) in [
        (
            "gzip bomb",
            vec![
                ("Authorization", auth.as_str()),
                ("Content-Encoding", "gzip"),
            ],
            bomb.clone(),
            413,
            "too_large",
        ),
        (
            "undeclared gzip bomb",
            ndjson.to_vec(),
            bomb,
            413,
            "too_large",
        ),
        (
            "gzip in gzip",
            ndjson.to_vec(),
            nested,
            415,
            "unsupported_media_type",
        ),
        (
            "damaged gzip",
            ndjson.to_vec(),
            {
                let whole = gzip(demo.as_slice());
                whole[..whole.len() / 2].to_vec()
            },
            400,
            "bad_request",
        ),
        (
            "gzip declared, plain sent",
            vec![
                ("Authorization", auth.as_str()),
                ("Content-Encoding", "gzip"),
            ],
            b"{}\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "too many records",
            ndjson.to_vec(),
            many.into_bytes(),
            413,
            "too_large",
        ),
        (
            "too many records in an array",
            ndjson.to_vec(),
            array.into_bytes(),
            413,
            "too_large",
        ),
        (
            "a form",
            vec![
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"a=1".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "multipart",
            vec![
                ("Authorization", auth.as_str()),
                ("Content-Type", "multipart/form-data; boundary=x"),
            ],
            b"--x\r\n\r\n{}\r\n--x--".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "XML",
            vec![
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/xml"),
            ],
            b"<a/>".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "brotli",
            vec![("Authorization", auth.as_str()), ("Content-Encoding", "br")],
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
    ] {
        let (status, answer, _) = post(&base, "/api/v1/ingest", &headers, &body);
        assert_eq!(status, want, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(!message.contains(data.to_str().unwrap()), "{message}");
    }
    // An oversized body is refused on its announced length, before it is sent; one sent in
    // chunks, with no length announced, once what arrived passes the limit.
    let head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: acta\r\nAuthorization: {auth}\r\n\
         Content-Type: text/plain\r\nConnection: close\r\n"
    );
    let (status, body) = raw(
        &addr,
        format!("{head}Content-Length: {}\r\n\r\n", 300 << 10).as_bytes(),
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("max_body_bytes"), "{body}");
    let mut request = format!("{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
    for _ in 0..33 {
        request.extend_from_slice(format!("{:x}\r\n", 8 << 10).as_bytes());
        request.extend_from_slice(&vec![b'x'; 8 << 10]);
        request.extend_from_slice(b"\r\n");
    }
    let (status, body) = raw(&addr, &request);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("max_body_bytes"), "{body}");

    // Errors axum raises itself are JSON too.
    let (status, answer) = get(&base, "/api/v1/search?colour=red", Some(&auditor));
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
    let (status, answer) = get(&base, "/api/v1/ingest", Some(&auditor));
    assert_eq!(status, 405);
    assert_eq!(answer["error"]["code"], "method_not_allowed", "{answer}");
    // Receivers this server has no configuration for say how to configure them.
    for route in ["github", "gitlab", "kubernetes"] {
        let (status, answer, _) = post(&base, &format!("/api/v1/ingest/{route}"), &ndjson, b"{}");
        assert_eq!(status, 404, "{answer}");
        assert_eq!(answer["error"]["code"], "not_configured");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("[receivers.{route}]"))
        );
    }

    // Path traversal on the tile paths: no file of the data directory but the log's own.
    let key = std::fs::read_dir(data.join("keys"))
        .map(|d| {
            d.map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect()
        })
        .unwrap_or_else(|_| Vec::<Vec<u8>>::new());
    let tokens = std::fs::read_to_string(data.join("tokens.json")).unwrap();
    for path in [
        "/tlog/tile/../../keys",
        "/tlog/tile/../../tokens.json",
        "/tlog/tile/0/../../../tokens.json",
        "/tlog/tile/0/%2e%2e/%2e%2e/%2e%2e/tokens.json",
        "/tlog/tile/0/..%2f..%2f..%2ftokens.json",
        "/tlog/tile/0/%2E%2E%2F%2E%2E%2F%2E%2E%2Facta.toml",
        "/tlog/tile/entries/..%5c..%5c..%5ctokens.json",
        "/tlog/tile/0/000/../../../../acta.toml",
        "/tlog/%2e%2e/tokens.json",
        "/tlog/tile/0/%00",
    ] {
        let (status, body) = raw(
            &addr,
            format!("GET {path} HTTP/1.1\r\nHost: acta\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        let answer: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
        assert!(answer["error"]["message"].as_str().is_some(), "{path}");
        assert!(
            !body.contains("sha256") && !body.contains("max_records"),
            "{path}"
        );
        assert!(
            !tokens.is_empty() && !body.contains(&tokens[..20]),
            "{path}"
        );
        for k in &key {
            assert!(
                k.len() < 16 || !body.as_bytes().windows(16).any(|w| w == &k[..16]),
                "{path}"
            );
        }
    }

    // Slow clients: headers that never end are cut off at the header timeout, a body that
    // never comes is answered 408 at the body timeout; others are served meanwhile.
    let mut stalled_headers = TcpStream::connect(&addr).unwrap();
    stalled_headers
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: acta\r\nX-Slow: ")
        .unwrap();
    stalled_headers
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut stalled_body = TcpStream::connect(&addr).unwrap();
    stalled_body
        .write_all(
            format!(
                "POST /api/v1/ingest HTTP/1.1\r\nHost: acta\r\nAuthorization: {auth}\r\n\
                 Content-Type: application/x-ndjson\r\nContent-Length: 4096\r\n\r\n{record}\n"
            )
            .as_bytes(),
        )
        .unwrap();
    stalled_body
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = Instant::now();
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(get(&base, "/healthz", None).0, 200);
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
    }
    // Closed by the server (an end of stream or a reset), well before the read timeout.
    let mut out = Vec::new();
    let _ = stalled_headers.read_to_end(&mut out);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "header timeout after {waited:?}"
    );
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    let mut out = Vec::new();
    let _ = stalled_body.read_to_end(&mut out);
    let waited = t0.elapsed();
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(8),
        "body timeout after {waited:?}"
    );

    // A flood from one token is slowed with 429 and Retry-After; other tokens are not.
    let flood_auth = bearer(&flood);
    let mut limited = None;
    for _ in 0..60 {
        let (status, answer, headers) = post(
            &base,
            "/api/v1/ingest",
            &[("Authorization", flood_auth.as_str())],
            b"",
        );
        if status == 429 {
            limited = Some((answer, headers));
            break;
        }
        assert_eq!(status, 400, "{answer}");
    }
    let (answer, headers) = limited.expect("a flood was never limited");
    assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");
    let retry: u64 = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.parse().unwrap())
        .expect("no Retry-After");
    assert!((1..=2).contains(&retry), "{retry}");
    let (status, answer, _) = post(&base, "/api/v1/ingest", &ndjson, record.as_bytes());
    assert_eq!(status, 200, "{answer}");
    stored += 1;

    // Still healthy, and everything acknowledged is there (the published checkpoint, which
    // /healthz reads, follows acknowledgements within its publishing interval).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, health) = get(&base, "/healthz", None);
        assert_eq!(status, 200);
        let published = health["entries"].as_u64().unwrap();
        if published == stored {
            break;
        }
        assert!(
            published < stored && std::time::Instant::now() < deadline,
            "{published} published, {stored} acknowledged"
        );
        let (_keep, pause) = std::sync::mpsc::channel::<()>();
        let _ = pause.recv_timeout(std::time::Duration::from_millis(100));
    }
    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    assert!(!said.contains("panicked"), "{said}");
    let o = acta(data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(cli_hits(data, "source:k8s-audit").len(), demo_lines);
    assert_eq!(
        cli_hits(data, "source:cloudtrail").len() as u64,
        stored - demo_lines as u64
    );
}
