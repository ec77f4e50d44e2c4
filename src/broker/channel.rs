//! One actor per active channel (or shard channel): one that has
//! subscribers and was published to lately (see `directory` for the
//! activation life cycle).

use actix::prelude::*;
use bytes::Bytes;
use indexmap::IndexMap;

use std::sync::Arc;

use super::{fan_out, Census, ClientId, Fanned, Mail, Postman, Published, ReplyTo, Subscriber};
use crate::protocol::push::{Frame, Kind};

/// Holds a channel's subscribers and fans its messages out to them while
/// the channel is active. Activated by its [`super::ChannelDirectory`] on a
/// publish, with the subscribers the directory kept; retired by it when
/// idle (handing the subscribers back) or stopped when the last one
/// leaves. Every message reaches it through that directory, so subscribe,
/// publish, unsubscribe and retirement arrive in one order.
///
/// It is kept small because there is one per channel: its name and kind
/// come with each [`Fanout`] (the directory has both), and a lone
/// subscriber is held inline. Under 64 bytes, the actor's task fits
/// tokio's 512-byte task block instead of a 640-byte one.
pub(crate) struct ChannelActor {
    subscribers: Subscribers,
    census: Arc<Census>,
}

impl ChannelActor {
    pub(crate) fn new(census: Arc<Census>, subscribers: Subscribers) -> Self {
        ChannelActor { subscribers, census }
    }
}

/// A channel's subscribers, by client. Most channels have one, which needs
/// no map (the map's two allocations were 100 bytes a channel). Held by
/// the channel's actor while it is active, by its directory while not.
#[derive(Default)]
pub(crate) enum Subscribers {
    #[default]
    None,
    One(Subscriber),
    Many(Box<IndexMap<ClientId, Subscriber>>),
}

impl Subscribers {
    /// Adds `s`, replacing the client's earlier subscription if any.
    pub(crate) fn join(&mut self, s: Subscriber) {
        *self = match std::mem::replace(self, Subscribers::None) {
            Subscribers::None => Subscribers::One(s),
            Subscribers::One(one) if one.client() == s.client() => Subscribers::One(s),
            Subscribers::One(one) => {
                let mut map = IndexMap::with_capacity(2);
                map.insert(one.client(), one);
                map.insert(s.client(), s);
                Subscribers::Many(Box::new(map))
            }
            Subscribers::Many(mut map) => {
                map.insert(s.client(), s);
                Subscribers::Many(map)
            }
        };
    }

