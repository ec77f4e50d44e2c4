//! Which channels exist, and their actors. One directory per arbiter; a
//! channel belongs to the directory its name hashes to.
//!
//! Channel actors are virtual: a channel with subscribers exists in the
//! directory's table, but has an actor only while it is published to. A
//! channel starts dormant (its subscribers kept here, compactly), is
//! activated by its first publish, and is retired again once a whole
//! sweep period passed without one. Activation and retirement travel
//! through the same mailboxes as everything else, so the channel still
//! sees one order of subscribes, publishes and unsubscribes (see
//! [`Activation`]).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;

use super::channel::{ChannelActor, Fanout, Join, Leave, Retire, Retired, Stop, Subscribers};
use super::channel_table::{ChannelTable, Left};
use super::{Census, ClientId, Fanned, Name, Postman, ReplyTo, Subscriber};
use crate::planted::{planted, Bug};
use crate::protocol::push::Kind;

type Table = ChannelTable<Activation>;

/// Where a channel's subscribers are, and so where its messages go.
///
/// - `Dormant`: here. Joins and leaves change them in place; a publish
///   starts an actor with them and forwards to it (`Active`).
/// - `Active`: in the actor; every message is forwarded to it, in order.
///   `published` says whether a publish came since the last sweep; a
///   sweep that finds it false sends `Retire` (`Retiring`).
/// - `Retiring`: the actor has, or will have, `Retire` behind everything
///   sent to it before; what comes for the channel meanwhile waits here, in
///   order, until `Retired` brings the subscribers back (`Dormant`) and it
///   is replayed. So each message reaches the subscribers in the state the
///   messages before it left them, wherever they are kept.
///
/// One per channel, for as long as it has subscribers: 24 bytes, the size
/// of `Dormant`'s subscribers (what most channels are), because an active
/// channel's address (24 bytes in actix) and a retiring one's waiting list
/// are boxed. Inline, they made every channel's entry 40 bytes; the boxes
/// cost an allocation when a channel wakes or retires, next to its actor's
/// several.
pub(crate) enum Activation {
    Dormant(Subscribers),
    Active {
        actor: Box<Addr<ChannelActor>>,
        published: bool,
    },
    // Boxed for the size above: a `Vec` inline is 24 bytes.
    #[allow(clippy::box_collection)]
    Retiring {
        actor: Box<Addr<ChannelActor>>,
        waiting: Box<Vec<Waiting>>,
    },
}

const _: () = assert!(std::mem::size_of::<Activation>() == 24);

/// A message for a retiring channel, kept until it is dormant.
pub(crate) enum Waiting {
    Join(Subscriber),
    Leave(ClientId),
    Fanout(Fanout),
}

/// Owns the name → [`Activation`] tables for its share of the channels and
/// shard channels (a shell around [`ChannelTable`]): a channel is in the
/// table from its first subscribe to its last unsubscribe.
pub(crate) struct ChannelDirectory {
    channels: Table,
    shard_channels: Table,
    census: Arc<Census>,
    /// How long an active channel may go without a publish; zero never
    /// retires one.
    idle: Duration,
    /// Channels whose last subscriber left while they were retiring: what
    /// waited for them, until their actor hands the subscribers back.
    gone_while_retiring: Vec<(Addr<ChannelActor>, Vec<Waiting>)>,
}

impl ChannelDirectory {
    pub(crate) fn new(census: Arc<Census>, idle: Duration) -> Self {
        ChannelDirectory {
            channels: Table::default(),
            shard_channels: Table::default(),
            census,
            idle,
            gone_while_retiring: Vec::new(),
        }
    }

    fn table(&mut self, kind: Kind) -> &mut Table {
        match kind {
            Kind::Shard => &mut self.shard_channels,
            _ => &mut self.channels,
        }
    }

    fn join(&mut self, kind: Kind, channel: &Name, subscriber: Subscriber) {
        self.table(kind).join(channel, || Activation::Dormant(Subscribers::None)).join(subscriber);
    }

