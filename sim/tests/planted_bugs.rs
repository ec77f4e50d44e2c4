//! Proof that the simulation can fail, for every class of guarantee: with
//! Herald built with its planted bugs (`--features planted-bugs`) and one
//! switched on, some seed must fail, for the reason that bug breaks, and
//! the failure names the seed. scripts/test runs this.
#![cfg(feature = "planted-bugs")]

use herald::planted::{plant, Bug};
use herald_sim::chaos::{check, run, Broken};

/// Runs seeds with `bug` planted until the checker rejects one for the
/// reason `bug` breaks (a bug may break more than one guarantee: a
/// subscriber kept past its limit also leaks, say; those seeds are
/// reported and passed over). Prints the seed and the violation.
fn expect(bug: Bug, seeds: u64, broken: Broken) {
    plant(Some(bug));
    let mut other = Vec::new();
    for seed in 1..=seeds {
        let outcome = run(seed).unwrap_or_else(|e| panic!("{bug:?}: {e}"));
        match check(&outcome.plan, &outcome.record) {
            Err(v) if v.broken == broken => {
                plant(None);
                eprintln!("{bug:?} caught at seed {seed}: {v}\nreplay: HERALD_SEED={seed} (with the bug planted)");
                return;
            }
            Err(v) => other.push(format!("seed {seed}: {v}")),
            Ok(()) => {}
        }
    }
    plant(None);
    panic!("{seeds} seeds ran with {bug:?} planted and none failed as {broken:?}; other failures: {other:#?}");
}

#[test]
fn a_duplicate_is_caught() {
    expect(Bug::Duplicate, 20, Broken::Duplicate);
}

#[test]
fn a_reorder_across_arbiters_is_caught() {
    expect(Bug::ReorderAcrossArbiters, 30, Broken::Reorder);
}

/// A run's fan-outs each posting their own deliveries (only a run's lone
/// fan-out may: `publishing::send`) break the order a pipelined run owes.
#[test]
fn a_run_whose_fan_outs_post_their_own_mail_is_caught() {
    expect(Bug::ActorPostsRuns, 30, Broken::Reorder);
}

#[test]
fn a_pmessage_before_its_message_is_caught() {
    expect(Bug::PatternFirst, 20, Broken::PatternFirst);
}

#[test]
fn a_delivery_after_the_unsubscribe_confirmation_is_caught() {
    expect(Bug::AfterUnsubscribe, 30, Broken::OutsideSubscription);
}

#[test]
fn a_loss_inside_a_window_is_caught() {
    expect(Bug::Loss, 20, Broken::Loss);
}

#[test]
fn a_wrong_publish_count_is_caught() {
    expect(Bug::PublishCount, 20, Broken::PublishCount);
}

#[test]
fn a_slow_subscriber_kept_is_caught() {
    expect(Bug::SlowKept, 30, Broken::SlowKept);
}

/// herald-client with its resubscribe after a reconnect left out: the
/// restart scenario (whose workload never resubscribes by hand) fails.
#[test]
fn a_client_that_does_not_resubscribe_is_caught() {
    herald_client::planted::plant_no_resubscribe(true);
    let caught = (1..=10).find_map(|seed| herald_sim::reconnect::run_restart(seed, 100).err().map(|e| (seed, e)));
    herald_client::planted::plant_no_resubscribe(false);
    let (seed, e) = caught.expect("10 restart seeds passed with the client's resubscribe left out");
    eprintln!("NoResubscribe caught at seed {seed}: {e}");
    assert!(e.contains("was lost") || e.contains("no message was delivered after the restart"), "{e}");
}
