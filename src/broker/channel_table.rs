//! A directory's channels as a plain data structure: name → a handle (the
//! channel's actor, for the directory) and its subscriber count. The
//! `ChannelDirectory` actor is a shell around one per kind of channel;
//! nothing here knows about actors or messages.

use indexmap::IndexMap;

use super::Name;
use crate::glob;

/// Channel name → handle and count, looked up once per published run: a
/// fast fixed-seed hash (SipHash was 1 % of a pipelined publish's
/// instructions); iteration (PUBSUB CHANNELS) follows the table: insertion
/// order until a removal moves the last entry into the gap (`swap_remove`).
pub(crate) struct ChannelTable<H> {
    channels: IndexMap<Name, (H, usize), foldhash::fast::FixedState>,
}

impl<H> Default for ChannelTable<H> {
    fn default() -> Self {
        ChannelTable { channels: IndexMap::default() }
    }
}

/// What one subscriber leaving did to its channel.
pub(crate) enum Left<'a, H> {
    /// The channel keeps other subscribers.
    Stays(&'a mut H),
    /// That was the last one: the channel is gone, its handle returned.
    Gone(H),
}

impl<H> ChannelTable<H> {
    /// Counts one more subscriber of `name`, making its handle with `make`
    /// if the channel is new. Sessions subscribe each (channel, session)
    /// pair at most once, so the count is exact.
    pub(crate) fn join(&mut self, name: &Name, make: impl FnOnce() -> H) -> &mut H {
        let entry = self.channels.entry(name.clone()).or_insert_with(|| (make(), 0));
        entry.1 += 1;
        &mut entry.0
    }

    /// Counts one subscriber of `name` fewer; `None` if it has none.
    pub(crate) fn leave(&mut self, name: &[u8]) -> Option<Left<'_, H>> {
        let index = self.channels.get_index_of(name)?;
        let count = &mut self.channels[index].1;
        *count -= 1;
        if *count == 0 {
            let (_, (handle, _)) = self.channels.swap_remove_index(index).expect("present");
            return Some(Left::Gone(handle));
        }
        Some(Left::Stays(&mut self.channels[index].0))
    }

    pub(crate) fn get_mut(&mut self, name: &[u8]) -> Option<&mut H> {
        self.channels.get_mut(name).map(|(handle, _)| handle)
    }

    /// Every channel's name and handle.
    pub(crate) fn handles_mut(&mut self) -> impl Iterator<Item = (&Name, &mut H)> {
        self.channels.iter_mut().map(|(name, (handle, _))| (name, handle))
    }

    /// Subscribers of `name` (PUBSUB NUMSUB).
    pub(crate) fn count(&self, name: &[u8]) -> usize {
        self.channels.get(name).map_or(0, |(_, n)| *n)
    }

    /// The channels, those matching `pattern` if given (PUBSUB CHANNELS).
    pub(crate) fn names<'a>(&'a self, pattern: Option<&'a [u8]>) -> impl Iterator<Item = &'a Name> {
        self.channels.keys().filter(move |name| pattern.is_none_or(|p| glob::matches(p, name)))
    }

    pub(crate) fn len(&self) -> usize {
        self.channels.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_channel_lives_while_it_has_subscribers() {
        let mut table = ChannelTable::default();
        let mut made = 0;
        let news = Name::borrowed(b"news");
        table.join(&news, || {
            made += 1;
            "actor"
        });
        table.join(&news, || unreachable!("news exists"));
        assert_eq!((made, table.count(b"news"), table.len()), (1, 2, 1));
        assert!(matches!(table.leave(b"news"), Some(Left::Stays(&mut "actor"))));
        assert!(matches!(table.leave(b"news"), Some(Left::Gone("actor"))));
        assert!(table.leave(b"news").is_none());
        assert_eq!((table.count(b"news"), table.len()), (0, 0));
        assert!(table.get_mut(b"news").is_none());
    }

    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "."]), 1..4).prop_map(|p| p.concat())
    }

    proptest! {
        /// Against a model of counts: every subscribe and unsubscribe (an
        /// unsubscribe only of a channel the model has, as sessions send),
        /// the counts, the channels PUBSUB CHANNELS lists for a pattern (by
        /// the reference matcher), and a handle made exactly once per life.
        #[test]
        fn counts_and_listings_agree_with_a_model(
            ops in prop::collection::vec((any::<bool>(), name()), 1..60),
            patterns in prop::collection::vec(prop::sample::select(vec!["*", "a*", "?.*", "[ab]", "b"]), 1..4),
        ) {
            let mut table = ChannelTable::default();
            let mut model: BTreeMap<String, usize> = BTreeMap::new();
            let mut lives = 0u32;
            for (subscribe, n) in &ops {
                let key = Name::from(n.as_bytes());
                if *subscribe {
                    let life = lives;
                    let handle = *table.join(&key, || life);
                    if !model.contains_key(n) {
                        prop_assert_eq!(handle, lives, "a new channel gets a new handle");
                        lives += 1;
                    }
                    *model.entry(n.clone()).or_default() += 1;
                } else if let Some(count) = model.get_mut(n) {
                    *count -= 1;
                    let gone = *count == 0;
                    if gone {
                        model.remove(n);
                    }
                    let left = table.leave(n.as_bytes());
                    prop_assert!(matches!((left, gone), (Some(Left::Gone(_)), true) | (Some(Left::Stays(_)), false)));
                }
            }
            prop_assert_eq!(table.len(), model.len());
            for (n, count) in &model {
                prop_assert_eq!(table.count(n.as_bytes()), *count);
            }
            for p in &patterns {
                let got: BTreeSet<&[u8]> = table.names(Some(p.as_bytes())).map(|b| &b[..]).collect();
                let want: BTreeSet<&[u8]> =
                    model.keys().map(|n| n.as_bytes()).filter(|n| glob::reference::matches(p.as_bytes(), n)).collect();
                prop_assert_eq!(got, want);
            }
            prop_assert_eq!(table.names(None).count(), model.len());
        }
    }
}
