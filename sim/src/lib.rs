//! Runs the real Herald actors on one simulated host and drives them from
//! simulated clients over turmoil's network. Everything (latencies, the
//! order in which hosts run) follows the seed, so a seed replays exactly.
//!
//! This is the seam the server core promises: the same `Session`, channel
//! and pattern actors as production, with only the accept loop swapped.

pub mod chaos;
pub mod cluster;
pub mod membership;
pub mod reconnect;

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use herald::Config;
use herald::Server;
use herald::{HostArbiter, Placement};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;
use redis_protocol::resp3::types::OwnedFrame as Frame3;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

pub const PORT: u16 = 6379;

/// What the clients saw, in simulated-time order.
#[derive(Default, Clone)]
pub struct Trace {
    pub events: Rc<RefCell<Vec<String>>>,
}

impl Trace {
    fn record(&self, who: &str, what: String) {
        let at = turmoil::elapsed().as_micros();
        self.events.borrow_mut().push(format!("{at:>9}us {who}: {what}"));
    }

    /// A hash of the whole trace: equal seeds must give equal hashes.
    pub fn hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.events.borrow().hash(&mut h);
        h.finish()
    }

    pub fn lines(&self) -> Vec<String> {
        self.events.borrow().clone()
    }
}

/// A minimal RESP client for simulated hosts. Replies come back
/// flattened to their words (`["message", "ch", "payload"]`).
pub struct SimClient {
    stream: TcpStream,
    buf: BytesMut,
    resp3: bool,
}

fn words2(frame: OwnedFrame, out: &mut Vec<String>) {
    match frame {
        OwnedFrame::Array(items) => items.into_iter().for_each(|f| words2(f, out)),
        OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => out.push(String::from_utf8_lossy(&b).into_owned()),
        OwnedFrame::Integer(i) => out.push(i.to_string()),
        OwnedFrame::Error(e) => out.push(format!("ERR({e})")),
        OwnedFrame::Null => out.push("nil".into()),
    }
}

fn words3(frame: Frame3, out: &mut Vec<String>) {
    match frame {
        Frame3::Array { data, .. } | Frame3::Push { data, .. } => data.into_iter().for_each(|f| words3(f, out)),
        Frame3::Map { data, .. } => data.into_iter().for_each(|(k, v)| {
            words3(k, out);
            words3(v, out);
        }),
        Frame3::BlobString { data, .. } | Frame3::SimpleString { data, .. } | Frame3::VerbatimString { data, .. } => {
            out.push(String::from_utf8_lossy(&data).into_owned())
        }
        Frame3::Number { data, .. } => out.push(data.to_string()),
        Frame3::SimpleError { data, .. } => out.push(format!("ERR({data})")),
        Frame3::Null => out.push("nil".into()),
        other => out.push(format!("{other:?}")),
    }
}

impl SimClient {
    /// Connects, retrying while the server is not listening yet (hosts
    /// start in an order the seed draws) or is restarting, for up to a
    /// simulated second.
    pub async fn connect() -> std::io::Result<SimClient> {
        SimClient::connect_to("herald").await
    }

