//! The chaos scenario's clients: subscribers, publishers, an administrator
//! (CLIENT KILL, CONFIG SET) and the observer that checks, once everyone
//! left, that the server forgot them all. Clients connect again after any
//! fault that costs them their connection, as applications do; they know
//! the plan only as far as an application could notice it (a partitioned
//! or crashed server is given up on `GIVE_UP` after it went silent).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use herald::OutputLimit;
use tokio::time::sleep;

use super::plan::{Fault, Kind, PublisherPlan, SubscriberPlan, GIVE_UP};
use super::record::{delivery, now, record_frame, FinalState, Publish, Shared, SubEvent};
use super::{CHANNELS, END, QUIET, SHARDS, STEADY};
use crate::SimClient;

/// What the clients share.
#[derive(Clone)]
pub(crate) struct World {
    pub record: Shared,
    /// Each client's current connection (CLIENT ID), by host name: what
    /// the administrator's CLIENT KILL names.
    pub ids: Rc<RefCell<BTreeMap<String, u64>>>,
    /// The clients that are done, by host name.
    pub finished: Rc<RefCell<BTreeSet<String>>>,
    /// The server's crash and restart, if planned.
    pub crash: Option<(Duration, Duration)>,
}

/// A time at which a client drops its connection itself, and when it may
/// connect again; `mid_frame` if it leaves half a command behind.
#[derive(Debug, Clone, Copy)]
struct GiveUp {
    at: Duration,
    back: Duration,
    mid_frame: bool,
}

fn give_ups(faults: &[Fault], crash: Option<(Duration, Duration)>) -> Vec<GiveUp> {
    let mut out: Vec<GiveUp> = faults
        .iter()
        .filter_map(|f| match *f {
            Fault::Partition { at, for_ } => Some(GiveUp { at: at + GIVE_UP, back: at + for_, mid_frame: false }),
            Fault::KilledMidFrame { at } => Some(GiveUp { at, back: at, mid_frame: true }),
            _ => None,
        })
        .collect();
    out.extend(crash.map(|(at, back)| GiveUp { at: at + GIVE_UP, back, mid_frame: false }));
    out.sort_by_key(|d| d.at);
    out
}

async fn until(t: Duration) {
    sleep(t.saturating_sub(now())).await
}

/// Connects and names the connection for CLIENT KILL; None if the server
/// is not there (yet), or did not answer within 200 ms (a connection
/// attempt lost to a partition that was just being repaired).
async fn open(host: &str, resp3: bool, world: &World) -> Option<SimClient> {
    let connect = async {
        let mut c = SimClient::connect().await.ok()?;
        if resp3 {
            c.hello3().await.ok()?;
        }
        let id = c.cmd(&["CLIENT", "ID"]).await.ok()?;
        Some((c, id.first()?.parse::<u64>().ok()?))
    };
    let (c, id) = tokio::time::timeout(Duration::from_millis(200), connect).await.ok()??;
    world.ids.borrow_mut().insert(host.to_string(), id);
    Some(c)
}

const HALF_A_COMMAND: &[u8] = b"*3\r\n$7\r\nPUBLISH\r\n$6\r\norders\r\n$9\r\nunfini";

