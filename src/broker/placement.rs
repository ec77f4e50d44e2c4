//! Where actors are started: production's arbiters (one thread each), one
//! task set (a single-threaded server), or arbiters driven by someone else
//! (the simulator, which runs each on its own simulated host so that every
//! message between arbiters waits for the scheduler, as between threads).

use std::future::Future;

use actix::dev::channel;
use actix::prelude::*;
use actix_rt::ArbiterHandle;
use tokio::sync::mpsc;

use super::unbounded_mailbox;

/// The slots actors and sessions are spread over. Slot `i` is arbiter `i`:
/// its directory, its postman and the sessions whose deliveries it hands
/// out.
#[derive(Clone)]
pub enum Placement {
    /// Everything on the current task set: one slot.
    Local,
    /// One slot per arbiter thread.
    Arbiters(Vec<ArbiterHandle>),
    /// One slot per [`HostArbiter`]. Sessions stay on the task set that
    /// accepted them (a simulated socket belongs to its host) but are
    /// assigned slots round robin, so every delivery crosses to another
    /// task set and back, as it does in production.
    Hosts(Vec<HostArbiter>),
}

type Job = Box<dyn FnOnce() + Send>;

/// An arbiter whose task set the caller drives: what it is asked to start
/// runs wherever the future from [`HostArbiter::new`] is polled.
#[derive(Clone)]
pub struct HostArbiter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl HostArbiter {
    /// The handle, and the future that runs its jobs (spawn it on the task
    /// set that plays the arbiter; it ends when every handle is dropped).
    pub fn new() -> (HostArbiter, impl Future<Output = ()>) {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let run = async move {
            while let Some(job) = queue.recv().await {
                job();
            }
        };
        (HostArbiter { jobs }, run)
    }
}

impl Placement {
    pub(crate) fn start<A, F>(&self, slot: usize, make: F) -> Addr<A>
    where
        A: Actor<Context = Context<A>>,
        F: FnOnce(&mut Context<A>) -> A + Send + 'static,
    {
        let make = move |ctx: &mut Context<A>| {
            unbounded_mailbox(ctx);
            make(ctx)
        };
        match self {
            Placement::Local => A::create(make),
            Placement::Arbiters(arbiters) => A::start_in_arbiter(&arbiters[slot % arbiters.len()], make),
            Placement::Hosts(hosts) => {
                // What `Actor::start_in_arbiter` does, on a host's queue;
                // the mailbox is unbounded from the start (0), not only once
                // the host gets to the job (see `unbounded_mailbox`).
                let (tx, rx) = channel::channel(0);
                let job = move || {
                    let mut ctx = Context::with_receiver(rx);
                    let actor = make(&mut ctx);
                    actix_rt::spawn(ctx.into_future(actor));
                };
                // A host that is gone (a crashed simulated server) leaves an
                // address whose sends fail, as a stopped arbiter's would.
                let _ = hosts[slot % hosts.len()].jobs.send(Box::new(job));
                Addr::new(tx)
            }
        }
    }

    pub(crate) fn slots(&self) -> usize {
        match self {
            Placement::Local => 1,
            Placement::Arbiters(a) => a.len(),
            Placement::Hosts(h) => h.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Note(u32);

    struct Log(Arc<Mutex<Vec<u32>>>);

    impl Actor for Log {
        type Context = Context<Self>;
    }

    impl Handler<Note> for Log {
        type Result = ();
        fn handle(&mut self, Note(n): Note, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(n);
        }
    }

    /// Where an actor runs: the thread its `Which` is answered on.
    struct Where;

    impl Actor for Where {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "std::thread::ThreadId")]
    struct Which;

    impl Handler<Which> for Where {
        type Result = MessageResult<Which>;
        fn handle(&mut self, _: Which, _: &mut Context<Self>) -> Self::Result {
            MessageResult(std::thread::current().id())
        }
    }

    /// Slot `i` is arbiter `i`: actors of different slots run on
    /// different threads (production's spread of directories and postmen).
    #[test]
    fn each_slot_is_its_own_arbiter() {
        actix_rt::System::new().block_on(async {
            let arbiters: Vec<Arbiter> = (0..2).map(|_| Arbiter::new()).collect();
            let placement = Placement::Arbiters(arbiters.iter().map(Arbiter::handle).collect());
            let (a, b) = (placement.start(0, |_| Where), placement.start(1, |_| Where));
            assert_ne!(a.send(Which).await.unwrap(), b.send(Which).await.unwrap());
            for a in arbiters {
                a.stop();
            }
        });
    }

    /// The same with hosts: slot `i` starts on host `i`'s queue, and
    /// nowhere else.
    #[actix_rt::test]
    async fn each_slot_is_its_own_host() {
        let (hosts, runs): (Vec<_>, Vec<_>) = (0..2).map(|_| HostArbiter::new()).unzip();
        let placement = Placement::Hosts(hosts);
        let addr = placement.start(1, |_| Where);
        let mut runs = runs.into_iter();
        let (_first, second) = (runs.next().unwrap(), runs.next().unwrap());
        // Only host 1's queue is run: the actor answers only if it is there.
        actix_rt::spawn(second);
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), addr.send(Which)).await;
        assert_eq!(answer.expect("started on host 1").unwrap(), std::thread::current().id());
    }

    /// Actors start with unbounded mailboxes: a request past actix's default
    /// capacity (16) is queued when made, so a later `do_send` from the same
    /// sender cannot overtake it (with the default, it did).
    #[actix_rt::test]
    async fn a_request_past_the_default_capacity_is_queued_when_made() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        let addr = Placement::Local.start(0, move |_| Log(seen));
        let requests: Vec<_> = (0..40).map(|i| addr.send(Note(i))).collect();
        addr.do_send(Note(1000));
        for r in requests {
            r.await.expect("the actor is alive");
        }
        addr.send(Note(2000)).await.expect("the actor is alive");
        let expected: Vec<u32> = (0..40).chain([1000, 2000]).collect();
        assert_eq!(*log.lock().unwrap(), expected);
    }
}
