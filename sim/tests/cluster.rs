//! Cluster mode under simulation (src/cluster/): 3–5 nodes, clients on
//! every node, partitions and crashes between nodes, cut links between a
//! client and a node. A failure names its
//! seed and the command that replays it.

use herald_sim::cluster::{check, required, run, run_checked, ClusterPlan, NodeFault};

#[test]
fn cluster_invariants_hold_on_every_seed() {
    let (mut faulty, mut cuts, mut broken) = (0, 0, 0);
    let seeds = herald_sim::seeds(30);
    for &seed in &seeds {
        let record = run_checked(seed).unwrap_or_else(|e| panic!("{e}"));
        let plan = ClusterPlan::from_seed(seed);
        faulty += !plan.faults.is_empty() as usize;
        cuts += plan.faults.iter().filter(|f| matches!(f, NodeFault::ClientCut { .. })).count();
        broken += record.windows.iter().filter(|w| w.broken).count();
    }
    eprintln!("cluster seeds with faults: {faulty}, client links cut: {cuts}, subscription windows broken: {broken}");
    // The default seeds must reach the faults' paths, or the run proves
    // less than it says.
    if seeds.len() >= 30 {
        assert!(cuts > 0 && broken > 0, "no client link cut broke a window in {} seeds", seeds.len());
    }
}

#[test]
fn same_seed_same_record() {
    let (_, a) = run(5).expect("run 1");
    let (_, b) = run(5).expect("run 2");
    assert_eq!(a.trace, b.trace);
    let (_, c) = run(6).expect("run 3");
    assert_ne!(a.hash(), c.hash());
}

/// The same seed gives the same record in another process too (the
/// Mesh's tables hash with fixed seeds; nothing reads a process's
/// randomness).
#[test]
fn same_seed_same_record_across_processes() {
    let here = run(5).unwrap().1.hash();
    assert_eq!(
        here,
        herald_sim::hash_in_another_process("print_cluster_record_hash", 5),
        "seed 5 gave different records in two processes"
    );
    assert_ne!(here, herald_sim::hash_in_another_process("print_cluster_record_hash", 6));
}

/// The other process of `same_seed_same_record_across_processes`.
#[test]
#[ignore = "run by same_seed_same_record_across_processes"]
fn print_cluster_record_hash() {
    let seed = herald_sim::hash_seed();
    println!("record hash: {}", run(seed).unwrap().1.hash());
}

/// Every invariant can fail: a clean record, doctored one way at a time,
/// is rejected.
#[test]
fn checker_rejects_doctored_records() {
    // A fault-free seed, so the boundary is judged too.
    let seed = (1..).find(|&s| ClusterPlan::from_seed(s).faults.is_empty()).unwrap();
    let (plan, clean) = run(seed).expect("run");
    check(&plan, &clean).expect("the clean record passes");
    let fresh = || run(seed).expect("run").1;
    let with_delivery = |r: &herald_sim::cluster::ClusterRecord| {
        assert!(!r.deliveries.is_empty(), "seed {seed} delivered nothing");
    };
    with_delivery(&clean);

    let mut r = fresh();
    let first = r.deliveries[0].clone();
    r.deliveries.push(first);
    assert!(check(&plan, &r).unwrap_err().starts_with("duplicate"));

    let mut r = fresh();
    let k = (1..r.deliveries.len())
        .find(|&k| {
            let (a, b) = (&r.deliveries[k - 1], &r.deliveries[k]);
            (a.0, a.1, a.2, a.4) == (b.0, b.1, b.2, b.4)
        })
        .expect("two deliveries of one publisher on one connection");
    r.deliveries.swap(k - 1, k);
    assert!(check(&plan, &r).unwrap_err().starts_with("reorder"));

    let mut r = fresh();
    r.strays.push((0, 0, "message c0 p0-0".into()));
    assert!(check(&plan, &r).unwrap_err().starts_with("outside a subscription"));

    let mut r = fresh();
    let publishes = r.publishes.clone();
    let (w, k) =
        r.windows
            .iter_mut()
            .filter(|w| !w.broken)
            .find_map(|w| {
                let k = w.got.iter().position(|&(p, seq)| {
                    publishes.iter().any(|x| x.publisher == p && x.seq == seq && required(w, x))
                })?;
                Some((w, k))
            })
            .expect("a delivery the boundary requires");
    w.got.remove(k);
    assert!(check(&plan, &r).unwrap_err().starts_with("lost inside a window"));

    let mut r = fresh();
    r.interest_left = Some(vec![(1, "1".into(), "0".into())]);
    assert!(check(&plan, &r).unwrap_err().starts_with("interest left"));
}

/// The planted cluster bugs are caught by the simulation too.
#[cfg(feature = "planted-bugs")]
mod planted {
    use herald::planted::{plant, Bug};

    use super::*;

    fn caught(bug: Bug, expect: &str) {
        plant(Some(bug));
        let found = (1..=20).find_map(|seed| run(seed).ok().and_then(|(plan, r)| check(&plan, &r).err()));
        plant(None);
        let e = found.unwrap_or_else(|| panic!("{bug:?} never caught in 20 seeds"));
        assert!(e.starts_with(expect), "{bug:?}: {e}");
    }

    #[test]
    fn a_forward_passed_on_is_caught() {
        caught(Bug::Reforward, "duplicate");
    }

    #[test]
    fn a_confirmation_ahead_of_the_peers_is_caught() {
        caught(Bug::ConfirmBeforePeers, "lost inside a window");
    }
}
