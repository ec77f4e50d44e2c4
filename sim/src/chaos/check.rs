//! The invariants of SPEC.md §2–3, judged from the clients' record alone
//! (and, for leaks, the census Herald reports in INFO once everyone left).
//!
//! Each subscriber's events are walked connection by connection, in the
//! order the connection delivered them. A subscription is *open* from its
//! subscribe confirmation to its unsubscribe confirmation: nothing for it
//! may arrive outside that span (SPEC §2.3). For completeness a window is
//! narrower: from the confirmation's arrival to the moment the unsubscribe
//! was *sent* (or the connection ended); a publish sent after the window
//! opened and answered before it closed must have been delivered, on a
//! connection no fault touched. A connection the server closed must have
//! had a reason: a crash, CLIENT KILL, the idle timeout, or output past a
//! limit in force then.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use herald::pattern::reference as glob;
use herald::OutputLimit;

use super::{Fault, Kind, Plan, Publish, Record, SubEvent, STEADY};

/// The guarantee a record breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// One publish delivered twice to one subscription.
    Duplicate,
    /// Messages out of order on one connection: a publisher's, or a
    /// publish answered before another was sent delivered after it.
    Reorder,
    /// A pmessage before the message of the same publish.
    PatternFirst,
    /// A delivery for a subscription not open on the connection: before its
    /// subscribe confirmation or after its unsubscribe confirmation.
    OutsideSubscription,
    /// A (un)subscribe confirmation's count is not the connection's.
    ConfirmationCount,
    /// A publish missing inside a window on a healthy connection.
    Loss,
    /// PUBLISH's reply disagrees with the deliveries.
    PublishCount,
    /// A subscriber that stopped reading kept although far past the hard
    /// limit.
    SlowKept,
    /// A subscriber closed by the server with no limit or fault to justify
    /// it.
    UnjustifiedClose,
    /// Subscriptions or actors left after every client left.
    Leak,
}

/// What broke, and the evidence.
#[derive(Debug, Clone)]
pub struct Violation {
    pub broken: Broken,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.broken, self.detail)
    }
}

fn broken(broken: Broken, detail: String) -> Result<(), Violation> {
    Err(Violation { broken, detail })
}

type Key = (Kind, String);

/// A completeness window (see the module docs).
struct Window {
    key: Key,
    from: Duration,
    to: Duration,
}

/// A connection's subscriptions as its confirmations say, walked in order.
#[derive(Default)]
struct Subscriptions {
    /// Open subscriptions: when confirmed, and when an unsubscribe for it
    /// was first sent (if one was).
    open: BTreeMap<Key, (Duration, Option<Duration>)>,
    /// Unsubscribes sent and not yet confirmed, oldest first.
    leaving: BTreeMap<Key, VecDeque<Duration>>,
    windows: Vec<Window>,
}

impl Subscriptions {
    fn family_count(&self, kind: Kind) -> usize {
        let shard = kind == Kind::Shard;
        self.open.keys().filter(|(k, _)| (*k == Kind::Shard) == shard).count()
    }

    fn close(&mut self, key: &Key, at: Duration) {
        if let Some((from, sent)) = self.open.remove(key) {
            self.windows.push(Window { key: key.clone(), from, to: sent.unwrap_or(at) });
        }
    }
}

fn key_of(kind: Kind, pattern: &Option<String>, channel: &str) -> Key {
    (kind, pattern.clone().unwrap_or_else(|| channel.to_string()))
}

fn covers(kind: Kind, name: &str, p: &Publish) -> bool {
    match kind {
        Kind::Channel => !p.shard && p.channel == name,
        Kind::Shard => p.shard && p.channel == name,
        Kind::Pattern => !p.shard && glob(name.as_bytes(), p.channel.as_bytes()),
    }
}

/// The bytes a delivery of `p` for `key` takes on the wire, at most
/// (RESP2 or RESP3 framing, lengths included).
fn frame_bytes(key: &Key, p: &Publish) -> usize {
    p.size + 2 * p.channel.len() + key.1.len() + 64
}

