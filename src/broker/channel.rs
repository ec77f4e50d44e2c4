//! One actor per channel (or shard channel) with subscribers.

use actix::prelude::*;
use bytes::Bytes;
use indexmap::IndexMap;

use super::{fan_out, ClientId, Subscriber};
use crate::protocol::push::{Frame, Kind};

/// Holds a channel's subscribers and fans its messages out to them. Created
/// by its [`super::ChannelDirectory`] on the first subscribe and stopped by it
/// when the last one leaves; every message reaches it through that
/// directory, so subscribe, publish and unsubscribe arrive in one order.
pub struct ChannelActor {
    kind: Kind,
    name: Bytes,
    subscribers: IndexMap<ClientId, Subscriber>,
}

impl ChannelActor {
    pub fn new(kind: Kind, name: Bytes) -> Self {
        ChannelActor { kind, name, subscribers: IndexMap::new() }
    }
}

impl Actor for ChannelActor {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Join(pub Subscriber);

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave(pub ClientId);

/// Deliver `payload` to every subscriber; answers how many it was pushed to
/// once every push is in its subscriber's mailbox.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Fanout(pub Bytes);

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
        self.subscribers.shift_remove(&client);
    }
}

impl Handler<Fanout> for ChannelActor {
    type Result = usize;
    fn handle(&mut self, Fanout(payload): Fanout, _: &mut Context<Self>) -> usize {
        if self.subscribers.is_empty() {
            return 0;
        }
        let frame = Frame::encode(self.kind, None, &self.name, &payload);
        fan_out(&frame, self.subscribers.values())
    }
}

impl Handler<Stop> for ChannelActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
