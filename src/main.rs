//! `herald`: the server binary.

use clap::Parser;
use herald::config::Config;
use herald::server::Listeners;
use herald::tls::{ClientAuth, TlsSettings};
use tracing_subscriber::EnvFilter;

/// A Redis-compatible pub/sub broker.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "HERALD_BIND")]
    bind: String,
    /// TCP port.
    #[arg(long, short, default_value_t = 6379, env = "HERALD_PORT")]
    port: u16,
    /// Worker arbiters (threads) for sessions and channels; default: half
    /// the cores (at least one), leaving the rest to the kernel's network
    /// stack and the clients (see BENCHMARKS.md).
    #[arg(long, env = "HERALD_THREADS")]
    threads: Option<usize>,
    /// Pub/sub client output limit as "<hard> <soft> <seconds>" (Redis'
    /// client-output-buffer-limit pubsub class).
    #[arg(long, default_value = "32mb 8mb 60", env = "HERALD_PUBSUB_OUTPUT_LIMIT")]
    pubsub_output_limit: String,
    /// Close clients idle for this many seconds (0: never); connections with
    /// subscriptions are exempt, as in Redis.
    #[arg(long, default_value_t = 0, env = "HERALD_TIMEOUT")]
    timeout: u64,
    /// Refuse connections beyond this many, as Redis' `maxclients`.
    #[arg(long, default_value_t = 10_000, env = "HERALD_MAXCLIENTS")]
    maxclients: usize,
    /// Password of the default user (Redis' `requirepass`).
    #[arg(long, env = "HERALD_REQUIREPASS")]
    requirepass: Option<String>,
    /// An ACL user as Redis' `user` directive, e.g.
    /// "alice on >secret &news:* +@pubsub"; repeat for more.
    #[arg(long = "user")]
    users: Vec<String>,
    /// "yes": with no password on the default user, refuse clients that are
    /// not on the loopback interface, as Redis does.
    #[arg(long, default_value = "yes", env = "HERALD_PROTECTED_MODE")]
    protected_mode: String,
    /// Also accept TLS connections on this port (0: no TLS). With TLS on,
    /// `--port 0` turns plain TCP off.
    #[arg(long, default_value_t = 0, env = "HERALD_TLS_PORT")]
    tls_port: u16,
    /// The server's certificate chain (PEM).
    #[arg(long, env = "HERALD_TLS_CERT_FILE")]
    tls_cert_file: Option<String>,
    /// The server's private key (PEM).
    #[arg(long, env = "HERALD_TLS_KEY_FILE")]
    tls_key_file: Option<String>,
    /// CA certificates that sign client certificates (PEM).
    #[arg(long, env = "HERALD_TLS_CA_CERT_FILE")]
    tls_ca_cert_file: Option<String>,
    /// Client certificates: "yes" (required, Redis' default), "optional" or "no".
    #[arg(long, default_value = "yes", env = "HERALD_TLS_AUTH_CLIENTS")]
    tls_auth_clients: String,
}

fn config_from(args: &Args) -> Result<Config, String> {
    let mut config = Config {
        bind: args.bind.clone(),
        port: args.port,
        idle_timeout: std::time::Duration::from_secs(args.timeout),
        maxclients: args.maxclients,
        ..Config::default()
    };
    config.set("client-output-buffer-limit", &format!("pubsub {}", args.pubsub_output_limit))?;
    config.set("protected-mode", &args.protected_mode)?;
    config.requirepass = args.requirepass.clone();
    config.users = args.users.clone();
    herald::acl::Users::new(config.requirepass.as_deref(), &config.users)?;
    config.tls_port = args.tls_port;
    if args.tls_port != 0 {
        let (Some(cert_file), Some(key_file)) = (args.tls_cert_file.clone(), args.tls_key_file.clone()) else {
            return Err("--tls-port needs --tls-cert-file and --tls-key-file".into());
        };
        config.tls = Some(TlsSettings {
            cert_file,
            key_file,
            ca_cert_file: args.tls_ca_cert_file.clone(),
            auth_clients: ClientAuth::parse(&args.tls_auth_clients)?,
        });
    }
    Ok(config)
}

fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    // One descriptor per client: take what the system allows, as Redis does.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
    let config = config_from(&args).map_err(std::io::Error::other)?;
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)));
    let bind = |port: u16| std::net::TcpListener::bind((config.bind.as_str(), port));
    let mut listeners = Listeners::default();
    if config.port != 0 {
        listeners.plain = Some(bind(config.port)?);
    }
    if let Some(tls) = &config.tls {
        let acceptor = tls.acceptor().map_err(std::io::Error::other)?;
        listeners.tls = Some((bind(config.tls_port)?, acceptor));
    }
    if listeners.plain.is_none() && listeners.tls.is_none() {
        return Err(std::io::Error::other("nothing to listen on: --port 0 and no --tls-port"));
    }
    herald::server::run_until(listeners, config, threads, stop_signal())
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
