//! What happens around each command, besides running it: CLIENT PAUSE
//! may hold it first; afterwards its time goes to Commandstats and
//! Latencystats (this arbiter's `Stats` shard), and — past their
//! thresholds — to SLOWLOG (`slowlog-log-slower-than`, µs) and LATENCY
//! (`latency-monitor-threshold`, ms); monitors are shown it.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// tokio's clock: the simulator's virtual one under turmoil, so timings
// there are deterministic; std's in production.
use tokio::time::Instant;

use bytes::Bytes;

use crate::cmd;
use crate::diagnostics::SlowCommand;
use crate::session::around::{spike, unix_now};
use crate::session::{Pending, Session};
use crate::stats::CommandId;

pub(super) struct Clock {
    pub started: Instant,
    /// The session's error count when the command started.
    pub errors: u64,
    /// Whether it started inside EXEC's run (else, if a run is under way
    /// when it ends, it was the EXEC that started it).
    pub in_exec: bool,
    /// Its arguments, kept only if a slow log or monitor may need them.
    pub args: Option<Vec<Bytes>>,
}

/// Sends a command that took `each` per call to the slow log and the
/// latency monitor, if it passes their thresholds.
fn report(s: &Session, clock: &Clock, spec: &cmd::Spec, each: Duration) {
    if let Some(args) = &clock.args {
        s.log_if_slow(args, each);
    }
    // `spike` checks the threshold (0: LATENCY off).
    spike(s, if spec.has(cmd::Flag::Fast) { "fast-command" } else { "command" }, each);
}

impl Session {
    /// Starts timing a command (or a run of publishes), keeping its
    /// arguments if the slow log or a monitor may want them. The same clock
    /// reading is the session's last activity (for `timeout`): one read.
    pub(super) fn start_clock(&mut self, args: Option<&Vec<Bytes>>) -> Clock {
        let keep = self.settings.slowlog_slower_than >= 0 || self.hub.census.monitors.load(Ordering::Relaxed) > 0;
        let started = Instant::now();
        self.driving.last_active = started;
        Clock { started, errors: self.errors_sent(), in_exec: self.in_exec(), args: args.filter(|_| keep).cloned() }
    }

    /// A command dispatch ran: its Commandstats, slow log and monitors.
    pub(super) fn finish_command(&mut self, clock: Clock, ran: Option<&'static cmd::Spec>) {
        let Some(spec) = ran else { return };
        let name = self.last_cmd.clone();
        if let Some(args) = &clock.args {
            if !spec.has(cmd::Flag::Admin) && self.hub.census.monitors.load(Ordering::Relaxed) > 0 {
                // An EXEC that started its run: shown once the run is done.
                if !clock.in_exec && self.in_exec() {
                    self.driving.exec_feed = Some(args.clone());
                } else {
                    self.feed_monitors(args);
                }
            }
        }
        self.stop_clock(clock, spec, &name, 1);
    }

    /// Counts `n` calls of `spec` (full name `name`) that took the clock's
    /// time together, and reports them to SLOWLOG and LATENCY unless the
    /// time was the client blocking (WAIT), which Redis leaves out too.
    /// Returns each call's share of the time.
    pub(super) fn stop_clock(&mut self, clock: Clock, spec: &'static cmd::Spec, name: &str, n: u64) -> Duration {
        let elapsed = clock.started.elapsed();
        let failed = self.errors_sent() > clock.errors;
        let tracking = self.settings.latency_tracking;
        self.hub.stats.shard(self.slot).call(CommandId::of(spec), name, n, elapsed, failed, tracking);
        let each = elapsed / n.max(1) as u32;
        if !spec.blocks {
            report(self, &clock, spec, each);
        }
        each
    }

    /// Adds a command that took `each` to SLOWLOG if that passes
    /// `slowlog-log-slower-than`.
    pub(super) fn log_if_slow(&self, args: &[Bytes], each: Duration) {
        let micros = each.as_micros() as u64;
        let threshold = self.settings.slowlog_slower_than;
        if threshold >= 0 && micros >= threshold as u64 {
            self.hub.diagnostics.do_send(SlowCommand {
                time: unix_now(),
                micros,
                args: args.to_vec(),
                peer: self.peer.clone(),
                name: self.state.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
                max_len: self.settings.slowlog_max_len,
            });
        }
    }

    /// Shows a command to every monitor.
    pub(super) fn feed_monitors(&self, args: &[Bytes]) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let line = crate::diagnostics::monitor_line(now.as_micros(), self.state.db, &self.peer, args);
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
}
