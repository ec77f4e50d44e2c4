//! `herald-bench --addr 127.0.0.1:6379 --subscribers 10 --channels 10 ...`:
//! one load scenario against any RESP server, one line of figures.

use std::time::Duration;

use clap::Parser;
use herald_bench::{run_on, Scenario};

#[derive(Parser, Debug)]
#[command(about = "Pub/sub load generator for Herald, Redis or any RESP server")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Cluster: publishers on these nodes (comma-separated, round robin)
    /// instead of `--addr`.
    #[arg(long)]
    publish_at: Option<String>,
    /// Cluster: subscribers on these nodes instead of `--addr`.
    #[arg(long)]
    subscribe_at: Option<String>,
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Subscribers PSUBSCRIBE `bench:*` instead of one channel each.
    #[arg(long)]
    patterns: bool,
    #[arg(long, default_value_t = 1)]
    channels: usize,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Payload bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Idle, never-matching patterns held on one extra connection.
    #[arg(long, default_value_t = 0)]
    idle_patterns: usize,
    /// Shard channels: SPUBLISH and SSUBSCRIBE.
    #[arg(long)]
    shard: bool,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let scenario = Scenario {
        name: "cli".into(),
        subscribers: a.subscribers,
        pattern_subscribers: a.patterns,
        channels: a.channels.max(1),
        publishers: a.publishers,
        pipeline: a.pipeline.max(1),
        payload: a.payload,
        idle_patterns: a.idle_patterns,
        duration: Duration::from_secs_f64(a.seconds),
        shard: a.shard,
        ..Scenario::default()
    };
    let nodes = |list: &Option<String>| match list {
        Some(list) => list.split(',').map(String::from).collect(),
        None => vec![a.addr.clone()],
    };
    let report = run_on(&nodes(&a.publish_at), &nodes(&a.subscribe_at), &scenario).await?;
    println!("{report}");
    Ok(())
}
