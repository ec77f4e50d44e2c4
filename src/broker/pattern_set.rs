//! Pattern subscriptions as a plain data structure: insert, remove, match.
//! The `PatternIndex` actor is a shell around it; nothing here knows about
//! actors, frames or deliveries.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::BuildHasher;

use bytes::Bytes;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use indexmap::IndexMap;

use super::{ClientId, Name, Subscriber};
use crate::glob;

/// What a pattern set holds for one subscriber of a pattern: it knows
/// whose it is, so the set need not keep the client beside it.
pub(crate) trait Held {
    fn holder(&self) -> ClientId;
}

impl Held for Subscriber {
    fn holder(&self) -> ClientId {
        self.client()
    }
}

/// A peer node (the mesh's pattern interest): its index is its id.
impl Held for usize {
    fn holder(&self) -> ClientId {
        *self as ClientId
    }
}

/// Every pattern with subscribers, each with its subscribers by client.
/// A channel is only glob-matched against patterns whose literal prefix
/// (the part before the first `*`, `?` or `[`) is a prefix of the channel,
/// so idle patterns under other prefixes cost nothing (BENCHMARKS.md: 100k
/// idle patterns keep 99 % of the publish rate), and a released pattern
/// leaves no trace.
///
/// Kept small because one pattern per user is common (`user:42:*`): the
/// patterns are grouped by prefix in one hash table, one bucket per prefix,
/// and a prefix with one pattern of one subscriber is that bucket, inline
/// (`Bucket::Lone`, 48 bytes). A map of patterns beside a B-tree of
/// prefixes, each entry holding its name, was 289 bytes a pattern at 100k
/// (BENCHMARKS.md, session 10).
pub(crate) struct PatternSet<T> {
    /// Hashed by the bucket's literal prefix.
    buckets: HashTable<Bucket<T>>,
    /// How many buckets have a prefix of each length: a channel is looked
    /// up at those lengths only (usually one or two).
    lengths: BTreeMap<usize, usize>,
    patterns: usize,
    /// Fixed-seed, as everywhere whose order could reach the simulator's
    /// trace (`patterns()` iterates the table).
    hasher: FixedState,
}

/// The patterns of one literal prefix, never empty.
enum Bucket<T> {
    /// One pattern with one subscriber.
    Lone(Name, T),
    /// Several patterns of this prefix, or one with several subscribers.
    Shared(Box<IndexMap<Name, Holders<T>>>),
}

/// A pattern's subscribers, never none.
enum Holders<T> {
    One(T),
    Many(Box<IndexMap<ClientId, T>>),
}

/// The subscribers of a pattern a channel matched (`PatternSet::matching`):
/// found with the pattern, so a publish looks each prefix up once.
pub(crate) struct Matched<'a, T>(Found<'a, T>);

enum Found<'a, T> {
    One(&'a T),
    Holders(&'a Holders<T>),
}

impl<'a, T: Held> Matched<'a, T> {
    pub(crate) fn subscribers(&self) -> impl Iterator<Item = &'a T> {
        let (one, holders) = match self.0 {
            Found::One(v) => (Some(v), None),
            Found::Holders(h) => (None, Some(h.values())),
        };
        one.into_iter().chain(holders.into_iter().flatten())
    }
}

impl<T> Default for PatternSet<T> {
    fn default() -> Self {
        PatternSet { buckets: HashTable::new(), lengths: BTreeMap::new(), patterns: 0, hasher: FixedState::default() }
    }
}

impl<T: Held> Holders<T> {
    fn insert(&mut self, value: T) {
        match self {
            Holders::One(v) if v.holder() == value.holder() => *v = value,
            Holders::One(_) => {
                let Holders::One(v) = std::mem::replace(self, Holders::Many(Box::default())) else {
                    unreachable!("matched One")
                };
                let mut map = IndexMap::with_capacity(2);
                map.insert(v.holder(), v);
                map.insert(value.holder(), value);
                *self = Holders::Many(Box::new(map));
            }
            Holders::Many(map) => {
                map.insert(value.holder(), value);
            }
        }
    }

    /// Removes `client`; true if none is left.
    fn remove(&mut self, client: ClientId) -> bool {
        match self {
            Holders::One(v) => v.holder() == client,
            Holders::Many(map) => {
                map.swap_remove(&client);
                if map.len() == 1 {
                    let (_, v) = map.pop().expect("one left");
                    *self = Holders::One(v);
                }
                false
            }
        }
    }

