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
