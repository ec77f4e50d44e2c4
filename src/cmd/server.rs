//! ROLE, TIME, LASTSAVE, WAIT, SWAPDB, DEBUG: what a Redis with no
//! replicas, no persistence and the debug command disabled (Redis 7.0's
//! default `enable-debug-command no`) answers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;
use crate::session::{Flow, Session};

pub(crate) fn specs() -> [Spec; 6] {
    [
        Spec {
            since: "2.8.12",
            summary: "Return the role of the instance in the context of replication",
            ..Spec::new("role", 1, "server", role)
        },
        Spec {
            since: "2.6.0",
            summary: "Return the current server time",
            ..Spec::new("time", 1, "server", time)
        },
        Spec {
            summary: "Get the UNIX time stamp of the last successful save to disk",
            ..Spec::new("lastsave", 1, "server", lastsave)
        },
        Spec {
            since: "3.0.0",
            summary: "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
            args: "numreplicas timeout",
            blocks: true,
            ..Spec::new("wait", 3, "generic", wait)
        },
        Spec {
            since: "4.0.0",
            summary: "Swaps two Redis databases",
            args: "index1 index2",
            may_replicate: true,
            ..Spec::new("swapdb", 3, "server", swapdb)
        },
        Spec {
            summary: "A container for debugging commands",
            args: "subcommand [arg...]",
            ..Spec::new("debug", -2, "server", debug)
        },
    ]
}

fn role(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Array(vec![Reply::text("master"), Reply::Int(0), Reply::Array(vec![])]));
    Flow::Done
}

fn time(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    s.reply(Reply::Array(vec![Reply::text(&now.as_secs().to_string()), Reply::text(&now.subsec_micros().to_string())]));
    Flow::Done
}

/// Herald never saves; like a fresh Redis it reports its start.
fn lastsave(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Int(s.hub.stats.started_unix as i64));
    Flow::Done
}

/// No replica ever acknowledges: 0 at once when none are wanted (or in
/// MULTI), else 0 after `timeout` ms (never, for 0), as Redis blocks.
fn wait(s: &mut Session, args: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    let Some(wanted) = parse_i64(&args[1]) else {
        s.error("ERR value is not an integer or out of range");
        return Flow::Done;
    };
    let Some(timeout) = super::timeout_millis(s, &args[2]) else {
        return Flow::Done;
    };
    if wanted <= 0 || s.in_exec() {
        s.reply(Reply::Int(0));
        return Flow::Done;
    }
    // Held, not waiting: a blocked client still answers CLIENT LIST and
    // KILL and notices its peer going, as in Redis. No replica ever
    // acknowledges; a timeout of 0 blocks until the client goes.
    if timeout > 0 {
        actix::AsyncContext::run_later(ctx, Duration::from_millis(timeout), |s, ctx| {
            s.reply(Reply::Int(0));
            s.resume(ctx);
        });
    }
    Flow::Held
}

/// Channels are not per database, so there is nothing to swap.
fn swapdb(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let dbs = s.settings.databases as i64;
    match (parse_i64(&args[1]), parse_i64(&args[2])) {
        (None, _) => s.error("ERR invalid first DB index"),
        (_, None) => s.error("ERR invalid second DB index"),
        (Some(a), Some(b)) if a < 0 || b < 0 || a >= dbs || b >= dbs => s.error("ERR DB index is out of range"),
        _ => s.reply(Reply::ok()),
    }
    Flow::Done
}

fn debug(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.error(
        "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it \
         from a local connection, otherwise you need to set this option in the configuration file, and then \
         restart the server.",
    );
    Flow::Done
}
