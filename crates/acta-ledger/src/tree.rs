//! The right edge of the tiled Merkle tree, kept in memory by the writer.
//!
//! Everything left of the edge lives in full tiles on disk and never changes. The edge is, for each
//! tile level, the hashes of the level's rightmost tile that is not yet full. That is enough to
//! append leaves, to emit each tile the moment it fills, to write the partial tiles a checkpoint
//! needs, and to compute the root.

use crate::hash::{Hash, empty_root, mth, node_hash};
use crate::tile::TILE_WIDTH;

/// Partial-tile hashes of every level; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeEdge {
    size: u64,
    /// `levels[l]`: the hashes (fewer than 256) of the rightmost, unfinished tile of level `l`.
    levels: Vec<Vec<Hash>>,
}

/// A tile that just became full.
#[derive(Debug)]
pub struct FullTile<'a> {
    /// Tile level.
    pub level: u8,
    /// Tile index within the level.
    pub index: u64,
    /// Its 256 hashes.
    pub hashes: &'a [Hash],
}

impl TreeEdge {
    /// The edge of the empty tree.
    pub fn new() -> TreeEdge {
        TreeEdge::default()
    }

    /// Rebuilds an edge from the partial-tile hashes of each level (lowest level first), as read
    /// back from storage. Returns `None` if the widths do not describe a tree (a level with 256 or
    /// more hashes).
    pub fn from_levels(levels: Vec<Vec<Hash>>) -> Option<TreeEdge> {
        let mut size: u64 = 0;
        let mut span: u64 = 1;
        for level in &levels {
            let width = level.len() as u64;
            if width >= TILE_WIDTH {
                return None;
            }
            size = size.checked_add(width.checked_mul(span)?)?;
            span = span.checked_mul(TILE_WIDTH)?;
        }
        let mut edge = TreeEdge { size, levels };
        while edge.levels.last().is_some_and(Vec::is_empty) {
            edge.levels.pop();
        }
        Some(edge)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Hashes of the unfinished tile of `level` (empty when there is none).
    pub fn partial(&self, level: u8) -> &[Hash] {
        self.levels
            .get(usize::from(level))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Number of levels that hold hashes.
    pub fn levels(&self) -> usize {
        self.levels.len()
    }

    /// Appends a leaf hash. Every tile this completes is passed to `on_full`, lowest level first,
    /// before it is folded into the level above.
    pub fn push<E>(
        &mut self,
        leaf: Hash,
        on_full: &mut impl FnMut(FullTile<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut carry = leaf;
        let mut level = 0usize;
        // Leaves spanned by one hash at `level`; the tile index follows from the size.
        let mut span: u64 = 1;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::with_capacity(TILE_WIDTH as usize));
            }
            let Some(hashes) = self.levels.get_mut(level) else {
                break;
            };
            hashes.push(carry);
            if (hashes.len() as u64) < TILE_WIDTH {
                break;
            }
            // INVARIANT: a full tile at `level` ends at leaf `size + 1` (the leaf being added), so
            // its index is the number of full tiles before it.
            let index = self.size / span / TILE_WIDTH;
            on_full(FullTile {
                level: level as u8,
                index,
                hashes,
            })?;
            carry = mth(hashes);
            hashes.clear();
            level += 1;
            span = span.saturating_mul(TILE_WIDTH);
        }
        self.size += 1;
        Ok(())
    }

    /// The roots of the perfect subtrees that make up the tree, left to right (largest first).
    fn subtrees(&self) -> Vec<Hash> {
        let mut out = Vec::new();
        for hashes in self.levels.iter().rev() {
            let mut rest = hashes.as_slice();
            let mut bit = 128usize;
            while bit > 0 {
                if rest.len() >= bit {
                    let (chunk, tail) = rest.split_at(bit);
                    out.push(mth(chunk));
                    rest = tail;
                }
                bit /= 2;
            }
        }
        out
    }

    /// Root hash of the tree (RFC 6962 MTH of all leaves).
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees();
        let Some(mut acc) = subtrees.pop() else {
            return empty_root();
        };
        while let Some(left) = subtrees.pop() {
            acc = node_hash(&left, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn root_equals_mth_over_leaves_at_every_size() {
        let all = leaves(600);
        let mut edge = TreeEdge::new();
        assert_eq!(edge.root(), empty_root());
        for (i, leaf) in all.iter().enumerate() {
            edge.push::<()>(*leaf, &mut |_| Ok(())).unwrap();
            assert_eq!(edge.root(), mth(&all[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn full_tiles_are_emitted_in_order_with_their_hashes() {
        let all = leaves(256 * 256 + 5);
        let mut edge = TreeEdge::new();
        let mut seen = Vec::new();
        for leaf in &all {
            edge.push::<()>(*leaf, &mut |t| {
                seen.push((t.level, t.index, mth(t.hashes)));
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(seen.len(), 256 + 1);
        assert_eq!(seen[0], (0, 0, mth(&all[..256])));
        assert_eq!(seen[255], (0, 255, mth(&all[255 * 256..256 * 256])));
        assert_eq!(seen[256], (1, 0, mth(&all[..256 * 256])));
        assert_eq!(edge.partial(0), &all[256 * 256..]);
        assert_eq!(edge.partial(1), &[] as &[Hash]);
        assert_eq!(edge.partial(2), &[mth(&all[..256 * 256])]);
        assert_eq!(edge.root(), mth(&all));
    }

    #[test]
    fn rebuilt_from_levels_matches() {
        let all = leaves(70_000);
        let mut edge = TreeEdge::new();
        for leaf in &all {
            edge.push::<()>(*leaf, &mut |_| Ok(())).unwrap();
        }
        let levels = (0..edge.levels())
            .map(|l| edge.partial(l as u8).to_vec())
            .collect();
        let rebuilt = TreeEdge::from_levels(levels).unwrap();
        assert_eq!(rebuilt.size(), 70_000);
        assert_eq!(rebuilt.root(), edge.root());
        assert!(TreeEdge::from_levels(vec![vec![Hash::default(); 256]]).is_none());
    }
}
