//! Accepting connections. The transport is the only thing that differs
//! between production (tokio TCP, sessions spread over arbiters) and the
//! simulator (turmoil TCP, one host): both hand streams to [`Server::accept`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::tls::TlsAcceptor;

use actix_rt::{Arbiter, System};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::broker::{ClientId, Placement};
use crate::config::open_files::{self, Fit};
use crate::config::Config;
use crate::hub::Hub;
use crate::registry::DrainAll;
use crate::session::{Origin, Session};

/// A running hub plus the counter that names new connections.
pub struct Server {
    /// Shared by every session (each holding a copy was 200 bytes of
    /// addresses and counters, and three actix address clones at 72 bytes
    /// of allocations each, per connection).
    pub(crate) hub: Arc<Hub>,
    /// What a session starts with (the registry's own copy replaces it
    /// when the session registers).
    settings: Arc<Config>,
    placement: Placement,
    next_id: ClientId,
    /// Peer links accepted (they are spread over the arbiters too).
    peer_links: usize,
}

impl Server {
    /// Starts the hub's actors on `placement`.
    pub fn start(config: Config, placement: Placement) -> Server {
        Server::start_with_dialer(config, placement, crate::mesh::tcp_dialer())
    }

    /// The same, reaching cluster peers through `dial` (the simulator's
    /// network instead of TCP).
    pub fn start_with_dialer(config: Config, placement: Placement, dial: crate::mesh::Dialer) -> Server {
        let hub = Arc::new(Hub::start(config.clone(), &placement, dial));
        let settings = Arc::new(config);
        Server { hub, settings, placement, next_id: 0, peer_links: 0 }
    }

    /// Cluster mode with a membership source (`cluster-etcd` set: this
    /// node starts with no slot): this node joins the members `store`
    /// keeps (the simulator's stand-in for etcd), with a `ttl` lease, on
    /// the current thread.
    pub fn join_membership<S: crate::membership::MembershipStore>(&self, store: S, ttl: Duration) -> crate::Membership {
        crate::membership::start(store, (*self.hub).clone(), ttl)
    }

    /// What this node serves now, readable from outside its actors (the
    /// simulator's checks).
    pub fn serving(&self) -> Serving {
        Serving(self.hub.cluster.as_ref().map(|c| c.topology.clone()))
    }

    fn next_id(&mut self) -> ClientId {
        self.next_id += 1;
        self.next_id
    }

    /// Starts a session for `stream` on the current thread (the simulator's
    /// host, or a single-threaded server).
    pub fn accept_local<S>(&mut self, stream: S, peer: String, local: String)
    where
        S: AsyncRead + AsyncWrite + 'static,
    {
        let id = self.next_id();
        tracing::debug!(client = id, addr = %peer, "accepted");
        // Round robin over the slots, as `accept` spreads connections.
        let slot = match &self.placement {
            Placement::Hosts(hosts) => id as usize % hosts.len(),
            Placement::Local | Placement::Arbiters(_) => 0,
        };
        let origin = Origin { id, peer, local, slot };
        Session::start(origin, stream, self.hub.clone(), self.settings.clone());
    }

    /// Starts a session for an accepted TCP connection on one of the worker
    /// arbiters, round robin, after its TLS handshake if `tls` is given.
    ///
    /// The socket is registered with the chosen arbiter's own reactor: a
    /// socket left on the accepting thread's reactor would cost a
    /// cross-thread wakeup (an eventfd write and an extra epoll_wait) for
    /// every readiness event.
    pub fn accept(&mut self, stream: std::net::TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
        let id = self.next_id();
        tracing::debug!(client = id, addr = %peer, "accepted");
        let (hub, config) = (self.hub.clone(), self.settings.clone());
        let (slot, arbiter) = match &self.placement {
            Placement::Arbiters(arbiters) => {
                let slot = id as usize % arbiters.len();
                (slot, Some(arbiters[slot].clone()))
            }
            Placement::Hosts(hosts) => (id as usize % hosts.len(), None),
            Placement::Local => (0, None),
        };
        let start = async move {
            let stream = match TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(e) => return tracing::warn!(addr = %peer, error = %e, "could not register a connection"),
            };
            let local = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let origin = Origin { id, peer: peer.to_string(), local, slot };
            let Some(acceptor) = tls else {
                Session::start(origin, stream, hub, config);
                return;
            };
            match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    Session::start(origin, stream, hub, config);
                }
                Ok(Err(e)) => tracing::info!(addr = %peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::info!(addr = %peer, "TLS handshake timed out"),
            }
        };
        match arbiter {
            Some(arbiter) => {
                arbiter.spawn(start);
            }
            None => {
                actix_rt::spawn(start);
            }
        }
    }
}

