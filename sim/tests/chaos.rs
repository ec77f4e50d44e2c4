//! The chaos scenario over many seeds. A failure prints its seed and the
//! command that replays it: `HERALD_SEED=<seed> cargo test -p herald-sim`.
//! `HERALD_SEEDS=<n>` runs n seeds (a soak).

use std::time::Instant;

use herald_sim::chaos::{check, run, run_checked, Fault};

#[test]
fn chaos_invariants_hold_on_every_seed() {
    let started = Instant::now();
    let seeds = herald_sim::seeds(80);
    let mut faults = std::collections::BTreeMap::<String, usize>::new();
    for &seed in &seeds {
        match run_checked(seed) {
            Ok(outcome) => {
                for s in &outcome.plan.subscribers {
                    let name = format!("{:?}", s.fault);
                    *faults.entry(name.split([' ', '{']).next().unwrap().to_string()).or_default() += 1;
                }
            }
            Err(e) => panic!("{e}\nreplay: HERALD_SEED={seed} cargo test -p herald-sim --test chaos"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "chaos: {} seeds in {secs:.1}s ({:.1} seeds/s); faults planned: {faults:?}",
        seeds.len(),
        seeds.len() as f64 / secs
    );
}

#[test]
fn same_seed_same_record() {
    let a = run(42).unwrap();
    let b = run(42).unwrap();
    assert_eq!(a.record.hash(), b.record.hash(), "seed 42 diverged between two runs");
    assert_ne!(a.record.hash(), run(43).unwrap().record.hash());
}

/// The checker can fail: records doctored with the bugs it exists to
/// catch are rejected.
#[test]
fn checker_rejects_broken_records() {
    let outcome = (1..50)
        .map(|s| run(s).unwrap())
        .find(|o| {
            o.plan.subscribers[0].fault == Fault::None
                && o.record.subscribers[0]
                    .iter()
                    .filter(|e| matches!(e, herald_sim::chaos::SubEvent::Delivery { .. }))
                    .count()
                    >= 2
        })
        .expect("a seed whose first subscriber got two messages");
    check(&outcome.plan, &outcome.record).expect("the real record passes");
    let deliveries: Vec<usize> = outcome.record.subscribers[0]
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, herald_sim::chaos::SubEvent::Delivery { .. }))
        .map(|(i, _)| i)
        .collect();

    let mut duplicated = outcome.record.clone();
    let copy = duplicated.subscribers[0][deliveries[0]].clone();
    duplicated.subscribers[0].insert(deliveries[0] + 1, copy);
    assert!(check(&outcome.plan, &duplicated).is_err(), "a duplicate went unnoticed");

    let mut lost = outcome.record.clone();
    lost.subscribers[0].remove(deliveries[0]);
    assert!(check(&outcome.plan, &lost).is_err(), "a lost message went unnoticed");

    let mut leaked = outcome.record.clone();
    leaked.final_state.as_mut().unwrap().channel_actors = "1".into();
    assert!(check(&outcome.plan, &leaked).is_err(), "a leaked channel actor went unnoticed");
}
