//! C2SP tlog-tiles naming and the entry-bundle encoding (<https://c2sp.org/tlog-tiles>).
//!
//! A tile holds up to 256 consecutive hashes of one level of the tiled tree: level 0 holds leaf
//! hashes, and each hash at level `l + 1` is the Merkle Tree Hash of a full tile at level `l`. An
//! entry bundle holds the entries behind one level-0 tile, each prefixed by its big-endian `u16`
//! length. Partial tiles (fewer than 256 hashes) are named `<N>.p/<W>`.

use crate::hash::Hash;

/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// Tree levels spanned by one tile level (`256 = 2^8`).
pub const TILE_HEIGHT: u32 = 8;

/// Encodes a tile index as C2SP path elements: `1234067` → `x001/x234/067`, `5` → `005`.
pub fn index_path(mut n: u64) -> String {
    let mut groups = Vec::with_capacity(7);
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(groups.len() * 5);
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            out.push_str(&format!("x{g:03}/"));
        } else {
            out.push_str(&format!("{g:03}"));
        }
    }
    out
}

/// Which tile of which level, and how many hashes of it exist at a tree size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileId {
    /// Tile level: 0 for leaf hashes.
    pub level: u8,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes: 256 for a full tile, 1–255 for a partial one.
    pub width: u16,
}

impl TileId {
    /// A full tile.
    pub fn full(level: u8, index: u64) -> TileId {
        TileId {
            level,
            index,
            width: 256,
        }
    }

    /// Whether this is a full 256-hash tile.
    pub fn is_full(&self) -> bool {
        self.width == 256
    }

    /// Path of the hash tile relative to the log root: `tile/<L>/<N>[.p/<W>]`.
    pub fn hash_path(&self) -> String {
        format!("tile/{}/{}", self.level, self.suffix())
    }

    /// Path of the entry bundle behind a level-0 tile: `tile/entries/<N>[.p/<W>]`.
    pub fn bundle_path(&self) -> String {
        format!("tile/entries/{}", self.suffix())
    }

    fn suffix(&self) -> String {
        if self.is_full() {
            index_path(self.index)
        } else {
            format!("{}.p/{}", index_path(self.index), self.width)
        }
    }

    /// The tile named by a C2SP path relative to the log root, and whether it is an entry
    /// bundle (`tile/entries/...`) rather than a hash tile. Only canonical names are accepted
    /// (what [`TileId::hash_path`] and [`TileId::bundle_path`] write); anything else, `..` or
    /// stray separators included, is `None`.
    pub fn parse_path(path: &str) -> Option<(TileId, bool)> {
        let rest = path.strip_prefix("tile/")?;
        let (level, rest) = rest.split_once('/')?;
        let (bundle, level) = match level {
            "entries" => (true, 0u8),
            l if !l.is_empty() && l.len() <= 2 && l.bytes().all(|b| b.is_ascii_digit()) => {
                (false, l.parse().ok()?)
            }
            _ => return None,
        };
        if level > 63 {
            return None;
        }
        let (index_part, width) = match rest.split_once(".p/") {
            Some((i, w)) => {
                if w.is_empty() || w.len() > 3 || !w.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let w: u16 = w.parse().ok()?;
                if !(1..=255).contains(&w) {
                    return None;
                }
                (i, w)
            }
            None => (rest, 256),
        };
        let mut index: u64 = 0;
        let groups: Vec<&str> = index_part.split('/').collect();
        for (i, g) in groups.iter().enumerate() {
            let digits = if i + 1 < groups.len() {
                g.strip_prefix('x')?
            } else {
                g
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            index = index
                .checked_mul(1000)?
                .checked_add(digits.parse::<u64>().ok()?)?;
        }
        let id = TileId {
            level,
            index,
            width,
        };
        let canonical = if bundle {
            id.bundle_path()
        } else {
            id.hash_path()
        };
        (canonical == path).then_some((id, bundle))
    }

    /// Directory holding the partial versions of this tile: `tile/<L>/<N>.p`.
    pub fn partial_dir(&self, bundle: bool) -> String {
        if bundle {
            format!("tile/entries/{}.p", index_path(self.index))
        } else {
            format!("tile/{}/{}.p", self.level, index_path(self.index))
        }
    }
}

/// The rightmost (possibly partial) tile of each level for a tree of `size` leaves, lowest level
/// first. Levels whose partial tile would be empty are skipped, as C2SP forbids empty tiles.
pub fn partial_tiles(size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    let mut level: u8 = 0;
    let mut span: u64 = 1; // leaves per hash at this level
    while size / span > 0 {
        let width = (size / span) % TILE_WIDTH;
        if width > 0 {
            out.push(TileId {
                level,
                index: size / span / TILE_WIDTH,
                width: u16::try_from(width).unwrap_or(255),
            });
        }
        match span.checked_mul(TILE_WIDTH) {
            Some(s) => span = s,
            None => break,
        }
        level += 1;
    }
    out
}

/// Leaves spanned by one hash of `level` (`256^level`; saturates beyond 64-bit sizes).
pub fn span(level: u8) -> u64 {
    TILE_WIDTH.checked_pow(u32::from(level)).unwrap_or(u64::MAX)
}

/// Hashes tile `index` of `level` holds in a tree of `size` entries (0 to 256).
pub fn width_at(level: u8, index: u64, size: u64) -> usize {
    let w = (size / span(level))
        .saturating_sub(index.saturating_mul(TILE_WIDTH))
        .min(TILE_WIDTH);
    usize::try_from(w).unwrap_or(0)
}

/// Full tiles of `level` in a tree of `size` entries.
pub fn full_tiles(level: u8, size: u64) -> u64 {
    size / span(level) / TILE_WIDTH
}

/// Reads a full tile file: exactly 256 hashes. The error says what is wrong with the file.
pub fn read_full(path: &std::path::Path) -> Result<Vec<Hash>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the hash tile: {e}"))?;
    decode_hashes(&bytes)
        .filter(|h| h.len() == TILE_WIDTH as usize)
        .ok_or_else(|| {
            format!(
                "the tile is {} bytes long; 8,192 were expected",
                bytes.len()
            )
        })
}

