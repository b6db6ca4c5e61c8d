//! Model-based test: random sequences of ledger operations are applied both to a `Ledger` and to
//! a plain in-memory list of records, and everything observable must agree — sizes, contents,
//! roots, inclusion and consistency proofs — as checked by an independent RFC 9162 implementation
//! (`common::rfc9162`) over envelopes encoded independently here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use acta_ledger::keys::KeyFiles;
use acta_ledger::{Batch, Hash, Ledger, LedgerOptions, SourceName, VerifyOptions, verify};
use common::rfc9162;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const SOURCES: [&str; 3] = ["cloudtrail", "github-audit", "k8s"];

#[derive(Clone, Debug)]
enum Op {
    Append {
        source: usize,
        payloads: Vec<Vec<u8>>,
    },
    Commit,
    Publish,
    /// Clean close, then open.
    Reopen,
    /// Drop the writer without committing (what a crash leaves, minus torn writes), then open.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SOURCES.len(), prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 0..300))
            .prop_map(|(source, payloads)| Op::Append { source, payloads }),
        4 => Just(Op::Commit),
        1 => Just(Op::Publish),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

/// One record as the model knows it.
#[derive(Clone, Debug)]
struct Rec {
    source: usize,
    seq: u64,
    received_at_ms: u64,
    payload: Vec<u8>,
}

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The canonical envelope, encoded from the format description (crate README), not the crate.
fn envelope(index: u64, r: &Rec) -> Vec<u8> {
    let mut e = vec![1u8];
    uvarint(&mut e, index);
    uvarint(&mut e, r.received_at_ms);
    e.push(SOURCES[r.source].len() as u8);
    e.extend_from_slice(SOURCES[r.source].as_bytes());
    uvarint(&mut e, r.seq);
    uvarint(&mut e, r.payload.len() as u64);
    e.extend_from_slice(&Sha256::digest(&r.payload));
    e
}

/// Proof hashes as the byte arrays the independent implementation takes.
fn raw(proof: Vec<Hash>) -> Vec<[u8; 32]> {
    proof.into_iter().map(|h| h.0).collect()
}

fn open(dir: &std::path::Path) -> Ledger {
    let (key, _) = KeyFiles::in_dir(&dir.join("keys"))
        .load_or_create()
        .unwrap();
    let options = LedgerOptions {
        publish_interval: Duration::from_millis(0),
        journal_segment_entries: 256,
    };
    Ledger::open(&dir.join("ledger"), key, options).unwrap()
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Some(open(dir.path()));
    let mut model: Vec<Rec> = Vec::new();
    let mut committed = 0usize;
    let mut next_seq: HashMap<usize, u64> = HashMap::new();
    let mut signed_sizes: Vec<(u64, Hash)> = vec![(0, Hash(rfc9162::empty_root()))];
    let mut clock = 1_763_700_000_000u64;
    for op in ops {
        let l = ledger.as_mut().unwrap();
        match op {
            Op::Append { source, payloads } => {
                clock += 1;
                let mut b = Batch::new(SourceName::new(SOURCES[source]).unwrap(), clock);
                for p in &payloads {
                    b.push(p).unwrap();
                }
                let range = l.append(&b).unwrap();
                assert_eq!(range.start, model.len() as u64);
                for p in payloads {
                    let seq = next_seq.entry(source).or_insert(0);
                    model.push(Rec {
                        source,
                        seq: *seq,
                        received_at_ms: clock,
                        payload: p,
                    });
                    *seq += 1;
                }
                assert_eq!(range.end, model.len() as u64);
            }
            Op::Commit => {
                let c = l.commit().unwrap();
                committed = model.len();
                assert_eq!(c.size, committed as u64);
                signed_sizes.push((c.size, c.checkpoint.checkpoint.root));
            }
            Op::Publish => {
                l.publish().unwrap();
                committed = model.len();
                signed_sizes.push((l.size(), l.checkpoint().checkpoint.root));
            }
            Op::Reopen => {
                ledger.take().unwrap().close().unwrap();
                committed = model.len();
                ledger = Some(open(dir.path()));
            }
            Op::Crash => {
                drop(ledger.take());
                ledger = Some(open(dir.path()));
                // Committed entries survive. Uncommitted ones were never acknowledged: recovery may
                // keep an intact prefix of them (a journal segment roll writes frames early), and
                // the model keeps exactly what the ledger kept; the checks below then prove that
                // those entries are the ones that were appended.
                let kept = ledger.as_ref().unwrap().size() as usize;
                assert!(
                    kept >= committed && kept <= model.len(),
                    "kept {kept} of {} ({committed} committed)",
                    model.len()
                );
                for r in model.drain(kept..) {
                    *next_seq.get_mut(&r.source).unwrap() -= 1;
                }
                committed = kept;
            }
        }
        let l = ledger.as_ref().unwrap();
        assert_eq!(l.size(), model.len() as u64);
    }

    // Contents, roots and proofs against the independent implementation.
    let l = ledger.as_mut().unwrap();
    let c = l.commit().unwrap();
    let leaves: Vec<[u8; 32]> = model
        .iter()
        .enumerate()
        .map(|(i, r)| rfc9162::leaf_hash(&envelope(i as u64, r)))
        .collect();
    let root = rfc9162::mth(&leaves);
    assert_eq!(c.checkpoint.checkpoint.root.0, root);
    assert_eq!(l.root().0, root);
    let n = model.len() as u64;
    for i in (0..n).step_by(((n / 17) as usize).max(1)) {
        let e = l.entry(i).unwrap();
        assert_eq!(e.payload, model[i as usize].payload);
        assert_eq!(e.envelope, envelope(i, &model[i as usize]));
        let proof = raw(l.inclusion_proof(i, n).unwrap());
        assert!(
            rfc9162::verify_inclusion(i, n, &leaves[i as usize], &proof, &root),
            "inclusion {i}/{n}"
        );
    }
    // Signed sizes never exceed what survives: checkpoints cover committed entries only.
    assert!(signed_sizes.iter().all(|(s, _)| *s <= n));
    for (size, old_root) in &signed_sizes {
        assert_eq!(
            old_root.0,
            rfc9162::mth(&leaves[..*size as usize]),
            "root at {size}"
        );
        let proof = raw(l.consistency_proof(*size, n).unwrap());
        assert!(
            rfc9162::verify_consistency(*size, n, &old_root.0, &root, &proof),
            "consistency {size}->{n}"
        );
    }
    ledger.take().unwrap().close().unwrap();

    // The read-only tree reader (what `acta proof` uses) gives proofs that verify too.
    let reader = acta_ledger::read::TreeReader::open(&dir.path().join("ledger")).unwrap();
    assert_eq!(reader.size(), n);
    for i in (0..n).step_by(((n / 13) as usize).max(1)) {
        let proof = raw(acta_ledger::proof::inclusion_proof(&reader, i, n).unwrap());
        assert!(
            rfc9162::verify_inclusion(i, n, &leaves[i as usize], &proof, &root),
            "reader inclusion {i}/{n}"
        );
        assert_eq!(reader.envelope(i).unwrap(), envelope(i, &model[i as usize]));
    }

    // The closed directory verifies and reads back exactly the model.
    let key = KeyFiles::in_dir(&dir.path().join("keys"))
        .load_verifier()
        .unwrap();
    let report = verify(&VerifyOptions::new(dir.path().join("ledger"), key)).unwrap();
    assert_eq!(report.entries, n);
    let stored: Vec<Vec<u8>> = acta_ledger::read::Entries::open(&dir.path().join("ledger"))
        .unwrap()
        .map(|e| e.unwrap().payload)
        .collect();
    assert_eq!(stored.len(), model.len());
    assert!(stored.iter().zip(&model).all(|(s, m)| *s == m.payload));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn ledger_agrees_with_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

#[test]
fn a_crash_after_appends_without_commit_keeps_the_committed_entries() {
    run(vec![
        Op::Append {
            source: 0,
            payloads: vec![b"a".to_vec(); 700],
        },
        Op::Commit,
        Op::Append {
            source: 1,
            payloads: vec![b"b".to_vec(); 900],
        },
        Op::Crash,
        Op::Append {
            source: 1,
            payloads: vec![b"c".to_vec(); 10],
        },
        Op::Reopen,
    ]);
}
