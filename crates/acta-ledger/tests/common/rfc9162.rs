//! Reference Merkle tree algorithms over SHA-256, written plainly from the RFCs.
//!
//! This module is a test oracle: it exists to check another implementation, so every function
//! here transcribes the RFC text as literally as possible and makes no attempt to be fast.
//!
//! * Tree hashes, audit paths and consistency proofs: the recursive definitions of
//!   RFC 6962 §2.1, §2.1.1 and §2.1.2 (identical to RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1).
//! * Proof verification: the step-by-step algorithms of RFC 9162 §2.1.3.2 (inclusion) and
//!   §2.1.4.2 (consistency), with the step numbers of the RFC in the comments.
//!
//! Notation used in the comments: `D[n]` is a list of n inputs, `D[k1:k2]` the sub-list from
//! index k1 (inclusive) to k2 (exclusive), `:` is list concatenation and `||` byte concatenation.
//! The functions below take the *leaf hashes* (`leaf_hash(d(i))`), not the inputs `d(i)`, so the
//! MTH of a one-element list is that element itself.
//!
//! Nothing here panics, whatever the input: verifiers answer `false`, and the proof generators
//! answer an empty list for arguments outside the domain on which the RFC defines them.

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// RFC 6962 §2.1: the hash of a leaf is `SHA-256(0x00 || d(0))`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00_u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// RFC 6962 §2.1: an interior node is `SHA-256(0x01 || MTH(left) || MTH(right))`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01_u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// RFC 6962 §2.1: "The hash of an empty list is the hash of an empty string: MTH({}) = SHA-256()."
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// RFC 6962 §2.1: "let k be the largest power of two smaller than n (i.e., k < n <= 2k)".
///
/// Only meaningful for `n > 1`; every caller checks that first. For `n <= 1` it answers 1 (there
/// is no such power of two) rather than panicking.
fn largest_power_of_two_smaller_than(n: usize) -> usize {
    let mut k: usize = 1;
    // Double k while the doubled value is still smaller than n. `2k < n` is written as
    // `k < n - k` so that it cannot overflow; `n - k` cannot underflow because k < n holds on
    // entry (n > 1) and is kept by the loop.
    while n > k && k < n - k {
        k *= 2;
    }
    k
}

/// RFC 6962 §2.1 Merkle Tree Hash, over a list of leaf hashes:
///
/// ```text
/// MTH({})       = SHA-256()
/// MTH({d(0)})   = SHA-256(0x00 || d(0))                      (here: the given leaf hash)
/// MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  for n > 1
/// ```
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let k = largest_power_of_two_smaller_than(leaves.len());
            let (left, right) = leaves.split_at(k);
            node_hash(&mth(left), &mth(right))
        }
    }
}

/// RFC 6962 §2.1.1 audit path `PATH(m, D[n])` for the leaf at index m (0 <= m < n):
///
/// ```text
/// PATH(0, {d(0)}) = {}
/// PATH(m, D[n])   = PATH(m, D[0:k]) : MTH(D[k:n])        for m < k
/// PATH(m, D[n])   = PATH(m - k, D[k:n]) : MTH(D[0:k])    for m >= k
/// ```
///
/// The path is thus ordered from the leaf's sibling up to the child of the root.
/// Outside the RFC's domain (`index >= leaves.len()`, in particular the empty tree) there is no
/// path; this returns an empty list.
pub fn inclusion_path(index: u64, leaves: &[Hash]) -> Vec<Hash> {
    match usize::try_from(index) {
        Ok(m) if m < leaves.len() => path(m, leaves),
        _ => Vec::new(),
    }
}

/// `PATH(m, D[n])`, with `m < D.len()` guaranteed by the caller.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        // PATH(0, {d(0)}) = {}
        return Vec::new();
    }
    let k = largest_power_of_two_smaller_than(n);
    let (d_0_k, d_k_n) = d.split_at(k);
    if m < k {
        // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
        let mut proof = path(m, d_0_k);
        proof.push(mth(d_k_n));
        proof
    } else {
        // PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
        let mut proof = path(m - k, d_k_n);
        proof.push(mth(d_0_k));
        proof
    }
}

/// RFC 6962 §2.1.2 consistency proof `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)` between the
/// tree of the first m leaves and the tree of all n leaves.
///
/// The RFC defines PROOF for `0 < m < n`. At the edges of that domain this returns:
/// * `m == n`: the empty list, which is what `SUBPROOF(m, D[m], true) = {}` gives (and what
///   RFC 9162 verifiers expect: equal sizes need no proof, only equal roots);
/// * `m == 0`: the empty list (every tree extends the empty tree; nothing to prove);
/// * `m > n`: the empty list (no proof can exist).
pub fn consistency_proof(old_size: u64, leaves: &[Hash]) -> Vec<Hash> {
    match usize::try_from(old_size) {
        Ok(m) if m > 0 && m <= leaves.len() => subproof(m, leaves, true),
        _ => Vec::new(),
    }
}

/// `SUBPROOF(m, D[n], b)`, with `0 < m <= D.len()` guaranteed by the caller:
///
/// ```text
/// SUBPROOF(m, D[m], true)  = {}
/// SUBPROOF(m, D[m], false) = {MTH(D[m])}
/// SUBPROOF(m, D[n], b)     = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])          for m <= k
/// SUBPROOF(m, D[n], b)     = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])  for m > k
/// ```
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m >= n {
        // m == n here (the caller guarantees m <= n; `>=` only keeps this total).
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    // Now 0 < m < n, so n > 1 and k is well defined.
    let k = largest_power_of_two_smaller_than(n);
    let (d_0_k, d_k_n) = d.split_at(k);
    if m <= k {
        // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
        let mut proof = subproof(m, d_0_k, b);
        proof.push(mth(d_k_n));
        proof
    } else {
        // SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
        let mut proof = subproof(m - k, d_k_n, false);
        proof.push(mth(d_0_k));
        proof
    }
}

