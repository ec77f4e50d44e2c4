//! The list of connected clients: CLIENT LIST/KILL, INFO clients, and the
//! runtime settings every session follows.

use actix::prelude::*;
use bytes::Bytes;
use futures_util::future::join_all;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::acl::log::{AclLog, Denial, Entry};
use crate::acl::{User, Users};
use crate::broker::{ClientId, ReplyTo};
use crate::config::open_files::{self, Fit};
use crate::config::Config;

/// What the registry tells or asks a session. It reaches sessions only
/// through a `Recipient<Control>` each: it knows nothing of the session
/// actor, only this protocol.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum Control {
    /// CLIENT LIST, `maxmemory-clients`: its line, answered here.
    Describe(ReplyTo<ClientInfo>),
    /// Shutdown: write what is queued, then close.
    Drain,
    /// CLIENT KILL, eviction: close without flushing.
    Kill,
    /// ACL SETUSER/DELUSER or CONFIG SET requirepass changed user `name`
    /// (`None`: deleted).
    UserChanged { name: String, user: Option<Arc<User>> },
    /// CONFIG SET changed the runtime settings.
    SettingsChanged(Arc<Config>),
    /// Cluster mode: the topology changed; shard subscriptions to slots
    /// this node no longer serves end.
    TopologyChanged,
}

/// Where the registry reaches one session.
pub(crate) type SessionLink = Recipient<Control>;

/// Asks each of `links` for its line; those gone are left out.
fn describe_all<'a>(links: impl Iterator<Item = &'a SessionLink>) -> Vec<tokio::sync::oneshot::Receiver<ClientInfo>> {
    links
        .map(|link| {
            let (reply, answer) = tokio::sync::oneshot::channel();
            link.do_send(Control::Describe(reply));
            answer
        })
        .collect()
}

/// What CLIENT LIST shows of one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientInfo {
    pub id: ClientId,
    pub addr: String,
    pub laddr: String,
    pub name: String,
    pub age_secs: u64,
    pub idle_secs: u64,
    pub flags: String,
    pub db: u32,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    pub multi: i64,
    pub omem: usize,
    pub cmd: String,
    pub resp: u8,
    pub lib_name: String,
    pub lib_ver: String,
    pub user: String,
    /// CLIENT NO-EVICT ON: never closed for `maxmemory-clients`.
    pub no_evict: bool,
}

impl ClientInfo {
    /// One line of CLIENT LIST / CLIENT INFO, fields in Redis 7.2's order.
    /// Buffer figures Herald does not keep are reported as Redis reports an
    /// idle connection's.
    pub(crate) fn line(&self) -> String {
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} \
             multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={} tot-mem={} \
             events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}\n",
            self.id,
            self.addr,
            self.laddr,
            self.name,
            self.age_secs,
            self.idle_secs,
            self.flags,
            self.db,
            self.sub,
            self.psub,
            self.ssub,
            self.multi,
            self.omem,
            self.omem,
            self.cmd,
            self.user,
            self.resp,
            self.lib_name,
            self.lib_ver
        )
    }

    pub(crate) fn is_pubsub(&self) -> bool {
        self.flags.contains('P')
    }
}

/// Holds every session's address, the runtime settings and the ACL users.
pub(crate) struct ClientRegistry {
    config: Config,
    /// The same, as every session holds it: one copy shared.
    shared: Arc<Config>,
    users: Users,
    /// By id, which is the order CLIENT LIST shows (a map ordered by
    /// insertion made every disconnect shift the rest: quadratic when many
    /// clients leave at once).
    sessions: BTreeMap<ClientId, SessionLink>,
    total_connections: u64,
    rejected_connections: u64,
    /// Set by [`DrainAll`]: sessions that register afterwards (accepted
    /// just before the shutdown) are drained at once.
    draining: bool,
    /// CLIENT PAUSE: sessions read it before each command they may hold.
    pause: tokio::sync::watch::Sender<ClientPause>,
    acl_log: AclLog,
    /// Descriptors kept besides clients, when clients are descriptors (not
    /// in the simulator): a `maxclients` raised past the open-files limit
    /// is refused, as Redis refuses it.
    reserved_fds: Option<u64>,
}

/// CLIENT PAUSE's state: until when, and whether every command waits or
/// only those that write (for Herald: PUBLISH and SPUBLISH, FLUSHDB…).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClientPause {
    pub until: Option<tokio::time::Instant>,
    pub all: bool,
}

