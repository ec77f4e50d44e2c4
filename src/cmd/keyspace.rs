//! The keyspace commands clients and tools send, answered as an empty Redis
//! would answer them: Herald keeps no keys.

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::protocol::Reply;
use crate::session::{Flow, Session};

pub(crate) fn specs() -> [Spec; 6] {
    let keyspace = |name, arity, summary, args, run| Spec {
        summary,
        args,
        may_replicate: true,
        ..Spec::new(name, arity, "server", run)
    };
    [
        keyspace("flushdb", -1, "Remove all keys from the current database", "[ASYNC|SYNC]", flush),
        keyspace("flushall", -1, "Remove all keys from all databases", "[ASYNC|SYNC]", flush),
        Spec {
            summary: "Return the number of keys in the selected database",
            ..Spec::new("dbsize", 1, "server", zero)
        },
        Spec { summary: "Determine if a key exists", args: "key...", ..Spec::new("exists", -2, "generic", zero) },
        Spec {
            summary: "Find all keys matching the given pattern",
            args: "pattern",
            ..Spec::new("keys", 2, "generic", none)
        },
        Spec {
            since: "2.8.0",
            summary: "Incrementally iterate the keys space",
            args: "cursor [MATCH pattern] [COUNT count] [TYPE type]",
            ..Spec::new("scan", -2, "generic", scan)
        },
    ]
}

fn flush(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    match args.get(1).map(|a| a.to_ascii_lowercase()) {
        None if args.len() == 1 => s.reply(Reply::ok()),
        Some(m) if args.len() == 2 && (m == b"async" || m == b"sync") => s.reply(Reply::ok()),
        _ => s.error("ERR syntax error"),
    }
    Flow::Done
}

fn zero(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Int(0));
    Flow::Done
}

fn none(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Array(vec![]));
    Flow::Done
}

fn scan(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    if crate::protocol::request::parse_i64(&args[1]).is_none() && args[1].iter().any(|b| !b.is_ascii_digit()) {
        s.error("ERR invalid cursor");
    } else {
        s.reply(Reply::Array(vec![Reply::text("0"), Reply::Array(vec![])]));
    }
    Flow::Done
}
