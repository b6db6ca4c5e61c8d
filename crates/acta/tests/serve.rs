//! `acta serve` end to end: a server on a loopback port, real samples posted and searched back,
//! tokens of every role, the tlog read paths, and a clean shutdown with a final checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{acta, testdata, text};
use serde_json::{Value, json};

/// The admin token the server is started with.
const ADMIN: &str = "acta_0123456789ab_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk";

struct Server {
    child: Child,
    base: String,
    /// Lines of standard error after the listening line.
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_acta"))
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("ACTA_ADMIN_TOKEN", ADMIN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("acta serve printed no listening address");
            if let Some(addr) = line.strip_prefix("acta: listening on ") {
                break addr.to_owned();
            }
        };
        Server {
            child,
            base,
            stderr: rx,
        }
    }

    /// Stops the server with SIGTERM; its exit status and what it printed afterwards.
    fn stop(mut self) -> (bool, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let mut said = String::new();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            said.push_str(&l);
            said.push('\n');
        }
        (status.success(), said)
    }
}

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
    let mut args = vec!["ingest".to_owned(), "-q".to_owned()];
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

    // Counts through the API agree with the search.
    let (status, stats) = get(&base, "/api/v1/stats?by=source", Some(&auditor));
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["rows"][0]["source"], "cloudtrail");
    assert_eq!(stats["rows"][0]["count"].as_u64().unwrap(), stored);
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
    let (status, answer) = post(&base, "/api/v1/ingest", Some(&ingest), &list);
    assert_eq!(status, 200, "{answer}");
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
    let size = stored + 3;
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
    let routes: [(&str, &str, [u16; 6]); 4] = [
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
        ("GET", "/api/v1/tokens", [401, 401, 401, 403, 403, 200]),
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

    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    assert!(said.contains("final checkpoint"), "{said}");
    let o = acta(data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = acta(data, &["search", "-o", "ndjson", "source:k8s-audit"]);
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().count(), 3);
}
