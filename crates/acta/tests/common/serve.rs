//! `acta serve` on a loopback port, for the tests that drive the server over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The admin token the servers are started with (`ACTA_ADMIN_TOKEN`).
pub const ADMIN: &str = "acta_0123456789ab_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk";

/// A running `acta serve`; killed when dropped, so a failed test leaves no server behind.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (or `https://` with TLS).
    pub base: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// What the server printed before it listened.
    pub started: String,
    /// Lines of standard error after the listening line.
    stderr: mpsc::Receiver<String>,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[], &[])
    }

    /// `acta --data-dir DATA serve --listen 127.0.0.1:0 ARGS…` with `ENV` added; returns once it
    /// listens.
    pub fn start_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_acta"))
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("ACTA_ADMIN_TOKEN", ADMIN)
            .envs(env.iter().copied())
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
        let mut started = String::new();
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("acta serve printed no address:\n{started}"));
            if let Some(url) = line.strip_prefix("acta: listening on ") {
                break url.to_owned();
            }
            started.push_str(&line);
            started.push('\n');
        };
        let addr = base
            .split_once("://")
            .map_or(base.as_str(), |(_, a)| a)
            .to_owned();
        Server {
            child,
            base,
            addr,
            started,
            stderr: rx,
        }
    }

    /// Stops the server with SIGTERM; its exit status and what it printed since it listened.
    pub fn stop(mut self) -> (bool, String) {
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
