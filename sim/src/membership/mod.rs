//! Membership on a coordination service under simulation (SPEC §9.7):
//! 3–5 Herald nodes joining through a deterministic stand-in for etcd
//! (`standin.rs`, on a turmoil host of its own, reached through
//! `herald::MembershipStore` like etcd), with nodes that start late,
//! crash (and some come back), and lose etcd or each other for a while,
//! all drawn from the seed; etcd itself restarting; a node asked to leave
//! (SIGTERM). Shard subscribers follow MOVED and `sunsubscribe` as cluster
//! clients do. Judged by:
//!
//! - **handover**: a node done leaving serves no slot, unless no other
//!   live node could take them;
//! - **fencing**: when the stand-in expires a node's lease, that node
//!   serves none of its slots any more (no simulated clock drifts, so the
//!   window of SPEC §9.7 is zero);
//! - **one owner**: no slot is served by two live nodes for longer than
//!   a move takes (`MOVE`: both apply the same map within the watch's
//!   delays);
//! - **owned again**: once every fault is over, every live node is on one
//!   map, unfenced, and every slot is served by exactly one live node;
//! - **no subscriber left behind**: then every shard subscriber is
//!   attached at the node serving its channel's slot;
//! - **mesh**: then a classic publish at any live node reaches a classic
//!   subscriber at every live node, once (`census.rs`).

mod census;
pub mod standin;
mod store;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use herald::{Config, Placement, Server, Serving};
use standin::Coordination;
pub use store::SimStore;
use turmoil::net::TcpListener;

use crate::cluster::{dialer, host, ms};
use crate::{SimClient, PORT};

const BUS: u16 = 16379;
/// Shard channels (in different slots).
const CHANNELS: [&str; 6] = ["s0", "s1", "s2", "s3", "s4", "s5"];
/// The longest two live nodes may both serve a slot: a move, applied by
/// each as its watch delivers the map.
const MOVE: Duration = Duration::from_millis(150);
/// Slots the one-owner monitor samples (every 128th).
const SAMPLED: u16 = 128;

#[derive(Debug, Clone)]
pub enum Fault {
    /// `node` stops; comes back after `lasts` (never, if `None`).
    Crash {
        node: usize,
        at: Duration,
        lasts: Option<Duration>,
    },
    /// `node` and the stand-in cannot reach each other.
    CutOff {
        node: usize,
        at: Duration,
        lasts: Duration,
    },
    Partition {
        a: usize,
        b: usize,
        at: Duration,
        lasts: Duration,
    },
    /// The stand-in stops (its state kept, as etcd's on disk) and comes
    /// back after `lasts`.
    Restart {
        at: Duration,
        lasts: Duration,
    },
    /// `node` is asked to stop (SIGTERM): it hands its slots over, then
    /// exits for good.
    Leave {
        node: usize,
        at: Duration,
    },
}

