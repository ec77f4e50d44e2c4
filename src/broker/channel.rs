//! One actor per channel (or shard channel) with subscribers.

use actix::prelude::*;
use bytes::Bytes;
use indexmap::IndexMap;

use std::sync::Arc;

use super::postman::Mail;
use super::{fan_out, Census, ClientId, Postman, Published, Subscriber};
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
    postmen: Arc<[Addr<Postman>]>,
}

impl ChannelActor {
    pub fn new(kind: Kind, name: Bytes, census: Arc<Census>, postmen: Arc<[Addr<Postman>]>) -> Self {
        ChannelActor { kind, name, subscribers: IndexMap::new(), census, postmen }
    }
}

impl Actor for ChannelActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        Census::arrive(&self.census.channels);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        Census::leave(&self.census.channels);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Join(pub Subscriber);

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave(pub ClientId);

/// Deliver `payload` to every subscriber; answers once every push is in its
/// subscriber's mailbox.
#[derive(Message)]
#[rtype(result = "Published")]
pub struct Fanout {
    pub payload: Bytes,
    pub publisher: ClientId,
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
        self.subscribers.shift_remove(&client);
    }
}

impl Handler<Fanout> for ChannelActor {
    type Result = Published;
    fn handle(&mut self, msg: Fanout, _: &mut Context<Self>) -> Published {
        let mut out = Published::default();
        if !self.subscribers.is_empty() {
            let frame = Frame::encode(self.kind, None, &self.name, &msg.payload);
            let mut mail = Mail::new(self.postmen.len());
            fan_out(&frame, self.subscribers.values(), msg.publisher, &mut out, &mut mail);
            mail.post(&self.postmen);
        }
        out
    }
}

impl Handler<Stop> for ChannelActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
