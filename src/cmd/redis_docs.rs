//! Redis 7.0.15's own COMMAND INFO and COMMAND DOCS entries for the
//! commands Herald has (`redis-7.0.15-commands.resp`, written by
//! `scripts/redis-commands` from a live redis-server), so Herald answers
//! both as Redis does: key positions and key specs (cluster clients route
//! SPUBLISH and SSUBSCRIBE by them), command tips, complexity, arguments.
//!
//! Knows nothing of which subcommands Herald has: `command.rs` puts
//! Herald's own list in place of Redis'.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::protocol::Reply;

const DATA: &[u8] = include_bytes!("redis-7.0.15-commands.resp");

/// Redis' entries by full name (`publish`, `client|kill`).
pub(crate) struct RedisDocs {
    info: HashMap<String, Reply>,
    docs: HashMap<String, Reply>,
}

impl RedisDocs {
    /// Redis' COMMAND INFO element for `name`.
    pub(crate) fn info(&self, name: &str) -> Option<&Reply> {
        self.info.get(name)
    }

    /// Redis' COMMAND DOCS map for `name`.
    pub(crate) fn docs(&self, name: &str) -> Option<&Reply> {
        self.docs.get(name)
    }
}

pub(crate) fn redis_docs() -> &'static RedisDocs {
    static PARSED: OnceLock<RedisDocs> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut rest = DATA;
        let info = read(&mut rest);
        let docs = read(&mut rest);
        assert!(rest.is_empty(), "two frames, nothing after");
        let mut parsed = RedisDocs { info: HashMap::new(), docs: HashMap::new() };
        let Reply::Array(infos) = info else { panic!("COMMAND INFO is an array") };
        infos.into_iter().for_each(|entry| parsed.add_info(entry));
        let Reply::Map(docs) = docs else { panic!("COMMAND DOCS is a map") };
        for (name, entry) in docs {
            parsed.add_docs(text(&name), entry);
        }
        parsed
    })
}

impl RedisDocs {
    /// An INFO entry and, nested at its tenth place, its subcommands'.
    fn add_info(&mut self, entry: Reply) {
        let Reply::Array(fields) = &entry else { panic!("an INFO entry is an array") };
        if let Some(Reply::Array(subs) | Reply::Set(subs)) = fields.get(9) {
            subs.iter().cloned().for_each(|sub| self.add_info(sub));
        }
        self.info.insert(text(&fields[0]), entry);
    }

    /// A DOCS entry and those in its `subcommands` map.
    fn add_docs(&mut self, name: String, entry: Reply) {
        if let Some(Reply::Map(subs)) = field(&entry, "subcommands") {
            for (sub, docs) in subs.clone() {
                self.add_docs(text(&sub), docs);
            }
        }
        self.docs.insert(name, entry);
    }
}

/// The value under `key` in a map reply.
pub(crate) fn field<'a>(map: &'a Reply, key: &str) -> Option<&'a Reply> {
    let Reply::Map(pairs) = map else { return None };
    pairs.iter().find(|(k, _)| text(k) == key).map(|(_, v)| v)
}

pub(crate) fn text(reply: &Reply) -> String {
    match reply {
        Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Simple(s) => s.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

/// Reads one RESP3 frame of the kinds Redis' command table uses (simple
/// strings, bulk strings, integers, arrays, sets and maps) off the front of
/// `rest`. Not redis-protocol's decoder: its sets hold only hashable
/// frames, and Redis' key specs are maps inside a set. Simple strings
/// (flags such as `pubsub`, `@slow`) point into the table itself.
fn read(rest: &mut &'static [u8]) -> Reply {
    let end = rest.windows(2).position(|w| w == b"\r\n").expect("a line");
    let (line, after) = (&rest[..end], &rest[end + 2..]);
    *rest = after;
    let (kind, body) = (line[0], &line[1..]);
    let number = || std::str::from_utf8(body).ok().and_then(|n| n.parse::<i64>().ok()).expect("a number");
    let mut several = |n: i64| (0..n).map(|_| read(rest)).collect::<Vec<_>>();
    match kind {
        b'+' => Reply::Simple(std::str::from_utf8(body).expect("UTF-8")),
        b':' => Reply::Int(number()),
        b'$' => {
            let len = number() as usize;
            let data = Bytes::from_static(&rest[..len]);
            *rest = &rest[len + 2..];
            Reply::Bulk(data)
        }
        b'*' => Reply::Array(several(number())),
        b'~' => Reply::Set(several(number())),
        b'%' => {
            let flat = several(number() * 2);
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut items = flat.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            Reply::Map(pairs)
        }
        other => panic!("unexpected RESP3 type {:?} in Redis' command table", other as char),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader keeps everything: both frames encode back to the bytes
    /// Redis sent.
    #[test]
    fn the_table_reads_back_to_redis_bytes() {
        let mut rest = DATA;
        let mut out = bytes::BytesMut::new();
        read(&mut rest).encode(true, &mut out);
        read(&mut rest).encode(true, &mut out);
        assert!(out[..] == DATA[..], "the table does not encode back to Redis' bytes");
    }

    #[test]
    fn the_table_holds_redis_entries_for_herald_commands() {
        let docs = redis_docs();
        let Some(Reply::Array(spublish)) = docs.info("spublish") else { panic!("spublish's INFO") };
        // Key positions: the shard channel is the first argument.
        assert_eq!(spublish[3..6], [Reply::Int(1), Reply::Int(1), Reply::Int(1)]);
        assert!(docs.info("client|kill").is_some(), "subcommands are listed by full name");
        let publish = docs.docs("publish").expect("publish's DOCS");
        assert!(text(field(publish, "complexity").expect("a complexity")).starts_with("O(N+M)"));
        assert!(field(docs.docs("client").unwrap(), "subcommands").is_some());
        assert!(docs.docs("client|setname").is_some());
    }
}
