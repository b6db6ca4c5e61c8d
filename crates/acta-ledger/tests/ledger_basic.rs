#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use acta_ledger::keys::KeyFiles;
use acta_ledger::proof::{verify_consistency, verify_inclusion};
use acta_ledger::{Batch, Ledger, LedgerOptions, SourceName, VerifyOptions, hash, verify};

fn open(dir: &std::path::Path) -> Ledger {
    let (key, _) = KeyFiles::in_dir(&dir.join("keys"))
        .load_or_create()
        .unwrap();
    Ledger::open(&dir.join("ledger"), key, LedgerOptions::default()).unwrap()
}

fn batch(source: &str, n: usize, tag: &str) -> Batch {
    let mut b = Batch::new(SourceName::new(source).unwrap(), 1_700_000_000_000);
    for i in 0..n {
        b.push(format!("{{\"tag\":\"{tag}\",\"i\":{i}}}").as_bytes())
            .unwrap();
    }
    b
}

#[test]
fn append_close_reopen_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    assert_eq!(l.size(), 0);
    let r = l.append(&batch("cloudtrail", 1000, "a")).unwrap();
    assert_eq!(r, 0..1000);
    let c = l.commit().unwrap();
    assert_eq!(c.size, 1000);
    l.append(&batch("k8s", 70_000, "b")).unwrap();
    l.commit().unwrap();
    let root = l.root();
    let e = l.entry(1234).unwrap();
    assert_eq!(e.payload, br#"{"tag":"b","i":234}"#);
    let p = l.inclusion_proof(1234, l.size()).unwrap();
    assert!(verify_inclusion(
        1234,
        l.size(),
        &hash::leaf_hash(&e.envelope),
        &p,
        &root
    ));
    let old_root = l.root_at(1000).unwrap();
    let cp = l.consistency_proof(1000, 71_000).unwrap();
    assert!(verify_consistency(1000, 71_000, &old_root, &root, &cp));
    let last = l.close().unwrap();
    assert_eq!(last.checkpoint.size, 71_000);

    let mut l = open(dir.path());
    assert_eq!(l.size(), 71_000);
    assert_eq!(l.root(), root);
    l.append(&batch("k8s", 10, "c")).unwrap();
    l.close().unwrap();

    let key = KeyFiles::in_dir(&dir.path().join("keys"))
        .load_verifier()
        .unwrap();
    let report = verify(&VerifyOptions::new(dir.path().join("ledger"), key)).unwrap();
    assert_eq!(report.entries, 71_010);
    assert_eq!(report.sources["k8s"], 70_010);
    assert_eq!(report.sources["cloudtrail"], 1000);
    assert!(report.checkpoints >= 4, "{report:?}");
}

#[test]
fn a_batch_of_thousands_costs_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let before = l.commits();
    l.append(&batch("cloudtrail", 10_000, "x")).unwrap();
    let c = l.commit().unwrap();
    assert_eq!(c.size, 10_000);
    assert_eq!(l.commits(), before + 1, "one sync round for 10,000 entries");
    // Committing again with nothing new syncs nothing and signs nothing.
    l.commit().unwrap();
    assert_eq!(l.commits(), before + 1);
    l.close().unwrap();
    let key = KeyFiles::in_dir(&dir.path().join("keys"))
        .load_verifier()
        .unwrap();
    let report = verify(&VerifyOptions::new(dir.path().join("ledger"), key)).unwrap();
    // The empty tree's checkpoint and the commit's: nothing else was signed.
    assert_eq!(report.checkpoints, 2);
}

