//! INFO [section ...]: every section an empty Redis 7.0.15 prints, in its
//! order, with Herald's figures where Herald has the thing (clients,
//! memory, commands, errors, latency, pub/sub) and an empty,
//! persistence-less, replica-less Redis' values where it has not.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use actix::Context;
use bytes::Bytes;
use futures_util::future::join_all;

use super::Spec;
use crate::broker::directory::CountChannels;
use crate::broker::pattern_index::NumPat;
use crate::protocol::Reply;
use crate::redis::VERSION as REDIS_VERSION;
use crate::registry::{GetStats, RegistryStats};
use crate::session::{wait_for, Flow, Session};
use crate::stats::Shard;

pub(crate) fn spec() -> Spec {
    Spec {
        summary: "Get information and statistics about the server",
        args: "[section...]",
        ..Spec::new("info", -1, "server", info)
    }
}

/// Redis' sections in Redis' order, and whether plain INFO (`default`)
/// shows each.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// Which sections a request names: `all`/`everything` every one,
/// `default` (or nothing) the default ones, otherwise those named.
fn chosen(words: &[String]) -> Vec<&'static str> {
    let every = words.iter().any(|w| w == "all" || w == "everything");
    let default = words.is_empty() || words.iter().any(|w| w == "default");
    SECTIONS
        .iter()
        .filter(|(name, by_default)| every || (default && *by_default) || words.iter().any(|w| w == name))
        .map(|(name, _)| *name)
        .collect()
}

/// (user, system) CPU seconds of the process, from /proc (0 elsewhere).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (ticks(11), ticks(12))
}

/// What the sections are made from, gathered before any is written.
struct Figures {
    registry: Option<RegistryStats>,
    channels: usize,
    shard_channels: usize,
    patterns: usize,
    commands: Shard,
}

fn info(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let words: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let sections = chosen(&words);
    let stats = s.hub.clients.send(GetStats);
    let counts = join_all(s.hub.directories().iter().map(|d| d.send(CountChannels)).collect::<Vec<_>>());
    let numpat = s.hub.patterns.send(NumPat);
    let gather = async move {
        let registry = stats.await.ok();
        let (channels, shard_channels) =
            counts.await.into_iter().flatten().fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        (registry, channels, shard_channels, numpat.await.unwrap_or(0))
    };
    wait_for(gather, move |(registry, channels, shard_channels, patterns), s: &mut Session, _| {
        let figures = Figures { registry, channels, shard_channels, patterns, commands: s.hub.stats.snapshot() };
        let text: Vec<String> = sections.iter().map(|name| section(name, s, &figures)).collect();
        s.reply(Reply::Verbatim(Bytes::from(text.join("\r\n"))));
    })
}

fn load(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::Relaxed)
}

/// Writes `name:value` lines.
fn lines(title: &str, fields: &[(&str, String)]) -> String {
    let mut out = format!("# {title}\r\n");
    for (k, v) in fields {
        let _ = write!(out, "{k}:{v}\r\n");
    }
    out
}

