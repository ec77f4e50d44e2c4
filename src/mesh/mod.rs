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
//! The peers follow the topology (`Retopology`): a node that joins gets a
//! link, a node that leaves loses its link and what it wanted. A peer
//! keeps its index for the Mesh's life, so a node that comes back is the
//! same peer.
//!
//! What it deliberately does not know: sessions, tokens, frames, slots. A
//! peer is an index; what crosses is a channel and a message.

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

use crate::cluster::{MeshFigures, NodeAddr, Topology};
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
    /// This node's id, as it says HELLO.
    me: String,
    figures: Arc<MeshFigures>,
    remote: RemoteInterest,
    local: LocalInterest,
    /// Every node this Mesh has had as a peer, by `Peer` index.
    peers: Vec<PeerNode>,
    /// SUBSCRIBEs waiting for peers to answer their announcements.
    waiting: Vec<Waiter>,
    node_timeout: Duration,
    sendbuf_limit: usize,
    dial: Dialer,
    /// Link tasks started, so each task's generations are its own.
    tasks_started: u64,
}

/// A peer node and its outbound link.
struct PeerNode {
    id: String,
    addr: NodeAddr,
    /// The task keeping its link up, while the node is in the topology.
    task: Option<tokio::task::JoinHandle<()>>,
    /// The link while it is up.
    link: Option<Outbound>,
    /// Its announcements applied here while this node's link to it was
    /// down: answered when it comes up.
    unanswered: Vec<oneshot::Sender<()>>,
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
    /// A Mesh for `topology`'s node; its links start with the actor.
    pub(crate) fn new(
        topology: &Topology,
        figures: Arc<MeshFigures>,
        node_timeout: Duration,
        sendbuf_limit: usize,
        dial: Dialer,
    ) -> Mesh {
        let peers = topology
            .peers()
            .map(|i| &topology.nodes[i])
            .map(|n| PeerNode {
                id: n.id.clone(),
                addr: n.addr.clone(),
                task: None,
                link: None,
                unanswered: Vec::new(),
            })
            .collect();
        Mesh {
            me: topology.myself().id.clone(),
            figures,
            remote: RemoteInterest::default(),
            local: LocalInterest::default(),
            peers,
            waiting: Vec::new(),
            node_timeout,
            sendbuf_limit,
            dial,
            tasks_started: 0,
        }
    }

    /// The peers in the topology now.
    fn members(&self) -> Vec<Peer> {
        (0..self.peers.len()).filter(|&p| self.peers[p].task.is_some()).collect()
    }

    /// Starts the task keeping `peer`'s link up.
    fn start_link(&mut self, peer: Peer, mesh: Addr<Mesh>) {
        self.tasks_started += 1;
        let node = &mut self.peers[peer];
        let (timeout, dial, figures) = (self.node_timeout, self.dial.clone(), self.figures.clone());
        let task = link::spawn(peer, node.addr.clone(), mesh, timeout, dial, figures, self.tasks_started);
        node.task = Some(task);
    }

    /// Sends `frame`, `messages` bus messages, on `peer`'s link, if up. A
    /// link over its send buffer limit is closed (its queue dropped,
    /// counted) and opens again.
    fn send(&mut self, peer: Peer, frame: Bytes, messages: u64) -> bool {
        let Some(link) = &self.peers[peer].link else { return false };
        if self.sendbuf_limit > 0 && link.handle.queued() + frame.len() > self.sendbuf_limit {
            tracing::warn!(peer = %self.peers[peer].addr, "link over cluster-link-sendbuf-limit: closed");
            self.figures.limit_exceeded.fetch_add(1, Ordering::Relaxed);
            self.down(peer);
            return false;
        }
        link.handle.send(frame);
        self.figures.sent.fetch_add(messages, Ordering::Relaxed);
        true
    }

    /// Sends an announcement expecting an answer; its count on the link.
    fn announce(&mut self, peer: Peer, frame: Bytes) -> Option<u64> {
        if !self.send(peer, frame, 1) {
            return None;
        }
        let link = self.peers[peer].link.as_mut()?;
        link.sent += 1;
        Some(link.sent)
    }

    fn down(&mut self, peer: Peer) {
        if let Some(link) = self.peers[peer].link.take() {
            link.handle.close();
        }
        self.figures.set_up(&self.peers[peer].id, None);
        self.release();
    }

    /// Confirms every waiter whose peers have all answered or gone.
    fn release(&mut self) {
        let peers = &self.peers;
        let answered = |&(peer, generation, count): &(Peer, u64, u64)| match &peers[peer].link {
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
        for peer in 0..self.peers.len() {
            self.start_link(peer, ctx.address());
        }
    }
}

/// The topology changed (a membership source's new map): link to the
/// nodes that joined, drop the nodes that left.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Retopology(pub Arc<Topology>);

impl Handler<Retopology> for Mesh {
    type Result = ();

