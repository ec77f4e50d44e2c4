//! Accepting connections. The transport is the only thing that differs
//! between production (tokio TCP, sessions spread over arbiters) and the
//! simulator (turmoil TCP, one host): both hand streams to [`Server::accept`].

use actix::Addr;
use actix_rt::{Arbiter, System};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::broker::{Broker, ClientId, Placement};
use crate::config::Config;
use crate::session::{Origin, Session};

/// A running broker plus the counter that names new connections.
pub struct Server {
    pub broker: Broker,
    config: Config,
    placement: Placement,
    next_id: ClientId,
}

impl Server {
    /// Starts the broker's actors on `placement`.
    pub fn start(config: Config, placement: Placement) -> Server {
        let broker = Broker::start(config.clone(), &placement);
        Server { broker, config, placement, next_id: 0 }
    }

    fn next_id(&mut self) -> ClientId {
        self.next_id += 1;
        self.next_id
    }

    /// Starts a session for `stream` on the current thread (the simulator's
    /// host, or a single-threaded server).
    pub fn accept_local<S>(&mut self, stream: S, peer: String, local: String) -> Addr<Session>
    where
        S: AsyncRead + AsyncWrite + 'static,
    {
        let id = self.next_id();
        tracing::debug!(client = id, addr = %peer, "accepted");
        let origin = Origin { id, peer, local, slot: 0 };
        Session::start(origin, stream, self.broker.clone(), self.config.clone())
    }

    /// Starts a session on one of the worker arbiters, round robin.
    pub fn accept<S>(&mut self, stream: S, peer: String, local: String)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let Placement::Arbiters(arbiters) = &self.placement else {
            self.accept_local(stream, peer, local);
            return;
        };
        // The arbiter for the id about to be handed out.
        let slot = (self.next_id as usize + 1) % arbiters.len();
        let arbiter = arbiters[slot].clone();
        let id = self.next_id();
        tracing::debug!(client = id, addr = %peer, "accepted");
        let (broker, config) = (self.broker.clone(), self.config.clone());
        arbiter.spawn_fn(move || {
            Session::start(Origin { id, peer, local, slot }, stream, broker, config);
        });
    }
}

/// Runs Herald on `listener` with `threads` worker arbiters until the
/// process ends: the production entry point (and the integration tests').
pub fn run_tcp(listener: std::net::TcpListener, config: Config, threads: usize) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let system = System::new();
    let arbiters: Vec<Arbiter> = (0..threads.max(1)).map(|_| Arbiter::new()).collect();
    let handles = arbiters.iter().map(Arbiter::handle).collect();
    system.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tracing::info!(local = %listener.local_addr()?, threads, "Herald ready to accept connections");
        let keepalive = config.tcp_keepalive;
        let mut server = Server::start(config, Placement::Arbiters(handles));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(conn) => conn,
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
            let local = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
            server.accept(stream, peer.to_string(), local);
        }
    })
}
