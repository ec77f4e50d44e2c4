//! Cluster mode: one client for a Herald (or Redis) cluster. Shard
//! channels are routed to the node serving their slot, `-MOVED` is
//! followed (a refused command did not run, so sending it again cannot
//! deliver it twice), and a subscriber spanning several nodes reads one
//! merged stream in which each node's connection keeps its own gap events.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::pubsub::{Event, Kind, PubSub};
use crate::transport::{Connector, TcpConnector};
use crate::value::Value;

const SLOTS: usize = 16384;
/// Redirections followed for one command before giving up.
const REDIRECTS: usize = 5;

/// A cluster client: cheap to clone; clones share connections and the
/// slot map.
#[derive(Clone)]
pub struct ClusterClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    connector: Arc<dyn Connector>,
    seeds: Vec<String>,
    /// The node serving each slot, as last learned (empty until known).
    owners: Mutex<Vec<Option<Arc<str>>>>,
    clients: tokio::sync::Mutex<HashMap<String, Client>>,
}

/// The slot of a shard channel (CRC16 of it or its `{hash tag}`).
pub fn slot_of(channel: &[u8]) -> u16 {
    redis_protocol::redis_keyslot(channel)
}

impl ClusterClient {
    /// Connects over TCP to the cluster one of `seeds` (`host:port`)
    /// belongs to, and learns its slot map.
    pub async fn connect<S: AsRef<str>>(seeds: &[S]) -> Result<ClusterClient> {
        let first = seeds.first().map(|s| s.as_ref().to_string()).unwrap_or_default();
        ClusterClient::with_connector(Config::new(first), Arc::new(TcpConnector), seeds).await
    }

    /// The same with settings (`addr` is ignored: the seeds are used) and
    /// a connector (TLS, the simulator's network).
    pub async fn with_connector<S: AsRef<str>>(
        config: Config,
        connector: Arc<dyn Connector>,
        seeds: &[S],
    ) -> Result<ClusterClient> {
        let client = ClusterClient::lazy(config, connector, seeds);
        client.refresh().await?;
        Ok(client)
    }

    /// A client that knows no slot yet: each command goes to the first
    /// seed and follows its redirection (as `redis-cli -c` does).
    pub fn lazy<S: AsRef<str>>(config: Config, connector: Arc<dyn Connector>, seeds: &[S]) -> ClusterClient {
        let seeds: Vec<String> = seeds.iter().map(|s| s.as_ref().to_string()).collect();
        ClusterClient {
            inner: Arc::new(Inner {
                config,
                connector,
                seeds,
                owners: Mutex::new(vec![None; SLOTS]),
                clients: Default::default(),
            }),
        }
    }

