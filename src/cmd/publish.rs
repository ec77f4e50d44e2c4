//! PUBLISH and SPUBLISH.

use std::sync::atomic::Ordering;

use actix::{ActorFutureExt, Context};
use bytes::Bytes;
use smallvec::SmallVec;
use tokio::sync::oneshot::{self, Receiver};

use super::Spec;
use crate::broker::directory::{Group, Publish};
use crate::broker::pattern_index::PatternPublish;
use crate::broker::{Fanned, Mail, Published};
use crate::protocol::push::Kind;
use crate::protocol::Reply;
use crate::session::{Flow, Pending, Session};

pub(crate) fn specs() -> [Spec; 2] {
    [
        Spec {
            flags: &["pubsub", "loading", "stale", "fast"],
            acl: &["@pubsub", "@fast"],
            since: "2.0.0",
            summary: "Post a message to a channel",
            args: "channel message",
            may_replicate: true,
            ..Spec::new("publish", 3, "pubsub", publish)
        },
        Spec {
            flags: &["pubsub", "loading", "stale", "fast"],
            acl: &["@pubsub", "@fast"],
            since: "7.0.0",
            summary: "Post a message to a shard channel",
            args: "shardchannel message",
            may_replicate: true,
            ..Spec::new("spublish", 3, "pubsub", spublish)
        },
    ]
}

/// PUBLISH's or SPUBLISH's table entry, by the command's name as sent
/// (looked up once: a pipelined run is timed as its command).
pub(crate) fn spec_of(name: &[u8]) -> &'static Spec {
    static SPECS: std::sync::OnceLock<[&'static Spec; 2]> = std::sync::OnceLock::new();
    let [publish, spublish] = SPECS
        .get_or_init(|| [super::lookup("publish").expect("publish"), super::lookup("spublish").expect("spublish")]);
    if name.eq_ignore_ascii_case(b"spublish") {
        spublish
    } else {
        publish
    }
}

/// PUBLISH: a run of one (see [`publish_run`]).
fn publish(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    Flow::Wait(publish_run(s, std::slice::from_ref(&args.to_vec()), tokio::time::Instant::now()))
}

fn spublish(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    Flow::Wait(publish_run(s, std::slice::from_ref(&args.to_vec()), tokio::time::Instant::now()))
}

/// Runs PUBLISH/SPUBLISH commands (a pipelined run of them, see
/// `Session::can_batch`, or just one) and writes their replies.
///
/// Every publish is sent off at once: each channel's directory forwards it
/// to the channel's actor, and the pattern index gets the channels too. The
/// fan-outs run wherever their actors live, in any order; each answers
/// this session with its deliveries, which the session then posts in the
/// order the publishes came in (for each publish, channel subscribers
/// before pattern subscribers, as in Redis). Posting from one place, in
/// order, is what keeps this client's messages in order everywhere.
///
/// Consecutive publishes to one channel travel as one group. If patterns
/// matched some of them, the group's deliveries are taken apart again so
/// that each message's pmessages follow it before the next message.
/// The run is borrowed (its arguments are shared, not copied): the session
/// keeps it for SLOWLOG.
///
/// `started` is when the run was taken up (the session's command clock).
pub(crate) fn publish_run(s: &mut Session, run: &[Vec<Bytes>], started: tokio::time::Instant) -> Pending {
    let publisher = s.id;
    let patterns = s.hub.any_patterns();
    s.last_cmd = if run[0][0].eq_ignore_ascii_case(b"spublish") { "spublish" } else { "publish" }.into();

    let mut by_directory: SmallVec<[Vec<Group>; 4]> = (0..s.hub.directories().len()).map(|_| Vec::new()).collect();
    let mut last: Option<(usize, Kind)> = None;
    // Each group's answer, and whether the pattern index answers for it too.
    let mut answers: SmallVec<[(usize, Receiver<Fanned>, bool); 1]> = SmallVec::new();
    let mut pattern_items = Vec::new();
    for args in run {
        let [_, channel, payload] = &args[..] else { unreachable!("arity 3") };
        let (channel, payload) = (channel.clone(), payload.clone());
        let kind = if args[0].eq_ignore_ascii_case(b"spublish") { Kind::Shard } else { Kind::Channel };
        let d = s.hub.directory_index(&channel);
        if let Some((ld, lk)) = last {
            let group = by_directory[ld].last_mut().expect("last group");
            if ld == d && lk == kind && group.channel == channel {
                if patterns && kind == Kind::Channel {
                    pattern_items.push((channel.clone(), payload.clone()));
                }
                group.payloads.push(payload);
                answers.last_mut().expect("last answer").0 += 1;
                continue;
            }
        }
        let matched = patterns && kind == Kind::Channel;
        if matched {
            pattern_items.push((channel.clone(), payload.clone()));
        }
        let (reply, answer) = oneshot::channel();
        by_directory[d].push(Group { kind, channel, payloads: vec![payload], reply });
        answers.push((1, answer, matched));
        last = Some((d, kind));
    }
    for (groups, directory) in by_directory.into_iter().zip(s.hub.directories()) {
        if !groups.is_empty() {
            directory.do_send(Publish { groups, publisher });
        }
    }
    let pattern_answer = (!pattern_items.is_empty()).then(|| {
        let (reply, answer) = oneshot::channel();
        s.hub.patterns.do_send(PatternPublish { items: pattern_items, publisher, reply });
        answer
    });

    let all = async move {
        let mut fanned: SmallVec<[(Fanned, bool); 1]> = SmallVec::with_capacity(answers.len());
        for (n, answer, matched) in answers {
            fanned.push((answer.await.unwrap_or_else(|_| Fanned::empty(n)), matched));
        }
        let by_pattern = match pattern_answer {
            Some(answer) => answer.await.unwrap_or_default(),
            None => Vec::new(),
        };
        (fanned, by_pattern)
    };
    Box::pin(actix::fut::wrap_future::<_, Session>(all).map(move |(fanned, by_pattern), s: &mut Session, ctx| {
        s.latency_spike("fan-out", started);
        let mut by_pattern = by_pattern.into_iter();
        let mut mail = Mail::default();
        let mut results: SmallVec<[Published; 1]> = SmallVec::new();
        for (direct, matched) in fanned {
            let mut published = direct.published;
            // One answer per publish of the group (none if the index is gone).
            let mut matches: Vec<Fanned> =
                if matched { by_pattern.by_ref().take(published.len()).collect() } else { Vec::new() };
            if matches.iter().all(|p| p.mail.is_empty()) {
                mail.append(direct.mail);
            } else {
                for (i, p) in matches.iter_mut().enumerate() {
                    mail.append(direct.mail.nth_frame(i));
                    mail.append(std::mem::take(&mut p.mail));
                }
            }
            for (one, p) in published.iter_mut().zip(matches) {
                for more in p.published {
                    one.merge(more);
                }
            }
            results.extend(published);
        }
        mail.post(&s.hub.postmen, s.slot);
        let delivered: usize = results.iter().map(|p| p.count).sum();
        let census = &s.hub.census;
        census.published.fetch_add(results.len(), Ordering::Relaxed);
        census.delivered.fetch_add(delivered, Ordering::Relaxed);
        metrics::counter!(crate::metrics::PUBLISHED).increment(results.len() as u64);
        metrics::counter!(crate::metrics::DELIVERED).increment(delivered as u64);
        metrics::histogram!(crate::metrics::PUBLISH_SECONDS).record(started.elapsed().as_secs_f64());
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
    s.reply(Reply::Int(published.count as i64));
}
