//! INFO [section ...]: Redis' layout, with Herald's pub/sub figures.

use actix::Context;
use bytes::Bytes;
use futures_util::future::join_all;

use super::connection::REDIS_VERSION;
use super::Spec;
use crate::broker::directory::CountChannels;
use crate::broker::pattern_index::NumPat;
use crate::protocol::Reply;
use crate::registry::GetStats;
use crate::session::{wait_for, Flow, Session};

pub fn spec() -> Spec {
    Spec {
        flags: &["loading", "stale"],
        acl: &["@slow", "@dangerous"],
        summary: "Get information and statistics about the server",
        args: "[section...]",
        ..Spec::new("info", -1, "server", info)
    }
}

const SECTIONS: &[&str] = &["server", "clients", "memory", "stats", "cpu", "keyspace"];

/// (user, system) CPU seconds of the process, from /proc (0 elsewhere).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (ticks(11), ticks(12))
}

/// Resident set size from /proc, 0 where that is not available.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn info(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let wanted: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let show = move |section: &str| {
        wanted.is_empty() || wanted.iter().any(|w| w == section || w == "all" || w == "everything" || w == "default")
    };
    let stats = s.broker.clients.send(GetStats);
    let counts = join_all(s.broker.directories().iter().map(|d| d.send(CountChannels)).collect::<Vec<_>>());
    let numpat = s.broker.patterns.send(NumPat);
    let port = s.settings.port;
    let census = s.broker.census.clone();
    let gather = async move {
        let stats = stats.await.ok();
        let (channels, shard) = counts.await.into_iter().flatten().fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        (stats, channels, shard, numpat.await.unwrap_or(0))
    };
    wait_for(gather, move |(stats, channels, shard, patterns), s: &mut Session, _| {
        let mut text = String::new();
        for section in SECTIONS.iter().filter(|sec| show(sec)) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let body = match *section {
                "server" => format!(
                    "# Server\r\nredis_version:{REDIS_VERSION}\r\nherald_version:{}\r\nredis_mode:standalone\r\n\
                     os:{} {}\r\narch_bits:64\r\nmultiplexing_api:tokio\r\nprocess_id:{}\r\ntcp_port:{port}\r\n",
                    env!("CARGO_PKG_VERSION"),
                    std::env::consts::OS,
                    std::env::consts::ARCH,
                    std::process::id(),
                ),
                "clients" => format!(
                    "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nblocked_clients:0\r\n\
                     tracking_clients:0\r\n",
                    stats.map_or(0, |s| s.connected)
                ),
                "memory" => format!("# Memory\r\nused_memory_rss:{}\r\n", rss_bytes()),
                "stats" => format!(
                    "# Stats\r\ntotal_connections_received:{}\r\npubsub_channels:{channels}\r\n\
                     pubsub_patterns:{patterns}\r\npubsubshard_channels:{shard}\r\n\
                     herald_session_actors:{}\r\nherald_channel_actors:{}\r\n\
                     herald_published_messages:{}\r\nherald_delivered_messages:{}\r\n\
                     herald_dropped_slow_subscribers:{}\r\nherald_output_bytes_queued:{}\r\n",
                    stats.map_or(0, |s| s.total_connections),
                    load(&census.sessions),
                    load(&census.channels),
                    load(&census.published),
                    load(&census.delivered),
                    load(&census.dropped_slow),
                    load(&census.queued_bytes),
                ),
                "cpu" => {
                    let (user, sys) = cpu_seconds();
                    format!("# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n")
                }
                _ => "# Keyspace\r\n".to_string(),
            };
            text.push_str(&body);
        }
        s.reply(Reply::Verbatim(Bytes::from(text)));
    })
}

fn load(counter: &std::sync::atomic::AtomicUsize) -> usize {
    counter.load(std::sync::atomic::Ordering::Relaxed)
}
