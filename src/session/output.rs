//! A session's outgoing bytes: a queue drained by a writer task on the same
//! thread, with the pending byte count the output-buffer limits are checked
//! against.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::broker::Census;
use crate::config::OutputLimit;
use crate::planted::{planted, Bug};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How many queued chunks one vectored write takes at most.
const BATCH: usize = 64;

/// Chunks shorter than this are copied into the queue's tail buffer rather
/// than queued by reference: copying a small message costs less than its
/// own iovec entry and reference count (Redis copies every message into
/// each client's reply buffer). Larger payloads are shared, never copied
/// per subscriber.
const COPY_BELOW: usize = 512;

/// Room the tail buffer gets when it runs out.
const TAIL_BLOCK: usize = 2048;

/// What the session and its writer task share. Nothing is allocated until
/// there is something to write: most connections are idle subscribers.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    /// Small output queued after the last chunk.
    tail: BytesMut,
    /// Bytes queued or being written.
    pending: usize,
    closed: bool,
    /// A direct write left bytes in the writer's own buffer (TLS): the
    /// writer task flushes them.
    unflushed: bool,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_empty()
    }

    /// Moves up to `max` queued pieces, in order, into `batch`.
    fn take(&mut self, max: usize, batch: &mut Vec<Bytes>) {
        let n = self.chunks.len().min(max);
        batch.extend(self.chunks.drain(..n));
        if self.chunks.is_empty() && !self.tail.is_empty() && batch.len() < max {
            batch.push(self.tail.split().freeze());
        }
    }
}

/// The session's end of its connection's write half.
pub(crate) struct Output {
    queue: Rc<RefCell<Queue>>,
    /// The connection's write half, shared with the writer task, which
    /// holds it borrowed while a write of its own is under way.
    sink: Sink,
    census: Arc<Census>,
    wake: Rc<Notify>,
    writer: JoinHandle<()>,
    over_soft_since: Option<Instant>,
}

type Sink = Rc<RefCell<Box<dyn AsyncWrite + Unpin>>>;

/// Why a session must be dropped for its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverLimit {
    Hard,
    Soft,
}

impl Output {
    /// Starts the writer task on the current thread. `on_error` runs if a
    /// write fails (the peer is gone).
    pub(crate) fn start(
        write: Box<dyn AsyncWrite + Unpin>,
        census: Arc<Census>,
        on_error: impl FnOnce() + 'static,
    ) -> Output {
        let queue = Rc::new(RefCell::new(Queue::default()));
        let sink: Sink = Rc::new(RefCell::new(write));
        let wake = Rc::new(Notify::new());
        Census::arrive(&census.writers);
        let counted = Counted(census.clone());
        let writer = tokio::task::spawn_local({
            let (queue, sink, wake, census) = (queue.clone(), sink.clone(), wake.clone(), census.clone());
            async move {
                let _counted = counted;
                write_loop(queue, sink, wake, census, on_error).await
            }
        });
        Output { queue, sink, census, wake, writer, over_soft_since: None }
    }

