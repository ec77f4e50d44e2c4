//! A link's far end: a peer's connection to this node's bus port. It
//! publishes what the peer forwards on this node, as a local publisher
//! would (never passing it on), and hands the peer's announcements to the
//! Mesh, answering each once it is queued there.
//!
//! The link speaks RESP commands: `HELLO <node-id>` first, then `SUB`,
//! `UNSUB`, `PSUB`, `PUNSUB` with names (each answered `+OK`), `PING`
//! (`+PONG`), and `PUB <channel> <message>` (no answer).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::Addr;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Decoder;

use super::interest::{Interest, Peer};
use super::{Change, Mesh, PeerWants};
use crate::broker::publishing::{self, directory_of};
use crate::broker::{Census, ChannelDirectory, PatternIndex, Postman};
use crate::cluster::MeshFigures;
use crate::planted::{planted, Bug};
use crate::protocol::push::Kind;
use crate::protocol::{Request, RequestDecoder};

/// What a link's far end publishes through: this node's broker.
#[derive(Clone)]
pub(crate) struct LocalBroker {
    pub directories: Arc<[Addr<ChannelDirectory>]>,
    pub postmen: Arc<[Addr<Postman>]>,
    pub patterns: Addr<PatternIndex>,
    pub census: Arc<Census>,
    /// The longest an announcement waits for this node's link back.
    pub node_timeout: std::time::Duration,
}

/// Serves one peer connection until it closes or breaks the protocol;
/// counts every message it reads, and lists the link once the peer has
/// said who it is.
pub(crate) async fn serve_peer<S>(stream: S, mesh: Addr<Mesh>, figures: Arc<MeshFigures>, broker: LocalBroker)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let mut decoder = RequestDecoder::new(512 * 1024 * 1024);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut peer: Option<Peer> = None;
    let mut _listed = None;
    loop {
        match read.read_buf(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => return,
        }
        let mut run: Vec<(Bytes, Bytes)> = Vec::new();
        let mut answers = BytesMut::new();
        while let Ok(Some(request)) = decoder.decode(&mut buf) {
            let Request::Command(args) = request else { return };
            figures.received.fetch_add(1, Ordering::Relaxed);
            let verb = args[0].to_ascii_uppercase();
            if verb == b"PUB" && args.len() == 3 && peer.is_some() {
                run.push((args[1].clone(), args[2].clone()));
                continue;
            }
            // Publishes before an announcement are published first: the
            // link's order is kept.
            publish(std::mem::take(&mut run), &broker, &mesh).await;
            let change = match (&verb[..], peer) {
                (b"HELLO", _) if args.len() == 2 => {
                    let Ok(Some(index)) = mesh.send(super::Hello { id: args[1].clone() }).await else {
                        // Not (yet) in this node's topology: it retries.
                        tracing::info!(id = %String::from_utf8_lossy(&args[1]), "cluster link from an unknown node");
                        return;
                    };
                    peer = Some(index);
                    _listed = Some(figures.inbound(&String::from_utf8_lossy(&args[1])));
                    Change::Reset
                }
                (b"PING", _) => {
                    answers.extend_from_slice(b"+PONG\r\n");
                    continue;
                }
                (b"SUB", Some(_)) => Change::Add(Interest::Channel, args[1..].to_vec()),
                (b"PSUB", Some(_)) => Change::Add(Interest::Pattern, args[1..].to_vec()),
                (b"UNSUB", Some(_)) => Change::Remove(Interest::Channel, args[1..].to_vec()),
                (b"PUNSUB", Some(_)) => Change::Remove(Interest::Pattern, args[1..].to_vec()),
                _ => {
                    tracing::warn!(verb = %String::from_utf8_lossy(&verb), "cluster link: unexpected command");
                    return;
                }
            };
            // Queued at the Mesh before it is answered: a publish made here
            // after the peer has the answer reaches the Mesh later, and
            // finds the link back to the peer up.
            let (taken, applied) = tokio::sync::oneshot::channel();
            mesh.do_send(PeerWants { peer: peer.expect("set by HELLO"), change, taken });
            let _ = tokio::time::timeout(broker.node_timeout, applied).await;
            answers.extend_from_slice(b"+OK\r\n");
        }
        publish(run, &broker, &mesh).await;
        if !answers.is_empty() && write.write_all(&answers).await.is_err() {
            return;
        }
    }
}

/// Publishes a peer's run here, as a publisher with no session (id 0, so
/// no subscriber takes it for its own) would, and posts the deliveries.
async fn publish(run: Vec<(Bytes, Bytes)>, broker: &LocalBroker, mesh: &Addr<Mesh>) {
    if run.is_empty() {
        return;
    }
    if planted(Bug::Reforward) {
        mesh.do_send(super::Forward(run.clone()));
    }
    let n = broker.directories.len();
    let patterns = broker.census.patterns.load(Ordering::SeqCst) > 0;
    let plan = publishing::plan(run.iter().map(|(c, m)| (Kind::Channel, c, m)), n, |c| directory_of(c, n), patterns);
    let (mail, results) = publishing::send(plan, &broker.directories, &broker.patterns, &broker.postmen, 0).await;
    mail.post(&broker.postmen, 0);
    let delivered: usize = results.iter().map(|p| p.count).sum();
    broker.census.delivered.fetch_add(delivered, Ordering::Relaxed);
}