impl Server {
    /// Serves a peer node's link (cluster mode) on the current thread (the
    /// simulator's host).
    pub fn accept_peer_local<S>(&mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        if let Some(serve) = self.hub.serve_peer(stream) {
            actix_rt::spawn(serve);
        }
    }

    /// Serves a peer node's link (cluster mode), on one of the worker
    /// arbiters, round robin with the sessions.
    pub(crate) fn accept_peer(&mut self, stream: std::net::TcpStream) {
        if self.hub.cluster.is_none() {
            return;
        }
        let hub = self.hub.clone();
        self.peer_links += 1;
        let n = self.peer_links;
        let serve = async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    if let Some(serve) = hub.serve_peer(stream) {
                        serve.await
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not register a cluster link"),
            }
        };
        match &self.placement {
            Placement::Arbiters(arbiters) => {
                arbiters[n % arbiters.len()].spawn(serve);
            }
            Placement::Hosts(_) | Placement::Local => {
                actix_rt::spawn(serve);
            }
        }
    }
}

/// A view of the slots a node serves (cluster mode), as its sessions see
/// them.
#[derive(Clone)]
pub struct Serving(Option<tokio::sync::watch::Receiver<std::sync::Arc<crate::cluster::Topology>>>);

impl Serving {
    /// Whether the node serves `slot` now (owns it and is not fenced).
    pub fn serves(&self, slot: u16) -> bool {
        self.0.as_ref().is_some_and(|t| t.borrow().serves(slot))
    }

    /// The epoch of the map in force.
    pub fn epoch(&self) -> u64 {
        self.0.as_ref().map_or(0, |t| t.borrow().epoch)
    }

    /// Whether the node is fenced (SPEC §9.7).
    pub fn fenced(&self) -> bool {
        self.0.as_ref().is_some_and(|t| t.borrow().fenced)
    }
}

/// How long a shutdown waits for clients to take what was queued for them.
pub(crate) const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// The sockets Herald accepts on: plain TCP (`port`) and TLS (`tls-port`),
/// each on every `bind` address.
#[derive(Default)]
pub struct Listeners {
    pub plain: Vec<std::net::TcpListener>,
    pub tls: Vec<std::net::TcpListener>,
    /// For the TLS listeners.
    pub acceptor: Option<TlsAcceptor>,
    /// Cluster mode: the bus port, where peer nodes connect.
    pub bus: Vec<std::net::TcpListener>,
}

/// Runs Herald on `listener` with `threads` worker arbiters until SHUTDOWN:
/// the integration tests' entry point.
pub fn run_tcp(listener: std::net::TcpListener, config: Config, threads: usize) -> std::io::Result<()> {
    let listeners = Listeners { plain: vec![listener], ..Default::default() };
    run_until(listeners, config, threads, std::future::pending())
}

/// A connection accepted on one of the listeners, and whether it was a
/// TLS one.
type Accepted = (std::io::Result<(TcpStream, SocketAddr)>, bool);

/// Accepts on every listener at once, in a task per listener, until
/// `accepted` is dropped.
fn accept_all(listeners: Vec<(TcpListener, bool)>) -> tokio::sync::mpsc::Receiver<Accepted> {
    let (to, accepted) = tokio::sync::mpsc::channel(64);
    for (listener, tls) in listeners {
        let to = to.clone();
        actix_rt::spawn(async move {
            loop {
                let next = listener.accept().await;
                let pause = next.as_ref().err().is_some_and(|e| !refused_by_the_client(e));
                if to.send((next, tls)).await.is_err() {
                    return;
                }
                if pause {
                    // Out of descriptors (or memory): the listener stays
                    // readable while none can be had, so accepting again
                    // at once spins a core (measured: 65 % of one and a
                    // million log lines a second, with the clients never
                    // answered). They wait in the backlog meanwhile.
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            }
        });
    }
    accepted
}

/// How long accepting stops after a failure that is the system's, not the
/// client's.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// An accept that failed for that one connection only (it was reset
/// before it was taken): the next can be taken at once.
fn refused_by_the_client(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted)
}

