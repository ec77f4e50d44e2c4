//! herald-client across server crashes, in the simulator. A failure names
//! its seed; replay with `HERALD_SEED=<seed> cargo test -p herald-sim`.

use herald_sim::reconnect::{check_restart, run_restart};

#[test]
fn subscriber_survives_server_restart_without_duplicates() {
    for seed in herald_sim::seeds(20) {
        if let Err(e) = run_restart(seed, 200) {
            panic!("{e}\nreplay: HERALD_SEED={seed} cargo test -p herald-sim");
        }
    }
}

#[test]
fn restart_runs_replay_exactly() {
    let a = run_restart(11, 100).unwrap();
    let b = run_restart(11, 100).unwrap();
    assert_eq!(a.events, b.events);
    assert_eq!(a.published, b.published);
    let lost = a.published.iter().filter(|(_, reached, _)| *reached != Some(1)).count();
    eprintln!(
        "seed 11: {} published, {} not acknowledged as delivered, {} received, events {:?}",
        a.published.len(),
        lost,
        a.received.len(),
        a.events.iter().filter(|e| !e.starts_with("message")).collect::<Vec<_>>()
    );
}

/// The checker must be able to fail: a replayed message, or silence about
/// an outage, are caught.
#[test]
fn checker_catches_duplicates_and_silent_gaps() {
    let mut log = run_restart(3, 60).unwrap();
    let first = log.received[0];
    let mut duplicated = log.received.clone();
    duplicated.insert(1, first);
    let original = std::mem::replace(&mut log.received, duplicated);
    assert!(check_restart(&log).unwrap_err().contains("duplicate"));
    log.received = original;
    log.events.retain(|e| e != "reconnected");
    assert!(check_restart(&log).is_err());
}