    /// The same, to the server on `host`.
    pub async fn connect_to(host: &str) -> std::io::Result<SimClient> {
        let mut attempts = 0;
        let stream = loop {
            match TcpStream::connect((host, PORT)).await {
                Ok(stream) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused && attempts < 1000 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(SimClient { stream, buf: BytesMut::new(), resp3: false })
    }

    /// Switches the connection to RESP3.
    pub async fn hello3(&mut self) -> std::io::Result<()> {
        self.send(&["HELLO", "3"]).await?;
        self.resp3 = true;
        self.frame().await.map(drop)
    }

    pub async fn send(&mut self, args: &[&str]) -> std::io::Result<()> {
        self.stream.write_all(&encode(args)).await
    }

    /// Sends raw bytes (half a command, say).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next frame's words. Cancel-safe: bytes read stay buffered.
    pub async fn frame(&mut self) -> std::io::Result<Vec<String>> {
        loop {
            let mut out = Vec::new();
            if self.resp3 {
                let found =
                    redis_protocol::resp3::decode::complete::decode(&self.buf).map_err(std::io::Error::other)?;
                if let Some((frame, len)) = found {
                    let _ = self.buf.split_to(len);
                    words3(frame, &mut out);
                    return Ok(out);
                }
            } else if let Some((frame, len)) = decode(&self.buf).map_err(std::io::Error::other)? {
                let _ = self.buf.split_to(len);
                words2(frame, &mut out);
                return Ok(out);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    pub async fn cmd(&mut self, args: &[&str]) -> std::io::Result<Vec<String>> {
        self.send(args).await?;
        self.frame().await
    }
}

/// A command as RESP bulk strings.
pub fn encode(args: &[&str]) -> Vec<u8> {
    herald_client::encode_command(args)
}

/// The seeds a test runs: `HERALD_SEED` replays one, `HERALD_SEEDS` sets
/// how many (a soak), else `default` of them. A count that is not a
/// positive number is an error: a run of no seed would pass silently.
pub fn seeds(default: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("HERALD_SEED") {
        return vec![seed.parse().expect("HERALD_SEED is a number")];
    }
    let n = match std::env::var("HERALD_SEEDS") {
        Ok(n) => n
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("HERALD_SEEDS={n}: a count of seeds, at least 1")),
        Err(_) => default,
    };
    (1..=n).collect()
}

/// For the tests that check a seed gives the same record in two processes:
/// runs this test binary's ignored test `printer` (which prints `record
/// hash: N` for the seed in `HERALD_HASH_SEED`) in another process and
/// returns the hash it printed.
pub fn hash_in_another_process(printer: &str, seed: u64) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", printer, "--ignored", "--nocapture", "--test-threads=1"])
        .env("HERALD_HASH_SEED", seed.to_string())
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once("record hash: "))
        .and_then(|(_, h)| h.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no hash from the other process: {stdout}"))
}

/// The seed `hash_in_another_process` asks its printer for.
pub fn hash_seed() -> u64 {
    std::env::var("HERALD_HASH_SEED").expect("HERALD_HASH_SEED").parse().expect("a seed")
}

/// A reply's words as one line, for traces and checks.
pub fn text(words: &[String]) -> String {
    words.join(" ")
}

/// The Herald host: the production actors on turmoil's listener, all on
/// one task set (one arbiter).
pub fn add_server(sim: &mut turmoil::Sim<'_>) -> ServerHosts {
    add_server_with(sim, Config::default(), 1)
}

/// The hosts that make up the simulated server: "herald" (the listener and
/// every session) and, with more than one arbiter, one host per arbiter
/// running its channel directory and postman (and the shared actors on the
/// first), as production spreads them over threads.
pub struct ServerHosts {
    pub arbiters: usize,
    handles: Rc<RefCell<Vec<Option<HostArbiter>>>>,
}

impl ServerHosts {
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.hosted()).map(arbiter_host).collect();
        names.push("herald".into());
        names
    }

    /// Arbiters that run on hosts of their own (none for one arbiter).
    fn hosted(&self) -> usize {
        if self.arbiters > 1 {
            self.arbiters
        } else {
            0
        }
    }

    /// Crashes every host of the server at once (a process dies whole).
    pub fn crash(&self, sim: &mut turmoil::Sim<'_>) {
        self.handles.borrow_mut().iter_mut().for_each(|h| *h = None);
        for name in self.names() {
            sim.crash(name.as_str());
        }
    }

    /// Starts them again: a fresh server with no state.
    pub fn restart(&self, sim: &mut turmoil::Sim<'_>) {
        for name in self.names() {
            sim.bounce(name.as_str());
        }
    }
}

fn arbiter_host(i: usize) -> String {
    format!("herald-arbiter{i}")
}

/// The Herald hosts with their own settings and `arbiters` arbiters.
/// Protected mode is off: the simulated clients are other hosts, as if on a
/// private network.
pub fn add_server_with(sim: &mut turmoil::Sim<'_>, config: Config, arbiters: usize) -> ServerHosts {
    let config = Config { protected_mode: false, ..config };
    let hosts = ServerHosts { arbiters: arbiters.max(1), handles: Rc::new(RefCell::new(Vec::new())) };
    let ready = Rc::new(tokio::sync::Notify::new());
    *hosts.handles.borrow_mut() = vec![None; hosts.hosted()];
    for i in 0..hosts.hosted() {
        let (handles, ready) = (hosts.handles.clone(), ready.clone());
        sim.host(arbiter_host(i), move || {
            let (handles, ready) = (handles.clone(), ready.clone());
            async move {
                let (handle, run) = HostArbiter::new();
                handles.borrow_mut()[i] = Some(handle);
                ready.notify_waiters();
                run.await;
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
    let handles = hosts.handles.clone();
    sim.host("herald", move || {
        let (config, handles, ready) = (config.clone(), handles.clone(), ready.clone());
        async move {
            // Wait for every arbiter host to be up (they start in the same
            // step, in an order the seed picks).
            let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
            let placement = loop {
                let waiting = ready.notified();
                let all: Option<Vec<HostArbiter>> = handles.borrow().iter().cloned().collect();
                match all {
                    Some(all) if all.is_empty() => break Placement::Local,
                    Some(all) => break Placement::Hosts(all),
                    None => waiting.await,
                }
            };
            let mut server = Server::start(config, placement);
            loop {
                let (stream, peer) = listener.accept().await?;
                server.accept_local(stream, peer.to_string(), format!("herald:{PORT}"));
            }
        }
    });
    hosts
}

/// One seeded run of the publish/subscribe scenario: a channel subscriber
/// and a pattern subscriber, two publishers each sending `per_publisher`
/// messages over two channels. Returns the clients' trace.
pub fn run_pubsub(seed: u64, per_publisher: usize) -> Result<Trace, String> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(5))
        .simulation_duration(Duration::from_secs(120))
        .build();
    add_server(&mut sim);
    let trace = Trace::default();
    let channels = ["orders", "payments"];

    for (name, pattern) in [("sub", false), ("psub", true)] {
        let trace = trace.clone();
        sim.client(name, async move {
            let mut c = SimClient::connect().await?;
            let confirm = if pattern {
                c.cmd(&["PSUBSCRIBE", "*s"]).await?
            } else {
                c.cmd(&["SUBSCRIBE", "orders", "payments"]).await?
            };
            trace.record(name, text(&confirm));
            if !pattern {
                trace.record(name, text(&c.frame().await?));
            }
            let mut last_seen = [None::<usize>; 2];
            for _ in 0..2 * per_publisher * 2 {
                let msg = text(&c.frame().await?);
                trace.record(name, msg.clone());
                let body = msg.rsplit(' ').next().unwrap_or_default();
                let (publisher, seq) = body.split_once('-').ok_or("malformed payload")?;
                let (p, seq): (usize, usize) = (publisher.parse()?, seq.parse()?);
                if let Some(prev) = last_seen[p] {
                    if seq != prev + 1 {
                        return Err(format!("{name}: publisher {p} went {prev} -> {seq}").into());
                    }
                }
                last_seen[p] = Some(seq);
            }
            Ok(())
        });
    }

    for p in 0..2usize {
        let trace = trace.clone();
        sim.client(format!("pub{p}"), async move {
            let mut c = SimClient::connect().await?;
            // Wait (in simulated time) until both subscribers are in.
            loop {
                let numsub = text(&c.cmd(&["PUBSUB", "NUMSUB", "orders"]).await?);
                let numpat = text(&c.cmd(&["PUBSUB", "NUMPAT"]).await?);
                if numsub == "orders 1" && numpat == "1" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for seq in 0..2 * per_publisher {
                let channel = channels[seq % 2];
                let n = text(&c.cmd(&["PUBLISH", channel, &format!("{p}-{seq}")]).await?);
                trace.record(&format!("pub{p}"), format!("PUBLISH {channel} {p}-{seq} -> {n}"));
                if n != "2" {
                    return Err(format!("pub{p}: PUBLISH reached {n} subscriptions, expected 2").into());
                }
            }
            Ok(())
        });
    }

    sim.run().map_err(|e| format!("seed {seed}: {e}"))?;
    Ok(trace)
}