impl ClientPause {
    /// Whether a command (`writes`: one WRITE pauses too) must wait now.
    pub(crate) fn holds(&self, writes: bool) -> bool {
        self.until.is_some_and(|t| t > tokio::time::Instant::now()) && (self.all || writes)
    }
}

impl ClientRegistry {
    /// Fails if the configuration's users do not parse.
    pub(crate) fn new(
        config: Config,
        pause: tokio::sync::watch::Sender<ClientPause>,
        reserved_fds: Option<u64>,
    ) -> Result<Self, String> {
        let users = Users::new(config.requirepass.as_deref(), &config.users)?;
        Ok(ClientRegistry {
            shared: Arc::new(config.clone()),
            config,
            users,
            sessions: BTreeMap::new(),
            total_connections: 0,
            rejected_connections: 0,
            draining: false,
            pause,
            acl_log: AclLog::default(),
            reserved_fds,
        })
    }

    /// Tells every session that `name` changed (`None`: it was deleted).
    fn announce(&self, name: &str, user: Option<Arc<User>>) {
        for link in self.sessions.values() {
            link.do_send(Control::UserChanged { name: name.into(), user: user.clone() });
        }
    }
}

/// What a new session starts with.
pub(crate) struct Registered {
    pub settings: Arc<Config>,
    /// The default user, which a connection is until it authenticates.
    pub default_user: Arc<User>,
}

impl Actor for ClientRegistry {
    type Context = Context<Self>;
}

/// A new session; answers the settings it must follow, or `None` if
/// `maxclients` sessions are already connected (it is then not registered).
#[derive(Message)]
#[rtype(result = "Option<Registered>")]
pub(crate) struct Register {
    pub id: ClientId,
    pub link: SessionLink,
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Deregister(pub ClientId);

/// Every other client's info; the asking session adds its own (it is busy
/// waiting for this answer and cannot be asked).
#[derive(Message)]
#[rtype(result = "Vec<ClientInfo>")]
pub(crate) struct ListClients {
    pub except: ClientId,
}

/// Closes the given clients; answers how many existed.
#[derive(Message)]
#[rtype(result = "usize")]
pub(crate) struct KillClients(pub Vec<ClientId>);

#[derive(Message)]
#[rtype(result = "Config")]
pub(crate) struct GetConfig;

#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub(crate) struct SetConfig(pub Vec<(String, String)>);

#[derive(Debug, Clone)]
pub(crate) struct RegistryStats {
    pub connected: usize,
    pub total_connections: u64,
    /// Refused for `maxclients`.
    pub rejected_connections: u64,
    pub config: Config,
}

#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub(crate) struct GetStats;

impl Handler<Register> for ClientRegistry {
    type Result = MessageResult<Register>;
    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        self.total_connections += 1;
        if self.sessions.len() >= self.config.maxclients {
            self.rejected_connections += 1;
            return MessageResult(None);
        }
        if self.draining {
            msg.link.do_send(Control::Drain);
        }
        self.sessions.insert(msg.id, msg.link);
        let default_user = self.users.get("default").expect("the default user always exists").clone();
        MessageResult(Some(Registered { settings: self.shared.clone(), default_user }))
    }
}

impl Handler<Deregister> for ClientRegistry {
    type Result = ();
    fn handle(&mut self, Deregister(id): Deregister, _: &mut Context<Self>) {
        self.sessions.remove(&id);
    }
}

impl Handler<ListClients> for ClientRegistry {
    type Result = ResponseFuture<Vec<ClientInfo>>;
    fn handle(&mut self, msg: ListClients, _: &mut Context<Self>) -> Self::Result {
        let asks = describe_all(self.sessions.iter().filter(|(id, _)| **id != msg.except).map(|(_, link)| link));
        Box::pin(async move { join_all(asks).await.into_iter().filter_map(Result::ok).collect() })
    }
}

impl Handler<KillClients> for ClientRegistry {
    type Result = usize;
    fn handle(&mut self, KillClients(ids): KillClients, _: &mut Context<Self>) -> usize {
        let mut n = 0;
        for id in ids {
            if let Some(link) = self.sessions.get(&id) {
                link.do_send(Control::Kill);
                n += 1;
            }
        }
        n
    }
}

/// Cluster mode: tells every session the topology changed.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct TopologyChanged;

impl Handler<TopologyChanged> for ClientRegistry {
    type Result = ();
    fn handle(&mut self, _: TopologyChanged, _: &mut Context<Self>) {
        for link in self.sessions.values() {
            link.do_send(Control::TopologyChanged);
        }
    }
}

