//! The actor that owns the pattern subscriptions: a shell around
//! [`PatternSet`] that answers a publishing session with the pmessages to
//! post.

use actix::prelude::*;
use bytes::Bytes;

use std::sync::Arc;

use super::pattern_set::{Matched, PatternSet};
use super::{fan_out, ClientId, Fanned, Mail, Name, Published, ReplyTo, Subscriber};
use crate::protocol::push::{Frame, Kind};

/// Every pattern subscription, in one actor (patterns are few and matching
/// is cheap: see [`PatternSet`]).
#[derive(Default)]
pub(crate) struct PatternIndex {
    set: PatternSet<Subscriber>,
}

impl PatternIndex {
    /// Fans one publish out to the subscribers of `patterns`: one
    /// `pmessage` frame per pattern, shared by its subscribers.
    fn fan_out(
        patterns: &[(&Name, Matched<'_, Subscriber>)],
        channel: &Bytes,
        payload: &Bytes,
        publisher: ClientId,
    ) -> Fanned {
        let mut published = Published::default();
        let mut mail = Mail::default();
        for (pattern, matched) in patterns {
            let frame = Frame::encode(Kind::Pattern, Some(pattern.as_slice()), channel, payload);
            let (count, own) = fan_out(&Arc::from([frame.clone()]), matched.subscribers(), publisher, &mut mail);
            published.merge(Published::one(count, own, &frame));
        }
        Fanned { published: smallvec::smallvec![published], mail }
    }
}

impl Actor for PatternIndex {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PSubscribe {
    pub pattern: Name,
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
        self.set.insert(msg.pattern, msg.subscriber);
    }
}

impl Handler<PUnsubscribe> for PatternIndex {
    type Result = ();
    fn handle(&mut self, msg: PUnsubscribe, _: &mut Context<Self>) {
        self.set.remove(&msg.pattern, msg.client);
    }
}

impl Handler<PatternPublish> for PatternIndex {
    type Result = ();
    fn handle(&mut self, msg: PatternPublish, _: &mut Context<Self>) {
        // A pipelined run usually repeats a channel: match it once.
        let mut matched: Option<(&Bytes, Vec<_>)> = None;
        let mut fanned = Vec::with_capacity(msg.items.len());
        for (channel, payload) in &msg.items {
            if matched.as_ref().is_none_or(|(last, _)| *last != channel) {
                matched = Some((channel, self.set.matching(channel)));
            }
            let (_, patterns) = matched.as_ref().expect("just set");
            fanned.push(Self::fan_out(patterns, channel, payload, msg.publisher));
        }
        let _ = msg.reply.send(fanned);
    }
}

impl Handler<NumPat> for PatternIndex {
    type Result = usize;
    fn handle(&mut self, _: NumPat, _: &mut Context<Self>) -> usize {
        self.set.len()
    }
}
