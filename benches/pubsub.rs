//! Herald and Debian's redis-server side by side, in one run:
//! `cargo bench --bench pubsub` (optionally a scenario name filter after
//! `--`). Each scenario runs HERALD_BENCH_ROUNDS times per server (default
//! 2), alternating which goes first; the table shows the means, server CPU
//! seconds (and per delivery), the load generator's CPU seconds, RSS, and
//! the lowest and highest deliveries/s ratio of a single round, so a reader
//! can tell a difference from this machine's noise. The load generator
//! shares the machine: where it uses what the server leaves, deliveries/s
//! measures it, and CPU per delivery is the server's own cost.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_bench::{idle_patterns, run, scenarios, Report, Scenario};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    name: &'static str,
    port: u16,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(name: &'static str, port: u16, mut cmd: Command, ready: &str) -> Server {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains(ready)), "{name} did not start");
    std::thread::spawn(move || lines.for_each(drop));
    Server { name, port, child }
}

/// With HERALD_BENCH_PIN=1 both servers run on CPU 0 and the load
/// generator on CPU 1: the scheduler's placement of three busy processes
/// on two cores otherwise moves single rounds by ±20 %.
fn pinned() -> bool {
    std::env::var("HERALD_BENCH_PIN").is_ok_and(|v| v == "1")
}

/// A command for `program`, on CPU 0 when pinned.
fn server_command(program: &str) -> Command {
    if pinned() {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0", program]);
        cmd
    } else {
        Command::new(program)
    }
}

fn herald() -> Server {
    let port = free_port();
    let mut cmd = server_command(env!("CARGO_BIN_EXE_herald"));
    cmd.args(["--port", &port.to_string()]).env("RUST_LOG", "info");
    // Extra flags for experiments, e.g. HERALD_BENCH_ARGS="--threads 1".
    if let Ok(extra) = std::env::var("HERALD_BENCH_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    start("herald", port, cmd, "ready to accept connections")
}

fn redis() -> Server {
    let port = free_port();
    let mut cmd = server_command("redis-server");
    cmd.args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--maxclients", "15000"]);
    start("redis", port, cmd, "Ready to accept connections")
}

/// (CPU seconds so far, resident bytes) of a process, from /proc.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss_kb * 1024)
}

#[derive(Default, Clone)]
struct Row {
    report: Report,
    cpu: f64,
    /// The load generator's CPU seconds over the same run (this process).
    load_cpu: f64,
    rss: u64,
}

impl Row {
    /// Server CPU µs per delivery: what a delivery costs the server,
    /// whatever share of the cores the load generator left it.
    fn cpu_per_delivery_us(&self) -> f64 {
        if self.report.delivered == 0 {
            0.0
        } else {
            self.cpu * 1e6 / self.report.delivered as f64
        }
    }
}

fn mean(rows: &[Row]) -> Row {
    let n = rows.len() as f64;
    let avg = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let mut out = rows[0].clone();
    out.report.published_per_sec = avg(&|r| r.report.published_per_sec);
    out.report.deliveries_per_sec = avg(&|r| r.report.deliveries_per_sec);
    out.report.p50_us = avg(&|r| r.report.p50_us);
    out.report.p99_us = avg(&|r| r.report.p99_us);
    out.report.p999_us = avg(&|r| r.report.p999_us);
    out.report.max_us = rows.iter().map(|r| r.report.max_us).fold(0.0, f64::max);
    out.report.duplicates = rows.iter().map(|r| r.report.duplicates).sum();
    out.report.reorders = rows.iter().map(|r| r.report.reorders).sum();
    out.report.lost = rows.iter().map(|r| r.report.lost).sum();
    out.cpu = avg(&|r| r.cpu);
    out.load_cpu = avg(&|r| r.load_cpu);
    out.report.delivered = avg(&|r| r.report.delivered as f64) as u64;
    out.rss = rows.iter().map(|r| r.rss).max().unwrap_or(0);
    out
}

fn ratio(h: f64, r: f64) -> String {
    if r == 0.0 {
        "-".into()
    } else {
        format!("{:.2}", h / r)
    }
}

