//! MULTI / EXEC / DISCARD / WATCH / UNWATCH. Queued commands run back to
//! back at EXEC, PUBLISHes among them in order.

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::protocol::Reply;
use crate::session::{Flow, Multi, Session};

pub(crate) fn specs() -> [Spec; 5] {
    let tx = |name, arity, since, summary, args, run| Spec {
        since,
        summary,
        args,
        // UNWATCH is queued; the others act on the transaction itself.
        runs_in_multi: name != "unwatch",
        ..Spec::new(name, arity, "transactions", run)
    };
    [
        tx("multi", 1, "1.2.0", "Mark the start of a transaction block", "", multi),
        tx("exec", 1, "1.2.0", "Execute all commands issued after MULTI", "", exec),
        tx("discard", 1, "2.0.0", "Discard all commands issued after MULTI", "", discard),
        tx(
            "watch",
            -2,
            "2.2.0",
            "Watch the given keys to determine execution of the MULTI/EXEC block",
            "key...",
            watch,
        ),
        tx("unwatch", 1, "2.2.0", "Forget about all watched keys", "", unwatch),
    ]
}

fn multi(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    if s.state.multi.is_some() {
        s.error("ERR MULTI calls can not be nested");
    } else {
        s.state.multi = Some(Multi::default());
        s.reply(Reply::ok());
    }
    Flow::Done
}

fn exec(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    match s.state.multi.take() {
        None => s.error("ERR EXEC without MULTI"),
        Some(m) if m.failed => s.error("EXECABORT Transaction discarded because of previous errors."),
        Some(m) => s.run_exec(m.queued),
    }
    Flow::Done
}

fn discard(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    match s.state.multi.take() {
        None => s.error("ERR DISCARD without MULTI"),
        Some(_) => s.reply(Reply::ok()),
    }
    Flow::Done
}

fn watch(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    if s.state.multi.is_some() {
        s.error("ERR WATCH inside MULTI is not allowed");
    } else {
        s.reply(Reply::ok());
    }
    Flow::Done
}

fn unwatch(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::ok());
    Flow::Done
}
