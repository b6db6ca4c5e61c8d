//! Tampering is detected, and `verify` names the first bad entry.
//!
//! A template ledger is built once; every case copies it, damages the copy in one way at a random
//! position, and checks that verification fails naming the entry (or, for checkpoints, the file)
//! that the damage concerns. The seed is printed; set `ACTA_TAMPER_SEED` to replay a run and
//! `ACTA_TAMPER_CASES` to run more cases per kind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use acta_ledger::envelope::Envelope;
use acta_ledger::hash::sha256;
use acta_ledger::keys::KeyFiles;
use acta_ledger::layout::{Layout, PAYLOAD_SEGMENT_ENTRIES};
use acta_ledger::tile::{TILE_WIDTH, TileId};
use acta_ledger::{Batch, Ledger, LedgerOptions, SourceName, VerifyFailure, VerifyOptions, verify};
use common::forge;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A ledger built once per test binary, and what the test knows about it.
struct Template {
    dir: tempfile::TempDir,
    /// Sizes a checkpoint was signed for.
    checkpoints: Vec<u64>,
    /// `(envelope, payload)` of every entry.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Template {
    fn ledger(&self) -> PathBuf {
        self.dir.path().join("ledger")
    }
}

fn build(entries: u64, max_batch: u64, max_payload: u64, seed: u64) -> Template {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = KeyFiles::in_dir(&dir.path().join("keys"))
        .load_or_create()
        .unwrap();
    let options = LedgerOptions {
        publish_interval: std::time::Duration::ZERO,
        journal_segment_entries: 512,
    };
    let mut ledger = Ledger::open(&dir.path().join("ledger"), key, options).unwrap();
    let mut rng = Rng(seed);
    let mut checkpoints = vec![0];
    let sources = [
        SourceName::new("cloudtrail").unwrap(),
        SourceName::new("k8s").unwrap(),
    ];
    while ledger.size() < entries {
        let n = (1 + rng.below(max_batch)).min(entries - ledger.size());
        let mut batch = Batch::new(
            sources[rng.below(2) as usize].clone(),
            1_763_700_000_000 + ledger.size(),
        );
        for i in 0..n {
            let len = rng.below(max_payload + 1) as usize;
            let payload: Vec<u8> = (0..len)
                .map(|j| b"{}\"ab:1, xyz\n"[(i as usize + j) % 13])
                .collect();
            batch.push(&payload).unwrap();
        }
        ledger.append(&batch).unwrap();
        checkpoints.push(ledger.commit().unwrap().size);
        ledger.maybe_publish().unwrap();
    }
    ledger.close().unwrap();
    let entries = forge::read_all(&dir.path().join("ledger"));
    Template {
        dir,
        checkpoints,
        entries,
    }
}

fn small() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| build(3_333, 300, 120, 1))
}

/// Crosses a payload-segment boundary and has level-1 tiles (tiny payloads keep it quick).
fn large() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| build(PAYLOAD_SEGMENT_ENTRIES + 4_321, 9_000, 12, 2))
}

fn seed() -> u64 {
    let seed = std::env::var("ACTA_TAMPER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("tamper seed {seed} (ACTA_TAMPER_SEED={seed} replays it)");
    seed
}

fn cases(default: u64) -> u64 {
    std::env::var("ACTA_TAMPER_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A fresh copy of the template's data directory.
fn copy(t: &Template) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    copy_dir(t.dir.path(), d.path());
    let ledger = d.path().join("ledger");
    (d, ledger)
}

fn check(dir: &Path) -> Result<acta_ledger::VerifyReport, VerifyFailure> {
    let key = KeyFiles::in_dir(&dir.parent().unwrap().join("keys"))
        .load_verifier()
        .unwrap();
    verify(&VerifyOptions::new(dir, key))
}

fn expect_failure(dir: &Path, what: &str) -> VerifyFailure {
    match check(dir) {
        Ok(r) => panic!(
            "{what}: verification passed ({} entries, latest {:?}, {} checkpoints)",
            r.entries,
            r.latest.map(|c| c.checkpoint.size),
            r.checkpoints
        ),
        Err(f) => f,
    }
}

/// Every file under `dir` whose path (relative to it) satisfies `keep`.
fn files(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    fn walk(root: &Path, d: &Path, keep: &dyn Fn(&str) -> bool, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, keep, out);
            } else if keep(p.strip_prefix(root).unwrap().to_str().unwrap()) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, keep, &mut out);
    out.sort();
    out
}

fn pick<'a>(rng: &mut Rng, v: &'a [PathBuf]) -> &'a PathBuf {
    &v[rng.below(v.len() as u64) as usize]
}

