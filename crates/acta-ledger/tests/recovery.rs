//! Recovery after crashes at awkward moments: what a power loss or an interrupted start leaves on
//! disk, recreated by hand, must reopen without losing acknowledged entries, and damage below the
//! last signed checkpoint must be refused without touching anything.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use acta_ledger::keys::KeyFiles;
use acta_ledger::layout::Layout;
use acta_ledger::{Batch, Ledger, LedgerOptions, SourceName, VerifyOptions, verify};

fn open(dir: &Path) -> Result<Ledger, acta_ledger::LedgerError> {
    let (key, _) = KeyFiles::in_dir(&dir.join("keys"))
        .load_or_create()
        .unwrap();
    let options = LedgerOptions {
        publish_interval: Duration::ZERO,
        journal_segment_entries: 256,
    };
    Ledger::open(&dir.join("ledger"), key, options)
}

fn batch(n: usize, tag: &str) -> Batch {
    let mut b = Batch::new(SourceName::new("cloudtrail").unwrap(), 1_700_000_000_000);
    for i in 0..n {
        b.push(format!("{{\"tag\":\"{tag}\",\"i\":{i}}}").as_bytes())
            .unwrap();
    }
    b
}

fn verifies(dir: &Path) -> u64 {
    let key = KeyFiles::in_dir(&dir.join("keys")).load_verifier().unwrap();
    verify(&VerifyOptions::new(dir.join("ledger"), key))
        .unwrap_or_else(|f| panic!("{f}"))
        .entries
}

/// 200 committed entries, then 400 appended (starting two new journal segments) and lost.
fn crashed_mid_group(dir: &Path) {
    let mut l = open(dir).unwrap();
    l.append(&batch(200, "acked")).unwrap();
    l.commit().unwrap();
    l.append(&batch(400, "lost")).unwrap();
    drop(l); // no commit: what a crash leaves, before any sync
    let layout = Layout::new(dir.join("ledger"));
    assert!(layout.journal_segment(256).exists() && layout.journal_segment(512).exists());
}

#[test]
fn a_middle_journal_segment_with_no_header_is_cut_like_a_torn_tail() {
    let d = tempfile::tempdir().unwrap();
    crashed_mid_group(d.path());
    // Power loss: the middle segment's header never reached the disk.
    fs::write(
        Layout::new(d.path().join("ledger")).journal_segment(256),
        b"",
    )
    .unwrap();
    let l = open(d.path()).unwrap();
    assert!(l.size() >= 200, "acknowledged entries kept");
    assert!(l.size() <= 256);
    l.close().unwrap();
    assert!(verifies(d.path()) >= 200);
}

#[test]
fn a_middle_journal_segment_that_is_a_stale_spare_is_cut() {
    let d = tempfile::tempdir().unwrap();
    crashed_mid_group(d.path());
    // A recycled spare renamed into place, still carrying the header of an old segment.
    let layout = Layout::new(d.path().join("ledger"));
    let old = fs::read(layout.journal_segment(0)).unwrap();
    fs::write(layout.journal_segment(256), &old[..old.len().min(200)]).unwrap();
    let l = open(d.path()).unwrap();
    assert!((200..=256).contains(&l.size()));
    l.close().unwrap();
    assert!(verifies(d.path()) >= 200);
}

#[test]
fn a_damaged_header_below_the_last_checkpoint_is_refused_and_left_untouched() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path()).unwrap();
    l.append(&batch(100, "acked")).unwrap();
    l.close().unwrap();
    let seg = Layout::new(d.path().join("ledger")).journal_segment(0);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[20] ^= 0x01; // inside the header
    fs::write(&seg, &bytes).unwrap();
    let err = open(d.path()).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(
        fs::read(&seg).unwrap(),
        bytes,
        "evidence must not be rewritten"
    );
}

#[test]
fn damaged_partial_tiles_are_repaired_on_open() {
    let d = tempfile::tempdir().unwrap();
    let mut l = open(d.path()).unwrap();
    l.append(&batch(300, "a")).unwrap();
    l.close().unwrap();
    let log = d.path().join("ledger/log");
    let partials = [
        log.join("tile/0/001.p/44"),
        log.join("tile/entries/001.p/44"),
        log.join("tile/1/000.p/1"),
    ];
    let good: Vec<Vec<u8>> = partials.iter().map(|p| fs::read(p).unwrap()).collect();
    // A power loss can leave published partial tiles empty or cut.
    fs::write(&partials[0], b"").unwrap();
    fs::write(&partials[1], &good[1][..10]).unwrap();
    fs::write(&partials[2], vec![0u8; 32]).unwrap();
    open(d.path()).unwrap().close().unwrap();
    for (p, g) in partials.iter().zip(&good) {
        assert_eq!(&fs::read(p).unwrap(), g, "{}", p.display());
    }
    assert_eq!(verifies(d.path()), 300);
}

#[test]
fn an_interrupted_creation_does_not_block_the_next_start() {
    let d = tempfile::tempdir().unwrap();
    // Directories created, FORMAT not yet written: what a kill during the first start leaves.
    let layout = Layout::new(d.path().join("ledger"));
    fs::create_dir_all(layout.journal_dir()).unwrap();
    fs::create_dir_all(layout.payload_dir()).unwrap();
    let mut l = open(d.path()).unwrap();
    l.append(&batch(3, "a")).unwrap();
    l.close().unwrap();
    assert_eq!(verifies(d.path()), 3);
}