    /// Writes what is queued now, from the session, if the writer task is
    /// not in the middle of a write: one `write` call that does not wait.
    /// What the socket does not take stays queued for the writer task.
    ///
    /// Why: a session calls this once it has handled all its input, so a
    /// publisher's replies leave before the deliveries its publishes
    /// queued for other sessions (their writer tasks run after it), as
    /// Redis writes the publisher first (its pending-writes list is LIFO).
    /// The publisher's next batch then overlaps the subscribers' writes.
    pub(crate) fn write_now(&mut self) {
        // Borrowed: the writer task is mid-write and owns the order.
        let Ok(mut sink) = self.sink.try_borrow_mut() else { return };
        let mut q = self.queue.borrow_mut();
        if q.closed || !q.chunks.is_empty() || q.tail.is_empty() {
            return;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(Ok(n)) = std::pin::Pin::new(&mut **sink).poll_write(&mut cx, &q.tail) else {
            // Not writable now (or failed): the writer task, woken when
            // the output was queued, writes it or reports the failure.
            return;
        };
        q.tail.advance(n);
        q.pending -= n;
        self.census.queued_bytes.fetch_sub(n, Ordering::Relaxed);
        self.census.traffic.wrote(n, 1);
        if !matches!(std::pin::Pin::new(&mut **sink).poll_flush(&mut cx), std::task::Poll::Ready(Ok(()))) {
            q.unflushed = true;
            self.wake.notify_one();
        }
        if q.tail.is_empty() {
            q.tail = BytesMut::new();
        }
    }

    /// Queues bytes; they are written in the order queued.
    pub(crate) fn push(&mut self, chunk: &Bytes) {
        if chunk.len() < COPY_BELOW {
            return self.append(|tail| tail.extend_from_slice(chunk));
        }
        let Some(mut q) = self.open_queue(chunk.len()) else { return };
        if !q.tail.is_empty() {
            let small = q.tail.split().freeze();
            q.chunks.push_back(small);
        }
        q.chunks.push_back(chunk.clone());
    }

    /// Queues what `write` appends (small replies, encoded in place).
    pub(crate) fn append(&mut self, write: impl FnOnce(&mut BytesMut)) {
        let Some(mut q) = self.open_queue(0) else { return };
        if q.tail.capacity() - q.tail.len() < COPY_BELOW {
            q.tail.reserve(TAIL_BLOCK);
        }
        let before = q.tail.len();
        write(&mut q.tail);
        let added = q.tail.len() - before;
        q.pending += added;
        self.census.queued_bytes.fetch_add(added, Ordering::Relaxed);
    }

    /// The queue, about to receive `n` more bytes (counted here), with the
    /// writer woken if it was empty; `None` once closed.
    fn open_queue(&self, n: usize) -> Option<std::cell::RefMut<'_, Queue>> {
        let mut q = self.queue.borrow_mut();
        if q.closed {
            return None;
        }
        if q.is_empty() {
            self.wake.notify_one();
        }
        q.pending += n;
        self.census.queued_bytes.fetch_add(n, Ordering::Relaxed);
        Some(q)
    }

    /// Bytes queued and not yet written to the socket.
    pub(crate) fn pending(&self) -> usize {
        self.queue.borrow().pending
    }

    /// Checks `limit` as Redis' `checkClientOutputBufferLimits` does. The
    /// clock is read only over the soft limit: this runs for every delivery.
    pub(crate) fn check(&mut self, limit: &OutputLimit) -> Option<OverLimit> {
        let pending = self.pending();
        if planted(Bug::SlowKept) {
            return None;
        }
        if limit.hard > 0 && pending >= limit.hard {
            return Some(OverLimit::Hard);
        }
        if limit.soft > 0 && pending >= limit.soft {
            let now = Instant::now();
            let since = *self.over_soft_since.get_or_insert(now);
            if now.duration_since(since) >= limit.soft_for {
                return Some(OverLimit::Soft);
            }
        } else {
            self.over_soft_since = None;
        }
        None
    }

    pub(crate) fn over_soft_since(&self) -> Option<Instant> {
        self.over_soft_since
    }

    /// Writes what is queued, then closes the write side.
    pub(crate) fn close(&mut self) {
        self.queue.borrow_mut().closed = true;
        self.wake.notify_one();
    }

    /// Drops what is queued and closes now.
    pub(crate) fn abort(&mut self) {
        self.writer.abort();
        let dropped = std::mem::replace(&mut *self.queue.borrow_mut(), Queue { closed: true, ..Queue::default() });
        self.census.queued_bytes.fetch_sub(dropped.pending, Ordering::Relaxed);
    }

