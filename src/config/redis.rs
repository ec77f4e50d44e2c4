//! Redis 7.0.15's configuration parameters and their defaults as data
//! (`redis-7.0.15-defaults.txt`, from CONFIG GET * on a fresh
//! redis-server), so a stock redis.conf loads unchanged and CONFIG GET
//! shows every parameter as an empty Redis would.
//!
//! A parameter Herald has no use for (persistence, replication, data
//! types, …) is accepted, kept as written, shown back, and reported once
//! at start as ignored; it changes nothing.

use std::collections::BTreeMap;
use std::sync::OnceLock;

const DEFAULTS: &str = include_str!("redis-7.0.15-defaults.txt");

/// Every Redis parameter and its default value.
pub(crate) fn defaults() -> &'static BTreeMap<&'static str, &'static str> {
    static PARSED: OnceLock<BTreeMap<&'static str, &'static str>> = OnceLock::new();
    PARSED.get_or_init(|| {
        DEFAULTS
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, value)| (name, value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)))
            .collect()
    })
}

/// Whether Redis 7.0.15 has parameter `name`.
pub(crate) fn knows(name: &str) -> bool {
    defaults().contains_key(name)
}

/// Directives redis.conf may hold that CONFIG GET does not list (they only
/// exist in files): accepted and ignored as well.
pub(crate) const FILE_ONLY: &[&str] = &["rename-command", "loadmodule", "sentinel"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_redis_7_0_15s() {
        assert_eq!(defaults().len(), 192);
        assert_eq!(defaults()["save"], "3600 1 300 100 60 10000");
        assert_eq!(defaults()["appendonly"], "no");
        assert_eq!(defaults()["logfile"], "");
        assert!(knows("hash-max-listpack-entries") && !knows("frobnicate"));
    }
}
