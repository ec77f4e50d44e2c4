//! The classic census (SPEC §9.6–9.7: the mesh follows membership). Once
//! every fault is over, a classic subscriber at each live node, then a
//! publisher at each live node: every subscriber must hear every
//! publish, once. It fails if a node that joined (or came back) is not
//! linked to the others, or if a node still forwards to, or waits for, a
//! node that left.
//!
//! Why no wait between the subscribes and the publishes: SUBSCRIBE is
//! confirmed only once every linked peer has taken the interest (SPEC
//! §9.2), so a publish sent after the last confirmation finds every
//! subscriber, wherever it is.

use std::time::Duration;

use super::{trace, Shared};
use crate::cluster::host;
use crate::SimClient;

/// The channel the census subscribes to (no shard subscriber uses it).
const CHANNEL: &str = "census";
/// How long a subscriber waits for a publish that has not come (the
/// crossings take a few ms), and then for a copy too many.
const MISSING: Duration = Duration::from_millis(1000);
const EXTRA: Duration = Duration::from_millis(200);

/// The publish made at `node`, as its subscribers hear it.
pub(super) fn from(node: usize) -> String {
    format!("from node{node}")
}

/// Runs the census at `calm` over the nodes live then; records, for
/// each, what its subscriber heard.
pub(super) async fn run(calm: Duration, world: Shared) -> turmoil::Result {
    tokio::time::sleep(calm.saturating_sub(turmoil::elapsed())).await;
    let live: Vec<usize> = {
        let w = world.borrow();
        (0..w.down.len()).filter(|&n| !w.down[n]).collect()
    };
    let mut subscribers = Vec::new();
    for &node in &live {
        let mut c = SimClient::connect_to(&host(node)).await?;
        let reply = c.cmd(&["SUBSCRIBE", CHANNEL]).await?;
        trace(&world, format!("census subscriber at node{node}: {reply:?}"));
        subscribers.push((node, c));
    }
    for &node in &live {
        let mut c = SimClient::connect_to(&host(node)).await?;
        let reply = c.cmd(&["PUBLISH", CHANNEL, &from(node)]).await?;
        trace(&world, format!("census publish at node{node}: {reply:?}"));
    }
    for (node, mut c) in subscribers {
        let mut heard = Vec::new();
        loop {
            let wait = if heard.len() < live.len() { MISSING } else { EXTRA };
            match tokio::time::timeout(wait, c.frame()).await {
                Ok(Ok(words)) if words.first().map(String::as_str) == Some("message") => {
                    heard.push(words[2].clone());
                }
                Ok(Ok(_)) => {}
                _ => break,
            }
        }
        trace(&world, format!("census at node{node} heard {heard:?}"));
        world.borrow_mut().record.census.push((node, heard));
    }
    Ok(())
}

/// The census against its invariant, `mesh`.
pub(super) fn check(census: &[(usize, Vec<String>)]) -> Result<(), String> {
    if census.is_empty() {
        return Err("mesh: no census was taken".into());
    }
    let mut want: Vec<String> = census.iter().map(|(node, _)| from(*node)).collect();
    want.sort();
    for (node, heard) in census {
        let mut got = heard.clone();
        got.sort();
        if got != want {
            return Err(format!(
                "mesh: the classic subscriber at node{node} heard {heard:?}, not each of {want:?} once"
            ));
        }
    }
    Ok(())
}
