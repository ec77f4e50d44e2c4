//! The invariants of SPEC.md §2–3, judged from the clients' record.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use herald::pattern::reference as glob;

use super::{Fault, Kind, Plan, Publish, Record, SubEvent, STEADY};

/// A subscription's window on one connection: from its confirmation's
/// arrival to the unsubscribe (or the connection's end). An unsubscribe sent
/// before the confirmation arrived closes the window before it opens.
struct Window {
    kind: Kind,
    name: String,
    from: Duration,
    to: Duration,
}

fn windows(events: &[SubEvent]) -> Vec<Window> {
    let mut open: BTreeMap<(Kind, String), Duration> = BTreeMap::new();
    // Subscribes sent and not yet confirmed; and those already left again.
    let mut requested: BTreeSet<(Kind, String)> = BTreeSet::new();
    let mut left_early: BTreeSet<(Kind, String)> = BTreeSet::new();
    let mut out = Vec::new();
    let mut end = Duration::MAX;
    for e in events {
        match e {
            SubEvent::Joining { kind, name, .. } => {
                requested.insert((*kind, name.clone()));
            }
            SubEvent::Joined { kind, name, at } => {
                let key = (*kind, name.clone());
                requested.remove(&key);
                if !left_early.remove(&key) {
                    open.entry(key).or_insert(*at);
                }
            }
            SubEvent::Leaving { kind, name, at } => {
                let key = (*kind, name.clone());
                if let Some(from) = open.remove(&key) {
                    out.push(Window { kind: *kind, name: name.clone(), from, to: *at });
                } else if requested.remove(&key) {
                    left_early.insert(key);
                }
            }
            SubEvent::Closed { at } | SubEvent::Left { at } => end = end.min(*at),
            SubEvent::Delivery { .. } => {}
        }
    }
    out.extend(open.into_iter().map(|((kind, name), from)| Window { kind, name, from, to: end }));
    out
}

fn covers(kind: Kind, name: &str, p: &Publish) -> bool {
    match kind {
        Kind::Channel => !p.shard && p.channel == name,
        Kind::Shard => p.shard && p.channel == name,
        Kind::Pattern => !p.shard && glob(name.as_bytes(), p.channel.as_bytes()),
    }
}

/// Every invariant; the first broken one is the error.
pub fn check(plan: &Plan, record: &Record) -> Result<(), String> {
    let mut delivered: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    for (i, events) in record.subscribers.iter().enumerate() {
        let who = format!("sub{i} ({:?})", plan.subscribers[i].fault);
        // At most once per subscription, and per-publisher order.
        let mut seen = BTreeSet::new();
        let mut last: BTreeMap<usize, (u64, Kind)> = BTreeMap::new();
        for e in events {
            let SubEvent::Delivery { kind, pattern, channel, publisher, seq, .. } = e else { continue };
            let key = (*kind, pattern.clone().unwrap_or_else(|| channel.clone()), *publisher, *seq);
            if !seen.insert(key.clone()) {
                return Err(format!("{who}: delivered twice: {key:?}"));
            }
            if let Some((prev_seq, prev_kind)) = last.get(publisher) {
                if seq < prev_seq {
                    return Err(format!("{who}: publisher {publisher}'s {seq} after {prev_seq}"));
                }
                if seq == prev_seq && *prev_kind == Kind::Pattern && *kind != Kind::Pattern {
                    return Err(format!("{who}: message {publisher}:{seq} after its pmessage"));
                }
            }
            last.insert(*publisher, (*seq, *kind));
            *delivered.entry((*publisher, *seq)).or_default() += 1;
        }

        // Nothing missing on a connection no fault could touch.
        let healthy = matches!(plan.subscribers[i].fault, Fault::None | Fault::Hold { .. });
        if !healthy {
            continue;
        }
        if let Some(SubEvent::Closed { at }) = events.iter().find(|e| matches!(e, SubEvent::Closed { .. })) {
            return Err(format!("{who}: the server closed a healthy subscriber at {at:?}"));
        }
        for w in windows(events) {
            for p in &record.publishes {
                if p.reached.is_none() || p.sent_at <= w.from || p.replied_at >= w.to || !covers(w.kind, &w.name, p) {
                    continue;
                }
                let found = events.iter().any(|e| {
                    matches!(e, SubEvent::Delivery { kind, pattern, channel, publisher, seq, .. }
                        if *kind == w.kind
                            && pattern.clone().unwrap_or_else(|| channel.clone()) == w.name
                            && *publisher == p.publisher && *seq == p.seq)
                });
                if !found {
                    return Err(format!(
                        "{who}: {:?} {} subscribed {:?}..{:?} missed {}:{} on {} (sent {:?}, replied {:?})",
                        w.kind, w.name, w.from, w.to, p.publisher, p.seq, p.channel, p.sent_at, p.replied_at
                    ));
                }
            }
        }
    }

    // PUBLISH counts: never fewer than the deliveries; exactly them once
    // the run is steady and no connection can hold messages back.
    let settled = plan
        .subscribers
        .iter()
        .all(|s| matches!(s.fault, Fault::None | Fault::Hold { .. } | Fault::KilledMidFrame { .. }));
    for p in &record.publishes {
        let Some(reached) = p.reached else { continue };
        let got = delivered.get(&(p.publisher, p.seq)).copied().unwrap_or(0) as u64;
        if got > reached {
            return Err(format!("{}:{} reached {reached} but was delivered {got} times", p.publisher, p.seq));
        }
        if settled && p.sent_at > STEADY + Duration::from_millis(100) && got != reached {
            return Err(format!(
                "{}:{} in the steady phase: PUBLISH said {reached}, {got} delivered",
                p.publisher, p.seq
            ));
        }
    }

    // A subscriber that stopped reading, sent far more than its limit,
    // was dropped.
    for (i, s) in plan.subscribers.iter().enumerate() {
        let Fault::StopsReading { at } = s.fault else { continue };
        let owed: usize = record
            .publishes
            .iter()
            .filter(|p| p.sent_at > at && p.reached.is_some() && s.steady.iter().any(|(k, n)| covers(*k, n, p)))
            .map(|p| p.size)
            .sum();
        let closed = record.subscribers[i].iter().any(|e| matches!(e, SubEvent::Closed { .. }));
        if owed > 1024 * 1024 && !closed {
            return Err(format!("sub{i} stopped reading, was owed {owed} bytes, and was never dropped"));
        }
    }

    // Everyone left: the server forgot every subscription and actor.
    let f = record.final_state.as_ref().ok_or("no final state was recorded")?;
    if f.numpat != "0"
        || !f.channels.is_empty()
        || !f.shard_channels.is_empty()
        || f.sessions != "1"
        || f.channel_actors != "0"
    {
        return Err(format!("left behind after every client left: {f:?}"));
    }
    Ok(())
}
