//! Cluster membership on a coordination service (`cluster-etcd`): nodes
//! join, leave and die without an operator. The service decides; Herald
//! runs no consensus of its own.
//!
//! The protocol, for a node `N` of cluster `C` (keys under `/herald/C/`):
//! - **Join.** `N` takes a lease of `cluster-lease-ttl` and puts
//!   `members/<id>` = its address, bound to the lease; it renews the lease
//!   every third of its TTL.
//! - **The map.** `slots` holds the slot map (`cluster::slot_map`): an
//!   epoch, the nodes and their ranges. Every node watches the prefix and
//!   puts each newer map in force, in epoch order (`Hub::set_topology`):
//!   the sessions end shard subscriptions to slots lost (`sunsubscribe`),
//!   the Mesh links to the nodes that joined and drops the ones gone.
//! - **One coordinator.** Every node campaigns in the service's election
//!   with its lease; the one elected writes the next map whenever the
//!   members change (`cluster::next_map`: a fair share each, fewest slots
//!   moved), only while it still leads and only over the map it read.
//! - **Death.** A node that stops renewing loses its lease; its key goes,
//!   and the coordinator spreads its slots over the rest.
//! - **Leaving** (SIGTERM): `N` marks its key `leaving`, waits until a map
//!   gives its slots to others, then ends its lease.
//! - **Fencing** (SPEC §9.7): `N` stops serving its slots (`-CLUSTERDOWN`)
//!   once its last renewal's TTL has run out, counted from when `N` *sent*
//!   that renewal: the service counts from when it received it, so `N`
//!   stops no later than the service can expire the lease and give its
//!   slots to another node.
//!
//! What it deliberately does not know: channels, sessions, links. It
//! changes the node only by putting a topology in force.

#[cfg(feature = "etcd")]
mod etcd;
mod store;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use store::{Entry, Leader, MembershipStore, Snapshot, StoreResult, Written};

use crate::cluster::{decode, encode, next_map, Member, NodeAddr, Topology};
use crate::hub::Hub;
use crate::planted::{planted, Bug};

/// The key of the slot map, under the cluster's prefix.
const MAP_KEY: &str = "slots";
/// The prefix of the members' keys.
const MEMBERS: &str = "members/";
/// The prefix of the keys where each node says which map it has in force.
const APPLIED: &str = "applied/";
/// After a failed call to the service, the next try waits this long.
const RETRY: Duration = Duration::from_millis(250);

/// A running member: how the server asks it to leave.
pub struct Membership {
    leave: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

impl Membership {
    /// Hands this node's slots to the other members and ends its lease;
    /// gives up after `within` (the lease then expires by itself).
    pub async fn leave(&self, within: Duration) {
        if planted(Bug::NoHandover) {
            return;
        }
        let (done, handed) = oneshot::channel();
        if self.leave.send(done).is_ok() && tokio::time::timeout(within, handed).await.is_err() {
            tracing::warn!("cluster: slots not handed over in time; leaving anyway");
        }
    }
}

/// Starts this node's membership on `store`, on the current arbiter.
pub(crate) fn start<S: MembershipStore>(store: S, hub: Hub, ttl: Duration) -> Membership {
    let (leave, requests) = mpsc::unbounded_channel();
    actix_rt::spawn(run(store, hub, ttl, requests));
    Membership { leave }
}

/// Starts this node's membership on etcd (`cluster-etcd`), on the
/// current arbiter.
#[cfg(feature = "etcd")]
pub(crate) fn start_etcd(endpoints: Vec<String>, cluster: String, hub: Hub, ttl: Duration) -> Membership {
    let (leave, requests) = mpsc::unbounded_channel();
    actix_rt::spawn(async move {
        let store = loop {
            match EtcdStore::connect(&endpoints, &cluster).await {
                Ok(store) => break store,
                Err(e) => tracing::warn!(error = %e, "cluster: cannot reach etcd"),
            }
            tokio::time::sleep(RETRY).await;
        };
        run(store, hub, ttl, requests).await
    });
    Membership { leave }
}

/// What the member's tasks share (they all run on one thread).
struct Local {
    hub: Hub,
    me: NodeAddr,
    /// The newest map read; what this node serves of it (`served`: the
    /// map, less the slots gained whose previous owners have not all let
    /// them go); whether it is fenced. `served` and `fenced` make the
    /// topology in force.
    map: RefCell<Topology>,
    served: RefCell<Topology>,
    fenced: Cell<bool>,
    /// Until when this node may serve its slots, and a wake-up when it
    /// moves.
    valid_until: Cell<Instant>,
    renewed: Notify,
}

impl Local {
    fn put_in_force(&self) {
        let mut t = self.served.borrow().clone();
        t.fenced = self.fenced.get();
        self.hub.set_topology(t);
    }

