//! Publishing a run of messages: the steps between a publisher and its
//! subscribers' postmen, shared by every publisher (a client's session,
//! a link bringing a peer node's publishes). [`plan`] groups the run by
//! directory, [`send`] sends it off and gathers the answers, and
//! [`interleave`] puts the deliveries in the order the publishes came in,
//! which the publisher then posts. Posting from one place, in order, is
//! what keeps a publisher's messages in order everywhere.

use std::future::Future;
use std::sync::Arc;

use actix::Addr;
use bytes::Bytes;
use smallvec::SmallVec;
use tokio::sync::oneshot::{self, Receiver};

use super::directory::{Group, Publish};
use super::pattern_index::PatternPublish;
use super::{ChannelDirectory, ClientId, Fanned, Mail, PatternIndex, Postman, Published};
use crate::planted::{planted, Bug};
use crate::protocol::push::Kind;

/// Which of `directories` directories owns `channel`: FNV-1a of the name
/// (stable across runs, unlike std's hasher).
pub(crate) fn directory_of(channel: &[u8], directories: usize) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in channel {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    (h % directories as u64) as usize
}

/// Sends `plan` off (one `Publish` per directory involved, one
/// `PatternPublish` if any publish is to be matched) for `publisher`, and
/// resolves, once every fan-out has answered, to the mail still to post,
/// in run order, and each publish's outcome.
///
/// A run that is one fan-out (publishes to one channel; if patterns are
/// to be matched, just one publish) is posted by the channel's actor
/// itself, through `postmen`, before it answers: there is nothing to put
/// in order, and the deliveries skip the hop back to the publisher, which
/// also crossed threads whenever the channel's arbiter was not the
/// publisher's (1 → 1 without pipelining, above all). That answer carries
/// no mail; the pattern index's, posted by the caller after every answer
/// is in, follows the message. The caller must not send another run
/// before this one has resolved (a session holds; a peer link awaits each
/// run): that is what keeps its runs in order when their actors post
/// them.
pub(crate) fn send(
    mut plan: Plan,
    directories: &[Addr<ChannelDirectory>],
    patterns: &Addr<PatternIndex>,
    postmen: &Arc<[Addr<Postman>]>,
    publisher: ClientId,
) -> impl Future<Output = (Mail, SmallVec<[Published; 1]>)> + 'static {
    plan.let_a_lone_fan_out_post(postmen);
    let Plan { by_directory, answers, pattern_items } = plan;
    for (groups, directory) in by_directory.into_iter().zip(directories) {
        if !groups.is_empty() {
            directory.do_send(Publish { groups, publisher });
        }
    }
    let pattern_answer = (!pattern_items.is_empty()).then(|| {
        let (reply, answer) = oneshot::channel();
        patterns.do_send(PatternPublish { items: pattern_items, publisher, reply });
        answer
    });
    async move {
        let mut fanned: SmallVec<[(Fanned, bool); 1]> = SmallVec::with_capacity(answers.len());
        for (n, answer, matched) in answers {
            fanned.push((answer.await.unwrap_or_else(|_| Fanned::empty(n)), matched));
        }
        let by_pattern = match pattern_answer {
            Some(answer) => answer.await.unwrap_or_default(),
            None => Vec::new(),
        };
        interleave(fanned, by_pattern)
    }
}

/// A run, grouped for sending: per directory, its groups of consecutive
/// publishes to one channel (in run order); per group, in run order, how
/// many publishes it holds, where its answer comes and whether the
/// pattern index answers for its publishes too; and what the pattern
/// index is asked (every classic publish, in run order, if any pattern
/// subscription exists).
pub(crate) struct Plan {
    pub by_directory: SmallVec<[Vec<Group>; 4]>,
    pub answers: SmallVec<[(usize, Receiver<Fanned>, bool); 1]>,
    pub pattern_items: Vec<(Bytes, Bytes)>,
}

