//! A client's connection to one node in the cluster simulation, cut off
//! when the plan cuts the client's link to that node.

use std::future::Future;
use std::time::Duration;

use super::{connect, now};
use crate::SimClient;

/// How long after its link to a node is cut a client gives up on its
/// connections there (turmoil's TCP stalls rather than fails; an
/// application notices by a timeout).
const GIVE_UP: Duration = Duration::from_millis(50);

/// A client's connection to one node, which gives up `GIVE_UP` after a
/// cut of its link that began while it was open (as an application's
/// timeout would): from then on anything that has to wait fails.
pub(super) struct Link {
    c: SimClient,
    gives_up: Option<Duration>,
}

impl Link {
    pub(super) async fn to(node: usize, cuts: &[(usize, Duration)]) -> Link {
        let c = connect(node).await;
        let opened = now();
        let gives_up = cuts.iter().filter(|&&(n, at)| n == node && at >= opened).map(|&(_, at)| at + GIVE_UP).min();
        Link { c, gives_up }
    }

    async fn guard<T>(gives_up: Option<Duration>, io: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
        let Some(at) = gives_up else { return io.await };
        tokio::time::timeout(at.saturating_sub(now()), io)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "link cut: gave up")))
    }

    pub(super) async fn frame(&mut self) -> std::io::Result<Vec<String>> {
        Self::guard(self.gives_up, self.c.frame()).await
    }

    pub(super) async fn send(&mut self, args: &[&str]) -> std::io::Result<()> {
        Self::guard(self.gives_up, self.c.send(args)).await
    }

    pub(super) async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        Self::guard(self.gives_up, self.c.send_raw(bytes)).await
    }

    pub(super) async fn cmd(&mut self, args: &[&str]) -> std::io::Result<Vec<String>> {
        Self::guard(self.gives_up, self.c.cmd(args)).await
    }
}