pub(crate) async fn subscriber(me: usize, plan: SubscriberPlan, world: World) -> turmoil::Result {
    let host = format!("sub{me}");
    let push = |e: SubEvent| world.record.borrow_mut().subscribers[me].push(e);
    let mut actions: Vec<(Duration, bool, Kind, String)> =
        plan.steady.iter().map(|(k, n)| (Duration::ZERO, true, *k, n.clone())).collect();
    actions.extend(plan.churn.iter().cloned());
    // Back to the steady set for phase 2.
    actions.extend(plan.steady.iter().map(|(k, n)| (STEADY, true, *k, n.clone())));
    actions.sort_by_key(|a| a.0);
    let drops = give_ups(&plan.faults, world.crash);
    let stop = plan.stops_reading();
    let (mut next, mut next_drop) = (0, 0);
    // What it is subscribed to, as far as it asked: re-subscribed on a new
    // connection.
    let mut wanted: BTreeSet<(Kind, String)> = BTreeSet::new();
    'connections: loop {
        if now() >= END + QUIET {
            return Ok(());
        }
        let Some(mut c) = open(&host, plan.resp3, &world).await else {
            sleep(Duration::from_millis(5)).await;
            continue;
        };
        push(SubEvent::Connected { at: now() });
        // Drops planned before this connection are past.
        while drops.get(next_drop).is_some_and(|d| d.at <= now()) {
            next_drop += 1;
        }
        // Actions due meanwhile are taken on the new connection.
        for (kind, name) in wanted.clone() {
            push(SubEvent::Joining { kind, name: name.clone(), at: now() });
            if c.send(&[kind.verbs().0, &name]).await.is_err() {
                push(SubEvent::Closed { at: now() });
                continue 'connections;
            }
        }
        loop {
            let action_due = actions.get(next).map_or(END + QUIET, |a| a.0);
            let drop_due = drops.get(next_drop).map_or(Duration::MAX, |d| d.at);
            let due = action_due.min(drop_due).min(stop.unwrap_or(Duration::MAX));
            tokio::select! {
                biased;
                _ = until(due) => {
                    if stop.is_some_and(|s| now() >= s) {
                        return stopped_reading(me, c, &world).await;
                    }
                    if now() >= drop_due {
                        let d = drops[next_drop];
                        next_drop += 1;
                        if d.mid_frame {
                            let _ = c.send_raw(HALF_A_COMMAND).await;
                        }
                        push(SubEvent::Left { at: now() });
                        drop(c);
                        until(d.back).await;
                        continue 'connections;
                    }
                    if now() >= END + QUIET {
                        push(SubEvent::Left { at: now() });
                        return Ok(());
                    }
                    let (_, join, kind, name) = actions[next].clone();
                    next += 1;
                    let (sub, unsub) = kind.verbs();
                    let event = if join {
                        wanted.insert((kind, name.clone()));
                        SubEvent::Joining { kind, name: name.clone(), at: now() }
                    } else {
                        wanted.remove(&(kind, name.clone()));
                        SubEvent::Leaving { kind, name: name.clone(), at: now() }
                    };
                    push(event);
                    if c.send(&[if join { sub } else { unsub }, &name]).await.is_err() {
                        push(SubEvent::Closed { at: now() });
                        sleep(Duration::from_millis(5)).await;
                        continue 'connections;
                    }
                }
                frame = c.frame() => match frame {
                    Ok(words) => record_frame(&world.record, me, &words),
                    Err(_) => {
                        push(SubEvent::Closed { at: now() });
                        sleep(Duration::from_millis(5)).await;
                        continue 'connections;
                    }
                }
            }
        }
    }
}

/// A herald-client subscriber: subscribes to its steady set once and
/// leaves the rest to the library. Its record shows each connection from
/// the confirmations (`subscribe` returning, or `Reconnected`, which the
/// library sends once the server confirmed every re-issued subscription)
/// to `Disconnected`.
pub(crate) async fn library_subscriber(me: usize, plan: SubscriberPlan, seed: u64, world: World) -> turmoil::Result {
    use herald_client::{Client, Event, Kind as LibKind};
    let push = |e: SubEvent| world.record.borrow_mut().subscribers[me].push(e);
    let joined = |world: &World| {
        for (kind, name) in &plan.steady {
            let e = SubEvent::Joined { kind: *kind, name: name.clone(), count: None, at: now() };
            world.record.borrow_mut().subscribers[me].push(e);
        }
    };
    let config = crate::reconnect::client_config(seed ^ (me as u64 + 7));
    let connector = std::sync::Arc::new(crate::reconnect::TurmoilConnector);
    // The server may not listen yet: hosts start in the seed's order.
    let mut tries = 0;
    let (_client, mut sub) = loop {
        let opened = async {
            let client = Client::with_connector(config.clone(), connector.clone()).await?;
            let sub = client.pubsub().await?;
            Ok::<_, herald_client::Error>((client, sub))
        };
        match opened.await {
            Ok(both) => break both,
            Err(e) if tries > 100 => return Err(e.into()),
            Err(_) => tries += 1,
        }
        sleep(Duration::from_millis(2)).await;
    };
    push(SubEvent::Connected { at: now() });
    let names =
        |want: Kind| -> Vec<&str> { plan.steady.iter().filter(|(k, _)| *k == want).map(|(_, n)| n.as_str()).collect() };
    sub.subscribe(&names(Kind::Channel)).await?;
    sub.psubscribe(&names(Kind::Pattern)).await?;
    sub.ssubscribe(&names(Kind::Shard)).await?;
    joined(&world);
    loop {
        let event = tokio::select! {
            event = sub.next() => event.ok_or("the subscription stream ended")??,
            _ = until(END + QUIET) => {
                push(SubEvent::Left { at: now() });
                return Ok(());
            }
        };
        match event {
            Event::Message(m) => {
                let kind = match m.kind {
                    LibKind::Channel => Kind::Channel,
                    LibKind::Pattern => Kind::Pattern,
                    LibKind::Shard => Kind::Shard,
                };
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let pattern = m.pattern.as_deref().map(text);
                if let Some(d) = delivery(kind, pattern.as_deref(), &text(&m.channel), &text(&m.payload)) {
                    push(d);
                }
            }
            Event::Disconnected { .. } => push(SubEvent::Left { at: now() }),
            Event::Reconnected { .. } => {
                push(SubEvent::Connected { at: now() });
                joined(&world);
            }
            // A standalone server never ends a subscription unasked.
            Event::Unsubscribed { kind, name } => {
                return Err(format!("the server ended {kind:?} {name:?} unasked").into());
            }
        }
    }
}

