//! What membership needs from a coordination service, as a trait: etcd in
//! production (`etcd.rs`), a deterministic stand-in in the simulator. Only
//! what the members' protocol (`mod.rs`) uses: leases, keys bound to them,
//! a snapshot of the cluster's keys at one revision, waiting for a change,
//! one elected coordinator, and a write only that coordinator can make.
//!
//! Keys are relative to the cluster's prefix (`/herald/<name>/`).

use std::future::Future;
use std::time::Duration;

/// A coordination service's failure, as text (it is logged, never shown
/// to clients).
pub type StoreResult<T> = Result<T, String>;

/// One key's value and the revision that last changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub mod_revision: i64,
}

/// Every key under the cluster's prefix, at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub revision: i64,
    pub entries: Vec<Entry>,
}

impl Snapshot {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// An elected coordinator: the election key its lease holds, and the
/// revision that created it (a later holder's is another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub key: Vec<u8>,
    pub revision: i64,
}

/// What a coordinator's conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The key changed since the revision given: read again.
    Stale,
    /// This leadership is over (its lease expired or was revoked).
    NotLeader,
}

/// A coordination service (etcd's API, as far as membership uses it).
pub trait MembershipStore: Clone + 'static {
    /// A new lease of about `ttl` (the service may round it up); its id
    /// and the TTL granted.
    fn grant(&self, ttl: Duration) -> impl Future<Output = StoreResult<(i64, Duration)>>;
    /// Refreshes `lease`: the TTL it has from now, or `None` if it has
    /// expired (its keys are gone).
    fn keep_alive(&self, lease: i64) -> impl Future<Output = StoreResult<Option<Duration>>>;
    /// Ends `lease` now, deleting its keys.
    fn revoke(&self, lease: i64) -> impl Future<Output = StoreResult<()>>;
    /// Puts `key`, bound to `lease`: it goes when the lease does.
    fn put(&self, key: &str, value: &str, lease: i64) -> impl Future<Output = StoreResult<()>>;
    /// Every key, at one revision.
    fn snapshot(&self) -> impl Future<Output = StoreResult<Snapshot>>;
    /// Waits until some key changes after `revision`; the revision of
    /// the change.
    fn changed(&self, revision: i64) -> impl Future<Output = StoreResult<i64>>;
    /// Waits until `lease` is the elected coordinator.
    fn campaign(&self, lease: i64, value: &str) -> impl Future<Output = StoreResult<Leader>>;
    /// Puts `key` (bound to no lease) if `leader` still leads and `key`'s
    /// last change is `expected` (0: it does not exist).
    fn write_as_leader(
        &self,
        leader: &Leader,
        key: &str,
        value: &str,
        expected: i64,
    ) -> impl Future<Output = StoreResult<Written>>;
}
