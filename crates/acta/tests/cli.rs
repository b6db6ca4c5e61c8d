//! The `acta` command end to end: real samples, bad input, tampering, receipts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{acta, text};

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn stratus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cloudtrail/stratus");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 35);
    files
}

/// Number of `stored N entries` in an ingest summary.
fn stored(o: &Output) -> u64 {
    let s = String::from_utf8_lossy(&o.stdout);
    let n = s
        .split("stored ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no summary in {s:?}"));
    n.replace(',', "").parse().unwrap()
}

#[test]
fn stratus_samples_are_stored_record_for_record_and_verify() {
    let d = tempfile::tempdir().unwrap();
    let files = stratus_files();
    // Independent count: every top-level array element of every file.
    let mut expected = 0u64;
    let mut records: Vec<Vec<u8>> = Vec::new();
    for f in &files {
        let v: Vec<serde_json::Value> = serde_json::from_slice(&fs::read(f).unwrap()).unwrap();
        expected += v.len() as u64;
        records.extend(v.iter().map(|r| serde_json::to_vec(r).unwrap()));
    }
    assert_eq!(expected, 310);
    let mut args = vec!["ingest", "--quiet", "--source", "cloudtrail"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let o = acta(d.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stored(&o), expected, "{}", text(&o));
    let v = acta(d.path(), &["verify", "--quiet"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("ok: 310 entries from 1 source"),
        "{}",
        text(&v)
    );
    // Each entry is a record of the input, byte for byte.
    let stored: Vec<Vec<u8>> = acta_ledger::read::Entries::open(&d.path().join("ledger"))
        .unwrap()
        .map(|e| e.unwrap().payload)
        .collect();
    assert_eq!(stored.len(), 310);
    for (s, r) in stored.iter().zip(&records) {
        let parsed: serde_json::Value = serde_json::from_slice(s).unwrap();
        assert_eq!(serde_json::to_vec(&parsed).unwrap(), *r);
    }
}

#[test]
fn data_dir_is_accepted_before_or_after_the_subcommand_and_from_the_environment() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("in.ndjson");
    fs::write(&file, "{\"a\":1}\n{\"a\":2}\n").unwrap();
    let data = d.path().join("data");
    let o = Command::new(env!("CARGO_BIN_EXE_acta"))
        .args(["ingest", "--quiet", "--data-dir"])
        .arg(&data)
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_acta"))
        .args(["verify", "-q"])
        .env("ACTA_DATA_DIR", &data)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ok: 2 entries"));
}

#[test]
fn bad_input_gets_a_clear_error_and_the_rest_is_stored() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    fs::write(dir.join("empty.json"), "").unwrap();
    let mut bad_utf8 = b"{\"ok\":1}\n".to_vec();
    bad_utf8.extend_from_slice(b"\xff\xfe not utf-8 \xc3\x28\n{\"ok\":2}\n");
    fs::write(dir.join("utf8.ndjson"), &bad_utf8).unwrap();
    fs::write(dir.join("text.log"), "Nov 21 12:00:01 host sshd[42]: Accepted publickey for alice from 10.0.0.1 port 50000 ssh2\n").unwrap();
    // A gzip stream cut in half.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..2000 {
        writeln!(gz, "{{\"i\":{i},\"pad\":\"{}\"}}", "y".repeat(i % 50)).unwrap();
    }
    let gz = gz.finish().unwrap();
    fs::write(dir.join("cut.json.gz"), &gz[..gz.len() / 2]).unwrap();
    let data = dir.join("data");
    let o = acta(
        &data,
        &[
            "ingest",
            "--quiet",
            dir.join("empty.json").to_str().unwrap(),
            dir.join("missing.json").to_str().unwrap(),
            dir.join("utf8.ndjson").to_str().unwrap(),
            dir.join("cut.json.gz").to_str().unwrap(),
            dir.join("text.log").to_str().unwrap(),
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert!(out.contains("empty.json: empty"), "{out}");
    assert!(
        out.contains("cannot open") && out.contains("missing.json"),
        "{out}"
    );
    assert!(out.contains("cut.json.gz"), "{out}");
    // 3 from utf8.ndjson (one flagged), at least some from the cut gzip, 1 text line.
    let n = stored(&o);
    assert!(n > 4 && n < 2004, "{n}: {out}");
    assert!(
        out.contains("flagged") && out.contains("no parser recognised this record"),
        "{out}"
    );
    let v = acta(&data, &["verify", "-q"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let payloads: Vec<Vec<u8>> = acta_ledger::read::Entries::open(&data.join("ledger"))
        .unwrap()
        .map(|e| e.unwrap().payload)
        .collect();
    assert!(
        payloads.contains(&b"\xff\xfe not utf-8 \xc3\x28".to_vec()),
        "invalid UTF-8 kept byte for byte"
    );
    assert!(
        payloads
            .iter()
            .any(|p| p.starts_with(b"Nov 21 12:00:01 host sshd"))
    );
}

#[test]
fn a_two_gigabyte_line_is_reported_and_skipped_and_the_rest_stored() {
    let d = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_acta"))
        .arg("--data-dir")
        .arg(d.path())
        .args(["ingest", "--quiet", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(b"{\"before\":1}\n").unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..2048 {
            stdin.write_all(&chunk).unwrap();
        }
        stdin.write_all(b"\n{\"after\":1}\n").unwrap();
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("<stdin>:2:") && out.contains("exceeds"),
        "{out}"
    );
    assert_eq!(stored(&o), 2, "{out}");
}

#[test]
fn verify_names_the_first_bad_entry_and_exits_1() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("in.ndjson");
    let lines: String = (0..1000).map(|i| format!("{{\"event\":{i}}}\n")).collect();
    fs::write(&file, lines).unwrap();
    let data = d.path().join("data");
    assert!(
        acta(&data, &["ingest", "-q", file.to_str().unwrap()])
            .status
            .success()
    );
    // Change one payload byte of entry 500 in place.
    let seg = data.join("ledger/payload/0000000000.dat");
    let mut bytes = fs::read(&seg).unwrap();
    let needle = b"{\"event\":500}";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 9] = b'9';
    fs::write(&seg, bytes).unwrap();
    let v = acta(&data, &["verify", "-q"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(
        out.starts_with("FAILED: entry 500 (payload/0000000000.dat)"),
        "{out}"
    );
    // Usage errors exit 2: no ledger, or a key that is not one.
    let v = acta(&d.path().join("nothing"), &["verify", "-q"]);
    assert_eq!(v.status.code(), Some(2), "{}", text(&v));
    let v = acta(&data, &["verify", "-q", "--key", "not-a-key"]);
    assert_eq!(v.status.code(), Some(2), "{}", text(&v));
    let v = acta(&data, &["verify", "--bogus"]);
    assert_eq!(v.status.code(), Some(2), "{}", text(&v));
}

#[test]
fn verify_with_another_logs_key_fails() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("in.ndjson");
    fs::write(&file, "{\"a\":1}\n").unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    assert!(
        acta(&a, &["ingest", "-q", file.to_str().unwrap()])
            .status
            .success()
    );
    let other = String::from_utf8(acta(&b, &["key", "show"]).stdout).unwrap();
    let v = acta(&a, &["verify", "-q", "--key", other.trim()]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("the key is for"),
        "{}",
        text(&v)
    );
}

#[test]
fn receipts_verify_offline_and_catch_a_different_record() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("in.ndjson");
    let lines: String = (0..300).map(|i| format!("{{\"event\":{i}}}\n")).collect();
    fs::write(&file, lines).unwrap();
    let data = d.path().join("data");
    assert!(
        acta(&data, &["ingest", "-q", file.to_str().unwrap()])
            .status
            .success()
    );
    let key = String::from_utf8(acta(&data, &["key", "show"]).stdout).unwrap();
    let key = key.trim();
    for index in ["0", "255", "256", "299"] {
        let p = acta(&data, &["proof", index]);
        assert!(p.status.success(), "{}", text(&p));
        let receipt = d.path().join(format!("{index}.tlog-proof"));
        fs::write(&receipt, &p.stdout).unwrap();
        assert!(String::from_utf8_lossy(&p.stdout).starts_with("c2sp.org/tlog-proof@v1\nextra "));
        let record = d.path().join("record");
        fs::write(&record, format!("{{\"event\":{index}}}")).unwrap();
        // Checked with the key alone, from an unrelated directory.
        let v = acta(
            &d.path().join("elsewhere"),
            &[
                "proof",
                "--verify",
                receipt.to_str().unwrap(),
                "--key",
                key,
                "--record",
                record.to_str().unwrap(),
            ],
        );
        assert!(v.status.success(), "{}", text(&v));
        assert!(String::from_utf8_lossy(&v.stdout).contains("the record matches"));
        fs::write(&record, "{\"event\":-1}").unwrap();
        let v = acta(
            &d.path().join("elsewhere"),
            &[
                "proof",
                "--verify",
                receipt.to_str().unwrap(),
                "--key",
                key,
                "--record",
                record.to_str().unwrap(),
            ],
        );
        assert_eq!(v.status.code(), Some(1), "{}", text(&v));
        // A receipt whose proof was altered fails.
        let altered =
            String::from_utf8(p.stdout.clone())
                .unwrap()
                .replacen("\nindex ", "\nindex 1", 1);
        fs::write(&receipt, altered).unwrap();
        let v = acta(
            &d.path().join("elsewhere"),
            &["proof", "--verify", receipt.to_str().unwrap(), "--key", key],
        );
        assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    }
    let p = acta(&data, &["proof", "300"]);
    assert!(!p.status.success());
    assert!(text(&p).contains("does not exist"), "{}", text(&p));
}

#[test]
fn the_key_is_private_and_stable() {
    use std::os::unix::fs::PermissionsExt as _;
    let d = tempfile::tempdir().unwrap();
    let a = acta(d.path(), &["key", "show"]);
    let b = acta(d.path(), &["key", "show"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let key = String::from_utf8(a.stdout).unwrap();
    assert!(
        key.starts_with("acta/") && key.trim().split('+').count() >= 3,
        "{key}"
    );
    let mode = fs::metadata(d.path().join("keys/log.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn proofs_are_made_while_another_process_writes() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("in.ndjson");
    fs::write(
        &file,
        (0..600)
            .map(|i| format!("{{\"e\":{i}}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let data = d.path().join("data");
    assert!(
        acta(&data, &["ingest", "-q", file.to_str().unwrap()])
            .status
            .success()
    );
    // Hold the ledger open for writing, as `acta ingest` or a server would.
    let (key, _) = acta_ledger::keys::KeyFiles::in_dir(&data.join("keys"))
        .load_or_create()
        .unwrap();
    let writer = acta_ledger::Ledger::open(&data.join("ledger"), key, Default::default()).unwrap();
    let p = acta(&data, &["proof", "599"]);
    assert!(p.status.success(), "{}", text(&p));
    let receipt = d.path().join("r.tlog-proof");
    fs::write(&receipt, &p.stdout).unwrap();
    let v = acta(&data, &["proof", "--verify", receipt.to_str().unwrap()]);
    assert!(v.status.success(), "{}", text(&v));
    // Verification, by contrast, waits for a quiescent ledger and says so.
    let v = acta(&data, &["verify", "-q"]);
    assert_eq!(v.status.code(), Some(2), "{}", text(&v));
    assert!(text(&v).contains("in use"), "{}", text(&v));
    drop(writer);
}