    fn fence(&self, fenced: bool) {
        if fenced && planted(Bug::NoFence) {
            return;
        }
        if self.fenced.replace(fenced) != fenced {
            match fenced {
                true => tracing::warn!("cluster: lease not renewed in time; this node's slots answer CLUSTERDOWN"),
                false => tracing::info!("cluster: lease renewed; serving this node's slots again"),
            }
            self.put_in_force();
        }
    }

    fn figures(&self) -> &crate::cluster::MeshFigures {
        &self.hub.cluster.as_ref().expect("cluster mode").figures
    }
}

/// What the member's helper tasks report.
enum Event {
    /// Something under the prefix changed.
    Changed,
    /// This node's lease now leads the election.
    Elected(Leader),
    /// The lease was renewed.
    Renewed,
    /// The lease has expired: join again.
    Expired,
}

async fn run<S: MembershipStore>(
    store: S,
    hub: Hub,
    ttl: Duration,
    mut leave: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    let topology = hub.topology().expect("cluster mode");
    let me = topology.myself().clone();
    let local = Rc::new(Local {
        hub,
        me: me.addr.clone(),
        map: RefCell::new((*topology).clone()),
        served: RefCell::new((*topology).clone()),
        // Until it has joined and read the map.
        fenced: Cell::new(true),
        valid_until: Cell::new(Instant::now()),
        renewed: Notify::new(),
    });
    let key = format!("{MEMBERS}{}", me.id);
    let fence = actix_rt::spawn(fence_when_due(local.clone()));
    let mut leaving: Option<oneshot::Sender<()>> = None;
    loop {
        let (lease, granted) = join(&store, ttl, &key, &me.addr.to_string()).await;
        local.valid_until.set(granted.0);
        local.renewed.notify_one();
        tracing::info!(lease, ttl = ?granted.1, "cluster: joined");
        let (events_to, mut events) = mpsc::unbounded_channel();
        let mut tasks = vec![
            actix_rt::spawn(renew(store.clone(), lease, granted.1, local.clone(), events_to.clone())),
            actix_rt::spawn(watch(store.clone(), events_to.clone())),
        ];
        let mut campaign = actix_rt::spawn(campaign(store.clone(), lease, me.id.clone(), events_to.clone()));
        let mut leader: Option<Leader> = None;
        if leaving.is_some() {
            let _ = store.put(&key, &format!("{} leaving", me.addr), lease).await;
        }
        let _ = events_to.send(Event::Changed);
        let rejoin = loop {
            tokio::select! {
                event = events.recv() => {
                    let event = event.expect("a sender is kept here");
                    match event {
                        Event::Expired => break true,
                        Event::Elected(l) => leader = Some(l),
                        Event::Changed => {}
                        // Renewed while fenced: read the map before serving again.
                        Event::Renewed if local.fenced.get() => {}
                        Event::Renewed => continue,
                    }
                    let Ok(seen) = refresh(&store, &local, &mut leader, lease).await else {
                        // Read again a little later: the change that woke
                        // this one may be the last for a while.
                        let again = events_to.clone();
                        actix_rt::spawn(async move {
                            tokio::time::sleep(RETRY).await;
                            let _ = again.send(Event::Changed);
                        });
                        continue;
                    };
                    if leader.is_none() && campaign.is_finished() {
                        // Deposed (the write found another leader): again.
                        let again = crate::membership::campaign(store.clone(), lease, me.id.clone(), events_to.clone());
                        campaign = actix_rt::spawn(again);
                    }
                    if local.fenced.get() && Instant::now() < local.valid_until.get() {
                        local.fence(false);
                    }
                    // Handed over once this node serves nothing and every
                    // member has the map that says so (none redirects a
                    // client here any more); or nobody could take them.
                    let empty = local.served.borrow().slot_count(local.served.borrow().me) == 0;
                    let handed = (empty && seen.all_serving) || !seen.others;
                    if let Some(done) = leaving.take_if(|_| handed) {
                        tracing::info!("cluster: slots handed over; leaving");
                        if let Err(e) = store.revoke(lease).await {
                            tracing::warn!(error = %e, "cluster: could not end the lease; it expires by itself");
                        }
                        let _ = done.send(());
                        break false;
                    }
                }
                Some(done) = leave.recv(), if leaving.is_none() => {
                    tracing::info!("cluster: handing this node's slots over");
                    leaving = Some(done);
                    if let Err(e) = store.put(&key, &format!("{} leaving", me.addr), lease).await {
                        tracing::warn!(error = %e, "cluster: could not say this node is leaving");
                    }
                    let _ = events_to.send(Event::Changed);
                }
            }
        };
        tasks.push(campaign);
        tasks.iter().for_each(|t| t.abort());
        if !rejoin {
            fence.abort();
            return;
        }
        tracing::warn!("cluster: lease expired; joining again");
        local.fence(true);
    }
}

/// Takes a lease and registers this node under it, retrying until the
/// service answers; the deadline the lease gives (counted from the
/// request) and its TTL.
async fn join<S: MembershipStore>(store: &S, ttl: Duration, key: &str, addr: &str) -> (i64, (Instant, Duration)) {
    loop {
        let sent = Instant::now();
        match store.grant(ttl).await {
            Ok((lease, granted)) => match store.put(key, addr, lease).await {
                Ok(()) => return (lease, (sent + granted, granted)),
                Err(e) => tracing::warn!(error = %e, "cluster: cannot register with etcd"),
            },
            Err(e) => tracing::warn!(error = %e, "cluster: cannot take a lease from etcd"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// What a refresh saw.
struct Seen {
    /// Some member other than this one may own slots.
    others: bool,
    /// Every other member has the newest map in force and holds nothing
    /// back: none sends a client to a previous owner.
    all_serving: bool,
}

/// Reads the service, puts a newer map in force, and, as the
/// coordinator, writes the map the members call for.
///
/// A slot the map moves to this node is served only once every member
/// has applied that map (`applied/<id>`, put by each node once the map is
/// in force, so once it has stopped serving what the map took from it),
/// or has left: until then it stays with the node that served it. Without
/// this, a node cut off from etcd, its lease still valid, would serve a
/// slot the coordinator had already given to another (the simulator
/// found it).
async fn refresh<S: MembershipStore>(
    store: &S,
    local: &Local,
    leader: &mut Option<Leader>,
    lease: i64,
) -> StoreResult<Seen> {
    let snapshot = store.snapshot().await.inspect_err(|e| tracing::warn!(error = %e, "cluster: cannot read etcd"))?;
    let members: Vec<Member> = snapshot
        .entries
        .iter()
        .filter(|e| e.key.starts_with(MEMBERS))
        .filter_map(|e| {
            let mut words = e.value.split_whitespace();
            let addr = NodeAddr::parse(words.next()?).ok()?;
            Some(Member { addr, leaving: words.next() == Some("leaving") })
        })
        .collect();
    local.figures().members.store(members.len(), Ordering::Relaxed);
    let stored = snapshot.get(MAP_KEY);
    let map = match stored.map(|e| decode(&e.value, &local.me)).transpose() {
        Ok(map) => map,
        Err(e) => {
            tracing::error!(error = %e, "cluster: the slot map in etcd is unreadable");
            return Err(e);
        }
    };
    let newer = map.as_ref().filter(|m| m.epoch > local.map.borrow().epoch);
    if let Some(map) = newer {
        *local.map.borrow_mut() = map.clone();
    }
    let epoch = local.map.borrow().epoch;
    let me = local.map.borrow().myself().id.clone();
    // Each member's `applied/<id>`: the epoch it has in force, and
    // whether it still holds slots back (so still redirects to their
    // previous owners).
    let state = |id: &str| {
        let value = snapshot.get(&format!("{APPLIED}{id}")).map(|e| e.value.as_str()).unwrap_or_default();
        let mut words = value.split_whitespace();
        let applied = words.next().and_then(|e| e.parse::<u64>().ok()).is_some_and(|e| e >= epoch);
        (applied, applied && words.next() == Some("serving"))
    };
    let others: Vec<&str> =
        snapshot.entries.iter().filter_map(|e| e.key.strip_prefix(MEMBERS)).filter(|id| *id != me).collect();
    let all_applied = others.iter().all(|id| state(id).0) || planted(Bug::NoHoldBack);
    let held = *local.served.borrow() != *local.map.borrow();
    if newer.is_some() || (held && all_applied) {
        let served = match all_applied {
            true => local.map.borrow().clone(),
            false => local.map.borrow().hold_back(&local.served.borrow()),
        };
        let slots = served.slot_count(served.me);
        tracing::info!(epoch, slots, held = newer.is_some() && !all_applied, "cluster: slot map in force");
        let holding = served != *local.map.borrow();
        *local.served.borrow_mut() = served;
        local.put_in_force();
        if newer.is_some() {
            local.figures().maps_applied.fetch_add(1, Ordering::Relaxed);
        }
        // In force: what the map took from this node is no longer served
        // here; and, once nothing is held back, no client is sent to a
        // previous owner from here either.
        let status = if holding { "holding" } else { "serving" };
        store.put(&format!("{APPLIED}{me}"), &format!("{epoch} {status}"), lease).await?;
    }
    let all_serving = others.iter().all(|id| state(id).1);
    if let Some(l) = leader.as_ref() {
        if let Some(next) = next_map(map.as_ref(), &members) {
            let expected = stored.map_or(0, |e| e.mod_revision);
            match store.write_as_leader(l, MAP_KEY, &encode(&next), expected).await? {
                Written::Done => tracing::info!(epoch = next.epoch, members = members.len(), "cluster: new slot map"),
                // Another change is on its way to the watch.
                Written::Stale => {}
                Written::NotLeader => *leader = None,
            }
        }
    }
    let others = members.iter().any(|m| !m.leaving && m.addr.client() != local.me.client());
    Ok(Seen { others, all_serving })
}

/// Renews `lease` every third of its TTL until it expires.
async fn renew<S: MembershipStore>(
    store: S,
    lease: i64,
    ttl: Duration,
    local: Rc<Local>,
    events: mpsc::UnboundedSender<Event>,
) {
    let every = ttl / 3;
    loop {
        tokio::time::sleep(every).await;
        let sent = Instant::now();
        match tokio::time::timeout(every, store.keep_alive(lease)).await {
            Ok(Ok(Some(remaining))) => {
                tracing::debug!(?remaining, took = ?sent.elapsed(), "cluster: lease renewed");
                local.valid_until.set(sent + remaining);
                local.renewed.notify_one();
                let _ = events.send(Event::Renewed);
            }
            Ok(Ok(None)) => {
                let _ = events.send(Event::Expired);
                return;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster: lease renewal failed"),
            Err(_) => tracing::warn!("cluster: lease renewal timed out"),
        }
    }
}

/// Fences this node when its lease's deadline passes unrenewed.
async fn fence_when_due(local: Rc<Local>) {
    loop {
        let due = local.valid_until.get();
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {
                if local.valid_until.get() <= Instant::now() {
                    local.fence(true);
                    local.renewed.notified().await;
                }
            }
            _ = local.renewed.notified() => {}
        }
    }
}

/// Reports every change under the prefix.
async fn watch<S: MembershipStore>(store: S, events: mpsc::UnboundedSender<Event>) {
    let mut revision = 0;
    loop {
        let next = match revision {
            0 => store.snapshot().await.map(|s| s.revision),
            _ => store.changed(revision).await,
        };
        match next {
            Ok(next) => {
                revision = next;
                if events.send(Event::Changed).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster: watching etcd failed");
                revision = 0;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Campaigns with `lease` until elected.
async fn campaign<S: MembershipStore>(store: S, lease: i64, id: String, events: mpsc::UnboundedSender<Event>) {
    loop {
        match store.campaign(lease, &id).await {
            Ok(leader) => {
                tracing::info!("cluster: this node coordinates");
                let _ = events.send(Event::Elected(leader));
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cluster: campaign failed"),
        }
        tokio::time::sleep(RETRY).await;
    }
}
