//! The broker: where messages go. Channel actors, their directories, the
//! pattern index and the postmen, and the deliveries they pass on.
//!
//! A PUBLISH goes Session → [`ChannelDirectory`] (the one owning the
//! channel's name) → [`ChannelActor`], and at the same time Session →
//! [`PatternIndex`]; both answer the session with their deliveries, which
//! the session posts, in order, to each arbiter's [`Postman`] → each
//! subscriber's Session. A run that is one fan-out is posted by the
//! channel's actor itself (`publishing::send`).

pub(crate) mod channel;
mod channel_table;
pub(crate) mod directory;
pub(crate) mod pattern_index;
pub(crate) mod pattern_set;
mod placement;
pub(crate) mod postman;
pub(crate) mod publishing;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;

pub(crate) use directory::ChannelDirectory;
pub(crate) use pattern_index::PatternIndex;
pub use placement::{HostArbiter, Placement};
pub(crate) use postman::{Mail, Postman};

use smallvec::SmallVec;

use crate::planted::{planted, Bug};
use crate::protocol::push::Frame;

/// A client connection's id, as CLIENT ID reports it.
pub(crate) type ClientId = u64;

/// A channel (or pattern) name as the tables that live as long as a
/// subscription keep it: a channel's directory, and each subscribed
/// session. A name of up to 23 bytes (most are: `user:123456:events`) is
/// held inline in the 24-byte value, with no allocation; a longer one is
/// one reference-counted allocation that the session and the directory
/// share. `Bytes` took 32 bytes in each table plus two allocations (the
/// copy, and the shared header its first clone made): 80 bytes more per
/// subscription at 1M (BENCHMARKS.md, session 9).
pub(crate) type Name = hipstr::HipByt<'static>;

/// Messages delivered to one subscription of a session: one frame, or a
/// run of consecutive publishes to the same channel (shared by every
/// subscriber).
#[derive(Clone, Debug)]
pub(crate) struct Deliver {
    /// The subscription it was sent for; a session drops deliveries for
    /// subscriptions it has since left.
    pub token: u64,
    pub frames: Arc<[Frame]>,
}

/// Everything one posting has for one session, in order: a pipelined run
/// of publishes costs each session one mailbox message, not one per
/// message.
#[derive(Message, Debug, Default)]
#[rtype(result = "()")]
pub(crate) struct Deliveries(pub SmallVec<[Deliver; 1]>);

/// A session as its subscriptions name it: where its deliveries go, its
/// id, and the arbiter it runs on (whose postman delivers to it). One per
/// session, shared by all its subscriptions: a subscription is then a
/// token and a pointer, 16 bytes, in the table of a channel that may hold
/// a million (and cloning an actix `Recipient` would allocate and touch a
/// contended counter, once per delivery).
pub(crate) struct SessionInbox {
    pub recipient: Recipient<Deliveries>,
    pub client: ClientId,
    pub slot: usize,
}

pub(crate) type Inbox = Arc<SessionInbox>;

/// For tests: the inbox of a session stand-in that drops what it is given.
#[cfg(test)]
pub(crate) fn test_inbox(client: ClientId, slot: usize) -> Inbox {
    struct Sink;
    impl Actor for Sink {
        type Context = actix::Context<Self>;
    }
    impl actix::Handler<Deliveries> for Sink {
        type Result = ();
        fn handle(&mut self, _: Deliveries, _: &mut actix::Context<Self>) {}
    }
    Arc::new(SessionInbox { recipient: Sink.start().recipient(), client, slot })
}

/// A session's subscription to one channel or pattern.
#[derive(Clone)]
pub(crate) struct Subscriber {
    pub token: u64,
    pub inbox: Inbox,
}

impl Subscriber {
    pub(crate) fn client(&self) -> ClientId {
        self.inbox.client
    }
}

/// The outcome of a publish: how many subscriptions it reached, and the
/// deliveries meant for the publisher itself.
///
/// Redis writes a client's own messages before its PUBLISH reply. The
/// publishing session is holding for that reply and would only see its
/// mailbox afterwards, so its own deliveries travel back with the count.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub count: usize,
    pub own: Vec<Deliver>,
}

impl Published {
    /// A publish of `frame` that reached `count` subscriptions, the
    /// publisher's own among them if `own` names it.
    pub(crate) fn one(count: usize, own: Option<u64>, frame: &Frame) -> Published {
        let own = own.map(|token| Deliver { token, frames: Arc::from([frame.clone()]) }).into_iter().collect();
        Published { count, own }
    }

    pub(crate) fn merge(&mut self, other: Published) {
        self.count += other.count;
        self.own.extend(other.own);
    }
}

/// What fanning out some publishes produced: each publish's outcome, and
/// the deliveries to the other sessions, not yet posted.
///
/// The publishing session posts them itself, in the order it received the
/// publishes, so fan-outs to different channels can run at the same time
/// and still reach every postman in the publisher's order. (A run's lone
/// fan-out posts its own and answers with no mail: `publishing::send`.)
pub(crate) struct Fanned {
    pub published: SmallVec<[Published; 1]>,
    pub mail: Mail,
}

