//! MONITOR, SLOWLOG, LATENCY and MEMORY: what the diagnostics actor
//! (`crate::diagnostics`) recorded, and the allocator's figures.

use std::sync::atomic::Ordering;

use actix::{AsyncContext, Context};
use bytes::Bytes;

use super::Spec;
use crate::diagnostics::{AddMonitor, Diagnostics, Inspect};
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;
use crate::session::{wait_for, Flow, Session};

/// SLOWLOG's and LATENCY's subcommands (flags and categories: Redis'
/// table's, see `cmd::as_redis`).
const fn admin(name: &'static str, arity: i32, summary: &'static str, args: &'static str, run: super::Run) -> Spec {
    Spec { since: "2.2.12", summary, args, ..Spec::new(name, arity, "server", run) }
}

/// MEMORY's subcommands.
const fn read(name: &'static str, arity: i32, summary: &'static str, args: &'static str, run: super::Run) -> Spec {
    Spec { since: "4.0.0", summary, args, ..Spec::new(name, arity, "server", run) }
}

static SLOWLOG: [Spec; 4] = [
    admin("get", -2, "Get the slow log's entries", "[count]", slowlog_get),
    admin("len", 2, "Get the slow log's length", "", slowlog_len),
    admin("reset", 2, "Clear all entries from the slow log", "", slowlog_reset),
    admin("help", 2, "Show helpful text about the different subcommands", "", super::help),
];

static LATENCY: [Spec; 7] = [
    admin("latest", 2, "Return the latest latency samples for all events.", "", latency_latest),
    admin("history", 3, "Return timestamp-latency samples for the event.", "event", latency_history),
    admin("reset", -2, "Reset latency data for one or more events.", "[event...]", latency_reset),
    admin("doctor", 2, "Return a human readable latency analysis report.", "", latency_doctor),
    admin("graph", 3, "Return a latency graph for the event.", "event", latency_graph),
    admin(
        "histogram",
        -2,
        "Return the cumulative distribution of latencies of a subset of commands or all.",
        "[command...]",
        latency_histogram,
    ),
    admin("help", 2, "Show helpful text about the different subcommands", "", super::help),
];

static MEMORY: [Spec; 6] = [
    read("stats", 2, "Show memory usage details", "", memory_stats),
    read("doctor", 2, "Outputs memory problems report", "", memory_doctor),
    read("usage", -3, "Estimate the memory usage of a key", "key [SAMPLES count]", memory_usage),
    read("malloc-stats", 2, "Show allocator internal stats", "", memory_malloc_stats),
    read("purge", 2, "Ask the allocator to release memory", "", memory_purge),
    read("help", 2, "Show helpful text about the different subcommands", "", super::help),
];

pub(crate) fn specs() -> [Spec; 4] {
    [
        admin("monitor", 1, "Listen for all requests received by the server in real time", "", monitor),
        Spec {
            since: "2.2.12",
            summary: "A container for slow log commands",
            help: SLOWLOG_HELP,
            ..Spec::container("slowlog", "server", &SLOWLOG)
        },
        Spec {
            since: "2.8.13",
            summary: "A container for latency diagnostics commands",
            help: LATENCY_HELP,
            ..Spec::container("latency", "server", &LATENCY)
        },
        Spec {
            since: "4.0.0",
            summary: "A container for memory diagnostics commands",
            help: MEMORY_HELP,
            ..Spec::container("memory", "server", &MEMORY)
        },
    ]
}

/// Every command from now on is shown to this connection, as Redis formats
/// it (see `crate::diagnostics::monitor_line`). Once registered, each line
/// this session's later commands feed comes after its OK.
fn monitor(s: &mut Session, _: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    if s.state.monitor {
        return Flow::Done;
    }
    s.state.monitor = true;
    s.hub.census.monitors.fetch_add(1, Ordering::Relaxed);
    s.hub.diagnostics.do_send(AddMonitor(s.id, ctx.address().recipient()));
    s.reply(Reply::ok());
    Flow::Done
}

/// Runs `f` on the diagnostics actor and replies with what it returns.
fn ask<R: Send + 'static>(
    s: &Session,
    f: impl FnOnce(&mut Diagnostics) -> R + Send + 'static,
    reply: impl FnOnce(R, &mut Session) + 'static,
) -> Flow {
    let asked = s.hub.diagnostics.send(Inspect(Box::new(f)));
    wait_for(asked, move |answer, s: &mut Session, _| match answer {
        Ok(r) => reply(r, s),
        Err(_) => s.error("ERR the diagnostics actor is gone"),
    })
}

