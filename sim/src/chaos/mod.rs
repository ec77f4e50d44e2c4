//! The chaos scenario: a workload and faults generated from the seed, the
//! real server under them, and invariants checked afterwards from what the
//! clients recorded (never from server internals, but for the final census
//! Herald reports in INFO).
//!
//! Timeline (simulated): phase 1 has subscription churn, pipelined
//! publishes and faults; at `STEADY` every subscriber that is still healthy
//! returns to its steady set of subscriptions; phase 2 publishes with no
//! faults; then every client leaves and an observer checks that the server
//! forgot them all.

mod check;

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use herald::{Config, OutputLimit};
use tokio::time::sleep;

use crate::{add_server_with, SimClient};

pub use check::{check, Broken, Violation};

pub const CHANNELS: &[&str] = &["orders", "payments", "orders:eu", "users:1", "users:2"];
pub const PATTERNS: &[&str] = &["orders*", "users:?", "*s", "[op]*", "users:[^1]", "*"];
pub const SHARDS: &[&str] = &["s:a", "s:b"];

/// When phase 2 (no faults, no churn) starts.
pub const STEADY: Duration = Duration::from_millis(1500);
/// When publishing ends; subscribers leave a little later.
const END: Duration = Duration::from_millis(2200);
const QUIET: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn verbs(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("SUBSCRIBE", "UNSUBSCRIBE"),
            Kind::Pattern => ("PSUBSCRIBE", "PUNSUBSCRIBE"),
            Kind::Shard => ("SSUBSCRIBE", "SUNSUBSCRIBE"),
        }
    }
}

/// What may go wrong for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    None,
    /// Its link holds everything for a while, then releases it (no loss).
    Hold {
        at: Duration,
        for_: Duration,
    },
    /// Its link is cut; it gives up on the connection.
    Partition {
        at: Duration,
    },
    /// It stops reading; the server must drop it, nobody else may suffer.
    StopsReading {
        at: Duration,
    },
    /// It closes its connection in the middle of a command.
    KilledMidFrame {
        at: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct SubscriberPlan {
    pub resp3: bool,
    /// Subscribed at the start and again at `STEADY`.
    pub steady: Vec<(Kind, String)>,
    /// (when, subscribe?, what) during phase 1.
    pub churn: Vec<(Duration, bool, Kind, String)>,
    pub fault: Fault,
}

/// The server's settings for one run, drawn from the seed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Arbiters (1–4): each but a lone one on a simulated host of its own.
    pub arbiters: usize,
    /// The pub/sub clients' output limit.
    pub limit: OutputLimit,
    /// Redis' `timeout`: idle clients with no subscriptions are closed.
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub settings: Settings,
    pub subscribers: Vec<SubscriberPlan>,
    pub publishers: usize,
    /// The most publishes a publisher pipelines at once.
    pub depth: usize,
    pub latency: (Duration, Duration),
}

