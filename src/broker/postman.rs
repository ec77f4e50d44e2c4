//! One postman per arbiter: takes a publish's deliveries for the sessions
//! on its arbiter as one message and hands them out locally.

use actix::prelude::*;

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;

use foldhash::fast::FixedState;
use smallvec::{smallvec, SmallVec};

use super::{Deliver, Deliveries, Inbox};

/// Hands bundles of deliveries to the sessions of its arbiter: a fan-out
/// to many sessions on another thread costs one cross-thread message, not
/// one per session. Bundles from one publisher arrive in the order posted.
#[derive(Default)]
pub(crate) struct Postman;

impl Actor for Postman {
    type Context = Context<Self>;
}

/// Deliveries for sessions on this postman's arbiter, one entry per session.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Bundle(pub SmallVec<[(Inbox, Deliveries); 1]>);

impl Handler<Bundle> for Postman {
    type Result = ();
    fn handle(&mut self, bundle: Bundle, _: &mut Context<Self>) {
        bundle.hand_out();
    }
}

/// A session asking to hear back once everything posted to it so far has
/// been handed to it: the answer queues behind those deliveries in the
/// session's mailbox. An UNSUBSCRIBE waits for it before confirming, so a
/// publish answered before the UNSUBSCRIBE was sent is delivered first
/// (SPEC §2.3), though its bundle may still be queued here.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Behind(pub Recipient<CaughtUp>);

/// The answer to [`Behind`].
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CaughtUp;

impl Handler<Behind> for Postman {
    type Result = ();
    fn handle(&mut self, Behind(session): Behind, _: &mut Context<Self>) {
        session.do_send(CaughtUp);
    }
}

impl Bundle {
    /// Gathers a bag's deliveries by session, keeping each session's in the
    /// order added (sessions need no order among themselves).
    fn by_session(bag: Vec<(Inbox, Deliver)>) -> Bundle {
        if bag.len() <= 1 {
            return Bundle(bag.into_iter().map(|(inbox, d)| (inbox, Deliveries(smallvec![d]))).collect());
        }
        let mut index: HashMap<*const super::SessionInbox, usize, FixedState> =
            HashMap::with_capacity_and_hasher(bag.len(), FixedState::default());
        let mut out: SmallVec<[(Inbox, Deliveries); 1]> = SmallVec::with_capacity(bag.len());
        for (inbox, d) in bag {
            match index.entry(Arc::as_ptr(&inbox)) {
                Entry::Occupied(at) => out[*at.get()].1 .0.push(d),
                Entry::Vacant(slot) => {
                    slot.insert(out.len());
                    out.push((inbox, Deliveries(smallvec![d])));
                }
            }
        }
        Bundle(out)
    }

    fn hand_out(self) {
        for (inbox, deliveries) in self.0 {
            // A closed inbox is a session on its way out.
            inbox.recipient.do_send(deliveries);
        }
    }
}

/// Deliveries sorted by the arbiter of their session, in the order added.
#[derive(Default)]
pub(crate) struct Mail {
    bags: Vec<Vec<(Inbox, Deliver)>>,
}

impl Mail {
    pub(crate) fn add(&mut self, slot: usize, inbox: Inbox, deliver: Deliver) {
        if self.bags.len() <= slot {
            self.bags.resize_with(slot + 1, Vec::new);
        }
        self.bags[slot].push((inbox, deliver));
    }

    /// Each arbiter's deliveries in reverse: only a planted bug wants this.
    pub(crate) fn reverse(&mut self) {
        self.bags.iter_mut().for_each(|bag| bag.reverse());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bags.iter().all(Vec::is_empty)
    }

    /// Every delivery, arbiter by arbiter, each arbiter's in order.
    #[cfg(test)]
    pub(crate) fn deliveries(&self) -> impl Iterator<Item = &(Inbox, Deliver)> {
        self.bags.iter().flatten()
    }

    /// The same deliveries with only their `i`th frame each: a grouped
    /// fan-out taken apart again, publish by publish.
    pub(crate) fn nth_frame(&self, i: usize) -> Mail {
        let pick = |(inbox, d): &(Inbox, Deliver)| {
            (inbox.clone(), Deliver { token: d.token, frames: Arc::from([d.frames[i].clone()]) })
        };
        Mail { bags: self.bags.iter().map(|bag| bag.iter().map(pick).collect()).collect() }
    }

    /// Adds `other`'s deliveries after this one's.
    pub(crate) fn append(&mut self, other: Mail) {
        if self.bags.is_empty() {
            self.bags = other.bags;
            return;
        }
        for (slot, bag) in other.bags.into_iter().enumerate() {
            if slot >= self.bags.len() {
                self.bags.push(bag);
            } else {
                self.bags[slot].extend(bag);
            }
        }
    }

    /// Posts from arbiter `here`: one bundle to each arbiter's postman.
    ///
    /// Every delivery to a session reaches it through its arbiter's
    /// postman, so all publishers share one FIFO route to it: a publish
    /// answered before another was sent (anywhere) is delivered first, as
    /// in Redis. Posting straight into same-arbiter inboxes would let a
    /// local publisher overtake a bundle still queued at the postman (it
    /// did: `ordering::a_publish_answered_before_another_is_delivered_first`).
    /// With a single arbiter there is no other route, and deliveries go
    /// straight to the inboxes, saving the hop.
    pub(crate) fn post(self, postmen: &[Addr<Postman>], here: usize) {
        let single = postmen.len() == 1;
        for (slot, (bag, postman)) in self.bags.into_iter().zip(postmen).enumerate() {
            if single && slot == here {
                Bundle::by_session(bag).hand_out();
            } else if !bag.is_empty() {
                postman.do_send(Bundle::by_session(bag));
            }
        }
    }
}
