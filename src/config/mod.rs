//! Herald's settings: a config file, then `HERALD_*` variables and flags at
//! start (see [`mod@file`]); some changeable by CONFIG SET.

pub(crate) mod file;
pub(crate) mod redis;

use std::time::Duration;

/// Limits for one class of client output, as Redis'
/// `client-output-buffer-limit pubsub <hard> <soft> <seconds>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Disconnect as soon as pending output passes this many bytes (0: never).
    pub hard: usize,
    /// Disconnect when pending output stays above this for `soft_for` (0: never).
    pub soft: usize,
    pub soft_for: Duration,
}

impl OutputLimit {
    pub const REDIS_PUBSUB_DEFAULT: OutputLimit =
        OutputLimit { hard: 32 * 1024 * 1024, soft: 8 * 1024 * 1024, soft_for: Duration::from_secs(60) };
    pub const UNLIMITED: OutputLimit = OutputLimit { hard: 0, soft: 0, soft_for: Duration::ZERO };
}

/// Everything a running Herald is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    /// Applies to connections with at least one subscription.
    pub pubsub_output: OutputLimit,
    /// Applies to other connections (Redis' `normal` class: unlimited).
    pub normal_output: OutputLimit,
    pub proto_max_bulk_len: usize,
    /// The most one command may hold (Redis' `client-query-buffer-limit`).
    pub query_buffer_limit: usize,
    pub databases: u32,
    /// Close connections idle this long (Redis' `timeout`; zero: never).
    /// Like Redis, never applied to connections with subscriptions.
    pub idle_timeout: Duration,
    /// How long a channel's actor lives without a publish before it is
    /// retired and its subscribers kept by its directory (virtual channel
    /// actors, ARCHITECTURE.md); zero keeps every actor. Not a Redis
    /// setting: the simulator draws it, production keeps the default.
    pub channel_idle: Duration,
    /// Connections beyond this many are refused with Redis' error.
    pub maxclients: usize,
    /// TCP keepalive probes after this much silence (Redis' `tcp-keepalive`;
    /// zero: off), so peers that vanished without closing are found even
    /// when nothing is written to them. Applies to new connections.
    pub tcp_keepalive: Duration,
    /// The default user's password (Redis' `requirepass`).
    pub requirepass: Option<String>,
    /// ACL users, one `name rule rule…` each (Redis' `user` directive).
    pub users: Vec<String>,
    /// With no password on the default user, refuse clients not on the
    /// loopback interface (Redis' `protected-mode`).
    pub protected_mode: bool,
    /// The TLS listener's port (0: none).
    pub tls_port: u16,
    pub tls: Option<crate::tls::TlsSettings>,
    /// Worker arbiters (None: half the cores).
    pub threads: Option<usize>,
    /// Prometheus endpoint port (0: none).
    pub metrics_port: u16,
    /// The file it was read from, which CONFIG REWRITE writes back.
    pub file: Option<std::path::PathBuf>,
    /// Commands at least this many µs long go to SLOWLOG (negative: none).
    pub slowlog_slower_than: i64,
    pub slowlog_max_len: usize,
    /// LATENCY records spikes of at least this many ms (0: off).
    pub latency_monitor_threshold: u64,
    /// Per-command latency histograms (INFO Latencystats).
    pub latency_tracking: bool,
    /// `maxmemory-clients` as written (`0`, `64mb`, `5%`) and in bytes: above
    /// it, the clients with the most output queued are closed (0: never).
    /// A percentage is of `maxmemory`, which Herald leaves at 0.
    pub maxmemory_clients: (String, u64),
    /// Cluster mode (`cluster-enabled yes`).
    pub cluster_enabled: bool,
    pub cluster: ClusterSettings,
    /// Redis parameters Herald has no use for, as set (config/redis.rs
    /// lists every one Redis 7.0.15 accepts).
    pub foreign: std::collections::BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6379,
            pubsub_output: OutputLimit::REDIS_PUBSUB_DEFAULT,
            normal_output: OutputLimit::UNLIMITED,
            proto_max_bulk_len: 512 * 1024 * 1024,
            query_buffer_limit: crate::protocol::request::QUERY_LIMIT_DEFAULT,
            databases: 16,
            idle_timeout: Duration::ZERO,
            channel_idle: Duration::from_secs(10),
            maxclients: 10_000,
            tcp_keepalive: Duration::from_secs(300),
            requirepass: None,
            users: Vec::new(),
            protected_mode: true,
            tls_port: 0,
            tls: None,
            threads: None,
            metrics_port: 0,
            file: None,
            slowlog_slower_than: 10_000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            foreign: Default::default(),
            maxmemory_clients: ("0".into(), 0),
            cluster_enabled: false,
            cluster: ClusterSettings::default(),
        }
    }
}

