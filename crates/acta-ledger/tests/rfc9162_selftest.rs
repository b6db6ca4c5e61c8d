//! Self-tests of the RFC 6962 / RFC 9162 reference oracle in `common::rfc9162`.
//!
//! The oracle is checked three ways, none of which involves acta-ledger's own code:
//! * against `ct-merkle`, an independent implementation that works on array-indexed trees
//!   rather than on the recursive definitions (tree hashes, proof bytes and both verifiers);
//! * against published known answers (the empty-tree hash and the transparency-dev reference
//!   tree of 8 leaves);
//! * by negative tests: corrupted, truncated, extended or misattributed proofs are rejected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::rfc9162::{self, Hash};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, HashableLeaf, InclusionProof, RootHash};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use sha2_next::Sha256 as CtSha256;

// ---------------------------------------------------------------------------------------------
// ct-merkle glue
// ---------------------------------------------------------------------------------------------

/// A ct-merkle leaf whose hashable representation is exactly its raw bytes, so that ct-merkle's
/// leaf hash is `SHA-256(0x00 || bytes)`, the same as `rfc9162::leaf_hash(bytes)`.
/// (`leaf_hashes_match_ct_merkle` checks that this is so.)
#[derive(Clone, Debug)]
struct RawLeaf(Vec<u8>);

impl HashableLeaf for RawLeaf {
    fn hash<H: ct_merkle::digest::Update>(&self, hasher: &mut H) {
        hasher.update(&self.0);
    }
}

type CtTree = MemoryBackedTree<CtSha256, RawLeaf>;

fn ct_root_bytes(tree: &CtTree) -> Hash {
    tree.root().as_bytes().as_slice().try_into().unwrap()
}

fn ct_root(hash: &Hash, size: u64) -> RootHash<CtSha256> {
    RootHash::new((*hash).into(), size)
}

/// ct-merkle's verdict on an inclusion proof.
fn ct_verify_inclusion(root: &Hash, size: u64, leaf: &RawLeaf, index: u64, proof: &[Hash]) -> bool {
    let proof = InclusionProof::<CtSha256>::try_from_bytes(flatten(proof)).unwrap();
    ct_root(root, size)
        .verify_inclusion(leaf, index, &proof)
        .is_ok()
}

/// ct-merkle's verdict on a consistency proof. (ct-merkle rejects `old_size == 0`.)
fn ct_verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    let proof = ConsistencyProof::<CtSha256>::try_from_bytes(flatten(proof)).unwrap();
    ct_root(new_root, new_size)
        .verify_consistency(&ct_root(old_root, old_size), &proof)
        .is_ok()
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// SplitMix64: a tiny deterministic generator, so every run checks the same trees.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn hash(&mut self) -> Hash {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

/// `n` leaves of arbitrary bytes (lengths 0..=47, so empty leaves occur too), and their hashes.
struct Leaves {
    data: Vec<RawLeaf>,
    hashes: Vec<Hash>,
}