/// Stops reading until the end; then sees whether it was cut off: a live
/// session answers PING (after whatever it still had queued); a dropped
/// one never does. (turmoil may lose the FIN of a connection closed while
/// its sends were blocked, so EOF alone is not the signal.)
async fn stopped_reading(me: usize, mut c: SimClient, world: &World) -> turmoil::Result {
    let push = |e: SubEvent| world.record.borrow_mut().subscribers[me].push(e);
    until(END + QUIET).await;
    let _ = c.send(&["PING"]).await;
    loop {
        match tokio::time::timeout(Duration::from_millis(300), c.frame()).await {
            Ok(Ok(words)) if words.first().is_some_and(|w| w.eq_ignore_ascii_case("pong")) => {
                push(SubEvent::Left { at: now() });
                return Ok(());
            }
            Ok(Ok(words)) => record_frame(&world.record, me, &words),
            Ok(Err(_)) | Err(_) => {
                push(SubEvent::Closed { at: now() });
                return Ok(());
            }
        }
    }
}

pub(crate) async fn publisher(
    me: usize,
    plan: PublisherPlan,
    seed: u64,
    depth: usize,
    world: World,
) -> turmoil::Result {
    let host = format!("pub{me}");
    let mut rng = fastrand::Rng::with_seed(seed ^ ((me as u64 + 1) * 0x9e37_79b9));
    let drops = give_ups(&plan.faults, world.crash);
    let mut next_drop = 0;
    let mut seq = 0u64;
    let mut connection = 0;
    // Let the subscribers' first subscriptions land.
    sleep(Duration::from_millis(20)).await;
    'connections: while now() < END {
        let Some(mut c) = open(&host, false, &world).await else {
            sleep(Duration::from_millis(5)).await;
            continue;
        };
        connection += 1;
        while drops.get(next_drop).is_some_and(|d| d.at <= now()) {
            next_drop += 1;
        }
        while now() < END {
            let drop_due = drops.get(next_drop).map_or(Duration::MAX, |d| d.at);
            let mut batch = Vec::new();
            let mut wire = Vec::new();
            for _ in 0..rng.usize(1..=depth) {
                let shard = rng.u8(0..10) == 0;
                let channel =
                    if shard { SHARDS[rng.usize(..SHARDS.len())] } else { CHANNELS[rng.usize(..CHANNELS.len())] };
                // Now and then a large one, so that a subscriber that stops
                // reading passes its hard limit within the run.
                let size = if rng.u8(0..12) == 0 { rng.usize(4096..16384) } else { rng.usize(16..300) };
                let payload = format!("p{me}:{seq}:{}", "x".repeat(size));
                wire.extend(crate::encode(&[if shard { "SPUBLISH" } else { "PUBLISH" }, channel, &payload]));
                let p = Publish {
                    publisher: me,
                    connection,
                    seq,
                    channel: channel.into(),
                    shard,
                    size: payload.len(),
                    sent_at: now(),
                    reached: None,
                    replied_at: Duration::ZERO,
                };
                batch.push(p);
                seq += 1;
            }
            let sent = c.send_raw(&wire).await.is_ok();
            let mut lost = !sent;
            for mut p in batch {
                if !lost {
                    tokio::select! {
                        biased;
                        words = c.frame() => match words {
                            Ok(words) => p.reached = words.first().and_then(|w| w.parse().ok()),
                            Err(_) => lost = true,
                        },
                        _ = until(drop_due) => lost = true,
                    }
                }
                p.replied_at = now();
                world.record.borrow_mut().publishes.push(p);
            }
            if now() >= drop_due {
                let d = drops[next_drop];
                next_drop += 1;
                if d.mid_frame {
                    let _ = c.send_raw(HALF_A_COMMAND).await;
                }
                drop(c);
                until(d.back).await;
                continue 'connections;
            }
            if lost {
                sleep(Duration::from_millis(5)).await;
                continue 'connections;
            }
            let pause = Duration::from_millis(rng.u64(1..6));
            sleep(pause.min(drop_due.saturating_sub(now()))).await;
        }
    }
    Ok(())
}