/// Redis Cluster's hash slots (the config file's `cluster-slots` ranges
/// are checked against it; `cluster::SLOTS` is this).
pub(crate) const CLUSTER_SLOTS: usize = 16384;

/// Cluster mode's settings, as written; `cluster::Topology` checks them
/// at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Every node's `host:port[@busport]`, the same list on every node
    /// (`cluster-nodes`): slots are split evenly in this order unless
    /// `slots` assigns them.
    pub nodes: Vec<String>,
    /// `cluster-slots <host:port> <first-last>…` directives.
    pub slots: Vec<(String, Vec<(u16, u16)>)>,
    /// This node's address in `nodes` (`cluster-announce-ip` and `port`;
    /// by default the first `bind` address).
    pub announce_ip: Option<String>,
    /// The bus port peers connect to (`cluster-port`; 0: `port + 10000`).
    pub bus_port: u16,
    /// A peer link that answers nothing for this long is closed and
    /// opened again (`cluster-node-timeout`).
    pub node_timeout: Duration,
    /// A peer link with more than this many bytes queued for it is closed,
    /// dropping them (counted), and opened again; 0: never
    /// (`cluster-link-sendbuf-limit`).
    pub link_sendbuf_limit: usize,
    /// etcd's client endpoints (`cluster-etcd`): membership and the slot
    /// map come from there instead of `nodes`.
    pub etcd: Vec<String>,
    /// The cluster's name in etcd (`cluster-name`): its keys live under
    /// `/herald/<name>/`.
    pub name: String,
    /// The TTL of this node's membership lease (`cluster-lease-ttl`, in
    /// seconds): a node silent this long loses its slots, and a node cut
    /// off from etcd this long stops serving them.
    pub lease_ttl: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            nodes: Vec::new(),
            slots: Vec::new(),
            announce_ip: None,
            bus_port: 0,
            node_timeout: Duration::from_millis(15_000),
            // Bounded, unlike Redis' default (0): a link is bounded like a
            // slow subscriber, at the pub/sub class's hard limit.
            link_sendbuf_limit: 32 * 1024 * 1024,
            etcd: Vec::new(),
            name: "herald".into(),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

fn limit_text(l: &OutputLimit) -> String {
    format!("{} {} {}", l.hard, l.soft, l.soft_for.as_secs())
}

impl Config {
    /// The TLS settings, created empty on first use.
    pub fn tls_settings(&mut self) -> &mut crate::tls::TlsSettings {
        self.tls.get_or_insert_with(|| crate::tls::TlsSettings {
            cert_file: String::new(),
            key_file: String::new(),
            ca_cert_file: None,
            auth_clients: crate::tls::ClientAuth::Required,
        })
    }

