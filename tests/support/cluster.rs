//! Clusters for the tests: Herald's (three `herald` processes with one
//! `--cluster-nodes` list) and Redis' (redis-server with
//! `--cluster-enabled yes`, joined by `redis-cli --cluster create`).

use std::process::Command;
use std::time::Instant;

use super::{free_port, redis_with, Conn, Server};

/// A running cluster: its nodes in list order.
pub struct Cluster {
    pub nodes: Vec<Server>,
    pub list: String,
}

impl Cluster {
    /// `n` nodes, each told the same list; returns once every node's links
    /// to the others are up.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    pub fn start_with(n: usize, env: &[(&str, &str)]) -> Cluster {
        Cluster::start_configured(n, env, &[])
    }

    /// `n` nodes started with `env` and a config file of `directives`.
    pub fn start_configured(n: usize, env: &[(&str, &str)], directives: &[&str]) -> Cluster {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let list = ports.iter().map(|(p, b)| format!("127.0.0.1:{p}@{b}")).collect::<Vec<_>>().join(",");
        let nodes = ports.iter().map(|&(p, _)| node_configured(p, &list, env, directives)).collect();
        let cluster = Cluster { nodes, list };
        for i in 0..n {
            cluster.wait_links(i, n - 1);
        }
        cluster
    }

    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    pub fn conn(&self, i: usize) -> Conn {
        Conn::open(self.port(i))
    }

    /// Waits until node `i` has `up` links up (a condition polled, with
    /// a deadline as a guard).
    pub fn wait_links(&self, i: usize, up: usize) {
        let mut c = self.conn(i);
        eventually(&format!("node {i} with {up} links up"), || field(&mut c, "cluster_links_up") == up.to_string());
    }
}

pub fn node(port: u16, list: &str, env: &[(&str, &str)]) -> Server {
    node_configured(port, list, env, &[])
}

/// A node whose config file holds `directives` (none: no file).
pub fn node_configured(port: u16, list: &str, env: &[(&str, &str)], directives: &[&str]) -> Server {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    if !directives.is_empty() {
        let file = std::env::temp_dir().join(format!("herald-node-{port}.conf"));
        std::fs::write(&file, directives.join("\n") + "\n").unwrap();
        cmd.arg(file);
    }
    cmd.args(["--port", &port.to_string(), "--cluster-nodes", list])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    super::started_child(cmd.spawn().expect("herald binary"), port)
}

/// Polls `done` until it holds; fails after 20 s.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + super::REPLY_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::yield_now();
    }
}

/// A CLUSTER INFO field.
pub fn field(c: &mut Conn, name: &str) -> String {
    let info = String::from_utf8(c.cmd(&["CLUSTER", "INFO"]).to_vec()).unwrap();
    let line = info.split("\r\n").find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("{name}"));
    line[name.len() + 1..].to_string()
}

/// A Redis 7 cluster of `n` masters on loopback, slots split by redis-cli
/// in node order (as Herald splits them); returns once every node says
/// `cluster_state:ok`.
pub fn redis_cluster(n: usize) -> Vec<Server> {
    let nodes: Vec<Server> = (0..n)
        .map(|_| {
            // Redis' cluster bus is port + 10000, which free_port's range
            // leaves room for.
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("herald-redis-cluster-{port}"));
            // A nodes.conf left by an earlier run on this port would make
            // the node refuse to join a new cluster.
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let dir = dir.to_string_lossy().into_owned();
            redis_with(port, &["--cluster-enabled", "yes", "--dir", &dir, "--cluster-config-file", "nodes.conf"])
        })
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|s| s.addr()).collect();
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-yes"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success(), "redis-cli --cluster create failed");
    for node in &nodes {
        let mut c = Conn::open(node.port);
        eventually("the Redis cluster is ok", || field(&mut c, "cluster_state") == "ok");
    }
    nodes
}
