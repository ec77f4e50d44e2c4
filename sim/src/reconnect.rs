//! herald-client subscribers across a server crash and restart.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use herald_client::{Backoff, BoxStream, Client, Config, ConnectFuture, Connector, Event};

use crate::{add_server, PORT};

/// Connects herald-client over turmoil's network.
pub struct TurmoilConnector;

impl Connector for TurmoilConnector {
    fn connect(&self, addr: &str) -> ConnectFuture {
        let addr = addr.to_string();
        Box::pin(async move { Ok(Box::new(turmoil::net::TcpStream::connect(addr).await?) as BoxStream) })
    }
}

pub(crate) fn client_config(seed: u64) -> Config {
    Config {
        // Simulated links drop nothing here, but a crashed host answers
        // nothing: silence must be noticed by timeouts.
        idle_ping: Duration::from_millis(100),
        response_timeout: Duration::from_millis(100),
        connect_timeout: Duration::from_millis(100),
        backoff: Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(200), seed: Some(seed) },
        ..Config::new(format!("herald:{PORT}"))
    }
}

/// What one restart run recorded.
#[derive(Default, Debug)]
pub struct RestartLog {
    /// (sequence, subscriptions reached or None on error, simulated time).
    pub published: Vec<(u64, Option<usize>, Duration)>,
    /// What the subscriber's stream yielded, as text.
    pub events: Vec<String>,
    pub received: Vec<u64>,
    pub restarted_at: Duration,
    /// When the library said the subscription was back: each
    /// `Reconnected` (which it sends once the server confirmed every
    /// re-issued subscription). The workload never resubscribes itself.
    pub resubscribed_at: Vec<Duration>,
    /// Partitioned instead of crashed (odd seeds).
    pub partitioned: bool,
}

/// A publisher sends `total` numbered messages while the server crashes
/// and comes back; a herald-client subscriber must see them in order, never
/// twice, with the outage signalled, and lose nothing published after the
/// restart was acknowledged by its PUBLISH reply.
pub fn run_restart(seed: u64, total: u64) -> Result<RestartLog, String> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(3))
        .simulation_duration(Duration::from_secs(120))
        .build();
    add_server(&mut sim);
    let log = Rc::new(RefCell::new(RestartLog::default()));

    // The publisher's end: it gave up on "end" reaching the subscriber.
    let done = Rc::new(tokio::sync::Notify::new());
    let (sub_log, sub_done) = (log.clone(), done.clone());
    sim.client("sub", async move {
        let client = Client::with_connector(client_config(seed), Arc::new(TurmoilConnector)).await?;
        let mut sub = client.subscribe(&["ticks"]).await?;
        let gave_up = sub_done.notified();
        tokio::pin!(gave_up);
        loop {
            let event = tokio::select! {
                event = sub.next() => event,
                _ = &mut gave_up => return Ok(()),
            };
            let Some(event) = event else { break };
            match event? {
                Event::Message(m) if &m.payload[..] == b"end" => return Ok(()),
                Event::Message(m) => {
                    let seq: u64 = String::from_utf8_lossy(&m.payload).parse()?;
                    let mut log = sub_log.borrow_mut();
                    log.received.push(seq);
                    log.events.push(format!("message {seq}"));
                }
                Event::Disconnected { .. } => sub_log.borrow_mut().events.push("disconnected".into()),
                Event::Reconnected { .. } => {
                    let mut log = sub_log.borrow_mut();
                    log.events.push("reconnected".into());
                    log.resubscribed_at.push(turmoil::elapsed());
                }
                Event::Unsubscribed { kind, name } => {
                    return Err(format!("the server ended {kind:?} {name:?} unasked").into());
                }
            }
        }
        Err("subscriber stream ended".into())
    });

    let (pub_log, done) = (log.clone(), done.clone());
    sim.client("pub", async move {
        let client = Client::with_connector(client_config(seed ^ 1), Arc::new(TurmoilConnector)).await?;
        while client.pubsub_numsub(&["ticks"]).await?[0].1 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for seq in 0..total {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let reached = client.publish("ticks", seq.to_string()).await.ok();
            pub_log.borrow_mut().published.push((seq, reached, turmoil::elapsed()));
        }
        // Let the subscriber finish: it stops at "end". A subscriber that
        // never came back gets a second of tries.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if client.publish("ticks", "end").await.ok() == Some(1) {
                return Ok(());
            }
        }
        done.notify_one();
        Ok(())
    });

    let crash_at = Duration::from_millis(200 + seed % 400);
    let restart_at = crash_at + Duration::from_millis(50 + seed % 300);
    let (mut crashed, mut restarted) = (false, false);
    // Odd seeds cut the subscriber's link instead: the server keeps a
    // half-open session for it, and the client must notice the silence.
    let partition = seed % 2 == 1;
    log.borrow_mut().partitioned = partition;
    loop {
        let done = sim.step().map_err(|e| format!("seed {seed}: {e}"))?;
        if done {
            break;
        }
        let now = sim.elapsed();
        if !crashed && now >= crash_at {
            if partition {
                sim.partition("sub", "herald");
            } else {
                sim.crash("herald");
            }
            crashed = true;
        }
        if !restarted && now >= restart_at {
            if partition {
                sim.repair("sub", "herald");
            } else {
                sim.bounce("herald");
            }
            restarted = true;
            log.borrow_mut().restarted_at = now;
        }
    }
    let log = Rc::try_unwrap(log).map_err(|_| "log still shared")?.into_inner();
    check_restart(&log).map_err(|e| format!("seed {seed}: {e}"))?;
    Ok(log)
}

/// The client library's promises, from the recorded events alone.
pub fn check_restart(log: &RestartLog) -> Result<(), String> {
    if !log.received.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!("duplicate or out-of-order delivery: {:?}", log.received));
    }
    // Every outage is announced, and closed, before messages resume.
    let mut connected = true;
    let mut outages = 0;
    for e in &log.events {
        match e.as_str() {
            "disconnected" if connected => {
                connected = false;
                outages += 1;
            }
            "reconnected" if !connected => connected = true,
            "disconnected" | "reconnected" => return Err(format!("unpaired {e} in {:?}", log.events)),
            _ if !connected => return Err(format!("message during an outage: {e}")),
            _ => {}
        }
    }
    if outages == 0 {
        return Err("the crash went unnoticed".into());
    }
    // Published after the restart and acknowledged as delivered to the
    // subscriber: must have arrived.
    // Published once the subscriber had its subscription confirmed again,
    // and acknowledged as delivered somewhere: it must have arrived. (After
    // a partition the server may also count the old, half-open session.)
    let back = *log.resubscribed_at.last().ok_or("never resubscribed")?;
    let mut after_restart = 0;
    for (seq, reached, at) in &log.published {
        if *at > back && reached.is_some_and(|n| n >= 1) {
            after_restart += 1;
            if !log.received.contains(seq) {
                return Err(format!("message {seq}, published after the resubscribe at {back:?}, was lost"));
            }
        }
    }
    if after_restart == 0 {
        return Err("no message was delivered after the restart: the run proves nothing".into());
    }
    Ok(())
}