    pub(crate) fn is_closed(&self) -> bool {
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

// The sink stays borrowed across the writer's awaits on purpose: that
// borrow is how `Output::write_now` (a `try_borrow_mut`, which backs off)
// knows a write is under way. Nothing else borrows it, so it cannot panic.
#[allow(clippy::await_holding_refcell_ref)]
async fn write_loop(
    queue: Rc<RefCell<Queue>>,
    sink: Sink,
    wake: Rc<Notify>,
    census: Arc<Census>,
    on_error: impl FnOnce(),
) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let idle = || {
            let q = queue.borrow();
            q.is_empty() && !q.closed && !q.unflushed
        };
        while idle() {
            wake.notified().await;
        }
        // Held across the write: `Output::write_now` stays out meanwhile.
        let mut w = sink.borrow_mut();
        if std::mem::take(&mut queue.borrow_mut().unflushed) && w.flush().await.is_err() {
            on_error();
            return;
        }
        // No yield before writing: a session gets each posting's deliveries
        // as one message, so they are already gathered; a yield would cost
        // every write an extra trip through the reactor (measured: 1 → 1
        // latency 0.6× Redis with it, 0.9× without).
        queue.borrow_mut().take(BATCH, &mut batch);
        if batch.is_empty() {
            if queue.borrow().closed {
                break;
            }
            // Woken for output that `write_now` wrote meanwhile.
            continue;
        }
        let total: usize = batch.iter().map(Bytes::len).sum();
        let Ok(calls) = write_all(&mut **w, &mut batch).await else {
            on_error();
            return;
        };
        census.traffic.wrote(total, calls);
        let mut q = queue.borrow_mut();
        q.pending = q.pending.saturating_sub(total);
        census.queued_bytes.fetch_sub(total, Ordering::Relaxed);
        if q.is_empty() {
            // Nothing waiting: give the buffer back (idle connections are
            // most connections).
            q.tail = BytesMut::new();
        }
    }
    let mut w = sink.borrow_mut();
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

/// Writes the whole batch; how many write calls it took.
async fn write_all(w: &mut (dyn AsyncWrite + Unpin), batch: &mut Vec<Bytes>) -> std::io::Result<usize> {
    let (mut first, mut calls) = (0, 0);
    while first < batch.len() {
        // One piece (the usual case: small output is gathered in the tail)
        // is a plain write; writev costs the kernel an iovec import.
        let mut n = match &batch[first..] {
            [one] => w.write(one).await?,
            more => {
                let slices: Vec<IoSlice<'_>> = more.iter().map(|b| IoSlice::new(b)).collect();
                w.write_vectored(&slices).await?
            }
        };
        calls += 1;
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
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Runs `test` on a current-thread runtime, where the writer task is
    /// spawned as in a session's arbiter.
    fn on_one_thread(test: impl std::future::Future<Output = ()>) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        tokio::task::LocalSet::new().block_on(&rt, test);
    }

    /// Small pieces are copied into the tail and large ones shared; either
    /// way the peer reads them in the order queued, through partial writes.
    #[test]
    fn small_and_large_pieces_arrive_in_order() {
        on_one_thread(async {
            // A tiny pipe: most writes are partial or must wait.
            let (mut peer, ours) = tokio::io::duplex(64);
            let census = Arc::new(Census::default());
            let mut out = Output::start(Box::new(ours), census.clone(), || panic!("write failed"));
            let large = Bytes::from(vec![b'L'; COPY_BELOW * 3]);
            let mut expected = Vec::new();
            for i in 0..60u8 {
                let small = Bytes::from(vec![b'a' + i % 26; 1 + i as usize]);
                out.push(&small);
                expected.extend_from_slice(&small);
                if i % 7 == 0 {
                    out.push(&large);
                    expected.extend_from_slice(&large);
                }
                out.append(|buf| buf.extend_from_slice(b"+OK\r\n"));
                expected.extend_from_slice(b"+OK\r\n");
            }
            assert_eq!(out.pending(), expected.len());
            out.close();
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, expected);
            assert_eq!(census.queued_bytes.load(Ordering::Relaxed), 0);
        });
    }

