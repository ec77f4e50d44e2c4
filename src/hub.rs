//! The hub: how a session reaches everything it shares with the others.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;

use crate::broker::pattern_index::{PSubscribe, PUnsubscribe};
use crate::broker::{Census, ChannelDirectory, ClientId, PatternIndex, Placement, Postman, Subscriber};
use crate::config::Config;
use crate::diagnostics::Diagnostics;
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
}

impl Hub {
    /// Starts one channel directory per slot, the pattern index and the
    /// client registry.
    pub(crate) fn start(config: Config, placement: &Placement) -> Hub {
        crate::memory::mark_startup();
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
        let stats = Arc::new(Stats::new(placement.slots()));
        let sampled = (stats.clone(), census.traffic.clone());
        let clients = placement.start(0, move |ctx| {
            // Redis' `instantaneous_*` rates: sampled at its hz (10).
            ctx.run_interval(std::time::Duration::from_millis(100), move |_, _| {
                sampled.0.sample_rates(std::time::Instant::now(), &sampled.1)
            });
            ClientRegistry::new(config, pauser).expect("users checked at startup")
        });
        let diagnostics = placement.start(0, |_| Diagnostics::default());
        let shutdown = Arc::new(tokio::sync::Notify::new());
        Hub { directories: directories.into(), postmen, patterns, clients, diagnostics, census, stats, pause, shutdown }
    }

    /// Registers a pattern subscription (see [`Census::patterns`]).
    pub(crate) fn psubscribe(&self, pattern: Bytes, subscriber: Subscriber) {
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

    /// Its index: FNV-1a of the name (stable across runs, unlike std's
    /// hasher).
    pub(crate) fn directory_index(&self, channel: &[u8]) -> usize {
        let mut h: u64 = 0xcbf29ce484222325;
        for &b in channel {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        (h % self.directories.len() as u64) as usize
    }

    pub(crate) fn directories(&self) -> &[Addr<ChannelDirectory>] {
        &self.directories
    }
}