    fn leave(&mut self, kind: Kind, channel: &Bytes, client: ClientId) {
        match self.table(kind).leave(channel) {
            Some(Left::Stays(activation)) => activation.leave(client),
            Some(Left::Gone(Activation::Active { actor, .. })) => actor.do_send(Stop),
            // Its actor still has the subscribers, and publishes wait that
            // were sent before this last leave: they are replayed when the
            // subscribers come back, though the channel is gone by then.
            Some(Left::Gone(Activation::Retiring { actor, mut waiting })) => {
                waiting.push(Waiting::Leave(client));
                self.gone_while_retiring.push((*actor, *waiting));
            }
            Some(Left::Gone(Activation::Dormant(_))) | None => {}
        }
    }

    fn publish(&mut self, fanout: Fanout) {
        let census = self.census.clone();
        match self.table(fanout.kind).get_mut(&fanout.channel) {
            Some(activation) => activation.publish(&census, fanout),
            None => {
                let _ = fanout.reply.send(Fanned::empty(fanout.payloads.len()));
            }
        }
    }

    /// Retires the active channels no publish reached since the last sweep.
    fn sweep(&mut self, me: &Recipient<Retired>) {
        for (kind, table) in [(Kind::Channel, &mut self.channels), (Kind::Shard, &mut self.shard_channels)] {
            for (channel, activation) in table.handles_mut() {
                match activation {
                    Activation::Active { published, .. } if *published => *published = false,
                    Activation::Active { actor, .. } => {
                        let actor = actor.clone();
                        let channel = Bytes::copy_from_slice(channel);
                        actor.do_send(Retire { kind, channel, to: me.clone() });
                        *activation = Activation::Retiring { actor, waiting: Box::default() };
                    }
                    _ => {}
                }
            }
        }
    }

    /// A retired actor's subscribers are back: the channel is dormant, and
    /// what waited for it is replayed in order (the table has counted its
    /// joins and leaves already). A channel whose last subscriber left
    /// meanwhile is replayed outside the table, and any actor a waiting
    /// publish woke is stopped at the end.
    fn retired(&mut self, msg: Retired) {
        let Retired { kind, channel, from, subscribers } = msg;
        let census = self.census.clone();
        let retiring_here = |a: &Activation| matches!(a, Activation::Retiring { actor, .. } if **actor == from);
        if let Some(activation) = self.table(kind).get_mut(&channel).filter(|a| retiring_here(a)) {
            let Activation::Retiring { waiting, .. } = std::mem::replace(activation, Activation::Dormant(subscribers))
            else {
                unreachable!("checked")
            };
            activation.replay(&census, *waiting);
            return;
        }
        let Some(i) = self.gone_while_retiring.iter().position(|(actor, _)| *actor == from) else { return };
        let (_, waiting) = self.gone_while_retiring.swap_remove(i);
        let mut activation = Activation::Dormant(subscribers);
        activation.replay(&census, waiting);
        if let Activation::Active { actor, .. } = activation {
            actor.do_send(Stop);
        }
    }
}

impl Activation {
    fn join(&mut self, subscriber: Subscriber) {
        match self {
            Activation::Dormant(subscribers) => subscribers.join(subscriber),
            Activation::Active { actor, .. } => actor.do_send(Join(subscriber)),
            Activation::Retiring { waiting, .. } => waiting.push(Waiting::Join(subscriber)),
        }
    }

    fn leave(&mut self, client: ClientId) {
        match self {
            Activation::Dormant(subscribers) => subscribers.leave(client),
            Activation::Active { actor, .. } => actor.do_send(Leave(client)),
            Activation::Retiring { waiting, .. } => waiting.push(Waiting::Leave(client)),
        }
    }