    fn values<'a>(&'a self) -> impl Iterator<Item = &'a T> + 'a {
        let (one, many) = match self {
            Holders::One(v) => (Some(v), None),
            Holders::Many(map) => (None, Some(map.values())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

impl<T: Held> Bucket<T> {
    /// The prefix every pattern here shares.
    fn prefix(&self) -> Cow<'_, [u8]> {
        glob::literal_prefix(self.patterns().next().expect("a bucket is never empty"))
    }

    fn patterns(&self) -> impl Iterator<Item = &Name> {
        let (one, many) = match self {
            Bucket::Lone(pattern, _) => (Some(pattern), None),
            Bucket::Shared(map) => (None, Some(map.keys())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Each pattern with its subscribers.
    fn entries(&self) -> impl Iterator<Item = (&Name, Matched<'_, T>)> {
        let (one, many) = match self {
            Bucket::Lone(pattern, v) => (Some((pattern, Matched(Found::One(v)))), None),
            Bucket::Shared(map) => (None, Some(map.iter().map(|(p, h)| (p, Matched(Found::Holders(h)))))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Adds `value` under `pattern` (replacing its holder's earlier one);
    /// true if the pattern is new.
    fn insert(&mut self, pattern: Name, value: T) -> bool {
        if let Bucket::Lone(p, v) = self {
            if *p == pattern && v.holder() == value.holder() {
                *v = value;
                return false;
            }
            let Bucket::Lone(p, v) = std::mem::replace(self, Bucket::Shared(Box::default())) else {
                unreachable!("matched Lone")
            };
            let mut map = IndexMap::with_capacity(2);
            map.insert(p, Holders::One(v));
            *self = Bucket::Shared(Box::new(map));
        }
        let Bucket::Shared(map) = self else { unreachable!("made Shared") };
        match map.get_mut(pattern.as_slice()) {
            Some(holders) => {
                holders.insert(value);
                false
            }
            None => {
                map.insert(pattern, Holders::One(value));
                true
            }
        }
    }

    /// Removes `client` from `pattern`: whether the pattern went, and
    /// whether the bucket is empty.
    fn remove(&mut self, pattern: &[u8], client: ClientId) -> (bool, bool) {
        let map = match self {
            Bucket::Lone(p, v) => {
                let gone = p.as_slice() == pattern && v.holder() == client;
                return (gone, gone);
            }
            Bucket::Shared(map) => map,
        };
        let gone = map.get_mut(pattern).is_some_and(|holders| holders.remove(client));
        if gone {
            map.swap_remove(pattern);
        }
        if map.len() == 1 && matches!(map[0], Holders::One(_)) {
            let (p, Holders::One(v)) = map.pop().expect("one left") else { unreachable!("matched One") };
            *self = Bucket::Lone(p, v);
        }
        (gone, matches!(self, Bucket::Shared(map) if map.is_empty()))
    }
}

impl<T: Held> PatternSet<T> {
    fn hash(&self, prefix: &[u8]) -> u64 {
        self.hasher.hash_one(prefix)
    }

    fn bucket(&self, prefix: &[u8]) -> Option<&Bucket<T>> {
        self.buckets.find(self.hash(prefix), |b| *b.prefix() == *prefix)
    }

    /// Subscribes `value`'s holder to `pattern` (replacing its earlier
    /// entry there).
    pub(crate) fn insert(&mut self, pattern: Name, value: T) {
        let prefix = glob::literal_prefix(&pattern).into_owned();
        let hash = self.hash(&prefix);
        if let Some(bucket) = self.buckets.find_mut(hash, |b| *b.prefix() == *prefix) {
            self.patterns += usize::from(bucket.insert(pattern, value));
            return;
        }
        let hasher = &self.hasher;
        self.buckets.insert_unique(hash, Bucket::Lone(pattern, value), |b| hasher.hash_one(&*b.prefix()));
        *self.lengths.entry(prefix.len()).or_default() += 1;
        self.patterns += 1;
    }

    /// Unsubscribes `client` from `pattern`; the pattern goes when its last
    /// subscriber does, and its bucket with its last pattern.
    pub(crate) fn remove(&mut self, pattern: &[u8], client: ClientId) {
        let prefix = glob::literal_prefix(pattern);
        let hash = self.hash(&prefix);
        let Ok(mut entry) = self.buckets.find_entry(hash, |b| *b.prefix() == *prefix) else {
            return;
        };
        let (gone, empty) = entry.get_mut().remove(pattern, client);
        self.patterns -= usize::from(gone);
        if !empty {
            return;
        }
        entry.remove();
        if let Some(count) = self.lengths.get_mut(&prefix.len()) {
            *count -= 1;
            if *count == 0 {
                self.lengths.remove(&prefix.len());
            }
        }
        // Give memory back once most patterns are gone (the table never
        // shrinks by itself).
        if self.buckets.len() * 4 < self.buckets.capacity() {
            let hasher = &self.hasher;
            self.buckets.shrink_to(self.buckets.len() * 2, |b| hasher.hash_one(&*b.prefix()));
        }
    }

    /// The patterns `channel` matches, each with its subscribers.
    pub(crate) fn matching(&self, channel: &[u8]) -> Vec<(&Name, Matched<'_, T>)> {
        self.lengths
            .keys()
            .take_while(|&&len| len <= channel.len())
            .filter_map(|&len| self.bucket(&channel[..len]))
            .flat_map(Bucket::entries)
            .filter(|(pattern, _)| glob::matches(pattern, channel))
            .collect()
    }

    /// `pattern`'s subscribers (none if it has none).
    #[cfg(test)]
    fn subscribers<'a>(&'a self, pattern: &'a [u8]) -> impl Iterator<Item = &'a T> + 'a {
        self.bucket(&glob::literal_prefix(pattern))
            .into_iter()
            .flat_map(Bucket::entries)
            .filter(move |(p, _)| p.as_slice() == pattern)
            .flat_map(|(_, matched)| matched.subscribers())
    }

    /// Every pattern held.
    pub(crate) fn patterns(&self) -> Vec<Bytes> {
        self.buckets.iter().flat_map(Bucket::patterns).map(|p| Bytes::copy_from_slice(p)).collect()
    }

    /// The number of distinct patterns (PUBSUB NUMPAT).
    pub(crate) fn len(&self) -> usize {
        self.patterns
    }

    /// Prefix buckets and prefix lengths held: none once every pattern is
    /// gone.
    #[cfg(test)]
    fn buckets(&self) -> (usize, usize) {
        (self.buckets.len(), self.lengths.len())
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

    /// A test's subscriber: its client and a label.
    impl Held for (ClientId, &'static str) {
        fn holder(&self) -> ClientId {
            self.0
        }
    }

    impl Held for u64 {
        fn holder(&self) -> ClientId {
            *self
        }
    }

    #[test]
    fn matches_by_prefix_and_forgets_released_patterns() {
        let mut set = PatternSet::default();
        set.insert(b("news.*"), (1, "a"));
        set.insert(b("news.*"), (2, "b"));
        set.insert(b("*"), (1, "c"));
        set.insert(b("sport.[ab]"), (3, "d"));
        let mut m: Vec<Name> = set.matching(b"news.x").into_iter().map(|(p, _)| p.clone()).collect();
        m.sort();
        assert_eq!(m, [b("*"), b("news.*")]);
        assert_eq!(set.matching(b"sport.a").len(), 2);
        assert!(set.matching(b"sport.c").iter().all(|(p, _)| **p == b("*")) && set.matching(b"sport.c").len() == 1);
        assert_eq!(set.subscribers(b"news.*").count(), 2);
        assert_eq!(set.len(), 3);
        set.remove(b"news.*", 1);
        assert_eq!(set.len(), 3, "one subscriber of news.* is left");
        set.remove(b"news.*", 2);
        set.remove(b"*", 1);
        set.remove(b"sport.[ab]", 3);
        set.remove(b"never", 9);
        assert_eq!((set.len(), set.buckets()), (0, (0, 0)));
        assert!(set.matching(b"news.x").is_empty());
    }

    /// Released patterns give their memory back: the table shrinks as
    /// they go, to within 4× what is left.
    #[test]
    fn the_table_shrinks_as_patterns_go() {
        let mut set = PatternSet::default();
        for i in 0..1000u64 {
            set.insert(b(&format!("p{i}:*")), i);
        }
        assert!(set.buckets.capacity() >= 1000);
        for i in 10..1000u64 {
            set.remove(format!("p{i}:*").as_bytes(), i);
        }
        assert_eq!(set.len(), 10);
        assert!(set.buckets.capacity() <= 40, "10 left in a table of {}", set.buckets.capacity());
        assert_eq!(set.matching(b"p5:x").len(), 1, "what is left still matches");
    }

    /// A session's subscriber is told apart by its session's client id:
    /// a second client is added, the same client again replaces its entry.
    #[actix_rt::test]
    async fn subscribers_are_told_apart_by_their_client() {
        let sub = |client, token| Subscriber { token, inbox: crate::broker::test_inbox(client, 0) };
        let tokens = |set: &PatternSet<Subscriber>| -> BTreeSet<u64> {
            set.matching(b"ab").iter().flat_map(|(_, m)| m.subscribers().map(|s| s.token)).collect()
        };
        let mut set = PatternSet::default();
        set.insert(b("a*"), sub(1, 10));
        set.insert(b("a*"), sub(2, 20));
        set.insert(b("a*"), sub(1, 11));
        assert_eq!(tokens(&set), BTreeSet::from([11, 20]));
        set.remove(b"a*", 1);
        assert_eq!(tokens(&set), BTreeSet::from([20]));
        set.remove(b"a*", 2);
        assert_eq!((set.len(), set.buckets()), (0, (0, 0)));
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
                    set.insert(b(p), *client);
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
                let matched = set.matching(c.as_bytes());
                let got: BTreeSet<Name> = matched.iter().map(|(p, _)| (*p).clone()).collect();
                prop_assert_eq!(got.len(), matched.len(), "a pattern matched twice");
                let want: BTreeSet<Name> = model
                    .keys()
                    .filter(|p| glob::reference::matches(p.as_bytes(), c.as_bytes()))
                    .map(|p| b(p))
                    .collect();
                prop_assert_eq!(&got, &want, "channel {:?}", c);
                for (p, subscribers) in &matched {
                    let subs: BTreeSet<u64> = subscribers.subscribers().copied().collect();
                    prop_assert_eq!(&subs, &model[std::str::from_utf8(p).unwrap()]);
                    prop_assert_eq!(set.subscribers(p).count(), subs.len());
                }
            }
            for (p, clients) in std::mem::take(&mut model) {
                for client in clients {
                    set.remove(p.as_bytes(), client);
                }
            }
            prop_assert_eq!((set.len(), set.buckets()), (0, (0, 0)));
        }
    }
}
