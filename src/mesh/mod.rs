//! Cluster mode's links between nodes: classic publishes cross to exactly
//! the nodes that want them, one hop, over one ordered link per direction
//! between each pair of nodes (as Redis Cluster keeps an outbound and an
//! inbound link per peer).
//!
//! The [`Mesh`] actor (one per node) owns what crosses: which channels
//! and patterns each peer wants (`RemoteInterest`), which names this
//! node's subscriptions want (`LocalInterest`) and the outbound links.
//! Sessions tell it what they subscribe to and what they publish; it
//! announces first wants and last leaves to every peer, and passes each
//! publish to the peers that want it. A link's far end (`inbound.rs`)
//! publishes what arrives on its node as a local publisher would, and
//! never passes it on: nothing is forwarded twice, nothing loops.
//!
//! Why a SUBSCRIBE on node B covers publishes on node A (SPEC §9): B's
//! session confirms only once every peer whose link is up has answered
//! B's announcement, and A's link end answers only after queueing the
//! interest at A's Mesh; a publish A's client sends after B's client saw
//! the confirmation is queued at A's Mesh later, so it finds B.
//!
//! What it deliberately does not know: sessions, tokens, frames. A peer is
//! a node index; what crosses is a channel and a message.

mod inbound;
mod interest;
mod link;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;

pub(crate) use inbound::{serve_peer, LocalBroker};
pub(crate) use interest::Interest;
use interest::{LocalInterest, Peer, RemoteInterest};
use link::LinkHandle;

use crate::cluster::{MeshFigures, Topology};
use crate::protocol::Reply;

/// A connection between nodes: TCP in production, turmoil's in the
/// simulator.
pub trait BusIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> BusIo for T {}
pub type BusStream = Box<dyn BusIo>;

/// How a node opens a link to a peer's `host` and bus port.
pub type Dialer = Arc<dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = std::io::Result<BusStream>>>> + Send + Sync>;

/// The production dialer: TCP, no Nagle delay.
pub(crate) fn tcp_dialer() -> Dialer {
    Arc::new(|host, port| {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BusStream)
        })
    })
}

/// The Mesh of one node.
pub(crate) struct Mesh {
    topology: Arc<Topology>,
    figures: Arc<MeshFigures>,
    remote: RemoteInterest,
    local: LocalInterest,
    /// Each peer's outbound link while it is up (none for this node).
    links: Vec<Option<Outbound>>,
    /// SUBSCRIBEs waiting for peers to answer their announcements.
    waiting: Vec<Waiter>,
    /// Each peer's announcements applied here while this node's link to
    /// it was down: answered when it comes up.
    unanswered: Vec<Vec<oneshot::Sender<()>>>,
    node_timeout: Duration,
    sendbuf_limit: usize,
    dial: Dialer,
}

/// A link that is up, and how far the peer has answered on it.
struct Outbound {
    handle: LinkHandle,
    /// Announcements (and the HELLO) sent on this link, and answered.
    sent: u64,
    answered: u64,
}

/// A session's confirmation, sent once each (peer, count) pair is
/// answered or that peer's link has gone down.
struct Waiter {
    until: Vec<(Peer, u64, u64)>,
    reply: oneshot::Sender<()>,
}

impl Mesh {
    pub(crate) fn new(
        topology: Arc<Topology>,
        figures: Arc<MeshFigures>,
        node_timeout: Duration,
        sendbuf_limit: usize,
        dial: Dialer,
    ) -> Mesh {
        let links: Vec<Option<Outbound>> = (0..topology.nodes.len()).map(|_| None).collect();
        Mesh {
            topology,
            figures,
            remote: RemoteInterest::default(),
            local: LocalInterest::default(),
            unanswered: (0..links.len()).map(|_| Vec::new()).collect(),
            links,
            waiting: Vec::new(),
            node_timeout,
            sendbuf_limit,
            dial,
        }
    }

