//! SHUTDOWN: the graceful stop (see `server::run_tcp_until`).

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::session::{Flow, Session};

pub(crate) fn specs() -> [Spec; 1] {
    [Spec {
        summary: "Synchronously save the dataset to disk and then shut down the server",
        args: "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]",
        ..Spec::new("shutdown", -1, "server", shutdown)
    }]
}

/// Herald has nothing to save, so SAVE/NOSAVE/NOW/FORCE all mean "now,
/// after flushing clients"; the caller gets no reply, as in Redis.
fn shutdown(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let (mut save, mut nosave, mut abort) = (false, false, false);
    for arg in &args[1..] {
        match arg.to_ascii_lowercase().as_slice() {
            b"save" => save = true,
            b"nosave" => nosave = true,
            b"now" | b"force" => {}
            b"abort" => abort = true,
            _ => {
                s.error("ERR syntax error");
                return Flow::Done;
            }
        }
    }
    if (save && nosave) || (abort && args.len() > 2) {
        s.error("ERR syntax error");
    } else if abort {
        s.error("ERR No shutdown in progress.");
    } else {
        tracing::warn!(client = s.id, addr = %s.peer, "User requested shutdown...");
        s.hub.shutdown.notify_one();
    }
    Flow::Done
}