/// A TLS client gets this long to finish its handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// Runs Herald until SHUTDOWN or until `stop` completes (the binary passes
/// SIGTERM/SIGINT), then shuts down gracefully: stops accepting, lets every
/// client's queued output drain (10 s at most), closes them
/// and returns.
pub fn run_until(
    listeners: Listeners,
    config: Config,
    threads: usize,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut config = config;
    let reserved = open_files::reserved(threads.max(1), config.cluster.nodes.len().saturating_sub(1));
    match open_files::fit_process(config.maxclients, reserved) {
        Fit::Fits => {}
        Fit::Lowered { maxclients, .. } => config.maxclients = maxclients,
        Fit::TooLow { limit, needed } => {
            return Err(std::io::Error::other(format!(
                "the open-files limit ({limit}) is not enough to start: raise it to at least {needed} (ulimit -n)"
            )))
        }
    }
    let system = System::new();
    let arbiters: Vec<Arbiter> = (0..threads.max(1)).map(|_| Arbiter::new()).collect();
    let handles = arbiters.iter().map(Arbiter::handle).collect();
    system.block_on(async move {
        let acceptor = listeners.acceptor;
        let mut all = Vec::new();
        for (listener, tls) in
            listeners.plain.into_iter().map(|l| (l, false)).chain(listeners.tls.into_iter().map(|l| (l, true)))
        {
            let listener = from_std(listener)?;
            let kind = if tls { "tls" } else { "tcp" };
            tracing::info!(local = %listener.local_addr()?, kind, threads, "Herald ready to accept connections");
            all.push((listener, tls));
        }
        let mut incoming = accept_all(all);
        let (keepalive, metrics_port) = (config.tcp_keepalive, config.metrics_port);
        let settings = config.cluster.clone();
        let mut server = Server::start(config, Placement::Arbiters(handles));
        let hub = (*server.hub).clone();
        #[cfg(feature = "etcd")]
        let membership = (!settings.etcd.is_empty()).then(|| {
            crate::membership::start_etcd(settings.etcd.clone(), settings.name.clone(), hub.clone(), settings.lease_ttl)
        });
        #[cfg(not(feature = "etcd"))]
        let membership: Option<crate::membership::Membership> = None;
        let mut bus = Vec::new();
        for listener in listeners.bus {
            let listener = from_std(listener)?;
            tracing::info!(local = %listener.local_addr()?, "cluster bus ready");
            bus.push((listener, false));
        }
        let mut peers = accept_all(bus);
        if metrics_port != 0 {
            let mesh = hub.cluster.as_ref().map(|c| c.figures.clone());
            crate::metrics::sample(hub.census.clone(), hub.stats.clone(), mesh);
        }
        let shutdown = hub.shutdown.clone();
        let mut stop = std::pin::pin!(async move {
            tokio::select! {
                _ = stop => {}
                _ = shutdown.notified() => {}
            }
        });
        // With etcd, a node asked to stop first hands its slots over, still
        // accepting clients (a lagging peer may still redirect them here).
        let mut leaving: Option<std::pin::Pin<Box<dyn Future<Output = ()>>>> = None;
        loop {
            let (accepted, tls) = tokio::select! {
                biased;
                _ = &mut stop, if leaving.is_none() => match &membership {
                    // Its slots go to the other nodes first, so no client
                    // is left without a node serving its slot (SPEC §9.7).
                    Some(m) => {
                        leaving = Some(Box::pin(m.leave(settings.lease_ttl * 2)));
                        continue;
                    }
                    None => break,
                },
                _ = async { leaving.as_mut().expect("guarded").await }, if leaving.is_some() => break,
                Some((accepted, tls)) = incoming.recv() => (accepted, if tls { acceptor.clone() } else { None }),
                Some((accepted, _)) = peers.recv() => {
                    match accepted.and_then(|(s, _)| s.into_std()) {
                        Ok(stream) => server.accept_peer(stream),
                        Err(e) => tracing::warn!(error = %e, "cluster bus: accept failed"),
                    }
                    continue;
                }
            };
            let (stream, peer) = match accepted.and_then(|(s, peer)| Ok((s.into_std()?, peer))) {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if !keepalive.is_zero() {
                let probe = socket2::TcpKeepalive::new().with_time(keepalive);
                let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&probe);
            }
            server.accept(stream, peer, tls);
        }
        // The accept tasks end when they next find the receiver gone; the
        // listeners close with them.
        drop(incoming);
        drop(peers);
        tracing::info!("shutting down: no new connections; flushing clients");
        let _ = hub.clients.send(DrainAll).await;
        if tokio::time::timeout(SHUTDOWN_DEADLINE, hub.census.all_gone()).await.is_err() {
            tracing::warn!("shutdown deadline passed with output still queued; closing anyway");
        }
        tracing::info!("Herald is now ready to exit, bye bye...");
        for arbiter in arbiters {
            arbiter.stop();
        }
        Ok(())
    })
}