    /// A dormant channel is activated: an actor started with its
    /// subscribers, the publish forwarded to it.
    fn publish(&mut self, census: &Arc<Census>, fanout: Fanout) {
        match self {
            Activation::Dormant(subscribers) => {
                Census::arrive(&census.activations);
                let (census, subscribers) = (census.clone(), std::mem::take(subscribers));
                let actor = ChannelActor::create(|ctx| {
                    super::unbounded_mailbox(ctx);
                    ChannelActor::new(census, subscribers)
                });
                actor.do_send(fanout);
                *self = Activation::Active { actor: Box::new(actor), published: true };
            }
            Activation::Active { actor, published } => {
                *published = true;
                actor.do_send(fanout);
            }
            Activation::Retiring { waiting, .. } => waiting.push(Waiting::Fanout(fanout)),
        }
    }

    fn replay(&mut self, census: &Arc<Census>, mut waiting: Vec<Waiting>) {
        if planted(Bug::WakeReordered) {
            waiting.sort_by_key(|m| !matches!(m, Waiting::Fanout(_)));
        }
        for message in waiting {
            match message {
                Waiting::Join(subscriber) => self.join(subscriber),
                Waiting::Leave(client) => self.leave(client),
                Waiting::Fanout(fanout) => self.publish(census, fanout),
            }
        }
    }
}

impl Actor for ChannelDirectory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.idle.is_zero() {
            // Two sweeps: one clears `published`, the next retires. A
            // channel is retired between idle/2 and idle after its last
            // publish.
            // A task of its own: a timer in this context would be polled
            // with every message (+70 callgrind instructions a publish).
            let (me, period) = (ctx.address().downgrade(), self.idle / 2);
            actix_rt::spawn(async move {
                let mut every = tokio::time::interval(period);
                every.tick().await;
                loop {
                    every.tick().await;
                    let Some(directory) = me.upgrade() else { return };
                    directory.do_send(Sweep);
                }
            });
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Subscribe {
    pub kind: Kind,
    pub channel: Name,
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
    /// Set when the channel's actor is to post the deliveries itself
    /// (see `publishing::send`).
    pub post: Option<Arc<[Addr<Postman>]>>,
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
        self.join(msg.kind, &msg.channel, msg.subscriber);
    }
}

impl Handler<Unsubscribe> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        self.leave(msg.kind, &msg.channel, msg.client);
    }
}

impl Handler<Publish> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        // Forwarded now, so each is ordered after every Join/Leave already
        // sent to its channel: a channel created after this point was
        // subscribed to after these publishes were received.
        for Group { kind, channel, payloads, reply, post } in msg.groups {
            self.publish(Fanout { kind, channel, payloads, publisher: msg.publisher, reply, post });
        }
    }
}

/// Time to retire the channels no publish reached since the last sweep
/// (sent by the directory's own timer; tests send it by hand).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Sweep;

impl Handler<Sweep> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, _: Sweep, ctx: &mut Context<Self>) {
        self.sweep(&ctx.address().recipient());
    }
}

impl Handler<Retired> for ChannelDirectory {
    type Result = ();
    fn handle(&mut self, msg: Retired, _: &mut Context<Self>) {
        self.retired(msg);
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
        let names = self.table(msg.kind).names(msg.pattern.as_deref()).map(|n| Bytes::copy_from_slice(n)).collect();
        MessageResult(names)
    }
}