impl Plan {
    pub fn from_seed(seed: u64) -> Plan {
        let mut rng = fastrand::Rng::with_seed(seed);
        // A quarter of the runs have no pattern subscriptions at all, so
        // pipelined publishes travel in runs (see Session::can_batch).
        let channels_only = rng.u8(0..4) == 0;
        let pick = |rng: &mut fastrand::Rng| -> (Kind, String) {
            match rng.u8(0..10) {
                0..=4 => (Kind::Channel, CHANNELS[rng.usize(..CHANNELS.len())].into()),
                5..=8 if channels_only => (Kind::Channel, CHANNELS[rng.usize(..CHANNELS.len())].into()),
                5..=8 => (Kind::Pattern, PATTERNS[rng.usize(..PATTERNS.len())].into()),
                _ => (Kind::Shard, SHARDS[rng.usize(..SHARDS.len())].into()),
            }
        };
        let ms = |rng: &mut fastrand::Rng, lo: u64, hi: u64| Duration::from_millis(rng.u64(lo..hi));
        let mut subscribers = Vec::new();
        for i in 0..5 {
            let mut steady: Vec<(Kind, String)> = (0..rng.usize(1..4)).map(|_| pick(&mut rng)).collect();
            steady.sort();
            steady.dedup();
            let churn = (0..rng.usize(0..5))
                .map(|_| {
                    let (k, n) = pick(&mut rng);
                    (ms(&mut rng, 50, 1300), rng.bool(), k, n)
                })
                .collect();
            let fault = match i {
                1 if rng.bool() => Fault::Hold { at: ms(&mut rng, 100, 900), for_: ms(&mut rng, 20, 300) },
                4 => match rng.u8(0..4) {
                    0 => Fault::Partition { at: ms(&mut rng, 100, 1000) },
                    1 => Fault::StopsReading { at: ms(&mut rng, 100, 600) },
                    2 => Fault::KilledMidFrame { at: ms(&mut rng, 100, 1000) },
                    _ => Fault::None,
                },
                _ => Fault::None,
            };
            if let Fault::StopsReading { .. } = fault {
                // Make sure it is sent plenty.
                if channels_only {
                    steady.extend(CHANNELS.iter().map(|c| (Kind::Channel, c.to_string())));
                } else {
                    steady.push((Kind::Pattern, "*".into()));
                }
            }
            subscribers.push(SubscriberPlan { resp3: rng.bool(), steady, churn, fault });
        }
        let lo = Duration::from_micros(rng.u64(50..500));
        let latency = (lo, lo + ms(&mut rng, 1, 8));
        // Tight enough that a subscriber that stops reading is dropped
        // within the run, loose enough that a held link (up to 300 ms) is
        // not.
        let soft = rng.usize(32..=128) * 1024;
        let limit = OutputLimit {
            hard: rng.usize(512..=1536) * 1024,
            soft,
            soft_for: Duration::from_millis(rng.u64(400..=1200)),
        };
        let settings =
            Settings { arbiters: rng.usize(1..=4), limit, idle_timeout: Duration::from_millis(rng.u64(800..=1500)) };
        Plan { seed, settings, subscribers, publishers: rng.usize(1..=3), depth: rng.usize(1..=8), latency }
    }
}

#[derive(Debug, Clone, Hash)]
pub struct Publish {
    pub publisher: usize,
    pub seq: u64,
    pub channel: String,
    pub shard: bool,
    pub size: usize,
    pub sent_at: Duration,
    /// The reply's count, if a reply came.
    pub reached: Option<u64>,
    pub replied_at: Duration,
}

#[derive(Debug, Clone, Hash)]
pub enum SubEvent {
    /// A subscribe was sent.
    Joining {
        kind: Kind,
        name: String,
        at: Duration,
    },
    /// A subscribe confirmation arrived, with the connection's count of
    /// subscriptions of its family (channels and patterns, or shard
    /// channels) it reported.
    Joined {
        kind: Kind,
        name: String,
        count: usize,
        at: Duration,
    },
    /// An unsubscribe confirmation arrived (likewise).
    Unjoined {
        kind: Kind,
        name: String,
        count: usize,
        at: Duration,
    },
    /// An unsubscribe was sent.
    Leaving {
        kind: Kind,
        name: String,
        at: Duration,
    },
    Delivery {
        kind: Kind,
        pattern: Option<String>,
        channel: String,
        publisher: usize,
        seq: u64,
        at: Duration,
    },
    /// The server closed the connection.
    Closed {
        at: Duration,
    },
    /// The subscriber closed it (end of run, or its fault).
    Left {
        at: Duration,
    },
}

#[derive(Debug, Default, Clone, Hash)]
pub struct FinalState {
    pub numpat: String,
    pub channels: String,
    pub shard_channels: String,
    pub sessions: String,
    pub channel_actors: String,
}

/// Everything the clients saw.
#[derive(Debug, Default, Clone, Hash)]
pub struct Record {
    pub publishes: Vec<Publish>,
    pub subscribers: Vec<Vec<SubEvent>>,
    pub final_state: Option<FinalState>,
}

impl Record {
    pub fn hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        Hash::hash(self, &mut h);
        h.finish()
    }
}

pub struct Outcome {
    pub plan: Plan,
    pub record: Record,
}

fn now() -> Duration {
    turmoil::elapsed()
}

