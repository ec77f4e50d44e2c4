//! What one session is subscribed to.

use std::collections::BTreeSet;

use bytes::Bytes;
use indexmap::IndexMap;

use crate::broker::Name;
use crate::protocol::push::Kind;

/// A session's channels, patterns and shard channels, each with the token
/// its deliveries carry. Tokens are never reused, so a delivery that was in
/// flight when its subscription ended is recognised and dropped, even if
/// the session has subscribed to the same name again since.
#[derive(Default)]
pub(crate) struct Subscriptions {
    channels: IndexMap<Name, u64>,
    patterns: IndexMap<Name, u64>,
    shard: IndexMap<Name, u64>,
    live: BTreeSet<u64>,
    next_token: u64,
}

impl Subscriptions {
    fn table(&self, kind: Kind) -> &IndexMap<Name, u64> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    fn table_mut(&mut self, kind: Kind) -> &mut IndexMap<Name, u64> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// Adds a subscription whose deliveries are dropped until `confirm`:
    /// it is counted, and its name taken, at once. `Some(token)` if new.
    pub(crate) fn add_pending(&mut self, kind: Kind, name: &Name) -> Option<u64> {
        if self.table(kind).contains_key(name) {
            return None;
        }
        self.next_token += 1;
        let token = self.next_token;
        self.table_mut(kind).insert(name.clone(), token);
        Some(token)
    }

    /// Makes a pending subscription's deliveries written from now.
    pub(crate) fn confirm(&mut self, token: u64) {
        self.live.insert(token);
    }

    /// Removes a subscription; true if it existed.
    pub(crate) fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        self.take(kind, name).map(|token| self.retire(token)).is_some()
    }

    /// Removes a subscription from the names (and counts) but keeps its
    /// token live, so deliveries already on their way are still written,
    /// until `retire`. Its token if it existed.
    pub(crate) fn take(&mut self, kind: Kind, name: &[u8]) -> Option<u64> {
        self.table_mut(kind).swap_remove(name)
    }

    /// Ends a token taken by `take`: its deliveries are dropped from now.
    pub(crate) fn retire(&mut self, token: u64) {
        self.live.remove(&token);
    }

    pub(crate) fn is_live(&self, token: u64) -> bool {
        self.live.contains(&token)
    }

    /// The names of `kind`, each copied out (for a command that leaves
    /// them all, or a check over them: not the publish path).
    pub(crate) fn names(&self, kind: Kind) -> Vec<Bytes> {
        self.table(kind).keys().map(|name| Bytes::copy_from_slice(name)).collect()
    }

    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.table(kind).len()
    }

    /// Channels plus patterns: the count (UN)SUBSCRIBE and P(UN)SUBSCRIBE
    /// confirmations report. Shard channels are counted on their own.
    pub(crate) fn classic(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether RESP2's subscribed context applies.
    pub(crate) fn any(&self) -> bool {
        !self.live.is_empty()
    }
}
