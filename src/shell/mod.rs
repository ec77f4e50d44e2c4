//! The session actor's loop, above the commands: it reads requests,
//! queues them, runs each through `cmd::dispatch` (or a pipelined run of
//! publishes through `cmd::publish::publish_run`), times them, and handles
//! the messages other actors send a session. What a command may do to a
//! session is `crate::session`'s; this module is what drives it.
//!
//! A command that needs another actor's answer holds the session with
//! `ctx.wait` until the answer is in: no further command is read and no
//! delivery is written meanwhile, which is what keeps replies,
//! confirmations and messages in Redis' order.

mod around;
mod control;

use std::sync::Arc;

use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::FramedRead;

use crate::broker::postman::CaughtUp;
use crate::broker::{Census, Deliveries};
use crate::cmd;
use crate::config::Config;
use crate::hub::Hub;
use crate::protocol::{PipelineDecoder, Reply, Request, RequestDecoder};
use crate::registry::{Deregister, Register, Registered};
use crate::session::output::Output;
use crate::session::{Flow, Origin, Session, Step};
use control::WriterFailed;

impl Session {
    /// Starts a session for an accepted connection on the current arbiter
    /// (or simulated host), which must be arbiter `origin.slot`.
    pub(crate) fn start<S>(origin: Origin, stream: S, hub: Arc<Hub>, settings: Arc<Config>) -> Addr<Session>
    where
        S: AsyncRead + AsyncWrite + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Session::create(move |ctx| {
            crate::broker::unbounded_mailbox(ctx);
            // Weak: every actix address a session holds costs 72 bytes of
            // allocations, and this one is needed once, if ever.
            let me = ctx.address().downgrade();
            let failed = move || {
                if let Some(me) = me.upgrade() {
                    me.do_send(WriterFailed);
                }
            };
            let out = Output::start(Box::new(write), hub.census.clone(), failed);
            Session::new(origin, hub, settings, out, Box::new(read))
        })
    }

    /// Runs queued requests until one has to wait.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while !self.closing() && !self.driving.held {
            let Some(step) = self.driving.queue.pop_front() else {
                // All input handled: its replies leave now, ahead of the
                // deliveries it queued for others (`Output::write_now`).
                self.write_replies_now();
                return;
            };
            // Muting (CLIENT REPLY) lasts one command, waits included.
            self.mute_current(false);
            if let Step::Command(args) = &step {
                if let Some(wait) = self.paused_for(args) {
                    // Held, not waiting: while the pause lasts the session
                    // still answers CLIENT LIST, KILL and deliveries, as a
                    // paused Redis client does.
                    self.driving.queue.push_front(step);
                    self.driving.held = true;
                    ctx.spawn(wait.map(|_, act: &mut Session, ctx| act.resume(ctx)));
                    return;
                }
            }
            let member = match &step {
                Step::Command(args) => self.joins_run(args),
                _ => None,
            };
            match step {
                Step::Command(args) if member.is_some() => {
                    let spec = member.expect("matched");
                    let mut run = vec![(spec, args)];
                    while let Some(Step::Command(next)) = self.driving.queue.front() {
                        let Some(next_spec) = self.joins_run(next) else { break };
                        let Some(Step::Command(next)) = self.driving.queue.pop_front() else { unreachable!() };
                        run.push((next_spec, next));
                    }
                    let clock = self.start_clock(None);
                    if self.hub.census.monitors.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                        for (_, args) in &run {
                            self.feed_monitors(args);
                        }
                    }
                    let n = run.len() as u64;
                    let pending = cmd::publish::publish_run(self, &run, clock.started);
                    ctx.wait(pending.map(move |_, act: &mut Session, ctx| {
                        // Each publish of the run is its own SLOWLOG entry,
                        // as each pipelined command is in Redis, with its
                        // share of the run's time.
                        let each = act.stop_clock(clock, spec, spec.name, n);
                        for (_, args) in &run {
                            act.log_if_slow(args, each);
                        }
                        act.pump(ctx)
                    }));
                    return;
                }
                Step::Command(args) => {
                    let clock = self.start_clock(Some(&args));
                    let (flow, ran) = self.execute(args, ctx);
                    match flow {
                        Flow::Wait(pending) => {
                            ctx.wait(pending.map(move |_, act: &mut Session, ctx| {
                                act.finish_command(clock, ran);
                                act.pump(ctx)
                            }));
                            return;
                        }
                        Flow::Held => self.driving.held = true,
                        Flow::Done => {}
                    }
                    self.finish_command(clock, ran);
                }
                Step::Invalid(text) => {
                    self.reply(Reply::Error(text));
                    self.close_after_reply(ctx);
                }
                Step::TooBig => {
                    tracing::warn!(client = self.id, addr = %self.peer, "closing client that reached max query buffer length");
                    self.close_now(ctx);
                }
                Step::ExecEnd => {
                    if let Some(args) = self.driving.exec_feed.take() {
                        self.feed_monitors(&args);
                    }
                    self.end_exec();
                }
            }
        }
    }

    fn execute(&mut self, args: Vec<Bytes>, ctx: &mut Context<Self>) -> (Flow, Option<&'static cmd::Spec>) {
        let muted = !self.in_exec() && (self.state.replies_off || std::mem::take(&mut self.state.skip_next_reply));
        self.mute_current(muted);
        cmd::dispatch(self, args, ctx)
    }

    /// The command's table entry if it can go out with its pipelined
    /// neighbours as one run: a command that joins runs, well-formed,
    /// allowed here, not inside MULTI/EXEC, replies not muted.
    fn joins_run(&self, args: &[Bytes]) -> Option<&'static cmd::Spec> {
        let spec = cmd::run_member(&args[0])?;
        let ok = spec.arity_ok(args.len())
            && self.state.multi.is_none()
            && !self.in_exec()
            && !self.state.replies_off
            && !self.state.skip_next_reply
            && (self.state.resp3 || !self.subs.any())
            && self.state.authenticated
            && self.state.may_publish
            && cmd::denied_channel(spec, args, &self.state.user).is_none()
            && cmd::cluster::redirect(self, spec, args).is_none();
        ok.then_some(spec)
    }

    /// Keeps a once-a-second idle check running while a timeout is set.
    fn arm_idle_check(&mut self, ctx: &mut Context<Self>) {
        match (self.settings.idle_timeout.is_zero(), self.driving.idle_check.take()) {
            (true, Some(handle)) => {
                ctx.cancel_future(handle);
            }
            (false, None) => {
                let period = self.settings.idle_timeout.min(Duration::from_secs(1));
                self.driving.idle_check = Some(ctx.run_interval(period, |act, ctx| act.close_if_idle(ctx)));
            }
            (_, handle) => self.driving.idle_check = handle,
        }
    }

    /// Redis' `timeout`: idle connections go, subscribers stay.
    fn close_if_idle(&mut self, ctx: &mut Context<Self>) {
        let timeout = self.settings.idle_timeout;
        if !timeout.is_zero() && !self.subs.any() && self.driving.last_active.elapsed() > timeout {
            tracing::debug!(client = self.id, addr = %self.peer, "closing idle client");
            self.close_now(ctx);
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        Census::arrive(&self.hub.census.sessions);
        let register = self.hub.clients.send(Register { id: self.id, link: ctx.address().recipient() });
        ctx.wait(actix::fut::wrap_future::<_, Self>(register).map(|settings, act, ctx| {
            match settings {
                Ok(Some(Registered { settings, default_user })) => {
                    act.settings = settings;
                    let refuse = act.settings.protected_mode && default_user.nopass && !is_loopback(&act.peer);
                    act.state.default_user = default_user;
                    act.state.log_in_as_default();
                    if refuse {
                        act.error(PROTECTED_MODE_DENIED);
                        return act.close_after_reply(ctx);
                    }
                }
                Ok(None) => {
                    // Redis answers before reading anything, then closes.
                    act.error("ERR max number of clients reached");
                    return act.close_after_reply(ctx);
                }
                Err(_) => return act.close_now(ctx),
            }
            act.arm_idle_check(ctx);
            let read = act.driving.read.take().expect("read half");
            let decoder = PipelineDecoder::new(
                RequestDecoder::new(act.settings.proto_max_bulk_len).query_limit(act.settings.query_buffer_limit),
            )
            .counting(act.hub.census.traffic.clone());
            ctx.add_stream(FramedRead::with_capacity(read, decoder, PipelineDecoder::first_read()));
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.hub.census.leave(&self.hub.census.sessions);
        self.leave_monitor();
        self.drop_subscriptions();
        self.hub.clients.do_send(Deregister(self.id));
        self.close_output();
        tracing::debug!(client = self.id, addr = %self.peer, "connection closed");
    }
}

impl StreamHandler<Result<Vec<Request>, std::io::Error>> for Session {
    fn handle(&mut self, batch: Result<Vec<Request>, std::io::Error>, ctx: &mut Context<Self>) {
        let Ok(batch) = batch else { return self.close_now(ctx) };
        for request in batch {
            self.driving.queue.push_back(match request {
                Request::Command(args) => Step::Command(args),
                Request::Invalid(reason, got) => Step::Invalid(Request::error_text(reason, got)),
                Request::TooBig => Step::TooBig,
            });
        }
        self.pump(ctx);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The client closed its side: write what it already asked for, close.
        self.close_after_reply(ctx);
    }
}

/// Every delivery posted before an UNSUBSCRIBE was read has been handled:
/// the unsubscriptions end, are confirmed, and the loop goes on.
impl Handler<CaughtUp> for Session {
    type Result = ();
    fn handle(&mut self, _: CaughtUp, ctx: &mut Context<Self>) {
        cmd::subscribe::caught_up(self);
        self.resume(ctx);
    }
}

impl Session {
    /// Goes on with the queue after a `Flow::Held` command is done.
    pub(crate) fn resume(&mut self, ctx: &mut Context<Self>) {
        self.driving.held = false;
        self.pump(ctx);
    }
}

/// Cluster mode: the peer nodes have the names of a SUBSCRIBE that held
/// the loop; it is confirmed, and the loop goes on.
impl Handler<crate::mesh::PeersTook> for Session {
    type Result = ();
    fn handle(&mut self, _: crate::mesh::PeersTook, ctx: &mut Context<Self>) {
        cmd::subscribe::peers_took(self);
        self.resume(ctx);
    }
}

impl Handler<Deliveries> for Session {
    type Result = ();
    fn handle(&mut self, Deliveries(all): Deliveries, ctx: &mut Context<Self>) {
        for msg in all {
            self.deliver(msg, ctx);
        }
    }
}

/// Redis' words for a refused non-loopback client in protected mode.
const PROTECTED_MODE_DENIED: &str = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";

/// Whether a peer address (`ip:port`) is on the loopback interface. Peers
/// that are not IP at all (the simulator's hosts) count as local.
fn is_loopback(peer: &str) -> bool {
    match peer.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback() || addr.ip().to_canonical().is_loopback(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_loopback_peers_pass_protected_mode() {
        for local in ["127.0.0.1:5000", "127.9.9.9:1", "[::1]:6379", "[::ffff:127.0.0.1]:6379", "sim-host:1"] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["10.0.0.1:5000", "192.168.1.2:1", "[2001:db8::1]:6379", "[::ffff:10.0.0.1]:6379"] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