fn slowlog_get(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let count = match args.get(2).map(|a| parse_i64(a)) {
        None => Some(10),
        Some(Some(-1)) => None,
        Some(Some(n)) if n >= 0 => Some(n as usize),
        Some(_) => {
            s.error("ERR count should be greater than or equal to -1");
            return Flow::Done;
        }
    };
    let max = s.settings.slowlog_max_len;
    ask(
        s,
        move |d| {
            d.slowlog.trim(max);
            d.slowlog.newest(count).cloned().collect::<Vec<_>>()
        },
        |entries, s| {
            let entries = entries.into_iter().map(|e| {
                Reply::Array(vec![
                    Reply::Int(e.id as i64),
                    Reply::Int(e.time as i64),
                    Reply::Int(e.micros as i64),
                    Reply::Array(e.args.into_iter().map(Reply::Bulk).collect()),
                    Reply::Bulk(e.peer.into()),
                    Reply::Bulk(e.name.into()),
                ])
            });
            s.reply(Reply::Array(entries.collect()))
        },
    )
}

fn slowlog_len(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let max = s.settings.slowlog_max_len;
    ask(
        s,
        move |d| {
            d.slowlog.trim(max);
            d.slowlog.len()
        },
        |n, s| s.reply(Reply::Int(n as i64)),
    )
}

fn slowlog_reset(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    ask(s, |d| d.slowlog.clear(), |_, s| s.reply(Reply::ok()))
}

fn latency_latest(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let latest = |d: &mut Diagnostics| {
        d.latency
            .events()
            .filter_map(|(name, series)| {
                let last = series.samples.back()?;
                Some((name.clone(), last.time, last.millis, series.max))
            })
            .collect::<Vec<_>>()
    };
    ask(s, latest, |events, s| {
        let rows = events.into_iter().map(|(name, time, last, max)| {
            Reply::Array(vec![
                Reply::Bulk(name.into()),
                Reply::Int(time as i64),
                Reply::Int(last as i64),
                Reply::Int(max as i64),
            ])
        });
        s.reply(Reply::Array(rows.collect()))
    })
}

fn latency_history(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let event = String::from_utf8_lossy(&args[2]).into_owned();
    let samples =
        move |d: &mut Diagnostics| d.latency.series(&event).map(|s| s.samples.iter().copied().collect::<Vec<_>>());
    ask(s, samples, |samples, s| {
        let rows = samples.unwrap_or_default().into_iter();
        let rows = rows.map(|p| Reply::Array(vec![Reply::Int(p.time as i64), Reply::Int(p.millis as i64)]));
        s.reply(Reply::Array(rows.collect()))
    })
}

fn latency_reset(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let events: Vec<String> = args[2..].iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    ask(s, move |d| d.latency.reset(&events), |n, s| s.reply(Reply::Int(n as i64)))
}

/// A short report in the spirit of Redis' (which only it can write in
/// full, since it knows its own event kinds).
fn latency_doctor(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let threshold = s.settings.latency_monitor_threshold;
    let report = move |d: &mut Diagnostics| {
        let events: Vec<_> = d.latency.events().map(|(n, s)| (n.clone(), s.samples.len(), s.max)).collect();
        if threshold == 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
        }
        if events.is_empty() {
            return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".to_string();
        }
        let mut text =
            format!("Dave, I have observed latency spikes in this Herald instance (threshold {threshold} ms).\n\n");
        for (i, (name, n, max)) in events.iter().enumerate() {
            text.push_str(&format!("{}. {name}: {n} latency spikes (worst {max} ms).\n", i + 1));
        }
        text.push_str(
            "\nI have a few advices for you:\n- Slow commands: check SLOWLOG GET; a PUBLISH's time includes its \
             fan-out, so a channel with very many subscribers shows here.\n- slow-subscriber-drop events are \
             subscribers closed for their output limit: see client-output-buffer-limit.\n",
        );
        text
    };
    ask(s, report, |text, s| s.reply(Reply::Verbatim(text.into())))
}

/// An ASCII chart of an event's samples, oldest to newest, each column
/// scaled to the highest.
fn latency_graph(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let event = String::from_utf8_lossy(&args[2]).into_owned();
    let name = event.clone();
    let series = move |d: &mut Diagnostics| {
        d.latency.series(&event).map(|s| (s.samples.iter().copied().collect::<Vec<_>>(), s.max))
    };
    ask(s, series, move |series, s| {
        let Some((samples, max)) = series.filter(|(samples, _)| !samples.is_empty()) else {
            let name = super::c_text(name.as_bytes(), usize::MAX);
            return s.error(format!("ERR No samples available for event '{name}'"));
        };
        let low = samples.iter().map(|p| p.millis).min().unwrap_or(0);
        let mut text = format!("{name} - high {max} ms, low {low} ms (all time high {max} ms)\n");
        text.push_str(&"-".repeat(80));
        text.push('\n');
        for row in (1..=4).rev() {
            for p in &samples {
                let height = (p.millis * 4).div_ceil(max.max(1));
                text.push(if height >= row { '#' } else { ' ' });
            }
            text.push('\n');
        }
        s.reply(Reply::Verbatim(text.into()))
    })
}

