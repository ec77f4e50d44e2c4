//! Cluster mode under simulation: 3–5 Herald nodes, each the production
//! actors and its Mesh on a turmoil host of its own ("node0"…), linked
//! over turmoil's network; subscribers and publishers on every node; and,
//! drawn from the seed, faults between nodes (partitions, a node crashed
//! and restarted) and between a client and a node (its link cut: it gives
//! up on its connections there and reconnects once the link is back).
//! Judged from what the clients saw (SPEC §9):
//!
//! - at most once: no subscriber connection gets a (kind, name, publisher,
//!   sequence) twice;
//! - per-publisher order on every connection, a message before its
//!   pmessage;
//! - nothing outside a subscription: no delivery before its confirmation
//!   or after its unsubscribe confirmation;
//! - the boundary (seeds with no fault): every publish sent after a
//!   confirmation and answered well before the UNSUBSCRIBE (the margin
//!   covers crossing: §9.5 promises the start of a window across nodes,
//!   not its end) is delivered in that window;
//! - no interest left: once everyone has left, no node announces anything
//!   and no node holds a peer's interest.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use herald::{BusStream, Config, Dialer, Placement, Server};
use turmoil::net::{TcpListener, TcpStream};

use crate::{text, SimClient, PORT};

mod check;
mod clients;
mod link;
pub use check::{check, required};
use clients::{audit, publisher, subscriber};

const BUS: u16 = 16379;
const CHANNELS: [&str; 4] = ["c0", "c1", "c2", "c3"];
/// Matches c0 and c1.
const PATTERN: &str = "c[01]";
/// How long after a publish is answered it surely has crossed, on a
/// network of at most `MAX_LATENCY` per segment with no fault.
const MARGIN: Duration = Duration::from_millis(100);
const MAX_LATENCY: Duration = Duration::from_millis(5);
/// Probes are published as publishers `PROBES + subscriber`.
const PROBES: usize = 100;
/// The nodes' pub/sub output limit: small, so the half-open connection a
/// cut subscriber leaves behind is dropped by the audit's probes.
const OUTPUT_HARD: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct Subscriber {
    pub node: usize,
    /// Another node, where the subscriber publishes a probe to its first
    /// name's channel as soon as each window is confirmed: the boundary's
    /// sharpest case.
    pub prober: usize,
    pub channels: Vec<&'static str>,
    pub pattern: bool,
    pub windows: usize,
    pub open: Duration,
    pub gap: Duration,
}

#[derive(Debug, Clone)]
pub struct Publisher {
    pub node: usize,
    pub messages: usize,
    pub depth: usize,
    pub every: Duration,
}

#[derive(Debug, Clone)]
pub enum NodeFault {
    Partition {
        a: usize,
        b: usize,
        at: Duration,
        lasts: Duration,
    },
    Crash {
        node: usize,
        at: Duration,
        lasts: Duration,
    },
    /// The link between a client's host (`sub3`, `pub0`) and a node is cut.
    ClientCut {
        client: String,
        node: usize,
        at: Duration,
        lasts: Duration,
    },
}

/// Everything a seed decides, printed with any failure.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    pub seed: u64,
    pub nodes: usize,
    pub subscribers: Vec<Subscriber>,
    pub publishers: Vec<Publisher>,
    pub faults: Vec<NodeFault>,
    /// Links between nodes slower than any client's (a fixed latency):
    /// a subscriber's probe, two client hops, then outruns an
    /// announcement's one bus hop, the boundary's hardest race.
    pub slow_bus: Option<Duration>,
}