impl Plan {
    /// Marks the run's fan-out to be posted by its channel's actor, if it
    /// is the only one and at most one of its messages is to be matched
    /// against patterns: that message's pmessages, posted by the caller
    /// once every answer is in, then follow it. (Two fan-outs would race to
    /// the postmen; a group of several messages would reach a subscriber
    /// of both channel and pattern as m1 m2 p1 p2.)
    fn let_a_lone_fan_out_post(&mut self, postmen: &Arc<[Addr<Postman>]>) {
        let lone = self.answers.len() == 1 && (self.pattern_items.is_empty() || self.answers[0].0 == 1);
        for group in self.by_directory.iter_mut().flatten() {
            if lone || planted(Bug::ActorPostsRuns) {
                group.post = Some(postmen.clone());
            }
        }
    }
}

/// Groups `run` (each publish's kind, channel and message) over
/// `directories` directories, `directory_of` naming each channel's.
/// Consecutive publishes to one channel travel as one group: one `Fanout`
/// for all of them.
pub(crate) fn plan<'a>(
    run: impl IntoIterator<Item = (Kind, &'a Bytes, &'a Bytes)>,
    directories: usize,
    directory_of: impl Fn(&[u8]) -> usize,
    patterns: bool,
) -> Plan {
    let mut by_directory: SmallVec<[Vec<Group>; 4]> = (0..directories).map(|_| Vec::new()).collect();
    let mut last: Option<(usize, Kind)> = None;
    let mut answers: SmallVec<[(usize, Receiver<Fanned>, bool); 1]> = SmallVec::new();
    let mut pattern_items = Vec::new();
    for (kind, channel, payload) in run {
        let (channel, payload) = (channel.clone(), payload.clone());
        let matched = patterns && kind == Kind::Channel;
        if matched {
            pattern_items.push((channel.clone(), payload.clone()));
        }
        let d = directory_of(&channel);
        if let Some((ld, lk)) = last {
            let group = by_directory[ld].last_mut().expect("last group");
            if ld == d && lk == kind && group.channel == channel {
                group.payloads.push(payload);
                answers.last_mut().expect("last answer").0 += 1;
                continue;
            }
        }
        let (reply, answer) = oneshot::channel();
        by_directory[d].push(Group { kind, channel, payloads: vec![payload], reply, post: None });
        answers.push((1, answer, matched));
        last = Some((d, kind));
    }
    Plan { by_directory, answers, pattern_items }
}

/// Puts a run's deliveries in its order: `fanned` holds each group's
/// answer in run order (and whether the pattern index answered for it),
/// `by_pattern` the index's answer for each pattern-matched publish in run
/// order. Each message goes before its pmessages and before the next
/// message, as in Redis. Returns the mail to post and each publish's
/// outcome, in run order.
///
/// A group whose publishes no pattern matched keeps its deliveries
/// grouped (one `Deliver` carrying all its frames); otherwise it is taken
/// apart again, publish by publish, so each message's pmessages follow it.
pub(crate) fn interleave(
    fanned: impl IntoIterator<Item = (Fanned, bool)>,
    by_pattern: Vec<Fanned>,
) -> (Mail, SmallVec<[Published; 1]>) {
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
                if planted(Bug::PatternFirst) {
                    mail.append(std::mem::take(&mut p.mail));
                }
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
    (mail, results)
}

#[cfg(test)]
mod tests {
    //! `plan` (with the lone fan-out that posts itself) and `interleave`
    //! against a model of the order SPEC §2 asks for: each subscriber gets
    //! a run's messages in the order published, each message followed by
    //! its pmessages, nothing lost or repeated.

    use std::collections::BTreeSet;

    use actix::Actor;
    use proptest::prelude::*;

    use super::*;
    use crate::broker::{fan_out, test_inbox, Inbox, Subscriber};
    use crate::protocol::push::Frame;

    const SESSIONS: usize = 4;

    type Interleave = fn(Vec<(Fanned, bool)>, Vec<Fanned>) -> (Mail, SmallVec<[Published; 1]>);
    const PUBLISHER: u64 = 99;

