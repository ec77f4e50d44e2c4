//! A 3-node Herald cluster and a 3-node Redis 7.0.15 cluster side by side,
//! in one run: `cargo bench --bench cluster`. Each scenario runs
//! HERALD_BENCH_ROUNDS times per cluster (default 2), alternating which
//! goes first, each cluster's bus drained after every run; the table gives
//! mean deliveries/s, the ratio and mean latency percentiles, where every
//! round held: everything delivered, once, in order (expected deliveries
//! are counted from the scenario, since a cluster's PUBLISH counts only the
//! publishing node's subscribers), no subscriber dropped. A cell that did
//! not hold says what each round did instead.
//! Every node, client and server, shares this machine's cores.
//!
//! `cargo bench --bench cluster -- capacity` sweeps the offered load of
//! the cross-node fan-out instead (the publisher's pipeline depth, 8 to
//! 1024) and gives each cluster's capacity: its highest deliveries/s at a
//! depth where every round delivered everything, once, in order, with no
//! subscriber dropped. HERALD_BENCH_CSV=path also writes every run there,
//! for `benches/plot_cluster_capacity.py`. HERALD_BENCH_REDIS_ARGS adds
//! flags to every redis-server.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use herald_bench::{run_on, Report, Scenario};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn started(mut cmd: Command, ready: &str) -> Node {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains(ready)), "a node did not start");
    std::thread::spawn(move || lines.for_each(drop));
    Node(child)
}

fn cluster_info(port: u16) -> String {
    let out = Command::new("redis-cli").args(["-p", &port.to_string(), "cluster", "info"]).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (polling, with a deadline) until `port`'s CLUSTER INFO has `line`.
fn wait_for(port: u16, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster_info(port).contains(line) {
        assert!(Instant::now() < deadline, "node {port} never showed {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (polling, with a deadline) until every bus message the nodes
/// sent has been received: CLUSTER INFO's totals agree, on Herald as on
/// Redis. An overloaded Redis Cluster's bus can hold seconds of
/// publishes after its run; the next run must not meet them.
fn drained(ports: &[u16]) {
    let stat = |info: &str, name: &str| -> u64 {
        let line = info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'));
        line.and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("CLUSTER INFO without {name}"))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let infos: Vec<String> = ports.iter().map(|&p| cluster_info(p)).collect();
        let sent: u64 = infos.iter().map(|i| stat(i, "cluster_stats_messages_sent")).sum();
        let received: u64 = infos.iter().map(|i| stat(i, "cluster_stats_messages_received")).sum();
        if sent == received {
            return;
        }
        assert!(Instant::now() < deadline, "the bus never drained: {sent} messages sent, {received} received");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn herald_cluster() -> (Vec<Node>, Vec<u16>) {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let buses: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let list: Vec<String> = ports.iter().zip(&buses).map(|(p, b)| format!("127.0.0.1:{p}@{b}")).collect();
    let nodes = ports
        .iter()
        .map(|p| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
            cmd.args(["--port", &p.to_string(), "--cluster-nodes", &list.join(",")]).env("RUST_LOG", "info");
            started(cmd, "ready to accept connections")
        })
        .collect();
    for &p in &ports {
        wait_for(p, "cluster_links_up:2");
    }
    (nodes, ports)
}

fn redis_cluster() -> (Vec<Node>, Vec<u16>) {
    // Redis' cluster bus is port + 10000: leave room for it.
    let ports: Vec<u16> =
        (0..3).map(|_| std::iter::repeat_with(free_port).find(|&p| p <= 55535).expect("a port")).collect();
    let nodes = ports
        .iter()
        .map(|p| {
            let dir = std::env::temp_dir().join(format!("herald-bench-redis-{p}"));
            // An earlier run's nodes.conf would keep the node out of a new cluster.
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &p.to_string(), "--cluster-enabled", "yes", "--save", "", "--appendonly", "no"])
                .args(["--dir", &dir.to_string_lossy(), "--maxclients", "15000"]);
            // E.g. "--client-output-buffer-limit pubsub 0 0 0" (redis-server
            // joins an option's words itself).
            if let Ok(extra) = std::env::var("HERALD_BENCH_REDIS_ARGS") {
                cmd.args(extra.split_whitespace());
            }
            started(cmd, "Ready to accept connections")
        })
        .collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success());
    for &p in &ports {
        wait_for(p, "cluster_state:ok");
    }
    (nodes, ports)
}

/// A scenario and where its clients go: publishers and subscribers each
/// on the listed nodes (0-based), round robin.
struct Shape {
    name: &'static str,
    scenario: Scenario,
    publish_at: &'static [usize],
    subscribe_at: &'static [usize],
}

fn shapes() -> Vec<Shape> {
    let s = |subscribers, channels, publishers, pipeline| Scenario {
        subscribers,
        channels,
        publishers,
        pipeline,
        duration: Duration::from_secs(3),
        ..Scenario::default()
    };
    vec![
        Shape {
            name: "PUBLISH on node 1, 10 subscribers on node 3",
            scenario: s(10, 1, 1, 32),
            publish_at: &[0],
            subscribe_at: &[2],
        },
        Shape {
            name: "PUBLISH on node 1, 30 subscribers on all nodes",
            scenario: s(30, 1, 1, 32),
            publish_at: &[0],
            subscribe_at: &[0, 1, 2],
        },
        Shape {
            name: "3 publishers (one per node), 10 channels, 30 subscribers on all nodes",
            scenario: s(30, 10, 3, 16),
            publish_at: &[0, 1, 2],
            subscribe_at: &[0, 1, 2],
        },
        Shape {
            name: "PUBLISH 1 → 1 across nodes, no pipelining",
            scenario: s(1, 1, 1, 1),
            publish_at: &[0],
            subscribe_at: &[1],
        },
    ]
}

/// A `{hash tag}` prefix whose slot node `node` of 3 serves (both
/// clusters split the slots as redis-cli does: 0-5460, 5461-10922,
/// 10923-16383).
fn prefix_on(node: usize) -> String {
    let owner = |slot: u16| match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    };
    let tag = (0..).map(|k| format!("n{k}")).find(|t| owner(redis_protocol::redis_keyslot(t.as_bytes())) == node);
    format!("{{{}}}:", tag.expect("a tag"))
}