impl Handler<CountChannels> for ChannelDirectory {
    type Result = MessageResult<CountChannels>;
    fn handle(&mut self, _: CountChannels, _: &mut Context<Self>) -> Self::Result {
        MessageResult((self.channels.len(), self.shard_channels.len()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::SeqCst;

    use tokio::sync::oneshot;

    use super::*;

    fn subscribe(d: &Addr<ChannelDirectory>, client: ClientId, token: u64) {
        let subscriber = Subscriber { token, inbox: crate::broker::test_inbox(client, 0) };
        d.do_send(Subscribe { kind: Kind::Channel, channel: Name::borrowed(b"c"), subscriber });
    }

    fn unsubscribe(d: &Addr<ChannelDirectory>, client: ClientId) {
        d.do_send(Unsubscribe { kind: Kind::Channel, channel: Bytes::from_static(b"c"), client });
    }

    /// Sends one `kind` message to "c" from client 0, its mail to come back
    /// with the answer.
    fn send_one(d: &Addr<ChannelDirectory>, kind: Kind) -> oneshot::Receiver<Fanned> {
        let (reply, answer) = oneshot::channel();
        let group = Group { kind, channel: Bytes::from_static(b"c"), payloads: vec!["m".into()], reply, post: None };
        d.do_send(Publish { groups: vec![group], publisher: 0 });
        answer
    }

    /// Publishes one message to "c" from client 0; the tokens it reached.
    fn publish(d: &Addr<ChannelDirectory>) -> impl std::future::Future<Output = Vec<u64>> {
        let answer = send_one(d, Kind::Channel);
        async move {
            let fanned = answer.await.expect("answered");
            let mut tokens: Vec<u64> = fanned.mail.deliveries().map(|(_, d)| d.token).collect();
            tokens.sort();
            assert_eq!(fanned.published[0].count, tokens.len(), "counted as delivered");
            tokens
        }
    }

    /// A dormant channel has no actor; a publish activates it; two sweeps
    /// without a publish retire it; what comes while it retires reaches the
    /// subscribers it had at that moment, and reactivates it.
    #[actix_rt::test]
    async fn messages_racing_a_retirement_reach_the_subscribers_of_their_moment() {
        let census = Arc::new(Census::default());
        let d = ChannelDirectory::new(census.clone(), Duration::ZERO).start();
        subscribe(&d, 1, 10);
        d.send(Sweep).await.unwrap();
        assert_eq!((census.channels.load(SeqCst), census.activations.load(SeqCst)), (0, 0), "dormant");
        assert_eq!(publish(&d).await, [10]);
        assert_eq!((census.channels.load(SeqCst), census.activations.load(SeqCst)), (1, 1), "activated");
        d.send(Sweep).await.unwrap(); // published since the last one: kept
                                      // Queued together: the retirement, and what races it.
        d.do_send(Sweep);
        let during = publish(&d);
        subscribe(&d, 2, 20);
        unsubscribe(&d, 1);
        let after = publish(&d);
        assert_eq!(during.await, [10], "the subscribers of its moment");
        assert_eq!(after.await, [20], "2 joined, 1 left");
        assert_eq!(census.activations.load(SeqCst), 2, "retired, then woken by the waiting publish");
        d.send(Sweep).await.unwrap();
        d.send(Sweep).await.unwrap();
        // The retired actor's hand-back is in; the channel sleeps.
        d.send(Sweep).await.unwrap();
        assert_eq!(publish(&d).await, [20], "woken again with its subscriber");
        assert_eq!(census.activations.load(SeqCst), 3);
        unsubscribe(&d, 2);
        assert_eq!(publish(&d).await, Vec::<u64>::new(), "gone with its last subscriber");
    }

    /// A channel published to between sweeps keeps its actor: no sweep
    /// retires it, so no publish pays for waking it.
    #[actix_rt::test]
    async fn a_channel_published_between_sweeps_stays_active() {
        let census = Arc::new(Census::default());
        let d = ChannelDirectory::new(census.clone(), Duration::ZERO).start();
        subscribe(&d, 1, 10);
        for _ in 0..3 {
            assert_eq!(publish(&d).await, [10]);
            d.send(Sweep).await.unwrap();
        }
        assert_eq!(census.activations.load(SeqCst), 1, "woken once, never retired");
        assert_eq!(census.channels.load(SeqCst), 1);
    }

    /// The sweep timer: a channel left alone is retired between idle/2
    /// and idle after its last publish (on a paused clock, which moves
    /// only when everything is waiting).
    #[actix_rt::test]
    async fn an_idle_channel_is_retired_by_the_sweep_timer() {
        tokio::time::pause();
        let census = Arc::new(Census::default());
        let d = ChannelDirectory::new(census.clone(), Duration::from_millis(200)).start();
        subscribe(&d, 1, 10);
        assert_eq!(publish(&d).await, [10]);
        assert_eq!(census.channels.load(SeqCst), 1, "active");
        tokio::time::sleep(Duration::from_millis(90)).await;
        assert_eq!(census.channels.load(SeqCst), 1, "not before the first sweep");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(census.channels.load(SeqCst), 0, "retired by the second sweep, at 200 ms");
        assert_eq!(publish(&d).await, [10], "woken with its subscriber");
    }

    /// A shard channel and a classic channel of one name are two channels
    /// (Redis keeps them apart): a publish to one reaches only its own
    /// subscribers.
    #[actix_rt::test]
    async fn shard_and_classic_channels_of_one_name_are_apart() {
        let d = ChannelDirectory::new(Arc::new(Census::default()), Duration::ZERO).start();
        subscribe(&d, 1, 10);
        let subscriber = Subscriber { token: 20, inbox: crate::broker::test_inbox(2, 0) };
        d.do_send(Subscribe { kind: Kind::Shard, channel: Name::borrowed(b"c"), subscriber });
        assert_eq!(publish(&d).await, [10], "the classic publish reaches the classic subscriber alone");
        let answer = send_one(&d, Kind::Shard);
        let tokens: Vec<u64> = answer.await.unwrap().mail.deliveries().map(|(_, d)| d.token).collect();
        assert_eq!(tokens, [20], "the shard publish reaches the shard subscriber alone");
    }

    /// Runs `ops` (0 subscribe, 1 unsubscribe, 2 publish, 3 sweep; each
    /// by the client of the same index) against a directory; every
    /// publish must reach exactly the subscribers a model without virtual
    /// actors has at that point of the order.
    fn against_the_model(ops: &[u8], clients: &[u64]) -> Result<(), String> {
        let (ops, clients) = (ops.to_vec(), clients.to_vec());
        actix_rt::System::new().block_on(async move {
            let census = Arc::new(Census::default());
            let d = ChannelDirectory::new(census, Duration::ZERO).start();
            let mut model: std::collections::BTreeMap<ClientId, u64> = Default::default();
            let mut answers = Vec::new();
            for (i, (op, client)) in ops.iter().zip(clients).enumerate() {
                match op {
                    0 if !model.contains_key(&client) => {
                        subscribe(&d, client, i as u64);
                        model.insert(client, i as u64);
                    }
                    1 if model.contains_key(&client) => {
                        unsubscribe(&d, client);
                        model.remove(&client);
                    }
                    2 => answers.push((i, publish(&d), model.values().copied().collect::<Vec<_>>())),
                    _ => d.do_send(Sweep),
                }
            }
            for (i, answer, mut want) in answers {
                want.sort();
                let got = answer.await;
                if got != want {
                    return Err(format!("publish {i} reached {got:?}, not {want:?}"));
                }
            }
            Ok(())
        })
    }

    fn ops() -> impl proptest::strategy::Strategy<Value = (Vec<u8>, Vec<u64>)> {
        use proptest::prelude::*;
        (prop::collection::vec(0u8..4, 1..60), prop::collection::vec(1u64..4, 60))
    }

    proptest::proptest! {
        /// Any interleaving of subscribes, unsubscribes, publishes and
        /// sweeps (which retire and wake channels at arbitrary points).
        #[test]
        fn every_publish_reaches_the_subscribers_of_its_moment((ops, clients) in ops()) {
            proptest::prop_assert_eq!(against_the_model(&ops, &clients), Ok(()));
        }
    }

    /// The property above can fail: with a woken channel replaying its
    /// waiting publishes ahead of the subscribes before them, some case
    /// does (`scripts/test` runs this with `--features planted-bugs`).
    #[cfg(feature = "planted-bugs")]
    #[test]
    fn a_woken_channel_replaying_out_of_order_is_caught() {
        use crate::planted::plant;
        plant(Some(Bug::WakeReordered));
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let found = runner.run(&ops(), |(ops, clients)| {
            against_the_model(&ops, &clients).map_err(proptest::test_runner::TestCaseError::fail)
        });
        plant(None);
        let error = found.expect_err("no case failed with the replay reordered");
        eprintln!("caught: {error}");
    }
}
