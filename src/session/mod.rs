//! One actor per client connection.
//!
//! A session runs its client's commands one at a time, in the order sent.
//! A command that needs another actor's answer (PUBLISH, SUBSCRIBE, PUBSUB…)
//! holds the session with `ctx.wait` until the answer is in: no further
//! command is read and no delivery is written meanwhile, which is what keeps
//! replies, confirmations and messages in Redis' order.

mod around;
mod control;
pub(crate) mod output;
pub(crate) mod subscriptions;

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use std::sync::Arc;

use crate::acl::User;
use crate::broker::directory::Unsubscribe;
use crate::broker::{Census, ClientId, Deliver, Deliveries};
use crate::cmd;
use crate::config::Config;
use crate::hub::Hub;
use crate::protocol::push::Kind;
use crate::protocol::{PipelineDecoder, Reply, Request, RequestDecoder};
use crate::registry::{ClientInfo, Deregister, Register, Registered};
use control::WriterFailed;
use output::Output;
use subscriptions::Subscriptions;

/// Work a command left for the session to finish once its answers arrive.
pub(crate) type Pending = Pin<Box<dyn ActorFuture<Session, Output = ()>>>;

/// What running a command did.
pub(crate) enum Flow {
    /// Its replies are written.
    Done,
    /// It waits on other actors; the session holds until this completes.
    Wait(Pending),
}

