//! Inclusion and consistency proofs (RFC 6962 §2.1.1–2.1.2) built from tiles, and their
//! verification (RFC 9162 §2.1.3.2 and §2.1.4.2).
//!
//! Proof generation needs the hash of arbitrary aligned perfect subtrees. A subtree of height `h`
//! is the MTH of `2^(h mod 8)` consecutive hashes of one tile at level `h / 8`, so any proof costs
//! at most one tile read per proof hash.

use std::borrow::Cow;

use crate::hash::{Hash, largest_power_of_two_below, mth, node_hash};
use crate::tile::{TILE_HEIGHT, TILE_WIDTH};

/// Where proofs read tile hashes from: files, the writer's in-memory edge, or both.
pub trait TileSource {
    /// Error reading a tile.
    type Error;
    /// The hashes of tile `index` at `level` that exist in a tree of `size` leaves (a full tile, or
    /// the prefix a partial tile holds at that size).
    fn tile(&self, level: u8, index: u64, size: u64) -> Result<Cow<'_, [Hash]>, Self::Error>;
}

/// Why a proof could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E> {
    /// The requested index or sizes do not fit the tree.
    #[error("{0}")]
    OutOfRange(String),
    /// A tile holds fewer hashes than the tree size implies.
    #[error("tile {level}/{index} holds {have} hashes where {need} were expected")]
    ShortTile {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
        /// Hashes present.
        have: usize,
        /// Hashes needed.
        need: usize,
    },
    /// Reading a tile failed.
    #[error(transparent)]
    Source(E),
}

/// Hash of the perfect subtree of height `height` whose leaves are `[k·2^h, (k+1)·2^h)`.
fn subtree<S: TileSource>(
    src: &S,
    size: u64,
    height: u32,
    k: u64,
) -> Result<Hash, ProofError<S::Error>> {
    let level = height / TILE_HEIGHT;
    let count = 1u64 << (height % TILE_HEIGHT);
    let first = k * count; // position of the first hash at `level`
    let index = first / TILE_WIDTH;
    let offset = usize::try_from(first % TILE_WIDTH).unwrap_or(0);
    let level = u8::try_from(level).map_err(|_| ProofError::OutOfRange("tree too tall".into()))?;
    let hashes = src.tile(level, index, size).map_err(ProofError::Source)?;
    let need = offset + usize::try_from(count).unwrap_or(0);
    let run = hashes.get(offset..need).ok_or(ProofError::ShortTile {
        level,
        index,
        have: hashes.len(),
        need,
    })?;
    Ok(mth(run))
}

/// MTH of leaves `[start, end)`, for ranges produced by the RFC 6962 recursion.
fn range_hash<S: TileSource>(
    src: &S,
    size: u64,
    start: u64,
    end: u64,
) -> Result<Hash, ProofError<S::Error>> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return subtree(src, size, n.trailing_zeros(), start / n);
    }
    let k = largest_power_of_two_below(n);
    let left = range_hash(src, size, start, start + k)?;
    let right = range_hash(src, size, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// Root of the tree of `size` leaves, read from tiles.
pub fn root_at<S: TileSource>(src: &S, size: u64) -> Result<Hash, ProofError<S::Error>> {
    if size == 0 {
        return Ok(crate::hash::empty_root());
    }
    range_hash(src, size, 0, size)
}

/// Audit path for leaf `index` in the tree of `size` leaves (RFC 6962 `PATH(m, D[n])`), leaf's
/// sibling first.
pub fn inclusion_proof<S: TileSource>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::OutOfRange(format!(
            "entry {index} is not in a tree of {size} entries"
        )));
    }
    let mut out = Vec::new();
    path(src, size, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<S: TileSource>(
    src: &S,
    size: u64,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError<S::Error>> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(src, size, m, start, start + k, out)?;
        out.push(range_hash(src, size, start + k, end)?);
    } else {
        path(src, size, m - k, start + k, end, out)?;
        out.push(range_hash(src, size, start, start + k)?);
    }
    Ok(())
}