/// Serialises hashes as tile bytes.
pub fn encode_hashes(hashes: &[Hash], out: &mut Vec<u8>) {
    out.reserve(hashes.len() * Hash::LEN);
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
}

/// Parses tile bytes; `None` unless the length is a whole number of hashes.
pub fn decode_hashes(bytes: &[u8]) -> Option<Vec<Hash>> {
    if !bytes.len().is_multiple_of(Hash::LEN) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(Hash::LEN)
            .filter_map(Hash::from_slice)
            .collect(),
    )
}

/// Appends one entry to an entry bundle: big-endian `u16` length, then the bytes.
/// Entries longer than 65,535 bytes cannot be bundled; envelopes are far shorter.
pub fn push_bundle_entry(bundle: &mut Vec<u8>, entry: &[u8]) {
    let len = u16::try_from(entry.len()).unwrap_or(u16::MAX);
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry.get(..usize::from(len)).unwrap_or(entry));
}

/// Iterates over the entries of an entry bundle. Yields `Err(offset)` once, at the first length
/// prefix that runs past the end of the bundle, and stops.
#[derive(Debug)]
pub struct BundleEntries<'a> {
    bytes: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BundleEntries<'a> {
    /// Iterates over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        BundleEntries {
            bytes,
            pos: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for BundleEntries<'a> {
    type Item = Result<&'a [u8], usize>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let entry = self
            .bytes
            .get(start..)
            .and_then(|b| b.first_chunk::<2>())
            .map(|b| usize::from(u16::from_be_bytes(*b)))
            .and_then(|len| self.bytes.get(start + 2..start + 2 + len));
        match entry {
            Some(e) => {
                self.pos = start + 2 + e.len();
                Some(Ok(e))
            }
            None => {
                self.failed = true;
                Some(Err(start))
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn tile_paths_parse_back_and_nothing_else_does() {
        for id in [
            TileId::full(0, 0),
            TileId::full(2, 1_234_067),
            TileId {
                level: 1,
                index: 5,
                width: 17,
            },
        ] {
            assert_eq!(TileId::parse_path(&id.hash_path()), Some((id, false)));
            if id.level == 0 {
                assert_eq!(TileId::parse_path(&id.bundle_path()), Some((id, true)));
            }
        }
        for bad in [
            "tile/0/../../keys/acta.key",
            "tile/0/x001/../002",
            "tile/0/1",
            "tile/0/001/",
            "tile/0//001",
            "tile/00/001",
            "tile/64/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/007",
            "tile/0/x000/001",
            "tile/entries/001.p/",
            "checkpoint",
            "tile/0/001\0",
        ] {
            assert_eq!(TileId::parse_path(bad), None, "{bad}");
        }
    }

    use super::*;

    #[test]
    fn c2sp_index_paths() {
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(5), "005");
        assert_eq!(index_path(999), "999");
        assert_eq!(index_path(1000), "x001/000");
        assert_eq!(index_path(1_234_067), "x001/x234/067");
        assert_eq!(
            TileId {
                level: 0,
                index: 1_234_067,
                width: 17
            }
            .hash_path(),
            "tile/0/x001/x234/067.p/17"
        );
        assert_eq!(TileId::full(2, 3).hash_path(), "tile/2/003");
        assert_eq!(TileId::full(0, 3).bundle_path(), "tile/entries/003");
    }

    #[test]
    fn partial_tiles_match_the_spec_example() {
        // C2SP: a tree of size 70,000 has a partial level-0 tile of width 112, a partial level-1
        // tile of width 17 and a partial level-2 tile of width 1.
        let p = partial_tiles(70_000);
        assert_eq!(
            p,
            vec![
                TileId {
                    level: 0,
                    index: 273,
                    width: 112
                },
                TileId {
                    level: 1,
                    index: 1,
                    width: 17
                },
                TileId {
                    level: 2,
                    index: 0,
                    width: 1
                },
            ]
        );
        // A tree of size 256 has a full level-0 tile and a partial level-1 tile of width 1.
        assert_eq!(
            partial_tiles(256),
            vec![TileId {
                level: 1,
                index: 0,
                width: 1
            }]
        );
        assert!(partial_tiles(0).is_empty());
        assert_eq!(partial_tiles(u64::MAX).len(), 8);
    }

    #[test]
    fn bundle_round_trip_and_truncation() {
        let mut b = Vec::new();
        push_bundle_entry(&mut b, b"one");
        push_bundle_entry(&mut b, b"");
        push_bundle_entry(&mut b, b"three");
        let got: Vec<_> = BundleEntries::new(&b).collect();
        assert_eq!(got, vec![Ok(&b"one"[..]), Ok(&b""[..]), Ok(&b"three"[..])]);
        let cut = &b[..b.len() - 1];
        let got: Vec<_> = BundleEntries::new(cut).collect();
        assert_eq!(got, vec![Ok(&b"one"[..]), Ok(&b""[..]), Err(7)]);
        let got: Vec<_> = BundleEntries::new(&[0x00]).collect();
        assert_eq!(got, vec![Err(0)]);
    }
}
