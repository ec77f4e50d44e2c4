//! Bugs planted on purpose, to prove that the simulator's checker catches
//! each kind of broken guarantee (sim/tests/planted_bugs.rs). Compiled in
//! only with the `planted-bugs` feature; without it `planted()` is a
//! constant `false` and every planted branch is dead code the compiler
//! drops. Which bug is active is chosen per thread at run time, so one
//! build serves every bug (the simulator runs a whole server on one
//! thread).

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
    return ACTIVE.with(|a| a.get()) == Some(bug);
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}