/// The lowest and highest Herald/Redis deliveries/s ratio of one round.
fn round_ratios(h: &[Row], r: &[Row]) -> String {
    let ratios: Vec<f64> = h
        .iter()
        .zip(r)
        .filter(|(_, r)| r.report.deliveries_per_sec > 0.0)
        .map(|(h, r)| h.report.deliveries_per_sec / r.report.deliveries_per_sec)
        .collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    if ratios.is_empty() {
        "-".into()
    } else {
        format!("{lo:.2}–{hi:.2}")
    }
}

fn print_row(name: &str, h: &Row, r: &Row, rounds: &str) {
    let (hr, rr) = (&h.report, &r.report);
    println!(
        "| {name} | {:.0} / {:.0} ({}) | {:.0} / {:.0} ({}) | {rounds} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} / {:.2} | {:.2} / {:.2} ({}) | {:.2} / {:.2} | {:.1} / {:.1} | {}/{}/{} , {}/{}/{} |",
        hr.published_per_sec,
        rr.published_per_sec,
        ratio(hr.published_per_sec, rr.published_per_sec),
        hr.deliveries_per_sec,
        rr.deliveries_per_sec,
        ratio(hr.deliveries_per_sec, rr.deliveries_per_sec),
        hr.p50_us,
        rr.p50_us,
        hr.p99_us,
        rr.p99_us,
        h.cpu,
        r.cpu,
        h.cpu_per_delivery_us(),
        r.cpu_per_delivery_us(),
        ratio(h.cpu_per_delivery_us(), r.cpu_per_delivery_us()),
        h.load_cpu,
        r.load_cpu,
        h.rss as f64 / 1048576.0,
        r.rss as f64 / 1048576.0,
        hr.duplicates,
        hr.reorders,
        hr.lost,
        rr.duplicates,
        rr.reorders,
        rr.lost
    );
}

/// Publishing after 100k patterns were subscribed and released, as a
/// fraction of the rate before.
async fn released_patterns(port: u16) -> (f64, f64) {
    let addr = format!("127.0.0.1:{port}");
    let sc = Scenario { pipeline: 32, duration: Duration::from_secs(3), ..Scenario::default() };
    let before = run(&addr, &sc).await.unwrap().published_per_sec;
    let held = idle_patterns(&addr, 100_000).await.unwrap();
    drop(held);
    // Wait until the server has let them go.
    let mut probe = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = vec![0u8; 64];
    loop {
        probe.write_all(b"PUBSUB NUMPAT\r\n").await.unwrap();
        let n = probe.read(&mut buf).await.unwrap();
        if &buf[..n] == b":0\r\n" {
            break;
        }
    }
    let after = run(&addr, &sc).await.unwrap().published_per_sec;
    (before, after)
}

/// Subscriptions on one connection for the memory scenario: the issue's
/// figure (a gateway multiplexing its users' channels).
const SUBSCRIPTIONS: usize = 1_000_000;

