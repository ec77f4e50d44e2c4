//! COMMAND [COUNT | INFO | DOCS | LIST | HELP], generated from Herald's
//! command table, so redis-cli's hints and client libraries' lookups work.

use actix::Context;
use bytes::Bytes;

use super::redis_docs::{field, redis_docs, text};
use super::{lookup, table, Spec};
use crate::protocol::Reply;
use crate::session::{Flow, Session};

static SUBCOMMANDS: [Spec; 7] = [
    Spec { since: "2.8.13", summary: "Get total number of Redis commands", ..Spec::new("count", 2, "server", count) },
    Spec {
        since: "2.8.13",
        summary: "Get array of specific Redis command details, or all when no argument is given.",
        args: "[command-name...]",
        ..Spec::new("info", -2, "server", info)
    },
    Spec {
        since: "7.0.0",
        summary: "Get array of specific Redis command documentation",
        args: "[command-name...]",
        ..Spec::new("docs", -2, "server", docs)
    },
    Spec { since: "7.0.0", summary: "Get an array of Redis command names", ..Spec::new("list", -2, "server", list) },
    Spec {
        since: "2.8.13",
        summary: "Extract keys given a full Redis command",
        args: "command [arg...]",
        ..Spec::new("getkeys", -4, "server", getkeys)
    },
    Spec {
        since: "7.0.0",
        summary: "Extract keys and access flags given a full Redis command",
        args: "command [arg...]",
        ..Spec::new("getkeysandflags", -4, "server", getkeysandflags)
    },
    Spec {
        since: "5.0.0",
        summary: "Show helpful text about the different subcommands",
        ..Spec::new("help", 2, "server", super::help)
    },
];

pub(crate) fn spec() -> Spec {
    Spec {
        since: "2.8.13",
        summary: "Get array of Redis command details",
        subcommands: &SUBCOMMANDS,
        help: HELP,
        ..Spec::new("command", -1, "server", all_info)
    }
}

fn set(words: &[&'static str]) -> Reply {
    Reply::Set(words.iter().map(|w| Reply::Simple(w)).collect())
}

/// `spec`'s COMMAND INFO entry: Redis' own where Redis has the command,
/// with Herald's subcommands in place of Redis'.
fn info_of(spec: &Spec, parent: Option<&str>) -> Reply {
    let name = match parent {
        Some(p) => format!("{p}|{}", spec.name),
        None => spec.name.to_string(),
    };
    let subcommands = || Reply::Set(spec.subcommands.iter().map(|s| info_of(s, Some(spec.name))).collect());
    if let Some(Reply::Array(mut redis)) = redis_docs().info(&name).cloned() {
        redis[9] = subcommands();
        return Reply::Array(redis);
    }
    // Redis sends tips, key specs and subcommands as sets in RESP3.
    Reply::Array(vec![
        Reply::text(&name),
        Reply::Int(spec.arity as i64),
        set(spec.flags),
        Reply::Int(0),
        Reply::Int(0),
        Reply::Int(0),
        set(spec.acl),
        Reply::Set(vec![]),
        Reply::Set(vec![]),
        subcommands(),
    ])
}

/// Turns `channel [pattern] name...` into COMMAND DOCS argument maps.
fn arguments(args: &str) -> Reply {
    let mut out = Vec::new();
    for word in args.split_whitespace() {
        let optional = word.starts_with('[');
        let word = word.trim_matches(|c| c == '[' || c == ']');
        let multiple = word.ends_with("...");
        let name = word.trim_end_matches("...");
        let mut fields = vec![
            (Reply::text("name"), Reply::text(&name.to_ascii_lowercase())),
            (Reply::text("type"), Reply::text("string")),
        ];
        let mut flags = Vec::new();
        if optional {
            flags.push(Reply::Simple("optional"));
        }
        if multiple {
            flags.push(Reply::Simple("multiple"));
        }
        if !flags.is_empty() {
            fields.push((Reply::text("flags"), Reply::Set(flags)));
        }
        out.push(Reply::Map(fields));
    }
    Reply::Array(out)
}

/// `spec`'s COMMAND DOCS map: Redis' own where Redis has the command, with
/// Herald's subcommands in place of Redis'.
fn docs_of(spec: &Spec, name: &str) -> Reply {
    let subcommands = || {
        let subs = spec.subcommands.iter().map(|s| {
            let full = format!("{}|{}", spec.name, s.name);
            (Reply::text(&full), docs_of(s, &full))
        });
        Reply::Map(subs.collect())
    };
    if let Some(Reply::Map(mut redis)) = redis_docs().docs(name).cloned() {
        if let Some(slot) = redis.iter_mut().find(|(k, _)| text(k) == "subcommands") {
            slot.1 = subcommands();
        }
        return Reply::Map(redis);
    }
    let mut fields = vec![
        (Reply::text("summary"), Reply::text(spec.summary)),
        (Reply::text("since"), Reply::text(spec.since)),
        (Reply::text("group"), Reply::text(spec.group)),
    ];
    if !spec.args.is_empty() {
        fields.push((Reply::text("arguments"), arguments(spec.args)));
    }
    if !spec.subcommands.is_empty() {
        fields.push((Reply::text("subcommands"), subcommands()));
    }
    Reply::Map(fields)
}

fn all_info(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Array(table().iter().map(|c| info_of(c, None)).collect()));
    Flow::Done
}

fn count(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Int(table().len() as i64));
    Flow::Done
}

/// Finds `name` or `container|sub`.
fn find(name: &[u8]) -> Option<(&'static Spec, Option<&'static str>)> {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    match name.split_once('|') {
        None => lookup(&name).map(|s| (s, None)),
        Some((parent, sub)) => {
            let p = lookup(parent)?;
            p.subcommands.iter().find(|s| s.name == sub).map(|s| (s, Some(p.name)))
        }
    }
}