    /// A run of (channel, shard?) publishes; subscriptions as (channel,
    /// shard?, session); pattern subscriptions as (channel its pattern
    /// matches, session); the number of directories.
    fn check(
        run: &[(u8, bool)],
        subs: &BTreeSet<(u8, bool, usize)>,
        psubs: &BTreeSet<(u8, usize)>,
        directories: usize,
        interleave: Interleave,
    ) {
        let slot = |session: usize| session % 2;
        let inboxes: Vec<Inbox> = (0..SESSIONS).map(|session| test_inbox(session as u64, slot(session))).collect();
        let channel = |c: u8| Bytes::from(format!("c{c}"));
        let pattern = |c: u8| Bytes::from(format!("c{c}*"));
        let requests: Vec<(Kind, Bytes, Bytes)> = run
            .iter()
            .enumerate()
            .map(|(i, &(c, shard))| {
                let kind = if shard { Kind::Shard } else { Kind::Channel };
                (kind, channel(c), Bytes::from(format!("m{i}")))
            })
            .collect();
        let mut plan = plan(
            requests.iter().map(|(k, c, p)| (*k, c, p)),
            directories,
            |c| c.iter().map(|&b| b as usize).sum::<usize>() % directories,
            !psubs.is_empty(),
        );
        plan.let_a_lone_fan_out_post(&Arc::from([Postman.start()]));

        // The channel actors: each group fanned out to its subscribers;
        // one told to post does so before it answers, so its mail goes
        // ahead of everything the publisher posts.
        let mut posted_by_actors = Mail::default();
        let mut token = 0;
        for group in plan.by_directory.into_iter().flatten() {
            let shard = group.kind == Kind::Shard;
            let subscribers: Vec<Subscriber> = subs
                .iter()
                .filter(|&&(c, sh, _)| channel(c) == group.channel && sh == shard)
                .map(|&(_, _, session)| {
                    token += 1;
                    Subscriber { token, inbox: inboxes[session].clone() }
                })
                .collect();
            let frames: Arc<[Frame]> =
                group.payloads.iter().map(|p| Frame::encode(group.kind, None, &group.channel, p)).collect();
            let mut mail = Mail::default();
            let (count, _) = fan_out(&frames, subscribers.iter(), PUBLISHER, &mut mail);
            let published = group.payloads.iter().map(|_| Published { count, own: Vec::new() }).collect();
            if group.post.is_some() {
                posted_by_actors.append(std::mem::take(&mut mail));
            }
            let _ = group.reply.send(Fanned { published, mail });
        }
        // The pattern index: one answer per classic publish.
        let by_pattern: Vec<Fanned> = plan
            .pattern_items
            .iter()
            .map(|(ch, payload)| {
                let mut mail = Mail::default();
                let mut count = 0;
                for &(c, session) in psubs.iter().filter(|(c, _)| channel(*c) == *ch) {
                    token += 1;
                    let frame = Frame::encode(Kind::Channel, Some(&pattern(c)[..]), ch, payload);
                    let s = Subscriber { token, inbox: inboxes[session].clone() };
                    count += fan_out(&Arc::from([frame]), std::iter::once(&s), PUBLISHER, &mut mail).0;
                }
                Fanned { published: smallvec::smallvec![Published { count, own: Vec::new() }], mail }
            })
            .collect();
        let fanned: Vec<(Fanned, bool)> = plan
            .answers
            .into_iter()
            .map(|(_, mut answer, matched)| (answer.try_recv().expect("every group answered"), matched))
            .collect();

        let (posted_by_publisher, results) = interleave(fanned, by_pattern);
        let mut mail = posted_by_actors;
        mail.append(posted_by_publisher);

        // Counts: one result per publish, in run order.
        let expected_counts: Vec<usize> = run
            .iter()
            .map(|&(c, shard)| {
                subs.iter().filter(|&&(sc, sh, _)| sc == c && sh == shard).count()
                    + if shard { 0 } else { psubs.iter().filter(|(pc, _)| *pc == c).count() }
            })
            .collect();
        assert_eq!(results.iter().map(|p| p.count).collect::<Vec<_>>(), expected_counts);
        // Each session's frames, in the order posted, against the model.
        for (session, mine) in inboxes.iter().enumerate() {
            let got: Vec<Bytes> = mail
                .deliveries()
                .filter(|(inbox, _)| Arc::ptr_eq(inbox, mine))
                .flat_map(|(_, d)| d.frames.iter().map(|f| f.body.clone()).collect::<Vec<_>>())
                .collect();
            let mut want = Vec::new();
            for (i, &(c, shard)) in run.iter().enumerate() {
                let payload = Bytes::from(format!("m{i}"));
                let kind = if shard { Kind::Shard } else { Kind::Channel };
                if subs.contains(&(c, shard, session)) {
                    want.push(Frame::encode(kind, None, &channel(c), &payload).body);
                }
                if !shard && psubs.contains(&(c, session)) {
                    want.push(Frame::encode(Kind::Channel, Some(&pattern(c)[..]), &channel(c), &payload).body);
                }
            }
            assert_eq!(got, want, "session {session}");
        }
    }