fn parse_payload(p: &str) -> Option<(usize, u64)> {
    let mut it = p.split(':');
    let publisher = it.next()?.strip_prefix('p')?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    Some((publisher, seq))
}

type Shared = Rc<RefCell<Record>>;

/// Records one frame a subscriber read.
fn record_frame(record: &Shared, me: usize, words: &[String]) {
    let at = now();
    let event = match words.first().map(String::as_str) {
        Some(verb @ ("subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe"))
            if words.len() == 3 =>
        {
            let (kind, leaving) = match verb {
                "subscribe" => (Kind::Channel, false),
                "psubscribe" => (Kind::Pattern, false),
                "ssubscribe" => (Kind::Shard, false),
                "unsubscribe" => (Kind::Channel, true),
                "punsubscribe" => (Kind::Pattern, true),
                _ => (Kind::Shard, true),
            };
            let Ok(count) = words[2].parse() else { return };
            let name = words[1].clone();
            if leaving {
                SubEvent::Unjoined { kind, name, count, at }
            } else {
                SubEvent::Joined { kind, name, count, at }
            }
        }
        Some("message" | "smessage") if words.len() == 3 => {
            let Some((publisher, seq)) = parse_payload(&words[2]) else { return };
            let kind = if words[0] == "message" { Kind::Channel } else { Kind::Shard };
            SubEvent::Delivery { kind, pattern: None, channel: words[1].clone(), publisher, seq, at }
        }
        Some("pmessage") if words.len() == 4 => {
            let Some((publisher, seq)) = parse_payload(&words[3]) else { return };
            SubEvent::Delivery {
                kind: Kind::Pattern,
                pattern: Some(words[1].clone()),
                channel: words[2].clone(),
                publisher,
                seq,
                at,
            }
        }
        _ => return,
    };
    record.borrow_mut().subscribers[me].push(event);
}

async fn subscriber(me: usize, plan: SubscriberPlan, record: Shared) -> turmoil::Result {
    let mut c = SimClient::connect().await?;
    if plan.resp3 {
        c.hello3().await?;
    }
    let mut actions: Vec<(Duration, bool, Kind, String)> =
        plan.steady.iter().map(|(k, n)| (Duration::ZERO, true, *k, n.clone())).collect();
    actions.extend(plan.churn.iter().cloned());
    // Back to the steady set for phase 2.
    actions.extend(plan.steady.iter().map(|(k, n)| (STEADY, true, *k, n.clone())));
    actions.sort_by_key(|a| a.0);
    let stop = match plan.fault {
        Fault::Partition { at } => Some(at + Duration::from_millis(50)),
        Fault::KilledMidFrame { at } => Some(at),
        _ => None,
    };
    let mut next = 0;
    loop {
        let due = actions.get(next).map(|a| a.0).unwrap_or(END + QUIET);
        let due = stop.map_or(due, |s| due.min(s));
        if let Fault::StopsReading { at } = plan.fault {
            if now() >= at {
                // Stop reading until the end; then see whether it was cut
                // off: a live session answers PING (after whatever it still
                // had queued); a dropped one never does. (turmoil may lose
                // the FIN of a connection closed while its sends were
                // blocked, so EOF alone is not the signal.)
                sleep((END + QUIET).saturating_sub(now())).await;
                let _ = c.send(&["PING"]).await;
                loop {
                    match tokio::time::timeout(Duration::from_millis(300), c.frame()).await {
                        Ok(Ok(words)) if words.first().is_some_and(|w| w.eq_ignore_ascii_case("pong")) => {
                            record.borrow_mut().subscribers[me].push(SubEvent::Left { at: now() });
                            return Ok(());
                        }
                        Ok(Ok(words)) => record_frame(&record, me, &words),
                        Ok(Err(_)) | Err(_) => {
                            record.borrow_mut().subscribers[me].push(SubEvent::Closed { at: now() });
                            return Ok(());
                        }
                    }
                }
            }
        }
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(tokio::time::Instant::now() + due.saturating_sub(now())) => {
                if stop.is_some_and(|s| now() >= s) {
                    if let Fault::KilledMidFrame { .. } = plan.fault {
                        c.send_raw(b"*3\r\n$7\r\nPUBLISH\r\n$6\r\norders\r\n$9\r\nunfini").await?;
                    }
                    record.borrow_mut().subscribers[me].push(SubEvent::Left { at: now() });
                    return Ok(());
                }
                if now() >= END + QUIET {
                    record.borrow_mut().subscribers[me].push(SubEvent::Left { at: now() });
                    return Ok(());
                }
                let (_, join, kind, name) = actions[next].clone();
                next += 1;
                let (sub, unsub) = kind.verbs();
                let event = if join { SubEvent::Joining { kind, name: name.clone(), at: now() } } else {
                    SubEvent::Leaving { kind, name: name.clone(), at: now() }
                };
                record.borrow_mut().subscribers[me].push(event);
                c.send(&[if join { sub } else { unsub }, &name]).await?;
            }
            frame = c.frame() => match frame {
                Ok(words) => record_frame(&record, me, &words),
                Err(_) => {
                    record.borrow_mut().subscribers[me].push(SubEvent::Closed { at: now() });
                    return Ok(());
                }
            }
        }
    }
}

