//! What happens around each command, besides running it: CLIENT PAUSE
//! may hold it first; afterwards its time goes to Commandstats and
//! Latencystats (this arbiter's `Stats` shard), and — past their
//! thresholds — to SLOWLOG (`slowlog-log-slower-than`, µs) and LATENCY
//! (`latency-monitor-threshold`, ms); monitors are shown it; and
//! `maxmemory-clients` is checked as output grows.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// tokio's clock: the simulator's virtual one under turmoil, so timings
// there are deterministic; std's in production.
use tokio::time::Instant;

use bytes::Bytes;

use super::{Pending, Session};
use crate::cmd;
use crate::diagnostics::{SlowCommand, Spike};
use crate::stats::CommandId;

pub(super) struct Clock {
    pub started: Instant,
    /// The session's error count when the command started.
    pub errors: u64,
    /// Its arguments, kept only if a slow log or monitor may need them.
    pub args: Option<Vec<Bytes>>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Sends a command that took `each` per call to the slow log and the
/// latency monitor, if it passes their thresholds.
fn report(s: &Session, clock: &Clock, spec: &cmd::Spec, each: Duration) {
    let micros = each.as_micros() as u64;
    let threshold = s.settings.slowlog_slower_than;
    if threshold >= 0 && micros >= threshold as u64 {
        if let Some(args) = &clock.args {
            s.hub.diagnostics.do_send(SlowCommand {
                time: unix_now(),
                micros,
                args: args.clone(),
                peer: s.peer.clone(),
                name: s.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
                max_len: s.settings.slowlog_max_len,
            });
        }
    }
    if s.settings.latency_monitor_threshold > 0 {
        let fast = spec.flags.contains(&"fast");
        spike(s, if fast { "fast-command" } else { "command" }, each);
    }
}

/// Records a latency spike of `event` if the monitor is on and `took`
/// reaches its threshold.
fn spike(s: &Session, event: &'static str, took: Duration) {
    let threshold = s.settings.latency_monitor_threshold;
    let millis = took.as_millis() as u64;
    if threshold > 0 && millis >= threshold {
        s.hub.diagnostics.do_send(Spike { event, time: unix_now(), millis });
    }
}

impl Session {
    /// Starts timing a command (or a run of publishes), keeping its
    /// arguments if the slow log or a monitor may want them. The same clock
    /// reading is the session's last activity (for `timeout`): one read.
    pub(super) fn start_clock(&mut self, args: Option<&Vec<Bytes>>) -> Clock {
        let keep = self.settings.slowlog_slower_than >= 0 || self.hub.census.monitors.load(Ordering::Relaxed) > 0;
        let started = Instant::now();
        self.last_active = started;
        Clock { started, errors: self.errors_sent, args: args.filter(|_| keep).cloned() }
    }

    /// A command dispatch ran: its Commandstats, slow log and monitors.
    pub(super) fn finish_command(&mut self, clock: Clock) {
        let Some(spec) = self.ran.take() else { return };
        let name = self.last_cmd.clone();
        if let Some(args) = &clock.args {
            if !spec.flags.contains(&"admin") && self.hub.census.monitors.load(Ordering::Relaxed) > 0 {
                // An EXEC that started its run: shown once the run is done.
                if spec.name == "exec" && self.exec_replies.is_some() {
                    self.exec_feed = Some(args.clone());
                } else {
                    self.feed_monitors(args);
                }
            }
        }
        self.stop_clock(clock, spec, &name, 1);
    }

    /// Records a latency spike of `event` (LATENCY) that began at
    /// `since`, if it reaches `latency-monitor-threshold` (the clock is not
    /// read while LATENCY is off).
    pub(crate) fn latency_spike(&self, event: &'static str, since: Instant) {
        if self.settings.latency_monitor_threshold > 0 {
            spike(self, event, since.elapsed());
        }
    }

    /// Counts `n` calls of `spec` (full name `name`) that took the clock's
    /// time together, and reports them to SLOWLOG and LATENCY unless the
    /// time was the client blocking (WAIT), which Redis leaves out too.
    pub(super) fn stop_clock(&mut self, clock: Clock, spec: &'static cmd::Spec, name: &str, n: u64) {
        let elapsed = clock.started.elapsed();
        let failed = self.errors_sent > clock.errors;
        let tracking = self.settings.latency_tracking;
        self.hub.stats.shard(self.slot).call(CommandId::of(spec), name, n, elapsed, failed, tracking);
        if !spec.blocks {
            report(self, &clock, spec, elapsed / n.max(1) as u32);
        }
    }

    /// Shows a command to every monitor.
    pub(super) fn feed_monitors(&self, args: &[Bytes]) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let line = crate::diagnostics::monitor_line(now.as_micros(), self.db, &self.peer, args);
        self.hub.diagnostics.do_send(crate::diagnostics::Feed(line));
    }

    /// If CLIENT PAUSE holds this command: a future that ends when the
    /// pause does (its deadline, or UNPAUSE).
    pub(super) fn paused_for(&self, args: &[Bytes]) -> Option<Pending> {
        let pause = *self.hub.pause.borrow();
        pause.until?;
        let writes =
            cmd::lookup(&String::from_utf8_lossy(&args[0]).to_ascii_lowercase()).is_some_and(|spec| spec.may_replicate);
        if !pause.holds(writes) {
            return None;
        }
        let mut changes = self.hub.pause.clone();
        let wait = async move {
            loop {
                let pause = *changes.borrow_and_update();
                let Some(until) = pause.until.filter(|_| pause.holds(writes)) else { return };
                tokio::select! {
                    biased;
                    changed = changes.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
        };
        Some(Box::pin(actix::fut::wrap_future::<_, Session>(wait)))
    }

    /// `maxmemory-clients`: when all clients' queued output passes it, the
    /// registry evicts the biggest (one round at a time).
    pub(super) fn check_client_memory(&self) {
        let limit = self.settings.maxmemory_clients.1;
        let census = &self.hub.census;
        if limit == 0 || (census.queued_bytes.load(Ordering::Relaxed) as u64) <= limit {
            return;
        }
        if census.evicting.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            self.hub.clients.do_send(crate::registry::EvictClients { limit, census: census.clone() });
        }
    }
}
