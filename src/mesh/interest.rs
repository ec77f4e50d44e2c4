//! Interest as plain data: which channels and patterns each peer node
//! wants (`RemoteInterest`, consulted for every forwarded publish), and
//! how many of this node's subscriptions want each name (`LocalInterest`,
//! which decides what this node announces). No actor, no link, no frame.

use std::collections::HashMap;

use bytes::Bytes;
use foldhash::fast::FixedState;
use smallvec::SmallVec;

use crate::broker::pattern_set::PatternSet;
use crate::broker::Name;

/// A peer node, by its index in the topology.
pub(crate) type Peer = usize;

/// Channel or pattern: the two kinds of classic interest (shard channels
/// are served by their slot's node alone and never cross).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Interest {
    Channel,
    Pattern,
}

/// What each peer has said it wants.
#[derive(Default)]
pub(crate) struct RemoteInterest {
    /// Fixed-seed hashing, as everywhere whose order could reach the
    /// simulator's trace.
    channels: HashMap<Bytes, SmallVec<[Peer; 2]>, FixedState>,
    /// Each pattern with the peers that want it (a peer is the pattern
    /// set's "client").
    patterns: PatternSet<Peer>,
}

impl RemoteInterest {
    pub(crate) fn add(&mut self, peer: Peer, kind: Interest, name: Bytes) {
        match kind {
            Interest::Channel => {
                let peers = self.channels.entry(name).or_default();
                if !peers.contains(&peer) {
                    peers.push(peer);
                }
            }
            Interest::Pattern => self.patterns.insert(Name::from(&name[..]), peer),
        }
    }

    pub(crate) fn remove(&mut self, peer: Peer, kind: Interest, name: &[u8]) {
        match kind {
            Interest::Channel => {
                if let Some(peers) = self.channels.get_mut(name) {
                    peers.retain(|p| *p != peer);
                    if peers.is_empty() {
                        self.channels.remove(name);
                    }
                }
            }
            Interest::Pattern => self.patterns.remove(name, peer as u64),
        }
    }

    /// Forgets everything `peer` wanted (it announces anew on each link).
    pub(crate) fn clear(&mut self, peer: Peer) {
        self.channels.retain(|_, peers| {
            peers.retain(|p| *p != peer);
            !peers.is_empty()
        });
        for pattern in self.patterns.patterns() {
            self.patterns.remove(&pattern, peer as u64);
        }
    }

    /// The peers wanting a publish to `channel`, each once, in index order.
    pub(crate) fn peers_for(&self, channel: &[u8]) -> SmallVec<[Peer; 4]> {
        let mut out: SmallVec<[Peer; 4]> =
            self.channels.get(channel).map(|p| p.iter().copied().collect()).unwrap_or_default();
        if self.patterns.len() > 0 {
            for (_, matched) in self.patterns.matching(channel) {
                out.extend(matched.subscribers().copied());
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.len() == 0
    }

    /// How many (peer, name) pairs are wanted, for INFO.
    pub(crate) fn len(&self) -> usize {
        self.channels.values().map(|p| p.len()).sum::<usize>() + self.patterns.len()
    }
}

/// How many of this node's subscriptions want each name.
#[derive(Default)]
pub(crate) struct LocalInterest {
    counts: HashMap<(Interest, Bytes), usize, FixedState>,
}

impl LocalInterest {
    /// Counts one more subscription to `name`; true if it is the first
    /// (the name must be announced).
    pub(crate) fn want(&mut self, kind: Interest, name: Bytes) -> bool {
        let count = self.counts.entry((kind, name)).or_default();
        *count += 1;
        *count == 1
    }

    /// Counts one subscription fewer; true if it was the last (the name
    /// must be withdrawn).
    pub(crate) fn unwant(&mut self, kind: Interest, name: Bytes) -> bool {
        let key = (kind, name);
        let Some(count) = self.counts.get_mut(&key) else { return false };
        *count -= 1;
        if *count == 0 {
            self.counts.remove(&key);
            return true;
        }
        false
    }

    /// Every name wanted, for a link that has just come up.
    pub(crate) fn all(&self) -> impl Iterator<Item = &(Interest, Bytes)> {
        self.counts.keys()
    }

    pub(crate) fn len(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn a_publish_goes_to_each_interested_peer_once() {
        let mut r = RemoteInterest::default();
        r.add(2, Interest::Channel, b("news"));
        r.add(1, Interest::Pattern, b("n*"));
        r.add(2, Interest::Pattern, b("ne*"));
        r.add(2, Interest::Channel, b("news"));
        assert_eq!(r.peers_for(b"news").as_slice(), [1, 2]);
        assert_eq!(r.peers_for(b"nothing").as_slice(), [1]);
        assert!(r.peers_for(b"sport").is_empty());
        r.remove(2, Interest::Channel, b"news");
        assert_eq!(r.peers_for(b"news").as_slice(), [1, 2], "peer 2's pattern still matches");
        r.remove(2, Interest::Pattern, b"ne*");
        assert_eq!(r.peers_for(b"news").as_slice(), [1]);
        r.clear(1);
        assert!(r.is_empty());
    }

    #[test]
    fn clearing_a_peer_leaves_the_others() {
        let mut r = RemoteInterest::default();
        for peer in [1, 2] {
            r.add(peer, Interest::Channel, b("a"));
            r.add(peer, Interest::Pattern, b("a*"));
        }
        r.clear(1);
        assert_eq!(r.peers_for(b"a").as_slice(), [2]);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn local_interest_announces_the_first_and_withdraws_the_last() {
        let mut l = LocalInterest::default();
        assert!(l.want(Interest::Channel, b("a")));
        assert!(!l.want(Interest::Channel, b("a")));
        assert!(l.want(Interest::Pattern, b("a")), "a pattern is another name");
        assert!(!l.unwant(Interest::Channel, b("a")));
        assert!(l.unwant(Interest::Channel, b("a")));
        assert!(!l.unwant(Interest::Channel, b("a")), "never below zero");
        assert_eq!(l.len(), 1);
    }
}