async fn publisher(me: usize, seed: u64, max_depth: usize, record: Shared) -> turmoil::Result {
    let mut rng = fastrand::Rng::with_seed(seed ^ ((me as u64 + 1) * 0x9e37_79b9));
    let mut c = SimClient::connect().await?;
    // Let the subscribers' first subscriptions land.
    sleep(Duration::from_millis(20)).await;
    let mut seq = 0u64;
    while now() < END {
        let depth = rng.usize(1..=max_depth);
        let mut batch = Vec::new();
        let mut wire = Vec::new();
        for _ in 0..depth {
            let shard = rng.u8(0..10) == 0;
            let channel = if shard { SHARDS[rng.usize(..SHARDS.len())] } else { CHANNELS[rng.usize(..CHANNELS.len())] };
            // Now and then a large one, so that a subscriber that stops
            // reading passes its hard limit within the run.
            let size = if rng.u8(0..12) == 0 { rng.usize(4096..16384) } else { rng.usize(16..300) };
            let payload = format!("p{me}:{seq}:{}", "x".repeat(size));
            wire.extend(crate::encode(&[if shard { "SPUBLISH" } else { "PUBLISH" }, channel, &payload]));
            batch.push(Publish {
                publisher: me,
                seq,
                channel: channel.into(),
                shard,
                size: payload.len(),
                sent_at: now(),
                reached: None,
                replied_at: Duration::ZERO,
            });
            seq += 1;
        }
        c.send_raw(&wire).await?;
        for mut p in batch {
            let words = c.frame().await?;
            p.reached = words.first().and_then(|w| w.parse().ok());
            p.replied_at = now();
            record.borrow_mut().publishes.push(p);
        }
        sleep(Duration::from_millis(rng.u64(1..6))).await;
    }
    Ok(())
}

/// After everyone left: the server must have forgotten them all.
async fn observer(record: Shared, clients: usize, finished: Rc<RefCell<usize>>) -> turmoil::Result {
    while *finished.borrow() < clients {
        sleep(Duration::from_millis(5)).await;
    }
    let mut c = SimClient::connect().await?;
    // A subscriber whose link was cut left a half-open connection that
    // nothing will ever close (turmoil has no TCP keepalive). To Herald it
    // is a subscriber that never reads: writing enough to it trips the
    // output limit, as it would any slow subscriber.
    let probe = "probe".repeat(800);
    for _ in 0..40 {
        for ch in CHANNELS {
            c.cmd(&["PUBLISH", ch, &probe]).await?;
        }
        for ch in SHARDS {
            c.cmd(&["SPUBLISH", ch, &probe]).await?;
        }
    }
    let deadline = now() + Duration::from_secs(5);
    loop {
        let info = text_of(c.cmd(&["INFO", "stats"]).await?);
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string)).unwrap_or_default()
        };
        let state = FinalState {
            numpat: text_of(c.cmd(&["PUBSUB", "NUMPAT"]).await?),
            channels: text_of(c.cmd(&["PUBSUB", "CHANNELS"]).await?),
            shard_channels: text_of(c.cmd(&["PUBSUB", "SHARDCHANNELS"]).await?),
            sessions: field("herald_session_actors"),
            channel_actors: field("herald_channel_actors"),
        };
        let clean = state.numpat == "0"
            && state.channels.is_empty()
            && state.shard_channels.is_empty()
            && state.sessions == "1"
            && state.channel_actors == "0";
        if clean || now() > deadline {
            record.borrow_mut().final_state = Some(state);
            return Ok(());
        }
        sleep(Duration::from_millis(10)).await;
    }
}

