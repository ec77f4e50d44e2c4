//! Which channels exist, and their actors. One directory per arbiter; a
//! channel belongs to the directory its name hashes to.

use actix::prelude::*;
use bytes::Bytes;
use indexmap::IndexMap;

use super::channel::{ChannelActor, Fanout, Join, Leave, Stop};
use std::sync::Arc;

use super::{Census, ClientId, Postman, Published, Subscriber};
use crate::glob;
use crate::protocol::push::Kind;

struct Entry {
    actor: Addr<ChannelActor>,
    subscribers: usize,
}

/// Owns the name → [`ChannelActor`] table for its share of the channels and
/// shard channels. Sessions subscribe each (channel, session) pair at most
/// once, so the directory's counts are exact and it can stop a channel's
/// actor as soon as the count reaches zero.
pub struct ChannelDirectory {
    channels: IndexMap<Bytes, Entry>,
    shard_channels: IndexMap<Bytes, Entry>,
    census: Arc<Census>,
    postmen: Arc<[Addr<Postman>]>,
}

impl ChannelDirectory {
    pub fn new(census: Arc<Census>, postmen: Arc<[Addr<Postman>]>) -> Self {
        ChannelDirectory { channels: IndexMap::new(), shard_channels: IndexMap::new(), census, postmen }
    }

    fn table(&mut self, kind: Kind) -> &mut IndexMap<Bytes, Entry> {
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
pub struct Subscribe {
    pub kind: Kind,
    pub channel: Bytes,
    pub subscriber: Subscriber,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub kind: Kind,
    pub channel: Bytes,
    pub client: ClientId,
}

/// Answers the number of subscribers the message was pushed to.
#[derive(Message)]
#[rtype(result = "Published")]
pub struct Publish {
    pub kind: Kind,
    pub channel: Bytes,
    pub payload: Bytes,
    pub publisher: ClientId,
}

/// Several publishes from one client, delivered strictly one after the
/// other; answers each one's outcome, in order.
#[derive(Message)]
#[rtype(result = "Vec<Published>")]
pub struct PublishRun {
    /// (kind, channel, payload).
    pub items: Vec<(Kind, Bytes, Bytes)>,
    pub publisher: ClientId,
}

#[derive(Message)]
#[rtype(result = "Vec<usize>")]
pub struct NumSub {
    pub kind: Kind,
    pub channels: Vec<Bytes>,
}

#[derive(Message)]
#[rtype(result = "Vec<Bytes>")]
pub struct ListChannels {
    pub kind: Kind,
    pub pattern: Option<Bytes>,
}

/// (channels, shard channels) this directory holds.
#[derive(Message)]
#[rtype(result = "(usize, usize)")]
pub struct CountChannels;

impl Handler<Subscribe> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        let kind = msg.kind;
        let (census, postmen) = (self.census.clone(), self.postmen.clone());
        let entry = self.table(kind).entry(msg.channel.clone()).or_insert_with(|| Entry {
            actor: ChannelActor::create(|ctx| {
                super::unbounded_mailbox(ctx);
                ChannelActor::new(kind, msg.channel, census, postmen)
            }),
            subscribers: 0,
        });
        entry.subscribers += 1;
        entry.actor.do_send(Join(msg.subscriber));
    }
}

impl Handler<Unsubscribe> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        let table = self.table(msg.kind);
        let Some(entry) = table.get_mut(&msg.channel) else {
            return;
        };
        entry.subscribers -= 1;
        if entry.subscribers == 0 {
            let entry = table.swap_remove(&msg.channel).expect("present");
            entry.actor.do_send(Stop);
        } else {
            entry.actor.do_send(Leave(msg.client));
        }
    }
}

impl Handler<Publish> for ChannelDirectory {
    type Result = ResponseFuture<Published>;
    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> Self::Result {
        match self.table(msg.kind).get(&msg.channel) {
            None => Box::pin(async { Published::default() }),
            Some(entry) => {
                // Enqueued now, so it is ordered after every Join/Leave
                // already sent; awaited so the publisher's next command
                // starts only after these pushes are in the mailboxes.
                let sent = entry.actor.send(Fanout { payload: msg.payload, publisher: msg.publisher });
                Box::pin(async move { sent.await.unwrap_or_default() })
            }
        }
    }
}

impl Handler<PublishRun> for ChannelDirectory {
    type Result = ResponseFuture<Vec<Published>>;
    fn handle(&mut self, run: PublishRun, _: &mut Context<Self>) -> Self::Result {
        // Channel actors are looked up now: a channel created after this
        // point was subscribed to after these publishes were received.
        let targets: Vec<_> = run
            .items
            .into_iter()
            .map(|(kind, channel, payload)| (self.table(kind).get(&channel).map(|e| e.actor.clone()), payload))
            .collect();
        let publisher = run.publisher;
        Box::pin(async move {
            let mut out = Vec::with_capacity(targets.len());
            for (actor, payload) in targets {
                // Each waits for the previous one's pushes: two channel
                // actors on this arbiter need not run in the order sent.
                let published = match actor {
                    Some(actor) => actor.send(Fanout { payload, publisher }).await.unwrap_or_default(),
                    None => Published::default(),
                };
                out.push(published);
            }
            out
        })
    }
}

impl Handler<NumSub> for ChannelDirectory {
    type Result = MessageResult<NumSub>;
    fn handle(&mut self, msg: NumSub, _: &mut Context<Self>) -> Self::Result {
        let table = self.table(msg.kind);
        MessageResult(msg.channels.iter().map(|c| table.get(c).map_or(0, |e| e.subscribers)).collect())
    }
}

impl Handler<ListChannels> for ChannelDirectory {
    type Result = MessageResult<ListChannels>;
    fn handle(&mut self, msg: ListChannels, _: &mut Context<Self>) -> Self::Result {
        let names = self
            .table(msg.kind)
            .keys()
            .filter(|name| msg.pattern.as_ref().is_none_or(|p| glob::matches(p, name)))
            .cloned()
            .collect();
        MessageResult(names)
    }
}

impl Handler<CountChannels> for ChannelDirectory {
    type Result = MessageResult<CountChannels>;
    fn handle(&mut self, _: CountChannels, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.channels.len(), self.shard_channels.len()))
    }
}
