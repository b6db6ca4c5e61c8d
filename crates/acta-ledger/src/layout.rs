//! Where each file of a ledger directory lives, and the `FORMAT` file that versions the directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::tile::TileId;

/// Format version of a ledger directory (see the crate README).
pub const FORMAT_VERSION: u32 = 1;

/// Entries per payload segment: one level-1 tile's worth (`256 × 256`).
pub const PAYLOAD_SEGMENT_ENTRIES: u64 = 65_536;

/// Paths inside a ledger directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the ledger at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The ledger directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `FORMAT`: format version and origin.
    pub fn format_file(&self) -> PathBuf {
        self.root.join("FORMAT")
    }

    /// `LOCK`: held exclusively by the one process writing the ledger.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    /// `log/`: the C2SP tlog-tiles tree, servable as static files.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// `log/checkpoint`: the latest published checkpoint.
    pub fn checkpoint_file(&self) -> PathBuf {
        self.root.join("log").join("checkpoint")
    }

    /// A hash tile.
    pub fn hash_tile(&self, tile: &TileId) -> PathBuf {
        self.log_dir().join(tile.hash_path())
    }

    /// An entry bundle.
    pub fn bundle(&self, tile: &TileId) -> PathBuf {
        self.log_dir().join(tile.bundle_path())
    }

    /// `checkpoints`: every checkpoint the log signed, in order.
    pub fn history_file(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `journal/`: write-ahead journal segments.
    pub fn journal_dir(&self) -> PathBuf {
        self.root.join("journal")
    }

    /// The journal segment starting at entry `base`.
    pub fn journal_segment(&self, base: u64) -> PathBuf {
        self.journal_dir().join(format!("{base:020}.jnl"))
    }

    /// `payload/`: payload segments.
    pub fn payload_dir(&self) -> PathBuf {
        self.root.join("payload")
    }

    /// `journal/spare/`: retired journal segments kept for reuse. Recycling segment files instead
    /// of deleting them spares file systems the cost of allocating and freeing inodes.
    pub fn journal_spare_dir(&self) -> PathBuf {
        self.journal_dir().join("spare")
    }

    /// Payload segment number `segment`, holding entries `segment × 65,536 …`.
    pub fn payload_segment(&self, segment: u64) -> PathBuf {
        self.payload_dir().join(format!("{segment:010}.dat"))
    }

    /// Journal segments present, sorted by base index. Names that are not journal segments are
    /// returned separately so that callers can report them.
    pub fn list_journal(&self) -> io::Result<JournalListing> {
        let mut segments = Vec::new();
        let mut strays = Vec::new();
        let dir = match fs::read_dir(self.journal_dir()) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((segments, strays)),
            Err(e) => return Err(e),
        };
        for entry in dir {
            let entry = entry?;
            if entry.file_name() == "spare" && entry.file_type()?.is_dir() {
                continue;
            }
            let path = entry.path();
            let base = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jnl"))
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<u64>().ok());
            match base {
                Some(b) => segments.push((b, path)),
                None => strays.push(path),
            }
        }
        segments.sort();
        Ok((segments, strays))
    }
}

/// Journal segments `(base index, path)` in order, and stray files found beside them.
pub type JournalListing = (Vec<(u64, PathBuf)>, Vec<PathBuf>);

/// Contents of the `FORMAT` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatFile {
    /// Directory format version.
    pub version: u32,
    /// Origin of the log (its key name).
    pub origin: String,
}

impl FormatFile {
    /// Text form: `acta-ledger <version>\norigin <origin>\n`.
    pub fn to_text(&self) -> String {
        format!("acta-ledger {}\norigin {}\n", self.version, self.origin)
    }

    /// Parses the text form. Only the exact canonical text is accepted, so that any change to
    /// the file — a truncated newline included — is detected.
    pub fn parse(text: &str) -> Option<FormatFile> {
        let mut lines = text.lines();
        let version = lines.next()?.strip_prefix("acta-ledger ")?.parse().ok()?;
        let origin = lines.next()?.strip_prefix("origin ")?.to_owned();
        let parsed = FormatFile { version, origin };
        (!parsed.origin.is_empty() && parsed.to_text() == text).then_some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::FormatFile;

    #[test]
    fn format_file_accepts_only_its_canonical_text() {
        let f = FormatFile {
            version: 1,
            origin: "acta.example/log".into(),
        };
        let text = f.to_text();
        assert_eq!(FormatFile::parse(&text), Some(f));
        for cut in 0..text.len() {
            assert_eq!(FormatFile::parse(&text[..cut]), None, "cut at {cut}");
        }
        assert_eq!(FormatFile::parse(&format!("{text}\n")), None);
        assert_eq!(FormatFile::parse(&text.replace('\n', "\r\n")), None);
    }
}
