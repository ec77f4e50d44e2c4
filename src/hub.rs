//! The hub: how a session reaches everything it shares with the others.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;

use crate::broker::pattern_index::{PSubscribe, PUnsubscribe};
use crate::broker::{Census, ChannelDirectory, ClientId, PatternIndex, Placement, Postman, Subscriber};
use crate::cluster::{MeshFigures, Topology};
use crate::config::open_files;
use crate::config::Config;
use crate::diagnostics::Diagnostics;
use crate::mesh::{Dialer, Interest, LocalBroker, Mesh, Unwant};
use crate::protocol::push::Kind;
use crate::registry::{ClientPause, ClientRegistry};
use crate::stats::Stats;

/// Addresses of the server's shared actors (the broker's, the client
/// registry, diagnostics) and its shared figures; cheap to clone into
/// sessions.
#[derive(Clone)]
pub(crate) struct Hub {
    directories: Arc<[Addr<ChannelDirectory>]>,
    pub postmen: Arc<[Addr<Postman>]>,
    pub patterns: Addr<PatternIndex>,
    pub clients: Addr<ClientRegistry>,
    pub diagnostics: Addr<Diagnostics>,
    pub census: Arc<Census>,
    pub stats: Arc<Stats>,
    /// CLIENT PAUSE as the registry last set it.
    pub pause: tokio::sync::watch::Receiver<ClientPause>,
    /// SHUTDOWN asks the accept loop to stop (see `server::run_tcp_until`).
    pub shutdown: Arc<tokio::sync::Notify>,
    /// Cluster mode's topology and links; `None` standalone.
    pub cluster: Option<ClusterHandle>,
}

/// What a session reaches of cluster mode.
#[derive(Clone)]
pub(crate) struct ClusterHandle {
    /// The topology in force; a new value replaces it whole.
    pub topology: tokio::sync::watch::Receiver<Arc<Topology>>,
    pub figures: Arc<MeshFigures>,
    pub mesh: Addr<Mesh>,
    pub node_timeout: Duration,
    /// Where a new topology is put (`Hub::set_topology`).
    replace: Arc<tokio::sync::watch::Sender<Arc<Topology>>>,
}

/// The interest a subscription of `kind` gives its node in the cluster:
/// none for shard channels, which never cross.
pub(crate) fn mesh_interest(kind: Kind) -> Option<Interest> {
    match kind {
        Kind::Channel => Some(Interest::Channel),
        Kind::Pattern => Some(Interest::Pattern),
        Kind::Shard => None,
    }
}

impl Hub {
    /// Starts one channel directory per slot, the pattern index and the
    /// client registry.
    pub(crate) fn start(config: Config, placement: &Placement, dial: Dialer) -> Hub {
        crate::memory::mark_startup();
        let topology = crate::cluster::configured(&config).expect("the cluster settings are checked at startup");
        let cluster_settings = config.cluster.clone();
        let census = Arc::new(Census::default());
        let postmen: Arc<[Addr<Postman>]> =
            (0..placement.slots()).map(|i| placement.start(i, |_| Postman)).collect::<Vec<_>>().into();
        let directories: Vec<_> = (0..placement.slots())
            .map(|i| {
                let (census, idle) = (census.clone(), config.channel_idle);
                placement.start(i, move |_| ChannelDirectory::new(census, idle))
            })
            .collect();
        let patterns = placement.start(0, |_| PatternIndex::default());
        let (pauser, pause) = tokio::sync::watch::channel(ClientPause::default());
        // A simulated host's clients are no descriptors of this process.
        let reserved_fds = (!matches!(placement, Placement::Hosts(_)))
            .then(|| open_files::reserved(placement.slots(), config.cluster.nodes.len().saturating_sub(1)));
        let stats = Arc::new(Stats::new(placement.slots()));
        let sampled = (stats.clone(), census.traffic.clone());
        let clients = placement.start(0, move |ctx| {
            // Redis' `instantaneous_*` rates: sampled at its hz (10).
            ctx.run_interval(std::time::Duration::from_millis(100), move |_, _| {
                sampled.0.sample_rates(std::time::Instant::now(), &sampled.1)
            });
            ClientRegistry::new(config, pauser, reserved_fds).expect("users checked at startup")
        });
        let diagnostics = placement.start(0, |_| Diagnostics::default());
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let cluster = topology.map(|t| {
            let t = Arc::new(t);
            let figures = Arc::new(MeshFigures::default());
            figures.topology(&t);
            let settings = cluster_settings;
            let node_timeout = settings.node_timeout;
            let (topology, mesh_figures) = (t.clone(), figures.clone());
            let mesh = placement.start(0, move |_| {
                Mesh::new(&topology, mesh_figures, settings.node_timeout, settings.link_sendbuf_limit, dial)
            });
            let (replace, topology) = tokio::sync::watch::channel(t);
            ClusterHandle { topology, figures, mesh, node_timeout, replace: Arc::new(replace) }
        });
        Hub {
            directories: directories.into(),
            postmen,
            patterns,
            clients,
            diagnostics,
            census,
            stats,
            pause,
            shutdown,
            cluster,
        }
    }

