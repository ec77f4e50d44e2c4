//! One actor per channel (or shard channel) with subscribers.

use actix::prelude::*;
use bytes::Bytes;
use indexmap::IndexMap;

use std::sync::Arc;

use super::{fan_out, Census, ClientId, Fanned, Mail, Published, ReplyTo, Subscriber};
use crate::protocol::push::{Frame, Kind};

/// Holds a channel's subscribers and fans its messages out to them. Created
/// by its [`super::ChannelDirectory`] on the first subscribe and stopped by it
/// when the last one leaves; every message reaches it through that
/// directory, so subscribe, publish and unsubscribe arrive in one order.
pub struct ChannelActor {
    kind: Kind,
    name: Bytes,
    subscribers: IndexMap<ClientId, Subscriber>,
    census: Arc<Census>,
}

impl ChannelActor {
    pub fn new(kind: Kind, name: Bytes, census: Arc<Census>) -> Self {
        // Most channels have one subscriber: room for exactly one costs 112
        // bytes, where the first insert into an empty map reserves 208.
        ChannelActor { kind, name, subscribers: IndexMap::with_capacity(1), census }
    }
}

impl Actor for ChannelActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        Census::arrive(&self.census.channels);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.census.leave(&self.census.channels);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Join(pub Subscriber);

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave(pub ClientId);

/// Fan `payloads`, in order, out to every subscriber; the outcome goes to
/// `reply`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fanout {
    pub payloads: Vec<Bytes>,
    pub publisher: ClientId,
    pub reply: ReplyTo<Fanned>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Join> for ChannelActor {
    type Result = ();
    fn handle(&mut self, Join(s): Join, _: &mut Context<Self>) {
        self.subscribers.insert(s.client, s);
    }
}

impl Handler<Leave> for ChannelActor {
    type Result = ();
    fn handle(&mut self, Leave(client): Leave, _: &mut Context<Self>) {
        self.subscribers.swap_remove(&client);
    }
}

impl Handler<Fanout> for ChannelActor {
    type Result = ();
    fn handle(&mut self, msg: Fanout, _: &mut Context<Self>) {
        let n = msg.payloads.len();
        if self.subscribers.is_empty() {
            let _ = msg.reply.send(Fanned::empty(n));
            return;
        }
        let frames: Arc<[Frame]> = msg.payloads.iter().map(|p| Frame::encode(self.kind, None, &self.name, p)).collect();
        let mut mail = Mail::default();
        let (count, own) = fan_out(&frames, self.subscribers.values(), msg.publisher, &mut mail);
        let published = frames.iter().map(|frame| Published::one(count, own, frame)).collect();
        // A dropped receiver is a publisher gone; its deliveries go with it.
        let _ = msg.reply.send(Fanned { published, mail });
    }
}

impl Handler<Stop> for ChannelActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
