//! The Linux parsers against the real programs: a real OpenSSH server, `sudo` and `su` are run,
//! good and bad logins and privilege changes are made, and the syslog lines the programs
//! actually emitted are normalised and checked.
//!
//! No syslog daemon is needed and nothing on the host changes: the programs run in a private
//! mount namespace (`unshare --mount`, so the test must run as root) whose `/dev` is a fresh
//! tmpfs holding the usual device nodes plus `/dev/log`, a symlink to a Unix datagram socket
//! this test listens on. What glibc's `syslog(3)` sends there (`<PRI>Mmm dd hh:mm:ss
//! prog[pid]: msg`, RFC 3164 without a host) is written line by line to a log file, which is
//! then framed and normalised like any input. `/run` is a fresh tmpfs there too, for sshd's
//! privilege-separation directory.
//!
//! `scripts/test` installs `openssh-server` and `sudo`; when they or root are missing this test
//! fails, with the reason. Set `ACTA_SSHD_CAPTURE=path` to keep a copy of the captured lines.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acta_ingest::formats::{Format, InputNormaliser, Record, Registry};
use acta_ingest::framing::{Framer, FramerConfig, RecordBatch, open_input};
use serde_json::Value;

const SSHD: &str = "/usr/sbin/sshd";
const INVALID_USER: &str = "acta-no-such-user";

/// Sets up a private mount namespace for one command: `/dev` and `/run` replaced by tmpfs, the
/// device nodes bound back from the real `/dev` (reached through `$OLD`), `/dev/log` pointing at
/// the test's socket.
const NS_SCRIPT: &str = r#"#!/bin/sh
set -eu
sock=$1; old=$2; shift 2
mount --rbind /dev "$old"
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero full random urandom tty ptmx; do
  touch "/dev/$n"; mount --bind "$old/$n" "/dev/$n"
done
mkdir /dev/pts /dev/shm
mount --rbind "$old/pts" /dev/pts
mount --rbind "$old/shm" /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s "$sock" /dev/log
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -m 755 /run/sshd
exec "$@"
"#;

fn require() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "this test runs the real sshd and sudo in a private mount namespace and must run as root \
         (scripts/test, as CI does); effective uid is {uid}"
    );
    for tool in [
        SSHD,
        "/usr/bin/ssh",
        "/usr/bin/ssh-keygen",
        "/usr/bin/sudo",
        "/usr/bin/su",
        "/usr/bin/unshare",
        "/usr/bin/setpriv",
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install openssh-server, openssh-client, sudo and util-linux \
             (scripts/test does)"
        );
    }
}

/// The socket standing in for `/dev/log`, and every datagram it received.
struct LogSink {
    path: PathBuf,
    lines: Arc<(Mutex<Vec<Vec<u8>>>, Condvar)>,
    stop: Arc<AtomicBool>,
    reader: Option<thread::JoinHandle<()>>,
}

impl LogSink {
    fn bind(path: PathBuf) -> LogSink {
        let sock = UnixDatagram::bind(&path).unwrap();
        // Programs log after dropping privileges (sudo as the invoking user), so anyone may send.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (lines, stop) = (lines.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        let mut d = buf[..n].to_vec();
                        while d.last().is_some_and(|b| *b == b'\n' || *b == 0) {
                            d.pop();
                        }
                        lines.0.lock().unwrap().push(d);
                        lines.1.notify_all();
                    }
                }
            })
        };
        LogSink {
            path,
            lines,
            stop,
            reader: Some(reader),
        }
    }

    fn joined(lines: &[Vec<u8>]) -> String {
        lines
            .iter()
            .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
            .collect()
    }

    /// Waits until every `needle` occurs in the captured lines.
    fn wait_for(&self, needles: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.lines;
        let mut lines = lock.lock().unwrap();
        loop {
            let text = Self::joined(&lines);
            if needles.iter().all(|n| text.contains(n)) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {needles:?} in the captured syslog lines:\n{text}"
            );
            lines = cv.wait_timeout(lines, left).unwrap().0;
        }
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        std::mem::take(&mut *self.lines.0.lock().unwrap())
    }
}

/// A child killed when dropped (sshd must not outlive a failed assertion).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command to completion, killing it after `timeout`; returns its status and stderr.
fn run(mut cmd: Command, timeout: Duration) -> (ExitStatus, String) {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => {
            let out = out.unwrap();
            (
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("{what} timed out after {timeout:?}");
        }
    }
}

