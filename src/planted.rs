//! Bugs planted on purpose, to prove that the simulator's checker catches
//! each kind of broken guarantee (sim/tests/planted_bugs.rs). Compiled in
//! only with the `planted-bugs` feature; without it `planted()` is a
//! constant `false` and every planted branch is dead code the compiler
//! drops. Which bug is active is chosen at run time, so one build serves
//! every bug: per thread by `plant` (the simulator runs a whole server on
//! one thread), or for a whole server process by the environment variable
//! `HERALD_PLANTED_BUG` naming a variant (the conformance kit is run
//! against such a process, CONFORMANCE.md).

/// One planted bug per class of guarantee the checker judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Some deliveries are queued twice (SPEC §2.1).
    Duplicate,
    /// A pipelined run that spans several directories is posted in the
    /// wrong order (SPEC §2.2; needs more than one arbiter).
    ReorderAcrossArbiters,
    /// A pmessage is posted before the message of its publish (SPEC §2.2).
    PatternFirst,
    /// The session delivers for subscriptions it has already left
    /// (SPEC §2.3).
    AfterUnsubscribe,
    /// Some deliveries are never queued, though counted (SPEC §2.3).
    Loss,
    /// Some PUBLISH replies count one subscriber fewer (SPEC §2.3).
    PublishCount,
    /// The output limit is never enforced (SPEC §3.1).
    SlowKept,
    /// UNSUBSCRIBE is confirmed without waiting for deliveries still
    /// queued at the session's postman (SPEC §2.3; needs more than one
    /// arbiter, and a postman behind, which only real threads show).
    UnsubscribeAhead,
    /// A channel woken while it was retiring replays the publishes that
    /// waited for it before the subscribes that came ahead of them
    /// (SPEC §2.3, virtual channel actors).
    WakeReordered,
    /// In cluster mode, SUBSCRIBE is confirmed without waiting for the
    /// peer nodes to take the interest (SPEC §9.2).
    ConfirmBeforePeers,
    /// In cluster mode, a node passes on what a peer forwarded to it
    /// (SPEC §9.1: one hop; it duplicates, and loops).
    Reforward,
    /// With etcd, a node past its lease keeps serving its slots
    /// (SPEC §9.7: fencing).
    NoFence,
    /// With etcd, a node asked to stop exits without handing its slots
    /// over (SPEC §9.7).
    NoHandover,
    /// With etcd, a node serves the slots a map gives it at once, before
    /// their previous owners have let them go (SPEC §9.7: one owner).
    NoHoldBack,
    /// With etcd, the Mesh ignores the topology's changes: it never links
    /// to the nodes that join (SPEC §9.6: peers follow the topology).
    StaticMesh,
    /// Every fan-out of a run posts its own deliveries, not only a run's
    /// lone fan-out: fan-outs to different channels race to the postmen,
    /// and a message's pmessages no longer follow it (SPEC §2.2).
    ActorPostsRuns,
}

impl Bug {
    pub const ALL: [Bug; 16] = [
        Bug::Duplicate,
        Bug::ReorderAcrossArbiters,
        Bug::PatternFirst,
        Bug::AfterUnsubscribe,
        Bug::Loss,
        Bug::PublishCount,
        Bug::SlowKept,
        Bug::UnsubscribeAhead,
        Bug::WakeReordered,
        Bug::ConfirmBeforePeers,
        Bug::Reforward,
        Bug::NoFence,
        Bug::NoHandover,
        Bug::NoHoldBack,
        Bug::StaticMesh,
        Bug::ActorPostsRuns,
    ];
}

/// The bug `HERALD_PLANTED_BUG` names, for every thread of the process.
/// A name that is no bug stops the process: a typo must not pass for a
/// bug the checks missed.
#[cfg(feature = "planted-bugs")]
fn process_bug() -> Option<Bug> {
    static PROCESS: std::sync::OnceLock<Option<Bug>> = std::sync::OnceLock::new();
    *PROCESS.get_or_init(|| {
        let name = std::env::var("HERALD_PLANTED_BUG").ok()?;
        let bug = Bug::ALL.into_iter().find(|b| format!("{b:?}") == name);
        Some(bug.unwrap_or_else(|| panic!("HERALD_PLANTED_BUG={name} is none of {:?}", Bug::ALL)))
    })
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
}

/// Activates `bug` (or none) for this thread.
#[cfg(feature = "planted-bugs")]
pub fn plant(bug: Option<Bug>) {
    ACTIVE.with(|a| a.set(bug));
}

/// Whether `bug` is active on this thread.
#[inline(always)]
pub(crate) fn planted(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    return ACTIVE.with(|a| a.get()) == Some(bug) || process_bug() == Some(bug);
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}