fn leaves(seed: u64, n: usize) -> Leaves {
    let mut rng = Rng(seed);
    let data: Vec<RawLeaf> = (0..n)
        .map(|_| {
            let len = rng.below(48);
            RawLeaf((0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect())
        })
        .collect();
    let hashes = data.iter().map(|l| rfc9162::leaf_hash(&l.0)).collect();
    Leaves { data, hashes }
}

fn flatten(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flatten().copied().collect()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_hash(s: &str) -> Hash {
    hex(s).try_into().unwrap()
}

fn flip_bit(h: &Hash, bit: usize) -> Hash {
    let mut out = *h;
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

/// The side of each audit-path hash, derived independently of the RFC 9162 bit algorithm, from
/// the recursive definition of PATH (RFC 6962 §2.1.1): `true` when the path hash is the *right*
/// operand (the running node is a left child), from the leaf up. Uses a different formula for k
/// than the oracle does, on purpose.
fn path_sides(m: u64, n: u64) -> Vec<bool> {
    if n <= 1 {
        return Vec::new();
    }
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    if m < k {
        let mut sides = path_sides(m, k);
        sides.push(true);
        sides
    } else {
        let mut sides = path_sides(m - k, n - k);
        sides.push(false);
        sides
    }
}

/// A sample of indices in `0..n`: the edges, next to powers of two, and some random ones.
fn sample_below(n: u64, rng: &mut Rng, random: usize) -> Vec<u64> {
    let mut out = vec![0, 1, n / 2, n.saturating_sub(2), n.saturating_sub(1)];
    let mut p = 1u64;
    while p <= n {
        out.extend([p - 1, p]);
        p *= 2;
    }
    out.extend((0..random).map(|_| rng.below(n.max(1))));
    out.retain(|&i| i < n);
    out.sort_unstable();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------------
// Cross-check against ct-merkle
// ---------------------------------------------------------------------------------------------

/// Checks the oracle against `tree` (which holds `lv.data[..n]`) for the given indices and old
/// sizes: same root, same proof bytes, and each verifier accepts both implementations' proofs.
fn cross_check(tree: &CtTree, lv: &Leaves, n: usize, indices: &[u64], old_sizes: &[u64]) {
    assert_eq!(tree.len(), n as u64);
    let hashes = &lv.hashes[..n];
    let size = n as u64;
    let root = rfc9162::mth(hashes);
    assert_eq!(root, ct_root_bytes(tree), "MTH differs at size {n}");

    for &idx in indices {
        let i = usize::try_from(idx).unwrap();
        let mine = rfc9162::inclusion_path(idx, hashes);
        let theirs = tree.prove_inclusion(i);
        assert_eq!(
            flatten(&mine),
            theirs.as_bytes(),
            "PATH({idx}, D[{n}]) differs"
        );
        assert!(
            rfc9162::verify_inclusion(idx, size, &hashes[i], &mine, &root),
            "oracle rejects its own PATH({idx}, D[{n}])"
        );
        assert!(
            ct_root(&root, size)
                .verify_inclusion(&lv.data[i], idx, &theirs)
                .is_ok(),
            "ct-merkle rejects its own PATH({idx}, D[{n}])"
        );
        assert!(
            ct_verify_inclusion(&root, size, &lv.data[i], idx, &mine),
            "ct-merkle rejects the oracle's PATH({idx}, D[{n}])"
        );
    }

    for &old in old_sizes {
        let m = usize::try_from(old).unwrap();
        let old_root = rfc9162::mth(&hashes[..m]);
        let mine = rfc9162::consistency_proof(old, hashes);
        assert!(
            rfc9162::verify_consistency(old, size, &old_root, &root, &mine),
            "oracle rejects its own PROOF({old}, D[{n}])"
        );
        if old == 0 {
            // ct-merkle has no proofs from the empty tree; the oracle's is empty.
            assert!(mine.is_empty());
            continue;
        }
        let theirs = tree.prove_consistency(n - m);
        assert_eq!(
            flatten(&mine),
            theirs.as_bytes(),
            "PROOF({old}, D[{n}]) differs"
        );
        assert!(
            ct_root(&root, size)
                .verify_consistency(&ct_root(&old_root, old), &theirs)
                .is_ok(),
            "ct-merkle rejects its own PROOF({old}, D[{n}])"
        );
        assert!(
            ct_verify_consistency(old, size, &old_root, &root, &mine),
            "ct-merkle rejects the oracle's PROOF({old}, D[{n}])"
        );
    }
}

#[test]
fn leaf_hashes_match_ct_merkle() {
    let lv = leaves(1, 200);
    let mut datas: Vec<Vec<u8>> = lv.data.iter().map(|l| l.0.clone()).collect();
    datas.extend([Vec::new(), vec![0], vec![1], vec![0xff; 1000]]);
    for d in &datas {
        // A one-leaf tree's root is the leaf hash.
        let mut tree = CtTree::new();
        tree.push(RawLeaf(d.clone()));
        assert_eq!(ct_root_bytes(&tree), rfc9162::leaf_hash(d));
        // A two-leaf tree's root is the node hash of the two leaf hashes.
        tree.push(RawLeaf(d.iter().rev().copied().chain([7]).collect()));
        let second: Vec<u8> = d.iter().rev().copied().chain([7]).collect();
        assert_eq!(
            ct_root_bytes(&tree),
            rfc9162::node_hash(&rfc9162::leaf_hash(d), &rfc9162::leaf_hash(&second))
        );
    }
    // Both agree on the empty tree.
    assert_eq!(ct_root_bytes(&CtTree::new()), rfc9162::mth(&[]));
}

#[test]
fn matches_ct_merkle_exhaustively_up_to_130_leaves() {
    let lv = leaves(0x5eed, 130);
    let mut tree = CtTree::new();
    assert_eq!(ct_root_bytes(&tree), rfc9162::mth(&[]));
    for n in 1..=130usize {
        tree.push(lv.data[n - 1].clone());
        let size = n as u64;
        let indices: Vec<u64> = (0..size).collect();
        let old_sizes: Vec<u64> = (0..=size).collect();
        cross_check(&tree, &lv, n, &indices, &old_sizes);
    }
}

#[test]
fn matches_ct_merkle_at_larger_sizes() {
    const MAX: usize = 5000;
    let lv = leaves(0xb16, MAX);
    let mut rng = Rng(42);
    let mut sizes: Vec<usize> = vec![255, 256, 257, 1023, 1024, 1025, 4095, 4096, 4097, MAX];
    sizes.extend((0..4).map(|_| 131 + usize::try_from(rng.below((MAX - 131) as u64)).unwrap()));
    sizes.sort_unstable();
    sizes.dedup();

    let mut tree = CtTree::new();
    for n in 1..=MAX {
        tree.push(lv.data[n - 1].clone());
        if !sizes.contains(&n) {
            continue;
        }
        let size = n as u64;
        let indices = sample_below(size, &mut rng, 6);
        let mut old_sizes = sample_below(size + 1, &mut rng, 6);
        old_sizes.push(size);
        old_sizes.dedup();
        cross_check(&tree, &lv, n, &indices, &old_sizes);
    }
}

// ---------------------------------------------------------------------------------------------
// Known answers
// ---------------------------------------------------------------------------------------------

/// The reference tree of transparency-dev/merkle (testonly/reference_test.go), also used by
/// certificate-transparency and by ct-merkle's tests/known_answer.rs.
const REF_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// MTH of the first 1..=8 reference leaves.
const REF_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (tree size, leaf index, audit path) over the reference leaves, from the same source.
const REF_INCLUSION: &[(u64, u64, &[&str])] = &[
    (1, 0, &[]),
    (
        2,
        0,
        &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ),
    (
        2,
        1,
        &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ),
    (
        3,
        2,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        5,
        1,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        8,
        0,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        8,
        5,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// (old size, new size, consistency proof) over the reference leaves, from the same source.
const REF_CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn ref_leaf_hashes() -> Vec<Hash> {
    REF_LEAVES
        .iter()
        .map(|l| rfc9162::leaf_hash(&hex(l)))
        .collect()
}

#[test]
fn known_answer_empty_tree() {
    let empty = hex_hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(rfc9162::mth(&[]), empty);
    assert_eq!(rfc9162::empty_root(), empty);
    // The hash of the empty leaf is SHA-256(0x00), the reference tree's size-1 root.
    assert_eq!(rfc9162::leaf_hash(b""), hex_hash(REF_ROOTS[0]));
}

#[test]
fn known_answer_reference_tree_roots() {
    let hashes = ref_leaf_hashes();
    let mut tree = CtTree::new();
    for (i, expected) in REF_ROOTS.iter().enumerate() {
        let n = i + 1;
        assert_eq!(
            rfc9162::mth(&hashes[..n]),
            hex_hash(expected),
            "root of size {n}"
        );
        tree.push(RawLeaf(hex(REF_LEAVES[i])));
        assert_eq!(
            ct_root_bytes(&tree),
            hex_hash(expected),
            "ct-merkle size {n}"
        );
    }
}

#[test]
fn known_answer_reference_tree_proofs() {
    let hashes = ref_leaf_hashes();
    for &(size, index, path) in REF_INCLUSION {
        let n = usize::try_from(size).unwrap();
        let expected: Vec<Hash> = path.iter().map(|h| hex_hash(h)).collect();
        let leaves = &hashes[..n];
        assert_eq!(
            rfc9162::inclusion_path(index, leaves),
            expected,
            "PATH({index}, D[{size}])"
        );
        let root = rfc9162::mth(leaves);
        let leaf = &leaves[usize::try_from(index).unwrap()];
        assert!(rfc9162::verify_inclusion(
            index, size, leaf, &expected, &root
        ));
    }
    for &(old, new, proof) in REF_CONSISTENCY {
        let n = usize::try_from(new).unwrap();
        let m = usize::try_from(old).unwrap();
        let expected: Vec<Hash> = proof.iter().map(|h| hex_hash(h)).collect();
        assert_eq!(
            rfc9162::consistency_proof(old, &hashes[..n]),
            expected,
            "PROOF({old}, D[{new}])"
        );
        let old_root = rfc9162::mth(&hashes[..m]);
        let new_root = rfc9162::mth(&hashes[..n]);
        assert!(rfc9162::verify_consistency(
            old, new, &old_root, &new_root, &expected
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Negative tests
// ---------------------------------------------------------------------------------------------

/// Proofs with one hash removed, added or duplicated: none of these is the honest proof.
fn truncations_and_extensions(proof: &[Hash], rng: &mut Rng, extra: &[Hash]) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    if let Some((_, rest)) = proof.split_first() {
        out.push(rest.to_vec());
    }
    if let Some((_, rest)) = proof.split_last() {
        out.push(rest.to_vec());
    }
    let mut candidates = vec![rng.hash()];
    candidates.extend_from_slice(extra);
    candidates.extend(proof.first().copied());
    candidates.extend(proof.last().copied());
    for c in candidates {
        let mut appended = proof.to_vec();
        appended.push(c);
        out.push(appended);
        let mut prepended = vec![c];
        prepended.extend_from_slice(proof);
        out.push(prepended);
    }
    out
}

/// Which bits of a hash the negative tests flip: all 256 of them, or (to keep the debug-build
/// run time reasonable on the larger cases) the ends of the hash, of its bytes and of its halves.
fn bits_to_flip(all: bool) -> Vec<usize> {
    if all {
        (0..256).collect()
    } else {
        vec![0, 1, 7, 8, 100, 127, 128, 129, 200, 247, 248, 255]
    }
}

/// Every single-bit flip (at the given bit positions) of every hash of `proof`.
fn bit_flips<'a>(proof: &'a [Hash], bits: &'a [usize]) -> impl Iterator<Item = Vec<Hash>> + 'a {
    (0..proof.len()).flat_map(move |i| {
        bits.iter().map(move |&bit| {
            let mut p = proof.to_vec();
            p[i] = flip_bit(&p[i], bit);
            p
        })
    })
}

fn negative_inclusion(lv: &Leaves, n: usize, idx: u64, all_bits: bool, rng: &mut Rng) -> usize {
    let bits = bits_to_flip(all_bits);
    let size = n as u64;
    let hashes = &lv.hashes[..n];
    let i = usize::try_from(idx).unwrap();
    let leaf = hashes[i];
    let root = rfc9162::mth(hashes);
    let proof = rfc9162::inclusion_path(idx, hashes);
    assert!(rfc9162::verify_inclusion(idx, size, &leaf, &proof, &root));

    // Corrupted proof hashes.
    for bad in bit_flips(&proof, &bits) {
        assert!(!rfc9162::verify_inclusion(idx, size, &leaf, &bad, &root));
    }
    // Corrupted leaf or root.
    for &bit in &bits {
        let bad_leaf = flip_bit(&leaf, bit);
        assert!(!rfc9162::verify_inclusion(
            idx, size, &bad_leaf, &proof, &root
        ));
        let bad_root = flip_bit(&root, bit);
        assert!(!rfc9162::verify_inclusion(
            idx, size, &leaf, &proof, &bad_root
        ));
    }
    // Truncated or extended proofs.
    for bad in truncations_and_extensions(&proof, rng, &[root, leaf]) {
        assert!(
            !rfc9162::verify_inclusion(idx, size, &leaf, &bad, &root),
            "modified proof accepted: index {idx}, size {n}, length {}",
            bad.len()
        );
        assert!(!ct_verify_inclusion(&root, size, &lv.data[i], idx, &bad));
    }
    // Misattributed proofs: the same leaf, proof and root claimed for another (index, size).
    // The RFC 9162 computation depends only on the sequence of sides along the audit path, so
    // it must accept exactly the claims whose path shape equals the true one (`path_sides`,
    // derived from the recursive definition instead). Within one tree size every index has its
    // own shape, so another index is always rejected; but an audit path does not bind the tree
    // size (index 0 has the same shape in sizes 5 and 6) and such claims verify. ct-merkle, a
    // different algorithm, must give the same verdicts.
    let true_shape = path_sides(idx, size);
    let mut accepted = 0;
    for s in 0..size + 10 {
        let mut claims: Vec<u64> = if all_bits {
            (0..s + 2).collect()
        } else {
            let near_idx = idx.saturating_sub(2)..idx + 3;
            let near_end = s.saturating_sub(3)..s + 2;
            (0..3).chain(near_idx).chain(near_end).collect()
        };
        claims.sort_unstable();
        claims.dedup();
        for j in claims {
            if (j, s) == (idx, size) {
                continue;
            }
            let ours = rfc9162::verify_inclusion(j, s, &leaf, &proof, &root);
            let expected = j < s && path_sides(j, s) == true_shape;
            assert_eq!(
                ours, expected,
                "proof for (index {idx}, size {n}) claimed as (index {j}, size {s})"
            );
            assert_eq!(
                ct_verify_inclusion(&root, s, &lv.data[i], j, &proof),
                expected,
                "ct-merkle: proof for (index {idx}, size {n}) claimed as (index {j}, size {s})"
            );
            if s == size {
                assert!(!ours, "another index of the same tree accepted");
            }
            if expected {
                let s_leaves = &lv.hashes[..usize::try_from(s).unwrap()];
                assert_eq!(rfc9162::inclusion_path(j, s_leaves).len(), proof.len());
                accepted += 1;
            }
        }
    }
    accepted
}

#[test]
fn inclusion_rejects_corrupted_and_misattributed_proofs() {
    let lv = leaves(77, 160);
    let mut rng = Rng(9);
    let mut accepted_at_other_sizes = 0;
    // Every index of every size up to 33; every bit of every proof hash up to size 16.
    for n in 1..=33usize {
        for idx in 0..n as u64 {
            accepted_at_other_sizes += negative_inclusion(&lv, n, idx, n <= 16, &mut rng);
        }
    }
    for n in [63usize, 64, 65, 100, 127, 128, 129, 150] {
        for idx in sample_below(n as u64, &mut rng, 4) {
            accepted_at_other_sizes += negative_inclusion(&lv, n, idx, false, &mut rng);
        }
    }
    // Claims of another size with the same path shape do occur; make sure they were exercised.
    assert!(accepted_at_other_sizes > 0);
    // The RFC's own example of a shared shape: index 0 in sizes 5 and 6.
    assert_eq!(path_sides(0, 5), path_sides(0, 6));
}

/// Expected proof lengths, `len[m][n] = |PROOF(m, D[n])|` for `m <= n <= max`.
fn consistency_lengths(hashes: &[Hash], max: usize) -> Vec<Vec<usize>> {
    (0..=max)
        .map(|m| {
            (0..=max)
                .map(|n| {
                    if m <= n {
                        rfc9162::consistency_proof(m as u64, &hashes[..n]).len()
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect()
}

fn negative_consistency(
    lv: &Leaves,
    lens: &[Vec<usize>],
    n: usize,
    m: usize,
    all_bits: bool,
    rng: &mut Rng,
) -> usize {
    let bits = bits_to_flip(all_bits);
    let (old, size) = (m as u64, n as u64);
    let old_root = rfc9162::mth(&lv.hashes[..m]);
    let new_root = rfc9162::mth(&lv.hashes[..n]);
    let proof = rfc9162::consistency_proof(old, &lv.hashes[..n]);
    assert!(rfc9162::verify_consistency(
        old, size, &old_root, &new_root, &proof
    ));

    // Corrupted proof hashes.
    for bad in bit_flips(&proof, &bits) {
        assert!(!rfc9162::verify_consistency(
            old, size, &old_root, &new_root, &bad
        ));
    }
    // Corrupted roots.
    for &bit in &bits {
        let bad_old = flip_bit(&old_root, bit);
        assert!(!rfc9162::verify_consistency(
            old, size, &bad_old, &new_root, &proof
        ));
        let bad_new = flip_bit(&new_root, bit);
        if m == n {
            // Equal sizes: both roots are the same, flipping one is a mismatch.
            assert!(!rfc9162::verify_consistency(
                old, size, &old_root, &bad_new, &proof
            ));
        } else if m > 0 {
            assert!(!rfc9162::verify_consistency(
                old, size, &old_root, &bad_new, &proof
            ));
        }
        // (m == 0 < n: nothing binds the new root, any new root is consistent with the empty
        // tree, so that case is not a rejection.)
    }
    // Truncated or extended proofs.
    for bad in truncations_and_extensions(&proof, rng, &[old_root, new_root]) {
        assert!(
            !rfc9162::verify_consistency(old, size, &old_root, &new_root, &bad),
            "modified proof accepted: {m} -> {n}, length {}",
            bad.len()
        );
        if m > 0 {
            assert!(!ct_verify_consistency(
                old, size, &old_root, &new_root, &bad
            ));
        }
    }
    // Wrong sizes. As for audit paths, a consistency proof does not bind the sizes: it is
    // rejected whenever its length is wrong for the claimed sizes, and otherwise the oracle must
    // agree with ct-merkle. Small trees try every claimed pair up to n + 4; larger ones the
    // pairs near (m, n) and those with a small claimed old size.
    let max = lens.len() - 1;
    let near = |x: usize, y: usize, d: usize| x.abs_diff(y) <= d;
    let mut accepted = 0;
    for m2 in (0..=max.min(n + 3)).filter(|&m2| n <= 33 || m2 <= 8 || near(m2, m, 4)) {
        for n2 in (m2..=max.min(n + 4)).filter(|&n2| n <= 33 || near(n2, n, 4)) {
            if (m2, n2) == (m, n) {
                continue;
            }
            let ours =
                rfc9162::verify_consistency(m2 as u64, n2 as u64, &old_root, &new_root, &proof);
            if m2 == 0 || m2 == n2 {
                // Only the empty proof is acceptable there, with the roots the rules require.
                let allowed = proof.is_empty()
                    && if m2 == 0 {
                        old_root == rfc9162::empty_root() && (n2 != 0 || new_root == old_root)
                    } else {
                        old_root == new_root
                    };
                assert_eq!(ours, allowed, "{m} -> {n} proof, claimed {m2} -> {n2}");
            } else if lens[m2][n2] != proof.len() {
                assert!(!ours, "{m} -> {n} proof accepted as {m2} -> {n2}");
            } else {
                let theirs =
                    ct_verify_consistency(m2 as u64, n2 as u64, &old_root, &new_root, &proof);
                assert_eq!(ours, theirs, "{m} -> {n} proof, claimed {m2} -> {n2}");
            }
            if ours && 0 < m2 && m2 < n2 {
                accepted += 1;
            }
        }
        // And an old size larger than the new one is always rejected.
        assert!(!rfc9162::verify_consistency(
            m2 as u64 + 1,
            m2 as u64,
            &old_root,
            &new_root,
            &proof
        ));
    }
    accepted
}

#[test]
fn consistency_rejects_corrupted_and_misattributed_proofs() {
    let lv = leaves(78, 160);
    let lens = consistency_lengths(&lv.hashes, 140);
    let mut rng = Rng(10);
    let mut accepted_as_other_sizes = 0;
    // Every old size of every size up to 33; every bit of every proof hash up to size 16.
    for n in 0..=33usize {
        for m in 0..=n {
            accepted_as_other_sizes += negative_consistency(&lv, &lens, n, m, n <= 16, &mut rng);
        }
    }
    for n in [63usize, 64, 65, 100, 127, 128, 129, 136] {
        let mut olds = sample_below(n as u64 + 1, &mut rng, 4);
        olds.push(n as u64);
        for m in olds {
            let m = usize::try_from(m).unwrap();
            accepted_as_other_sizes += negative_consistency(&lv, &lens, n, m, false, &mut rng);
        }
    }
    // Claims of other sizes with the same proof shape do occur (e.g. 1 -> 5 and 1 -> 6); make
    // sure they were exercised.
    assert!(accepted_as_other_sizes > 0);
}

#[test]
fn edge_cases_never_panic_and_are_rejected() {
    let lv = leaves(3, 8);
    let h = &lv.hashes;
    let root5 = rfc9162::mth(&h[..5]);
    let empty = rfc9162::empty_root();

    // Inclusion: empty tree, index == size, index > size, huge values.
    assert!(!rfc9162::verify_inclusion(0, 0, &empty, &[], &empty));
    assert!(!rfc9162::verify_inclusion(5, 5, &h[0], &[], &root5));
    assert!(!rfc9162::verify_inclusion(u64::MAX, 5, &h[0], &[], &root5));
    assert!(!rfc9162::verify_inclusion(
        u64::MAX,
        u64::MAX,
        &h[0],
        &[],
        &root5
    ));
    assert!(!rfc9162::verify_inclusion(
        u64::MAX - 1,
        u64::MAX,
        &h[0],
        &[h[1]; 64],
        &root5
    ));
    assert!(!rfc9162::verify_inclusion(
        0,
        u64::MAX,
        &h[0],
        &[h[1]; 70],
        &root5
    ));
    // A one-leaf tree: the proof is empty and the leaf is the root.
    assert!(rfc9162::verify_inclusion(0, 1, &h[0], &[], &h[0]));
    assert!(!rfc9162::verify_inclusion(0, 1, &h[0], &[h[0]], &h[0]));
    assert!(!rfc9162::verify_inclusion(0, 1, &h[0], &[], &h[1]));

    // Consistency: old > new.
    assert!(!rfc9162::verify_consistency(6, 5, &root5, &root5, &[]));
    assert!(!rfc9162::verify_consistency(
        u64::MAX,
        0,
        &root5,
        &root5,
        &[]
    ));
    // Equal sizes: empty proof and equal roots, nothing else.
    assert!(rfc9162::verify_consistency(5, 5, &root5, &root5, &[]));
    assert!(!rfc9162::verify_consistency(5, 5, &root5, &h[0], &[]));
    assert!(!rfc9162::verify_consistency(5, 5, &root5, &root5, &[root5]));
    // From the empty tree: empty proof, and the old root must be MTH({}).
    assert!(rfc9162::verify_consistency(0, 0, &empty, &empty, &[]));
    assert!(!rfc9162::verify_consistency(0, 0, &root5, &root5, &[]));
    assert!(!rfc9162::verify_consistency(0, 0, &empty, &root5, &[]));
    assert!(rfc9162::verify_consistency(0, 5, &empty, &root5, &[]));
    assert!(!rfc9162::verify_consistency(0, 5, &empty, &root5, &[root5]));
    assert!(!rfc9162::verify_consistency(0, 5, &h[0], &root5, &[]));
    // 0 < old < new with an empty proof (RFC 9162 §2.1.4.2 step 1).
    assert!(!rfc9162::verify_consistency(4, 5, &root5, &root5, &[]));
    // Huge sizes.
    assert!(!rfc9162::verify_consistency(
        u64::MAX - 1,
        u64::MAX,
        &root5,
        &root5,
        &[h[1]; 64]
    ));
    assert!(!rfc9162::verify_consistency(
        1,
        u64::MAX,
        &h[0],
        &root5,
        &[h[1]; 65]
    ));
    assert!(!rfc9162::verify_consistency(
        1 << 63,
        u64::MAX,
        &h[0],
        &root5,
        &[h[1]; 2]
    ));

    // Generators outside the RFC's domain answer an empty list.
    assert!(rfc9162::inclusion_path(0, &[]).is_empty());
    assert!(rfc9162::inclusion_path(5, &h[..5]).is_empty());
    assert!(rfc9162::inclusion_path(u64::MAX, &h[..5]).is_empty());
    assert!(rfc9162::consistency_proof(0, &h[..5]).is_empty());
    assert!(rfc9162::consistency_proof(5, &h[..5]).is_empty());
    assert!(rfc9162::consistency_proof(6, &h[..5]).is_empty());
    assert!(rfc9162::consistency_proof(u64::MAX, &h[..5]).is_empty());
    assert!(rfc9162::consistency_proof(0, &[]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep failures in the test output rather than in files next to the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(64))]

    /// Random trees, indices and old sizes: the oracle matches ct-merkle, both verifiers accept
    /// the honest proofs, and a random single-bit corruption is rejected by both.
    #[test]
    fn prop_random_sizes_match_ct_merkle(
        seed: u64,
        n in 1usize..=2500,
        index_pick: u64,
        old_pick: u64,
        corrupt_pick: u64,
    ) {
        let lv = leaves(seed, n);
        let mut tree = CtTree::new();
        for leaf in &lv.data {
            tree.push(leaf.clone());
        }
        let size = n as u64;
        let idx = index_pick % size;
        let old = old_pick % (size + 1);
        cross_check(&tree, &lv, n, &[idx], &[old]);

        let hashes = &lv.hashes;
        let root = rfc9162::mth(hashes);
        let i = usize::try_from(idx).unwrap();
        let path = rfc9162::inclusion_path(idx, hashes);
        if !path.is_empty() {
            let mut bad = path;
            let at = usize::try_from(corrupt_pick % bad.len() as u64).unwrap();
            bad[at] = flip_bit(&bad[at], usize::try_from(corrupt_pick % 256).unwrap());
            prop_assert!(!rfc9162::verify_inclusion(idx, size, &hashes[i], &bad, &root));
            prop_assert!(!ct_verify_inclusion(&root, size, &lv.data[i], idx, &bad));
        }

        let m = usize::try_from(old).unwrap();
        let old_root = rfc9162::mth(&hashes[..m]);
        let proof = rfc9162::consistency_proof(old, hashes);
        if !proof.is_empty() {
            let mut bad = proof;
            let at = usize::try_from(corrupt_pick % bad.len() as u64).unwrap();
            bad[at] = flip_bit(&bad[at], usize::try_from(corrupt_pick % 256).unwrap());
            prop_assert!(!rfc9162::verify_consistency(old, size, &old_root, &root, &bad));
            prop_assert!(!ct_verify_consistency(old, size, &old_root, &root, &bad));
        }
    }

    /// Arbitrary inputs never panic, and acceptance implies the basic preconditions.
    #[test]
    fn prop_verifiers_total_on_arbitrary_input(
        a: u64,
        b: u64,
        small in 0u64..300,
        x: [u8; 32],
        y: [u8; 32],
        proof in prop::collection::vec(any::<[u8; 32]>(), 0..80),
    ) {
        for (index, size) in [(a, b), (small, b), (a % 300, small), (small / 2, small)] {
            if rfc9162::verify_inclusion(index, size, &x, &proof, &y) {
                prop_assert!(index < size);
                prop_assert!(proof.len() <= 64);
            }
        }
        for (old, new) in [(a, b), (small, b), (a % 300, small), (small / 2, small)] {
            if rfc9162::verify_consistency(old, new, &x, &y, &proof) {
                prop_assert!(old <= new);
                prop_assert!(proof.len() <= 128);
            }
        }
    }
}
