//! PUBLISH and SPUBLISH.

use std::sync::atomic::Ordering;

use actix::{ActorFutureExt, Context};
use bytes::Bytes;

use super::{Channels, Spec};
use crate::broker::publishing::{self, plan};
use crate::broker::Published;
use crate::mesh::Forward;
use crate::planted::{planted, Bug};
use crate::protocol::push::Kind;
use crate::protocol::Reply;
use crate::session::{Flow, Pending, Session};

pub(crate) fn specs() -> [Spec; 2] {
    [
        Spec {
            since: "2.0.0",
            summary: "Post a message to a channel",
            args: "channel message",
            may_replicate: true,
            channels: Channels::First,
            publishes: Some(Kind::Channel),
            joins_runs: true,
            ..Spec::new("publish", 3, "pubsub", publish)
        },
        Spec {
            since: "7.0.0",
            summary: "Post a message to a shard channel",
            args: "shardchannel message",
            may_replicate: true,
            channels: Channels::First,
            publishes: Some(Kind::Shard),
            joins_runs: true,
            ..Spec::new("spublish", 3, "pubsub", publish)
        },
    ]
}

/// One command of a pipelined run, with its table entry (found once, by
/// the loop that gathered the run).
pub(crate) type Member = (&'static Spec, Vec<Bytes>);

/// PUBLISH or SPUBLISH on its own (inside EXEC, or not joining a run): a
/// run of one (see [`publish_run`]).
fn publish(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let spec = super::run_member(&args[0]).expect("a publish");
    Flow::Wait(publish_run(s, &[(spec, args.to_vec())], tokio::time::Instant::now()))
}

/// Runs PUBLISH/SPUBLISH commands (a pipelined run of them, see
/// `Spec::joins_runs`, or just one) and writes their replies, in the
/// steps of `broker::publishing`: the run is planned and sent off, and
/// once every fan-out has answered, the session posts the deliveries in
/// the order the publishes came in.
///
/// Every publish is sent off at once: each channel's directory forwards it
/// to the channel's actor, and the pattern index gets the channels too. The
/// fan-outs run wherever their actors live, in any order; each answers
/// this session with its deliveries. Posting from one place, in order, is
/// what keeps this client's messages in order everywhere. (A run that is
/// one fan-out is posted by its actor before it answers: the hop back
/// here is then off the message's path.)
///
/// The run is borrowed (its arguments are shared, not copied): the session
/// keeps it for SLOWLOG. `started` is when the run was taken up (the
/// session's command clock).
pub(crate) fn publish_run(s: &mut Session, run: &[Member], started: tokio::time::Instant) -> Pending {
    s.last_cmd = run[0].0.name.into();
    let hub = &s.hub;
    let items = || run.iter().map(|(spec, args)| (spec.publishes.expect("a run holds publishes"), &args[1], &args[2]));
    let plan = plan(items(), hub.directories().len(), |c| hub.directory_index(c), hub.any_patterns());
    let reorder = planted(Bug::ReorderAcrossArbiters) && plan.by_directory.iter().filter(|g| !g.is_empty()).count() > 1;
    if let Some(mesh) = hub.mesh().filter(|_| hub.peers_want_anything()) {
        // Classic publishes also go to the nodes that want them (a shard
        // channel is served by its slot's node alone).
        let classic: Vec<_> =
            items().filter(|(k, ..)| *k == Kind::Channel).map(|(_, c, p)| (c.clone(), p.clone())).collect();
        if !classic.is_empty() {
            mesh.do_send(Forward(classic));
        }
    }
    let all = publishing::send(plan, hub.directories(), &hub.patterns, &hub.postmen, s.id);
    Box::pin(actix::fut::wrap_future::<_, Session>(all).map(move |(mut mail, results), s: &mut Session, ctx| {
        s.latency_spike("fan-out", started);
        if reorder {
            mail.reverse();
        }
        mail.post(&s.hub.postmen, s.slot);
        let delivered: usize = results.iter().map(|p| p.count).sum();
        let census = &s.hub.census;
        census.published.fetch_add(results.len(), Ordering::Relaxed);
        census.delivered.fetch_add(delivered, Ordering::Relaxed);
        crate::metrics::published_since(started);
        for published in results {
            finish(published, s, ctx);
        }
    }))
}

/// Own deliveries first, then the count, as Redis writes them.
fn finish(published: Published, s: &mut Session, ctx: &mut Context<Session>) {
    for own in published.own {
        s.deliver(own, ctx);
    }
    let mut count = published.count;
    if planted(Bug::PublishCount) && count >= 2 {
        count -= 1;
    }
    s.reply(Reply::Int(count as i64));
}
