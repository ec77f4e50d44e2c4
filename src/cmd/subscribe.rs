//! (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE.
//!
//! Subscribing does not wait: the registration is queued at the directory
//! (or pattern index) before the confirmation is written, and every later
//! PUBLISH of any client reaches that actor after it, so whatever is
//! published once the client has seen the confirmation is delivered.
//! Unsubscribing may wait for the session's postman (see [`leave`]).

use actix::Context;
use bytes::Bytes;

use super::{Channels, Spec};
use crate::broker::directory::{Subscribe, Unsubscribe};
use crate::broker::postman::Behind;
use std::sync::Arc;

use crate::broker::{Inbox, Name, SessionInbox, Subscriber};
use crate::mesh::{PeersTook, Want};
use crate::planted::{planted, Bug};
use crate::protocol::push::Kind;
use crate::protocol::Reply;
use crate::session::{Flow, Session};

pub(crate) fn specs() -> [Spec; 6] {
    let spec = |name, arity, since, summary, args, channels, run| Spec {
        since,
        summary,
        args,
        in_pubsub_context: true,
        channels,
        ..Spec::new(name, arity, "pubsub", run)
    };
    let shard = |spec: Spec| Spec { shard: true, ..spec };
    [
        spec(
            "subscribe",
            -2,
            "2.0.0",
            "Listen for messages published to the given channels",
            "channel...",
            Channels::All,
            subscribe,
        ),
        spec(
            "unsubscribe",
            -1,
            "2.0.0",
            "Stop listening for messages posted to the given channels",
            "[channel...]",
            Channels::Unchecked,
            unsubscribe,
        ),
        spec(
            "psubscribe",
            -2,
            "2.0.0",
            "Listen for messages published to channels matching the given patterns",
            "pattern...",
            Channels::AllPatterns,
            psubscribe,
        ),
        spec(
            "punsubscribe",
            -1,
            "2.0.0",
            "Stop listening for messages posted to channels matching the given patterns",
            "[pattern...]",
            Channels::Unchecked,
            punsubscribe,
        ),
        shard(spec(
            "ssubscribe",
            -2,
            "7.0.0",
            "Listen for messages published to the given shard channels",
            "shardchannel...",
            Channels::All,
            ssubscribe,
        )),
        shard(spec(
            "sunsubscribe",
            -1,
            "7.0.0",
            "Stop listening for messages posted to the given shard channels",
            "[shardchannel...]",
            Channels::Unchecked,
            sunsubscribe,
        )),
    ]
}

fn confirmation(kind: &'static str, name: Option<Bytes>, count: usize) -> Reply {
    let name = name.map_or(Reply::Nil, Reply::Bulk);
    Reply::Push(vec![Reply::Bulk(Bytes::from_static(kind.as_bytes())), name, Reply::Int(count as i64)])
}

fn count_for(s: &Session, kind: Kind) -> usize {
    match kind {
        Kind::Shard => s.subs.count(Kind::Shard),
        _ => s.subs.classic(),
    }
}

fn verb(kind: Kind, subscribe: bool) -> &'static str {
    match (kind, subscribe) {
        (Kind::Channel, true) => "subscribe",
        (Kind::Channel, false) => "unsubscribe",
        (Kind::Pattern, true) => "psubscribe",
        (Kind::Pattern, false) => "punsubscribe",
        (Kind::Shard, true) => "ssubscribe",
        (Kind::Shard, false) => "sunsubscribe",
    }
}

/// Subscribes to each name in order, confirming each.
///
/// In cluster mode, channels and patterns no subscription of this node
/// wanted before are announced to the peers first (`mesh::Want`), and the
/// confirmations wait until the peers that are up have taken them, so a
/// publish made on any node after the client saw a confirmation reaches
/// it (SPEC §9). The subscriptions are registered at once, but their
/// deliveries are dropped until confirmed: nothing arrives ahead of its
/// confirmation.
pub(crate) fn join(s: &mut Session, kind: Kind, names: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    let inbox = ctx_inbox(s, ctx);
    let mut pending = Vec::new();
    let mut confirmations = Vec::with_capacity(names.len());
    for name in names {
        // What lasts as long as the subscription is a copy (a `Name`, or
        // a `Bytes` of its own for the pattern index): a slice of the read
        // buffer would keep the whole buffer alive. The confirmation is
        // gone soon, and may share it; the peers' announcement is kept by
        // the Mesh, so in cluster mode it is a copy too.
        let key = Name::from(&name[..]);
        if let Some(token) = s.subs.add_pending(kind, &key) {
            let subscriber = Subscriber { token, inbox: inbox.clone() };
            match kind {
                Kind::Pattern => s.hub.psubscribe(key.clone(), subscriber),
                _ => s.hub.directory(name).do_send(Subscribe { kind, channel: key, subscriber }),
            }
            let announced = if s.hub.mesh().is_some() { Bytes::copy_from_slice(name) } else { name.clone() };
            pending.push((token, announced));
        }
        let count = count_for(s, kind);
        confirmations.push(confirmation(verb(kind, true), Some(name.clone()), count));
    }
    let (tokens, names): (Vec<u64>, Vec<Bytes>) = pending.into_iter().unzip();
    s.joining = Some((tokens, confirmations));
    let cluster = s.hub.mesh().filter(|_| !planted(Bug::ConfirmBeforePeers));
    let (Some(mesh), Some(interest)) = (cluster, crate::hub::mesh_interest(kind)) else {
        if let (Some(mesh), Some(interest)) = (s.hub.mesh(), crate::hub::mesh_interest(kind)) {
            // The planted bug: announced, but confirmed at once.
            mesh.do_send(Want { kind: interest, names, reply: tokio::sync::oneshot::channel().0 });
        }
        peers_took(s);
        return Flow::Done;
    };
    // Held, not waiting: the mailbox keeps being served (deliveries for
    // other subscriptions are written, output limits enforced) until the
    // peers have the names.
    let (reply, answered) = tokio::sync::oneshot::channel();
    mesh.do_send(Want { kind: interest, names, reply });
    let me = actix::AsyncContext::address(ctx);
    actix_rt::spawn(async move {
        let _ = answered.await;
        me.do_send(PeersTook);
    });
    Flow::Held
}

