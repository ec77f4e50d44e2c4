//! Seeded simulation runs of the server core. A failure names its seed;
//! replay it with `HERALD_SEED=<seed> cargo test -p herald-sim`.

use herald_sim::run_pubsub;

#[test]
fn every_message_in_publisher_order_on_every_seed() {
    for seed in herald_sim::seeds(20) {
        if let Err(e) = run_pubsub(seed, 25) {
            panic!("{e}\nreplay: HERALD_SEED={seed} cargo test -p herald-sim");
        }
    }
}

#[test]
fn same_seed_same_trace() {
    let a = run_pubsub(7, 10).expect("run 1");
    let b = run_pubsub(7, 10).expect("run 2");
    assert_eq!(a.lines(), b.lines());
    assert_eq!(a.hash(), b.hash());
    let c = run_pubsub(8, 10).expect("run 3");
    assert_ne!(a.hash(), c.hash(), "different seeds should interleave differently");
}

/// A short run's client-side transcript, reviewed as a snapshot: any change
/// in what clients see (or when, in simulated time) shows up in review.
#[test]
fn short_run_transcript() {
    let trace = run_pubsub(3, 2).expect("run");
    insta::assert_snapshot!(trace.lines().join("\n"));
}