impl ClusterPlan {
    pub fn from_seed(seed: u64) -> ClusterPlan {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0xc105_7e12);
        let nodes = rng.usize(3..=5);
        let subscribers: Vec<Subscriber> = (0..rng.usize(3..=7))
            .map(|_| {
                let mut channels: Vec<&'static str> = CHANNELS.iter().copied().filter(|_| rng.bool()).collect();
                if channels.is_empty() {
                    channels.push(CHANNELS[rng.usize(..CHANNELS.len())]);
                }
                let node = rng.usize(..nodes);
                Subscriber {
                    node,
                    prober: (node + rng.usize(1..nodes)) % nodes,
                    channels,
                    pattern: rng.u8(..3) == 0,
                    windows: rng.usize(2..=5),
                    open: ms(&mut rng, 150, 400),
                    gap: ms(&mut rng, 0, 40),
                }
            })
            .collect();
        let publishers: Vec<Publisher> = (0..rng.usize(1..=3))
            .map(|_| Publisher {
                node: rng.usize(..nodes),
                messages: rng.usize(100..=300),
                depth: rng.usize(1..=4),
                every: ms(&mut rng, 1, 6),
            })
            .collect();
        // A third of the seeds run fault-free: there the boundary is judged.
        let faults = match rng.u8(..3) {
            0 => Vec::new(),
            _ => (0..rng.usize(1..=3))
                .map(|_| match rng.u8(..3) {
                    0 => {
                        let a = rng.usize(..nodes);
                        let b = (a + rng.usize(1..nodes)) % nodes;
                        NodeFault::Partition { a, b, at: ms(&mut rng, 50, 800), lasts: ms(&mut rng, 50, 3000) }
                    }
                    1 => NodeFault::Crash {
                        node: rng.usize(..nodes),
                        at: ms(&mut rng, 50, 800),
                        lasts: ms(&mut rng, 20, 500),
                    },
                    _ => {
                        // A subscriber's link to its node or its prober's,
                        // or a publisher's to its node.
                        let (client, node) = match rng.usize(..subscribers.len() + publishers.len()) {
                            i if i < subscribers.len() => {
                                let s = &subscribers[i];
                                (format!("sub{i}"), if rng.bool() { s.node } else { s.prober })
                            }
                            i => {
                                let p = i - subscribers.len();
                                (format!("pub{p}"), publishers[p].node)
                            }
                        };
                        NodeFault::ClientCut { client, node, at: ms(&mut rng, 50, 800), lasts: ms(&mut rng, 20, 1000) }
                    }
                })
                .collect(),
        };
        // Half the fault-free seeds.
        let slow_bus = (faults.is_empty() && rng.bool()).then(|| ms(&mut rng, 6, 12));
        ClusterPlan { seed, nodes, subscribers, publishers, faults, slow_bus }
    }

    /// When `client`'s links are cut: (node, from).
    fn cuts(&self, client: &str) -> Vec<(usize, Duration)> {
        self.faults
            .iter()
            .filter_map(|f| match f {
                NodeFault::ClientCut { client: c, node, at, .. } if c == client => Some((*node, *at)),
                _ => None,
            })
            .collect()
    }
}

/// One publish as its publisher saw it.
#[derive(Debug, Clone)]
pub struct Publish {
    pub publisher: usize,
    pub seq: usize,
    pub channel: &'static str,
    pub sent: Duration,
    pub answered: Option<Duration>,
}

/// One subscription window on one connection.
#[derive(Debug, Clone)]
pub struct Window {
    pub subscriber: usize,
    pub conn: usize,
    /// A channel, or the pattern.
    pub name: String,
    pub pattern: bool,
    pub confirmed: Duration,
    pub unsubscribe_sent: Option<Duration>,
    /// Its connection broke while it was open.
    pub broken: bool,
    /// (publisher, seq) delivered in it.
    pub got: Vec<(usize, usize)>,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct ClusterRecord {
    pub publishes: Vec<Publish>,
    pub windows: Vec<Window>,
    /// Per subscriber connection, in arrival order: (subscriber, conn,
    /// pattern?, name, publisher, seq).
    pub deliveries: Vec<(usize, usize, bool, String, usize, usize)>,
    /// Deliveries for no open subscription: (subscriber, conn, frame).
    pub strays: Vec<(usize, usize, String)>,
    /// Each node's (announced, from peers) at the end; None if it never
    /// got there.
    pub interest_left: Option<Vec<(usize, String, String)>>,
    pub trace: Vec<String>,
}

type Shared = Rc<RefCell<ClusterRecord>>;

fn now() -> Duration {
    turmoil::elapsed()
}

/// A cluster node's host: "node0"…
pub(crate) fn host(node: usize) -> String {
    format!("node{node}")
}

/// A duration between `lo` and `hi` ms, drawn from the seed.
pub(crate) fn ms(rng: &mut fastrand::Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.u64(lo..=hi))
}

/// The dialer for turmoil's network.
pub(crate) fn dialer() -> Dialer {
    Arc::new(|host, port| {
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            Ok(Box::new(stream) as BusStream)
        })
    })
}

