//! The messages other actors send a session besides deliveries: the
//! registry's (CLIENT LIST's Describe, KILL, shutdown's Drain, CONFIG SET,
//! ACL changes), MONITOR lines, and its own writer's failure.

use std::sync::Arc;

use actix::prelude::*;

use super::Session;
use crate::acl::User;
use crate::config::Config;
use crate::protocol::push::Kind;
use crate::registry::ClientInfo;

impl Handler<crate::diagnostics::MonitorLine> for Session {
    type Result = ();
    fn handle(
        &mut self,
        crate::diagnostics::MonitorLine(line): crate::diagnostics::MonitorLine,
        ctx: &mut Context<Self>,
    ) {
        if self.out.is_closed() {
            return;
        }
        self.out.append(|buf| {
            buf.extend_from_slice(b"+");
            buf.extend_from_slice(&line);
            buf.extend_from_slice(b"\r\n");
        });
        self.enforce_output_limit(ctx);
    }
}

/// Asks a session for its CLIENT LIST line.
#[derive(Message)]
#[rtype(result = "ClientInfo")]
pub struct Describe;

impl Handler<Describe> for Session {
    type Result = MessageResult<Describe>;
    fn handle(&mut self, _: Describe, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.info())
    }
}

/// Shutdown: write what is queued, then close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for Session {
    type Result = ();
    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.close_after_reply(ctx);
    }
}

/// ACL SETUSER/DELUSER or CONFIG SET requirepass changed user `name`
/// (`None`: deleted). Its clients follow the change; as in Redis 7, those
/// deleted, or subscribed where they no longer may, are disconnected.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UserChanged {
    pub name: String,
    pub user: Option<Arc<User>>,
}

impl Handler<UserChanged> for Session {
    type Result = ();
    fn handle(&mut self, msg: UserChanged, ctx: &mut Context<Self>) {
        if msg.name == "default" {
            self.default_user = msg.user.clone().expect("the default user is never deleted");
        }
        if msg.name != self.user.name {
            return;
        }
        let Some(user) = msg.user else {
            return self.close_now(ctx);
        };
        let lost = [Kind::Channel, Kind::Shard, Kind::Pattern]
            .into_iter()
            .any(|kind| self.subs.names(kind).iter().any(|name| !user.may_use_channel(name, kind == Kind::Pattern)));
        self.set_user(user);
        if lost {
            tracing::info!(client = self.id, addr = %self.peer, "disconnected: lost access to its subscriptions");
            self.close_now(ctx);
        }
    }
}

/// CLIENT KILL: close without flushing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Kill;

impl Handler<Kill> for Session {
    type Result = ();
    fn handle(&mut self, _: Kill, ctx: &mut Context<Self>) {
        self.close_now(ctx);
    }
}

/// CONFIG SET changed the runtime settings.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SettingsChanged(pub Config);

impl Handler<SettingsChanged> for Session {
    type Result = ();
    fn handle(&mut self, SettingsChanged(settings): SettingsChanged, ctx: &mut Context<Self>) {
        self.settings = settings;
        self.arm_idle_check(ctx);
        self.enforce_output_limit(ctx);
    }
}

/// The writer task could not write: the peer is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct WriterFailed;

impl Handler<WriterFailed> for Session {
    type Result = ();
    fn handle(&mut self, _: WriterFailed, ctx: &mut Context<Self>) {
        self.close_now(ctx);
    }
}