/// Every invariant; the first broken one is the error.
pub fn check(plan: &Plan, record: &Record) -> Result<(), Violation> {
    let times = publish_times(record);
    let sent_on = publish_connections(record);
    let limits = plan.server.limits(plan.settings.limit);
    let mut delivered: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    for (i, events) in record.subscribers.iter().enumerate() {
        for (n, conn) in connections(events).into_iter().enumerate() {
            let who = format!("sub{i} connection {n}");
            let judged = Judge { plan, record, limits: &limits, times: &times, sent_on: &sent_on, sub: i, who };
            judged.connection(conn, &mut delivered)?;
        }
    }

    // PUBLISH counts: never fewer than the deliveries; exactly them once
    // the run is steady, when no connection can hold messages back (none
    // stopped reading, none left half-open by a partition).
    let settled = plan
        .subscribers
        .iter()
        .flat_map(|s| &s.faults)
        .all(|f| !matches!(f, Fault::StopsReading { .. } | Fault::Partition { .. }));
    for p in &record.publishes {
        let Some(reached) = p.reached else { continue };
        let got = delivered.get(&(p.publisher, p.seq)).copied().unwrap_or(0) as u64;
        if got > reached {
            return broken(
                Broken::PublishCount,
                format!("{}:{} reached {reached} but was delivered {got} times", p.publisher, p.seq),
            );
        }
        if settled && p.sent_at > STEADY + Duration::from_millis(100) && got != reached {
            return broken(
                Broken::PublishCount,
                format!("{}:{} in the steady phase: PUBLISH said {reached}, {got} delivered", p.publisher, p.seq),
            );
        }
    }

    // Everyone left: the server forgot every subscription and actor.
    match record.final_state.as_ref() {
        None => broken(Broken::Leak, "no final state was recorded".into()),
        Some(f) if !f.is_clean() => broken(Broken::Leak, format!("left behind after every client left: {f:?}")),
        Some(_) => Ok(()),
    }
}

/// A subscriber's events split by connection.
fn connections(events: &[SubEvent]) -> Vec<&[SubEvent]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, e) in events.iter().enumerate() {
        if matches!(e, SubEvent::Connected { .. }) && i > start {
            out.push(&events[start..i]);
            start = i;
        }
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

/// The connection each publish was sent on.
fn publish_connections(record: &Record) -> BTreeMap<(usize, u64), usize> {
    record.publishes.iter().map(|p| ((p.publisher, p.seq), p.connection)).collect()
}

/// Each answered publish's send and reply times.
fn publish_times(record: &Record) -> BTreeMap<(usize, u64), (Duration, Duration)> {
    record
        .publishes
        .iter()
        .filter(|p| p.reached.is_some())
        .map(|p| ((p.publisher, p.seq), (p.sent_at, p.replied_at)))
        .collect()
}

fn event_time(e: &SubEvent) -> Duration {
    match e {
        SubEvent::Connected { at }
        | SubEvent::Joining { at, .. }
        | SubEvent::Joined { at, .. }
        | SubEvent::Unjoined { at, .. }
        | SubEvent::Leaving { at, .. }
        | SubEvent::Delivery { at, .. }
        | SubEvent::Closed { at }
        | SubEvent::Left { at } => *at,
    }
}

/// How long a change of limit takes to reach the server, and a delivery
/// to reach a session, at most: judgments near a change allow for both.
const MARGIN: Duration = Duration::from_millis(20);

/// One subscriber connection, judged.
struct Judge<'a> {
    plan: &'a Plan,
    record: &'a Record,
    limits: &'a [(Duration, Duration, OutputLimit)],
    times: &'a BTreeMap<(usize, u64), (Duration, Duration)>,
    sent_on: &'a BTreeMap<(usize, u64), usize>,
    sub: usize,
    who: String,
}

