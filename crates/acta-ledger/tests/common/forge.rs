//! An attacker's toolkit for tamper tests: full write access to a ledger directory, no signing
//! key. Rewrites the entries and recomputes everything derived from them (bundles, tiles at every
//! level, partial tiles, payload segments, journal), leaving the signed checkpoints as they were.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use acta_ledger::envelope::Envelope;
use acta_ledger::frame;
use acta_ledger::hash::leaf_hash;
use acta_ledger::journal::SegmentHeader;
use acta_ledger::layout::{Layout, PAYLOAD_SEGMENT_ENTRIES};
use acta_ledger::read::Entries;
use acta_ledger::tile::{self, TILE_WIDTH, TileId};
use acta_ledger::tree::TreeEdge;

/// `(envelope, payload)` of every entry, in order.
pub fn read_all(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    Entries::open(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.envelope, e.payload))
        .collect()
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Replaces the stored entries of the ledger at `dir` with `entries`, recomputing all hashes.
pub fn rewrite(dir: &Path, entries: &[(Vec<u8>, Vec<u8>)]) {
    let layout = Layout::new(dir);
    for d in [
        layout.log_dir().join("tile"),
        layout.payload_dir(),
        layout.journal_dir(),
    ] {
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
    }
    let n = entries.len() as u64;
    // Payload segments.
    for (s, chunk) in entries.chunks(PAYLOAD_SEGMENT_ENTRIES as usize).enumerate() {
        let s = s as u64;
        let mut bytes = frame::header(b"acta-pay", 1, &(s * PAYLOAD_SEGMENT_ENTRIES).to_be_bytes());
        for (_, p) in chunk {
            bytes.extend_from_slice(p);
        }
        write(&layout.payload_segment(s), &bytes);
    }
    // Tree: full tiles and bundles as they complete, partial ones at the end.
    let mut edge = TreeEdge::new();
    let mut bundle = Vec::new();
    for (env, _) in entries {
        tile::push_bundle_entry(&mut bundle, env);
        edge.push::<()>(leaf_hash(env), &mut |full| {
            let id = TileId::full(full.level, full.index);
            let mut b = Vec::new();
            tile::encode_hashes(full.hashes, &mut b);
            write(&layout.hash_tile(&id), &b);
            if full.level == 0 {
                write(&layout.bundle(&id), &bundle);
            }
            Ok(())
        })
        .unwrap();
        if edge.size().is_multiple_of(TILE_WIDTH) {
            bundle.clear();
        }
    }
    for t in tile::partial_tiles(n) {
        let mut b = Vec::new();
        tile::encode_hashes(edge.partial(t.level), &mut b);
        write(&layout.hash_tile(&t), &b);
        if t.level == 0 {
            write(&layout.bundle(&t), &bundle);
        }
    }
    // Journal: one segment holding the unfinished bundle.
    let base = n - n % TILE_WIDTH;
    let seg_start = base - base % PAYLOAD_SEGMENT_ENTRIES;
    let payload_offset: u64 = entries[seg_start as usize..base as usize]
        .iter()
        .map(|(_, p)| p.len() as u64)
        .sum();
    let mut sources = BTreeMap::new();
    for (env, _) in &entries[..base as usize] {
        if let Ok(e) = Envelope::decode(env) {
            let next = sources.entry(e.source.to_owned()).or_insert(0);
            *next = (*next).max(e.seq + 1);
        }
    }
    let mut bytes = SegmentHeader {
        base,
        payload_offset,
        sources,
    }
    .encode();
    for (env, _) in &entries[base as usize..] {
        frame::push_record(&mut bytes, env);
    }
    write(&layout.journal_segment(base), &bytes);
}
