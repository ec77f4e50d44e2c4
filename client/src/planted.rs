//! A bug planted on purpose (feature `planted-bugs`), to prove that
//! Herald's simulator notices a client that does not resubscribe after a
//! reconnect (sim/tests/planted_bugs.rs). Without the feature,
//! `no_resubscribe()` is a constant `false`.

#[cfg(feature = "planted-bugs")]
thread_local! {
    static NO_RESUBSCRIBE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes reconnects on this thread skip re-issuing subscriptions.
#[cfg(feature = "planted-bugs")]
pub fn plant_no_resubscribe(on: bool) {
    NO_RESUBSCRIBE.with(|c| c.set(on));
}

/// Whether the planted bug is on for this thread.
#[inline(always)]
pub(crate) fn no_resubscribe() -> bool {
    #[cfg(feature = "planted-bugs")]
    return NO_RESUBSCRIBE.with(|c| c.get());
    #[cfg(not(feature = "planted-bugs"))]
    false
}
