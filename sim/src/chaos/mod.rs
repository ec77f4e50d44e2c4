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
mod clients;
mod plan;
mod record;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use herald::Config;

use crate::add_server_with;
use clients::{Chore, World};

pub use check::{check, Broken, Violation};
pub use plan::{Action, Fault, Kind, Plan, PublisherPlan, ServerPlan, Settings, SubscriberPlan};
pub use record::{FinalState, Publish, Record, SubEvent};

pub const CHANNELS: &[&str] = &["orders", "payments", "orders:eu", "users:1", "users:2"];
pub const PATTERNS: &[&str] = &["orders*", "users:?", "*s", "[op]*", "users:[^1]", "*"];
pub const SHARDS: &[&str] = &["s:a", "s:b"];

/// When phase 2 (no faults, no churn) starts.
pub const STEADY: Duration = Duration::from_millis(1500);
/// When publishing ends; subscribers leave a little later.
pub(crate) const END: Duration = Duration::from_millis(2200);
pub(crate) const QUIET: Duration = Duration::from_millis(300);

pub struct Outcome {
    pub plan: Plan,
    pub record: Record,
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
    let config = Config {
        pubsub_output: plan.settings.limit,
        idle_timeout: plan.settings.idle_timeout,
        channel_idle: plan.settings.channel_idle,
        ..Config::default()
    };
    let server = add_server_with(&mut sim, config, plan.settings.arbiters);
    let world = World {
        record: Rc::new(RefCell::new(Record {
            subscribers: vec![Vec::new(); plan.subscribers.len()],
            ..Record::default()
        })),
        ids: Rc::default(),
        finished: Rc::default(),
        crash: plan.server.crash,
    };
    for (i, sp) in plan.subscribers.iter().enumerate() {
        let (world, sp) = (world.clone(), sp.clone());
        sim.client(format!("sub{i}"), async move {
            let result = if sp.library {
                clients::library_subscriber(i, sp, seed, world.clone()).await
            } else {
                clients::subscriber(i, sp, world.clone()).await
            };
            world.finished.borrow_mut().insert(format!("sub{i}"));
            result
        });
    }
    for (p, pp) in plan.publishers.iter().enumerate() {
        let (world, pp, depth) = (world.clone(), pp.clone(), plan.depth);
        sim.client(format!("pub{p}"), async move {
            let result = clients::publisher(p, pp, seed, depth, world.clone()).await;
            world.finished.borrow_mut().insert(format!("pub{p}"));
            result
        });
    }
    let mut chores: Vec<(Duration, Chore)> =
        plan.server.config_set.iter().map(|(at, l)| (*at, Chore::Limit(*l))).collect();
    for (host, faults) in plan.client_faults() {
        chores.extend(faults.iter().filter_map(|f| match f {
            Fault::Killed { at } => Some((*at, Chore::Kill(host.clone()))),
            _ => None,
        }));
    }
    let admin_world = world.clone();
    sim.client("admin", async move {
        let result = clients::admin(chores, admin_world.clone()).await;
        admin_world.finished.borrow_mut().insert("admin".into());
        result
    });
    let clients = plan.subscribers.len() + plan.publishers.len() + 1;
    sim.client("observer", clients::observer(clients, world.clone()));

    let actions = plan.network_actions();
    let mut next = 0;
    loop {
        let done = sim.step().map_err(|e| {
            let finished = world.finished.borrow();
            let names = (0..plan.subscribers.len())
                .map(|i| format!("sub{i}"))
                .chain((0..plan.publishers.len()).map(|i| format!("pub{i}")))
                .chain(["admin".to_string()]);
            let running: Vec<String> = names.filter(|n| !finished.contains(n)).collect();
            format!("seed {seed}: {e}; still running: {running:?}")
        })?;
        if done {
            break;
        }
        while let Some((at, action)) = actions.get(next) {
            if sim.elapsed() < *at {
                break;
            }
            next += 1;
            match action {
                Action::Hold(host) => sim.hold(host.as_str(), "herald"),
                Action::Release(host) => sim.release(host.as_str(), "herald"),
                Action::Latency(host, d) => sim.set_link_max_message_latency(host.as_str(), "herald", *d),
                Action::Partition(host) => sim.partition(host.as_str(), "herald"),
                Action::Repair(host) => sim.repair(host.as_str(), "herald"),
                Action::Crash => server.crash(&mut sim),
                Action::Restart => server.restart(&mut sim),
            }
        }
    }
    drop(sim);
    let record = Rc::try_unwrap(world.record).map_err(|_| "record still shared".to_string())?.into_inner();
    Ok(Outcome { plan, record })
}

/// Runs one seed and checks it; the error names the seed and the plan.
pub fn run_checked(seed: u64) -> Result<Outcome, String> {
    let outcome = run(seed)?;
    check(&outcome.plan, &outcome.record).map_err(|e| format!("seed {seed}: {e}\nplan: {:#?}", outcome.plan))?;
    Ok(outcome)
}
