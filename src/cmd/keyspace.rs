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

/// No keys, so every cursor ends at 0; the cursor and the options are
/// checked as Redis 7.0.15 checks them.
fn scan(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    if !valid_cursor(&args[1]) {
        s.error("ERR invalid cursor");
        return Flow::Done;
    }
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i >= 2;
        let option = args[i].to_ascii_lowercase();
        let refusal = match option.as_slice() {
            b"count" if more => match crate::protocol::request::parse_i64(&args[i + 1]) {
                None => Some("ERR value is not an integer or out of range"),
                Some(n) if n < 1 => Some("ERR syntax error"),
                Some(_) => None,
            },
            b"match" | b"type" if more => None,
            _ => Some("ERR syntax error"),
        };
        if let Some(refusal) = refusal {
            s.error(refusal);
            return Flow::Done;
        }
        i += 2;
    }
    s.reply(Reply::Array(vec![Reply::text("0"), Reply::Array(vec![])]));
    Flow::Done
}

/// Redis' cursor check: C's `strtoul` over the whole (C) string, not
/// starting with a space, in range; so a sign is taken and an empty
/// cursor is 0.
fn valid_cursor(arg: &[u8]) -> bool {
    // Read as a C string: up to a NUL byte.
    let arg = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    let digits = match arg.first() {
        Some(b'+' | b'-') => &arg[1..],
        Some(b) if b.is_ascii_whitespace() => return false,
        _ => arg,
    };
    if digits.is_empty() {
        // strtoul reads nothing: only an empty cursor is all consumed.
        return arg.is_empty();
    }
    digits.iter().all(u8::is_ascii_digit) && std::str::from_utf8(digits).is_ok_and(|d| d.parse::<u64>().is_ok())
}
