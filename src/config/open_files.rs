//! `maxclients` against the open-files limit, as Redis' `adjustOpenFilesLimit`
//! does it: every client is a descriptor, so the soft `RLIMIT_NOFILE` is
//! raised to `maxclients` plus what the server keeps for itself, and where
//! the system will not allow that, `maxclients` is lowered to fit, with
//! Redis' warnings. Without it, a server past its descriptors cannot even
//! accept a client to tell it `max number of clients reached`: the client
//! waits in the listen backlog while accept fails over and over.
//!
//! Unlike Redis, the hard limit is never lowered: Redis sets it to the
//! soft limit it reached, which an unprivileged process can never raise
//! again, so a later `CONFIG SET maxclients` above it always fails there.

/// Descriptors Herald keeps for itself besides its clients: Redis' 32
/// (`CONFIG_MIN_RESERVED_FDS`; a Herald with one arbiter holds 16 at
/// start), 4 more per further arbiter (measured: 44 held at 8 arbiters:
/// each one's event loop, waker and signal pipe) and 2 per cluster peer
/// (its link out and its link in).
pub(crate) fn reserved(arbiters: usize, peers: usize) -> u64 {
    32 + 4 * arbiters.saturating_sub(1) as u64 + 2 * peers as u64
}

/// What came of fitting `maxclients` to the limit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The limit holds them all (raised if it had to be).
    Fits,
    /// The limit could only reach `limit`: this many clients fit.
    Lowered { maxclients: usize, limit: u64 },
    /// Not even Herald's own descriptors fit: it cannot start.
    TooLow { limit: u64, needed: u64 },
}

/// Fits `maxclients` to the soft limit `soft`, raising it through `raise`
/// (which sets the soft limit or fails): tried at `maxclients + reserved`
/// first, then 16 lower at a time, as Redis tries, until it takes or
/// reaches `soft`. Redis' warnings are logged.
///
/// Tries above `ceiling` (no process may go past it) are skipped: Redis
/// makes every one, so `CONFIG SET maxclients 4294967295` costs it some
/// 268 million failed `setrlimit` calls.
pub(crate) fn fit(
    maxclients: usize,
    reserved: u64,
    soft: u64,
    ceiling: u64,
    mut raise: impl FnMut(u64) -> std::io::Result<()>,
) -> Fit {
    let wanted = maxclients as u64 + reserved;
    if soft >= wanted {
        return Fit::Fits;
    }
    // The first of Redis' tries (wanted, wanted - 16, …) not above it.
    let mut best = wanted.saturating_sub(wanted.saturating_sub(ceiling).div_ceil(16) * 16);
    // EPERM: what `setrlimit` says to a try past the ceiling.
    let mut refusal = (best < wanted).then(|| std::io::Error::from_raw_os_error(1));
    while best > soft {
        match raise(best) {
            Ok(()) => break,
            Err(e) => refusal = Some(e),
        }
        best = best.saturating_sub(16);
    }
    let best = best.max(soft);
    if best >= wanted {
        tracing::info!("Increased maximum number of open files to {wanted} (it was originally set to {soft}).");
        return Fit::Fits;
    }
    if best <= reserved {
        tracing::error!(
            "Your current 'ulimit -n' of {soft} is not enough for the server to start. Please increase your open file limit to at least {wanted}. Exiting."
        );
        return Fit::TooLow { limit: soft, needed: wanted };
    }
    let fitted = (best - reserved) as usize;
    let why = refusal.map_or_else(|| "unknown".to_string(), |e| os_error_text(&e));
    tracing::warn!("You requested maxclients of {maxclients} requiring at least {wanted} max file descriptors.");
    tracing::warn!("Server can't set maximum open files to {wanted} because of OS error: {why}.");
    tracing::warn!(
        "Current maximum open files is {best}. maxclients has been reduced to {fitted} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
    Fit::Lowered { maxclients: fitted, limit: best }
}

/// The same against this process's real limit.
pub(crate) fn fit_process(maxclients: usize, reserved: u64) -> Fit {
    use rlimit::Resource;
    let Ok((soft, hard)) = Resource::NOFILE.get() else {
        tracing::warn!("Unable to obtain the current NOFILE limit, assuming 1024 and setting the max clients configuration accordingly.");
        return fit(maxclients, reserved, 1024, 1024, |_| Err(std::io::ErrorKind::Unsupported.into()));
    };
    // A privileged process may raise the hard limit too, up to the
    // kernel's `nr_open`.
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|n| n.trim().parse::<u64>().ok());
    let ceiling = hard.max(nr_open.unwrap_or(0));
    fit(maxclients, reserved, soft, ceiling, |limit| Resource::NOFILE.set(limit, hard.max(limit)))
}