/// What the administrator does.
#[derive(Debug, Clone)]
pub(crate) enum Chore {
    /// CLIENT KILL ID of this host's current connection.
    Kill(String),
    /// CONFIG SET client-output-buffer-limit.
    Limit(OutputLimit),
}

pub(crate) async fn admin(mut chores: Vec<(Duration, Chore)>, world: World) -> turmoil::Result {
    chores.sort_by_key(|c| c.0);
    let mut conn: Option<SimClient> = None;
    for (at, chore) in chores {
        until(at).await;
        let args: Vec<String> = match &chore {
            Chore::Kill(host) => {
                let Some(id) = world.ids.borrow().get(host).copied() else { continue };
                vec!["CLIENT".into(), "KILL".into(), "ID".into(), id.to_string()]
            }
            Chore::Limit(l) => vec![
                "CONFIG".into(),
                "SET".into(),
                "client-output-buffer-limit".into(),
                format!("pubsub {} {} {}", l.hard, l.soft, l.soft_for.as_secs()),
            ],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // A server that crashed is asked again once it is back.
        for _ in 0..100 {
            if conn.is_none() {
                conn = SimClient::connect().await.ok();
            }
            match conn.as_mut() {
                Some(c) => match c.cmd(&args).await {
                    Ok(_) => break,
                    Err(_) => conn = None,
                },
                None => sleep(Duration::from_millis(5)).await,
            }
        }
    }
    Ok(())
}

/// After everyone left: the server must have forgotten them all.
pub(crate) async fn observer(clients: usize, world: World) -> turmoil::Result {
    while world.finished.borrow().len() < clients {
        sleep(Duration::from_millis(5)).await;
    }
    let mut c = SimClient::connect().await?;
    // A subscriber whose link was cut left a half-open connection that
    // nothing will ever close (turmoil has no TCP keepalive). To Herald it
    // is a subscriber that never reads: writing enough to it trips the
    // output limit, as it would any slow subscriber.
    let probe = "probe".repeat(800);
    let deadline = now() + Duration::from_secs(5);
    loop {
        for _ in 0..10 {
            for ch in CHANNELS {
                c.cmd(&["PUBLISH", ch, &probe]).await?;
            }
            for ch in SHARDS {
                c.cmd(&["SPUBLISH", ch, &probe]).await?;
            }
        }
        let info = c.cmd(&["INFO", "stats"]).await?.join(" ");
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string)).unwrap_or_default()
        };
        let state = FinalState {
            numpat: c.cmd(&["PUBSUB", "NUMPAT"]).await?.join(" "),
            channels: c.cmd(&["PUBSUB", "CHANNELS"]).await?.join(" "),
            shard_channels: c.cmd(&["PUBSUB", "SHARDCHANNELS"]).await?.join(" "),
            sessions: field("herald_session_actors"),
            channel_actors: field("herald_channel_actors"),
            channel_activations: field("herald_channel_activations"),
        };
        if state.is_clean() || now() > deadline {
            world.record.borrow_mut().final_state = Some(state);
            return Ok(());
        }
        sleep(Duration::from_millis(10)).await;
    }
}