    /// Sends `frame` on `peer`'s link, if up. A link over its send buffer
    /// limit is closed (its queue dropped, counted) and opens again.
    fn send(&mut self, peer: Peer, frame: Bytes) -> bool {
        let Some(link) = &self.links[peer] else { return false };
        if self.sendbuf_limit > 0 && link.handle.queued() + frame.len() > self.sendbuf_limit {
            tracing::warn!(peer = %self.topology.nodes[peer].addr, "link over cluster-link-sendbuf-limit: closed");
            self.figures.limit_exceeded.fetch_add(1, Ordering::Relaxed);
            self.down(peer);
            return false;
        }
        link.handle.send(frame);
        self.figures.sent.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Sends an announcement expecting an answer; its count on the link.
    fn announce(&mut self, peer: Peer, frame: Bytes) -> Option<u64> {
        if !self.send(peer, frame) {
            return None;
        }
        let link = self.links[peer].as_mut()?;
        link.sent += 1;
        Some(link.sent)
    }

    fn down(&mut self, peer: Peer) {
        if let Some(link) = self.links[peer].take() {
            link.handle.close();
        }
        self.figures.up[peer].store(false, Ordering::Relaxed);
        self.release();
    }

    /// Confirms every waiter whose peers have all answered or gone.
    fn release(&mut self) {
        let links = &self.links;
        let answered = |&(peer, generation, count): &(Peer, u64, u64)| match &links[peer] {
            Some(link) => link.handle.generation != generation || link.answered >= count,
            None => true,
        };
        let (done, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|w| w.until.iter().all(answered));
        self.waiting = waiting;
        for w in done {
            let _ = w.reply.send(());
        }
    }

    fn interest_frame(verb: &'static str, names: impl IntoIterator<Item = Bytes>) -> Bytes {
        command(std::iter::once(Bytes::from_static(verb.as_bytes())).chain(names))
    }
}

/// A RESP command of bulk strings, as the links speak.
fn command(words: impl IntoIterator<Item = Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    command_into(words, &mut out);
    out.freeze()
}

/// The same, appended to `out`.
fn command_into(words: impl IntoIterator<Item = Bytes>, out: &mut BytesMut) {
    Reply::Array(words.into_iter().map(Reply::Bulk).collect()).encode(false, out);
}

impl Actor for Mesh {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        crate::broker::unbounded_mailbox(ctx);
        for peer in self.topology.peers().collect::<Vec<_>>() {
            let addr = self.topology.nodes[peer].addr.clone();
            link::spawn(peer, addr, ctx.address(), self.node_timeout, self.dial.clone());
        }
    }
}

/// From a session: these names are subscribed to here (one message per
/// command). Answers once every peer up has taken the first wants.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Want {
    pub kind: Interest,
    pub names: Vec<Bytes>,
    pub reply: oneshot::Sender<()>,
}

impl Handler<Want> for Mesh {
    type Result = ();

    fn handle(&mut self, msg: Want, _: &mut Context<Self>) {
        let first: Vec<Bytes> = msg.names.into_iter().filter(|n| self.local.want(msg.kind, n.clone())).collect();
        self.figures.announced.store(self.local.len(), Ordering::Relaxed);
        let mut until = Vec::new();
        if !first.is_empty() {
            let verb = if msg.kind == Interest::Channel { "SUB" } else { "PSUB" };
            let frame = Mesh::interest_frame(verb, first);
            for peer in self.topology.peers().collect::<Vec<_>>() {
                if let Some(count) = self.announce(peer, frame.clone()) {
                    let generation = self.links[peer].as_ref().map_or(0, |l| l.handle.generation);
                    until.push((peer, generation, count));
                }
            }
        } else {
            // Announced before, perhaps not yet answered: wait for what is
            // outstanding on each link.
            for (peer, link) in self.links.iter().enumerate() {
                if let Some(link) = link.as_ref().filter(|l| l.answered < l.sent) {
                    until.push((peer, link.handle.generation, link.sent));
                }
            }
        }
        self.waiting.push(Waiter { until, reply: msg.reply });
        self.release();
    }
}

/// To a session whose SUBSCRIBE waited for the peers (`Want`): they have
/// taken its names; confirm them and go on.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PeersTook;

/// From a session: these subscriptions have ended here.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unwant {
    pub kind: Interest,
    pub names: Vec<Bytes>,
}

impl Handler<Unwant> for Mesh {
    type Result = ();

    fn handle(&mut self, msg: Unwant, _: &mut Context<Self>) {
        let last: Vec<Bytes> = msg.names.into_iter().filter(|n| self.local.unwant(msg.kind, n.clone())).collect();
        self.figures.announced.store(self.local.len(), Ordering::Relaxed);
        if last.is_empty() {
            return;
        }
        let verb = if msg.kind == Interest::Channel { "UNSUB" } else { "PUNSUB" };
        let frame = Mesh::interest_frame(verb, last);
        for peer in self.topology.peers().collect::<Vec<_>>() {
            self.announce(peer, frame.clone());
        }
    }
}

/// From a publishing session: classic publishes (channel, message), in
/// the order they were published.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Forward(pub Vec<(Bytes, Bytes)>);

impl Handler<Forward> for Mesh {
    type Result = ();