/// `unshare --mount … ns.sh SOCK OLDDEV args…`: a command in the private namespace.
fn in_namespace(dir: &Path, sink: &LogSink, args: &[&str]) -> Command {
    static N: AtomicUsize = AtomicUsize::new(0);
    let old = dir.join(format!("olddev-{}", N.fetch_add(1, Ordering::Relaxed)));
    fs::create_dir_all(&old).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh"])
        .arg(dir.join("ns.sh"))
        .arg(&sink.path)
        .arg(&old)
        .args(args);
    cmd
}

fn keygen(path: &Path) -> String {
    let (status, err) = {
        let mut c = Command::new("ssh-keygen");
        c.args(["-q", "-t", "ed25519", "-N", "", "-C", "acta-test", "-f"])
            .arg(path);
        run(c, Duration::from_secs(10))
    };
    assert!(status.success(), "ssh-keygen failed: {err}");
    // `256 SHA256:… acta-test (ED25519)`
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path.with_extension("pub"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ssh(port: u16, user: &str, extra: &[&str], askpass: Option<&Path>) -> Command {
    let mut c = Command::new("ssh");
    c.args([
        "-F",
        "/dev/null",
        "-p",
        &port.to_string(),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "IdentitiesOnly=yes",
    ])
    .args(extra)
    .arg(format!("{user}@127.0.0.1"))
    .arg("true");
    if let Some(p) = askpass {
        c.env("SSH_ASKPASS", p)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", "none");
    }
    c
}

/// Frames and normalises a captured log file, as `acta ingest` does.
fn normalise(path: &Path) -> Vec<(Option<Format>, Value)> {
    let registry = Registry::standard();
    let mut framer = Framer::new(
        path.display().to_string(),
        open_input(path).unwrap(),
        FramerConfig::default(),
    );
    let mut batch = RecordBatch::new();
    let mut norm = InputNormaliser::new(None);
    let received_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut out = Vec::new();
    loop {
        batch.clear();
        let more = framer.next_batch(&mut batch, 1 << 20).unwrap();
        for (bytes, _) in batch.iter() {
            let n = norm.normalise(
                &registry,
                &Record {
                    bytes,
                    received_at_ms,
                },
            );
            let e = n.event.expect("every syslog line yields an event");
            out.push((n.format, serde_json::from_str(&e.to_json()).unwrap()));
        }
        if !more {
            break;
        }
    }
    out
}

fn find<'a>(events: &'a [Value], op: &str, pred: impl Fn(&Value) -> bool) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["api"]["operation"] == op && pred(e))
}

