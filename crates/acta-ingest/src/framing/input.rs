//! Opening inputs: files or standard input, gzip or not.
//!
//! Compression is recognised by content (the gzip magic bytes), not by file
//! name: logs are routinely renamed, piped, or shipped as `.json` files that
//! are actually compressed. Multi-member gzip (what `cat a.gz b.gz` and many
//! log shippers produce) is read to the end, not stopped after the first
//! member.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use super::FramingError;

/// Read buffer size: large reads keep syscalls and decompressor calls rare.
const BUFFER_BYTES: usize = 1 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens a file, or standard input for `-`, decompressing gzip content
/// transparently.
pub fn open_input(path: &Path) -> Result<Box<dyn BufRead + Send>, FramingError> {
    let open_error = |source| FramingError::Open {
        path: path.to_path_buf(),
        source,
    };
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(open_error)?)
    };
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, raw);
    let mut head = [0u8; 2];
    let n = read_head(&mut reader, &mut head).map_err(open_error)?;
    // The sniffed bytes are put back in front of the stream.
    let stream = io::Cursor::new(head).take(n as u64).chain(reader);
    if n == head.len() && head == GZIP_MAGIC {
        Ok(Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            MultiGzDecoder::new(stream),
        )))
    } else {
        Ok(Box::new(stream))
    }
}

/// Reads up to `head.len()` bytes, fewer only at end of input (a pipe may
/// deliver one byte at a time).
fn read_head(reader: &mut impl Read, head: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while let Some(free) = head.get_mut(n..).filter(|free| !free.is_empty()) {
        match reader.read(free) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
