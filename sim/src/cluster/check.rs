//! The cluster simulation's invariants, judged from the record alone.

use std::collections::{BTreeMap, HashSet};

use super::{ClusterPlan, ClusterRecord, Publish, Window, MARGIN};

/// Whether `publish` must reach window `w` (on a fault-free run): sent
/// after the confirmation, to a channel it covers, answered well before
/// the UNSUBSCRIBE.
pub fn required(w: &Window, publish: &Publish) -> bool {
    let covers = if w.pattern { publish.channel == "c0" || publish.channel == "c1" } else { publish.channel == w.name };
    let answered_early = match (publish.answered, w.unsubscribe_sent) {
        (Some(answered), Some(end)) => answered + MARGIN < end,
        _ => false,
    };
    covers && publish.sent > w.confirmed && answered_early
}

/// The invariants, from the record alone.
pub fn check(plan: &ClusterPlan, r: &ClusterRecord) -> Result<(), String> {
    if let Some((sub, conn, frame)) = r.strays.first() {
        return Err(format!("outside a subscription: sub{sub}, connection {conn}, got {frame}"));
    }
    let mut seen = HashSet::new();
    let mut last: BTreeMap<(usize, usize, bool, usize), usize> = BTreeMap::new();
    for (sub, conn, pattern, name, p, seq) in &r.deliveries {
        if !seen.insert((sub, conn, pattern, name, p, seq)) {
            let kind = if *pattern { "pmessage" } else { "message" };
            return Err(format!("duplicate: sub{sub}/{conn} got {kind} {name} p{p}-{seq} twice"));
        }
        if let Some(prev) = last.insert((*sub, *conn, *pattern, *p), *seq) {
            if prev >= *seq {
                return Err(format!("reorder: sub{sub}/{conn} got p{p}-{seq} after p{p}-{prev}"));
            }
        }
    }
    // A message before its pmessage, on each connection.
    let mut message_at = BTreeMap::new();
    for (k, (sub, conn, pattern, _, p, seq)) in r.deliveries.iter().enumerate() {
        if !pattern {
            message_at.insert((sub, conn, p, seq), k);
        }
    }
    for (k, (sub, conn, pattern, _, p, seq)) in r.deliveries.iter().enumerate() {
        if *pattern && message_at.get(&(sub, conn, p, seq)).is_some_and(|&m| m > k) {
            return Err(format!("pmessage first: sub{sub}/{conn} got p{p}-{seq}'s pmessage before its message"));
        }
    }
    if plan.faults.is_empty() {
        for w in r.windows.iter().filter(|w| !w.broken) {
            let Some(end) = w.unsubscribe_sent else { continue };
            for publish in &r.publishes {
                let Some(answered) = publish.answered else { continue };
                if required(w, publish) && !w.got.contains(&(publish.publisher, publish.seq)) {
                    return Err(format!(
                        "lost inside a window: sub{}/{} ({}{}) confirmed at {:?}, unsubscribed at {end:?}, \
                         never got p{}-{} sent at {:?}, answered at {answered:?}",
                        w.subscriber,
                        w.conn,
                        if w.pattern { "pattern " } else { "" },
                        w.name,
                        w.confirmed,
                        publish.publisher,
                        publish.seq,
                        publish.sent
                    ));
                }
            }
        }
    }
    match &r.interest_left {
        Some(left) if left.is_empty() => Ok(()),
        Some(left) => Err(format!("interest left after everyone left (node, announced, from peers): {left:?}")),
        None => Err("the audit never ran".into()),
    }
}
