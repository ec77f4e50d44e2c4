//! What a session does around its output: latency spikes for LATENCY
//! (`latency-monitor-threshold`, ms) and the `maxmemory-clients` check as
//! output grows.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// tokio's clock: the simulator's virtual one under turmoil, so timings
// there are deterministic; std's in production.
use tokio::time::Instant;

use super::Session;
use crate::diagnostics::Spike;

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Records a latency spike of `event` if the monitor is on and `took`
/// reaches its threshold.
pub(crate) fn spike(s: &Session, event: &'static str, took: Duration) {
    let threshold = s.settings.latency_monitor_threshold;
    let millis = took.as_millis() as u64;
    if threshold > 0 && millis >= threshold {
        s.hub.diagnostics.do_send(Spike { event, time: unix_now(), millis });
    }
}

impl Session {
    /// Records a latency spike of `event` (LATENCY) that began at
    /// `since`, if it reaches `latency-monitor-threshold` (the clock is not
    /// read while LATENCY is off).
    pub(crate) fn latency_spike(&self, event: &'static str, since: Instant) {
        if self.settings.latency_monitor_threshold > 0 {
            spike(self, event, since.elapsed());
        }
    }

    /// `maxmemory-clients`: when all clients' queued output passes it, the
    /// registry evicts the biggest (one round at a time).
    pub(crate) fn check_client_memory(&self) {
        let limit = self.settings.client_eviction_limit();
        let census = &self.hub.census;
        if limit == 0 || (census.queued_bytes.load(Ordering::Relaxed) as u64) <= limit {
            return;
        }
        if census.evicting.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            self.hub.clients.do_send(crate::registry::EvictClients { limit, census: census.clone() });
        }
    }
}
