//! A real PostgreSQL 15 with pgaudit: statements, a role, a grant, logins (one with a wrong
//! password) are run against a throw-away cluster logging to stderr, csvlog and jsonlog at once;
//! each of the three log files is then framed and normalised like `acta ingest` does, and must
//! tell the same story.
//!
//! Needs the PostgreSQL server and pgaudit (`postgresql-15 postgresql-15-pgaudit` on Debian;
//! `./scripts/test` installs them). Binaries are looked for in `$ACTA_PG_BIN`, else
//! `/usr/lib/postgresql/15/bin`. When they are missing the test fails and says so: it never
//! passes without having run. As root, the server runs as the `postgres` user (PostgreSQL refuses
//! to run as root).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use acta_ingest::formats::{InputNormaliser, Record, Registry};
use acta_ingest::framing::{Framer, FramerConfig, QuotedNewlines, RecordBatch, open_input};
use serde_json::Value;

const MULTILINE: &str = "SELECT id,\n       name\n  FROM accounts\n WHERE name <> 'x'";

fn pg_bin() -> PathBuf {
    let dir = std::env::var_os("ACTA_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    for tool in ["initdb", "postgres", "psql", "pg_isready", "pg_config"] {
        assert!(
            dir.join(tool).is_file(),
            "PostgreSQL is not installed: {} is missing. Install postgresql-15 and \
             postgresql-15-pgaudit (./scripts/test does), or point ACTA_PG_BIN at the bin directory.",
            dir.join(tool).display()
        );
    }
    let libdir = run(Command::new(dir.join("pg_config")).arg("--pkglibdir"));
    let libdir = String::from_utf8(libdir.stdout).unwrap();
    let so = Path::new(libdir.trim()).join("pgaudit.so");
    assert!(
        so.is_file(),
        "pgaudit is not installed: {} is missing (install postgresql-15-pgaudit)",
        so.display()
    );
    dir
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A short pause between polls of the server (an external process: nothing to wait on).
#[allow(clippy::disallowed_methods)]
fn pause() {
    std::thread::sleep(Duration::from_millis(20));
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).stdout.trim_ascii() == b"0"
}

/// `program` run as the `postgres` user when we are root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--reset-env",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A running throw-away cluster; killed and removed on drop.
struct Server {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
}

impl Server {
    fn start() -> Server {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("acta-pgaudit-")
            .tempdir()
            .unwrap();
        if is_root() {
            let ok = run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()));
            assert!(
                ok.status.success(),
                "chown postgres: {}",
                String::from_utf8_lossy(&ok.stderr)
            );
        }
        let data = dir.path().join("data");
        let out = run(as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .env("LC_ALL", "C"));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let logs = dir.path().join("log");
        let conf = format!(
            "shared_preload_libraries = 'pgaudit'\n\
             pgaudit.log = 'read, write, ddl, role'\n\
             pgaudit.log_relation = on\n\
             log_connections = on\n\
             log_disconnections = on\n\
             log_destination = 'stderr,csvlog,jsonlog'\n\
             logging_collector = on\n\
             log_directory = '{}'\n\
             log_filename = 'server.log'\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n\
             log_timezone = 'UTC'\n\
             lc_messages = 'C'\n\
             password_encryption = 'scram-sha-256'\n\
             unix_socket_directories = '{}'\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             fsync = off\n",
            logs.display(),
            dir.path().display()
        );
        fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server {
            dir,
            child: Some(child),
            port,
            bin,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = run(Command::new(self.bin.join("pg_isready"))
                .arg("-h")
                .arg(self.dir.path())
                .arg("-p")
                .arg(self.port.to_string())
                .args(["-U", "postgres", "-d", "postgres"]))
            .status
            .success();
            if ok {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("postgres exited at start ({st}); see {:?}", self.dir.path());
            }
            assert!(Instant::now() < deadline, "postgres did not start in 15 s");
            pause();
        }
    }

    /// Runs SQL as the superuser over the Unix socket.
    fn psql_admin(&self, sql: &str) {
        let out = run(Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]));
        assert!(
            out.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL as `user` over TCP with a password; returns whether it worked.
    fn psql_tcp(&self, user: &str, password: &str, sql: &str) -> Output {
        run(Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user])
            .args(["-d", "postgres", "-X", "-q", "-w", "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10"))
    }

    /// Fast shutdown, then waits for the logs to be complete.
    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("postgres did not stop in 15 s");
            }
            pause();
        }
        // The logging collector writes the last lines after the server is gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        for f in ["server.log", "server.csv", "server.json"] {
            let path = self.dir.path().join("log").join(f);
            loop {
                let text = fs::read_to_string(&path).unwrap_or_default();
                if text.contains("database system is shut down") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} never got the shutdown line",
                    path.display()
                );
                pause();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Frames and normalises one file: the events (as JSON) and the not-an-event reasons.
