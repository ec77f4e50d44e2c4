//! Pattern subscriptions, indexed by their literal prefix.

use std::collections::BTreeMap;

use actix::prelude::*;
use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};

use std::sync::Arc;

use super::{fan_out, ClientId, Fanned, Mail, Published, ReplyTo, Subscriber};
use crate::glob;
use crate::protocol::push::{Frame, Kind};

/// Every pattern with subscribers. A published channel is only glob-matched
/// against patterns whose literal prefix (the part before the first `*`, `?`
/// or `[`) is a prefix of the channel, so idle patterns under other prefixes
/// cost nothing, and a released pattern leaves no trace.
pub(crate) struct PatternIndex {
    patterns: IndexMap<Bytes, IndexMap<ClientId, Subscriber>>,
    by_prefix: BTreeMap<Bytes, IndexSet<Bytes>>,
}

impl PatternIndex {
    pub(crate) fn new() -> Self {
        PatternIndex { patterns: IndexMap::new(), by_prefix: BTreeMap::new() }
    }

    /// The patterns `channel` matches, in index order.
    fn matching(&self, channel: &[u8]) -> Vec<Bytes> {
        (0..=channel.len())
            .filter_map(|end| self.by_prefix.get(&channel[..end]))
            .flatten()
            .filter(|pattern| glob::matches(pattern, channel))
            .cloned()
            .collect()
    }

    /// Fans one publish out to the subscribers of `patterns`.
    fn fan_out(&self, patterns: &[Bytes], channel: &Bytes, payload: &Bytes, publisher: ClientId) -> Fanned {
        let mut published = Published::default();
        let mut mail = Mail::default();
        for pattern in patterns {
            let subs = &self.patterns[pattern];
            let frame = Frame::encode(Kind::Pattern, Some(pattern), channel, payload);
            let (count, own) = fan_out(&Arc::from([frame.clone()]), subs.values(), publisher, &mut mail);
            published.merge(Published::one(count, own, &frame));
        }
        Fanned { published: smallvec::smallvec![published], mail }
    }
}

impl Default for PatternIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl Actor for PatternIndex {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PSubscribe {
    pub pattern: Bytes,
    pub subscriber: Subscriber,
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PUnsubscribe {
    pub pattern: Bytes,
    pub client: ClientId,
}

/// Publishes from one client, as (channel, payload): each one's matches
/// are answered, in order, to `reply`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PatternPublish {
    pub items: Vec<(Bytes, Bytes)>,
    pub publisher: ClientId,
    pub reply: ReplyTo<Vec<Fanned>>,
}

/// The number of distinct patterns (PUBSUB NUMPAT, Redis 7 semantics).
#[derive(Message)]
#[rtype(result = "usize")]
pub(crate) struct NumPat;

impl Handler<PSubscribe> for PatternIndex {
    type Result = ();
    fn handle(&mut self, msg: PSubscribe, _: &mut Context<Self>) {
        let subs = self.patterns.entry(msg.pattern.clone()).or_insert_with(|| {
            let prefix = Bytes::from(glob::literal_prefix(&msg.pattern));
            self.by_prefix.entry(prefix).or_default().insert(msg.pattern.clone());
            IndexMap::with_capacity(1)
        });
        subs.insert(msg.subscriber.client, msg.subscriber);
    }
}

impl Handler<PUnsubscribe> for PatternIndex {
    type Result = ();
    fn handle(&mut self, msg: PUnsubscribe, _: &mut Context<Self>) {
        let Some(subs) = self.patterns.get_mut(&msg.pattern) else {
            return;
        };
        subs.swap_remove(&msg.client);
        if subs.is_empty() {
            self.patterns.swap_remove(&msg.pattern);
            let prefix = glob::literal_prefix(&msg.pattern);
            if let Some(set) = self.by_prefix.get_mut(prefix.as_slice()) {
                set.swap_remove(&msg.pattern);
                if set.is_empty() {
                    self.by_prefix.remove(prefix.as_slice());
                }
            }
        }
    }
}

impl Handler<PatternPublish> for PatternIndex {
    type Result = ();
    fn handle(&mut self, msg: PatternPublish, _: &mut Context<Self>) {
        // A pipelined run usually repeats a channel: match it once.
        let mut matched: Option<(&Bytes, Vec<Bytes>)> = None;
        let mut fanned = Vec::with_capacity(msg.items.len());
        for (channel, payload) in &msg.items {
            if matched.as_ref().is_none_or(|(last, _)| *last != channel) {
                matched = Some((channel, self.matching(channel)));
            }
            let (_, patterns) = matched.as_ref().expect("just set");
            fanned.push(self.fan_out(patterns, channel, payload, msg.publisher));
        }
        let _ = msg.reply.send(fanned);
    }
}

impl Handler<NumPat> for PatternIndex {
    type Result = usize;
    fn handle(&mut self, _: NumPat, _: &mut Context<Self>) -> usize {
        self.patterns.len()
    }
}
