//! SLOWLOG's list: the newest commands that took longer than
//! `slowlog-log-slower-than`, at most `slowlog-max-len` of them. A plain
//! structure; the diagnostics actor owns it.

use std::collections::VecDeque;

use bytes::Bytes;

/// Redis' `SLOWLOG_ENTRY_MAX_ARGC` and `SLOWLOG_ENTRY_MAX_STRING`.
const MAX_ARGS: usize = 32;
const MAX_STRING: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlowEntry {
    pub id: u64,
    /// Unix seconds when the command ran.
    pub time: u64,
    pub micros: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: String,
}

#[derive(Default)]
pub(crate) struct SlowLog {
    entries: VecDeque<SlowEntry>,
    next_id: u64,
}

impl SlowLog {
    /// Adds a command, trimmed as Redis trims it (32 arguments, 128 bytes
    /// each), and drops the oldest beyond `max_len`.
    pub(crate) fn add(&mut self, time: u64, micros: u64, args: &[Bytes], peer: String, name: String, max_len: usize) {
        let shown = args.len().min(MAX_ARGS);
        let mut kept = Vec::with_capacity(shown);
        for (i, arg) in args.iter().take(shown).enumerate() {
            if shown != args.len() && i == shown - 1 {
                kept.push(Bytes::from(format!("... ({} more arguments)", args.len() - shown + 1)));
            } else if arg.len() > MAX_STRING {
                let mut cut = arg[..MAX_STRING].to_vec();
                cut.extend_from_slice(format!("... ({} more bytes)", arg.len() - MAX_STRING).as_bytes());
                kept.push(Bytes::from(cut));
            } else {
                kept.push(arg.clone());
            }
        }
        self.entries.push_front(SlowEntry { id: self.next_id, time, micros, args: kept, peer, name });
        self.next_id += 1;
        self.entries.truncate(max_len);
    }

    /// The newest `count` entries (all if `None`), newest first.
    pub(crate) fn newest(&self, count: Option<usize>) -> impl Iterator<Item = &SlowEntry> {
        self.entries.iter().take(count.unwrap_or(usize::MAX))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// SLOWLOG RESET (ids keep counting, as in Redis).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// CONFIG SET slowlog-max-len takes effect at once.
    pub(crate) fn trim(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(format!("a{i}"))).collect()
    }

    #[test]
    fn keeps_the_newest_and_trims_arguments_as_redis() {
        let mut log = SlowLog::default();
        for i in 0..5 {
            log.add(100 + i, 10, &args(2), "p".into(), String::new(), 3);
        }
        let ids: Vec<u64> = log.newest(None).map(|e| e.id).collect();
        assert_eq!(ids, [4, 3, 2]);
        assert_eq!(log.newest(Some(1)).count(), 1);

        log.add(0, 1, &args(40), "p".into(), "n".into(), 3);
        let e = log.newest(Some(1)).next().unwrap();
        assert_eq!(e.args.len(), 32);
        assert_eq!(e.args[31], Bytes::from("... (9 more arguments)"));
        assert_eq!(e.args[30], Bytes::from("a30"));

        log.add(0, 1, &[Bytes::from(vec![b'x'; 130])], "p".into(), "n".into(), 3);
        let e = log.newest(Some(1)).next().unwrap();
        assert!(e.args[0].ends_with(b"x... (2 more bytes)") && e.args[0].len() == 128 + 18);

        log.clear();
        assert_eq!(log.len(), 0);
        log.add(0, 1, &args(1), "p".into(), "n".into(), 3);
        assert_eq!(log.newest(None).next().unwrap().id, 7, "ids go on after a reset");
    }
}