/// Parses a C2SP tile path `tile/<L>/<N>[.p/<W>]` (or `tile/entries/...`) into (level, index).
fn tile_of(rel: &str) -> (Option<u8>, u64) {
    let rest = rel.strip_prefix("tile/").unwrap();
    let (level, rest) = rest.split_once('/').unwrap();
    let index_part = rest.split(".p/").next().unwrap();
    let index: u64 = index_part
        .split('/')
        .map(|g| g.trim_start_matches('x'))
        .collect::<String>()
        .parse()
        .unwrap();
    (level.parse().ok(), index)
}

/// Entry number (within a bundle) that byte `offset` of the bundle belongs to.
fn entry_at_bundle_offset(bundle: &[u8], offset: usize) -> u64 {
    let (mut pos, mut k) = (0usize, 0u64);
    while pos < bundle.len() {
        let len = u16::from_be_bytes([bundle[pos], bundle[pos + 1]]) as usize;
        if offset < pos + 2 + len {
            return k;
        }
        pos += 2 + len;
        k += 1;
    }
    k
}

/// The entry whose payload byte `offset` of payload segment `s` belongs to (or, when the cut is
/// there, the first entry whose payload is not whole before `offset`).
fn entry_at_payload_offset(t: &Template, s: u64, offset: u64) -> u64 {
    let header = acta_ledger::frame::header(b"acta-pay", 1, &[0; 8]).len() as u64;
    let first = s * PAYLOAD_SEGMENT_ENTRIES;
    if offset < header {
        return first;
    }
    let mut pos = header;
    for i in first..(first + PAYLOAD_SEGMENT_ENTRIES).min(t.entries.len() as u64) {
        let len = t.entries[i as usize].1.len() as u64;
        if pos + len > offset {
            return i;
        }
        pos += len;
    }
    panic!("offset {offset} beyond segment {s}");
}

fn flip(path: &Path, rng: &mut Rng) -> usize {
    let mut bytes = fs::read(path).unwrap();
    let at = rng.below(bytes.len() as u64) as usize;
    bytes[at] ^= 1 << rng.below(8);
    fs::write(path, bytes).unwrap();
    at
}

fn truncate(path: &Path, rng: &mut Rng) -> usize {
    let len = fs::metadata(path).unwrap().len();
    let at = rng.below(len) as usize;
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(at as u64)
        .unwrap();
    at
}

fn rel(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap().to_str().unwrap().to_owned()
}

fn is_bundle(r: &str) -> bool {
    r.starts_with("log/tile/entries/")
}

fn is_hash_tile(r: &str) -> bool {
    r.starts_with("log/tile/") && !is_bundle(r)
}

#[test]
fn templates_verify() {
    for t in [small(), large()] {
        let r = check(&t.ledger()).unwrap();
        assert_eq!(r.entries, t.entries.len() as u64);
    }
}

#[test]
fn flipped_bundle_byte_names_its_entry() {
    let mut rng = Rng(seed());
    for case in 0..cases(40) {
        let t = if case % 8 == 7 { large() } else { small() };
        let (_d, dir) = copy(t);
        let bundles = files(&dir, &|r| is_bundle(r));
        let path = pick(&mut rng, &bundles);
        let before = fs::read(path).unwrap();
        let at = flip(path, &mut rng);
        let (_, n) = tile_of(&rel(&dir, path)["log/".len()..]);
        let want = n * TILE_WIDTH + entry_at_bundle_offset(&before, at);
        let f = expect_failure(&dir, &format!("flip byte {at} of {}", path.display()));
        assert_eq!(
            f.index,
            Some(want),
            "flip byte {at} of {}: {f}",
            rel(&dir, path)
        );
    }
}

#[test]
fn flipped_payload_byte_names_its_entry() {
    let mut rng = Rng(seed());
    for case in 0..cases(40) {
        let t = if case % 8 == 7 { large() } else { small() };
        let (_d, dir) = copy(t);
        let segments = files(&dir, &|r| r.starts_with("payload/"));
        let path = pick(&mut rng, &segments);
        let s: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let at = flip(path, &mut rng);
        let want = entry_at_payload_offset(t, s, at as u64);
        let f = expect_failure(&dir, &format!("flip byte {at} of {}", path.display()));
        assert_eq!(
            f.index,
            Some(want),
            "flip byte {at} of {}: {f}",
            rel(&dir, path)
        );
    }
}

