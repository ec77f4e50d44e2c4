//! What operators look at when something is slow: SLOWLOG, LATENCY and
//! MONITOR. One `Diagnostics` actor owns the slow log, the latency samples
//! and the list of monitoring sessions; sessions tell it what they saw.
//!
//! It knows nothing of channels or subscribers, and sessions reach it only
//! for a slow command, a latency spike, or a command to show monitors (only
//! while a monitor is connected: `Census::monitors`), so it is off every hot
//! path.

pub(crate) mod latency;
pub(crate) mod slowlog;

use actix::prelude::*;
use bytes::Bytes;

use crate::broker::ClientId;
use latency::LatencyMonitor;
use slowlog::SlowLog;

#[derive(Default)]
pub(crate) struct Diagnostics {
    pub slowlog: SlowLog,
    pub latency: LatencyMonitor,
    monitors: Vec<(ClientId, Recipient<MonitorLine>)>,
}

impl Actor for Diagnostics {
    type Context = Context<Self>;
}

/// A command that took at least `slowlog-log-slower-than`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SlowCommand {
    pub time: u64,
    pub micros: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: String,
    pub max_len: usize,
}

impl Handler<SlowCommand> for Diagnostics {
    type Result = ();
    fn handle(&mut self, m: SlowCommand, _: &mut Context<Self>) {
        self.slowlog.add(m.time, m.micros, &m.args, m.peer, m.name, m.max_len);
    }
}

/// A latency spike at or above `latency-monitor-threshold`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Spike {
    pub event: &'static str,
    pub time: u64,
    pub millis: u64,
}

impl Handler<Spike> for Diagnostics {
    type Result = ();
    fn handle(&mut self, m: Spike, _: &mut Context<Self>) {
        self.latency.add(m.event, m.time, m.millis);
    }
}

/// Reads or changes the slow log or the latency samples: SLOWLOG and
/// LATENCY's subcommands, one closure each rather than a message type each.
pub(crate) struct Inspect<R: 'static>(pub Box<dyn FnOnce(&mut Diagnostics) -> R + Send>);

impl<R: 'static> Message for Inspect<R> {
    type Result = R;
}

impl<R: 'static> Handler<Inspect<R>> for Diagnostics {
    type Result = MessageResult<Inspect<R>>;
    fn handle(&mut self, Inspect(f): Inspect<R>, _: &mut Context<Self>) -> Self::Result {
        MessageResult(f(self))
    }
}

/// One line of MONITOR output (without `+` and CRLF).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub(crate) struct MonitorLine(pub Bytes);

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct AddMonitor(pub ClientId, pub Recipient<MonitorLine>);

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct RemoveMonitor(pub ClientId);

/// A command for every monitor to see.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Feed(pub Bytes);

impl Handler<AddMonitor> for Diagnostics {
    type Result = ();
    fn handle(&mut self, AddMonitor(id, to): AddMonitor, _: &mut Context<Self>) {
        self.monitors.push((id, to));
    }
}

impl Handler<RemoveMonitor> for Diagnostics {
    type Result = ();
    fn handle(&mut self, RemoveMonitor(id): RemoveMonitor, _: &mut Context<Self>) {
        self.monitors.retain(|(m, _)| *m != id);
    }
}

impl Handler<Feed> for Diagnostics {
    type Result = ();
    fn handle(&mut self, Feed(line): Feed, _: &mut Context<Self>) {
        for (_, to) in &self.monitors {
            to.do_send(MonitorLine(line.clone()));
        }
    }
}

/// A MONITOR line as Redis writes it: `1700000000.123456 [0 127.0.0.1:5000]
/// "publish" "ch" "msg"`, arguments quoted like `sdscatrepr`, AUTH and
/// HELLO AUTH secrets redacted.
pub(crate) fn monitor_line(unix_micros: u128, db: u32, peer: &str, args: &[Bytes]) -> Bytes {
    let mut line = format!("{}.{:06} [{db} {peer}]", unix_micros / 1_000_000, unix_micros % 1_000_000).into_bytes();
    let redacted = redactions(args);
    for (i, arg) in args.iter().enumerate() {
        line.push(b' ');
        if redacted.contains(&i) {
            line.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote_into(&mut line, arg);
        }
    }
    Bytes::from(line)
}

/// Which arguments Redis 7.0 hides: AUTH's, and HELLO's AUTH pair.
fn redactions(args: &[Bytes]) -> Vec<usize> {
    let name = args[0].to_ascii_lowercase();
    match name.as_slice() {
        b"auth" => (1..args.len()).collect(),
        b"hello" => {
            let mut hidden = Vec::new();
            let mut i = 2;
            while i < args.len() {
                if args[i].eq_ignore_ascii_case(b"auth") && i + 2 < args.len() {
                    hidden.extend([i + 1, i + 2]);
                    i += 3;
                } else {
                    i += if args[i].eq_ignore_ascii_case(b"setname") { 2 } else { 1 };
                }
            }
            hidden
        }
        _ => Vec::new(),
    }
}

/// Redis' `sdscatrepr`: a double-quoted string with C escapes.
pub(crate) fn quote_into(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b),
            b => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn monitor_lines_quote_and_redact_as_redis() {
        let line = monitor_line(1_700_000_000_000_042, 3, "127.0.0.1:5", &args(&["publish", "ch", "a b\n\x01\"é"]));
        assert_eq!(&line[..], br#"1700000000.000042 [3 127.0.0.1:5] "publish" "ch" "a b\n\x01\"\xc3\xa9""#);
        let line = monitor_line(0, 0, "p", &args(&["hello", "3", "auth", "u", "pw", "setname", "n"]));
        assert!(line.ends_with(br#""hello" "3" "auth" "(redacted)" "(redacted)" "setname" "n""#), "{line:?}");
        let line = monitor_line(0, 0, "p", &args(&["AUTH", "u", "pw"]));
        assert!(line.ends_with(br#""AUTH" "(redacted)" "(redacted)""#));
    }
}