fn section(name: &str, s: &Session, f: &Figures) -> String {
    let started = &s.hub.stats;
    match name {
        "server" => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let uptime = started.started.elapsed().as_secs();
            let os = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let config_file = f.registry.as_ref().and_then(|r| r.config.file.clone());
            lines(
                "Server",
                &[
                    ("redis_version", REDIS_VERSION.into()),
                    ("redis_git_sha1", "00000000".into()),
                    ("redis_git_dirty", "0".into()),
                    ("redis_build_id", "0".into()),
                    ("redis_mode", super::cluster::mode(s).into()),
                    ("os", format!("Linux {} {}", os.trim(), std::env::consts::ARCH)),
                    ("arch_bits", "64".into()),
                    ("monotonic_clock", "POSIX clock_gettime".into()),
                    ("multiplexing_api", "epoll".into()),
                    ("atomicvar_api", "c11-builtin".into()),
                    ("gcc_version", "0.0.0".into()),
                    ("process_id", std::process::id().to_string()),
                    ("process_supervised", "no".into()),
                    ("run_id", started.run_id.clone()),
                    ("tcp_port", s.settings.port.to_string()),
                    ("server_time_usec", now.as_micros().to_string()),
                    ("uptime_in_seconds", uptime.to_string()),
                    ("uptime_in_days", (uptime / 86400).to_string()),
                    ("hz", "10".into()),
                    ("configured_hz", "10".into()),
                    ("lru_clock", (now.as_secs() & ((1 << 24) - 1)).to_string()),
                    ("executable", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()),
                    ("config_file", config_file.map(|p| p.display().to_string()).unwrap_or_default()),
                    ("io_threads_active", "0".into()),
                    ("herald_version", env!("CARGO_PKG_VERSION").into()),
                    ("herald_arbiters", s.hub.directories().len().to_string()),
                ],
            )
        }
        "clients" => lines(
            "Clients",
            &[
                ("connected_clients", f.registry.as_ref().map_or(0, |r| r.connected).to_string()),
                ("cluster_connections", "0".into()),
                ("maxclients", s.settings.maxclients.to_string()),
                ("client_recent_max_input_buffer", "0".into()),
                ("client_recent_max_output_buffer", "0".into()),
                ("blocked_clients", "0".into()),
                ("tracking_clients", "0".into()),
                ("clients_in_timeout_table", "0".into()),
            ],
        ),
        "memory" => memory(s),
        "persistence" => {
            let last_save = started.started_unix.to_string();
            let mut fields: Vec<(&str, String)> =
                ["loading", "async_loading", "current_cow_peak", "current_cow_size", "current_cow_size_age"]
                    .iter()
                    .map(|k| (*k, "0".to_string()))
                    .collect();
            fields.push(("current_fork_perc", "0.00".into()));
            for k in ["current_save_keys_processed", "current_save_keys_total", "rdb_changes_since_last_save"] {
                fields.push((k, "0".into()));
            }
            fields.extend([
                ("rdb_bgsave_in_progress", "0".into()),
                ("rdb_last_save_time", last_save),
                ("rdb_last_bgsave_status", "ok".into()),
                ("rdb_last_bgsave_time_sec", "-1".into()),
                ("rdb_current_bgsave_time_sec", "-1".into()),
                ("rdb_saves", "0".into()),
                ("rdb_last_cow_size", "0".into()),
                ("rdb_last_load_keys_expired", "0".into()),
                ("rdb_last_load_keys_loaded", "0".into()),
                ("aof_enabled", "0".into()),
                ("aof_rewrite_in_progress", "0".into()),
                ("aof_rewrite_scheduled", "0".into()),
                ("aof_last_rewrite_time_sec", "-1".into()),
                ("aof_current_rewrite_time_sec", "-1".into()),
                ("aof_last_bgrewrite_status", "ok".into()),
                ("aof_rewrites", "0".into()),
                ("aof_rewrites_consecutive_failures", "0".into()),
                ("aof_last_write_status", "ok".into()),
                ("aof_last_cow_size", "0".into()),
                ("module_fork_in_progress", "0".into()),
                ("module_fork_last_cow_size", "0".into()),
            ]);
            lines("Persistence", &fields)
        }
        "stats" => stats(s, f),
        "replication" => lines(
            "Replication",
            &[
                ("role", "master".into()),
                ("connected_slaves", "0".into()),
                ("master_failover_state", "no-failover".into()),
                ("master_replid", started.run_id.clone()),
                ("master_replid2", "0".repeat(40)),
                ("master_repl_offset", "0".into()),
                ("second_repl_offset", "-1".into()),
                ("repl_backlog_active", "0".into()),
                ("repl_backlog_size", "1048576".into()),
                ("repl_backlog_first_byte_offset", "0".into()),
                ("repl_backlog_histlen", "0".into()),
            ],
        ),
        "cpu" => {
            let (user, sys) = cpu_seconds();
            lines(
                "CPU",
                &[
                    ("used_cpu_sys", format!("{sys:.6}")),
                    ("used_cpu_user", format!("{user:.6}")),
                    ("used_cpu_sys_children", "0.000000".into()),
                    ("used_cpu_user_children", "0.000000".into()),
                    ("used_cpu_sys_main_thread", format!("{sys:.6}")),
                    ("used_cpu_user_main_thread", format!("{user:.6}")),
                ],
            )
        }
        "modules" => "# Modules\r\n".into(),
        "commandstats" => {
            let mut out = "# Commandstats\r\n".to_string();
            for (name, c) in &f.commands.commands {
                let per_call = if c.calls == 0 { 0.0 } else { c.usec as f64 / c.calls as f64 };
                let _ = write!(
                    out,
                    "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                    c.calls, c.usec, c.rejected, c.failed
                );
            }
            out
        }
        "errorstats" => {
            let mut out = "# Errorstats\r\n".to_string();
            for (code, n) in &f.commands.errors {
                let _ = write!(out, "errorstat_{code}:count={n}\r\n");
            }
            out
        }
        "latencystats" => {
            let mut out = "# Latencystats\r\n".to_string();
            for (name, c) in f.commands.commands.iter().filter(|(_, c)| c.latency.is_some()) {
                let _ = write!(
                    out,
                    "latency_percentiles_usec_{name}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
                    c.percentile_usec(50.0),
                    c.percentile_usec(99.0),
                    c.percentile_usec(99.9)
                );
            }
            out
        }
        "cluster" => format!("# Cluster\r\ncluster_enabled:{}\r\n", s.hub.cluster.is_some() as u8),
        _ => "# Keyspace\r\n".into(),
    }
}

