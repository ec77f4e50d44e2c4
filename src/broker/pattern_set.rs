//! Pattern subscriptions as a plain data structure: insert, remove, match.
//! The `PatternIndex` actor is a shell around it; nothing here knows about
//! actors, frames or deliveries.

use std::collections::BTreeMap;

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};

use super::{ClientId, Name};
use crate::glob;

/// Every pattern with subscribers, each with its subscribers by client.
/// A channel is only glob-matched against patterns whose literal prefix
/// (the part before the first `*`, `?` or `[`) is a prefix of the channel,
/// so idle patterns under other prefixes cost nothing (BENCHMARKS.md: 100k
/// idle patterns keep 99 % of the publish rate), and a released pattern
/// leaves no trace.
///
/// Kept small because one pattern per user is common: most patterns have
/// one subscriber and most prefixes one pattern, and those are held inline
/// (`Holders::One`, `Bucket::One`); names are `Name`s (inline up to 23
/// bytes, shared beyond). A map for each was 850 bytes a pattern at 100k
/// (BENCHMARKS.md, session 9).
pub(crate) struct PatternSet<T> {
    patterns: IndexMap<Name, Holders<T>>,
    by_prefix: BTreeMap<Name, Bucket>,
}

/// A pattern's subscribers.
enum Holders<T> {
    One(ClientId, T),
    Many(Box<IndexMap<ClientId, T>>),
}

/// The patterns of one literal prefix.
enum Bucket {
    One(Name),
    Many(Box<IndexSet<Name>>),
}

impl<T> Default for PatternSet<T> {
    fn default() -> Self {
        PatternSet { patterns: IndexMap::new(), by_prefix: BTreeMap::new() }
    }
}

impl<T> Holders<T> {
    fn insert(&mut self, client: ClientId, value: T) {
        match self {
            Holders::One(c, v) if *c == client => *v = value,
            Holders::One(..) => {
                let mut map = IndexMap::with_capacity(2);
                let Holders::One(c, v) = std::mem::replace(self, Holders::Many(Box::default())) else {
                    unreachable!("matched One")
                };
                map.insert(c, v);
                map.insert(client, value);
                *self = Holders::Many(Box::new(map));
            }
            Holders::Many(map) => {
                map.insert(client, value);
            }
        }
    }