    proptest! {
        #[test]
        fn a_run_reaches_each_subscriber_in_order_message_before_pmessages(
            run in prop::collection::vec((0..3u8, prop::bool::weighted(0.2)), 1..12),
            subs in prop::collection::btree_set((0..3u8, prop::bool::weighted(0.2), 0..SESSIONS), 0..10),
            psubs in prop::collection::btree_set((0..3u8, 0..SESSIONS), 0..5),
            directories in 1..4usize,
        ) {
            actix::System::new().block_on(async { check(&run, &subs, &psubs, directories, interleave) });
        }
    }

    /// A session stand-in that keeps the frames it is given.
    struct Keeper(Vec<Bytes>);
    impl Actor for Keeper {
        type Context = actix::Context<Self>;
    }
    impl actix::Handler<crate::broker::Deliveries> for Keeper {
        type Result = ();
        fn handle(&mut self, d: crate::broker::Deliveries, _: &mut actix::Context<Self>) {
            self.0.extend(d.0.iter().flat_map(|d| d.frames.iter().map(|f| f.body.clone())));
        }
    }
    /// Everything it was given so far (its mailbox is FIFO: what was
    /// queued before this asks is in).
    #[derive(actix::Message)]
    #[rtype(result = "Vec<Bytes>")]
    struct Kept;
    impl actix::Handler<Kept> for Keeper {
        type Result = Vec<Bytes>;
        fn handle(&mut self, _: Kept, _: &mut actix::Context<Self>) -> Vec<Bytes> {
            std::mem::take(&mut self.0)
        }
    }