fn memory(s: &Session) -> String {
    let m = crate::memory::read();
    let clients = load(&s.hub.census.queued_bytes) as u64;
    let overhead = m.startup + clients;
    let dataset = m.allocated.saturating_sub(overhead);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let human = crate::memory::human;
    let total = crate::memory::system_total();
    lines(
        "Memory",
        &[
            ("used_memory", m.allocated.to_string()),
            ("used_memory_human", human(m.allocated)),
            ("used_memory_rss", m.rss.to_string()),
            ("used_memory_rss_human", human(m.rss)),
            ("used_memory_peak", m.peak_allocated.to_string()),
            ("used_memory_peak_human", human(m.peak_allocated)),
            ("used_memory_peak_perc", format!("{:.2}%", 100.0 * ratio(m.allocated, m.peak_allocated))),
            ("used_memory_overhead", overhead.to_string()),
            ("used_memory_startup", m.startup.to_string()),
            ("used_memory_dataset", dataset.to_string()),
            (
                "used_memory_dataset_perc",
                format!("{:.2}%", 100.0 * ratio(dataset, m.allocated.saturating_sub(m.startup))),
            ),
            ("allocator_allocated", m.allocated.to_string()),
            ("allocator_active", m.allocated.to_string()),
            ("allocator_resident", m.rss.to_string()),
            ("total_system_memory", total.to_string()),
            ("total_system_memory_human", human(total)),
            ("used_memory_lua", "0".into()),
            ("used_memory_vm_eval", "0".into()),
            ("used_memory_lua_human", "0B".into()),
            ("used_memory_scripts_eval", "0".into()),
            ("number_of_cached_scripts", "0".into()),
            ("number_of_functions", "0".into()),
            ("number_of_libraries", "0".into()),
            ("used_memory_vm_functions", "0".into()),
            ("used_memory_vm_total", "0".into()),
            ("used_memory_vm_total_human", "0B".into()),
            ("used_memory_functions", "0".into()),
            ("used_memory_scripts", "0".into()),
            ("used_memory_scripts_human", "0B".into()),
            ("maxmemory", "0".into()),
            ("maxmemory_human", "0B".into()),
            ("maxmemory_policy", "noeviction".into()),
            ("allocator_frag_ratio", "1.00".into()),
            ("allocator_frag_bytes", "0".into()),
            ("allocator_rss_ratio", format!("{:.2}", ratio(m.rss, m.allocated))),
            ("allocator_rss_bytes", (m.rss as i64 - m.allocated as i64).to_string()),
            ("rss_overhead_ratio", "1.00".into()),
            ("rss_overhead_bytes", "0".into()),
            ("mem_fragmentation_ratio", format!("{:.2}", ratio(m.rss, m.allocated))),
            ("mem_fragmentation_bytes", (m.rss as i64 - m.allocated as i64).to_string()),
            ("mem_not_counted_for_evict", "0".into()),
            ("mem_replication_backlog", "0".into()),
            ("mem_total_replication_buffers", "0".into()),
            ("mem_clients_slaves", "0".into()),
            ("mem_clients_normal", clients.to_string()),
            ("mem_cluster_links", "0".into()),
            ("mem_aof_buffer", "0".into()),
            ("mem_allocator", "mimalloc".into()),
            ("active_defrag_running", "0".into()),
            ("lazyfree_pending_objects", "0".into()),
            ("lazyfreed_objects", "0".into()),
        ],
    )
}