#[test]
fn flipped_tile_byte_names_the_entries_it_covers() {
    let mut rng = Rng(seed());
    for case in 0..cases(40) {
        let t = if case % 4 == 3 { large() } else { small() };
        let (_d, dir) = copy(t);
        let tiles = files(&dir, &|r| is_hash_tile(r));
        let path = pick(&mut rng, &tiles);
        let at = flip(path, &mut rng);
        let (level, n) = tile_of(&rel(&dir, path)["log/".len()..]);
        let span = TILE_WIDTH.pow(u32::from(level.unwrap()));
        let want = (n * TILE_WIDTH + at as u64 / 32) * span;
        let f = expect_failure(&dir, &format!("flip byte {at} of {}", path.display()));
        assert_eq!(
            f.index,
            Some(want),
            "flip byte {at} of {}: {f}",
            rel(&dir, path)
        );
    }
}

#[test]
fn flipped_checkpoint_byte_is_detected() {
    let mut rng = Rng(seed());
    for _ in 0..cases(40) {
        let (_d, dir) = copy(small());
        let cps = [dir.join("checkpoints"), dir.join("log/checkpoint")];
        let path = pick(&mut rng, &cps);
        let at = flip(path, &mut rng);
        let f = expect_failure(&dir, &format!("flip byte {at} of {}", path.display()));
        assert_eq!(
            f.path,
            PathBuf::from(rel(&dir, path)),
            "flip byte {at}: {f}"
        );
    }
}

#[test]
fn truncated_file_names_the_first_missing_entry() {
    let mut rng = Rng(seed());
    for case in 0..cases(60) {
        let t = if case % 8 == 7 { large() } else { small() };
        let (_d, dir) = copy(t);
        // Spare journal segments are retired copies, not evidence.
        let all = files(&dir, &|r| r != "LOCK" && !r.starts_with("journal/spare/"));
        let path = pick(&mut rng, &all);
        let r = rel(&dir, path);
        let before = fs::read(path).unwrap();
        let at = truncate(path, &mut rng);
        let f = expect_failure(&dir, &format!("truncate {r} to {at} bytes"));
        let want = if is_bundle(&r) {
            let (_, n) = tile_of(&r["log/".len()..]);
            Some(n * TILE_WIDTH + entry_at_bundle_offset(&before, at))
        } else if is_hash_tile(&r) {
            let (level, n) = tile_of(&r["log/".len()..]);
            Some((n * TILE_WIDTH + at as u64 / 32) * TILE_WIDTH.pow(u32::from(level.unwrap())))
        } else if r.starts_with("payload/") {
            let s: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            Some(entry_at_payload_offset(t, s, at as u64))
        } else if r.starts_with("journal/") {
            let base: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let header = acta_ledger::journal::SegmentHeader::decode(&before)
                .map(|(_, h)| h)
                .unwrap();
            // Entries whose journal record is whole before the cut survive.
            let mut records = acta_ledger::frame::Records::new(
                &before[..at.max(header).min(before.len())],
                header,
            );
            Some(if at < header {
                base
            } else {
                base + records.by_ref().count() as u64
            })
        } else {
            // FORMAT, the checkpoint history and the published checkpoint name no entry.
            assert!(f.index.is_none() || r == "checkpoints", "truncate {r}: {f}");
            None
        };
        if let Some(want) = want {
            assert_eq!(f.index, Some(want), "truncate {r} to {at} bytes: {f}");
        }
    }
}

/// Entries rearranged with every hash recomputed: what an attacker without the key can do.
#[test]
fn deleted_entry_is_named() {
    let mut rng = Rng(seed());
    for case in 0..cases(12) {
        let t = if case % 6 == 5 { large() } else { small() };
        let (_d, dir) = copy(t);
        let mut entries = t.entries.clone();
        let k = rng.below(entries.len() as u64);
        entries.remove(k as usize);
        forge::rewrite(&dir, &entries);
        let f = expect_failure(&dir, &format!("delete entry {k}"));
        assert_eq!(f.index, Some(k), "delete entry {k}: {f}");
    }
}

#[test]
fn swapped_entries_are_named() {
    let mut rng = Rng(seed());
    for case in 0..cases(12) {
        let t = if case % 6 == 5 { large() } else { small() };
        let (_d, dir) = copy(t);
        let mut entries = t.entries.clone();
        let n = entries.len() as u64;
        let i = rng.below(n - 1);
        let j = i + 1 + rng.below(n - i - 1);
        entries.swap(i as usize, j as usize);
        forge::rewrite(&dir, &entries);
        let f = expect_failure(&dir, &format!("swap entries {i} and {j}"));
        assert_eq!(f.index, Some(i), "swap {i} and {j}: {f}");
    }
}

