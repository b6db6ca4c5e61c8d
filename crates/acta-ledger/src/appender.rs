//! Group commit: one writer thread in front of a [`Ledger`].
//!
//! Callers submit batches and get a [`Ticket`]; the writer takes every batch waiting in its queue,
//! appends them all, commits once (two syncs in parallel, one signature), and answers every ticket.
//! Under load, thousands of entries share one commit; at rest, a single entry is committed at once.
//! The writer also publishes checkpoints when they fall due, even when no entry arrives.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::ledger::{Batch, Ledger, LedgerError};
use crate::note::SignedCheckpoint;

/// Tunables of the writer thread.
#[derive(Clone, Debug)]
pub struct AppenderOptions {
    /// Batches that may wait in the queue before `submit` blocks (back-pressure).
    pub queue: usize,
    /// Payload bytes one group commit takes at most, so acknowledgement latency stays bounded.
    pub max_group_bytes: u64,
}

impl Default for AppenderOptions {
    fn default() -> Self {
        AppenderOptions {
            queue: 64,
            max_group_bytes: 16 << 20,
        }
    }
}

/// An acknowledged batch: its entries are on disk and covered by `checkpoint`.
#[derive(Clone, Debug)]
pub struct Receipt {
    /// Index of the batch's first entry.
    pub first: u64,
    /// Number of entries.
    pub count: u64,
    /// The signed checkpoint of the commit that made them durable.
    pub checkpoint: SignedCheckpoint,
    /// When the commit completed (for acknowledgement-latency measurements).
    pub acknowledged_at: Instant,
}

/// The pending answer to one submitted batch.
#[derive(Debug)]
pub struct Ticket(mpsc::Receiver<Result<Receipt, LedgerError>>);

impl Ticket {
    /// Waits until the batch is durable, or failed.
    pub fn wait(self) -> Result<Receipt, LedgerError> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err(LedgerError::Poisoned("the ledger writer stopped".into())))
    }
}

enum Msg {
    Append(Batch, mpsc::Sender<Result<Receipt, LedgerError>>),
}

/// A handle to the writer thread; see the module documentation.
#[derive(Debug)]
pub struct Appender {
    tx: Option<mpsc::SyncSender<Msg>>,
    thread: Option<thread::JoinHandle<Result<SignedCheckpoint, LedgerError>>>,
}

impl Appender {
    /// Starts the writer thread, which owns `ledger` until [`Appender::close`].
    pub fn start(ledger: Ledger, options: AppenderOptions) -> Result<Appender, LedgerError> {
        let (tx, rx) = mpsc::sync_channel(options.queue.max(1));
        let thread = thread::Builder::new()
            .name("acta-ledger-writer".into())
            .spawn(move || writer(ledger, rx, options))
            .map_err(|e| LedgerError::Io {
                op: "start the writer thread for",
                path: ".".into(),
                source: e,
            })?;
        Ok(Appender {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a batch; blocks while the queue is full.
    pub fn submit(&self, batch: Batch) -> Result<Ticket, LedgerError> {
        let (reply, rx) = mpsc::channel();
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| LedgerError::Poisoned("the ledger is closed".into()))?;
        tx.send(Msg::Append(batch, reply))
            .map_err(|_| LedgerError::Poisoned("the ledger writer stopped".into()))?;
        Ok(Ticket(rx))
    }

    /// Appends a batch and waits until it is durable.
    pub fn append(&self, batch: Batch) -> Result<Receipt, LedgerError> {
        self.submit(batch)?.wait()
    }

    /// Stops accepting batches, finishes the queued ones, publishes a final checkpoint and closes
    /// the ledger. Returns the final checkpoint.
    pub fn close(mut self) -> Result<SignedCheckpoint, LedgerError> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(LedgerError::Poisoned("the ledger writer panicked".into()))
            }),
            None => Err(LedgerError::Poisoned("the ledger is closed".into())),
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer(
    mut ledger: Ledger,
    rx: mpsc::Receiver<Msg>,
    options: AppenderOptions,
) -> Result<SignedCheckpoint, LedgerError> {
    let mut group: Vec<(Batch, mpsc::Sender<Result<Receipt, LedgerError>>)> = Vec::new();
    loop {
        // Wait for work, or until a pending publish falls due.
        let first = match ledger.publish_wait() {
            Some(wait) => match rx.recv_timeout(wait.max(Duration::from_millis(1))) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    ledger.maybe_publish()?;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        let Msg::Append(batch, reply) = first;
        let mut bytes = batch.payload_bytes();
        group.push((batch, reply));
        while bytes < options.max_group_bytes {
            match rx.try_recv() {
                Ok(Msg::Append(batch, reply)) => {
                    bytes += batch.payload_bytes();
                    group.push((batch, reply));
                }
                Err(_) => break,
            }
        }
        let mut appended = Vec::with_capacity(group.len());
        for (batch, reply) in group.drain(..) {
            match ledger.append(&batch) {
                Ok(range) => appended.push((range, reply)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        match ledger.commit() {
            Ok(c) => {
                let acknowledged_at = Instant::now();
                for (range, reply) in appended {
                    let receipt = Receipt {
                        first: range.start,
                        count: range.end - range.start,
                        checkpoint: c.checkpoint.clone(),
                        acknowledged_at,
                    };
                    let _ = reply.send(Ok(receipt));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (_, reply) in appended {
                    let _ = reply.send(Err(LedgerError::Poisoned(msg.clone())));
                }
                return Err(e);
            }
        }
        ledger.maybe_publish()?;
    }
    ledger.close()
}
