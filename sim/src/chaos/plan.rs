//! What one seed draws: the server's settings, the workload and every
//! fault, with when each happens. The plan is printed with any failure.

use std::time::Duration;

use herald::OutputLimit;

use super::{CHANNELS, PATTERNS, SHARDS, STEADY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    pub(crate) fn verbs(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("SUBSCRIBE", "UNSUBSCRIBE"),
            Kind::Pattern => ("PSUBSCRIBE", "PUNSUBSCRIBE"),
            Kind::Shard => ("SSUBSCRIBE", "SUNSUBSCRIBE"),
        }
    }
}

/// What may go wrong for one client. Every fault ends before `STEADY`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Its link holds everything for a while, then releases it (no loss).
    Hold { at: Duration, for_: Duration },
    /// Its link's latency jumps to `latency` for a while (no loss).
    Slow { at: Duration, for_: Duration, latency: Duration },
    /// Its link is cut for a while. The client gives up on the connection
    /// 50 ms in and connects again once the link is back.
    Partition { at: Duration, for_: Duration },
    /// It closes its connection in the middle of a command and connects
    /// again.
    KilledMidFrame { at: Duration },
    /// An administrator's CLIENT KILL closes its connection; it connects
    /// again.
    Killed { at: Duration },
    /// It stops reading for good (subscribers only, and last): the server
    /// must drop it, and nobody else may suffer.
    StopsReading { at: Duration },
}

/// How long a partitioned client waits before giving up on its connection.
pub const GIVE_UP: Duration = Duration::from_millis(50);

impl Fault {
    pub fn at(&self) -> Duration {
        match *self {
            Fault::Hold { at, .. }
            | Fault::Slow { at, .. }
            | Fault::Partition { at, .. }
            | Fault::KilledMidFrame { at }
            | Fault::Killed { at }
            | Fault::StopsReading { at } => at,
        }
    }

    /// When its effect is over.
    fn until(&self) -> Duration {
        match *self {
            Fault::Hold { at, for_ } | Fault::Slow { at, for_, .. } | Fault::Partition { at, for_ } => at + for_,
            Fault::KilledMidFrame { at } | Fault::Killed { at } => at,
            Fault::StopsReading { .. } => Duration::MAX,
        }
    }

    /// Whether it may cost the connection messages (a hold or a slow link
    /// only delays them).
    pub fn loses(&self) -> bool {
        !matches!(self, Fault::Hold { .. } | Fault::Slow { .. })
    }