/// Rewriting an entry and recomputing every hash leaves only the signatures to catch it, so the
/// entry is named to the precision of the checkpoints: the range between the last checkpoint that
/// still matches and the first that does not. The ledger signs one checkpoint per commit.
#[test]
fn rewritten_entry_with_recomputed_hashes_is_caught_by_the_signatures() {
    let mut rng = Rng(seed());
    for case in 0..cases(12) {
        let t = if case % 6 == 5 { large() } else { small() };
        let (_d, dir) = copy(t);
        let mut entries = t.entries.clone();
        let k = rng.below(entries.len() as u64);
        let (env_bytes, payload) = &entries[k as usize];
        let env = Envelope::decode(env_bytes).unwrap();
        let mut new_payload = payload.clone();
        let mut new = env;
        if rng.below(2) == 0 || new_payload.is_empty() {
            new_payload.extend_from_slice(b" forged");
        } else {
            let at = rng.below(new_payload.len() as u64) as usize;
            new_payload[at] ^= 0x20;
        }
        new.payload_len = new_payload.len() as u64;
        new.payload_sha256 = sha256(&new_payload);
        if rng.below(3) == 0 {
            new.received_at_ms += 1; // a different envelope field, too
        }
        let mut new_env = Vec::new();
        new.encode(&mut new_env);
        entries[k as usize] = (new_env, new_payload);
        forge::rewrite(&dir, &entries);
        let f = expect_failure(&dir, &format!("rewrite entry {k}"));
        let good = *t.checkpoints.iter().filter(|c| **c <= k).max().unwrap();
        let bad = *t.checkpoints.iter().filter(|c| **c > k).min().unwrap();
        assert_eq!(
            (f.index, f.last),
            (Some(good), Some(bad - 1)),
            "rewrite entry {k}: {f}"
        );
        assert_eq!(f.path, PathBuf::from("checkpoints"), "{f}");
    }
}

#[test]
fn untouched_copy_with_forged_identical_rewrite_still_verifies() {
    // The forger itself must reproduce the ledger exactly when nothing changes; otherwise the
    // tests above would prove nothing.
    for t in [small(), large()] {
        let (_d, dir) = copy(t);
        forge::rewrite(&dir, &t.entries);
        let layout = Layout::new(&dir);
        let _ = TileId::full(0, 0);
        let r = check(layout.root()).unwrap();
        assert_eq!(r.entries, t.entries.len() as u64);
    }
}

/// Entries added after the last checkpoint, with every hash recomputed, are covered by no
/// signature: verification must not count them as audited.
#[test]
fn entries_appended_after_the_last_checkpoint_are_not_vouched_for() {
    let mut rng = Rng(seed());
    for _ in 0..cases(6) {
        let t = small();
        let (_d, dir) = copy(t);
        let mut entries = t.entries.clone();
        let n = entries.len() as u64;
        let extra = 1 + rng.below(20);
        let mut next_seq = std::collections::HashMap::new();
        for (env, _) in &entries {
            let e = Envelope::decode(env).unwrap();
            next_seq.insert(e.source.to_owned(), e.seq + 1);
        }
        for i in 0..extra {
            let payload = format!("{{\"forged\":{i}}}").into_bytes();
            let seq = next_seq.get("k8s").copied().unwrap_or(0) + i;
            let env = Envelope {
                index: n + i,
                received_at_ms: 1_763_800_000_000,
                source: "k8s",
                seq,
                payload_len: payload.len() as u64,
                payload_sha256: sha256(&payload),
            };
            let mut bytes = Vec::new();
            env.encode(&mut bytes);
            entries.push((bytes, payload));
        }
        forge::rewrite(&dir, &entries);
        let f = expect_failure(&dir, &format!("append {extra} forged entries"));
        assert_eq!((f.index, f.last), (Some(n), Some(n + extra - 1)), "{f}");
    }
}

/// Recovery starts from a journal segment's header, so a forged header (payload offset or source
/// counts, CRC recomputed) must fail verification too.
#[test]
fn forged_journal_header_fields_are_detected() {
    use acta_ledger::journal::SegmentHeader;
    for field in ["payload offset", "source count", "new source"] {
        let (_d, dir) = copy(small());
        let segments = files(&dir, &|r| {
            r.starts_with("journal/") && !r.starts_with("journal/spare/")
        });
        let path = segments.last().unwrap();
        let bytes = fs::read(path).unwrap();
        let (mut header, start) = SegmentHeader::decode(&bytes).unwrap();
        match field {
            "payload offset" => header.payload_offset += 1,
            "source count" => *header.sources.values_mut().next().unwrap() += 5,
            _ => {
                header.sources.insert("ghost".into(), 3);
            }
        }
        let mut forged = header.encode();
        forged.extend_from_slice(&bytes[start..]);
        fs::write(path, forged).unwrap();
        let f = expect_failure(&dir, &format!("forge the {field} of {}", path.display()));
        assert_eq!(f.path, PathBuf::from(rel(&dir, path)), "{field}: {f}");
        assert_eq!(f.index, Some(header.base), "{field}: {f}");
    }
}