/// SPUBLISH spread over the nodes: on each node, 2 publishers and 10
/// shard subscribers over 5 shard channels in that node's slots, all three
/// at once; deliveries/s summed.
async fn shard_round(ports: &[u16]) -> Report {
    let runs = (0..3).map(|n| {
        let at = vec![format!("127.0.0.1:{}", ports[n])];
        let s = Scenario {
            subscribers: 10,
            channels: 5,
            publishers: 2,
            pipeline: 16,
            shard: true,
            prefix: prefix_on(n),
            duration: Duration::from_secs(3),
            ..Scenario::default()
        };
        async move { run_on(&at, &at, &s).await.expect("run") }
    });
    let reports = futures_util::future::join_all(runs).await;
    let mut total = reports[0].clone();
    for r in &reports[1..] {
        total.deliveries_per_sec += r.deliveries_per_sec;
        total.duplicates += r.duplicates;
        total.reorders += r.reorders;
        total.lost += r.lost;
        total.p50_us = total.p50_us.max(r.p50_us);
        total.p99_us = total.p99_us.max(r.p99_us);
    }
    total
}

fn addrs(ports: &[u16], nodes: &[usize]) -> Vec<String> {
    nodes.iter().map(|&n| format!("127.0.0.1:{}", ports[n])).collect()
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let rounds: usize = std::env::var("HERALD_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (_h, herald) = herald_cluster();
    let (_r, redis) = redis_cluster();
    let clusters = [&herald[..], &redis[..]];
    if filter.as_deref() == Some("capacity") {
        capacity(&runtime, clusters, rounds);
        return;
    }
    println!("| scenario | Herald deliveries/s | Redis Cluster deliveries/s | ratio | p50 / p99 µs Herald | p50 / p99 µs Redis |");
    println!("|---|---|---|---|---|---|");
    for shape in shapes() {
        if filter.as_deref().is_none_or(|f| shape.name.contains(f)) {
            let [h, r] = rounds_of(&runtime, clusters, rounds, &shape, &shape.scenario);
            row(shape.name, &h, &r);
        }
    }
    if filter.as_deref().is_none_or(|f| "SPUBLISH".contains(f)) {
        let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            for which in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
                runs[which].push(Ok(runtime.block_on(shard_round(clusters[which]))));
            }
        }
        row(
            "SPUBLISH on every node (2 publishers, 10 subscribers, 5 shard channels each; p50/p99: the worst node's)",
            &runs[0],
            &runs[1],
        );
    }
}

/// One run: its report, or why it failed (a subscriber dropped by its
/// server, seen as the connection closing).
type Run = Result<Report, String>;

/// `scenario` laid out as `shape` on each cluster, `rounds` times,
/// alternating which goes first; each cluster's bus drained after each
/// run. Herald's runs, then Redis'.
fn rounds_of(
    runtime: &tokio::runtime::Runtime,
    clusters: [&[u16]; 2],
    rounds: usize,
    shape: &Shape,
    scenario: &Scenario,
) -> [Vec<Run>; 2] {
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for which in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let ports = clusters[which];
            let run = runtime
                .block_on(run_on(&addrs(ports, shape.publish_at), &addrs(ports, shape.subscribe_at), scenario))
                .map_err(|e| e.to_string());
            drained(ports);
            runs[which].push(run);
        }
    }
    runs
}

