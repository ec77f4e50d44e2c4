//! A 3-node Herald cluster and a 3-node Redis 7.0.15 cluster side by side,
//! in one run: `cargo bench --bench cluster`. Each scenario runs
//! HERALD_BENCH_ROUNDS times per cluster (default 2), alternating which
//! goes first; the table gives mean deliveries/s, the ratio, the worst
//! latency percentiles, and duplicates, reorders and losses (which must
//! be 0: expected deliveries are counted from the scenario, since a
//! cluster's PUBLISH counts only the publishing node's subscribers).
//! Every node, client and server, shares this machine's cores.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cluster_info(port).contains(line) {
        assert!(std::time::Instant::now() < deadline, "node {port} never showed {line}");
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
    println!("| scenario | Herald deliveries/s | Redis Cluster deliveries/s | ratio | p50 / p99 µs Herald | p50 / p99 µs Redis | dup/reorder/lost H · R |");
    println!("|---|---|---|---|---|---|---|");
    for shape in shapes() {
        if filter.as_deref().is_some_and(|f| !shape.name.contains(f)) {
            continue;
        }
        let (mut h, mut r): (Vec<Report>, Vec<Report>) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let order: [(&[u16], bool); 2] =
                if round % 2 == 0 { [(&herald, true), (&redis, false)] } else { [(&redis, false), (&herald, true)] };
            for (ports, is_herald) in order {
                let report = runtime
                    .block_on(run_on(
                        &addrs(ports, shape.publish_at),
                        &addrs(ports, shape.subscribe_at),
                        &shape.scenario,
                    ))
                    .expect("run");
                if is_herald {
                    h.push(report)
                } else {
                    r.push(report)
                }
            }
        }
        row(shape.name, &h, &r);
    }
    if filter.as_deref().is_none_or(|f| "SPUBLISH".contains(f)) {
        let (mut h, mut r) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            if round % 2 == 1 {
                r.push(runtime.block_on(shard_round(&redis)));
            }
            h.push(runtime.block_on(shard_round(&herald)));
            if round % 2 == 0 {
                r.push(runtime.block_on(shard_round(&redis)));
            }
        }
        row(
            "SPUBLISH on every node (2 publishers, 10 subscribers, 5 shard channels each; p50/p99: the worst node's)",
            &h,
            &r,
        );
    }
}

fn row(name: &str, h: &[Report], r: &[Report]) {
    let mean = |v: &[Report], f: &dyn Fn(&Report) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let bad = |v: &[Report]| {
        format!(
            "{}/{}/{}",
            v.iter().map(|x| x.duplicates).sum::<u64>(),
            v.iter().map(|x| x.reorders).sum::<u64>(),
            v.iter().map(|x| x.lost).sum::<i64>()
        )
    };
    let (hd, rd) = (mean(h, &|x| x.deliveries_per_sec), mean(r, &|x| x.deliveries_per_sec));
    println!(
        "| {} | {:.0} | {:.0} | {:.2} | {:.0} / {:.0} | {:.0} / {:.0} | {} · {} |",
        name,
        hd,
        rd,
        hd / rd,
        mean(h, &|x| x.p50_us),
        mean(h, &|x| x.p99_us),
        mean(r, &|x| x.p50_us),
        mean(r, &|x| x.p99_us),
        bad(h),
        bad(r)
    );
}