    /// Every (name, value) CONFIG GET can show: Herald's settings, then
    /// every other Redis 7.0.15 parameter, as set or at Redis' default.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut all = self.own_entries();
        for (name, default) in redis::defaults() {
            if !all.iter().any(|(n, _)| n == name) {
                all.push((name, self.foreign.get(*name).cloned().unwrap_or_else(|| default.to_string())));
            }
        }
        all
    }

    /// Herald's own settings, in a stable order.
    fn own_entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bind", self.bind.clone()),
            ("port", self.port.to_string()),
            (
                "client-output-buffer-limit",
                format!(
                    "normal {} slave 268435456 67108864 60 pubsub {}",
                    limit_text(&self.normal_output),
                    limit_text(&self.pubsub_output)
                ),
            ),
            ("proto-max-bulk-len", self.proto_max_bulk_len.to_string()),
            ("client-query-buffer-limit", self.query_buffer_limit.to_string()),
            ("databases", self.databases.to_string()),
            ("timeout", self.idle_timeout.as_secs().to_string()),
            ("maxclients", self.maxclients.to_string()),
            ("tcp-keepalive", self.tcp_keepalive.as_secs().to_string()),
            ("requirepass", self.requirepass.clone().unwrap_or_default()),
            ("protected-mode", yes_no(self.protected_mode).into()),
            ("threads", self.threads.map_or_else(String::new, |t| t.to_string())),
            ("metrics-port", self.metrics_port.to_string()),
            ("tls-port", self.tls_port.to_string()),
            ("tls-cert-file", self.tls.as_ref().map(|t| t.cert_file.clone()).unwrap_or_default()),
            ("tls-key-file", self.tls.as_ref().map(|t| t.key_file.clone()).unwrap_or_default()),
            ("tls-ca-cert-file", self.tls.as_ref().and_then(|t| t.ca_cert_file.clone()).unwrap_or_default()),
            ("tls-auth-clients", self.tls.as_ref().map_or("yes", |t| t.auth_clients.as_str()).into()),
            ("save", String::new()),
            ("appendonly", "no".into()),
            ("slowlog-log-slower-than", self.slowlog_slower_than.to_string()),
            ("slowlog-max-len", self.slowlog_max_len.to_string()),
            ("latency-monitor-threshold", self.latency_monitor_threshold.to_string()),
            ("latency-tracking", yes_no(self.latency_tracking).into()),
            ("maxmemory-clients", self.maxmemory_clients.0.clone()),
            ("cluster-enabled", yes_no(self.cluster_enabled).into()),
            ("cluster-nodes", self.cluster.nodes.join(",")),
            ("cluster-announce-ip", self.cluster.announce_ip.clone().unwrap_or_default()),
            ("cluster-port", self.cluster.bus_port.to_string()),
            ("cluster-node-timeout", self.cluster.node_timeout.as_millis().to_string()),
            ("cluster-link-sendbuf-limit", self.cluster.link_sendbuf_limit.to_string()),
            ("cluster-etcd", self.cluster.etcd.join(",")),
            ("cluster-name", self.cluster.name.clone()),
            ("cluster-lease-ttl", self.cluster.lease_ttl.as_secs().to_string()),
        ]
    }

    /// Applies one CONFIG SET pair; the error is Redis' wording.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let invalid = |why: &str| format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}");
        match name {
            "client-output-buffer-limit" => {
                let words: Vec<&str> = value.split_whitespace().collect();
                if words.is_empty() || !words.len().is_multiple_of(4) {
                    return Err(invalid("Wrong number of arguments in buffer limit configuration."));
                }
                let mut next = self.clone();
                for class in words.chunks(4) {
                    let nums: Option<Vec<u64>> = class[1..].iter().map(|w| parse_memory(w)).collect();
                    let Some(nums) = nums else {
                        return Err(invalid(
                            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
                        ));
                    };
                    let limit = OutputLimit {
                        hard: nums[0] as usize,
                        soft: nums[1] as usize,
                        soft_for: Duration::from_secs(nums[2]),
                    };
                    match class[0].to_ascii_lowercase().as_str() {
                        "pubsub" => next.pubsub_output = limit,
                        "normal" => next.normal_output = limit,
                        "slave" | "replica" => {}
                        _ => return Err(invalid("Invalid client class specified in buffer limit configuration.")),
                    }
                }
                *self = next;
                Ok(())
            }
            "proto-max-bulk-len" | "client-query-buffer-limit" => match parse_memory(value) {
                Some(n) if n >= 1024 * 1024 => {
                    let field = match name {
                        "proto-max-bulk-len" => &mut self.proto_max_bulk_len,
                        _ => &mut self.query_buffer_limit,
                    };
                    *field = n as usize;
                    Ok(())
                }
                Some(_) => Err(invalid("argument must be between 1048576 and 9223372036854775807 inclusive")),
                None => Err(invalid("argument must be a memory value")),
            },
            "timeout" | "tcp-keepalive" => match value.parse::<u64>() {
                Ok(secs) => {
                    let field = if name == "timeout" { &mut self.idle_timeout } else { &mut self.tcp_keepalive };
                    *field = Duration::from_secs(secs);
                    Ok(())
                }
                Err(_) => Err(invalid("argument couldn't be parsed into an integer")),
            },
            "maxclients" => match value.parse::<usize>() {
                Ok(n) if n >= 1 => {
                    self.maxclients = n;
                    Ok(())
                }
                _ => Err(invalid("argument must be between 1 and 4294967295 inclusive")),
            },
            "requirepass" => {
                self.requirepass = (!value.is_empty()).then(|| value.to_string());
                Ok(())
            }
            "protected-mode" | "latency-tracking" => {
                let on = match value.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(invalid("argument must be 'yes' or 'no'")),
                };
                *(if name == "protected-mode" { &mut self.protected_mode } else { &mut self.latency_tracking }) = on;
                Ok(())
            }
            "maxmemory-clients" => {
                let bytes = match value.strip_suffix('%') {
                    Some(pct) => match pct.parse::<u64>() {
                        // Of maxmemory, which is 0 in Herald: no limit.
                        Ok(p) if p <= 100 => 0,
                        _ => return Err(invalid("argument must be a memory or percent value")),
                    },
                    None => parse_memory(value).ok_or_else(|| invalid("argument must be a memory or percent value"))?,
                };
                self.maxmemory_clients = (value.to_string(), bytes);
                Ok(())
            }
            "slowlog-log-slower-than" => match value.parse::<i64>() {
                Ok(n) if n >= -1 => {
                    self.slowlog_slower_than = n;
                    Ok(())
                }
                Ok(_) => Err(invalid("argument must be between -1 and 9223372036854775807 inclusive")),
                Err(_) => Err(invalid("argument couldn't be parsed into an integer")),
            },
            "slowlog-max-len" | "latency-monitor-threshold" => match value.parse::<u64>() {
                Ok(n) if name == "slowlog-max-len" && n <= i64::MAX as u64 => {
                    self.slowlog_max_len = n as usize;
                    Ok(())
                }
                Ok(n) => {
                    self.latency_monitor_threshold = n;
                    Ok(())
                }
                Err(_) if value.starts_with('-') => {
                    Err(invalid("argument must be between 0 and 9223372036854775807 inclusive"))
                }
                Err(_) => Err(invalid("argument couldn't be parsed into an integer")),
            },
            _ if IMMUTABLE.contains(&name) => Err(invalid("can't set immutable config")),
            _ if IGNORED.contains(&name) => Ok(()),
            _ if redis::knows(name) => {
                self.foreign.insert(name.to_string(), value.to_string());
                Ok(())
            }
            _ => Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")),
        }
    }
}

