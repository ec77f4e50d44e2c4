//! PUBLISH and SPUBLISH.

use actix::Context;
use bytes::Bytes;

use super::Spec;
use actix::{ActorFutureExt, Addr};

use crate::broker::directory::{Publish, PublishRun};
use crate::broker::pattern_index::PatternPublish;
use crate::broker::ChannelDirectory;
use crate::broker::Published;
use crate::protocol::push::Kind;
use crate::protocol::Reply;
use crate::session::{wait_for, Flow, Pending, Session};

pub fn specs() -> [Spec; 2] {
    [
        Spec {
            flags: &["pubsub", "loading", "stale", "fast"],
            acl: &["@pubsub", "@fast"],
            since: "2.0.0",
            summary: "Post a message to a channel",
            args: "channel message",
            ..Spec::new("publish", 3, "pubsub", publish)
        },
        Spec {
            flags: &["pubsub", "loading", "stale", "fast"],
            acl: &["@pubsub", "@fast"],
            since: "7.0.0",
            summary: "Post a message to a shard channel",
            args: "shardchannel message",
            ..Spec::new("spublish", 3, "pubsub", spublish)
        },
    ]
}

/// Channel subscribers first, then pattern subscribers, as Redis; the reply
/// waits until every delivery is in its subscriber's mailbox, which is what
/// orders this publisher's next message after this one everywhere.
fn publish(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let (channel, payload) = (args[1].clone(), args[2].clone());
    let publisher = s.id;
    let direct = s.broker.directory(&channel).send(Publish {
        kind: Kind::Channel,
        channel: channel.clone(),
        payload: payload.clone(),
        publisher,
    });
    let patterns = s.broker.any_patterns().then(|| s.broker.patterns.clone());
    let published = async move {
        let direct = direct.await.unwrap_or_default();
        let Some(patterns) = patterns else { return direct };
        let matched = patterns.send(PatternPublish { channel, payload, publisher }).await.unwrap_or_default();
        direct.merge(matched)
    };
    wait_for(published, finish)
}

/// Own deliveries first, then the count, as Redis writes them.
fn finish(published: Published, s: &mut Session, ctx: &mut Context<Session>) {
    for own in published.own {
        s.deliver(own, ctx);
    }
    s.reply(Reply::Int(published.count as i64));
}

fn spublish(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let (channel, payload) = (args[1].clone(), args[2].clone());
    let direct = s.broker.directory(&channel).send(Publish { kind: Kind::Shard, channel, payload, publisher: s.id });
    wait_for(direct, |published, s: &mut Session, ctx| finish(published.unwrap_or_default(), s, ctx))
}

/// Publishes bound for one directory: (kind, channel, payload) each.
type Stretch = (Addr<ChannelDirectory>, Vec<(Kind, Bytes, Bytes)>);

/// A run of pipelined PUBLISH/SPUBLISH (see `Session::can_batch`): one
/// message per stretch going to the same directory instead of one round
/// trip per publish. Stretches run one after another, so this client's
/// order holds across channels as for single publishes.
pub fn publish_run(s: &mut Session, run: Vec<Vec<Bytes>>) -> Pending {
    let publisher = s.id;
    s.last_cmd = if run[0][0].eq_ignore_ascii_case(b"spublish") { "spublish" } else { "publish" }.into();
    let mut stretches: Vec<Stretch> = Vec::new();
    for args in run {
        let kind = if args[0].eq_ignore_ascii_case(b"spublish") { Kind::Shard } else { Kind::Channel };
        let directory = s.broker.directory(&args[1]);
        let item = (kind, args[1].clone(), args[2].clone());
        match stretches.last_mut() {
            Some((d, items)) if d == directory => items.push(item),
            _ => stretches.push((directory.clone(), vec![item])),
        }
    }
    let all = async move {
        let mut out = Vec::new();
        for (directory, items) in stretches {
            let n = items.len();
            match directory.send(PublishRun { items, publisher }).await {
                Ok(results) => out.extend(results),
                Err(_) => out.extend((0..n).map(|_| Published::default())),
            }
        }
        out
    };
    Box::pin(actix::fut::wrap_future::<_, Session>(all).map(|results, s: &mut Session, ctx| {
        for published in results {
            finish(published, s, ctx);
        }
    }))
}
