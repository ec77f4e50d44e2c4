//! The messages other actors send a session besides deliveries: the
//! registry's [`Control`] (CLIENT LIST's Describe, KILL, shutdown's Drain,
//! CONFIG SET, ACL changes), MONITOR lines, and its own writer's failure.

use std::sync::Arc;

use actix::prelude::*;

use crate::acl::User;
use crate::protocol::push::Kind;
use crate::registry::Control;
use crate::session::Session;

impl Handler<crate::diagnostics::MonitorLine> for Session {
    type Result = ();
    fn handle(
        &mut self,
        crate::diagnostics::MonitorLine(line): crate::diagnostics::MonitorLine,
        ctx: &mut Context<Self>,
    ) {
        self.write_monitor_line(&line);
        self.enforce_output_limit(ctx);
    }
}

impl Handler<Control> for Session {
    type Result = ();
    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) {
        match msg {
            Control::Describe(reply) => {
                let _ = reply.send(self.info());
            }
            Control::Drain => self.close_after_reply(ctx),
            Control::Kill => self.close_now(ctx),
            Control::UserChanged { name, user } => self.user_changed(name, user, ctx),
            Control::SettingsChanged(settings) => {
                self.settings = settings;
                self.arm_idle_check(ctx);
                self.enforce_output_limit(ctx);
            }
            Control::TopologyChanged => crate::cmd::subscribe::leave_lost_slots(self),
        }
    }
}

impl Session {
    /// User `name` changed (`None`: deleted). Its clients follow the
    /// change; as in Redis 7, those deleted, or subscribed where they no
    /// longer may, are disconnected.
    fn user_changed(&mut self, name: String, user: Option<Arc<User>>, ctx: &mut Context<Self>) {
        if name == "default" {
            self.state.default_user = user.clone().expect("the default user is never deleted");
        }
        if name != self.state.user.name {
            return;
        }
        let Some(user) = user else {
            return self.close_now(ctx);
        };
        let lost = [Kind::Channel, Kind::Shard, Kind::Pattern]
            .into_iter()
            .any(|kind| self.subs.names(kind).iter().any(|name| !user.may_use_channel(name, kind == Kind::Pattern)));
        self.state.set_user(user);
        if lost {
            tracing::info!(client = self.id, addr = %self.peer, "disconnected: lost access to its subscriptions");
            self.close_now(ctx);
        }
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