impl Judge<'_> {
    fn connection(&self, events: &[SubEvent], delivered: &mut BTreeMap<(usize, u64), usize>) -> Result<(), Violation> {
        let who = &self.who;
        let start = events.first().map_or(Duration::ZERO, event_time);
        let mut subs = Subscriptions::default();
        let mut seen = BTreeSet::new();
        // Per publisher connection, its last message delivered here.
        let mut last: BTreeMap<(usize, usize), (u64, Kind)> = BTreeMap::new();
        // The latest send time among the publishes delivered so far: a
        // publish answered before it must not come after them.
        let mut latest_sent: Option<(Duration, usize, u64)> = None;
        let mut end = None;
        let mut closed = None;
        // The last command sent (or the connection's start), for the idle
        // timeout; and what was open when it stopped reading, if it did.
        let mut active = start;
        let ends = events.iter().find_map(|e| match e {
            SubEvent::Closed { at } | SubEvent::Left { at } => Some(*at),
            _ => None,
        });
        // A subscriber that stopped reading never reads again, on any later
        // connection either.
        let stops_at = self.plan.subscribers[self.sub]
            .stops_reading()
            .filter(|s| *s <= ends.unwrap_or(Duration::MAX))
            .map(|s| s.max(start));
        let mut open_at_stop: Option<Vec<Key>> = None;
        for e in events {
            if let (Some(stop), None) = (stops_at, &open_at_stop) {
                if event_time(e) >= stop {
                    open_at_stop = Some(subs.open.keys().cloned().collect());
                }
            }
            match e {
                SubEvent::Connected { .. } => {}
                SubEvent::Joining { at, .. } => active = *at,
                SubEvent::Leaving { kind, name, at } => {
                    active = *at;
                    let key = (*kind, name.clone());
                    subs.leaving.entry(key.clone()).or_default().push_back(*at);
                    if let Some((_, sent @ None)) = subs.open.get_mut(&key) {
                        *sent = Some(*at);
                    }
                }
                SubEvent::Joined { kind, name, count, at } => {
                    let key = (*kind, name.clone());
                    let pending = subs.leaving.get(&key).and_then(|q| q.front().copied());
                    subs.open.entry(key).or_insert((*at, pending));
                    let ours = subs.family_count(*kind);
                    if count.is_some_and(|c| c != ours) {
                        return broken(
                            Broken::ConfirmationCount,
                            format!("{who}: subscribe {name} at {at:?} said {count:?}, the connection has {ours}"),
                        );
                    }
                }
                SubEvent::Unjoined { kind, name, count, at } => {
                    let key = (*kind, name.clone());
                    if let Some(q) = subs.leaving.get_mut(&key) {
                        q.pop_front();
                    }
                    subs.close(&key, *at);
                    let ours = subs.family_count(*kind);
                    if count.is_some_and(|c| c != ours) {
                        return broken(
                            Broken::ConfirmationCount,
                            format!("{who}: unsubscribe {name} at {at:?} said {count:?}, the connection has {ours}"),
                        );
                    }
                }
                SubEvent::Delivery { kind, pattern, channel, publisher, seq, at } => {
                    let key = key_of(*kind, pattern, channel);
                    if !subs.open.contains_key(&key) {
                        return broken(
                            Broken::OutsideSubscription,
                            format!("{who}: {publisher}:{seq} for {key:?} at {at:?}, not subscribed then"),
                        );
                    }
                    if !seen.insert((key.clone(), *publisher, *seq)) {
                        return broken(Broken::Duplicate, format!("{who}: {publisher}:{seq} twice for {key:?}"));
                    }
                    let from = (*publisher, self.sent_on.get(&(*publisher, *seq)).copied().unwrap_or(0));
                    if let Some((prev_seq, prev_kind)) = last.get(&from) {
                        if seq < prev_seq {
                            return broken(
                                Broken::Reorder,
                                format!("{who}: publisher {publisher}'s {seq} after its {prev_seq}"),
                            );
                        }
                        if seq == prev_seq && *prev_kind == Kind::Pattern && *kind != Kind::Pattern {
                            return broken(
                                Broken::PatternFirst,
                                format!("{who}: message {publisher}:{seq} after its pmessage"),
                            );
                        }
                    }
                    last.insert(from, (*seq, *kind));
                    if let Some(&(sent_at, replied_at)) = self.times.get(&(*publisher, *seq)) {
                        if let Some((before, p, q)) = latest_sent.filter(|l| l.0 > replied_at) {
                            return broken(
                                Broken::Reorder,
                                format!(
                                    "{who}: {publisher}:{seq} (answered at {replied_at:?}) after {p}:{q} \
                                     (sent at {before:?}, later)"
                                ),
                            );
                        }
                        if latest_sent.is_none_or(|l| sent_at > l.0) {
                            latest_sent = Some((sent_at, *publisher, *seq));
                        }
                    }
                    *delivered.entry((*publisher, *seq)).or_default() += 1;
                }
                SubEvent::Closed { at } => {
                    end.get_or_insert(*at);
                    closed.get_or_insert((*at, subs.open.is_empty()));
                }
                SubEvent::Left { at } => {
                    end.get_or_insert(*at);
                }
            }
        }
        let end = end.unwrap_or(Duration::MAX);
        for key in subs.open.keys().cloned().collect::<Vec<_>>() {
            subs.close(&key, end);
        }

        let faults: Vec<Fault> = self.plan.subscribers[self.sub]
            .faults
            .iter()
            .copied()
            .filter(|f| f.at() >= start && f.at() <= end)
            .collect();
        // Connections open across the crash, or opened while the server
        // came back (turmoil may reset those), are the crash's.
        let crashed =
            self.plan.server.crash.is_some_and(|(at, back)| at <= end && start <= back + Duration::from_millis(50));
        let killed = |until: Duration| faults.iter().any(|f| matches!(f, Fault::Killed { at } if *at <= until));
        if let Some(stop) = stops_at {
            // A crash or CLIENT KILL may take it first.
            if crashed || killed(end) {
                return Ok(());
            }
            return self.slow_subscriber(stop, open_at_stop.unwrap_or_default(), closed.map(|c| c.0));
        }
        if let Some((at, idle)) = closed {
            let idle = idle && at >= active + self.plan.settings.idle_timeout;
            if !crashed && !killed(at) && !idle {
                self.close_justified(&faults, &subs.windows, at)?;
            }
        }

        // Nothing missing on a connection no fault touched. (herald-client
        // gives a connection up after a silence, which a hold can cause.)
        let library = self.plan.subscribers[self.sub].library;
        let touched = crashed || closed.is_some() || faults.iter().any(|f| library || f.loses());
        if touched {
            return Ok(());
        }
        for w in &subs.windows {
            for p in &self.record.publishes {
                if p.reached.is_none() || p.sent_at <= w.from || p.replied_at >= w.to || !covers(w.key.0, &w.key.1, p) {
                    continue;
                }
                if !seen.contains(&(w.key.clone(), p.publisher, p.seq)) {
                    return broken(
                        Broken::Loss,
                        format!(
                            "{who}: {:?} subscribed {:?}..{:?} missed {}:{} on {} (sent {:?}, replied {:?})",
                            w.key, w.from, w.to, p.publisher, p.seq, p.channel, p.sent_at, p.replied_at
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The limits in force at some point of `[from, to]`.
    fn limits_during(&self, from: Duration, to: Duration) -> impl Iterator<Item = OutputLimit> + '_ {
        self.limits
            .iter()
            .filter(move |(a, b, _)| *a <= to.saturating_add(MARGIN) && from < b.saturating_add(MARGIN))
            .map(|l| l.2)
    }

    /// A connection the server closed while it read: only a hold or a slow
    /// link that let its output pass the soft limit justifies it.
    fn close_justified(&self, faults: &[Fault], windows: &[Window], at: Duration) -> Result<(), Violation> {
        let soft = self.limits_during(Duration::ZERO, at).map(|l| l.soft).min().unwrap_or(0);
        for f in faults {
            let (Fault::Hold { at: held, for_ } | Fault::Slow { at: held, for_, .. }) = *f else { continue };
            let owed: usize = self
                .record
                .publishes
                .iter()
                .filter(|p| p.replied_at >= held && p.sent_at <= held + for_)
                .flat_map(|p| windows.iter().filter(move |w| covers(w.key.0, &w.key.1, p)).map(move |w| (w, p)))
                .map(|(w, p)| frame_bytes(&w.key, p))
                .sum();
            if owed > soft {
                return Ok(());
            }
        }
        broken(Broken::UnjustifiedClose, format!("{}: closed by the server at {at:?} ({faults:?})", self.who))
    }

    /// A subscriber that stopped reading at `stop` with `open`
    /// subscriptions: past the hard limit it must go (SPEC §3.1), whatever
    /// limit was in force; before the soft limit's time it may go only if
    /// owed more than the hard limit.
    fn slow_subscriber(&self, stop: Duration, open: Vec<Key>, closed: Option<Duration>) -> Result<(), Violation> {
        let who = &self.who;
        let owed = |from: Duration, until: Duration, lower: bool| -> usize {
            self.record
                .publishes
                .iter()
                .filter(|p| p.reached.is_some() && p.sent_at > from && p.sent_at <= until)
                .flat_map(|p| open.iter().filter(move |k| covers(k.0, &k.1, p)).map(move |k| (k, p)))
                .map(|(k, p)| if lower { p.size } else { frame_bytes(k, p) })
                .sum()
        };
        // What the network can hold for it beyond the server's queue:
        // turmoil's 16 segments, each at most one frame.
        let largest = self.record.publishes.iter().map(|p| p.size).max().unwrap_or(0) + 256;
        let in_network = 16 * largest;
        match closed {
            None => {
                // Each period of one limit on its own: what was sent to it
                // then was all still queued at the period's end.
                for &(a, b, limit) in self.limits {
                    let (from, until) = (stop.max(a + MARGIN), b.saturating_sub(MARGIN));
                    let owed = owed(from, until, true);
                    if from < until && owed > limit.hard + in_network {
                        return broken(
                            Broken::SlowKept,
                            format!(
                                "{who} stopped reading at {stop:?}, was owed {owed} bytes from {from:?} to {until:?} \
                                 and never dropped ({limit:?})"
                            ),
                        );
                    }
                }
            }
            Some(at) => {
                let owed = owed(stop, at, false);
                let hard = self.limits_during(stop, at).map(|l| l.hard).min().unwrap_or(0);
                let soft_for = self.limits_during(stop, at).map(|l| l.soft_for).min().unwrap_or_default();
                if at < stop + soft_for && owed <= hard {
                    return broken(
                        Broken::UnjustifiedClose,
                        format!("{who} dropped at {at:?}, before the soft limit's time, owed at most {owed} ({hard})"),
                    );
                }
            }
        }
        Ok(())
    }
}
