//! One outbound link: a task that connects to a peer's bus port, writes
//! what the Mesh hands it, reads the peer's answers, and reconnects when
//! the link breaks. Transport only: what goes on the link is the Mesh's
//! decision, and the Mesh hears of every change as a message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::interest::Peer;
use super::{Answered, BusStream, Dialer, LinkDown, LinkUp, Mesh};
use crate::cluster::{LinkFigures, MeshFigures, NodeAddr};

/// The Mesh's side of an up link.
pub(super) struct LinkHandle {
    tx: mpsc::UnboundedSender<Bytes>,
    /// Bytes handed over and not yet written.
    queued: Arc<AtomicUsize>,
    /// Which connection of this peer's link it is (counted from 1).
    pub generation: u64,
}

impl LinkHandle {
    pub(super) fn send(&self, frame: Bytes) {
        self.queued.fetch_add(frame.len(), Ordering::Relaxed);
        let _ = self.tx.send(frame);
    }

    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// What CLUSTER LINKS shows of it, from now on.
    pub(super) fn figures(&self) -> LinkFigures {
        LinkFigures::new(self.queued.clone())
    }

    /// Ends the connection; the task connects again.
    pub(super) fn close(self) {}
}

/// Keeps a link to `peer` at `addr` up for as long as the Mesh lives or
/// until the task is aborted (the node left). `task` numbers its
/// connections' generations apart from any earlier task's.
pub(super) fn spawn(
    peer: Peer,
    addr: NodeAddr,
    mesh: Addr<Mesh>,
    timeout: Duration,
    dial: Dialer,
    figures: Arc<MeshFigures>,
    task: u64,
) -> tokio::task::JoinHandle<()> {
    actix_rt::spawn(async move {
        let mut generation = task << 32;
        // Reconnecting: from 50 ms, doubling to a second.
        let mut backoff = Duration::from_millis(50);
        while mesh.connected() {
            match tokio::time::timeout(timeout, dial(addr.host.clone(), addr.bus_port)).await {
                Ok(Ok(stream)) => {
                    generation += 1;
                    backoff = Duration::from_millis(50);
                    run(stream, peer, generation, &mesh, timeout, &figures).await;
                    mesh.do_send(LinkDown { peer, generation });
                }
                Ok(Err(e)) => tracing::debug!(peer = %addr, error = %e, "cluster link: connect failed"),
                Err(_) => tracing::debug!(peer = %addr, "cluster link: connect timed out"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    })
}

/// One connection's life: write what the Mesh sends (and a PING every
/// third of `timeout`), read answers; ends when either side fails, the
/// peer is silent for `timeout`, or the Mesh drops its handle.
async fn run(
    stream: BusStream,
    peer: Peer,
    generation: u64,
    mesh: &Addr<Mesh>,
    timeout: Duration,
    figures: &MeshFigures,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let queued = Arc::new(AtomicUsize::new(0));
    mesh.do_send(LinkUp { peer, handle: LinkHandle { tx, queued: queued.clone(), generation } });
    let (mut read, mut write) = tokio::io::split(stream);
    let writer = async {
        let mut ping = tokio::time::interval(timeout / 3);
        let mut out = BytesMut::new();
        loop {
            tokio::select! {
                frame = rx.recv() => {
                    let Some(frame) = frame else { return };
                    out.extend_from_slice(&frame);
                    // Whatever else is queued goes in the same write.
                    while let Ok(more) = rx.try_recv() {
                        out.extend_from_slice(&more);
                        if out.len() >= 256 * 1024 {
                            break;
                        }
                    }
                }
                _ = ping.tick() => {
                    out.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
                    figures.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            let n = out.len();
            if write.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
            queued.fetch_sub(n.min(queued.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
    };
    let reader = async {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            match tokio::time::timeout(timeout, read.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            // Answers are simple strings: `+OK` for each announcement,
            // `+PONG` for each PING. Anything else ends the link.
            while let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
                let line = buf.split_to(end + 2);
                match &line[..end] {
                    b"+OK" => mesh.do_send(Answered { peer, generation }),
                    b"+PONG" => {}
                    other => {
                        tracing::warn!(peer, answer = %String::from_utf8_lossy(other), "cluster link: unexpected answer");
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}
