//! Herald's settings: a config file, then `HERALD_*` variables and flags at
//! start (see [`mod@file`]); some changeable by CONFIG SET.

mod check;
pub(crate) mod file;
pub(crate) mod open_files;
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
    pub const REDIS_REPLICA_DEFAULT: OutputLimit =
        OutputLimit { hard: 256 * 1024 * 1024, soft: 64 * 1024 * 1024, soft_for: Duration::from_secs(60) };
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
    /// Redis' `replica` class: kept to show back, as Herald has no replicas.
    pub replica_output: OutputLimit,
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
    /// `maxmemory-clients` as Redis keeps it: bytes, or minus a percentage
    /// of `maxmemory` (see [`Config::client_eviction_limit`]).
    pub maxmemory_clients: i64,
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
            replica_output: OutputLimit::REDIS_REPLICA_DEFAULT,
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
            maxmemory_clients: 0,
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
                    "normal {} slave {} pubsub {}",
                    limit_text(&self.normal_output),
                    limit_text(&self.replica_output),
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
            (
                "maxmemory-clients",
                match self.maxmemory_clients {
                    n if n < 0 => format!("{}%", -n),
                    n => n.to_string(),
                },
            ),
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

    /// CONFIG SET's pairs, all or nothing, refused as Redis 7.0.15 refuses
    /// them and in its order: the first unknown, start-only, protected or
    /// repeated name in the list, else the first value its check refuses.
    /// The error is Redis' wording.
    pub fn set_all(&mut self, pairs: &[(String, String)]) -> Result<(), String> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !self.knows(name) {
                return Err(unknown(name));
            }
            let kind = redis::param(name).map(|p| &p.kind);
            let refusal = if IMMUTABLE.contains(&name.as_str()) || matches!(kind, Some(redis::Kind::Immutable(_))) {
                Some("can't set immutable config")
            } else if matches!(kind, Some(redis::Kind::Protected(_))) {
                Some("can't set protected config")
            } else if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                Some("duplicate parameter")
            } else {
                None
            };
            if let Some(why) = refusal {
                return Err(invalid(name, why));
            }
        }
        let mut next = self.clone();
        for (name, value) in pairs {
            next.apply(name, value)?;
        }
        *self = next;
        Ok(())
    }

    /// At start, once the file, variables and flags are read: Redis'
    /// refusal when `tls-cluster` or `tls-replication` asks for TLS and no
    /// certificate is configured.
    pub fn tls_needed(&self) -> Result<(), String> {
        let wanted =
            ["tls-cluster", "tls-replication"].iter().any(|n| self.foreign.get(*n).is_some_and(|v| v == "yes"));
        if wanted && self.tls.as_ref().is_none_or(|t| t.cert_file.is_empty()) {
            return Err("No tls-cert-file configured! Failed to configure TLS. Check logs for more info.".into());
        }
        Ok(())
    }

    /// One CONFIG SET pair (see [`Config::set_all`]).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.set_all(&[(name.to_string(), value.to_string())])
    }

    /// A config file's directive for a Redis parameter: checked as CONFIG
    /// SET checks it, but start-only and protected parameters are taken
    /// too (a file is read at start).
    pub(crate) fn load(&mut self, name: &str, value: &str) -> Result<(), String> {
        if !self.knows(name) {
            return Err(unknown(name));
        }
        // Redis configures TLS once everything is read, so these need a
        // certificate by then, not by their line (`tls_needed`).
        if matches!(name, "tls-cluster" | "tls-replication") {
            self.foreign.insert(name.to_string(), value.to_string());
            return Ok(());
        }
        self.apply(name, value)
    }

    /// How many bytes of output all clients may hold before the biggest
    /// are evicted (0: no limit), as Redis computes it from
    /// `maxmemory-clients`: a percentage is of `maxmemory` (with none, no
    /// limit), and any limit is at least 128 KiB, so a bad setting cannot
    /// cut every client off (Redis' reason, in `getClientEvictionLimit`).
    pub fn client_eviction_limit(&self) -> u64 {
        let limit = match self.maxmemory_clients {
            n if n < 0 => {
                let maxmemory = self.foreign.get("maxmemory").and_then(|m| m.parse::<u64>().ok()).unwrap_or(0);
                (maxmemory as f64 * -n as f64 / 100.0) as u64
            }
            n => n as u64,
        };
        if limit == 0 {
            0
        } else {
            limit.max(128 * 1024)
        }
    }

    /// Whether `name` is Redis' parameter or one of Herald's.
    fn knows(&self, name: &str) -> bool {
        redis::knows(name) || self.own_entries().iter().any(|(own, _)| *own == name)
    }

    /// Checks `value` as Redis does and applies it: to Herald's setting
    /// if it is one, else kept to show back.
    fn apply(&mut self, name: &str, value: &str) -> Result<(), String> {
        let value = check::check(name, value).map_err(|why| invalid(name, &why))?;
        // The check has read the number already; this only converts it.
        let number = |value: &str| {
            value.parse::<u64>().map_err(|_| invalid(name, "argument couldn't be parsed into an integer"))
        };
        match name {
            "client-output-buffer-limit" => self.set_output_limits(&value)?,
            "proto-max-bulk-len" => self.proto_max_bulk_len = number(&value)? as usize,
            "client-query-buffer-limit" => self.query_buffer_limit = number(&value)? as usize,
            "timeout" => self.idle_timeout = Duration::from_secs(number(&value)?),
            "tcp-keepalive" => self.tcp_keepalive = Duration::from_secs(number(&value)?),
            "maxclients" => self.maxclients = number(&value)? as usize,
            "requirepass" => self.requirepass = (!value.is_empty()).then_some(value),
            "protected-mode" => self.protected_mode = value == "yes",
            "latency-tracking" => self.latency_tracking = value == "yes",
            "maxmemory-clients" => {
                let percent = value.strip_suffix('%').map(|p| p.parse::<i64>().map(|p| -p));
                self.maxmemory_clients = match percent {
                    Some(p) => p,
                    None => value.parse(),
                }
                .map_err(|_| invalid(name, "argument must be a memory or percent value"))?;
            }
            "tls-cluster" | "tls-replication" if value == "yes" && self.tls.is_none() => {
                // Redis (re)configures TLS for these, which fails without a
                // certificate.
                return Err(invalid(name, "Unable to update TLS configuration. Check server logs."));
            }
            "tls-cluster" if value == "yes" && self.cluster_enabled => {
                return Err(invalid(name, TLS_CLUSTER));
            }
            "slowlog-log-slower-than" => {
                self.slowlog_slower_than =
                    value.parse().map_err(|_| invalid(name, "argument couldn't be parsed into an integer"))?
            }
            "slowlog-max-len" => self.slowlog_max_len = number(&value)? as usize,
            "latency-monitor-threshold" => self.latency_monitor_threshold = number(&value)?,
            // Checked as Redis checks them; Herald persists nothing.
            "save" | "appendonly" => {}
            _ if redis::knows(name) => {
                if let Some(other) = redis::param(name).and_then(|p| p.alias) {
                    self.foreign.insert(other.to_string(), value.clone());
                }
                self.foreign.insert(name.to_string(), value);
            }
            _ => return Err(unknown(name)),
        }
        Ok(())
    }

    /// `client-output-buffer-limit <class> <hard> <soft> <seconds>…`, each
    /// class checked before any is applied, as Redis does; no classes at
    /// all changes nothing.
    fn set_output_limits(&mut self, value: &str) -> Result<(), String> {
        let invalid = |why: &str| invalid("client-output-buffer-limit", why);
        let words = check::multi_arg(value);
        if !words.len().is_multiple_of(4) {
            return Err(invalid("Wrong number of arguments in buffer limit configuration."));
        }
        let mut next = self.clone();
        for class in words.chunks(4) {
            let slot = match class[0].to_ascii_lowercase().as_str() {
                "pubsub" => &mut next.pubsub_output,
                "normal" => &mut next.normal_output,
                "slave" | "replica" => &mut next.replica_output,
                _ => return Err(invalid("Invalid client class specified in buffer limit configuration.")),
            };
            let hard = check::memory(class[1]);
            let soft = check::memory(class[2]);
            let seconds = check::whole_strtoll(class[3]).filter(|s| *s >= 0);
            let (Some(hard), Some(soft), Some(seconds)) = (hard, soft, seconds) else {
                return Err(invalid("Error in hard, soft or soft_seconds setting in buffer limit configuration."));
            };
            *slot =
                OutputLimit { hard: hard as usize, soft: soft as usize, soft_for: Duration::from_secs(seconds as u64) };
        }
        *self = next;
        Ok(())
    }
}

/// Redis' CONFIG SET error for a name it does not know.
fn unknown(name: &str) -> String {
    format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
}

/// Why `tls-cluster yes` is refused in cluster mode, at start and by
/// CONFIG SET (SPEC §9.4).
pub(crate) const TLS_CLUSTER: &str =
    "tls-cluster yes: Herald's cluster bus does not speak TLS; keep it on a network only the nodes reach";

/// Redis' CONFIG SET error for parameter `name`.
pub(crate) fn invalid(name: &str, why: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
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