impl Handler<GetConfig> for ClientRegistry {
    type Result = MessageResult<GetConfig>;
    fn handle(&mut self, _: GetConfig, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.config.clone())
    }
}

impl Handler<SetConfig> for ClientRegistry {
    type Result = Result<(), String>;
    fn handle(&mut self, SetConfig(pairs): SetConfig, _: &mut Context<Self>) -> Self::Result {
        // All or nothing, as Redis' multi-argument CONFIG SET.
        let mut next = self.config.clone();
        next.set_all(&pairs)?;
        if let Some(reserved) = self.reserved_fds.filter(|_| next.maxclients > self.config.maxclients) {
            let fits = match open_files::fit_process(next.maxclients, reserved) {
                Fit::Fits => next.maxclients,
                Fit::Lowered { maxclients, .. } => maxclients,
                Fit::TooLow { .. } => 0,
            };
            if fits != next.maxclients {
                tracing::warn!("Failed applying new configuration. Possibly related to new maxclients setting. Restoring previous settings.");
                let why = format!(
                    "The operating system is not able to handle the specified number of clients, try with {fits}"
                );
                return Err(crate::config::invalid("maxclients", &why));
            }
        }
        let password_changed = next.requirepass != self.config.requirepass;
        self.config = next;
        self.shared = Arc::new(self.config.clone());
        for link in self.sessions.values() {
            link.do_send(Control::SettingsChanged(self.shared.clone()));
        }
        if password_changed {
            let user = self.users.set_requirepass(self.config.requirepass.as_deref().unwrap_or(""));
            self.announce("default", Some(user));
        }
        Ok(())
    }
}

impl Handler<GetStats> for ClientRegistry {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RegistryStats {
            connected: self.sessions.len(),
            total_connections: self.total_connections,
            rejected_connections: self.rejected_connections,
            config: self.config.clone(),
        })
    }
}

/// Shutdown: every session writes what it has queued and closes.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct DrainAll;

impl Handler<DrainAll> for ClientRegistry {
    type Result = ();
    fn handle(&mut self, _: DrainAll, _: &mut Context<Self>) {
        self.draining = true;
        for link in self.sessions.values() {
            link.do_send(Control::Drain);
        }
    }
}

/// CONFIG REWRITE: the running settings and users, into the config file.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub(crate) struct RewriteConfig;

impl Handler<RewriteConfig> for ClientRegistry {
    type Result = Result<(), String>;
    fn handle(&mut self, _: RewriteConfig, _: &mut Context<Self>) -> Self::Result {
        let users: Vec<String> = self.users.all().map(|u| u.describe()).collect();
        crate::config::file::rewrite(&self.config, &users)
    }
}

/// AUTH: the user, if the password is right and the user is on.
#[derive(Message)]
#[rtype(result = "Option<Arc<User>>")]
pub(crate) struct Authenticate {
    pub user: String,
    pub password: Bytes,
}

impl Handler<Authenticate> for ClientRegistry {
    type Result = Option<Arc<User>>;
    fn handle(&mut self, msg: Authenticate, _: &mut Context<Self>) -> Self::Result {
        self.users.get(&msg.user).filter(|u| u.accepts(&msg.password)).cloned()
    }
}

/// ACL SETUSER: all the rules or none.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub(crate) struct SetUser {
    pub name: String,
    pub rules: Vec<String>,
}

impl Handler<SetUser> for ClientRegistry {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: SetUser, _: &mut Context<Self>) -> Self::Result {
        let mut users = self.users.clone();
        let user = users.set(&msg.name, msg.rules.iter().map(String::as_str))?;
        self.users = users;
        self.announce(&msg.name, Some(user));
        Ok(())
    }
}

/// ACL DELUSER: answers how many existed; their clients are disconnected.
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub(crate) struct DeleteUsers(pub Vec<String>);

impl Handler<DeleteUsers> for ClientRegistry {
    type Result = Result<usize, String>;
    fn handle(&mut self, DeleteUsers(names): DeleteUsers, _: &mut Context<Self>) -> Self::Result {
        if names.iter().any(|n| n == "default") {
            return Err("ERR The 'default' user cannot be removed".into());
        }
        let mut n = 0;
        for name in names {
            if self.users.remove(&name) {
                n += 1;
                self.announce(&name, None);
            }
        }
        Ok(n)
    }
}

/// ACL LIST (as lines) or ACL USERS (names).
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub(crate) struct ListUsers {
    pub names_only: bool,
}