    /// Removes `client`; true if none is left.
    fn remove(&mut self, client: ClientId) -> bool {
        match self {
            Holders::One(c, _) => *c == client,
            Holders::Many(map) => {
                map.swap_remove(&client);
                if map.len() == 1 {
                    let (c, v) = map.pop().expect("one left");
                    *self = Holders::One(c, v);
                }
                false
            }
        }
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        let (one, many) = match self {
            Holders::One(_, v) => (Some(v), None),
            Holders::Many(map) => (None, Some(map.values())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

impl Bucket {
    fn insert(&mut self, pattern: Name) {
        match self {
            Bucket::One(one) => {
                let mut set = IndexSet::with_capacity(2);
                set.insert(one.clone());
                set.insert(pattern);
                *self = Bucket::Many(Box::new(set));
            }
            Bucket::Many(set) => {
                set.insert(pattern);
            }
        }
    }

    /// Removes `pattern`; true if the bucket is empty.
    fn remove(&mut self, pattern: &[u8]) -> bool {
        match self {
            Bucket::One(one) => one.as_slice() == pattern,
            Bucket::Many(set) => {
                set.swap_remove(pattern);
                if set.len() == 1 {
                    *self = Bucket::One(set.pop().expect("one left"));
                }
                false
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Name> {
        let (one, many) = match self {
            Bucket::One(p) => (Some(p), None),
            Bucket::Many(set) => (None, Some(set.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

impl<T> PatternSet<T> {
    /// Subscribes `client` to `pattern` (replacing its earlier entry there).
    pub(crate) fn insert(&mut self, pattern: Name, client: ClientId, value: T) {
        if let Some(holders) = self.patterns.get_mut(pattern.as_slice()) {
            return holders.insert(client, value);
        }
        let prefix = Name::from(glob::literal_prefix(&pattern));
        match self.by_prefix.get_mut(prefix.as_slice()) {
            Some(bucket) => bucket.insert(pattern.clone()),
            None => {
                self.by_prefix.insert(prefix, Bucket::One(pattern.clone()));
            }
        }
        self.patterns.insert(pattern, Holders::One(client, value));
    }

    /// Unsubscribes `client` from `pattern`; the pattern goes when its last
    /// subscriber does.
    pub(crate) fn remove(&mut self, pattern: &[u8], client: ClientId) {
        let Some(holders) = self.patterns.get_mut(pattern) else {
            return;
        };
        if !holders.remove(client) {
            return;
        }
        self.patterns.swap_remove(pattern);
        let prefix = glob::literal_prefix(pattern);
        if self.by_prefix.get_mut(prefix.as_slice()).is_some_and(|bucket| bucket.remove(pattern)) {
            self.by_prefix.remove(prefix.as_slice());
        }
    }

    /// The patterns `channel` matches.
    pub(crate) fn matching(&self, channel: &[u8]) -> Vec<Name> {
        (0..=channel.len())
            .filter_map(|end| self.by_prefix.get(&channel[..end]))
            .flat_map(Bucket::iter)
            .filter(|pattern| glob::matches(pattern, channel))
            .cloned()
            .collect()
    }

    /// `pattern`'s subscribers (none if it has none).
    pub(crate) fn subscribers(&self, pattern: &[u8]) -> impl Iterator<Item = &T> {
        self.patterns.get(pattern).into_iter().flat_map(Holders::values)
    }

    /// Every pattern held.
    pub(crate) fn patterns(&self) -> Vec<Bytes> {
        self.patterns.keys().map(|p| Bytes::copy_from_slice(p)).collect()
    }

    /// The number of distinct patterns (PUBSUB NUMPAT).
    pub(crate) fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Prefix buckets held: none once every pattern is gone.
    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.by_prefix.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    fn b(s: &str) -> Name {
        Name::from(s.as_bytes())
    }

    #[test]
    fn matches_by_prefix_and_forgets_released_patterns() {
        let mut set = PatternSet::default();
        set.insert(b("news.*"), 1, "a");
        set.insert(b("news.*"), 2, "b");
        set.insert(b("*"), 1, "c");
        set.insert(b("sport.[ab]"), 3, "d");
        let mut m = set.matching(b"news.x");
        m.sort();
        assert_eq!(m, [b("*"), b("news.*")]);
        assert_eq!(set.matching(b"sport.a").len(), 2);
        assert!(set.matching(b"sport.c").contains(&b("*")) && set.matching(b"sport.c").len() == 1);
        assert_eq!(set.subscribers(b"news.*").count(), 2);
        assert_eq!(set.len(), 3);
        set.remove(b"news.*", 1);
        assert_eq!(set.len(), 3, "one subscriber of news.* is left");
        set.remove(b"news.*", 2);
        set.remove(b"*", 1);
        set.remove(b"sport.[ab]", 3);
        set.remove(b"never", 9);
        assert_eq!((set.len(), set.buckets()), (0, 0));
        assert!(set.matching(b"news.x").is_empty());
    }

    /// Patterns and channels over a small alphabet, with glob syntax, so
    /// prefixes collide and patterns match often.
    fn pattern() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", ".", "*", "?", "[ab]", "[^a]", "\\*"]), 0..5)
            .prop_map(|parts| parts.concat())
    }

    fn channel() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", ".", "*", "["]), 0..6).prop_map(|p| p.concat())
    }

    proptest! {
        /// After any sequence of subscribes and unsubscribes, a channel
        /// matches exactly the live patterns the reference matcher says it
        /// does, each with its live subscribers; nothing stays behind.
        #[test]
        fn matching_agrees_with_the_reference_matcher(
            ops in prop::collection::vec((any::<bool>(), pattern(), 0..3u64), 1..40),
            channels in prop::collection::vec(channel(), 1..8),
        ) {
            let mut set = PatternSet::default();
            let mut model: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
            for (subscribe, p, client) in &ops {
                if *subscribe {
                    set.insert(b(p), *client, *client);
                    model.entry(p.clone()).or_default().insert(*client);
                } else {
                    set.remove(p.as_bytes(), *client);
                    if let Some(clients) = model.get_mut(p) {
                        clients.remove(client);
                        if clients.is_empty() {
                            model.remove(p);
                        }
                    }
                }
            }
            prop_assert_eq!(set.len(), model.len());
            for c in &channels {
                let got: BTreeSet<Name> = set.matching(c.as_bytes()).into_iter().collect();
                let want: BTreeSet<Name> = model
                    .keys()
                    .filter(|p| glob::reference::matches(p.as_bytes(), c.as_bytes()))
                    .map(|p| b(p))
                    .collect();
                prop_assert_eq!(&got, &want, "channel {:?}", c);
                for p in &got {
                    let subs: BTreeSet<u64> = set.subscribers(p).copied().collect();
                    prop_assert_eq!(&subs, &model[std::str::from_utf8(p).unwrap()]);
                }
            }
            for (p, clients) in std::mem::take(&mut model) {
                for client in clients {
                    set.remove(p.as_bytes(), client);
                }
            }
            prop_assert_eq!((set.len(), set.buckets()), (0, 0));
        }
    }
}