    fn handle(&mut self, msg: Forward, _: &mut Context<Self>) {
        if self.remote.is_empty() {
            return;
        }
        // Each peer's publishes of the run, in order, go as one write to
        // its link (one channel send, not one per publish).
        let mut by_peer: smallvec::SmallVec<[(Peer, BytesMut, u64); 4]> = smallvec::SmallVec::new();
        let mut frame = BytesMut::new();
        for (channel, message) in msg.0 {
            let peers = self.remote.peers_for(&channel);
            if peers.is_empty() {
                continue;
            }
            frame.clear();
            command_into([Bytes::from_static(b"PUB"), channel, message], &mut frame);
            for peer in peers {
                match by_peer.iter_mut().find(|(p, ..)| *p == peer) {
                    Some((_, out, n)) => {
                        out.extend_from_slice(&frame);
                        *n += 1;
                    }
                    None => by_peer.push((peer, BytesMut::from(&frame[..]), 1)),
                }
            }
        }
        for (peer, out, n) in by_peer {
            let figure = if self.send(peer, out.freeze()) { &self.figures.forwarded } else { &self.figures.dropped };
            figure.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// From a link's far end on this node: what a peer wants. `taken` is
/// answered once it is applied *and* this node's own link to the peer is
/// up, so what is published here from then on can reach the peer (the far
/// end answers the peer then, or after `cluster-node-timeout` at most).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PeerWants {
    pub peer: Peer,
    pub change: Change,
    pub taken: oneshot::Sender<()>,
}

pub(crate) enum Change {
    /// The peer opened a new link: what it wanted before is forgotten
    /// (it announces everything again on the new link).
    Reset,
    Add(Interest, Vec<Bytes>),
    Remove(Interest, Vec<Bytes>),
}

impl Handler<PeerWants> for Mesh {
    type Result = ();

    fn handle(&mut self, msg: PeerWants, _: &mut Context<Self>) {
        self.figures.received.fetch_add(1, Ordering::Relaxed);
        match msg.change {
            Change::Reset => self.remote.clear(msg.peer),
            Change::Add(kind, names) => names.into_iter().for_each(|n| self.remote.add(msg.peer, kind, n)),
            Change::Remove(kind, names) => names.iter().for_each(|n| self.remote.remove(msg.peer, kind, n)),
        }
        // Before the answer (`taken`): see `Hub::peers_want_anything`.
        self.figures.wanted_by_peers.store(self.remote.len(), Ordering::SeqCst);
        match self.links[msg.peer] {
            Some(_) => {
                let _ = msg.taken.send(());
            }
            None => self.unanswered[msg.peer].push(msg.taken),
        }
    }
}

/// From a link task: the link to `peer` is up; announce this node.
#[derive(Message)]
#[rtype(result = "()")]
struct LinkUp {
    peer: Peer,
    handle: LinkHandle,
}

impl Handler<LinkUp> for Mesh {
    type Result = ();

    fn handle(&mut self, msg: LinkUp, _: &mut Context<Self>) {
        let peer = msg.peer;
        self.links[peer] = Some(Outbound { handle: msg.handle, sent: 0, answered: 0 });
        self.figures.up[peer].store(true, Ordering::Relaxed);
        tracing::info!(peer = %self.topology.nodes[peer].addr, "cluster link up");
        for taken in std::mem::take(&mut self.unanswered[peer]) {
            let _ = taken.send(());
        }
        let me = Bytes::from(self.topology.myself().id.clone());
        self.announce(peer, command([Bytes::from_static(b"HELLO"), me]));
        let (mut channels, mut patterns) = (Vec::new(), Vec::new());
        for (kind, name) in self.local.all() {
            match kind {
                Interest::Channel => channels.push(name.clone()),
                Interest::Pattern => patterns.push(name.clone()),
            }
        }
        // In bounded batches, so no one frame is huge.
        for chunk in channels.chunks(1024) {
            self.announce(peer, Mesh::interest_frame("SUB", chunk.iter().cloned()));
        }
        for chunk in patterns.chunks(1024) {
            self.announce(peer, Mesh::interest_frame("PSUB", chunk.iter().cloned()));
        }
    }
}

/// From a link task: the link of `generation` to `peer` is gone.
#[derive(Message)]
#[rtype(result = "()")]
struct LinkDown {
    peer: Peer,
    generation: u64,
}

impl Handler<LinkDown> for Mesh {
    type Result = ();

    fn handle(&mut self, msg: LinkDown, _: &mut Context<Self>) {
        if self.links[msg.peer].as_ref().is_some_and(|l| l.handle.generation == msg.generation) {
            tracing::info!(peer = %self.topology.nodes[msg.peer].addr, "cluster link down");
            self.down(msg.peer);
        }
    }
}

/// From a link task: the peer answered one more announcement.
#[derive(Message)]
#[rtype(result = "()")]
struct Answered {
    peer: Peer,
    generation: u64,
}

impl Handler<Answered> for Mesh {
    type Result = ();

    fn handle(&mut self, msg: Answered, _: &mut Context<Self>) {
        if let Some(link) = self.links[msg.peer].as_mut().filter(|l| l.handle.generation == msg.generation) {
            link.answered += 1;
            self.release();
        }
    }
}