    /// Learns the slot map (CLUSTER SLOTS) from the first node that
    /// answers: a seed, or a node already known.
    pub async fn refresh(&self) -> Result<()> {
        let mut last = Error::Protocol("no seed node given".into());
        let mut candidates = self.inner.seeds.clone();
        candidates.extend(self.known_nodes());
        for addr in candidates {
            let reply = match self.node(&addr).await {
                Ok(c) => c.command(&[b"CLUSTER", b"SLOTS"]).await,
                Err(e) => Err(e),
            };
            match reply.and_then(|v| parse_slots(&v)) {
                Ok(ranges) => {
                    let mut owners = self.inner.owners.lock().expect("slot map");
                    for (first, last, addr) in ranges {
                        let addr: Arc<str> = addr.into();
                        for slot in first..=last {
                            owners[slot as usize] = Some(addr.clone());
                        }
                    }
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn known_nodes(&self) -> Vec<String> {
        let owners = self.inner.owners.lock().expect("slot map");
        let mut nodes: Vec<String> = owners.iter().flatten().map(|a| a.to_string()).collect();
        nodes.dedup();
        nodes
    }

    /// The node serving `slot` as far as this client knows (the first
    /// seed if it does not).
    pub fn node_for(&self, slot: u16) -> String {
        let owners = self.inner.owners.lock().expect("slot map");
        owners[slot as usize].as_deref().map_or_else(|| self.inner.seeds[0].clone(), str::to_string)
    }

    /// A command client for one node (kept for reuse).
    async fn node(&self, addr: &str) -> Result<Client> {
        let mut clients = self.inner.clients.lock().await;
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let config = Config { addr: addr.to_string(), ..self.inner.config.clone() };
        let client = Client::with_connector(config, self.inner.connector.clone()).await?;
        clients.insert(addr.to_string(), client.clone());
        Ok(client)
    }

    /// Sends `args` to the node serving `slot`, following `-MOVED`.
    async fn routed(&self, slot: u16, args: &[&[u8]]) -> Result<Value> {
        let mut addr = self.node_for(slot);
        for _ in 0..REDIRECTS {
            match self.node(&addr).await?.command(args).await {
                Err(Error::Server(e)) if e.starts_with("MOVED ") => addr = self.moved(&e)?,
                other => return other,
            }
        }
        Err(Error::Protocol(format!("more than {REDIRECTS} redirections")))
    }

    /// Takes a `MOVED slot host:port` in: that slot is there now.
    fn moved(&self, error: &str) -> Result<String> {
        let mut words = error.split(' ').skip(1);
        let (Some(slot), Some(addr)) = (words.next().and_then(|s| s.parse::<usize>().ok()), words.next()) else {
            return Err(Error::Protocol(format!("bad redirection: {error}")));
        };
        if slot < SLOTS {
            self.inner.owners.lock().expect("slot map")[slot] = Some(addr.into());
        }
        Ok(addr.to_string())
    }

    /// Publishes on a shard channel, at the node serving its slot; the
    /// count is that node's subscribers.
    pub async fn spublish(&self, channel: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Result<usize> {
        let channel = channel.as_ref();
        let reply = self.routed(slot_of(channel), &[b"SPUBLISH", channel, payload.as_ref()]).await?;
        reply.as_int().map(|n| n as usize).ok_or_else(|| Error::Protocol(format!("expected an integer, got {reply:?}")))
    }

    /// Publishes on a classic channel. Any node would do (every matching
    /// subscriber on every node gets it); the channel's slot picks one, so
    /// one channel's publishes from this client keep one route. The count
    /// is that node's subscribers, as in Redis Cluster.
    pub async fn publish(&self, channel: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Result<usize> {
        let channel = channel.as_ref();
        let node = self.node(&self.node_for(slot_of(channel))).await?;
        node.publish(channel, payload).await
    }

    /// A subscriber to shard `channels`, with a connection to each node
    /// serving one of their slots, read as one stream.
    pub async fn ssubscribe<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<ClusterPubSub> {
        let mut subscriber = ClusterPubSub::new(self.clone());
        for _ in 0..REDIRECTS {
            // One connection per node; one SSUBSCRIBE per slot (a command's
            // shard channels must share a slot).
            let mut by_node: BTreeMap<String, BTreeMap<u16, Vec<Bytes>>> = BTreeMap::new();
            for c in channels {
                let (c, slot) = (c.as_ref(), slot_of(c.as_ref()));
                by_node
                    .entry(self.node_for(slot))
                    .or_default()
                    .entry(slot)
                    .or_default()
                    .push(Bytes::copy_from_slice(c));
            }
            subscriber.nodes.clear();
            let mut moved = false;
            'nodes: for (addr, slots) in by_node {
                let ps = self.node(&addr).await?.pubsub().await?;
                for names in slots.values() {
                    match ps.ssubscribe(names).await {
                        Ok(()) => {}
                        Err(Error::Server(e)) if e.starts_with("MOVED ") => {
                            self.moved(&e)?;
                            // The map is stale beyond this slot, most likely.
                            self.refresh().await?;
                            moved = true;
                            break 'nodes;
                        }
                        Err(e) => return Err(e),
                    }
                }
                let names = slots.into_values().flatten().map(|n| (Kind::Shard, n)).collect();
                subscriber.nodes.push(NodeSub::new(addr, ps, names));
            }
            if !moved {
                return Ok(subscriber);
            }
        }
        Err(Error::Protocol(format!("more than {REDIRECTS} redirections")))
    }

    /// A subscriber to classic `channels`: on one node (the first
    /// channel's slot's), which receives what is published on any node.
    pub async fn subscribe<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<ClusterPubSub> {
        self.on_one_node(Kind::Channel, channels).await
    }

    /// A subscriber to `patterns`, on one node, as [`Self::subscribe`].
    pub async fn psubscribe<N: AsRef<[u8]>>(&self, patterns: &[N]) -> Result<ClusterPubSub> {
        self.on_one_node(Kind::Pattern, patterns).await
    }

    async fn on_one_node<N: AsRef<[u8]>>(&self, kind: Kind, names: &[N]) -> Result<ClusterPubSub> {
        let addr = self.node_for(names.first().map_or(0, |c| slot_of(c.as_ref())));
        let ps = self.node(&addr).await?.pubsub().await?;
        match kind {
            Kind::Pattern => ps.psubscribe(names).await?,
            _ => ps.subscribe(names).await?,
        }
        let mut subscriber = ClusterPubSub::new(self.clone());
        let names = names.iter().map(|n| (kind, Bytes::copy_from_slice(n.as_ref()))).collect();
        subscriber.nodes.push(NodeSub::new(addr, ps, names));
        Ok(subscriber)
    }

    /// Whether `names`, subscribed at `lost`, belong elsewhere now: every
    /// shard channel's slot is another node's, and some other node is
    /// known for the classic ones.
    fn moved_away(&self, names: &[(Kind, Bytes)], lost: &str) -> bool {
        let elsewhere = self.known_nodes().iter().any(|a| a != lost);
        names.iter().all(|(kind, name)| match kind {
            Kind::Shard => self.node_for(slot_of(name)) != lost,
            _ => elsewhere,
        })
    }

    /// Subscribes to `names` where each belongs now: a shard channel at
    /// its slot's node, classic ones at any node but `avoid`; one
    /// connection per node. `None` if a shard channel's slot is still
    /// `avoid`'s as far as the cluster says.
    async fn place(&self, names: &[(Kind, Bytes)], avoid: Option<&str>) -> Result<Option<Vec<NodeSub>>> {
        let elsewhere = self.known_nodes().into_iter().find(|a| Some(a.as_str()) != avoid);
        let mut by_node: BTreeMap<String, Vec<(Kind, Bytes)>> = BTreeMap::new();
        for (kind, name) in names {
            let to = match kind {
                Kind::Shard => self.node_for(slot_of(name)),
                _ => elsewhere.clone().ok_or_else(|| Error::Protocol("no other node known".into()))?,
            };
            if Some(to.as_str()) == avoid {
                return Ok(None);
            }
            by_node.entry(to).or_default().push((*kind, name.clone()));
        }
        let mut placed = Vec::new();
        for (addr, names) in by_node {
            let ps = self.node(&addr).await?.pubsub().await?;
            for (kind, name) in &names {
                match kind {
                    Kind::Shard => ps.ssubscribe(&[name]).await?,
                    Kind::Pattern => ps.psubscribe(&[name]).await?,
                    Kind::Channel => ps.subscribe(&[name]).await?,
                }
            }
            placed.push(NodeSub::new(addr, ps, names));
        }
        Ok(Some(placed))
    }
}

/// CLUSTER SLOTS: `[first, last, [host, port, id, …], …]` per range; the
/// master (the first node) of each.
fn parse_slots(reply: &Value) -> Result<Vec<(u16, u16, String)>> {
    let bad = || Error::Protocol(format!("unexpected CLUSTER SLOTS reply: {reply:?}"));
    let ranges = reply.items().ok_or_else(bad)?;
    ranges
        .iter()
        .map(|range| {
            let items = range.items().ok_or_else(bad)?;
            let (first, last) = (items.first().and_then(Value::as_int), items.get(1).and_then(Value::as_int));
            let master = items.get(2).and_then(Value::items).ok_or_else(bad)?;
            let host = master.first().and_then(Value::as_bytes).map(|h| String::from_utf8_lossy(h).into_owned());
            let port = master.get(1).and_then(Value::as_int);
            match (first, last, host, port) {
                (Some(f), Some(l), Some(h), Some(p)) if f <= l && (l as usize) < SLOTS => {
                    Ok((f as u16, l as u16, format!("{h}:{p}")))
                }
                _ => Err(bad()),
            }
        })
        .collect()
}

/// A subscriber across nodes: each node's [`PubSub`] (its own reconnects
/// and gap events), read as one stream. Messages of one shard channel come
/// from one node, in that node's order.
///
/// When a node ends a shard subscription unasked (its slot moved), the
/// stream says `Disconnected`, learns the slot map again, subscribes at
/// the slot's new node, and says `Reconnected` before any message from
/// there: the gap is announced, as for a lost connection (SPEC §6.2).
pub struct ClusterPubSub {
    nodes: Vec<NodeSub>,
    /// Which node is polled first next time, so none starves the others.
    next: usize,
    client: ClusterClient,
    /// Subscriptions re-made at a slot's new node, as they complete.
    moved_tx: mpsc::UnboundedSender<Result<Moved>>,
    moved: mpsc::UnboundedReceiver<Result<Moved>>,
    /// Re-subscriptions under way.
    moving: usize,
}

/// One node's connection and what it is subscribed to there.
struct NodeSub {
    addr: String,
    subscriber: PubSub,
    names: Vec<(Kind, Bytes)>,
}

impl NodeSub {
    fn new(addr: String, subscriber: PubSub, names: Vec<(Kind, Bytes)>) -> NodeSub {
        NodeSub { addr, subscriber, names }
    }
}

/// Subscriptions re-made: a shard channel at its slot's new node,
/// everything a lost node had at other nodes, or the lost node back by
/// itself (its own `Reconnected`, passed on).
struct Moved {
    placed: Vec<NodeSub>,
    event: Event,
}

/// How long a lost node's subscriptions wait between looks at the slot
/// map, at first and at most.
const RELOCATE_FIRST: Duration = Duration::from_millis(50);
const RELOCATE_MAX: Duration = Duration::from_secs(1);

impl ClusterPubSub {
    fn new(client: ClusterClient) -> ClusterPubSub {
        let (moved_tx, moved) = mpsc::unbounded_channel();
        ClusterPubSub { nodes: Vec::new(), next: 0, client, moved_tx, moved, moving: 0 }
    }

    /// Subscribes to `name` again wherever its slot is now.
    fn follow(&mut self, name: Bytes) {
        let (client, done, since) = (self.client.clone(), self.moved_tx.clone(), Instant::now());
        self.moving += 1;
        tokio::spawn(async move {
            let moved = async {
                client.refresh().await?;
                let mut again = client.ssubscribe(&[name]).await?;
                let placed = again.nodes.drain(..).collect();
                Ok(Moved { placed, event: Event::Reconnected { attempts: 1, down_for: since.elapsed() } })
            };
            let _ = done.send(moved.await);
        });
    }

    /// Node `i`'s connection is lost (its `Disconnected` is passed on).
    /// The node is taken out of the stream and watched by a task: if its
    /// own reconnection succeeds first, it comes back as it was; if the
    /// slot map (asked of the seeds and the nodes known) shows its shard
    /// channels' slots served elsewhere first (a failover), it is dropped
    /// and everything it had is subscribed again there, its classic
    /// subscriptions at any other node. It is dropped before anything is
    /// subscribed again, so nothing is received twice.
    fn relocate(&mut self, i: usize) {
        let mut node = self.nodes.remove(i);
        let (client, done, since) = (self.client.clone(), self.moved_tx.clone(), Instant::now());
        self.moving += 1;
        tokio::spawn(async move {
            let mut wait = RELOCATE_FIRST;
            let mut attempts = 0;
            loop {
                tokio::select! {
                    event = node.subscriber.next() => match event {
                        Some(Ok(event @ Event::Reconnected { .. })) => {
                            let _ = done.send(Ok(Moved { placed: vec![node], event }));
                            return;
                        }
                        Some(_) => continue,
                        None => {
                            let _ = done.send(Err(Error::Protocol(format!("{} subscriber ended", node.addr))));
                            return;
                        }
                    },
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(RELOCATE_MAX);
                attempts += 1;
                if client.refresh().await.is_err() || !client.moved_away(&node.names, &node.addr) {
                    continue;
                }
                let names = std::mem::take(&mut node.names);
                let lost = std::mem::take(&mut node.addr);
                drop(node);
                loop {
                    match client.place(&names, Some(&lost)).await {
                        Ok(Some(placed)) => {
                            let event = Event::Reconnected { attempts, down_for: since.elapsed() };
                            let _ = done.send(Ok(Moved { placed, event }));
                            return;
                        }
                        Ok(None) | Err(_) => {
                            tokio::time::sleep(wait).await;
                            let _ = client.refresh().await;
                        }
                    }
                }
            }
        });
    }

    /// The nodes subscribed at (`host:port`).
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.addr.as_str())
    }

    /// The next event from any node; `None` once every node's subscriber
    /// has stopped.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next_event(cx)).await
    }

    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event>>> {
        // A re-made subscription first: its Reconnected before its messages.
        if let Poll::Ready(Some(moved)) = self.moved.poll_recv(cx) {
            self.moving -= 1;
            return Poll::Ready(Some(moved.map(|m| {
                self.nodes.extend(m.placed);
                m.event
            })));
        }
        let n = self.nodes.len();
        let mut ended = 0;
        for k in 0..n {
            let i = (self.next + k) % n;
            match futures_core::Stream::poll_next(Pin::new(&mut self.nodes[i].subscriber), cx) {
                Poll::Ready(Some(Ok(Event::Unsubscribed { kind: Kind::Shard, name }))) => {
                    self.next = (i + 1) % n;
                    let reason = format!(
                        "{} ended shard channel {} (its slot moved)",
                        self.nodes[i].addr,
                        String::from_utf8_lossy(&name)
                    );
                    self.nodes[i].names.retain(|(kind, n)| !(*kind == Kind::Shard && n == &name));
                    self.follow(name);
                    return Poll::Ready(Some(Ok(Event::Disconnected { reason })));
                }
                Poll::Ready(Some(Ok(Event::Disconnected { reason }))) => {
                    self.next = 0;
                    self.relocate(i);
                    return Poll::Ready(Some(Ok(Event::Disconnected { reason })));
                }
                Poll::Ready(Some(event)) => {
                    self.next = (i + 1) % n;
                    return Poll::Ready(Some(event));
                }
                Poll::Ready(None) => ended += 1,
                Poll::Pending => {}
            }
        }
        if ended == n && self.moving == 0 {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl futures_core::Stream for ClusterPubSub {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Event>>> {
        self.poll_next_event(cx)
    }
}

#[cfg(test)]
mod tests {
    //! `ClusterPubSub` following a slot that moves, against two fake nodes
    //! (Herald's own clusters cannot move a slot yet: their topology is
    //! fixed at start).

    use std::sync::Mutex as StdMutex;

    use redis_protocol::resp2::decode::decode;
    use redis_protocol::resp2::types::OwnedFrame;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Notify;

    use super::*;
    use std::time::Duration;

    /// Which port serves every slot, shared by the fake nodes.
    type Owner = Arc<StdMutex<u16>>;

    fn words(frame: OwnedFrame) -> Vec<String> {
        match frame {
            OwnedFrame::Array(items) => items
                .into_iter()
                .filter_map(|f| match f {
                    OwnedFrame::BulkString(b) => Some(String::from_utf8_lossy(&b).to_uppercase()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// One connection to a fake node: HELLO, CLUSTER SLOTS (all at the
    /// owner), PING, SSUBSCRIBE (confirmed; node B then publishes
    /// `hello`; node A, once kicked, moves the slot to B and ends the
    /// subscription unasked).
    async fn serve(mut conn: TcpStream, owner: Owner, kick: Option<(Arc<Notify>, u16)>, greet: bool) {
        let mut buf = Vec::new();
        let mut subscribed = None::<String>;
        loop {
            while let Ok(Some((frame, len))) = decode(&buf) {
                buf.drain(..len);
                let w = words(frame);
                let reply = match w.first().map(String::as_str) {
                    Some("HELLO") => "+OK\r\n".to_string(),
                    Some("PING") => "+PONG\r\n".to_string(),
                    Some("CLUSTER") => {
                        let port = *owner.lock().unwrap();
                        format!("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:{port}\r\n")
                    }
                    Some("SSUBSCRIBE") => {
                        let name = w[1].to_lowercase();
                        let mut out = format!("*3\r\n$10\r\nssubscribe\r\n${}\r\n{name}\r\n:1\r\n", name.len());
                        if greet {
                            out += &format!("*3\r\n$8\r\nsmessage\r\n${}\r\n{name}\r\n$5\r\nhello\r\n", name.len());
                        }
                        subscribed = Some(name);
                        out
                    }
                    _ => "-ERR unknown\r\n".to_string(),
                };
                if conn.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
            let kicked = async {
                match (&kick, &subscribed) {
                    (Some((kick, to)), Some(_)) => {
                        kick.notified().await;
                        *to
                    }
                    _ => std::future::pending().await,
                }
            };
            let mut chunk = [0u8; 4096];
            tokio::select! {
                n = conn.read(&mut chunk) => match n {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                },
                to = kicked => {
                    let name = subscribed.take().expect("subscribed");
                    *owner.lock().unwrap() = to;
                    let out = format!("*3\r\n$12\r\nsunsubscribe\r\n${}\r\n{name}\r\n:0\r\n", name.len());
                    if conn.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn fake_node(owner: Owner, kick: Option<(Arc<Notify>, u16)>, greet: bool) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, owner.clone(), kick.clone(), greet));
            }
        });
        port
    }

    #[tokio::test]
    async fn a_moved_slot_is_followed_with_a_gap_signal() {
        let owner: Owner = Arc::new(StdMutex::new(0));
        let kick = Arc::new(Notify::new());
        // B greets every shard subscriber; A, once kicked, hands the slot
        // to B and ends its subscriber's subscription unasked.
        let b = fake_node(owner.clone(), None, true).await;
        let a = fake_node(owner.clone(), Some((kick.clone(), b)), false).await;
        *owner.lock().unwrap() = a;
        let client = ClusterClient::connect(&[format!("127.0.0.1:{a}")]).await.unwrap();
        let mut sub = client.ssubscribe(&["x"]).await.unwrap();
        assert_eq!(sub.nodes().collect::<Vec<_>>(), [format!("127.0.0.1:{a}")]);
        kick.notify_one();
        async fn next(sub: &mut ClusterPubSub) -> Event {
            tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("an event").unwrap().unwrap()
        }
        let first = next(&mut sub).await;
        assert!(matches!(&first, Event::Disconnected { reason } if reason.contains("slot moved")), "{first:?}");
        let second = next(&mut sub).await;
        assert!(matches!(second, Event::Reconnected { .. }), "{second:?}");
        let third = next(&mut sub).await;
        assert!(
            matches!(&third, Event::Message(m) if &m.payload[..] == b"hello" && m.kind == Kind::Shard),
            "{third:?}"
        );
        assert!(sub.nodes().any(|n| n == format!("127.0.0.1:{b}")));
    }
}