/// `strerror`'s text, as Redis prints it ("Operation not permitted", not
/// Rust's "Operation not permitted (os error 1)").
fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system whose hard limit is `hard`: raising past it is refused.
    fn system(hard: u64, tried: &mut Vec<u64>) -> impl FnMut(u64) -> std::io::Result<()> + '_ {
        move |limit| {
            tried.push(limit);
            if limit <= hard {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(1))
            }
        }
    }

    #[test]
    fn a_limit_that_holds_them_is_left_alone() {
        let mut tried = Vec::new();
        assert_eq!(fit(10_000, 32, 10_032, u64::MAX, system(0, &mut tried)), Fit::Fits);
        assert!(tried.is_empty(), "raised a limit that was enough: {tried:?}");
    }

    #[test]
    fn the_limit_is_raised_when_the_system_allows_it() {
        let mut tried = Vec::new();
        assert_eq!(fit(10_000, 32, 1024, u64::MAX, system(524_288, &mut tried)), Fit::Fits);
        assert_eq!(tried, [10_032]);
    }

    /// Redis 7.0.15 under `ulimit -n 1024` (hard and soft): maxclients 992.
    #[test]
    fn maxclients_is_lowered_to_what_the_limit_holds_as_redis_does() {
        let mut tried = Vec::new();
        let got = fit(10_000, 32, 1024, u64::MAX, system(1024, &mut tried));
        assert_eq!(got, Fit::Lowered { maxclients: 992, limit: 1024 });
        assert_eq!(tried.first(), Some(&10_032));
        assert!(tried.windows(2).all(|w| w[0] - w[1] == 16), "16 at a time: {tried:?}");
        // A hard limit between two steps: the step below it.
        let mut tried = Vec::new();
        assert_eq!(
            fit(10_000, 32, 1024, u64::MAX, system(2040, &mut tried)),
            Fit::Lowered { maxclients: 2000, limit: 2032 }
        );
        // Never below what it had.
        let mut tried = Vec::new();
        assert_eq!(
            fit(10_000, 32, 1030, u64::MAX, system(0, &mut tried)),
            Fit::Lowered { maxclients: 998, limit: 1030 }
        );
    }

    /// The tries Redis would make above the ceiling are skipped; the
    /// outcome is the one Redis reaches.
    #[test]
    fn tries_start_at_the_ceiling() {
        let huge = u32::MAX as usize;
        let (mut slow, mut quick) = (Vec::new(), Vec::new());
        let redis = fit(100_000, 32, 1024, u64::MAX, system(50_000, &mut slow));
        assert_eq!(fit(100_000, 32, 1024, 50_000, system(50_000, &mut quick)), redis);
        assert_eq!((slow.len(), quick.len()), (3128, 1), "{quick:?}");
        assert_eq!(quick[0], slow[slow.len() - 1]);
        let mut tried = Vec::new();
        assert_eq!(
            fit(huge, 32, 1024, 50_000, system(50_000, &mut tried)),
            Fit::Lowered { maxclients: 49_967, limit: 49_999 }
        );
        assert_eq!(tried.len(), 1);
    }

    #[test]
    fn a_limit_below_the_reserve_cannot_start() {
        let mut tried = Vec::new();
        assert_eq!(fit(10_000, 32, 32, u64::MAX, system(32, &mut tried)), Fit::TooLow { limit: 32, needed: 10_032 });
    }

    #[test]
    fn the_reserve_grows_with_arbiters_and_peers() {
        assert_eq!(reserved(1, 0), 32);
        assert_eq!(reserved(8, 0), 60);
        assert_eq!(reserved(1, 4), 40);
    }

    #[test]
    fn os_errors_read_as_strerror() {
        assert_eq!(os_error_text(&std::io::Error::from_raw_os_error(1)), "Operation not permitted");
    }
}