/// Everything a seed decides, printed with any failure.
#[derive(Debug, Clone)]
pub struct MembershipPlan {
    pub seed: u64,
    /// When each node starts.
    pub starts: Vec<Duration>,
    pub ttl: Duration,
    /// Each subscriber's channel and first node.
    pub subscribers: Vec<(&'static str, usize)>,
    pub faults: Vec<Fault>,
}

impl MembershipPlan {
    pub fn from_seed(seed: u64) -> MembershipPlan {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x3e3b_e125);
        let nodes = rng.usize(3..=5);
        // The last node often joins while the faults run: a join moves
        // slots from every member, a cut-off one included.
        let starts: Vec<Duration> = (0..nodes)
            .map(|i| match i {
                0 => Duration::ZERO,
                _ if i == nodes - 1 => ms(&mut rng, 0, 4000),
                _ => ms(&mut rng, 0, 1500),
            })
            .collect();
        let ttl = ms(&mut rng, 300, 900);
        let subscribers =
            (0..rng.usize(2..=5)).map(|_| (CHANNELS[rng.usize(..CHANNELS.len())], rng.usize(..nodes))).collect();
        let mut gone_for_good = false;
        let faults: Vec<Fault> = (0..rng.usize(1..=3))
            .map(|_| {
                let (node, at) = (rng.usize(..nodes), ms(&mut rng, 1600, 3000));
                match rng.u8(..6) {
                    // At most one node goes for good, so a majority of the
                    // nodes outlive every seed.
                    5 if !gone_for_good => {
                        gone_for_good = true;
                        Fault::Leave { node, at }
                    }
                    0 | 5 => {
                        let forever = !gone_for_good && rng.bool();
                        gone_for_good |= forever;
                        let lasts = (!forever).then(|| ms(&mut rng, 100, 2500));
                        Fault::Crash { node, at, lasts }
                    }
                    1 | 2 => Fault::CutOff { node, at, lasts: ms(&mut rng, 100, 2500) },
                    3 => Fault::Restart { at, lasts: ms(&mut rng, 50, 2000) },
                    _ => Fault::Partition {
                        a: node,
                        b: (node + rng.usize(1..nodes)) % nodes,
                        at,
                        lasts: ms(&mut rng, 100, 2500),
                    },
                }
            })
            .collect();
        // A third of the seeds have the last node join right after a node
        // lost etcd: the join takes slots from a member that cannot hear
        // of it (the case the hold-back exists for).
        let mut starts: Vec<Duration> = starts;
        if let Some(&Fault::CutOff { at, .. }) = faults.iter().find(|f| matches!(f, Fault::CutOff { .. })) {
            if rng.u8(..3) == 0 {
                starts[nodes - 1] = at + ms(&mut rng, 10, ttl.as_millis() as u64 / 2);
            }
        }
        MembershipPlan { seed, starts, ttl, subscribers, faults }
    }

    /// When the last fault is over.
    fn calm(&self) -> Duration {
        let ends = self.faults.iter().map(|f| match f {
            Fault::Crash { at, lasts, .. } => *at + lasts.unwrap_or_default(),
            Fault::CutOff { at, lasts, .. } | Fault::Partition { at, lasts, .. } | Fault::Restart { at, lasts } => {
                *at + *lasts
            }
            Fault::Leave { at, .. } => *at,
        });
        ends.chain(self.starts.iter().copied()).max().unwrap_or_default()
    }
}

