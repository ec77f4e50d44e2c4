//! A session's outgoing bytes: a queue drained by a writer task on the same
//! thread, with the pending byte count the output-buffer limits are checked
//! against.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::rc::Rc;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::broker::Census;
use crate::config::OutputLimit;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How many queued chunks one vectored write takes at most.
const BATCH: usize = 64;

/// What the session and its writer task share. Nothing is allocated until
/// there is something to write: most connections are idle subscribers.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    /// Bytes queued or being written.
    pending: usize,
    closed: bool,
}

/// The session's end of its connection's write half.
pub struct Output {
    queue: Rc<RefCell<Queue>>,
    census: Arc<Census>,
    wake: Rc<Notify>,
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
    pub fn start(write: Box<dyn AsyncWrite + Unpin>, census: Arc<Census>, on_error: impl FnOnce() + 'static) -> Output {
        let queue = Rc::new(RefCell::new(Queue::default()));
        let wake = Rc::new(Notify::new());
        Census::arrive(&census.writers);
        let counted = Counted(census.clone());
        let writer = tokio::task::spawn_local({
            let (queue, wake, census) = (queue.clone(), wake.clone(), census.clone());
            async move {
                let _counted = counted;
                write_loop(queue, wake, write, census, on_error).await
            }
        });
        Output { queue, census, wake, writer, over_soft_since: None }
    }

    /// Queues bytes; they are written in the order queued.
    pub fn push(&mut self, chunk: Bytes) {
        let mut q = self.queue.borrow_mut();
        if q.closed {
            return;
        }
        q.pending += chunk.len();
        self.census.queued_bytes.fetch_add(chunk.len(), Ordering::Relaxed);
        if q.chunks.is_empty() {
            self.wake.notify_one();
        }
        q.chunks.push_back(chunk);
    }

    /// Bytes queued and not yet written to the socket.
    pub fn pending(&self) -> usize {
        self.queue.borrow().pending
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
        self.queue.borrow_mut().closed = true;
        self.wake.notify_one();
    }

    /// Drops what is queued and closes now.
    pub fn abort(&mut self) {
        self.writer.abort();
        let dropped = std::mem::replace(&mut *self.queue.borrow_mut(), Queue { closed: true, ..Queue::default() });
        self.census.queued_bytes.fetch_sub(dropped.pending, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.queue.borrow().closed
    }
}

/// Counts a writer task in the census until it ends (or is aborted).
struct Counted(Arc<Census>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.leave(&self.0.writers);
    }
}

async fn write_loop(
    queue: Rc<RefCell<Queue>>,
    wake: Rc<Notify>,
    mut w: Box<dyn AsyncWrite + Unpin>,
    census: Arc<Census>,
    on_error: impl FnOnce(),
) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let idle = || {
            let q = queue.borrow();
            q.chunks.is_empty() && !q.closed
        };
        while idle() {
            wake.notified().await;
        }
        // Let the session (and its neighbours on this thread) run once more
        // before writing: under load that gathers many messages into one
        // write call; when idle it costs one scheduler turn.
        tokio::task::yield_now().await;
        {
            let mut q = queue.borrow_mut();
            let n = q.chunks.len().min(BATCH);
            batch.extend(q.chunks.drain(..n));
        }
        if batch.is_empty() {
            break;
        }
        let total: usize = batch.iter().map(Bytes::len).sum();
        if write_all(&mut w, &mut batch).await.is_err() {
            on_error();
            return;
        }
        let mut q = queue.borrow_mut();
        q.pending = q.pending.saturating_sub(total);
        census.queued_bytes.fetch_sub(total, Ordering::Relaxed);
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