    /// Which runs a channel actor posts itself, through real actors: a
    /// run that is one fan-out comes back with no mail, already queued
    /// at its subscriber when the publisher hears back; any other comes
    /// back with its mail, for the publisher to put in order. (This is
    /// the hop the shortcut saves: with it gone, every delivery would still
    /// arrive, later, and no order check would notice.)
    #[actix_rt::test]
    async fn only_a_lone_fan_out_is_posted_by_its_actor() {
        use crate::broker::directory::Subscribe;
        use crate::broker::{Census, Name, SessionInbox};
        let directory = ChannelDirectory::new(Arc::new(Census::default()), std::time::Duration::ZERO).start();
        let patterns = PatternIndex::default().start();
        let postmen: Arc<[Addr<Postman>]> = Arc::from([Postman.start()]);
        let keeper = Keeper(Vec::new()).start();
        let inbox = Arc::new(SessionInbox { recipient: keeper.clone().recipient(), client: 7, slot: 0 });
        for (token, channel) in [(1, "a"), (2, "b")] {
            let subscriber = Subscriber { token, inbox: inbox.clone() };
            directory.do_send(Subscribe { kind: Kind::Channel, channel: Name::from(channel.as_bytes()), subscriber });
        }
        let cases: [(&[&str], bool, bool); 5] = [
            (&["a"], false, true),
            (&["a", "a"], false, true),
            (&["a"], true, true),
            (&["a", "a"], true, false),
            (&["a", "b"], false, false),
        ];
        for (channels, patterns_exist, posted_by_actor) in cases {
            let run: Vec<(Kind, Bytes, Bytes)> = channels
                .iter()
                .map(|c| (Kind::Channel, Bytes::copy_from_slice(c.as_bytes()), Bytes::from_static(b"m")))
                .collect();
            let plan = plan(run.iter().map(|(k, c, m)| (*k, c, m)), 1, |_| 0, patterns_exist);
            let (mail, results) = send(plan, std::slice::from_ref(&directory), &patterns, &postmen, 99).await;
            let case = format!("{channels:?}, patterns {patterns_exist}");
            assert_eq!(results.iter().map(|p| p.count).collect::<Vec<_>>(), vec![1; channels.len()], "{case}");
            let kept = keeper.send(Kept).await.expect("kept");
            if posted_by_actor {
                assert!(mail.is_empty(), "{case}: the publisher was handed mail to post");
                assert_eq!(kept.len(), channels.len(), "{case}: not delivered when the publisher heard back");
            } else {
                assert!(kept.is_empty(), "{case}: an actor of a run of several fan-outs posted its own");
                assert_eq!(mail.deliveries().map(|(_, d)| d.frames.len()).sum::<usize>(), channels.len(), "{case}");
            }
        }
    }

    /// The check can fail when fan-outs other than a run's lone one post
    /// their own mail: a run to c0 then c1, whose directories the plan
    /// lists the other way round, reaches a subscriber of both reversed.
    #[cfg(feature = "planted-bugs")]
    #[test]
    fn every_fan_out_of_a_run_posting_is_caught() {
        let run = [(0, false), (1, false)];
        let subs: BTreeSet<_> = [(0, false, 0), (1, false, 0)].into();
        actix::System::new().block_on(async { check(&run, &subs, &BTreeSet::new(), 2, interleave) });
        crate::planted::plant(Some(Bug::ActorPostsRuns));
        let planted = std::panic::catch_unwind(|| {
            actix::System::new().block_on(async { check(&run, &subs, &BTreeSet::new(), 2, interleave) });
        });
        crate::planted::plant(None);
        assert!(planted.is_err(), "a run posted fan-out by fan-out went unnoticed");
    }

    /// The check can fail: an interleave that posts a group's messages
    /// whole and their pmessages after them (m0 m1 p0 p1, not m0 p0 m1 p1)
    /// is caught, while the real one passes the same case.
    #[test]
    fn a_planted_grouping_bug_is_caught() {
        fn grouped(fanned: Vec<(Fanned, bool)>, by_pattern: Vec<Fanned>) -> (Mail, SmallVec<[Published; 1]>) {
            let mut by_pattern = by_pattern.into_iter();
            let (mut mail, mut results) = (Mail::default(), SmallVec::new());
            for (direct, matched) in fanned {
                let mut published = direct.published;
                mail.append(direct.mail);
                let n = if matched { published.len() } else { 0 };
                for (one, p) in published.iter_mut().zip(by_pattern.by_ref().take(n)) {
                    mail.append(p.mail);
                    p.published.into_iter().for_each(|more| one.merge(more));
                }
                results.extend(published);
            }
            (mail, results)
        }
        let run = [(0, false), (0, false)];
        let subs: BTreeSet<_> = [(0, false, 0)].into();
        let psubs: BTreeSet<_> = [(0, 0)].into();
        actix::System::new().block_on(async { check(&run, &subs, &psubs, 2, interleave) });
        let planted = std::panic::catch_unwind(|| {
            actix::System::new().block_on(async { check(&run, &subs, &psubs, 2, grouped) });
        });
        assert!(planted.is_err(), "pmessages after the whole group went unnoticed");
    }
}