#[test]
fn concurrent_appends_share_commits() {
    use acta_ledger::{Appender, AppenderOptions};
    let dir = tempfile::tempdir().unwrap();
    let appender =
        std::sync::Arc::new(Appender::start(open(dir.path()), AppenderOptions::default()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let a = appender.clone();
            std::thread::spawn(move || {
                let tickets: Vec<_> = (0..50)
                    .map(|i| a.submit(batch("k8s", 20, &format!("{t}-{i}"))).unwrap())
                    .collect();
                tickets
                    .into_iter()
                    .map(|t| t.wait().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let receipts: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(receipts.len(), 400);
    // Every receipt's entries are covered by its checkpoint, and the ranges tile 0..8000.
    let mut ranges: Vec<(u64, u64)> = receipts.iter().map(|r| (r.first, r.count)).collect();
    ranges.sort();
    let mut next = 0;
    for (first, count) in ranges {
        assert_eq!(first, next);
        next += count;
    }
    assert_eq!(next, 8_000);
    assert!(
        receipts
            .iter()
            .all(|r| r.first + r.count <= r.checkpoint.checkpoint.size)
    );
    let distinct: std::collections::BTreeSet<u64> = receipts
        .iter()
        .map(|r| r.checkpoint.checkpoint.size)
        .collect();
    assert!(
        distinct.len() < 400,
        "400 batches from 8 threads were committed in {} groups",
        distinct.len()
    );
    let last = std::sync::Arc::try_unwrap(appender)
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(last.checkpoint.size, 8_000);
}

#[test]
fn checkpoints_are_published_at_least_once_a_second_and_on_close() {
    use acta_ledger::{Appender, AppenderOptions, SignedCheckpoint};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let key = KeyFiles::in_dir(&dir.path().join("keys"))
        .load_or_create()
        .unwrap()
        .0;
    let verifier = key.verifier().clone();
    let appender = Appender::start(open(dir.path()), AppenderOptions::default()).unwrap();
    let published = |dir: &std::path::Path| -> u64 {
        let note = std::fs::read_to_string(dir.join("ledger/log/checkpoint")).unwrap_or_default();
        SignedCheckpoint::open(&note, &verifier)
            .map(|c| c.checkpoint.size)
            .unwrap_or(0)
    };
    let start = Instant::now();
    let mut acked: Vec<(Instant, u64)> = Vec::new();
    let mut seen: Vec<(Instant, u64)> = Vec::new();
    while start.elapsed() < Duration::from_millis(3_500) {
        let r = appender.append(batch("cloudtrail", 5, "tick")).unwrap();
        acked.push((r.acknowledged_at, r.first + r.count));
        for _ in 0..4 {
            seen.push((Instant::now(), published(dir.path())));
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(25) {
                std::hint::spin_loop();
            }
        }
    }
    // Each acknowledged size is published within the interval (1 s), with slack for scheduling.
    for (at, size) in &acked {
        let deadline = *at + Duration::from_millis(1_500);
        if deadline > seen.last().unwrap().0 {
            continue;
        }
        let ok = seen.iter().any(|(t, s)| *t <= deadline && s >= size);
        assert!(
            ok,
            "size {size} acknowledged at {:?} was not published within 1.5 s",
            at.duration_since(start)
        );
    }
    let last = appender.close().unwrap();
    assert_eq!(published(dir.path()), last.checkpoint.size);
    assert_eq!(last.checkpoint.size, acked.last().unwrap().1);
}

#[test]
fn a_second_root_for_a_signed_size_is_reported_as_a_fork() {
    use acta_ledger::SignedCheckpoint;
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    l.append(&batch("cloudtrail", 100, "a")).unwrap();
    l.close().unwrap();
    // Someone holding the key signs another root for the same size and publishes it.
    let (key, _) = KeyFiles::in_dir(&dir.path().join("keys"))
        .load_or_create()
        .unwrap();
    let forged = SignedCheckpoint::sign(&key, 100, hash::sha256(b"another history"));
    std::fs::write(dir.path().join("ledger/log/checkpoint"), forged.note).unwrap();
    let verifier = key.verifier().clone();
    let f = verify(&VerifyOptions::new(dir.path().join("ledger"), verifier)).unwrap_err();
    assert!(f.problem.contains("forked"), "{f}");
    // The ledger itself refuses to open on a fork rather than sign on top of it.
    let err = Ledger::open(&dir.path().join("ledger"), key, LedgerOptions::default()).unwrap_err();
    assert!(err.to_string().contains("forked"), "{err}");
}
