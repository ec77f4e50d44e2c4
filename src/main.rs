//! `herald`: the server binary.

use std::path::PathBuf;

use clap::Parser;
use herald::Listeners;
use herald::TlsAcceptor;
use herald::{configure, Config};
use tracing_subscriber::EnvFilter;

/// glibc's malloc was an eighth of the publish path's CPU (many small,
/// short-lived allocations across tasks); mimalloc's thread-local free
/// lists make them cheap.
#[global_allocator]
static ALLOCATOR: Mimalloc = Mimalloc;

/// mimalloc, asked as C asks it (`mi_malloc`) when the alignment is a
/// word's or less. Why: the mimalloc crate's allocator passes every
/// request to `mi_malloc_aligned`, whose fast path takes only blocks up
/// to 1 KiB; any larger one (an output or read buffer, a growing `Vec`)
/// goes through its generic aligned path, which over-allocates
/// (callgrind, 1 → 1: 22 allocations per message at 75 instructions each
/// on average). Every mimalloc block is a whole number of words from a
/// word-aligned start, so a word's alignment needs nothing more.
struct Mimalloc;

const WORD: usize = std::mem::size_of::<usize>();

// SAFETY: each call passes a layout's size to mimalloc's matching call,
// the aligned one whenever the alignment is more than every block has.
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        Mimalloc::pick(layout, libmimalloc_sys::mi_malloc, libmimalloc_sys::mi_malloc_aligned)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        Mimalloc::pick(layout, libmimalloc_sys::mi_zalloc, libmimalloc_sys::mi_zalloc_aligned)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        libmimalloc_sys::mi_free(ptr.cast());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
        } else {
            libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

type Plain = unsafe extern "C" fn(usize) -> *mut std::ffi::c_void;
type Aligned = unsafe extern "C" fn(usize, usize) -> *mut std::ffi::c_void;

impl Mimalloc {
    #[inline]
    unsafe fn pick(layout: std::alloc::Layout, plain: Plain, aligned: Aligned) -> *mut u8 {
        if layout.align() <= WORD {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

/// A Redis-compatible pub/sub broker.
///
/// Settings come from the config file (Redis-style directives, see
/// herald.conf.example), then HERALD_* variables, then flags.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A config file of Redis-style directives (`port 6380`, `user alice …`).
    config: Option<PathBuf>,
    /// Check the configuration (files, certificates, users), print the
    /// result and exit: 0 if it is valid.
    #[arg(long)]
    check_config: bool,
    /// Log lines as JSON objects instead of text.
    #[arg(long, env = "HERALD_LOG_JSON")]
    log_json: bool,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "HERALD_BIND")]
    bind: Option<String>,
    /// TCP port (0: no plain TCP, TLS only) [default: 6379].
    #[arg(long, short, env = "HERALD_PORT")]
    port: Option<String>,
    /// Worker arbiters (threads) [default: half the cores, at least one,
    /// leaving the rest to the kernel's network stack; see BENCHMARKS.md].
    #[arg(long, env = "HERALD_THREADS")]
    threads: Option<String>,
    /// Pub/sub output limit "<hard> <soft> <seconds>" [default: 32mb 8mb 60].
    #[arg(long, env = "HERALD_PUBSUB_OUTPUT_LIMIT")]
    pubsub_output_limit: Option<String>,
    /// Close clients idle this many seconds (0: never; never subscribers).
    #[arg(long, env = "HERALD_TIMEOUT")]
    timeout: Option<String>,
    /// Refuse connections beyond this many [default: 10000].
    #[arg(long, env = "HERALD_MAXCLIENTS")]
    maxclients: Option<String>,
    /// Password of the default user (Redis' `requirepass`).
    #[arg(long, env = "HERALD_REQUIREPASS")]
    requirepass: Option<String>,
    /// An ACL user as Redis' `user` directive, e.g.
    /// "alice on >secret &news:* +@pubsub"; repeat for more.
    #[arg(long = "user")]
    users: Vec<String>,
    /// "no" serves clients beyond loopback without a password [default: yes].
    #[arg(long, env = "HERALD_PROTECTED_MODE")]
    protected_mode: Option<String>,
    /// Also accept TLS connections on this port.
    #[arg(long, env = "HERALD_TLS_PORT")]
    tls_port: Option<String>,
    /// The server's certificate chain (PEM).
    #[arg(long, env = "HERALD_TLS_CERT_FILE")]
    tls_cert_file: Option<String>,
    /// The server's private key (PEM).
    #[arg(long, env = "HERALD_TLS_KEY_FILE")]
    tls_key_file: Option<String>,
    /// CA certificates that sign client certificates (PEM).
    #[arg(long, env = "HERALD_TLS_CA_CERT_FILE")]
    tls_ca_cert_file: Option<String>,
    /// Client certificates: yes (required), optional or no [default: yes].
    #[arg(long, env = "HERALD_TLS_AUTH_CLIENTS")]
    tls_auth_clients: Option<String>,
    /// Serve Prometheus metrics over HTTP on this port (0: off).
    #[arg(long, env = "HERALD_METRICS_PORT")]
    metrics_port: Option<String>,
    /// Cluster mode: every node's host:port, comma-separated, the same list
    /// on every node (slots split evenly in this order).
    #[arg(long, env = "HERALD_CLUSTER_NODES")]
    cluster_nodes: Option<String>,
    /// This node's host in that list [default: the first bind address].
    #[arg(long, env = "HERALD_CLUSTER_ANNOUNCE_IP")]
    cluster_announce_ip: Option<String>,
    /// The port peers connect to [default: port + 10000].
    #[arg(long, env = "HERALD_CLUSTER_PORT")]
    cluster_port: Option<String>,
    /// Cluster mode on etcd: its client endpoints, comma-separated
    /// (membership and the slot map live there; no --cluster-nodes).
    #[arg(long, env = "HERALD_CLUSTER_ETCD")]
    cluster_etcd: Option<String>,
    /// The cluster's name in etcd [default: herald].
    #[arg(long, env = "HERALD_CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// Seconds without renewing its etcd lease before a node's slots go to
    /// the others (and it stops serving them) [default: 5].
    #[arg(long, env = "HERALD_CLUSTER_LEASE_TTL")]
    cluster_lease_ttl: Option<String>,
}

impl Args {
    /// The flags (and variables) given, as config directives.
    fn directives(&self) -> Vec<(&'static str, Vec<String>)> {
        let mut out = Vec::new();
        let single = [
            ("bind", &self.bind),
            ("port", &self.port),
            ("threads", &self.threads),
            ("timeout", &self.timeout),
            ("maxclients", &self.maxclients),
            ("requirepass", &self.requirepass),
            ("protected-mode", &self.protected_mode),
            ("tls-port", &self.tls_port),
            ("tls-cert-file", &self.tls_cert_file),
            ("tls-key-file", &self.tls_key_file),
            ("tls-ca-cert-file", &self.tls_ca_cert_file),
            ("tls-auth-clients", &self.tls_auth_clients),
            ("metrics-port", &self.metrics_port),
            ("cluster-nodes", &self.cluster_nodes),
            ("cluster-announce-ip", &self.cluster_announce_ip),
            ("cluster-port", &self.cluster_port),
            ("cluster-etcd", &self.cluster_etcd),
            ("cluster-name", &self.cluster_name),
            ("cluster-lease-ttl", &self.cluster_lease_ttl),
        ];
        for (name, value) in single {
            if let Some(v) = value {
                out.push((name, vec![v.clone()]));
            }
        }
        if let Some(limit) = &self.pubsub_output_limit {
            let mut words = vec!["pubsub".to_string()];
            words.extend(limit.split_whitespace().map(String::from));
            out.push(("client-output-buffer-limit", words));
        }
        if self.cluster_nodes.is_some() || self.cluster_etcd.is_some() {
            out.push(("cluster-enabled", vec!["yes".into()]));
        }
        for user in &self.users {
            out.push(("user", user.split_whitespace().map(String::from).collect()));
        }
        out
    }
}

/// Defaults, then the file, then variables and flags; then every check
/// that can fail before listening (users, TLS files). Binds nothing.
fn configuration(args: &Args) -> Result<(Config, Option<TlsAcceptor>), String> {
    let mut config = Config::default();
    if let Some(path) = &args.config {
        configure::load(&mut config, path)?;
    }
    for (name, words) in args.directives() {
        configure::apply(&mut config, name, &words).map_err(|e| format!("--{name}: {e}"))?;
    }
    configure::check_users(&config)?;
    configure::check_cluster(&config)?;
    config.tls_needed()?;
    let mut acceptor = None;
    if config.tls_port != 0 {
        let tls = config.tls.as_ref().ok_or("tls-port needs tls-cert-file and tls-key-file")?;
        if tls.cert_file.is_empty() || tls.key_file.is_empty() {
            return Err("tls-port needs tls-cert-file and tls-key-file".into());
        }
        acceptor = Some(tls.acceptor()?);
    } else if config.port == 0 {
        return Err("nothing to listen on: port 0 and no tls-port".into());
    }
    Ok((config, acceptor))
}

/// Binds `port` on every `bind` address. As in Redis, `*` is every IPv4
/// address, `::*` every IPv6 one, and an address written `-addr` is
/// optional: if it cannot be bound (no such interface, no IPv6), it is
/// skipped with a warning.
fn bind_all(bind: &str, port: u16) -> Result<Vec<std::net::TcpListener>, String> {
    let mut bound = Vec::new();
    for word in bind.split_whitespace() {
        let (optional, addr, host) = bind_address(word);
        match std::net::TcpListener::bind((host, port)) {
            Ok(listener) => bound.push(listener),
            Err(e) if optional => tracing::warn!(addr, port, error = %e, "skipping optional bind address"),
            Err(e) => return Err(format!("{addr}:{port}: {e}")),
        }
    }
    if bound.is_empty() {
        return Err(format!("no address of '{bind}' could be bound on port {port}"));
    }
    Ok(bound)
}

/// One `bind` word: whether it is optional (`-addr`), the address as
/// written, and the host to bind (`*` → `0.0.0.0`, `::*` → `::`).
fn bind_address(word: &str) -> (bool, &str, &str) {
    let (optional, addr) = match word.strip_prefix('-') {
        Some(addr) => (true, addr),
        None => (false, word),
    };
    let host = match addr {
        "*" => "0.0.0.0",
        "::*" => "::",
        other => other,
    };
    (optional, addr, host)
}

fn listen(config: &Config, acceptor: Option<TlsAcceptor>) -> Result<Listeners, String> {
    let mut listeners = Listeners::default();
    if acceptor.is_some() {
        listeners.tls = bind_all(&config.bind, config.tls_port)?;
        listeners.acceptor = acceptor;
    }
    if config.port != 0 {
        listeners.plain = bind_all(&config.bind, config.port)?;
    }
    if let Some(bus) = configure::cluster_bus_port(config) {
        listeners.bus = bind_all(&config.bind, bus)?;
    }
    Ok(listeners)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    // A planted bug is for the conformance kit's own check, and only in a
    // build made for it: say so loudly, and refuse the variable elsewhere
    // (a healthy server must not pass for a planted one).
    if let Ok(bug) = std::env::var("HERALD_PLANTED_BUG") {
        if !cfg!(feature = "planted-bugs") {
            eprintln!("herald: HERALD_PLANTED_BUG={bug} needs a build with --features planted-bugs");
            return std::process::ExitCode::FAILURE;
        }
        tracing::warn!(bug, "running with a planted bug (HERALD_PLANTED_BUG)");
    }
    let (config, acceptor) = match configuration(&args) {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("herald: configuration error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if !config.foreign.is_empty() {
        let names: Vec<&str> = config.foreign.keys().map(String::as_str).collect();
        tracing::warn!(
            directives = %names.join(" "),
            "ignored: Redis settings that have no effect on a pub/sub broker (CONFIG GET shows them)"
        );
    }
    if args.check_config {
        println!("configuration OK");
        return std::process::ExitCode::SUCCESS;
    }
    let listeners = match listen(&config, acceptor) {
        Ok(listeners) => listeners,
        Err(e) => {
            eprintln!("herald: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let threads =
        config.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)));
    if config.metrics_port != 0 {
        let (_, _, host) = bind_address(config.bind.split_whitespace().next().unwrap_or("127.0.0.1"));
        if let Err(e) = herald::serve_metrics((host, config.metrics_port)) {
            eprintln!("herald: metrics endpoint: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    match herald::run_until(listeners, config, threads, stop_signal()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// SIGTERM or SIGINT: shut down gracefully.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("could not install signal handlers; stop with SHUTDOWN");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "received; shutting down");
}
