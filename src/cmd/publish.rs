//! PUBLISH and SPUBLISH.

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::broker::directory::Publish;
use crate::broker::pattern_index::PatternPublish;
use crate::protocol::push::Kind;
use crate::protocol::Reply;
use crate::session::{wait_for, Flow, Session};

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

/// Placeholder `Run` for containers; never called (dispatch checks `run`).
pub fn never(_: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    Flow::Done
}

/// Channel subscribers first, then pattern subscribers, as Redis; the reply
/// waits until every delivery is in its subscriber's mailbox, which is what
/// orders this publisher's next message after this one everywhere.
fn publish(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let (channel, payload) = (args[1].clone(), args[2].clone());
    let direct = s.broker.directory(&channel).send(Publish { kind: Kind::Channel, channel: channel.clone(), payload: payload.clone() });
    let patterns = s.broker.patterns.clone();
    let count = async move {
        let direct = direct.await.unwrap_or(0);
        let matched = patterns.send(PatternPublish { channel, payload }).await.unwrap_or(0);
        direct + matched
    };
    wait_for(count, |n, s: &mut Session, _| s.reply(Reply::Int(n as i64)))
}

fn spublish(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let (channel, payload) = (args[1].clone(), args[2].clone());
    let direct = s.broker.directory(&channel).send(Publish { kind: Kind::Shard, channel, payload });
    wait_for(direct, |n, s: &mut Session, _| s.reply(Reply::Int(n.unwrap_or(0) as i64)))
}
