//! The web UI of `acta serve` in real headless Chromium, driven through chromedriver's W3C
//! WebDriver protocol: real samples ingested, a token entered (a wrong one first), the dashboard,
//! a search, an entry with its proof, the alerts and a sign-out, each checked against what the
//! HTTP API answers for the same question. Screenshots are kept under `target/test-artifacts/`
//! (or `$ACTA_TEST_ARTIFACTS`).
//!
//! Needs the Debian packages `chromium` and `chromium-driver`, which `./scripts/test` installs;
//! without them the test fails and says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::serve::{ADMIN, Server};
use common::{acta, testdata, text};
use serde_json::{Value, json};

/// A token of acta's form that the server never issued.
const UNKNOWN: &str = "acta_ba9876543210_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk";
/// The actor of [`HOSTILE`].
const HOSTILE_ACTOR: &str = "<img src=x onerror=\"document.title='owned'\">";
/// A GitHub audit record, shaped as the samples are, whose values are markup.
const HOSTILE: &str = r#"{"action": "repo.rename", "actor": "<img src=x onerror=\"document.title='owned'\">", "created_at": 1621305118553, "org": "my-org", "repo": "my-org/<script>document.title='owned'</script>"}"#;
/// What the dashboard counts as activity: all but the records acta writes itself.
const ACTIVITY: &str = "-source:acta-finding -source:acta-access";
/// How long the page may take to show what it was asked for.
const PATIENCE: Duration = Duration::from_secs(30);
/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn tool(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("ACTA_TEST_ARTIFACTS").map_or_else(
        || {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap()
                .join("test-artifacts")
        },
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits `d` without sleeping the thread on a timer clippy forbids: nothing is ever sent.
fn pause(d: Duration) {
    let (_keep, rx) = mpsc::channel::<()>();
    let _ = rx.recv_timeout(d);
}

/// Calls `f` until it gives a value, or fails with `what` after [`PATIENCE`].
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        pause(Duration::from_millis(100));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// The JSON answer of an authorised GET.
fn get(server: &Server, path: &str, token: &str) -> Value {
    let mut r = agent()
        .get(format!("{}{path}", server.base))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    let body: Value =
        serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap_or(Value::Null);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    base: String,
}

impl Driver {
    fn start() -> Driver {
        let chromium = tool("ACTA_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("ACTA_CHROMEDRIVER", "/usr/bin/chromedriver");
        for (path, package) in [(&chromium, "chromium"), (&chromedriver, "chromium-driver")] {
            assert!(
                path.exists(),
                "{} is missing: this test needs the Debian package `{package}` \
                 (`./scripts/test` installs it; or `apt-get install {package}`)",
                path.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        eventually("chromedriver to be ready", || {
            let mut r = agent().get(format!("{}/status", driver.base)).call().ok()?;
            let v: Value = serde_json::from_slice(&r.body_mut().read_to_vec().ok()?).ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        });
        driver
    }

    fn session(&self, chromium: &Path) -> Browser {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"],
            },
        }}});
        let v = wd(&self.base, "POST", "/session", Some(&caps));
        let id = v["sessionId"].as_str().unwrap().to_owned();
        Browser {
            url: format!("{}/session/{id}", self.base),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command; its `value`, or a panic with the driver's error.
fn wd(base: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    try_wd(base, method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// One WebDriver command; its `value`, or the driver's error.
fn try_wd(base: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Value> {
    let url = format!("{base}{path}");
    let a = agent();
    let r = match (method, body) {
        ("GET", _) => a.get(&url).call(),
        ("DELETE", _) => a.delete(&url).call(),
        (_, b) => a
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&serde_json::to_vec(b.unwrap_or(&json!({}))).unwrap()[..]),
    };
    let mut r = r.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status().as_u16();
    let v: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
    if status == 200 {
        Ok(v["value"].clone())
    } else {
        Err(v["value"].clone())
    }
}

/// A browser session; closed when dropped.
struct Browser {
    url: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = agent().delete(&self.url).call();
    }
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        wd(&self.url, method, path, body.as_ref())
    }

    fn open(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn script(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The elements matching a CSS selector now (none is not an error).
    fn all(&self, css: &str) -> Vec<String> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
        .collect()
    }

    /// The first element matching a CSS selector, once there is one.
    fn find(&self, css: &str) -> String {
        eventually(&format!("an element `{css}`"), || {
            self.all(css).into_iter().next()
        })
    }

    /// The rendered text of the first element matching a CSS selector, once there is one.
    fn text(&self, css: &str) -> String {
        eventually(&format!("an element `{css}`"), || {
            self.texts(css).into_iter().next()
        })
    }

    /// The rendered text of every element matching a CSS selector now, read at one instant.
    fn texts(&self, css: &str) -> Vec<String> {
        self.script(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText)",
            json!([css]),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
    }

    /// Does `what` to the first element matching `css`, again if the page replaced it meanwhile.
    fn on(&self, css: &str, what: &str, body: &Value) {
        eventually(&format!("{what} on `{css}`"), || {
            let e = self.find(css);
            match try_wd(
                &self.url,
                "POST",
                &format!("/element/{e}/{what}"),
                Some(body),
            ) {
                Ok(_) => Some(()),
                Err(err) if err["error"] == "stale element reference" => None,
                Err(err) => panic!("{what} on `{css}`: {err}"),
            }
        });
    }

    fn click(&self, css: &str) {
        self.on(css, "click", &json!({}));
    }

    fn fill(&self, css: &str, value: &str) {
        self.on(css, "clear", &json!({}));
        self.on(css, "value", &json!({ "text": value }));
    }

    fn hash(&self) -> String {
        self.script("return location.hash", json!([]))
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Does `act`, then waits until the view `view` has shown its data.
    fn shows(&self, view: &str, act: impl FnOnce()) {
        self.script(
            "const m = document.getElementById('main'); if (m) m.dataset.state = 'stale';",
            json!([]),
        );
        act();
        let state = eventually(&format!("the {view} view"), || {
            let v = self.script(
                "const m = document.getElementById('main'); return [m.dataset.view, m.dataset.state];",
                json!([]),
            );
            (v[0] == view && v[1] != "stale" && v[1] != "loading")
                .then(|| v[1].as_str().unwrap().to_owned())
        });
        let shown = self.text("main");
        assert_eq!(state, "ready", "the {view} view failed: {shown}");
    }

    /// A screenshot of the whole page, saved as an artifact.
    fn screenshot(&self, name: &str) -> PathBuf {
        // The pointer out of the way, so that nothing is shown hovered.
        self.cmd(
            "POST",
            "/actions",
            Some(
                json!({"actions": [{"type": "pointer", "id": "mouse", "actions": [
                    {"type": "pointerMove", "x": 0, "y": 0, "origin": "viewport"}
                ]}]}),
            ),
        );
        let height = self
            .script("return document.documentElement.scrollHeight", json!([]))
            .as_u64()
            .unwrap();
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": 1400, "height": height.clamp(1000, 8000)})),
        );
        let png = self.cmd("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let path = artifacts().join(format!("ui-{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        println!("screenshot: {}", path.display());
        path
    }

    /// What the page logged as an error, but for failed requests (the 401 of the wrong token,
    /// which the page shows): script errors, policy violations.
    fn console_errors(&self) -> Vec<String> {
        self.cmd("POST", "/se/log", Some(json!({"type": "browser"})))
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["level"] == "SEVERE" && l["source"] != "network")
            .map(|l| l["message"].to_string())
            .collect()
    }
}

/// The size of the latest checkpoint, as third parties read it.
/// The size of the newest signed checkpoint, as the dashboard's ledger tile shows it (the
/// published `/tlog/checkpoint` may lag it by up to its publishing interval).
fn ledger_size_now(base: &str) -> u64 {
    let mut r = agent()
        .get(format!("{base}/api/v1/ledger"))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .call()
        .unwrap();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    v["size"].as_u64().unwrap()
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

fn number(shown: &str) -> u64 {
    shown
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {shown:?}"))
}

/// Stores the samples of four sources, with detection, the way a user would.
fn ingest_samples(data: &Path) {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["cloudtrail/stratus", "k8s-audit/falco"] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(testdata(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        v.sort();
        files.extend(v);
    }
    files.push(testdata("github/github-audit.ndjson"));
    files.push(testdata("linux/auth.log"));
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let mut args = vec![
        "ingest".to_owned(),
        "-q".to_owned(),
        "--rules".to_owned(),
        rules.join("sigma").display().to_string(),
        "--rules".to_owned(),
        rules.join("sigma-correlation").display().to_string(),
    ];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = acta(data, &args);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn the_web_ui_shows_the_trail_in_a_real_browser() {
    let chromium = tool("ACTA_CHROMIUM", "/usr/bin/chromium");
    let driver = Driver::start();

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ingest_samples(data);
    let o = acta(
        data,
        &[
            "token",
            "create",
            "--role",
            "auditor",
            "--name",
            "investigator",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let auditor = String::from_utf8(o.stdout).unwrap().trim().to_owned();

    let server = Server::start(data);
    let base = server.base.clone();

    // The UI's files: exact names only, with the headers that keep the page to itself.
    let mut r = agent().get(format!("{base}/")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert!(
        r.body_mut()
            .read_to_string()
            .unwrap()
            .contains("/ui/app.js")
    );
    let again = agent()
        .get(format!("{base}/"))
        .header("If-None-Match", &etag)
        .call()
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    let js = agent().get(format!("{base}/ui/app.js")).call().unwrap();
    assert_eq!(js.status().as_u16(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    for bad in [
        "/ui/..%2fmod.rs",
        "/ui/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/ui/app.js%00",
        "/ui/",
    ] {
        let r = agent().get(format!("{base}{bad}")).call().unwrap();
        assert_eq!(r.status().as_u16(), 404, "{bad}");
    }

    // A record whose values are markup: the page must show them as text.
    let mut r = agent()
        .post(format!("{base}/api/v1/ingest?source=github-audit"))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .send(HOSTILE.as_bytes())
        .unwrap();
    let stored: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
    assert_eq!(stored["stored"], 1, "{stored}");
    let hostile = stored["first"].as_u64().unwrap();
    eventually("the posted record to be searchable", || {
        let v = get(&server, "/api/v1/search?q=action%3Arepo.rename", &auditor);
        (v["total"] == 1).then_some(())
    });

    // What the API says, to compare the page with.
    let ledger_size = ledger_size_now(&base);
    let by_source = get(
        &server,
        &format!("/api/v1/stats?by=source&q={}", urlencode(ACTIVITY)),
        &auditor,
    );
    let sources: Vec<(String, u64)> = by_source["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let events: u64 = sources.iter().map(|(_, c)| c).sum();
    // The samples: 310 CloudTrail records from Stratus Red Team (testdata/README.md).
    assert!(sources.contains(&("cloudtrail".into(), 310)), "{sources:?}");
    let alerts = get(&server, "/api/v1/alerts?limit=1", &auditor);
    let alert_total = alerts["total"].as_u64().unwrap();
    assert!(
        alert_total > 0,
        "detection raised alerts on the samples: {alerts}"
    );
    let me = get(&server, "/api/v1/me", &auditor);
    assert_eq!(me["role"], "auditor", "{me}");

    let browser = driver.session(&chromium);

    // A token is asked for; a wrong one is refused with the server's own reason.
    browser.shows("login", || browser.open(&format!("{base}/")));
    browser.fill("#token", UNKNOWN);
    browser.click(".login-form button[type=submit]");
    let refused = {
        let mut r = agent()
            .get(format!("{base}/api/v1/me"))
            .header("Authorization", format!("Bearer {UNKNOWN}"))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let v: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
        v["error"]["message"].as_str().unwrap().to_owned()
    };
    eventually("the refusal to be shown", || {
        (browser.text("#login-message") == refused).then_some(())
    });
    assert_eq!(
        browser.script("return document.body.className", json!([])),
        "signed-out"
    );

    // The right token opens the dashboard, with the samples' own figures.
    browser.fill("#token", &auditor);
    browser.shows("dashboard", || {
        browser.click(".login-form button[type=submit]");
    });
    assert!(browser.text("#whoami").contains("investigator"));
    assert!(browser.text("#whoami").contains("auditor"));
    assert_eq!(number(&browser.text("#tile-events .tile-value")), events);
    // Every read of the trail is itself stored, so the ledger grows as the page loads.
    let shown = number(&browser.text("#tile-ledger .tile-value"));
    let grown = ledger_size_now(&base);
    assert!(
        (ledger_size..=grown).contains(&shown),
        "ledger size {shown}, not within {ledger_size}..={grown}"
    );
    let reads = number(&browser.text("#tile-reads .tile-value"));
    assert!(reads > 0, "the page's own reads are recorded");
    assert_eq!(
        number(&browser.text("#tile-alerts .tile-value")),
        alert_total
    );
    let legend: Vec<String> = browser
        .texts("#volume .legend li")
        .iter()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for (source, count) in &sources {
        assert!(
            legend.contains(&format!("{source} {count}")),
            "legend lacks {source} {count}: {legend:?}"
        );
    }
    assert!(
        !browser.all("#volume svg rect.bar").is_empty(),
        "the chart has bars"
    );
    let top = get(
        &server,
        &format!("/api/v1/stats?by=actor&q={}", urlencode(ACTIVITY)),
        &auditor,
    );
    let first_actor = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r["actor"].as_str())
        .unwrap()
        .to_owned();
    // The GitHub audit samples' most active user.
    assert_eq!(first_actor, "christophe");
    let actors = browser.texts("#top-actors .bar-label");
    assert!(
        actors.iter().take(3).any(|a| a == &first_actor),
        "{actors:?}"
    );
    assert!(browser.text("#top-actions").contains("GetPasswordData"));
    assert!(browser.text("#ledger-root").len() >= 40);
    let dashboard = browser.screenshot("dashboard");

    // A search from the search box: the same hits as the API, and the query in the URL.
    browser.shows("search", || browser.click("nav.nav a[data-nav=search]"));
    let query = "action:GetPasswordData outcome:failure";
    browser.fill("#q", query);
    browser.shows("search", || browser.click("#run"));
    assert!(
        browser
            .hash()
            .contains(&format!("q={}", urlencode(query).replace("%20", "+"))),
        "{}",
        browser.hash()
    );
    let api = get(
        &server,
        &format!("/api/v1/search?limit=50&q={}", urlencode(query)),
        &auditor,
    );
    let total = api["total"].as_u64().unwrap();
    assert!(total > 0, "{api}");
    assert_eq!(
        browser.text("#results h2").to_lowercase(),
        format!("{total} event{}", if total == 1 { "" } else { "s" })
    );
    let want: Vec<String> = api["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("#{}", e["index"]))
        .collect();
    assert_eq!(browser.texts("#hits a.index"), want);
    assert!(!browser.all("#timeline svg rect.bar").is_empty());
    let search = browser.screenshot("search");

    // A malformed query is answered with where it went wrong.
    browser.fill("#q", "actor:(");
    browser.shows("search", || browser.click("#run"));
    assert!(browser.text("#query-error").contains('^'));

    // Back to the results, then an entry: its record, its proof against the latest checkpoint,
    // checked.
    browser.shows("search", || {
        browser.script("history.back()", json!([]));
    });
    let first = &api["events"][0];
    let index = first["index"].as_u64().unwrap();
    browser.shows("event", || browser.click("#hits a.index"));
    assert_eq!(browser.hash(), format!("#/event/{index}"));
    assert_eq!(
        browser.script(
            "return document.getElementById('verified').className",
            json!([])
        ),
        "badge ok"
    );
    assert!(browser.text("#verified").contains("verified"));
    // The proof shown is to a checkpoint at least as new as the one published before browsing
    // and no newer than the latest (proofs use the newest signed checkpoint; the public one is
    // published behind it), and its audit path is the receipt's.
    let verification = browser.text("#verification");
    assert!(verification.starts_with("verified"), "{verification}");
    let proof_size = number(&browser.text("#proof-size"));
    let entry = get(&server, &format!("/api/v1/events/{index}"), &auditor);
    let latest = entry["proof"]["tree_size"].as_u64().unwrap();
    assert!(
        (ledger_size..=latest).contains(&proof_size),
        "proof to a tree of {proof_size}, not within {ledger_size}..={latest}"
    );
    let receipt = format!("{}\n", browser.text("#receipt").trim_end());
    assert!(receipt.starts_with("c2sp.org/tlog-proof@v1\n"), "{receipt}");
    assert!(receipt.contains(&format!("\nindex {index}\n")), "{receipt}");
    let (path, signed) = receipt.split_once("\n\n").unwrap();
    assert_eq!(signed.lines().nth(1), Some(proof_size.to_string().as_str()));
    // The page lists the audit path as the receipt writes it (base64).
    let path: Vec<String> = path.lines().skip(3).map(str::to_owned).collect();
    assert!(!path.is_empty());
    assert_eq!(browser.texts("#proof-hashes li"), path);
    // The record shown is the one stored, and the receipt on the page proves it to anyone
    // holding the log's key.
    let raw = entry["raw"].as_str().unwrap();
    assert_eq!(browser.text("#raw-record").trim_end(), raw.trim_end());
    let receipt_file = dir.path().join("receipt.txt");
    let record_file = dir.path().join("record");
    std::fs::write(&receipt_file, &receipt).unwrap();
    std::fs::write(&record_file, raw).unwrap();
    let o = acta(
        data,
        &[
            "proof",
            "--verify",
            receipt_file.to_str().unwrap(),
            "--record",
            record_file.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(browser.text("#raw-record").contains("GetPasswordData"));
    assert!(
        browser
            .text("#summary")
            .contains(first["actor"].as_str().unwrap())
    );
    let event = browser.screenshot("event");

    // Markup in the trail stays text, in the results and on the entry's page.
    browser.shows("search", || {
        browser.open(&format!("{base}/#/search?q=action%3Arepo.rename"));
    });
    assert_eq!(browser.texts("#hits a.index"), vec![format!("#{hostile}")]);
    assert!(browser.text("#hits").contains(HOSTILE_ACTOR));
    browser.shows("event", || browser.click("#hits a.index"));
    assert!(
        browser
            .text("#raw-record")
            .contains("<script>document.title='owned'</script>")
    );
    assert!(browser.text("#normalised").contains(HOSTILE_ACTOR));
    let injected = browser.script(
        "return [document.querySelectorAll('main img, main script').length, document.title]",
        json!([]),
    );
    assert_eq!(injected[0], 0, "markup from the trail became elements");
    assert_eq!(injected[1], format!("acta · entry {hostile}"));

    // Alerts: as many as the API counts, each linked to the entries behind it.
    browser.shows("alerts", || browser.click("nav.nav a[data-nav=alerts]"));
    assert_eq!(number(&browser.text("#alerts-total")), alert_total);
    assert!(!browser.all("#alerts-table td.entries a").is_empty());
    browser.screenshot("alerts");
    // A rule's link lists that rule's alerts, as the API counts them.
    let rule = browser.text("#alerts-table a.mono");
    browser.shows("alerts", || browser.click("#alerts-table a.mono"));
    let of_rule = get(
        &server,
        &format!(
            "/api/v1/alerts?limit=1&q={}",
            urlencode(&format!("action:{rule}"))
        ),
        &auditor,
    );
    let n = of_rule["total"].as_u64().unwrap();
    assert!(n > 0 && n < alert_total, "{of_rule}");
    assert_eq!(number(&browser.text("#alerts-total")), n);

    // Signing out forgets the token: the prompt is back, and no view loads without one.
    browser.shows("login", || browser.click("#signout"));
    assert_eq!(browser.text("#login-message"), "Signed out.");
    browser.shows("login", || {
        browser.open(&format!("{base}/#/search?q=actor%3Aalice"));
    });

    let errors = browser.console_errors();
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");
    for p in [dashboard, search, event] {
        assert!(
            std::fs::metadata(&p).unwrap().len() > 10_000,
            "{}",
            p.display()
        );
    }
}
