//! One actor per client connection: its state, and what commands may do
//! with it (reply, deliver, close, queue EXEC's commands). The actor's
//! driving loop — reading requests, running them through `cmd`, timing
//! them, the messages other actors send it — is `crate::shell`'s: this
//! module knows nothing of commands.
//!
//! A session runs its client's commands one at a time, in the order sent.
//! A command that needs another actor's answer (PUBLISH, SUBSCRIBE, PUBSUB…)
//! holds the session with `ctx.wait` until the answer is in: no further
//! command is read and no delivery is written meanwhile, which is what keeps
//! replies, confirmations and messages in Redis' order.

pub(crate) mod around;
pub(crate) mod output;
pub(crate) mod state;
pub(crate) mod subscriptions;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::time::Instant;

use crate::broker::directory::Unsubscribe;
use crate::broker::{ClientId, Deliver};
use crate::config::Config;
use crate::hub::Hub;
use crate::planted::{planted, Bug};
use crate::protocol::push::Kind;
use crate::protocol::Reply;
use crate::registry::ClientInfo;
use output::Output;
pub(crate) use state::{ClientState, Multi, Tracking};
use subscriptions::Subscriptions;

/// Work a command left for the session to finish once its answers arrive.
pub(crate) type Pending = Pin<Box<dyn ActorFuture<Session, Output = ()>>>;

/// What running a command did.
pub(crate) enum Flow {
    /// Its replies are written.
    Done,
    /// It waits on other actors; the session holds until this completes.
    Wait(Pending),
    /// It waits for a message to this session (whose handler resumes the
    /// loop); unlike `Wait`, the session's mailbox keeps being served.
    Held,
}