    /// What the peer can read without waiting (nothing yields to the
    /// writer task meanwhile).
    fn read_now(peer: &mut tokio::io::DuplexStream) -> Vec<u8> {
        use tokio::io::AsyncRead;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut got = Vec::new();
        loop {
            let mut buf = [0u8; 256];
            let mut read = tokio::io::ReadBuf::new(&mut buf);
            match std::pin::Pin::new(&mut *peer).poll_read(&mut cx, &mut read) {
                std::task::Poll::Ready(Ok(())) if !read.filled().is_empty() => got.extend_from_slice(read.filled()),
                _ => return got,
            }
        }
    }

    /// `write_now` writes a reply from the session's own step, before
    /// the writer task has run; what the socket refuses stays queued, and
    /// the writer task sends it after, in order.
    #[test]
    fn write_now_writes_before_the_writer_task_runs() {
        on_one_thread(async {
            let (mut peer, ours) = tokio::io::duplex(8);
            let census = Arc::new(Census::default());
            let mut out = Output::start(Box::new(ours), census.clone(), || panic!("write failed"));
            out.append(|buf| buf.extend_from_slice(b"+OK\r\n"));
            out.write_now();
            assert_eq!(read_now(&mut peer), b"+OK\r\n");
            assert_eq!((out.pending(), census.queued_bytes.load(Ordering::Relaxed)), (0, 0));
            // 19 bytes into an 8-byte pipe: 8 now, 11 left for the writer.
            out.append(|buf| buf.extend_from_slice(b":1\r\n:22\r\n:333\r\n:4\r\n"));
            out.write_now();
            assert_eq!(read_now(&mut peer), b":1\r\n:22\r");
            assert_eq!(out.pending(), 11);
            out.close();
            let mut rest = Vec::new();
            peer.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, b"\n:333\r\n:4\r\n");
            assert_eq!(census.queued_bytes.load(Ordering::Relaxed), 0);
        });
    }

    /// `write_now` never overtakes output queued before it: a shared
    /// chunk still queued, or a write the writer task has under way.
    #[test]
    fn write_now_keeps_the_order_of_what_was_queued_first() {
        on_one_thread(async {
            let (mut peer, ours) = tokio::io::duplex(16);
            let census = Arc::new(Census::default());
            let mut out = Output::start(Box::new(ours), census.clone(), || panic!("write failed"));
            let large = Bytes::from(vec![b'L'; COPY_BELOW * 2]);
            // Queued, the writer not yet run.
            out.push(&large);
            out.append(|buf| buf.extend_from_slice(b"+1\r\n"));
            out.write_now();
            assert_eq!(read_now(&mut peer), b"", "written ahead of the queued chunk");
            // The writer task starts its write and blocks on the full pipe.
            tokio::task::yield_now().await;
            assert_eq!(read_now(&mut peer), vec![b'L'; 16]);
            out.append(|buf| buf.extend_from_slice(b"+2\r\n"));
            out.write_now();
            out.close();
            let mut rest = Vec::new();
            peer.read_to_end(&mut rest).await.unwrap();
            let mut expected = vec![b'L'; large.len() - 16];
            expected.extend_from_slice(b"+1\r\n+2\r\n");
            assert_eq!(rest, expected);
        });
    }

    /// An aborted output drops what was queued, takes nothing more and
    /// says it is closed; the census counts none of it.
    #[test]
    fn an_aborted_output_takes_nothing_more() {
        on_one_thread(async {
            // A pipe nobody reads: the bytes stay queued.
            let (_peer, ours) = tokio::io::duplex(16);
            let census = Arc::new(Census::default());
            let mut out = Output::start(Box::new(ours), census.clone(), || {});
            out.push(&Bytes::from(vec![b'x'; COPY_BELOW * 4]));
            out.append(|buf| buf.extend_from_slice(b"+OK\r\n"));
            out.abort();
            assert!(out.is_closed());
            out.push(&Bytes::from(vec![b'y'; COPY_BELOW * 4]));
            out.append(|buf| buf.extend_from_slice(b"+OK\r\n"));
            assert_eq!(out.pending(), 0);
            assert_eq!(census.queued_bytes.load(Ordering::Relaxed), 0);
        });
    }
}