/// Server memory per idle subscriber connection, and per channel
/// subscription on one connection (at once, and settled: after MEMORY
/// PURGE and a moment, so what the allocator keeps cached from the burst
/// of confirmations and messages is not counted; both servers get the
/// same), each on a fresh server (so the allocator has nothing cached from
/// earlier scenarios).
async fn memory(start: fn() -> Server) -> (f64, f64, f64) {
    let server = start();
    let addr = format!("127.0.0.1:{}", server.port);
    let pid = server.child.id();
    let (_, base) = usage(pid);
    let mut conns = Vec::new();
    for i in 0..10_000 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(format!("SUBSCRIBE idle:{i}\r\n").as_bytes()).await.unwrap();
        conns.push(c);
    }
    let mut buf = vec![0u8; 64 * 1024];
    for c in conns.iter_mut() {
        let _ = c.read(&mut buf).await.unwrap();
    }
    let (_, with_conns) = usage(pid);
    drop(conns);
    let per_conn = (with_conns.saturating_sub(base)) as f64 / 10_000.0;
    drop(server);

    let server = start();
    let addr = format!("127.0.0.1:{}", server.port);
    let pid = server.child.id();
    let (_, base) = usage(pid);
    let c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = c.into_split();
    // Confirmations are read as they come: unread, they would pass the
    // pub/sub output limit (Redis drops the client at 32 MiB).
    let writer = tokio::spawn(async move {
        let names: Vec<String> = (0..SUBSCRIPTIONS).map(|i| format!("subscription:{i}")).collect();
        for chunk in names.chunks(1000) {
            let mut cmd = String::from("SUBSCRIBE");
            for n in chunk {
                cmd.push(' ');
                cmd.push_str(n);
            }
            cmd.push_str("\r\n");
            wr.write_all(cmd.as_bytes()).await.unwrap();
        }
        wr
    });
    // Each confirmation ends with the running count; wait for the last.
    let mut seen = Vec::new();
    let last = format!(":{SUBSCRIPTIONS}\r\n").into_bytes();
    while !seen.ends_with(&last) {
        let n = rd.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the subscribing connection");
        seen.extend_from_slice(&buf[..n]);
        if seen.len() > 64 {
            seen.drain(..seen.len() - 64);
        }
    }
    let _wr = writer.await.unwrap();
    let (_, at_once) = usage(pid);
    let mut admin = tokio::net::TcpStream::connect(&addr).await.unwrap();
    admin.write_all(b"MEMORY PURGE\r\n").await.unwrap();
    // The answer comes once the purge is done (measured: the same figure
    // as half a second later).
    let _ = admin.read(&mut buf).await.unwrap();
    let (_, settled) = usage(pid);
    let per = |rss: u64| rss.saturating_sub(base) as f64 / SUBSCRIPTIONS as f64;
    (per_conn, per(at_once), per(settled))
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if pinned() {
        // Before the runtime starts: its threads inherit this thread's CPUs.
        let pid = std::process::id().to_string();
        let ok = Command::new("taskset").args(["-p", "-c", "1", &pid]).stdout(Stdio::null()).status();
        assert!(ok.is_ok_and(|s| s.success()), "taskset could not pin the load generator");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let servers = [herald(), redis()];
    println!(
        "Herald vs redis-server {}, same machine, same run{}. Cells: herald / redis (ratio).",
        redis_version(),
        if pinned() { ", servers on CPU 0, load generator on CPU 1" } else { "" }
    );
    let rounds: usize = std::env::var("HERALD_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(2).max(1);
    println!(
        "| scenario | published/s | deliveries/s | ratio per round | p50 µs | p99 µs | server CPU s | server CPU µs per delivery | load generator CPU s | RSS MiB | dup/reorder/lost |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for sc in scenarios() {
        if filter.as_ref().is_some_and(|f| !sc.name.contains(f.as_str())) {
            continue;
        }
        let mut rows: [Vec<Row>; 2] = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let s = &servers[i];
                let (cpu0, _) = usage(s.child.id());
                let (load0, _) = usage(std::process::id());
                let report = rt
                    .block_on(run(&format!("127.0.0.1:{}", s.port), &sc))
                    .unwrap_or_else(|e| panic!("{} on {}: {e}", sc.name, s.name));
                let (cpu1, rss) = usage(s.child.id());
                let (load1, _) = usage(std::process::id());
                rows[i].push(Row { report, cpu: cpu1 - cpu0, load_cpu: load1 - load0, rss });
            }
        }
        print_row(&sc.name, &mean(&rows[0]), &mean(&rows[1]), &round_ratios(&rows[0], &rows[1]));
    }
    if filter.as_ref().is_none_or(|f| "released".contains(f.as_str())) {
        let h = rt.block_on(released_patterns(servers[0].port));
        let r = rt.block_on(released_patterns(servers[1].port));
        println!(
            "\n100k patterns subscribed then released — publish/s before → after: herald {:.0} → {:.0} ({:.0}%), redis {:.0} → {:.0} ({:.0}%)",
            h.0,
            h.1,
            100.0 * h.1 / h.0,
            r.0,
            r.1,
            100.0 * r.1 / r.0
        );
    }
    if filter.as_ref().is_none_or(|f| "memory".contains(f.as_str())) {
        let h = rt.block_on(memory(herald));
        let r = rt.block_on(memory(redis));
        println!(
            "memory — per idle subscriber connection: herald {:.0} B, redis {:.0} B; per channel subscription (1M on one connection), at once: herald {:.0} B, redis {:.0} B; settled (MEMORY PURGE): herald {:.0} B, redis {:.0} B",
            h.0, r.0, h.1, r.1, h.2, r.2
        );
    }
}

fn redis_version() -> String {
    let out = Command::new("redis-server").arg("--version").output().map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&out).split_whitespace().find_map(|w| w.strip_prefix("v=")).unwrap_or("?").to_string()
}
