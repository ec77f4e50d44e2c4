//! COMMAND [COUNT | INFO | DOCS | LIST | HELP], generated from Herald's
//! command table, so redis-cli's hints and client libraries' lookups work.

use actix::Context;
use bytes::Bytes;

use super::{lookup, table, Spec};
use crate::protocol::Reply;
use crate::session::{Flow, Session};

static SUBCOMMANDS: [Spec; 5] = [
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

fn info_of(spec: &Spec, parent: Option<&str>) -> Reply {
    let name = match parent {
        Some(p) => format!("{p}|{}", spec.name),
        None => spec.name.to_string(),
    };
    Reply::Array(vec![
        Reply::text(&name),
        Reply::Int(spec.arity as i64),
        set(spec.flags),
        Reply::Int(0),
        Reply::Int(0),
        Reply::Int(0),
        set(spec.acl),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(spec.subcommands.iter().map(|s| info_of(s, Some(spec.name))).collect()),
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

fn docs_of(spec: &Spec) -> Reply {
    let mut fields = vec![
        (Reply::text("summary"), Reply::text(spec.summary)),
        (Reply::text("since"), Reply::text(spec.since)),
        (Reply::text("group"), Reply::text(spec.group)),
    ];
    if !spec.args.is_empty() {
        fields.push((Reply::text("arguments"), arguments(spec.args)));
    }
    if !spec.subcommands.is_empty() {
        let subs =
            spec.subcommands.iter().map(|s| (Reply::text(&format!("{}|{}", spec.name, s.name)), docs_of(s))).collect();
        fields.push((Reply::text("subcommands"), Reply::Map(subs)));
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
        table().iter().map(|c| (Reply::text(c.name), docs_of(c))).collect()
    } else {
        args[2..]
            .iter()
            .filter_map(|a| {
                find(a).map(|(c, _)| (Reply::text(&String::from_utf8_lossy(a).to_ascii_lowercase()), docs_of(c)))
            })
            .collect()
    };
    s.reply(Reply::Map(pairs));
    Flow::Done
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
    "HELP",
    "    Prints this help.",
];