    pub(crate) fn leave(&mut self, client: ClientId) {
        match self {
            Subscribers::One(one) if one.client() == client => *self = Subscribers::None,
            Subscribers::Many(map) => {
                map.swap_remove(&client);
                if map.len() == 1 {
                    let (_, last) = map.pop().expect("one left");
                    *self = Subscribers::One(last);
                }
            }
            _ => {}
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Subscriber> {
        let (one, many) = match self {
            Subscribers::None => (None, None),
            Subscribers::One(one) => (Some(one), None),
            Subscribers::Many(map) => (None, Some(map.values())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Subscribers::None)
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
pub(crate) struct Join(pub Subscriber);

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Leave(pub ClientId);

/// Fan `payloads`, in order, out to every subscriber of `channel`; the
/// outcome goes to `reply`, and so does the mail, unless `post` names the
/// postmen to post it through before answering.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Fanout {
    pub kind: Kind,
    pub channel: Bytes,
    pub payloads: Vec<Bytes>,
    pub publisher: ClientId,
    pub reply: ReplyTo<Fanned>,
    pub post: Option<Arc<[Addr<Postman>]>>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop;

/// The directory deactivates this channel: hand the subscribers back
/// (`Retired`, to `to`) and stop. Everything sent before it has been
/// handled, so nothing is lost on the way.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Retire {
    pub kind: Kind,
    pub channel: Bytes,
    pub to: Recipient<Retired>,
}

/// A retired channel's subscribers, from the actor `from`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Retired {
    pub kind: Kind,
    pub channel: Bytes,
    pub from: Addr<ChannelActor>,
    pub subscribers: Subscribers,
}

impl Handler<Join> for ChannelActor {
    type Result = ();
    fn handle(&mut self, Join(s): Join, _: &mut Context<Self>) {
        self.subscribers.join(s);
    }
}

impl Handler<Leave> for ChannelActor {
    type Result = ();
    fn handle(&mut self, Leave(client): Leave, _: &mut Context<Self>) {
        self.subscribers.leave(client);
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
        let frames: Arc<[Frame]> =
            msg.payloads.iter().map(|p| Frame::encode(msg.kind, None, &msg.channel, p)).collect();
        let mut mail = Mail::default();
        let (count, own) = fan_out(&frames, self.subscribers.iter(), msg.publisher, &mut mail);
        let published = frames.iter().map(|frame| Published::one(count, own, frame)).collect();
        if let Some(postmen) = msg.post {
            // Before answering: a publish is queued on every route to its
            // subscribers before its publisher hears back (SPEC §2).
            std::mem::take(&mut mail).post(&postmen, 0);
        }
        // A dropped receiver is a publisher gone; its deliveries go with it.
        let _ = msg.reply.send(Fanned { published, mail });
    }
}

impl Handler<Retire> for ChannelActor {
    type Result = ();
    fn handle(&mut self, Retire { kind, channel, to }: Retire, ctx: &mut Context<Self>) {
        let subscribers = std::mem::take(&mut self.subscribers);
        to.do_send(Retired { kind, channel, from: ctx.address(), subscribers });
        ctx.stop();
    }
}

impl Handler<Stop> for ChannelActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Subscribers with distinct clients; their inbox is never used here.
    fn subscriber(client: ClientId, token: u64) -> Subscriber {
        Subscriber { token, inbox: crate::broker::test_inbox(client, 0) }
    }

    fn tokens(s: &Subscribers) -> Vec<u64> {
        let mut t: Vec<u64> = s.iter().map(|s| s.token).collect();
        t.sort();
        t
    }

    #[actix_rt::test]
    async fn one_inline_then_a_map_then_one_again() {
        let mut s = Subscribers::None;
        assert!(s.is_empty() && tokens(&s).is_empty());
        s.join(subscriber(1, 10));
        assert!(matches!(s, Subscribers::One(_)));
        // The same client again replaces its subscription, as a map would.
        s.join(subscriber(1, 11));
        assert_eq!(tokens(&s), [11]);
        assert!(matches!(s, Subscribers::One(_)), "still inline: one client needs no map");
        s.join(subscriber(2, 20));
        s.join(subscriber(3, 30));
        assert_eq!(tokens(&s), [11, 20, 30]);
        s.leave(9);
        s.leave(1);
        assert_eq!(tokens(&s), [20, 30]);
        s.leave(3);
        assert!(matches!(s, Subscribers::One(_)), "back to inline");
        assert_eq!(tokens(&s), [20]);
        s.leave(1);
        assert_eq!(tokens(&s), [20], "another client's leave changes nothing");
        s.leave(2);
        assert!(s.is_empty());
    }

    /// A dormant channel's subscribers are held by its directory, maybe a
    /// million of them: a subscription is a token and a shared pointer.
    #[test]
    fn a_subscription_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Subscriber>(), 16);
        assert_eq!(std::mem::size_of::<Subscribers>(), 24);
    }

    #[test]
    fn the_actor_stays_small_enough_for_the_smaller_task_block() {
        // ContextFut<ChannelActor> is 456 bytes with a 120-byte actor, which
        // made its tokio task 640 bytes; under 64 it is 512.
        assert!(std::mem::size_of::<ChannelActor>() <= 64, "{}", std::mem::size_of::<ChannelActor>());
    }
}