fn from_std(listener: std::net::TcpListener) -> std::io::Result<TcpListener> {
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads exactly `want`'s length from `client` and compares.
    async fn expect(client: &mut tokio::io::DuplexStream, want: &[u8]) {
        let mut got = vec![0; want.len()];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got)).await;
        assert!(read.is_ok(), "nothing within 5 s; wanted {:?}", String::from_utf8_lossy(want));
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    }

    /// Cluster mode: when a slot moves to another node, this node's shard
    /// subscriptions to it end with `sunsubscribe` pushes (their remaining
    /// counts, as Redis 7), and its channels are redirected from then on.
    #[actix_rt::test]
    async fn a_slot_moved_away_ends_its_shard_subscriptions() {
        use crate::cluster::{NodeAddr, Topology};
        let mut config = Config { cluster_enabled: true, ..Config::default() };
        config.cluster.nodes = vec!["127.0.0.1:6379".into(), "127.0.0.1:6380".into()];
        let refuse: crate::mesh::Dialer =
            std::sync::Arc::new(|_, _| Box::pin(async { Err(std::io::ErrorKind::ConnectionRefused.into()) }));
        let mut server = Server::start_with_dialer(config, Placement::Local, refuse);
        let (mut client, conn) = tokio::io::duplex(4096);
        server.accept_local(conn, "127.0.0.1:1".into(), "127.0.0.1:6379".into());
        // "bar" is slot 5061: this node's (0-8191) until it moves.
        client.write_all(b"SSUBSCRIBE bar {bar}x\r\n").await.unwrap();
        expect(&mut client, b"*3\r\n$10\r\nssubscribe\r\n$3\r\nbar\r\n:1\r\n").await;
        expect(&mut client, b"*3\r\n$10\r\nssubscribe\r\n$6\r\n{bar}x\r\n:2\r\n").await;
        let nodes: Vec<NodeAddr> = ["127.0.0.1:6379", "127.0.0.1:6380"].map(|n| NodeAddr::parse(n).unwrap()).into();
        let assigned =
            [(nodes[0].clone(), vec![(0, 5060), (5062, 8191)]), (nodes[1].clone(), vec![(5061, 5061), (8192, 16383)])];
        server.hub.set_topology(Topology::new(nodes.clone(), &nodes[0], &assigned).unwrap());
        expect(&mut client, b"*3\r\n$12\r\nsunsubscribe\r\n$3\r\nbar\r\n:1\r\n").await;
        expect(&mut client, b"*3\r\n$12\r\nsunsubscribe\r\n$6\r\n{bar}x\r\n:0\r\n").await;
        client.write_all(b"SPUBLISH bar x\r\nSSUBSCRIBE {user}y\r\n").await.unwrap();
        expect(&mut client, b"-MOVED 5061 127.0.0.1:6380\r\n").await;
        // A slot it still serves is unaffected.
        expect(&mut client, b"*3\r\n$10\r\nssubscribe\r\n$7\r\n{user}y\r\n:1\r\n").await;
    }

    /// A connection accepted just before the shutdown, whose session
    /// registers after every session was told to drain, is closed too
    /// (instead of holding the shutdown until its deadline).
    #[actix_rt::test]
    async fn a_session_registering_during_the_drain_is_closed() {
        let mut server = Server::start(Config::default(), Placement::Local);
        server.hub.clients.send(DrainAll).await.expect("registry");
        let (mut client, conn) = tokio::io::duplex(1024);
        server.accept_local(conn, "127.0.0.1:1".into(), "127.0.0.1:6379".into());
        let mut rest = Vec::new();
        // The deadline only turns a hang (the bug) into a failure.
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the late session was never told to drain");
        assert!(rest.is_empty(), "nothing was queued for it");
    }
}