impl Fanned {
    /// `n` publishes that reached no one.
    pub(crate) fn empty(n: usize) -> Fanned {
        Fanned { published: (0..n).map(|_| Published::default()).collect(), mail: Mail::default() }
    }
}

/// Where a fan-out's outcome goes: straight back to the publishing session.
pub(crate) type ReplyTo<T> = tokio::sync::oneshot::Sender<T>;

/// Adds `frames` for each subscriber but the publisher to `mail`. Returns
/// how many subscribers there are (a session on its way out is counted
/// until its unsubscribe arrives, as in Redis) and the publisher's own
/// subscription token, if it is one of them: its copies travel back with
/// the reply (see [`Published`]).
pub(crate) fn fan_out<'a>(
    frames: &Arc<[Frame]>,
    subscribers: impl Iterator<Item = &'a Subscriber>,
    publisher: ClientId,
    mail: &mut Mail,
) -> (usize, Option<u64>) {
    let (mut count, mut own) = (0, None);
    for s in subscribers {
        count += 1;
        if s.client() == publisher {
            own = Some(s.token);
            continue;
        }
        let deliver = Deliver { token: s.token, frames: frames.clone() };
        // Planted bugs (none in a normal build) hit one body length in 16.
        let odd = || frames[0].body.len().is_multiple_of(16);
        if planted(Bug::Duplicate) && odd() {
            mail.add(s.inbox.slot, s.inbox.clone(), deliver.clone());
        }
        if planted(Bug::Loss) && odd() {
            continue;
        }
        mail.add(s.inbox.slot, s.inbox.clone(), deliver);
    }
    (count, own)
}

/// Lets `Addr::send` enqueue at once, whatever the queue length.
///
/// With a capacity, actix parks a sender whose target is "full" and holds its
/// next message back until polled, which would let a later `do_send` from
/// the same actor overtake it. Herald's ordering arguments rely on every
/// message being queued when it is sent; the queues stay short because each
/// session has at most one request in flight (see ARCHITECTURE.md).
pub(crate) fn unbounded_mailbox<A: Actor<Context = Context<A>>>(ctx: &mut Context<A>) {
    ctx.set_mailbox_capacity(0);
}

/// How many session and channel actors are alive: INFO reports it and the
/// simulator checks that nothing outlives its clients. Written only by the
/// actors' own `started`/`stopped`.
#[derive(Debug, Default)]
pub(crate) struct Census {
    pub sessions: AtomicUsize,
    /// Channel actors alive (active channels; a dormant one has none).
    pub channels: AtomicUsize,
    /// Channel actors started since start-up: activations of dormant
    /// channels (a running total, as INFO's counters).
    pub activations: AtomicUsize,
    /// Pattern subscriptions, counted by the sessions: raised before a
    /// PSUBSCRIBE is confirmed, lowered after a PUNSUBSCRIBE is sent. While
    /// it is zero no pattern can match, and PUBLISH skips the pattern index.
    pub patterns: AtomicUsize,
    /// Connections' writer tasks still running (they outlive their session
    /// while they flush what it queued).
    pub writers: AtomicUsize,
    /// Messages published, deliveries queued for them, subscribers dropped
    /// for their output limit (INFO stats, Prometheus).
    pub published: AtomicUsize,
    pub delivered: AtomicUsize,
    pub dropped_slow: AtomicUsize,
    /// Output queued to clients and not yet written, all sessions together.
    pub queued_bytes: AtomicUsize,
    /// Sessions in MONITOR mode: while zero, nobody formats monitor lines.
    pub monitors: AtomicUsize,
    /// Clients closed for `maxmemory-clients`.
    pub evicted_clients: AtomicUsize,
    /// An eviction round is under way (one at a time).
    pub evicting: std::sync::atomic::AtomicBool,
    /// Bytes and calls on client sockets (the decoders and writers count).
    pub traffic: Arc<crate::stats::Traffic>,
    /// Signalled whenever something leaves.
    pub left: tokio::sync::Notify,
}

impl Census {
    pub(crate) fn arrive(counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self, counter: &AtomicUsize) {
        counter.fetch_sub(1, Ordering::Relaxed);
        self.left.notify_waiters();
    }

    /// CONFIG RESETSTAT: the running totals back to zero (the live counts
    /// — sessions, channels, patterns, queued bytes — stay).
    pub(crate) fn reset_counters(&self) {
        for counter in [&self.published, &self.delivered, &self.dropped_slow, &self.evicted_clients, &self.activations]
        {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// Waits until every session has ended and flushed its output.
    pub(crate) async fn all_gone(&self) {
        loop {
            let signal = self.left.notified();
            if self.sessions.load(Ordering::Relaxed) == 0 && self.writers.load(Ordering::Relaxed) == 0 {
                return;
            }
            signal.await;
        }
    }
}