fn text_of(words: Vec<String>) -> String {
    words.join(" ")
}

/// Runs one seed; the record comes back even if the invariants fail.
pub fn run(seed: u64) -> Result<Outcome, String> {
    let plan = Plan::from_seed(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(plan.latency.0)
        .max_message_latency(plan.latency.1)
        // Few segments in flight, so a subscriber that stops reading backs
        // its output up on the server quickly.
        .tcp_capacity(16)
        // Hosts (the server's arbiters among them) run in an order the
        // seed draws, step by step: messages between arbiters race as
        // between threads.
        .enable_random_order()
        .simulation_duration(Duration::from_secs(60))
        .build();
    // Idle clients time out (Redis' `timeout`), so a half-open connection
    // with no subscriptions goes too.
    let config =
        Config { pubsub_output: plan.settings.limit, idle_timeout: plan.settings.idle_timeout, ..Config::default() };
    add_server_with(&mut sim, config, plan.settings.arbiters);
    let record: Shared =
        Rc::new(RefCell::new(Record { subscribers: vec![Vec::new(); plan.subscribers.len()], ..Record::default() }));
    let finished = Rc::new(RefCell::new(0usize));
    let clients = plan.subscribers.len() + plan.publishers;
    for (i, sp) in plan.subscribers.iter().enumerate() {
        let (record, finished, sp) = (record.clone(), finished.clone(), sp.clone());
        sim.client(format!("sub{i}"), async move {
            let result = subscriber(i, sp, record).await;
            *finished.borrow_mut() += 1;
            result
        });
    }
    for p in 0..plan.publishers {
        let (record, finished, depth) = (record.clone(), finished.clone(), plan.depth);
        sim.client(format!("pub{p}"), async move {
            let result = publisher(p, seed, depth, record).await;
            *finished.borrow_mut() += 1;
            result
        });
    }
    let observer_record = record.clone();
    sim.client("observer", observer(observer_record, clients, finished));

    let mut applied = vec![(false, false); plan.subscribers.len()];
    loop {
        if sim.step().map_err(|e| format!("seed {seed}: {e}"))? {
            break;
        }
        let t = sim.elapsed();
        for (i, sp) in plan.subscribers.iter().enumerate() {
            let host = format!("sub{i}");
            match sp.fault {
                Fault::Hold { at, for_ } => {
                    if !applied[i].0 && t >= at {
                        sim.hold(host.as_str(), "herald");
                        applied[i].0 = true;
                    }
                    if !applied[i].1 && t >= at + for_ {
                        sim.release(host.as_str(), "herald");
                        applied[i].1 = true;
                    }
                }
                Fault::Partition { at } => {
                    if !applied[i].0 && t >= at {
                        sim.partition(host.as_str(), "herald");
                        applied[i].0 = true;
                    }
                    // Repaired later: the server learns the peer is gone
                    // when it next writes to it.
                    if !applied[i].1 && t >= STEADY {
                        sim.repair(host.as_str(), "herald");
                        applied[i].1 = true;
                    }
                }
                _ => {}
            }
        }
    }
    drop(sim);
    let record = Rc::try_unwrap(record).map_err(|_| "record still shared".to_string())?.into_inner();
    Ok(Outcome { plan, record })
}

/// Runs one seed and checks it; the error names the seed.
pub fn run_checked(seed: u64) -> Result<Outcome, String> {
    let outcome = run(seed)?;
    check(&outcome.plan, &outcome.record).map_err(|e| format!("seed {seed}: {e}\nplan: {:#?}", outcome.plan))?;
    Ok(outcome)
}