    /// The node's Mesh in cluster mode.
    pub(crate) fn mesh(&self) -> Option<&Addr<Mesh>> {
        self.cluster.as_ref().map(|c| &c.mesh)
    }

    /// Whether any peer has announced any interest: if none has, a
    /// publish need not go to the Mesh. The Mesh raises the figure before
    /// a peer's announcement is answered, so a publish made after the
    /// peer's subscriber saw its confirmation always goes (as
    /// `any_patterns` for the pattern index).
    pub(crate) fn peers_want_anything(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.figures.wanted_by_peers.load(std::sync::atomic::Ordering::SeqCst) > 0)
    }

    /// Tells the Mesh (in cluster mode) that `names` of `kind` are left.
    pub(crate) fn unwant(&self, kind: Kind, names: Vec<Bytes>) {
        if let (Some(mesh), Some(kind)) = (self.mesh(), mesh_interest(kind)) {
            if !names.is_empty() {
                mesh.do_send(Unwant { kind, names });
            }
        }
    }

    /// Serving a peer node's link on this node (cluster mode; `None`
    /// standalone): run the future where the link should live.
    pub(crate) fn serve_peer<S>(&self, stream: S) -> Option<impl std::future::Future<Output = ()> + use<S>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    {
        let cluster = self.cluster.as_ref()?;
        Some(crate::mesh::serve_peer(stream, cluster.mesh.clone(), cluster.figures.clone(), self.local_broker()))
    }

    /// What a peer's link publishes through on this node.
    fn local_broker(&self) -> LocalBroker {
        LocalBroker {
            directories: self.directories.clone(),
            postmen: self.postmen.clone(),
            patterns: self.patterns.clone(),
            census: self.census.clone(),
            node_timeout: self.cluster.as_ref().map_or(Duration::ZERO, |c| c.node_timeout),
        }
    }

    /// Cluster mode: puts `topology` in force for every session (a slot's
    /// next command is judged by it) and tells sessions, so shard
    /// subscriptions to slots lost end (`sunsubscribe`).
    pub(crate) fn set_topology(&self, topology: Topology) {
        let Some(cluster) = &self.cluster else { return };
        let topology = Arc::new(topology);
        cluster.figures.topology(&topology);
        cluster.replace.send_replace(topology.clone());
        cluster.mesh.do_send(crate::mesh::Retopology(topology));
        self.clients.do_send(crate::registry::TopologyChanged);
    }

    /// The topology in force in cluster mode.
    pub(crate) fn topology(&self) -> Option<Arc<Topology>> {
        self.cluster.as_ref().map(|c| c.topology.borrow().clone())
    }

    /// Registers a pattern subscription (see [`Census::patterns`]).
    pub(crate) fn psubscribe(&self, pattern: crate::broker::Name, subscriber: Subscriber) {
        self.census.patterns.fetch_add(1, Ordering::SeqCst);
        self.patterns.do_send(PSubscribe { pattern, subscriber });
    }

    pub(crate) fn punsubscribe(&self, pattern: Bytes, client: ClientId) {
        self.patterns.do_send(PUnsubscribe { pattern, client });
        self.census.patterns.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether any pattern subscription may exist; false means a publish
    /// need not ask the pattern index.
    pub(crate) fn any_patterns(&self) -> bool {
        self.census.patterns.load(Ordering::SeqCst) > 0
    }

    /// The directory that owns `channel`.
    pub(crate) fn directory(&self, channel: &[u8]) -> &Addr<ChannelDirectory> {
        &self.directories[self.directory_index(channel)]
    }

    /// Its index (`publishing::directory_of`).
    pub(crate) fn directory_index(&self, channel: &[u8]) -> usize {
        crate::broker::publishing::directory_of(channel, self.directories.len())
    }

    pub(crate) fn directories(&self) -> &[Addr<ChannelDirectory>] {
        &self.directories
    }
}