/// Wraps a future whose answer `finish` turns into replies.
pub(crate) fn wait_for<F, T>(fut: F, finish: impl FnOnce(T, &mut Session, &mut Context<Session>) + 'static) -> Flow
where
    F: std::future::Future<Output = T> + 'static,
{
    Flow::Wait(Box::pin(actix::fut::wrap_future::<_, Session>(fut).map(finish)))
}

/// One thing the session's queue holds (see `crate::shell`).
pub(crate) enum Step {
    Command(Vec<Bytes>),
    Invalid(String),
    /// A command over `client-query-buffer-limit`: close, no reply.
    TooBig,
    /// The end of an EXEC's queued commands: their replies go out as one array.
    ExecEnd,
}

/// Who a session serves and where it runs.
pub(crate) struct Origin {
    pub id: ClientId,
    pub peer: String,
    pub local: String,
    /// Its arbiter's index (0 on a single host).
    pub slot: usize,
}

/// What the actor's loop (`crate::shell`) keeps of a session. Commands
/// never touch it (`tests/module_graph.rs` checks that cmd/ does not name
/// it); the session's own methods use the queue (EXEC queues its commands
/// there) and the last activity (CLIENT LIST's idle).
pub(crate) struct Driving {
    /// The read half, until the request stream is set up.
    pub read: Option<Box<dyn AsyncRead + Unpin>>,
    /// Requests read and not yet run.
    pub queue: VecDeque<Step>,
    /// When the last command started (`timeout`, CLIENT LIST idle).
    pub last_active: Instant,
    /// The idle check's timer.
    pub idle_check: Option<SpawnHandle>,
    /// EXEC's own monitor line, shown after its commands'.
    pub exec_feed: Option<Vec<Bytes>>,
    /// A command is `Flow::Held`: nothing more runs until it resumes.
    pub held: bool,
}

/// A client connection: its protocol state, subscriptions and output.
///
/// `driving` belongs to the actor's loop in `crate::shell`; commands leave
/// it alone.
pub(crate) struct Session {
    pub id: ClientId,
    pub peer: String,
    pub local: String,
    pub slot: usize,
    /// The server's, shared by all its sessions.
    pub hub: Arc<Hub>,
    /// The registry's settings, shared by all sessions until CONFIG SET
    /// sends new ones (a copy each was 592 bytes a connection).
    pub settings: Arc<Config>,
    /// What commands read and set; RESET puts it back.
    pub state: ClientState,
    pub subs: Subscriptions,
    /// Where deliveries reach this session (made on first subscribe).
    pub inbox: Option<crate::broker::Inbox>,
    /// Unsubscriptions waiting for their postman (`broker::postman::Behind`)
    /// before they are confirmed, in order: kind, name, the count the
    /// confirmation carries, and the token still live until then.
    pub leaving: Vec<(Kind, Bytes, usize, Option<u64>)>,
    /// Cluster mode: a SUBSCRIBE waiting for the peer nodes (`mesh::Want`):
    /// its tokens and confirmations, confirmed when `PeersTook` comes.
    pub joining: Option<(Vec<u64>, Vec<Reply>)>,
    /// The command running now, for CLIENT LIST's `cmd`.
    pub last_cmd: String,
    /// Suppresses the current command's replies (CLIENT REPLY).
    muted: bool,
    out: Output,
    /// The actor loop's part.
    pub driving: Driving,
    exec_replies: Option<Vec<Reply>>,
    closing: bool,
    created: Instant,
    /// Error replies sent so far: a command that sent one failed.
    errors_sent: u64,
}

impl Session {
    /// A new connection's session, writing to `out`, reading `read`.
    pub(crate) fn new(
        origin: Origin,
        hub: Arc<Hub>,
        settings: Arc<Config>,
        out: Output,
        read: Box<dyn AsyncRead + Unpin>,
    ) -> Session {
        let now = Instant::now();
        let Origin { id, peer, local, slot } = origin;
        Session {
            id,
            peer,
            local,
            slot,
            hub,
            settings,
            state: ClientState::default(),
            subs: Subscriptions::default(),
            inbox: None,
            leaving: Vec::new(),
            joining: None,
            last_cmd: "NULL".into(),
            muted: false,
            out,
            driving: Driving {
                read: Some(read),
                queue: VecDeque::new(),
                last_active: now,
                idle_check: None,
                exec_feed: None,
                held: false,
            },
            exec_replies: None,
            closing: false,
            created: now,
            errors_sent: 0,
        }
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
        let resp3 = self.state.resp3;
        self.out.append(|buf| reply.encode(resp3, buf));
    }

    /// Writes the replies queued so far now, if the writer task is idle
    /// (`Output::write_now`).
    pub(crate) fn write_replies_now(&mut self) {
        self.out.write_now();
    }

    /// Sends a push (a subscribe or unsubscribe confirmation): as in Redis
    /// 7.0, CLIENT REPLY OFF and SKIP do not withhold pushes.
    pub(crate) fn push(&mut self, reply: Reply) {
        let muted = std::mem::replace(&mut self.muted, false);
        self.reply(reply);
        self.muted = muted;
    }

    /// EXEC's queued commands have run: their replies go out as one array.
    pub(crate) fn end_exec(&mut self) {
        let replies = self.exec_replies.take().unwrap_or_default();
        self.reply(Reply::Array(replies));
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
        // Inside MULTI, queueing or running EXEC, as Redis' CLIENT_MULTI.
        let context = if self.state.multi.is_some() || self.in_exec() { "multi" } else { "toplevel" };
        self.hub.clients.do_send(crate::registry::AclDenied(crate::acl::log::Denial {
            reason,
            context,
            object,
            username: username.unwrap_or_else(|| self.state.user.name.clone()),
            client_info: self.info().line().trim_end().to_string(),
        }));
    }

    /// Writes what is queued, then closes (QUIT, protocol errors, EOF).
    pub(crate) fn close_after_reply(&mut self, ctx: &mut Context<Self>) {
        self.closing = true;
        self.driving.queue.clear();
        self.out.close();
        ctx.stop();
    }

    /// Closes at once, dropping queued output (CLIENT KILL, output limits,
    /// a broken connection).
    pub(crate) fn close_now(&mut self, ctx: &mut Context<Self>) {
        self.closing = true;
        self.driving.queue.clear();
        self.out.abort();
        ctx.stop();
    }

    /// Whether the session is on its way out (nothing more is run).
    pub(crate) fn closing(&self) -> bool {
        self.closing
    }

    /// Errors sent so far (a command that raised it failed).
    pub(crate) fn errors_sent(&self) -> u64 {
        self.errors_sent
    }

    /// Queues an EXEC's commands to run next, replies collected.
    pub(crate) fn run_exec(&mut self, queued: Vec<Vec<Bytes>>) {
        self.exec_replies = Some(Vec::with_capacity(queued.len()));
        let steps = queued.into_iter().map(Step::Command).chain(std::iter::once(Step::ExecEnd));
        for (i, step) in steps.enumerate() {
            self.driving.queue.insert(i, step);
        }
    }

    /// The output limit for this client's class, as Redis picks it.
    pub(crate) fn output_limit(&self) -> crate::config::OutputLimit {
        if self.subs.any() {
            self.settings.pubsub_output
        } else {
            self.settings.normal_output
        }
    }

    pub(crate) fn enforce_output_limit(&mut self, ctx: &mut Context<Self>) {
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
        let left = !self.subs.is_live(msg.token) && !planted(Bug::AfterUnsubscribe);
        if left || self.out.is_closed() {
            return;
        }
        for frame in msg.frames.iter() {
            self.out.append(|buf| buf.extend_from_slice(frame.header(self.state.resp3)));
            self.out.push(&frame.body);
        }
        self.enforce_output_limit(ctx);
    }

    /// What CLIENT LIST / CLIENT INFO show for this connection.
    pub(crate) fn info(&self) -> ClientInfo {
        let now = Instant::now();
        let mut flags = String::new();
        if self.state.monitor {
            flags.push('O');
        }
        if self.subs.any() {
            flags.push('P');
        }
        if self.state.multi.is_some() {
            flags.push('x');
        }
        if self.state.no_evict {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        ClientInfo {
            id: self.id,
            addr: self.peer.clone(),
            laddr: self.local.clone(),
            name: self.state.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
            age_secs: now.duration_since(self.created).as_secs(),
            idle_secs: now.duration_since(self.driving.last_active).as_secs(),
            flags,
            db: self.state.db,
            sub: self.subs.count(Kind::Channel),
            psub: self.subs.count(Kind::Pattern),
            ssub: self.subs.count(Kind::Shard),
            multi: self.state.multi.as_ref().map_or(-1, |m| m.queued.len() as i64),
            omem: self.out.pending(),
            cmd: self.last_cmd.clone(),
            resp: if self.state.resp3 { 3 } else { 2 },
            lib_name: self.state.lib_name.clone(),
            lib_ver: self.state.lib_ver.clone(),
            user: self.state.user.name.clone(),
            no_evict: self.state.no_evict,
        }
    }

    /// Leaves every subscription without confirmations (disconnect, RESET).
    pub(crate) fn drop_subscriptions(&mut self) {
        // An UNSUBSCRIBE still waiting for its postman has told the
        // directory already, and its names are out of `subs`: each is told
        // once (twice, a channel would count a subscriber fewer than it has).
        self.leaving.clear();
        self.joining = None;
        for kind in [Kind::Channel, Kind::Shard] {
            let names = self.subs.names(kind);
            for channel in names.iter().cloned() {
                self.subs.remove(kind, &channel);
                self.hub.directory(&channel).do_send(Unsubscribe { kind, channel, client: self.id });
            }
            self.hub.unwant(kind, names);
        }
        let patterns = self.subs.names(Kind::Pattern);
        for pattern in patterns.iter().cloned() {
            self.subs.remove(Kind::Pattern, &pattern);
            self.hub.punsubscribe(pattern, self.id);
        }
        self.hub.unwant(Kind::Pattern, patterns);
    }

    /// Writes one MONITOR line (`+` and the line).
    pub(crate) fn write_monitor_line(&mut self, line: &[u8]) {
        if self.out.is_closed() {
            return;
        }
        self.out.append(|buf| {
            buf.extend_from_slice(b"+");
            buf.extend_from_slice(line);
            buf.extend_from_slice(b"\r\n");
        });
    }

    /// The actor stopped: the writer flushes what is queued and ends.
    pub(crate) fn close_output(&mut self) {
        self.out.close();
    }

    /// Leaves MONITOR mode, if in it (RESET, disconnect).
    pub(crate) fn leave_monitor(&mut self) {
        if std::mem::take(&mut self.state.monitor) {
            self.hub.census.monitors.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            self.hub.diagnostics.do_send(crate::diagnostics::RemoveMonitor(self.id));
        }
    }
}