fn normalise(path: &Path, quoted: QuotedNewlines) -> (Vec<Value>, Vec<String>) {
    let registry = Registry::standard();
    let config = FramerConfig {
        quoted_newlines: quoted,
        ..FramerConfig::default()
    };
    let mut framer = Framer::new(
        path.display().to_string(),
        open_input(path).unwrap(),
        config,
    );
    let mut batch = RecordBatch::new();
    let mut norm = InputNormaliser::new(None);
    let (mut events, mut skipped) = (Vec::new(), Vec::new());
    loop {
        batch.clear();
        let more = framer.next_batch(&mut batch, 1 << 20).unwrap();
        for (bytes, _) in batch.iter() {
            let n = norm.normalise(
                &registry,
                &Record {
                    bytes,
                    received_at_ms: 0,
                },
            );
            match n.event {
                Some(e) => events.push(serde_json::from_str(&e.to_json()).unwrap()),
                None => skipped.push(n.note.unwrap().summary_reason()),
            }
        }
        if !more {
            break;
        }
    }
    (events, skipped)
}

fn s<'v>(v: &'v Value, path: &str) -> &'v str {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn find<'v>(events: &'v [Value], what: &str, pred: impl Fn(&Value) -> bool) -> &'v Value {
    events
        .iter()
        .find(|e| pred(e))
        .unwrap_or_else(|| panic!("{what}: no such event among {events:#?}"))
}

#[test]
fn real_pgaudit_logs_in_all_three_outputs_tell_the_same_story() {
    let started = Instant::now();
    let mut server = Server::start();
    server.psql_admin("CREATE EXTENSION pgaudit");
    server.psql_admin("CREATE ROLE alice LOGIN PASSWORD 'secret'");
    server.psql_admin("CREATE TABLE accounts (id int, name text)");
    server.psql_admin("INSERT INTO accounts VALUES (1, 'a \"quoted\", name')");
    server.psql_admin("GRANT SELECT ON accounts TO alice");
    server.psql_admin(MULTILINE);
    let ok = server.psql_tcp("alice", "secret", "SELECT name FROM accounts");
    assert!(
        ok.status.success(),
        "alice's login failed: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = server.psql_tcp("alice", "wrong", "SELECT 1");
    assert!(!bad.status.success(), "a wrong password was accepted");
    server.stop();

    let logs = server.dir.path().join("log");
    let outputs = [
        ("server.log", QuotedNewlines::PGAUDIT),
        ("server.csv", QuotedNewlines::Always),
        ("server.json", QuotedNewlines::Off),
    ];
    let mut audit_counts = Vec::new();
    for (file, quoted) in outputs {
        let (events, skipped) = normalise(&logs.join(file), quoted);
        let ctx = file;
        // Every record is understood: an event, or a PostgreSQL message known to be no event.
        for e in &events {
            assert_ne!(e["class_uid"], 0, "{ctx}: unrecognised record {e:#}");
            assert!(
                e["unmapped"].get("acta_time_note").is_none(),
                "{ctx}: time not read: {e:#}"
            );
            assert_eq!(e["metadata"]["log_name"], "pgaudit", "{ctx}");
        }
        assert!(
            skipped.iter().all(|r| r.starts_with("pgaudit: ")),
            "{ctx}: {skipped:?}"
        );
        let audits: Vec<&Value> = events
            .iter()
            .filter(|e| e["unmapped"].get("audit_type").is_some())
            .collect();
        audit_counts.push(audits.len());

        let create = find(&events, &format!("{ctx}: CREATE TABLE"), |e| {
            s(e, "api.operation") == "CREATE TABLE"
        });
        assert_eq!(create["class_uid"], 6005, "{ctx}");
        assert_eq!(create["activity_name"], "Create", "{ctx}");
        assert_eq!(s(create, "actor.user.name"), "postgres", "{ctx}");
        assert_eq!(s(create, "database.name"), "postgres", "{ctx}");
        assert_eq!(create["resources"][0]["uid"], "public.accounts", "{ctx}");
        assert_eq!(create["resources"][0]["namespace"], "public", "{ctx}");
        assert_eq!(create["resources"][0]["name"], "accounts", "{ctx}");
        assert_eq!(create["resources"][0]["type"], "TABLE", "{ctx}");
        assert_eq!(create["status"], "Success", "{ctx}");

        let insert = find(&events, &format!("{ctx}: INSERT"), |e| {
            s(e, "api.operation") == "INSERT"
        });
        assert_eq!(insert["activity_name"], "Write", "{ctx}");
        assert_eq!(insert["resources"][0]["uid"], "public.accounts", "{ctx}");
        assert_eq!(
            s(insert, "query_info.query_string"),
            "INSERT INTO accounts VALUES (1, 'a \"quoted\", name')",
            "{ctx}"
        );

        let role = find(&events, &format!("{ctx}: CREATE ROLE"), |e| {
            s(e, "api.operation") == "CREATE ROLE"
        });
        assert_eq!(role["class_uid"], 3001, "{ctx}");
        assert_eq!(s(role, "user.name"), "alice", "{ctx}");
        assert!(
            s(role, "query_info.query_string").contains("<REDACTED>"),
            "{ctx}"
        );

        let grant = find(&events, &format!("{ctx}: GRANT"), |e| {
            s(e, "api.operation") == "GRANT"
        });
        assert_eq!(grant["class_uid"], 3005, "{ctx}");
        assert_eq!(grant["activity_name"], "Assign Privileges", "{ctx}");
        assert_eq!(s(grant, "user.name"), "alice", "{ctx}");
        assert_eq!(s(grant, "actor.user.name"), "postgres", "{ctx}");
        assert_eq!(grant["resources"][0]["name"], "accounts", "{ctx}");

        // The statement spanning lines comes back whole and exact.
        let multi = find(&events, &format!("{ctx}: multi-line SELECT"), |e| {
            s(e, "query_info.query_string") == MULTILINE
        });
        assert_eq!(s(multi, "api.operation"), "SELECT", "{ctx}");
        assert_eq!(multi["activity_name"], "Read", "{ctx}");
        assert_eq!(multi["resources"][0]["uid"], "public.accounts", "{ctx}");

        // alice's own read, over TCP.
        let read = find(&events, &format!("{ctx}: alice's SELECT"), |e| {
            s(e, "api.operation") == "SELECT" && s(e, "actor.user.name") == "alice"
        });
        assert_eq!(
            s(read, "query_info.query_string"),
            "SELECT name FROM accounts",
            "{ctx}"
        );
        assert!(
            read["metadata"]["correlation_uid"].is_string(),
            "{ctx}: {read:#}"
        );
        if file != "server.log" {
            // The Debian prefix has no client address; csvlog and jsonlog do.
            assert_eq!(s(read, "src_endpoint.ip"), "127.0.0.1", "{ctx}");
            assert_eq!(s(read, "actor.app_name"), "psql", "{ctx}");
            assert!(s(read, "actor.session.uid").contains('.'), "{ctx}");
        }

        // Logins: alice's success, then her failure.
        let logon = find(&events, &format!("{ctx}: alice's logon"), |e| {
            e["class_uid"] == 3002
                && e["activity_name"] == "Logon"
                && e["status"] == "Success"
                && s(e, "user.name") == "alice"
        });
        assert_eq!(s(logon, "database.name"), "postgres", "{ctx}");
        let failed = find(&events, &format!("{ctx}: alice's failed login"), |e| {
            e["class_uid"] == 3002 && e["status"] == "Failure" && s(e, "user.name") == "alice"
        });
        assert_eq!(failed["activity_name"], "Logon", "{ctx}");
        assert!(
            s(failed, "status_detail").contains("password authentication failed"),
            "{ctx}"
        );
        if file != "server.log" {
            assert_eq!(s(failed, "status_code"), "28P01", "{ctx}");
            assert_eq!(s(failed, "src_endpoint.ip"), "127.0.0.1", "{ctx}");
        }
        // The connection that failed was received from 127.0.0.1 (all outputs).
        find(&events, &format!("{ctx}: connection received"), |e| {
            s(e, "metadata.event_code") == "connection received"
                && s(e, "src_endpoint.ip") == "127.0.0.1"
        });
        find(&events, &format!("{ctx}: alice's disconnection"), |e| {
            e["activity_name"] == "Logoff" && s(e, "user.name") == "alice"
        });
    }
    assert!(
        audit_counts.iter().all(|&n| n == audit_counts[0] && n >= 7),
        "AUDIT records per output (log, csv, json): {audit_counts:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