/// Wraps a future whose answer `finish` turns into replies.
pub(crate) fn wait_for<F, T>(fut: F, finish: impl FnOnce(T, &mut Session, &mut Context<Session>) + 'static) -> Flow
where
    F: std::future::Future<Output = T> + 'static,
{
    Flow::Wait(Box::pin(actix::fut::wrap_future::<_, Session>(fut).map(finish)))
}

enum Step {
    Command(Vec<Bytes>),
    Invalid(String),
    /// A command over `client-query-buffer-limit`: close, no reply.
    TooBig,
    /// The end of an EXEC's queued commands: their replies go out as one array.
    ExecEnd,
}

/// MULTI state: commands queued for EXEC, and whether one was refused.
#[derive(Default)]
pub(crate) struct Multi {
    pub queued: Vec<Vec<Bytes>>,
    pub failed: bool,
}

/// Who a session serves and where it runs.
pub(crate) struct Origin {
    pub id: ClientId,
    pub peer: String,
    pub local: String,
    /// Its arbiter's index (0 on a single host).
    pub slot: usize,
}

/// A client connection: its protocol state, subscriptions and output.
pub(crate) struct Session {
    pub id: ClientId,
    pub peer: String,
    pub local: String,
    pub slot: usize,
    pub hub: Hub,
    pub settings: Config,
    pub resp3: bool,
    pub name: Option<Bytes>,
    pub lib_name: String,
    pub lib_ver: String,
    pub db: u32,
    pub subs: Subscriptions,
    /// Where deliveries reach this session (made on first subscribe).
    pub inbox: Option<crate::broker::Inbox>,
    /// Who this connection is (the default user until AUTH), and whether
    /// it may run commands other than AUTH/HELLO yet.
    pub user: Arc<User>,
    pub authenticated: bool,
    /// What RESET returns to.
    pub default_user: Arc<User>,
    /// Whether this user may PUBLISH and SPUBLISH (to channels it may use),
    /// so pipelined runs can skip the per-command check.
    may_publish: bool,
    pub multi: Option<Multi>,
    pub replies_off: bool,
    pub skip_next_reply: bool,
    muted: bool,
    out: Output,
    read: Option<Box<dyn AsyncRead + Unpin>>,
    queue: VecDeque<Step>,
    exec_replies: Option<Vec<Reply>>,
    closing: bool,
    created: Instant,
    last_active: Instant,
    idle_check: Option<SpawnHandle>,
    pub last_cmd: String,
    /// The command dispatch ran (not refused), for its Commandstats.
    pub ran: Option<&'static cmd::Spec>,
    /// Error replies sent so far: a command that sent one failed.
    errors_sent: u64,
    /// In MONITOR mode (see `cmd::diagnostics`).
    pub monitor: bool,
    /// CLIENT TRACKING's state (Herald has no keys to invalidate).
    pub tracking: cmd::client::Tracking,
    /// Protected from `maxmemory-clients` eviction (CLIENT NO-EVICT).
    pub no_evict: bool,
    /// EXEC's own monitor line, shown after its commands' as Redis shows it.
    exec_feed: Option<Vec<Bytes>>,
}

impl Session {
    /// Starts a session for an accepted connection on the current arbiter
    /// (or simulated host), which must be arbiter `origin.slot`.
    pub(crate) fn start<S>(origin: Origin, stream: S, hub: Hub, settings: Config) -> Addr<Session>
    where
        S: AsyncRead + AsyncWrite + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Session::create(move |ctx| {
            crate::broker::unbounded_mailbox(ctx);
            let me = ctx.address();
            let out = Output::start(Box::new(write), hub.census.clone(), move || me.do_send(WriterFailed));
            let now = Instant::now();
            let Origin { id, peer, local, slot } = origin;
            Session {
                id,
                peer,
                local,
                slot,
                hub,
                settings,
                resp3: false,
                name: None,
                lib_name: String::new(),
                lib_ver: String::new(),
                db: 0,
                subs: Subscriptions::default(),
                inbox: None,
                user: Arc::new(User::new("default")),
                authenticated: false,
                default_user: Arc::new(User::new("default")),
                may_publish: false,
                multi: None,
                replies_off: false,
                skip_next_reply: false,
                muted: false,
                out,
                read: Some(Box::new(read)),
                queue: VecDeque::new(),
                exec_replies: None,
                closing: false,
                created: now,
                last_active: now,
                idle_check: None,
                last_cmd: "NULL".into(),
                ran: None,
                errors_sent: 0,
                monitor: false,
                tracking: Default::default(),
                no_evict: false,
                exec_feed: None,
            }
        })
    }

    /// Sends one reply (or, inside EXEC, collects it for the EXEC array).
    pub(crate) fn reply(&mut self, reply: Reply) {
        if let Some(collected) = &mut self.exec_replies {
            collected.push(reply);
            return;
        }
        if self.muted {
            return;
        }
        let resp3 = self.resp3;
        self.out.append(|buf| reply.encode(resp3, buf));
    }

    /// Sends a push (a subscribe or unsubscribe confirmation): as in Redis
    /// 7.0, CLIENT REPLY OFF and SKIP do not withhold pushes.
    pub(crate) fn push(&mut self, reply: Reply) {
        let muted = std::mem::replace(&mut self.muted, false);
        self.reply(reply);
        self.muted = muted;
    }

    /// Whether EXEC is running its queued commands.
    pub(crate) fn in_exec(&self) -> bool {
        self.exec_replies.is_some()
    }

    /// Suppresses the rest of the current command's replies (CLIENT REPLY).
    pub(crate) fn mute_current(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Sends an error reply, counted in Errorstats by its code.
    pub(crate) fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.errors_sent += 1;
        self.hub.stats.shard(self.slot).error(crate::stats::error_code(&text));
        self.reply(Reply::Error(text))
    }

    /// Records a refusal in ACL LOG: `reason` is `command`, `channel` or
    /// `auth` (then `username` is the name tried).
    pub(crate) fn acl_denied(&self, reason: &'static str, object: String, username: Option<String>) {
        let context = if self.exec_replies.is_some() { "multi" } else { "toplevel" };
        self.hub.clients.do_send(crate::registry::AclDenied(crate::acl::log::Denial {
            reason,
            context,
            object,
            username: username.unwrap_or_else(|| self.user.name.clone()),
            client_info: self.info().line().trim_end().to_string(),
        }));
    }

    /// Writes what is queued, then closes (QUIT, protocol errors, EOF).
    pub(crate) fn close_after_reply(&mut self, ctx: &mut Context<Self>) {
        self.closing = true;
        self.queue.clear();
        self.out.close();
        ctx.stop();
    }

    /// Closes at once, dropping queued output (CLIENT KILL, output limits,
    /// a broken connection).
    fn close_now(&mut self, ctx: &mut Context<Self>) {
        self.closing = true;
        self.queue.clear();
        self.out.abort();
        ctx.stop();
    }

    /// Runs queued requests until one has to wait.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while !self.closing {
            let Some(step) = self.queue.pop_front() else {
                return;
            };
            // Muting (CLIENT REPLY) lasts one command, waits included.
            self.muted = false;
            if let Step::Command(args) = &step {
                if let Some(wait) = self.paused_for(args) {
                    self.queue.push_front(step);
                    ctx.wait(wait.map(|_, act: &mut Session, ctx| act.pump(ctx)));
                    return;
                }
            }
            match step {
                Step::Command(args) if self.can_batch(&args) => {
                    let mut run = vec![args];
                    while let Some(Step::Command(next)) = self.queue.front() {
                        if !self.can_batch(next) {
                            break;
                        }
                        let Some(Step::Command(next)) = self.queue.pop_front() else { unreachable!() };
                        run.push(next);
                    }
                    let mut clock = self.start_clock(None);
                    if self.hub.census.monitors.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                        for args in &run {
                            self.feed_monitors(args);
                        }
                    }
                    let n = run.len() as u64;
                    let spec = cmd::publish::spec_of(&run[0][0]);
                    let pending = cmd::publish::publish_run(self, &run, clock.started);
                    ctx.wait(pending.map(move |_, act: &mut Session, ctx| {
                        // The run's first publish stands for it in SLOWLOG.
                        clock.args = run.into_iter().next();
                        act.stop_clock(clock, spec, spec.name, n);
                        act.pump(ctx)
                    }));
                    return;
                }
                Step::Command(args) => {
                    let clock = self.start_clock(Some(&args));
                    self.ran = None;
                    if let Flow::Wait(pending) = self.execute(args, ctx) {
                        ctx.wait(pending.map(move |_, act: &mut Session, ctx| {
                            act.finish_command(clock);
                            act.pump(ctx)
                        }));
                        return;
                    }
                    self.finish_command(clock);
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
                    if let Some(args) = self.exec_feed.take() {
                        self.feed_monitors(&args);
                    }
                    let replies = self.exec_replies.take().unwrap_or_default();
                    self.reply(Reply::Array(replies));
                }
            }
        }
    }

    fn execute(&mut self, args: Vec<Bytes>, ctx: &mut Context<Self>) -> Flow {
        self.muted = self.exec_replies.is_none() && (self.replies_off || std::mem::take(&mut self.skip_next_reply));
        cmd::dispatch(self, args, ctx)
    }

    /// A pipelined PUBLISH/SPUBLISH that can go out with its neighbours:
    /// well-formed, allowed here, not inside MULTI/EXEC, replies not
    /// muted.
    fn can_batch(&self, args: &[Bytes]) -> bool {
        args.len() == 3
            && (args[0].eq_ignore_ascii_case(b"publish") || args[0].eq_ignore_ascii_case(b"spublish"))
            && self.multi.is_none()
            && self.exec_replies.is_none()
            && !self.replies_off
            && !self.skip_next_reply
            && (self.resp3 || !self.subs.any())
            && self.authenticated
            && self.may_publish
            && self.user.may_use_channel(&args[1], false)
    }

    /// Runs as `user` from now on.
    pub(crate) fn set_user(&mut self, user: Arc<User>) {
        let may = |name| cmd::lookup(name).is_some_and(|spec| user.may_run(name, spec.acl));
        self.may_publish = may("publish") && may("spublish");
        self.user = user;
    }

    /// A new connection's (and RESET's) identity: the default user,
    /// authenticated if it needs no password.
    pub(crate) fn log_in_as_default(&mut self) {
        self.authenticated = self.default_user.nopass && self.default_user.enabled;
        self.set_user(self.default_user.clone());
    }

    /// Queues an EXEC's commands to run next, replies collected.
    pub(crate) fn run_exec(&mut self, queued: Vec<Vec<Bytes>>) {
        self.exec_replies = Some(Vec::with_capacity(queued.len()));
        let steps = queued.into_iter().map(Step::Command).chain(std::iter::once(Step::ExecEnd));
        for (i, step) in steps.enumerate() {
            self.queue.insert(i, step);
        }
    }

    /// The output limit for this client's class, as Redis picks it.
    fn output_limit(&self) -> crate::config::OutputLimit {
        if self.subs.any() {
            self.settings.pubsub_output
        } else {
            self.settings.normal_output
        }
    }

    fn enforce_output_limit(&mut self, ctx: &mut Context<Self>) {
        if self.out.is_closed() {
            return;
        }
        self.check_client_memory();
        let limit = self.output_limit();
        let was_over_soft = self.out.over_soft_since().is_some();
        match self.out.check(&limit) {
            Some(which) => {
                tracing::warn!(
                    client = self.id,
                    addr = %self.peer,
                    pending = self.out.pending(),
                    limit = ?which,
                    "client closed for overcoming of output buffer limits"
                );
                self.hub.census.dropped_slow.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Its spike: how long it had been over its soft limit.
                if let Some(since) = self.out.over_soft_since() {
                    self.latency_spike("slow-subscriber-drop", since);
                }
                metrics::counter!(crate::metrics::DROPPED).increment(1);
                self.close_now(ctx);
            }
            None if !was_over_soft && self.out.over_soft_since().is_some() => {
                // Re-check when the soft period ends, even if nothing more
                // is published to this client.
                ctx.run_later(limit.soft_for, |act, ctx| act.enforce_output_limit(ctx));
            }
            None => {}
        }
    }

    /// Writes a message for one of this session's subscriptions, unless
    /// the subscription ended since it was sent.
    pub(crate) fn deliver(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        if !self.subs.is_live(msg.token) || self.out.is_closed() {
            return;
        }
        for frame in msg.frames.iter() {
            self.out.append(|buf| buf.extend_from_slice(frame.header(self.resp3)));
            self.out.push(&frame.body);
        }
        self.enforce_output_limit(ctx);
    }

    /// Keeps a once-a-second idle check running while a timeout is set.
    fn arm_idle_check(&mut self, ctx: &mut Context<Self>) {
        match (self.settings.idle_timeout.is_zero(), self.idle_check.take()) {
            (true, Some(handle)) => {
                ctx.cancel_future(handle);
            }
            (false, None) => {
                let period = self.settings.idle_timeout.min(Duration::from_secs(1));
                self.idle_check = Some(ctx.run_interval(period, |act, ctx| act.close_if_idle(ctx)));
            }
            (_, handle) => self.idle_check = handle,
        }
    }

    /// Redis' `timeout`: idle connections go, subscribers stay.
    fn close_if_idle(&mut self, ctx: &mut Context<Self>) {
        let timeout = self.settings.idle_timeout;
        if !timeout.is_zero() && !self.subs.any() && self.last_active.elapsed() > timeout {
            tracing::debug!(client = self.id, addr = %self.peer, "closing idle client");
            self.close_now(ctx);
        }
    }

    /// What CLIENT LIST / CLIENT INFO show for this connection.
    pub(crate) fn info(&self) -> ClientInfo {
        let now = Instant::now();
        let mut flags = String::new();
        if self.monitor {
            flags.push('O');
        }
        if self.subs.any() {
            flags.push('P');
        }
        if self.multi.is_some() {
            flags.push('x');
        }
        if self.no_evict {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        ClientInfo {
            id: self.id,
            addr: self.peer.clone(),
            laddr: self.local.clone(),
            name: self.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
            age_secs: now.duration_since(self.created).as_secs(),
            idle_secs: now.duration_since(self.last_active).as_secs(),
            flags,
            db: self.db,
            sub: self.subs.count(Kind::Channel),
            psub: self.subs.count(Kind::Pattern),
            ssub: self.subs.count(Kind::Shard),
            multi: self.multi.as_ref().map_or(-1, |m| m.queued.len() as i64),
            omem: self.out.pending(),
            cmd: self.last_cmd.clone(),
            resp: if self.resp3 { 3 } else { 2 },
            lib_name: self.lib_name.clone(),
            lib_ver: self.lib_ver.clone(),
            user: self.user.name.clone(),
            no_evict: self.no_evict,
        }
    }

    /// Leaves every subscription without confirmations (disconnect, RESET).
    pub(crate) fn drop_subscriptions(&mut self) {
        for kind in [Kind::Channel, Kind::Shard] {
            for channel in self.subs.names(kind) {
                self.subs.remove(kind, &channel);
                self.hub.directory(&channel).do_send(Unsubscribe { kind, channel, client: self.id });
            }
        }
        for pattern in self.subs.names(Kind::Pattern) {
            self.subs.remove(Kind::Pattern, &pattern);
            self.hub.punsubscribe(pattern, self.id);
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
                    act.default_user = default_user;
                    act.log_in_as_default();
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
            let read = act.read.take().expect("read half");
            let decoder = PipelineDecoder::new(
                RequestDecoder::new(act.settings.proto_max_bulk_len).query_limit(act.settings.query_buffer_limit),
            )
            .counting(act.hub.census.traffic.clone());
            ctx.add_stream(FramedRead::with_capacity(read, decoder, PipelineDecoder::first_read()));
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.hub.census.leave(&self.hub.census.sessions);
        if self.monitor {
            self.hub.census.monitors.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            self.hub.diagnostics.do_send(crate::diagnostics::RemoveMonitor(self.id));
        }
        self.drop_subscriptions();
        self.hub.clients.do_send(Deregister(self.id));
        self.out.close();
        tracing::debug!(client = self.id, addr = %self.peer, "connection closed");
    }
}

impl StreamHandler<Result<Vec<Request>, std::io::Error>> for Session {
    fn handle(&mut self, batch: Result<Vec<Request>, std::io::Error>, ctx: &mut Context<Self>) {
        let Ok(batch) = batch else { return self.close_now(ctx) };
        for request in batch {
            self.queue.push_back(match request {
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
