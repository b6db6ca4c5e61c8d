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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::Duration;

use flate2::bufread::MultiGzDecoder;

use super::FramingError;

/// Read buffer size: large reads keep syscalls and decompressor calls rare.
const BUFFER_BYTES: usize = 1 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How long standard input may pause before the records read so far are
/// handed on: a stream (`tail -f … | acta ingest -`) is stored, indexed and
/// checked for alerts within about this long, not only when a batch fills.
pub const IDLE: Duration = Duration::from_millis(200);

/// Opens a file, or standard input for `-`, decompressing gzip content
/// transparently.
///
/// Plain standard input is read on a thread of its own; when it pauses for
/// [`IDLE`], a read fails with [`io::ErrorKind::WouldBlock`] (and can be
/// retried), which the framer takes as "hand on what you have".
pub fn open_input(path: &Path) -> Result<Box<dyn BufRead + Send>, FramingError> {
    let open_error = |source| FramingError::Open {
        path: path.to_path_buf(),
        source,
    };
    // Patient while sniffing (and for gzip, whose decoder is not resumable mid-member).
    let patient = Arc::new(AtomicBool::new(true));
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(Paused::stdin(patient.clone()))
    } else {
        Box::new(File::open(path).map_err(open_error)?)
    };
    wrap(raw, patient).map_err(open_error)
}

/// Reads records from bytes already in memory (an HTTP request body), decompressing gzip content
/// transparently.
pub fn open_bytes(bytes: Vec<u8>) -> io::Result<Box<dyn BufRead + Send>> {
    wrap(
        Box::new(io::Cursor::new(bytes)),
        Arc::new(AtomicBool::new(true)),
    )
}

/// `raw`, buffered, and decompressed when it starts with the gzip magic number.
fn wrap(
    raw: Box<dyn Read + Send>,
    patient: Arc<AtomicBool>,
) -> io::Result<Box<dyn BufRead + Send>> {
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, raw);
    let mut head = [0u8; 2];
    let n = read_head(&mut reader, &mut head)?;
    // The sniffed bytes are put back in front of the stream.
    let stream = io::Cursor::new(head).take(n as u64).chain(reader);
    let gzip = n == head.len() && head == GZIP_MAGIC;
    patient.store(gzip, Ordering::Relaxed);
    if gzip {
        Ok(Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            MultiGzDecoder::new(stream),
        )))
    } else {
        Ok(Box::new(stream))
    }
}

/// Standard input, read on its own thread in chunks.
struct Paused {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    done: bool,
    /// Wait as long as it takes (no [`IDLE`] timeout).
    patient: Arc<AtomicBool>,
}

impl Paused {
    fn stdin(patient: Arc<AtomicBool>) -> Paused {
        // A few chunks ahead at most: memory stays bounded when acta is slower than the pipe.
        let (tx, rx) = sync_channel(4);
        std::thread::Builder::new()
            .name("acta-stdin".into())
            .spawn(move || {
                let mut stdin = io::stdin().lock();
                loop {
                    let mut buf = vec![0u8; 256 << 10];
                    match stdin.read(&mut buf) {
                        Ok(n) => {
                            buf.truncate(n);
                            if tx.send(Ok(buf)).is_err() || n == 0 {
                                return;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            })
            .map_or_else(
                |e| {
                    let (tx, rx) = sync_channel(1);
                    let _ = tx.send(Err(e));
                    Paused::new(rx)
                },
                |_| Paused::new(rx),
            )
            .with(patient)
    }

    fn new(rx: Receiver<io::Result<Vec<u8>>>) -> Paused {
        Paused {
            rx,
            chunk: Vec::new(),
            at: 0,
            done: false,
            patient: Arc::new(AtomicBool::new(true)),
        }
    }

    fn with(mut self, patient: Arc<AtomicBool>) -> Paused {
        self.patient = patient;
        self
    }
}

impl Read for Paused {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            let next = if self.patient.load(Ordering::Relaxed) {
                self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                self.rx.recv_timeout(IDLE)
            };
            match next {
                Ok(Ok(chunk)) => {
                    self.done = chunk.is_empty();
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(RecvTimeoutError::Timeout) => return Err(io::ErrorKind::WouldBlock.into()),
                Err(RecvTimeoutError::Disconnected) => self.done = true,
            }
        }
        let rest = self.chunk.get(self.at..).unwrap_or_default();
        let n = rest.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.at += n;
        Ok(n)
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