    /// Short name, for counting faults by kind.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Hold { .. } => "hold",
            Fault::Slow { .. } => "latency spike",
            Fault::Partition { .. } => "partition",
            Fault::KilledMidFrame { .. } => "killed mid-command",
            Fault::Killed { .. } => "CLIENT KILL",
            Fault::StopsReading { .. } => "stops reading",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SubscriberPlan {
    /// A herald-client `PubSub` (RESP2, no churn) that reconnects and
    /// resubscribes by itself; the others are raw connections the workload
    /// drives.
    pub library: bool,
    pub resp3: bool,
    /// Subscribed at the start and again at `STEADY`.
    pub steady: Vec<(Kind, String)>,
    /// (when, subscribe?, what) during phase 1.
    pub churn: Vec<(Duration, bool, Kind, String)>,
    /// In time order, none overlapping.
    pub faults: Vec<Fault>,
}

impl SubscriberPlan {
    pub fn stops_reading(&self) -> Option<Duration> {
        self.faults.iter().find_map(|f| match f {
            Fault::StopsReading { at } => Some(*at),
            _ => None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct PublisherPlan {
    /// In time order, none overlapping (never `StopsReading`).
    pub faults: Vec<Fault>,
}

/// The server's settings for one run, drawn from the seed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Arbiters (1–4): each but a lone one on a simulated host of its own.
    pub arbiters: usize,
    /// The pub/sub clients' output limit at start.
    pub limit: OutputLimit,
    /// Redis' `timeout`: idle clients with no subscriptions are closed.
    pub idle_timeout: Duration,
    /// How long a channel's actor lives without a publish (virtual channel
    /// actors): short, so that publishes, subscribes and unsubscribes race
    /// retirements and activations all through a run.
    pub channel_idle: Duration,
}

/// Faults of the server as a whole.
#[derive(Debug, Clone, Default)]
pub struct ServerPlan {
    /// The whole server (every host) crashes at the first time and starts
    /// again, empty, at the second.
    pub crash: Option<(Duration, Duration)>,
    /// CONFIG SET client-output-buffer-limit at this time, to this limit.
    pub config_set: Option<(Duration, OutputLimit)>,
}

impl ServerPlan {
    /// The output limits in force, as periods `[from, to)`: the start's,
    /// a CONFIG SET's from its time, the start's again after a restart
    /// (a CONFIG SET is not kept). Boundaries are when the command was
    /// sent or the server came back: a limit in force near a boundary is
    /// either neighbour's.
    pub fn limits(&self, start: OutputLimit) -> Vec<(Duration, Duration, OutputLimit)> {
        let mut changes = vec![(Duration::ZERO, start)];
        if let Some((at, limit)) = self.config_set {
            changes.push((at, limit));
        }
        if let Some((_, back)) = self.crash {
            changes.push((back, start));
        }
        changes.sort_by_key(|c| c.0);
        let mut out = Vec::new();
        for (i, (from, limit)) in changes.iter().enumerate() {
            let to = changes.get(i + 1).map_or(Duration::MAX, |c| c.0);
            out.push((*from, to, *limit));
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub settings: Settings,
    pub server: ServerPlan,
    pub subscribers: Vec<SubscriberPlan>,
    pub publishers: Vec<PublisherPlan>,
    /// The most publishes a publisher pipelines at once.
    pub depth: usize,
    pub latency: (Duration, Duration),
}

fn ms(rng: &mut fastrand::Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.u64(lo..hi))
}

/// Up to `most` faults for one client, one after another, all over before
/// `STEADY`; `stop` allows a final `StopsReading`.
fn draw_faults(rng: &mut fastrand::Rng, most: usize, stop: bool) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut free = Duration::from_millis(100);
    for _ in 0..rng.usize(0..=most) {
        let at = free + ms(rng, 0, 400);
        let fault = match rng.u8(0..12) {
            0..=2 => Fault::Hold { at, for_: ms(rng, 20, 300) },
            3 | 4 => Fault::Slow { at, for_: ms(rng, 20, 300), latency: ms(rng, 10, 50) },
            5 | 6 => Fault::Partition { at, for_: ms(rng, 60, 300) },
            7 | 8 => Fault::KilledMidFrame { at },
            9 | 10 => Fault::Killed { at },
            _ if stop => Fault::StopsReading { at },
            _ => Fault::Hold { at, for_: ms(rng, 20, 300) },
        };
        let over = if let Fault::StopsReading { at } = fault { at } else { fault.until() };
        if over >= STEADY - Duration::from_millis(150) {
            break;
        }
        faults.push(fault);
        if matches!(fault, Fault::StopsReading { .. }) {
            break;
        }
        free = fault.until() + Duration::from_millis(20);
    }
    faults
}

fn draw_limit(rng: &mut fastrand::Rng) -> OutputLimit {
    // Tight enough that a subscriber that stops reading is dropped within
    // the run; a held one may be, when it is owed enough.
    OutputLimit {
        hard: rng.usize(256..=1536) * 1024,
        soft: rng.usize(32..=128) * 1024,
        soft_for: Duration::from_millis(rng.u64(300..=1200)),
    }
}

impl Plan {
    pub fn from_seed(seed: u64) -> Plan {
        let mut rng = fastrand::Rng::with_seed(seed);
        // A quarter of the runs have no pattern subscriptions at all, so
        // pipelined publishes travel in runs (see Spec::joins_runs).
        let channels_only = rng.u8(0..4) == 0;
        let pick = |rng: &mut fastrand::Rng| -> (Kind, String) {
            match rng.u8(0..10) {
                0..=4 => (Kind::Channel, CHANNELS[rng.usize(..CHANNELS.len())].into()),
                5..=8 if channels_only => (Kind::Channel, CHANNELS[rng.usize(..CHANNELS.len())].into()),
                5..=8 => (Kind::Pattern, PATTERNS[rng.usize(..PATTERNS.len())].into()),
                _ => (Kind::Shard, SHARDS[rng.usize(..SHARDS.len())].into()),
            }
        };
        let mut subscribers = Vec::new();
        for i in 0..rng.usize(3..=6) {
            let mut steady: Vec<(Kind, String)> = (0..rng.usize(1..4)).map(|_| pick(&mut rng)).collect();
            let churn = (0..rng.usize(0..5))
                .map(|_| {
                    let (k, n) = pick(&mut rng);
                    (ms(&mut rng, 50, 1300), rng.bool(), k, n)
                })
                .collect();
            // The first subscriber is never faulted, so that every run
            // checks completeness somewhere.
            let faults = if i == 0 { Vec::new() } else { draw_faults(&mut rng, 2, true) };
            if faults.iter().any(|f| matches!(f, Fault::StopsReading { .. })) {
                // Make sure it is sent plenty.
                if channels_only {
                    steady.extend(CHANNELS.iter().map(|c| (Kind::Channel, c.to_string())));
                } else {
                    steady.push((Kind::Pattern, "*".into()));
                }
            }
            steady.sort();
            steady.dedup();
            subscribers.push(SubscriberPlan { library: false, resp3: rng.bool(), steady, churn, faults });
        }
        // Half the runs add a herald-client subscriber, faulted like the
        // others but for what the library does itself (it is killed, not
        // left mid-command, and never stops reading).
        if rng.bool() {
            let mut steady: Vec<(Kind, String)> = (0..rng.usize(1..4)).map(|_| pick(&mut rng)).collect();
            steady.sort();
            steady.dedup();
            let faults = draw_faults(&mut rng, 2, false)
                .into_iter()
                .map(|f| if let Fault::KilledMidFrame { at } = f { Fault::Killed { at } } else { f })
                .collect();
            subscribers.push(SubscriberPlan { library: true, resp3: false, steady, churn: Vec::new(), faults });
        }
        let publishers =
            (0..rng.usize(1..=3)).map(|_| PublisherPlan { faults: draw_faults(&mut rng, 2, false) }).collect();
        let lo = Duration::from_micros(rng.u64(50..500));
        let latency = (lo, lo + ms(&mut rng, 1, 8));
        let settings = Settings {
            arbiters: rng.usize(1..=4),
            limit: draw_limit(&mut rng),
            idle_timeout: Duration::from_millis(rng.u64(800..=1500)),
            channel_idle: Duration::from_millis(rng.u64(10..=400)),
        };
        let server = ServerPlan {
            crash: rng.u8(0..4).eq(&0).then(|| {
                let at = ms(&mut rng, 200, 1000);
                (at, at + ms(&mut rng, 20, 300))
            }),
            // CONFIG SET takes whole seconds, as Redis does.
            config_set: rng.u8(0..3).eq(&0).then(|| {
                let limit = OutputLimit { soft_for: Duration::from_secs(1), ..draw_limit(&mut rng) };
                (ms(&mut rng, 100, 1300), limit)
            }),
        };
        Plan { seed, settings, server, subscribers, publishers, depth: rng.usize(1..=8), latency }
    }

    /// Faults planned, by kind (the server's included).
    pub fn fault_counts(&self) -> Vec<&'static str> {
        let clients =
            self.subscribers.iter().flat_map(|s| &s.faults).chain(self.publishers.iter().flat_map(|p| &p.faults));
        let mut names: Vec<&'static str> = clients.map(Fault::name).collect();
        names.extend(self.server.crash.map(|_| "server crash"));
        names.extend(self.server.config_set.map(|_| "CONFIG SET"));
        names
    }

    /// Each client's host name and faults, subscribers first.
    pub fn client_faults(&self) -> impl Iterator<Item = (String, &[Fault])> {
        let subscribers = self.subscribers.iter().enumerate().map(|(i, s)| (format!("sub{i}"), &s.faults[..]));
        subscribers.chain(self.publishers.iter().enumerate().map(|(i, p)| (format!("pub{i}"), &p.faults[..])))
    }

    /// What the simulation does to the network and the server, in time
    /// order: (when, what).
    pub fn network_actions(&self) -> Vec<(Duration, Action)> {
        let mut out = Vec::new();
        for (host, faults) in self.client_faults() {
            for f in faults {
                match *f {
                    Fault::Hold { at, for_ } => {
                        out.push((at, Action::Hold(host.clone())));
                        out.push((at + for_, Action::Release(host.clone())));
                    }
                    Fault::Slow { at, for_, latency } => {
                        out.push((at, Action::Latency(host.clone(), latency)));
                        out.push((at + for_, Action::Latency(host.clone(), self.latency.1)));
                    }
                    Fault::Partition { at, for_ } => {
                        out.push((at, Action::Partition(host.clone())));
                        out.push((at + for_, Action::Repair(host.clone())));
                    }
                    _ => {}
                }
            }
        }
        if let Some((at, back)) = self.server.crash {
            out.push((at, Action::Crash));
            out.push((back, Action::Restart));
        }
        out.sort_by_key(|a| a.0);
        out
    }
}

/// One change the simulation makes.
#[derive(Debug, Clone)]
pub enum Action {
    Hold(String),
    Release(String),
    Latency(String, Duration),
    Partition(String),
    Repair(String),
    Crash,
    Restart,
}