/// Consistency proof between the trees of `old` and `new` leaves (RFC 6962 `PROOF(m, D[n])`).
/// Empty when `old` is 0 or equal to `new`.
pub fn consistency_proof<S: TileSource>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if old > new {
        return Err(ProofError::OutOfRange(format!(
            "cannot prove consistency from size {old} to the smaller size {new}"
        )));
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(src, new, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

fn subproof<S: TileSource>(
    src: &S,
    size: u64,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError<S::Error>> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(range_hash(src, size, start, end)?);
        }
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(src, size, m, start, start + k, complete, out)?;
        out.push(range_hash(src, size, start + k, end)?);
    } else {
        subproof(src, size, m - k, start + k, end, false, out)?;
        out.push(range_hash(src, size, start, start + k)?);
    }
    Ok(())
}

/// Root implied by an inclusion proof (RFC 9162 §2.1.3.2), or `None` if the proof has the wrong
/// shape for `index` and `size`.
pub fn root_from_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return None;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    (s_n == 0).then_some(r)
}

/// Checks an inclusion proof against a root.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    root_from_inclusion(index, size, leaf, proof).is_some_and(|r| r == *root)
}

/// Checks a consistency proof between two roots (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        // Every tree extends the empty tree, whose only root is SHA-256(""); RFC 9162 defines no
        // proof for it.
        return proof.is_empty() && *old_root == crate::hash::empty_root();
    }
    // Step 1: a proof between two different non-empty sizes is never empty.
    if proof.is_empty() {
        return false;
    }
    // Step 2: if old_size is a power of two, prepend old_root to the proof.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    // Step 3.
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    // Step 4: shift both right while the low bit of f_n is set.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5.
    let (mut f_r, mut s_r) = (*first, *first);
    // Step 6.
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 7.
    f_r == *old_root && s_r == *new_root && s_n == 0
}

/// A [`TileSource`] over leaf hashes held in memory, for tests and small tools.
#[derive(Debug)]
pub struct MemoryTiles {
    /// `levels[l]`: every hash of level `l`, full tiles and the partial tail.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTiles {
    /// Builds all tile levels over `leaves`.
    pub fn new(leaves: Vec<Hash>) -> MemoryTiles {
        let mut levels = vec![leaves];
        loop {
            let next: Vec<Hash> = match levels.last() {
                Some(below) if below.len() >= TILE_WIDTH as usize => {
                    below.chunks_exact(TILE_WIDTH as usize).map(mth).collect()
                }
                _ => break,
            };
            levels.push(next);
        }
        MemoryTiles { levels }
    }
}

impl TileSource for MemoryTiles {
    type Error = std::convert::Infallible;

    fn tile(&self, level: u8, index: u64, size: u64) -> Result<Cow<'_, [Hash]>, Self::Error> {
        let start = usize::try_from(index * TILE_WIDTH).unwrap_or(usize::MAX);
        let end = start.saturating_add(crate::tile::width_at(level, index, size));
        let hashes = self
            .levels
            .get(usize::from(level))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        Ok(Cow::Borrowed(
            hashes.get(start..end.min(hashes.len())).unwrap_or(&[]),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn tree(n: u64) -> (Vec<Hash>, MemoryTiles) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        (leaves.clone(), MemoryTiles::new(leaves))
    }

    #[test]
    fn proofs_verify_at_many_sizes() {
        let (leaves, tiles) = tree(1_100);
        for size in [1u64, 2, 3, 7, 8, 255, 256, 257, 511, 512, 1_000, 1_100] {
            let root = root_at(&tiles, size).unwrap();
            assert_eq!(root, mth(&leaves[..size as usize]));
            for index in (0..size).step_by(37).chain([size - 1]) {
                let p = inclusion_proof(&tiles, index, size).unwrap();
                assert!(verify_inclusion(
                    index,
                    size,
                    &leaves[index as usize],
                    &p,
                    &root
                ));
                assert!(!verify_inclusion(
                    index,
                    size,
                    &leaf_hash(b"other"),
                    &p,
                    &root
                ));
            }
            for old in (1..=size).step_by(41).chain([size]) {
                let old_root = root_at(&tiles, old).unwrap();
                let p = consistency_proof(&tiles, old, size).unwrap();
                assert!(
                    verify_consistency(old, size, &old_root, &root, &p),
                    "{old}->{size}"
                );
                if old < size {
                    assert!(!verify_consistency(old, size, &root, &root, &p));
                }
            }
        }
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let (_, tiles) = tree(10);
        assert!(inclusion_proof(&tiles, 10, 10).is_err());
        assert!(consistency_proof(&tiles, 11, 10).is_err());
        assert!(!verify_inclusion(
            3,
            3,
            &Hash::default(),
            &[],
            &Hash::default()
        ));
    }
}
