//! ACL LOG: the newest refusals (wrong passwords, commands and channels a
//! user may not use), grouped as Redis groups them. A plain structure; the
//! client registry owns it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Redis groups a refusal with an equal one less than 60 s old.
const GROUPING: Duration = Duration::from_secs(60);

/// One refusal as a session saw it.
#[derive(Debug, Clone)]
pub(crate) struct Denial {
    /// `auth`, `command` or `channel`.
    pub reason: &'static str,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    /// The command, the channel, or `auth`.
    pub object: String,
    pub username: String,
    /// The client's CLIENT LIST line, when it was refused.
    pub client_info: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub count: u64,
    pub denial: Denial,
    pub last: Instant,
}

#[derive(Default)]
pub(crate) struct AclLog {
    entries: VecDeque<Entry>,
}

impl AclLog {
    /// Adds a refusal, or counts it on an equal recent one (which then
    /// moves to the front with the newer client info).
    pub(crate) fn add(&mut self, denial: Denial, now: Instant, max_len: usize) {
        let same = |e: &Entry| {
            e.denial.reason == denial.reason
                && e.denial.context == denial.context
                && e.denial.object == denial.object
                && e.denial.username == denial.username
                && now.duration_since(e.last) < GROUPING
        };
        let entry = match self.entries.iter().position(same) {
            Some(i) => {
                let mut e = self.entries.remove(i).expect("found");
                e.count += 1;
                e.denial.client_info = denial.client_info;
                e.last = now;
                e
            }
            None => Entry { count: 1, denial, last: now },
        };
        self.entries.push_front(entry);
        self.entries.truncate(max_len);
    }

    /// Newest first.
    pub(crate) fn newest(&self, count: usize) -> impl Iterator<Item = &Entry> {
        self.entries.iter().take(count)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(object: &str) -> Denial {
        Denial {
            reason: "channel",
            context: "toplevel",
            object: object.into(),
            username: "alice".into(),
            client_info: format!("id={object}"),
        }
    }

    #[test]
    fn equal_refusals_group_within_a_minute() {
        let mut log = AclLog::default();
        let t = Instant::now();
        log.add(denial("a"), t, 10);
        log.add(denial("b"), t, 10);
        log.add(denial("a"), t + Duration::from_secs(1), 10);
        let e: Vec<_> = log.newest(10).map(|e| (e.denial.object.clone(), e.count)).collect();
        assert_eq!(e, [("a".to_string(), 2), ("b".to_string(), 1)]);
        log.add(denial("a"), t + Duration::from_secs(120), 10);
        assert_eq!(log.newest(10).count(), 3, "an old entry is not grouped with");
        log.add(denial("c"), t, 2);
        assert_eq!(log.newest(10).count(), 2);
        log.clear();
        assert_eq!(log.newest(10).count(), 0);
    }
}