/// `LSB(x)`: whether the least significant bit of x is set.
fn lsb(x: u64) -> bool {
    x & 1 == 1
}

/// RFC 9162 §2.1.3.2 "Verifying an Inclusion Proof": does `proof` (the inclusion_path) prove
/// that `leaf` (the leaf hash) is at `index` in the tree of `size` leaves whose root is `root`?
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    // 1. Compare leaf_index against tree_size. If leaf_index is greater than or equal to
    //    tree_size, then fail the proof verification.
    //    (This also rejects every proof for the empty tree, size 0.)
    if index >= size {
        return false;
    }

    // 2. Set fn to leaf_index and sn to tree_size - 1.
    //    (`fn` is a Rust keyword, hence `fn_`. size >= 1 here, so `size - 1` cannot underflow.)
    let mut fn_ = index;
    let mut sn = size - 1;

    // 3. Set r to hash.
    let mut r = *leaf;

    // 4. For each value p in the inclusion_path array:
    for p in proof {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0 {
            return false;
        }

        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if lsb(fn_) || fn_ == sn {
            // i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, &r);

            // ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            //     LSB(fn) is set or fn is 0.
            if !lsb(fn_) {
                while !lsb(fn_) && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise:
            // i. Set r to HASH(0x01 || r || p).
            r = node_hash(&r, p);
        }

        // c. Finally, right-shift both fn and sn one time.
        fn_ >>= 1;
        sn >>= 1;
    }

    // 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and the
    //    root_hash are equal, then the log has proven the inclusion of hash. Otherwise, fail the
    //    proof verification.
    sn == 0 && r == *root
}

/// RFC 9162 §2.1.4.2 "Verifying Consistency between Two Tree Heads": does `proof` (the
/// consistency_path) prove that the tree of `old_size` leaves with root `old_root` is a prefix of
/// the tree of `new_size` leaves with root `new_root`?
///
/// The RFC algorithm is stated for `0 < first < second`. The cases outside it are decided first:
/// * `old_size > new_size`: false (a log only grows).
/// * `old_size == 0`: RFC 9162 does not define a proof from the empty tree (§2.1.4.1 requires
///   `0 < m < n`). Every tree extends the empty tree, so the only acceptable proof is the empty
///   one. The old root is still checked: the only tree of size 0 has root `MTH({}) = SHA-256()`,
///   so an `old_root` that differs from it is not a tree head of size 0 and is rejected. When
///   `new_size` is also 0, `new_root` must equal `old_root` too.
/// * `old_size == new_size` (> 0): nothing to prove: the proof must be empty and the two roots
///   equal (`SUBPROOF(m, D[m], true) = {}`).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    // Cases outside the RFC algorithm's domain (0 < first < second).
    if old_size > new_size {
        return false;
    }
    if old_size == 0 {
        return proof.is_empty()
            && *old_root == empty_root()
            && (new_size != 0 || *new_root == *old_root);
    }
    if old_size == new_size {
        return proof.is_empty() && *old_root == *new_root;
    }

    // From here on, in the RFC's names: 0 < first < second.
    let first = old_size;
    let second = new_size;
    let first_hash = old_root;
    let second_hash = new_root;

    // 1. If consistency_path is an empty array, stop and fail the proof verification.
    if proof.is_empty() {
        return false;
    }

    // 2. If first is an exact power of 2, then prepend first_hash to the consistency_path
    //    array.
    let mut consistency_path: Vec<Hash> = Vec::with_capacity(proof.len().saturating_add(1));
    if first.is_power_of_two() {
        consistency_path.push(*first_hash);
    }
    consistency_path.extend_from_slice(proof);

    // 3. Set fn to first - 1 and sn to second - 1.
    //    (first >= 1 and second >= 2 here, so neither subtraction can underflow.)
    let mut fn_ = first - 1;
    let mut sn = second - 1;

    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    if lsb(fn_) {
        while lsb(fn_) {
            fn_ >>= 1;
            sn >>= 1;
        }
    }

    // 5. Set both fr and sr to the first value in the consistency_path array.
    let Some((first_value, subsequent_values)) = consistency_path.split_first() else {
        // Unreachable: the proof is not empty (step 1). Fail rather than panic.
        return false;
    };
    let mut fr = *first_value;
    let mut sr = *first_value;

    // 6. For each subsequent value c in the consistency_path array:
    for c in subsequent_values {
        // a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0 {
            return false;
        }

        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if lsb(fn_) || fn_ == sn {
            // i. Set fr to HASH(0x01 || c || fr).
            fr = node_hash(c, &fr);
            // ii. Set sr to HASH(0x01 || c || sr).
            sr = node_hash(c, &sr);
            // iii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            //      LSB(fn) is set or fn is 0.
            if !lsb(fn_) {
                while !lsb(fn_) && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            // Otherwise:
            // i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(&sr, c);
        }

        // c. Finally, right-shift both fn and sn one time.
        fn_ >>= 1;
        sn >>= 1;
    }

    // 7. After completing iterating through the consistency_path array as described above,
    //    verify that the fr calculated is equal to the first_hash supplied, that the sr
    //    calculated is equal to the second_hash supplied, and that sn is 0.
    fr == *first_hash && sr == *second_hash && sn == 0
}