/// What the run showed.
#[derive(Debug, Default)]
pub struct MembershipRecord {
    /// A lease expired while its node still served slots: (when, node).
    pub unfenced: Vec<(Duration, usize)>,
    /// A node finished leaving while it still served slots another live
    /// node could have taken: (when, node).
    pub left_serving: Vec<(Duration, usize)>,
    /// A slot served by two live nodes for longer than `MOVE`: (slot,
    /// from, until).
    pub doubles: Vec<(u16, Duration, Duration)>,
    /// At the end: each live node's (epoch, fenced), the slots not served
    /// by exactly one live node, and each subscriber's (channel, node it
    /// is attached at, node serving its slot).
    pub epochs: Vec<(usize, u64, bool)>,
    pub unowned: Vec<u16>,
    pub attached: Vec<(&'static str, Option<usize>, Option<usize>)>,
    /// Then each live node and what its classic subscriber heard.
    pub census: Vec<(usize, Vec<String>)>,
    /// Leases expired, maps in force at the end: how much happened.
    pub expiries: usize,
    pub trace: Vec<String>,
}

/// What the driver and the checks share.
#[derive(Default)]
struct World {
    serving: Vec<Option<Serving>>,
    down: Vec<bool>,
    /// Asked to leave; done leaving (the host then stops).
    leaving: Vec<bool>,
    left: Vec<bool>,
    record: MembershipRecord,
    /// Each subscriber's node while attached.
    attached: Vec<Option<usize>>,
}

type Shared = Rc<RefCell<World>>;

fn node_of(value: &str) -> Option<usize> {
    value.strip_prefix("node")?.split(':').next()?.parse().ok()
}

fn add_node(sim: &mut turmoil::Sim<'_>, node: usize, ttl: Duration, world: Shared) {
    let mut config = Config { protected_mode: false, cluster_enabled: true, ..Config::default() };
    config.cluster.etcd = vec![format!("{}:{}", store::HOST, standin::PORT)];
    config.cluster.announce_ip = Some(host(node));
    config.cluster.bus_port = BUS;
    config.cluster.node_timeout = Duration::from_millis(500);
    sim.host(host(node), move || {
        let (config, world) = (config.clone(), world.clone());
        async move {
            let clients = TcpListener::bind(("0.0.0.0", PORT)).await?;
            let bus = TcpListener::bind(("0.0.0.0", BUS)).await?;
            let mut server = Server::start_with_dialer(config, Placement::Local, dialer());
            world.borrow_mut().serving[node] = Some(server.serving());
            let member = server.join_membership(SimStore, ttl);
            let leave = async {
                while !world.borrow().leaving[node] {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                member.leave(ttl * 2).await;
                // Left: the process exits (the driver crashes the host).
                let mut w = world.borrow_mut();
                let others = (0..w.down.len()).any(|n| n != node && !w.down[n]);
                if others && serves_any(&w, node) {
                    w.record.left_serving.push((turmoil::elapsed(), node));
                }
                w.left[node] = true;
            };
            let mut leave = std::pin::pin!(leave);
            let mut left = false;
            loop {
                tokio::select! {
                    _ = &mut leave, if !left => left = true,
                    accepted = clients.accept() => {
                        let (stream, peer) = accepted?;
                        server.accept_local(stream, peer.to_string(), format!("{}:{PORT}", host(node)));
                    }
                    accepted = bus.accept() => server.accept_peer_local(accepted?.0),
                }
            }
        }
    });
}

/// Whether `node` is up and serves any slot.
fn serves_any(world: &World, node: usize) -> bool {
    !world.down[node] && world.serving[node].as_ref().is_some_and(|s| (0..16384).any(|slot| s.serves(slot)))
}

/// The live nodes serving `slot`.
fn servers(world: &World, slot: u16) -> Vec<usize> {
    (0..world.serving.len())
        .filter(|&n| !world.down[n] && world.serving[n].as_ref().is_some_and(|s| s.serves(slot)))
        .collect()
}

pub fn run(seed: u64) -> Result<(MembershipPlan, MembershipRecord), String> {
    let plan = MembershipPlan::from_seed(seed);
    let nodes = plan.starts.len();
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(5))
        .enable_random_order()
        .simulation_duration(Duration::from_secs(60))
        .build();
    let world: Shared = Rc::new(RefCell::new(World {
        serving: vec![None; nodes],
        down: vec![true; nodes],
        leaving: vec![false; nodes],
        left: vec![false; nodes],
        attached: vec![None; plan.subscribers.len()],
        ..World::default()
    }));
    let state = Rc::new(RefCell::new(Coordination::default()));
    {
        let (state, world) = (state.clone(), world.clone());
        sim.host(store::HOST, move || {
            let (state, world) = (state.clone(), world.clone());
            let on_expiry: standin::OnExpiry = Rc::new(move |lease, keys| {
                let mut w = world.borrow_mut();
                for (key, value) in keys.iter().filter(|(k, _)| k.starts_with("members/")) {
                    let node = node_of(value).expect("a node's address");
                    w.record
                        .trace
                        .push(format!("{:?} lease {lease} of node{node} ({key}) expired", turmoil::elapsed()));
                    if serves_any(&w, node) {
                        w.record.unfenced.push((turmoil::elapsed(), node));
                    }
                }
                w.record.expiries += 1;
            });
            async move { standin::serve(state, on_expiry).await }
        });
    }
    let calm = plan.calm() + plan.ttl * 4 + Duration::from_millis(2000);
    for (i, &(channel, first)) in plan.subscribers.iter().enumerate() {
        let world = world.clone();
        sim.client(format!("sub{i}"), async move { subscriber(i, channel, first, nodes, calm, world).await });
    }
    {
        let world = world.clone();
        sim.client("monitor", async move { monitor(calm, world).await });
    }
    {
        let world = world.clone();
        sim.client("census", async move { census::run(calm, world).await });
    }
    let mut actions: Vec<(Duration, usize)> = plan.starts.iter().enumerate().map(|(n, &at)| (at, n)).collect();
    actions.sort();
    let mut faults: Vec<(Duration, bool, Fault)> = Vec::new();
    for f in &plan.faults {
        match f {
            Fault::Crash { at, lasts, .. } => {
                faults.push((*at, true, f.clone()));
                if let Some(l) = lasts {
                    faults.push((*at + *l, false, f.clone()));
                }
            }
            Fault::Leave { at, .. } => faults.push((*at, true, f.clone())),
            Fault::CutOff { at, lasts, .. } | Fault::Partition { at, lasts, .. } | Fault::Restart { at, lasts } => {
                faults.push((*at, true, f.clone()));
                faults.push((*at + *lasts, false, f.clone()));
            }
        }
    }
    faults.sort_by_key(|(at, ..)| *at);
    let (mut started, mut next) = (0, 0);
    loop {
        let done = sim.step().map_err(|e| format!("seed {seed}: {e}\nplan: {plan:#?}"))?;
        if done {
            break;
        }
        // A node done leaving exits.
        for node in 0..nodes {
            let exits = world.borrow().left[node] && !world.borrow().down[node];
            if exits {
                world.borrow_mut().down[node] = true;
                sim.crash(host(node));
            }
        }
        while let Some(&(at, node)) = actions.get(started) {
            if sim.elapsed() < at {
                break;
            }
            started += 1;
            add_node(&mut sim, node, plan.ttl, world.clone());
            world.borrow_mut().down[node] = false;
        }
        while let Some((at, begin, fault)) = faults.get(next).cloned() {
            if sim.elapsed() < at {
                break;
            }
            next += 1;
            let alive = |n: usize| started > actions.iter().position(|a| a.1 == n).unwrap_or(usize::MAX);
            match (fault, begin) {
                (Fault::Crash { node, .. }, true) if alive(node) && !world.borrow().down[node] => {
                    world.borrow_mut().down[node] = true;
                    sim.crash(host(node));
                }
                (Fault::Crash { node, .. }, false)
                    if alive(node) && world.borrow().down[node] && !world.borrow().left[node] =>
                {
                    sim.bounce(host(node));
                    world.borrow_mut().down[node] = false;
                }
                (Fault::CutOff { node, .. }, true) if alive(node) => sim.partition(host(node), store::HOST),
                (Fault::CutOff { node, .. }, false) if alive(node) => sim.repair(host(node), store::HOST),
                (Fault::Partition { a, b, .. }, true) if alive(a) && alive(b) => sim.partition(host(a), host(b)),
                (Fault::Partition { a, b, .. }, false) if alive(a) && alive(b) => sim.repair(host(a), host(b)),
                (Fault::Restart { .. }, true) => sim.crash(store::HOST),
                (Fault::Restart { .. }, false) => sim.bounce(store::HOST),
                (Fault::Leave { node, .. }, true) if alive(node) && !world.borrow().down[node] => {
                    world.borrow_mut().leaving[node] = true;
                }
                _ => {}
            }
        }
    }
    drop(sim);
    let world = Rc::try_unwrap(world).map_err(|_| "world still shared".to_string())?.into_inner();
    Ok((plan, world.record))
}

/// Samples every `SAMPLED`th slot every 10 ms until `calm`, recording
/// doubles that outlast a move; then judges the end state.
async fn monitor(calm: Duration, world: Shared) -> turmoil::Result {
    let mut since: Vec<Option<Duration>> = vec![None; 16384 / SAMPLED as usize];
    while turmoil::elapsed() < calm {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = turmoil::elapsed();
        let mut w = world.borrow_mut();
        for (i, first) in since.iter_mut().enumerate() {
            let slot = i as u16 * SAMPLED;
            match (servers(&w, slot).len() > 1, *first) {
                (true, None) => *first = Some(now),
                (false, Some(from)) => {
                    if now - from > MOVE {
                        w.record.doubles.push((slot, from, now));
                    }
                    *first = None;
                }
                _ => {}
            }
        }
    }
    let mut w = world.borrow_mut();
    let nodes = w.serving.len();
    let epochs: Vec<(usize, u64, bool)> = (0..nodes)
        .filter(|&n| !w.down[n])
        .filter_map(|n| w.serving[n].as_ref().map(|s| (n, s.epoch(), s.fenced())))
        .collect();
    let unowned: Vec<u16> = (0..16384u16).filter(|&slot| servers(&w, slot).len() != 1).collect();
    w.record.epochs = epochs;
    w.record.unowned = unowned;
    Ok(())
}

/// A shard subscriber to `channel`: subscribes where the cluster sends it
/// (following MOVED, waiting out CLUSTERDOWN), and again after a
/// `sunsubscribe` or a lost connection, until `calm`; then records where
/// it is attached and which node serves its slot.
async fn subscriber(
    i: usize,
    channel: &'static str,
    first: usize,
    nodes: usize,
    calm: Duration,
    world: Shared,
) -> turmoil::Result {
    let mut node = first;
    while turmoil::elapsed() < calm {
        // A node crashed or cut off answers nothing: try the next one.
        let within = Duration::from_millis(300);
        let Ok(Ok(mut c)) = tokio::time::timeout(within, SimClient::connect_to(&host(node))).await else {
            // Refused at once (not started, crashed): no simulated time passes.
            node = (node + 1) % nodes;
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(Ok(reply)) = tokio::time::timeout(within, c.cmd(&["SSUBSCRIBE", channel])).await else {
            node = (node + 1) % nodes;
            continue;
        };
        trace(&world, format!("sub{i} at node{node}: {reply:?}"));
        match reply.first().map(String::as_str) {
            Some("ssubscribe") => {}
            // An error reads `ERR(MOVED 15224 node4:6379)`.
            Some(e) if e.contains("MOVED ") => {
                node = e.split(' ').nth(2).and_then(node_of).unwrap_or((node + 1) % nodes);
                continue;
            }
            _ => {
                // CLUSTERDOWN (no map yet, or fenced): ask again a little later.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        world.borrow_mut().attached[i] = Some(node);
        let left = loop {
            let until = calm.saturating_sub(turmoil::elapsed());
            match tokio::time::timeout(until, c.frame()).await {
                Err(_) => break false,
                Ok(Ok(words)) if words.first().map(String::as_str) == Some("sunsubscribe") => break true,
                Ok(Ok(_)) => {}
                Ok(Err(_)) => break true,
            }
        };
        if !left {
            break;
        }
        world.borrow_mut().attached[i] = None;
    }
    let mut w = world.borrow_mut();
    let slot = herald_client::slot_of(channel.as_bytes());
    let serving = servers(&w, slot).first().copied();
    let attached = w.attached[i];
    w.record.attached.push((channel, attached, serving));
    Ok(())
}

fn trace(world: &Shared, what: String) {
    world.borrow_mut().record.trace.push(format!("{:?} {what}", turmoil::elapsed()));
}

/// The seed's record against the six invariants.
pub fn check(plan: &MembershipPlan, r: &MembershipRecord) -> Result<(), String> {
    if let Some((at, node)) = r.unfenced.first() {
        return Err(format!("fencing: node{node}'s lease expired at {at:?} while it still served slots"));
    }
    if let Some((at, node)) = r.left_serving.first() {
        return Err(format!("handover: node{node} left at {at:?} still serving slots another node could take"));
    }
    if let Some((slot, from, until)) = r.doubles.first() {
        return Err(format!("one owner: slot {slot} served by two live nodes from {from:?} to {until:?}"));
    }
    let epochs: Vec<u64> = r.epochs.iter().map(|e| e.1).collect();
    if epochs.windows(2).any(|w| w[0] != w[1]) || r.epochs.iter().any(|e| e.2) {
        return Err(format!("owned again: live nodes on different maps or fenced at the end: {:?}", r.epochs));
    }
    if let Some(slot) = r.unowned.first() {
        return Err(format!(
            "owned again: slot {slot} (and {} more) not served by exactly one live node",
            r.unowned.len() - 1
        ));
    }
    for (channel, attached, serving) in &r.attached {
        if attached != serving {
            return Err(format!(
                "left behind: a subscriber to {channel} is at {attached:?}, its slot is served by {serving:?}"
            ));
        }
    }
    if r.attached.len() != plan.subscribers.len() {
        return Err("a subscriber never finished".into());
    }
    census::check(&r.census)
}

/// Runs a seed and checks it; the error names the seed, the broken
/// invariant, the plan and how to replay it.
pub fn run_checked(seed: u64) -> Result<MembershipRecord, String> {
    let (plan, record) = run(seed)?;
    check(&plan, &record).map_err(|e| {
        format!(
            "seed {seed}: {e}\nplan: {plan:#?}\nreplay: HERALD_SEED={seed} cargo test -p herald-sim --test membership"
        )
    })?;
    Ok(record)
}
