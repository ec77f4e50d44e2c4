//! `herald`: the server binary.

use std::net::SocketAddr;

use actix_rt::{Arbiter, System};
use clap::Parser;
use herald::broker::Placement;
use herald::config::{Config, OutputLimit};
use herald::server::Server;
use tokio::net::TcpListener;
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
    /// Worker arbiters (threads) for sessions and channels; default: cores.
    #[arg(long, env = "HERALD_THREADS")]
    threads: Option<usize>,
    /// Pub/sub client output limit as "<hard> <soft> <seconds>" (Redis'
    /// client-output-buffer-limit pubsub class).
    #[arg(long, default_value = "32mb 8mb 60", env = "HERALD_PUBSUB_OUTPUT_LIMIT")]
    pubsub_output_limit: String,
}

fn config_from(args: &Args) -> Result<Config, String> {
    let mut config = Config { bind: args.bind.clone(), port: args.port, ..Config::default() };
    config.set("client-output-buffer-limit", &format!("pubsub {}", args.pubsub_output_limit))?;
    Ok(config)
}

fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let args = Args::parse();
    let config = config_from(&args).map_err(std::io::Error::other)?;
    let _ = OutputLimit::UNLIMITED;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let system = System::new();
    let arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
    let handles = arbiters.iter().map(Arbiter::handle).collect();
    system.block_on(async move {
        let addr = format!("{}:{}", config.bind, config.port);
        let listener = TcpListener::bind(&addr).await?;
        let local: SocketAddr = listener.local_addr()?;
        tracing::info!(%local, threads, "Herald ready to accept connections");
        let mut server = Server::start(config, Placement::Arbiters(handles));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let laddr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
            server.accept(stream, peer.to_string(), laddr);
        }
    })
}