/// Confirms the subscriptions `join` registered: their deliveries are
/// written from now, and their confirmations go out, in order.
pub(crate) fn peers_took(s: &mut Session) {
    let Some((tokens, confirmations)) = s.joining.take() else { return };
    tokens.into_iter().for_each(|t| s.subs.confirm(t));
    confirmations.into_iter().for_each(|c| s.push(c));
}

/// Unsubscribes from `names`, or from everything of `kind` if empty.
///
/// With several arbiters, a delivery reaches this session through its
/// arbiter's postman, and may still be queued there when the publisher has
/// its answer. So the directory is told at once (no later fan-out includes
/// this session), but the subscriptions end, and are confirmed, only once
/// the postman has handed over everything posted before this command
/// (`Behind`, then `caught_up`): a message published before the client
/// sent UNSUBSCRIBE arrives before its confirmation (SPEC §2.3). Found by
/// herald-conformance's 2.3 check against `--threads 2`; with one arbiter
/// deliveries go straight to the session and are ahead already.
pub(crate) fn leave(s: &mut Session, kind: Kind, names: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    use actix::AsyncContext;
    let names = if names.is_empty() { s.subs.names(kind) } else { names.to_vec() };
    if names.is_empty() {
        let count = count_for(s, kind);
        s.push(confirmation(verb(kind, false), None, count));
        return Flow::Done;
    }
    let mut left = Vec::new();
    for name in names {
        // Out of the names at once (a name given twice is left once, and
        // each confirmation counts what is left after it), but its token
        // stays live until the confirmation is written.
        let token = s.subs.take(kind, &name);
        if token.is_some() {
            match kind {
                Kind::Pattern => s.hub.punsubscribe(name.clone(), s.id),
                _ => s.hub.directory(&name).do_send(Unsubscribe { kind, channel: name.clone(), client: s.id }),
            }
            left.push(name.clone());
        }
        let count = count_for(s, kind);
        s.leaving.push((kind, name, count, token));
    }
    s.hub.unwant(kind, left);
    if s.hub.postmen.len() == 1 || planted(Bug::UnsubscribeAhead) {
        caught_up(s);
        return Flow::Done;
    }
    s.hub.postmen[s.slot].do_send(Behind(ctx.address().recipient()));
    Flow::Held
}

/// Cluster mode, after the topology changed: the shard subscriptions to
/// slots this node no longer serves end, each with a `sunsubscribe` push
/// (its remaining count), as Redis 7 tells its shard subscribers when a
/// slot moves away, so clients subscribe again at the slot's new node.
pub(crate) fn leave_lost_slots(s: &mut Session) {
    let Some(t) = s.hub.topology() else { return };
    for name in s.subs.names(Kind::Shard) {
        if t.serves(crate::cluster::slot_of(&name)) {
            continue;
        }
        if let Some(token) = s.subs.take(Kind::Shard, &name) {
            s.hub.directory(&name).do_send(Unsubscribe { kind: Kind::Shard, channel: name.clone(), client: s.id });
            s.subs.retire(token);
        }
        let count = count_for(s, Kind::Shard);
        s.push(confirmation(verb(Kind::Shard, false), Some(name), count));
    }
}

/// Ends the subscriptions `leave` queued and confirms each, in order.
pub(crate) fn caught_up(s: &mut Session) {
    for (kind, name, count, token) in std::mem::take(&mut s.leaving) {
        if let Some(token) = token {
            s.subs.retire(token);
        }
        s.push(confirmation(verb(kind, false), Some(name), count));
    }
}

fn subscribe(s: &mut Session, args: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    join(s, Kind::Channel, &args[1..], ctx)
}

fn psubscribe(s: &mut Session, args: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    join(s, Kind::Pattern, &args[1..], ctx)
}

fn ssubscribe(s: &mut Session, args: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    join(s, Kind::Shard, &args[1..], ctx)
}

fn unsubscribe(s: &mut Session, args: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    leave(s, Kind::Channel, &args[1..], ctx)
}

fn punsubscribe(s: &mut Session, args: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    leave(s, Kind::Pattern, &args[1..], ctx)
}

fn sunsubscribe(s: &mut Session, args: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    leave(s, Kind::Shard, &args[1..], ctx)
}

/// The session's inbox, made once and shared by all its subscriptions.
fn ctx_inbox(s: &mut Session, ctx: &mut Context<Session>) -> Inbox {
    use actix::AsyncContext;
    let (client, slot) = (s.id, s.slot);
    s.inbox.get_or_insert_with(|| Arc::new(SessionInbox { recipient: ctx.address().recipient(), client, slot })).clone()
}
