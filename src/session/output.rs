//! A session's outgoing bytes: an unbounded queue drained by a writer task,
//! with the pending byte count the output-buffer limits are checked against.

use std::cell::Cell;
use std::io::IoSlice;
use std::rc::Rc;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::OutputLimit;

/// How many queued chunks one vectored write takes at most.
const BATCH: usize = 64;

/// The session's end of its connection's write half.
pub struct Output {
    tx: Option<mpsc::UnboundedSender<Bytes>>,
    pending: Rc<Cell<usize>>,
    writer: JoinHandle<()>,
    over_soft_since: Option<Instant>,
}

/// Why a session must be dropped for its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    Hard,
    Soft,
}

impl Output {
    /// Starts the writer task on the current thread. `on_error` runs if a
    /// write fails (the peer is gone).
    pub fn start(write: Box<dyn AsyncWrite + Unpin>, on_error: impl FnOnce() + 'static) -> Output {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Rc::new(Cell::new(0));
        let writer = tokio::task::spawn_local(write_loop(rx, write, pending.clone(), on_error));
        Output { tx: Some(tx), pending, writer, over_soft_since: None }
    }

    /// Queues bytes; they are written in the order queued.
    pub fn push(&mut self, chunk: Bytes) {
        if let Some(tx) = &self.tx {
            self.pending.set(self.pending.get() + chunk.len());
            let _ = tx.send(chunk);
        }
    }

    /// Bytes queued and not yet written to the socket.
    pub fn pending(&self) -> usize {
        self.pending.get()
    }

    /// Checks `limit` as Redis' `checkClientOutputBufferLimits` does.
    pub fn check(&mut self, limit: &OutputLimit, now: Instant) -> Option<OverLimit> {
        let pending = self.pending();
        if limit.hard > 0 && pending >= limit.hard {
            return Some(OverLimit::Hard);
        }
        if limit.soft > 0 && pending >= limit.soft {
            let since = *self.over_soft_since.get_or_insert(now);
            if now.duration_since(since) >= limit.soft_for {
                return Some(OverLimit::Soft);
            }
        } else {
            self.over_soft_since = None;
        }
        None
    }

    pub fn over_soft_since(&self) -> Option<Instant> {
        self.over_soft_since
    }

    /// Writes what is queued, then closes the write side.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Drops what is queued and closes now.
    pub fn abort(&mut self) {
        self.tx = None;
        self.writer.abort();
        self.pending.set(0);
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_none()
    }
}

async fn write_loop(
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    mut w: Box<dyn AsyncWrite + Unpin>,
    pending: Rc<Cell<usize>>,
    on_error: impl FnOnce(),
) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        // Let the session (and its neighbours on this thread) run once more
        // before writing: under load that gathers many messages into one
        // write call; when idle it costs one scheduler turn.
        tokio::task::yield_now().await;
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(chunk) => batch.push(chunk),
                Err(_) => break,
            }
        }
        let total: usize = batch.iter().map(Bytes::len).sum();
        if write_all(&mut w, &mut batch).await.is_err() {
            on_error();
            return;
        }
        pending.set(pending.get().saturating_sub(total));
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

async fn write_all(w: &mut (dyn AsyncWrite + Unpin), batch: &mut Vec<Bytes>) -> std::io::Result<()> {
    let mut first = 0;
    while first < batch.len() {
        let slices: Vec<IoSlice<'_>> = batch[first..].iter().map(|b| IoSlice::new(b)).collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let head = &mut batch[first];
            let take = n.min(head.len());
            head.advance(take);
            n -= take;
            if head.is_empty() {
                first += 1;
            }
        }
        while first < batch.len() && batch[first].is_empty() {
            first += 1;
        }
    }
    w.flush().await?;
    batch.clear();
    Ok(())
}