fn stats(s: &Session, f: &Figures) -> String {
    let census = &s.hub.census;
    let registry = f.registry.as_ref();
    let mut fields: Vec<(&str, String)> = vec![
        ("total_connections_received", registry.map_or(0, |r| r.total_connections).to_string()),
        ("total_commands_processed", f.commands.total_calls().to_string()),
    ];
    let traffic = &census.traffic;
    let (ops, input, output) = s.hub.stats.rates();
    fields.extend([
        ("instantaneous_ops_per_sec", (ops as u64).to_string()),
        ("total_net_input_bytes", traffic.input_bytes.load(Ordering::Relaxed).to_string()),
        ("total_net_output_bytes", traffic.output_bytes.load(Ordering::Relaxed).to_string()),
        ("total_net_repl_input_bytes", "0".into()),
        ("total_net_repl_output_bytes", "0".into()),
        ("instantaneous_input_kbps", format!("{:.2}", input / 1024.0)),
        ("instantaneous_output_kbps", format!("{:.2}", output / 1024.0)),
        ("instantaneous_input_repl_kbps", "0.00".into()),
        ("instantaneous_output_repl_kbps", "0.00".into()),
    ]);
    fields.push(("rejected_connections", registry.map_or(0, |r| r.rejected_connections).to_string()));
    for k in ["sync_full", "sync_partial_ok", "sync_partial_err", "expired_keys"] {
        fields.push((k, "0".into()));
    }
    fields.push(("expired_stale_perc", "0.00".into()));
    for k in ["expired_time_cap_reached_count", "expire_cycle_cpu_milliseconds", "evicted_keys"] {
        fields.push((k, "0".into()));
    }
    fields.push(("evicted_clients", load(&census.evicted_clients).to_string()));
    for k in ["total_eviction_exceeded_time", "current_eviction_exceeded_time", "keyspace_hits", "keyspace_misses"] {
        fields.push((k, "0".into()));
    }
    fields.extend([
        ("pubsub_channels", f.channels.to_string()),
        ("pubsub_patterns", f.patterns.to_string()),
        ("pubsubshard_channels", f.shard_channels.to_string()),
    ]);
    for k in [
        "latest_fork_usec",
        "total_forks",
        "migrate_cached_sockets",
        "slave_expires_tracked_keys",
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
        "tracking_total_keys",
        "tracking_total_items",
        "tracking_total_prefixes",
        "unexpected_error_replies",
    ] {
        fields.push((k, "0".into()));
    }
    fields.push(("total_error_replies", f.commands.error_replies.to_string()));
    fields.push(("dump_payload_sanitizations", "0".into()));
    fields.push(("total_reads_processed", traffic.reads.load(Ordering::Relaxed).to_string()));
    fields.push(("total_writes_processed", traffic.writes.load(Ordering::Relaxed).to_string()));
    for k in
        ["io_threaded_reads_processed", "io_threaded_writes_processed", "reply_buffer_shrinks", "reply_buffer_expands"]
    {
        fields.push((k, "0".into()));
    }
    fields.extend([
        ("herald_session_actors", load(&census.sessions).to_string()),
        ("herald_channel_actors", load(&census.channels).to_string()),
        ("herald_channel_activations", load(&census.activations).to_string()),
        ("herald_published_messages", load(&census.published).to_string()),
        ("herald_delivered_messages", load(&census.delivered).to_string()),
        ("herald_dropped_slow_subscribers", load(&census.dropped_slow).to_string()),
        ("herald_output_bytes_queued", load(&census.queued_bytes).to_string()),
    ]);
    if let Some(c) = &s.hub.cluster {
        // The slot map in force, with etcd the members and the maps put
        // in force, and what the links forwarded and dropped (the Cluster
        // section stays Redis' own).
        let f = &c.figures;
        fields.extend([
            ("herald_cluster_epoch", f.epoch.load(Ordering::Relaxed).to_string()),
            ("herald_cluster_slots_owned", f.slots_owned.load(Ordering::Relaxed).to_string()),
            ("herald_cluster_members", f.members.load(Ordering::Relaxed).to_string()),
            ("herald_cluster_maps_applied", f.maps_applied.load(Ordering::Relaxed).to_string()),
            ("herald_cluster_publishes_forwarded", f.forwarded.load(Ordering::Relaxed).to_string()),
            ("herald_cluster_publishes_dropped", f.dropped.load(Ordering::Relaxed).to_string()),
            ("herald_cluster_links_buffer_limit_exceeded", f.limit_exceeded.load(Ordering::Relaxed).to_string()),
        ]);
    }
    lines("Stats", &fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sections_are_chosen_as_redis_chooses_them() {
        let default = chosen(&[]);
        assert_eq!(default.len(), 11);
        assert!(!default.contains(&"commandstats") && !default.contains(&"latencystats"));
        assert_eq!(chosen(&words(&["default"])), default);
        assert_eq!(chosen(&words(&["all"])).len(), 13);
        assert_eq!(chosen(&words(&["everything"])).len(), 13);
        assert_eq!(chosen(&words(&["keyspace", "server", "nope"])), ["server", "keyspace"]);
        assert_eq!(chosen(&words(&["commandstats"])), ["commandstats"]);
    }
}
