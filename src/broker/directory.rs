//! Which channels exist, and their actors. One directory per arbiter; a
//! channel belongs to the directory its name hashes to.

use actix::prelude::*;
use bytes::Bytes;

use super::channel::{ChannelActor, Fanout, Join, Leave, Stop};
use super::channel_table::{ChannelTable, Left};
use std::sync::Arc;

use super::{Census, ClientId, Fanned, ReplyTo, Subscriber};
use crate::protocol::push::Kind;

type Table = ChannelTable<Addr<ChannelActor>>;

/// Owns the name → [`ChannelActor`] tables for its share of the channels
/// and shard channels (a shell around [`ChannelTable`]): it starts a
/// channel's actor on the first subscribe and stops it as soon as the last
/// subscriber leaves.
pub(crate) struct ChannelDirectory {
    channels: Table,
    shard_channels: Table,
    census: Arc<Census>,
}

impl ChannelDirectory {
    pub(crate) fn new(census: Arc<Census>) -> Self {
        ChannelDirectory { channels: Table::default(), shard_channels: Table::default(), census }
    }

    fn table(&mut self, kind: Kind) -> &mut Table {
        match kind {
            Kind::Shard => &mut self.shard_channels,
            _ => &mut self.channels,
        }
    }
}

impl Actor for ChannelDirectory {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Subscribe {
    pub kind: Kind,
    pub channel: Bytes,
    pub subscriber: Subscriber,
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unsubscribe {
    pub kind: Kind,
    pub channel: Bytes,
    pub client: ClientId,
}

/// Consecutive publishes from one client to one channel.
pub(crate) struct Group {
    pub kind: Kind,
    pub channel: Bytes,
    pub payloads: Vec<Bytes>,
    pub reply: ReplyTo<Fanned>,
}

/// Publishes from one client, each group forwarded to its channel's actor
/// (which answers the client directly) or answered here if the channel has
/// no subscribers.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Publish {
    pub groups: Vec<Group>,
    pub publisher: ClientId,
}

#[derive(Message)]
#[rtype(result = "Vec<usize>")]
pub(crate) struct NumSub {
    pub kind: Kind,
    pub channels: Vec<Bytes>,
}

#[derive(Message)]
#[rtype(result = "Vec<Bytes>")]
pub(crate) struct ListChannels {
    pub kind: Kind,
    pub pattern: Option<Bytes>,
}

/// (channels, shard channels) this directory holds.
#[derive(Message)]
#[rtype(result = "(usize, usize)")]
pub(crate) struct CountChannels;

impl Handler<Subscribe> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        let census = self.census.clone();
        let actor = self.table(msg.kind).join(&msg.channel, || {
            ChannelActor::create(|ctx| {
                super::unbounded_mailbox(ctx);
                ChannelActor::new(census)
            })
        });
        actor.do_send(Join(msg.subscriber));
    }
}

impl Handler<Unsubscribe> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        match self.table(msg.kind).leave(&msg.channel) {
            Some(Left::Gone(actor)) => actor.do_send(Stop),
            Some(Left::Stays(actor)) => actor.do_send(Leave(msg.client)),
            None => {}
        }
    }
}

impl Handler<Publish> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        // Forwarded now, so each is ordered after every Join/Leave already
        // sent to its channel: a channel created after this point was
        // subscribed to after these publishes were received.
        for group in msg.groups {
            match self.table(group.kind).get(&group.channel) {
                Some(actor) => {
                    let Group { kind, channel, payloads, reply } = group;
                    actor.do_send(Fanout { kind, channel, payloads, publisher: msg.publisher, reply })
                }
                None => {
                    let _ = group.reply.send(Fanned::empty(group.payloads.len()));
                }
            }
        }
    }
}

impl Handler<NumSub> for ChannelDirectory {
    type Result = MessageResult<NumSub>;
    fn handle(&mut self, msg: NumSub, _: &mut Context<Self>) -> Self::Result {
        let table = self.table(msg.kind);
        MessageResult(msg.channels.iter().map(|c| table.count(c)).collect())
    }
}

impl Handler<ListChannels> for ChannelDirectory {
    type Result = MessageResult<ListChannels>;
    fn handle(&mut self, msg: ListChannels, _: &mut Context<Self>) -> Self::Result {
        let names = self.table(msg.kind).names(msg.pattern.as_deref()).cloned().collect();
        MessageResult(names)
    }
}

impl Handler<CountChannels> for ChannelDirectory {
    type Result = MessageResult<CountChannels>;
    fn handle(&mut self, _: CountChannels, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.channels.len(), self.shard_channels.len()))
    }
}