    fn handle(&mut self, msg: Retopology, ctx: &mut Context<Self>) {
        if crate::planted::planted(crate::planted::Bug::StaticMesh) {
            return;
        }
        let t = msg.0;
        let now: Vec<&crate::cluster::Node> = t.peers().map(|i| &t.nodes[i]).collect();
        for peer in 0..self.peers.len() {
            let stays = now.iter().any(|n| n.id == self.peers[peer].id && n.addr == self.peers[peer].addr);
            if !stays {
                if let Some(task) = self.peers[peer].task.take() {
                    tracing::info!(peer = %self.peers[peer].addr, "cluster node left");
                    task.abort();
                    // Their answers go with the link: nothing waits for
                    // a node that is gone.
                    self.peers[peer].unanswered.clear();
                    self.remote.clear(peer);
                    self.down(peer);
                }
            }
        }
        for node in now {
            let peer = match self.peers.iter().position(|p| p.id == node.id) {
                Some(peer) => {
                    self.peers[peer].addr = node.addr.clone();
                    peer
                }
                None => {
                    let (id, addr) = (node.id.clone(), node.addr.clone());
                    self.peers.push(PeerNode { id, addr, task: None, link: None, unanswered: Vec::new() });
                    self.peers.len() - 1
                }
            };
            if self.peers[peer].task.is_none() {
                tracing::info!(peer = %node.addr, "cluster node joined");
                self.start_link(peer, ctx.address());
            }
        }
        self.figures.wanted_by_peers.store(self.remote.len(), Ordering::SeqCst);
    }
}

/// From a link's far end: the node that says HELLO with `id`, if it is a
/// peer now.
#[derive(Message)]
#[rtype(result = "Option<Peer>")]
pub(crate) struct Hello {
    pub id: Bytes,
}

impl Handler<Hello> for Mesh {
    type Result = Option<Peer>;

    fn handle(&mut self, msg: Hello, _: &mut Context<Self>) -> Option<Peer> {
        self.peers.iter().position(|p| p.task.is_some() && p.id.as_bytes() == &msg.id[..])
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
            for peer in self.members() {
                if let Some(count) = self.announce(peer, frame.clone()) {
                    let generation = self.peers[peer].link.as_ref().map_or(0, |l| l.handle.generation);
                    until.push((peer, generation, count));
                }
            }
        } else {
            // Announced before, perhaps not yet answered: wait for what is
            // outstanding on each link.
            for (peer, node) in self.peers.iter().enumerate() {
                if let Some(link) = node.link.as_ref().filter(|l| l.answered < l.sent) {
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
        for peer in self.members() {
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
            let figure = if self.send(peer, out.freeze(), n) { &self.figures.forwarded } else { &self.figures.dropped };
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
        if self.peers[msg.peer].task.is_none() {
            return; // It left the topology; its link end is stale.
        }
        match msg.change {
            Change::Reset => self.remote.clear(msg.peer),
            Change::Add(kind, names) => names.into_iter().for_each(|n| self.remote.add(msg.peer, kind, n)),
            Change::Remove(kind, names) => names.iter().for_each(|n| self.remote.remove(msg.peer, kind, n)),
        }
        // Before the answer (`taken`): see `Hub::peers_want_anything`.
        self.figures.wanted_by_peers.store(self.remote.len(), Ordering::SeqCst);
        match self.peers[msg.peer].link {
            Some(_) => {
                let _ = msg.taken.send(());
            }
            None => self.peers[msg.peer].unanswered.push(msg.taken),
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
        if self.peers[peer].task.is_none() {
            return; // A task stopped as its node left: the handle closes.
        }
        self.figures.set_up(&self.peers[peer].id, Some(msg.handle.figures()));
        self.peers[peer].link = Some(Outbound { handle: msg.handle, sent: 0, answered: 0 });
        tracing::info!(peer = %self.peers[peer].addr, "cluster link up");
        for taken in std::mem::take(&mut self.peers[peer].unanswered) {
            let _ = taken.send(());
        }
        let me = Bytes::from(self.me.clone());
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
        if self.peers[msg.peer].link.as_ref().is_some_and(|l| l.handle.generation == msg.generation) {
            tracing::info!(peer = %self.peers[msg.peer].addr, "cluster link down");
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
        if let Some(link) = self.peers[msg.peer].link.as_mut().filter(|l| l.handle.generation == msg.generation) {
            link.answered += 1;
            self.release();
        }
    }
}
