//! What Herald takes from Redis 7.0.15 as data: the version it answers
//! as, its ACL categories, and its command table (`redis-7.0.15-commands.txt`:
//! name, arity, flags, ACL categories, one command or `container|sub` a
//! line, as COMMAND INFO reports them on redis-server 7.0.15).
//!
//! Herald answers only its own commands, but checks a request the way Redis
//! would: a RESP2 subscriber that sends a command Redis knows gets Redis'
//! arity, NOAUTH, NOPERM and subscribed-context errors for it, and only a
//! name Redis does not know either is an `unknown command`.

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("redis-7.0.15-commands.txt");

/// The Redis version Herald answers as (HELLO, INFO, metrics).
pub(crate) const VERSION: &str = "7.0.15";

/// Redis 7.0's ACL categories (ACL CAT), whether or not Herald has commands
/// in them, so rules written for Redis load unchanged.
pub(crate) fn categories() -> &'static [&'static str] {
    &[
        "keyspace",
        "read",
        "write",
        "set",
        "sortedset",
        "list",
        "hash",
        "string",
        "bitmap",
        "hyperloglog",
        "geo",
        "stream",
        "pubsub",
        "admin",
        "fast",
        "slow",
        "blocking",
        "dangerous",
        "connection",
        "transaction",
        "scripting",
    ]
}

pub(crate) struct RedisCommand {
    pub arity: i32,
    pub flags: Vec<&'static str>,
    pub acl: Vec<&'static str>,
}

impl RedisCommand {
    pub(crate) fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }
}

fn table() -> &'static HashMap<&'static str, RedisCommand> {
    static PARSED: OnceLock<HashMap<&'static str, RedisCommand>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TABLE
            .lines()
            .map(|line| {
                let mut words = line.split(' ');
                let name = words.next().expect("name");
                let arity = words.next().and_then(|a| a.parse().ok()).expect("arity");
                let list = |w: Option<&'static str>| match w {
                    Some("-") | None => Vec::new(),
                    Some(w) => w.split(',').collect(),
                };
                let flags = list(words.next());
                let acl = list(words.next());
                (name, RedisCommand { arity, flags, acl })
            })
            .collect()
    })
}

/// Commands Herald answers that Redis 7.0.15 does not have (they came in
/// later versions). `cmd`'s tests check that every command Herald answers
/// is either here or in Redis' table.
pub(crate) const LATER: &[&str] = &["client|setinfo", "cluster|myshardid"];

/// Whether ACL rules may name `name` (`publish`, `client|list`, `get`): a
/// command of Redis 7.0.15 (so rules written for Redis load) or of Herald.
pub(crate) fn known(name: &str) -> bool {
    find(name).is_some() || LATER.contains(&name)
}

/// A command (`get`) or subcommand (`object|encoding`) Redis 7.0.15 has.
pub(crate) fn find(name: &str) -> Option<&'static RedisCommand> {
    table().get(name)
}

/// Every command and subcommand, containers before their subcommands.
pub(crate) fn all() -> &'static [(&'static str, &'static RedisCommand)] {
    static SORTED: OnceLock<Vec<(&'static str, &'static RedisCommand)>> = OnceLock::new();
    SORTED.get_or_init(|| {
        let mut all: Vec<_> = table().iter().map(|(name, c)| (*name, c)).collect();
        all.sort_unstable_by_key(|(name, _)| name.split_once('|').unwrap_or((name, "")));
        all
    })
}

/// A container's subcommands, by name (without the container's).
pub(crate) fn subcommands_of(container: &str) -> impl Iterator<Item = (&'static str, &'static RedisCommand)> + '_ {
    let mut subs: Vec<_> = table()
        .iter()
        .filter_map(move |(name, c)| {
            let (parent, sub) = name.split_once('|')?;
            (parent == container).then_some((sub, c))
        })
        .collect();
    subs.sort_unstable_by_key(|(name, _)| *name);
    subs.into_iter()
}

/// Whether Redis' `name` is a container (it has subcommands).
pub(crate) fn is_container(name: &str) -> bool {
    static CONTAINERS: OnceLock<Vec<&'static str>> = OnceLock::new();
    CONTAINERS
        .get_or_init(|| {
            let mut c: Vec<&str> = table().keys().filter_map(|k| k.split_once('|').map(|(p, _)| p)).collect();
            c.sort_unstable();
            c.dedup();
            c
        })
        .binary_search(&name)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_redis_7_0_15s() {
        assert_eq!(table().len(), 366);
        assert_eq!(find("get").unwrap().arity, 2);
        assert_eq!(find("object|encoding").unwrap().arity, 3);
        assert!(find("publish").unwrap().acl.contains(&"@pubsub"));
        assert!(find("monitor").unwrap().flags.contains(&"admin"));
        assert!(is_container("object") && is_container("cluster") && !is_container("get"));
        assert!(find("frobnicate").is_none());
    }
}