#[test]
fn real_sshd_sudo_and_su_lines_are_normalised() {
    require();
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        !dir.starts_with("/run") && !dir.starts_with("/dev"),
        "the temp dir must lie outside /run and /dev, which the namespace replaces"
    );
    // Reachable by `nobody` (sudo and su log as the invoking user).
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.join("ns.sh"), NS_SCRIPT).unwrap();
    let sink = LogSink::bind(dir.join("log.sock"));

    let good_fp = keygen(&dir.join("user_key"));
    let bad_fp = keygen(&dir.join("other_key"));
    keygen(&dir.join("host_key"));
    fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    let askpass = dir.join("askpass");
    fs::write(&askpass, "#!/bin/sh\necho not-the-password\n").unwrap();
    fs::set_permissions(&askpass, fs::Permissions::from_mode(0o755)).unwrap();

    let port = free_port();
    let config = dir.join("sshd_config");
    fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1:{port}\n\
             HostKey {host_key}\n\
             AuthorizedKeysFile {authorized}\n\
             PidFile none\n\
             StrictModes no\n\
             UsePAM yes\n\
             PasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin yes\n\
             LogLevel VERBOSE\n\
             SyslogFacility AUTH\n",
            host_key = dir.join("host_key").display(),
            authorized = dir.join("authorized_keys").display(),
        ),
    )
    .unwrap();

    let sshd = {
        let mut c = in_namespace(dir, &sink, &[SSHD, "-D", "-f", config.to_str().unwrap()]);
        Killed(
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    sink.wait_for(
        &[&format!("Server listening on 127.0.0.1 port {port}")],
        Duration::from_secs(10),
    );

    // Logins, in parallel (a failed password costs sshd's PAM delay of about 2 s).
    let user_key = dir.join("user_key");
    let other_key = dir.join("other_key");
    let key_arg = |p: &Path| p.to_str().unwrap().to_owned();
    let logins: Vec<(&str, Command, bool)> = vec![
        (
            "publickey login as root",
            ssh(
                port,
                "root",
                &["-o", "BatchMode=yes", "-i", &key_arg(&user_key)],
                None,
            ),
            true,
        ),
        (
            "wrong key for root",
            ssh(
                port,
                "root",
                &["-o", "BatchMode=yes", "-i", &key_arg(&other_key)],
                None,
            ),
            false,
        ),
        (
            "wrong password for root",
            ssh(
                port,
                "root",
                &[
                    "-o",
                    "PreferredAuthentications=password",
                    "-o",
                    "PubkeyAuthentication=no",
                    "-o",
                    "NumberOfPasswordPrompts=1",
                ],
                Some(&askpass),
            ),
            false,
        ),
        (
            "password for an invalid user",
            ssh(
                port,
                INVALID_USER,
                &[
                    "-o",
                    "PreferredAuthentications=password",
                    "-o",
                    "PubkeyAuthentication=no",
                    "-o",
                    "NumberOfPasswordPrompts=1",
                ],
                Some(&askpass),
            ),
            false,
        ),
    ];
    let handles: Vec<_> = logins
        .into_iter()
        .map(|(what, cmd, ok)| {
            thread::spawn(move || {
                let (status, err) = run(cmd, Duration::from_secs(30));
                assert_eq!(status.success(), ok, "{what}: {status}; {err}");
            })
        })
        .collect();

    // sudo and su meanwhile: allowed as root, refused as nobody (no password on stdin).
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let runs: Vec<(Vec<&str>, bool)> = vec![
        (vec!["sudo", "-u", "nobody", "/usr/bin/true"], true),
        (
            [&nobody[..], &["sudo", "-S", "/usr/bin/true"]].concat(),
            false,
        ),
        (vec!["su", "-s", "/bin/true", "nobody"], true),
        ([&nobody[..], &["su", "root", "-c", "true"]].concat(), false),
    ];
    for (args, ok) in &runs {
        let (status, err) = run(in_namespace(dir, &sink, args), Duration::from_secs(20));
        assert_eq!(status.success(), *ok, "{args:?}: {status}; {err}");
    }
    for h in handles {
        h.join().unwrap();
    }
    sink.wait_for(
        &[
            "Accepted publickey for root",
            "session closed for user root",
            "Failed publickey for root",
            "Failed password for root",
            &format!("Failed password for invalid user {INVALID_USER}"),
            "USER=nobody ; COMMAND=/usr/bin/true",
            "user NOT in sudoers",
            "(to nobody) root",
            "FAILED SU (to root) nobody",
        ],
        Duration::from_secs(10),
    );
    drop(sshd);
    let lines = sink.finish();

    let log = dir.join("auth.log");
    let mut f = fs::File::create(&log).unwrap();
    for l in &lines {
        f.write_all(l).unwrap();
        f.write_all(b"\n").unwrap();
    }
    drop(f);
    if let Some(keep) = std::env::var_os("ACTA_SSHD_CAPTURE") {
        fs::copy(&log, keep).unwrap();
    }
    let text = fs::read_to_string(&log).unwrap();

    let normalised = normalise(&log);
    assert_eq!(normalised.len(), lines.len(), "one event per line:\n{text}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (format, e) in &normalised {
        assert_eq!(*format, Some(Format::Syslog), "{e}");
        assert_eq!(e["metadata"]["log_name"], "syslog", "{e}");
        // The stamps are local time read as UTC: within a day of now whatever the zone.
        let t = e["time"].as_i64().unwrap();
        assert!((t - now).abs() < 86_400_000, "time {t} far from now: {e}");
    }
    let events: Vec<Value> = normalised.into_iter().map(|(_, e)| e).collect();
    let dump = || {
        events
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}\n",
                    e["class_uid"], e["api"]["operation"], e["status"], e["message"]
                )
            })
            .collect::<String>()
    };
    let from_loopback = |e: &Value| e["src_endpoint"]["ip"] == "127.0.0.1";

    let accepted = find(&events, "sshd.accepted_publickey", from_loopback)
        .unwrap_or_else(|| panic!("no accepted publickey login:\n{}", dump()));
    assert_eq!(accepted["class_uid"], 3002);
    assert_eq!(accepted["activity_name"], "Logon");
    assert_eq!(accepted["status"], "Success");
    assert_eq!(accepted["actor"]["user"]["name"], "root");
    assert_eq!(
        accepted["actor"]["user"]["credential_uid"],
        good_fp.as_str()
    );
    assert!(accepted["src_endpoint"]["port"].as_u64().unwrap() > 0);

    let bad_key = find(&events, "sshd.failed_publickey", from_loopback)
        .unwrap_or_else(|| panic!("no failed publickey:\n{}", dump()));
    assert_eq!(bad_key["status"], "Failure");
    assert_eq!(bad_key["actor"]["user"]["name"], "root");
    assert_eq!(bad_key["actor"]["user"]["credential_uid"], bad_fp.as_str());

    let bad_password = find(&events, "sshd.failed_password", |e| {
        e["actor"]["user"]["name"] == "root"
    })
    .unwrap_or_else(|| panic!("no failed password for root:\n{}", dump()));
    assert_eq!(bad_password["status"], "Failure");
    assert_eq!(bad_password["activity_name"], "Logon");

    let invalid = find(&events, "sshd.invalid_user", from_loopback)
        .unwrap_or_else(|| panic!("no invalid user:\n{}", dump()));
    assert_eq!(invalid["actor"]["user"]["name"], INVALID_USER);
    assert_eq!(invalid["status"], "Failure");
    assert_eq!(invalid["status_detail"], "invalid user");
    let invalid_pw = find(&events, "sshd.failed_password", |e| {
        e["actor"]["user"]["name"] == INVALID_USER
    })
    .unwrap_or_else(|| panic!("no failed password for the invalid user:\n{}", dump()));
    assert_eq!(invalid_pw["status_detail"], "invalid user");

    assert!(
        find(&events, "pam.auth_failure", |e| e["actor"]["user"]["name"]
            == "root"
            && from_loopback(e))
        .is_some(),
        "no PAM authentication failure for root:\n{}",
        dump()
    );
    let opened = find(&events, "session.open", |e| {
        e["unmapped"]["pam_service"] == "sshd"
    })
    .unwrap_or_else(|| panic!("no sshd session opened:\n{}", dump()));
    assert_eq!(opened["actor"]["user"]["name"], "root");
    assert!(
        find(&events, "session.close", |e| e["unmapped"]["pam_service"]
            == "sshd")
        .is_some(),
        "no sshd session closed:\n{}",
        dump()
    );
    assert!(
        find(&events, "sshd.disconnected", |e| e["actor"]["user"]["name"]
            == "root")
        .is_some(),
        "no disconnect of root:\n{}",
        dump()
    );

    let sudo = find(&events, "sudo.command", |_| true)
        .unwrap_or_else(|| panic!("no sudo command:\n{}", dump()));
    assert_eq!(sudo["class_uid"], 3003);
    assert_eq!(sudo["status"], "Success");
    assert_eq!(sudo["actor"]["user"]["name"], "root");
    assert_eq!(sudo["user"]["name"], "nobody");
    assert_eq!(sudo["unmapped"]["command"], "/usr/bin/true");
    let sudo_session = find(&events, "session.open", |e| {
        e["unmapped"]["pam_service"] == "sudo"
    })
    .unwrap_or_else(|| panic!("no sudo session:\n{}", dump()));
    assert_eq!(sudo_session["actor"]["user"]["uid"], "0");
    assert_eq!(sudo_session["user"]["name"], "nobody");
    let refused = find(&events, "sudo.not_in_sudoers", |_| true)
        .unwrap_or_else(|| panic!("no sudo refusal:\n{}", dump()));
    assert_eq!(refused["status"], "Failure");
    assert_eq!(refused["actor"]["user"]["name"], "nobody");
    assert_eq!(refused["user"]["name"], "root");

    let su =
        find(&events, "su.switch_user", |_| true).unwrap_or_else(|| panic!("no su:\n{}", dump()));
    assert_eq!(su["actor"]["user"]["name"], "root");
    assert_eq!(su["user"]["name"], "nobody");
    let su_failed =
        find(&events, "su.failed", |_| true).unwrap_or_else(|| panic!("no failed su:\n{}", dump()));
    assert_eq!(su_failed["actor"]["user"]["name"], "nobody");
    assert_eq!(su_failed["user"]["name"], "root");
    assert_eq!(su_failed["status"], "Failure");

    // Lines with no access meaning stay visible as base events that say why.
    let listening = events
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Server listening"))
        })
        .unwrap();
    assert_eq!(listening["class_uid"], 0);
    assert_eq!(
        listening["status_detail"],
        "syslog message from `sshd` is not an access event"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
