//! What the clients saw: every publish with its reply, and each
//! subscriber's events in the order its connections delivered them.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use super::Kind;

#[derive(Debug, Clone, Hash)]
pub struct Publish {
    pub publisher: usize,
    /// Which of the publisher's connections sent it (from 1): Herald keeps
    /// order per connection, and a command a closed connection had sent
    /// may still run after its successor's.
    pub connection: usize,
    /// Numbered per publisher, across its connections; never sent twice.
    pub seq: u64,
    pub channel: String,
    pub shard: bool,
    pub size: usize,
    pub sent_at: Duration,
    /// The reply's count, if a reply came (none if the connection was
    /// lost first).
    pub reached: Option<u64>,
    pub replied_at: Duration,
}

#[derive(Debug, Clone, Hash)]
pub enum SubEvent {
    /// A connection was opened (the first, or again after a fault).
    Connected {
        at: Duration,
    },
    /// A subscribe was sent.
    Joining {
        kind: Kind,
        name: String,
        at: Duration,
    },
    /// A subscribe confirmation arrived, with the connection's count of
    /// subscriptions of its family (channels and patterns, or shard
    /// channels) it reported.
    Joined {
        kind: Kind,
        name: String,
        /// None where the client library keeps it to itself.
        count: Option<usize>,
        at: Duration,
    },
    /// An unsubscribe confirmation arrived (likewise).
    Unjoined {
        kind: Kind,
        name: String,
        count: Option<usize>,
        at: Duration,
    },
    /// An unsubscribe was sent.
    Leaving {
        kind: Kind,
        name: String,
        at: Duration,
    },
    Delivery {
        kind: Kind,
        pattern: Option<String>,
        channel: String,
        publisher: usize,
        seq: u64,
        at: Duration,
    },
    /// The server closed the connection (or it broke).
    Closed {
        at: Duration,
    },
    /// The subscriber closed it (end of run, or its fault).
    Left {
        at: Duration,
    },
}

#[derive(Debug, Default, Clone, Hash)]
pub struct FinalState {
    pub numpat: String,
    pub channels: String,
    pub shard_channels: String,
    pub sessions: String,
    pub channel_actors: String,
    /// Channel actors started by the last server (activations of dormant
    /// channels); more than there are channels means some were retired
    /// and woken again.
    pub channel_activations: String,
}

impl FinalState {
    /// Nothing left but the observer's own session.
    pub fn is_clean(&self) -> bool {
        self.numpat == "0"
            && self.channels.is_empty()
            && self.shard_channels.is_empty()
            && self.sessions == "1"
            && self.channel_actors == "0"
    }
}

/// Everything the clients saw.
#[derive(Debug, Default, Clone, Hash)]
pub struct Record {
    pub publishes: Vec<Publish>,
    pub subscribers: Vec<Vec<SubEvent>>,
    pub final_state: Option<FinalState>,
}

impl Record {
    pub fn hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        Hash::hash(self, &mut h);
        h.finish()
    }
}

pub(crate) fn now() -> Duration {
    turmoil::elapsed()
}

fn parse_payload(p: &str) -> Option<(usize, u64)> {
    let mut it = p.split(':');
    let publisher = it.next()?.strip_prefix('p')?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    Some((publisher, seq))
}

pub(crate) type Shared = Rc<RefCell<Record>>;

/// Records one frame a subscriber read.
pub(crate) fn record_frame(record: &Shared, me: usize, words: &[String]) {
    let at = now();
    let event = match words.first().map(String::as_str) {
        Some(verb @ ("subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe"))
            if words.len() == 3 =>
        {
            let (kind, leaving) = match verb {
                "subscribe" => (Kind::Channel, false),
                "psubscribe" => (Kind::Pattern, false),
                "ssubscribe" => (Kind::Shard, false),
                "unsubscribe" => (Kind::Channel, true),
                "punsubscribe" => (Kind::Pattern, true),
                _ => (Kind::Shard, true),
            };
            let Ok(count) = words[2].parse().map(Some) else { return };
            let name = words[1].clone();
            if leaving {
                SubEvent::Unjoined { kind, name, count, at }
            } else {
                SubEvent::Joined { kind, name, count, at }
            }
        }
        Some("message" | "smessage") if words.len() == 3 => {
            let kind = if words[0] == "message" { Kind::Channel } else { Kind::Shard };
            let Some(d) = delivery(kind, None, &words[1], &words[2]) else { return };
            d
        }
        Some("pmessage") if words.len() == 4 => {
            let Some(d) = delivery(Kind::Pattern, Some(&words[1]), &words[2], &words[3]) else { return };
            d
        }
        _ => return,
    };
    record.borrow_mut().subscribers[me].push(event);
}

/// A delivery of one of the publishers' messages (None for anything else,
/// such as the observer's probes).
pub(crate) fn delivery(kind: Kind, pattern: Option<&str>, channel: &str, payload: &str) -> Option<SubEvent> {
    let (publisher, seq) = parse_payload(payload)?;
    let (pattern, channel) = (pattern.map(str::to_string), channel.to_string());
    Some(SubEvent::Delivery { kind, pattern, channel, publisher, seq, at: now() })
}