impl Handler<ListUsers> for ClientRegistry {
    type Result = MessageResult<ListUsers>;
    fn handle(&mut self, msg: ListUsers, _: &mut Context<Self>) -> Self::Result {
        let users = self.users.all();
        MessageResult(if msg.names_only {
            users.map(|u| u.name.clone()).collect()
        } else {
            users.map(|u| u.describe()).collect()
        })
    }
}

/// CLIENT PAUSE (`Some`) or UNPAUSE (`None`). As in Redis, a new pause
/// never shortens one in force, and ALL wins over WRITE while both last.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SetPause(pub Option<ClientPause>);

impl Handler<SetPause> for ClientRegistry {
    type Result = ();
    fn handle(&mut self, SetPause(pause): SetPause, _: &mut Context<Self>) {
        let next = match pause {
            None => ClientPause::default(),
            Some(new) => {
                let old = *self.pause.borrow();
                if old.holds(true) {
                    let until = old.until.max(new.until);
                    ClientPause { until, all: old.all || new.all }
                } else {
                    new
                }
            }
        };
        self.pause.send_replace(next);
    }
}

/// A refusal for ACL LOG.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct AclDenied(pub Denial);

impl Handler<AclDenied> for ClientRegistry {
    type Result = ();
    fn handle(&mut self, AclDenied(denial): AclDenied, _: &mut Context<Self>) {
        self.acl_log.add(denial, std::time::Instant::now(), ACL_LOG_MAX_LEN);
    }
}

/// Redis' `acllog-max-len` default.
const ACL_LOG_MAX_LEN: usize = 128;

/// `ACL LOG [count]` (`Some`) or `ACL LOG RESET` (`None`).
#[derive(Message)]
#[rtype(result = "Vec<Entry>")]
pub(crate) struct ReadAclLog(pub Option<usize>);

impl Handler<ReadAclLog> for ClientRegistry {
    type Result = MessageResult<ReadAclLog>;
    fn handle(&mut self, ReadAclLog(count): ReadAclLog, _: &mut Context<Self>) -> Self::Result {
        match count {
            Some(n) => MessageResult(self.acl_log.newest(n).cloned().collect()),
            None => {
                self.acl_log.clear();
                MessageResult(Vec::new())
            }
        }
    }
}

/// ACL GETUSER / DRYRUN: a user as it is now.
#[derive(Message)]
#[rtype(result = "Option<Arc<User>>")]
pub(crate) struct GetUser(pub String);

impl Handler<GetUser> for ClientRegistry {
    type Result = Option<Arc<User>>;
    fn handle(&mut self, GetUser(name): GetUser, _: &mut Context<Self>) -> Self::Result {
        self.users.get(&name).cloned()
    }
}

/// `maxmemory-clients` was passed: closes the clients with the most output
/// queued (those without NO-EVICT), largest first, until the rest hold at
/// most `limit` bytes, as Redis 7 evicts its biggest clients first.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct EvictClients {
    pub limit: u64,
    pub census: Arc<crate::broker::Census>,
}

impl Handler<EvictClients> for ClientRegistry {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: EvictClients, _: &mut Context<Self>) -> Self::Result {
        let links: Vec<SessionLink> = self.sessions.values().cloned().collect();
        let asks = describe_all(links.iter());
        Box::pin(async move {
            let mut clients = Vec::new();
            for (link, ask) in links.into_iter().zip(asks) {
                if let Ok(info) = ask.await {
                    clients.push((info, link));
                }
            }
            let mut total: u64 = clients.iter().map(|(c, _)| c.omem as u64).sum();
            clients.sort_by_key(|(c, _)| std::cmp::Reverse(c.omem));
            for (info, addr) in clients {
                if total <= msg.limit {
                    break;
                }
                if info.no_evict || info.omem == 0 {
                    continue;
                }
                tracing::warn!(client = info.id, addr = %info.addr, omem = info.omem, "evicting client: maxmemory-clients");
                total -= info.omem as u64;
                msg.census.evicted_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                addr.do_send(Control::Kill);
            }
            msg.census.evicting.store(false, std::sync::atomic::Ordering::Release);
        })
    }
}

/// CONFIG RESETSTAT: the connection counters back to zero.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ResetStats;

impl Handler<ResetStats> for ClientRegistry {
    type Result = ();
    fn handle(&mut self, _: ResetStats, _: &mut Context<Self>) {
        self.total_connections = 0;
        self.rejected_connections = 0;
    }
}
