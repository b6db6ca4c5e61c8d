//! `acta bench serve` end to end: the load generator posts batches to a server in another process
//! and reports what was acknowledged, which must be exactly what the ledger and the index hold.
//! Small numbers: behaviour, not timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::serve::{ADMIN, Server};
use common::{acta, testdata, text};
use serde_json::Value;

/// The JSON report of a successful `acta bench serve`.
fn bench(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["bench", "serve", "-o", "json"];
    all.extend_from_slice(args);
    let o = acta(data, &all);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

/// Size of the ledger's latest checkpoint in a data directory.
fn checkpoint_size(data: &Path) -> u64 {
    let note = std::fs::read_to_string(data.join("ledger/log/checkpoint")).unwrap();
    note.lines().nth(1).unwrap().parse().unwrap()
}

#[test]
fn bench_serve_starts_a_server_and_finds_every_acknowledged_event_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = bench(
        dir.path(),
        &[
            "--events",
            "3000",
            "--batch",
            "250",
            "--connections",
            "3",
            "--distinct",
            "1000",
            "--rate",
            "2000",
            "--paced-seconds",
            "1",
        ],
    );
    assert_eq!(r["started"], true);
    assert_eq!(r["batch"], 250);
    assert_eq!(r["connections"], 3);
    // Full speed: whole batches of generated events, each acknowledged with its count.
    assert_eq!(r["full_speed"]["events"], 3000);
    assert_eq!(r["full_speed"]["requests"], 12);
    // Paced: 2,000 events/s for a second, in batches of 250.
    let paced = r["paced"]["events"].as_u64().unwrap();
    assert_eq!(r["paced"]["requests"], 8);
    assert_eq!(paced, 8 * 250);
    assert_eq!(r["paced"]["offered_events_per_s"], 2000.0);
    let acknowledged = 3000 + paced;
    let ledger = &r["ledger"];
    assert_eq!(ledger["acknowledged"], acknowledged);
    assert_eq!(ledger["before"], 0);
    // The server records each read of the trail (the bench's index counts) as an entry of its
    // own: the ledger holds the events and a few access records besides.
    let after = ledger["after"].as_u64().unwrap();
    assert!(
        (acknowledged..acknowledged + 100).contains(&after),
        "{ledger}"
    );
    let last = ledger["final_checkpoint"].as_u64().unwrap();
    assert!((after..acknowledged + 100).contains(&last), "{ledger}");
    assert_eq!(ledger["indexed"], acknowledged);
    assert_eq!(ledger["ranges_ok"], true);
    assert_eq!(ledger["ok"], true);
    assert!(r["server_peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    for phase in ["full_speed", "paced"] {
        let l = &r[phase]["ack_latency_ms"];
        assert!(l["p50"].as_f64().unwrap() > 0.0, "{phase}: {l}");
        assert!(l["p99"].as_f64().unwrap() <= l["max"].as_f64().unwrap());
    }
    // The started server's data directory is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Kept on request: a ledger that verifies, holding exactly what was acknowledged.
    let r = bench(
        dir.path(),
        &[
            "--events",
            "1000",
            "--batch",
            "100",
            "--connections",
            "2",
            "--rate",
            "0",
            "--keep",
        ],
    );
    assert!(r["paced"].is_null());
    assert_eq!(r["ledger"]["acknowledged"], 1000);
    let kept = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("bench-serve-")
        })
        .expect("the kept data directory");
    assert!((1000..1100).contains(&checkpoint_size(&kept)));
    let o = acta(&kept, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bench_serve_loads_a_running_server_and_checks_its_growth() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // A ledger with real records in it already.
    let sample = testdata("cloudtrail/stratus");
    let first = std::fs::read_dir(&sample)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .min()
        .unwrap();
    let o = acta(data, &["ingest", "-q", first.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let before = checkpoint_size(data);
    assert!(before > 0);
    let o = acta(data, &["token", "create", "--role", "ingest"]);
    assert!(o.status.success(), "{}", text(&o));
    let ingest = String::from_utf8(o.stdout).unwrap().trim().to_owned();

    let server = Server::start(data);
    let base = server.base.clone();

    // An admin token: the index count is checked too.
    let common = [
        "--url",
        &base,
        "--events",
        "1200",
        "--batch",
        "300",
        "--connections",
        "2",
        "--distinct",
        "600",
        "--rate",
        "0",
    ];
    let mut args = common.to_vec();
    args.extend(["--token", ADMIN]);
    let r = bench(data, &args);
    assert_eq!(r["started"], false);
    assert!(r["server_peak_rss_bytes"].is_null());
    assert_eq!(r["ledger"]["before"], before);
    assert_eq!(r["ledger"]["acknowledged"], 1200);
    let after = r["ledger"]["after"].as_u64().unwrap();
    assert!((before + 1200..before + 1300).contains(&after), "{r}");
    assert!(r["ledger"]["final_checkpoint"].is_null());
    assert_eq!(r["ledger"]["indexed"], 1200);
    assert_eq!(r["ledger"]["ok"], true);

    // An ingest token may not read: the index is not checked, the ledger still is.
    let mut args = common.to_vec();
    args.extend(["--token", &ingest]);
    let r = bench(data, &args);
    let second = r["ledger"]["before"].as_u64().unwrap();
    assert!(second >= after, "{r}");
    // Its refused reads are recorded too.
    let last = r["ledger"]["after"].as_u64().unwrap();
    let grown = last - second;
    assert!((1200..1300).contains(&grown), "{r}");
    assert!(r["ledger"]["indexed"].is_null());
    assert_eq!(r["ledger"]["ok"], true);

    // A token the server does not know: a clear failure, nothing stored.
    let mut args = common.to_vec();
    args.extend([
        "--token",
        "acta_ffffffffffff_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk",
    ]);
    let mut all = vec!["bench", "serve"];
    all.extend_from_slice(&args);
    let o = acta(data, &all);
    assert!(!o.status.success());
    assert!(text(&o).contains("401"), "{}", text(&o));

    let (clean, said) = server.stop();
    assert!(clean, "{said}");
    // The two runs' events, and the reads the server recorded besides.
    assert!((before + 2400..before + 2600).contains(&checkpoint_size(data)));
    assert!(checkpoint_size(data) >= last);
    let o = acta(data, &["verify"]);
    assert!(o.status.success(), "{}", text(&o));
}