/// Whether a run delivered everything, once, in order.
fn held(run: &Run) -> bool {
    matches!(run, Ok(r) if r.lost == 0 && r.duplicates == 0 && r.reorders == 0)
}

/// Mean deliveries/s, p50 and p99 of `runs` if every one held; else what
/// each run did.
fn summary(runs: &[Run]) -> Result<(f64, f64, f64), String> {
    if runs.iter().all(held) {
        let mean = |f: &dyn Fn(&Report) -> f64| runs.iter().flatten().map(f).sum::<f64>() / runs.len() as f64;
        return Ok((mean(&|x| x.deliveries_per_sec), mean(&|x| x.p50_us), mean(&|x| x.p99_us)));
    }
    let each: Vec<String> = runs
        .iter()
        .map(|run| match run {
            Ok(r) if held(run) => format!("{:.0}", r.deliveries_per_sec),
            Ok(r) => format!("lost {}, dup {}, reordered {}", r.lost, r.duplicates, r.reorders),
            Err(e) => format!("failed: {e}"),
        })
        .collect();
    Err(format!("**not held** ({})", each.join("; ")))
}

/// A summary's table cells: its rate (or what the runs did instead), and
/// its p50 / p99.
fn rate(s: &Result<(f64, f64, f64), String>) -> String {
    s.as_ref().map_or_else(|e| e.clone(), |s| format!("{:.0}", s.0))
}

fn latency(s: &Result<(f64, f64, f64), String>) -> String {
    s.as_ref().map_or("—".into(), |s| format!("{:.0} / {:.0}", s.1, s.2))
}

fn row(name: &str, h: &[Run], r: &[Run]) {
    let (hs, rs) = (summary(h), summary(r));
    let ratio = match (&hs, &rs) {
        (Ok(h), Ok(r)) => format!("{:.2}", h.0 / r.0),
        _ => "—".into(),
    };
    println!("| {name} | {} | {} | {ratio} | {} | {} |", rate(&hs), rate(&rs), latency(&hs), latency(&rs));
}

/// The capacity sweep's offered loads: the publisher's pipeline depth.
const DEPTHS: [usize; 8] = [8, 16, 32, 64, 128, 256, 512, 1024];

/// The cross-node fan-out (publisher on node 1, 10 subscribers on node
/// 3) at each depth of `DEPTHS`, and each cluster's capacity: its
/// highest mean rate at a depth where every round held.
fn capacity(runtime: &tokio::runtime::Runtime, clusters: [&[u16]; 2], rounds: usize) {
    let shape = &shapes()[0];
    let mut csv = String::from("cluster,pipeline,round,deliveries_per_sec,p50_us,p99_us,held\n");
    let mut best = [(0.0, 0); 2];
    println!("| pipeline | Herald deliveries/s | p50 / p99 µs | Redis Cluster deliveries/s | p50 / p99 µs |");
    println!("|---|---|---|---|---|");
    for depth in DEPTHS {
        let scenario = Scenario { pipeline: depth, ..shape.scenario.clone() };
        let runs = rounds_of(runtime, clusters, rounds, shape, &scenario);
        let mut cells = Vec::new();
        for (which, name) in ["herald", "redis"].into_iter().enumerate() {
            for (round, run) in runs[which].iter().enumerate() {
                let (rate, p50, p99) =
                    run.as_ref().map_or((0.0, 0.0, 0.0), |r| (r.deliveries_per_sec, r.p50_us, r.p99_us));
                csv += &format!("{name},{depth},{round},{rate:.0},{p50:.0},{p99:.0},{}\n", held(run));
            }
            let s = summary(&runs[which]);
            if let Ok((rate, ..)) = s {
                if rate > best[which].0 {
                    best[which] = (rate, depth);
                }
            }
            cells.push(format!("{} | {}", rate(&s), latency(&s)));
        }
        println!("| {depth} | {} | {} |", cells[0], cells[1]);
    }
    let [(h, hd), (r, rd)] = best;
    println!(
        "\nCapacity (the highest mean rate at a depth where every round held): Herald {h:.0} deliveries/s \
         (pipeline {hd}), Redis Cluster {r:.0} (pipeline {rd}): {:.2}×",
        h / r
    );
    if let Ok(path) = std::env::var("HERALD_BENCH_CSV") {
        std::fs::write(&path, csv).expect("HERALD_BENCH_CSV");
    }
}