/// Herald's settings CONFIG SET refuses: they take effect at start only.
const IMMUTABLE: &[&str] = &[
    "bind",
    "port",
    "databases",
    "threads",
    "metrics-port",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "cluster-enabled",
    "cluster-nodes",
    "cluster-announce-ip",
    "cluster-port",
    "cluster-node-timeout",
    "cluster-link-sendbuf-limit",
    "cluster-etcd",
    "cluster-name",
    "cluster-lease-ttl",
];

/// Herald's settings CONFIG SET accepts and ignores (it persists nothing).
const IGNORED: &[&str] = &["save", "appendonly"];

/// Whether CONFIG SET changes Herald's setting `name` while it runs (and so
/// CONFIG REWRITE writes it back).
pub(crate) fn changes_at_runtime(name: &str) -> bool {
    !IMMUTABLE.contains(&name) && !IGNORED.contains(&name)
}

fn yes_no(on: bool) -> &'static str {
    if on {
        "yes"
    } else {
        "no"
    }
}

/// Redis' memory values: `1024`, `64kb`, `8mb`, `1gb`, `1k`, `1m`, `1g`.
pub(crate) fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let units: [(&str, u64); 6] =
        [("kb", 1024), ("mb", 1 << 20), ("gb", 1 << 30), ("k", 1000), ("m", 1_000_000), ("g", 1_000_000_000)];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            return num.parse::<u64>().ok()?.checked_mul(mul);
        }
    }
    lower.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CONFIG REWRITE writes back exactly the settings CONFIG SET changes:
    /// each of Herald's settings, set to its own current value, is accepted
    /// iff it changes at runtime (or is one CONFIG SET ignores).
    #[test]
    fn runtime_settings_are_those_config_set_changes() {
        let config = Config::default();
        for (name, value) in config.own_entries() {
            let accepted = config.clone().set(name, &value).is_ok();
            assert_eq!(accepted, changes_at_runtime(name) || IGNORED.contains(&name), "{name} = {value:?}");
        }
    }

    #[test]
    fn output_limits_round_trip() {
        let mut c = Config::default();
        c.set("client-output-buffer-limit", "pubsub 1mb 512kb 10").unwrap();
        assert_eq!(c.pubsub_output.hard, 1 << 20);
        assert_eq!(c.pubsub_output.soft, 512 * 1024);
        assert!(c
            .entries()
            .iter()
            .any(|(k, v)| *k == "client-output-buffer-limit" && v.ends_with("pubsub 1048576 524288 10")));
        assert!(c.set("client-output-buffer-limit", "pubsub 1 2").is_err());
        assert!(c.set("nope", "1").unwrap_err().starts_with("ERR Unknown option"));
    }
}
