//! A command's time, and what it is reported to: the slow log
//! (`slowlog-log-slower-than`, µs) and the latency monitor
//! (`latency-monitor-threshold`, ms). Commandstats are counted by the
//! session itself (`Session::stop_clock`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Session;
use crate::diagnostics::{SlowCommand, Spike};

pub struct Clock {
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
pub fn report(s: &Session, clock: &Clock, spec: &crate::cmd::Spec, each: Duration) {
    let micros = each.as_micros() as u64;
    let threshold = s.settings.slowlog_slower_than;
    if threshold >= 0 && micros >= threshold as u64 {
        if let Some(args) = &clock.args {
            s.broker.diagnostics.do_send(SlowCommand {
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
pub fn spike(s: &Session, event: &'static str, took: Duration) {
    let threshold = s.settings.latency_monitor_threshold;
    let millis = took.as_millis() as u64;
    if threshold > 0 && millis >= threshold {
        s.broker.diagnostics.do_send(Spike { event, time: unix_now(), millis });
    }
}