fn info(s: &mut Session, args: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    if args.len() == 2 {
        return all_info(s, args, ctx);
    }
    let replies = args[2..].iter().map(|a| find(a).map_or(Reply::Nil, |(c, p)| info_of(c, p))).collect();
    s.reply(Reply::Array(replies));
    Flow::Done
}

fn docs(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let pairs = if args.len() == 2 {
        table().iter().map(|c| (Reply::text(c.name), docs_of(c, c.name))).collect()
    } else {
        args[2..]
            .iter()
            .filter_map(|a| {
                let name = String::from_utf8_lossy(a).to_ascii_lowercase();
                find(a).map(|(c, _)| (Reply::text(&name), docs_of(c, &name)))
            })
            .collect()
    };
    s.reply(Reply::Map(pairs));
    Flow::Done
}

fn getkeys(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    reply_keys(s, &args[2..], false)
}

fn getkeysandflags(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    reply_keys(s, &args[2..], true)
}

/// COMMAND GETKEYS[ANDFLAGS]: the keys of `command` by its key specs
/// (Redis' own, `redis_docs`), in Redis' order of checks and its words.
fn reply_keys(s: &mut Session, command: &[Bytes], with_flags: bool) -> Flow {
    let lower = |b: &Bytes| String::from_utf8_lossy(b).to_ascii_lowercase();
    // As Redis' lookupCommand: a container's second word names its subcommand.
    let name = match lookup(&lower(&command[0])) {
        Some(c) if !c.subcommands.is_empty() && command.len() > 1 => {
            let sub = lower(&command[1]);
            c.subcommands.iter().find(|s| s.name == sub).map(|s| (format!("{}|{}", c.name, s.name), s.arity))
        }
        Some(c) => Some((c.name.to_string(), c.arity)),
        None => None,
    };
    let Some((name, arity)) = name else {
        s.error("ERR Invalid command specified");
        return Flow::Done;
    };
    let info = redis_docs().info(&name);
    let specs: Vec<KeySpec> = info.map(key_specs).unwrap_or_default();
    if specs.iter().all(|k| k.flags.contains(&"not_key")) {
        s.error("ERR The command has no key arguments");
        return Flow::Done;
    }
    let argc = command.len() as i64;
    if (arity > 0 && arity as i64 != argc) || argc < -(arity as i64) {
        s.error("ERR Invalid number of arguments specified for command");
        return Flow::Done;
    }
    let keys = keys_of(&specs, argc);
    let no_mandatory_keys = info.is_some_and(|i| matches!(i, Reply::Array(f) if has_flag(&f[2], "no_mandatory_keys")));
    match keys {
        Some(keys) if keys.is_empty() && !no_mandatory_keys => {
            s.error("ERR Invalid arguments specified for command");
        }
        keys => {
            let keys = keys.unwrap_or_default().into_iter().map(|(at, flags)| {
                let key = Reply::Bulk(command[at].clone());
                match with_flags {
                    true => Reply::Array(vec![key, Reply::Set(flags.iter().map(|f| Reply::Simple(f)).collect())]),
                    false => key,
                }
            });
            s.reply(Reply::Array(keys.collect()));
        }
    }
    Flow::Done
}

/// One key spec of the kinds Herald's commands have: keys from argument
/// `index`, through `lastkey` (from the end if negative, then per
/// `limit`), every `keystep`.
struct KeySpec {
    flags: Vec<&'static str>,
    index: i64,
    lastkey: i64,
    keystep: i64,
    limit: i64,
}

fn has_flag(set: &Reply, flag: &str) -> bool {
    matches!(set, Reply::Set(items) if items.iter().any(|f| matches!(f, Reply::Simple(s) if *s == flag)))
}

fn key_specs(info: &Reply) -> Vec<KeySpec> {
    let Reply::Array(fields) = info else { return Vec::new() };
    let (Reply::Set(specs) | Reply::Array(specs)) = &fields[8] else { return Vec::new() };
    let int = |spec: &Reply, outer: &str, key: &str| {
        let inner = field(spec, outer).and_then(|o| field(o, "spec")).and_then(|s| field(s, key));
        match inner {
            Some(Reply::Int(n)) => *n,
            _ => 0,
        }
    };
    specs
        .iter()
        .map(|spec| KeySpec {
            flags: match field(spec, "flags") {
                Some(Reply::Set(f)) => {
                    f.iter().filter_map(|f| if let Reply::Simple(s) = f { Some(*s) } else { None }).collect()
                }
                _ => Vec::new(),
            },
            index: int(spec, "begin_search", "index"),
            lastkey: int(spec, "find_keys", "lastkey"),
            keystep: int(spec, "find_keys", "keystep").max(1),
            limit: int(spec, "find_keys", "limit"),
        })
        .collect()
}

/// The keys' positions and flags (`None`: a spec does not fit the
/// arguments, where Redis answers no keys), as Redis' getKeysUsingKeySpecs.
fn keys_of(specs: &[KeySpec], argc: i64) -> Option<Vec<(usize, &[&'static str])>> {
    let mut keys = Vec::new();
    for spec in specs.iter().filter(|k| !k.flags.contains(&"not_key") && k.index > 0) {
        let first = spec.index;
        let last = match (spec.lastkey, spec.limit) {
            (l, _) if l >= 0 => first + l,
            (l, 0) => argc + l,
            (l, limit) => first + (argc - first) / limit + l,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        keys.extend((first..=last).step_by(spec.keystep as usize).map(|at| (at as usize, spec.flags.as_slice())));
    }
    Some(keys)
}

fn list(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Array(table().iter().map(|c| Reply::text(c.name)).collect()));
    Flow::Done
}

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];
