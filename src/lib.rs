//! Herald: a Redis-compatible pub/sub broker made of actix actors.
//!
//! The crate's modules are private; ARCHITECTURE.md maps them. What is
//! public here is what the binary, the simulator (sim/), the fuzz targets,
//! the benchmarks and the integration tests need: start a server, give it a
//! configuration, speak RESP to it.
#![warn(unreachable_pub)]

mod acl;
mod broker;
mod cluster;
mod cmd;
mod config;
mod diagnostics;
mod glob;
mod hub;
mod membership;
mod memory;
mod mesh;
mod metrics;
mod protocol;
mod redis;
mod registry;
mod server;
mod session;
mod shell;
mod stats;
mod tls;

#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod planted;

pub use broker::{HostArbiter, Placement};
pub use config::{ClusterSettings, Config, OutputLimit};
#[cfg(feature = "etcd")]
pub use membership::EtcdStore;
pub use membership::{Entry, Leader, Membership, MembershipStore, Snapshot, StoreResult, Written};
pub use mesh::{BusIo, BusStream, Dialer};
pub use server::{run_tcp, run_until, Listeners, Server, Serving};
pub use tls::TlsAcceptor;

/// Reading a configuration: the file format, command-line directives and
/// the checks the server makes before it starts.
pub mod configure {
    pub use crate::config::file::{apply, load};

    /// Fails with the reason if the configured ACL users do not parse.
    pub fn check_users(config: &crate::Config) -> Result<(), String> {
        crate::acl::Users::new(config.requirepass.as_deref(), &config.users).map(|_| ())
    }

    /// Fails with the reason if the cluster settings describe no topology
    /// this node belongs to.
    pub fn check_cluster(config: &crate::Config) -> Result<(), String> {
        crate::cluster::configured(config)?;
        if !config.cluster.etcd.is_empty() && !cfg!(feature = "etcd") {
            return Err("this herald was built without etcd: cargo build --release --features etcd".into());
        }
        Ok(())
    }

    /// The port peers connect to in cluster mode (none standalone).
    pub fn cluster_bus_port(config: &crate::Config) -> Option<u16> {
        crate::cluster::configured(config).ok().flatten().map(|t| t.myself().addr.bus_port)
    }
}

/// Starts the Prometheus endpoint (`metrics-port`) on its own thread.
pub fn serve_metrics(addr: impl std::net::ToSocketAddrs) -> Result<(), String> {
    metrics::serve(addr, cmd::full_names())
}

/// RESP as Herald reads and writes it, for tests, benchmarks and tools.
pub mod resp {
    pub use crate::protocol::inline::split_args;
    pub use crate::protocol::push::{Frame, Kind};
    pub use crate::protocol::reply::g17;
    pub use crate::protocol::{Reply, Request, RequestDecoder};
}

/// Redis' glob matching (PSUBSCRIBE, PUBSUB CHANNELS, ACL channel rules).
pub mod pattern {
    pub use crate::glob::matches;
    /// The slow, obviously correct matcher the fast one is tested against.
    pub use crate::glob::reference::matches as reference;
}