fn add_node(sim: &mut turmoil::Sim<'_>, node: usize, nodes: usize) {
    let list: Vec<String> = (0..nodes).map(|i| format!("{}:{PORT}@{BUS}", host(i))).collect();
    let mut config = Config {
        protected_mode: false,
        cluster_enabled: true,
        pubsub_output: herald::OutputLimit { hard: OUTPUT_HARD, ..Config::default().pubsub_output },
        ..Config::default()
    };
    config.cluster.nodes = list;
    config.cluster.announce_ip = Some(host(node));
    config.cluster.node_timeout = Duration::from_millis(500);
    sim.host(host(node), move || {
        let config = config.clone();
        async move {
            let clients = TcpListener::bind(("0.0.0.0", PORT)).await?;
            let bus = TcpListener::bind(("0.0.0.0", BUS)).await?;
            let mut server = Server::start_with_dialer(config, Placement::Local, dialer());
            loop {
                tokio::select! {
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

/// Runs one seed; the record comes back whatever it shows.
pub fn run(seed: u64) -> Result<(ClusterPlan, ClusterRecord), String> {
    let plan = ClusterPlan::from_seed(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(MAX_LATENCY)
        .enable_random_order()
        .simulation_duration(Duration::from_secs(60))
        .build();
    for node in 0..plan.nodes {
        add_node(&mut sim, node, plan.nodes);
    }
    if let Some(latency) = plan.slow_bus {
        for a in 0..plan.nodes {
            for b in a + 1..plan.nodes {
                sim.set_link_latency(host(a), host(b), latency);
            }
        }
    }
    let record: Shared = Rc::default();
    let running = Rc::new(RefCell::new(plan.subscribers.len() + plan.publishers.len()));
    // The clients start once every node's links are up: SPEC §9.5 does
    // not cover a subscription confirmed before its node's first links
    // came up (a slow bus makes that a real wait).
    let ready = Rc::new(std::cell::Cell::new(false));
    {
        let (ready, nodes) = (ready.clone(), plan.nodes);
        sim.client("starter", async move {
            'poll: loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                for node in 0..nodes {
                    let mut c = connect(node).await;
                    let info = text(&c.cmd(&["CLUSTER", "INFO"]).await?);
                    if !info.contains(&format!("cluster_links_up:{}", nodes - 1)) {
                        continue 'poll;
                    }
                }
                ready.set(true);
                return Ok(());
            }
        });
    }
    let started = |ready: Rc<std::cell::Cell<bool>>| async move {
        while !ready.get() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    for (i, sp) in plan.subscribers.iter().enumerate() {
        let (record, sp, running, ready) = (record.clone(), sp.clone(), running.clone(), ready.clone());
        let cuts = plan.cuts(&format!("sub{i}"));
        sim.client(format!("sub{i}"), async move {
            started(ready).await;
            let result = subscriber(i, sp, cuts, record).await;
            *running.borrow_mut() -= 1;
            result
        });
    }
    for (p, pp) in plan.publishers.iter().enumerate() {
        let (record, pp, running, ready) = (record.clone(), pp.clone(), running.clone(), ready.clone());
        let cuts = plan.cuts(&format!("pub{p}"));
        sim.client(format!("pub{p}"), async move {
            started(ready).await;
            let result = publisher(p, pp, cuts, record).await;
            *running.borrow_mut() -= 1;
            result
        });
    }
    let last_fault = plan.faults.iter().map(|f| start(f) + lasts(f)).max().unwrap_or_default();
    {
        let (record, running, nodes) = (record.clone(), running.clone(), plan.nodes);
        sim.client("auditor", async move {
            while *running.borrow() > 0 || now() < last_fault {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            audit(nodes, record).await
        });
    }
    let mut actions: Vec<(Duration, bool, &NodeFault)> =
        plan.faults.iter().flat_map(|f| [(start(f), true, f), (start(f) + lasts(f), false, f)]).collect();
    actions.sort_by_key(|(at, ..)| *at);
    let mut next = 0;
    loop {
        let done = sim.step().map_err(|e| format!("seed {seed}: {e}\nplan: {plan:#?}"))?;
        if done {
            break;
        }
        while let Some(&(at, begin, fault)) = actions.get(next) {
            if sim.elapsed() < at {
                break;
            }
            next += 1;
            match (fault, begin) {
                (NodeFault::Partition { a, b, .. }, true) => sim.partition(host(*a), host(*b)),
                (NodeFault::Partition { a, b, .. }, false) => sim.repair(host(*a), host(*b)),
                (NodeFault::Crash { node, .. }, true) => sim.crash(host(*node)),
                (NodeFault::Crash { node, .. }, false) => sim.bounce(host(*node)),
                (NodeFault::ClientCut { client, node, .. }, true) => sim.partition(client.as_str(), host(*node)),
                (NodeFault::ClientCut { client, node, .. }, false) => sim.repair(client.as_str(), host(*node)),
            }
        }
    }
    drop(sim);
    let record = Rc::try_unwrap(record).map_err(|_| "record still shared".to_string())?.into_inner();
    Ok((plan, record))
}

fn start(f: &NodeFault) -> Duration {
    match f {
        NodeFault::Partition { at, .. } | NodeFault::Crash { at, .. } | NodeFault::ClientCut { at, .. } => *at,
    }
}

fn lasts(f: &NodeFault) -> Duration {
    match f {
        NodeFault::Partition { lasts, .. } | NodeFault::Crash { lasts, .. } | NodeFault::ClientCut { lasts, .. } => {
            *lasts
        }
    }
}

/// Runs a seed and checks it; the error names the seed, the broken
/// guarantee and the plan, and how to replay it.
pub fn run_checked(seed: u64) -> Result<ClusterRecord, String> {
    let (plan, record) = run(seed)?;
    check(&plan, &record).map_err(|e| {
        format!("seed {seed}: {e}\nplan: {plan:#?}\nreplay: HERALD_SEED={seed} cargo test -p herald-sim --test cluster")
    })?;
    Ok(record)
}

async fn connect(node: usize) -> SimClient {
    loop {
        // Bounded: a SYN answered just as a cut began would wait forever
        // (turmoil's TCP does not retransmit).
        let to = host(node);
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(200), SimClient::connect_to(&to)).await {
            return c;
        }
        // The node is down (crashed) or cut off: try again a little later.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl ClusterRecord {
    /// A hash of what the clients saw: equal seeds, equal hashes.
    pub fn hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.trace.hash(&mut h);
        h.finish()
    }
}
