//! etcd for the tests (Debian's etcd-server, one member on free loopback
//! ports, a fresh data directory) and Herald clusters on it: `herald`
//! processes started with `--cluster-etcd`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::cluster::{eventually, field};
use super::{free_port, Conn, Server};

/// One etcd member.
pub struct Etcd {
    child: Option<Child>,
    pub port: u16,
    peer_port: u16,
    dir: PathBuf,
}

impl Etcd {
    pub fn start() -> Etcd {
        let (port, peer_port) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("herald-etcd-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        let mut etcd = Etcd { child: None, port, peer_port, dir };
        etcd.run();
        etcd
    }

    /// `127.0.0.1:port`, as `--cluster-etcd` takes it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args(["--data-dir", &self.dir.to_string_lossy(), "--name", "default"])
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd (Debian's etcd-server)");
        self.child = Some(child);
        let port = self.port;
        eventually("etcd healthy", || healthy(port));
    }

    /// Kills etcd at once (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill etcd");
            child.wait().expect("wait etcd");
        }
    }

    /// Starts it again on its data and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// etcd's `/health` says true.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(super::REPLY_TIMEOUT));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

/// Herald nodes on one etcd.
pub struct EtcdCluster {
    pub etcd: Etcd,
    /// Each node started, `None` once stopped.
    pub nodes: Vec<Option<Server>>,
    name: String,
    pub ttl: u64,
    env: Vec<(String, String)>,
    /// Held until everything above has stopped (fields drop in order).
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// One cluster at a time in a test process: each is an etcd and three or
/// four herald processes whose leases must be renewed within a third of a
/// 2-s TTL, and the timings the tests assert (failover within TTL + 2 s)
/// are the product's, not those of seven clusters starving each other of
/// 2 cores. With them all at once, a newcomer's renewal came late enough
/// to fence it for a moment (INFO said 0 slots owned after the join had
/// settled), 1 run in 20 while a build ran beside them.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl EtcdCluster {
    /// `n` nodes with a `ttl`-second lease; returns once every node has
    /// the same map with every slot owned.
    pub fn start(n: usize, ttl: u64) -> EtcdCluster {
        EtcdCluster::start_with(n, ttl, &[])
    }

    /// The same, each node's process given `env`.
    pub fn start_with(n: usize, ttl: u64, env: &[(&str, &str)]) -> EtcdCluster {
        // A test that failed holding it poisons it; the next may go on.
        let one_at_a_time = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let etcd = Etcd::start();
        let name = format!("test{}", etcd.port);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut cluster = EtcdCluster { etcd, nodes: Vec::new(), name, ttl, env, _one_at_a_time: one_at_a_time };
        for _ in 0..n {
            cluster.add_node();
        }
        cluster.wait_settled();
        cluster
    }

    /// Starts one more node; its index.
    pub fn add_node(&mut self) -> usize {
        self.add_node_with(&[])
    }

    /// The same, with `extra` flags.
    pub fn add_node_with(&mut self, extra: &[&str]) -> usize {
        let (port, bus) = (free_port(), free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.args(["--port", &port.to_string(), "--cluster-port", &bus.to_string()])
            .args(extra)
            .args(["--cluster-etcd", &self.etcd.endpoint(), "--cluster-name", &self.name])
            .args(["--cluster-lease-ttl", &self.ttl.to_string()])
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped());
        self.nodes.push(Some(super::started_child(cmd.spawn().expect("herald binary"), port)));
        self.nodes.len() - 1
    }

    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].as_ref().expect("a running node").port
    }

    pub fn conn(&self, i: usize) -> Conn {
        Conn::open(self.port(i))
    }

    /// The running nodes' indexes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_some()).collect()
    }

    /// Waits until every running node shows one epoch, knows exactly the
    /// running nodes, says `cluster_state:ok` and serves the same slot
    /// map (none still holding a slot back for its previous owner).
    pub fn wait_settled(&self) {
        let running = self.running();
        let mut conns: Vec<Conn> = running.iter().map(|&i| self.conn(i)).collect();
        eventually("every node on one map of the running nodes", || {
            let epochs: Vec<String> = conns.iter_mut().map(|c| field(c, "cluster_current_epoch")).collect();
            let maps: Vec<_> = conns.iter_mut().map(slot_ranges).collect();
            conns.iter_mut().all(|c| {
                field(c, "cluster_state") == "ok" && field(c, "cluster_known_nodes") == running.len().to_string()
            }) && epochs.iter().all(|e| e == &epochs[0])
                && maps.iter().all(|m| m == &maps[0])
        });
    }

    /// The slots node `i` owns, as CLUSTER SLOTS at node `asked` says.
    pub fn slots_of(&self, asked: usize, i: usize) -> usize {
        let port = self.port(i).to_string();
        slot_ranges(&mut self.conn(asked)).iter().filter(|(_, _, p)| *p == port).map(|(a, b, _)| b - a + 1).sum()
    }
}

/// CLUSTER SLOTS as (first, last, port) triples, read from RESP2.
pub fn slot_ranges(c: &mut Conn) -> Vec<(usize, usize, String)> {
    let reply = c.cmd(&["CLUSTER", "SLOTS"]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    // Each range: *3, :first, :last, *4 (master), $host, :port, $id, *0.
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line == "*3" && lines.get(i + 1).is_some_and(|l| l.starts_with(':')) {
            let first = lines[i + 1][1..].parse().unwrap();
            let last = lines[i + 2][1..].parse().unwrap();
            let port = lines[i + 6][1..].to_string();
            out.push((first, last, port));
        }
    }
    out
}
