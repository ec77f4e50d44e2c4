//! How to connect, authenticate, time out and reconnect.

use std::time::Duration;

/// Exponential backoff between reconnect attempts, with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Delay ceiling before the first retry.
    pub initial: Duration,
    /// No delay ceiling grows past this.
    pub max: Duration,
    /// Seeds the jitter; `None` draws a random seed. Set it to make
    /// reconnect timing reproducible (the simulator does).
    pub seed: Option<u64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(50), max: Duration::from_secs(5), seed: None }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based): half the capped
    /// exponential ceiling plus a random part of the other half, so clients
    /// that lost the same server do not come back in lock step.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.initial.saturating_mul(1u32 << attempt.min(16)).min(self.max);
        let half = ceiling / 2;
        half + Duration::from_nanos(rng.u64(0..=half.as_nanos() as u64))
    }
}

/// Everything a [`crate::Client`] needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port`.
    pub addr: String,
    /// Speak RESP3 (`HELLO 3`) instead of RESP2.
    pub resp3: bool,
    /// Credentials sent with `HELLO … AUTH`; the user defaults to `default`.
    pub username: Option<String>,
    /// The password for `HELLO … AUTH`; none means no authentication.
    pub password: Option<String>,
    /// Sent with `HELLO … SETNAME`.
    pub client_name: Option<String>,
    /// How long opening a connection (with its HELLO) may take.
    pub connect_timeout: Duration,
    /// How long a command may wait for its reply.
    pub response_timeout: Duration,
    /// A subscriber that has heard nothing for this long sends a PING; if
    /// that goes unanswered for `response_timeout`, it reconnects. Needed
    /// because a dead peer does not always close the socket.
    pub idle_ping: Duration,
    /// Delays between a subscriber's reconnect attempts.
    pub backoff: Backoff,
}

impl Config {
    /// Defaults for `addr`: RESP2, no credentials, 5 s timeouts, 10 s idle ping.
    pub fn new(addr: impl Into<String>) -> Config {
        Config {
            addr: addr.into(),
            resp3: false,
            username: None,
            password: None,
            client_name: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            idle_ping: Duration::from_secs(10),
            backoff: Backoff::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_reproducibly() {
        let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1), seed: Some(7) };
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<Duration> = (0..8).map(|a| b.delay(a, &mut rng)).collect();
        for (a, d) in delays.iter().enumerate() {
            let ceiling = (Duration::from_millis(100) * (1 << a)).min(Duration::from_secs(1));
            assert!(*d >= ceiling / 2 && *d <= ceiling, "attempt {a}: {d:?} outside [{:?}, {ceiling:?}]", ceiling / 2);
        }
        let mut again = fastrand::Rng::with_seed(7);
        assert_eq!(delays, (0..8).map(|a| b.delay(a, &mut again)).collect::<Vec<_>>());
    }
}
