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

const PARAMS: &str = include_str!("redis-7.0.15-params.txt");

/// How Redis checks a parameter's value (`scripts/redis-params` says how
/// each was found).
#[derive(Debug, PartialEq)]
pub(crate) enum Kind {
    Bool,
    Int(i64, i64),
    Memory(u64, u64),
    /// One of these names, any case, and the name CONFIG GET shows for it
    /// (another, where two names mean one thing); the error lists them in
    /// this order.
    Enum(Vec<(&'static str, &'static str)>),
    Text,
    /// Set at start only (a config file's value is checked as the inner
    /// kind).
    Immutable(Box<Kind>),
    /// Refused by CONFIG SET while `enable-protected-configs` is `no`,
    /// which is fixed at start: always, in Herald. A config file's value
    /// is checked as the inner kind.
    Protected(Box<Kind>),
    /// Rules of its own (`check::special`).
    Special,
}

/// One Redis parameter: its check, and the parameter it is another name of
/// (setting either sets both).
#[derive(Debug)]
pub(crate) struct Param {
    pub kind: Kind,
    pub alias: Option<&'static str>,
}

/// Redis 7.0.15's parameter `name`.
pub(crate) fn param(name: &str) -> Option<&'static Param> {
    static PARSED: OnceLock<BTreeMap<&'static str, Param>> = OnceLock::new();
    PARSED.get_or_init(|| PARAMS.lines().map(parse_param).collect()).get(name)
}

fn parse_param(line: &'static str) -> (&'static str, Param) {
    let mut words = line.split(' ');
    let name = words.next().expect("a name");
    let mut words: Vec<&str> = words.collect();
    let mut alias = None;
    if let [.., "alias", other] = words[..] {
        alias = Some(other);
        words.truncate(words.len() - 2);
    }
    (name, Param { kind: parse_kind(name, &words), alias })
}

fn parse_kind(name: &str, words: &[&'static str]) -> Kind {
    let number = |i: usize| words[i].parse::<i128>().expect("a bound");
    match words[0] {
        "bool" => Kind::Bool,
        "int" => Kind::Int(number(1) as i64, number(2) as i64),
        "memory" => Kind::Memory(number(1) as u64, number(2) as u64),
        "enum" => Kind::Enum(words[1..].iter().map(|w| w.split_once('=').unwrap_or((w, w))).collect()),
        "string" => Kind::Text,
        "immutable" => Kind::Immutable(Box::new(parse_kind(name, &words[1..]))),
        "protected" => Kind::Protected(Box::new(parse_kind(name, &words[1..]))),
        "special" => Kind::Special,
        other => panic!("{name}: unknown kind {other}"),
    }
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

    #[test]
    fn every_parameter_has_its_check() {
        let checked: Vec<&str> = PARAMS.lines().map(|l| parse_param(l).0).collect();
        assert_eq!(checked, defaults().keys().copied().collect::<Vec<_>>());
        assert_eq!(param("hz").unwrap().kind, Kind::Int(0, 2147483647));
        assert_eq!(param("maxmemory").unwrap().kind, Kind::Memory(0, u64::MAX));
        assert_eq!(
            param("appendfsync").unwrap().kind,
            Kind::Enum(vec![("everysec", "everysec"), ("always", "always"), ("no", "no")])
        );
        assert_eq!(param("slave-priority").unwrap().alias, Some("replica-priority"));
        for name in checked {
            if let Some(other) = param(name).unwrap().alias {
                assert_eq!(param(other).unwrap().alias, Some(name), "{name} and {other} name each other");
            }
        }
    }
}