/// Redis 7's LATENCY HISTOGRAM from the Latencystats histograms: per
/// command, its calls and the cumulative count at each power of two µs.
fn latency_histogram(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let wanted: Vec<String> = args[2..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let all = s.hub.stats.snapshot();
    let mut out = Vec::new();
    for (name, figures) in &all.commands {
        if !wanted.is_empty() && !wanted.contains(name) {
            continue;
        }
        let Some(h) = &figures.latency else { continue };
        let mut buckets = Vec::new();
        let mut bucket_us = 1u64;
        loop {
            let below = h.count_between(0, bucket_us * 1000);
            buckets.push((Reply::Int(bucket_us as i64), Reply::Int(below as i64)));
            if below >= h.len() {
                break;
            }
            bucket_us *= 2;
        }
        out.push((
            Reply::Bulk(name.clone().into()),
            Reply::Map(vec![
                (Reply::text("calls"), Reply::Int(figures.calls as i64)),
                (Reply::text("histogram_usec"), Reply::Map(buckets)),
            ]),
        ));
    }
    s.reply(Reply::Map(out));
    Flow::Done
}

fn memory_stats(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let m = crate::memory::read();
    let clients = s.hub.census.queued_bytes.load(Ordering::Relaxed) as u64;
    let overhead = m.startup + clients;
    let dataset = m.allocated.saturating_sub(overhead);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let int = |n: u64| Reply::Int(n as i64);
    let fields: Vec<(&str, Reply)> = vec![
        ("peak.allocated", int(m.peak_allocated)),
        ("total.allocated", int(m.allocated)),
        ("startup.allocated", int(m.startup)),
        ("replication.backlog", int(0)),
        ("clients.slaves", int(0)),
        ("clients.normal", int(clients)),
        ("cluster.links", int(0)),
        ("aof.buffer", int(0)),
        ("lua.caches", int(0)),
        ("functions.caches", int(0)),
        ("overhead.total", int(overhead)),
        ("keys.count", int(0)),
        ("keys.bytes-per-key", int(0)),
        ("dataset.bytes", int(dataset)),
        ("dataset.percentage", Reply::Double(100.0 * ratio(dataset, m.allocated.saturating_sub(m.startup)))),
        ("peak.percentage", Reply::Double(100.0 * ratio(m.allocated, m.peak_allocated))),
        ("allocator.allocated", int(m.allocated)),
        ("allocator.active", int(m.allocated)),
        ("allocator.resident", int(m.rss)),
        ("allocator-fragmentation.ratio", Reply::Double(1.0)),
        ("allocator-fragmentation.bytes", int(0)),
        ("allocator-rss.ratio", Reply::Double(ratio(m.rss, m.allocated))),
        ("allocator-rss.bytes", Reply::Int(m.rss as i64 - m.allocated as i64)),
        ("rss-overhead.ratio", Reply::Double(1.0)),
        ("rss-overhead.bytes", int(0)),
        ("fragmentation", Reply::Double(ratio(m.rss, m.allocated))),
        ("fragmentation.bytes", Reply::Int(m.rss as i64 - m.allocated as i64)),
    ];
    s.reply(Reply::Map(fields.into_iter().map(|(k, v)| (Reply::text(k), v)).collect()));
    Flow::Done
}

fn memory_doctor(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let m = crate::memory::read();
    // Redis' own threshold for "too little to judge": 5 MB.
    let text = if m.allocated < 5 << 20 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n"
    } else if m.peak_allocated > m.allocated.saturating_mul(3) / 2 {
        "Sam, I detected a few issues in this Herald instance memory implants:\n\n * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\nI'm here to keep you safe, Sam. I want to help you.\n"
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
    };
    s.reply(Reply::Verbatim(text.into()));
    Flow::Done
}

/// Herald has no keys: every key is missing.
fn memory_usage(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    match args.len() {
        3 => s.reply(Reply::Nil),
        5 if args[3].eq_ignore_ascii_case(b"samples") => match parse_i64(&args[4]) {
            Some(n) if n >= 0 => s.reply(Reply::Nil),
            Some(_) => s.error("ERR value is out of range, must be positive"),
            None => s.error("ERR value is not an integer or out of range"),
        },
        _ => s.error("ERR syntax error"),
    }
    Flow::Done
}

fn memory_malloc_stats(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Verbatim(crate::memory::allocator_report().into()));
    Flow::Done
}

fn memory_purge(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    // SAFETY: a plain call into the allocator, any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
    s.reply(Reply::ok());
    Flow::Done
}

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];
